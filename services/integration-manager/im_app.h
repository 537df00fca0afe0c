#ifndef IM_APP_H
#define IM_APP_H

#include <stddef.h>

#include "casb/auth.h"
#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/kafka.h"
#include "casb/service.h"
#include "im_settings.h"

/* What the integration-manager's handlers share. Everything is created at start and only
 * read afterwards; the pool, the producer and the probe are thread-safe. */
typedef struct {
    const im_settings *settings; /* borrowed */
    casb_keyring *keys;
    casb_auth *auth;
    casb_db_pool *pool;
    casb_producer *producer;
    casb_service_probe *probe;   /* /readyz */
} im_app;

/* Builds the keyring and the authenticator (CASB_EINVALID: a bad key or token, the message
 * names the variable), brings the schema up to date (waiting for PostgreSQL if needed), opens
 * the pool, the Kafka producer and the readiness probe. On failure everything opened so far
 * is closed again. */
int im_app_open(im_app *app, const im_settings *s, char *err, size_t errlen);

/* Flushes the producer (up to the shutdown grace), then closes everything. Safe on a zeroed
 * or partly opened app. */
void im_app_close(im_app *app);

/* /readyz (the server's app is an im_app): the probe's PostgreSQL and Kafka checks. */
int im_app_ready(void *app, char *reason, size_t reasonlen);

#endif
