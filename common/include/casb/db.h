#ifndef CASB_DB_H
#define CASB_DB_H

#include <libpq-fe.h>
#include <stddef.h>

/* PostgreSQL access. Every statement is parameterised (text parameters); there is no API that
 * takes SQL built from input. A casb_db is one connection, used by one thread at
 * a time; HTTP handlers take one from a casb_db_pool. */
typedef struct casb_db casb_db;

/* Connects, retrying with capped exponential backoff (250 ms .. 5 s) until timeout_ms has
 * passed (0: a single attempt). */
int casb_db_open(casb_db **out, const char *url, int timeout_ms, char *err, size_t errlen);
void casb_db_close(casb_db *db);

/* Runs one statement. Returns the result (PGRES_TUPLES_OK or PGRES_COMMAND_OK; the caller
 * PQclear()s it) or NULL with err set. When the connection is found broken outside a
 * transaction, it is reset and the statement retried once, so a PostgreSQL restart costs
 * a failed call at most, never a dead process. params may contain NULLs (SQL NULL). */
PGresult *casb_db_query(casb_db *db, const char *sql, int nparams, const char *const *params,
                        char *err, size_t errlen);
/* casb_db_query for a statement whose best plan does not depend on its parameters' values:
 * a key lookup, or a list statement specialised with casb_sql_specialize (casb/sql.h), so
 * that each filter present is a condition and each absent one a constant. The connection
 * prepares it the first time (up to 64 texts per connection) and runs it with one generic
 * plan after that (plan_cache_mode = force_generic_plan while it runs: left to itself,
 * PostgreSQL keeps planning a LIMIT $n statement for its values, and planning a list
 * query took more of its database time than running it). Other statements on the
 * connection are planned as before: it switches back for them. */
PGresult *casb_db_query_generic(casb_db *db, const char *sql, int nparams,
                                const char *const *params, char *err, size_t errlen);
/* casb_db_query and casb_db_query_generic with the rows in PostgreSQL's binary formats: a
 * uuid is its 16 bytes, a timestamptz 8, a number its bytes in network order, and the
 * server spends nothing writing them out as text (the query benchmark: a page of 200
 * instances, a quarter of its backend CPU). Text types (text, json) read the same in both.
 * Read a binary result's text columns with casb_db_get, the others with the accessors
 * below, which take either format. */
PGresult *casb_db_query_binary(casb_db *db, const char *sql, int nparams,
                               const char *const *params, char *err, size_t errlen);
PGresult *casb_db_query_generic_binary(casb_db *db, const char *sql, int nparams,
                                       const char *const *params, char *err, size_t errlen);
/* casb_db_query for statements whose rows are not needed; also returns the affected row
 * count in *affected when non-NULL. */
int casb_db_exec(casb_db *db, const char *sql, int nparams, const char *const *params,
                 long *affected, char *err, size_t errlen);

int casb_db_begin(casb_db *db, char *err, size_t errlen);
int casb_db_commit(casb_db *db, char *err, size_t errlen);
void casb_db_rollback(casb_db *db); /* best effort; safe outside a transaction */

/* SQLSTATE of the last failed statement ("40001"), or "" if none. */
const char *casb_db_last_sqlstate(const casb_db *db);
/* 1 when the connection is usable right now (a "SELECT 1" round trip). */
int casb_db_ping(casb_db *db);
/* Borrowed, in the default plan mode; for COPY and pipeline mode. */
PGconn *casb_db_conn(casb_db *db);

/* Helpers reading a column by name from row r, in either format: NULL / def / 0 / -1 when
 * the value is SQL NULL (or not of the type asked for). casb_db_get is the value as it came:
 * a text format value, or a text type's in binary. casb_db_get_uuid writes the uuid's text
 * to out and returns it. casb_db_get_time returns 0 with the seconds since 1970 (rounded
 * down) of a timestamptz in binary, or of whole seconds as an integer in either format. */
const char *casb_db_get(const PGresult *res, int row, const char *column);
long long casb_db_get_int(const PGresult *res, int row, const char *column, long long def);
int casb_db_get_bool(const PGresult *res, int row, const char *column); /* true -> 1 */
const char *casb_db_get_uuid(const PGresult *res, int row, const char *column, char out[37]);
int casb_db_get_time(const PGresult *res, int row, const char *column, long long *unix_s);

/* The same for a value already fetched (PQgetvalue, PQgetlength; NULL for SQL NULL) of a
 * column whose format and type were read once (col -1: none): for code that writes many
 * rows out. */
typedef struct {
    int binary;
    Oid type;
} casb_db_format;
casb_db_format casb_db_column_format(const PGresult *res, int col);
int casb_db_decode_int(casb_db_format f, const char *v, int len, long long *out);
int casb_db_decode_bool(casb_db_format f, const char *v, int len);
const char *casb_db_decode_uuid(casb_db_format f, const char *v, int len, char out[37]);
int casb_db_decode_time(casb_db_format f, const char *v, int len, long long *unix_s);

/* A fixed-size pool for multi-threaded servers. acquire blocks up to timeout_ms. */
typedef struct casb_db_pool casb_db_pool;
int casb_db_pool_new(casb_db_pool **out, const char *url, int size, int connect_timeout_ms,
                     char *err, size_t errlen);
casb_db *casb_db_pool_acquire(casb_db_pool *pool, int timeout_ms);
void casb_db_pool_release(casb_db_pool *pool, casb_db *db);
void casb_db_pool_free(casb_db_pool *pool);

#endif
