/* Unit tests for timeutil.c: RFC 3339 formatting and the parsing of the forms GitHub and
 * PostgreSQL emit, clocks and sleep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casb/timeutil.h"

static void test_format(void **state)
{
    char buf[32];

    (void)state;
    casb_time_rfc3339(buf, sizeof(buf), 0);
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    casb_time_rfc3339(buf, sizeof(buf), 1796415955);
    assert_string_equal(buf, "2026-12-04T20:25:55Z");
    casb_time_rfc3339_ms(buf, sizeof(buf), 1796415955123LL);
    assert_string_equal(buf, "2026-12-04T20:25:55.123Z");
    casb_time_rfc3339_ms(buf, sizeof(buf), 5);
    assert_string_equal(buf, "1970-01-01T00:00:00.005Z");
    casb_time_rfc3339_ms(buf, sizeof(buf), -1);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    /* A short buffer is truncated, never overrun. */
    casb_time_rfc3339(buf, 5, 0);
    assert_string_equal(buf, "1970");
}

/* The same text as gmtime_r and strftime give, over four centuries of instants (leap days
 * and century years included), without the C library. */
static void test_format_matches_gmtime(void **state)
{
    char buf[32], want[32];
    struct tm tm;

    (void)state;
    for (int64_t t = -2208988800LL; t < 7258118400LL; t += 86400 * 7 / 5 + 3607) {
        time_t tt = (time_t)t;

        assert_non_null(gmtime_r(&tt, &tm));
        strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%SZ", &tm);
        casb_time_rfc3339(buf, sizeof buf, tt);
        if (strcmp(buf, want) != 0)
            fail_msg("%lld: %s != %s", (long long)t, buf, want);
    }
    casb_time_rfc3339(buf, sizeof buf, 951782400); /* 2000-02-29 */
    assert_string_equal(buf, "2000-02-29T00:00:00Z");
    casb_time_rfc3339(buf, sizeof buf, 253402300799LL);
    assert_string_equal(buf, "9999-12-31T23:59:59Z");
    /* Past what four digits hold: empty, not a wrong year. */
    casb_time_rfc3339(buf, sizeof buf, 253402300800LL);
    assert_string_equal(buf, "");
}

static time_t parse_ok(const char *s)
{
    time_t t = -12345;

    if (casb_time_parse(s, &t) != 0)
        fail_msg("did not parse: %s", s);
    return t;
}

static void test_parse_forms(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse_ok("2014-12-10T15:53:42Z"), 1418226822);
    /* GitHub with fraction and offset: 08:47:09-07:00 is 15:47:09Z. */
    assert_int_equal(parse_ok("2017-05-16T08:47:09.000-07:00"), 1494949629);
    assert_int_equal(parse_ok("2017-05-16T15:47:09Z"), 1494949629);
    /* PostgreSQL text output. */
    assert_int_equal(parse_ok("2026-11-28 20:25:55.123+00"), parse_ok("2026-11-28T20:25:55Z"));
    assert_int_equal(parse_ok("2026-11-28 20:25:55.123456+05:30"),
                     parse_ok("2026-11-28T14:55:55Z"));
    assert_int_equal(parse_ok("2026-11-28t20:25:55+0100"), parse_ok("2026-11-28T19:25:55Z"));
    assert_int_equal(parse_ok("2024-02-29T00:00:00z"), 1709164800);
    /* A leap second rolls over. */
    assert_int_equal(parse_ok("2016-12-31T23:59:60Z"), parse_ok("2017-01-01T00:00:00Z"));
    assert_int_equal(parse_ok("1969-12-31T23:59:59Z"), -1);
}

static void test_parse_roundtrip(void **state)
{
    char buf[32];

    (void)state;
    for (time_t t = -86400 * 366; t < (time_t)4102444800; t += 86400 * 37 + 3601) {
        casb_time_rfc3339(buf, sizeof(buf), t);
        assert_int_equal(parse_ok(buf), t);
    }
}

static void test_parse_rejects(void **state)
{
    static const char *bad[] = {
        "",
        "2014-12-10",
        "2014-12-10T15:53:42",       /* no zone: local time is never meant */
        "2014-12-10T15:53Z",
        "2014-13-10T15:53:42Z",
        "2014-00-10T15:53:42Z",
        "2023-02-29T00:00:00Z",      /* not a leap year */
        "2014-12-32T15:53:42Z",
        "2014-12-10T24:00:00Z",
        "2014-12-10T15:60:00Z",
        "2014-12-10T15:53:61Z",
        "2014-12-10X15:53:42Z",
        "2014-12-10T15:53:42.Z",
        "2014-12-10T15:53:42+1",
        "2014-12-10T15:53:42+01:60",
        "2014-12-10T15:53:42Zjunk",
        "14-12-10T15:53:42Z",
        " 2014-12-10T15:53:42Z",
        "2014-1a-10T15:53:42Z",
    };
    time_t t = 77;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (casb_time_parse(bad[i], &t) != -1)
            fail_msg("accepted: \"%s\"", bad[i]);
    }
    assert_int_equal(t, 77); /* untouched on failure */
    assert_int_equal(casb_time_parse(NULL, &t), -1);
}

static void test_clocks(void **state)
{
    int64_t wall = casb_now_ms();
    int64_t m0 = casb_monotonic_ms();
    int64_t m1;

    (void)state;
    /* After 2020 and in milliseconds (not seconds or microseconds). */
    assert_true(wall > 1577836800000LL);
    assert_true(wall < 4102444800000LL);
    casb_sleep_ms(50);
    m1 = casb_monotonic_ms();
    assert_true(m1 - m0 >= 50);
    assert_true(m1 - m0 < 2000);
    casb_sleep_ms(0);
    casb_sleep_ms(-5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_matches_gmtime),
        cmocka_unit_test(test_parse_forms),
        cmocka_unit_test(test_parse_roundtrip),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
