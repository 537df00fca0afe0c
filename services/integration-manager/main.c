/* casb-integration-manager: integrations, their sealed credentials and the provider
 * catalogue over HTTP. This file only wires the modules together. */
#include <stdio.h>
#include <string.h>

#include "casb/error.h"
#include "casb/http_server.h"
#include "casb/log.h"
#include "casb/service.h"
#include "im_accounts.h"
#include "im_app.h"
#include "im_ops.h"
#include "im_replay.h"
#include "im_rotate.h"
#include "im_routes.h"
#include "im_settings.h"

int main(int argc, char **argv)
{
    im_settings settings;
    casb_http_server *server = NULL;
    im_app app;
    char err[512];
    int rc;

    /* The subcommands come before the service's settings, which refuse any argument. */
    if (argc > 1 && strcmp(argv[1], IM_ROTATE_COMMAND) == 0)
        return im_rotate_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], IM_MIGRATE_COMMAND) == 0)
        return im_migrate_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], IM_TOPICS_COMMAND) == 0)
        return im_topics_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], IM_ACCOUNT_COMMAND) == 0)
        return im_account_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], IM_TOKEN_COMMAND) == 0)
        return im_token_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], IM_REPLAY_COMMAND) == 0)
        return im_replay_main(argc - 1, argv + 1);
    im_settings_load_or_exit(&settings, argc, argv);
    casb_log_init("integration-manager", settings.log_level);
    casb_service_signals_install();

    rc = im_app_open(&app, &settings, err, sizeof(err));
    if (rc == CASB_EINVALID) {
        fprintf(stderr, "casb-integration-manager: %s\n", err);
        return CASB_SERVICE_EXIT_CONFIG;
    }
    if (rc != 0) {
        casb_log_error("cannot start", "error", err);
        return 1;
    }
    if (im_server_start(&server, &app, err, sizeof(err)) != 0) {
        casb_log_error("cannot start the HTTP server", "addr", settings.http_addr, "error", err);
        im_app_close(&app);
        return 1;
    }
    casb_log_info("integration-manager started", "addr", settings.http_addr);
    casb_service_watchdog_start(settings.shutdown_grace_s);

    casb_service_wait(app.producer);

    casb_log_info("shutting down");
    /* In-flight requests finish first; their events are then flushed with the producer. */
    casb_http_server_free(server);
    im_app_close(&app);
    casb_log_info("stopped");
    casb_service_watchdog_stop();
    return 0;
}
