/* TXT lookups through libresolv's thread-safe interface: a private resolver state per call,
 * pointed at the configured resolver when there is one. */
#include "casb/dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"

/* The largest DNS message (a TCP answer can be this long after a truncated UDP one). */
#define ANSWER_MAX 65535
/* TXT records kept per name; a domain has a handful, more is abuse. */
#define TXT_MAX 64

/* "a.b.c.d[:port]" into sa; 0 or -1. */
static int parse_resolver(const char *resolver, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strchr(resolver, ':');
    size_t hlen = colon ? (size_t)(colon - resolver) : strlen(resolver);
    long port = 53;

    if (hlen == 0 || hlen >= sizeof(host))
        return -1;
    memcpy(host, resolver, hlen);
    host[hlen] = '\0';
    if (colon) {
        char *end;

        port = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
            return -1;
    }
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((unsigned short)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* One TXT RDATA (length-prefixed character-strings) as one string; NULL when malformed. */
static json_t *txt_string(const unsigned char *rd, size_t len)
{
    char *buf = malloc(len + 1);
    size_t i = 0, n = 0;
    json_t *s;

    if (!buf)
        return NULL;
    while (i < len) {
        size_t clen = rd[i++];

        if (clen > len - i) {
            free(buf);
            return NULL;
        }
        for (size_t k = 0; k < clen; k++) {
            unsigned char c = rd[i + k];
            buf[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        i += clen;
    }
    buf[n] = '\0';
    s = json_string(buf);
    free(buf);
    return s;
}

static int parse_answer(const unsigned char *ans, int len, const char *name, json_t *out,
                        char *err, size_t errlen)
{
    ns_msg msg;
    int count;

    if (len < 0 || ns_initparse(ans, len, &msg) != 0)
        return casb_fail(err, errlen, CASB_EUNAVAILABLE, "unparsable DNS answer for %s", name);
    count = ns_msg_count(msg, ns_s_an);
    for (int i = 0; i < count && json_array_size(out) < TXT_MAX; i++) {
        ns_rr rr;
        json_t *s;

        if (ns_parserr(&msg, ns_s_an, i, &rr) != 0)
            return casb_fail(err, errlen, CASB_EUNAVAILABLE, "unparsable DNS answer for %s",
                             name);
        /* CNAMEs on the way are skipped: the TXT records follow them in the answer. */
        if (ns_rr_type(rr) != ns_t_txt || ns_rr_class(rr) != ns_c_in)
            continue;
        s = txt_string(ns_rr_rdata(rr), ns_rr_rdlen(rr));
        if (!s)
            return casb_fail(err, errlen, CASB_EUNAVAILABLE, "malformed TXT record for %s",
                             name);
        json_array_append_new(out, s);
    }
    return 0;
}

int casb_dns_txt_parse(const unsigned char *answer, size_t len, const char *name,
                       json_t **out, char *err, size_t errlen)
{
    json_t *list = json_array();
    int rc;

    *out = NULL;
    if (!list)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    rc = parse_answer(answer, len > ANSWER_MAX ? ANSWER_MAX : (int)len, name, list, err,
                      errlen);
    if (rc != 0) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return 0;
}

int casb_dns_txt(const char *resolver, const char *name, int timeout_ms, json_t **out,
                 char *err, size_t errlen)
{
    struct __res_state st;
    struct sockaddr_in sa;
    unsigned char *ans = NULL;
    json_t *list = NULL;
    int len, rc = CASB_EUNAVAILABLE;

    *out = NULL;
    if (!name || !name[0] || strlen(name) >= NS_MAXDNAME)
        return casb_fail(err, errlen, CASB_EINVALID, "invalid DNS name");
    if (resolver && resolver[0] && parse_resolver(resolver, &sa) != 0)
        return casb_fail(err, errlen, CASB_EINVALID,
                         "DNS resolver \"%s\" is not an IPv4 address with an optional :port",
                         resolver);
    memset(&st, 0, sizeof(st));
    if (res_ninit(&st) != 0)
        return casb_fail(err, errlen, CASB_EUNAVAILABLE, "cannot initialise the DNS resolver");
    if (resolver && resolver[0]) {
        st.nsaddr_list[0] = sa;
        st.nscount = 1;
    }
    st.retrans = timeout_ms > 0 ? (timeout_ms + 999) / 1000 : 5;
    st.retry = 2;
    st.options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);

    ans = malloc(ANSWER_MAX);
    list = json_array();
    if (!ans || !list) {
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    len = res_nquery(&st, name, ns_c_in, ns_t_txt, ans, ANSWER_MAX);
    if (len < 0) {
        switch (st.res_h_errno) {
        case HOST_NOT_FOUND: /* NXDOMAIN */
        case NO_DATA:        /* the name exists without TXT records */
            *out = list;
            list = NULL;
            rc = 0;
            break;
        case TRY_AGAIN:
            rc = casb_fail(err, errlen, CASB_EUNAVAILABLE,
                           "DNS lookup of %s failed: timeout or SERVFAIL", name);
            break;
        default:
            rc = casb_fail(err, errlen, CASB_EUNAVAILABLE,
                           "DNS lookup of %s failed: the resolver refused or could not answer",
                           name);
            break;
        }
        goto out;
    }
    rc = casb_dns_txt_parse(ans, (size_t)len, name, out, err, errlen);
out:
    json_decref(list);
    free(ans);
    res_nclose(&st);
    return rc;
}
