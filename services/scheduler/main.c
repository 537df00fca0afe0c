/* casb-scheduler: claims due integrations, queues their scans and relays the job outbox to
 * casb.scan.jobs. This file only wires the modules together. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "casb/http_server.h"
#include "casb/log.h"
#include "sched_app.h"
#include "sched_loop.h"
#include "sched_settings.h"

#define PROG "casb-scheduler"
#define CONNECT_TIMEOUT_MS 60000

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

/* Health and metrics only: every route the server answers itself is public. */
static int start_health_server(casb_http_server **out, sched_app *app, char *err,
                               size_t errlen)
{
    casb_http_server_opts opts;

    memset(&opts, 0, sizeof(opts));
    opts.addr = app->settings->http_addr;
    opts.num_threads = 4;
    opts.ready = sched_app_ready;
    opts.app = app;
    if (casb_http_server_new(out, &opts, err, errlen) != 0)
        return -1;
    if (casb_http_server_start(*out, err, errlen) != 0) {
        casb_http_server_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    sched_settings settings;
    casb_cfg_var vars[SCHED_SETTINGS_COUNT];
    size_t nvars = sched_settings_table(&settings, vars, SCHED_SETTINGS_COUNT);
    casb_http_server *server = NULL;
    sched_app app;
    char err[512];

    casb_config_init_or_exit(argc, argv, PROG,
                             "Dispatches due scans: claims integrations whose next scan is due "
                             "and relays the scan job outbox to Kafka.",
                             vars, nvars);
    casb_log_init("scheduler", settings.log_level);
    install_signals();

    if (sched_app_open(&app, &settings, CONNECT_TIMEOUT_MS, err, sizeof(err)) != 0) {
        casb_log_error("cannot start", "error", err);
        return 1;
    }
    if (start_health_server(&server, &app, err, sizeof(err)) != 0) {
        casb_log_error("cannot start HTTP server", "addr", settings.http_addr, "error", err);
        sched_app_close(&app, 0);
        return 1;
    }
    casb_log_info("scheduler started", "addr", settings.http_addr);

    sched_loop_run(&app, &stop_requested);

    casb_log_info("shutting down");
    casb_http_server_free(server);
    sched_app_close(&app, (int)settings.shutdown_grace_s * 1000);
    casb_log_info("stopped");
    return 0;
}
