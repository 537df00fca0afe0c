/* Schema migrations: embedded proto/migrations/NNNN_name.sql applied in version order,
 * each in its own transaction, recorded in schema_migrations, under one session advisory
 * lock so that replicas starting together never apply a migration twice. */
#include "casb/migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/log.h"

/* The advisory lock key of the migration run: the bytes of "casbmigr" as a big-endian
 * int64. Fixed forever; every version of every service must use the same key. */
#define MIGRATE_LOCK_KEY "7161131749075412850"

static int compare_version(const void *a, const void *b)
{
    const casb_migration *ma = *(const casb_migration *const *)a;
    const casb_migration *mb = *(const casb_migration *const *)b;

    return (ma->version > mb->version) - (ma->version < mb->version);
}

static int is_applied(const PGresult *applied, int version)
{
    int i;

    for (i = 0; i < PQntuples(applied); i++) {
        if (casb_db_get_int(applied, i, "version", -1) == version)
            return 1;
    }
    return 0;
}

/* The session lock belongs to the backend that took it; if casb_db reconnected behind our
 * back (it may, between transactions), the lock is gone and we must stop. */
static int check_same_session(casb_db *db, int backend_pid, char *err, size_t errlen)
{
    if (PQbackendPID(casb_db_conn(db)) != backend_pid)
        return casb_fail(err, errlen, CASB_ERROR,
                         "migrate: the database connection was reset during the run; "
                         "the advisory lock is lost");
    return 0;
}

static int apply_one(casb_db *db, const casb_migration *m, char *err, size_t errlen)
{
    char version_s[16];
    const char *params[2];
    PGresult *res = NULL;
    ExecStatusType st;
    int rc = CASB_ERROR;

    if (casb_db_begin(db, err, errlen) < 0)
        goto out;
    /* The one statement in the project that is not parameterised: a migration body is
     * trusted SQL compiled into the binary from proto/migrations, never input, and it holds
     * several statements (and plpgsql $$ bodies), which only the simple query protocol
     * (PQexec) accepts. PQexec returns the result of the last statement, or of the first
     * one that failed. */
    res = PQexec(casb_db_conn(db), m->sql);
    st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        char line[256];

        snprintf(line, sizeof line, "%s", msg ? msg : PQerrorMessage(casb_db_conn(db)));
        line[strcspn(line, "\r\n")] = '\0';
        casb_fail(err, errlen, CASB_ERROR, "migration %s failed: %s (%s)", m->name, line,
                  state ? state : "no sqlstate");
        goto out;
    }
    /* A migration must leave its transaction open for us to record it atomically. */
    if (PQtransactionStatus(casb_db_conn(db)) != PQTRANS_INTRANS) {
        casb_fail(err, errlen, CASB_ERROR,
                  "migration %s ended the transaction itself; remove BEGIN/COMMIT from it",
                  m->name);
        goto out;
    }
    snprintf(version_s, sizeof version_s, "%d", m->version);
    params[0] = version_s;
    params[1] = m->name;
    if (casb_db_exec(db, "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)", 2,
                     params, NULL, err, errlen) < 0)
        goto out;
    if (casb_db_commit(db, err, errlen) < 0)
        goto out;
    casb_log_info("migration applied", "version", version_s, "name", m->name);
    rc = 0;
out:
    PQclear(res);
    if (rc < 0)
        casb_db_rollback(db);
    return rc;
}

int casb_migrate(casb_db *db, const casb_migration *list, size_t n, int *applied,
                 char *err, size_t errlen)
{
    const char *lock_param[1] = {MIGRATE_LOCK_KEY};
    const casb_migration **sorted = NULL;
    PGresult *done = NULL;
    int locked = 0;
    int backend_pid = 0;
    int count = 0;
    int rc = CASB_ERROR;
    size_t i;

    if (applied)
        *applied = 0;
    if (PQtransactionStatus(casb_db_conn(db)) != PQTRANS_IDLE)
        return casb_fail(err, errlen, CASB_ECONFLICT, "migrate: connection is in a transaction");
    sorted = calloc(n ? n : 1, sizeof *sorted);
    if (!sorted)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    for (i = 0; i < n; i++)
        sorted[i] = &list[i];
    qsort(sorted, n, sizeof *sorted, compare_version);
    for (i = 0; i < n; i++) {
        if (sorted[i]->version <= 0 || !sorted[i]->name || !sorted[i]->sql ||
            (i > 0 && sorted[i]->version == sorted[i - 1]->version)) {
            rc = casb_fail(err, errlen, CASB_EINVALID, "migrate: invalid or duplicate version %d",
                           sorted[i]->version);
            goto out;
        }
    }

    /* Taken before CREATE TABLE IF NOT EXISTS, which itself races between sessions. The
     * session-level lock spans the per-migration transactions; it waits for a replica that
     * is migrating right now, which then leaves nothing for us to do. */
    if (casb_db_exec(db, "SELECT pg_advisory_lock($1::bigint)", 1, lock_param, NULL, err,
                     errlen) < 0)
        goto out;
    locked = 1;
    backend_pid = PQbackendPID(casb_db_conn(db));

    if (casb_db_exec(db,
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " version integer PRIMARY KEY,"
                     " name text NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())",
                     0, NULL, NULL, err, errlen) < 0)
        goto out;
    done = casb_db_query(db, "SELECT version FROM schema_migrations", 0, NULL, err, errlen);
    if (!done)
        goto out;
    if (check_same_session(db, backend_pid, err, errlen) < 0)
        goto out;

    for (i = 0; i < n; i++) {
        if (is_applied(done, sorted[i]->version))
            continue;
        if (apply_one(db, sorted[i], err, errlen) < 0)
            goto out;
        if (check_same_session(db, backend_pid, err, errlen) < 0)
            goto out;
        count++;
    }
    rc = 0;
out:
    if (locked) {
        /* Always released: the connection usually lives on (a service keeps it). If the
         * session died, the server dropped the lock with it and this fails harmlessly. */
        char ignored[128];

        casb_db_exec(db, "SELECT pg_advisory_unlock($1::bigint)", 1, lock_param, NULL, ignored,
                     sizeof ignored);
    }
    if (applied)
        *applied = count;
    PQclear(done);
    free(sorted);
    return rc;
}
