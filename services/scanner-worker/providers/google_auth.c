/* The Google client's identity: a service-account key with domain-wide delegation signs an
 * RS256 assertion naming the user to impersonate (sub) and the scopes, and exchanges it at
 * the key's token_uri for an access token valid an hour. Tokens are cached per (subject,
 * scope), renewed CASB_GOOGLE_TOKEN_REFRESH_S before they expire, and one exchange per key
 * is in flight at a time: the per-user threads asking for the admin's token wait for the
 * first one instead of each spending a request. Keys and tokens are wiped when freed and
 * never logged. */

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "casb/endpoint.h"
#include "casb/error.h"
#include "casb/json.h"
#include "casb/jwt.h"
#include "casb/log.h"
#include "casb/timeutil.h"
#include "google_client.h"

/* An assertion may live an hour at most (Google refuses longer). */
#define ASSERTION_TTL_S 3600
/* When the token endpoint gives no expires_in. */
#define DEFAULT_TOKEN_TTL_S 3600

struct google_token {
    char *subject;
    char *scope;
    char *token;           /* NULL while none is usable */
    long long expires_s;
    int busy;              /* an exchange is in flight */
    long gen;              /* exchanges finished, so waiters tell theirs apart */
    int last_rc;           /* the outcome of the last exchange */
    char last_err[512];
    google_token *next;
};

static void free_secret(char **p)
{
    if (*p) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

/* ---- the key --------------------------------------------------------------------------- */

static int key_invalid(char *field, size_t fieldlen, const char *member, char *err,
                       size_t errlen, const char *why)
{
    if (field)
        snprintf(field, fieldlen, "credentials.service_account_key%s%s", member[0] ? "." : "",
                 member);
    return casb_fail(err, errlen, CASB_EINVALID, "credentials.service_account_key%s%s: %s",
                     member[0] ? "." : "", member, why);
}

static int pem_is_rsa_private_key(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *pkey = NULL;
    int ok;

    if (!bio)
        return 0;
    pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    ok = pkey && EVP_PKEY_base_id(pkey) == EVP_PKEY_RSA;
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return ok;
}

static int dup_member(char **out, const json_t *obj, const char *name)
{
    const char *v = casb_json_str(obj, name);

    *out = NULL;
    if (!v || !v[0])
        return 0;
    *out = strdup(v);
    return *out ? 0 : -1;
}

static int key_from_object(casb_google_key *k, const json_t *o, char *field, size_t fieldlen,
                           char *err, size_t errlen)
{
    const char *type = casb_json_str(o, "type");
    const char *email = casb_json_str(o, "client_email");
    const char *pem = casb_json_str(o, "private_key");
    const char *uri = casb_json_str(o, "token_uri");

    if (!type || strcmp(type, "service_account") != 0)
        return key_invalid(field, fieldlen, "type", err, errlen,
                           "must be \"service_account\" (a service account's JSON key file)");
    if (!email || !strchr(email, '@') || strlen(email) > 320)
        return key_invalid(field, fieldlen, "client_email", err, errlen,
                           "required: the service account's email");
    if (!pem || !pem[0])
        return key_invalid(field, fieldlen, "private_key", err, errlen, "required");
    /* A key too short to sign with is still a well-formed key here; signing says why. */
    if (casb_jwt_key_load(&k->signer, pem, NULL, 0) != 0 && !pem_is_rsa_private_key(pem))
        return key_invalid(field, fieldlen, "private_key", err, errlen,
                           "not a PEM RSA private key");
    if (uri && strncmp(uri, "https://", 8) != 0 && strncmp(uri, "http://", 7) != 0)
        return key_invalid(field, fieldlen, "token_uri", err, errlen, "must be an http(s) URL");
    k->client_email = strdup(email);
    k->private_key_pem = strdup(pem);
    k->token_uri = strdup(uri && uri[0] ? uri : CASB_GOOGLE_DEFAULT_TOKEN_URI);
    if (!k->client_email || !k->private_key_pem || !k->token_uri ||
        dup_member(&k->private_key_id, o, "private_key_id") != 0 ||
        dup_member(&k->client_id, o, "client_id") != 0)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    return 0;
}

int casb_google_key_parse(casb_google_key *k, const json_t *credentials, char *field,
                          size_t fieldlen, char *err, size_t errlen)
{
    const json_t *v = json_object_get(credentials, "service_account_key");
    json_t *parsed = NULL;
    int rc;

    memset(k, 0, sizeof(*k));
    if (field && fieldlen)
        field[0] = '\0';
    if (json_is_string(v)) {
        /* The key file pasted as text. Its error message could quote the key: not kept. */
        parsed = casb_json_parse(json_string_value(v), json_string_length(v), 0, NULL, 0);
        if (!json_is_object(parsed)) {
            json_decref(parsed);
            return key_invalid(field, fieldlen, "", err, errlen,
                               "not JSON: paste the key file Google issued as it is");
        }
        v = parsed;
    } else if (!json_is_object(v)) {
        return key_invalid(field, fieldlen, "", err, errlen,
                           "required: the service account's JSON key file");
    }
    rc = key_from_object(k, v, field, fieldlen, err, errlen);
    if (parsed) {
        casb_json_wipe(parsed);
        json_decref(parsed);
    }
    if (rc != 0)
        casb_google_key_clear(k);
    return rc;
}

void casb_google_key_clear(casb_google_key *k)
{
    if (!k)
        return;
    free_secret(&k->private_key_pem);
    casb_jwt_key_free(k->signer);
    free(k->client_email);
    free(k->private_key_id);
    free(k->token_uri);
    free(k->client_id);
    memset(k, 0, sizeof(*k));
}

int casb_google_assertion(char **out, const casb_google_key *k, const char *scope,
                          const char *sub, long long now_s, char *err, size_t errlen)
{
    json_t *claims;
    char why[256];
    int rc;

    *out = NULL;
    claims = json_pack("{s:s,s:s,s:s,s:I,s:I}", "iss", k->client_email, "scope", scope, "aud",
                       k->token_uri, "iat", (json_int_t)now_s, "exp",
                       (json_int_t)(now_s + ASSERTION_TTL_S));
    if (!claims)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    if (sub && sub[0] && json_object_set_new(claims, "sub", json_string(sub)) != 0) {
        json_decref(claims);
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    }
    why[0] = '\0';
    if (k->signer)
        rc = casb_jwt_sign_rs256_key(out, claims, k->private_key_id, k->signer, why,
                                     sizeof(why));
    else
        rc = casb_jwt_sign_rs256_kid(out, claims, k->private_key_id, k->private_key_pem, why,
                                     sizeof(why));
    json_decref(claims);
    if (rc != 0)
        return casb_fail(err, errlen, CASB_EINVALID,
                         "credentials.service_account_key.private_key: cannot sign: %s", why);
    return 0;
}

/* ---- the client ------------------------------------------------------------------------ */

static long long wall_now_s(void)
{
    return (long long)(casb_now_ms() / 1000);
}

static int strip_base(char **out, const char *url)
{
    size_t n;

    *out = strdup(url);
    if (!*out)
        return -1;
    n = strlen(*out);
    while (n > 0 && (*out)[n - 1] == '/')
        (*out)[--n] = '\0';
    return 0;
}

static int endpoint_ok(const char *url, const char *default_url, const char *allowed,
                       const char *name, char *err, size_t errlen)
{
    char why[256];

    why[0] = '\0';
    if (casb_endpoint_allowed(url, default_url, allowed, why, sizeof(why)) == 1)
        return 0;
    return casb_fail(err, errlen, CASB_EINVALID, "%s: %s", name,
                     why[0] ? why : "endpoint not allowed (CASB_ALLOWED_ENDPOINTS)");
}

static void init_pacer(casb_google_client *c, const json_t *config)
{
    long long rps = casb_json_int(config, "max_requests_per_second", CASB_GOOGLE_DEFAULT_RPS);

    if (rps <= 0)
        rps = CASB_GOOGLE_DEFAULT_RPS;
    c->pace_interval_us = 1000000LL / rps;
    /* A second's worth of requests may go at once after a pause. */
    c->pace_burst = rps;
    c->pace_tat_us = 0;
}

int casb_google_client_new(casb_google_client **out, casb_scan_ctx *ctx, char *err,
                           size_t errlen)
{
    casb_google_client *c;
    const char *base = casb_json_str(ctx->config, "api_base_url");
    const char *admin = casb_json_str(ctx->config, "admin_email");
    const char *customer = casb_json_str(ctx->config, "customer_id");
    char field[128];
    int rc;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    pthread_mutex_init(&c->tok_mu, NULL);
    pthread_cond_init(&c->tok_cv, NULL);
    pthread_mutex_init(&c->pace_mu, NULL);
    pthread_mutex_init(&c->sink_mu, NULL);
    c->now_s = wall_now_s;
    c->cancel = ctx->cancel;
    c->http_opts = ctx->http_opts;
    atomic_init(&c->requests, 0);
    atomic_init(&c->stopped, 0);
    init_pacer(c, ctx->config);
    rc = casb_google_key_parse(&c->key, ctx->credentials, field, sizeof(field), err, errlen);
    if (rc != 0)
        goto out;
    if (!admin || !strchr(admin, '@')) {
        rc = casb_fail(err, errlen, CASB_EINVALID, "config.admin_email: required");
        goto out;
    }
    snprintf(c->customer, sizeof(c->customer), "%s",
             customer && customer[0] ? customer : "my_customer");
    if (strip_base(&c->api_base, base && base[0] ? base : CASB_GOOGLE_DEFAULT_API_URL) != 0 ||
        !(c->admin = strdup(admin))) {
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    rc = endpoint_ok(c->api_base, CASB_GOOGLE_DEFAULT_API_URL, ctx->allowed_endpoints,
                     "config.api_base_url", err, errlen);
    if (rc != 0)
        goto out;
    rc = endpoint_ok(c->key.token_uri, CASB_GOOGLE_DEFAULT_TOKEN_URI, ctx->allowed_endpoints,
                     "credentials.service_account_key.token_uri", err, errlen);
    if (rc != 0)
        goto out;
    *out = c;
    c = NULL;
out:
    casb_google_client_free(c);
    return rc;
}

static void token_free(google_token *t)
{
    free_secret(&t->token);
    free(t->subject);
    free(t->scope);
    free(t);
}

void casb_google_client_free(casb_google_client *c)
{
    if (!c)
        return;
    while (c->tokens) {
        google_token *t = c->tokens;

        c->tokens = t->next;
        token_free(t);
    }
    casb_google_key_clear(&c->key);
    free(c->api_base);
    free(c->admin);
    pthread_mutex_destroy(&c->tok_mu);
    pthread_cond_destroy(&c->tok_cv);
    pthread_mutex_destroy(&c->pace_mu);
    pthread_mutex_destroy(&c->sink_mu);
    free(c);
}

long casb_google_client_requests(const casb_google_client *c)
{
    return c ? atomic_load(&((casb_google_client *)c)->requests) : 0;
}

/* ---- the token exchange ---------------------------------------------------------------- */

/* An OAuth error of the token endpoint, in words a user can act on. */
static int exchange_refused(const casb_google_client *c, const char *sub, const char *scope,
                            long status, const json_t *body, char *err, size_t errlen)
{
    const char *error = casb_json_str(body, "error");
    const char *desc = casb_json_str(body, "error_description");
    const char *what = desc && desc[0] ? desc : error ? error : "no reason given";

    if (error && strcmp(error, "invalid_client") == 0)
        return casb_fail(err, errlen, CASB_EAUTH,
                         "Google refused the service account %s (invalid_client: %s). The key "
                         "was deleted or disabled: create a new key and update the integration",
                         c->key.client_email, what);
    if (status == 400 || status == 401 || status == 403)
        return casb_fail(err, errlen, CASB_EAUTH,
                         "Google refused the service account's assertion for %s: %s. Check "
                         "that the key is valid and that domain-wide delegation grants the "
                         "client id %s these scopes: %s",
                         sub, what, c->key.client_id ? c->key.client_id : "(not in the key)",
                         scope);
    if (status == 429 || status >= 500)
        return casb_fail(err, errlen, CASB_EUNAVAILABLE,
                         "Google's token endpoint answered %ld (%s)", status, what);
    return casb_fail(err, errlen, CASB_ERROR, "Google's token endpoint answered %ld (%s)",
                     status, what);
}

/* Reads the token endpoint's answer; wipes the token it held. */
static int read_token(const casb_google_client *c, const casb_http_response *hr,
                      const char *sub, const char *scope, char **token, long long *expires_s,
                      char *err, size_t errlen)
{
    json_t *body = casb_json_parse(hr->body, hr->body_len, 0, NULL, 0);
    const char *t;
    long long ttl;
    int rc = 0;

    if (hr->status < 200 || hr->status >= 300) {
        rc = exchange_refused(c, sub, scope, hr->status, body, err, errlen);
        goto out;
    }
    t = casb_json_str(body, "access_token");
    if (!t || !t[0] || strlen(t) > 4096 || strpbrk(t, " \r\n\t")) {
        rc = casb_fail(err, errlen, CASB_ERROR, "Google's token endpoint returned no usable "
                                                "access token");
        goto out;
    }
    ttl = casb_json_int(body, "expires_in", DEFAULT_TOKEN_TTL_S);
    if (ttl <= 0)
        ttl = DEFAULT_TOKEN_TTL_S;
    *token = strdup(t);
    if (!*token) {
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    *expires_s = c->now_s() + ttl;
out:
    if (body) {
        casb_json_wipe(body);
        json_decref(body);
    }
    return rc;
}

/* POST token_uri with the assertion for (sub, scope). */
static int exchange(casb_google_client *c, casb_http_client *http, const char *sub,
                    const char *scope, char **token, long long *expires_s, char *err,
                    size_t errlen)
{
    static const char *const headers[] = {
        "Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL};
    casb_http_response *hr = NULL;
    char *jwt = NULL, *body = NULL;
    char herr[256];
    int rc;

    *token = NULL;
    rc = casb_google_assertion(&jwt, &c->key, scope, sub, c->now_s(), err, errlen);
    if (rc != 0)
        return rc;
    /* The JWT is base64url and dots: nothing to escape. */
    if (asprintf(&body, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
                        "&assertion=%s",
                 jwt) < 0) {
        body = NULL;
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    atomic_fetch_add(&c->requests, 1);
    if (casb_http_request(http, &hr, "POST", c->key.token_uri, headers, body, strlen(body),
                          herr, sizeof(herr)) != 0) {
        if (casb_google_cancelled(c))
            rc = casb_fail(err, errlen, CASB_ERROR, "scan cancelled");
        else
            rc = casb_fail(err, errlen, CASB_EUNAVAILABLE,
                           "Google's token endpoint is unreachable: %s", herr);
        goto out;
    }
    rc = read_token(c, hr, sub, scope, token, expires_s, err, errlen);
    if (rc == 0)
        casb_log_debug("google access token issued", "subject", sub);
out:
    if (hr && hr->body)
        explicit_bzero(hr->body, hr->body_len);
    casb_http_response_free(hr);
    free_secret(&body);
    free_secret(&jwt);
    return rc;
}

/* The cache entry of (subject, scope), created when missing; under tok_mu. */
static google_token *entry_of(casb_google_client *c, const char *subject, const char *scope)
{
    google_token *t;

    for (t = c->tokens; t; t = t->next)
        if (strcmp(t->subject, subject) == 0 && strcmp(t->scope, scope) == 0)
            return t;
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->subject = strdup(subject);
    t->scope = strdup(scope);
    if (!t->subject || !t->scope) {
        token_free(t);
        return NULL;
    }
    t->next = c->tokens;
    c->tokens = t;
    return t;
}

static int usable(const casb_google_client *c, const google_token *t)
{
    return t->token && c->now_s() < t->expires_s - CASB_GOOGLE_TOKEN_REFRESH_S;
}

static int copy_token(const google_token *t, char *buf, size_t buflen, char *err,
                      size_t errlen)
{
    if (strlen(t->token) >= buflen)
        return casb_fail(err, errlen, CASB_ERROR, "Google's access token is too long");
    memcpy(buf, t->token, strlen(t->token) + 1);
    return 0;
}

/* Runs one exchange for t with tok_mu released, then publishes its outcome. */
static int exchange_for(casb_google_client *c, casb_http_client *http, google_token *t,
                        char *err, size_t errlen)
{
    char *token = NULL;
    long long expires_s = 0;
    int rc;

    t->busy = 1;
    pthread_mutex_unlock(&c->tok_mu);
    rc = exchange(c, http, t->subject, t->scope, &token, &expires_s, err, errlen);
    pthread_mutex_lock(&c->tok_mu);
    t->busy = 0;
    t->gen++;
    c->token_exchanges++;
    t->last_rc = rc;
    snprintf(t->last_err, sizeof(t->last_err), "%s", rc != 0 && err ? err : "");
    if (rc == 0) {
        free_secret(&t->token);
        t->token = token;
        t->expires_s = expires_s;
    }
    pthread_cond_broadcast(&c->tok_cv);
    return rc;
}

int casb_google_token(casb_google_client *c, casb_http_client *http, const char *subject,
                      const char *scope, char *buf, size_t buflen, char *err, size_t errlen)
{
    google_token *t;
    int rc;

    pthread_mutex_lock(&c->tok_mu);
    t = entry_of(c, subject, scope);
    if (!t) {
        pthread_mutex_unlock(&c->tok_mu);
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    }
    for (;;) {
        if (usable(c, t)) {
            rc = copy_token(t, buf, buflen, err, errlen);
            break;
        }
        if (!t->busy) {
            rc = exchange_for(c, http, t, err, errlen);
            if (rc == 0)
                rc = copy_token(t, buf, buflen, err, errlen);
            break;
        }
        /* Another thread is exchanging for this key: its outcome is ours. */
        long gen = t->gen;

        while (t->busy && t->gen == gen)
            pthread_cond_wait(&c->tok_cv, &c->tok_mu);
        if (t->last_rc != 0) {
            rc = casb_fail(err, errlen, t->last_rc, "%s", t->last_err);
            break;
        }
    }
    pthread_mutex_unlock(&c->tok_mu);
    return rc;
}

void casb_google_token_invalidate(casb_google_client *c, const char *subject,
                                  const char *scope, const char *token)
{
    pthread_mutex_lock(&c->tok_mu);
    for (google_token *t = c->tokens; t; t = t->next) {
        /* Only the token that was refused: another thread may have renewed it already. */
        if (strcmp(t->subject, subject) == 0 && strcmp(t->scope, scope) == 0 && t->token &&
            strcmp(t->token, token) == 0)
            free_secret(&t->token);
    }
    pthread_mutex_unlock(&c->tok_mu);
}

void casb_google_token_forget(casb_google_client *c, const char *subject)
{
    google_token **pp;

    /* The admin's tokens serve the whole scan (the admin is often a user scanned too). */
    if (c->admin && strcasecmp(subject, c->admin) == 0)
        return;
    pthread_mutex_lock(&c->tok_mu);
    pp = &c->tokens;
    while (*pp) {
        google_token *t = *pp;

        /* An entry with an exchange in flight has a thread that will still read it. */
        if (strcmp(t->subject, subject) == 0 && !t->busy) {
            *pp = t->next;
            token_free(t);
        } else {
            pp = &t->next;
        }
    }
    pthread_mutex_unlock(&c->tok_mu);
}
