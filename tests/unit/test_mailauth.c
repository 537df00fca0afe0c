/* SPF and DMARC evaluation over TXT strings (casb/mailauth.h): the qualifiers of "all", a
 * missing or duplicated record, case, and DMARC's p/sp/pct with malformed records. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "casb/mailauth.h"

/* The TXT set of one name, from a NULL-terminated list of strings. */
static json_t *txts(const char *first, ...)
{
    json_t *a = json_array();
    va_list ap;

    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        json_array_append_new(a, json_string(s));
    va_end(ap);
    return a;
}

static void spf_of(casb_spf_result *r, json_t *t)
{
    casb_spf_eval(t, r);
    json_decref(t);
}

static void dmarc_of(casb_dmarc_result *r, json_t *t)
{
    casb_dmarc_eval(t, r);
    json_decref(t);
}

static void test_spf_qualifiers(void **state)
{
    casb_spf_result r;

    (void)state;
    spf_of(&r, txts("google-site-verification=abc", "v=spf1 include:_spf.google.com +all", NULL));
    assert_true(r.present);
    assert_int_equal(r.all_qualifier, '+');
    assert_true(r.allows_any);
    assert_non_null(strstr(r.problem, "+all"));

    spf_of(&r, txts("v=spf1 include:_spf.google.com ?all", NULL));
    assert_int_equal(r.all_qualifier, '?');
    assert_true(r.allows_any);

    spf_of(&r, txts("v=spf1 include:_spf.google.com ~all", NULL));
    assert_int_equal(r.all_qualifier, '~');
    assert_false(r.allows_any);
    assert_string_equal(r.problem, "");

    spf_of(&r, txts("v=spf1 ip4:192.0.2.0/24 -all", NULL));
    assert_int_equal(r.all_qualifier, '-');
    assert_false(r.allows_any);

    /* No qualifier is '+'. */
    spf_of(&r, txts("v=spf1 mx all", NULL));
    assert_int_equal(r.all_qualifier, '+');
    assert_true(r.allows_any);

    /* Mechanisms after all are never reached; a matching-everything ip4 is "any". */
    spf_of(&r, txts("v=spf1 -all +all", NULL));
    assert_int_equal(r.all_qualifier, '-');
    assert_false(r.allows_any);
    spf_of(&r, txts("v=spf1 ip4:0.0.0.0/0 -all", NULL));
    assert_true(r.allows_any);

    /* No all: the default is neutral, but not reported (the author did not write it). */
    spf_of(&r, txts("v=spf1 include:_spf.google.com", NULL));
    assert_true(r.present);
    assert_int_equal(r.all_qualifier, 0);
    assert_false(r.allows_any);

    /* "allx" is not all; a redirect is not followed. */
    spf_of(&r, txts("v=spf1 redirect=_spf.example.com", NULL));
    assert_false(r.allows_any);
}

static void test_spf_missing_multiple_case(void **state)
{
    casb_spf_result r;

    (void)state;
    spf_of(&r, txts("v=DMARC1; p=reject", "hello", NULL));
    assert_false(r.present);
    assert_false(r.multiple);
    assert_non_null(strstr(r.problem, "no TXT record"));
    spf_of(&r, json_array());
    assert_false(r.present);
    casb_spf_eval(NULL, &r);
    assert_false(r.present);

    /* "v=spf10" and "v=spf1x" are not SPF records. */
    spf_of(&r, txts("v=spf10 -all", "v=spf1x -all", NULL));
    assert_false(r.present);

    spf_of(&r, txts("v=spf1 -all", "v=spf1 +all", NULL));
    assert_false(r.present);
    assert_true(r.multiple);
    assert_non_null(strstr(r.problem, "permerror"));

    /* The version and mechanisms are case-insensitive; a bare "v=spf1" is a record. */
    spf_of(&r, txts("V=SPF1 MX +ALL", NULL));
    assert_true(r.present);
    assert_true(r.allows_any);
    spf_of(&r, txts("v=spf1", NULL));
    assert_true(r.present);
    assert_false(r.allows_any);
    assert_string_equal(r.record, "v=spf1");
}

static void test_dmarc_policies(void **state)
{
    casb_dmarc_result r;

    (void)state;
    dmarc_of(&r, txts("v=DMARC1; p=reject; rua=mailto:d@example.com", NULL));
    assert_true(r.present);
    assert_string_equal(r.p, "reject");
    assert_string_equal(r.sp, "reject");
    assert_false(r.sp_explicit);
    assert_int_equal(r.pct, 100);

    dmarc_of(&r, txts("v=DMARC1; p=none", NULL));
    assert_true(r.present);
    assert_string_equal(r.p, "none");
    assert_string_equal(r.sp, "none");

    dmarc_of(&r, txts("v=DMARC1; p=quarantine; sp=none", NULL));
    assert_string_equal(r.p, "quarantine");
    assert_string_equal(r.sp, "none");
    assert_true(r.sp_explicit);

    dmarc_of(&r, txts("v=DMARC1; p=Reject; pct=50", NULL));
    assert_true(r.present);
    assert_string_equal(r.p, "reject");
    assert_int_equal(r.pct, 50);

    /* An invalid pct falls back to the default. */
    dmarc_of(&r, txts("v=DMARC1; p=reject; pct=150", NULL));
    assert_int_equal(r.pct, 100);
    dmarc_of(&r, txts("v=DMARC1; p=reject; pct=abc", NULL));
    assert_int_equal(r.pct, 100);
    dmarc_of(&r, txts("v=DMARC1; p=reject; pct=0", NULL));
    assert_int_equal(r.pct, 0);

    /* Whitespace around tags and '=', and empty tags between semicolons. */
    dmarc_of(&r, txts("  v = DMARC1 ;;  p = quarantine ;  sp=reject ; ; pct = 25 ;", NULL));
    assert_true(r.present);
    assert_string_equal(r.p, "quarantine");
    assert_string_equal(r.sp, "reject");
    assert_int_equal(r.pct, 25);
}

static void test_dmarc_malformed(void **state)
{
    casb_dmarc_result r;

    (void)state;
    dmarc_of(&r, txts("v=spf1 -all", NULL));
    assert_false(r.present);
    assert_non_null(strstr(r.problem, "no TXT record"));

    dmarc_of(&r, txts("v=DMARC1; rua=mailto:d@example.com", NULL));
    assert_false(r.present);
    assert_non_null(strstr(r.problem, "no p tag"));
    assert_string_equal(r.p, "");

    dmarc_of(&r, txts("v=DMARC1; p=block", NULL));
    assert_false(r.present);
    assert_non_null(strstr(r.problem, "p=block"));

    dmarc_of(&r, txts("v=DMARC1; p=reject; sp=maybe", NULL));
    assert_false(r.present);
    assert_non_null(strstr(r.problem, "sp"));

    /* v must be the first tag. */
    dmarc_of(&r, txts("p=reject; v=DMARC1", NULL));
    assert_false(r.present);
    assert_non_null(strstr(r.problem, "not the first tag"));
    assert_string_equal(r.record, "p=reject; v=DMARC1");

    dmarc_of(&r, txts("v=DMARC1; p=reject", "v=DMARC1; p=none", NULL));
    assert_false(r.present);
    assert_true(r.multiple);

    dmarc_of(&r, txts("v=DMARC10; p=reject", NULL));
    assert_false(r.present);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spf_qualifiers),
        cmocka_unit_test(test_spf_missing_multiple_case),
        cmocka_unit_test(test_dmarc_policies),
        cmocka_unit_test(test_dmarc_malformed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
