#include "sched_relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/log.h"

static int decimal(const char *s)
{
    if (!s || !*s || strlen(s) > 19)
        return 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return 0;
    }
    return 1;
}

char *sched_relay_id_array(const char *const *ids, size_t n)
{
    size_t cap = 3; /* braces and NUL */
    size_t len = 0;
    char *out = NULL;

    for (size_t i = 0; i < n; i++) {
        if (!decimal(ids[i]))
            return NULL;
        cap += strlen(ids[i]) + 1;
    }
    out = malloc(cap);
    if (!out)
        return NULL;
    out[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(ids[i]);

        if (i > 0)
            out[len++] = ',';
        memcpy(out + len, ids[i], l);
        len += l;
    }
    out[len++] = '}';
    out[len] = '\0';
    return out;
}

int sched_relay_once(casb_db *db, casb_producer *p, long limit, int flush_timeout_ms, int *sent,
                     char *err, size_t errlen)
{
    char limit_text[32];
    const char *params[1] = {limit_text};
    const char **ids = NULL;
    char *id_array = NULL;
    PGresult *res = NULL;
    long affected = 0;
    int n = 0;
    int rc = -1;

    *sent = 0;
    snprintf(limit_text, sizeof(limit_text), "%ld", limit);
    /* After a failed round librdkafka keeps retrying what it had queued; producing the same
     * rows again on top of those would pile up duplicates for as long as the broker is
     * away. So a round starts only once nothing is outstanding (an idle producer returns at
     * once). This also clears failures already paid for by an earlier rollback. */
    if (casb_producer_flush(p, flush_timeout_ms, err, errlen) != 0)
        return -1;
    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    res = casb_db_query(db,
                        "SELECT id::text AS id, integration_id::text AS integration_id, "
                        "scan_id::text AS scan_id, payload FROM scan_outbox "
                        "WHERE sent_at IS NULL ORDER BY id LIMIT $1::integer "
                        "FOR UPDATE SKIP LOCKED",
                        1, params, err, errlen);
    if (!res)
        goto out;
    n = PQntuples(res);
    if (n == 0) {
        rc = casb_db_commit(db, err, errlen);
        goto out;
    }

    ids = calloc((size_t)n, sizeof(*ids));
    if (!ids) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const char *payload = casb_db_get(res, i, "payload");

        ids[i] = casb_db_get(res, i, "id");
        if (casb_producer_send(p, CASB_TOPIC_SCAN_JOBS, casb_db_get(res, i, "integration_id"),
                               payload, strlen(payload), err, errlen) != 0)
            goto out;
    }
    /* The rows are marked sent only after the broker has acknowledged every one of them. */
    if (casb_producer_flush(p, flush_timeout_ms, err, errlen) != 0)
        goto out;

    id_array = sched_relay_id_array(ids, (size_t)n);
    if (!id_array) {
        casb_fail(err, errlen, CASB_ERROR, "unexpected outbox id");
        goto out;
    }
    params[0] = id_array;
    if (casb_db_exec(db, "UPDATE scan_outbox SET sent_at = now() WHERE id = ANY($1::bigint[])",
                     1, params, &affected, err, errlen) != 0)
        goto out;
    if (casb_db_commit(db, err, errlen) != 0)
        goto out;
    for (int i = 0; i < n; i++)
        casb_log_debug("scan job dispatched", "scan_id", casb_db_get(res, i, "scan_id"),
                       "integration_id", casb_db_get(res, i, "integration_id"));
    *sent = n;
    rc = 0;
out:
    if (rc != 0)
        casb_db_rollback(db);
    free(id_array);
    free(ids);
    PQclear(res);
    return rc;
}

int sched_relay_backlog(casb_db *db, long *pending, double *oldest_age_s, char *err,
                        size_t errlen)
{
    PGresult *res = NULL;
    const char *age = NULL;

    *pending = 0;
    *oldest_age_s = 0;
    res = casb_db_query(db,
                        "SELECT count(*) AS pending, "
                        "extract(epoch FROM now() - min(created_at))::float8 AS oldest_age_s "
                        "FROM scan_outbox WHERE sent_at IS NULL",
                        0, NULL, err, errlen);
    if (!res)
        return -1;
    *pending = (long)casb_db_get_int(res, 0, "pending", 0);
    age = casb_db_get(res, 0, "oldest_age_s");
    *oldest_age_s = age ? strtod(age, NULL) : 0;
    if (*oldest_age_s < 0)
        *oldest_age_s = 0;
    PQclear(res);
    return 0;
}
