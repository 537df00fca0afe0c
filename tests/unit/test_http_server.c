/* The HTTP server against a real civetweb listener on 127.0.0.1, called with libcurl. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "casb/auth.h"
#include "casb/http_server.h"
#include "casb/timeutil.h"
#include "casb/log.h"

#define ADDR "127.0.0.1:18181"
#define BASE "http://127.0.0.1:18181"
#define TOKEN "test-admin-token-0123456789"
#define MAX_BODY 65536

static casb_http_server *server;
static casb_auth *auth;
static CURL *curl;
static char static_dir[64];
static volatile int ready_flag = 1;
static int app_marker;

typedef struct {
    long status;
    char *body;
    size_t body_len;
    char *headers;
    size_t headers_len;
    long new_connections;
} result;

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    char **buf = ud;
    size_t len = *buf ? strlen(*buf) : 0;
    char *nb = realloc(*buf, len + size * n + 1);

    if (!nb)
        return 0;
    memcpy(nb + len, p, size * n);
    nb[len + size * n] = '\0';
    *buf = nb;
    return size * n;
}

typedef struct {
    const char *data;
    size_t len;
    size_t pos;
} upload;

static size_t read_upload(char *p, size_t size, size_t n, void *ud)
{
    upload *u = ud;
    size_t want = size * n;

    if (want > u->len - u->pos)
        want = u->len - u->pos;
    memcpy(p, u->data + u->pos, want);
    u->pos += want;
    return want;
}

/* One request on the shared handle (so keep-alive is exercised). body_len < 0: send body
 * with chunked transfer encoding. */
static void call(const char *method, const char *path, const char *const *headers,
                 const char *body, long body_len, result *res)
{
    struct curl_slist *hl = NULL;
    char url[512];
    upload up = {0};
    CURLcode rc;

    memset(res, 0, sizeof(*res));
    snprintf(url, sizeof(url), "%s%s", BASE, path);
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &res->body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &res->headers);
    for (const char *const *h = headers; h && *h; h++)
        hl = curl_slist_append(hl, *h);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (body && body_len >= 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, body_len);
    } else if (body) {
        up.data = body;
        up.len = strlen(body);
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_upload);
        curl_easy_setopt(curl, CURLOPT_READDATA, &up);
        hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hl);
    rc = curl_easy_perform(curl);
    curl_slist_free_all(hl);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->status);
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &res->new_connections);
    if (!res->body)
        res->body = strdup("");
    res->body_len = strlen(res->body);
    if (!res->headers)
        res->headers = strdup("");
}

static void result_free(result *r)
{
    free(r->body);
    free(r->headers);
}

/* Value of a response header (first occurrence) into a static buffer, or NULL. */
static const char *hdr(const result *r, const char *name)
{
    static char buf[512];
    size_t nlen = strlen(name);
    const char *p = r->headers;

    while (p && *p) {
        size_t linelen = strcspn(p, "\r\n");

        if (linelen > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            size_t vlen;

            while (*v == ' ')
                v++;
            vlen = (size_t)(p + linelen - v);
            if (vlen >= sizeof(buf))
                vlen = sizeof(buf) - 1;
            memcpy(buf, v, vlen);
            buf[vlen] = '\0';
            return buf;
        }
        p += linelen;
        while (*p == '\r' || *p == '\n')
            p++;
    }
    return NULL;
}

static json_t *body_json(const result *r)
{
    json_error_t e;
    json_t *v = json_loads(r->body, 0, &e);

    if (!v)
        fail_msg("not JSON (%s): %s", e.text, r->body);
    return v;
}

/* Checks the problem+json shape and returns the parsed object. */
static json_t *expect_problem(const result *r, long status, const char *title)
{
    json_t *p;

    assert_int_equal(r->status, status);
    assert_non_null(hdr(r, "Content-Type"));
    assert_string_equal(hdr(r, "Content-Type"), "application/problem+json");
    assert_non_null(hdr(r, "Content-Length"));
    p = body_json(r);
    assert_string_equal(json_string_value(json_object_get(p, "type")), "about:blank");
    assert_string_equal(json_string_value(json_object_get(p, "title")), title);
    assert_int_equal(json_integer_value(json_object_get(p, "status")), status);
    assert_true(json_is_string(json_object_get(p, "detail")));
    return p;
}

static const char *const auth_headers[] = {"Authorization: Bearer " TOKEN, NULL};
static const char *const json_headers[] = {"Authorization: Bearer " TOKEN,
                                           "Content-Type: application/json", NULL};

/* ---- handlers ---- */

static int h_thing(casb_http_req *r)
{
    char q[64];
    json_t *o = json_object();
    const casb_principal *who = casb_http_principal(r);

    json_object_set_new(o, "id", json_string(casb_http_param(r, "id")));
    if (casb_http_query(r, "q", q, sizeof(q)) == 1)
        json_object_set_new(o, "q", json_string(q));
    json_object_set_new(o, "missing_q", json_integer(casb_http_query(r, "nope", q, sizeof(q))));
    json_object_set_new(o, "small_q", json_integer(casb_http_query(r, "q", q, 3)));
    json_object_set_new(o, "account", json_string(who ? who->account_id : "none"));
    json_object_set_new(o, "app", json_boolean(casb_http_app(r) == &app_marker));
    return casb_http_reply_json(r, 200, o);
}

static int h_summary(casb_http_req *r)
{
    return casb_http_reply_json(r, 200, json_pack("{s:b}", "summary", 1));
}

static int h_part(casb_http_req *r)
{
    return casb_http_reply_json(r, 200, json_pack("{s:s,s:s}", "id", casb_http_param(r, "id"),
                                                  "part", casb_http_param(r, "part")));
}

static int h_create(casb_http_req *r)
{
    json_t *in = casb_http_body_json(r);

    if (!in)
        return 400; /* already answered */
    casb_http_add_header(r, "Location", "/v1/things/new-id");
    json_object_set_new(in, "created", json_true());
    return casb_http_reply_json(r, 201, in);
}

static int h_fail(casb_http_req *r)
{
    return casb_http_reply_problem(r, 422, "name is required",
                                   json_pack("{s:s,s:s}", "field", "name", "type", "override"));
}

static int h_delete(casb_http_req *r)
{
    return casb_http_reply_json(r, 204, NULL);
}

static int h_ping(casb_http_req *r)
{
    return casb_http_reply_text(r, 200, "text/plain", "pong", 4);
}

static int h_stream(casb_http_req *r)
{
    static const char *parts[] = {"alpha\n", "beta\n", "gamma\n"};

    casb_http_add_header(r, "X-Stream", "yes");
    if (casb_http_stream_begin(r, 200, "application/x-ndjson") != 0)
        return 500;
    for (size_t i = 0; i < 3; i++)
        casb_http_stream_write(r, parts[i], strlen(parts[i]));
    casb_http_stream_end(r);
    return 200;
}

/* A stream that fails halfway. */
static int h_stream_broken(casb_http_req *r)
{
    if (casb_http_stream_begin(r, 200, "text/csv") != 0)
        return 500;
    casb_http_stream_write(r, "a,b\r\n1,2\r\n", 10);
    casb_http_stream_abort(r);
    return 200;
}

static int h_echo_len(casb_http_req *r)
{
    size_t len;
    char buf[32];

    casb_http_body(r, &len);
    snprintf(buf, sizeof(buf), "%zu", len);
    return casb_http_reply_text(r, 200, "text/plain", buf, strlen(buf));
}

#define TWICE_UNSET 12345
static volatile int twice_rc[2] = {TWICE_UNSET, TWICE_UNSET};

/* Reply calls return the status sent; a second reply is refused. */
static int h_twice(casb_http_req *r)
{
    twice_rc[0] = casb_http_reply_text(r, 202, "text/plain", "first", 5);
    twice_rc[1] = casb_http_reply_problem(r, 500, "second", NULL);
    return twice_rc[0];
}

static int h_noreply(casb_http_req *r)
{
    return 200;
}

static int ready_cb(void *app, char *reason, size_t reasonlen)
{
    if (ready_flag)
        return 1;
    snprintf(reason, reasonlen, "database unreachable");
    return 0;
}

static void write_file(const char *dir, const char *name, const char *content)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int setup(void **state)
{
    char err[256];
    casb_http_server_opts opts = {0};

    casb_log_init("test_http_server", CASB_LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(static_dir, sizeof(static_dir), "/tmp/casb-static-XXXXXX");
    if (!mkdtemp(static_dir))
        return -1;
    write_file(static_dir, "index.html", "<h1>casb</h1>\n");
    write_file(static_dir, "app.js", "console.log('casb');\n");
    if (casb_auth_new(&auth, TOKEN, err, sizeof(err)) != 0)
        return -1;
    opts.addr = ADDR;
    opts.max_body_bytes = MAX_BODY;
    opts.num_threads = 4;
    opts.auth = auth;
    opts.ready = ready_cb;
    opts.app = &app_marker;
    opts.static_dir = static_dir;
    opts.cors_origins = "http://127.0.0.1:8082, https://dash.example.com";
    if (casb_http_server_new(&server, &opts, err, sizeof(err)) != 0)
        return -1;
    /* Registration order puts the parameter route first: the literal must still win. */
    if (casb_http_route(server, "GET", "/v1/things/{id}", h_thing, 0) ||
        casb_http_route(server, "GET", "/v1/things/summary", h_summary, 0) ||
        casb_http_route(server, "GET", "/v1/things/{id}/parts/{part}", h_part, 0) ||
        casb_http_route(server, "DELETE", "/v1/things/{id}", h_delete, 0) ||
        casb_http_route(server, "POST", "/v1/things", h_create, 0) ||
        casb_http_route(server, "POST", "/v1/things/{id}/fail", h_fail, 0) ||
        casb_http_route(server, "POST", "/v1/echo-length", h_echo_len, 0) ||
        casb_http_route(server, "GET", "/v1/public/ping", h_ping, CASB_ROUTE_PUBLIC) ||
        casb_http_route(server, "GET", "/v1/stream", h_stream, 0) ||
        casb_http_route(server, "GET", "/v1/stream-broken", h_stream_broken, 0) ||
        casb_http_route(server, "GET", "/v1/noreply", h_noreply, 0) ||
        casb_http_route(server, "GET", "/v1/twice", h_twice, 0))
        return -1;
    if (casb_http_server_start(server, err, sizeof(err)) != 0) {
        fprintf(stderr, "start: %s\n", err);
        return -1;
    }
    curl = curl_easy_init();
    return curl ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];

    curl_easy_cleanup(curl);
    casb_http_server_free(server);
    casb_auth_free(auth);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", static_dir);
    if (system(cmd) != 0)
        return -1;
    curl_global_cleanup();
    return 0;
}

/* ---- tests ---- */

static void test_route_registration_rules(void **state)
{
    char err[128];
    casb_http_server *s = NULL;
    casb_http_server_opts opts = {.addr = "127.0.0.1:18189"};

    assert_int_equal(casb_http_server_new(&s, &opts, err, sizeof(err)), 0);
    assert_int_equal(casb_http_route(s, "get", "/x", h_ping, 0), -1);     /* lower case */
    assert_int_equal(casb_http_route(s, "GET", "x", h_ping, 0), -1);      /* no leading / */
    assert_int_equal(casb_http_route(s, "GET", "/a{id}", h_ping, 0), -1); /* partial param */
    assert_int_equal(casb_http_route(s, "GET", "/healthz", h_ping, 0), -1); /* built in */
    assert_int_equal(casb_http_route(s, "GET", "/x/{id}", h_ping, 0), 0);
    assert_int_equal(casb_http_route(s, "GET", "/x/{id}", h_ping, 0), -1); /* duplicate */
    /* A protected route without an authenticator cannot start. */
    assert_int_not_equal(casb_http_server_start(s, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "auth"));
    casb_http_server_free(s);
}

static void test_routing_and_params(void **state)
{
    result r;
    json_t *o;

    call("GET", "/v1/things/abc%20x%2Fy?q=hello%20world&other=1", auth_headers, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(hdr(&r, "Content-Type"), "application/json");
    assert_int_equal(atol(hdr(&r, "Content-Length")), (long)r.body_len);
    o = body_json(&r);
    /* %2F stays inside its segment, then decodes. */
    assert_string_equal(json_string_value(json_object_get(o, "id")), "abc x/y");
    assert_string_equal(json_string_value(json_object_get(o, "q")), "hello world");
    assert_int_equal(json_integer_value(json_object_get(o, "missing_q")), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "small_q")), -1);
    assert_string_equal(json_string_value(json_object_get(o, "account")),
                        CASB_DEFAULT_ACCOUNT_ID);
    assert_true(json_is_true(json_object_get(o, "app")));
    json_decref(o);
    result_free(&r);

    call("GET", "/v1/things/summary", auth_headers, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"summary\":true}");
    result_free(&r);

    call("GET", "/v1/things/t1/parts/p2", auth_headers, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    o = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(o, "id")), "t1");
    assert_string_equal(json_string_value(json_object_get(o, "part")), "p2");
    json_decref(o);
    result_free(&r);

    call("DELETE", "/v1/things/t1", auth_headers, NULL, 0, &r);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body_len, 0);
    result_free(&r);

    /* HEAD answers like GET without a body. */
    call("HEAD", "/v1/things/t1", auth_headers, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    assert_true(atol(hdr(&r, "Content-Length")) > 0);
    result_free(&r);

    /* Trailing slashes and extra segments are other paths. */
    call("GET", "/v1/things/t1/", auth_headers, NULL, 0, &r);
    json_decref(expect_problem(&r, 404, "Not Found"));
    result_free(&r);
}

static void test_auth(void **state)
{
    static const char *const wrong[] = {"Authorization: Bearer not-the-token", NULL};
    static const char *const basic[] = {"Authorization: Basic dXNlcjpwYXNz", NULL};
    result r;

    call("GET", "/v1/things/a", NULL, NULL, 0, &r);
    json_decref(expect_problem(&r, 401, "Unauthorized"));
    assert_non_null(hdr(&r, "WWW-Authenticate"));
    assert_int_equal(strncmp(hdr(&r, "WWW-Authenticate"), "Bearer", 6), 0);
    result_free(&r);

    call("GET", "/v1/things/a", wrong, NULL, 0, &r);
    json_decref(expect_problem(&r, 401, "Unauthorized"));
    result_free(&r);

    call("GET", "/v1/things/a", basic, NULL, 0, &r);
    json_decref(expect_problem(&r, 401, "Unauthorized"));
    result_free(&r);

    call("GET", "/v1/things/a", auth_headers, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    result_free(&r);

    call("GET", "/v1/public/ping", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "pong");
    result_free(&r);
}

static void test_not_found_and_method_not_allowed(void **state)
{
    result r;
    json_t *p;

    call("GET", "/v1/nothing-here", auth_headers, NULL, 0, &r);
    p = expect_problem(&r, 404, "Not Found");
    assert_int_equal(json_object_size(p), 4);
    json_decref(p);
    result_free(&r);

    call("PUT", "/v1/things/abc", auth_headers, "{}", 2, &r);
    json_decref(expect_problem(&r, 405, "Method Not Allowed"));
    assert_non_null(hdr(&r, "Allow"));
    assert_string_equal(hdr(&r, "Allow"), "GET, DELETE");
    result_free(&r);

    /* A literal resource shadows the {id} pattern of other methods: DELETE of "summary" is
     * no deletion of a thing named so. */
    call("DELETE", "/v1/things/summary", auth_headers, NULL, 0, &r);
    json_decref(expect_problem(&r, 405, "Method Not Allowed"));
    assert_string_equal(hdr(&r, "Allow"), "GET");
    result_free(&r);

    call("POST", "/healthz", NULL, NULL, 0, &r);
    json_decref(expect_problem(&r, 405, "Method Not Allowed"));
    assert_string_equal(hdr(&r, "Allow"), "GET");
    result_free(&r);

    call("GET", "/v1/twice", auth_headers, NULL, 0, &r);
    assert_int_equal(r.status, 202);
    assert_string_equal(r.body, "first");
    /* The client has the first reply before the handler thread tries the second one. */
    for (int i = 0; i < 200 && twice_rc[1] == TWICE_UNSET; i++)
        casb_sleep_ms(10);
    assert_int_equal(twice_rc[0], 202);
    assert_int_equal(twice_rc[1], -1);
    result_free(&r);

    /* A handler that forgets to answer still produces a response. */
    call("GET", "/v1/noreply", auth_headers, NULL, 0, &r);
    json_decref(expect_problem(&r, 500, "Internal Server Error"));
    result_free(&r);
}

static void test_json_body(void **state)
{
    static const char *const text_headers[] = {"Authorization: Bearer " TOKEN,
                                               "Content-Type: text/plain", NULL};
    static const char *const charset_headers[] = {"Authorization: Bearer " TOKEN,
                                                  "Content-Type: application/json; charset=utf-8",
                                                  NULL};
    result r;
    json_t *o;
    char deep[200];

    call("POST", "/v1/things", json_headers, "{\"name\":\"x\"}", 12, &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(hdr(&r, "Location"), "/v1/things/new-id");
    o = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(o, "name")), "x");
    assert_true(json_is_true(json_object_get(o, "created")));
    json_decref(o);
    result_free(&r);

    call("POST", "/v1/things", charset_headers, "{\"name\":\"y\"}", 12, &r);
    assert_int_equal(r.status, 201);
    result_free(&r);

    call("POST", "/v1/things", text_headers, "{\"name\":\"x\"}", 12, &r);
    json_decref(expect_problem(&r, 415, "Unsupported Media Type"));
    result_free(&r);

    call("POST", "/v1/things", json_headers, "{\"name\":", 8, &r);
    json_decref(expect_problem(&r, 400, "Bad Request"));
    result_free(&r);

    call("POST", "/v1/things", json_headers, "[1,2]", 5, &r);
    json_decref(expect_problem(&r, 400, "Bad Request"));
    result_free(&r);

    call("POST", "/v1/things", json_headers, "", 0, &r);
    json_decref(expect_problem(&r, 400, "Bad Request"));
    result_free(&r);

    /* Deeper than 32 levels is refused. */
    snprintf(deep, sizeof(deep), "{\"a\":");
    memset(deep + 5, '[', 40);
    memset(deep + 45, ']', 40);
    deep[85] = '}';
    deep[86] = '\0';
    call("POST", "/v1/things", json_headers, deep, (long)strlen(deep), &r);
    json_decref(expect_problem(&r, 400, "Bad Request"));
    result_free(&r);

    /* Extra members are added, and never replace the standard ones. */
    call("POST", "/v1/things/a/fail", json_headers, "{}", 2, &r);
    o = expect_problem(&r, 422, "Unprocessable Content");
    assert_string_equal(json_string_value(json_object_get(o, "field")), "name");
    assert_string_equal(json_string_value(json_object_get(o, "detail")), "name is required");
    json_decref(o);
    result_free(&r);
}

static void test_body_limit(void **state)
{
    char *big = malloc(MAX_BODY + 2);
    result r;

    assert_non_null(big);
    memset(big, 'a', MAX_BODY + 1);
    big[MAX_BODY + 1] = '\0';

    /* Exactly the limit is accepted. */
    call("POST", "/v1/echo-length", auth_headers, big, MAX_BODY, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(atol(r.body), MAX_BODY);
    result_free(&r);

    /* Content-Length over the limit: refused before reading. */
    call("POST", "/v1/echo-length", auth_headers, big, MAX_BODY + 1, &r);
    json_decref(expect_problem(&r, 413, "Content Too Large"));
    result_free(&r);

    /* Chunked, no length announced: refused while streaming. */
    call("POST", "/v1/echo-length", auth_headers, big, -1, &r);
    json_decref(expect_problem(&r, 413, "Content Too Large"));
    result_free(&r);

    /* A small chunked body is read whole. */
    call("POST", "/v1/echo-length", auth_headers, "0123456789", -1, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "10");
    result_free(&r);

    /* The server is still serving after closing those connections. */
    call("GET", "/healthz", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    result_free(&r);
    free(big);
}

static void test_health_ready_metrics(void **state)
{
    result r;
    json_t *p;

    call("GET", "/healthz", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    assert_string_equal(hdr(&r, "Content-Type"), "application/json");
    result_free(&r);

    call("GET", "/readyz", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    result_free(&r);

    ready_flag = 0;
    call("GET", "/readyz", NULL, NULL, 0, &r);
    p = expect_problem(&r, 503, "Service Unavailable");
    assert_string_equal(json_string_value(json_object_get(p, "detail")), "database unreachable");
    json_decref(p);
    result_free(&r);
    ready_flag = 1;

    call("GET", "/v1/things/metric-probe-raw-id", auth_headers, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    result_free(&r);
    call("GET", "/no/such/path/xyz", NULL, NULL, 0, &r);
    result_free(&r);

    call("GET", "/metrics", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(hdr(&r, "Content-Type"), "text/plain; version=0.0.4");
    assert_non_null(strstr(r.body, "# TYPE casb_http_requests_total counter"));
    assert_non_null(strstr(r.body, "casb_http_requests_total{method=\"GET\","
                                   "route=\"/v1/things/{id}\",status=\"200\"}"));
    assert_non_null(strstr(r.body, "route=\"/readyz\",status=\"503\""));
    assert_non_null(strstr(r.body, "route=\"unmatched\",status=\"404\""));
    assert_non_null(strstr(r.body, "# TYPE casb_http_request_duration_seconds histogram"));
    assert_non_null(strstr(r.body, "casb_http_request_duration_seconds_bucket{method=\"GET\","
                                   "route=\"/v1/things/{id}\",le=\"+Inf\"} "));
    assert_non_null(strstr(r.body, "casb_http_request_duration_seconds_count{method=\"GET\","
                                   "route=\"/v1/things/{id}\"} "));
    assert_non_null(strstr(r.body, "casb_http_request_duration_seconds_sum{method=\"GET\","
                                   "route=\"unmatched\"} "));
    /* Raw paths never become label values. */
    assert_null(strstr(r.body, "metric-probe-raw-id"));
    assert_null(strstr(r.body, "xyz"));
    result_free(&r);
}

static void test_streaming_chunked(void **state)
{
    result r;

    call("GET", "/v1/stream", auth_headers, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(hdr(&r, "Transfer-Encoding"), "chunked");
    assert_null(hdr(&r, "Content-Length"));
    assert_string_equal(hdr(&r, "X-Stream"), "yes");
    assert_string_equal(hdr(&r, "Content-Type"), "application/x-ndjson");
    assert_string_equal(r.body, "alpha\nbeta\ngamma\n");
    result_free(&r);

    /* The connection survives a chunked response. */
    call("GET", "/healthz", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.new_connections, 0);
    result_free(&r);
}

static void test_keep_alive(void **state)
{
    result r;

    call("GET", "/healthz", NULL, NULL, 0, &r);
    result_free(&r);
    /* Successes and problems alike carry Content-Length, so the connection is reused. */
    call("GET", "/v1/nothing-here", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    assert_int_equal(r.new_connections, 0);
    assert_string_equal(hdr(&r, "Connection"), "keep-alive");
    result_free(&r);
    call("GET", "/v1/things/a", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 401);
    assert_int_equal(r.new_connections, 0);
    result_free(&r);
    call("GET", "/v1/things/a", auth_headers, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.new_connections, 0);
    result_free(&r);
}

/* A new connection to the test server that has sent request; reads time out after 3 s. */
static int send_raw(const char *request)
{
    struct sockaddr_in sa = {0};
    struct timeval tv = {3, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(18181);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    return fd;
}

/* Sends raw bytes on a new connection and reads until the server closes it (or 3 s). */
static char *raw_exchange(const char *request)
{
    char *out = calloc(1, 65536);
    size_t len = 0;
    int fd = send_raw(request);

    assert_non_null(out);
    for (;;) {
        ssize_t n = read(fd, out + len, 65535 - len);

        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    return out;
}

/* An aborted stream is never mistaken for a complete one: the last chunk is missing and the
 * connection closes, which curl reports as a partial transfer. */
static void test_stream_abort(void **state)
{
    int64_t t0 = casb_monotonic_ms();
    char *out;

    (void)state;
    out = raw_exchange("GET /v1/stream-broken HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                       TOKEN "\r\n\r\n");
    assert_non_null(strstr(out, "200 OK"));
    assert_non_null(strstr(out, "1,2"));
    /* The terminating chunk "0\r\n\r\n" never came, and the server closed the connection:
     * raw_exchange read to EOF well before its 3 s timeout. */
    assert_null(strstr(out, "\r\n0\r\n\r\n"));
    assert_true(casb_monotonic_ms() - t0 < 2500);
    free(out);
}


static int count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* An error answered before the body was read closes the connection: otherwise the unread
 * body would be parsed as the next request (here it is one, smuggled in the body). */
static void test_unread_body_closes_connection(void **state)
{
    static const char smuggled[] = "GET /v1/public/ping HTTP/1.1\r\nHost: x\r\n\r\n";
    char req[512];
    char *out;

    snprintf(req, sizeof(req),
             "POST /v1/nothing-here HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(smuggled), smuggled);
    out = raw_exchange(req);
    assert_int_equal(count(out, "HTTP/1.1 "), 1);
    assert_non_null(strstr(out, "HTTP/1.1 404"));
    assert_non_null(strstr(out, "Connection: close"));
    assert_null(strstr(out, "pong"));
    free(out);

    snprintf(req, sizeof(req),
             "POST /v1/things HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(smuggled), smuggled);
    out = raw_exchange(req);
    assert_int_equal(count(out, "HTTP/1.1 "), 1);
    assert_non_null(strstr(out, "HTTP/1.1 401"));
    assert_non_null(strstr(out, "Connection: close"));
    assert_null(strstr(out, "pong"));
    free(out);

    /* With the body read, keep-alive goes on: two pipelined requests, two answers. */
    out = raw_exchange("POST /v1/echo-length HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                       "\r\nContent-Length: 3\r\n\r\nabc"
                       "GET /v1/public/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(count(out, "HTTP/1.1 200"), 2);
    assert_non_null(strstr(out, "pong"));
    free(out);

    /* HTTP/1.0 gets a stream without chunked encoding, ended by closing. */
    out = raw_exchange("GET /v1/stream HTTP/1.0\r\nAuthorization: Bearer " TOKEN "\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.0 200"));
    assert_null(strstr(out, "chunked"));
    assert_non_null(strstr(out, "\r\n\r\nalpha\nbeta\ngamma\n"));
    free(out);
}

/* Reads once from a new connection after sending request: what one read() returns. */
static char *first_read(const char *request, size_t *len)
{
    char *out = calloc(1, 65536);
    int fd = send_raw(request);
    ssize_t n;

    assert_non_null(out);
    n = read(fd, out, 65535);
    close(fd);
    *len = n > 0 ? (size_t)n : 0;
    return out;
}

/* The head is written by casb_http_server itself (civetweb's header calls send each line on
 * its own): in one write with the body, Date as an IMF-fixdate, Connection as civetweb
 * would decide it. */
static void test_response_head(void **state)
{
    const char *body, *clen;
    struct tm tm = {0};
    size_t len;
    char *out;
    result r;

    (void)state;
    /* Head and body arrive together: the first read holds the whole answer. */
    out = first_read("GET /v1/things/t1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                     "\r\n\r\n", &len);
    assert_true(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(body = strstr(out, "\r\n\r\n"));
    body += 4;
    assert_non_null(clen = strstr(out, "\r\nContent-Length: "));
    assert_int_equal((size_t)(out + len - body), strtoul(clen + 18, NULL, 10));
    assert_non_null(strstr(body, "\"id\":\"t1\""));
    free(out);

    call("GET", "/v1/public/ping", NULL, NULL, 0, &r);
    assert_int_equal(strlen(hdr(&r, "Date")), 29); /* "Sun, 06 Nov 1994 08:49:37 GMT" */
    assert_non_null(strptime(hdr(&r, "Date"), "%a, %d %b %Y %H:%M:%S GMT", &tm));
    assert_true(llabs((long long)(timegm(&tm) - time(NULL))) <= 5);
    assert_string_equal(hdr(&r, "Connection"), "keep-alive");
    result_free(&r);

    /* The client's wish, else HTTP/1.1 keeps the connection and HTTP/1.0 closes it. */
    out = raw_exchange("GET /v1/public/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(out, "\r\nConnection: close\r\n"));
    assert_non_null(strstr(out, "\r\n\r\npong"));
    free(out);
    out = raw_exchange("GET /v1/public/ping HTTP/1.0\r\n\r\n");
    assert_true(strncmp(out, "HTTP/1.0 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(out, "\r\nConnection: close\r\n"));
    free(out);
    out = first_read("GET /v1/public/ping HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &len);
    assert_non_null(strstr(out, "\r\nConnection: keep-alive\r\n"));
    free(out);
    /* Unless the body ends with the connection: a stream to an HTTP/1.0 client. */
    out = raw_exchange("GET /v1/stream HTTP/1.0\r\nConnection: Keep-Alive\r\nAuthorization: Bearer "
                       TOKEN "\r\n\r\n");
    assert_non_null(strstr(out, "\r\nConnection: close\r\n"));
    assert_non_null(strstr(out, "\r\n\r\nalpha\nbeta\ngamma\n"));
    free(out);
}

static void test_static_files(void **state)
{
    result r;

    call("GET", "/app.js", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "console.log('casb');\n");
    result_free(&r);

    call("GET", "/", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "<h1>casb</h1>\n");
    result_free(&r);

    call("GET", "/missing.css", NULL, NULL, 0, &r);
    json_decref(expect_problem(&r, 404, "Not Found"));
    result_free(&r);

    /* Encoded dot segments cannot leave the directory. */
    call("GET", "/%2e%2e/%2e%2e/etc/passwd", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    assert_null(strstr(r.body, "root:"));
    result_free(&r);

    /* Static files are GET only. */
    call("POST", "/app.js", NULL, "x", 1, &r);
    assert_int_equal(r.status, 404);
    result_free(&r);
}

/* CORS: listed origins only; preflights are answered before authentication. */
static void test_cors(void **state)
{
    static const char *const listed_get[] = {"Authorization: Bearer " TOKEN,
                                             "Origin: https://dash.example.com", NULL};
    static const char *const unlisted_get[] = {"Authorization: Bearer " TOKEN,
                                               "Origin: https://evil.example.com", NULL};
    static const char *const listed_preflight[] = {
        "Origin: http://127.0.0.1:8082", "Access-Control-Request-Method: DELETE",
        "Access-Control-Request-Headers: authorization", NULL};
    static const char *const unlisted_preflight[] = {
        "Origin: http://127.0.0.1:8082.evil.com", "Access-Control-Request-Method: DELETE", NULL};
    static const char *const listed_noauth[] = {"Origin: https://dash.example.com", NULL};
    result r;

    call("GET", "/v1/things/abc", listed_get, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(hdr(&r, "Access-Control-Allow-Origin"));
    assert_string_equal(hdr(&r, "Access-Control-Allow-Origin"), "https://dash.example.com");
    assert_string_equal(hdr(&r, "Vary"), "Origin");
    result_free(&r);

    /* An error reply is readable by the page too (it shows the problem's detail). */
    call("GET", "/v1/things/abc", listed_noauth, NULL, 0, &r);
    json_decref(expect_problem(&r, 401, "Unauthorized"));
    assert_string_equal(hdr(&r, "Access-Control-Allow-Origin"), "https://dash.example.com");
    result_free(&r);

    call("GET", "/v1/things/abc", unlisted_get, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_null(hdr(&r, "Access-Control-Allow-Origin"));
    assert_null(hdr(&r, "Vary"));
    result_free(&r);

    call("GET", "/v1/things/abc", auth_headers, NULL, 0, &r); /* no Origin: not a browser */
    assert_int_equal(r.status, 200);
    assert_null(hdr(&r, "Access-Control-Allow-Origin"));
    result_free(&r);

    /* A preflight carries no token and is answered 204 with the path's methods. */
    call("OPTIONS", "/v1/things/abc", listed_preflight, NULL, 0, &r);
    assert_int_equal(r.status, 204);
    assert_string_equal(r.body, "");
    assert_string_equal(hdr(&r, "Access-Control-Allow-Origin"), "http://127.0.0.1:8082");
    assert_string_equal(hdr(&r, "Access-Control-Allow-Methods"), "GET, DELETE");
    assert_string_equal(hdr(&r, "Access-Control-Allow-Headers"), "Authorization, Content-Type");
    assert_string_equal(hdr(&r, "Access-Control-Max-Age"), "600");
    result_free(&r);

    /* A prefix of a listed origin is not listed. */
    call("OPTIONS", "/v1/things/abc", unlisted_preflight, NULL, 0, &r);
    json_decref(expect_problem(&r, 403, "Forbidden"));
    assert_null(hdr(&r, "Access-Control-Allow-Origin"));
    assert_null(hdr(&r, "Access-Control-Allow-Methods"));
    result_free(&r);

    /* A path without routes stays 404; OPTIONS that is no preflight stays 405. */
    call("OPTIONS", "/v1/nothing-here", listed_preflight, NULL, 0, &r);
    json_decref(expect_problem(&r, 404, "Not Found"));
    result_free(&r);
    call("OPTIONS", "/v1/things/abc", listed_noauth, NULL, 0, &r);
    json_decref(expect_problem(&r, 405, "Method Not Allowed"));
    result_free(&r);
}

static void test_cors_off_by_default(void **state)
{
    static const char *const preflight[] = {"Origin: http://127.0.0.1:8082",
                                            "Access-Control-Request-Method: GET", NULL};
    char err[128];
    casb_http_server *s = NULL;
    casb_http_server_opts opts = {.addr = "127.0.0.1:18182"};
    char url[64];
    CURL *c;
    struct curl_slist *hl = NULL;
    long status = 0;

    assert_int_equal(casb_http_server_new(&s, &opts, err, sizeof(err)), 0);
    assert_int_equal(casb_http_route(s, "GET", "/open", h_ping, CASB_ROUTE_PUBLIC), 0);
    assert_int_equal(casb_http_server_start(s, err, sizeof(err)), 0);
    c = curl_easy_init();
    assert_non_null(c);
    snprintf(url, sizeof(url), "http://127.0.0.1:18182/open");
    for (const char *const *h = preflight; *h; h++)
        hl = curl_slist_append(hl, *h);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "OPTIONS");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 405);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    casb_http_server_free(s);
}

static int h_slow(casb_http_req *r)
{
    usleep(600 * 1000);
    return casb_http_reply_text(r, 200, "text/plain", "finished", 8);
}

typedef struct {
    long status;
    char *body;
    long delay_ms;
} slow_result;

static void *slow_client(void *arg)
{
    slow_result *res = arg;
    CURL *h = curl_easy_init();

    if (res->delay_ms)
        usleep((useconds_t)res->delay_ms * 1000);

    curl_easy_setopt(h, CURLOPT_URL, "http://127.0.0.1:18183/slow");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &res->body);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
    else
        fprintf(stderr, "slow client: %s\n", curl_easy_strerror(rc));
    curl_easy_cleanup(h);
    return NULL;
}

/* Freeing the server lets a request that is being handled finish and reach its client. */
static void test_free_waits_for_in_flight_requests(void **state)
{
    casb_http_server *s = NULL;
    casb_http_server_opts opts = {.addr = "127.0.0.1:18183", .num_threads = 2};
    slow_result res = {0};
    slow_result late = {0};
    pthread_t th;
    pthread_t th_late;
    char err[128];

    assert_int_equal(casb_http_server_new(&s, &opts, err, sizeof(err)), 0);
    assert_int_equal(casb_http_route(s, "GET", "/slow", h_slow, CASB_ROUTE_PUBLIC), 0);
    assert_int_equal(casb_http_server_start(s, err, sizeof(err)), 0);
    /* The same address cannot be taken twice. */
    {
        casb_http_server *dup = NULL;

        assert_int_equal(casb_http_server_new(&dup, &opts, err, sizeof(err)), 0);
        assert_int_not_equal(casb_http_server_start(dup, err, sizeof(err)), 0);
        assert_non_null(strstr(err, "127.0.0.1:18183"));
        casb_http_server_free(dup);
    }
    pthread_create(&th, NULL, slow_client, &res);
    /* This one arrives while the server drains: refused with 503, not left hanging. */
    late.delay_ms = 400;
    pthread_create(&th_late, NULL, slow_client, &late);
    usleep(200 * 1000);
    casb_http_server_free(s);
    pthread_join(th, NULL);
    pthread_join(th_late, NULL);
    assert_int_equal(res.status, 200);
    assert_non_null(res.body);
    assert_string_equal(res.body, "finished");
    assert_int_equal(late.status, 503);
    assert_non_null(strstr(late.body, "shutting down"));
    free(res.body);
    free(late.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_registration_rules),
        cmocka_unit_test(test_routing_and_params),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_not_found_and_method_not_allowed),
        cmocka_unit_test(test_json_body),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_health_ready_metrics),
        cmocka_unit_test(test_streaming_chunked),
        cmocka_unit_test(test_stream_abort),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_unread_body_closes_connection),
        cmocka_unit_test(test_response_head),
        cmocka_unit_test(test_static_files),
        cmocka_unit_test(test_cors),
        cmocka_unit_test(test_cors_off_by_default),
        cmocka_unit_test(test_free_waits_for_in_flight_requests),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
