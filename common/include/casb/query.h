#ifndef CASB_QUERY_H
#define CASB_QUERY_H

#include <stddef.h>

#include "casb/http_server.h"
#include "casb/json.h"

/* Strict query strings for the HTTP APIs. Each route declares the parameters it accepts;
 * a request that names any other one (a typo such as ?integration= must not widen a list
 * to everything), repeats one, or gives one without a value is refused with 400
 * problem+json whose extra member "parameter" names the offender. Values that a route then
 * finds invalid are answered the same way (casb_query_reply_invalid).
 *
 * Paging means the same in every list: limit from 1 to CASB_QUERY_LIMIT_MAX (default
 * CASB_QUERY_LIMIT_DEFAULT) and an opaque cursor handed back from next_cursor. */

#define CASB_QUERY_LIMIT_DEFAULT 50
#define CASB_QUERY_LIMIT_MAX 200
/* Room for the decoded values of one request, all together (a cursor is the longest). */
#define CASB_QUERY_TEXT_BYTES 4096

/* One parameter a route accepts, and where its value goes: *value receives the decoded
 * value (inside the casb_query_text), or NULL when the parameter is absent. A list of them
 * ends with {NULL, NULL}. */
typedef struct {
    const char *name;
    const char **value;
} casb_query_param;

typedef struct {
    char bytes[CASB_QUERY_TEXT_BYTES];
} casb_query_text;

/* Reads query (as sent, percent-encoded; NULL or "" when there is none) against params.
 * Names and values are decoded ('+' is a space, %XX a byte); every name must be declared
 * in params, appear once and carry a non-empty value, and no value may decode to a NUL.
 * Empty segments ("a=1&&b=2") are ignored. text may be NULL when params declares nothing.
 * Returns 0 with every *value set, or CASB_EINVALID with name receiving the offending
 * parameter (printable ASCII, '?' for anything else, truncated) and err a detail. */
int casb_query_parse(const char *query, const casb_query_param *params, casb_query_text *text,
                     char *name, size_t namelen, char *err, size_t errlen);

/* casb_query_parse on the request's query. Returns 0, or 400 after answering it
 * (casb_query_reply_invalid), so a handler can `return` what it gets when non-zero. */
int casb_query_read(casb_http_req *r, const casb_query_param *params, casb_query_text *text);

/* Answers 400 problem+json with detail and {"parameter": name}; returns the status sent. */
int casb_query_reply_invalid(casb_http_req *r, const char *name, const char *detail);

/* Answers 200 with the list shape of every API: {"<noun>": items, "next_cursor": next|null}.
 * Steals items and frees next (may be NULL: the last page). Returns the status sent. */
int casb_query_reply_list(casb_http_req *r, const char *noun, json_t *items, char *next);
/* The same with items already serialised: the comma-separated members of the array (freed
 * here with next). A failed append (out of memory) answers 500. */
int casb_query_reply_list_text(casb_http_req *r, const char *noun, casb_text *items,
                               char *next);

/* Parses a limit value: plain decimal from 1 to CASB_QUERY_LIMIT_MAX; s NULL (absent)
 * gives CASB_QUERY_LIMIT_DEFAULT. Returns 0, or CASB_EINVALID with err the detail of the
 * 400 answer (the same in every list). */
int casb_query_limit(const char *s, long *out, char *err, size_t errlen);

#endif
