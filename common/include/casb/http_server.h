#ifndef CASB_HTTP_SERVER_H
#define CASB_HTTP_SERVER_H

#include <jansson.h>
#include <stddef.h>

#include "casb/auth.h"

/* An HTTP/1.1 JSON API server on civetweb (plain HTTP: TLS is terminated in front, see
 * DESIGN). Routes are "METHOD /v1/things/{id}/action" patterns; a {name} segment matches one
 * path segment and is available through casb_http_param. Every route requires a bearer token
 * unless registered with CASB_ROUTE_PUBLIC, and the role its flags name (401 without a valid
 * token, 403 below the role, 429 over the token's rate, 503 when tokens cannot be checked). The server itself answers /healthz, /readyz (via
 * the ready callback) and /metrics, 404/405 as problem+json, and refuses bodies larger than
 * max_body_bytes with 413. */

typedef struct casb_http_server casb_http_server;
typedef struct casb_http_req casb_http_req;

/* A handler answers through one of the casb_http_reply_* calls and returns its status. */
typedef int (*casb_http_handler)(casb_http_req *req);
/* Readiness: return 1 when every dependency is reachable; may fill reason. */
typedef int (*casb_http_ready_fn)(void *app, char *reason, size_t reasonlen);

/* Route flags. A route needs a valid token of the account's read_only role or above unless
 * it is PUBLIC; ANALYST and ADMIN raise the role it needs (403 below it). */
#define CASB_ROUTE_PUBLIC 1
#define CASB_ROUTE_ANALYST 2
#define CASB_ROUTE_ADMIN 4

typedef struct {
    const char *addr;        /* "127.0.0.1:8081" */
    size_t max_body_bytes;   /* 0: 1 MiB */
    size_t max_header_bytes; /* request line and headers; 0: 16 KiB */
    /* Per-token request rate: each token may send rate_burst requests at once and
     * rate_per_second more every second (429 with Retry-After beyond). 0: unlimited. */
    double rate_per_second;
    int rate_burst;
    int num_threads;         /* 0: 16 */
    const casb_auth *auth;   /* borrowed; required unless every route is public */
    casb_http_ready_fn ready;
    void *app;               /* handed to handlers through casb_http_app */
    const char *static_dir;  /* optional directory served for GET requests no route matches */
    /* Optional comma-separated list of browser origins ("http://127.0.0.1:8082,https://x")
     * allowed to call this API from a page of theirs (CORS). A request whose Origin is
     * listed gets Access-Control-Allow-Origin: <origin> and Vary: Origin; an OPTIONS
     * preflight from a listed origin for a path that has routes is answered 204 before
     * authentication, with Access-Control-Allow-Methods (the path's methods),
     * Access-Control-Allow-Headers: Authorization, Content-Type and Access-Control-Max-Age:
     * 600. An unlisted Origin gets no CORS headers, and its preflight 403. NULL or empty:
     * no CORS at all (OPTIONS is then an ordinary method, answered 405). */
    const char *cors_origins;
    /* GET and HEAD requests keep the pooled connection their token was checked on, and the
     * handler takes it with casb_http_take_db (one wait for the pool per request instead of
     * two). Only for a service whose every handler acquires through casb_http_take_db
     * first: one that acquired another while the request held this one would need two
     * connections per request. */
    int share_auth_db;
} casb_http_server_opts;

int casb_http_server_new(casb_http_server **out, const casb_http_server_opts *opts,
                         char *err, size_t errlen);
/* Routes must be added before casb_http_server_start. */
int casb_http_route(casb_http_server *s, const char *method, const char *pattern,
                    casb_http_handler handler, int flags);
/* A service's route table: casb_http_routes registers each entry (0, or -1 naming the first
 * that failed in err). */
typedef struct {
    const char *method;
    const char *pattern;
    casb_http_handler handler;
    int flags;
} casb_http_route_def;
int casb_http_routes(casb_http_server *s, const casb_http_route_def *defs, size_t n, char *err,
                     size_t errlen);
int casb_http_server_start(casb_http_server *s, char *err, size_t errlen);
/* Stops accepting, waits for in-flight requests, frees. NULL-safe. */
void casb_http_server_free(casb_http_server *s);

/* The connection the request's token was checked on (share_auth_db), now the caller's to
 * release to its pool; NULL when there is none (or it was taken already). */
casb_db *casb_http_take_db(casb_http_req *r);

/* Request accessors; strings are borrowed for the duration of the handler. */
const char *casb_http_method(const casb_http_req *r);
const char *casb_http_path(const casb_http_req *r);
const char *casb_http_param(const casb_http_req *r, const char *name); /* path {name} */
/* Decoded query parameter into buf; returns 1 when present, 0 when absent, -1 if too long. */
int casb_http_query(const casb_http_req *r, const char *name, char *buf, size_t buflen);
/* The query string as sent (after '?', still percent-encoded), or NULL when the URL has
 * none. casb/query.h reads it strictly. */
const char *casb_http_query_string(const casb_http_req *r);
const char *casb_http_header(const casb_http_req *r, const char *name);
const char *casb_http_body(const casb_http_req *r, size_t *len);
/* Parses the body as a JSON object (depth-limited). On failure it has already answered 400
 * (or 415 for a wrong Content-Type) and returns NULL. New reference on success. */
json_t *casb_http_body_json(casb_http_req *r);
/* The status of the reply already sent, or 0 before any (a handler returns it after a
 * helper such as casb_http_body_json answered for it). */
int casb_http_status(const casb_http_req *r);
const casb_principal *casb_http_principal(const casb_http_req *r); /* NULL on public routes */
void *casb_http_app(const casb_http_req *r);

/* Adds a header (Location, Retry-After, Link, ...) to the reply that follows; name and value
 * are copied. Returns 0, or -1 when either contains CR/LF, too many were added, or the reply
 * was already sent. Content-Type and Content-Length are the server's. */
int casb_http_add_header(casb_http_req *r, const char *name, const char *value);

/* Replies; each returns the status it sent (so a handler can `return casb_http_reply_...`),
 * or -1 when a reply was already sent or the connection failed. reply_json steals body (may
 * be NULL for an empty 204). */
int casb_http_reply_json(casb_http_req *r, int status, json_t *body);
/* application/problem+json with type "about:blank", title from the status, detail and
 * optional extra members (stolen, may be NULL; e.g. {"field":"credentials.token"}). */
int casb_http_reply_problem(casb_http_req *r, int status, const char *detail, json_t *extra);
int casb_http_reply_text(casb_http_req *r, int status, const char *content_type,
                         const char *body, size_t len);
/* Streaming: send headers (chunked; add others with casb_http_add_header first), then
 * chunks, then end. */
int casb_http_stream_begin(casb_http_req *r, int status, const char *content_type);
int casb_http_stream_write(casb_http_req *r, const char *data, size_t len);
int casb_http_stream_end(casb_http_req *r);
/* Ends a stream that failed halfway (its headers said 200): no last chunk is sent and the
 * connection is closed, so that the client knows the body is incomplete instead of taking
 * a truncated file for a whole one. */
int casb_http_stream_abort(casb_http_req *r);

#endif
