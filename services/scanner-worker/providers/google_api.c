/* Google REST calls: one GET below the API base URL as an impersonated subject, Google's
 * error body, the quota backoff, nextPageToken paging and the request pacing.
 *
 * Quotas: the shared HTTP client already waits out 429 (rate_limit_budget_s) and 5xx
 * (max_retries). Google's quota 403s (rateLimitExceeded, userRateLimitExceeded,
 * quotaExceeded) carry no Retry-After, so the HTTP client returns them as final: they are
 * waited out here, with capped exponential backoff and jitter, within the same budget. Our
 * waits sleep in one-second slices that look at the cancel flag and call the worker's
 * wait_check (the lease heartbeat) as the HTTP client does in its own waits.
 *
 * Pacing: every API request of the scan, on every thread, first takes a slot of one token
 * bucket (config.max_requests_per_second, CASB_GOOGLE_DEFAULT_RPS), so that the per-user
 * threads together stay under the quota instead of meeting it. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"
#include "casb/timeutil.h"
#include "google_client.h"

/* More pages than this means a server that keeps answering nextPageToken forever. */
#define MAX_PAGES 1000000L
#define BACKOFF_BASE_MS 1000LL
#define DEFAULT_MAX_WAIT_S 60
#define DEFAULT_QUOTA_BUDGET_S 900
#define SLICE_MS 200
#define WAIT_CHECK_EVERY_MS 1000
/* Access tokens are about 200 bytes; room for much longer ones. */
#define TOKEN_MAX 4096

void casb_google_resp_clear(casb_google_resp *r)
{
    if (!r)
        return;
    json_decref(r->body);
    memset(r, 0, sizeof(*r));
}

/* ---- waiting --------------------------------------------------------------------------- */

int casb_google_cancelled(const casb_google_client *c)
{
    return (c->cancel && *c->cancel) || atomic_load(&((casb_google_client *)c)->stopped);
}

int casb_google_locked_wait_check(void *ud)
{
    casb_google_client *c = ud;
    int rc = 0;

    if (!c->http_opts || !c->http_opts->wait_check)
        return 0;
    pthread_mutex_lock(&c->sink_mu);
    rc = c->http_opts->wait_check(c->http_opts->wait_check_ud);
    pthread_mutex_unlock(&c->sink_mu);
    if (rc != 0)
        atomic_store(&c->stopped, 1);
    return rc;
}

int casb_google_sleep_ms(casb_google_client *c, long long ms)
{
    int64_t start = casb_monotonic_ms();
    int64_t end = start + ms;
    int64_t checked = start;

    for (;;) {
        int64_t now = casb_monotonic_ms();

        if (casb_google_cancelled(c))
            return -1;
        if (now - checked >= WAIT_CHECK_EVERY_MS) {
            checked = now;
            if (casb_google_locked_wait_check(c) != 0)
                return -1;
        }
        if (now >= end)
            return 0;
        casb_sleep_ms(end - now < SLICE_MS ? end - now : SLICE_MS);
    }
}

/* Takes the next slot of the token bucket, waiting for it. */
static int pace(casb_google_client *c)
{
    long long now_us, wait_us;

    if (c->pace_interval_us <= 0)
        return 0;
    pthread_mutex_lock(&c->pace_mu);
    now_us = (long long)casb_monotonic_ms() * 1000;
    if (c->pace_tat_us < now_us)
        c->pace_tat_us = now_us;
    /* A burst of pace_burst requests fits before the arrival time runs ahead of now. */
    wait_us = c->pace_tat_us - now_us - (c->pace_burst - 1) * c->pace_interval_us;
    c->pace_tat_us += c->pace_interval_us;
    pthread_mutex_unlock(&c->pace_mu);
    if (wait_us <= 0)
        return 0;
    return casb_google_sleep_ms(c, (wait_us + 999) / 1000);
}

static int is_quota(const casb_google_resp *r)
{
    if (r->status == 429)
        return 1;
    return r->status == 403 && (strcmp(r->reason, "rateLimitExceeded") == 0 ||
                                strcmp(r->reason, "userRateLimitExceeded") == 0 ||
                                strcmp(r->reason, "quotaExceeded") == 0);
}

/* Full jitter above half: uniform in [upper/2, upper], upper = min(cap, base * 2^attempt). */
static long long backoff_ms(const casb_google_client *c, int attempt)
{
    static _Thread_local unsigned seed;
    long long cap = (c->http_opts && c->http_opts->max_wait_s > 0 ? c->http_opts->max_wait_s
                                                                   : DEFAULT_MAX_WAIT_S) *
                    1000LL;
    long long upper = cap;

    if (!seed)
        seed = (unsigned)casb_monotonic_ms() ^ (unsigned)(uintptr_t)&seed;
    if (attempt < 20 && (BACKOFF_BASE_MS << attempt) < cap)
        upper = BACKOFF_BASE_MS << attempt;
    return upper / 2 + (long long)(((double)rand_r(&seed) / RAND_MAX) * (double)(upper / 2));
}

static long long quota_budget_ms(const casb_google_client *c)
{
    long b = c->http_opts ? c->http_opts->rate_limit_budget_s : 0;

    if (b < 0)
        return 0;
    return (b ? b : DEFAULT_QUOTA_BUDGET_S) * 1000LL;
}

/* ---- one request ----------------------------------------------------------------------- */

/* Google's error body: {"error":{"code","message","errors":[{"reason",...}],"status"}}. */
static void read_error(casb_google_resp *r)
{
    const json_t *e = json_object_get(r->body, "error");
    const char *msg, *reason;

    if (json_is_object(e)) {
        msg = casb_json_str(e, "message");
        reason = casb_json_path_str(json_array_get(json_object_get(e, "errors"), 0), "reason");
        if (!reason && r->status == 429)
            reason = casb_json_str(e, "status");
    } else {
        /* The OAuth shape, {"error":"...","error_description":"..."}. */
        reason = json_is_string(e) ? json_string_value(e) : NULL;
        msg = casb_json_str(r->body, "error_description");
    }
    snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
    snprintf(r->message, sizeof(r->message), "%s", msg ? msg : "");
}

/* The path part of a request for messages and logs: the query can carry a page token. */
static void short_path(const char *path, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%.*s", (int)strcspn(path, "?"), path);
}

static int request_once(casb_google_client *c, casb_http_client *http, const char *token,
                        const char *path, casb_google_resp *out, char *err, size_t errlen)
{
    casb_http_response *hr = NULL;
    char *url = NULL, *auth = NULL;
    const char *headers[3];
    char herr[256], what[256], status[16];
    int rc = 0;

    short_path(path, what, sizeof(what));
    if (asprintf(&url, "%s%s", c->api_base, path) < 0)
        url = NULL;
    if (asprintf(&auth, "Authorization: Bearer %s", token) < 0)
        auth = NULL;
    if (!url || !auth) {
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    headers[0] = auth;
    headers[1] = "Accept: application/json";
    headers[2] = NULL;
    atomic_fetch_add(&c->requests, 1);
    if (casb_http_request(http, &hr, "GET", url, headers, NULL, 0, herr, sizeof(herr)) != 0) {
        if (casb_google_cancelled(c))
            rc = casb_fail(err, errlen, CASB_ERROR, "scan cancelled");
        else
            rc = casb_fail(err, errlen, CASB_EUNAVAILABLE, "Google unreachable at GET %s: %s",
                           what, herr);
        goto out;
    }
    snprintf(status, sizeof(status), "%ld", hr->status);
    casb_log_debug("google request", "path", what, "status", status);
    out->status = hr->status;
    if (hr->body_len > 0)
        out->body = casb_json_parse(hr->body, hr->body_len, 0, NULL, 0);
    if (hr->status >= 200 && hr->status < 300 && !json_is_object(out->body)) {
        rc = casb_fail(err, errlen, CASB_ERROR, "malformed JSON from Google at GET %s", what);
        goto out;
    }
    if (hr->status < 200 || hr->status >= 300)
        read_error(out);
out:
    casb_http_response_free(hr);
    if (auth) {
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    free(url);
    return rc;
}

int casb_google_get(casb_google_client *c, casb_http_client *http, const char *subject,
                    const char *scope, const char *path, casb_google_resp *out, char *err,
                    size_t errlen)
{
    char token[TOKEN_MAX];
    long long waited_ms = 0, budget_ms = quota_budget_ms(c);
    int refreshed = 0, quota_waits = 0, rc;

    memset(out, 0, sizeof(*out));
    for (;;) {
        if (casb_google_cancelled(c))
            return casb_fail(err, errlen, CASB_ERROR, "scan cancelled");
        rc = casb_google_token(c, http, subject, scope, token, sizeof(token), err, errlen);
        if (rc != 0)
            break;
        if (pace(c) != 0) {
            rc = casb_fail(err, errlen, CASB_ERROR, "scan cancelled");
            break;
        }
        casb_google_resp_clear(out);
        rc = request_once(c, http, token, path, out, err, errlen);
        if (rc != 0)
            break;
        if (out->status == 401 && !refreshed) {
            /* A token can be revoked before it expires (delegation changed): one new one
             * before calling the credentials bad. */
            refreshed = 1;
            casb_google_token_invalidate(c, subject, scope, token);
            continue;
        }
        if (is_quota(out)) {
            long long wait_ms = backoff_ms(c, quota_waits);

            if (waited_ms + wait_ms > budget_ms)
                break;
            quota_waits++;
            waited_ms += wait_ms;
            casb_log_info("google quota wait", "reason", out->reason[0] ? out->reason : "429");
            if (casb_google_sleep_ms(c, wait_ms) != 0) {
                rc = casb_fail(err, errlen, CASB_ERROR, "scan cancelled");
                break;
            }
            continue;
        }
        break;
    }
    explicit_bzero(token, sizeof(token));
    if (rc != 0)
        casb_google_resp_clear(out);
    return rc;
}

int casb_google_status_error(const casb_google_resp *r, const char *what, char *err,
                             size_t errlen)
{
    const char *msg = r->message[0] ? r->message : "no message";

    if (r->status == 401)
        return casb_fail(err, errlen, CASB_EAUTH, "Google rejected the access token (%s: %s)",
                         what, msg);
    if (is_quota(r))
        return casb_fail(err, errlen, CASB_EUNAVAILABLE,
                         "Google's quota stayed exhausted after waiting (%s: %ld %s)", what,
                         r->status, r->reason[0] ? r->reason : msg);
    if (r->status >= 500 || r->status == 0)
        return casb_fail(err, errlen, CASB_EUNAVAILABLE, "Google answered %ld repeatedly (%s: %s)",
                         r->status, what, msg);
    if (r->status == 403)
        return casb_fail(err, errlen, CASB_GOOGLE_EFORBIDDEN, "%s: 403 %s%s%s%s", what,
                         r->reason, r->reason[0] ? " (" : "", msg, r->reason[0] ? ")" : "");
    if (r->status == 404)
        return casb_fail(err, errlen, CASB_ENOTFOUND, "%s: 404 %s", what, msg);
    return casb_fail(err, errlen, CASB_GOOGLE_EREJECTED, "%s: %ld %s%s%s%s", what, r->status,
                     r->reason, r->reason[0] ? " (" : "", msg, r->reason[0] ? ")" : "");
}

/* path with &pageToken=<escaped token> appended. */
static char *page_path(const char *path, const char *page_token)
{
    char *esc, *out = NULL;

    if (!page_token)
        return strdup(path);
    esc = casb_http_escape(page_token);
    if (!esc)
        return NULL;
    if (asprintf(&out, "%s%cpageToken=%s", path, strchr(path, '?') ? '&' : '?', esc) < 0)
        out = NULL;
    free(esc);
    return out;
}

int casb_google_paginate(casb_google_client *c, casb_http_client *http, const char *subject,
                         const char *scope, const char *path, const char *list_key,
                         casb_google_page_fn fn, void *ud, char *err, size_t errlen)
{
    casb_google_resp resp;
    char *token = NULL, *url = NULL;
    char what[300], sp[256];
    long pages = 0;
    int rc = 0;

    memset(&resp, 0, sizeof(resp));
    short_path(path, sp, sizeof(sp));
    snprintf(what, sizeof(what), "GET %s", sp);
    for (;;) {
        const char *next;
        json_t *items;

        if (++pages > MAX_PAGES) {
            rc = casb_fail(err, errlen, CASB_ERROR, "%s: too many pages", what);
            goto out;
        }
        free(url);
        url = page_path(path, token);
        if (!url) {
            rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
            goto out;
        }
        rc = casb_google_get(c, http, subject, scope, url, &resp, err, errlen);
        if (rc != 0)
            goto out;
        if (resp.status < 200 || resp.status >= 300) {
            rc = casb_google_status_error(&resp, what, err, errlen);
            goto out;
        }
        /* An empty page leaves the list out altogether. */
        items = json_object_get(resp.body, list_key);
        if (items && !json_is_array(items)) {
            rc = casb_fail(err, errlen, CASB_ERROR, "%s: %s is not an array", what, list_key);
            goto out;
        }
        if (items) {
            rc = fn(ud, items, err, errlen);
            if (rc != 0)
                goto out;
        }
        next = casb_json_str(resp.body, "nextPageToken");
        if (!next || !next[0])
            break;
        if (token && strcmp(token, next) == 0) {
            rc = casb_fail(err, errlen, CASB_ERROR, "%s: nextPageToken repeats itself", what);
            goto out;
        }
        free(token);
        token = strdup(next);
        if (!token) {
            rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
            goto out;
        }
        casb_google_resp_clear(&resp);
    }
out:
    casb_google_resp_clear(&resp);
    free(token);
    free(url);
    return rc;
}
