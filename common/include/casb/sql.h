#ifndef CASB_SQL_H
#define CASB_SQL_H

#include "casb/db.h"
#include "casb/json.h"

/* Statement text specialised for which of its parameters are NULL.
 *
 * The services write a filter the caller may leave out as "($N::type IS NULL OR expr)",
 * one constant statement for every combination. Planned for its values, PostgreSQL drops
 * the groups of NULL parameters; planned once for any values (a prepared statement's
 * generic plan) it cannot, so an absent filter would still be evaluated on every row and a
 * present one could not bound an index scan. casb_sql_specialize rewrites each group for
 * the parameters at hand into an equivalent that plans well for any values:
 *
 *   - $N not NULL: "(expr)", the group's IS NULL arm being false;
 *   - $N and every other parameter of the group NULL: "($N::type IS NULL AND ...)", true,
 *     a one-time condition that still names (and types) each parameter;
 *   - otherwise, or when a parameter of the group has no cast in it: the group as written.
 *
 * So there is one text per combination of present filters, each with a plan of its own,
 * and the parameters keep their numbers. Groups inside a kept group are specialised too.
 * Quoted literals are skipped. Returns 0, or -1 when out of memory (out marked failed). */
int casb_sql_specialize(const char *sql, int nparams, const char *const *params,
                        casb_text *out);

/* casb_db_query_generic of sql specialised for params: the way to run a filter statement
 * with a plan per combination of filters. NULL with err set on failure. */
PGresult *casb_db_query_specialised(casb_db *db, const char *sql, int nparams,
                                    const char *const *params, char *err, size_t errlen);
/* The same with the rows in binary (casb_db_query_generic_binary). */
PGresult *casb_db_query_specialised_binary(casb_db *db, const char *sql, int nparams,
                                           const char *const *params, char *err,
                                           size_t errlen);

#endif
