#ifndef FA_ROUTES_H
#define FA_ROUTES_H

#include <stddef.h>

#include "casb/db.h"
#include "casb/http_server.h"
#include "casb/kafka.h"
#include "casb/service.h"
#include "fa_catalogue.h"
#include "fa_ingest.h"
#include "fa_summary.h"
#include "fa_webhook_send.h"

/* The HTTP API of findings-api (proto/openapi/findings-api.yaml). */

typedef struct {
    casb_db_pool *pool;
    const fa_catalogue *catalogue;
    casb_producer *producer; /* for /readyz */
    fa_ingest *ingest;       /* for /readyz: started before the HTTP server */
    casb_service_probe *probe; /* for /readyz: PostgreSQL and Kafka */
    const fa_webhook_env *webhooks; /* keys, egress guard: for /v1/webhooks */
    fa_summary_cache *summaries;    /* for /v1/summary; NULL: rendered for every request */
} fa_app;

/* Registers every route; the server's app must be an fa_app. 0 or -1. */
int fa_routes_register(casb_http_server *s);

/* /readyz: PostgreSQL and Kafka reachable. */
int fa_ready(void *app, char *reason, size_t reasonlen);

#endif
