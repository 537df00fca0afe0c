/* casb_sql_specialize: statement text for the parameters at hand. Its results against a
 * real PostgreSQL are those of the statements as written: test_findings_store pages through
 * every filter and cursor of the list statements, which run specialised. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "casb/sql.h"

static char text[1024];

static const char *specialize(const char *sql, int n, const char *const *params)
{
    casb_text out = {0};

    assert_int_equal(casb_sql_specialize(sql, n, params, &out), 0);
    snprintf(text, sizeof text, "%s", out.len ? out.data : "");
    casb_text_free(&out);
    return text;
}

static void test_present_and_absent_filters(void **state)
{
    static const char sql[] = "SELECT 1 FROM t WHERE a = $1"
                              "   AND ($2::uuid IS NULL OR t.b = $2::uuid)"
                              "   AND ($3::text IS  NULL\n   OR t.c = $3) LIMIT $4";
    const char *both[] = {"x", "00000000-0000-4000-8000-000000000001", "c", "5"};
    const char *none[] = {"x", NULL, NULL, "5"};

    (void)state;
    assert_string_equal(specialize(sql, 4, both),
                        "SELECT 1 FROM t WHERE a = $1   AND (t.b = $2::uuid)   AND (t.c = $3)"
                        " LIMIT $4");
    assert_string_equal(specialize(sql, 4, none),
                        "SELECT 1 FROM t WHERE a = $1   AND ($2::uuid IS NULL)"
                        "   AND ($3::text IS NULL) LIMIT $4");
}

/* A group naming several parameters (a keyset cursor, a search with its matching types)
 * becomes a constant only when all of them are NULL; each keeps a typed mention. */
static void test_groups_of_several_parameters(void **state)
{
    static const char sql[] = "WHERE ($2::bigint IS NULL OR (k, id) > ($2::bigint, $3::uuid))"
                              " AND ($4::text IS NULL OR x IN (SELECT f($5::jsonb))"
                              " OR y ILIKE $4)";
    const char *none[] = {"a", NULL, NULL, NULL, NULL};
    const char *cursor[] = {"a", "7", "00000000-0000-4000-8000-000000000001", NULL, NULL};
    const char *mixed[] = {"a", NULL, "00000000-0000-4000-8000-000000000001", NULL, "[]"};

    (void)state;
    assert_string_equal(specialize(sql, 5, none),
                        "WHERE ($2::bigint IS NULL AND $3::uuid IS NULL)"
                        " AND ($4::text IS NULL AND $5::jsonb IS NULL)");
    assert_string_equal(specialize(sql, 5, cursor),
                        "WHERE ((k, id) > ($2::bigint, $3::uuid))"
                        " AND ($4::text IS NULL AND $5::jsonb IS NULL)");
    /* $2 NULL but $3 not, $4 NULL but $5 not: left as written, which is still right. */
    assert_string_equal(specialize(sql, 5, mixed), sql);
}

/* Left as written: a parameter without a cast in its group (it could not be typed once
 * the group is gone), quoted text, groups nested in a kept one, and other OR forms. */
static void test_what_is_left_alone(void **state)
{
    static const char untyped[] = "WHERE ($1::text IS NULL OR a = $2)";
    static const char quoted[] = "SELECT '($1::text IS NULL OR a)' WHERE ($1::text IS NULL OR "
                                 "b = ')')";
    static const char nested[] = "WHERE ($1::text IS NULL OR a = $1 AND ($2::int IS NULL OR "
                                 "b > $2::int)) AND ($3::boolean OR c > 0)";
    const char *nulls[] = {NULL, NULL, NULL};
    const char *first[] = {"a", NULL, "false"};

    (void)state;
    assert_string_equal(specialize(untyped, 2, nulls), untyped);
    assert_string_equal(specialize(quoted, 1, nulls),
                        "SELECT '($1::text IS NULL OR a)' WHERE ($1::text IS NULL)");
    assert_string_equal(specialize(quoted, 1, first),
                        "SELECT '($1::text IS NULL OR a)' WHERE (b = ')')");
    assert_string_equal(specialize(nested, 3, first),
                        "WHERE (a = $1 AND ($2::int IS NULL)) AND ($3::boolean OR c > 0)");
    /* A parameter number past the ones given or not one ($0), and unbalanced text: as
     * written. */
    assert_string_equal(specialize("WHERE ($4::int IS NULL OR a)", 1, nulls),
                        "WHERE ($4::int IS NULL OR a)");
    assert_string_equal(specialize("WHERE ($0::int IS NULL OR a)", 1, nulls),
                        "WHERE ($0::int IS NULL OR a)");
    assert_string_equal(specialize("WHERE ($1::int IS NULL OR (a", 1, nulls),
                        "WHERE ($1::int IS NULL OR (a");
    assert_string_equal(specialize("", 0, nulls), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_present_and_absent_filters),
        cmocka_unit_test(test_groups_of_several_parameters),
        cmocka_unit_test(test_what_is_left_alone),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
