#ifndef FA_CATALOGUE_H
#define FA_CATALOGUE_H

#include <jansson.h>
#include <stddef.h>

/* The finding catalogue: every finding type of every provider, loaded at start from
 * proto/findings/<provider>.json ({"provider","finding_types":[...]}). It is the single
 * source of titles, severities, categories and remediation; the database stores only the
 * type id. Read-only once loaded, so any thread may use it. */

typedef struct {
    const char *id;        /* "github.org.member_2fa_disabled" */
    const char *provider;  /* "github" */
    const char *title;
    const char *severity;  /* critical | high | medium | low */
    const char *category;  /* misconfiguration | user_activity | data_exposure | shadow_it */
    int severity_rank;     /* 0 critical .. 3 low */
    json_t *doc;           /* the whole entry, "provider" included (borrowed) */
    /* The members of FA_DETAIL_MEMBERS the entry has, serialised once ("\"asset_kind\":
     * \"file\",\"description\":...", "" for none): a page of 50 findings repeats them 50
     * times, and they are most of its bytes. */
    const char *detail_json;
} fa_finding_type;

/* The members of an entry a finding's detailed view carries, NULL-terminated. */
extern const char *const FA_DETAIL_MEMBERS[];

typedef struct fa_catalogue fa_catalogue;

int fa_catalogue_new(fa_catalogue **out, char *err, size_t errlen);
void fa_catalogue_free(fa_catalogue *c); /* NULL-safe */

/* Adds the types of one catalogue document (borrowed). source names it in errors. Every
 * entry needs id, title, a known severity and category; ids are unique across providers.
 * 0, or CASB_EINVALID with err. */
int fa_catalogue_add(fa_catalogue *c, const json_t *doc, const char *source, char *err,
                     size_t errlen);

/* Loads every *.json of dir. A missing directory, no file, or an invalid file is an error. */
int fa_catalogue_load_dir(fa_catalogue **out, const char *dir, char *err, size_t errlen);

const fa_finding_type *fa_catalogue_find(const fa_catalogue *c, const char *id);
size_t fa_catalogue_count(const fa_catalogue *c);
const fa_finding_type *fa_catalogue_at(const fa_catalogue *c, size_t i); /* ordered by id */

/* Ids of the types in a category, as a new JSON array (empty when none). */
json_t *fa_catalogue_ids_in_category(const fa_catalogue *c, const char *category);

/* Ids of the types whose title contains text, ignoring case, as a new JSON array. */
json_t *fa_catalogue_ids_with_title(const fa_catalogue *c, const char *text);

/* 0 critical, 1 high, 2 medium, 3 low; -1 for anything else. */
int fa_severity_rank(const char *severity);
const char *fa_severity_name(int rank); /* NULL out of range */
int fa_category_valid(const char *category);

#endif
