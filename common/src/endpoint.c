#include "casb/endpoint.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "casb/error.h"

/* An origin as compared by the guard: lower-case scheme and host, explicit port. */
typedef struct {
    char scheme[6]; /* "http" or "https" */
    char host[256];
    long port;
} origin;

/* Parses the scheme, host and port of an http(s) URL. Anything an HTTP library could read
 * differently from us is refused rather than interpreted: userinfo ("a@b"), fragments,
 * backslashes, percent-escapes in the host, whitespace, control and non-ASCII bytes. */
static int parse_origin(const char *url, origin *o, char *err, size_t errlen)
{
    const char *p, *auth_end, *host_start, *host_end, *port_start = NULL;
    size_t host_len;

    if (!url || !url[0])
        return casb_fail(err, errlen, -1, "empty URL");
    for (p = url; *p; p++) {
        unsigned char c = (unsigned char)*p;

        if (c <= 0x20 || c >= 0x7f || c == '\\')
            return casb_fail(err, errlen, -1, "URL contains whitespace, control, backslash "
                                              "or non-ASCII characters");
    }
    if (strchr(url, '#'))
        return casb_fail(err, errlen, -1, "URL has a fragment");
    if (strncasecmp(url, "https://", 8) == 0) {
        strcpy(o->scheme, "https");
        o->port = 443;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        strcpy(o->scheme, "http");
        o->port = 80;
        p = url + 7;
    } else {
        return casb_fail(err, errlen, -1, "URL scheme is not http or https");
    }

    auth_end = p + strcspn(p, "/?");
    if (memchr(p, '@', (size_t)(auth_end - p)))
        return casb_fail(err, errlen, -1, "URL has userinfo");
    host_start = p;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(auth_end - p));

        if (!close)
            return casb_fail(err, errlen, -1, "URL has an unterminated IPv6 literal");
        host_end = close + 1;
        for (const char *q = p + 1; q < close; q++)
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
                return casb_fail(err, errlen, -1, "URL has an invalid IPv6 literal");
    } else {
        host_end = p;
        while (host_end < auth_end && *host_end != ':')
            host_end++;
        for (const char *q = host_start; q < host_end; q++)
            if (!isalnum((unsigned char)*q) && *q != '-' && *q != '.' && *q != '_')
                return casb_fail(err, errlen, -1, "URL host has invalid characters");
    }
    if (host_end < auth_end) {
        if (*host_end != ':')
            return casb_fail(err, errlen, -1, "URL has garbage after the host");
        port_start = host_end + 1;
    }
    host_len = (size_t)(host_end - host_start);
    /* One trailing dot names the same host in DNS ("api.github.com."). */
    if (host_len > 1 && host_start[host_len - 1] == '.')
        host_len--;
    if (host_len == 0 || host_len >= sizeof(o->host) ||
        (host_len == 2 && host_start[0] == '['))
        return casb_fail(err, errlen, -1, "URL has no host");
    for (size_t i = 0; i < host_len; i++)
        o->host[i] = (char)tolower((unsigned char)host_start[i]);
    o->host[host_len] = '\0';

    if (port_start) {
        long port = 0;

        if (port_start == auth_end)
            return casb_fail(err, errlen, -1, "URL has an empty port");
        for (const char *q = port_start; q < auth_end; q++) {
            if (!isdigit((unsigned char)*q))
                return casb_fail(err, errlen, -1, "URL port is not a number");
            port = port * 10 + (*q - '0');
            if (port > 65535)
                return casb_fail(err, errlen, -1, "URL port out of range");
        }
        if (port < 1)
            return casb_fail(err, errlen, -1, "URL port out of range");
        o->port = port;
    }
    return 0;
}

static int same_origin(const origin *a, const origin *b)
{
    return strcmp(a->scheme, b->scheme) == 0 && strcmp(a->host, b->host) == 0 &&
           a->port == b->port;
}

int casb_endpoint_allowed(const char *url, const char *default_url, const char *allowlist_csv,
                          char *err, size_t errlen)
{
    origin want, other;
    char why[160];

    if (parse_origin(url, &want, why, sizeof(why)) != 0) {
        casb_fail(err, errlen, 0, "endpoint refused: %s", why);
        return 0;
    }
    if (default_url && parse_origin(default_url, &other, NULL, 0) == 0 &&
        same_origin(&want, &other))
        return 1;
    if (allowlist_csv) {
        const char *p = allowlist_csv;

        while (*p) {
            size_t n = strcspn(p, ",");
            char entry[512];

            /* Entries are trimmed; empty or unparsable ones allow nothing. */
            while (n > 0 && isspace((unsigned char)*p)) {
                p++;
                n--;
            }
            while (n > 0 && isspace((unsigned char)p[n - 1]))
                n--;
            if (n > 0 && n < sizeof(entry)) {
                memcpy(entry, p, n);
                entry[n] = '\0';
                if (parse_origin(entry, &other, NULL, 0) == 0 && same_origin(&want, &other))
                    return 1;
            }
            p += n;
            while (*p && *p != ',')
                p++;
            if (*p == ',')
                p++;
        }
    }
    casb_fail(err, errlen, 0,
              "endpoint %s://%s:%ld is not the provider's default and not listed in "
              "CASB_ALLOWED_ENDPOINTS",
              want.scheme, want.host, want.port);
    return 0;
}
