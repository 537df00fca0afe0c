/* casb-scheduler: claims due integrations, queues their scans and relays the job outbox to
 * casb.scan.jobs. This file only wires the modules together. */
#include <stddef.h>

#include "casb/http_server.h"
#include "casb/log.h"
#include "casb/service.h"
#include "sched_app.h"
#include "sched_loop.h"
#include "sched_settings.h"

int main(int argc, char **argv)
{
    sched_settings settings;
    casb_http_server *server = NULL;
    sched_app app;
    char err[512];

    sched_settings_load_or_exit(&settings, argc, argv);
    casb_log_init("scheduler", settings.log_level);
    casb_service_signals_install();

    if (sched_app_open(&app, &settings, err, sizeof(err)) != 0) {
        casb_log_error("cannot start", "error", err);
        return 1;
    }
    if (casb_service_health_start(&server, settings.http_addr, app.probe, err, sizeof(err)) != 0) {
        casb_log_error("cannot start the HTTP server", "addr", settings.http_addr, "error", err);
        sched_app_close(&app);
        return 1;
    }
    casb_log_info("scheduler started", "addr", settings.http_addr);
    casb_service_watchdog_start(settings.shutdown_grace_s);

    sched_loop_run(&app);

    casb_log_info("shutting down");
    casb_http_server_free(server);
    sched_app_close(&app);
    casb_log_info("stopped");
    casb_service_watchdog_stop();
    return 0;
}
