/* Unit tests for json.c: parsing with the depth guard, error messages, getters, dotted
 * paths and the string setter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "casb/json.h"

static void test_parse_ok(void **state)
{
    const char *doc = "{\"a\":1,\"b\":[true,{\"c\":\"d\"}],\"e\":null}";
    char err[128] = "";
    json_t *v;

    (void)state;
    v = casb_json_parse(doc, strlen(doc), 0, err, sizeof(err));
    assert_non_null(v);
    assert_int_equal(casb_json_int(v, "a", -1), 1);
    json_decref(v);

    /* Any value, not only objects; len bounds the input (no NUL needed). */
    v = casb_json_parse("42garbage", 2, 0, err, sizeof(err));
    assert_non_null(v);
    assert_true(json_is_integer(v));
    assert_int_equal(json_integer_value(v), 42);
    json_decref(v);
}

static void test_parse_errors(void **state)
{
    const char *doc = "{\n\"a\": 1,\n\"b\": }";
    const char *dup = "{\"a\":1,\"a\":2}";
    char err[128] = "";

    (void)state;
    assert_null(casb_json_parse(doc, strlen(doc), 0, err, sizeof(err)));
    assert_true(strncmp(err, "line 3: ", 8) == 0);
    assert_null(casb_json_parse("", 0, 0, err, sizeof(err)));
    assert_null(casb_json_parse(NULL, 0, 0, err, sizeof(err)));
    assert_null(casb_json_parse(dup, strlen(dup), 0, err, sizeof(err)));
    assert_non_null(strstr(err, "duplicate"));
    /* NULL err is allowed. */
    assert_null(casb_json_parse("[", 1, 0, NULL, 0));
}

static char *nested(size_t depth, const char *open, const char *close)
{
    size_t n = depth * (strlen(open) + strlen(close));
    char *s = malloc(n + 1);
    size_t pos = 0;

    assert_non_null(s);
    for (size_t i = 0; i < depth; i++) {
        memcpy(s + pos, open, strlen(open));
        pos += strlen(open);
    }
    for (size_t i = 0; i < depth; i++) {
        memcpy(s + pos, close, strlen(close));
        pos += strlen(close);
    }
    s[pos] = '\0';
    return s;
}

static void test_depth_limit(void **state)
{
    char err[128] = "";
    char *s;
    json_t *v;

    (void)state;
    /* Exactly the limit is fine, one more is refused. */
    s = nested(5, "[", "]");
    v = casb_json_parse(s, strlen(s), 5, err, sizeof(err));
    assert_non_null(v);
    json_decref(v);
    free(s);
    s = nested(6, "{\"k\":", "}");
    /* "{"k":{"k":...}}" without the innermost value is invalid JSON, but the depth guard
     * must speak first. */
    assert_null(casb_json_parse(s, strlen(s), 5, err, sizeof(err)));
    assert_string_equal(err, "JSON nested deeper than 5 levels");
    free(s);

    /* Default limit 64. */
    s = nested(64, "[", "]");
    v = casb_json_parse(s, strlen(s), 0, err, sizeof(err));
    assert_non_null(v);
    json_decref(v);
    free(s);
    s = nested(65, "[", "]");
    assert_null(casb_json_parse(s, strlen(s), 0, err, sizeof(err)));
    assert_string_equal(err, "JSON nested deeper than 64 levels");
    free(s);
}

static void test_depth_bomb(void **state)
{
    /* A megabyte of '[' must be refused quickly without recursing in the parser. */
    size_t n = 1 << 20;
    char *s = malloc(n);
    char err[128] = "";

    (void)state;
    assert_non_null(s);
    memset(s, '[', n);
    assert_null(casb_json_parse(s, n, 0, err, sizeof(err)));
    assert_string_equal(err, "JSON nested deeper than 64 levels");
    free(s);
}

static void test_brackets_in_strings_do_not_count(void **state)
{
    const char *doc = "{\"a\":\"[[[[[[[[[[{{{{{{{\\\"[[[[\",\"b\":[\"]]]]\"]}";
    char err[128] = "";
    json_t *v;

    (void)state;
    v = casb_json_parse(doc, strlen(doc), 3, err, sizeof(err));
    assert_non_null(v);
    assert_string_equal(casb_json_str(v, "a"), "[[[[[[[[[[{{{{{{{\"[[[[");
    json_decref(v);
}

static void test_getters(void **state)
{
    const char *doc = "{\"s\":\"str\",\"i\":7,\"r\":1.5,\"t\":true,\"f\":false,\"n\":null,"
                      "\"o\":{\"p\":{\"q\":\"deep\",\"num\":3}}}";
    json_t *v = casb_json_parse(doc, strlen(doc), 0, NULL, 0);

    (void)state;
    assert_non_null(v);
    assert_string_equal(casb_json_str(v, "s"), "str");
    assert_null(casb_json_str(v, "i"));
    assert_null(casb_json_str(v, "missing"));
    assert_null(casb_json_str(NULL, "s"));
    assert_int_equal(casb_json_int(v, "i", -1), 7);
    assert_int_equal(casb_json_int(v, "r", -1), -1);
    assert_int_equal(casb_json_int(v, "s", -1), -1);
    assert_int_equal(casb_json_bool(v, "t", -1), 1);
    assert_int_equal(casb_json_bool(v, "f", -1), 0);
    assert_int_equal(casb_json_bool(v, "n", -1), -1);
    assert_int_equal(casb_json_bool(v, "i", -1), -1); /* 7 is not a boolean */

    assert_string_equal(casb_json_path_str(v, "o.p.q"), "deep");
    assert_int_equal(json_integer_value(casb_json_path(v, "o.p.num")), 3);
    assert_true(json_is_object(casb_json_path(v, "o.p")));
    assert_null(casb_json_path(v, "o.p.q.r"));
    assert_null(casb_json_path(v, "o.x"));
    assert_null(casb_json_path(v, "o..p"));
    assert_null(casb_json_path_str(v, "o.p.num"));
    assert_string_equal(casb_json_path_str(v, "s"), "str");
    json_decref(v);
}

static void test_set_and_dump(void **state)
{
    json_t *o = json_object();
    json_t *arr = json_array();
    char *s;

    (void)state;
    assert_int_equal(casb_json_set_str(o, "a", "x\"y"), 0);
    assert_int_equal(casb_json_set_str(o, "b", NULL), 0);
    assert_int_equal(casb_json_set_str(o, "c", "bad\xff"), -1);
    assert_int_equal(casb_json_set_str(arr, "a", "x"), -1);
    s = casb_json_dump(o);
    assert_string_equal(s, "{\"a\":\"x\\\"y\",\"b\":null}");
    free(s);
    s = casb_json_dump(arr);
    assert_string_equal(s, "[]");
    free(s);
    assert_null(casb_json_dump(NULL));
    json_decref(o);
    json_decref(arr);
}

/* Found by tests/apifuzz: a member name cut inside a UTF-8 sequence made a 422 without its
 * detail (jansson refused the string). */
/* casb_text_append_json_str writes what jansson writes for the same string, for every
 * character that needs escaping, multi-byte UTF-8 and the empty string. */
static void test_text_json_str(void **state)
{
    static const char *const samples[] = {
        "", "plain", "q\"uote", "back\\slash", "a/b", "\b\f\n\r\t", "\x01\x1f\x7f",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91", "end\\", "\"", "x\x1fy\"z\\w",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        casb_text t = {0};
        json_t *s = json_string(samples[i]);
        char *want = json_dumps(s, JSON_ENCODE_ANY | JSON_COMPACT);

        assert_non_null(want);
        assert_int_equal(casb_text_append_json_str(&t, samples[i]), 0);
        assert_string_equal(t.data, want);
        free(want);
        json_decref(s);
        casb_text_free(&t);
    }
    casb_text t = {0};
    assert_int_equal(casb_text_append_json_str(&t, NULL), 0);
    assert_string_equal(t.data, "null");
    casb_text_free(&t);
}

static void test_text_pieces(void **state)
{
    casb_text t = {0};
    json_t *obj = json_pack("{s:i, s:s}", "a", 1, "b", "x\"y");
    json_t *empty = json_object();

    (void)state;
    assert_int_equal(casb_text_append_str(&t, "["), 0);
    assert_int_equal(casb_text_append_object_with(&t, obj, "\"c\":[2],\"d\":null"), 0);
    assert_int_equal(casb_text_append(&t, ",", 1), 0);
    assert_int_equal(casb_text_append_object_with(&t, empty, "\"c\":3"), 0);
    assert_int_equal(casb_text_append(&t, ",", 1), 0);
    assert_int_equal(casb_text_append_object_with(&t, obj, ""), 0);
    assert_int_equal(casb_text_append(&t, ",", 1), 0);
    assert_int_equal(casb_text_append_object_with_raw(&t, obj, "d\"", "{\"e\": [1, 2]}"), 0);
    assert_int_equal(casb_text_append_object_with_raw(&t, empty, "k", "true"), 0);
    assert_int_equal(casb_text_append_str(&t, "]"), 0);
    assert_string_equal(t.data, "[{\"a\":1,\"b\":\"x\\\"y\",\"c\":[2],\"d\":null},{\"c\":3},"
                                "{\"a\":1,\"b\":\"x\\\"y\"},"
                                "{\"a\":1,\"b\":\"x\\\"y\",\"d\\\"\":{\"e\": [1, 2]}}{\"k\":true}]");
    assert_int_equal(t.len, strlen(t.data));
    assert_int_equal(t.failed, 0);

    /* Nothing to serialise: the text stays as it was, and every later append fails. */
    size_t len = t.len;
    assert_int_equal(casb_text_append_object_with(&t, NULL, "\"c\":1"), -1);
    assert_int_equal(t.len, len);
    assert_int_equal(t.failed, 1);
    assert_int_equal(casb_text_append_str(&t, "x"), -1);
    assert_int_equal(t.len, len);
    casb_text_free(&t);
    assert_null(t.data);
    assert_int_equal(t.len, 0);

    /* Growth past the first allocation keeps every byte. */
    for (int i = 0; i < 10000; i++)
        assert_int_equal(casb_text_append(&t, "0123456789", 10), 0);
    assert_int_equal(t.len, 100000);
    assert_int_equal(memcmp(t.data + 99990, "0123456789", 10), 0);
    assert_int_equal(t.data[t.len], '\0');
    casb_text_free(&t);
    json_decref(obj);
    json_decref(empty);
}

static void test_utf8_prefix_ends_on_a_character(void **state)
{
    const char *s = "a\xf0\x9d\x91\xbb\xc3\xa9z"; /* a, U+1D47B (4 bytes), U+00E9, z */

    (void)state;
    assert_int_equal(casb_utf8_prefix_len(s, 100), 8);
    assert_int_equal(casb_utf8_prefix_len(s, 8), 8);
    assert_int_equal(casb_utf8_prefix_len(s, 7), 7);
    assert_int_equal(casb_utf8_prefix_len(s, 6), 5);
    assert_int_equal(casb_utf8_prefix_len(s, 5), 5);
    assert_int_equal(casb_utf8_prefix_len(s, 4), 1);
    assert_int_equal(casb_utf8_prefix_len(s, 2), 1);
    assert_int_equal(casb_utf8_prefix_len(s, 1), 1);
    assert_int_equal(casb_utf8_prefix_len(s, 0), 0);
    assert_int_equal(casb_utf8_prefix_len("\xc3\xa9", 1), 0);
    assert_int_equal(casb_utf8_prefix_len(NULL, 5), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_depth_bomb),
        cmocka_unit_test(test_brackets_in_strings_do_not_count),
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_set_and_dump),
        cmocka_unit_test(test_utf8_prefix_ends_on_a_character),
        cmocka_unit_test(test_text_pieces),
        cmocka_unit_test(test_text_json_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
