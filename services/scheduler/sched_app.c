#include "sched_app.h"

#include <stdio.h>
#include <string.h>

#include "casb/error.h"
#include "casb/log.h"
#include "casb/migrate.h"

#define POOL_SIZE 2
#define POOL_CONNECT_TIMEOUT_MS 10000
#define READY_TIMEOUT_MS 2000

static int migrate(const sched_settings *s, int connect_timeout_ms, char *err, size_t errlen)
{
    casb_db *db = NULL;
    char applied_text[16];
    int applied = 0;
    int rc = -1;

    if (casb_db_open(&db, s->database_url, connect_timeout_ms, err, errlen) != 0)
        goto out;
    if (casb_migrate(db, casb_migrations, casb_migrations_count, &applied, err, errlen) != 0)
        goto out;
    snprintf(applied_text, sizeof(applied_text), "%d", applied);
    casb_log_info("migrations checked", "applied", applied_text);
    rc = 0;
out:
    casb_db_close(db);
    return rc;
}

int sched_app_open(sched_app *app, const sched_settings *s, int connect_timeout_ms, char *err,
                   size_t errlen)
{
    memset(app, 0, sizeof(*app));
    app->settings = s;
    if (migrate(s, connect_timeout_ms, err, errlen) != 0)
        goto fail;
    if (casb_db_pool_new(&app->pool, s->database_url, POOL_SIZE, POOL_CONNECT_TIMEOUT_MS, err,
                         errlen) != 0)
        goto fail;
    if (casb_producer_new(&app->producer, s->kafka_brokers, "casb-scheduler", err, errlen) != 0)
        goto fail;
    return 0;
fail:
    sched_app_close(app, 0);
    return -1;
}

void sched_app_close(sched_app *app, int flush_timeout_ms)
{
    char err[256];

    if (app->producer && flush_timeout_ms > 0 &&
        casb_producer_flush(app->producer, flush_timeout_ms, err, sizeof(err)) != 0)
        casb_log_warn("kafka flush at shutdown incomplete", "error", err);
    casb_producer_free(app->producer);
    casb_db_pool_free(app->pool);
    memset(app, 0, sizeof(*app));
}

int sched_app_ready(void *ctx, char *reason, size_t reasonlen)
{
    sched_app *app = ctx;
    casb_db *db = casb_db_pool_acquire(app->pool, READY_TIMEOUT_MS);
    int db_ok = 0;

    if (db) {
        db_ok = casb_db_ping(db);
        casb_db_pool_release(app->pool, db);
    }
    if (!db_ok) {
        casb_fail(reason, reasonlen, 0, "postgresql unreachable");
        return 0;
    }
    if (!casb_kafka_reachable(app->producer, READY_TIMEOUT_MS)) {
        casb_fail(reason, reasonlen, 0, "kafka unreachable");
        return 0;
    }
    return 1;
}
