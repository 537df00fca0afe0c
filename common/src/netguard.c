#include "casb/netguard.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "casb/error.h"

#define MAX_NETWORKS 64
#define MAX_ENTRY_CHARS 64 /* the longest IPv6 text form plus "/128" fits with room */
#define MAX_HOST_CHARS 256

/* An address as the guard sees it: IPv6 forms that carry an IPv4 address are unwrapped to
 * AF_INET, so that ::ffff:127.0.0.1 is checked, and matched against networks, as 127.0.0.1. */
typedef struct {
    int family;           /* AF_INET (4 bytes used) or AF_INET6 (16) */
    unsigned char b[16];
} ipaddr;

typedef struct {
    ipaddr net;
    unsigned int prefix;
} network;

struct casb_netguard {
    network nets[MAX_NETWORKS];
    size_t n;
};

typedef struct {
    unsigned char b[16];
    unsigned int prefix;
    const char *cls;
} range;

/* First match wins: metadata addresses sit inside link-local and private ranges. */
static const range v4_ranges[] = {
    {{169, 254, 169, 254}, 32, "metadata"},
    {{0}, 8, "unspecified"},
    {{127}, 8, "loopback"},
    {{10}, 8, "private"},
    {{172, 16}, 12, "private"},
    {{192, 168}, 16, "private"},
    {{169, 254}, 16, "link-local"},
    {{100, 64}, 10, "carrier-grade NAT"},
    {{224}, 4, "multicast"},
    {{240}, 4, "reserved"}, /* includes 255.255.255.255 */
    {{192, 0, 0}, 24, "reserved"},
    {{192, 0, 2}, 24, "reserved"},
    {{198, 18}, 15, "reserved"},
    {{198, 51, 100}, 24, "reserved"},
    {{203, 0, 113}, 24, "reserved"},
};

static const range v6_ranges[] = {
    {{0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54}, 128, "metadata"},
    {{0}, 128, "unspecified"},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback"},
    {{0xfc}, 7, "private"},
    {{0xfe, 0xc0}, 10, "private"}, /* deprecated site-local */
    {{0xfe, 0x80}, 10, "link-local"},
    {{0xff}, 8, "multicast"},
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, "private"}, /* local-use NAT64 (RFC 8215) */
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "reserved"},
};

static size_t addr_len(int family)
{
    return family == AF_INET ? 4 : 16;
}

/* Zeroes the bits of b beyond prefix. */
static void mask_prefix(unsigned char *b, size_t len, unsigned int prefix)
{
    for (size_t i = 0; i < len; i++) {
        unsigned int first_bit = (unsigned int)i * 8;

        if (first_bit >= prefix)
            b[i] = 0;
        else if (prefix - first_bit < 8)
            b[i] &= (unsigned char)(0xff << (8 - (prefix - first_bit)));
    }
}

static int in_prefix(const unsigned char *a, const unsigned char *net, size_t len,
                     unsigned int prefix)
{
    unsigned char masked[16];

    memcpy(masked, a, len);
    mask_prefix(masked, len, prefix);
    return memcmp(masked, net, len) == 0;
}

static int all_zero(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0)
            return 0;
    }
    return 1;
}

/* The IPv4 address an IPv6 address carries, if it is of a form that reaches that IPv4
 * address: mapped (::ffff:0:0/96), compatible (::/96 other than :: and ::1), NAT64
 * (64:ff9b::/96) and 6to4 (2002::/16, the address in bits 16-47). */
static int embedded_v4(const unsigned char *b, unsigned char *v4)
{
    static const unsigned char nat64[12] = {0x00, 0x64, 0xff, 0x9b};

    if (all_zero(b, 10) && b[10] == 0xff && b[11] == 0xff) {
        memcpy(v4, b + 12, 4);
        return 1;
    }
    if (all_zero(b, 12) && !(all_zero(b + 12, 3) && b[15] <= 1)) {
        memcpy(v4, b + 12, 4);
        return 1;
    }
    if (memcmp(b, nat64, sizeof(nat64)) == 0) {
        memcpy(v4, b + 12, 4);
        return 1;
    }
    if (b[0] == 0x20 && b[1] == 0x02) {
        memcpy(v4, b + 2, 4);
        return 1;
    }
    return 0;
}

/* The guard's view of sa: -1 for a family other than IPv4 and IPv6. */
static int to_ipaddr(const struct sockaddr *sa, ipaddr *out)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        out->family = AF_INET;
        memcpy(out->b, &in->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        unsigned char v4[4];

        if (embedded_v4(in6->sin6_addr.s6_addr, v4)) {
            out->family = AF_INET;
            memcpy(out->b, v4, 4);
        } else {
            out->family = AF_INET6;
            memcpy(out->b, in6->sin6_addr.s6_addr, 16);
        }
        return 0;
    }
    return -1;
}

static const char *classify(const ipaddr *a)
{
    const range *ranges = a->family == AF_INET ? v4_ranges : v6_ranges;
    size_t n = a->family == AF_INET ? sizeof(v4_ranges) / sizeof(v4_ranges[0])
                                    : sizeof(v6_ranges) / sizeof(v6_ranges[0]);

    for (size_t i = 0; i < n; i++) {
        if (in_prefix(a->b, ranges[i].b, addr_len(a->family), ranges[i].prefix))
            return ranges[i].cls;
    }
    /* Global unicast IPv6 is 2000::/3; nothing public is assigned outside it. */
    if (a->family == AF_INET6 && (a->b[0] & 0xe0) != 0x20)
        return "reserved";
    return NULL;
}

const char *casb_netguard_address_class(const struct sockaddr *sa)
{
    ipaddr a;

    if (!sa || to_ipaddr(sa, &a) != 0)
        return "reserved";
    return classify(&a);
}

/* ---- allowed networks ---- */

/* Parses "addr" or "addr/prefix" into n; -1 with err naming the entry. */
static int parse_network(const char *entry, network *n, char *err, size_t errlen)
{
    char buf[MAX_ENTRY_CHARS];
    char *slash;
    unsigned int max_prefix;
    ipaddr masked;

    if (strlen(entry) >= sizeof(buf))
        return casb_fail(err, errlen, CASB_EINVALID, "bad network \"%.*s...\": too long",
                         MAX_ENTRY_CHARS, entry);
    memcpy(buf, entry, strlen(entry) + 1);
    slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    memset(n, 0, sizeof(*n));
    if (inet_pton(AF_INET, buf, n->net.b) == 1)
        n->net.family = AF_INET;
    else if (inet_pton(AF_INET6, buf, n->net.b) == 1)
        n->net.family = AF_INET6;
    else
        return casb_fail(err, errlen, CASB_EINVALID, "bad network \"%s\": not an IP address",
                         entry);
    max_prefix = n->net.family == AF_INET ? 32 : 128;
    n->prefix = max_prefix;
    if (slash) {
        const char *p = slash + 1;
        unsigned long v;

        for (const char *q = p; *q; q++) {
            if (!isdigit((unsigned char)*q))
                p = "";
        }
        v = *p && strlen(p) <= 3 ? strtoul(p, NULL, 10) : max_prefix + 1UL;
        if (v > max_prefix)
            return casb_fail(err, errlen, CASB_EINVALID,
                             "bad network \"%s\": prefix length must be 0 to %u", entry,
                             max_prefix);
        n->prefix = (unsigned int)v;
    }
    masked = n->net;
    mask_prefix(masked.b, addr_len(masked.family), n->prefix);
    if (memcmp(masked.b, n->net.b, sizeof(masked.b)) != 0)
        return casb_fail(err, errlen, CASB_EINVALID,
                         "bad network \"%s\": address has bits set beyond the /%u prefix",
                         entry, n->prefix);
    /* Addresses are matched after unwrapping ::ffff:a.b.c.d, so such a network must be too. */
    if (n->net.family == AF_INET6 && n->prefix >= 96 && all_zero(n->net.b, 10) &&
        n->net.b[10] == 0xff && n->net.b[11] == 0xff) {
        memmove(n->net.b, n->net.b + 12, 4);
        memset(n->net.b + 4, 0, 12);
        n->net.family = AF_INET;
        n->prefix -= 96;
    }
    return 0;
}

int casb_netguard_new(casb_netguard **out, const char *allowed_networks_csv, char *err,
                      size_t errlen)
{
    casb_netguard *g = NULL;
    const char *p = allowed_networks_csv ? allowed_networks_csv : "";
    int rc = -1;

    *out = NULL;
    g = calloc(1, sizeof(*g));
    if (!g)
        return casb_fail(err, errlen, CASB_ERROR, "netguard: out of memory");
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *start = p;
        char entry[MAX_ENTRY_CHARS + 1];

        p += len;
        if (*p == ',')
            p++;
        while (len > 0 && isspace((unsigned char)*start)) {
            start++;
            len--;
        }
        while (len > 0 && isspace((unsigned char)start[len - 1]))
            len--;
        if (len == 0)
            continue;
        if (g->n == MAX_NETWORKS) {
            casb_fail(err, errlen, CASB_EINVALID, "too many networks (at most %d)",
                      MAX_NETWORKS);
            goto out;
        }
        /* An over-long entry is cut to MAX_ENTRY_CHARS, which parse_network refuses. */
        if (len > MAX_ENTRY_CHARS)
            len = MAX_ENTRY_CHARS;
        memcpy(entry, start, len);
        entry[len] = '\0';
        if (parse_network(entry, &g->nets[g->n], err, errlen) != 0)
            goto out;
        g->n++;
    }
    *out = g;
    g = NULL;
    rc = 0;
out:
    casb_netguard_free(g);
    return rc;
}

void casb_netguard_free(casb_netguard *g)
{
    free(g);
}

static int in_allowed_network(const casb_netguard *g, const ipaddr *a)
{
    for (size_t i = 0; g && i < g->n; i++) {
        const network *n = &g->nets[i];

        if (n->net.family == a->family &&
            in_prefix(a->b, n->net.b, addr_len(a->family), n->prefix))
            return 1;
    }
    return 0;
}

/* The numeric text of sa as resolved (before unwrapping), for messages and pins. */
static void addr_text(const struct sockaddr *sa, char *buf, size_t buflen)
{
    const void *src = NULL;

    if (sa->sa_family == AF_INET)
        src = &((const struct sockaddr_in *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        src = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (!src || !inet_ntop(sa->sa_family, src, buf, (socklen_t)buflen))
        snprintf(buf, buflen, "%s", "(unknown address)");
}

int casb_netguard_addr_allowed(const casb_netguard *g, const struct sockaddr *sa, char *why,
                               size_t whylen)
{
    ipaddr a;
    const char *cls;
    char text[INET6_ADDRSTRLEN];

    if (!sa || to_ipaddr(sa, &a) != 0) {
        if (why && whylen)
            snprintf(why, whylen, "%s", "not an IPv4 or IPv6 address");
        return 0;
    }
    cls = classify(&a);
    if (!cls || in_allowed_network(g, &a))
        return 1;
    addr_text(sa, text, sizeof(text));
    if (why && whylen)
        snprintf(why, whylen, "%s, %s %s address not in an allowed network", text,
                 strchr("aeiou", cls[0]) ? "an" : "a", cls);
    return 0;
}

/* ---- URLs ---- */

typedef struct {
    char host[MAX_HOST_CHARS]; /* as curl names it: an IPv6 literal keeps its brackets */
    char port[8];
} target;

/* 1 when the URL has the given part (user, password, fragment, zone id). */
static int has_part(CURLU *u, CURLUPart what)
{
    char *v = NULL;
    CURLUcode uc = curl_url_get(u, what, &v, 0);

    curl_free(v);
    return uc == CURLUE_OK;
}

/* Copies a part into buf; -1 when it is missing or does not fit. */
static int get_part(CURLU *u, CURLUPart what, unsigned int flags, char *buf, size_t buflen)
{
    char *v = NULL;
    int rc = -1;

    if (curl_url_get(u, what, &v, flags) == CURLUE_OK && v[0] != '\0' && strlen(v) < buflen) {
        memcpy(buf, v, strlen(v) + 1);
        rc = 0;
    }
    curl_free(v);
    return rc;
}

/* 1 when "scheme://" is followed by an authority: curl reads "http:///x" as "http://x", but
 * such a URL is a mistake rather than a destination. */
static int has_authority(const char *url)
{
    const char *p = url + strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789+-.");

    return strncmp(p, "://", 3) == 0 && p[3] != '\0' && !strchr("/\\?#", p[3]);
}

/* 1 when url has only printable ASCII and no backslash: the bytes that parsers read
 * differently, refused as casb_endpoint_allowed refuses them. */
static int plain_ascii(const char *url)
{
    for (const char *p = url; *p; p++) {
        unsigned char c = (unsigned char)*p;

        if (c <= 0x20 || c >= 0x7f || c == '\\')
            return 0;
    }
    return 1;
}

/* Parses url with curl's own parser, so that the host checked is the host curl connects to
 * (a separate parser could disagree with it on some URL). */
static int parse_target(const char *url, target *t, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char scheme[8];
    CURLUcode uc;
    long port;
    int rc = -1;

    if (!u)
        return casb_fail(err, errlen, CASB_ERROR, "netguard: out of memory");
    if (!plain_ascii(url)) {
        casb_fail(err, errlen, CASB_EINVALID, "bad URL: whitespace, control, backslash or "
                                              "non-ASCII characters");
        goto out;
    }
    uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        casb_fail(err, errlen, CASB_EINVALID, "bad URL: %s", curl_url_strerror(uc));
        goto out;
    }
    if (!has_authority(url)) {
        casb_fail(err, errlen, CASB_EINVALID, "bad URL: no host after \"//\"");
        goto out;
    }
    if (get_part(u, CURLUPART_SCHEME, 0, scheme, sizeof(scheme)) != 0 ||
        (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
        casb_fail(err, errlen, CASB_EINVALID, "bad URL: only http and https are allowed");
        goto out;
    }
    if (has_part(u, CURLUPART_USER) || has_part(u, CURLUPART_PASSWORD)) {
        casb_fail(err, errlen, CASB_EINVALID, "bad URL: user information is not allowed");
        goto out;
    }
    if (has_part(u, CURLUPART_FRAGMENT) || strchr(url, '#')) {
        casb_fail(err, errlen, CASB_EINVALID, "bad URL: a fragment is not allowed");
        goto out;
    }
    if (has_part(u, CURLUPART_ZONEID)) {
        casb_fail(err, errlen, CASB_EINVALID, "bad URL: an IPv6 zone id is not allowed");
        goto out;
    }
    if (get_part(u, CURLUPART_HOST, 0, t->host, sizeof(t->host)) != 0 ||
        strcmp(t->host, "[]") == 0) {
        casb_fail(err, errlen, CASB_EINVALID, "bad URL: missing or over-long host");
        goto out;
    }
    port = get_part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT, t->port, sizeof(t->port)) == 0
               ? strtol(t->port, NULL, 10)
               : 0;
    if (port < 1 || port > 65535) {
        casb_fail(err, errlen, CASB_EINVALID, "bad URL: bad port");
        goto out;
    }
    rc = 0;
out:
    curl_url_cleanup(u);
    return rc;
}

/* "host:port:address", the address bracketed when IPv6, as CURLOPT_RESOLVE takes it. */
static int write_pin(const target *t, const struct sockaddr *sa, char *pin, size_t pinlen,
                     char *err, size_t errlen)
{
    char text[INET6_ADDRSTRLEN];
    int v6 = sa->sa_family == AF_INET6;
    int n;

    addr_text(sa, text, sizeof(text));
    n = snprintf(pin, pinlen, "%s:%s:%s%s%s", t->host, t->port, v6 ? "[" : "", text,
                 v6 ? "]" : "");
    if (n < 0 || (size_t)n >= pinlen)
        return casb_fail(err, errlen, CASB_ERROR, "netguard: pin buffer too small");
    return 0;
}

int casb_netguard_check_url(const casb_netguard *g, const char *url, char *pin, size_t pinlen,
                            char *err, size_t errlen)
{
    target t;
    char name[MAX_HOST_CHARS];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char why[160];
    int gai;
    int rc = -1;

    if (!url || !pin || pinlen == 0)
        return casb_fail(err, errlen, CASB_EINVALID, "netguard: missing argument");
    pin[0] = '\0';
    if (parse_target(url, &t, err, errlen) != 0)
        return -1;
    /* getaddrinfo wants an IPv6 literal without its brackets. */
    if (t.host[0] == '[')
        snprintf(name, sizeof(name), "%.*s", (int)strlen(t.host) - 2, t.host + 1);
    else
        snprintf(name, sizeof(name), "%s", t.host);
    gai = getaddrinfo(name, t.port, &hints, &res);
    if (gai != 0)
        return casb_fail(err, errlen, CASB_ERROR, "cannot resolve host \"%s\": %s", name,
                         gai_strerror(gai));
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (!casb_netguard_addr_allowed(g, ai->ai_addr, why, sizeof(why))) {
            casb_fail(err, errlen, CASB_EINVALID, "destination \"%s\" resolves to %s", name,
                      why);
            rc = 0;
            goto out;
        }
    }
    if (!res) {
        casb_fail(err, errlen, CASB_ERROR, "cannot resolve host \"%s\": no address", name);
        goto out;
    }
    if (write_pin(&t, res->ai_addr, pin, pinlen, err, errlen) != 0)
        goto out;
    rc = 1;
out:
    freeaddrinfo(res);
    return rc;
}
