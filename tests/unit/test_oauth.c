/* The OAuth module against a real in-process token endpoint (casb_http_server on
 * 127.0.0.1) whose answers each test chooses: RFC 6749 JSON, GitHub's 200 + error and its
 * form-encoded answers, 4xx/5xx. The endpoint also records what it was sent, decoded with
 * the project's strict query parser, so that the tests check the form itself. */
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

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/http_client.h"
#include "casb/http_server.h"
#include "casb/json.h"
#include "casb/log.h"
#include "casb/oauth.h"
#include "casb/query.h"

/* The verifier and secret carry every character a form must escape. */
#define CLIENT_ID "Iv1.client-1"
#define CLIENT_SECRET "s3cr+t/x=y&z w"
#define CODE "code+1/2=3&4"
#define VERIFIER "a+b/c=d&e"
#define REDIRECT "http://127.0.0.1:8081/v1/integrations/oauth/github/callback?x=1&y=2"
#define NOW 1795906800LL /* 2026-11-28T23:00:00Z */

/* RFC 7636 Appendix B: the 32 octets of the verifier, the verifier, its S256 challenge. */
static const unsigned char rfc_verifier_octets[32] = {
    116, 24,  223, 180, 151, 153, 224, 37, 79, 250, 96,  125, 216, 173, 187, 186,
    22,  212, 37,  77,  105, 214, 191, 240, 91, 88,  5,  88,  83,  132, 141, 121};
#define RFC_VERIFIER "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define RFC_CHALLENGE "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

enum mode {
    JSON_FULL,          /* access + refresh, expires_in as integers */
    JSON_NO_REFRESH,    /* access only, nothing expires */
    JSON_STRING_EXPIRES,/* expires_in and refresh_token_expires_in as strings */
    JSON_NEW_REFRESH,   /* a refresh answer that rotates the refresh token */
    GH_BAD_CODE,        /* 200 {"error":"bad_verification_code",...} */
    GH_BAD_REFRESH,     /* 200 {"error":"bad_refresh_token",...} */
    SLACK_NOT_OK,       /* 200 {"ok":false,"error":"invalid_code"} */
    RFC_400,            /* 400 {"error":"invalid_grant",...} */
    ERROR_QUOTES_CODE,  /* 400 whose description quotes the code we sent */
    NO_BODY_401,        /* 401, empty body */
    UNAVAILABLE_503,    /* 503 */
    FORM_OK,            /* 200 form-encoded token answer */
    FORM_ERROR,         /* 200 form-encoded error */
    NO_ACCESS_TOKEN,    /* 200 JSON without access_token */
    HTML_200,           /* 200 text/html */
    DEEP_200,           /* 200 JSON nested far too deep */
};

/* What the endpoint was sent, and how it answers. Guarded by mu: the server answers on its
 * own threads. */
#define NFIELDS 7
static const char *const field_names[NFIELDS] = {"grant_type", "code", "redirect_uri",
                                                 "code_verifier", "refresh_token", "client_id",
                                                 "client_secret"};
static struct {
    pthread_mutex_t mu;
    casb_http_server *server;
    char token_url[64];
    enum mode mode;
    int calls;
    char content_type[128];
    char accept[128];
    int parse_rc;
    char parse_name[64];
    int present[NFIELDS];
    char value[NFIELDS][256];
} fake = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void record_form(casb_http_req *r)
{
    const char *values[NFIELDS] = {NULL};
    casb_query_param params[NFIELDS + 1];
    casb_query_text text;
    const char *ct = casb_http_header(r, "Content-Type");
    const char *accept = casb_http_header(r, "Accept");
    size_t len = 0;
    const char *body = casb_http_body(r, &len);
    char form[4096];
    char err[128];

    snprintf(fake.content_type, sizeof(fake.content_type), "%s", ct ? ct : "");
    snprintf(fake.accept, sizeof(fake.accept), "%s", accept ? accept : "");
    for (int i = 0; i < NFIELDS; i++) {
        params[i].name = field_names[i];
        params[i].value = &values[i];
    }
    params[NFIELDS].name = NULL;
    params[NFIELDS].value = NULL;
    snprintf(form, sizeof(form), "%.*s", (int)len, body ? body : "");
    fake.parse_rc = casb_query_parse(form, params, &text, fake.parse_name,
                                     sizeof(fake.parse_name), err, sizeof(err));
    for (int i = 0; i < NFIELDS; i++) {
        fake.present[i] = values[i] != NULL;
        snprintf(fake.value[i], sizeof(fake.value[i]), "%s", values[i] ? values[i] : "");
    }
}

static json_t *deep_json(int depth)
{
    json_t *v = json_pack("{s:s}", "access_token", "gho_deep");

    for (int i = 0; i < depth; i++)
        v = json_pack("{s:o,s:s}", "x", v, "access_token", "gho_deep");
    return v;
}

static int h_token(casb_http_req *r)
{
    static const char form_ok[] =
        "access_token=gho_form%2Bx%2Fy&scope=repo%2Cgist&token_type=bearer";
    static const char form_error[] =
        "error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+"
        "expired.&error_uri=https%3A%2F%2Fdocs.github.com%2Fapps";
    enum mode mode;

    pthread_mutex_lock(&fake.mu);
    fake.calls++;
    record_form(r);
    mode = fake.mode;
    pthread_mutex_unlock(&fake.mu);

    switch (mode) {
    case JSON_FULL:
        return casb_http_reply_json(
            r, 200,
            json_pack("{s:s,s:s,s:s,s:s,s:i,s:i}", "access_token", "ghu_access1", "token_type",
                      "bearer", "scope", "", "refresh_token", "ghr_refresh1", "expires_in",
                      28800, "refresh_token_expires_in", 15897600));
    case JSON_NO_REFRESH:
        return casb_http_reply_json(r, 200,
                                    json_pack("{s:b,s:s,s:s,s:s}", "ok", 1, "access_token",
                                              "xoxb-1", "token_type", "bot", "scope",
                                              "channels:read,users:read"));
    case JSON_STRING_EXPIRES:
        return casb_http_reply_json(
            r, 200,
            json_pack("{s:s,s:s,s:s,s:s}", "access_token", "eyJ.access", "refresh_token",
                      "0.AX.refresh", "expires_in", "3599", "refresh_token_expires_in",
                      "7200"));
    case JSON_NEW_REFRESH:
        return casb_http_reply_json(r, 200,
                                    json_pack("{s:s,s:s,s:i}", "access_token", "ghu_access2",
                                              "refresh_token", "ghr_refresh2", "expires_in",
                                              28800));
    case GH_BAD_CODE:
        return casb_http_reply_json(
            r, 200,
            json_pack("{s:s,s:s,s:s}", "error", "bad_verification_code", "error_description",
                      "The code passed is incorrect or expired.", "error_uri",
                      "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-"
                      "app-access-token-request-errors/#bad-verification-code"));
    case GH_BAD_REFRESH:
        return casb_http_reply_json(
            r, 200,
            json_pack("{s:s,s:s}", "error", "bad_refresh_token", "error_description",
                      "The refresh token passed is incorrect or expired."));
    case SLACK_NOT_OK:
        return casb_http_reply_json(r, 200,
                                    json_pack("{s:b,s:s}", "ok", 0, "error", "invalid_code"));
    case RFC_400:
        return casb_http_reply_json(
            r, 400,
            json_pack("{s:s,s:s}", "error", "invalid_grant", "error_description",
                      "AADSTS70008: The provided authorization code or refresh token has "
                      "expired due to inactivity."));
    case ERROR_QUOTES_CODE:
        return casb_http_reply_json(r, 400,
                                    json_pack("{s:s,s:s}", "error", "invalid_grant",
                                              "error_description",
                                              "Code " CODE " was already redeemed"));
    case NO_BODY_401:
        return casb_http_reply_text(r, 401, "text/plain", "", 0);
    case UNAVAILABLE_503:
        return casb_http_reply_json(r, 503, json_pack("{s:s}", "message", "down"));
    case FORM_OK:
        return casb_http_reply_text(r, 200, "application/x-www-form-urlencoded; charset=utf-8",
                                    form_ok, strlen(form_ok));
    case FORM_ERROR:
        return casb_http_reply_text(r, 200, "application/x-www-form-urlencoded; charset=utf-8",
                                    form_error, strlen(form_error));
    case NO_ACCESS_TOKEN:
        return casb_http_reply_json(r, 200, json_pack("{s:s,s:s}", "token_type", "bearer",
                                                      "scope", "repo"));
    case HTML_200:
        return casb_http_reply_text(r, 200, "text/html", "<html>access_token</html>", 25);
    case DEEP_200:
        return casb_http_reply_json(r, 200, deep_json(40));
    }
    return casb_http_reply_problem(r, 500, "unknown mode", NULL);
}

static int group_setup(void **state)
{
    char err[256];
    char addr[32];

    (void)state;
    casb_log_init("test_oauth", CASB_LOG_ERROR);
    /* A fixed port range owned by this test; move on when one is taken. */
    for (int port = 18300; port < 18310 && !fake.server; port++) {
        casb_http_server_opts opts = {.addr = addr, .num_threads = 2};
        casb_http_server *s = NULL;

        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        if (casb_http_server_new(&s, &opts, err, sizeof(err)) != 0)
            continue;
        if (casb_http_route(s, "POST", "/login/oauth/access_token", h_token,
                            CASB_ROUTE_PUBLIC) != 0 ||
            casb_http_server_start(s, err, sizeof(err)) != 0) {
            casb_http_server_free(s);
            continue;
        }
        fake.server = s;
        snprintf(fake.token_url, sizeof(fake.token_url),
                 "http://127.0.0.1:%d/login/oauth/access_token", port);
    }
    return fake.server ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    casb_http_server_free(fake.server);
    return 0;
}

static void set_mode(enum mode mode)
{
    pthread_mutex_lock(&fake.mu);
    fake.mode = mode;
    fake.calls = 0;
    fake.parse_rc = -99;
    pthread_mutex_unlock(&fake.mu);
}

static casb_http_client *new_client(void)
{
    casb_http_client *c = NULL;
    casb_http_client_opts o = {.max_retries = 0, .timeout_ms = 5000,
                               .connect_timeout_ms = 2000};
    char err[128];

    assert_int_equal(casb_http_client_new(&c, &o, err, sizeof(err)), 0);
    return c;
}

static casb_oauth_client oauth_client(void)
{
    casb_oauth_client c = {.token_url = fake.token_url, .client_id = CLIENT_ID,
                           .client_secret = CLIENT_SECRET};
    return c;
}

static int field_index(const char *name)
{
    for (int i = 0; i < NFIELDS; i++) {
        if (strcmp(field_names[i], name) == 0)
            return i;
    }
    fail_msg("no field %s", name);
    return -1;
}

/* The endpoint received name with exactly want (decoded), or not at all when want is NULL. */
static void assert_sent(const char *name, const char *want)
{
    int i = field_index(name);

    if (!want) {
        if (fake.present[i])
            fail_msg("%s was sent (\"%s\") but should have been left out", name,
                     fake.value[i]);
        return;
    }
    if (!fake.present[i])
        fail_msg("%s was not sent", name);
    assert_string_equal(fake.value[i], want);
}

/* Every request: one call, a form in the form content type, JSON asked for, only the
 * declared fields, each once, and the client's credentials. */
static void assert_request_shape(void)
{
    assert_int_equal(fake.calls, 1);
    assert_string_equal(fake.content_type, "application/x-www-form-urlencoded");
    assert_string_equal(fake.accept, "application/json");
    if (fake.parse_rc != 0)
        fail_msg("form did not parse strictly (parameter %s)", fake.parse_name);
    assert_sent("client_id", CLIENT_ID);
    assert_sent("client_secret", CLIENT_SECRET);
}

static void assert_code_request(const char *verifier)
{
    assert_request_shape();
    assert_sent("grant_type", "authorization_code");
    assert_sent("code", CODE);
    assert_sent("redirect_uri", REDIRECT);
    assert_sent("code_verifier", verifier);
    assert_sent("refresh_token", NULL);
}

static int exchange(enum mode mode, const char *verifier, casb_oauth_tokens *t, char *err,
                    size_t errlen)
{
    casb_http_client *http = new_client();
    casb_oauth_client c = oauth_client();
    int rc;

    set_mode(mode);
    err[0] = '\0';
    rc = casb_oauth_exchange_code(http, &c, CODE, REDIRECT, verifier, NOW, t, err, errlen);
    casb_http_client_free(http);
    return rc;
}

static int refresh(enum mode mode, const char *refresh_token, casb_oauth_tokens *t, char *err,
                   size_t errlen)
{
    casb_http_client *http = new_client();
    casb_oauth_client c = oauth_client();
    int rc;

    set_mode(mode);
    err[0] = '\0';
    rc = casb_oauth_refresh(http, &c, refresh_token, NOW, t, err, errlen);
    casb_http_client_free(http);
    return rc;
}

/* A failed call leaves the tokens untouched (zero) and never quotes what was sent. */
static void assert_clean_failure(const casb_oauth_tokens *t, const char *err)
{
    assert_null(t->access_token);
    assert_null(t->refresh_token);
    assert_null(t->scope);
    assert_null(strstr(err, CODE));
    assert_null(strstr(err, CLIENT_SECRET));
    assert_null(strstr(err, VERIFIER));
}

/* ---- random values, PKCE, authorize URL ---- */

static void test_random(void **state)
{
    char a[CASB_OAUTH_RANDOM_LEN + 1];
    char b[CASB_OAUTH_RANDOM_LEN + 1];

    (void)state;
    assert_int_equal(casb_oauth_random(a), 0);
    assert_int_equal(casb_oauth_random(b), 0);
    assert_int_equal(strlen(a), 43);
    assert_int_equal(strlen(b), 43);
    assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     43);
    assert_string_not_equal(a, b);
}

static void test_pkce_rfc7636_vector(void **state)
{
    char challenge[CASB_OAUTH_RANDOM_LEN + 1];
    char *verifier = casb_base64url_encode(rfc_verifier_octets, sizeof(rfc_verifier_octets));

    (void)state;
    /* The verifier is the base64url form of the RFC's octets, as §4.1 describes it. */
    assert_non_null(verifier);
    assert_string_equal(verifier, RFC_VERIFIER);
    free(verifier);
    casb_oauth_pkce_challenge(RFC_VERIFIER, challenge);
    assert_string_equal(challenge, RFC_CHALLENGE);
    /* A fresh verifier gives a different, well-formed challenge. */
    casb_oauth_pkce_challenge(VERIFIER, challenge);
    assert_int_equal(strlen(challenge), 43);
    assert_string_not_equal(challenge, RFC_CHALLENGE);
}

static void test_authorize_url_full(void **state)
{
    char *u = casb_oauth_authorize_url(
        "https://github.com/login/oauth/authorize", CLIENT_ID,
        "https://casb.example/v1/integrations/oauth/github/callback", "st&ate=1",
        "read:org repo", RFC_CHALLENGE, "allow_signup=false");

    (void)state;
    assert_non_null(u);
    assert_string_equal(u, "https://github.com/login/oauth/authorize?response_type=code"
                           "&client_id=Iv1.client-1"
                           "&redirect_uri=https%3A%2F%2Fcasb.example%2Fv1%2Fintegrations"
                           "%2Foauth%2Fgithub%2Fcallback"
                           "&scope=read%3Aorg%20repo&state=st%26ate%3D1"
                           "&code_challenge=" RFC_CHALLENGE "&code_challenge_method=S256"
                           "&allow_signup=false");
    free(u);
}

static void test_authorize_url_minimal(void **state)
{
    char *u;

    (void)state;
    /* No scope (GitHub Apps take the App's permissions), no PKCE, no extra; the base URL
     * already has a query. */
    u = casb_oauth_authorize_url("https://login.microsoftonline.com/t/oauth2/v2.0/"
                                 "authorize?prompt=consent",
                                 "cid", "http://127.0.0.1/cb", "s1", NULL, NULL, NULL);
    assert_non_null(u);
    assert_string_equal(u, "https://login.microsoftonline.com/t/oauth2/v2.0/authorize"
                           "?prompt=consent&response_type=code&client_id=cid"
                           "&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&state=s1");
    free(u);
    /* An empty scope is no scope either; a base ending in '?' gets no extra separator. */
    u = casb_oauth_authorize_url("https://slack.com/oauth/v2/authorize?", "cid", NULL, "s1", "",
                                 NULL, "user_scope=identity.basic");
    assert_non_null(u);
    assert_string_equal(u, "https://slack.com/oauth/v2/authorize?response_type=code"
                           "&client_id=cid&state=s1&user_scope=identity.basic");
    assert_null(strstr(u, "scope=&"));
    assert_null(strstr(u, "code_challenge"));
    free(u);
    assert_null(casb_oauth_authorize_url(NULL, "cid", NULL, "s", NULL, NULL, NULL));
}

/* ---- token requests ---- */

static void test_exchange_json(void **state)
{
    casb_oauth_tokens t = {0};
    char err[256];

    (void)state;
    assert_int_equal(exchange(JSON_FULL, VERIFIER, &t, err, sizeof(err)), 0);
    assert_code_request(VERIFIER);
    assert_string_equal(t.access_token, "ghu_access1");
    assert_string_equal(t.refresh_token, "ghr_refresh1");
    assert_int_equal(t.expires_at, NOW + 28800);
    assert_int_equal(t.refresh_expires_at, NOW + 15897600);
    assert_null(t.scope); /* "" granted: not said */
    casb_oauth_tokens_clear(&t);
    assert_null(t.access_token);
    assert_int_equal(t.expires_at, 0);
}

static void test_exchange_without_verifier_or_refresh(void **state)
{
    casb_oauth_tokens t = {0};
    char err[256];

    (void)state;
    assert_int_equal(exchange(JSON_NO_REFRESH, NULL, &t, err, sizeof(err)), 0);
    assert_code_request(NULL);
    assert_string_equal(t.access_token, "xoxb-1");
    assert_null(t.refresh_token);
    assert_int_equal(t.expires_at, 0);
    assert_int_equal(t.refresh_expires_at, 0);
    assert_string_equal(t.scope, "channels:read,users:read");
    casb_oauth_tokens_clear(&t);
}

static void test_exchange_string_lifetimes(void **state)
{
    casb_oauth_tokens t = {0};
    char err[256];

    (void)state;
    assert_int_equal(exchange(JSON_STRING_EXPIRES, VERIFIER, &t, err, sizeof(err)), 0);
    assert_string_equal(t.access_token, "eyJ.access");
    assert_string_equal(t.refresh_token, "0.AX.refresh");
    assert_int_equal(t.expires_at, NOW + 3599);
    assert_int_equal(t.refresh_expires_at, NOW + 7200);
    casb_oauth_tokens_clear(&t);
}

static void test_exchange_form_answer(void **state)
{
    casb_oauth_tokens t = {0};
    char err[256];

    (void)state;
    assert_int_equal(exchange(FORM_OK, VERIFIER, &t, err, sizeof(err)), 0);
    assert_string_equal(t.access_token, "gho_form+x/y");
    assert_string_equal(t.scope, "repo,gist");
    assert_null(t.refresh_token);
    assert_int_equal(t.expires_at, 0);
    casb_oauth_tokens_clear(&t);

    assert_int_equal(exchange(FORM_ERROR, VERIFIER, &t, err, sizeof(err)), CASB_EAUTH);
    assert_string_equal(err, "bad_verification_code: The code passed is incorrect or expired.");
    assert_clean_failure(&t, err);
}

static void test_exchange_github_error(void **state)
{
    casb_oauth_tokens t = {0};
    char err[256];

    (void)state;
    assert_int_equal(exchange(GH_BAD_CODE, VERIFIER, &t, err, sizeof(err)), CASB_EAUTH);
    assert_code_request(VERIFIER);
    assert_string_equal(err, "bad_verification_code: The code passed is incorrect or expired.");
    assert_clean_failure(&t, err);

    assert_int_equal(exchange(SLACK_NOT_OK, VERIFIER, &t, err, sizeof(err)), CASB_EAUTH);
    assert_string_equal(err, "invalid_code");
    assert_clean_failure(&t, err);
}

static void test_exchange_rfc_400(void **state)
{
    casb_oauth_tokens t = {0};
    char err[256];

    (void)state;
    assert_int_equal(exchange(RFC_400, VERIFIER, &t, err, sizeof(err)), CASB_EAUTH);
    assert_string_equal(err, "invalid_grant: AADSTS70008: The provided authorization code or "
                             "refresh token has expired due to inactivity.");
    assert_clean_failure(&t, err);

    /* A description that quotes the code is withheld, the error code kept. */
    assert_int_equal(exchange(ERROR_QUOTES_CODE, VERIFIER, &t, err, sizeof(err)), CASB_EAUTH);
    assert_non_null(strstr(err, "invalid_grant: "));
    assert_clean_failure(&t, err);
}

static void test_exchange_401_without_body(void **state)
{
    casb_oauth_tokens t = {0};
    char err[256];

    (void)state;
    assert_int_equal(exchange(NO_BODY_401, VERIFIER, &t, err, sizeof(err)), CASB_EAUTH);
    assert_non_null(strstr(err, "401"));
    assert_clean_failure(&t, err);
}

static void test_exchange_unavailable(void **state)
{
    casb_http_client *http;
    casb_oauth_client c = oauth_client();
    casb_oauth_tokens t = {0};
    char err[256];

    (void)state;
    assert_int_equal(exchange(UNAVAILABLE_503, VERIFIER, &t, err, sizeof(err)),
                     CASB_EUNAVAILABLE);
    assert_int_equal(fake.calls, 1);
    assert_non_null(strstr(err, "503"));
    assert_clean_failure(&t, err);

    /* Nothing listens on port 1. */
    http = new_client();
    c.token_url = "http://127.0.0.1:1/login/oauth/access_token";
    err[0] = '\0';
    assert_int_equal(casb_oauth_exchange_code(http, &c, CODE, REDIRECT, VERIFIER, NOW, &t, err,
                                              sizeof(err)),
                     CASB_EUNAVAILABLE);
    assert_non_null(strstr(err, "unreachable"));
    assert_clean_failure(&t, err);
    casb_http_client_free(http);
}

static void test_exchange_not_a_token_answer(void **state)
{
    casb_oauth_tokens t = {0};
    char err[256];

    (void)state;
    assert_int_equal(exchange(NO_ACCESS_TOKEN, VERIFIER, &t, err, sizeof(err)), CASB_ERROR);
    assert_non_null(strstr(err, "access_token"));
    assert_clean_failure(&t, err);

    assert_int_equal(exchange(HTML_200, VERIFIER, &t, err, sizeof(err)), CASB_ERROR);
    assert_clean_failure(&t, err);

    /* Depth abuse is refused by the parser, not followed. */
    assert_int_equal(exchange(DEEP_200, VERIFIER, &t, err, sizeof(err)), CASB_ERROR);
    assert_clean_failure(&t, err);
}

static void test_exchange_bad_arguments(void **state)
{
    casb_http_client *http = new_client();
    casb_oauth_client c = oauth_client();
    casb_oauth_tokens t = {0};
    char err[256];

    (void)state;
    set_mode(JSON_FULL);
    assert_int_equal(casb_oauth_exchange_code(http, &c, "", REDIRECT, NULL, NOW, &t, err,
                                              sizeof(err)),
                     CASB_EINVALID);
    assert_int_equal(casb_oauth_refresh(http, &c, NULL, NOW, &t, err, sizeof(err)),
                     CASB_EINVALID);
    c.token_url = NULL;
    assert_int_equal(casb_oauth_exchange_code(http, &c, CODE, REDIRECT, NULL, NOW, &t, err,
                                              sizeof(err)),
                     CASB_EINVALID);
    assert_int_equal(fake.calls, 0);
    assert_null(t.access_token);
    casb_http_client_free(http);
}

static void test_refresh_keeps_old_refresh_token(void **state)
{
    casb_oauth_tokens t = {0};
    char err[256];

    (void)state;
    /* No refresh token in the answer: the one we hold stays valid. */
    assert_int_equal(refresh(JSON_NO_REFRESH, "ghr_old+/=", &t, err, sizeof(err)), 0);
    assert_request_shape();
    assert_sent("grant_type", "refresh_token");
    assert_sent("refresh_token", "ghr_old+/=");
    assert_sent("code", NULL);
    assert_sent("code_verifier", NULL);
    assert_sent("redirect_uri", NULL);
    assert_string_equal(t.access_token, "xoxb-1");
    assert_string_equal(t.refresh_token, "ghr_old+/=");
    casb_oauth_tokens_clear(&t);

    /* A rotated refresh token replaces it. */
    assert_int_equal(refresh(JSON_NEW_REFRESH, "ghr_old", &t, err, sizeof(err)), 0);
    assert_string_equal(t.access_token, "ghu_access2");
    assert_string_equal(t.refresh_token, "ghr_refresh2");
    assert_int_equal(t.expires_at, NOW + 28800);
    casb_oauth_tokens_clear(&t);
}

static void test_refresh_refused(void **state)
{
    casb_oauth_tokens t = {0};
    char err[256];

    (void)state;
    assert_int_equal(refresh(GH_BAD_REFRESH, "ghr_old", &t, err, sizeof(err)), CASB_EAUTH);
    assert_string_equal(err,
                        "bad_refresh_token: The refresh token passed is incorrect or expired.");
    assert_null(strstr(err, "ghr_old"));
    assert_clean_failure(&t, err);
}

/* ---- the stored form ---- */

static void test_credentials_round_trip(void **state)
{
    casb_oauth_tokens t = {0};
    json_t *c;
    json_t *back;
    char *s;

    (void)state;
    t.access_token = strdup("ghu_a");
    t.refresh_token = strdup("ghr_r");
    t.scope = strdup("read:org");
    t.expires_at = NOW;
    t.refresh_expires_at = 1811462400LL;
    c = casb_oauth_credentials(&t);
    assert_non_null(c);
    assert_int_equal(json_object_size(c), 6);
    assert_true(json_is_true(json_object_get(c, "oauth")));
    assert_string_equal(casb_json_str(c, "access_token"), "ghu_a");
    assert_string_equal(casb_json_str(c, "refresh_token"), "ghr_r");
    assert_string_equal(casb_json_str(c, "scope"), "read:org");
    assert_string_equal(casb_json_str(c, "expires_at"), "2026-11-28T23:00:00Z");
    assert_string_equal(casb_json_str(c, "refresh_token_expires_at"), "2027-05-28T00:00:00Z");
    assert_int_equal(casb_oauth_is_credentials(c), 1);
    /* Through the text form, as it is sealed and opened. */
    s = casb_json_dump(c);
    back = casb_json_parse(s, strlen(s), 0, NULL, 0);
    assert_non_null(back);
    assert_int_equal(casb_oauth_expires_at(back), NOW);
    assert_int_equal(casb_oauth_is_credentials(back), 1);
    free(s);
    json_decref(back);
    json_decref(c);
    casb_oauth_tokens_clear(&t);

    /* Only what is known is stored. */
    t.access_token = strdup("xoxb-1");
    c = casb_oauth_credentials(&t);
    assert_non_null(c);
    assert_int_equal(json_object_size(c), 2);
    assert_null(json_object_get(c, "refresh_token"));
    assert_null(json_object_get(c, "expires_at"));
    assert_null(json_object_get(c, "refresh_token_expires_at"));
    assert_null(json_object_get(c, "scope"));
    assert_int_equal(casb_oauth_expires_at(c), 0);
    json_decref(c);
    casb_oauth_tokens_clear(&t);
    casb_oauth_tokens_clear(&t); /* a zeroed struct is fine */
}

static void test_credentials_recognition(void **state)
{
    json_t *c;

    (void)state;
    c = json_pack("{s:s}", "token", "ghp_x");
    assert_int_equal(casb_oauth_is_credentials(c), 0);
    assert_int_equal(casb_oauth_expires_at(c), 0);
    json_decref(c);
    c = json_pack("{s:b,s:s}", "oauth", 0, "access_token", "a");
    assert_int_equal(casb_oauth_is_credentials(c), 0);
    json_decref(c);
    c = json_pack("{s:b,s:s,s:s}", "oauth", 1, "access_token", "a", "expires_at", "soon");
    assert_int_equal(casb_oauth_is_credentials(c), 1);
    assert_int_equal(casb_oauth_expires_at(c), 0);
    json_decref(c);
    c = json_pack("{s:b,s:s,s:i}", "oauth", 1, "access_token", "a", "expires_at", 5);
    assert_int_equal(casb_oauth_expires_at(c), 0);
    json_decref(c);
    assert_int_equal(casb_oauth_is_credentials(NULL), 0);
    assert_int_equal(casb_oauth_expires_at(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_pkce_rfc7636_vector),
        cmocka_unit_test(test_authorize_url_full),
        cmocka_unit_test(test_authorize_url_minimal),
        cmocka_unit_test(test_exchange_json),
        cmocka_unit_test(test_exchange_without_verifier_or_refresh),
        cmocka_unit_test(test_exchange_string_lifetimes),
        cmocka_unit_test(test_exchange_form_answer),
        cmocka_unit_test(test_exchange_github_error),
        cmocka_unit_test(test_exchange_rfc_400),
        cmocka_unit_test(test_exchange_401_without_body),
        cmocka_unit_test(test_exchange_unavailable),
        cmocka_unit_test(test_exchange_not_a_token_answer),
        cmocka_unit_test(test_exchange_bad_arguments),
        cmocka_unit_test(test_refresh_keeps_old_refresh_token),
        cmocka_unit_test(test_refresh_refused),
        cmocka_unit_test(test_credentials_round_trip),
        cmocka_unit_test(test_credentials_recognition),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
