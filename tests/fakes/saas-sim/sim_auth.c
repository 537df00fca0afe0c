/* GitHub-style authentication: static tokens from the tenant, installation tokens issued by
 * POST /app/installations/{id}/access_tokens, user access tokens of the OAuth web flow
 * (sim_oauth.c), and App JWTs (RS256, iss = app id). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "casb/json.h"
#include "casb/jwt.h"
#include "casb/log.h"
#include "sim.h"

#define JWT_LEEWAY_S 60
#define JWT_MAX_LIFETIME_S 600 /* GitHub: exp no more than 10 minutes into the future */
#define DEFAULT_TOKEN_TTL_S 3600
#define MSG_JWT_UNDECODABLE "A JSON web token could not be decoded"
#define MSG_JWT_EXP                                                                            \
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at " \
    "which the assertion expires"
#define MSG_JWT_EXP_FAR "'Expiration time' claim ('exp') is too far in the future"
#define MSG_JWT_IAT                                                                            \
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion " \
    "was issued"

int sim_credential_parse(const char *header, sim_credential *out)
{
    const char *p = header;
    size_t len;

    memset(out, 0, sizeof *out);
    if (!header)
        return -1;
    while (*p == ' ')
        p++;
    if (strncasecmp(p, "bearer ", 7) == 0)
        p += 7;
    else if (strncasecmp(p, "token ", 6) == 0)
        p += 6;
    else
        return -1;
    while (*p == ' ')
        p++;
    len = strlen(p);
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    if (len == 0)
        return -1;
    out->value = p;
    out->len = len;
    /* A JWT is three base64url parts; its header always starts with {" = "eyJ". */
    size_t dots = 0;
    for (size_t i = 0; i < len; i++)
        dots += p[i] == '.';
    out->is_jwt = dots == 2 && len > 3 && strncmp(p, "eyJ", 3) == 0;
    return 0;
}

static int cred_equals(const sim_credential *c, const char *s)
{
    return s && strlen(s) == c->len && memcmp(c->value, s, c->len) == 0;
}

static int org_has_static(const sim_org *o, const sim_credential *c)
{
    json_t *tokens = casb_json_path(o->doc, "auth.tokens");
    size_t i;
    json_t *t;

    json_array_foreach(tokens, i, t) {
        if (cred_equals(c, json_string_value(t)))
            return 1;
    }
    return 0;
}

/* The org an issued installation token still belongs to: its org must exist and still have
 * the same installation. Caller holds lock and mu. */
static sim_org *issued_owner(sim *s, const sim_issued_token *t)
{
    sim_org *o = sim_org_find(s, t->login);

    if (!o || casb_json_int(casb_json_path(o->doc, "auth.app"), "installation_id", -1) !=
                  t->installation_id)
        return NULL;
    return o;
}

/* Finds which org a token (not a JWT) belongs to. Caller holds lock. */
sim_org *sim_auth_find_org(sim *s, const sim_credential *c, int *is_installation)
{
    sim_org *found = NULL;
    time_t now = time(NULL);

    *is_installation = 0;
    for (size_t i = 0; i < s->norgs; i++) {
        if (org_has_static(s->orgs[i], c))
            return s->orgs[i];
    }
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->ntokens; i++) {
        if (!cred_equals(c, s->tokens[i].token))
            continue;
        if (s->tokens[i].expires_at > now)
            found = issued_owner(s, &s->tokens[i]);
        break;
    }
    if (found) {
        *is_installation = 1;
    } else {
        /* A user access token from the OAuth web flow acts like a static token of its org. */
        found = sim_oauth_token_owner(s, c);
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

sim_auth_result sim_auth_token(sim *s, sim_org *o, const sim_credential *c, int *is_installation)
{
    sim_org *owner;

    if (!c->value)
        return SIM_AUTH_NONE;
    if (c->is_jwt)
        return SIM_AUTH_BAD;
    owner = sim_auth_find_org(s, c, is_installation);
    if (!owner)
        return SIM_AUTH_BAD;
    return owner == o ? SIM_AUTH_OK : SIM_AUTH_OTHER_ORG;
}

static int b64url_value(int ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '-')
        return 62;
    if (ch == '_')
        return 63;
    return -1;
}

/* Decodes unpadded base64url; *out is malloc'ed and NUL-terminated. */
static int b64url_decode(const char *in, size_t len, char **out, size_t *outlen)
{
    char *buf = malloc(len * 3 / 4 + 4);
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;

    if (!buf)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0) {
            free(buf);
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
}

/* The claims of a JWT read before verification, to answer with GitHub's precise messages. */
static json_t *peek_claims(const char *jwt)
{
    const char *dot1 = strchr(jwt, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    char *payload = NULL;
    size_t len = 0;
    json_t *claims;

    if (!dot2 || b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload, &len) != 0)
        return NULL;
    claims = casb_json_parse(payload, len, 8, NULL, 0);
    free(payload);
    if (!json_is_object(claims)) {
        json_decref(claims);
        return NULL;
    }
    return claims;
}

/* iss may be the numeric app id (as a number or a string) or the app's client id. */
static int iss_matches(const json_t *iss, const json_t *app)
{
    long long app_id = casb_json_int(app, "app_id", -1);
    const char *client_id = casb_json_str(app, "client_id");

    if (json_is_integer(iss))
        return json_integer_value(iss) == app_id;
    if (!json_is_string(iss))
        return 0;
    if (client_id && strcmp(json_string_value(iss), client_id) == 0)
        return 1;
    const char *p = json_string_value(iss);
    char *end = NULL;
    long long v = strtoll(p, &end, 10);
    return *p && end && *end == '\0' && v == app_id;
}

static sim_auth_result jwt_fail(char *msg, size_t msglen, const char *text)
{
    snprintf(msg, msglen, "%s", text);
    return SIM_AUTH_BAD;
}

sim_auth_result sim_auth_jwt(sim *s, const sim_org *o, const sim_credential *c, char *msg,
                             size_t msglen)
{
    json_t *app = casb_json_path(o->doc, "auth.app");
    const char *pem = casb_json_str(app, "public_key_pem");
    json_t *claims = NULL, *verified = NULL, *v;
    char *jwt = NULL;
    char err[256];
    long long now = (long long)time(NULL);
    sim_auth_result rc = SIM_AUTH_BAD;

    if (!c->value)
        return SIM_AUTH_NONE;
    if (!c->is_jwt)
        return jwt_fail(msg, msglen, MSG_JWT_UNDECODABLE);
    if (!json_is_object(app))
        return jwt_fail(msg, msglen, "Integration not found");
    if (!pem)
        pem = s->app_public_key_pem;
    if (!pem) {
        casb_log_warn("no public key for the org's app: pass --github-app-public-key", "org",
                      o->login);
        return jwt_fail(msg, msglen, MSG_JWT_UNDECODABLE);
    }
    jwt = strndup(c->value, c->len);
    if (!jwt)
        return jwt_fail(msg, msglen, MSG_JWT_UNDECODABLE);
    claims = peek_claims(jwt);
    if (!claims) {
        rc = jwt_fail(msg, msglen, MSG_JWT_UNDECODABLE);
        goto out;
    }
    v = json_object_get(claims, "exp");
    if (!json_is_number(v) || (long long)json_number_value(v) <= now) {
        rc = jwt_fail(msg, msglen, MSG_JWT_EXP);
        goto out;
    }
    if ((long long)json_number_value(v) > now + JWT_MAX_LIFETIME_S + JWT_LEEWAY_S) {
        rc = jwt_fail(msg, msglen, MSG_JWT_EXP_FAR);
        goto out;
    }
    v = json_object_get(claims, "iat");
    if (!json_is_integer(v) || json_integer_value(v) > now + JWT_LEEWAY_S) {
        rc = jwt_fail(msg, msglen, MSG_JWT_IAT);
        goto out;
    }
    if (casb_jwt_verify_rs256(&verified, jwt, pem, JWT_LEEWAY_S, err, sizeof err) != 0) {
        casb_log_debug("app JWT rejected", "org", o->login, "reason", err);
        rc = jwt_fail(msg, msglen, MSG_JWT_UNDECODABLE);
        goto out;
    }
    if (!iss_matches(json_object_get(verified, "iss"), app)) {
        /* Signed by this app's key but naming another app: that app is not installed here. */
        snprintf(msg, msglen, "Not Found");
        rc = SIM_AUTH_OTHER_ORG;
        goto out;
    }
    rc = SIM_AUTH_OK;
out:
    json_decref(claims);
    json_decref(verified);
    free(jwt);
    return rc;
}

static void purge_expired(sim *s, time_t now)
{
    size_t kept = 0;

    for (size_t i = 0; i < s->ntokens; i++) {
        if (s->tokens[i].expires_at > now) {
            s->tokens[kept++] = s->tokens[i];
            continue;
        }
        free(s->tokens[i].login);
    }
    s->ntokens = kept;
}

int sim_token_issue(sim *s, const sim_org *o, char *token, size_t tokenlen, time_t *expires_at)
{
    static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    json_t *app = casb_json_path(o->doc, "auth.app");
    long long ttl_s = casb_json_int(app, "token_ttl_s", DEFAULT_TOKEN_TTL_S);
    time_t now = time(NULL);
    sim_issued_token *t;
    int rc = -1;

    if (tokenlen < 41)
        return -1;
    pthread_mutex_lock(&s->mu);
    purge_expired(s, now);
    if (s->ntokens == s->tokens_cap) {
        size_t cap = s->tokens_cap ? s->tokens_cap * 2 : 16;
        sim_issued_token *grown = realloc(s->tokens, cap * sizeof *grown);
        if (!grown)
            goto out;
        s->tokens = grown;
        s->tokens_cap = cap;
    }
    t = &s->tokens[s->ntokens];
    memset(t, 0, sizeof *t);
    memcpy(t->token, "ghs_", 4);
    for (int i = 0; i < 36; i++)
        t->token[4 + i] = ALNUM[sim_prng_next(&s->token_prng) % (sizeof ALNUM - 1)];
    t->token[40] = '\0';
    t->login = strdup(o->login);
    if (!t->login)
        goto out;
    t->installation_id = casb_json_int(app, "installation_id", -1);
    t->expires_at = now + (time_t)(ttl_s > 0 ? ttl_s : DEFAULT_TOKEN_TTL_S);
    s->ntokens++;
    snprintf(token, tokenlen, "%s", t->token);
    *expires_at = t->expires_at;
    rc = 0;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}
