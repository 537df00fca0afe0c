/* Unit tests for endpoint.c, the SSRF guard: the default origin and listed origins pass,
 * everything else, and every URL form that parsers could read differently, is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "casb/endpoint.h"

#define GH "https://api.github.com"
#define ALLOW "http://127.0.0.1:8090, https://ghe.example.com/api/v3 ,,not a url,http://[::1]:9000"

static int allowed(const char *url)
{
    char err[256] = "";
    int rc = casb_endpoint_allowed(url, GH, ALLOW, err, sizeof(err));

    if (rc == 0)
        assert_true(err[0] != '\0'); /* a refusal always says why */
    return rc;
}

static void test_default_origin(void **state)
{
    (void)state;
    assert_int_equal(allowed("https://api.github.com"), 1);
    assert_int_equal(allowed("https://api.github.com/"), 1);
    assert_int_equal(allowed("https://api.github.com/orgs/acme/repos?per_page=100"), 1);
    assert_int_equal(allowed("https://api.github.com:443/orgs"), 1);  /* default port */
    assert_int_equal(allowed("HTTPS://API.GitHub.COM/orgs"), 1);      /* case-insensitive */
    assert_int_equal(allowed("https://api.github.com./orgs"), 1);     /* FQDN dot */
    assert_int_equal(allowed("http://api.github.com"), 0);            /* other scheme */
    assert_int_equal(allowed("https://api.github.com:8443"), 0);      /* other port */
    assert_int_equal(allowed("https://api.github.com.evil.com"), 0);
    assert_int_equal(allowed("https://evilapi.github.com"), 0);
}

static void test_allowlist(void **state)
{
    (void)state;
    assert_int_equal(allowed("http://127.0.0.1:8090"), 1);
    assert_int_equal(allowed("http://127.0.0.1:8090/orgs/acme-demo"), 1);
    assert_int_equal(allowed("http://127.0.0.1:8091"), 0);
    assert_int_equal(allowed("http://127.0.0.1"), 0);
    assert_int_equal(allowed("https://127.0.0.1:8090"), 0);
    assert_int_equal(allowed("http://localhost:8090"), 0); /* compared as written, not resolved */
    assert_int_equal(allowed("http://0x7f.1:8090"), 0);
    /* Entries are trimmed; the path of an entry does not matter, only its origin. */
    assert_int_equal(allowed("https://ghe.example.com/api/v3/orgs/x"), 1);
    assert_int_equal(allowed("https://ghe.example.com:443/other"), 1);
    assert_int_equal(allowed("http://[::1]:9000/x"), 1);
    assert_int_equal(allowed("http://[::1]:9001/x"), 0);
    assert_int_equal(allowed("http://169.254.169.254/latest/meta-data"), 0);
}

static void test_refused_forms(void **state)
{
    static const char *bad[] = {
        "https://user:pass@api.github.com/",
        "https://api.github.com@evil.com/",
        "http://127.0.0.1:8090@evil.com",
        "https://api.github.com/#frag",
        "https://api.github.com#@evil.com",
        "ftp://api.github.com",
        "file:///etc/passwd",
        "gopher://127.0.0.1:8090",
        "//api.github.com",
        "api.github.com",
        "https://",
        "https:///path",
        "https://:443",
        "https://api.github.com:",
        "https://api.github.com:0",
        "https://api.github.com:65536",
        "https://api.github.com:44x",
        "https://api.github.com:-1",
        "https://api.github.com\\@evil.com",
        "https://api.github.com /x",
        "https://api.github.com\t",
        "https://api.github.com\r\nHost: evil",
        "https://api.git%68ub.com",
        "https://api.github.com\xc2\xa0",
        "http://[::1",
        "http://[::1%25eth0]:9000",
        "http://[]:9000",
        "",
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (casb_endpoint_allowed(bad[i], GH, ALLOW, err, sizeof(err)) != 0)
            fail_msg("allowed: \"%s\"", bad[i]);
        assert_true(strncmp(err, "endpoint refused: ", 18) == 0);
    }
    assert_int_equal(casb_endpoint_allowed(NULL, GH, ALLOW, NULL, 0), 0);
}

static void test_messages(void **state)
{
    char err[256] = "";

    (void)state;
    assert_int_equal(casb_endpoint_allowed("https://user:pw@api.github.com", GH, NULL, err,
                                           sizeof(err)),
                     0);
    assert_string_equal(err, "endpoint refused: URL has userinfo");
    assert_null(strstr(err, "pw")); /* credentials in URLs are not echoed */
    assert_int_equal(casb_endpoint_allowed("http://10.0.0.1/x", GH, NULL, err, sizeof(err)), 0);
    assert_string_equal(err, "endpoint http://10.0.0.1:80 is not the provider's default and "
                             "not listed in CASB_ALLOWED_ENDPOINTS");
}

static void test_no_default_no_list(void **state)
{
    char err[256] = "";

    (void)state;
    assert_int_equal(casb_endpoint_allowed(GH, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(casb_endpoint_allowed(GH, NULL, "", err, sizeof(err)), 0);
    assert_int_equal(casb_endpoint_allowed(GH, NULL, " , ,", err, sizeof(err)), 0);
    assert_int_equal(casb_endpoint_allowed(GH, NULL, GH, err, sizeof(err)), 1);
    /* A bad default allows nothing by itself. */
    assert_int_equal(casb_endpoint_allowed(GH, "not a url", NULL, err, sizeof(err)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_origin),
        cmocka_unit_test(test_allowlist),
        cmocka_unit_test(test_refused_forms),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_no_default_no_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
