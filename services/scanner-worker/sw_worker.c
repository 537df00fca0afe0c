#include "sw_worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casb/error.h"
#include "casb/http_client.h"
#include "casb/integration.h"
#include "casb/json.h"
#include "casb/log.h"
#include "casb/metrics.h"
#include "casb/service.h"
#include "casb/timeutil.h"
#include "provider.h"
#include "sw_job.h"
#include "sw_sink.h"
#include "sw_store.h"

/* Time allowed for the broker to acknowledge a scan's result messages. */
#define SW_FLUSH_TIMEOUT_MS 60000
/* Scan errors go into a Kafka message and the scans row; keep them one readable line. */
#define SW_MAX_ERROR_LEN 500
/* How often, at most, a running scan renews its lease. The renewal doubles as the check that
 * the scan still exists: deleting an integration deletes its scans, the renewal then affects
 * no row and the scan stops. It is one UPDATE by primary key, so once a second per running
 * scan costs nothing measurable, and a deleted integration stops being scanned within about a
 * second plus the request in flight (the sink asks for it after every page's assets and
 * findings; with the 10 s the lease alone would need, a deleted tenant kept being read for
 * up to 10 s more). */
#define SW_LEASE_CHECK_MS 1000

static casb_metric *m_started;
static casb_metric *m_completed;
static casb_metric *m_failed;
static casb_metric *m_skipped;
static casb_metric *m_invalid;
static casb_metric *m_findings;
static casb_metric *m_oauth_renewed;
static casb_metric *m_oauth_refused;

void sw_worker_metrics_init(void)
{
    m_started = casb_metrics_counter("casb_scans_started_total",
                                     "Scans this worker took a lease on and started.", NULL);
    m_completed = casb_metrics_counter("casb_scans_completed_total",
                                       "Scans that ended with a completed message.", NULL);
    m_failed = casb_metrics_counter("casb_scans_failed_total",
                                    "Scans that ended with a failed message.", NULL);
    m_skipped = casb_metrics_counter("casb_scan_jobs_skipped_total",
                                     "Jobs whose scan was already taken or finished.", NULL);
    m_invalid = casb_metrics_counter("casb_scan_jobs_invalid_total",
                                     "Job messages sent to the dead-letter topic.", NULL);
    m_findings = casb_metrics_counter("casb_findings_emitted_total",
                                      "Finding instances sent to casb.scan.results.", NULL);
    m_oauth_renewed = casb_metrics_counter("casb_oauth_renewals_total",
                                           "OAuth access tokens renewed, by result.",
                                           "result=\"ok\"");
    m_oauth_refused = casb_metrics_counter("casb_oauth_renewals_total",
                                           "OAuth access tokens renewed, by result.",
                                           "result=\"refused\"");
}

static void metric_add(casb_metric *m, double v)
{
    if (m)
        casb_metric_add(m, v);
}

/* Provider-labelled series are registered on first use; the label is the id of a provider
 * this worker knows, or "unknown", so the integrations table cannot grow the label set. */
static const char *provider_label(const char *name)
{
    const casb_provider *p = casb_provider_find(name);

    return p ? p->id : "unknown";
}

/* Provider API calls by the status class of each attempt (retries included), and the waits
 * rate limits imposed, from the HTTP clients' statistics at the end of a scan. */
static void count_api_calls(const char *provider, const casb_http_stats *hs)
{
    static const char *const classes[] = {"error", "1xx", "2xx", "3xx", "4xx", "5xx"};
    char labels[160];

    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
        if (hs->status_class[i] == 0)
            continue;
        snprintf(labels, sizeof(labels), "provider=\"%s\",status=\"%s\"", provider,
                 classes[i]);
        metric_add(casb_metrics_counter("casb_provider_api_calls_total",
                                        "Requests sent to SaaS provider APIs, retries "
                                        "included, by status class (error: no answer).",
                                        labels),
                   (double)hs->status_class[i]);
    }
    snprintf(labels, sizeof(labels), "provider=\"%s\"", provider);
    metric_add(casb_metrics_counter(
                   "casb_provider_rate_limit_waits_total",
                   "Waits caused by provider rate limits (429/403 with Retry-After or reset).",
                   labels),
               (double)hs->rate_limit_waits);
}

/* A scan that ended with a completed or failed message, and how long it took. */
static void count_scan(const char *provider, const char *outcome, int64_t duration_ms)
{
    char labels[160];

    snprintf(labels, sizeof(labels), "provider=\"%s\",outcome=\"%s\"", provider, outcome);
    metric_add(casb_metrics_counter("casb_scans_total",
                                    "Scans that ended with a completed or failed message, by "
                                    "provider and outcome.",
                                    labels),
               1);
    snprintf(labels, sizeof(labels), "provider=\"%s\"", provider);
    casb_metric_observe(casb_metrics_histogram("casb_scan_duration_seconds",
                                               "Time from taking a scan job to its end message.",
                                               labels, casb_metrics_scan_buckets,
                                               casb_metrics_scan_nbuckets),
                        (double)duration_ms / 1000.0);
}

typedef struct {
    sw_worker *w;
    const char *scan_id;
    const char *integration_id; /* for logs */
    int attempt;                /* of the lease we hold */
    int lease_lost;             /* a renewal found the lease gone */
} job_ctx;

static int send_result(void *ud, const char *key, const char *value, size_t len, char *err,
                       size_t errlen)
{
    job_ctx *jc = ud;

    return casb_producer_send(jc->w->producer, CASB_TOPIC_SCAN_RESULTS, key, value, len, err,
                              errlen);
}

/* Lease heartbeat, from the sink after each page and from the HTTP client during long retry
 * and rate-limit waits (which may outlast the lease). A database hiccup is not a lost lease:
 * the lease is long enough to survive a few missed renewals. A lost lease (taken over,
 * finished elsewhere, or the scan deleted with its integration) sets the cancel flag, so
 * the provider's next API call (or its wait) fails at once, and nothing more is sent. */
static int renew_lease(void *ud)
{
    job_ctx *jc = ud;
    char err[256];
    int rc;

    rc = sw_store_renew_lease(jc->w->db, jc->scan_id, jc->w->settings->worker_id, jc->attempt,
                              jc->w->settings->lease_s, err, sizeof(err));
    if (rc > 0)
        return 0;
    if (rc < 0) {
        casb_log_warn("lease renewal failed", "scan_id", jc->scan_id, "error", err);
        return 0;
    }
    *jc->w->cancel = 1;
    jc->lease_lost = 1;
    if (sw_store_scan_exists(jc->w->db, jc->scan_id, err, sizeof(err)) == 0)
        casb_log_info("scan deleted with its integration; stopping without a final message",
                      "scan_id", jc->scan_id, "integration_id", jc->integration_id);
    else
        casb_log_warn("lease lost: the scan was taken over or finished elsewhere; stopping",
                      "scan_id", jc->scan_id);
    return -1;
}

/* What ctx->renew_credentials needs: the integration and the credentials the scan uses. */
typedef struct {
    sw_worker *w;
    const casb_provider *provider;
    const char *integration_id;
    json_t *credentials; /* the object ctx->credentials points at, updated in place */
} renew_ctx;

/* ctx->renew_credentials: the OAuth tokens renewed with their refresh token (libcommon holds
 * the integration's row lock meanwhile, so two workers never spend the same one). */
static int renew_credentials(casb_scan_ctx *ctx, char *err, size_t errlen)
{
    renew_ctx *rc = ctx->renew_ud;
    const sw_settings *st = rc->w->settings;
    const casb_oauth_registration regs[] = {
        {"github", st->github_oauth_client_id, st->github_oauth_client_secret,
         st->github_web_url, NULL},
    };
    int r;

    r = casb_provider_oauth_renew(rc->provider, regs, sizeof(regs) / sizeof(regs[0]),
                                  st->allowed_endpoints, rc->w->db, rc->w->keys, ctx->http,
                                  rc->integration_id, rc->credentials, err, errlen);
    if (r == 0) {
        metric_add(m_oauth_renewed, 1);
        casb_log_info("oauth credentials renewed", "integration_id", rc->integration_id);
    } else if (r == CASB_EAUTH) {
        metric_add(m_oauth_refused, 1);
    }
    return r;
}

/* ctx->page_cache over provider_page_cache: the integration's stored pages, read and written
 * on the worker's connection (the scan's thread is its only user). */
typedef struct {
    casb_db *db;
    const char *integration_id;
} page_cache_ctx;

static int page_cache_get(casb_page_cache *pc, const char *url, char **etag, char **body,
                          size_t *body_len, char **next_url, char *err, size_t errlen)
{
    page_cache_ctx *pcc = pc->ud;

    return sw_store_page_get(pcc->db, pcc->integration_id, url, etag, body, body_len, next_url,
                             err, errlen);
}

static int page_cache_put(casb_page_cache *pc, const char *url, const char *etag,
                          const char *body, size_t body_len, const char *next_url, char *err,
                          size_t errlen)
{
    page_cache_ctx *pcc = pc->ud;

    (void)body_len; /* stored as text: a JSON body has no NUL */
    return sw_store_page_put(pcc->db, pcc->integration_id, url, etag, body, next_url, err,
                             errlen);
}

/* After a completed scan: the stored pages it did not ask for are gone upstream. Failing
 * only leaves them for the next completed scan. */
static void page_cache_prune(sw_worker *w, const sw_job *job, const char *started_at,
                             long hits)
{
    char err[256], deleted_s[32], hits_s[32];
    long deleted = 0;

    if (sw_store_page_prune(w->db, job->integration_id, started_at, &deleted, err,
                            sizeof(err)) != 0) {
        casb_log_warn("page cache prune failed", "scan_id", job->scan_id, "integration_id",
                      job->integration_id, "error", err);
        return;
    }
    snprintf(deleted_s, sizeof(deleted_s), "%ld", deleted);
    snprintf(hits_s, sizeof(hits_s), "%ld", hits);
    casb_log_info("page cache", "scan_id", job->scan_id, "integration_id", job->integration_id,
                  "not_modified", hits_s, "pruned", deleted_s);
}

/* Maps a provider failure to the error_kind findings-api acts on: "auth" turns the
 * integration's health to needs_reauthorization. Providers return CASB_EAUTH or
 * CASB_EUNAVAILABLE when they know; a plain -1 carrying the vendor's 401 answer is still an
 * authentication failure. */
static const char *classify_error(int rc, const char *err)
{
    if (rc == CASB_EAUTH)
        return "auth";
    if (rc == CASB_EUNAVAILABLE)
        return "unavailable";
    if (strstr(err, "401") || strcasestr(err, "bad credentials") ||
        strcasestr(err, "unauthorized"))
        return "auth";
    return "internal";
}

/* Runs one leased attempt of a scan through its end message; started_at is the attempt's
 * start. Returns the outcome for the job offset. */
static sw_job_outcome run_scan(sw_worker *w, const sw_job *job, int attempt,
                               const char *started_at)
{
    const sw_settings *st = w->settings;
    job_ctx jc = {w, job->scan_id, job->integration_id, attempt, 0};
    casb_integration_stored it = {0};
    sw_sink *sink = NULL;
    casb_http_client *http = NULL;
    json_t *config = NULL;
    json_t *credentials = NULL;
    const casb_provider *provider = NULL;
    sw_sink_http_stats hstats = {0};
    casb_http_stats extra = {0};
    char err[1024] = "";
    char scan_err[SW_MAX_ERROR_LEN + 1] = "";
    char attempt_s[16];
    const char *error_kind = NULL;
    sw_job_outcome outcome = SW_JOB_REDELIVER;
    int64_t t0 = casb_monotonic_ms();
    long flush_ms;
    int scan_rc = -1;
    int rc;

    for (;;) {
        rc = casb_integration_load(&it, w->db, job->account_id, job->integration_id, err,
                                       sizeof(err));
        if (rc != CASB_ERROR)
            break;
        casb_log_error("cannot load the integration; retrying", "scan_id", job->scan_id,
                       "error", err);
        casb_service_sleep_ms(2000);
        if (casb_service_stopping()) {
            outcome = SW_JOB_SHUTDOWN;
            goto release;
        }
    }
    if (rc == CASB_ENOTFOUND) {
        /* Deleted since the job was queued: its scan row is gone with it. */
        casb_log_info("job skipped: integration deleted", "scan_id", job->scan_id,
                      "integration_id", job->integration_id);
        outcome = SW_JOB_COMMIT;
        goto out;
    }

    sw_sink_opts so = {
        .scan_id = job->scan_id,
        .integration_id = job->integration_id,
        .account_id = job->account_id,
        .provider = it.provider,
        .attempt = attempt,
        .scan_started_at = started_at,
        .batch_size = (int)st->result_batch_size,
        .send = send_result,
        .send_ud = &jc,
        .heartbeat = renew_lease,
        .heartbeat_ud = &jc,
        .heartbeat_interval_ms = SW_LEASE_CHECK_MS,
    };
    if (sw_sink_new(&sink, &so, err, sizeof(err)) != 0) {
        casb_log_error("cannot create the result sink", "scan_id", job->scan_id, "error", err);
        goto release;
    }
    metric_add(m_started, 1);
    snprintf(attempt_s, sizeof(attempt_s), "%d", attempt);
    casb_log_info("scan started", "scan_id", job->scan_id, "integration_id", job->integration_id,
                  "account_id", job->account_id, "provider", it.provider, "reason", job->reason,
                  "worker_id", st->worker_id, "attempt", attempt_s);

    if (it.paused) {
        snprintf(scan_err, sizeof(scan_err), "integration is paused");
        error_kind = "cancelled";
        goto finish;
    }
    provider = casb_provider_find(it.provider);
    if (!provider) {
        snprintf(scan_err, sizeof(scan_err), "provider %s is not supported by this worker",
                 it.provider);
        error_kind = "internal";
        goto finish;
    }
    if (rc == CASB_EINVALID) {
        snprintf(scan_err, sizeof(scan_err), "integration config is not a JSON object");
        error_kind = "internal";
        goto finish;
    }
    config = it.config; /* borrowed from it */
    if (casb_integration_credentials_open(w->keys, it.credentials_sealed, &credentials, err,
                                          sizeof(err)) != 0) {
        snprintf(scan_err, sizeof(scan_err), "credentials cannot be opened: %.400s", err);
        error_kind = "internal";
        goto finish;
    }
    casb_http_client_opts ho = {
        .timeout_ms = st->http_timeout_ms,
        .max_retries = (int)st->http_max_retries,
        .max_wait_s = st->retry_max_wait_s,
        .rate_limit_budget_s = st->rate_limit_budget_s,
        .cancel = w->cancel,
        .wait_check = renew_lease,
        .wait_check_ud = &jc,
    };
    if (casb_http_client_new(&http, &ho, err, sizeof(err)) != 0) {
        snprintf(scan_err, sizeof(scan_err), "cannot create the HTTP client: %.400s", err);
        error_kind = "internal";
        goto finish;
    }
    renew_ctx renew = {w, provider, job->integration_id, credentials};
    page_cache_ctx pcc = {w->db, job->integration_id};
    casb_page_cache page_cache = {page_cache_get, page_cache_put, &pcc, 0};
    /* extra: the requests of clients a provider makes for itself (one per thread). */
    casb_scan_ctx ctx = {
        .renew_credentials = renew_credentials,
        .renew_ud = &renew,
        .config = config,
        .credentials = credentials,
        .http = http,
        .allowed_endpoints = st->allowed_endpoints,
        .sink = sw_sink_iface(sink),
        .cancel = w->cancel,
        .now_s = (long long)time(NULL),
        .http_opts = &ho,
        .extra_stats = &extra,
        .dns_resolver = st->dns_resolver,
        .page_cache = &page_cache,
    };
    err[0] = '\0';
    scan_rc = provider->scan(&ctx, err, sizeof(err));
    if (scan_rc == 0 && !*w->cancel)
        page_cache_prune(w, job, started_at, page_cache.hits);
    if (scan_rc != 0) {
        snprintf(scan_err, sizeof(scan_err), "%.*s", SW_MAX_ERROR_LEN, err[0] ? err : "scan failed");
        error_kind = classify_error(scan_rc, scan_err);
    }

finish:
    if (http) {
        casb_http_stats total = {0};

        casb_http_stats_add(&total, casb_http_client_stats(http));
        casb_http_stats_add(&total, &extra);
        hstats.api_calls = total.requests;
        hstats.rate_limit_waits = total.rate_limit_waits;
        hstats.retries = total.retries;
        hstats.wait_ms = total.wait_ms;
        count_api_calls(provider_label(it.provider), &total);
    }
    metric_add(m_findings, (double)sw_sink_findings(sink));

    if (casb_service_stopping()) {
        /* Shutting down: the scan is neither completed nor failed. Its job stays uncommitted
         * and goes to another worker, which rescans from the start. */
        casb_log_info("scan abandoned on shutdown; the job will be redelivered", "scan_id",
                      job->scan_id);
        outcome = SW_JOB_SHUTDOWN;
        goto release;
    }
    if (sw_sink_lease_lost(sink) || jc.lease_lost) {
        /* Another worker holds the scan now (or it is gone); it sends the end message. */
        outcome = SW_JOB_COMMIT;
        goto flush;
    }
    if (sw_sink_send_failed(sink)) {
        casb_log_error("result messages could not be queued; the job will be redelivered",
                       "scan_id", job->scan_id);
        goto release;
    }
    if (scan_rc == 0 && !scan_err[0]) {
        rc = sw_sink_complete(sink, &hstats, err, sizeof(err));
    } else {
        rc = sw_sink_fail(sink, scan_err, error_kind, &hstats, err, sizeof(err));
    }
    if (rc != 0) {
        casb_log_error("end message could not be queued; the job will be redelivered",
                       "scan_id", job->scan_id, "error", err);
        goto release;
    }
    outcome = SW_JOB_COMMIT;

flush:
    /* A stop requested meanwhile leaves the flush what the grace period has left, so that a
     * flush that fails still releases the lease below before the watchdog ends the process. */
    flush_ms = casb_service_grace_left_ms(st->shutdown_grace_s);
    if (!casb_service_stopping() || flush_ms > SW_FLUSH_TIMEOUT_MS)
        flush_ms = SW_FLUSH_TIMEOUT_MS;
    if (casb_producer_flush(w->producer, (int)flush_ms, err, sizeof(err)) != 0) {
        /* Not durable: committing now could lose the scan's results. */
        casb_log_error("result messages not acknowledged; the job will be redelivered",
                       "scan_id", job->scan_id, "error", err);
        outcome = SW_JOB_REDELIVER;
        goto release;
    }
    if (!sw_sink_lease_lost(sink) && !jc.lease_lost) {
        char findings[32], messages[32], ms[32], ran[32], skipped[32], calls[32];
        int64_t duration_ms = casb_monotonic_ms() - t0;

        snprintf(findings, sizeof(findings), "%ld", sw_sink_findings(sink));
        snprintf(messages, sizeof(messages), "%d", sw_sink_messages(sink));
        snprintf(ms, sizeof(ms), "%lld", (long long)duration_ms);
        count_scan(provider_label(it.provider), scan_err[0] ? "failed" : "completed",
                   duration_ms);
        snprintf(ran, sizeof(ran), "%zu", sw_sink_checks_ran(sink));
        snprintf(skipped, sizeof(skipped), "%zu", sw_sink_checks_skipped(sink));
        snprintf(calls, sizeof(calls), "%ld", hstats.api_calls);
        if (scan_err[0]) {
            metric_add(m_failed, 1);
            casb_log_warn("scan failed", "scan_id", job->scan_id, "integration_id",
                          job->integration_id, "account_id", job->account_id, "error", scan_err,
                          "error_kind", error_kind, "findings", findings, "messages", messages,
                          "api_calls", calls, "duration_ms", ms);
        } else {
            metric_add(m_completed, 1);
            casb_log_info("scan completed", "scan_id", job->scan_id, "integration_id",
                          job->integration_id, "account_id", job->account_id, "findings",
                          findings, "messages", messages, "checks_ran", ran, "checks_skipped",
                          skipped, "api_calls", calls, "duration_ms", ms);
        }
    }
    goto out;

release:
    /* The job will come back (to this worker or another one): let it take the scan at once
     * instead of waiting for our lease to expire. */
    rc = sw_store_release_lease(w->db, job->scan_id, st->worker_id, attempt, err, sizeof(err));
    if (rc != 0)
        casb_log_warn("cannot release the lease; it will expire", "scan_id", job->scan_id,
                      "error", err);
out:
    casb_integration_credentials_free(credentials);
    casb_http_client_free(http);
    sw_sink_free(sink);
    casb_integration_stored_clear(&it);
    return outcome;
}

#define SW_LEASE_WAIT_ERROR (-1)
#define SW_LEASE_WAIT_STOP (-2)
/* Longest single sleep while waiting for another worker's lease: short enough to notice a
 * shutdown or the scan finishing soon, long enough not to poll the row needlessly. */
#define SW_LEASE_POLL_MS 2000

/* The job's scan is running under a lease that has not lapsed. Its worker may be alive (a
 * duplicate job: the scan finishes and this job is then skipped) or dead (kill -9, a lost
 * host: nobody renews the lease). Skipping the job in the second case would leave the scan
 * running until the scheduler's sweep fails it minutes later, so the job waits for the lease
 * instead, then takes the scan over. Returns 1 when the lease was held (waited a while: try
 * to take it again), 0 when it is not held (the scan finished or is gone: skip the job),
 * SW_LEASE_WAIT_ERROR on a database error, SW_LEASE_WAIT_STOP on shutdown. *waited: whether
 * the wait was already logged. */
static int lease_wait(sw_worker *w, const sw_job *job, int *waited)
{
    char err[256];
    long left_ms = 0;
    int rc;

    rc = sw_store_lease_held(w->db, job->scan_id, &left_ms, err, sizeof(err));
    if (rc < 0) {
        casb_log_warn("cannot read the scan lease", "scan_id", job->scan_id, "error", err);
        return SW_LEASE_WAIT_ERROR;
    }
    if (rc == 0)
        return 0;
    if (!*waited)
        casb_log_info("scan leased by another worker: waiting for it to finish or lapse",
                      "scan_id", job->scan_id, "integration_id", job->integration_id);
    *waited = 1;
    casb_service_sleep_ms(left_ms < SW_LEASE_POLL_MS ? left_ms + 50 : SW_LEASE_POLL_MS);
    if (casb_service_stopping())
        return SW_LEASE_WAIT_STOP;
    return 1;
}

sw_job_outcome sw_worker_handle(sw_worker *w, const casb_message *msg)
{
    char reason[256];
    char err[512];
    char started_at[48];
    sw_job job;
    int attempt = 0;
    int waited = 0;
    int rc;

    if (sw_job_parse(&job, msg->value, msg->value_len, reason, sizeof(reason)) != 0) {
        casb_log_warn("invalid job message sent to the dead-letter topic", "reason", reason);
        if (casb_dlq_publish(w->producer, msg, reason, err, sizeof(err)) != 0) {
            casb_log_error("dead-letter publish failed", "error", err);
            return casb_service_stopping() ? SW_JOB_SHUTDOWN : SW_JOB_REDELIVER;
        }
        metric_add(m_invalid, 1);
        return SW_JOB_COMMIT;
    }

    /* A fresh cancel flag per scan; a stop requested meanwhile still cancels. */
    *w->cancel = 0;
    if (casb_service_stopping()) {
        *w->cancel = 1;
        return SW_JOB_SHUTDOWN;
    }

    for (;;) {
        rc = sw_store_take_lease(w->db, job.scan_id, job.integration_id, w->settings->worker_id,
                                 w->settings->lease_s, &attempt, started_at, sizeof(started_at),
                                 err, sizeof(err));
        if (rc > 0)
            break;
        if (rc == 0) {
            rc = lease_wait(w, &job, &waited);
            if (rc == 0)
                break;
            if (rc > 0)
                continue;
            if (rc == SW_LEASE_WAIT_STOP)
                return SW_JOB_SHUTDOWN;
        } else {
            casb_log_error("cannot take the scan lease; retrying", "scan_id", job.scan_id,
                           "error", err);
        }
        casb_service_sleep_ms(2000);
        if (casb_service_stopping())
            return SW_JOB_SHUTDOWN;
    }
    if (rc == 0) {
        metric_add(m_skipped, 1);
        casb_log_info("job skipped: scan already taken or finished", "scan_id", job.scan_id,
                      "integration_id", job.integration_id, "job_id", job.job_id);
        return SW_JOB_COMMIT;
    }
    return run_scan(w, &job, attempt, started_at);
}
