#include "im_app.h"

#include <string.h>

#include "casb/error.h"

int im_app_open(im_app *app, const im_settings *s, char *err, size_t errlen)
{
    char why[256];

    memset(app, 0, sizeof(*app));
    app->settings = s;
    if (casb_keyring_new(&app->keys, s->master_key, s->master_key_previous, why,
                         sizeof(why)) != 0) {
        casb_fail(err, errlen, CASB_EINVALID, "CASB_MASTER_KEY: %s", why);
        goto fail_invalid;
    }
    if (casb_auth_new(&app->auth, s->admin_token, why, sizeof(why)) != 0) {
        casb_fail(err, errlen, CASB_EINVALID, "CASB_ADMIN_TOKEN: %s", why);
        goto fail_invalid;
    }
    if (casb_service_migrate(s->database_url, err, errlen) != 0)
        goto fail;
    if (casb_db_pool_new(&app->pool, s->database_url, (int)s->db_pool_size,
                         CASB_SERVICE_CONNECT_TIMEOUT_MS, err, errlen) != 0)
        goto fail;
    if (casb_auth_connect(app->auth, app->pool, err, errlen) != 0 ||
        casb_auth_cache_tokens(app->auth, s->database_url, err, errlen) != 0)
        goto fail;
    if (casb_producer_new(&app->producer, s->kafka_brokers, "casb-integration-manager", err,
                          errlen) != 0)
        goto fail;
    if (casb_service_probe_new(&app->probe, s->database_url, app->producer, err, errlen) != 0)
        goto fail;
    return 0;
fail_invalid:
    im_app_close(app);
    return CASB_EINVALID;
fail:
    im_app_close(app);
    return -1;
}

void im_app_close(im_app *app)
{
    if (app->settings)
        casb_service_flush(app->producer, app->settings->shutdown_grace_s);
    casb_service_probe_free(app->probe);
    casb_producer_free(app->producer);
    casb_db_pool_free(app->pool);
    casb_auth_free(app->auth);
    casb_keyring_free(app->keys);
    memset(app, 0, sizeof(*app));
}

int im_app_ready(void *ctx, char *reason, size_t reasonlen)
{
    im_app *app = ctx;

    return casb_service_probe_ready(app->probe, reason, reasonlen);
}
