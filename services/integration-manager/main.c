/* casb-integration-manager: integrations, their sealed credentials and the provider
 * catalogue over HTTP. This file only wires the modules together. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/http_server.h"
#include "casb/log.h"
#include "casb/timeutil.h"
#include "im_app.h"
#include "im_routes.h"
#include "im_settings.h"

#define PROG "casb-integration-manager"
#define CONNECT_TIMEOUT_MS 60000
#define IDLE_SLICE_MS 200

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

int main(int argc, char **argv)
{
    im_settings settings;
    casb_cfg_var vars[IM_SETTINGS_COUNT];
    size_t nvars = im_settings_table(&settings, vars, IM_SETTINGS_COUNT);
    casb_http_server *server = NULL;
    im_app app;
    char err[512];
    int rc;

    casb_config_init_or_exit(argc, argv, PROG,
                             "Manages integrations (SaaS connections and their encrypted "
                             "credentials) and queues their scans.",
                             vars, nvars);
    casb_log_init("integration-manager", settings.log_level);
    install_signals();

    rc = im_app_open(&app, &settings, CONNECT_TIMEOUT_MS, err, sizeof(err));
    if (rc == CASB_EINVALID) {
        fprintf(stderr, "%s: %s\n", PROG, err);
        return IM_EXIT_CONFIG;
    }
    if (rc != 0) {
        casb_log_error("cannot start", "error", err);
        return 1;
    }
    if (im_server_start(&server, &app, err, sizeof(err)) != 0) {
        casb_log_error("cannot start HTTP server", "addr", settings.http_addr, "error", err);
        im_app_close(&app, 0);
        return 1;
    }
    casb_log_info("integration-manager started", "addr", settings.http_addr);

    while (!stop_requested) {
        casb_producer_poll(app.producer);
        casb_sleep_ms(IDLE_SLICE_MS);
    }

    casb_log_info("shutting down");
    /* In-flight requests finish first; their events are then flushed with the producer. */
    casb_http_server_free(server);
    im_app_close(&app, (int)settings.shutdown_grace_s * 1000);
    casb_log_info("stopped");
    return 0;
}
