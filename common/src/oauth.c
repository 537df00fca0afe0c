#include "casb/oauth.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/json.h"
#include "casb/timeutil.h"

/* A token answer is a handful of members (Slack's nests a team and a user object); anything
 * deeper or bigger is not a token response, and refusing it keeps a hostile endpoint from
 * making us parse megabytes. */
#define ANSWER_MAX_DEPTH 8
#define ANSWER_MAX_BYTES (64 * 1024)
/* Caps of what a provider's error may put into our messages (they end up in API answers). */
#define ERROR_CODE_MAX 64
#define ERROR_DESC_MAX 200
/* A lifetime beyond this is not a lifetime (and now_s + it must not overflow). */
#define LIFETIME_MAX_S (100LL * 366 * 24 * 3600)

#define FORM_CONTENT_TYPE "application/x-www-form-urlencoded"

/* ---- a growing string that may hold secrets ---- */

/* Appends "name=<percent-encoded value>", preceded by '&' unless the buffer is empty or
 * already ends with a separator ('?' or '&'), so that one helper builds both a query
 * string after a base URL and a form body. The encoded copy is wiped: it may be a secret. */
static int buf_param(casb_text *b, const char *name, const char *value)
{
    char *enc;
    int rc;

    if (b->len > 0 && b->data[b->len - 1] != '?' && b->data[b->len - 1] != '&') {
        if (casb_text_append_str(b, "&") != 0)
            return -1;
    }
    enc = casb_http_escape(value);
    if (!enc)
        return -1;
    rc = casb_text_append_str(b, name);
    if (rc == 0)
        rc = casb_text_append_str(b, "=");
    if (rc == 0)
        rc = casb_text_append_str(b, enc);
    casb_secret_wipe(enc, strlen(enc));
    free(enc);
    return rc;
}

/* ---- random values, PKCE, the authorize URL ---- */

int casb_oauth_random(char out[CASB_OAUTH_RANDOM_LEN + 1])
{
    unsigned char raw[32];
    char *enc = NULL;
    int rc = -1;

    out[0] = '\0';
    if (casb_random_bytes(raw, sizeof(raw)) != 0)
        goto out;
    enc = casb_base64url_encode(raw, sizeof(raw));
    if (!enc || strlen(enc) != CASB_OAUTH_RANDOM_LEN)
        goto out;
    memcpy(out, enc, CASB_OAUTH_RANDOM_LEN + 1);
    rc = 0;
out:
    casb_secret_wipe(raw, sizeof(raw));
    if (enc) {
        casb_secret_wipe(enc, strlen(enc));
        free(enc);
    }
    return rc;
}

/* RFC 7636 §4.2: the challenge is computed over the ASCII octets of the verifier. On a
 * failure that cannot happen with a working libcrypto (or no memory) out is "", which no
 * provider accepts, so the flow fails visibly instead of going on without PKCE. */
void casb_oauth_pkce_challenge(const char *verifier, char out[CASB_OAUTH_RANDOM_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *enc = NULL;

    out[0] = '\0';
    if (!verifier)
        return;
    if (EVP_Digest(verifier, strlen(verifier), md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != 32)
        return;
    enc = casb_base64url_encode(md, mdlen);
    if (enc && strlen(enc) == CASB_OAUTH_RANDOM_LEN)
        memcpy(out, enc, CASB_OAUTH_RANDOM_LEN + 1);
    free(enc);
}

/* Parameters whose value is NULL are left out (a GitHub App install takes neither scope
 * nor, when the App has one registered, redirect_uri). */
char *casb_oauth_authorize_url(const char *authorize_url, const char *client_id,
                               const char *redirect_uri, const char *state, const char *scope,
                               const char *code_challenge, const char *extra)
{
    casb_text b = {.secret = 1};
    int rc = 0;

    if (!authorize_url)
        return NULL;
    rc = casb_text_append_str(&b, authorize_url);
    if (rc == 0 && !strchr(authorize_url, '?'))
        rc = casb_text_append_str(&b, "?");
    if (rc == 0)
        rc = buf_param(&b, "response_type", "code");
    if (rc == 0 && client_id)
        rc = buf_param(&b, "client_id", client_id);
    if (rc == 0 && redirect_uri)
        rc = buf_param(&b, "redirect_uri", redirect_uri);
    if (rc == 0 && scope && scope[0])
        rc = buf_param(&b, "scope", scope);
    if (rc == 0 && state)
        rc = buf_param(&b, "state", state);
    if (rc == 0 && code_challenge) {
        rc = buf_param(&b, "code_challenge", code_challenge);
        if (rc == 0)
            rc = buf_param(&b, "code_challenge_method", "S256");
    }
    if (rc == 0 && extra && extra[0]) {
        if (extra[0] != '&')
            rc = casb_text_append_str(&b, "&");
        if (rc == 0)
            rc = casb_text_append_str(&b, extra);
    }
    if (rc != 0) {
        casb_text_free(&b);
        return NULL;
    }
    return b.data;
}

/* ---- reading a token endpoint's answer ---- */

/* Decodes one form component ('+' is a space, %XX a byte) into a new string; *outlen gets
 * its length. NULL when out of memory or when it would decode to a NUL byte. */
static char *form_decode(const char *s, size_t n, size_t *outlen)
{
    char *out = malloc(n + 1);
    size_t o = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < n && casb_hex_value(s[i + 1]) >= 0 &&
                   casb_hex_value(s[i + 2]) >= 0) {
            c = (char)(casb_hex_value(s[i + 1]) * 16 + casb_hex_value(s[i + 2]));
            i += 2;
        }
        if (c == '\0') {
            casb_secret_wipe(out, o);
            free(out);
            return NULL;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

/* Reads an application/x-www-form-urlencoded answer ("access_token=...&token_type=bearer",
 * as GitHub sends when it ignores Accept) into a JSON object of strings, so that one reader
 * serves both shapes. NULL when it is not a well-formed form (a pair without '=', an empty
 * or repeated name, a value that is not UTF-8). */
static json_t *form_parse(const char *body, size_t len)
{
    json_t *obj = json_object();
    size_t i = 0;

    if (!obj)
        return NULL;
    while (i < len) {
        const char *pair = body + i;
        const char *amp = memchr(pair, '&', len - i);
        size_t plen = amp ? (size_t)(amp - pair) : len - i;
        const char *eq = memchr(pair, '=', plen);
        char *name = NULL;
        char *value = NULL;
        size_t nlen = 0;
        size_t vlen = 0;
        json_t *v = NULL;
        int ok = 0;

        i += plen + 1;
        if (plen == 0)
            continue;
        if (!eq || eq == pair)
            goto bad;
        name = form_decode(pair, (size_t)(eq - pair), &nlen);
        value = form_decode(eq + 1, plen - (size_t)(eq - pair) - 1, &vlen);
        if (name && value && json_object_get(obj, name) == NULL) {
            v = json_stringn(value, vlen);
            ok = v && json_object_set_new(obj, name, v) == 0;
        }
        free(name);
        if (value) {
            casb_secret_wipe(value, vlen);
            free(value);
        }
        if (!ok)
            goto bad;
    }
    return obj;
bad:
    json_decref(obj);
    return NULL;
}

static void free_json_wiped(json_t *answer)
{
    if (!answer)
        return;
    casb_json_wipe(answer);
    json_decref(answer);
}

/* The answer as a JSON object: JSON when it looks like JSON, whatever the Content-Type says;
 * form-encoded when the Content-Type says so. NULL when it is neither (or too big/deep). */
static json_t *parse_answer(const casb_http_response *resp)
{
    char ctype[128];
    size_t i = 0;

    if (!resp->body || resp->body_len == 0 || resp->body_len > ANSWER_MAX_BYTES)
        return NULL;
    while (i < resp->body_len && (resp->body[i] == ' ' || resp->body[i] == '\t' ||
                                  resp->body[i] == '\r' || resp->body[i] == '\n'))
        i++;
    if (i < resp->body_len && resp->body[i] == '{') {
        json_t *v = casb_json_parse(resp->body, resp->body_len, ANSWER_MAX_DEPTH, NULL, 0);

        if (v && !json_is_object(v)) {
            free_json_wiped(v);
            v = NULL;
        }
        return v;
    }
    if (casb_http_response_header(resp, "Content-Type", ctype, sizeof(ctype)) == 1 &&
        strncasecmp(ctype, FORM_CONTENT_TYPE, strlen(FORM_CONTENT_TYPE)) == 0)
        return form_parse(resp->body, resp->body_len);
    return NULL;
}

/* Copies at most max bytes of s into out, printable ASCII only (anything else becomes
 * '?'), so that a provider's message cannot inject control characters into logs. */
static void copy_printable(char *out, size_t outlen, const char *s, size_t max)
{
    size_t o = 0;

    for (size_t i = 0; s[i] && i < max && o + 1 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];

        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[o] = '\0';
}

/* 1 when text contains one of the secrets (NULL-terminated list; NULL and empty entries
 * are skipped). */
static int mentions_secret(const char *text, const char *const *secrets)
{
    for (const char *const *s = secrets; *s; s++) {
        if ((*s)[0] && strstr(text, *s))
            return 1;
    }
    return 0;
}

/* err = "<error>: <error_description>" from a refusing answer. A provider that echoes what
 * we sent (a code, a refresh token, our secret) does not get it into our messages: the
 * offending part is replaced. */
static int refusal(const json_t *answer, const char *const *secrets, char *err, size_t errlen)
{
    const char *code = casb_json_str(answer, "error");
    const char *desc = casb_json_str(answer, "error_description");
    char c[ERROR_CODE_MAX + 1] = "";
    char d[ERROR_DESC_MAX + 1] = "";

    if (code && code[0]) {
        copy_printable(c, sizeof(c), code, ERROR_CODE_MAX);
        if (mentions_secret(code, secrets))
            snprintf(c, sizeof(c), "%s", "error");
    } else {
        snprintf(c, sizeof(c), "%s", "error");
    }
    if (desc && desc[0]) {
        copy_printable(d, sizeof(d), desc, ERROR_DESC_MAX);
        if (mentions_secret(desc, secrets))
            snprintf(d, sizeof(d), "%s", "(description withheld: it quoted a credential)");
    }
    if (d[0])
        return casb_fail(err, errlen, CASB_EAUTH, "%s: %s", c, d);
    return casb_fail(err, errlen, CASB_EAUTH, "%s", c);
}

/* A lifetime in seconds: a JSON integer, a real, or a numeric string (some providers send
 * "expires_in": "3600"); 0 when absent, unreadable, not positive or absurd. */
static long long lifetime_s(const json_t *answer, const char *key)
{
    const json_t *v = json_object_get(answer, key);
    long long n = 0;

    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);

        n = (d > 0 && d < (double)LIFETIME_MAX_S) ? (long long)d : 0;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end = NULL;

        if (s[0] < '0' || s[0] > '9')
            return 0;
        n = strtoll(s, &end, 10);
        if (*end != '\0')
            return 0;
    }
    if (n <= 0 || n > LIFETIME_MAX_S)
        return 0;
    return n;
}

static int dup_into(char **dst, const char *s)
{
    *dst = strdup(s);
    return *dst ? 0 : -1;
}

/* Turns a token endpoint's answer into tokens; see casb_oauth_exchange_code for the
 * mapping of answers to return codes. old_refresh, when not NULL, is kept when the answer
 * carries no new refresh token. */
static int read_answer(const casb_http_response *resp, const char *const *secrets,
                       const char *old_refresh, long long now_s, casb_oauth_tokens *out,
                       char *err, size_t errlen)
{
    json_t *answer = NULL;
    const json_t *error;
    const char *access;
    const char *refresh;
    const char *scope;
    long long life;
    int rc = CASB_ERROR;

    /* A rate limit left after the client's retries is the provider being unavailable to us
     * now, not a judgement on the grant. */
    if (resp->status >= 500 || resp->status == 429)
        return casb_fail(err, errlen, CASB_EUNAVAILABLE, "token endpoint answered HTTP %ld",
                         resp->status);
    answer = parse_answer(resp);
    /* GitHub refuses with 200 and {"error": ...}, Slack with {"ok": false, "error": ...}, the
     * RFC with 400: any answer carrying an error is a refusal. */
    error = answer ? json_object_get(answer, "error") : NULL;
    if (error && !json_is_null(error) && !json_is_false(error)) {
        const char *all[8];
        size_t n = 0;

        for (const char *const *s = secrets; *s && n < 5; s++)
            all[n++] = *s;
        if (casb_json_str(answer, "access_token"))
            all[n++] = casb_json_str(answer, "access_token");
        if (casb_json_str(answer, "refresh_token"))
            all[n++] = casb_json_str(answer, "refresh_token");
        all[n] = NULL;
        rc = refusal(answer, all, err, errlen);
        goto out;
    }
    if (resp->status == 400 || resp->status == 401) {
        rc = casb_fail(err, errlen, CASB_EAUTH, "token endpoint refused the request (HTTP %ld)",
                       resp->status);
        goto out;
    }
    if (resp->status < 200 || resp->status > 299) {
        rc = casb_fail(err, errlen, CASB_ERROR, "token endpoint answered HTTP %ld",
                       resp->status);
        goto out;
    }
    if (!answer) {
        rc = casb_fail(err, errlen, CASB_ERROR,
                       "token endpoint answer is not a JSON object or form of bounded size");
        goto out;
    }
    access = casb_json_str(answer, "access_token");
    if (!access || !access[0]) {
        rc = casb_fail(err, errlen, CASB_ERROR, "token endpoint answer has no access_token");
        goto out;
    }
    refresh = casb_json_str(answer, "refresh_token");
    if (!refresh || !refresh[0])
        refresh = old_refresh;
    scope = casb_json_str(answer, "scope");
    if (dup_into(&out->access_token, access) != 0 ||
        (refresh && dup_into(&out->refresh_token, refresh) != 0) ||
        (scope && scope[0] && dup_into(&out->scope, scope) != 0)) {
        casb_oauth_tokens_clear(out);
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    life = lifetime_s(answer, "expires_in");
    out->expires_at = life ? now_s + life : 0;
    life = lifetime_s(answer, "refresh_token_expires_in");
    out->refresh_expires_at = life ? now_s + life : 0;
    rc = 0;
out:
    free_json_wiped(answer);
    return rc;
}

/* One field of a token request; secret ones are also kept out of error messages. */
typedef struct {
    const char *name;
    const char *value; /* NULL: left out */
    int secret;
} form_field;

/* POSTs the form to the client's token endpoint and reads the answer into *out. */
static int token_request(casb_http_client *http, const casb_oauth_client *client,
                         const form_field *fields, size_t nfields, const char *old_refresh,
                         long long now_s, casb_oauth_tokens *out, char *err, size_t errlen)
{
    static const char *const headers[] = {"Content-Type: " FORM_CONTENT_TYPE,
                                           "Accept: application/json", NULL};
    const char *secrets[6];
    size_t nsecrets = 0;
    casb_oauth_tokens got = {0};
    casb_http_response *resp = NULL;
    char neterr[256] = "";
    casb_text body = {.secret = 1};
    int rc = CASB_ERROR;

    if (!http || !client || !client->token_url || !client->client_id || !out)
        return casb_fail(err, errlen, CASB_EINVALID, "OAuth client is incomplete");
    for (size_t i = 0; i < nfields; i++) {
        if (!fields[i].value)
            continue;
        if (buf_param(&body, fields[i].name, fields[i].value) != 0)
            goto oom;
        if (fields[i].secret && nsecrets < 4)
            secrets[nsecrets++] = fields[i].value;
    }
    if (buf_param(&body, "client_id", client->client_id) != 0)
        goto oom;
    if (client->client_secret) {
        if (buf_param(&body, "client_secret", client->client_secret) != 0)
            goto oom;
        secrets[nsecrets++] = client->client_secret;
    }
    secrets[nsecrets] = NULL;
    if (casb_http_request(http, &resp, "POST", client->token_url, headers, body.data, body.len,
                          neterr, sizeof(neterr)) != 0) {
        rc = casb_fail(err, errlen, CASB_EUNAVAILABLE, "token endpoint unreachable: %s",
                       neterr);
        goto out;
    }
    rc = read_answer(resp, secrets, old_refresh, now_s, &got, err, errlen);
    if (rc == 0) {
        *out = got;
        memset(&got, 0, sizeof(got));
    }
    goto out;
oom:
    rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
out:
    if (resp && resp->body)
        casb_secret_wipe(resp->body, resp->body_len);
    casb_http_response_free(resp);
    casb_text_free(&body);
    casb_oauth_tokens_clear(&got);
    return rc;
}

/* *out is written only on success, and must not hold tokens then (they would be lost). */
int casb_oauth_exchange_code(casb_http_client *http, const casb_oauth_client *client,
                             const char *code, const char *redirect_uri,
                             const char *code_verifier, long long now_s, casb_oauth_tokens *out,
                             char *err, size_t errlen)
{
    const form_field fields[] = {
        {"grant_type", "authorization_code", 0},
        {"code", code, 1},
        {"redirect_uri", redirect_uri, 0},
        {"code_verifier", code_verifier, 1},
    };

    if (!code || !code[0])
        return casb_fail(err, errlen, CASB_EINVALID, "no authorization code");
    return token_request(http, client, fields, sizeof(fields) / sizeof(fields[0]), NULL, now_s,
                         out, err, errlen);
}

/* Same contract for *out as casb_oauth_exchange_code. */
int casb_oauth_refresh(casb_http_client *http, const casb_oauth_client *client,
                       const char *refresh_token, long long now_s, casb_oauth_tokens *out,
                       char *err, size_t errlen)
{
    const form_field fields[] = {
        {"grant_type", "refresh_token", 0},
        {"refresh_token", refresh_token, 1},
    };

    if (!refresh_token || !refresh_token[0])
        return casb_fail(err, errlen, CASB_EINVALID, "no refresh token");
    return token_request(http, client, fields, sizeof(fields) / sizeof(fields[0]),
                         refresh_token, now_s, out, err, errlen);
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    casb_secret_wipe(s, strlen(s));
    free(s);
}

void casb_oauth_tokens_clear(casb_oauth_tokens *t)
{
    if (!t)
        return;
    wipe_free(t->access_token);
    wipe_free(t->refresh_token);
    wipe_free(t->scope);
    memset(t, 0, sizeof(*t));
}

/* ---- the stored form ---- */

static int set_time(json_t *obj, const char *key, long long epoch_s)
{
    char when[32];

    if (epoch_s <= 0)
        return 0;
    casb_time_rfc3339(when, sizeof(when), (time_t)epoch_s);
    return casb_json_set_str(obj, key, when);
}

json_t *casb_oauth_credentials(const casb_oauth_tokens *t)
{
    json_t *c = json_object();
    int rc = 0;

    if (!c || !t)
        goto fail;
    rc = json_object_set_new(c, "oauth", json_true());
    if (rc == 0 && t->access_token)
        rc = casb_json_set_str(c, "access_token", t->access_token);
    if (rc == 0 && t->refresh_token)
        rc = casb_json_set_str(c, "refresh_token", t->refresh_token);
    if (rc == 0)
        rc = set_time(c, "expires_at", t->expires_at);
    if (rc == 0)
        rc = set_time(c, "refresh_token_expires_at", t->refresh_expires_at);
    if (rc == 0 && t->scope)
        rc = casb_json_set_str(c, "scope", t->scope);
    if (rc != 0)
        goto fail;
    return c;
fail:
    if (c)
        free_json_wiped(c);
    return NULL;
}

int casb_oauth_is_credentials(const json_t *credentials)
{
    const char *access = casb_json_str(credentials, "access_token");

    return json_is_true(json_object_get(credentials, "oauth")) && access && access[0];
}

long long casb_oauth_expires_at(const json_t *credentials)
{
    const char *s = casb_json_str(credentials, "expires_at");
    time_t t = 0;

    if (!s || casb_time_parse(s, &t) != 0 || t <= 0)
        return 0;
    return (long long)t;
}
