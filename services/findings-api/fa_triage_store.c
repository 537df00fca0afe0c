#include "fa_triage_store.h"

#include <stdio.h>

#include "fa_store.h"

static const char SQL_FINDING_STATUS[] =
    "WITH t AS ("
    " UPDATE findings f SET status = $3"
    "  WHERE f.account_id = $1 AND f.id = ANY($2::uuid[]) AND f.status <> $3"
    " RETURNING f.id),"
    " ev AS (INSERT INTO finding_events (account_id, finding_id, event, actor)"
    "        SELECT $1::uuid, t.id, $4, $5 FROM t)"
    " SELECT (SELECT count(*) FROM t) AS changed,"
    "        (SELECT count(*) FROM findings WHERE account_id = $1 AND id = ANY($2::uuid[]))"
    "        AS known";

/* $3: the new state; hiding takes active and resolved instances, unhiding hidden ones. */
static const char SQL_INSTANCE_VISIBILITY[] =
    "WITH t AS ("
    " UPDATE finding_instances i SET state = $3"
    "   FROM findings f"
    "  WHERE i.finding_id = f.id AND f.account_id = $1 AND i.id = ANY($2::uuid[])"
    "    AND (CASE WHEN $3 = 'hidden' THEN i.state <> 'hidden' ELSE i.state = 'hidden' END)"
    " RETURNING i.id, i.finding_id),"
    " ev AS (INSERT INTO finding_events (account_id, finding_id, instance_id, event, actor)"
    "        SELECT $1::uuid, t.finding_id, t.id, $4, $5 FROM t)"
    " SELECT (SELECT count(*) FROM t) AS changed,"
    "        (SELECT count(*) FROM finding_instances i JOIN findings f ON f.id = i.finding_id"
    "          WHERE f.account_id = $1 AND i.id = ANY($2::uuid[])) AS known";

/* After the statement above (whose changes it cannot see from within). */
static const char SQL_RECOUNT_INSTANCES[] =
    "UPDATE findings f SET instance_count = (SELECT count(*) FROM finding_instances i"
    "                                         WHERE i.finding_id = f.id AND i.state = 'active')"
    " WHERE f.account_id = $1"
    "   AND f.id IN (SELECT finding_id FROM finding_instances WHERE id = ANY($2::uuid[]))";

/* The trend's rows of today for the integrations a change touched ($1 account, $2 ids). */
static const char SQL_DAILY_OF_FINDINGS[] = FA_SQL_DAILY_COUNTS(
    "SELECT integration_id FROM findings WHERE account_id = $1 AND id = ANY($2::uuid[])");
static const char SQL_DAILY_OF_INSTANCES[] = FA_SQL_DAILY_COUNTS(
    "SELECT f.integration_id FROM findings f JOIN finding_instances fi ON fi.finding_id = f.id"
    " WHERE f.account_id = $1 AND fi.id = ANY($2::uuid[])");
static const char SQL_DAILY_OF_FINDING[] = FA_SQL_DAILY_COUNTS(
    "SELECT integration_id FROM findings WHERE account_id = $1 AND id = $2::uuid");

static const char SQL_SEVERITY[] =
    "WITH old AS (SELECT id, severity FROM findings WHERE account_id = $1 AND id = $2"
    "             FOR UPDATE),"
    " t AS (UPDATE findings f SET severity = $3, severity_tuned = $4::boolean FROM old"
    "        WHERE f.id = old.id RETURNING f.id, old.severity AS was),"
    " ev AS (INSERT INTO finding_events (account_id, finding_id, event, actor, details)"
    "        SELECT $1::uuid, t.id,"
    "               CASE WHEN $4::boolean THEN 'severity_changed' ELSE 'severity_reset' END,"
    "               $5, jsonb_build_object('from', t.was, 'to', $3::text)"
    "          FROM t WHERE t.was <> $3)"
    " SELECT count(*) AS found FROM t";

/* Runs a statement answering one row of counts. */
static int counts(casb_db *db, const char *sql, int n, const char *const *params,
                  long *changed, long *known, char *err, size_t errlen)
{
    PGresult *res = casb_db_query(db, sql, n, params, err, errlen);

    if (!res)
        return -1;
    *changed = (long)casb_db_get_int(res, 0, "changed", 0);
    *known = (long)casb_db_get_int(res, 0, "known", 0);
    PQclear(res);
    return 0;
}

int fa_triage_finding_status(casb_db *db, const char *account_id, const char *ids,
                             const char *status, const char *event, const char *actor,
                             long *changed, long *known, char *err, size_t errlen)
{
    const char *params[] = {account_id, ids, status, event, actor};
    const char *daily[] = {account_id, ids};

    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    if (counts(db, SQL_FINDING_STATUS, 5, params, changed, known, err, errlen) != 0 ||
        (*changed > 0 &&
         casb_db_exec(db, SQL_DAILY_OF_FINDINGS, 2, daily, NULL, err, errlen) != 0) ||
        casb_db_commit(db, err, errlen) != 0) {
        casb_db_rollback(db);
        return -1;
    }
    return 0;
}

int fa_triage_instance_visibility(casb_db *db, const char *account_id, const char *ids,
                                  int hide, const char *actor, long *changed, long *known,
                                  char *err, size_t errlen)
{
    const char *params[] = {account_id, ids, hide ? "hidden" : "active",
                            hide ? "hidden" : "unhidden", actor};
    const char *recount[] = {account_id, ids};

    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    if (counts(db, SQL_INSTANCE_VISIBILITY, 5, params, changed, known, err, errlen) != 0 ||
        casb_db_exec(db, SQL_RECOUNT_INSTANCES, 2, recount, NULL, err, errlen) != 0 ||
        (*changed > 0 &&
         casb_db_exec(db, SQL_DAILY_OF_INSTANCES, 2, recount, NULL, err, errlen) != 0) ||
        casb_db_commit(db, err, errlen) != 0) {
        casb_db_rollback(db);
        return -1;
    }
    return 0;
}

int fa_triage_severity(casb_db *db, const char *account_id, const char *finding_id,
                       const char *severity, int tuned, const char *actor, int *found,
                       char *err, size_t errlen)
{
    const char *params[] = {account_id, finding_id, severity, tuned ? "true" : "false", actor};
    const char *daily[] = {account_id, finding_id};
    PGresult *res;

    if (casb_db_begin(db, err, errlen) != 0)
        return -1;
    res = casb_db_query(db, SQL_SEVERITY, 5, params, err, errlen);
    if (!res)
        goto fail;
    *found = casb_db_get_int(res, 0, "found", 0) > 0;
    PQclear(res);
    if ((*found && casb_db_exec(db, SQL_DAILY_OF_FINDING, 2, daily, NULL, err, errlen) != 0) ||
        casb_db_commit(db, err, errlen) != 0)
        goto fail;
    return 0;
fail:
    casb_db_rollback(db);
    return -1;
}
