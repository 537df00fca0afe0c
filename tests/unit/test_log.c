/* Unit tests for log.c: every line is one valid JSON object with ts/level/service/msg and
 * the pairs, hostile strings are escaped, the level filter holds, threads never interleave.
 * stderr is captured by pointing fd 2 at a temporary file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "casb/log.h"

static int saved_stderr = -1;
static FILE *capture;

static void capture_start(void)
{
    fflush(stderr);
    capture = tmpfile();
    assert_non_null(capture);
    saved_stderr = dup(2);
    assert_true(saved_stderr >= 0);
    assert_true(dup2(fileno(capture), 2) >= 0);
}

/* Restores stderr and returns everything written meanwhile (caller frees). */
static char *capture_end(void)
{
    long size;
    char *buf;

    fflush(stderr);
    assert_true(dup2(saved_stderr, 2) >= 0);
    close(saved_stderr);
    size = ftell(capture);
    assert_true(size >= 0);
    buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    rewind(capture);
    assert_int_equal(fread(buf, 1, (size_t)size, capture), (size_t)size);
    buf[size] = '\0';
    fclose(capture);
    return buf;
}

static json_t *parse_line(const char *line)
{
    json_error_t e;
    size_t n = strcspn(line, "\n");
    json_t *v = json_loadb(line, n, 0, &e);

    if (!v)
        fail_msg("log line is not JSON (%s): %s", e.text, line);
    assert_true(json_is_object(v));
    return v;
}

static void test_fields_and_pairs(void **state)
{
    char *out;
    json_t *v;
    const char *ts;

    (void)state;
    casb_log_init("scanner-worker", CASB_LOG_DEBUG);
    capture_start();
    casb_log_info("scan started", "scan_id", "s-1", "integration_id", "i-2", "error", NULL);
    out = capture_end();

    /* Exactly one line. */
    assert_int_equal(strchr(out, '\n') - out, (long)strlen(out) - 1);
    v = parse_line(out);
    assert_string_equal(json_string_value(json_object_get(v, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(v, "service")), "scanner-worker");
    assert_string_equal(json_string_value(json_object_get(v, "msg")), "scan started");
    assert_string_equal(json_string_value(json_object_get(v, "scan_id")), "s-1");
    assert_string_equal(json_string_value(json_object_get(v, "integration_id")), "i-2");
    assert_true(json_is_null(json_object_get(v, "error")));
    ts = json_string_value(json_object_get(v, "ts"));
    assert_non_null(ts);
    /* 2026-11-28T20:25:55.123Z */
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[19], '.');
    assert_int_equal(ts[23], 'Z');
    /* The fixed fields come first, in this order. */
    assert_true(strncmp(out, "{\"ts\":", 6) == 0);
    assert_true(strstr(out, "\"level\"") < strstr(out, "\"service\""));
    assert_true(strstr(out, "\"service\"") < strstr(out, "\"msg\""));
    json_decref(v);
    free(out);
}

static void test_escaping(void **state)
{
    const char *hostile = "quote\" backslash\\ newline\n tab\t bell\x07 del\x7f \xc3\xa9";
    char *out;
    json_t *v;

    (void)state;
    casb_log_init("t", CASB_LOG_DEBUG);
    capture_start();
    casb_log_warn(hostile, "k\"ey", hostile, "bad_utf8", "a\xff\xc3(b\xed\xa0\x80z", NULL);
    out = capture_end();

    /* Exactly one line: the embedded newline was escaped. */
    assert_int_equal(strchr(out, '\n') - out, (long)strlen(out) - 1);
    v = parse_line(out);
    assert_string_equal(json_string_value(json_object_get(v, "msg")), hostile);
    assert_string_equal(json_string_value(json_object_get(v, "k\"ey")), hostile);
    /* Invalid bytes (0xff, truncated 0xc3, a UTF-16 surrogate) become U+FFFD. */
    assert_string_equal(json_string_value(json_object_get(v, "bad_utf8")),
                        "a\xef\xbf\xbd\xef\xbf\xbd(b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz");
    assert_string_equal(json_string_value(json_object_get(v, "level")), "warn");
    json_decref(v);
    free(out);
}

static void test_level_filter(void **state)
{
    char *out;
    json_t *v;

    (void)state;
    casb_log_init("t", CASB_LOG_WARN);
    capture_start();
    casb_log_debug("hidden debug");
    casb_log_info("hidden info", "k", "v");
    casb_log_warn("shown warn");
    casb_log_error("shown error", "k", "v");
    out = capture_end();

    assert_null(strstr(out, "hidden"));
    v = parse_line(out);
    assert_string_equal(json_string_value(json_object_get(v, "msg")), "shown warn");
    json_decref(v);
    v = parse_line(strchr(out, '\n') + 1);
    assert_string_equal(json_string_value(json_object_get(v, "msg")), "shown error");
    assert_string_equal(json_string_value(json_object_get(v, "level")), "error");
    json_decref(v);
    free(out);
}

static void test_level_parse(void **state)
{
    (void)state;
    assert_int_equal(casb_log_level_parse("debug"), CASB_LOG_DEBUG);
    assert_int_equal(casb_log_level_parse("INFO"), CASB_LOG_INFO);
    assert_int_equal(casb_log_level_parse("warn"), CASB_LOG_WARN);
    assert_int_equal(casb_log_level_parse("warning"), CASB_LOG_WARN);
    assert_int_equal(casb_log_level_parse("error"), CASB_LOG_ERROR);
    assert_int_equal(casb_log_level_parse("trace"), -1);
    assert_int_equal(casb_log_level_parse(""), -1);
    assert_int_equal(casb_log_level_parse(NULL), -1);
}

#define THREADS 4
#define LINES_PER_THREAD 300

static void *log_many(void *arg)
{
    char id[16];

    snprintf(id, sizeof(id), "t%ld", (long)(intptr_t)arg);
    for (int i = 0; i < LINES_PER_THREAD; i++)
        casb_log_info("concurrent line with some padding to make writes longer than a few bytes",
                      "thread", id, "payload", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    return NULL;
}

static void test_threads_do_not_interleave(void **state)
{
    pthread_t th[THREADS];
    char *out, *line, *save = NULL;
    int count[THREADS] = {0};
    int lines = 0;

    (void)state;
    casb_log_init("t", CASB_LOG_INFO);
    capture_start();
    for (long i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, log_many, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    out = capture_end();

    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *v = parse_line(line);
        const char *t = json_string_value(json_object_get(v, "thread"));

        assert_non_null(t);
        count[t[1] - '0']++;
        lines++;
        json_decref(v);
    }
    assert_int_equal(lines, THREADS * LINES_PER_THREAD);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(count[i], LINES_PER_THREAD);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_and_pairs),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_level_filter),
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_threads_do_not_interleave),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
