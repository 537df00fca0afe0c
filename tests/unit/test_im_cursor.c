/* Unit tests for the integration-manager's keyset cursors and paging parameters
 * (im_cursor.c): a cursor round-trips, and anything it did not issue is refused before it
 * could reach SQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/query.h"
#include "im_cursor.h"

#define AT "2026-11-28T20:25:55.123456Z"
#define ID "0b7c3c2e-5f7a-4d3e-9b1a-2c4d6e8f0a1b"

static void test_round_trip(void **state)
{
    char *token = im_cursor_encode(AT, ID);
    im_cursor c;

    (void)state;
    assert_non_null(token);
    /* Opaque and URL-safe: no padding, no characters needing escapes. */
    assert_null(strpbrk(token, "+/=|:"));
    assert_null(strstr(token, ID));
    assert_int_equal(im_cursor_decode(token, &c), 0);
    assert_string_equal(c.at, AT);
    assert_string_equal(c.id, ID);
    free(token);
}

static void test_encode_refuses_malformed(void **state)
{
    (void)state;
    assert_null(im_cursor_encode(NULL, ID));
    assert_null(im_cursor_encode(AT, NULL));
    assert_null(im_cursor_encode("2026-11-28T20:25:55Z", ID)); /* no microseconds */
    assert_null(im_cursor_encode(AT, "not-a-uuid"));
}

/* Encodes raw text the way a cursor is encoded, to forge tokens. */
static char *forge(const char *plain)
{
    return casb_base64url_encode(plain, strlen(plain));
}

static void expect_refused(const char *token)
{
    im_cursor c;

    if (im_cursor_decode(token, &c) != CASB_EINVALID)
        fail_msg("accepted cursor %s", token ? token : "(null)");
    assert_string_equal(c.at, "");
    assert_string_equal(c.id, "");
}

static void test_decode_refuses_forgeries(void **state)
{
    static const char *const plains[] = {
        AT "|" ID "x",                                         /* too long */
        AT "," ID,                                             /* wrong separator */
        "2026-02-30T20:25:55.123456Z|" ID,                     /* no such day */
        "2026-13-01T20:25:55.123456Z|" ID,                     /* no such month */
        "2026-11-28T24:25:55.123456Z|" ID,                     /* no such hour */
        "2026-11-28 20:25:55.123456Z|" ID,                     /* not the issued format */
        "2026-11-28T20:25:55.12345aZ|" ID,                     /* not digits */
        AT "|0b7c3c2e-5f7a-4d3e-9b1a-2c4d6e8f0a1g",            /* not a UUID */
        "2026-11-28T20:25:55.123456Z'; DROP TABLE x;--|" ID,   /* injection attempt */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(plains) / sizeof(plains[0]); i++) {
        char *token = forge(plains[i]);

        expect_refused(token);
        free(token);
    }
    expect_refused(NULL);
    expect_refused("");
    expect_refused("***");
    expect_refused("MjAyNi0xMS0yOFQ");
}

static void test_leap_day(void **state)
{
    char *ok = im_cursor_encode("2028-02-29T00:00:00.000000Z", ID);
    char *bad = forge("2027-02-29T00:00:00.000000Z|" ID);
    im_cursor c;

    (void)state;
    assert_non_null(ok);
    assert_int_equal(im_cursor_decode(ok, &c), 0);
    expect_refused(bad);
    free(ok);
    free(bad);
}

static void test_page(void **state)
{
    char *token = im_cursor_encode(AT, ID);
    const char *param = NULL;
    char err[256];
    im_page page;

    (void)state;
    assert_int_equal(im_page_parse(&page, NULL, NULL, &param, err, sizeof(err)), 0);
    assert_int_equal(page.limit, CASB_QUERY_LIMIT_DEFAULT);
    assert_int_equal(page.has_cursor, 0);
    assert_null(param);

    assert_int_equal(im_page_parse(&page, "200", token, &param, err, sizeof(err)), 0);
    assert_int_equal(page.limit, 200);
    assert_int_equal(page.has_cursor, 1);
    assert_string_equal(page.cursor.at, AT);
    assert_string_equal(page.cursor.id, ID);

    /* Each refusal names its parameter for the 400 answer. */
    assert_int_equal(im_page_parse(&page, "201", token, &param, err, sizeof(err)),
                     CASB_EINVALID);
    assert_string_equal(param, "limit");
    assert_string_equal(err, "limit: expected an integer from 1 to 200");
    assert_int_equal(im_page_parse(&page, "0", NULL, &param, err, sizeof(err)), CASB_EINVALID);
    assert_string_equal(param, "limit");
    assert_int_equal(im_page_parse(&page, "10", "***", &param, err, sizeof(err)),
                     CASB_EINVALID);
    assert_string_equal(param, "cursor");
    assert_string_equal(err, "cursor: not a next_cursor of this list");
    assert_int_equal(page.has_cursor, 0);
    free(token);
}

/* Sequence cursors of the audit log. */
static void test_seq_cursor(void **state)
{
    char *token = im_cursor_encode_seq(12345);
    char *time_token = im_cursor_encode(AT, ID);
    char *raw = NULL;
    const char *param = NULL;
    long long id = 0;
    char err[256];
    im_seq_page page;

    (void)state;
    assert_non_null(token);
    assert_int_equal(im_cursor_decode_seq(token, &id), 0);
    assert_int_equal(id, 12345);
    assert_null(im_cursor_encode_seq(0));
    assert_null(im_cursor_encode_seq(-5));

    /* Neither kind of cursor passes for the other. */
    assert_int_equal(im_cursor_decode_seq(time_token, &id), CASB_EINVALID);
    im_cursor c;
    assert_int_equal(im_cursor_decode(token, &c), CASB_EINVALID);

    raw = casb_base64url_encode("seq|12a", 7);
    assert_int_equal(im_cursor_decode_seq(raw, &id), CASB_EINVALID);
    free(raw);
    raw = casb_base64url_encode("seq|0", 5);
    assert_int_equal(im_cursor_decode_seq(raw, &id), CASB_EINVALID);
    free(raw);
    raw = casb_base64url_encode("seq|1234567890123456789", 23);
    assert_int_equal(im_cursor_decode_seq(raw, &id), CASB_EINVALID);
    free(raw);
    assert_int_equal(im_cursor_decode_seq("", &id), CASB_EINVALID);
    assert_int_equal(im_cursor_decode_seq("***", &id), CASB_EINVALID);

    assert_int_equal(im_seq_page_parse(&page, "5", token, &param, err, sizeof(err)), 0);
    assert_int_equal(page.limit, 5);
    assert_int_equal(page.has_cursor, 1);
    assert_int_equal(page.before_id, 12345);
    assert_int_equal(im_seq_page_parse(&page, NULL, time_token, &param, err, sizeof(err)),
                     CASB_EINVALID);
    assert_string_equal(param, "cursor");
    assert_int_equal(im_seq_page_parse(&page, "x", NULL, &param, err, sizeof(err)),
                     CASB_EINVALID);
    assert_string_equal(param, "limit");
    free(token);
    free(time_token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_encode_refuses_malformed),
        cmocka_unit_test(test_decode_refuses_forgeries),
        cmocka_unit_test(test_leap_day),
        cmocka_unit_test(test_page),
        cmocka_unit_test(test_seq_cursor),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
