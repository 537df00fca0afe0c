/* The SaaS simulator's GitHub OAuth web flow, in process on a free loopback port, called
 * over HTTP with libcurl like a browser and a token client would: authorize (consent,
 * PKCE, state), the token endpoint (code and refresh grants, GitHub's 200 errors, JSON and
 * form answers), user access tokens on the REST API, expiry, rotation, revocation by the
 * admin API, the App install page that hands out a code with the installation, and the
 * tenant's auth.oauth validation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"

#include "sim.h"
#include "test_http_util.h"

#define ORG "o-org"
#define OTHER_ORG "other-org"
#define CLIENT_ID "Iv1.testclient000001"
#define CLIENT_SECRET "sim-oauth-secret-test-0000000000000000001"
#define OTHER_CLIENT_ID "Iv1.otherclient00002"
#define OTHER_SECRET "sim-oauth-secret-other-000000000000000002"
#define PREFIX "https://casb.example/v1/integrations/oauth/github/callback"
#define REDIRECT PREFIX "?account=1"
/* RFC 7636 Appendix B: a verifier and its S256 challenge, computed independently. */
#define RFC_VERIFIER "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define RFC_CHALLENGE "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
#define STATE "st ate/+&=%~"
#define STATE_FORM "st+ate%2F%2B%26%3D%25~" /* STATE as GitHub form-encodes it */
#define APP_SLUG "casb-test-app"
#define OTHER_APP_SLUG "other-test-app"
#define INSTALL_PATH "/apps/" APP_SLUG "/installations/new"
#define DOCS_TOKEN \
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"

static sim *S;
static char base[64];

/* One request on the simulator. hdrs: extra header lines, NULL-terminated (may be NULL). */
static response http(const char *method, const char *path, const char *const *hdrs,
                     const char *body)
{
    char full[sizeof(base) + 4096];

    snprintf(full, sizeof full, "%s%s", base, path);
    return http_request(method, full, hdrs, body);
}

static response admin(const char *method, const char *path, const char *body)
{
    static const char *const json[] = {"Content-Type: application/json", NULL};

    return http(method, path, json, body);
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The decoded value of name in a form / query string ("a=1&b=2"); 0 when absent. */
static int form_get(const char *form, const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);

    for (const char *p = form; p && *p;) {
        const char *end = strchr(p, '&');
        size_t seg = end ? (size_t)(end - p) : strlen(p);
        if (seg > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            size_t o = 0;
            for (size_t i = n + 1; i < seg && o + 1 < len; i++) {
                if (p[i] == '+') {
                    buf[o++] = ' ';
                } else if (p[i] == '%' && i + 2 < seg + 1 && hexval(p[i + 1]) >= 0 &&
                           hexval(p[i + 2]) >= 0) {
                    buf[o++] = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
                    i += 2;
                } else {
                    buf[o++] = p[i];
                }
            }
            buf[o] = '\0';
            return 1;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

static char *esc(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *copy;

    assert_non_null(e);
    copy = strdup(e);
    curl_free(e);
    return copy;
}

/* GET /login/oauth/authorize; redirect_uri/state/challenge NULL = not sent. Returns the
 * response (302 expected by most callers). */
static response authorize_req(const char *client_id, const char *redirect_uri, const char *state,
                              const char *challenge, const char *method)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "/login/oauth/authorize?client_id=%s&scope=&allow_signup=false",
                     client_id);
    const char *names[] = {"redirect_uri", "state", "code_challenge", "code_challenge_method"};
    const char *values[] = {redirect_uri, state, challenge, method};

    for (size_t i = 0; i < 4; i++) {
        if (!values[i])
            continue;
        char *e = esc(values[i]);
        n += snprintf(path + n, sizeof path - (size_t)n, "&%s=%s", names[i], e);
        free(e);
    }
    return http("GET", path, NULL, NULL);
}

/* An approved authorize: the code from the 302 to redirect_uri into code (and checks state). */
static void authorize_code(const char *redirect_uri, const char *challenge, char *code, size_t len)
{
    response r = authorize_req(CLIENT_ID, redirect_uri, STATE, challenge, challenge ? "S256" : NULL);
    char loc[4096], state[256];

    assert_int_equal(r.status, 302);
    assert_true(header(&r, "Location", loc, sizeof loc));
    assert_int_equal(strncmp(loc, redirect_uri, strlen(redirect_uri)), 0);
    /* A redirect_uri that has a query already gets '&'. */
    assert_int_equal(loc[strlen(redirect_uri)], strchr(redirect_uri, '?') ? '&' : '?');
    assert_true(form_get(loc + strlen(redirect_uri) + 1, "code", code, len));
    assert_int_equal(strlen(code), 20);
    assert_int_equal(strspn(code, "0123456789abcdef"), 20);
    assert_true(form_get(loc + strlen(redirect_uri) + 1, "state", state, sizeof state));
    assert_string_equal(state, STATE);
    response_free(&r);
}

/* POST /login/oauth/access_token with form fields "k", "v", ..., NULL. */
static response token_req(int accept_json, ...)
{
    const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded",
                          accept_json ? "Accept: application/json" : NULL, NULL};
    char body[4096];
    size_t n = 0;
    va_list ap;
    const char *k;

    body[0] = '\0';
    va_start(ap, accept_json);
    while ((k = va_arg(ap, const char *)) != NULL) {
        char *e = esc(va_arg(ap, const char *));
        n += (size_t)snprintf(body + n, sizeof body - n, "%s%s=%s", n ? "&" : "", k, e);
        free(e);
    }
    va_end(ap);
    return http("POST", "/login/oauth/access_token", hdrs, body);
}

typedef struct {
    char access[128];
    char refresh[128];
} tokens;

static void assert_alnum(const char *s, size_t n)
{
    assert_int_equal(strlen(s), n);
    for (size_t i = 0; i < n; i++)
        assert_true((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                    (s[i] >= '0' && s[i] <= '9'));
}

/* A successful JSON token answer into t, checking GitHub's shape. */
static void expect_tokens(response *r, long long access_ttl_s, long long refresh_ttl_s, tokens *t)
{
    char ctype[128];
    json_t *b;

    assert_int_equal(r->status, 200);
    assert_true(header(r, "Content-Type", ctype, sizeof ctype));
    assert_non_null(strstr(ctype, "application/json"));
    b = body_of(r);
    assert_null(json_object_get(b, "error"));
    snprintf(t->access, sizeof t->access, "%s", casb_json_str(b, "access_token"));
    snprintf(t->refresh, sizeof t->refresh, "%s", casb_json_str(b, "refresh_token"));
    assert_int_equal(strncmp(t->access, "ghu_", 4), 0);
    assert_alnum(t->access + 4, 36);
    assert_int_equal(strncmp(t->refresh, "ghr_", 4), 0);
    assert_alnum(t->refresh + 4, 76);
    assert_int_equal(casb_json_int(b, "expires_in", -1), access_ttl_s);
    assert_int_equal(casb_json_int(b, "refresh_token_expires_in", -1), refresh_ttl_s);
    assert_string_equal(casb_json_str(b, "token_type"), "bearer");
    assert_string_equal(casb_json_str(b, "scope"), "");
    json_decref(b);
    response_free(r);
}

/* A refused grant: 200 with GitHub's error triple. */
static void expect_grant_error(response *r, const char *error, const char *description,
                               const char *error_uri)
{
    json_t *b;

    assert_int_equal(r->status, 200);
    b = body_of(r);
    assert_string_equal(casb_json_str(b, "error"), error);
    assert_string_equal(casb_json_str(b, "error_description"), description);
    assert_string_equal(casb_json_str(b, "error_uri"), error_uri);
    assert_null(json_object_get(b, "access_token"));
    json_decref(b);
    response_free(r);
}

static void expect_bad_code(response *r)
{
    expect_grant_error(r, "bad_verification_code", "The code passed is incorrect or expired.",
                       DOCS_TOKEN "#bad-verification-code");
}

static void expect_bad_refresh(response *r)
{
    expect_grant_error(r, "bad_refresh_token", "The refresh token passed is incorrect or expired.",
                       DOCS_TOKEN "#bad-verification-code");
}

static response redeem(const char *code, const char *verifier)
{
    if (verifier)
        return token_req(1, "client_id", CLIENT_ID, "client_secret", CLIENT_SECRET, "code", code,
                         "redirect_uri", REDIRECT, "code_verifier", verifier, NULL);
    return token_req(1, "client_id", CLIENT_ID, "client_secret", CLIENT_SECRET, "code", code,
                     "redirect_uri", REDIRECT, NULL);
}

static response refresh(const char *refresh_token)
{
    return token_req(1, "client_id", CLIENT_ID, "client_secret", CLIENT_SECRET, "grant_type",
                     "refresh_token", "refresh_token", refresh_token, NULL);
}

/* The whole approved flow with PKCE: tokens for ORG. */
static void full_flow(tokens *t, long long access_ttl_s, long long refresh_ttl_s)
{
    char code[64];
    response r;

    authorize_code(REDIRECT, RFC_CHALLENGE, code, sizeof code);
    r = redeem(code, RFC_VERIFIER);
    expect_tokens(&r, access_ttl_s, refresh_ttl_s, t);
}

/* GET path with "Authorization: Bearer token"; returns the status. */
static long api_status(const char *path, const char *token, char *message, size_t len)
{
    char authz[256];
    const char *hdrs[] = {authz, NULL};
    response r;
    long status;

    snprintf(authz, sizeof authz, "Authorization: Bearer %s", token);
    r = http("GET", path, hdrs, NULL);
    status = r.status;
    if (message) {
        json_t *b = body_of(&r);
        snprintf(message, len, "%s", casb_json_str(b, "message") ? casb_json_str(b, "message") : "");
        json_decref(b);
    }
    response_free(&r);
    return status;
}

static json_t *oauth_stats(const char *org)
{
    char path[128];
    response r;
    json_t *b;

    snprintf(path, sizeof path, "/_sim/orgs/%s/oauth", org);
    r = admin("GET", path, NULL);
    assert_int_equal(r.status, 200);
    b = body_of(&r);
    response_free(&r);
    return b;
}

/* An org with an OAuth registration and an App installed as installation_id under
 * app_slug; callback_url NULL leaves its install page without a callback URL. */
static json_t *org_doc(const char *login, const char *client_id, const char *secret,
                       const char *app_slug, long long installation_id, const char *callback_url)
{
    json_t *doc = json_pack("{s:s, s:{s:{s:s, s:s, s:s}, s:{s:i, s:I, s:s}}, s:[{s:s}]}", "login",
                            login, "auth", "oauth", "client_id", client_id, "client_secret",
                            secret, "redirect_uri_prefix", PREFIX, "app", "app_id", 1001,
                            "installation_id", (json_int_t)installation_id, "app_slug", app_slug,
                            "repos", "name", "x");

    if (callback_url)
        json_object_set_new(casb_json_path(doc, "auth.oauth"), "callback_url",
                            json_string(callback_url));
    return doc;
}

static int setup(void **state)
{
    char addr[32], err[256];
    int created = 0;
    int port = free_port();
    sim_opts opts = {.seed = 7};

    (void)state;
    casb_log_init("test-saas-sim-oauth", CASB_LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (port < 0)
        return -1;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    snprintf(base, sizeof base, "http://%s", addr);
    opts.addr = addr;
    if (sim_new(&S, &opts, err, sizeof err) != 0)
        return -1;
    if (sim_org_put(S, ORG, org_doc(ORG, CLIENT_ID, CLIENT_SECRET, APP_SLUG, 2001, REDIRECT),
                    &created, err, sizeof err) != 0 ||
        sim_org_put(S, OTHER_ORG,
                    org_doc(OTHER_ORG, OTHER_CLIENT_ID, OTHER_SECRET, OTHER_APP_SLUG, 2002, NULL),
                    &created, err, sizeof err) != 0) {
        fprintf(stderr, "tenant: %s\n", err);
        return -1;
    }
    if (sim_start(S, err, sizeof err) != 0) {
        fprintf(stderr, "start: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sim_free(S);
    curl_global_cleanup();
    return 0;
}

/* Between tests: the canned consent, TTLs and install answer back to their defaults, the
 * callback URL back, no grants, no faults, fresh counters. */
static int reset_org(void **state)
{
    response r;

    (void)state;
    r = admin("PATCH", "/_sim/orgs/" ORG,
              "{\"auth\":{\"oauth\":{\"consent\":null,\"access_token_ttl_s\":null,"
              "\"refresh_token_ttl_s\":null,\"install\":null,\"callback_url\":\"" REDIRECT "\"}}}");
    assert_int_equal(r.status, 200);
    response_free(&r);
    r = admin("POST", "/_sim/orgs/" ORG "/oauth/revoke", "{}");
    assert_int_equal(r.status, 200);
    response_free(&r);
    r = admin("DELETE", "/_sim/orgs/" ORG "/faults", NULL);
    response_free(&r);
    r = admin("POST", "/_sim/orgs/" ORG "/stats/reset", "{}");
    response_free(&r);
    return 0;
}

static void test_approve_flow_end_to_end(void **state)
{
    tokens t;
    json_t *st, *stats;
    response r;
    char msg[256];
    long long issued_before;

    (void)state;
    st = oauth_stats(ORG);
    issued_before = casb_json_int(st, "codes_issued", -1);
    json_decref(st);

    full_flow(&t, 28800, 15897600);
    assert_int_equal(api_status("/orgs/" ORG, t.access, NULL, 0), 200);
    assert_int_equal(api_status("/orgs/" ORG "/repos", t.access, NULL, 0), 200);
    assert_int_equal(api_status("/rate_limit", t.access, NULL, 0), 200);
    /* A token of one org is not a key to another: GitHub hides it behind 404. */
    assert_int_equal(api_status("/orgs/" OTHER_ORG, t.access, msg, sizeof msg), 404);
    /* A refresh token is no API credential. */
    assert_int_equal(api_status("/orgs/" ORG, t.refresh, msg, sizeof msg), 401);
    assert_string_equal(msg, "Bad credentials");

    st = oauth_stats(ORG);
    assert_int_equal(casb_json_int(st, "codes_issued", -1), issued_before + 1);
    assert_int_equal(casb_json_int(st, "codes_redeemed", -1), casb_json_int(st, "tokens_issued", -2) -
                                                                  casb_json_int(st, "refreshes", -3));
    assert_int_equal(casb_json_int(st, "active_access_tokens", -1), 1);
    assert_int_equal(casb_json_int(st, "active_refresh_tokens", -1), 1);
    assert_string_equal(casb_json_str(st, "last_code_challenge_method"), "S256");
    json_decref(st);

    r = admin("GET", "/_sim/orgs/" ORG "/stats", NULL);
    stats = body_of(&r);
    assert_int_equal(casb_json_int(casb_json_path(stats, "by_endpoint"), "GET /login/oauth/authorize", 0), 1);
    assert_int_equal(casb_json_int(casb_json_path(stats, "by_endpoint"), "POST /login/oauth/access_token", 0), 1);
    json_decref(stats);
    response_free(&r);

    /* The tenant document served back never shows the client secret. */
    r = admin("GET", "/_sim/orgs/" ORG, NULL);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, CLIENT_SECRET));
    response_free(&r);
}

static void test_code_without_pkce_and_plain_redirect(void **state)
{
    char code[64];
    tokens t;
    json_t *st;
    response r;

    (void)state;
    authorize_code(PREFIX, NULL, code, sizeof code);
    st = oauth_stats(ORG);
    assert_true(json_is_null(json_object_get(st, "last_code_challenge_method")));
    json_decref(st);
    /* redirect_uri may be left out of the token request. */
    r = token_req(1, "client_id", CLIENT_ID, "client_secret", CLIENT_SECRET, "code", code, NULL);
    expect_tokens(&r, 28800, 15897600, &t);
    assert_int_equal(api_status("/orgs/" ORG, t.access, NULL, 0), 200);
}

static void test_deny(void **state)
{
    response r;
    char loc[4096];
    json_t *st;
    long long issued;

    (void)state;
    st = oauth_stats(ORG);
    issued = casb_json_int(st, "codes_issued", -1);
    json_decref(st);
    r = admin("PATCH", "/_sim/orgs/" ORG, "{\"auth\":{\"oauth\":{\"consent\":\"deny\"}}}");
    assert_int_equal(r.status, 200);
    response_free(&r);

    r = authorize_req(CLIENT_ID, REDIRECT, "xyz", NULL, NULL);
    assert_int_equal(r.status, 302);
    assert_true(header(&r, "Location", loc, sizeof loc));
    assert_string_equal(loc, REDIRECT "&error=access_denied&error_description=The+user+has+denied+your+application+access."
                                      "&error_uri=https%3A%2F%2Fdocs.github.com%2Fapps%2Fmanaging-oauth-apps%2F"
                                      "troubleshooting-authorization-request-errors%2F%23access-denied&state=xyz");
    response_free(&r);
    st = oauth_stats(ORG);
    assert_int_equal(casb_json_int(st, "codes_issued", -1), issued);
    json_decref(st);
}

static void test_unknown_client(void **state)
{
    response r;

    (void)state;
    r = authorize_req("Iv1.nobody", REDIRECT, "s", NULL, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "Not Found");
    response_free(&r);
    r = http("GET", "/login/oauth/authorize?redirect_uri=x", NULL, NULL);
    assert_int_equal(r.status, 404);
    response_free(&r);
    r = token_req(1, "client_id", "Iv1.nobody", "client_secret", CLIENT_SECRET, "code", "abc", NULL);
    expect_grant_error(&r, "incorrect_client_credentials",
                       "The client_id and/or client_secret passed are incorrect.",
                       DOCS_TOKEN "#incorrect-client-credentials");
}

static void test_wrong_client_secret(void **state)
{
    char code[64];
    tokens t;
    response r;

    (void)state;
    authorize_code(REDIRECT, RFC_CHALLENGE, code, sizeof code);
    r = token_req(1, "client_id", CLIENT_ID, "client_secret", OTHER_SECRET, "code", code,
                  "code_verifier", RFC_VERIFIER, NULL);
    expect_grant_error(&r, "incorrect_client_credentials",
                       "The client_id and/or client_secret passed are incorrect.",
                       DOCS_TOKEN "#incorrect-client-credentials");
    /* Another app's client cannot redeem this app's code either. */
    r = token_req(1, "client_id", OTHER_CLIENT_ID, "client_secret", OTHER_SECRET, "code", code,
                  "code_verifier", RFC_VERIFIER, NULL);
    expect_bad_code(&r);
    /* The refusals did not burn the code. */
    r = redeem(code, RFC_VERIFIER);
    expect_tokens(&r, 28800, 15897600, &t);
}

static void test_wrong_verifier(void **state)
{
    char code[64];
    tokens t;
    response r;

    (void)state;
    authorize_code(REDIRECT, RFC_CHALLENGE, code, sizeof code);
    r = redeem(code, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl");
    expect_bad_code(&r);
    r = redeem(code, NULL);
    expect_bad_code(&r);
    r = redeem(code, RFC_VERIFIER);
    expect_tokens(&r, 28800, 15897600, &t);
}

static void test_reused_code(void **state)
{
    char code[64];
    tokens t;
    response r;
    json_t *st;

    (void)state;
    authorize_code(REDIRECT, RFC_CHALLENGE, code, sizeof code);
    r = redeem(code, RFC_VERIFIER);
    expect_tokens(&r, 28800, 15897600, &t);
    r = redeem(code, RFC_VERIFIER);
    expect_bad_code(&r);
    r = redeem("0123456789abcdef0123", RFC_VERIFIER);
    expect_bad_code(&r);
    st = oauth_stats(ORG);
    assert_int_equal(casb_json_int(st, "active_access_tokens", -1), 1);
    json_decref(st);
}

static void test_expired_tokens(void **state)
{
    response r;
    tokens t;
    char msg[256];

    (void)state;
    r = admin("PATCH", "/_sim/orgs/" ORG,
              "{\"auth\":{\"oauth\":{\"access_token_ttl_s\":2,\"refresh_token_ttl_s\":2}}}");
    assert_int_equal(r.status, 200);
    response_free(&r);
    full_flow(&t, 2, 2);
    assert_int_equal(api_status("/orgs/" ORG, t.access, NULL, 0), 200);
    sleep(3);
    assert_int_equal(api_status("/orgs/" ORG, t.access, msg, sizeof msg), 401);
    assert_string_equal(msg, "Bad credentials");
    r = refresh(t.refresh);
    expect_bad_refresh(&r);
}

static void test_refresh_rotates(void **state)
{
    tokens first, second, third;
    response r;
    json_t *st;
    char msg[256];

    (void)state;
    full_flow(&first, 28800, 15897600);
    r = refresh(first.refresh);
    expect_tokens(&r, 28800, 15897600, &second);
    assert_string_not_equal(second.access, first.access);
    assert_string_not_equal(second.refresh, first.refresh);
    assert_int_equal(api_status("/orgs/" ORG, second.access, NULL, 0), 200);
    /* GitHub: once a refresh token is used, it and the old access token stop working. */
    assert_int_equal(api_status("/orgs/" ORG, first.access, msg, sizeof msg), 401);
    assert_string_equal(msg, "Bad credentials");
    r = refresh(first.refresh);
    expect_bad_refresh(&r);
    /* Another app cannot use this app's refresh token. */
    r = token_req(1, "client_id", OTHER_CLIENT_ID, "client_secret", OTHER_SECRET, "grant_type",
                  "refresh_token", "refresh_token", second.refresh, NULL);
    expect_bad_refresh(&r);
    r = refresh(second.refresh);
    expect_tokens(&r, 28800, 15897600, &third);
    assert_int_equal(api_status("/orgs/" ORG, third.access, NULL, 0), 200);

    st = oauth_stats(ORG);
    assert_int_equal(casb_json_int(st, "refreshes", -1), 2);
    assert_int_equal(casb_json_int(st, "active_access_tokens", -1), 1);
    assert_int_equal(casb_json_int(st, "active_refresh_tokens", -1), 1);
    json_decref(st);
}

static void test_revoke(void **state)
{
    tokens t, other;
    response r;
    json_t *b, *st;
    char code[64];

    (void)state;
    full_flow(&t, 28800, 15897600);
    /* The other org's grant survives the revocation of this one's. */
    {
        response a = authorize_req(OTHER_CLIENT_ID, PREFIX, NULL, NULL, NULL);
        char loc[4096];
        assert_int_equal(a.status, 302);
        assert_true(header(&a, "Location", loc, sizeof loc));
        assert_null(strstr(loc, "state="));
        assert_true(form_get(loc + strlen(PREFIX) + 1, "code", code, sizeof code));
        response_free(&a);
        r = token_req(1, "client_id", OTHER_CLIENT_ID, "client_secret", OTHER_SECRET, "code", code,
                      NULL);
        expect_tokens(&r, 28800, 15897600, &other);
    }
    r = admin("POST", "/_sim/orgs/" ORG "/oauth/revoke", "{}");
    assert_int_equal(r.status, 200);
    b = body_of(&r);
    assert_int_equal(casb_json_int(b, "revoked_access_tokens", -1), 1);
    assert_int_equal(casb_json_int(b, "revoked_refresh_tokens", -1), 1);
    json_decref(b);
    response_free(&r);

    assert_int_equal(api_status("/orgs/" ORG, t.access, NULL, 0), 401);
    r = refresh(t.refresh);
    expect_bad_refresh(&r);
    st = oauth_stats(ORG);
    assert_int_equal(casb_json_int(st, "active_access_tokens", -1), 0);
    assert_int_equal(casb_json_int(st, "active_refresh_tokens", -1), 0);
    json_decref(st);
    assert_int_equal(api_status("/orgs/" OTHER_ORG, other.access, NULL, 0), 200);

    r = admin("POST", "/_sim/orgs/no-such-org/oauth/revoke", "{}");
    assert_int_equal(r.status, 404);
    response_free(&r);
    r = admin("GET", "/_sim/orgs/no-such-org/oauth", NULL);
    assert_int_equal(r.status, 404);
    response_free(&r);
}

static void test_form_encoded_answer(void **state)
{
    char code[64], ctype[128], access[128], refresh_tok[128], v[256];
    response r;

    (void)state;
    authorize_code(REDIRECT, RFC_CHALLENGE, code, sizeof code);
    /* curl's own Accept is * / *: GitHub answers form-encoded then. */
    r = token_req(0, "client_id", CLIENT_ID, "client_secret", CLIENT_SECRET, "code", code,
                  "code_verifier", RFC_VERIFIER, NULL);
    assert_int_equal(r.status, 200);
    assert_true(header(&r, "Content-Type", ctype, sizeof ctype));
    assert_int_equal(strncmp(ctype, "application/x-www-form-urlencoded", 33), 0);
    assert_true(form_get(r.body, "access_token", access, sizeof access));
    assert_int_equal(strncmp(access, "ghu_", 4), 0);
    assert_true(form_get(r.body, "refresh_token", refresh_tok, sizeof refresh_tok));
    assert_int_equal(strncmp(refresh_tok, "ghr_", 4), 0);
    assert_true(form_get(r.body, "expires_in", v, sizeof v));
    assert_string_equal(v, "28800");
    assert_true(form_get(r.body, "refresh_token_expires_in", v, sizeof v));
    assert_string_equal(v, "15897600");
    assert_true(form_get(r.body, "token_type", v, sizeof v));
    assert_string_equal(v, "bearer");
    assert_non_null(strstr(r.body, "&scope="));
    response_free(&r);
    assert_int_equal(api_status("/orgs/" ORG, access, NULL, 0), 200);

    /* A refused grant in the same encoding, byte for byte as GitHub writes it. */
    r = token_req(0, "client_id", CLIENT_ID, "client_secret", CLIENT_SECRET, "code", code, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body,
                        "error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired."
                        "&error_uri=https%3A%2F%2Fdocs.github.com%2Fapps%2Fmanaging-oauth-apps%2F"
                        "troubleshooting-oauth-app-access-token-request-errors%2F%23bad-verification-code");
    response_free(&r);
}

static void test_json_request_body(void **state)
{
    static const char *const hdrs[] = {"Content-Type: application/json",
                                       "Accept: application/json", NULL};
    char code[64], body[1024];
    tokens t;
    response r;

    (void)state;
    authorize_code(REDIRECT, RFC_CHALLENGE, code, sizeof code);
    snprintf(body, sizeof body,
             "{\"client_id\":\"%s\",\"client_secret\":\"%s\",\"code\":\"%s\",\"code_verifier\":\"%s\"}",
             CLIENT_ID, CLIENT_SECRET, code, RFC_VERIFIER);
    r = http("POST", "/login/oauth/access_token", hdrs, body);
    expect_tokens(&r, 28800, 15897600, &t);
    r = http("POST", "/login/oauth/access_token", hdrs, "{not json");
    assert_int_equal(r.status, 400);
    response_free(&r);
}

static void test_redirect_uri_checks(void **state)
{
    char code[64];
    tokens t;
    response r;

    (void)state;
    /* Outside the registered prefix: refused at authorize, never redirected to. */
    r = authorize_req(CLIENT_ID, "https://evil.example/cb", "s", NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_null(strstr(r.headers, "Location:"));
    assert_non_null(strstr(r.body, "redirect_uri_mismatch"));
    response_free(&r);
    /* The simulator wants the redirect_uri spelled out. */
    r = authorize_req(CLIENT_ID, NULL, "s", NULL, NULL);
    assert_int_equal(r.status, 400);
    response_free(&r);

    authorize_code(REDIRECT, RFC_CHALLENGE, code, sizeof code);
    r = token_req(1, "client_id", CLIENT_ID, "client_secret", CLIENT_SECRET, "code", code,
                  "redirect_uri", "https://evil.example/cb", "code_verifier", RFC_VERIFIER, NULL);
    expect_grant_error(&r, "redirect_uri_mismatch",
                       "The redirect_uri MUST match the registered callback URL for this application.",
                       "https://docs.github.com/apps/managing-oauth-apps/"
                       "troubleshooting-authorization-request-errors/#redirect-uri-mismatch2");
    /* Inside the prefix but not the one the code was issued for. */
    r = token_req(1, "client_id", CLIENT_ID, "client_secret", CLIENT_SECRET, "code", code,
                  "redirect_uri", PREFIX "?account=2", "code_verifier", RFC_VERIFIER, NULL);
    expect_grant_error(&r, "redirect_uri_mismatch",
                       "The redirect_uri MUST match the registered callback URL for this application.",
                       "https://docs.github.com/apps/managing-oauth-apps/"
                       "troubleshooting-authorization-request-errors/#redirect-uri-mismatch2");
    r = redeem(code, RFC_VERIFIER);
    expect_tokens(&r, 28800, 15897600, &t);
}

static void test_challenge_method(void **state)
{
    response r;

    (void)state;
    r = authorize_req(CLIENT_ID, REDIRECT, "s", RFC_VERIFIER, "plain");
    assert_int_equal(r.status, 400);
    response_free(&r);
    r = authorize_req(CLIENT_ID, REDIRECT, "s", RFC_CHALLENGE, NULL);
    assert_int_equal(r.status, 400);
    response_free(&r);
    r = authorize_req(CLIENT_ID, REDIRECT, "s", "tooShort", "S256");
    assert_int_equal(r.status, 400);
    response_free(&r);
    r = token_req(1, "client_id", CLIENT_ID, "client_secret", CLIENT_SECRET, "grant_type",
                  "password", NULL);
    expect_grant_error(&r, "unsupported_grant_type", "The grant type passed is not supported.",
                       DOCS_TOKEN "#unsupported-grant-type");
}

/* A 503 drawn on the token endpoint, as a CASB client must survive it. */
static void test_fault_on_token_endpoint(void **state)
{
    char code[64];
    tokens t;
    response r;

    (void)state;
    authorize_code(REDIRECT, RFC_CHALLENGE, code, sizeof code);
    r = admin("POST", "/_sim/orgs/" ORG "/faults",
              "{\"mode\":\"503\",\"count\":1,\"path_contains\":\"/login/oauth/access_token\"}");
    assert_int_equal(r.status, 201);
    response_free(&r);
    r = redeem(code, RFC_VERIFIER);
    assert_int_equal(r.status, 503);
    response_free(&r);
    r = redeem(code, RFC_VERIFIER);
    expect_tokens(&r, 28800, 15897600, &t);
}

static void test_tenant_validation_and_delete(void **state)
{
    char err[256], code[64], loc[4096], body[1024];
    tokens t;
    response r;
    json_t *doc;

    (void)state;
    doc = json_pack("{s:s, s:{s:{s:s}}}", "login", "v", "auth", "oauth", "client_id", "x");
    assert_int_equal(sim_tenant_validate(doc, "v", err, sizeof err), CASB_EINVALID);
    assert_non_null(strstr(err, "client_secret"));
    json_decref(doc);
    doc = json_pack("{s:s, s:{s:{s:s, s:s, s:s}}}", "login", "v", "auth", "oauth", "client_id", "x",
                    "client_secret", "y", "consent", "maybe");
    assert_int_equal(sim_tenant_validate(doc, "v", err, sizeof err), CASB_EINVALID);
    json_decref(doc);
    doc = json_pack("{s:s, s:{s:{s:s, s:s, s:i}}}", "login", "v", "auth", "oauth", "client_id", "x",
                    "client_secret", "y", "access_token_ttl_s", 0);
    assert_int_equal(sim_tenant_validate(doc, "v", err, sizeof err), CASB_EINVALID);
    json_decref(doc);
    doc = json_pack("{s:s, s:{s:{s:s, s:s, s:s, s:i, s:i, s:s}}}", "login", "v", "auth", "oauth",
                    "client_id", "x", "client_secret", "y", "consent", "deny", "access_token_ttl_s",
                    5, "refresh_token_ttl_s", 9, "redirect_uri_prefix", "http://");
    assert_int_equal(sim_tenant_validate(doc, "v", err, sizeof err), 0);
    json_decref(doc);

    /* One client id names one app registration: a second org cannot take it. */
    snprintf(body, sizeof body,
             "{\"auth\":{\"oauth\":{\"client_id\":\"%s\",\"client_secret\":\"z\"}}}", CLIENT_ID);
    r = admin("PUT", "/_sim/orgs/dup-org", body);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, ORG));
    response_free(&r);
    r = admin("PATCH", "/_sim/orgs/" OTHER_ORG, body);
    assert_int_equal(r.status, 400);
    response_free(&r);

    /* A deleted org's grants die with it, also when the org comes back. */
    snprintf(body, sizeof body,
             "{\"auth\":{\"oauth\":{\"client_id\":\"Iv1.tmp\",\"client_secret\":\"tmp-secret\"}}}");
    r = admin("PUT", "/_sim/orgs/tmp-org", body);
    assert_int_equal(r.status, 201);
    response_free(&r);
    r = authorize_req("Iv1.tmp", PREFIX, NULL, NULL, NULL);
    assert_int_equal(r.status, 302);
    assert_true(header(&r, "Location", loc, sizeof loc));
    assert_true(form_get(loc + strlen(PREFIX) + 1, "code", code, sizeof code));
    response_free(&r);
    r = token_req(1, "client_id", "Iv1.tmp", "client_secret", "tmp-secret", "code", code, NULL);
    expect_tokens(&r, 28800, 15897600, &t);
    assert_int_equal(api_status("/orgs/tmp-org", t.access, NULL, 0), 200);
    r = admin("DELETE", "/_sim/orgs/tmp-org", NULL);
    assert_int_equal(r.status, 204);
    response_free(&r);
    r = admin("PUT", "/_sim/orgs/tmp-org", body);
    assert_int_equal(r.status, 201);
    response_free(&r);
    assert_int_equal(api_status("/orgs/tmp-org", t.access, NULL, 0), 401);
    r = token_req(1, "client_id", "Iv1.tmp", "client_secret", "tmp-secret", "grant_type",
                  "refresh_token", "refresh_token", t.refresh, NULL);
    expect_bad_refresh(&r);
    /* A new client id for the org retires the grants of the old one. */
    r = authorize_req("Iv1.tmp", PREFIX, NULL, NULL, NULL);
    assert_true(header(&r, "Location", loc, sizeof loc));
    assert_true(form_get(loc + strlen(PREFIX) + 1, "code", code, sizeof code));
    response_free(&r);
    r = token_req(1, "client_id", "Iv1.tmp", "client_secret", "tmp-secret", "code", code, NULL);
    expect_tokens(&r, 28800, 15897600, &t);
    r = admin("PATCH", "/_sim/orgs/tmp-org", "{\"auth\":{\"oauth\":{\"client_id\":\"Iv1.tmp2\"}}}");
    assert_int_equal(r.status, 200);
    response_free(&r);
    assert_int_equal(api_status("/orgs/tmp-org", t.access, NULL, 0), 401);
    r = admin("DELETE", "/_sim/orgs/tmp-org", NULL);
    response_free(&r);
}

/* GET path; the Location of the 302 it must answer into loc. */
static void expect_redirect(const char *path, char *loc, size_t len)
{
    response r = http("GET", path, NULL, NULL);

    assert_int_equal(r.status, 302);
    assert_true(header(&r, "Location", loc, len));
    response_free(&r);
}

static long long endpoint_count(const char *org, const char *endpoint)
{
    char path[128];
    json_t *stats;
    long long n;
    response r;

    snprintf(path, sizeof path, "/_sim/orgs/%s/stats", org);
    r = admin("GET", path, NULL);
    assert_int_equal(r.status, 200);
    stats = body_of(&r);
    n = casb_json_int(casb_json_path(stats, "by_endpoint"), endpoint, 0);
    json_decref(stats);
    response_free(&r);
    return n;
}

static void test_install_flow_end_to_end(void **state)
{
    char loc[4096], code[64], expected[4096], path[512];
    char *state_esc = esc(STATE);
    long long issued_before;
    tokens t;
    response r;
    json_t *st;

    (void)state;
    /* An earlier authorize with PKCE: the install page's code has none, and says so. */
    authorize_code(REDIRECT, RFC_CHALLENGE, code, sizeof code);
    st = oauth_stats(ORG);
    assert_string_equal(casb_json_str(st, "last_code_challenge_method"), "S256");
    issued_before = casb_json_int(st, "codes_issued", -1);
    json_decref(st);

    snprintf(path, sizeof path, INSTALL_PATH "?state=%s", state_esc);
    free(state_esc);
    expect_redirect(path, loc, sizeof loc);
    /* The callback URL has a query already: GitHub's parameters follow a '&', in its order. */
    assert_int_equal(strncmp(loc, REDIRECT "&code=", strlen(REDIRECT "&code=")), 0);
    assert_true(form_get(loc + strlen(REDIRECT) + 1, "code", code, sizeof code));
    assert_int_equal(strlen(code), 20);
    assert_int_equal(strspn(code, "0123456789abcdef"), 20);
    snprintf(expected, sizeof expected,
             REDIRECT "&code=%s&installation_id=2001&setup_action=install&state=%s", code,
             STATE_FORM);
    assert_string_equal(loc, expected);

    st = oauth_stats(ORG);
    assert_int_equal(casb_json_int(st, "codes_issued", -1), issued_before + 1);
    assert_true(json_is_null(json_object_get(st, "last_code_challenge_method")));
    json_decref(st);
    assert_int_equal(endpoint_count(ORG, "GET /apps/{slug}/installations/new"), 1);

    /* The code is bound to the callback URL: another redirect_uri is refused, and the refusal
     * does not use the code up. */
    r = token_req(1, "client_id", CLIENT_ID, "client_secret", CLIENT_SECRET, "code", code,
                  "redirect_uri", PREFIX, NULL);
    expect_grant_error(&r, "redirect_uri_mismatch",
                       "The redirect_uri MUST match the registered callback URL for this application.",
                       "https://docs.github.com/apps/managing-oauth-apps/"
                       "troubleshooting-authorization-request-errors/#redirect-uri-mismatch2");
    /* No challenge was sent, so no code_verifier is asked for. */
    r = token_req(1, "client_id", CLIENT_ID, "client_secret", CLIENT_SECRET, "code", code,
                  "redirect_uri", REDIRECT, NULL);
    expect_tokens(&r, 28800, 15897600, &t);
    assert_int_equal(api_status("/orgs/" ORG, t.access, NULL, 0), 200);
    assert_int_equal(api_status("/orgs/" OTHER_ORG, t.access, NULL, 0), 404);
    /* Single use like any code. */
    r = token_req(1, "client_id", CLIENT_ID, "client_secret", CLIENT_SECRET, "code", code,
                  "redirect_uri", REDIRECT, NULL);
    expect_bad_code(&r);

    /* Without state nothing is invented; the slug is matched case-insensitively. */
    expect_redirect("/apps/CASB-Test-App/installations/new", loc, sizeof loc);
    assert_true(form_get(loc + strlen(REDIRECT) + 1, "code", code, sizeof code));
    snprintf(expected, sizeof expected,
             REDIRECT "&code=%s&installation_id=2001&setup_action=install", code);
    assert_string_equal(loc, expected);
}

static void test_install_request_mode(void **state)
{
    char loc[4096];
    long long issued;
    response r;
    json_t *st;

    (void)state;
    r = admin("PATCH", "/_sim/orgs/" ORG, "{\"auth\":{\"oauth\":{\"install\":\"request\"}}}");
    assert_int_equal(r.status, 200);
    response_free(&r);
    st = oauth_stats(ORG);
    issued = casb_json_int(st, "codes_issued", -1);
    json_decref(st);

    /* A member's request waits for an owner: no code and no installation yet. */
    expect_redirect(INSTALL_PATH "?state=abc", loc, sizeof loc);
    assert_string_equal(loc, REDIRECT "&setup_action=request&state=abc");
    expect_redirect(INSTALL_PATH, loc, sizeof loc);
    assert_string_equal(loc, REDIRECT "&setup_action=request");
    st = oauth_stats(ORG);
    assert_int_equal(casb_json_int(st, "codes_issued", -1), issued);
    json_decref(st);
    assert_int_equal(endpoint_count(ORG, "GET /apps/{slug}/installations/new"), 2);

    /* A callback URL without a query gets '?'. */
    r = admin("PATCH", "/_sim/orgs/" ORG, "{\"auth\":{\"oauth\":{\"callback_url\":\"" PREFIX "\"}}}");
    assert_int_equal(r.status, 200);
    response_free(&r);
    expect_redirect(INSTALL_PATH "?state=abc", loc, sizeof loc);
    assert_string_equal(loc, PREFIX "?setup_action=request&state=abc");
}

static void test_install_not_found_and_faults(void **state)
{
    char loc[4096];
    response r;

    (void)state;
    r = http("GET", "/apps/no-such-app/installations/new?state=x", NULL, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "Not Found");
    response_free(&r);
    /* OTHER_ORG has the App but no callback URL: GitHub would not redirect anywhere. */
    r = http("GET", "/apps/" OTHER_APP_SLUG "/installations/new", NULL, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "Not Found");
    response_free(&r);
    assert_int_equal(endpoint_count(OTHER_ORG, "GET /apps/{slug}/installations/new"), 0);
    r = admin("PATCH", "/_sim/orgs/" ORG, "{\"auth\":{\"oauth\":{\"callback_url\":null}}}");
    assert_int_equal(r.status, 200);
    response_free(&r);
    r = http("GET", INSTALL_PATH, NULL, NULL);
    assert_int_equal(r.status, 404);
    response_free(&r);
    r = admin("PATCH", "/_sim/orgs/" ORG, "{\"auth\":{\"oauth\":{\"callback_url\":\"" REDIRECT "\"}}}");
    assert_int_equal(r.status, 200);
    response_free(&r);

    /* The install page draws the org's faults like the other OAuth endpoints. */
    r = admin("POST", "/_sim/orgs/" ORG "/faults",
              "{\"mode\":\"503\",\"count\":1,\"path_contains\":\"/installations/new\"}");
    assert_int_equal(r.status, 201);
    response_free(&r);
    r = http("GET", INSTALL_PATH, NULL, NULL);
    assert_int_equal(r.status, 503);
    assert_false(header(&r, "Location", loc, sizeof loc));
    response_free(&r);
    expect_redirect(INSTALL_PATH, loc, sizeof loc);
}

/* auth.oauth with callback_url / install set to a JSON value (text parsed as JSON). */
static int validate_install(const char *callback_url_json, const char *install_json, char *err,
                            size_t errlen)
{
    char text[1024];
    json_t *doc;
    int rc;

    snprintf(text, sizeof text,
             "{\"login\":\"v\",\"auth\":{\"oauth\":{\"client_id\":\"x\",\"client_secret\":\"y\","
             "\"redirect_uri_prefix\":\"https://casb.example/\",\"callback_url\":%s,\"install\":%s}}}",
             callback_url_json, install_json);
    doc = json_loads(text, 0, NULL);
    assert_non_null(doc);
    rc = sim_tenant_validate(doc, "v", err, errlen);
    json_decref(doc);
    return rc;
}

static void test_install_validation(void **state)
{
    static const char *const bad_urls[] = {
        "5", "null", "\"\"", "\"/v1/callback\"", "\"ftp://casb.example/cb\"", "\"https://\"",
        "\"https:///cb\"", "\"https://casb.example/c b\"", "\"https://casb.example/\\r\\nX: y\"",
        "\"casb.example/cb\"",
    };
    char err[256];
    response r;

    (void)state;
    assert_int_equal(validate_install("\"https://casb.example/v1/cb?a=1\"", "\"install\"", err,
                                      sizeof err), 0);
    assert_int_equal(validate_install("\"https://casb.example/v1/cb\"", "\"request\"", err,
                                      sizeof err), 0);
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        err[0] = '\0';
        assert_int_equal(validate_install(bad_urls[i], "\"install\"", err, sizeof err),
                         CASB_EINVALID);
        assert_non_null(strstr(err, "callback_url"));
    }
    /* Outside redirect_uri_prefix its codes could never be redeemed. */
    assert_int_equal(validate_install("\"https://elsewhere.example/cb\"", "\"install\"", err,
                                      sizeof err), CASB_EINVALID);
    assert_non_null(strstr(err, "redirect_uri_prefix"));
    assert_int_equal(validate_install("\"https://casb.example/cb\"", "\"maybe\"", err, sizeof err),
                     CASB_EINVALID);
    assert_non_null(strstr(err, "auth.oauth.install"));
    assert_int_equal(validate_install("\"https://casb.example/cb\"", "1", err, sizeof err),
                     CASB_EINVALID);
    assert_non_null(strstr(err, "auth.oauth.install"));

    /* The admin API checks the patched document: a bad patch changes nothing. */
    r = admin("PATCH", "/_sim/orgs/" ORG, "{\"auth\":{\"oauth\":{\"install\":\"later\"}}}");
    assert_int_equal(r.status, 400);
    response_free(&r);
    r = admin("PATCH", "/_sim/orgs/" ORG,
              "{\"auth\":{\"oauth\":{\"callback_url\":\"https://evil.example/cb\"}}}");
    assert_int_equal(r.status, 400);
    response_free(&r);
    r = http("GET", INSTALL_PATH "?state=s", NULL, NULL);
    assert_int_equal(r.status, 302);
    response_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_approve_flow_end_to_end, reset_org),
        cmocka_unit_test_setup(test_code_without_pkce_and_plain_redirect, reset_org),
        cmocka_unit_test_setup(test_deny, reset_org),
        cmocka_unit_test_setup(test_unknown_client, reset_org),
        cmocka_unit_test_setup(test_wrong_client_secret, reset_org),
        cmocka_unit_test_setup(test_wrong_verifier, reset_org),
        cmocka_unit_test_setup(test_reused_code, reset_org),
        cmocka_unit_test_setup(test_expired_tokens, reset_org),
        cmocka_unit_test_setup(test_refresh_rotates, reset_org),
        cmocka_unit_test_setup(test_revoke, reset_org),
        cmocka_unit_test_setup(test_form_encoded_answer, reset_org),
        cmocka_unit_test_setup(test_json_request_body, reset_org),
        cmocka_unit_test_setup(test_redirect_uri_checks, reset_org),
        cmocka_unit_test_setup(test_challenge_method, reset_org),
        cmocka_unit_test_setup(test_fault_on_token_endpoint, reset_org),
        cmocka_unit_test_setup(test_tenant_validation_and_delete, reset_org),
        cmocka_unit_test_setup(test_install_flow_end_to_end, reset_org),
        cmocka_unit_test_setup(test_install_request_mode, reset_org),
        cmocka_unit_test_setup(test_install_not_found_and_faults, reset_org),
        cmocka_unit_test_setup(test_install_validation, reset_org),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
