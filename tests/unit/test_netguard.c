/* The egress guard: address classes, allowed networks, URL checks and pins, and the HTTP
 * client's pin against two real in-process servers on the same port of 127.0.0.1 and
 * 127.0.0.2 (so that a request shows which address it reached). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "casb/http_client.h"
#include "casb/http_server.h"
#include "casb/log.h"
#include "casb/netguard.h"

#define PIN_PORT "18197"

/* A sockaddr for a numeric address, IPv4 or IPv6. */
static struct sockaddr_storage sockaddr_of(const char *text)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        return ss;
    }
    assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
    in6->sin6_family = AF_INET6;
    return ss;
}

static const char *class_of(const char *text)
{
    struct sockaddr_storage ss = sockaddr_of(text);

    return casb_netguard_address_class((const struct sockaddr *)&ss);
}

static void assert_class(const char *text, const char *want)
{
    const char *got = class_of(text);

    if (!want && got)
        fail_msg("%s: want public, got %s", text, got);
    if (want && (!got || strcmp(got, want) != 0))
        fail_msg("%s: want %s, got %s", text, want, got ? got : "public");
}

static void test_classes(void **state)
{
    static const struct {
        const char *addr;
        const char *cls;
    } cases[] = {
        {"8.8.8.8", NULL},
        {"1.1.1.1", NULL},
        {"2606:4700:4700::1111", NULL},
        {"127.0.0.1", "loopback"},
        {"127.255.255.254", "loopback"},
        {"::1", "loopback"},
        {"10.0.0.1", "private"},
        {"172.16.0.1", "private"},
        {"172.31.255.255", "private"},
        {"172.32.0.1", NULL},
        {"192.168.1.1", "private"},
        {"fc00::1", "private"},
        {"fd12:3456::1", "private"},
        {"169.254.1.1", "link-local"},
        {"fe80::1", "link-local"},
        {"febf::1", "link-local"},
        {"169.254.169.254", "metadata"},
        {"fd00:ec2::254", "metadata"},
        {"100.64.0.1", "carrier-grade NAT"},
        {"100.127.255.255", "carrier-grade NAT"},
        {"100.128.0.1", NULL},
        {"0.0.0.0", "unspecified"},
        {"0.1.2.3", "unspecified"},
        {"::", "unspecified"},
        {"224.0.0.1", "multicast"},
        {"239.255.255.250", "multicast"},
        {"ff02::1", "multicast"},
        {"240.0.0.1", "reserved"},
        {"255.255.255.255", "reserved"},
        {"192.0.0.8", "reserved"},
        {"192.0.2.1", "reserved"},
        {"198.18.0.1", "reserved"},
        {"198.19.255.255", "reserved"},
        {"198.51.100.7", "reserved"},
        {"203.0.113.9", "reserved"},
        {"2001:db8::1", "reserved"},
        {"100::1", "reserved"}, /* outside 2000::/3 */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_class(cases[i].addr, cases[i].cls);
}

static void test_embedded_ipv4(void **state)
{
    assert_class("::ffff:127.0.0.1", "loopback");
    assert_class("::ffff:10.1.2.3", "private");
    assert_class("::ffff:169.254.169.254", "metadata");
    assert_class("::ffff:8.8.8.8", NULL);
    assert_class("::127.0.0.1", "loopback");  /* IPv4-compatible */
    assert_class("::10.0.0.1", "private");
    assert_class("64:ff9b::7f00:1", "loopback"); /* NAT64 of 127.0.0.1 */
    assert_class("64:ff9b::808:808", NULL);
    assert_class("2002:a00:1::1", "private");    /* 6to4 of 10.0.0.1 */
    assert_class("2002:808:808::1", NULL);
}

static casb_netguard *guard(const char *csv)
{
    casb_netguard *g = NULL;
    char err[256] = "";

    if (casb_netguard_new(&g, csv, err, sizeof(err)) != 0)
        fail_msg("casb_netguard_new(\"%s\"): %s", csv, err);
    return g;
}

static int allowed(const casb_netguard *g, const char *text, char *why, size_t whylen)
{
    struct sockaddr_storage ss = sockaddr_of(text);

    return casb_netguard_addr_allowed(g, (const struct sockaddr *)&ss, why, whylen);
}

static void test_allowed_networks(void **state)
{
    casb_netguard *g = guard(" 127.0.0.0/8 , fd00::/8,,10.1.2.3, ::ffff:192.168.0.0/112 ");
    char why[160] = "";

    assert_int_equal(allowed(g, "127.0.0.5", why, sizeof(why)), 1);
    assert_int_equal(allowed(g, "::ffff:127.0.0.1", why, sizeof(why)), 1);
    assert_int_equal(allowed(g, "fd00::1", why, sizeof(why)), 1);
    assert_int_equal(allowed(g, "fd00:ec2::254", why, sizeof(why)), 1);
    assert_int_equal(allowed(g, "10.1.2.3", why, sizeof(why)), 1);
    assert_int_equal(allowed(g, "192.168.7.7", why, sizeof(why)), 1);
    assert_int_equal(allowed(g, "8.8.8.8", why, sizeof(why)), 1);
    assert_int_equal(allowed(g, "10.1.2.4", why, sizeof(why)), 0);
    assert_string_equal(why, "10.1.2.4, a private address not in an allowed network");
    assert_int_equal(allowed(g, "::1", why, sizeof(why)), 0);
    assert_string_equal(why, "::1, a loopback address not in an allowed network");
    assert_int_equal(allowed(g, "fe80::1", why, sizeof(why)), 0);
    assert_int_equal(allowed(g, "0.0.0.0", why, sizeof(why)), 0);
    assert_string_equal(why, "0.0.0.0, an unspecified address not in an allowed network");
    casb_netguard_free(g);

    g = guard("0.0.0.0/0");
    assert_int_equal(allowed(g, "10.9.9.9", why, sizeof(why)), 1);
    assert_int_equal(allowed(g, "169.254.169.254", why, sizeof(why)), 1);
    assert_int_equal(allowed(g, "::ffff:127.0.0.1", why, sizeof(why)), 1);
    assert_int_equal(allowed(g, "::1", why, sizeof(why)), 0);
    casb_netguard_free(g);

    g = guard("::/0");
    assert_int_equal(allowed(g, "::1", why, sizeof(why)), 1);
    assert_int_equal(allowed(g, "127.0.0.1", why, sizeof(why)), 0);
    casb_netguard_free(g);

    g = guard("192.168.1.1/32,::1/128");
    assert_int_equal(allowed(g, "192.168.1.1", why, sizeof(why)), 1);
    assert_int_equal(allowed(g, "192.168.1.2", why, sizeof(why)), 0);
    assert_int_equal(allowed(g, "::1", why, sizeof(why)), 1);
    casb_netguard_free(g);

    /* No networks: only public addresses; a NULL guard is the same. */
    g = guard(NULL);
    assert_int_equal(allowed(g, "127.0.0.1", why, sizeof(why)), 0);
    assert_int_equal(allowed(g, "1.1.1.1", why, sizeof(why)), 1);
    casb_netguard_free(g);
    g = guard("");
    assert_int_equal(allowed(g, "10.0.0.1", why, sizeof(why)), 0);
    casb_netguard_free(g);
    assert_int_equal(allowed(NULL, "10.0.0.1", why, sizeof(why)), 0);
}

static void test_bad_networks(void **state)
{
    static const char *bad[] = {
        "10.0.0.0/33", "::1/129", "300.1.1.1", "10.0.0.1/8", "fd00::1/8", "example.com",
        "10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/-1", "10.0.0.0/ 8", "10.0.0.0/0008", "10.1/16",
        "0123456789012345678901234567890123456789012345678901234567890123456789",
    };
    char csv[64 * 16];
    char err[256];
    casb_netguard *g = NULL;
    size_t n = 0;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (casb_netguard_new(&g, bad[i], err, sizeof(err)) != -1)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_null(g);
        assert_non_null(strstr(err, "bad network \""));
    }
    assert_int_equal(casb_netguard_new(&g, "10.0.0.0/8,10.0.0.1/8", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "\"10.0.0.1/8\""));

    /* 64 entries are fine, 65 are not. */
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(csv + n, sizeof(csv) - n, "%s10.0.%d.0/24", i ? "," : "", i);
    g = guard(csv);
    casb_netguard_free(g);
    snprintf(csv + n, sizeof(csv) - n, ",10.1.0.0/24");
    assert_int_equal(casb_netguard_new(&g, csv, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "at most 64"));
}

/* check_url's return code; err and pin for inspection. */
static int check(const casb_netguard *g, const char *url, char *pin, char *err)
{
    return casb_netguard_check_url(g, url, pin, 300, err, 300);
}

static void test_check_url_literals(void **state)
{
    casb_netguard *none = guard(NULL);
    casb_netguard *lo = guard("127.0.0.0/8,::1/128");
    char pin[300];
    char err[300];

    assert_int_equal(check(none, "http://127.0.0.1/hook", pin, err), 0);
    assert_string_equal(err, "destination \"127.0.0.1\" resolves to 127.0.0.1, a loopback "
                             "address not in an allowed network");
    assert_string_equal(pin, "");
    assert_int_equal(check(lo, "http://127.0.0.1/hook", pin, err), 1);
    assert_string_equal(pin, "127.0.0.1:80:127.0.0.1");
    assert_int_equal(check(lo, "https://127.0.0.1/hook?a=b", pin, err), 1);
    assert_string_equal(pin, "127.0.0.1:443:127.0.0.1");
    assert_int_equal(check(lo, "http://[::1]:8080/x", pin, err), 1);
    assert_string_equal(pin, "[::1]:8080:[::1]");
    assert_int_equal(check(none, "http://[::1]:8080/x", pin, err), 0);
    assert_non_null(strstr(err, "loopback"));
    assert_int_equal(check(NULL, "https://8.8.8.8:8443/", pin, err), 1);
    assert_string_equal(pin, "8.8.8.8:8443:8.8.8.8");

    assert_int_equal(check(lo, "http://169.254.169.254/latest/meta-data/", pin, err), 0);
    assert_non_null(strstr(err, "a metadata address"));
    assert_int_equal(check(none, "http://[::ffff:127.0.0.1]/", pin, err), 0);
    assert_non_null(strstr(err, "loopback"));
    assert_int_equal(check(none, "http://10.0.0.1:9000/", pin, err), 0);
    assert_non_null(strstr(err, "private"));
    /* Other spellings of 127.0.0.1 end up as the same address. */
    assert_int_equal(check(none, "http://2130706433/", pin, err), 0);
    assert_non_null(strstr(err, "loopback"));
    assert_int_equal(check(none, "http://0x7f.1/", pin, err), 0);
    assert_non_null(strstr(err, "loopback"));

    /* A too-small pin buffer is an error, not a truncated pin. */
    assert_int_equal(casb_netguard_check_url(lo, "http://127.0.0.1/", pin, 10, err, 300), -1);
    casb_netguard_free(none);
    casb_netguard_free(lo);
}

static void test_check_url_refusals(void **state)
{
    static const char *bad[] = {
        "ftp://8.8.8.8/x",
        "file:///etc/passwd",
        "gopher://8.8.8.8/",
        "http://user@8.8.8.8/",
        "http://user:secret@8.8.8.8/",
        "http://@8.8.8.8/",
        "http://8.8.8.8/#frag",
        "http://8.8.8.8\\@127.0.0.1/",
        "http://8.8.8.8 /",
        "http://8.8.8.8/\xc3\xa9",
        "http:///nohost",
        "http:/8.8.8.8/",
        "http://?x",
        "http://:80/",
        "http://8.8.8.8:99999/",
        "http://8.8.8.8:0/",
        "http://8.8.8.8:port/",
        "http://[::1/",
        "http://[fe80::1%25eth0]/",
        "8.8.8.8/hook",
        "",
    };
    char pin[300];
    char err[300];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (check(NULL, bad[i], pin, err) != -1)
            fail_msg("\"%s\" not refused as a bad URL", bad[i]);
        assert_string_equal(pin, "");
        assert_non_null(strstr(err, "bad URL"));
    }
}

static void test_check_url_resolves(void **state)
{
    char pin[300];
    char err[300];

    assert_int_equal(check(NULL, "http://localhost:8080/hook", pin, err), 0);
    assert_non_null(strstr(err, "destination \"localhost\" resolves to "));
    assert_non_null(strstr(err, "a loopback address"));
    assert_int_equal(check(NULL, "https://no-such-host.invalid/", pin, err), -1);
    assert_non_null(strstr(err, "cannot resolve host \"no-such-host.invalid\": "));
}

/* ---- casb_http_client_pin against two servers on one port ---- */

static casb_http_server *server_a;
static casb_http_server *server_b;

static int h_who(casb_http_req *r)
{
    return casb_http_reply_json(r, 200, json_pack("{s:s}", "who", (char *)casb_http_app(r)));
}

static casb_http_server *start_server(const char *addr, const char *name)
{
    casb_http_server_opts opts = {.addr = addr, .num_threads = 2, .app = (void *)name};
    casb_http_server *s = NULL;
    char err[256];

    if (casb_http_server_new(&s, &opts, err, sizeof(err)) != 0 ||
        casb_http_route(s, "GET", "/who", h_who, CASB_ROUTE_PUBLIC) != 0 ||
        casb_http_server_start(s, err, sizeof(err)) != 0) {
        fprintf(stderr, "server %s: %s\n", addr, err);
        casb_http_server_free(s);
        return NULL;
    }
    return s;
}

static int setup_servers(void **state)
{
    casb_log_init("test_netguard", CASB_LOG_ERROR);
    server_a = start_server("127.0.0.1:" PIN_PORT, "a");
    server_b = start_server("127.0.0.2:" PIN_PORT, "b");
    return server_a && server_b ? 0 : -1;
}

static int teardown_servers(void **state)
{
    casb_http_server_free(server_a);
    casb_http_server_free(server_b);
    return 0;
}

/* GET http://pinned.invalid:<port>/who: "a" or "b" for the server that answered, or "" when
 * the request failed. */
static const char *who(casb_http_client *c, char *buf, size_t buflen)
{
    casb_http_response *r = NULL;
    char err[256];
    json_t *body;
    const char *name;

    buf[0] = '\0';
    if (casb_http_request(c, &r, "GET", "http://pinned.invalid:" PIN_PORT "/who", NULL, NULL, 0,
                          err, sizeof(err)) != 0)
        return buf;
    assert_int_equal(r->status, 200);
    body = json_loads(r->body, 0, NULL);
    name = json_string_value(json_object_get(body, "who"));
    snprintf(buf, buflen, "%s", name ? name : "?");
    json_decref(body);
    casb_http_response_free(r);
    return buf;
}

static void test_client_pin(void **state)
{
    casb_http_client_opts opts = {.connect_timeout_ms = 2000, .timeout_ms = 5000};
    casb_http_client *c = NULL;
    char err[256];
    char buf[16];

    assert_int_equal(casb_http_client_new(&c, &opts, err, sizeof(err)), 0);
    assert_string_equal(who(c, buf, sizeof(buf)), "");

    assert_int_equal(casb_http_client_pin(c, "pinned.invalid:" PIN_PORT ":127.0.0.1"), 0);
    assert_string_equal(who(c, buf, sizeof(buf)), "a");
    assert_string_equal(who(c, buf, sizeof(buf)), "a");
    /* The keep-alive connection to 127.0.0.1 must not carry the new pin's requests, neither
     * the first nor later ones. */
    assert_int_equal(casb_http_client_pin(c, "pinned.invalid:" PIN_PORT ":127.0.0.2"), 0);
    assert_string_equal(who(c, buf, sizeof(buf)), "b");
    assert_string_equal(who(c, buf, sizeof(buf)), "b");
    assert_int_equal(casb_http_client_pin(c, "pinned.invalid:" PIN_PORT ":127.0.0.2"), 0);
    assert_string_equal(who(c, buf, sizeof(buf)), "b");
    assert_int_equal(casb_http_client_pin(c, "pinned.invalid:" PIN_PORT ":127.0.0.1"), 0);
    assert_string_equal(who(c, buf, sizeof(buf)), "a");

    /* Malformed entries are refused and leave the pin as it was. */
    assert_int_equal(casb_http_client_pin(c, "pinned.invalid"), -1);
    assert_int_equal(casb_http_client_pin(c, "pinned.invalid:port:127.0.0.2"), -1);
    assert_int_equal(casb_http_client_pin(c, ":80:127.0.0.2"), -1);
    assert_int_equal(casb_http_client_pin(c, "pinned.invalid:80:"), -1);
    assert_string_equal(who(c, buf, sizeof(buf)), "a");

    /* An IPv6-literal host needs no pin; the entry is accepted and does not disturb others. */
    assert_int_equal(casb_http_client_pin(c, "[::1]:8080:[::1]"), 0);
    assert_string_equal(who(c, buf, sizeof(buf)), "");

    assert_int_equal(casb_http_client_pin(c, "pinned.invalid:" PIN_PORT ":127.0.0.2"), 0);
    assert_string_equal(who(c, buf, sizeof(buf)), "b");
    assert_int_equal(casb_http_client_pin(c, NULL), 0);
    assert_string_equal(who(c, buf, sizeof(buf)), "");
    casb_http_client_free(c);
}

/* The guard and the pin together: the checked address is the one connected to. */
static void test_check_then_pin(void **state)
{
    casb_netguard *g = guard("127.0.0.0/8");
    casb_http_client *c = NULL;
    casb_http_response *r = NULL;
    char pin[300];
    char err[300];

    assert_int_equal(check(g, "http://127.0.0.2:" PIN_PORT "/who", pin, err), 1);
    assert_string_equal(pin, "127.0.0.2:" PIN_PORT ":127.0.0.2");
    assert_int_equal(casb_http_client_new(&c, NULL, err, sizeof(err)), 0);
    assert_int_equal(casb_http_client_pin(c, pin), 0);
    assert_int_equal(casb_http_request(c, &r, "GET", "http://127.0.0.2:" PIN_PORT "/who", NULL,
                                       NULL, 0, err, sizeof(err)),
                     0);
    assert_non_null(strstr(r->body, "\"b\""));
    casb_http_response_free(r);
    casb_http_client_free(c);
    casb_netguard_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_embedded_ipv4),
        cmocka_unit_test(test_allowed_networks),
        cmocka_unit_test(test_bad_networks),
        cmocka_unit_test(test_check_url_literals),
        cmocka_unit_test(test_check_url_refusals),
        cmocka_unit_test(test_check_url_resolves),
        cmocka_unit_test(test_client_pin),
        cmocka_unit_test(test_check_then_pin),
    };

    return cmocka_run_group_tests(tests, setup_servers, teardown_servers);
}
