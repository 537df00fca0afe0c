#include "fa_webhook_send.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casb/json.h"
#include "casb/timeutil.h"
#include "fa_store.h"
#include "fa_views.h"
#include "fa_webhook.h"

/* Static headers, the standard ones and auth; never more. */
#define MAX_HEADERS (FA_WEBHOOK_HEADERS_MAX + 8)
#define MAX_ANSWER_BYTES (64 * 1024)

int fa_webhook_client_new(casb_http_client **out, const fa_webhook_env *env, char *err,
                          size_t errlen)
{
    casb_http_client_opts o = {
        .timeout_ms = env->timeout_ms,
        .connect_timeout_ms = env->timeout_ms < 5000 ? env->timeout_ms : 5000,
        .max_retries = 0,
        .rate_limit_budget_s = -1,
        .max_body_bytes = MAX_ANSWER_BYTES,
        .user_agent = "casb-webhooks/" CASB_VERSION,
    };

    return casb_http_client_new(out, &o, err, errlen);
}

/* ---- headers ---- */

typedef struct {
    char *lines[MAX_HEADERS + 1]; /* NULL-terminated; each malloc'ed, wiped when freed */
    size_t n;
} header_list;

static int header_add(header_list *h, const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 3;

    if (h->n >= MAX_HEADERS || !(h->lines[h->n] = malloc(len)))
        return -1;
    snprintf(h->lines[h->n++], len, "%s: %s", name, value);
    return 0;
}

static void header_list_free(header_list *h)
{
    for (size_t i = 0; i < h->n; i++) {
        casb_secret_wipe(h->lines[i], strlen(h->lines[i]));
        free(h->lines[i]);
    }
    h->n = 0;
}

static int add_basic(header_list *h, const json_t *secret)
{
    const char *user = casb_json_str(secret, "username");
    const char *password = casb_json_str(secret, "password");
    size_t len = (user ? strlen(user) : 0) + (password ? strlen(password) : 0) + 2;
    char *pair = malloc(len), *b64, *value;
    int rc = -1;

    if (!pair || !user || !password) {
        free(pair);
        return -1;
    }
    snprintf(pair, len, "%s:%s", user, password);
    b64 = casb_base64_encode(pair, strlen(pair));
    casb_secret_wipe(pair, strlen(pair));
    free(pair);
    if (!b64)
        return -1;
    value = malloc(strlen(b64) + 7);
    if (value) {
        snprintf(value, strlen(b64) + 7, "Basic %s", b64);
        rc = header_add(h, "Authorization", value);
        casb_secret_wipe(value, strlen(value));
        free(value);
    }
    casb_secret_wipe(b64, strlen(b64));
    free(b64);
    return rc;
}

static int add_bearer(header_list *h, const json_t *secret)
{
    const char *token = casb_json_str(secret, "token");
    size_t len = token ? strlen(token) + 8 : 0;
    char *value = token ? malloc(len) : NULL;
    int rc;

    if (!value)
        return -1;
    snprintf(value, len, "Bearer %s", token);
    rc = header_add(h, "Authorization", value);
    casb_secret_wipe(value, strlen(value));
    free(value);
    return rc;
}

static int add_static(header_list *h, const json_t *secret)
{
    const char *name;
    json_t *value;

    json_object_foreach((json_t *)casb_json_path(secret, "headers"), name, value) {
        if (!json_is_string(value) || header_add(h, name, json_string_value(value)) != 0)
            return -1;
    }
    return 0;
}

static int add_signature(header_list *h, const json_t *secret, const char *body,
                         long long now)
{
    const char *key = casb_json_str(secret, "secret");
    char sig[FA_WEBHOOK_SIGNATURE_LEN];

    if (!key || fa_webhook_sign(key, now, body, strlen(body), sig, sizeof(sig)) != 0)
        return -1;
    return header_add(h, "X-CASB-Signature", sig);
}

/* The auth headers of the target, from its sealed secrets; now is X-CASB-Timestamp's. */
static int add_auth(header_list *h, const fa_webhook_env *env, const fa_webhook_target *t,
                    const char *body, long long now, char *err, size_t errlen)
{
    char *plain = NULL;
    size_t n = 0;
    json_t *secret;
    int rc = -1;

    if (strcmp(t->auth_type, "none") == 0)
        return 0;
    if (!t->auth_sealed ||
        casb_secret_open(env->keys, t->auth_sealed, &plain, &n, err, errlen) != 0) {
        snprintf(err, errlen, "the webhook's secrets cannot be opened with the master key");
        return -1;
    }
    secret = json_loadb(plain, n, 0, NULL);
    casb_secret_wipe(plain, n);
    free(plain);
    if (secret) {
        if (strcmp(t->auth_type, "basic") == 0)
            rc = add_basic(h, secret);
        else if (strcmp(t->auth_type, "bearer") == 0)
            rc = add_bearer(h, secret);
        else if (strcmp(t->auth_type, "headers") == 0)
            rc = add_static(h, secret);
        else if (strcmp(t->auth_type, "hmac_sha256") == 0)
            rc = add_signature(h, secret, body, now);
        casb_json_wipe(secret);
        json_decref(secret);
    }
    if (rc != 0)
        snprintf(err, errlen, "the webhook's stored auth is unusable");
    return rc;
}

static int build_headers(header_list *h, const fa_webhook_env *env, const fa_webhook_target *t,
                         const char *body, char *err, size_t errlen)
{
    long long now = (long long)time(NULL); /* one reading: the signature's t is the header's */
    char ts[24];

    snprintf(ts, sizeof(ts), "%lld", now);
    if (header_add(h, "Content-Type", "application/json") != 0 ||
        header_add(h, "Idempotency-Key", t->delivery_id) != 0 ||
        header_add(h, "X-CASB-Delivery", t->delivery_id) != 0 ||
        header_add(h, "X-CASB-Event", t->event_type) != 0 ||
        header_add(h, "X-CASB-Timestamp", ts) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return add_auth(h, env, t, body, now, err, errlen);
}

/* ---- the attempt ---- */

static void result_fail(fa_webhook_result *out, long status, const char *why)
{
    out->ok = 0;
    out->status_code = status;
    snprintf(out->error, sizeof(out->error), "%.255s", why);
}

void fa_webhook_send(const fa_webhook_env *env, casb_http_client *http,
                     const fa_webhook_target *t, const char *body, fa_webhook_result *out)
{
    header_list h = {0};
    casb_http_response *resp = NULL;
    char pin[300], why[256] = "";
    int allowed;

    memset(out, 0, sizeof(*out));
    out->retry_after_s = -1;
    /* Checked at every attempt, and the connection pinned to the address checked: a name
     * that resolved to a public address when the webhook was saved may not lead inside
     * later (DNS rebinding). */
    allowed = casb_netguard_check_url(env->guard, t->url, pin, sizeof(pin), why, sizeof(why));
    if (allowed != 1) {
        char msg[sizeof(out->error)];

        snprintf(msg, sizeof(msg), "destination refused: %.200s", why);
        result_fail(out, 0, msg);
        return;
    }
    if (casb_http_client_pin(http, pin) != 0) {
        result_fail(out, 0, "cannot pin the destination's address");
        return;
    }
    if (build_headers(&h, env, t, body, why, sizeof(why)) != 0) {
        header_list_free(&h);
        result_fail(out, 0, why);
        return;
    }
    if (casb_http_request(http, &resp, "POST", t->url, (const char *const *)h.lines, body,
                          strlen(body), why, sizeof(why)) != 0) {
        result_fail(out, 0, why);
    } else if (resp->status >= 200 && resp->status < 300) {
        out->ok = 1;
        out->status_code = resp->status;
    } else {
        char msg[64];

        snprintf(msg, sizeof(msg), "the destination answered %ld", resp->status);
        result_fail(out, resp->status, msg);
        out->retry_after_s = casb_http_retry_after_s(resp, (long)time(NULL));
    }
    casb_http_response_free(resp);
    header_list_free(&h);
}

/* ---- bodies ---- */

static char *dump_body(json_t *doc)
{
    char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

    json_decref(doc);
    return s;
}

char *fa_webhook_event_body(casb_db *db, const fa_catalogue *cat, const PGresult *claim,
                            int row, char *err, size_t errlen)
{
    const char *account = casb_db_get(claim, row, "account_id");
    const char *scan_id = casb_db_get(claim, row, "scan_id");
    PGresult *finding = NULL, *instance = NULL;
    char *body = NULL;

    finding = fa_store_get_finding(db, account, casb_db_get(claim, row, "finding_id"), err,
                                   errlen);
    if (finding)
        instance = fa_store_get_instance(db, account, casb_db_get(claim, row, "instance_id"),
                                         err, errlen);
    if (!finding || !instance)
        goto out;
    if (PQntuples(finding) == 0 || PQntuples(instance) == 0) {
        snprintf(err, errlen, "the finding or instance no longer exists");
        goto out;
    }
    body = dump_body(json_pack(
        "{ss ss ss ss so so so}", "id", casb_db_get(claim, row, "id"), "event_type",
        casb_db_get(claim, row, "event_type"), "occurred_at",
        casb_db_get(claim, row, "occurred_at"), "account_id", account, "scan_id",
        scan_id ? json_string(scan_id) : json_null(), "finding",
        fa_view_finding(finding, 0, cat, 1), "instance", fa_view_instance(instance, 0)));
    if (!body)
        snprintf(err, errlen, "out of memory");
out:
    PQclear(finding);
    PQclear(instance);
    return body;
}

char *fa_webhook_test_body(const char *delivery_id, const char *account_id,
                           const char *webhook_id, const char *webhook_name)
{
    char now[40];

    casb_time_rfc3339(now, sizeof(now), time(NULL));
    return dump_body(json_pack("{ss ss ss ss s{ss ss}}", "id", delivery_id, "event_type",
                               "webhook.test", "occurred_at", now, "account_id", account_id,
                               "webhook", "id", webhook_id, "name", webhook_name));
}
