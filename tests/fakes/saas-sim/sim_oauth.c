/* GitHub's OAuth web application flow for GitHub App user access tokens, as github.com
 * serves it: GET /login/oauth/authorize (the browser step, here answered at once with the
 * tenant's canned consent), GET /apps/{app_slug}/installations/new (the install page of an
 * App that requests user authorization during installation: a code comes back with the
 * installation) and POST /login/oauth/access_token (code and refresh grants).
 *
 * What is GitHub's and kept here: codes of 20 hex characters, single use, 10 minutes; PKCE
 * with S256 only; ghu_ access tokens (8 h) and ghr_ refresh tokens (about 6 months); a
 * refused grant answered 200 with {"error", "error_description", "error_uri"}; JSON only
 * for Accept: application/json, form-encoded otherwise; a refresh retires both the refresh
 * token used and the access token issued with it. Codes, tokens and the client secret are
 * never logged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <civetweb.h>
#include <openssl/evp.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"
#include "sim.h"

#define CODE_TTL_S 600
#define DEFAULT_ACCESS_TTL_S 28800
#define DEFAULT_REFRESH_TTL_S 15897600
#define ACCESS_TOKEN_ALNUM 36
#define REFRESH_TOKEN_ALNUM 76
#define MAX_URI_BYTES 2048
#define MAX_VALUE_BYTES 512

#define DOCS_TOKEN_ERRORS \
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"
#define DOCS_AUTHORIZE_ERRORS \
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/"
#define MSG_BAD_CLIENT "The client_id and/or client_secret passed are incorrect."
#define MSG_REDIRECT_MISMATCH \
    "The redirect_uri MUST match the registered callback URL for this application."
#define MSG_BAD_CODE "The code passed is incorrect or expired."
#define MSG_BAD_REFRESH "The refresh token passed is incorrect or expired."
#define MSG_DENIED "The user has denied your application access."

/* ---------- the tenant's auth.oauth ---------- */

static int check_ttl(const json_t *oauth, const char *key, char *err, size_t errlen)
{
    json_t *v = json_object_get(oauth, key);

    if (v && (!json_is_integer(v) || json_integer_value(v) < 1))
        return casb_fail(err, errlen, CASB_EINVALID, "auth.oauth.%s must be a positive integer",
                         key);
    return 0;
}

/* An optional member that, when present, is the string a or b. */
static int check_choice(const json_t *oauth, const char *key, const char *a, const char *b,
                        char *err, size_t errlen)
{
    json_t *v = json_object_get(oauth, key);
    const char *value = json_string_value(v);

    if (v && (!value || (strcmp(value, a) != 0 && strcmp(value, b) != 0)))
        return casb_fail(err, errlen, CASB_EINVALID, "auth.oauth.%s must be \"%s\" or \"%s\"",
                         key, a, b);
    return 0;
}

/* "http(s)://host...": a scheme GitHub accepts for a callback URL, a host, and nothing that
 * could not stand in a Location header. */
static int absolute_http_url(const char *url)
{
    size_t skip;

    if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return 0;
    if (url[skip] == '\0' || strchr("/?#:", url[skip]))
        return 0;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (*p <= ' ' || *p == 0x7f)
            return 0;
    }
    return 1;
}

/* callback_url and install: the install page's side of auth.oauth. A callback URL outside
 * redirect_uri_prefix would yield codes the token endpoint refuses, so it is refused here. */
static int check_install(const json_t *oauth, char *err, size_t errlen)
{
    const char *url, *prefix;
    json_t *v;

    v = json_object_get(oauth, "callback_url");
    url = json_string_value(v);
    if (v && (!url || !absolute_http_url(url)))
        return casb_fail(err, errlen, CASB_EINVALID,
                         "auth.oauth.callback_url must be an absolute http(s) URL");
    prefix = casb_json_str(oauth, "redirect_uri_prefix");
    if (url && prefix && strncmp(url, prefix, strlen(prefix)) != 0)
        return casb_fail(err, errlen, CASB_EINVALID,
                         "auth.oauth.callback_url must start with auth.oauth.redirect_uri_prefix");
    return check_choice(oauth, "install", "install", "request", err, errlen);
}

int sim_oauth_validate(const json_t *oauth, char *err, size_t errlen)
{
    json_t *v;

    if (!json_is_object(oauth))
        return casb_fail(err, errlen, CASB_EINVALID, "auth.oauth must be an object");
    v = json_object_get(oauth, "client_id");
    if (!json_is_string(v) || json_string_length(v) == 0)
        return casb_fail(err, errlen, CASB_EINVALID, "auth.oauth.client_id must be a non-empty string");
    v = json_object_get(oauth, "client_secret");
    if (!json_is_string(v) || json_string_length(v) == 0)
        return casb_fail(err, errlen, CASB_EINVALID,
                         "auth.oauth.client_secret must be a non-empty string");
    if (check_choice(oauth, "consent", "approve", "deny", err, errlen) != 0)
        return CASB_EINVALID;
    if (check_ttl(oauth, "access_token_ttl_s", err, errlen) != 0 ||
        check_ttl(oauth, "refresh_token_ttl_s", err, errlen) != 0)
        return CASB_EINVALID;
    v = json_object_get(oauth, "redirect_uri_prefix");
    if (v && !json_is_string(v))
        return casb_fail(err, errlen, CASB_EINVALID,
                         "auth.oauth.redirect_uri_prefix must be a string");
    return check_install(oauth, err, errlen);
}

static const char *client_id_of(const json_t *doc)
{
    return casb_json_str(casb_json_path(doc, "auth.oauth"), "client_id");
}

int sim_oauth_client_conflict(sim *s, const char *login, const json_t *doc, char *err,
                              size_t errlen)
{
    const char *client_id = client_id_of(doc);

    if (!client_id)
        return 0;
    for (size_t i = 0; i < s->norgs; i++) {
        const char *other = client_id_of(s->orgs[i]->doc);
        if (strcasecmp(s->orgs[i]->login, login) != 0 && other && strcmp(other, client_id) == 0)
            return casb_fail(err, errlen, CASB_EINVALID,
                             "auth.oauth.client_id is already used by org \"%s\"",
                             s->orgs[i]->login);
    }
    return 0;
}

/* The org registered for a client id; caller holds lock. */
static sim_org *org_by_client_id(sim *s, const char *client_id)
{
    if (!client_id || !*client_id)
        return NULL;
    for (size_t i = 0; i < s->norgs; i++) {
        const char *id = client_id_of(s->orgs[i]->doc);
        if (id && strcmp(id, client_id) == 0)
            return s->orgs[i];
    }
    return NULL;
}

static long long ttl_of(const sim_org *o, const char *key, long long def)
{
    long long v = casb_json_int(casb_json_path(o->doc, "auth.oauth"), key, def);

    return v > 0 ? v : def;
}

/* ---------- codes and tokens (caller holds mu) ---------- */

static void code_clear(sim_oauth_code *c)
{
    free(c->login);
    free(c->client_id);
    free(c->redirect_uri);
    memset(c, 0, sizeof *c);
}

static void user_token_clear(sim_user_token *t)
{
    free(t->login);
    free(t->client_id);
    memset(t, 0, sizeof *t);
}

static void codes_remove(sim *s, size_t i)
{
    code_clear(&s->codes[i]);
    s->codes[i] = s->codes[s->ncodes - 1];
    s->ncodes--;
}

static void user_tokens_remove(sim *s, size_t i)
{
    user_token_clear(&s->user_tokens[i]);
    s->user_tokens[i] = s->user_tokens[s->nuser_tokens - 1];
    s->nuser_tokens--;
}

static void purge_expired(sim *s, time_t now)
{
    for (size_t i = s->ncodes; i > 0; i--) {
        if (s->codes[i - 1].expires_at <= now)
            codes_remove(s, i - 1);
    }
    for (size_t i = s->nuser_tokens; i > 0; i--) {
        if (s->user_tokens[i - 1].expires_at <= now)
            user_tokens_remove(s, i - 1);
    }
}

/* Fills out with n characters drawn from alphabet using the CSPRNG: codes and tokens must
 * not repeat across simulator runs, or a token kept by CASB from an earlier run would work. */
static int random_chars(char *out, size_t n, const char *alphabet)
{
    unsigned char bytes[128];
    size_t k = strlen(alphabet);

    if (n > sizeof bytes || casb_random_bytes(bytes, n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[bytes[i] % k];
    out[n] = '\0';
    return 0;
}

static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

static int user_token_add(sim *s, const sim_org *o, int is_refresh, long long grant_id,
                          long long ttl_s, time_t now, char *out, size_t outlen)
{
    sim_user_token *t;

    if (s->nuser_tokens == s->user_tokens_cap) {
        size_t cap = s->user_tokens_cap ? s->user_tokens_cap * 2 : 16;
        sim_user_token *grown = realloc(s->user_tokens, cap * sizeof *grown);
        if (!grown)
            return -1;
        s->user_tokens = grown;
        s->user_tokens_cap = cap;
    }
    t = &s->user_tokens[s->nuser_tokens];
    memset(t, 0, sizeof *t);
    memcpy(t->token, is_refresh ? "ghr_" : "ghu_", 4);
    if (random_chars(t->token + 4, is_refresh ? REFRESH_TOKEN_ALNUM : ACCESS_TOKEN_ALNUM,
                     ALNUM) != 0)
        return -1;
    t->is_refresh = is_refresh;
    t->login = strdup(o->login);
    t->client_id = strdup(client_id_of(o->doc));
    if (!t->login || !t->client_id) {
        user_token_clear(t);
        return -1;
    }
    t->grant_id = grant_id;
    t->expires_at = now + (time_t)ttl_s;
    s->nuser_tokens++;
    snprintf(out, outlen, "%s", t->token);
    return 0;
}

static int cred_equals(const sim_credential *c, const char *s)
{
    return strlen(s) == c->len && memcmp(c->value, s, c->len) == 0;
}

/* The org a user token still belongs to: the org must exist and still be registered under
 * the client id the token was issued to. Caller holds lock. */
static sim_org *token_org(sim *s, const sim_user_token *t)
{
    sim_org *o = sim_org_find(s, t->login);
    const char *client_id = o ? client_id_of(o->doc) : NULL;

    return client_id && strcmp(client_id, t->client_id) == 0 ? o : NULL;
}

sim_org *sim_oauth_token_owner(sim *s, const sim_credential *c)
{
    time_t now = time(NULL);

    for (size_t i = 0; i < s->nuser_tokens; i++) {
        const sim_user_token *t = &s->user_tokens[i];
        if (t->is_refresh || !cred_equals(c, t->token))
            continue;
        return t->expires_at > now ? token_org(s, t) : NULL;
    }
    return NULL;
}

void sim_oauth_revoke(sim *s, const char *login, long long *access, long long *refresh)
{
    *access = 0;
    *refresh = 0;
    for (size_t i = s->nuser_tokens; i > 0; i--) {
        sim_user_token *t = &s->user_tokens[i - 1];
        if (strcasecmp(t->login, login) != 0)
            continue;
        /* An expired token is gone already, as far as the client can tell. */
        if (t->expires_at > time(NULL)) {
            if (t->is_refresh)
                (*refresh)++;
            else
                (*access)++;
        }
        user_tokens_remove(s, i - 1);
    }
}

void sim_oauth_forget(sim *s, const char *login)
{
    long long access, refresh;

    sim_oauth_revoke(s, login, &access, &refresh);
    for (size_t i = s->ncodes; i > 0; i--) {
        if (strcasecmp(s->codes[i - 1].login, login) == 0)
            codes_remove(s, i - 1);
    }
}

json_t *sim_oauth_stats_json(sim *s, const sim_org *o)
{
    time_t now = time(NULL);
    long long access = 0, refresh = 0;

    for (size_t i = 0; i < s->nuser_tokens; i++) {
        const sim_user_token *t = &s->user_tokens[i];
        if (t->expires_at <= now || strcasecmp(t->login, o->login) != 0)
            continue;
        if (t->is_refresh)
            refresh++;
        else
            access++;
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "codes_issued",
                     (json_int_t)o->oauth_codes_issued, "codes_redeemed",
                     (json_int_t)o->oauth_codes_redeemed, "tokens_issued",
                     (json_int_t)o->oauth_tokens_issued, "refreshes",
                     (json_int_t)o->oauth_refreshes, "active_access_tokens", (json_int_t)access,
                     "active_refresh_tokens", (json_int_t)refresh, "last_code_challenge_method",
                     o->oauth_last_s256 ? json_string("S256") : json_null());
}

void sim_oauth_free_all(sim *s)
{
    for (size_t i = 0; i < s->ncodes; i++)
        code_clear(&s->codes[i]);
    free(s->codes);
    s->codes = NULL;
    s->ncodes = s->codes_cap = 0;
    for (size_t i = 0; i < s->nuser_tokens; i++)
        user_token_clear(&s->user_tokens[i]);
    free(s->user_tokens);
    s->user_tokens = NULL;
    s->nuser_tokens = s->user_tokens_cap = 0;
}

/* ---------- the answer of a request ---------- */

/* Everything an OAuth request answers, built under the locks and sent after them (a slow or
 * timeout fault holds between the two). */
typedef struct {
    int status;
    const char *content_type;
    char *body;      /* malloc'ed */
    char *location;  /* malloc'ed or NULL */
    int retry_after_s;
} oauth_reply;

static void reply_set(oauth_reply *out, int status, const char *content_type, const char *body)
{
    free(out->body);
    out->status = status;
    out->content_type = content_type;
    out->body = strdup(body);
}

static void reply_text(oauth_reply *out, int status, const char *text)
{
    reply_set(out, status, "text/plain; charset=utf-8", text);
}

/* application/x-www-form-urlencoded as GitHub writes it: unreserved characters as they are,
 * a space as '+', every other byte as %XX. */
static void form_append(FILE *f, const char *value)
{
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~')
            fputc(*p, f);
        else if (*p == ' ')
            fputc('+', f);
        else
            fprintf(f, "%%%02X", *p);
    }
}

/* body's members, in order, as a form: strings encoded, integers in decimal. */
static char *form_of(const json_t *body)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const char *key;
    json_t *v;
    int first = 1;

    if (!f)
        return NULL;
    json_object_foreach((json_t *)body, key, v) {
        fprintf(f, "%s%s=", first ? "" : "&", key);
        if (json_is_integer(v))
            fprintf(f, "%lld", (long long)json_integer_value(v));
        else if (json_is_string(v))
            form_append(f, json_string_value(v));
        first = 0;
    }
    fclose(f);
    return buf;
}

/* The token endpoint's answer: always 200 (a refused grant too), JSON when the client asked
 * for it, else form-encoded. Steals body. */
static void reply_token(oauth_reply *out, int want_json, json_t *body)
{
    free(out->body);
    out->status = 200;
    if (want_json) {
        out->content_type = "application/json; charset=utf-8";
        out->body = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    } else {
        out->content_type = "application/x-www-form-urlencoded; charset=utf-8";
        out->body = form_of(body);
    }
    json_decref(body);
}

static void reply_grant_error(oauth_reply *out, int want_json, const char *error,
                              const char *description, const char *anchor, const char *docs)
{
    char uri[256];

    snprintf(uri, sizeof uri, "%s#%s", docs ? docs : DOCS_TOKEN_ERRORS, anchor);
    reply_token(out, want_json, json_pack("{s:s, s:s, s:s}", "error", error, "error_description",
                                          description, "error_uri", uri));
}

/* A 302 to redirect_uri carrying params (name, value, ..., NULL; values form-encoded) and,
 * last as GitHub puts it, the request's state when it had one. The parameters follow a '&'
 * when redirect_uri has a query already. */
static void reply_redirect(oauth_reply *out, const char *redirect_uri, const char *const *params,
                           const char *state, int has_state)
{
    char *loc = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&loc, &len);

    if (!f) {
        reply_text(out, 500, "Server Error");
        return;
    }
    fprintf(f, "%s%c", redirect_uri, strchr(redirect_uri, '?') ? '&' : '?');
    for (size_t i = 0; params[i]; i += 2) {
        fprintf(f, "%s%s=", i ? "&" : "", params[i]);
        form_append(f, params[i + 1]);
    }
    if (has_state) {
        fputs("&state=", f);
        form_append(f, state);
    }
    if (fclose(f) != 0 || !loc) {
        free(loc);
        reply_text(out, 500, "Server Error");
        return;
    }
    free(out->location);
    out->location = loc;
    reply_set(out, 302, "text/html; charset=utf-8",
              "<html><body>You are being <a href=\"\">redirected</a>.</body></html>");
}

/* Draws a fault for an OAuth request of org o (caller holds lock); 5xx/429 faults answer
 * here. Returns the fault drawn (SIM_FAULT_NONE when none). */
static sim_fault_hit draw_fault(sim *s, sim_org *o, casb_http_req *r, const char *endpoint,
                                oauth_reply *out)
{
    sim_fault_hit hit = {.mode = SIM_FAULT_NONE};

    pthread_mutex_lock(&s->mu);
    sim_stats_count(o, endpoint);
    if (sim_faults_pick(o, casb_http_path(r), &hit))
        o->faults_injected++;
    pthread_mutex_unlock(&s->mu);
    switch (hit.mode) {
    case SIM_FAULT_429:
        reply_text(out, 429, "Too Many Requests");
        out->retry_after_s = (int)hit.retry_after_s;
        break;
    case SIM_FAULT_500:
        reply_text(out, 500, "Server Error");
        break;
    case SIM_FAULT_503:
        reply_text(out, 503, "Service Unavailable");
        break;
    default:
        break;
    }
    return hit;
}

static int is_answering_fault(const sim_fault_hit *hit)
{
    return hit->mode == SIM_FAULT_429 || hit->mode == SIM_FAULT_500 || hit->mode == SIM_FAULT_503;
}

/* The start of a browser page of org o (NULL: none serves it, 404): counts the request and
 * draws a fault. Returns 1 when the page goes on, 0 when out holds the answer already.
 * Caller holds lock. */
static int page_begin(sim *s, casb_http_req *r, sim_org *o, const char *endpoint,
                      oauth_reply *out, sim_fault_hit *hit)
{
    if (!o) {
        reply_text(out, 404, "Not Found");
        return 0;
    }
    *hit = draw_fault(s, o, r, endpoint, out);
    return !is_answering_fault(hit);
}

/* Holds for slow/timeout faults (locks released), then sends; malformed cuts the body. */
static int send_reply(sim *s, casb_http_req *r, oauth_reply *out, const sim_fault_hit *hit)
{
    size_t len;
    int status;

    sim_latency_hold(s, hit->mode == SIM_FAULT_SLOW || hit->mode == SIM_FAULT_TIMEOUT
                            ? hit->delay_ms
                            : 0);
    if (!out->body) {
        out->status = 500;
        out->content_type = "text/plain; charset=utf-8";
        out->body = strdup("Server Error");
    }
    len = out->body ? strlen(out->body) : 0;
    if (hit->mode == SIM_FAULT_MALFORMED)
        len /= 2;
    if (out->location && casb_http_add_header(r, "Location", out->location) != 0) {
        /* A redirect_uri with CR/LF cannot be a header; GitHub would not redirect there. */
        status = casb_http_reply_text(r, 400, "text/plain; charset=utf-8", "Bad Request", 11);
        goto out;
    }
    if (out->retry_after_s > 0) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", out->retry_after_s);
        casb_http_add_header(r, "Retry-After", buf);
    }
    status = casb_http_reply_text(r, out->status, out->content_type, out->body, len);
out:
    free(out->body);
    free(out->location);
    return status;
}

/* ---------- GET /login/oauth/authorize ---------- */

/* A query parameter into buf: 1 present, 0 absent, -1 too long. */
static int query_param(casb_http_req *r, const char *name, char *buf, size_t len)
{
    buf[0] = '\0';
    return casb_http_query(r, name, buf, len);
}

static int redirect_allowed(const sim_org *o, const char *redirect_uri)
{
    const char *prefix = casb_json_str(casb_json_path(o->doc, "auth.oauth"), "redirect_uri_prefix");

    return !prefix || strncmp(redirect_uri, prefix, strlen(prefix)) == 0;
}

/* An S256 challenge is the base64url of 32 bytes: 43 characters, no padding. */
static int challenge_valid(const char *c)
{
    if (strlen(c) != 43)
        return 0;
    for (const char *p = c; *p; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return 0;
    }
    return 1;
}

/* Issues a code for the org bound to its client id, redirect_uri and challenge ("" for
 * none), and counts it for GET /_sim/orgs/{org}/oauth. The authorize endpoint and the
 * install page both issue their codes here. Caller holds lock (takes mu). */
static int code_issue(sim *s, sim_org *o, const char *redirect_uri, const char *challenge,
                      char *code, size_t codelen)
{
    time_t now = time(NULL);
    sim_oauth_code *c;
    int rc = -1;

    pthread_mutex_lock(&s->mu);
    o->oauth_last_s256 = challenge[0] != '\0';
    purge_expired(s, now);
    if (s->ncodes == s->codes_cap) {
        size_t cap = s->codes_cap ? s->codes_cap * 2 : 16;
        sim_oauth_code *grown = realloc(s->codes, cap * sizeof *grown);
        if (!grown)
            goto out;
        s->codes = grown;
        s->codes_cap = cap;
    }
    c = &s->codes[s->ncodes];
    memset(c, 0, sizeof *c);
    if (random_chars(c->code, 20, "0123456789abcdef") != 0)
        goto out;
    c->login = strdup(o->login);
    c->client_id = strdup(client_id_of(o->doc));
    c->redirect_uri = strdup(redirect_uri);
    if (!c->login || !c->client_id || !c->redirect_uri) {
        code_clear(c);
        goto out;
    }
    snprintf(c->challenge, sizeof c->challenge, "%s", challenge);
    c->expires_at = now + CODE_TTL_S;
    s->ncodes++;
    o->oauth_codes_issued++;
    snprintf(code, codelen, "%s", c->code);
    rc = 0;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void authorize(sim *s, sim_org *o, const char *redirect_uri, const char *state,
                      int has_state, const char *challenge, oauth_reply *out)
{
    const char *consent = casb_json_str(casb_json_path(o->doc, "auth.oauth"), "consent");
    const char *const denied[] = {"error", "access_denied", "error_description", MSG_DENIED,
                                  "error_uri", DOCS_AUTHORIZE_ERRORS "#access-denied", NULL};
    char code[24];
    const char *const approved[] = {"code", code, NULL};

    if (consent && strcmp(consent, "deny") == 0) {
        /* No code, but the stats still name the challenge method of the latest attempt. */
        pthread_mutex_lock(&s->mu);
        o->oauth_last_s256 = challenge[0] != '\0';
        pthread_mutex_unlock(&s->mu);
        reply_redirect(out, redirect_uri, denied, state, has_state);
        casb_log_info("oauth authorize denied", "org", o->login);
        return;
    }
    if (code_issue(s, o, redirect_uri, challenge, code, sizeof code) != 0) {
        reply_text(out, 500, "Server Error");
        return;
    }
    reply_redirect(out, redirect_uri, approved, state, has_state);
    casb_log_info("oauth code issued", "org", o->login, "pkce", challenge[0] ? "S256" : "none");
}

static int h_authorize(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    oauth_reply out = {0};
    sim_fault_hit hit = {.mode = SIM_FAULT_NONE};
    char client_id[MAX_VALUE_BYTES], redirect_uri[MAX_URI_BYTES], state[MAX_URI_BYTES];
    char challenge[MAX_VALUE_BYTES], method[64];
    int has_state, has_challenge, has_method;
    sim_org *o;

    if (query_param(r, "client_id", client_id, sizeof client_id) != 1) {
        reply_text(&out, 404, "Not Found");
        return send_reply(s, r, &out, &hit);
    }
    pthread_rwlock_rdlock(&s->lock);
    o = org_by_client_id(s, client_id);
    if (!page_begin(s, r, o, "GET /login/oauth/authorize", &out, &hit))
        goto unlock;
    /* GitHub falls back to the registered callback URL; the simulator does not (callback_url
     * is optional and serves the install page), so it wants the redirect_uri spelled out. */
    if (query_param(r, "redirect_uri", redirect_uri, sizeof redirect_uri) != 1 ||
        redirect_uri[0] == '\0') {
        reply_text(&out, 400, "redirect_uri is required by the simulator");
        goto unlock;
    }
    if (!redirect_allowed(o, redirect_uri)) {
        /* GitHub redirects such a request to the registered callback URL instead; never to
         * the URI that failed the check. */
        reply_text(&out, 400, "redirect_uri_mismatch: " MSG_REDIRECT_MISMATCH);
        goto unlock;
    }
    has_state = query_param(r, "state", state, sizeof state);
    has_challenge = query_param(r, "code_challenge", challenge, sizeof challenge);
    has_method = query_param(r, "code_challenge_method", method, sizeof method);
    if (has_state < 0 || has_challenge < 0 || has_method < 0) {
        reply_text(&out, 400, "a parameter is too long");
        goto unlock;
    }
    if (has_challenge == 1 && challenge[0] != '\0') {
        if (has_method != 1 || strcmp(method, "S256") != 0) {
            reply_text(&out, 400, "code_challenge_method must be S256");
            goto unlock;
        }
        if (!challenge_valid(challenge)) {
            reply_text(&out, 400, "code_challenge must be 43 base64url characters");
            goto unlock;
        }
    } else {
        challenge[0] = '\0';
    }
    authorize(s, o, redirect_uri, state, has_state == 1, challenge, &out);
unlock:
    pthread_rwlock_unlock(&s->lock);
    return send_reply(s, r, &out, &hit);
}

/* ---------- GET /apps/{app_slug}/installations/new ---------- */

/* The org an install page stands for: its auth.app.app_slug is slug and its auth.oauth has
 * a callback URL to send the browser back to (GitHub only redirects after an installation
 * when the App has one). Orgs sharing a slug: the first in the store. Caller holds lock. */
static sim_org *org_by_app_slug(sim *s, const char *slug)
{
    for (size_t i = 0; i < s->norgs; i++) {
        const json_t *doc = s->orgs[i]->doc;
        const char *app_slug = casb_json_str(casb_json_path(doc, "auth.app"), "app_slug");
        if (app_slug && strcasecmp(app_slug, slug) == 0 &&
            casb_json_str(casb_json_path(doc, "auth.oauth"), "callback_url"))
            return s->orgs[i];
    }
    return NULL;
}

/* The user installed the App on the org (the page is answered at once, like authorize):
 * with "Request user authorization (OAuth) during installation" GitHub sends the browser
 * to the callback URL with a user-authorization code (no PKCE challenge) and the
 * installation; when an owner must approve the request, only with setup_action=request. */
static void install(sim *s, sim_org *o, const char *state, int has_state, oauth_reply *out)
{
    json_t *oauth = casb_json_path(o->doc, "auth.oauth");
    const char *callback_url = casb_json_str(oauth, "callback_url");
    const char *mode = casb_json_str(oauth, "install");
    const char *const requested[] = {"setup_action", "request", NULL};
    char code[24], installation_id[24];
    const char *const installed[] = {"code", code, "installation_id", installation_id,
                                     "setup_action", "install", NULL};

    if (mode && strcmp(mode, "request") == 0) {
        reply_redirect(out, callback_url, requested, state, has_state);
        casb_log_info("app installation requested", "org", o->login);
        return;
    }
    if (code_issue(s, o, callback_url, "", code, sizeof code) != 0) {
        reply_text(out, 500, "Server Error");
        return;
    }
    snprintf(installation_id, sizeof installation_id, "%lld",
             casb_json_int(casb_json_path(o->doc, "auth.app"), "installation_id", 0));
    reply_redirect(out, callback_url, installed, state, has_state);
    casb_log_info("app installed with oauth code", "org", o->login, "installation_id",
                  installation_id);
}

static int h_install(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    oauth_reply out = {0};
    sim_fault_hit hit = {.mode = SIM_FAULT_NONE};
    char state[MAX_URI_BYTES];
    int has_state;
    sim_org *o;

    pthread_rwlock_rdlock(&s->lock);
    o = org_by_app_slug(s, casb_http_param(r, "app_slug"));
    if (!page_begin(s, r, o, "GET /apps/{slug}/installations/new", &out, &hit))
        goto unlock;
    has_state = query_param(r, "state", state, sizeof state);
    if (has_state < 0) {
        reply_text(&out, 400, "a parameter is too long");
        goto unlock;
    }
    install(s, o, state, has_state == 1, &out);
unlock:
    pthread_rwlock_unlock(&s->lock);
    return send_reply(s, r, &out, &hit);
}

/* ---------- POST /login/oauth/access_token ---------- */

/* The request's parameters: GitHub takes them form-encoded or as JSON in the body, or in
 * the query string. */
typedef struct {
    casb_http_req *r;
    const char *body;
    size_t body_len;
    json_t *json; /* the body when it is a JSON object */
} token_params;

/* A parameter into buf: 1 present, 0 absent, -1 too long. */
static int param(const token_params *p, const char *name, char *buf, size_t len)
{
    buf[0] = '\0';
    if (p->json) {
        json_t *v = json_object_get(p->json, name);
        if (json_is_string(v)) {
            if (json_string_length(v) >= len)
                return -1;
            snprintf(buf, len, "%s", json_string_value(v));
            return 1;
        }
        if (v)
            return 0;
    } else if (p->body && p->body_len > 0) {
        int n = mg_get_var2(p->body, p->body_len, name, buf, len, 0);
        if (n >= 0)
            return 1;
        if (n != -1)
            return -1;
    }
    return casb_http_query(p->r, name, buf, len);
}

static int wants_json(casb_http_req *r)
{
    const char *accept = casb_http_header(r, "Accept");

    return accept && strcasestr(accept, "application/json") != NULL;
}

/* BASE64URL(SHA-256(verifier)) == challenge (RFC 7636 §4.6). */
static int verifier_matches(const char *verifier, const char *challenge)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *computed;
    int ok;

    if (!verifier[0] ||
        EVP_Digest(verifier, strlen(verifier), md, &mdlen, EVP_sha256(), NULL) != 1)
        return 0;
    computed = casb_base64url_encode(md, mdlen);
    ok = computed && casb_secure_equal(computed, challenge);
    free(computed);
    return ok;
}

/* Issues an access and a refresh token of one new grant and answers them. Caller holds lock
 * and mu. */
static void grant_tokens(sim *s, sim_org *o, int want_json, oauth_reply *out)
{
    long long access_ttl_s = ttl_of(o, "access_token_ttl_s", DEFAULT_ACCESS_TTL_S);
    long long refresh_ttl_s = ttl_of(o, "refresh_token_ttl_s", DEFAULT_REFRESH_TTL_S);
    long long grant_id = ++s->next_grant_id;
    time_t now = time(NULL);
    char access[96], refresh[96];

    purge_expired(s, now);
    if (user_token_add(s, o, 0, grant_id, access_ttl_s, now, access, sizeof access) != 0 ||
        user_token_add(s, o, 1, grant_id, refresh_ttl_s, now, refresh, sizeof refresh) != 0) {
        reply_text(out, 500, "Server Error");
        return;
    }
    o->oauth_tokens_issued++;
    reply_token(out, want_json,
                json_pack("{s:s, s:I, s:s, s:I, s:s, s:s}", "access_token", access, "expires_in",
                          (json_int_t)access_ttl_s, "refresh_token", refresh,
                          "refresh_token_expires_in", (json_int_t)refresh_ttl_s, "token_type",
                          "bearer", "scope", ""));
    memset(access, 0, sizeof access);
    memset(refresh, 0, sizeof refresh);
}

static void code_grant(sim *s, sim_org *o, const token_params *p, int want_json,
                       oauth_reply *out)
{
    char code[64], redirect_uri[MAX_URI_BYTES], verifier[MAX_VALUE_BYTES];
    int has_redirect = param(p, "redirect_uri", redirect_uri, sizeof redirect_uri);
    time_t now = time(NULL);
    sim_oauth_code *c = NULL;
    size_t i;

    if (has_redirect == 1 && !redirect_allowed(o, redirect_uri)) {
        reply_grant_error(out, want_json, "redirect_uri_mismatch", MSG_REDIRECT_MISMATCH,
                          "redirect-uri-mismatch2", DOCS_AUTHORIZE_ERRORS);
        return;
    }
    if (param(p, "code", code, sizeof code) != 1 || has_redirect < 0 ||
        param(p, "code_verifier", verifier, sizeof verifier) < 0) {
        reply_grant_error(out, want_json, "bad_verification_code", MSG_BAD_CODE,
                          "bad-verification-code", NULL);
        return;
    }
    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->ncodes; i++) {
        if (strcmp(s->codes[i].code, code) == 0) {
            c = &s->codes[i];
            break;
        }
    }
    if (!c || c->expires_at <= now || strcmp(c->client_id, client_id_of(o->doc)) != 0 ||
        strcasecmp(c->login, o->login) != 0) {
        reply_grant_error(out, want_json, "bad_verification_code", MSG_BAD_CODE,
                          "bad-verification-code", NULL);
        goto out;
    }
    if (has_redirect == 1 && strcmp(redirect_uri, c->redirect_uri) != 0) {
        reply_grant_error(out, want_json, "redirect_uri_mismatch", MSG_REDIRECT_MISMATCH,
                          "redirect-uri-mismatch2", DOCS_AUTHORIZE_ERRORS);
        goto out;
    }
    if (c->challenge[0] && !verifier_matches(verifier, c->challenge)) {
        reply_grant_error(out, want_json, "bad_verification_code", MSG_BAD_CODE,
                          "bad-verification-code", NULL);
        goto out;
    }
    /* Single use: gone before the tokens exist, so a replay finds nothing. */
    codes_remove(s, i);
    o->oauth_codes_redeemed++;
    grant_tokens(s, o, want_json, out);
    casb_log_info("oauth code redeemed", "org", o->login);
out:
    pthread_mutex_unlock(&s->mu);
}

static void refresh_grant(sim *s, sim_org *o, const token_params *p, int want_json,
                          oauth_reply *out)
{
    char token[128];
    time_t now = time(NULL);
    const char *client_id = client_id_of(o->doc);
    long long grant_id = -1;

    if (param(p, "refresh_token", token, sizeof token) != 1) {
        reply_grant_error(out, want_json, "bad_refresh_token", MSG_BAD_REFRESH,
                          "bad-verification-code", NULL);
        return;
    }
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nuser_tokens; i++) {
        const sim_user_token *t = &s->user_tokens[i];
        if (!t->is_refresh || strcmp(t->token, token) != 0)
            continue;
        if (t->expires_at > now && strcmp(t->client_id, client_id) == 0 &&
            strcasecmp(t->login, o->login) == 0)
            grant_id = t->grant_id;
        break;
    }
    if (grant_id < 0) {
        /* GitHub's answer points at the bad_verification_code section: kept as it is. */
        reply_grant_error(out, want_json, "bad_refresh_token", MSG_BAD_REFRESH,
                          "bad-verification-code", NULL);
        goto out;
    }
    /* "Once you use a refresh token, that refresh token and the old user access token will
     * no longer work." */
    for (size_t i = s->nuser_tokens; i > 0; i--) {
        if (s->user_tokens[i - 1].grant_id == grant_id)
            user_tokens_remove(s, i - 1);
    }
    o->oauth_refreshes++;
    grant_tokens(s, o, want_json, out);
    casb_log_info("oauth tokens refreshed", "org", o->login);
out:
    pthread_mutex_unlock(&s->mu);
    memset(token, 0, sizeof token);
}

static void access_token(sim *s, sim_org *o, const token_params *p, int want_json,
                         oauth_reply *out)
{
    char secret[MAX_VALUE_BYTES], grant_type[128];
    const char *expected = casb_json_str(casb_json_path(o->doc, "auth.oauth"), "client_secret");
    int has_grant;

    if (param(p, "client_secret", secret, sizeof secret) != 1 ||
        !casb_secure_equal(secret, expected)) {
        memset(secret, 0, sizeof secret);
        reply_grant_error(out, want_json, "incorrect_client_credentials", MSG_BAD_CLIENT,
                          "incorrect-client-credentials", NULL);
        return;
    }
    memset(secret, 0, sizeof secret);
    has_grant = param(p, "grant_type", grant_type, sizeof grant_type);
    if (has_grant != 1 || strcmp(grant_type, "authorization_code") == 0) {
        code_grant(s, o, p, want_json, out);
        return;
    }
    if (strcmp(grant_type, "refresh_token") == 0) {
        refresh_grant(s, o, p, want_json, out);
        return;
    }
    reply_grant_error(out, want_json, "unsupported_grant_type",
                      "The grant type passed is not supported.", "unsupported-grant-type", NULL);
}

static int h_access_token(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    oauth_reply out = {0};
    sim_fault_hit hit = {.mode = SIM_FAULT_NONE};
    token_params p = {.r = r};
    const char *ctype = casb_http_header(r, "Content-Type");
    int want_json = wants_json(r);
    char client_id[MAX_VALUE_BYTES];
    sim_org *o;
    int rc;

    p.body = casb_http_body(r, &p.body_len);
    if (ctype && strncasecmp(ctype, "application/json", 16) == 0 && p.body && p.body_len > 0) {
        p.json = casb_json_parse(p.body, p.body_len, 8, NULL, 0);
        if (!json_is_object(p.json)) {
            json_decref(p.json);
            reply_text(&out, 400, "Problems parsing JSON");
            return send_reply(s, r, &out, &hit);
        }
    }
    pthread_rwlock_rdlock(&s->lock);
    o = param(&p, "client_id", client_id, sizeof client_id) == 1 ? org_by_client_id(s, client_id)
                                                                   : NULL;
    if (!o) {
        reply_grant_error(&out, want_json, "incorrect_client_credentials", MSG_BAD_CLIENT,
                          "incorrect-client-credentials", NULL);
        goto unlock;
    }
    hit = draw_fault(s, o, r, "POST /login/oauth/access_token", &out);
    if (!is_answering_fault(&hit))
        access_token(s, o, &p, want_json, &out);
unlock:
    pthread_rwlock_unlock(&s->lock);
    json_decref(p.json);
    rc = send_reply(s, r, &out, &hit);
    return rc;
}

int sim_oauth_routes(sim *s, casb_http_server *http)
{
    (void)s;
    if (casb_http_route(http, "GET", "/login/oauth/authorize", h_authorize, CASB_ROUTE_PUBLIC) != 0 ||
        casb_http_route(http, "POST", "/login/oauth/access_token", h_access_token,
                        CASB_ROUTE_PUBLIC) != 0 ||
        casb_http_route(http, "GET", "/apps/{app_slug}/installations/new", h_install,
                        CASB_ROUTE_PUBLIC) != 0)
        return -1;
    return 0;
}
