#include "casb/query.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"

/* Longest parameter name worth decoding; anything longer is unknown anyway. */
#define NAME_MAX_BYTES 64

enum {
    DECODE_MALFORMED = -1, /* '%' not followed by two hex digits */
    DECODE_TOO_LONG = -2,  /* out of room */
    DECODE_NUL = -3,       /* %00: would cut a C string short */
};

/* Decodes n bytes of s (form encoding) into out with its NUL. Returns the decoded length or
 * one of the DECODE_* codes. */
static int decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];

        if (c == '%') {
            char hex[3];

            if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) ||
                !isxdigit((unsigned char)s[i + 2]))
                return DECODE_MALFORMED;
            hex[0] = s[i + 1];
            hex[1] = s[i + 2];
            hex[2] = '\0';
            c = (int)strtol(hex, NULL, 16);
            i += 2;
            if (c == 0)
                return DECODE_NUL;
        } else if (c == '+') {
            c = ' ';
        }
        if (o + 1 >= outlen)
            return DECODE_TOO_LONG;
        out[o++] = (char)c;
    }
    if (outlen == 0)
        return DECODE_TOO_LONG;
    out[o] = '\0';
    return (int)o;
}

/* A name fit for a problem detail and a JSON string whatever the client sent. */
static void printable_copy(char *dst, size_t dstlen, const char *src, size_t n)
{
    size_t o = 0;

    if (dstlen == 0)
        return;
    for (size_t i = 0; i < n && o + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)src[i];

        dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[o] = '\0';
}

static const casb_query_param *lookup(const casb_query_param *params, const char *name)
{
    for (const casb_query_param *p = params; p && p->name; p++) {
        if (strcmp(p->name, name) == 0)
            return p;
    }
    return NULL;
}

/* "unknown query parameter (accepted: limit, cursor)" or "... takes no query parameters". */
static int refuse_unknown(const casb_query_param *params, const char *shown, char *err,
                          size_t errlen)
{
    char accepted[512] = "";
    size_t used = 0;

    for (const casb_query_param *p = params; p && p->name; p++) {
        int n = snprintf(accepted + used, sizeof(accepted) - used, "%s%s",
                         used ? ", " : "", p->name);

        if (n < 0 || (size_t)n >= sizeof(accepted) - used)
            break;
        used += (size_t)n;
    }
    if (!used)
        return casb_fail(err, errlen, CASB_EINVALID,
                         "%s: unknown query parameter (this resource takes none)", shown);
    return casb_fail(err, errlen, CASB_EINVALID,
                     "%s: unknown query parameter (accepted: %s)", shown, accepted);
}

int casb_query_parse(const char *query, const casb_query_param *params, casb_query_text *text,
                     char *name, size_t namelen, char *err, size_t errlen)
{
    size_t used = 0;
    const char *p = query;

    if (namelen)
        name[0] = '\0';
    for (const casb_query_param *q = params; q && q->name; q++)
        *q->value = NULL;
    while (p && *p) {
        const char *end = strchr(p, '&');
        size_t seglen = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', seglen);
        size_t rawlen = eq ? (size_t)(eq - p) : seglen;
        char decoded[NAME_MAX_BYTES + 1];
        char shown[NAME_MAX_BYTES + 1];
        const casb_query_param *param = NULL;
        int n;

        if (seglen == 0) {
            p = end ? end + 1 : p + seglen;
            continue;
        }
        n = decode(p, rawlen, decoded, sizeof(decoded));
        if (n < 0)
            printable_copy(shown, sizeof(shown), p, rawlen);
        else
            printable_copy(shown, sizeof(shown), decoded, (size_t)n);
        if (namelen)
            snprintf(name, namelen, "%s", shown);
        if (n == DECODE_TOO_LONG)
            return refuse_unknown(params, shown, err, errlen);
        if (n < 0)
            return casb_fail(err, errlen, CASB_EINVALID,
                             "%s: malformed percent-encoding in a parameter name", shown);
        param = lookup(params, decoded);
        if (!param)
            return refuse_unknown(params, shown, err, errlen);
        if (*param->value)
            return casb_fail(err, errlen, CASB_EINVALID, "%s: given more than once", shown);
        if (!eq || rawlen + 1 == seglen)
            return casb_fail(err, errlen, CASB_EINVALID, "%s: needs a value", shown);
        if (!text)
            return casb_fail(err, errlen, CASB_EINVALID, "%s: value too long", shown);
        n = decode(eq + 1, seglen - rawlen - 1, text->bytes + used, sizeof(text->bytes) - used);
        if (n == DECODE_TOO_LONG)
            return casb_fail(err, errlen, CASB_EINVALID, "%s: value too long", shown);
        if (n == DECODE_NUL)
            return casb_fail(err, errlen, CASB_EINVALID, "%s: value contains a NUL byte", shown);
        if (n < 0)
            return casb_fail(err, errlen, CASB_EINVALID,
                             "%s: malformed percent-encoding in the value", shown);
        *param->value = text->bytes + used;
        used += (size_t)n + 1;
        p = end ? end + 1 : p + seglen;
    }
    if (namelen)
        name[0] = '\0';
    return 0;
}

int casb_query_reply_invalid(casb_http_req *r, const char *name, const char *detail)
{
    return casb_http_reply_problem(r, 400, detail, json_pack("{s:s}", "parameter", name));
}

int casb_query_read(casb_http_req *r, const casb_query_param *params, casb_query_text *text)
{
    char name[NAME_MAX_BYTES + 1];
    char err[768];

    if (casb_query_parse(casb_http_query_string(r), params, text, name, sizeof(name), err,
                         sizeof(err)) == 0)
        return 0;
    casb_query_reply_invalid(r, name, err);
    return 400;
}

int casb_query_limit(const char *s, long *out, char *err, size_t errlen)
{
    size_t n;
    long v = 0;

    *out = CASB_QUERY_LIMIT_DEFAULT;
    if (!s)
        return 0;
    /* Plain decimal only: no sign, no spaces, at most 3 digits (the maximum is 200). */
    n = strlen(s);
    if (n == 0 || n > 3 || strspn(s, "0123456789") != n)
        goto invalid;
    v = strtol(s, NULL, 10);
    if (v < 1 || v > CASB_QUERY_LIMIT_MAX)
        goto invalid;
    *out = v;
    return 0;
invalid:
    return casb_fail(err, errlen, CASB_EINVALID, "limit: expected an integer from 1 to %d",
                     CASB_QUERY_LIMIT_MAX);
}

int casb_query_reply_list(casb_http_req *r, const char *noun, json_t *items, char *next)
{
    json_t *body = json_pack("{s:o, s:s?}", noun, items, "next_cursor", next);

    free(next);
    return casb_http_reply_json(r, 200, body);
}

int casb_query_reply_list_text(casb_http_req *r, const char *noun, casb_text *items,
                               char *next)
{
    casb_text body = {0};
    json_t *name = json_string(noun), *cursor = next ? json_string(next) : json_null();
    int status;

    if (items->failed || casb_text_append(&body, "{", 1) != 0 ||
        casb_text_append_json(&body, name) != 0 || casb_text_append(&body, ":[", 2) != 0 ||
        (items->len && casb_text_append(&body, items->data, items->len) != 0) ||
        casb_text_append_str(&body, "],\"next_cursor\":") != 0 ||
        casb_text_append_json(&body, cursor) != 0 || casb_text_append(&body, "}", 1) != 0)
        status = casb_http_reply_problem(r, 500, "could not serialise the response", NULL);
    else
        status = casb_http_reply_text(r, 200, "application/json", body.data, body.len);
    json_decref(name);
    json_decref(cursor);
    casb_text_free(&body);
    casb_text_free(items);
    free(next);
    return status;
}
