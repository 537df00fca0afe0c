#include "im_cursor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/query.h"

/* The separator cannot occur in either part. */
#define CURSOR_SEP '|'
#define CURSOR_AT_LEN 27 /* strlen("2026-11-28T20:25:55.123456Z") */

static int digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    return 1;
}

static int field(const char *s, size_t n)
{
    int v = 0;

    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* A timestamp exactly as PostgreSQL renders it with the TS_US format, checked to be a
 * real calendar instant so that the database never sees an invalid literal. */
static int timestamp_valid(const char *at)
{
    struct tm tm;
    time_t t;

    if (strlen(at) != CURSOR_AT_LEN)
        return 0;
    if (!digits(at, 4) || at[4] != '-' || !digits(at + 5, 2) || at[7] != '-' ||
        !digits(at + 8, 2) || at[10] != 'T' || !digits(at + 11, 2) || at[13] != ':' ||
        !digits(at + 14, 2) || at[16] != ':' || !digits(at + 17, 2) || at[19] != '.' ||
        !digits(at + 20, 6) || at[26] != 'Z')
        return 0;

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = field(at, 4) - 1900;
    tm.tm_mon = field(at + 5, 2) - 1;
    tm.tm_mday = field(at + 8, 2);
    tm.tm_hour = field(at + 11, 2);
    tm.tm_min = field(at + 14, 2);
    tm.tm_sec = field(at + 17, 2);
    if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
        return 0;
    /* timegm normalises 31 February into March; a changed day reveals it. */
    t = timegm(&tm);
    if (t == (time_t)-1)
        return 0;
    return tm.tm_mday == field(at + 8, 2) && tm.tm_mon == field(at + 5, 2) - 1;
}

char *im_cursor_encode(const char *at, const char *id)
{
    char plain[CURSOR_AT_LEN + 1 + 36 + 1];
    int n;

    if (!at || !id || !timestamp_valid(at) || !casb_uuid_valid(id))
        return NULL;
    n = snprintf(plain, sizeof(plain), "%s%c%s", at, CURSOR_SEP, id);
    if (n < 0 || (size_t)n >= sizeof(plain))
        return NULL;
    return casb_base64url_encode(plain, (size_t)n);
}

int im_cursor_decode(const char *token, im_cursor *out)
{
    unsigned char *plain = NULL;
    size_t len = 0;
    int rc = CASB_EINVALID;

    memset(out, 0, sizeof(*out));
    if (!token || !*token || strlen(token) > 128)
        goto out;
    plain = casb_base64url_decode(token, &len);
    if (!plain || len != CURSOR_AT_LEN + 1 + 36 || plain[CURSOR_AT_LEN] != CURSOR_SEP)
        goto out;
    memcpy(out->at, plain, CURSOR_AT_LEN);
    out->at[CURSOR_AT_LEN] = '\0';
    memcpy(out->id, plain + CURSOR_AT_LEN + 1, 36);
    out->id[36] = '\0';
    if (!timestamp_valid(out->at) || !casb_uuid_valid(out->id))
        goto out;
    rc = 0;
out:
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    free(plain);
    return rc;
}

int im_page_parse(im_page *out, const char *limit, const char *cursor, const char **param,
                  char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    *param = NULL;
    if (casb_query_limit(limit, &out->limit, err, errlen) != 0) {
        *param = "limit";
        return CASB_EINVALID;
    }
    if (cursor) {
        if (im_cursor_decode(cursor, &out->cursor) != 0) {
            *param = "cursor";
            return casb_fail(err, errlen, CASB_EINVALID,
                             "cursor: not a next_cursor of this list");
        }
        out->has_cursor = 1;
    }
    return 0;
}

/* "seq|<decimal id>"; the prefix keeps it apart from the timestamp cursors. */
#define SEQ_PREFIX "seq|"
#define SEQ_MAX_DIGITS 18

char *im_cursor_encode_seq(long long id)
{
    char plain[64];
    int n;

    if (id <= 0)
        return NULL;
    n = snprintf(plain, sizeof(plain), SEQ_PREFIX "%lld", id);
    if (n < 0 || (size_t)n >= sizeof(plain))
        return NULL;
    return casb_base64url_encode(plain, (size_t)n);
}

int im_cursor_decode_seq(const char *token, long long *id)
{
    unsigned char *plain = NULL;
    size_t len = 0;
    size_t prefix = strlen(SEQ_PREFIX);
    long long v = 0;
    int rc = CASB_EINVALID;

    *id = 0;
    if (!token || !*token || strlen(token) > 64)
        goto out;
    plain = casb_base64url_decode(token, &len);
    if (!plain || len <= prefix || len > prefix + SEQ_MAX_DIGITS ||
        memcmp(plain, SEQ_PREFIX, prefix) != 0 || !digits((const char *)plain + prefix,
                                                          len - prefix))
        goto out;
    for (size_t i = prefix; i < len; i++)
        v = v * 10 + (plain[i] - '0');
    if (v <= 0)
        goto out;
    *id = v;
    rc = 0;
out:
    free(plain);
    return rc;
}

int im_seq_page_parse(im_seq_page *out, const char *limit, const char *cursor,
                      const char **param, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    *param = NULL;
    if (casb_query_limit(limit, &out->limit, err, errlen) != 0) {
        *param = "limit";
        return CASB_EINVALID;
    }
    if (cursor) {
        if (im_cursor_decode_seq(cursor, &out->before_id) != 0) {
            *param = "cursor";
            return casb_fail(err, errlen, CASB_EINVALID,
                             "cursor: not a next_cursor of this list");
        }
        out->has_cursor = 1;
    }
    return 0;
}
