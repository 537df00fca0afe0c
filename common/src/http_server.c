#include "casb/http_server.h"

#include <civetweb.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"
#include "casb/metrics.h"
#include "casb/rate_limit.h"
#include "casb/timeutil.h"

/* One civetweb handler is registered for "/" and this file does the routing: civetweb's own
 * handler table matches by prefix only, while we need {param} segments, 405 with Allow, and
 * a route pattern (not the raw path) for metric labels.
 *
 * civetweb is started with decode_url=no so that a "%2F" inside a segment stays inside that
 * segment; every segment is decoded after splitting. */

#define DEFAULT_MAX_BODY_BYTES ((size_t)1024 * 1024)
#define DEFAULT_NUM_THREADS 16
#define DEFAULT_MAX_HEADER_BYTES ((size_t)16 * 1024)
#define MAX_SEGMENTS 16
#define MAX_PARAMS 8
#define MAX_EXTRA_HEADERS 16
#define JSON_MAX_DEPTH 32
#define CHUNKED_READ_START 16384
#define ONE_WRITE_MAX_BYTES ((size_t)16 * 1024) /* head and body in one write up to this */
#define REQUEST_TIMEOUT_MS 30000
/* How long casb_http_server_free waits for requests being handled; as long as one request
 * may take to arrive, so that a handler that got its request can also answer it. */
#define DRAIN_TIMEOUT_MS REQUEST_TIMEOUT_MS

typedef struct route {
    char *method;
    char *pattern;
    char *segbuf;                /* pattern copy, split in place into seg[] */
    const char *seg[MAX_SEGMENTS];
    int nseg;
    casb_http_handler handler;
    int flags;
    struct route *next;
} route;

struct casb_http_server {
    char *addr;
    char *static_dir;
    char *cors_origins; /* comma-separated allowed Origin values, or NULL: no CORS */
    size_t max_body_bytes;
    int num_threads;
    size_t max_header_bytes;
    const casb_auth *auth;
    int share_auth_db;          /* see casb_http_server_opts */
    casb_rate_limiter *limiter; /* NULL: no per-token limit */
    casb_http_ready_fn ready;
    void *app;
    route *routes;
    route *routes_tail;
    struct mg_context *ctx;
    /* Graceful stop: civetweb drops every write once mg_stop has begun, so in-flight
     * requests are drained before calling it. */
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int inflight;
    atomic_int stopping;
};

typedef struct {
    char *name;
    char *value;
} header_kv;

struct casb_http_req {
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    casb_http_server *server;
    const route *route;
    const char *route_label; /* metric label: the pattern, "static" or "unmatched" */
    int head;                /* HEAD: answered like GET, without a body */
    char *path_copy;         /* decoded segments, split in place */
    const char *seg[MAX_SEGMENTS];
    int nseg;
    const char *param_names[MAX_PARAMS];
    const char *param_values[MAX_PARAMS];
    int nparams;
    char *body;
    size_t body_len;
    int body_consumed; /* the request body has been read (or there was none) */
    casb_principal principal;
    int authenticated;
    casb_db *db; /* the token check's connection, until the handler takes it */
    header_kv headers[MAX_EXTRA_HEADERS];
    int nheaders;
    int status;
    int replied;
    int streaming;   /* stream begun and not ended */
    int chunked;     /* the stream uses Transfer-Encoding: chunked */
    int close_after; /* the end of the body is the end of the connection */
};

static pthread_once_t mg_once = PTHREAD_ONCE_INIT;

static void mg_init_once(void)
{
    mg_init_library(0);
}

/* RFC 9110 reason phrases (civetweb's own table uses some older names), or NULL. */
static const char *known_reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return NULL;
    }
}

/* The title of a problem: the reason phrase, or its class's. */
static const char *reason_phrase(int status)
{
    const char *known = known_reason_phrase(status);

    if (known)
        return known;
    if (status >= 500)
        return "Internal Server Error";
    if (status >= 400)
        return "Bad Request";
    return "OK";
}

/* ---- routes ---- */

static void route_free(route *r)
{
    if (!r)
        return;
    free(r->method);
    free(r->pattern);
    free(r->segbuf);
    free(r);
}

/* Splits "/a/b/c" in place into segments (the leading '/' is dropped; empty segments are
 * kept so that "/a//b" does not match "/a/b"). "/" has no segments. Returns the count or -1
 * when there are more than MAX_SEGMENTS. */
static int split_path(char *p, const char **seg)
{
    int n = 0;

    if (*p == '/')
        p++;
    if (*p == '\0')
        return 0;
    for (;;) {
        char *slash = strchr(p, '/');

        if (n == MAX_SEGMENTS)
            return -1;
        seg[n++] = p;
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    return n;
}

static int is_param_segment(const char *s)
{
    size_t len = strlen(s);

    return len > 2 && s[0] == '{' && s[len - 1] == '}';
}

static int valid_method(const char *m)
{
    if (!m || !*m)
        return 0;
    for (const char *p = m; *p; p++) {
        if (*p < 'A' || *p > 'Z')
            return 0;
    }
    return 1;
}

static int add_route(casb_http_server *s, const char *method, const char *pattern,
                     casb_http_handler handler, int flags)
{
    route *r = NULL;
    int nparams = 0;

    if (!s || s->ctx || !valid_method(method) || !pattern || pattern[0] != '/' || !handler)
        return -1;
    for (route *it = s->routes; it; it = it->next) {
        if (strcmp(it->method, method) == 0 && strcmp(it->pattern, pattern) == 0)
            return -1;
    }
    r = calloc(1, sizeof(*r));
    if (!r)
        return -1;
    r->method = strdup(method);
    r->pattern = strdup(pattern);
    r->segbuf = strdup(pattern);
    if (!r->method || !r->pattern || !r->segbuf)
        goto fail;
    r->nseg = split_path(r->segbuf, r->seg);
    if (r->nseg < 0)
        goto fail;
    for (int i = 0; i < r->nseg; i++) {
        if (is_param_segment(r->seg[i])) {
            nparams++;
        } else if (strchr(r->seg[i], '{') || strchr(r->seg[i], '}')) {
            goto fail; /* a {param} must be a whole segment */
        }
    }
    if (nparams > MAX_PARAMS)
        goto fail;
    r->handler = handler;
    r->flags = flags;
    if (s->routes_tail)
        s->routes_tail->next = r;
    else
        s->routes = r;
    s->routes_tail = r;
    return 0;
fail:
    route_free(r);
    return -1;
}

/* Matches the request's segments against a route. Returns -1 when the path does not match,
 * else a score that is higher for routes with literal segments earlier in the path, so that
 * "/v1/findings/summary" beats "/v1/findings/{id}" whatever the registration order. */
static long route_score(const route *r, const casb_http_req *req)
{
    long score = 0;

    if (r->nseg != req->nseg)
        return -1;
    for (int i = 0; i < r->nseg; i++) {
        if (is_param_segment(r->seg[i])) {
            if (req->seg[i][0] == '\0')
                return -1;
            continue;
        }
        if (strcmp(r->seg[i], req->seg[i]) != 0)
            return -1;
        score |= 1L << (MAX_SEGMENTS - i);
    }
    return score;
}

static void bind_params(casb_http_req *req)
{
    const route *r = req->route;

    req->nparams = 0;
    for (int i = 0; i < r->nseg && req->nparams < MAX_PARAMS; i++) {
        if (!is_param_segment(r->seg[i]))
            continue;
        req->param_names[req->nparams] = r->seg[i];
        req->param_values[req->nparams] = req->seg[i];
        req->nparams++;
    }
}

/* ---- responses ---- */

static int has_unread_body(const casb_http_req *req)
{
    if (req->body_consumed)
        return 0;
    if (req->ri->content_length > 0)
        return 1;
    return req->ri->content_length < 0 && mg_get_header(req->conn, "Transfer-Encoding") != NULL;
}

static int is_http10(const casb_http_req *req)
{
    const char *v = req->ri->http_version;

    return v && strcmp(v, "1.1") != 0 && strcmp(v, "2") != 0;
}

/* civetweb's mg_response_header_send writes the status line and each header line with a
 * send() of its own; with TCP_NODELAY each was a packet, and each woke the client. The head
 * is written here instead, in one piece, and goes out in one write with a body of up to
 * ONE_WRITE_MAX_BYTES (a larger one is not copied: it follows in a second write). On a page
 * of 200 instances under 64 clients this cut the context switches per request, client and
 * server together, from 13 to 9. */

/* "keep-alive" among the comma-separated options of a Connection header. */
static int has_keep_alive_option(const char *v)
{
    while (*v) {
        size_t n;

        v += strspn(v, " \t,");
        n = strcspn(v, ",");
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        if (n == 10 && strncasecmp(v, "keep-alive", 10) == 0)
            return 1;
        v += n;
        v += strcspn(v, ",");
    }
    return 0;
}

/* Whether the connection stays open after this response: civetweb's rule (the client's
 * Connection header, else HTTP/1.1's default), except that a request whose body was not
 * read closes it (civetweb would parse the unread body as the next request), and so do a
 * body that ends with the connection and a server stopping. */
static int keeps_alive(const casb_http_req *req)
{
    const char *connection = mg_get_header(req->conn, "Connection");

    if (req->close_after || has_unread_body(req) || atomic_load(&req->server->stopping))
        return 0;
    if (connection)
        return has_keep_alive_option(connection);
    return req->ri->http_version && strcmp(req->ri->http_version, "1.1") == 0;
}

/* "Date: <IMF-fixdate>\r\n" (RFC 9110 5.6.7), in English whatever the locale. */
static const char *http_date_line(char *buf, size_t len, const struct tm *tm)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

    snprintf(buf, len, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n", days[tm->tm_wday % 7],
             tm->tm_mday, months[tm->tm_mon % 12], tm->tm_year + 1900, tm->tm_hour, tm->tm_min,
             tm->tm_sec);
    return buf;
}

static void append_header(casb_text *t, const char *name, const char *value)
{
    casb_text_append_str(t, name);
    casb_text_append(t, ": ", 2);
    casb_text_append_str(t, value);
    casb_text_append(t, "\r\n", 2);
}

/* Starts a response: t gets the status line, Content-Type, the queued headers, framing
 * ("Content-Length: N", "Transfer-Encoding: chunked", or NULL), Date, Connection and the
 * blank line. */
static int format_head(casb_http_req *req, casb_text *t, int status, const char *content_type,
                       const char *framing)
{
    const char *reason = known_reason_phrase(status);
    char line[96];
    time_t now = time(NULL);
    struct tm tm;
    int keep = keeps_alive(req);

    if (req->replied) {
        casb_log_warn("http handler replied twice", "path", casb_http_path(req));
        return -1;
    }
    req->replied = 1;
    req->status = status;
    /* The token check's connection, if the handler did not take it, goes back to the pool
     * before the answer leaves: a client that has it must find the connection free (and a
     * slow client holds none). */
    casb_auth_release(req->server->auth, casb_http_take_db(req));
    snprintf(line, sizeof(line), "HTTP/%s %d %s\r\n",
             req->ri->http_version ? req->ri->http_version : "1.1", status,
             reason ? reason : mg_get_response_code_text(req->conn, status));
    casb_text_append_str(t, line);
    if (content_type)
        append_header(t, "Content-Type", content_type);
    for (int i = 0; i < req->nheaders; i++)
        append_header(t, req->headers[i].name, req->headers[i].value);
    if (framing) {
        casb_text_append_str(t, framing);
        casb_text_append(t, "\r\n", 2);
    }
    gmtime_r(&now, &tm);
    casb_text_append_str(t, http_date_line(line, sizeof(line), &tm));
    casb_text_append_str(t, keep ? "Connection: keep-alive\r\n\r\n"
                                 : "Connection: close\r\n\r\n");
    if (!keep)
        mg_disable_connection_keep_alive(req->conn);
    return t->failed ? -1 : 0;
}

static int write_all(casb_http_req *req, const char *data, size_t len)
{
    return len == 0 || mg_write(req->conn, data, len) == (int)len ? 0 : -1;
}

static int send_response(casb_http_req *req, int status, const char *content_type,
                         const char *body, size_t len)
{
    casb_text out = {0};
    char clen[40];
    int rc;

    /* RFC 9110: no Content-Length on 204 and 304; everything else carries one, which
     * keep-alive requires. */
    if (status == 204 || status == 304)
        len = 0;
    else
        snprintf(clen, sizeof(clen), "Content-Length: %zu", len);
    rc = format_head(req, &out, status, content_type,
                     status == 204 || status == 304 ? NULL : clen);
    if (req->head)
        len = 0;
    /* A large body is not copied behind the head: its packets are full either way. */
    if (rc == 0 && len <= ONE_WRITE_MAX_BYTES) {
        rc = casb_text_append(&out, body, len);
        len = 0;
    }
    if (rc == 0)
        rc = write_all(req, out.data, out.len);
    if (rc == 0)
        rc = write_all(req, body, len);
    casb_text_free(&out);
    return rc;
}

int casb_http_add_header(casb_http_req *r, const char *name, const char *value)
{
    header_kv *h;

    if (!r || !name || !value || !*name || r->replied || r->nheaders == MAX_EXTRA_HEADERS)
        return -1;
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return -1; /* no header injection through values taken from input */
    h = &r->headers[r->nheaders];
    h->name = strdup(name);
    h->value = strdup(value);
    if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        h->name = NULL;
        h->value = NULL;
        return -1;
    }
    r->nheaders++;
    return 0;
}

int casb_http_reply_text(casb_http_req *r, int status, const char *content_type,
                         const char *body, size_t len)
{
    if (!r)
        return -1;
    if (send_response(r, status, content_type, body ? body : "", body ? len : 0) != 0)
        return -1;
    return status;
}

int casb_http_reply_json(casb_http_req *r, int status, json_t *body)
{
    char *s = NULL;
    int rc;

    if (!r) {
        json_decref(body);
        return -1;
    }
    if (!body)
        return send_response(r, status, NULL, "", 0) == 0 ? status : -1;
    s = casb_json_dump(body);
    json_decref(body);
    if (!s)
        return casb_http_reply_problem(r, 500, "could not serialise the response", NULL);
    rc = send_response(r, status, "application/json", s, strlen(s));
    free(s);
    return rc == 0 ? status : -1;
}

int casb_http_reply_problem(casb_http_req *r, int status, const char *detail, json_t *extra)
{
    json_t *p = NULL;
    char *s = NULL;
    int rc = -1;

    if (!r) {
        json_decref(extra);
        return -1;
    }
    p = json_object();
    if (!p)
        goto out;
    json_object_set_new(p, "type", json_string("about:blank"));
    json_object_set_new(p, "title", json_string(reason_phrase(status)));
    json_object_set_new(p, "status", json_integer(status));
    if (detail)
        json_object_set_new(p, "detail", json_string(detail));
    /* Extra members never replace the standard ones. */
    if (json_is_object(extra))
        json_object_update_missing(p, extra);
    s = casb_json_dump(p);
    if (!s)
        goto out;
    if (status == 401)
        casb_http_add_header(r, "WWW-Authenticate", "Bearer realm=\"casb\"");
    if (send_response(r, status, "application/problem+json", s, strlen(s)) == 0)
        rc = status;
out:
    free(s);
    json_decref(p);
    json_decref(extra);
    return rc;
}

int casb_http_stream_begin(casb_http_req *r, int status, const char *content_type)
{
    casb_text head = {0};
    int rc;

    if (!r)
        return -1;
    /* HTTP/1.0 has no chunked encoding: the end of the body is the end of the connection,
     * whatever keep-alive the client asked for. */
    r->chunked = !is_http10(r);
    r->close_after = !r->chunked;
    rc = format_head(r, &head, status, content_type,
                     r->chunked ? "Transfer-Encoding: chunked" : NULL);
    if (rc == 0)
        rc = write_all(r, head.data, head.len);
    casb_text_free(&head);
    if (rc != 0)
        return -1;
    r->streaming = 1;
    return 0;
}

int casb_http_stream_write(casb_http_req *r, const char *data, size_t len)
{
    if (!r || !r->streaming)
        return -1;
    if (r->head)
        return 0;
    while (len > 0) {
        /* A zero-length chunk would end the stream, and chunk sizes are unsigned int. */
        unsigned int n = len > (size_t)(INT_MAX / 2) ? (unsigned int)(INT_MAX / 2) : (unsigned int)len;

        if (r->chunked) {
            if (mg_send_chunk(r->conn, data, n) < 0)
                return -1;
        } else if (mg_write(r->conn, data, n) != (int)n) {
            return -1;
        }
        data += n;
        len -= n;
    }
    return 0;
}

int casb_http_stream_end(casb_http_req *r)
{
    if (!r || !r->streaming)
        return -1;
    r->streaming = 0;
    if (r->head || !r->chunked)
        return 0;
    return mg_send_chunk(r->conn, "", 0) < 0 ? -1 : 0;
}

int casb_http_stream_abort(casb_http_req *r)
{
    if (!r || !r->streaming)
        return -1;
    r->streaming = 0;
    /* No last chunk, and the connection closes after the handler: the client sees a body cut
     * short (curl: "transfer closed with outstanding read data"), never a complete one. */
    mg_disable_connection_keep_alive(r->conn);
    return 0;
}

/* ---- request accessors ---- */

const char *casb_http_method(const casb_http_req *r)
{
    return r ? r->ri->request_method : NULL;
}

/* The path as sent (percent-encoding kept, dot segments removed), without the query. */
const char *casb_http_path(const casb_http_req *r)
{
    if (!r)
        return NULL;
    return r->ri->local_uri ? r->ri->local_uri : "/";
}

const char *casb_http_param(const casb_http_req *r, const char *name)
{
    size_t len;

    if (!r || !name)
        return NULL;
    len = strlen(name);
    for (int i = 0; i < r->nparams; i++) {
        const char *pn = r->param_names[i]; /* "{name}" */

        if (strlen(pn) == len + 2 && strncmp(pn + 1, name, len) == 0)
            return r->param_values[i];
    }
    return NULL;
}

int casb_http_query(const casb_http_req *r, const char *name, char *buf, size_t buflen)
{
    const char *qs;
    int n;

    if (!r || !name || !buf || buflen == 0)
        return -1;
    qs = r->ri->query_string;
    if (!qs)
        return 0;
    n = mg_get_var2(qs, strlen(qs), name, buf, buflen, 0);
    if (n == -1)
        return 0;
    if (n < 0)
        return -1;
    return 1;
}

const char *casb_http_query_string(const casb_http_req *r)
{
    return r ? r->ri->query_string : NULL;
}

const char *casb_http_header(const casb_http_req *r, const char *name)
{
    if (!r || !name)
        return NULL;
    return mg_get_header(r->conn, name);
}

const char *casb_http_body(const casb_http_req *r, size_t *len)
{
    if (len)
        *len = r ? r->body_len : 0;
    if (!r)
        return NULL;
    return r->body ? r->body : "";
}

static int is_json_content_type(const char *ct)
{
    const char *json = "application/json";
    size_t n = strlen(json);

    if (!ct)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, json, n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

int casb_http_status(const casb_http_req *r)
{
    return r && r->replied ? r->status : 0;
}

json_t *casb_http_body_json(casb_http_req *r)
{
    char err[200];
    char detail[256];
    json_t *v;

    if (!r)
        return NULL;
    if (!is_json_content_type(mg_get_header(r->conn, "Content-Type"))) {
        casb_http_reply_problem(r, 415, "Content-Type must be application/json", NULL);
        return NULL;
    }
    if (r->body_len == 0) {
        casb_http_reply_problem(r, 400, "a JSON object body is required", NULL);
        return NULL;
    }
    err[0] = '\0';
    v = casb_json_parse(r->body, r->body_len, JSON_MAX_DEPTH, err, sizeof(err));
    if (!v) {
        snprintf(detail, sizeof(detail), "invalid JSON body: %s", err);
        casb_http_reply_problem(r, 400, detail, NULL);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        casb_http_reply_problem(r, 400, "the body must be a JSON object", NULL);
        return NULL;
    }
    return v;
}

const casb_principal *casb_http_principal(const casb_http_req *r)
{
    if (!r || !r->authenticated)
        return NULL;
    return &r->principal;
}

void *casb_http_app(const casb_http_req *r)
{
    return r ? r->server->app : NULL;
}

/* ---- built-in routes ---- */

static int handle_healthz(casb_http_req *r)
{
    return casb_http_reply_text(r, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

static int handle_readyz(casb_http_req *r)
{
    char reason[256] = "";
    casb_http_server *s = r->server;

    if (!s->ready || s->ready(s->app, reason, sizeof(reason)) == 1)
        return casb_http_reply_text(r, 200, "application/json", "{\"status\":\"ready\"}", 18);
    return casb_http_reply_problem(r, 503, reason[0] ? reason : "not ready", NULL);
}

static int handle_metrics(casb_http_req *r)
{
    char *out = NULL;
    size_t len = 0;
    int rc;

    if (casb_metrics_render(&out, &len) != 0 || !out) {
        free(out);
        return casb_http_reply_problem(r, 500, "could not render metrics", NULL);
    }
    rc = casb_http_reply_text(r, 200, "text/plain; version=0.0.4", out, len);
    free(out);
    return rc;
}

/* ---- dispatch ---- */

static int read_body(casb_http_req *req)
{
    casb_http_server *s = req->server;
    long long cl = req->ri->content_length;
    size_t cap;
    char detail[128];

    req->body_len = 0;
    if (cl > 0 && (unsigned long long)cl > s->max_body_bytes) {
        snprintf(detail, sizeof(detail), "request body exceeds %zu bytes", s->max_body_bytes);
        casb_http_reply_problem(req, 413, detail, NULL);
        return -1;
    }
    if (!has_unread_body(req)) {
        req->body_consumed = 1;
        return 0;
    }
    /* Known length: one buffer of that size. Chunked: grow, reading at most one byte past
     * the limit so that an oversized stream is detected without buffering it. */
    cap = cl > 0 ? (size_t)cl : CHUNKED_READ_START;
    req->body = malloc(cap + 1);
    if (!req->body)
        goto oom;
    for (;;) {
        size_t want;
        int n;

        if (cl > 0 && req->body_len == (size_t)cl)
            break;
        if (req->body_len == cap) {
            size_t ncap = cap * 2;
            char *nb;

            if (ncap > s->max_body_bytes + 1)
                ncap = s->max_body_bytes + 1;
            nb = realloc(req->body, ncap + 1);
            if (!nb)
                goto oom;
            req->body = nb;
            cap = ncap;
        }
        want = cap - req->body_len;
        if (want > INT_MAX)
            want = INT_MAX;
        n = mg_read(req->conn, req->body + req->body_len, want);
        if (n <= 0)
            break;
        req->body_len += (size_t)n;
        if (req->body_len > s->max_body_bytes) {
            snprintf(detail, sizeof(detail), "request body exceeds %zu bytes",
                     s->max_body_bytes);
            casb_http_reply_problem(req, 413, detail, NULL);
            return -1;
        }
    }
    req->body[req->body_len] = '\0';
    if (cl > 0 && req->body_len < (size_t)cl) {
        casb_http_reply_problem(req, 400, "incomplete request body", NULL);
        return -1;
    }
    req->body_consumed = 1;
    return 0;
oom:
    casb_http_reply_problem(req, 500, "out of memory reading the request body", NULL);
    return -1;
}

/* Serves a file under static_dir. Returns 1 when answered, 0 when there is no such file. */
static int serve_static(casb_http_req *req)
{
    const char *uri = casb_http_path(req);
    size_t ulen = strlen(uri);
    char *decoded = NULL;
    char *full = NULL;
    size_t flen;
    struct stat st;
    int rc = 0;

    decoded = malloc(ulen + 1);
    if (!decoded)
        goto out;
    if (mg_url_decode(uri, (int)ulen, decoded, (int)ulen + 1, 0) < 0)
        goto out;
    /* The path was cleaned before decoding, so a "%2e%2e" segment is refused here. */
    if (decoded[0] != '/' || strstr(decoded, "/../") || strstr(decoded, "\\") ||
        (strlen(decoded) >= 3 && strcmp(decoded + strlen(decoded) - 3, "/..") == 0))
        goto out;
    flen = strlen(req->server->static_dir) + strlen(decoded) + sizeof("/index.html");
    full = malloc(flen);
    if (!full)
        goto out;
    snprintf(full, flen, "%s%s", req->server->static_dir, decoded);
    if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(full, flen, "%s%s%sindex.html", req->server->static_dir, decoded,
                 decoded[strlen(decoded) - 1] == '/' ? "" : "/");
    }
    if (stat(full, &st) != 0 || !S_ISREG(st.st_mode))
        goto out;
    req->replied = 1;
    req->status = 200;
    mg_send_file(req->conn, full);
    rc = 1;
out:
    free(decoded);
    free(full);
    return rc;
}

/* Appends method to the comma-separated Allow list unless it is already there. */
static void allow_add(char *allow, size_t size, const char *method)
{
    size_t mlen = strlen(method);
    const char *p = allow;

    while (*p) {
        size_t n = strcspn(p, ",");

        if (n == mlen && strncmp(p, method, mlen) == 0)
            return;
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    if (strlen(allow) + mlen + 3 > size)
        return;
    if (allow[0])
        strcat(allow, ", ");
    strcat(allow, method);
}

/* True when origin is one of the comma-separated entries of list (spaces around entries
 * ignored). Origins are compared exactly: browsers send them serialized and lower-case. */
static int origin_listed(const char *list, const char *origin)
{
    size_t olen = strlen(origin);
    const char *p = list;

    if (olen == 0)
        return 0;
    while (*p) {
        size_t n;

        while (*p == ',' || *p == ' ')
            p++;
        n = strcspn(p, ",");
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n == olen && strncmp(p, origin, olen) == 0)
            return 1;
        p += n;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

/* CORS (opts.cors_origins): marks the reply of a listed origin as readable by its page and
 * answers preflights. Returns 1 when the request was answered (a preflight), else 0. A
 * preflight is answered before authentication: browsers never send credentials with it. */
static int handle_cors(casb_http_req *req, int path_known, const char *allow)
{
    casb_http_server *s = req->server;
    const char *origin = mg_get_header(req->conn, "Origin");
    int listed;
    int preflight;

    if (!s->cors_origins || !origin)
        return 0;
    listed = origin_listed(s->cors_origins, origin);
    preflight = strcmp(req->ri->request_method, "OPTIONS") == 0 &&
                mg_get_header(req->conn, "Access-Control-Request-Method") != NULL;
    if (listed) {
        casb_http_add_header(req, "Access-Control-Allow-Origin", origin);
        casb_http_add_header(req, "Vary", "Origin");
    }
    if (!preflight || !path_known)
        return 0;
    req->route_label = "preflight";
    if (!listed) {
        casb_http_reply_problem(req, 403, "this origin may not call this API", NULL);
        return 1;
    }
    casb_http_add_header(req, "Access-Control-Allow-Methods", allow);
    casb_http_add_header(req, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    casb_http_add_header(req, "Access-Control-Max-Age", "600");
    casb_http_reply_text(req, 204, NULL, "", 0);
    return 1;
}

static casb_role required_role(int flags)
{
    if (flags & CASB_ROUTE_ADMIN)
        return CASB_ROLE_ADMIN;
    return (flags & CASB_ROUTE_ANALYST) ? CASB_ROLE_ANALYST : CASB_ROLE_READ_ONLY;
}

/* Who calls, whether they may call this route now, and their share of the server: 401 for
 * no valid token, 503 when tokens cannot be checked, 429 over the token's rate, 403 for a
 * role below the route's. Returns 0 to go on, or -1 after answering. */
static int authorize(casb_http_req *req, const route *r)
{
    casb_http_server *s = req->server;
    const char *authz = mg_get_header(req->conn, "Authorization");
    /* Not while a request body is still to be read: a slow client would hold it. */
    int keep = s->share_auth_db && (req->head || strcmp(req->ri->request_method, "GET") == 0);
    int rc = s->auth ? casb_auth_check_keep(s->auth, authz, &req->principal,
                                            keep ? &req->db : NULL)
                     : CASB_EAUTH;
    int retry_after = 0;
    casb_role need = required_role(r->flags);
    char detail[128];
    char seconds[16];

    if (rc == CASB_EUNAVAILABLE) {
        casb_http_add_header(req, "Retry-After", "1");
        casb_http_reply_problem(req, 503, "tokens cannot be checked right now", NULL);
        return -1;
    }
    if (rc != 0) {
        casb_http_reply_problem(req, 401, "a valid bearer token is required", NULL);
        return -1;
    }
    req->authenticated = 1;
    if (s->limiter && !casb_rate_limiter_take(s->limiter, req->principal.token_id,
                                              casb_monotonic_ms(), &retry_after)) {
        snprintf(seconds, sizeof(seconds), "%d", retry_after);
        casb_http_add_header(req, "Retry-After", seconds);
        casb_http_reply_problem(req, 429, "this token's request rate is exceeded", NULL);
        return -1;
    }
    if (req->principal.role < need) {
        snprintf(detail, sizeof(detail), "this needs the %s role; the token's role is %s",
                 casb_role_name(need), casb_role_name(req->principal.role));
        casb_http_reply_problem(req, 403, detail, NULL);
        return -1;
    }
    return 0;
}

casb_db *casb_http_take_db(casb_http_req *r)
{
    casb_db *db = r->db;

    r->db = NULL;
    return db;
}

static void dispatch(casb_http_req *req)
{
    casb_http_server *s = req->server;
    const char *method = req->ri->request_method;
    const char *match_method = req->head ? "GET" : method;
    const route *best = NULL;
    char allow[128] = "";
    size_t plen;
    int path_known = 0;
    int nseg;

    plen = strlen(casb_http_path(req));
    req->path_copy = malloc(plen + 1);
    if (!req->path_copy) {
        casb_http_reply_problem(req, 500, "out of memory", NULL);
        return;
    }
    memcpy(req->path_copy, casb_http_path(req), plen + 1);
    nseg = split_path(req->path_copy, req->seg);
    if (nseg >= 0) {
        req->nseg = nseg;
        for (int i = 0; i < nseg; i++) {
            char *sg = (char *)req->seg[i];
            int n = mg_url_decode(sg, (int)strlen(sg), sg, (int)strlen(sg) + 1, 0);

            if (n < 0) {
                nseg = -1;
                break;
            }
        }
    }
    if (nseg >= 0) {
        long top = -1;

        /* The path is the resource: only the most literal patterns it matches name it, so
         * that GET /v1/findings/ignore (a POST-only resource) is 405, not GET
         * /v1/findings/{id} with the id "ignore". */
        for (const route *r = s->routes; r; r = r->next) {
            long score = route_score(r, req);

            if (score > top)
                top = score;
        }
        for (const route *r = s->routes; top >= 0 && r; r = r->next) {
            if (route_score(r, req) != top)
                continue;
            path_known = 1;
            allow_add(allow, sizeof(allow), r->method);
            if (!best && strcmp(r->method, match_method) == 0)
                best = r;
        }
    }
    if (handle_cors(req, path_known, allow))
        return;
    if (!best) {
        if (path_known) {
            req->route_label = "unmatched";
            casb_http_add_header(req, "Allow", allow);
            casb_http_reply_problem(req, 405, "method not allowed for this resource", NULL);
            return;
        }
        if (s->static_dir && (req->head || strcmp(method, "GET") == 0) && serve_static(req)) {
            req->route_label = "static";
            return;
        }
        req->route_label = "unmatched";
        casb_http_reply_problem(req, 404, "no such resource", NULL);
        return;
    }
    req->route = best;
    req->route_label = best->pattern;
    bind_params(req);
    if (!(best->flags & CASB_ROUTE_PUBLIC) && authorize(req, best) != 0)
        return;
    if (read_body(req) != 0)
        return;
    best->handler(req);
}

static const char *method_label(const char *m)
{
    static const char *known[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(m, known[i]) == 0)
            return known[i];
    }
    return "OTHER"; /* keeps the label set bounded whatever clients send */
}

static void count_request(const casb_http_req *req, int64_t duration_ms)
{
    char labels[512];
    char status[16];
    char dur[32];

    snprintf(status, sizeof(status), "%d", req->status);
    /* Series are registered on first use: routes, methods and statuses are finite sets, and
     * the route is the pattern, never the raw path. */
    snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\"",
             method_label(req->ri->request_method), req->route_label);
    casb_metric_observe(casb_metrics_histogram("casb_http_request_duration_seconds",
                                               "HTTP request latency, by route pattern",
                                               labels, casb_metrics_latency_buckets,
                                               casb_metrics_latency_nbuckets),
                        (double)duration_ms / 1000.0);
    snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\",status=\"%s\"",
             method_label(req->ri->request_method), req->route_label, status);
    casb_metric_add(casb_metrics_counter("casb_http_requests_total",
                                         "HTTP requests served, by route pattern", labels),
                    1);
    snprintf(dur, sizeof(dur), "%lld", (long long)duration_ms);
    casb_log_debug("http request", "method", req->ri->request_method, "path",
                   casb_http_path(req), "route", req->route_label, "status", status,
                   "duration_ms", dur);
}

static int on_request(struct mg_connection *conn, void *cbdata)
{
    casb_http_server *s = cbdata;
    casb_http_req req;
    int64_t start = casb_monotonic_ms();
    int admitted = 0;

    memset(&req, 0, sizeof(req));
    req.conn = conn;
    req.ri = mg_get_request_info(conn);
    req.server = s;
    req.route_label = "unmatched";
    req.head = strcmp(req.ri->request_method, "HEAD") == 0;
    pthread_mutex_lock(&s->mu);
    if (!atomic_load(&s->stopping)) {
        s->inflight++;
        admitted = 1;
    }
    pthread_mutex_unlock(&s->mu);
    if (admitted)
        dispatch(&req);
    else
        casb_http_reply_problem(&req, 503, "the server is shutting down", NULL);
    /* Not taken by the handler (or the request ended before it). */
    casb_auth_release(s->auth, casb_http_take_db(&req));
    if (req.streaming)
        casb_http_stream_end(&req);
    if (!req.replied)
        casb_http_reply_problem(&req, 500, "the handler sent no response", NULL);
    count_request(&req, casb_monotonic_ms() - start);
    for (int i = 0; i < req.nheaders; i++) {
        free(req.headers[i].name);
        free(req.headers[i].value);
    }
    free(req.path_copy);
    free(req.body);
    if (admitted) {
        pthread_mutex_lock(&s->mu);
        if (--s->inflight == 0)
            pthread_cond_broadcast(&s->idle);
        pthread_mutex_unlock(&s->mu);
    }
    return req.status > 0 && req.status < 1000 ? req.status : 500;
}

static int on_log_message(const struct mg_connection *conn, const char *message)
{
    casb_log_warn("civetweb", "detail", message);
    return 1; /* handled: keep civetweb from printing to stderr itself */
}

/* ---- lifecycle ---- */

int casb_http_server_new(casb_http_server **out, const casb_http_server_opts *opts,
                         char *err, size_t errlen)
{
    casb_http_server *s = NULL;

    *out = NULL;
    if (!opts || !opts->addr || !*opts->addr)
        return casb_fail(err, errlen, CASB_EINVALID, "http server: addr is required");
    s = calloc(1, sizeof(*s));
    if (!s)
        return casb_fail(err, errlen, CASB_ERROR, "http server: out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    atomic_init(&s->stopping, 0);
    s->addr = strdup(opts->addr);
    s->static_dir = opts->static_dir ? strdup(opts->static_dir) : NULL;
    if (!s->addr || (opts->static_dir && !s->static_dir))
        goto oom;
    if (opts->cors_origins && *opts->cors_origins) {
        s->cors_origins = strdup(opts->cors_origins);
        if (!s->cors_origins)
            goto oom;
    }
    s->max_body_bytes = opts->max_body_bytes ? opts->max_body_bytes : DEFAULT_MAX_BODY_BYTES;
    s->num_threads = opts->num_threads > 0 ? opts->num_threads : DEFAULT_NUM_THREADS;
    s->share_auth_db = opts->share_auth_db;
    s->max_header_bytes =
        opts->max_header_bytes ? opts->max_header_bytes : DEFAULT_MAX_HEADER_BYTES;
    s->auth = opts->auth;
    if (opts->rate_per_second > 0 &&
        !(s->limiter = casb_rate_limiter_new(opts->rate_per_second,
                                             opts->rate_burst > 0 ? opts->rate_burst : 1)))
        goto oom;
    s->ready = opts->ready;
    s->app = opts->app;
    if (add_route(s, "GET", "/healthz", handle_healthz, CASB_ROUTE_PUBLIC) != 0 ||
        add_route(s, "GET", "/readyz", handle_readyz, CASB_ROUTE_PUBLIC) != 0 ||
        add_route(s, "GET", "/metrics", handle_metrics, CASB_ROUTE_PUBLIC) != 0)
        goto oom;
    *out = s;
    return 0;
oom:
    casb_http_server_free(s);
    return casb_fail(err, errlen, CASB_ERROR, "http server: out of memory");
}

int casb_http_route(casb_http_server *s, const char *method, const char *pattern,
                    casb_http_handler handler, int flags)
{
    int rc = add_route(s, method, pattern, handler, flags);

    if (rc != 0)
        casb_log_error("http route refused", "method", method, "pattern", pattern);
    return rc;
}

int casb_http_routes(casb_http_server *s, const casb_http_route_def *defs, size_t n, char *err,
                     size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (casb_http_route(s, defs[i].method, defs[i].pattern, defs[i].handler,
                            defs[i].flags) != 0)
            return casb_fail(err, errlen, CASB_ERROR, "cannot register %s %s", defs[i].method,
                             defs[i].pattern);
    }
    return 0;
}

int casb_http_server_start(casb_http_server *s, char *err, size_t errlen)
{
    char threads[16];
    char request_timeout[16];
    char header_bytes[24];
    const char *options[26];
    int n = 0;
    struct mg_callbacks callbacks;
    struct mg_init_data init;
    struct mg_error_data error;
    unsigned code = 0;
    char mgerr[256] = "";

    if (!s || s->ctx)
        return casb_fail(err, errlen, CASB_EINVALID, "http server: not startable");
    if (!s->auth) {
        for (route *r = s->routes; r; r = r->next) {
            if (!(r->flags & CASB_ROUTE_PUBLIC))
                return casb_fail(err, errlen, CASB_EINVALID,
                                 "http server: route %s %s needs auth but none is configured",
                                 r->method, r->pattern);
        }
    }
    pthread_once(&mg_once, mg_init_once);
    snprintf(threads, sizeof(threads), "%d", s->num_threads);
    snprintf(request_timeout, sizeof(request_timeout), "%d", REQUEST_TIMEOUT_MS);
    snprintf(header_bytes, sizeof(header_bytes), "%zu", s->max_header_bytes);
    options[n++] = "listening_ports";
    options[n++] = s->addr;
    options[n++] = "num_threads";
    options[n++] = threads;
    options[n++] = "request_timeout_ms";
    options[n++] = request_timeout;
    /* Request line and headers together: a bigger request is refused before routing. */
    options[n++] = "max_request_size";
    options[n++] = header_bytes;
    options[n++] = "enable_keep_alive";
    options[n++] = "yes";
    options[n++] = "decode_url";
    options[n++] = "no";
    /* Without TCP_NODELAY a keep-alive client waits out Nagle plus delayed ACK (~40 ms) on
     * every reused connection. */
    options[n++] = "tcp_nodelay";
    options[n++] = "1";
    /* civetweb's own CORS (on by default with "*") would answer every preflight itself and
     * allow any origin; ours (handle_cors) allows only cors_origins. */
    options[n++] = "access_control_allow_origin";
    options[n++] = "";
    options[n++] = "access_control_allow_methods";
    options[n++] = "";
    options[n++] = "access_control_allow_headers";
    options[n++] = "";
    if (s->static_dir) {
        options[n++] = "document_root";
        options[n++] = s->static_dir;
    }
    options[n] = NULL;
    memset(&callbacks, 0, sizeof(callbacks));
    callbacks.log_message = on_log_message;
    init.callbacks = &callbacks;
    init.user_data = s;
    init.configuration_options = options;
    error.code = &code;
    error.text = mgerr;
    error.text_buffer_size = sizeof(mgerr);
    s->ctx = mg_start2(&init, &error);
    if (!s->ctx)
        return casb_fail(err, errlen, CASB_ERROR, "http server: cannot listen on %s: %s",
                         s->addr, mgerr[0] ? mgerr : "unknown error");
    mg_set_request_handler(s->ctx, "/", on_request, s);
    casb_log_info("http server listening", "addr", s->addr);
    return 0;
}

/* Waits until no request is being handled, or the drain timeout passes. New requests are
 * answered 503 with Connection: close meanwhile. */
static void drain(casb_http_server *s)
{
    struct timespec deadline;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += DRAIN_TIMEOUT_MS / 1000;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stopping, 1);
    while (s->inflight > 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->idle, &s->mu, &deadline);
    if (s->inflight > 0)
        casb_log_warn("http server stopping with requests still running");
    pthread_mutex_unlock(&s->mu);
}

void casb_http_server_free(casb_http_server *s)
{
    route *r;

    if (!s)
        return;
    if (s->ctx) {
        drain(s);
        mg_stop(s->ctx); /* joins the workers */
    }
    r = s->routes;
    while (r) {
        route *next = r->next;

        route_free(r);
        r = next;
    }
    free(s->addr);
    free(s->static_dir);
    free(s->cors_origins);
    casb_rate_limiter_free(s->limiter);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
