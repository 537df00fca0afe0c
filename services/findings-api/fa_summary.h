#ifndef FA_SUMMARY_H
#define FA_SUMMARY_H

#include <stddef.h>

#include "casb/db.h"
#include "fa_catalogue.h"

/* GET /v1/summary's body: rendered once per version of the account's summary
 * (summary_versions, migration 0013) and served again, from memory, while that version
 * holds. Each request reads the version, one indexed row, so a change committed by any
 * replica or service is in the next summary asked for. */

typedef struct fa_summary fa_summary;             /* one rendered body, reference-counted */
typedef struct fa_summary_cache fa_summary_cache; /* shared by the HTTP threads */

/* A cache of up to max_accounts summaries and max_bytes of JSON, the least recently served
 * dropped first. NULL when out of memory. */
fa_summary_cache *fa_summary_cache_new(size_t max_accounts, size_t max_bytes);
void fa_summary_cache_free(fa_summary_cache *c); /* NULL-safe */

/* The account's summary: the cached one if the account's version is still the one it was
 * rendered at, else rendered from db now (and kept). cache may be NULL: always rendered.
 * Returns a reference to release, or NULL with err. */
fa_summary *fa_summary_get(fa_summary_cache *cache, casb_db *db, const char *account_id,
                           const fa_catalogue *cat, char *err, size_t errlen);

const char *fa_summary_json(const fa_summary *s, size_t *len);
void fa_summary_release(fa_summary *s); /* NULL-safe */

#endif
