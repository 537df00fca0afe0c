#ifndef SCHED_APP_H
#define SCHED_APP_H

#include <stddef.h>

#include "casb/db.h"
#include "casb/kafka.h"
#include "casb/service.h"
#include "sched_settings.h"

/* What the scheduler's loop and its health endpoints share. */
typedef struct {
    const sched_settings *settings; /* borrowed */
    casb_db_pool *pool;             /* the loop's connection */
    casb_producer *producer;
    casb_service_probe *probe;      /* /readyz, with a connection of its own */
} sched_app;

/* Brings the schema up to date (waiting for PostgreSQL if needed), opens the pool, the
 * producer and the readiness probe. On failure everything opened so far is closed. */
int sched_app_open(sched_app *app, const sched_settings *s, char *err, size_t errlen);

/* Flushes the producer (up to the shutdown grace) and closes everything; zeroed-app safe. */
void sched_app_close(sched_app *app);

#endif
