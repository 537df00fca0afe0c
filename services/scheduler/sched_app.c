#include "sched_app.h"

#include <string.h>

/* One loop thread, one step at a time: one connection is all it uses. */
#define POOL_SIZE 1

int sched_app_open(sched_app *app, const sched_settings *s, char *err, size_t errlen)
{
    memset(app, 0, sizeof(*app));
    app->settings = s;
    if (casb_service_migrate(s->database_url, err, errlen) != 0)
        goto fail;
    if (casb_db_pool_new(&app->pool, s->database_url, POOL_SIZE, CASB_SERVICE_CONNECT_TIMEOUT_MS,
                         err, errlen) != 0)
        goto fail;
    if (casb_producer_new(&app->producer, s->kafka_brokers, "casb-scheduler", err, errlen) != 0)
        goto fail;
    if (casb_service_probe_new(&app->probe, s->database_url, app->producer, err, errlen) != 0)
        goto fail;
    return 0;
fail:
    sched_app_close(app);
    return -1;
}

void sched_app_close(sched_app *app)
{
    if (app->settings)
        casb_service_flush(app->producer, app->settings->shutdown_grace_s);
    casb_service_probe_free(app->probe);
    casb_producer_free(app->producer);
    casb_db_pool_free(app->pool);
    memset(app, 0, sizeof(*app));
}
