#ifndef IM_CURSOR_H
#define IM_CURSOR_H

#include <stddef.h>

/* Keyset pagination. A cursor is an opaque token (base64url, no padding) of the last row's
 * sort key: its timestamp with microseconds, exactly as the TS_US format of
 * im_integrations.c renders it ("2026-11-28T20:25:55.123456Z"), and its id. Clients only
 * hand it back. */

typedef struct {
    char at[32]; /* "YYYY-MM-DDTHH:MM:SS.ffffffZ" */
    char id[37]; /* canonical UUID */
} im_cursor;

/* Returns the token (malloc'ed, caller frees) or NULL when at or id is malformed. */
char *im_cursor_encode(const char *at, const char *id);

/* Decodes and validates a token. Returns 0, or CASB_EINVALID for anything that is not a
 * token this service issued (wrong encoding, bad timestamp, bad id). */
int im_cursor_decode(const char *token, im_cursor *out);

/* The paging of a list request: how many rows, and after which one. */
typedef struct {
    long limit;     /* 1..CASB_QUERY_LIMIT_MAX */
    int has_cursor; /* 0: from the start */
    im_cursor cursor;
} im_page;

/* Reads the limit and cursor query values (NULL when absent; limit defaults to
 * CASB_QUERY_LIMIT_DEFAULT). Returns 0, or CASB_EINVALID with *param naming the refused
 * parameter ("limit" or "cursor") and err a detail for the 400 answer. */
int im_page_parse(im_page *out, const char *limit, const char *cursor, const char **param,
                  char *err, size_t errlen);

/* Lists ordered by a bigserial id (the audit log, newest first) page on that id alone: a
 * token of its own kind, which a timestamp cursor is not mistaken for. */
typedef struct {
    long limit;
    int has_cursor;
    long long before_id; /* rows with a smaller id come next */
} im_seq_page;

/* Returns the token (malloc'ed) for the last row's id (> 0), or NULL. */
char *im_cursor_encode_seq(long long id);

/* 0 with *id, or CASB_EINVALID for anything that is not such a token. */
int im_cursor_decode_seq(const char *token, long long *id);

/* im_page_parse for these lists. */
int im_seq_page_parse(im_seq_page *out, const char *limit, const char *cursor,
                      const char **param, char *err, size_t errlen);

#endif
