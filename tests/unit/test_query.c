/* Unit tests for strict query strings (common/src/query.c): a route's declared parameters
 * are decoded into place; anything else in the query (an unknown or misspelt name, a
 * repeated one, one without a value, broken percent-encoding) is refused with the name of
 * the offending parameter, so that no filter is ever silently dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "casb/error.h"
#include "casb/query.h"

/* The parameters of a findings-like list, filled by parse(). */
static const char *severity, *integration_id, *limit;
static const casb_query_param params[] = {
    {"severity", &severity},
    {"integration_id", &integration_id},
    {"limit", &limit},
    {NULL, NULL},
};

static casb_query_text text;
static char name[65];
static char err[768];

static int parse(const char *query)
{
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    err[0] = '\0';
    return casb_query_parse(query, params, &text, name, sizeof(name), err, sizeof(err));
}

/* Refused, naming want_name, with want_detail somewhere in the detail. */
static void refused(const char *query, const char *want_name, const char *want_detail)
{
    if (parse(query) != CASB_EINVALID)
        fail_msg("accepted %s", query);
    if (strcmp(name, want_name) != 0)
        fail_msg("%s: named \"%s\", not \"%s\"", query, name, want_name);
    if (!strstr(err, want_detail))
        fail_msg("%s: detail \"%s\" lacks \"%s\"", query, err, want_detail);
}

static void test_declared_parameters(void **state)
{
    (void)state;
    assert_int_equal(parse("severity=high&limit=10"), 0);
    assert_string_equal(severity, "high");
    assert_string_equal(limit, "10");
    assert_null(integration_id);
    assert_string_equal(name, "");

    /* Absent query, empty query and empty segments: nothing given. */
    assert_int_equal(parse(NULL), 0);
    assert_null(severity);
    assert_int_equal(parse(""), 0);
    assert_null(limit);
    assert_int_equal(parse("&severity=low&&"), 0);
    assert_string_equal(severity, "low");
    assert_null(limit);
}

static void test_decoding(void **state)
{
    (void)state;
    /* Values and names are form-decoded; the decoded name is what must be declared. */
    assert_int_equal(parse("severity=a%20b+c%2Bd&%6Cimit=%35"), 0);
    assert_string_equal(severity, "a b c+d");
    assert_string_equal(limit, "5");
    /* An encoded '&' or '=' belongs to the value. */
    assert_int_equal(parse("severity=x%26limit%3D3"), 0);
    assert_string_equal(severity, "x&limit=3");
    assert_null(limit);
}

static void test_unknown_names(void **state)
{
    (void)state;
    /* The motivating typo: a filter that would otherwise be dropped, listing everything. */
    refused("integration=0b7c3c2e-5f7a-4d3e-9b1a-2c4d6e8f0a1b", "integration",
            "unknown query parameter (accepted: severity, integration_id, limit)");
    refused("severity=high&sevrity=low", "sevrity", "unknown query parameter");
    /* Names are case-sensitive. */
    refused("SEVERITY=high", "SEVERITY", "unknown");
    refused("=high", "", "unknown");
    /* Unprintable bytes are masked in what the answer names. */
    refused("se%0Averity=high", "se?verity", "unknown");
    /* A name longer than any declared one is unknown, named truncated. */
    refused("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "unknown");
}

static void test_no_parameters_declared(void **state)
{
    const casb_query_param none[] = {{NULL, NULL}};

    (void)state;
    assert_int_equal(casb_query_parse(NULL, none, NULL, name, sizeof(name), err, sizeof(err)),
                     0);
    assert_int_equal(casb_query_parse("&", none, NULL, name, sizeof(name), err, sizeof(err)), 0);
    assert_int_equal(casb_query_parse("force=true", none, NULL, name, sizeof(name), err,
                                      sizeof(err)),
                     CASB_EINVALID);
    assert_string_equal(name, "force");
    assert_non_null(strstr(err, "this resource takes none"));
}

static void test_values_required_once(void **state)
{
    (void)state;
    refused("severity=high&severity=low", "severity", "given more than once");
    /* The same name spelt differently is still the same parameter. */
    refused("limit=1&%6Cimit=2", "limit", "given more than once");
    refused("severity", "severity", "needs a value");
    refused("severity=", "severity", "needs a value");
    refused("limit=5&integration_id=", "integration_id", "needs a value");
}

static void test_malformed_encoding(void **state)
{
    (void)state;
    refused("severity=%4", "severity", "malformed percent-encoding");
    refused("severity=%zz", "severity", "malformed percent-encoding");
    refused("severity=high%", "severity", "malformed percent-encoding");
    refused("sev%erity=high", "sev%erity", "malformed percent-encoding in a parameter name");
    /* A NUL would silently cut the value short. */
    refused("severity=high%00low", "severity", "NUL");
}

static void test_value_room(void **state)
{
    char query[2 * CASB_QUERY_TEXT_BYTES];
    size_t n;

    (void)state;
    /* One value nearly filling the room is fine; two of them are not. */
    n = (size_t)snprintf(query, sizeof(query), "severity=");
    memset(query + n, 'a', CASB_QUERY_TEXT_BYTES - 2);
    query[n + CASB_QUERY_TEXT_BYTES - 2] = '\0';
    assert_int_equal(parse(query), 0);
    assert_int_equal(strlen(severity), CASB_QUERY_TEXT_BYTES - 2);
    strcat(query, "&limit=12");
    refused(query, "limit", "value too long");
}

static void test_limit(void **state)
{
    long v = 0;
    char detail[128];

    (void)state;
    assert_int_equal(casb_query_limit(NULL, &v, detail, sizeof(detail)), 0);
    assert_int_equal(v, CASB_QUERY_LIMIT_DEFAULT);
    assert_int_equal(casb_query_limit("1", &v, detail, sizeof(detail)), 0);
    assert_int_equal(v, 1);
    assert_int_equal(casb_query_limit("200", &v, detail, sizeof(detail)), 0);
    assert_int_equal(v, CASB_QUERY_LIMIT_MAX);

    static const char *const bad[] = {"0", "201", "500", "-5", "", "5x", " 5", "+5", "0x10",
                                      "1e2", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        detail[0] = '\0';
        if (casb_query_limit(bad[i], &v, detail, sizeof(detail)) != CASB_EINVALID)
            fail_msg("limit \"%s\" accepted", bad[i]);
        assert_string_equal(detail, "limit: expected an integer from 1 to 200");
        assert_int_equal(v, CASB_QUERY_LIMIT_DEFAULT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_declared_parameters), cmocka_unit_test(test_decoding),
        cmocka_unit_test(test_unknown_names),       cmocka_unit_test(test_no_parameters_declared),
        cmocka_unit_test(test_values_required_once), cmocka_unit_test(test_malformed_encoding),
        cmocka_unit_test(test_value_room),           cmocka_unit_test(test_limit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
