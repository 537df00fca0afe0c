/* casb_dns_txt against a tiny UDP responder run by the test itself: a TXT record made of two
 * character-strings next to a second record, NODATA, NXDOMAIN, SERVFAIL, REFUSED, and bad
 * resolver addresses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "casb/dns.h"
#include "casb/error.h"

typedef struct {
    int fd;
    volatile int stop;
    int queries;
    pthread_t thread;
    char addr[64];
} responder;

static size_t put_txt(unsigned char *p, const char *const *strings)
{
    size_t n = 0, rdlen = 0;

    /* name: a pointer to the question's name; type TXT, class IN, TTL 60 */
    static const unsigned char head[] = {0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60};
    memcpy(p, head, sizeof(head));
    n = sizeof(head) + 2;
    for (size_t i = 0; strings[i]; i++) {
        size_t len = strlen(strings[i]);
        p[n + rdlen] = (unsigned char)len;
        memcpy(p + n + rdlen + 1, strings[i], len);
        rdlen += len + 1;
    }
    p[sizeof(head)] = (unsigned char)(rdlen >> 8);
    p[sizeof(head) + 1] = (unsigned char)(rdlen & 0xff);
    return n + rdlen;
}

/* Answers by the first label of the question: txt, empty, nx, fail, refused. */
static size_t answer(const unsigned char *q, size_t qlen, unsigned char *out)
{
    static const char *const rec1[] = {"v=spf1 include:_spf.example.com ", "-all", NULL};
    static const char *const rec2[] = {"google-site-verification=abc", NULL};
    size_t qend = 12, n;
    char label[64] = "";
    int rcode = 0, answers = 0;

    while (qend < qlen && q[qend] != 0)
        qend += (size_t)q[qend] + 1;
    qend += 5; /* the root label, QTYPE, QCLASS */
    if (qend > qlen || q[12] >= sizeof(label))
        return 0;
    memcpy(label, q + 13, q[12]);
    label[q[12]] = '\0';
    memcpy(out, q, qend);
    n = qend;
    if (strcmp(label, "txt") == 0) {
        n += put_txt(out + n, rec1);
        n += put_txt(out + n, rec2);
        answers = 2;
    } else if (strcmp(label, "nx") == 0) {
        rcode = 3;
    } else if (strcmp(label, "fail") == 0) {
        rcode = 2;
    } else if (strcmp(label, "refused") == 0) {
        rcode = 5;
    }
    out[2] = 0x84 | (q[2] & 0x01); /* QR, AA, RD copied */
    out[3] = 0x80 | (unsigned char)rcode; /* RA */
    out[6] = 0;
    out[7] = (unsigned char)answers;
    out[8] = out[9] = out[10] = out[11] = 0;
    return n;
}

static void *serve(void *arg)
{
    responder *r = arg;
    unsigned char q[512], out[1024];

    while (!r->stop) {
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        struct sockaddr_in from;
        socklen_t flen = sizeof(from);
        ssize_t len;
        size_t n;

        if (poll(&pfd, 1, 50) <= 0)
            continue;
        len = recvfrom(r->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &flen);
        if (len < 12)
            continue;
        r->queries++;
        n = answer(q, (size_t)len, out);
        if (n > 0)
            sendto(r->fd, out, n, 0, (struct sockaddr *)&from, flen);
    }
    return NULL;
}

static int setup(void **state)
{
    static responder r;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);

    memset(&r, 0, sizeof(r));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r.fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (r.fd < 0 || bind(r.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(r.fd, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    snprintf(r.addr, sizeof(r.addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    if (pthread_create(&r.thread, NULL, serve, &r) != 0)
        return -1;
    *state = &r;
    return 0;
}

static int teardown(void **state)
{
    responder *r = *state;

    r->stop = 1;
    pthread_join(r->thread, NULL);
    close(r->fd);
    return 0;
}

static void test_txt_records(void **state)
{
    responder *r = *state;
    char err[256] = "";
    json_t *out = NULL;

    assert_int_equal(casb_dns_txt(r->addr, "txt.example.test", 2000, &out, err, sizeof(err)),
                     0);
    assert_true(json_is_array(out));
    assert_int_equal(json_array_size(out), 2);
    /* The character-strings of one record are concatenated without a separator. */
    assert_string_equal(json_string_value(json_array_get(out, 0)),
                        "v=spf1 include:_spf.example.com -all");
    assert_string_equal(json_string_value(json_array_get(out, 1)),
                        "google-site-verification=abc");
    json_decref(out);
}

static void test_nodata_and_nxdomain(void **state)
{
    responder *r = *state;
    char err[256] = "";
    json_t *out = NULL;

    assert_int_equal(casb_dns_txt(r->addr, "empty.example.test", 2000, &out, err, sizeof(err)),
                     0);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    out = NULL;
    assert_int_equal(casb_dns_txt(r->addr, "nx.example.test", 2000, &out, err, sizeof(err)), 0);
    assert_true(json_is_array(out));
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
}

static void test_servfail_refused(void **state)
{
    responder *r = *state;
    char err[256] = "";
    json_t *out = NULL;

    assert_int_equal(casb_dns_txt(r->addr, "fail.example.test", 1000, &out, err, sizeof(err)),
                     CASB_EUNAVAILABLE);
    assert_null(out);
    assert_non_null(strstr(err, "fail.example.test"));
    err[0] = '\0';
    assert_int_equal(casb_dns_txt(r->addr, "refused.example.test", 1000, &out, err,
                                  sizeof(err)),
                     CASB_EUNAVAILABLE);
    assert_null(out);
    assert_true(err[0] != '\0');
}

/* Nobody answers: a timeout, bounded by timeout_ms per try. */
static void test_timeout(void **state)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    char addr[64], err[256] = "";
    json_t *out = NULL;

    (void)state;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    assert_int_equal(casb_dns_txt(addr, "txt.example.test", 1, &out, err, sizeof(err)),
                     CASB_EUNAVAILABLE);
    assert_null(out);
    close(fd);
}

static void test_bad_arguments(void **state)
{
    char err[256];
    json_t *out = NULL;

    (void)state;
    assert_int_equal(casb_dns_txt("localhost:53", "example.com", 100, &out, err, sizeof(err)),
                     CASB_EINVALID);
    assert_int_equal(casb_dns_txt("127.0.0.1:99999", "example.com", 100, &out, err,
                                  sizeof(err)),
                     CASB_EINVALID);
    assert_int_equal(casb_dns_txt("127.0.0.1:", "example.com", 100, &out, err, sizeof(err)),
                     CASB_EINVALID);
    assert_int_equal(casb_dns_txt("::1", "example.com", 100, &out, err, sizeof(err)),
                     CASB_EINVALID);
    assert_int_equal(casb_dns_txt("127.0.0.1", "", 100, &out, err, sizeof(err)),
                     CASB_EINVALID);
    assert_null(out);
}

/* The reading half alone, on answers made here: what a hostile or broken resolver could
 * send must be refused, not read past. */
static void test_parse_answer(void **state)
{
    /* A query for txt.example.test: header, question (name, QTYPE TXT, QCLASS IN). */
    static const unsigned char query[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                                          3, 't', 'x', 't', 7, 'e', 'x', 'a', 'm', 'p', 'l',
                                          'e', 4, 't', 'e', 's', 't', 0, 0, 16, 0, 1};
    unsigned char ans[1024];
    char err[256];
    json_t *out = NULL;
    size_t n = answer(query, sizeof(query), ans);

    (void)state;
    assert_true(n > sizeof(query));
    assert_int_equal(casb_dns_txt_parse(ans, n, "txt.example.test", &out, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(out), 2);
    assert_string_equal(json_string_value(json_array_get(out, 0)),
                        "v=spf1 include:_spf.example.com -all");
    json_decref(out);

    /* Cut short inside the last record. */
    assert_int_equal(casb_dns_txt_parse(ans, n - 3, "txt.example.test", &out, err, sizeof(err)),
                     CASB_EUNAVAILABLE);
    assert_null(out);

    /* A character-string longer than its record: the first string's length byte (after the
     * question and the record's 12 bytes of name, type, class, TTL and RDLENGTH). */
    ans[sizeof(query) + 12] = 0xff;
    assert_int_equal(casb_dns_txt_parse(ans, n, "txt.example.test", &out, err, sizeof(err)),
                     CASB_EUNAVAILABLE);
    assert_non_null(strstr(err, "malformed TXT record"));
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_answer),
        cmocka_unit_test(test_txt_records),
        cmocka_unit_test(test_nodata_and_nxdomain),
        cmocka_unit_test(test_servfail_refused),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_bad_arguments),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
