#ifndef IM_CURSOR_H
#define IM_CURSOR_H

#include <stddef.h>

/* Keyset pagination. A cursor is an opaque token (base64url, no padding) of the last row's
 * sort key: its timestamp with microseconds, exactly as IM_SQL_TS_US renders it
 * ("2026-11-28T20:25:55.123456Z"), and its id. Clients only hand it back. */

#define IM_LIMIT_DEFAULT 50
#define IM_LIMIT_MAX 200

typedef struct {
    char at[32]; /* "YYYY-MM-DDTHH:MM:SS.ffffffZ" */
    char id[37]; /* canonical UUID */
} im_cursor;

/* Returns the token (malloc'ed, caller frees) or NULL when at or id is malformed. */
char *im_cursor_encode(const char *at, const char *id);

/* Decodes and validates a token. Returns 0, or CASB_EINVALID for anything that is not a
 * token this service issued (wrong encoding, bad timestamp, bad id). */
int im_cursor_decode(const char *token, im_cursor *out);

/* Parses the "limit" query parameter (decimal, 1..IM_LIMIT_MAX). s NULL means absent and
 * gives IM_LIMIT_DEFAULT. Returns 0 or CASB_EINVALID. */
int im_limit_parse(const char *s, long *out);

#endif
