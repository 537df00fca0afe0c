#ifndef SCHED_APP_H
#define SCHED_APP_H

#include <stddef.h>

#include "casb/db.h"
#include "casb/kafka.h"
#include "sched_settings.h"

/* What the scheduler's loop and its health endpoints share. */
typedef struct {
    const sched_settings *settings; /* borrowed */
    casb_db_pool *pool;   /* two connections: the loop's and /readyz's */
    casb_producer *producer;
} sched_app;

/* Connects to PostgreSQL retrying up to connect_timeout_ms, applies the migrations, opens
 * the pool and the producer. On failure everything opened so far is closed. */
int sched_app_open(sched_app *app, const sched_settings *s, int connect_timeout_ms, char *err,
                   size_t errlen);

/* Flushes the producer (up to flush_timeout_ms) and closes everything; zeroed-app safe. */
void sched_app_close(sched_app *app, int flush_timeout_ms);

/* /readyz: PostgreSQL answers and the Kafka brokers answer metadata. */
int sched_app_ready(void *app, char *reason, size_t reasonlen);

#endif
