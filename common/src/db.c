/* PostgreSQL access on libpq: connect with backoff, parameterised statements only (text
 * format; one-shot, or prepared with a generic plan on request), transparent reconnect
 * outside transactions, and a small thread-safe pool. */
#include "casb/db.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casb/error.h"
#include "casb/log.h"
#include "casb/metrics.h"
#include "casb/service.h"
#include "casb/timeutil.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000
/* Applies when the URL sets no connect_timeout, so that an unreachable host cannot block
 * one attempt for the kernel's TCP timeout (minutes). */
#define DEFAULT_CONNECT_TIMEOUT_S "10"
/* SQLSTATE class 08 "connection_failure", reported when libpq fails on the client side
 * (the server sent no SQLSTATE because it is gone). */
#define SQLSTATE_CONNECTION_FAILURE "08006"
/* A pooled connection idle for longer is pinged before it is handed out. One in steady use
 * is not: the ping was a round trip on every request, and a connection that did break is
 * repaired by its first statement anyway (casb_db_query reconnects outside transactions). */
#define POOL_PING_AFTER_IDLE_MS 10000
/* Statements casb_db_query_generic prepares per connection; further ones run unprepared
 * (still with a generic plan). The services' generic statements, one text per combination
 * of filters in use (casb_sql_specialize), are a few dozen at most. */
#define GENERIC_CACHE_MAX 64
/* SQLSTATEs after which a connection's prepared statements are forgotten and the statement
 * run again (outside a transaction): the server no longer has them (DISCARD ALL), or a
 * migration changed what one returns. */
#define SQLSTATE_NO_SUCH_STATEMENT "26000"
#define SQLSTATE_CACHED_PLAN_CHANGED "0A000"

/* How the session plans statements (plan_cache_mode), which applies to every statement it
 * runs, PostgreSQL's own foreign-key checks included: the server's default (custom plans
 * for one-shot statements) for everything but casb_db_query_generic's statements, which
 * set force_generic_plan. UNKNOWN after a rollback undid a switch made in the transaction. */
typedef enum { PLANS_DEFAULT, PLANS_GENERIC, PLANS_UNKNOWN } plan_mode;

typedef struct {
    uint64_t hash;
    char *text;
} prepared_statement;

struct casb_db {
    PGconn *conn;
    /* Our own record of "between BEGIN and COMMIT/ROLLBACK". libpq's PQtransactionStatus
     * says PQTRANS_UNKNOWN once the connection broke, which is exactly when we must know
     * whether a reset would silently lose the caller's transaction. */
    int in_tx;
    char sqlstate[6];
    int64_t released_ms; /* when it went back to its pool (monotonic) */
    plan_mode plans;
    int plans_switched_in_tx; /* a rollback of the current transaction undoes the switch */
    unsigned cache_gen;       /* prepared statements are named casb_g<gen>_<i> */
    int nprepared;
    prepared_statement prepared[GENERIC_CACHE_MAX];
};

/* Server notices (e.g. "there is no transaction in progress") would otherwise go to
 * stderr as plain text, outside the JSON log. */
static void notice_processor(void *arg, const char *message)
{
    char line[512];
    size_t n;

    (void)arg;
    snprintf(line, sizeof line, "%s", message);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    casb_log_debug("postgresql notice", "notice", line);
}

/* libpq messages end with a newline and may span lines; keep the first line for err. */
static void copy_first_line(char *dst, size_t dstlen, const char *src)
{
    size_t n = strcspn(src ? src : "", "\r\n");

    if (!dst || dstlen == 0)
        return;
    if (n >= dstlen)
        n = dstlen - 1;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

static PGconn *connect_once(const char *url)
{
    /* expand_dbname=1: "dbname" holds a full URL / conninfo string, whose settings win
     * over the keywords before it (so the URL may set its own connect_timeout). */
    const char *const keys[] = {"connect_timeout", "dbname", NULL};
    const char *const values[] = {DEFAULT_CONNECT_TIMEOUT_S, url, NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);

    if (conn)
        PQsetNoticeProcessor(conn, notice_processor, NULL);
    return conn;
}

/* ---- generic plans ---- */

/* Forgets the connection's prepared statements: their session is gone, or they are to be
 * replaced (later ones get names of a new generation, so no name is reused). */
static void forget_prepared(casb_db *db)
{
    for (int i = 0; i < db->nprepared; i++)
        free(db->prepared[i].text);
    db->nprepared = 0;
    db->cache_gen++;
}

/* Puts the session in the plan mode the next statement needs: NULL, or the failed result
 * (an aborted transaction, a broken connection). */
static PGresult *switch_plans(casb_db *db, plan_mode want)
{
    PGresult *res;

    if (db->plans == want)
        return NULL;
    res = PQexec(db->conn, want == PLANS_GENERIC ? "SET plan_cache_mode = force_generic_plan"
                                                 : "RESET plan_cache_mode");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return res ? res : PQmakeEmptyPGresult(db->conn, PGRES_FATAL_ERROR);
    PQclear(res);
    db->plans = want;
    if (db->in_tx)
        db->plans_switched_in_tx = 1;
    return NULL;
}

/* The end of a transaction: a rollback restores the plan mode it began with, which is not
 * known any more if the transaction switched it. */
static void transaction_ended(casb_db *db, int committed)
{
    if (db->plans_switched_in_tx && !committed)
        db->plans = PLANS_UNKNOWN;
    db->plans_switched_in_tx = 0;
}

static uint64_t text_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void statement_name(const casb_db *db, int i, char *name, size_t len)
{
    snprintf(name, len, "casb_g%u_%d", db->cache_gen, i);
}

/* The index of sql among the connection's prepared statements, preparing it when there is
 * room; -1 to run it unprepared. A failed prepare's result is left in *failed. */
static int prepared_index(casb_db *db, const char *sql, int nparams, PGresult **failed)
{
    uint64_t h = text_hash(sql);
    char name[32];
    PGresult *res;
    char *text;

    *failed = NULL;
    for (int i = 0; i < db->nprepared; i++) {
        if (db->prepared[i].hash == h && strcmp(db->prepared[i].text, sql) == 0)
            return i;
    }
    if (db->nprepared == GENERIC_CACHE_MAX || !(text = strdup(sql)))
        return -1;
    statement_name(db, db->nprepared, name, sizeof name);
    res = PQprepare(db->conn, name, sql, nparams, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        free(text);
        *failed = res ? res : PQmakeEmptyPGresult(db->conn, PGRES_FATAL_ERROR);
        return -1;
    }
    PQclear(res);
    db->prepared[db->nprepared].hash = h;
    db->prepared[db->nprepared].text = text;
    return db->nprepared++;
}

/* What a statement is, for how it is run. */
typedef enum {
    STMT_PLANNED, /* one-shot, planned for its parameters */
    STMT_GENERIC, /* prepared once per connection, with a generic plan */
    STMT_CONTROL  /* BEGIN, COMMIT: not planned, run in whatever mode the session is in */
} statement_kind;

/* Runs sql once in the plan mode it needs: one-shot, or prepared (once per connection)
 * and executed with the connection's generic plan of it. */
static PGresult *run_statement(casb_db *db, const char *sql, int nparams,
                               const char *const *params, statement_kind kind, int binary)
{
    PGresult *failed = NULL;
    char name[32];
    int i = -1;

    if (kind != STMT_CONTROL)
        failed = switch_plans(db, kind == STMT_GENERIC ? PLANS_GENERIC : PLANS_DEFAULT);
    if (failed)
        return failed;
    if (kind != STMT_GENERIC || (i = prepared_index(db, sql, nparams, &failed)) < 0) {
        if (failed)
            return failed;
        /* Parameters in text, their types inferred by the server. */
        return PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, binary);
    }
    statement_name(db, i, name, sizeof name);
    return PQexecPrepared(db->conn, name, nparams, params, NULL, NULL, binary);
}

int casb_db_open(casb_db **out, const char *url, int timeout_ms, char *err, size_t errlen)
{
    casb_db *db = NULL;
    PGconn *conn = NULL;
    int64_t deadline_ms = casb_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int backoff_ms = BACKOFF_MIN_MS;
    int attempt = 0;
    char msg[256];

    *out = NULL;
    if (!url || !*url)
        return casb_fail(err, errlen, CASB_EINVALID, "database URL is empty");
    for (;;) {
        int64_t left_ms;

        attempt++;
        conn = connect_once(url);
        if (!conn)
            return casb_fail(err, errlen, CASB_ERROR, "database connect: out of memory");
        if (PQstatus(conn) == CONNECTION_OK)
            break;
        copy_first_line(msg, sizeof msg, PQerrorMessage(conn));
        PQfinish(conn);
        conn = NULL;
        left_ms = deadline_ms - casb_monotonic_ms();
        if (left_ms <= 0)
            return casb_fail(err, errlen, CASB_EUNAVAILABLE,
                             "database connect failed after %d attempt(s): %s", attempt, msg);
        if (backoff_ms > left_ms)
            backoff_ms = (int)left_ms;
        {
            char attempt_s[16], wait_s[16];

            snprintf(attempt_s, sizeof attempt_s, "%d", attempt);
            snprintf(wait_s, sizeof wait_s, "%d", backoff_ms);
            casb_log_warn("database connect failed, retrying", "error", msg, "attempt", attempt_s,
                          "retry_in_ms", wait_s);
        }
        /* A process told to stop (SIGTERM while the database is away) stops waiting: the
         * orchestrator's grace period is shorter than the connect timeout. */
        casb_service_sleep_ms(backoff_ms);
        if (casb_service_stopping())
            return casb_fail(err, errlen, CASB_EUNAVAILABLE,
                             "database connect abandoned: stopping (%s)", msg);
        backoff_ms *= 2;
        if (backoff_ms > BACKOFF_MAX_MS)
            backoff_ms = BACKOFF_MAX_MS;
    }

    db = calloc(1, sizeof *db);
    if (!db) {
        PQfinish(conn);
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    }
    db->conn = conn;
    *out = db;
    return 0;
}

void casb_db_close(casb_db *db)
{
    if (!db)
        return;
    forget_prepared(db);
    PQfinish(db->conn);
    free(db);
}

/* PQreset reconnects with the original parameters, keeping the PGconn (and so the notice
 * processor). Session state (advisory locks, SET, prepared statements) is gone after it. */
static int reset_connection(casb_db *db, const char *why)
{
    char msg[256];

    casb_log_warn("database connection lost, reconnecting", "error", why);
    PQreset(db->conn);
    db->in_tx = 0;
    forget_prepared(db);
    db->plans = PLANS_DEFAULT;
    db->plans_switched_in_tx = 0;
    if (PQstatus(db->conn) != CONNECTION_OK) {
        copy_first_line(msg, sizeof msg, PQerrorMessage(db->conn));
        casb_log_error("database reconnect failed", "error", msg);
        return -1;
    }
    casb_log_info("database reconnected");
    return 0;
}

/* Follows the server's view of the transaction while the connection is up; when it is
 * down, keeps ours (see struct casb_db). */
static void sync_tx_state(casb_db *db)
{
    switch (PQtransactionStatus(db->conn)) {
    case PQTRANS_IDLE:
        db->in_tx = 0;
        break;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
        db->in_tx = 1;
        break;
    default:
        break;
    }
}

/* Records the failure of res (which may be NULL) in db->sqlstate and err. */
static void record_failure(casb_db *db, const PGresult *res, char *err, size_t errlen)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char msg[256];

    if (!state && PQstatus(db->conn) == CONNECTION_BAD)
        state = SQLSTATE_CONNECTION_FAILURE;
    snprintf(db->sqlstate, sizeof db->sqlstate, "%s", state ? state : "");
    /* Only the primary message: DETAIL lines may quote row values. */
    if (primary)
        copy_first_line(msg, sizeof msg, primary);
    else if (res && *PQresultErrorMessage(res))
        copy_first_line(msg, sizeof msg, PQresultErrorMessage(res));
    else
        copy_first_line(msg, sizeof msg, PQerrorMessage(db->conn));
    if (!msg[0] && res)
        snprintf(msg, sizeof msg, "unexpected result %s", PQresStatus(PQresultStatus(res)));
    casb_fail(err, errlen, CASB_ERROR, "database: %s%s%s%s", msg, db->sqlstate[0] ? " (" : "",
              db->sqlstate, db->sqlstate[0] ? ")" : "");
}

static PGresult *query(casb_db *db, const char *sql, int nparams, const char *const *params,
                       statement_kind kind, int binary, char *err, size_t errlen)
{
    PGresult *res = NULL;
    int attempt;

    db->sqlstate[0] = '\0';
    for (attempt = 0; attempt < 2; attempt++) {
        ExecStatusType st;
        char why[256];

        res = run_statement(db, sql, nparams, params, kind, binary);
        st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            sync_tx_state(db);
            return res;
        }
        record_failure(db, res, err, errlen);
        PQclear(res);
        res = NULL;
        sync_tx_state(db);
        if (kind == STMT_GENERIC &&
            (strcmp(db->sqlstate, SQLSTATE_NO_SUCH_STATEMENT) == 0 ||
             strcmp(db->sqlstate, SQLSTATE_CACHED_PLAN_CHANGED) == 0)) {
            /* Prepared statements the server lost or a migration outdated: new ones, and
             * this one again if no transaction is lost with it. */
            forget_prepared(db);
            if (attempt > 0 || db->in_tx)
                break;
            continue;
        }
        /* A broken connection outside a transaction: the statement never reached a live
         * backend (or its session died with it), so running it again on a fresh session
         * is what the caller would do anyway. Inside a transaction the earlier statements
         * are lost with the session, so the failure must surface to the caller. */
        if (attempt > 0 || PQstatus(db->conn) != CONNECTION_BAD || db->in_tx)
            break;
        copy_first_line(why, sizeof why, PQerrorMessage(db->conn));
        if (reset_connection(db, why) < 0)
            break;
    }
    return NULL;
}

PGresult *casb_db_query(casb_db *db, const char *sql, int nparams, const char *const *params,
                        char *err, size_t errlen)
{
    return query(db, sql, nparams, params, STMT_PLANNED, 0, err, errlen);
}

PGresult *casb_db_query_generic(casb_db *db, const char *sql, int nparams,
                                const char *const *params, char *err, size_t errlen)
{
    return query(db, sql, nparams, params, STMT_GENERIC, 0, err, errlen);
}

PGresult *casb_db_query_binary(casb_db *db, const char *sql, int nparams,
                               const char *const *params, char *err, size_t errlen)
{
    return query(db, sql, nparams, params, STMT_PLANNED, 1, err, errlen);
}

PGresult *casb_db_query_generic_binary(casb_db *db, const char *sql, int nparams,
                                       const char *const *params, char *err, size_t errlen)
{
    return query(db, sql, nparams, params, STMT_GENERIC, 1, err, errlen);
}

int casb_db_exec(casb_db *db, const char *sql, int nparams, const char *const *params,
                 long *affected, char *err, size_t errlen)
{
    PGresult *res = casb_db_query(db, sql, nparams, params, err, errlen);

    if (!res)
        return CASB_ERROR;
    if (affected) {
        const char *n = PQcmdTuples(res); /* "" for statements without a row count */

        *affected = *n ? strtol(n, NULL, 10) : 0;
    }
    PQclear(res);
    return 0;
}

int casb_db_begin(casb_db *db, char *err, size_t errlen)
{
    PGresult *res;

    if (db->in_tx)
        return casb_fail(err, errlen, CASB_ECONFLICT, "database: already in a transaction");
    res = query(db, "BEGIN", 0, NULL, STMT_CONTROL, 0, err, errlen);
    if (!res)
        return CASB_ERROR;
    PQclear(res);
    db->in_tx = 1;
    return 0;
}

int casb_db_commit(casb_db *db, char *err, size_t errlen)
{
    PGresult *res = query(db, "COMMIT", 0, NULL, STMT_CONTROL, 0, err, errlen);
    int rc = 0;

    /* Whatever happened, the transaction is over: committed, rolled back by the server,
     * or lost with the connection (and then the next statement may reconnect). */
    db->in_tx = 0;
    /* COMMIT of a transaction that had failed succeeds with the tag ROLLBACK. */
    transaction_ended(db, res && strcmp(PQcmdStatus(res), "ROLLBACK") != 0);
    if (!res)
        return CASB_ERROR;
    if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
        if (!db->sqlstate[0])
            snprintf(db->sqlstate, sizeof db->sqlstate, "25P02"); /* in_failed_sql_transaction */
        rc = casb_fail(err, errlen, CASB_ERROR,
                       "database: transaction was rolled back (an earlier statement failed)");
    }
    PQclear(res);
    return rc;
}

void casb_db_rollback(casb_db *db)
{
    PGresult *res;

    if (!db)
        return;
    if (PQstatus(db->conn) == CONNECTION_BAD) {
        /* The server already dropped the transaction with the session. */
        char why[256];

        copy_first_line(why, sizeof why, PQerrorMessage(db->conn));
        reset_connection(db, why);
        return;
    }
    if (PQtransactionStatus(db->conn) == PQTRANS_IDLE) {
        db->in_tx = 0;
        transaction_ended(db, 0);
        return;
    }
    /* Not through casb_db_query: the SQLSTATE of the failure that led here stays readable. */
    res = PQexec(db->conn, "ROLLBACK");
    PQclear(res);
    db->in_tx = 0;
    transaction_ended(db, 0);
}

const char *casb_db_last_sqlstate(const casb_db *db)
{
    return db->sqlstate;
}

int casb_db_ping(casb_db *db)
{
    PGresult *res;
    int ok;

    if (!db || PQstatus(db->conn) != CONNECTION_OK)
        return 0;
    res = PQexecParams(db->conn, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0);
    ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    return ok;
}

PGconn *casb_db_conn(casb_db *db)
{
    /* Statements run on the PGconn are planned as one-shot ones are. */
    PGresult *failed = switch_plans(db, PLANS_DEFAULT);

    if (failed) {
        casb_log_warn("database: cannot restore the default plan mode", "error",
                      PQresultErrorMessage(failed));
        PQclear(failed);
    }
    return db->conn;
}

/* ---- pool ---- */

/* A thread waiting for a connection. Released connections go to the longest waiting thread
 * first, handed over directly: with a condition variable shared by all waiters, whichever
 * thread the scheduler ran first took it, and a few requests waited far longer than the
 * rest (the query benchmark's p99 latency). */
typedef struct pool_waiter {
    pthread_cond_t cv;
    casb_db *db; /* set by the releasing thread */
    struct pool_waiter *next;
} pool_waiter;

struct casb_db_pool {
    pthread_mutex_t mu;
    casb_db **all;
    casb_db **idle; /* stack of free connections */
    int size;
    int nidle;
    pool_waiter *first, *last; /* waiting threads, oldest first */
};

/* casb_db_pool_connections{state="in_use|idle"}: process-wide gauges moved by deltas, so
 * that a process with several pools shows their sum. */
static void pool_gauges(int d_in_use, int d_idle)
{
    const char *name = "casb_db_pool_connections";
    const char *help = "Database pool connections, by state.";

    if (d_in_use)
        casb_metric_add(casb_metrics_gauge(name, help, "state=\"in_use\""), d_in_use);
    if (d_idle)
        casb_metric_add(casb_metrics_gauge(name, help, "state=\"idle\""), d_idle);
}

int casb_db_pool_new(casb_db_pool **out, const char *url, int size, int connect_timeout_ms,
                     char *err, size_t errlen)
{
    casb_db_pool *pool = NULL;
    int i;

    *out = NULL;
    if (size < 1)
        return casb_fail(err, errlen, CASB_EINVALID, "database pool size must be at least 1");
    pool = calloc(1, sizeof *pool);
    if (!pool)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    pool->all = calloc((size_t)size, sizeof *pool->all);
    pool->idle = calloc((size_t)size, sizeof *pool->idle);
    if (!pool->all || !pool->idle) {
        free(pool->all);
        free(pool->idle);
        free(pool);
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    }
    pthread_mutex_init(&pool->mu, NULL);
    for (i = 0; i < size; i++) {
        int rc = casb_db_open(&pool->all[i], url, connect_timeout_ms, err, errlen);

        if (rc < 0) {
            casb_db_pool_free(pool);
            return rc;
        }
        pool->size++;
        pool->idle[pool->nidle++] = pool->all[i];
        pool_gauges(0, 1);
    }
    *out = pool;
    return 0;
}

/* Removes w from the waiters (it timed out). Called with the lock held. */
static void unlink_waiter(casb_db_pool *pool, pool_waiter *w)
{
    pool_waiter **p = &pool->first, *prev = NULL;

    while (*p && *p != w) {
        prev = *p;
        p = &(*p)->next;
    }
    if (!*p)
        return;
    *p = w->next;
    if (pool->last == w)
        pool->last = prev;
}

/* Waits in line for a connection until deadline. Called with the lock held. */
static casb_db *wait_in_line(casb_db_pool *pool, const struct timespec *deadline)
{
    pool_waiter w = {.db = NULL, .next = NULL};
    pthread_condattr_t cattr;

    /* Deadlines on the monotonic clock: a wall-clock jump must not stretch a wait. */
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&w.cv, &cattr);
    pthread_condattr_destroy(&cattr);
    if (pool->last)
        pool->last->next = &w;
    else
        pool->first = &w;
    pool->last = &w;
    while (!w.db) {
        if (pthread_cond_timedwait(&w.cv, &pool->mu, deadline) == ETIMEDOUT && !w.db) {
            unlink_waiter(pool, &w);
            break;
        }
    }
    pthread_cond_destroy(&w.cv);
    return w.db;
}

casb_db *casb_db_pool_acquire(casb_db_pool *pool, int timeout_ms)
{
    struct timespec deadline;
    casb_db *db = NULL;
    int was_idle = 0;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&pool->mu);
    if (pool->nidle > 0) {
        db = pool->idle[--pool->nidle];
        was_idle = 1;
    } else if (timeout_ms > 0) {
        db = wait_in_line(pool, &deadline); /* handed over in use */
    }
    pthread_mutex_unlock(&pool->mu);
    if (!db)
        return NULL;
    if (was_idle)
        pool_gauges(1, -1);

    /* A connection idle in the pool for a while may have been cut (server restart, idle
     * timeout, a network device's idle timer); find out here. */
    if (casb_monotonic_ms() - db->released_ms > POOL_PING_AFTER_IDLE_MS && !casb_db_ping(db)) {
        char why[256];

        copy_first_line(why, sizeof why, PQerrorMessage(db->conn));
        if (reset_connection(db, why[0] ? why : "ping failed") < 0 || !casb_db_ping(db)) {
            casb_db_pool_release(pool, db);
            return NULL;
        }
    }
    db->sqlstate[0] = '\0';
    return db;
}

void casb_db_pool_release(casb_db_pool *pool, casb_db *db)
{
    pool_waiter *waiter;

    if (!db)
        return;
    /* A handler that returned early must not hand an open transaction to the next one.
     * A broken connection is repaired by its next user's first statement (casb_db_query
     * reconnects outside a transaction), or by the ping of one idle for a while. */
    if (PQstatus(db->conn) == CONNECTION_OK && PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        casb_db_rollback(db);
    db->in_tx = 0;
    db->released_ms = casb_monotonic_ms();
    pthread_mutex_lock(&pool->mu);
    waiter = pool->first;
    if (waiter) {
        pool->first = waiter->next;
        if (!pool->first)
            pool->last = NULL;
        waiter->db = db; /* still in use: the gauges do not move */
        pthread_cond_signal(&waiter->cv);
    } else {
        pool->idle[pool->nidle++] = db;
    }
    pthread_mutex_unlock(&pool->mu);
    if (!waiter)
        pool_gauges(-1, 1);
}

/* Every connection must have been released. */
void casb_db_pool_free(casb_db_pool *pool)
{
    int i;

    if (!pool)
        return;
    pool_gauges(-(pool->size - pool->nidle), -pool->nidle);
    for (i = 0; i < pool->size; i++)
        casb_db_close(pool->all[i]);
    pthread_mutex_destroy(&pool->mu);
    free(pool->all);
    free(pool->idle);
    free(pool);
}
