#include "fa_catalogue.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/json.h"

struct fa_catalogue {
    fa_finding_type *types;
    size_t n;
    size_t cap;
};

static const char *const severities[] = {"critical", "high", "medium", "low"};
static const char *const categories[] = {"misconfiguration", "user_activity", "data_exposure",
                                         "shadow_it", NULL};

int fa_severity_rank(const char *severity)
{
    if (!severity)
        return -1;
    for (int i = 0; i < 4; i++) {
        if (strcmp(severity, severities[i]) == 0)
            return i;
    }
    return -1;
}

const char *fa_severity_name(int rank)
{
    return rank >= 0 && rank < 4 ? severities[rank] : NULL;
}

int fa_category_valid(const char *category)
{
    if (!category)
        return 0;
    for (int i = 0; categories[i]; i++) {
        if (strcmp(category, categories[i]) == 0)
            return 1;
    }
    return 0;
}

int fa_catalogue_new(fa_catalogue **out, char *err, size_t errlen)
{
    *out = calloc(1, sizeof(**out));
    if (!*out)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    return 0;
}

const char *const FA_DETAIL_MEMBERS[] = {"asset_kind",  "description",          "impact",
                                         "remediation", "evidence", "required_permissions",
                                         NULL};

void fa_catalogue_free(fa_catalogue *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        json_decref(c->types[i].doc);
        free((char *)c->types[i].detail_json);
    }
    free(c->types);
    free(c);
}

/* Type ids are stable identifiers used in URLs and SQL parameters: keep them plain. */
static int id_valid(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.'))
            return 0;
    }
    return 1;
}

/* doc's FA_DETAIL_MEMBERS as a run of serialised members, without the braces. */
static char *detail_members_json(const json_t *doc)
{
    json_t *o = json_object();
    char *s = NULL;
    size_t n;

    if (!o)
        return NULL;
    for (int i = 0; FA_DETAIL_MEMBERS[i]; i++) {
        json_t *v = json_object_get(doc, FA_DETAIL_MEMBERS[i]);
        if (v && json_object_set(o, FA_DETAIL_MEMBERS[i], v) != 0)
            goto out;
    }
    s = casb_json_dump(o); /* "{...}" */
    if (s) {
        n = strlen(s);
        memmove(s, s + 1, n - 2);
        s[n - 2] = '\0';
    }
out:
    json_decref(o);
    return s;
}

static int cmp_type(const void *a, const void *b)
{
    return strcmp(((const fa_finding_type *)a)->id, ((const fa_finding_type *)b)->id);
}

static int add_entry(fa_catalogue *c, const json_t *entry, const char *file_provider,
                     const char *source, size_t index, char *err, size_t errlen)
{
    const char *id = casb_json_str(entry, "id");
    const char *provider = casb_json_str(entry, "provider");
    fa_finding_type t = {0};
    size_t plen;

    if (!json_is_object(entry))
        return casb_fail(err, errlen, CASB_EINVALID, "%s: finding_types[%zu] is not an object",
                         source, index);
    if (!id || !id_valid(id))
        return casb_fail(err, errlen, CASB_EINVALID,
                         "%s: finding_types[%zu].id missing or not [a-z0-9_.]", source, index);
    if (!provider)
        provider = file_provider;
    if (!provider || !provider[0])
        return casb_fail(err, errlen, CASB_EINVALID, "%s: %s has no provider", source, id);
    plen = strlen(provider);
    if (strncmp(id, provider, plen) != 0 || id[plen] != '.')
        return casb_fail(err, errlen, CASB_EINVALID, "%s: %s does not start with \"%s.\"",
                         source, id, provider);
    if (!casb_json_str(entry, "title") || !casb_json_str(entry, "title")[0])
        return casb_fail(err, errlen, CASB_EINVALID, "%s: %s has no title", source, id);
    if (fa_severity_rank(casb_json_str(entry, "severity")) < 0)
        return casb_fail(err, errlen, CASB_EINVALID,
                         "%s: %s severity is not critical, high, medium or low", source, id);
    if (!fa_category_valid(casb_json_str(entry, "category")))
        return casb_fail(err, errlen, CASB_EINVALID, "%s: %s has an unknown category", source,
                         id);
    if (fa_catalogue_find(c, id))
        return casb_fail(err, errlen, CASB_EINVALID, "%s: duplicate finding type %s", source, id);

    t.doc = json_deep_copy(entry);
    if (!t.doc || casb_json_set_str(t.doc, "provider", provider) != 0) {
        json_decref(t.doc);
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    }
    t.id = casb_json_str(t.doc, "id");
    t.provider = casb_json_str(t.doc, "provider");
    t.title = casb_json_str(t.doc, "title");
    t.severity = casb_json_str(t.doc, "severity");
    t.category = casb_json_str(t.doc, "category");
    t.severity_rank = fa_severity_rank(t.severity);
    t.detail_json = detail_members_json(t.doc);
    if (!t.detail_json) {
        json_decref(t.doc);
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        fa_finding_type *grown = realloc(c->types, cap * sizeof(*grown));
        if (!grown) {
            json_decref(t.doc);
            free((char *)t.detail_json);
            return casb_fail(err, errlen, CASB_ERROR, "out of memory");
        }
        c->types = grown;
        c->cap = cap;
    }
    c->types[c->n++] = t;
    /* Kept sorted so that lookups are binary searches. */
    qsort(c->types, c->n, sizeof(*c->types), cmp_type);
    return 0;
}

int fa_catalogue_add(fa_catalogue *c, const json_t *doc, const char *source, char *err,
                     size_t errlen)
{
    const json_t *list;
    size_t i;
    json_t *entry;

    if (!json_is_object(doc))
        return casb_fail(err, errlen, CASB_EINVALID, "%s: not a JSON object", source);
    list = json_object_get(doc, "finding_types");
    if (!json_is_array(list) || json_array_size(list) == 0)
        return casb_fail(err, errlen, CASB_EINVALID, "%s: finding_types missing or empty",
                         source);
    json_array_foreach(list, i, entry) {
        int rc = add_entry(c, entry, casb_json_str(doc, "provider"), source, i, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int has_json_suffix(const char *name)
{
    size_t n = strlen(name);

    return n > 5 && strcmp(name + n - 5, ".json") == 0 && name[0] != '.';
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int fa_catalogue_load_dir(fa_catalogue **out, const char *dir, char *err, size_t errlen)
{
    fa_catalogue *c = NULL;
    DIR *d = NULL;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = CASB_EINVALID;

    *out = NULL;
    d = opendir(dir);
    if (!d) {
        casb_fail(err, errlen, CASB_EINVALID, "catalogue directory %s cannot be read", dir);
        goto out;
    }
    while ((de = readdir(d)) != NULL) {
        if (!has_json_suffix(de->d_name))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char **grown = realloc(names, ncap * sizeof(*grown));
            if (!grown)
                goto oom;
            names = grown;
            cap = ncap;
        }
        names[n] = strdup(de->d_name);
        if (!names[n])
            goto oom;
        n++;
    }
    if (n == 0) {
        casb_fail(err, errlen, CASB_EINVALID, "no finding catalogue (*.json) in %s", dir);
        goto out;
    }
    qsort(names, n, sizeof(*names), cmp_str);
    if (fa_catalogue_new(&c, err, errlen) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        json_error_t jerr;
        json_t *doc;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc) {
            casb_fail(err, errlen, CASB_EINVALID, "%s: line %d: %s", path, jerr.line, jerr.text);
            goto out;
        }
        int arc = fa_catalogue_add(c, doc, names[i], err, errlen);
        json_decref(doc);
        if (arc != 0)
            goto out;
    }
    *out = c;
    c = NULL;
    rc = 0;
    goto out;
oom:
    casb_fail(err, errlen, CASB_ERROR, "out of memory");
    rc = CASB_ERROR;
out:
    if (d)
        closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    fa_catalogue_free(c);
    return rc;
}

const fa_finding_type *fa_catalogue_find(const fa_catalogue *c, const char *id)
{
    fa_finding_type key = {.id = id};

    if (!c || !id || c->n == 0)
        return NULL;
    return bsearch(&key, c->types, c->n, sizeof(*c->types), cmp_type);
}

size_t fa_catalogue_count(const fa_catalogue *c)
{
    return c ? c->n : 0;
}

const fa_finding_type *fa_catalogue_at(const fa_catalogue *c, size_t i)
{
    return c && i < c->n ? &c->types[i] : NULL;
}

json_t *fa_catalogue_ids_with_title(const fa_catalogue *c, const char *text)
{
    json_t *ids = json_array();

    for (size_t i = 0; ids && i < c->n; i++) {
        if (strcasestr(c->types[i].title, text))
            json_array_append_new(ids, json_string(c->types[i].id));
    }
    return ids;
}

json_t *fa_catalogue_ids_in_category(const fa_catalogue *c, const char *category)
{
    json_t *ids = json_array();

    if (!ids)
        return NULL;
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->types[i].category, category) == 0)
            json_array_append_new(ids, json_string(c->types[i].id));
    }
    return ids;
}
