#include "fa_webhook_sender.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/log.h"
#include "casb/metrics.h"
#include "casb/timeutil.h"
#include "fa_webhook_store.h"

#define SENDER_BATCH 8
#define SENDER_IDLE_MS 250    /* poll interval of an empty queue */
#define SENDER_ERROR_MS 2000  /* pause after a database error */
#define SENDER_DB_CONNECT_TIMEOUT_MS 5000
#define MAX_SENDERS 64

/* ---- metrics ---- */

static casb_metric *m_succeeded, *m_retried, *m_failed;

void fa_webhook_metrics_init(void)
{
    static const char name[] = "casb_webhook_deliveries_total";
    static const char help[] = "Webhook delivery attempts by outcome.";

    m_succeeded = casb_metrics_counter(name, help, "outcome=\"succeeded\"");
    m_retried = casb_metrics_counter(name, help, "outcome=\"retried\"");
    m_failed = casb_metrics_counter(name, help, "outcome=\"failed\"");
}

void fa_webhook_metrics_count(const char *outcome)
{
    casb_metric *m = strcmp(outcome, "succeeded") == 0 ? m_succeeded
                     : strcmp(outcome, "retried") == 0 ? m_retried
                                                       : m_failed;
    if (m)
        casb_metric_add(m, 1);
}

long long fa_webhook_retry_delay_ms(long attempts, long base_ms, long max_s,
                                    long retry_after_s, double jitter)
{
    long long cap = (long long)max_s * 1000;
    long long delay = base_ms;

    for (long i = 1; i < attempts && delay < cap; i++)
        delay *= 2;
    delay = (long long)((double)delay * jitter);
    if (retry_after_s >= 0 && delay < (long long)retry_after_s * 1000)
        delay = (long long)retry_after_s * 1000;
    return delay < cap ? delay : cap;
}

/* ---- threads ---- */

struct fa_webhook_sender {
    fa_webhook_sender_opts o;
    atomic_int stop;
    int started;
    pthread_t threads[MAX_SENDERS];
    casb_db *db[MAX_SENDERS];
};

typedef struct {
    fa_webhook_sender *s;
    casb_db *db;
    casb_http_client *http;
    uint64_t rng;
} sender_thread;

static void sleep_unless_stopped(fa_webhook_sender *s, long ms)
{
    while (ms > 0 && !atomic_load(&s->stop)) {
        long step = ms < 100 ? ms : 100;

        casb_sleep_ms(step);
        ms -= step;
    }
}

/* 0.8..1.2, so that deliveries failed together do not all come back together. */
static double jitter(sender_thread *t)
{
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 7;
    t->rng ^= t->rng << 17;
    return 0.8 + 0.4 * (double)(t->rng % 1000) / 1000.0;
}

static void record(sender_thread *t, const char *id, long attempts, const char *why_no_send,
                   const fa_webhook_result *res)
{
    const fa_webhook_sender_opts *o = &t->s->o;
    fa_webhook_outcome out = {0};
    char err[256];

    if (res && res->ok) {
        out.ok = 1;
        out.status_code = res->status_code;
        fa_webhook_metrics_count("succeeded");
    } else {
        out.status_code = res ? res->status_code : 0;
        out.error = res ? res->error : why_no_send;
        if (attempts >= o->max_attempts) {
            out.retry_in_ms = -1;
            fa_webhook_metrics_count("failed");
        } else {
            out.retry_in_ms = fa_webhook_retry_delay_ms(attempts, o->retry_base_ms,
                                                        o->retry_max_s,
                                                        res ? res->retry_after_s : -1,
                                                        jitter(t));
            fa_webhook_metrics_count("retried");
        }
    }
    /* When this fails, the lease runs out and the delivery is attempted again. */
    if (fa_webhook_store_record(t->db, id, &out, err, sizeof(err)) != 0)
        casb_log_error("cannot record a webhook delivery", "delivery_id", id, "error", err);
}

static void deliver(sender_thread *t, const PGresult *claim, int row)
{
    const fa_webhook_env *env = &t->s->o.env;
    const char *id = casb_db_get(claim, row, "id");
    long attempts = (long)casb_db_get_int(claim, row, "attempts", 1);
    fa_webhook_result res;
    char err[256];
    char *body = fa_webhook_event_body(t->db, env->catalogue, claim, row, err, sizeof(err));

    if (!body) {
        record(t, id, attempts, err, NULL);
        return;
    }
    fa_webhook_target target = {
        .delivery_id = id,
        .event_type = casb_db_get(claim, row, "event_type"),
        .url = casb_db_get(claim, row, "url"),
        .auth_type = casb_db_get(claim, row, "auth_type"),
        .auth_sealed = casb_db_get(claim, row, "auth_sealed"),
    };
    fa_webhook_send(env, t->http, &target, body, &res);
    free(body);
    if (!res.ok)
        casb_log_warn("webhook delivery failed", "delivery_id", id, "webhook_id",
                      casb_db_get(claim, row, "webhook_id"), "error", res.error);
    record(t, id, attempts, NULL, &res);
}

/* The lease of a claimed delivery: its attempt plus room to record the outcome. */
static long lease_s(const fa_webhook_sender *s)
{
    return s->o.env.timeout_ms / 1000 + 30;
}

static void *sender_main(void *arg)
{
    sender_thread *t = arg;
    fa_webhook_sender *s = t->s;
    char err[256];

    while (!atomic_load(&s->stop)) {
        PGresult *res = fa_webhook_store_claim(t->db, SENDER_BATCH, lease_s(s), err,
                                               sizeof(err));

        if (!res) {
            casb_log_error("cannot claim webhook deliveries", "error", err);
            sleep_unless_stopped(s, SENDER_ERROR_MS);
            continue;
        }
        /* Claimed rows are all attempted, even when stopping: each takes at most the
         * attempt's timeout, within the shutdown grace. */
        for (int i = 0; i < PQntuples(res); i++)
            deliver(t, res, i);
        if (PQntuples(res) == 0)
            sleep_unless_stopped(s, SENDER_IDLE_MS);
        PQclear(res);
    }
    casb_http_client_free(t->http);
    free(t);
    return NULL;
}

static int start_thread(fa_webhook_sender *s, int i, char *err, size_t errlen)
{
    sender_thread *t = calloc(1, sizeof(*t));

    if (!t)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    t->s = s;
    t->db = s->db[i];
    t->rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)casb_now_ms() << 8) ^ (uint64_t)(i + 1);
    if (fa_webhook_client_new(&t->http, &s->o.env, err, errlen) != 0) {
        free(t);
        return -1;
    }
    if (pthread_create(&s->threads[i], NULL, sender_main, t) != 0) {
        casb_http_client_free(t->http);
        free(t);
        return casb_fail(err, errlen, CASB_ERROR, "cannot start a webhook sender thread");
    }
    s->started++;
    return 0;
}

int fa_webhook_sender_start(fa_webhook_sender **out, const fa_webhook_sender_opts *o,
                            char *err, size_t errlen)
{
    fa_webhook_sender *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (!s)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    s->o = *o;
    if (s->o.threads < 1 || s->o.threads > MAX_SENDERS)
        s->o.threads = s->o.threads < 1 ? 1 : MAX_SENDERS;
    atomic_init(&s->stop, 0);
    for (int i = 0; i < s->o.threads; i++) {
        if (casb_db_open(&s->db[i], o->database_url, SENDER_DB_CONNECT_TIMEOUT_MS, err,
                         errlen) != 0 ||
            start_thread(s, i, err, errlen) != 0) {
            fa_webhook_sender_stop(s);
            return -1;
        }
    }
    *out = s;
    return 0;
}

void fa_webhook_sender_stop(fa_webhook_sender *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    for (int i = 0; i < s->started; i++)
        pthread_join(s->threads[i], NULL);
    for (int i = 0; i < MAX_SENDERS; i++) {
        if (s->db[i])
            casb_db_close(s->db[i]);
    }
    free(s);
}
