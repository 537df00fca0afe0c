#include "fa_webhook.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/error.h"
#include "casb/json.h"

static int invalid(char *field, size_t fieldlen, const char *name, char *err, size_t errlen,
                   const char *detail)
{
    snprintf(field, fieldlen, "%s", name);
    snprintf(err, errlen, "%s %s", name, detail);
    return -1;
}

/* ---- members ---- */

static int parse_name(fa_webhook_input *in, const json_t *v, char *field, size_t fieldlen,
                      char *err, size_t errlen)
{
    long len = json_is_string(v) ? casb_json_display_length(v) : -2;

    if (len == -2)
        return invalid(field, fieldlen, "name", err, errlen, "must be a string");
    if (len < 0)
        return invalid(field, fieldlen, "name", err, errlen, "must not contain control characters");
    if (len < 1 || len > FA_WEBHOOK_NAME_MAX_CHARS)
        return invalid(field, fieldlen, "name", err, errlen, "must have 1 to 200 characters");
    in->name = json_string_value(v);
    return 0;
}

/* The syntax only: where the URL leads is the egress guard's question (casb/netguard.h),
 * asked by the route with the network at hand. */
static int parse_url(fa_webhook_input *in, const json_t *v, char *field, size_t fieldlen,
                     char *err, size_t errlen)
{
    const char *url = json_string_value(v);
    const char *host, *end;

    if (!url || json_string_length(v) > FA_WEBHOOK_URL_MAX || casb_json_display_length(v) < 0)
        return invalid(field, fieldlen, "url", err, errlen,
                       "must be an http(s) URL of at most 2048 bytes");
    if (strncmp(url, "https://", 8) == 0)
        host = url + 8;
    else if (strncmp(url, "http://", 7) == 0)
        host = url + 7;
    else
        return invalid(field, fieldlen, "url", err, errlen, "must start with https:// or http://");
    end = host + strcspn(host, "/?#");
    if (end == host)
        return invalid(field, fieldlen, "url", err, errlen, "has no host");
    if (memchr(host, '@', (size_t)(end - host)))
        return invalid(field, fieldlen, "url", err, errlen,
                       "must not carry credentials (use auth)");
    if (strchr(url, '#') || strchr(url, ' '))
        return invalid(field, fieldlen, "url", err, errlen,
                       "must not contain a fragment or a space");
    in->url = url;
    return 0;
}

/* A non-empty string member of auth, at most max bytes, without control characters. */
static const char *auth_string(const json_t *auth, const char *key, size_t max, char *field,
                               size_t fieldlen, char *err, size_t errlen)
{
    const json_t *v = json_object_get(auth, key);
    char name[32];

    snprintf(name, sizeof(name), "auth.%s", key);
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
        casb_json_display_length(v) < 0) {
        char detail[96];

        snprintf(detail, sizeof(detail),
                 "is required: a string of 1 to %zu bytes without control characters", max);
        invalid(field, fieldlen, name, err, errlen, detail);
        return NULL;
    }
    return json_string_value(v);
}

/* auth must hold "type" and exactly the given members, those marked optional may be absent. */
static int auth_members_only(const json_t *auth, const char *const *allowed, char *field,
                             size_t fieldlen, char *err, size_t errlen)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)auth, key, v) {
        int known = strcmp(key, "type") == 0;

        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp(key, *a) == 0;
        if (!known) {
            char name[64];

            snprintf(name, sizeof(name), "auth.%.*s", casb_utf8_prefix_len(key, 50), key);
            return invalid(field, fieldlen, name, err, errlen, "is not a member of this auth type");
        }
    }
    return 0;
}

static int is_tchar(unsigned char c)
{
    return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c);
}

/* Headers the delivery sets itself, which a static header must not replace. */
static int header_reserved(const char *name)
{
    static const char *const reserved[] = {"content-type", "content-length", "host",
                                           "transfer-encoding", "connection", "expect",
                                           "idempotency-key", "user-agent", NULL};

    if (strncasecmp(name, "x-casb-", 7) == 0)
        return 1;
    for (const char *const *r = reserved; *r; r++) {
        if (strcasecmp(name, *r) == 0)
            return 1;
    }
    return 0;
}

static int check_header(const char *name, const json_t *value, char *field, size_t fieldlen,
                        char *err, size_t errlen)
{
    char member[96];

    snprintf(member, sizeof(member), "auth.headers.%.*s", casb_utf8_prefix_len(name, 64), name);
    if (*name == '\0' || strlen(name) > 64)
        return invalid(field, fieldlen, "auth.headers", err, errlen,
                       "names must have 1 to 64 characters");
    for (const char *p = name; *p; p++) {
        if (!is_tchar((unsigned char)*p))
            return invalid(field, fieldlen, member, err, errlen, "is not a valid header name");
    }
    if (header_reserved(name))
        return invalid(field, fieldlen, member, err, errlen,
                       "is set by every delivery and cannot be configured");
    if (!json_is_string(value) || json_string_length(value) == 0 ||
        json_string_length(value) > 4096 || casb_json_display_length(value) < 0)
        return invalid(field, fieldlen, member, err, errlen,
                       "must be a string of 1 to 4096 bytes without control characters");
    return 0;
}

static int parse_headers(fa_webhook_input *in, const json_t *auth, char *field,
                         size_t fieldlen, char *err, size_t errlen)
{
    const json_t *headers = json_object_get(auth, "headers");
    json_t *names = json_array();
    const char *name;
    json_t *value;

    if (!json_is_object(headers) || json_object_size(headers) == 0 ||
        json_object_size(headers) > FA_WEBHOOK_HEADERS_MAX) {
        json_decref(names);
        return invalid(field, fieldlen, "auth.headers", err, errlen,
                       "must be an object of 1 to 20 header names to values");
    }
    json_object_foreach((json_t *)headers, name, value) {
        if (check_header(name, value, field, fieldlen, err, errlen) != 0) {
            json_decref(names);
            return -1;
        }
        json_array_append_new(names, json_string(name));
    }
    in->auth_public = json_pack("{so}", "header_names", names);
    in->auth_secret = json_pack("{sO}", "headers", headers);
    return 0;
}

/* A signing secret made for the user: 32 random bytes, shown once. */
static json_t *generated_secret(void)
{
    unsigned char raw[32];
    char *b64;
    json_t *s;

    if (casb_random_bytes(raw, sizeof(raw)) != 0)
        return NULL;
    b64 = casb_base64url_encode(raw, sizeof(raw));
    casb_secret_wipe(raw, sizeof(raw));
    if (!b64)
        return NULL;
    s = json_sprintf("whsec_%s", b64);
    casb_secret_wipe(b64, strlen(b64));
    free(b64);
    return s;
}

static int parse_hmac(fa_webhook_input *in, const json_t *auth, char *field, size_t fieldlen,
                      char *err, size_t errlen)
{
    const json_t *secret = json_object_get(auth, "secret");
    json_t *made = NULL;

    if (secret) {
        if (!auth_string(auth, "secret", FA_WEBHOOK_SECRET_MAX, field, fieldlen, err, errlen))
            return -1;
        if (json_string_length(secret) < FA_WEBHOOK_SECRET_MIN)
            return invalid(field, fieldlen, "auth.secret", err, errlen,
                           "must have at least 16 bytes");
    } else {
        made = generated_secret();
        if (!made)
            return casb_fail(err, errlen, CASB_ERROR, "cannot make a signing secret");
        secret = made;
        in->secret_generated = 1;
    }
    in->auth_secret = json_pack("{sO}", "secret", secret);
    json_decref(made);
    return 0;
}

static int parse_auth(fa_webhook_input *in, const json_t *auth, char *field, size_t fieldlen,
                      char *err, size_t errlen)
{
    static const char *const basic[] = {"username", "password", NULL};
    static const char *const bearer[] = {"token", NULL};
    static const char *const headers[] = {"headers", NULL};
    static const char *const hmac[] = {"secret", NULL};
    static const char *const none[] = {NULL};
    const char *type = casb_json_str(auth, "type");
    const char *user, *password, *token;

    if (!json_is_object(auth) || !type)
        return invalid(field, fieldlen, "auth", err, errlen,
                       "must be an object with a type: none, basic, bearer, headers or "
                       "hmac_sha256");
    if (strcmp(type, "none") == 0) {
        if (auth_members_only(auth, none, field, fieldlen, err, errlen) != 0)
            return -1;
        in->auth_type = "none";
        in->auth_public = json_object();
        return 0;
    }
    if (strcmp(type, "basic") == 0) {
        if (auth_members_only(auth, basic, field, fieldlen, err, errlen) != 0 ||
            !(user = auth_string(auth, "username", 256, field, fieldlen, err, errlen)) ||
            !(password = auth_string(auth, "password", 1024, field, fieldlen, err, errlen)))
            return -1;
        if (strchr(user, ':'))
            return invalid(field, fieldlen, "auth.username", err, errlen,
                           "must not contain ':'");
        in->auth_type = "basic";
        in->auth_public = json_pack("{ss}", "username", user);
        in->auth_secret = json_pack("{ssss}", "username", user, "password", password);
        return 0;
    }
    if (strcmp(type, "bearer") == 0) {
        if (auth_members_only(auth, bearer, field, fieldlen, err, errlen) != 0 ||
            !(token = auth_string(auth, "token", 4096, field, fieldlen, err, errlen)))
            return -1;
        in->auth_type = "bearer";
        in->auth_public = json_object();
        in->auth_secret = json_pack("{ss}", "token", token);
        return 0;
    }
    if (strcmp(type, "headers") == 0) {
        in->auth_type = "headers";
        return auth_members_only(auth, headers, field, fieldlen, err, errlen) != 0
                   ? -1
                   : parse_headers(in, auth, field, fieldlen, err, errlen);
    }
    if (strcmp(type, "hmac_sha256") == 0) {
        in->auth_type = "hmac_sha256";
        in->auth_public = json_object();
        return auth_members_only(auth, hmac, field, fieldlen, err, errlen) != 0
                   ? -1
                   : parse_hmac(in, auth, field, fieldlen, err, errlen);
    }
    return invalid(field, fieldlen, "auth.type", err, errlen,
                   "must be none, basic, bearer, headers or hmac_sha256");
}

/* ---- filters ---- */

typedef int (*item_check)(const char *s, const fa_catalogue *cat);

static int finding_type_known(const char *s, const fa_catalogue *cat)
{
    return fa_catalogue_find(cat, s) != NULL;
}

static int severity_known(const char *s, const fa_catalogue *cat)
{
    (void)cat;
    return fa_severity_rank(s) >= 0;
}

static int uuid_item(const char *s, const fa_catalogue *cat)
{
    (void)cat;
    return casb_uuid_valid(s);
}

/* An array of at most max distinct strings each passing check, kept as *out. */
static int parse_list(json_t **out, const json_t *v, const char *name, size_t max,
                      item_check check, const char *what, const fa_catalogue *cat,
                      char *field, size_t fieldlen, char *err, size_t errlen)
{
    char detail[128];
    size_t i, j;
    json_t *item;

    snprintf(detail, sizeof(detail), "must be an array of at most %zu distinct %s", max, what);
    if (!json_is_array(v) || json_array_size(v) > max)
        return invalid(field, fieldlen, name, err, errlen, detail);
    json_array_foreach(v, i, item) {
        const char *s = json_string_value(item);

        if (!s || !check(s, cat))
            return invalid(field, fieldlen, name, err, errlen, detail);
        for (j = 0; j < i; j++) {
            if (strcmp(s, json_string_value(json_array_get(v, j))) == 0)
                return invalid(field, fieldlen, name, err, errlen, detail);
        }
    }
    *out = json_incref((json_t *)v);
    return 0;
}

/* ---- the body ---- */

static int parse_member(fa_webhook_input *in, const char *key, const json_t *v,
                        const fa_catalogue *cat, char *field, size_t fieldlen, char *err,
                        size_t errlen)
{
    if (strcmp(key, "name") == 0) {
        in->present |= FA_WEBHOOK_NAME;
        return parse_name(in, v, field, fieldlen, err, errlen);
    }
    if (strcmp(key, "url") == 0) {
        in->present |= FA_WEBHOOK_URL;
        return parse_url(in, v, field, fieldlen, err, errlen);
    }
    if (strcmp(key, "auth") == 0) {
        in->present |= FA_WEBHOOK_AUTH;
        return parse_auth(in, v, field, fieldlen, err, errlen);
    }
    if (strcmp(key, "finding_types") == 0) {
        in->present |= FA_WEBHOOK_FINDING_TYPES;
        return parse_list(&in->finding_types, v, key, 500, finding_type_known,
                          "finding type ids of the catalogue", cat, field, fieldlen, err,
                          errlen);
    }
    if (strcmp(key, "severities") == 0) {
        in->present |= FA_WEBHOOK_SEVERITIES;
        return parse_list(&in->severities, v, key, 4, severity_known,
                          "severities (critical, high, medium, low)", cat, field, fieldlen,
                          err, errlen);
    }
    if (strcmp(key, "integration_ids") == 0) {
        in->present |= FA_WEBHOOK_INTEGRATIONS;
        return parse_list(&in->integration_ids, v, key, 1000, uuid_item, "integration ids",
                          cat, field, fieldlen, err, errlen);
    }
    if (strcmp(key, "enabled") == 0) {
        in->present |= FA_WEBHOOK_ENABLED;
        if (!json_is_boolean(v))
            return invalid(field, fieldlen, "enabled", err, errlen, "must be true or false");
        in->enabled = json_is_true(v);
        return 0;
    }
    return invalid(field, fieldlen, key, err, errlen, "is not a member of a webhook");
}

int fa_webhook_parse(fa_webhook_input *in, const json_t *body, int partial,
                     const fa_catalogue *cat, char *field, size_t fieldlen, char *err,
                     size_t errlen)
{
    const unsigned required = FA_WEBHOOK_NAME | FA_WEBHOOK_URL | FA_WEBHOOK_AUTH;
    const char *key;
    json_t *v;

    memset(in, 0, sizeof(*in));
    in->enabled = 1;
    json_object_foreach((json_t *)body, key, v) {
        if (parse_member(in, key, v, cat, field, fieldlen, err, errlen) != 0)
            return -1;
    }
    if (!partial && (in->present & required) != required) {
        const char *missing = !(in->present & FA_WEBHOOK_NAME)  ? "name"
                              : !(in->present & FA_WEBHOOK_URL) ? "url"
                                                                : "auth";
        return invalid(field, fieldlen, missing, err, errlen, "is required");
    }
    if (partial && in->present == 0)
        return invalid(field, fieldlen, "body", err, errlen,
                       "must change at least one member of the webhook");
    return 0;
}

void fa_webhook_input_clear(fa_webhook_input *in)
{
    if (in->auth_secret)
        casb_json_wipe(in->auth_secret);
    json_decref(in->auth_secret);
    json_decref(in->auth_public);
    json_decref(in->finding_types);
    json_decref(in->severities);
    json_decref(in->integration_ids);
    json_decref(in->body);
    memset(in, 0, sizeof(*in));
}

/* ---- views ---- */

/* A text[] or uuid[] column ("{a,b}": the values here never need quoting) as an array. */
static json_t *text_array(const char *literal)
{
    json_t *out = json_array();
    const char *p = literal && *literal == '{' ? literal + 1 : "";

    while (*p && *p != '}') {
        size_t n = strcspn(p, ",}");

        json_array_append_new(out, json_stringn(p, n));
        p += n;
        if (*p == ',')
            p++;
    }
    return out;
}

static json_t *json_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *jsonb_column(const char *s)
{
    json_t *v = s ? json_loads(s, 0, NULL) : NULL;

    return v ? v : json_object();
}

json_t *fa_webhook_view(const PGresult *res, int row)
{
    json_t *auth = jsonb_column(casb_db_get(res, row, "auth_public"));

    json_object_set_new(auth, "type", json_string(casb_db_get(res, row, "auth_type")));
    return json_pack(
        "{ss ss ss so so so so sb ss ss ss s{sI sI sI so so}}", "id",
        casb_db_get(res, row, "id"), "name", casb_db_get(res, row, "name"), "url",
        casb_db_get(res, row, "url"), "auth", auth, "finding_types",
        text_array(casb_db_get(res, row, "finding_types")), "severities",
        text_array(casb_db_get(res, row, "severities")), "integration_ids",
        text_array(casb_db_get(res, row, "integration_ids")), "enabled",
        casb_db_get_bool(res, row, "enabled"), "created_by",
        casb_db_get(res, row, "created_by"), "created_at", casb_db_get(res, row, "created_at"),
        "updated_at", casb_db_get(res, row, "updated_at"), "deliveries", "pending",
        (json_int_t)casb_db_get_int(res, row, "pending", 0), "succeeded",
        (json_int_t)casb_db_get_int(res, row, "succeeded", 0), "failed",
        (json_int_t)casb_db_get_int(res, row, "failed", 0), "last_success_at",
        json_or_null(casb_db_get(res, row, "last_success_at")), "last_failure_at",
        json_or_null(casb_db_get(res, row, "last_failure_at")));
}

static json_t *int_or_null(const PGresult *res, int row, const char *column)
{
    return casb_db_get(res, row, column)
               ? json_integer((json_int_t)casb_db_get_int(res, row, column, 0))
               : json_null();
}

json_t *fa_webhook_delivery_view(const PGresult *res, int row)
{
    return json_pack("{ss ss ss so so ss sI so so so so so ss}", "id",
                     casb_db_get(res, row, "id"), "webhook_id",
                     casb_db_get(res, row, "webhook_id"), "event_type",
                     casb_db_get(res, row, "event_type"), "finding_id",
                     json_or_null(casb_db_get(res, row, "finding_id")), "instance_id",
                     json_or_null(casb_db_get(res, row, "instance_id")), "status",
                     casb_db_get(res, row, "status"), "attempts",
                     (json_int_t)casb_db_get_int(res, row, "attempts", 0), "next_attempt_at",
                     strcmp(casb_db_get(res, row, "status"), "pending") == 0
                         ? json_or_null(casb_db_get(res, row, "next_attempt_at"))
                         : json_null(),
                     "last_attempt_at", json_or_null(casb_db_get(res, row, "last_attempt_at")),
                     "last_status_code", int_or_null(res, row, "last_status_code"),
                     "last_error", json_or_null(casb_db_get(res, row, "last_error")),
                     "delivered_at", json_or_null(casb_db_get(res, row, "delivered_at")),
                     "created_at", casb_db_get(res, row, "created_at"));
}

/* ---- signing ---- */

int fa_webhook_sign(const char *secret, long long timestamp, const char *body, size_t len,
                    char *out, size_t outlen)
{
    char prefix[24], mac[65];
    size_t plen = (size_t)snprintf(prefix, sizeof(prefix), "%lld.", timestamp);
    char *signed_text = malloc(plen + len);

    if (!signed_text || outlen < FA_WEBHOOK_SIGNATURE_LEN) {
        free(signed_text);
        return -1;
    }
    memcpy(signed_text, prefix, plen);
    memcpy(signed_text + plen, body, len);
    casb_hmac_sha256_hex(secret, strlen(secret), signed_text, plen + len, mac);
    free(signed_text);
    snprintf(out, outlen, "t=%lld,v1=%s", timestamp, mac);
    return 0;
}
