/* A small authoritative DNS responder over UDP for the Google tenants' "dns" maps: TXT
 * queries (ANY is answered with the TXT records) in RFC 1035 wire format, so that the
 * worker's SPF/DMARC checks run against records a test controls. A name set to "SERVFAIL"
 * answers rcode 2, an unknown name NXDOMAIN (3), other types of a known name NOERROR with
 * no answer. Answers longer than 512 bytes set TC and keep the records that fit. It runs
 * in its own thread and polls so that sim_free can stop it. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "casb/error.h"
#include "casb/log.h"
#include "sim_google.h"

#define DNS_HEADER 12
#define DNS_UDP_MAX 512
#define DNS_TYPE_TXT 16
#define DNS_TYPE_ANY 255
#define DNS_CLASS_IN 1
#define DNS_TTL 60
#define DNS_POLL_MS 100
#define RCODE_FORMERR 1
#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3
#define RCODE_NOTIMP 4

struct sim_dns {
    int fd;
    pthread_t thread;
    sim *s;
};

/* The question's name as dotted text (lower case, no trailing dot); returns the offset
 * after the question's class, or -1 when malformed (compression is not used in questions). */
static int read_question(const unsigned char *q, size_t n, char *name, size_t namelen,
                         int *qtype, int *qclass)
{
    size_t at = DNS_HEADER, out = 0;

    for (;;) {
        if (at >= n)
            return -1;
        unsigned len = q[at++];
        if (len == 0)
            break;
        if (len > 63 || at + len > n || out + len + 2 > namelen)
            return -1;
        if (out > 0)
            name[out++] = '.';
        for (unsigned i = 0; i < len; i++)
            name[out++] = (char)tolower(q[at + i]);
        at += len;
    }
    name[out] = '\0';
    if (at + 4 > n)
        return -1;
    *qtype = q[at] << 8 | q[at + 1];
    *qclass = q[at + 2] << 8 | q[at + 3];
    return (int)(at + 4);
}

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

/* Appends one TXT record (name = a pointer to the question) holding text split into
 * character-strings of at most 255 bytes. 0, or -1 when it does not fit. */
static int put_txt(unsigned char *out, size_t *at, size_t cap, const char *text)
{
    size_t len = strlen(text), chunks = len == 0 ? 1 : (len + 254) / 255;
    size_t rdlen = len + chunks, p;

    if (*at + 12 + rdlen > cap)
        return -1;
    p = *at;
    put16(out + p, 0xC000 | DNS_HEADER);
    put16(out + p + 2, DNS_TYPE_TXT);
    put16(out + p + 4, DNS_CLASS_IN);
    put16(out + p + 6, 0);
    put16(out + p + 8, DNS_TTL);
    put16(out + p + 10, (unsigned)rdlen);
    p += 12;
    for (size_t off = 0, c = 0; c < chunks; c++) {
        size_t piece = len - off > 255 ? 255 : len - off;
        out[p++] = (unsigned char)piece;
        memcpy(out + p, text + off, piece);
        p += piece;
        off += piece;
    }
    *at = p;
    return 0;
}

/* Builds the answer to query q into out; returns its length, or 0 to stay silent. */
static size_t answer(sim *s, const unsigned char *q, size_t n, unsigned char *out)
{
    char name[256];
    int qtype = 0, qclass = 0, rcode = 0, end;
    json_t *records = NULL, *v;
    size_t at, i, count = 0;

    if (n < DNS_HEADER || (q[2] & 0x80))
        return 0; /* too short, or a response */
    memcpy(out, q, 2);
    out[2] = (unsigned char)(0x84 | (q[2] & 0x79)); /* QR, AA, the opcode and RD echoed */
    out[3] = 0x80;                                   /* RA */
    memset(out + 4, 0, 8);
    end = (q[4] << 8 | q[5]) == 1 ? read_question(q, n, name, sizeof name, &qtype, &qclass) : -1;
    if (end < 0 || (q[2] & 0x78) != 0) {
        out[3] |= (q[2] & 0x78) ? RCODE_NOTIMP : RCODE_FORMERR;
        return DNS_HEADER;
    }
    memcpy(out + DNS_HEADER, q + DNS_HEADER, (size_t)end - DNS_HEADER);
    put16(out + 4, 1);
    at = (size_t)end;
    switch (sim_google_dns_lookup(s, name, &records)) {
    case 1:
        rcode = RCODE_SERVFAIL;
        break;
    case -1:
        rcode = RCODE_NXDOMAIN;
        break;
    default:
        if (qclass != DNS_CLASS_IN || (qtype != DNS_TYPE_TXT && qtype != DNS_TYPE_ANY))
            break;
        json_array_foreach(records, i, v) {
            if (put_txt(out, &at, DNS_UDP_MAX, json_string_value(v)) != 0) {
                out[2] |= 0x02; /* TC: the client may retry over TCP (not served) */
                break;
            }
            count++;
        }
    }
    json_decref(records);
    out[3] |= (unsigned char)rcode;
    put16(out + 6, (unsigned)count);
    return at;
}

static void *dns_main(void *arg)
{
    struct sim_dns *d = arg;
    unsigned char q[DNS_UDP_MAX * 2], out[DNS_UDP_MAX];

    while (!atomic_load(&d->s->stopping)) {
        struct pollfd pfd = {.fd = d->fd, .events = POLLIN};
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof from;
        ssize_t n;
        size_t len;

        if (poll(&pfd, 1, DNS_POLL_MS) <= 0)
            continue;
        n = recvfrom(d->fd, q, sizeof q, 0, (struct sockaddr *)&from, &fromlen);
        if (n <= 0)
            continue;
        len = answer(d->s, q, (size_t)n, out);
        if (len > 0)
            (void)sendto(d->fd, out, len, 0, (struct sockaddr *)&from, fromlen);
    }
    return NULL;
}

/* "127.0.0.1:8053" or "[::1]:8053" into a socket address. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
    const char *colon = strrchr(addr, ':');
    char host[64];
    long port;
    char *end = NULL;

    if (!colon || (size_t)(colon - addr) >= sizeof host)
        return -1;
    port = strtol(colon + 1, &end, 10);
    if (!end || *end || port < 1 || port > 65535)
        return -1;
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        host[strlen(host) - 1] = '\0';
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        return inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len = sizeof *a4;
    return inet_pton(AF_INET, host, &a4->sin_addr) == 1 ? 0 : -1;
}

int sim_dns_start(sim *s, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    struct sim_dns *d;

    if (parse_addr(s->dns_addr, &ss, &len) != 0)
        return casb_fail(err, errlen, CASB_EINVALID, "--dns-addr must be IP:PORT, got %s",
                         s->dns_addr);
    d = calloc(1, sizeof *d);
    if (!d)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    d->s = s;
    d->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (d->fd < 0 || bind(d->fd, (struct sockaddr *)&ss, len) != 0) {
        int e = errno;
        if (d->fd >= 0)
            close(d->fd);
        free(d);
        return casb_fail(err, errlen, CASB_ERROR, "cannot bind the DNS responder to %s: %s",
                         s->dns_addr, strerror(e));
    }
    if (pthread_create(&d->thread, NULL, dns_main, d) != 0) {
        close(d->fd);
        free(d);
        return casb_fail(err, errlen, CASB_ERROR, "cannot start the DNS responder's thread");
    }
    s->dns = d;
    casb_log_info("dns responder listening", "addr", s->dns_addr);
    return 0;
}

void sim_dns_stop(sim *s)
{
    if (!s->dns)
        return;
    atomic_store(&s->stopping, 1);
    pthread_join(s->dns->thread, NULL);
    close(s->dns->fd);
    free(s->dns);
    s->dns = NULL;
}
