#include "sched_loop.h"

#include <stdio.h>
#include <string.h>

#include "casb/log.h"
#include "casb/metrics.h"
#include "casb/service.h"
#include "casb/timeutil.h"
#include "sched_claim.h"
#include "sched_relay.h"
#include "sched_sweep.h"

#define POOL_WAIT_MS 5000
#define RELAY_FLUSH_TIMEOUT_MS 10000
#define RELAY_FAILURE_BACKOFF_MS 2000
#define BACKLOG_EVERY_MS 1000
#define SWEEP_EVERY_MS 60000
#define SWEEP_FIRST_AFTER_MS 10000
#define SWEEP_STALE_AFTER_S 600      /* lease expired 10 minutes ago and nobody took it over */
#define OUTBOX_RETENTION_S 604800    /* sent jobs kept a week for inspection */
#define MAX_SLEEP_MS 100

typedef struct {
    casb_metric *claimed;
    casb_metric *scheduled;
    casb_metric *dispatched;
    casb_metric *relay_failures;
    casb_metric *claim_failures;
    casb_metric *pending;
    casb_metric *lag;
    casb_metric *abandoned;
} loop_metrics;

static void register_metrics(loop_metrics *m)
{
    m->claimed = casb_metrics_counter("casb_scheduler_integrations_claimed_total",
                                      "Due integrations claimed (next scan moved forward).",
                                      NULL);
    m->scheduled = casb_metrics_counter("casb_scheduler_scans_scheduled_total",
                                        "Scans queued by the scheduler (reason scheduled).",
                                        NULL);
    m->dispatched = casb_metrics_counter("casb_scheduler_scans_dispatched_total",
                                         "Scan jobs published to casb.scan.jobs and "
                                         "acknowledged.",
                                         NULL);
    m->relay_failures = casb_metrics_counter("casb_scheduler_relay_failures_total",
                                             "Relay rounds rolled back (jobs sent again).",
                                             NULL);
    m->claim_failures = casb_metrics_counter("casb_scheduler_claim_failures_total",
                                             "Claim rounds that failed.", NULL);
    m->pending = casb_metrics_gauge("casb_scheduler_outbox_pending",
                                    "Scan jobs in the outbox not yet published.", NULL);
    m->lag = casb_metrics_gauge("casb_scheduler_relay_lag_seconds",
                                "Age of the oldest scan job not yet published.", NULL);
    m->abandoned = casb_metrics_counter("casb_scheduler_scans_abandoned_total",
                                        "Running scans given up after their worker was lost.",
                                        NULL);
}

int64_t sched_loop_sleep_ms(const sched_deadlines *d, int64_t now, int64_t max_ms)
{
    int64_t next = d->claim;

    if (d->relay < next)
        next = d->relay;
    if (d->backlog < next)
        next = d->backlog;
    if (d->sweep < next)
        next = d->sweep;
    if (next <= now)
        return 0;
    return next - now < max_ms ? next - now : max_ms;
}

int64_t sched_loop_next_relay(int64_t now, int sent, long batch, long poll_ms)
{
    if (sent < 0)
        return now + (poll_ms > RELAY_FAILURE_BACKOFF_MS ? poll_ms : RELAY_FAILURE_BACKOFF_MS);
    if (sent >= batch)
        return now;
    return now + poll_ms;
}

int64_t sched_loop_next_claim(int64_t now, int claimed, long batch, long tick_ms)
{
    if (claimed >= batch)
        return now;
    return now + tick_ms;
}

/* Fills *r (zero on failure); returns 0 or -1. */
static int claim_step(sched_app *app, loop_metrics *m, sched_claim_result *r)
{
    casb_db *db = casb_db_pool_acquire(app->pool, POOL_WAIT_MS);
    char err[512];
    int rc;

    memset(r, 0, sizeof(*r));
    if (!db) {
        casb_metric_add(m->claim_failures, 1);
        casb_log_warn("claim skipped: no database connection");
        return -1;
    }
    rc = sched_claim_due(db, app->settings->batch, app->settings->jitter_pct, r, err,
                         sizeof(err));
    casb_db_pool_release(app->pool, db);
    if (rc != 0) {
        memset(r, 0, sizeof(*r)); /* nothing was queued: the claim rolled back */
        casb_metric_add(m->claim_failures, 1);
        casb_log_warn("claim failed", "error", err);
        return -1;
    }
    casb_metric_add(m->claimed, r->claimed);
    casb_metric_add(m->scheduled, r->enqueued);
    return 0;
}

/* Returns the jobs published, or -1. */
static int relay_step(sched_app *app, loop_metrics *m)
{
    casb_db *db = casb_db_pool_acquire(app->pool, POOL_WAIT_MS);
    char err[512];
    char count[16];
    int sent = 0;
    int rc;

    if (!db) {
        casb_metric_add(m->relay_failures, 1);
        casb_log_warn("relay skipped: no database connection");
        return -1;
    }
    rc = sched_relay_once(db, app->producer, app->settings->batch, RELAY_FLUSH_TIMEOUT_MS, &sent,
                          err, sizeof(err));
    casb_db_pool_release(app->pool, db);
    if (rc != 0) {
        casb_metric_add(m->relay_failures, 1);
        casb_log_warn("relay failed; jobs stay in the outbox", "error", err);
        return -1;
    }
    if (sent > 0) {
        snprintf(count, sizeof(count), "%d", sent);
        casb_metric_add(m->dispatched, sent);
        casb_log_info("scan jobs dispatched", "count", count);
    }
    return sent;
}

static void backlog_step(sched_app *app, loop_metrics *m)
{
    casb_db *db = casb_db_pool_acquire(app->pool, POOL_WAIT_MS);
    char err[512];
    long pending = 0;
    double age_s = 0;
    int rc;

    if (!db)
        return;
    rc = sched_relay_backlog(db, &pending, &age_s, err, sizeof(err));
    casb_db_pool_release(app->pool, db);
    if (rc != 0) {
        casb_log_debug("backlog query failed", "error", err);
        return;
    }
    casb_metric_set(m->pending, (double)pending);
    casb_metric_set(m->lag, age_s);
}

static void sweep_step(sched_app *app, loop_metrics *m)
{
    casb_db *db = casb_db_pool_acquire(app->pool, POOL_WAIT_MS);
    sched_sweep_result r;
    char err[512];
    int rc;

    if (!db)
        return;
    rc = sched_sweep(db, SWEEP_STALE_AFTER_S, OUTBOX_RETENTION_S, &r, err, sizeof(err));
    casb_db_pool_release(app->pool, db);
    if (rc != 0) {
        casb_log_warn("sweep failed", "error", err);
        return;
    }
    casb_metric_add(m->abandoned, r.abandoned);
}

void sched_loop_run(sched_app *app)
{
    const sched_settings *s = app->settings;
    loop_metrics m;
    sched_deadlines d;
    int64_t now = casb_monotonic_ms();

    register_metrics(&m);
    d.claim = now;
    d.relay = now;
    d.backlog = now;
    d.sweep = now + SWEEP_FIRST_AFTER_MS;

    while (!casb_service_stopping()) {
        now = casb_monotonic_ms();
        if (now >= d.claim) {
            sched_claim_result r;
            int rc = claim_step(app, &m, &r);

            /* A full batch means more may be due: claiming one batch a tick capped the
             * dispatch rate at batch / tick (500/s by default) however many were due. */
            d.claim = sched_loop_next_claim(now, rc == 0 ? r.claimed : -1, s->batch,
                                            s->tick_ms);
            if (r.enqueued > 0)
                d.relay = now; /* publish what was just queued without waiting for a poll */
        }
        if (!casb_service_stopping() && now >= d.relay) {
            int sent = relay_step(app, &m);

            d.relay = sched_loop_next_relay(casb_monotonic_ms(), sent, s->batch,
                                            s->relay_poll_ms);
        }
        if (now >= d.backlog) {
            backlog_step(app, &m);
            d.backlog = now + BACKLOG_EVERY_MS;
        }
        if (!casb_service_stopping() && now >= d.sweep) {
            sweep_step(app, &m);
            d.sweep = now + SWEEP_EVERY_MS;
        }
        casb_producer_poll(app->producer);
        casb_sleep_ms(sched_loop_sleep_ms(&d, casb_monotonic_ms(), MAX_SLEEP_MS));
    }
}
