/* The Google Workspace client (google_auth.c, google_api.c) against a small in-process
 * Google: a casb_http_server on 127.0.0.1 answering the token endpoint (verifying the
 * assertion with the service account's public key) and a paged users.list with Google's
 * error bodies. Covers the key parsing, the assertion, the token cache (renewal window, one
 * exchange for many threads, invalidation), the token endpoint's refusals, error bodies,
 * paging with an escaped page token, and a quota 403 waited out. The collectors run against
 * the simulator in the integration tests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "casb/error.h"
#include "casb/http_client.h"
#include "casb/http_server.h"
#include "casb/json.h"
#include "casb/jwt.h"
#include "casb/log.h"
#include "casb/timeutil.h"
#include "google_client.h"
#include "test_keys.h"

#define SA_EMAIL "scanner@proj.iam.gserviceaccount.com"
#define ADMIN "admin@example.com"
#define NOW_S 1795824000LL
#define PAGE_TOKEN "a+b/c=d&e" /* must travel escaped */

static struct {
    pthread_mutex_t mu;
    casb_http_server *server;
    char base[64];
    char *private_pem;
    char *public_pem;
    int exchanges;
    int token_delay_ms;
    char token_error[64]; /* answer the token endpoint with this OAuth error */
    json_t *last_claims;
    json_t *last_header;
    int quota_403s;       /* answer this many users.list calls with a quota 403 */
    int forbidden;        /* answer users.list with 403 insufficientPermissions */
    int unauthorized;     /* answer this many users.list calls with 401 */
    int bad_page_tokens;
    int requests;
    long long now_s;      /* the client's clock */
} fake;

static long long fake_now(void)
{
    return fake.now_s;
}

/* ---- the fake Google ------------------------------------------------------------------- */

static int google_error(casb_http_req *r, int status, const char *reason, const char *msg)
{
    return casb_http_reply_json(
        r, status,
        json_pack("{s:{s:i,s:s,s:[{s:s,s:s,s:s}],s:s}}", "error", "code", status, "message",
                  msg, "errors", "domain", "global", "reason", reason, "message", msg, "status",
                  status == 403 ? "PERMISSION_DENIED" : "UNAUTHENTICATED"));
}

static int h_token(casb_http_req *r)
{
    json_t *form_claims = NULL;
    char assertion[8192], grant[128], err[256];
    int n;

    pthread_mutex_lock(&fake.mu);
    fake.exchanges++;
    n = fake.token_delay_ms;
    pthread_mutex_unlock(&fake.mu);
    if (n)
        casb_sleep_ms(n);
    if (casb_http_query(r, "grant_type", grant, sizeof(grant)) == 1)
        return casb_http_reply_json(r, 400, json_pack("{s:s}", "error", "form_in_query"));
    /* The form is in the body: parse it the simple way. */
    {
        size_t len = 0;
        const char *body = casb_http_body(r, &len);
        const char *a = body ? strstr(body, "&assertion=") : NULL;

        if (!body || strncmp(body, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-"
                                   "bearer",
                             62) != 0 ||
            !a)
            return casb_http_reply_json(r, 400, json_pack("{s:s}", "error", "invalid_request"));
        snprintf(assertion, sizeof(assertion), "%.*s", (int)(len - (size_t)(a + 11 - body)),
                 a + 11);
    }
    if (fake.token_error[0])
        return casb_http_reply_json(r, 401, json_pack("{s:s,s:s}", "error", fake.token_error,
                                                      "error_description",
                                                      "Client is unauthorized to retrieve "
                                                      "access tokens using this method"));
    /* Verified with leeway large enough for the fake clock. */
    if (casb_jwt_verify_rs256(&form_claims, assertion, fake.public_pem, 100LL * 365 * 86400,
                              err, sizeof(err)) != 0)
        return casb_http_reply_json(r, 400, json_pack("{s:s,s:s}", "error", "invalid_grant",
                                                      "error_description", err));
    pthread_mutex_lock(&fake.mu);
    json_decref(fake.last_claims);
    fake.last_claims = form_claims;
    pthread_mutex_unlock(&fake.mu);
    return casb_http_reply_json(r, 200, json_pack("{s:s,s:i,s:s}", "access_token",
                                                  "ya29.test-token", "expires_in", 3599,
                                                  "token_type", "Bearer"));
}

static json_t *canned;
static int h_canned(casb_http_req *r);

static int h_users(casb_http_req *r)
{
    const char *auth = casb_http_header(r, "Authorization");
    char pt[64];
    int have_pt = casb_http_query(r, "pageToken", pt, sizeof(pt)) == 1;

    if (canned)
        return h_canned(r);

    pthread_mutex_lock(&fake.mu);
    fake.requests++;
    if (fake.unauthorized > 0) {
        fake.unauthorized--;
        pthread_mutex_unlock(&fake.mu);
        return google_error(r, 401, "authError", "Invalid Credentials");
    }
    if (fake.quota_403s > 0) {
        fake.quota_403s--;
        pthread_mutex_unlock(&fake.mu);
        return google_error(r, 403, "userRateLimitExceeded", "User Rate Limit Exceeded");
    }
    if (fake.forbidden) {
        pthread_mutex_unlock(&fake.mu);
        return google_error(r, 403, "insufficientPermissions",
                            "Request had insufficient authentication scopes.");
    }
    pthread_mutex_unlock(&fake.mu);
    if (!auth || strcmp(auth, "Bearer ya29.test-token") != 0)
        return google_error(r, 401, "authError", "Invalid Credentials");
    if (!have_pt)
        return casb_http_reply_json(r, 200, json_pack("{s:[{s:s},{s:s}],s:s}", "users",
                                                      "primaryEmail", "a@example.com",
                                                      "primaryEmail", "b@example.com",
                                                      "nextPageToken", PAGE_TOKEN));
    if (strcmp(pt, PAGE_TOKEN) == 0)
        return casb_http_reply_json(r, 200, json_pack("{s:[{s:s}],s:s}", "users",
                                                      "primaryEmail", "c@example.com",
                                                      "nextPageToken", "last"));
    if (strcmp(pt, "last") == 0) /* an empty last page leaves the list out */
        return casb_http_reply_json(r, 200, json_object());
    pthread_mutex_lock(&fake.mu);
    fake.bad_page_tokens++;
    pthread_mutex_unlock(&fake.mu);
    return google_error(r, 400, "invalid", "Invalid page token");
}

/* ---- keys ------------------------------------------------------------------------------ */

static json_t *key_json(const char *token_uri)
{
    json_t *k = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type", "service_account", "project_id",
                          "proj", "private_key_id", "kid-123", "private_key", fake.private_pem,
                          "client_email", SA_EMAIL, "client_id", "104200000000000000001");

    if (token_uri)
        json_object_set_new(k, "token_uri", json_string(token_uri));
    return k;
}

static json_t *creds_with(json_t *key)
{
    return json_pack("{s:o}", "service_account_key", key);
}

/* ---- setup ----------------------------------------------------------------------------- */

static const char *const canned_routes[] = {
    "/admin/directory/v1/customer/{c}/domains", "/admin/directory/v1/users/{u}/tokens",
    "/drive/v3/files", "/drive/v3/files/{id}/permissions", "/drive/v3/drives",
    "/calendar/v3/calendars/{c}/acl", "/gmail/v1/users/me/settings/delegates"};

static int group_setup(void **state)
{
    casb_http_server_opts opts;
    char addr[32], err[256];
    EVP_PKEY *k = EVP_RSA_gen(2048);

    (void)state;
    casb_log_init("test_google_client", CASB_LOG_WARN);
    pthread_mutex_init(&fake.mu, NULL);
    if (!k)
        return -1;
    fake.private_pem = private_pem_of(k);
    fake.public_pem = public_pem_of(k);
    EVP_PKEY_free(k);
    if (!fake.private_pem || !fake.public_pem)
        return -1;
    for (int port = 18391; port < 18400 && !fake.server; port++) {
        casb_http_server *s = NULL;

        memset(&opts, 0, sizeof(opts));
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        opts.addr = addr;
        opts.num_threads = 8;
        if (casb_http_server_new(&s, &opts, err, sizeof(err)) != 0)
            continue;
        casb_http_route(s, "POST", "/token", h_token, CASB_ROUTE_PUBLIC);
        casb_http_route(s, "GET", "/admin/directory/v1/users", h_users, CASB_ROUTE_PUBLIC);
        for (size_t i = 0; i < sizeof(canned_routes) / sizeof(canned_routes[0]); i++)
            casb_http_route(s, "GET", canned_routes[i], h_canned, CASB_ROUTE_PUBLIC);
        if (casb_http_server_start(s, err, sizeof(err)) != 0) {
            casb_http_server_free(s);
            continue;
        }
        fake.server = s;
        snprintf(fake.base, sizeof(fake.base), "http://127.0.0.1:%d", port);
    }
    return fake.server ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    casb_http_server_free(fake.server);
    json_decref(fake.last_claims);
    free(fake.private_pem);
    free(fake.public_pem);
    return 0;
}

static int test_setup(void **state)
{
    (void)state;
    fake.exchanges = 0;
    fake.token_delay_ms = 0;
    fake.token_error[0] = '\0';
    fake.quota_403s = 0;
    fake.forbidden = 0;
    fake.unauthorized = 0;
    fake.bad_page_tokens = 0;
    fake.requests = 0;
    fake.now_s = NOW_S;
    return 0;
}

/* A client of the fake Google, its clock the fake's. */
typedef struct {
    json_t *config, *credentials;
    casb_http_client *http;
    casb_http_client_opts ho;
    casb_scan_ctx ctx;
    casb_google_client *c;
    volatile int cancel;
} harness;

static void harness_init(harness *h)
{
    char token_uri[128], err[256];

    memset(h, 0, sizeof(*h));
    snprintf(token_uri, sizeof(token_uri), "%s/token", fake.base);
    h->config = json_pack("{s:s,s:s,s:i}", "admin_email", ADMIN, "api_base_url", fake.base,
                          "max_requests_per_second", 1000);
    h->credentials = creds_with(key_json(token_uri));
    h->ho.max_wait_s = 1;
    h->ho.cancel = &h->cancel;
    assert_int_equal(casb_http_client_new(&h->http, &h->ho, err, sizeof(err)), 0);
    h->ctx.config = h->config;
    h->ctx.credentials = h->credentials;
    h->ctx.http = h->http;
    h->ctx.http_opts = &h->ho;
    h->ctx.allowed_endpoints = fake.base;
    h->ctx.cancel = &h->cancel;
    assert_int_equal(casb_google_client_new(&h->c, &h->ctx, err, sizeof(err)), 0);
    h->c->now_s = fake_now;
}

static void harness_free(harness *h)
{
    casb_google_client_free(h->c);
    casb_http_client_free(h->http);
    json_decref(h->config);
    json_decref(h->credentials);
}

/* ---- key parsing ----------------------------------------------------------------------- */

static void test_key_parse(void **state)
{
    casb_google_key k;
    char field[128], err[256];
    json_t *creds = creds_with(key_json(NULL));
    char *text;
    json_t *as_string;

    (void)state;
    assert_int_equal(casb_google_key_parse(&k, creds, field, sizeof(field), err, sizeof(err)), 0);
    assert_string_equal(k.client_email, SA_EMAIL);
    assert_string_equal(k.token_uri, CASB_GOOGLE_DEFAULT_TOKEN_URI);
    assert_string_equal(k.private_key_id, "kid-123");
    assert_string_equal(k.client_id, "104200000000000000001");
    casb_google_key_clear(&k);
    assert_null(k.private_key_pem);

    /* The key file pasted as a string. */
    text = json_dumps(json_object_get(creds, "service_account_key"), 0);
    as_string = json_pack("{s:s}", "service_account_key", text);
    free(text);
    assert_int_equal(casb_google_key_parse(&k, as_string, field, sizeof(field), err, sizeof(err)),
                     0);
    assert_string_equal(k.client_email, SA_EMAIL);
    casb_google_key_clear(&k);
    json_decref(as_string);
    json_decref(creds);
}

static void expect_invalid(json_t *creds, const char *field_expected)
{
    casb_google_key k;
    char field[128], err[256];

    assert_int_equal(casb_google_key_parse(&k, creds, field, sizeof(field), err, sizeof(err)),
                     CASB_EINVALID);
    assert_string_equal(field, field_expected);
    assert_non_null(strstr(err, field_expected));
    assert_null(k.private_key_pem);
    json_decref(creds);
}

static void test_key_parse_invalid(void **state)
{
    json_t *k;

    (void)state;
    k = key_json(NULL);
    json_object_del(k, "client_email");
    expect_invalid(creds_with(k), "credentials.service_account_key.client_email");

    k = key_json(NULL);
    json_object_del(k, "private_key");
    expect_invalid(creds_with(k), "credentials.service_account_key.private_key");

    k = key_json(NULL);
    json_object_set_new(k, "private_key",
                        json_string("-----BEGIN PRIVATE KEY-----\nnotbase64\n-----END PRIVATE "
                                    "KEY-----\n"));
    expect_invalid(creds_with(k), "credentials.service_account_key.private_key");

    k = key_json(NULL);
    json_object_set_new(k, "type", json_string("authorized_user"));
    expect_invalid(creds_with(k), "credentials.service_account_key.type");

    k = key_json(NULL);
    json_object_set_new(k, "token_uri", json_string("ftp://x"));
    expect_invalid(creds_with(k), "credentials.service_account_key.token_uri");

    expect_invalid(json_pack("{s:s}", "service_account_key", "{not json"),
                   "credentials.service_account_key");
    expect_invalid(json_object(), "credentials.service_account_key");
}

/* A token_uri or API base outside the allowlist is refused when the client is made. */
static void test_client_endpoints_guarded(void **state)
{
    json_t *config = json_pack("{s:s}", "admin_email", ADMIN);
    json_t *creds = creds_with(key_json("http://169.254.169.254/token"));
    casb_scan_ctx ctx;
    casb_google_client *c = NULL;
    char err[256];

    (void)state;
    memset(&ctx, 0, sizeof(ctx));
    ctx.config = config;
    ctx.credentials = creds;
    assert_int_equal(casb_google_client_new(&c, &ctx, err, sizeof(err)), CASB_EINVALID);
    assert_null(c);
    assert_non_null(strstr(err, "token_uri"));
    json_decref(config);
    json_decref(creds);
}

/* ---- the assertion --------------------------------------------------------------------- */

static void test_assertion(void **state)
{
    casb_google_key k;
    json_t *creds = creds_with(key_json(NULL));
    json_t *claims = NULL;
    char field[64], err[256];
    char *jwt = NULL;
    const char *dot;
    char hdr[256];
    size_t hl;

    (void)state;
    assert_int_equal(casb_google_key_parse(&k, creds, field, sizeof(field), err, sizeof(err)), 0);
    assert_int_equal(casb_google_assertion(&jwt, &k, "s1 s2", ADMIN, NOW_S, err, sizeof(err)), 0);
    assert_int_equal(casb_jwt_verify_rs256(&claims, jwt, fake.public_pem,
                                           100LL * 365 * 86400, err, sizeof(err)),
                     0);
    assert_string_equal(casb_json_str(claims, "iss"), SA_EMAIL);
    assert_string_equal(casb_json_str(claims, "scope"), "s1 s2");
    assert_string_equal(casb_json_str(claims, "aud"), CASB_GOOGLE_DEFAULT_TOKEN_URI);
    assert_string_equal(casb_json_str(claims, "sub"), ADMIN);
    assert_int_equal(casb_json_int(claims, "iat", 0), NOW_S);
    assert_int_equal(casb_json_int(claims, "exp", 0), NOW_S + 3600);
    /* The header {"alg":"RS256","typ":"JWT","kid":"kid-123"} base64url-encoded. */
    dot = strchr(jwt, '.');
    hl = (size_t)(dot - jwt);
    snprintf(hdr, sizeof(hdr), "%.*s", (int)hl, jwt);
    assert_string_equal(hdr, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImtpZC0xMjMifQ");
    json_decref(claims);
    free(jwt);
    casb_google_key_clear(&k);
    json_decref(creds);
}

static int get_users(harness *h, casb_google_resp *r, char *err, size_t errlen)
{
    return casb_google_get(h->c, h->http, ADMIN, "s", "/admin/directory/v1/users", r, err,
                           errlen);
}

/* ---- the token cache ------------------------------------------------------------------- */

static void test_token_cache_renewal(void **state)
{
    harness h;
    char tok[256], err[512];

    (void)state;
    harness_init(&h);
    assert_int_equal(casb_google_token(h.c, h.http, ADMIN, "s1", tok, sizeof(tok), err,
                                       sizeof(err)),
                     0);
    assert_string_equal(tok, "ya29.test-token");
    assert_string_equal(casb_json_str(fake.last_claims, "sub"), ADMIN);
    assert_string_equal(casb_json_str(fake.last_claims, "aud"), casb_json_str(
        json_object_get(h.credentials, "service_account_key"), "token_uri"));
    /* Cached while more than the refresh window is left. */
    fake.now_s += 3599 - CASB_GOOGLE_TOKEN_REFRESH_S - 1;
    assert_int_equal(casb_google_token(h.c, h.http, ADMIN, "s1", tok, sizeof(tok), err,
                                       sizeof(err)),
                     0);
    assert_int_equal(fake.exchanges, 1);
    /* Another scope or subject is another token. */
    assert_int_equal(casb_google_token(h.c, h.http, ADMIN, "s2", tok, sizeof(tok), err,
                                       sizeof(err)),
                     0);
    assert_int_equal(casb_google_token(h.c, h.http, "u@example.com", "s1", tok, sizeof(tok),
                                       err, sizeof(err)),
                     0);
    assert_int_equal(fake.exchanges, 3);
    /* Inside the window: renewed. */
    fake.now_s += 2;
    assert_int_equal(casb_google_token(h.c, h.http, ADMIN, "s1", tok, sizeof(tok), err,
                                       sizeof(err)),
                     0);
    assert_int_equal(fake.exchanges, 4);
    /* Invalidated (a 401): renewed; forgotten: renewed. */
    casb_google_token_invalidate(h.c, ADMIN, "s1", "ya29.test-token");
    assert_int_equal(casb_google_token(h.c, h.http, ADMIN, "s1", tok, sizeof(tok), err,
                                       sizeof(err)),
                     0);
    assert_int_equal(fake.exchanges, 5);
    casb_google_token_forget(h.c, "u@example.com");
    assert_int_equal(casb_google_token(h.c, h.http, "u@example.com", "s1", tok, sizeof(tok),
                                       err, sizeof(err)),
                     0);
    assert_int_equal(fake.exchanges, 6);
    assert_int_equal(casb_google_client_requests(h.c), 6);
    harness_free(&h);
}

typedef struct {
    harness *h;
    int rc;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    casb_http_client *http = NULL;
    char tok[256], err[512];

    if (casb_http_client_new(&http, &r->h->ho, err, sizeof(err)) != 0)
        return NULL;
    r->rc = casb_google_token(r->h->c, http, ADMIN, "s1", tok, sizeof(tok), err, sizeof(err));
    casb_http_client_free(http);
    return NULL;
}

/* Eight threads asking at once: one exchange, the others wait for it. */
static void test_token_single_flight(void **state)
{
    harness h;
    racer rs[8];
    pthread_t t[8];

    (void)state;
    harness_init(&h);
    fake.token_delay_ms = 300;
    for (int i = 0; i < 8; i++) {
        rs[i].h = &h;
        rs[i].rc = -99;
        assert_int_equal(pthread_create(&t[i], NULL, race, &rs[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(rs[i].rc, 0);
    }
    assert_int_equal(fake.exchanges, 1);
    harness_free(&h);
}

/* unauthorized_client: the delegation is missing; the message says what to grant. */
static void test_token_refused(void **state)
{
    harness h;
    casb_google_resp r;
    char err[1024];

    (void)state;
    harness_init(&h);
    snprintf(fake.token_error, sizeof(fake.token_error), "unauthorized_client");
    assert_int_equal(casb_google_get(h.c, h.http, ADMIN, CASB_GOOGLE_SCOPE_USERS,
                                     "/admin/directory/v1/users?fields=users(id)", &r, err,
                                     sizeof(err)),
                     CASB_EAUTH);
    assert_non_null(strstr(err, "Google refused the service account's assertion for " ADMIN));
    assert_non_null(strstr(err, "104200000000000000001"));
    assert_non_null(strstr(err, CASB_GOOGLE_SCOPE_USERS));
    assert_null(r.body);
    snprintf(fake.token_error, sizeof(fake.token_error), "invalid_client");
    casb_google_token_forget(h.c, ADMIN);
    assert_int_equal(get_users(&h, &r, err, sizeof(err)),
                     CASB_EAUTH);
    assert_non_null(strstr(err, "invalid_client"));
    harness_free(&h);
}

/* ---- API calls ------------------------------------------------------------------------- */

static void test_error_body(void **state)
{
    harness h;
    casb_google_resp r;
    char err[512];

    (void)state;
    harness_init(&h);
    fake.forbidden = 1;
    assert_int_equal(get_users(&h, &r, err, sizeof(err)),
                     0);
    assert_int_equal(r.status, 403);
    assert_string_equal(r.reason, "insufficientPermissions");
    assert_string_equal(r.message, "Request had insufficient authentication scopes.");
    assert_int_equal(casb_google_status_error(&r, "GET users", err, sizeof(err)),
                     CASB_GOOGLE_EFORBIDDEN);
    assert_non_null(strstr(err, "insufficientPermissions"));
    /* Not a quota: answered once. */
    assert_int_equal(fake.requests, 1);
    casb_google_resp_clear(&r);

    r.status = 429;
    assert_int_equal(casb_google_status_error(&r, "GET x", err, sizeof(err)), CASB_EUNAVAILABLE);
    r.status = 404;
    assert_int_equal(casb_google_status_error(&r, "GET x", err, sizeof(err)), CASB_ENOTFOUND);
    r.status = 400;
    assert_int_equal(casb_google_status_error(&r, "GET x", err, sizeof(err)),
                     CASB_GOOGLE_EREJECTED);
    r.status = 401;
    assert_int_equal(casb_google_status_error(&r, "GET x", err, sizeof(err)), CASB_EAUTH);
    harness_free(&h);
}

/* A 401 on an API call: one new token, then the answer. */
static void test_401_renews_once(void **state)
{
    harness h;
    casb_google_resp r;
    char err[512];

    (void)state;
    harness_init(&h);
    fake.unauthorized = 1;
    assert_int_equal(get_users(&h, &r, err, sizeof(err)),
                     0);
    assert_int_equal(r.status, 200);
    assert_int_equal(fake.exchanges, 2);
    casb_google_resp_clear(&r);
    fake.unauthorized = 5;
    assert_int_equal(get_users(&h, &r, err, sizeof(err)),
                     0);
    assert_int_equal(r.status, 401);
    casb_google_resp_clear(&r);
    harness_free(&h);
}

static int collect_emails(void *ud, json_t *items, char *err, size_t errlen)
{
    json_t *all = ud;
    const json_t *u;
    size_t i;

    (void)err;
    (void)errlen;
    json_array_foreach(items, i, u) json_array_append_new(all,
                                                          json_string(casb_json_str(u, "primaryEmail")));
    return 0;
}

static void test_paginate_with_quota(void **state)
{
    harness h;
    json_t *all = json_array();
    char err[512];
    int64_t t0;

    (void)state;
    harness_init(&h);
    fake.quota_403s = 1;
    t0 = casb_monotonic_ms();
    assert_int_equal(casb_google_paginate(h.c, h.http, ADMIN, "s",
                                          "/admin/directory/v1/users?customer=my_customer"
                                          "&fields=nextPageToken,users(primaryEmail)",
                                          "users", collect_emails, all, err, sizeof(err)),
                     0);
    /* The quota 403 was waited out (max_wait_s 1: between 0.5 and 1 s). */
    assert_true(casb_monotonic_ms() - t0 >= 450);
    assert_int_equal(json_array_size(all), 3);
    assert_string_equal(json_string_value(json_array_get(all, 2)), "c@example.com");
    assert_int_equal(fake.bad_page_tokens, 0);
    /* 1 token + 1 quota 403 + 3 pages. */
    assert_int_equal(fake.requests, 4);
    assert_int_equal(casb_google_client_requests(h.c), 5);
    json_decref(all);
    harness_free(&h);
}

/* Quota that does not end within the budget: the 403 is the answer, as CASB_EUNAVAILABLE. */
static void test_quota_budget(void **state)
{
    harness h;
    json_t *all = json_array();
    char err[512];

    (void)state;
    harness_init(&h);
    h.ho.rate_limit_budget_s = 1;
    fake.quota_403s = 100;
    assert_int_equal(casb_google_paginate(h.c, h.http, ADMIN, "s", "/admin/directory/v1/users",
                                          "users", collect_emails, all, err, sizeof(err)),
                     CASB_EUNAVAILABLE);
    assert_non_null(strstr(err, "userRateLimitExceeded"));
    assert_true(fake.requests < 5);
    json_decref(all);
    harness_free(&h);
}

static void test_cancel_stops_wait(void **state)
{
    harness h;
    casb_google_resp r;
    char err[512];

    (void)state;
    harness_init(&h);
    h.cancel = 1;
    assert_int_equal(get_users(&h, &r, err, sizeof(err)),
                     CASB_ERROR);
    assert_int_equal(casb_google_sleep_ms(h.c, 10000), -1);
    harness_free(&h);
}

/* ---- canned answers for the collectors ------------------------------------------------- */

/* {"<path>[#corpora]": body} answered as is; a body {"status":N,...} is an error answer. */

static int h_canned(casb_http_req *r)
{
    char key[512], corpora[32];
    json_t *body;
    long long status;

    if (casb_http_query(r, "corpora", corpora, sizeof(corpora)) == 1)
        snprintf(key, sizeof(key), "%s#%s", casb_http_path(r), corpora);
    else
        snprintf(key, sizeof(key), "%s", casb_http_path(r));
    pthread_mutex_lock(&fake.mu);
    fake.requests++;
    body = json_object_get(canned, key);
    pthread_mutex_unlock(&fake.mu);
    if (!body)
        return google_error(r, 404, "notFound", key);
    status = casb_json_int(body, "status", 200);
    if (status != 200)
        return google_error(r, (int)status, casb_json_str(body, "reason"), "canned");
    return casb_http_reply_json(r, 200, json_deep_copy(body));
}

static const char CANNED[] =
    "{\"/admin/directory/v1/customer/my_customer/domains\":{\"domains\":["
    "  {\"domainName\":\"example.com\",\"verified\":false,\"isPrimary\":true,"
    "   \"domainAliases\":[{\"domainAliasName\":\"example.org\",\"verified\":false}]}]},"
    " \"/admin/directory/v1/users\":{\"users\":["
    "  {\"id\":\"1\",\"primaryEmail\":\"a@example.com\",\"isAdmin\":true,\"isEnrolledIn2Sv\":false,"
    "   \"isMailboxSetup\":true,\"lastLoginTime\":\"2026-11-27T00:00:00.000Z\"},"
    "  {\"id\":\"2\",\"primaryEmail\":\"b@example.com\",\"suspended\":true},"
    "  {\"id\":\"3\",\"primaryEmail\":\"c@example.com\",\"isMailboxSetup\":true}]},"
    " \"/admin/directory/v1/users/1/tokens\":{\"items\":[{\"clientId\":\"app1\","
    "   \"displayText\":\"App\",\"scopes\":[\"https://www.googleapis.com/auth/drive\"]}]},"
    " \"/admin/directory/v1/users/2/tokens\":{},"
    " \"/admin/directory/v1/users/3/tokens\":{\"status\":403,\"reason\":\"insufficientPermissions\"},"
    " \"/drive/v3/files#user\":{\"files\":[{\"id\":\"f1\",\"name\":\"plan\",\"permissions\":["
    "   {\"id\":\"anyoneWithLink\",\"type\":\"anyone\",\"role\":\"reader\"}]},"
    "   {\"id\":\"f2\",\"name\":\"notes\",\"permissions\":[]}]},"
    " \"/calendar/v3/calendars/a%40example.com/acl\":{\"items\":[{\"id\":\"default\","
    "   \"role\":\"reader\",\"scope\":{\"type\":\"default\"}}]},"
    " \"/calendar/v3/calendars/a@example.com/acl\":{\"items\":[{\"id\":\"default\","
    "   \"role\":\"reader\",\"scope\":{\"type\":\"default\"}}]},"
    " \"/gmail/v1/users/me/settings/delegates\":{\"status\":400,\"reason\":\"failedPrecondition\"},"
    " \"/drive/v3/drives\":{\"drives\":[{\"id\":\"d1\",\"name\":\"Team\"}]},"
    " \"/drive/v3/files/d1/permissions\":{\"permissions\":["
    "   {\"id\":\"p1\",\"type\":\"user\",\"role\":\"organizer\",\"emailAddress\":\"a@example.com\"},"
    "   {\"id\":\"p2\",\"type\":\"user\",\"role\":\"writer\",\"emailAddress\":\"x@other.com\"}]},"
    " \"/drive/v3/files#drive\":{\"files\":[{\"id\":\"g1\",\"name\":\"shared\","
    "   \"permissionIds\":[\"p1\",\"p2\",\"p9\"]},{\"id\":\"g2\",\"name\":\"plain\","
    "   \"permissionIds\":[\"p1\",\"p2\"]}]},"
    " \"/drive/v3/files/g1/permissions\":{\"permissions\":["
    "   {\"id\":\"p1\",\"type\":\"user\",\"role\":\"organizer\",\"emailAddress\":\"a@example.com\"},"
    "   {\"id\":\"p9\",\"type\":\"anyone\",\"role\":\"writer\"}]}}";

typedef struct {
    casb_scan_sink sink;
    json_t *findings; /* ["type asset_id"] */
    json_t *skipped;  /* {"type": reason} */
    json_t *seen;     /* {"kind": n} */
    int in_sink;      /* catches unserialized calls */
    int overlap;
} recorder;

static void enter(recorder *r)
{
    if (__atomic_add_fetch(&r->in_sink, 1, __ATOMIC_SEQ_CST) != 1)
        r->overlap = 1;
}

static void leave(recorder *r)
{
    __atomic_sub_fetch(&r->in_sink, 1, __ATOMIC_SEQ_CST);
}

static int rec_finding(casb_scan_sink *sink, const char *type, const char *kind, const char *id,
                       const char *name, const char *url, json_t *details)
{
    recorder *r = sink->ctx;
    char line[256];

    (void)kind;
    (void)name;
    (void)url;
    enter(r);
    snprintf(line, sizeof(line), "%s %s", type, id);
    json_array_append_new(r->findings, json_string(line));
    json_decref(details);
    leave(r);
    return 0;
}

static void rec_ran(casb_scan_sink *sink, const char *type)
{
    (void)sink;
    (void)type;
}

static void rec_skipped(casb_scan_sink *sink, const char *type, const char *reason)
{
    recorder *r = sink->ctx;

    json_object_set_new(r->skipped, type, json_string(reason));
}

static void rec_seen(casb_scan_sink *sink, const char *kind)
{
    recorder *r = sink->ctx;

    enter(r);
    json_object_set_new(r->seen, kind, json_integer(casb_json_int(r->seen, kind, 0) + 1));
    usleep(100); /* widens the window for an unserialized caller */
    leave(r);
}

static int has_finding(const recorder *r, const char *line)
{
    const json_t *v;
    size_t i;

    json_array_foreach(r->findings, i, v) if (strcmp(json_string_value(v), line) == 0) return 1;
    return 0;
}

static void scan_begin(harness *h, recorder *rec)
{
    canned = json_loads(CANNED, 0, NULL);
    assert_non_null(canned);
    harness_init(h);
    memset(rec, 0, sizeof(*rec));
    rec->sink = (casb_scan_sink){rec_finding, rec_ran, rec_skipped, rec_seen, rec};
    rec->findings = json_array();
    rec->skipped = json_object();
    rec->seen = json_object();
    h->ctx.sink = &rec->sink;
}

static void scan_end(harness *h, recorder *rec)
{
    harness_free(h);
    json_decref(rec->findings);
    json_decref(rec->skipped);
    json_decref(rec->seen);
    json_decref(canned);
    canned = NULL;
}

static void test_collect_all(void **state)
{
    harness h;
    recorder rec;
    casb_google_eval ev;
    casb_http_stats extra;
    char err[1024];
    const char *reason;

    (void)state;
    scan_begin(&h, &rec);
    memset(&extra, 0, sizeof(extra));
    h.ctx.extra_stats = &extra;
    h.ctx.now_s = NOW_S;
    json_object_set_new(h.config, "concurrency", json_integer(3));
    casb_google_eval_init(&ev, &rec.sink, NOW_S, "my_customer");
    assert_int_equal(casb_google_collect_all(h.c, &h.ctx, &ev, err, sizeof(err)), 0);
    casb_google_eval_report(&ev);
    assert_false(rec.overlap);
    assert_int_equal(casb_json_int(rec.seen, "user", 0), 3);
    /* Two users' files (b is suspended) and the shared drive's two. */
    assert_int_equal(casb_json_int(rec.seen, "file", 0), 6);
    assert_int_equal(casb_json_int(rec.seen, "shared_drive", 0), 1);
    assert_true(has_finding(&rec, "google_workspace.file.public_view f1"));
    assert_true(has_finding(&rec, "google_workspace.file.public_edit g1"));
    assert_false(has_finding(&rec, "google_workspace.file.external_edit g2"));
    /* c's tokens were refused: the app checks are skipped, saying for whom. */
    reason = casb_json_str(rec.skipped, "google_workspace.app.drive_access");
    assert_non_null(reason);
    assert_non_null(strstr(reason, "insufficientPermissions"));
    /* A user without Gmail has no delegates: not a skip. */
    assert_null(casb_json_str(rec.skipped, "google_workspace.user.delegates_email"));
    assert_null(casb_json_str(rec.skipped, "google_workspace.file.public_view"));
    assert_true(extra.requests > 0);
    casb_google_eval_cleanup(&ev);
    scan_end(&h, &rec);
}

/* A key whose delegation was revoked fails the scan with CASB_EAUTH. */
static void test_collect_revoked(void **state)
{
    harness h;
    recorder rec;
    casb_google_eval ev;
    char err[1024];

    (void)state;
    scan_begin(&h, &rec);
    snprintf(fake.token_error, sizeof(fake.token_error), "unauthorized_client");
    casb_google_eval_init(&ev, &rec.sink, NOW_S, "my_customer");
    assert_int_equal(casb_google_collect_all(h.c, &h.ctx, &ev, err, sizeof(err)), CASB_EAUTH);
    assert_non_null(strstr(err, "domain-wide delegation"));
    casb_google_eval_cleanup(&ev);
    scan_end(&h, &rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_key_parse, test_setup),
        cmocka_unit_test_setup(test_key_parse_invalid, test_setup),
        cmocka_unit_test_setup(test_client_endpoints_guarded, test_setup),
        cmocka_unit_test_setup(test_assertion, test_setup),
        cmocka_unit_test_setup(test_token_cache_renewal, test_setup),
        cmocka_unit_test_setup(test_token_single_flight, test_setup),
        cmocka_unit_test_setup(test_token_refused, test_setup),
        cmocka_unit_test_setup(test_error_body, test_setup),
        cmocka_unit_test_setup(test_401_renews_once, test_setup),
        cmocka_unit_test_setup(test_paginate_with_quota, test_setup),
        cmocka_unit_test_setup(test_quota_budget, test_setup),
        cmocka_unit_test_setup(test_cancel_stops_wait, test_setup),
        cmocka_unit_test_setup(test_collect_all, test_setup),
        cmocka_unit_test_setup(test_collect_revoked, test_setup),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
