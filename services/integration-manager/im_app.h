#ifndef IM_APP_H
#define IM_APP_H

#include <stddef.h>

#include "casb/auth.h"
#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/kafka.h"
#include "im_settings.h"

/* What the integration-manager's handlers share. Everything is created at start and only
 * read afterwards; the pool and the producer are thread-safe. */
typedef struct {
    const im_settings *settings; /* borrowed */
    casb_keyring *keys;
    casb_auth *auth;
    casb_db_pool *pool;
    casb_producer *producer;
} im_app;

/* Exit status when a configuration value is rejected after parsing (a malformed key). */
#define IM_EXIT_CONFIG 2

/* Builds the keyring and the authenticator (CASB_EINVALID: a bad key or token, the message
 * names the variable), connects to PostgreSQL retrying up to connect_timeout_ms, applies
 * the migrations, opens the pool and the Kafka producer. On failure everything opened so
 * far is closed again. */
int im_app_open(im_app *app, const im_settings *s, int connect_timeout_ms, char *err,
                size_t errlen);

/* Flushes the producer (up to flush_timeout_ms), then closes everything. Safe on a zeroed
 * or partly opened app. */
void im_app_close(im_app *app, int flush_timeout_ms);

/* /readyz: a pooled connection answers and the Kafka brokers answer metadata. */
int im_app_ready(void *app, char *reason, size_t reasonlen);

#endif
