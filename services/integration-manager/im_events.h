#ifndef IM_EVENTS_H
#define IM_EVENTS_H

#include <stddef.h>
#include <time.h>

#include "casb/kafka.h"

/* casb.integration.event/v1 messages on casb.integration.events, keyed by integration id.
 * They carry ids and the provider only: never names, config or credentials. */

#define IM_EVENT_SCHEMA "casb.integration.event/v1"

/* Builds the message: {"schema","event","integration_id","account_id","provider","at"}.
 * event is one of created, updated, paused, resumed, deleted. Returns a malloc'ed compact
 * JSON string, or NULL when event is unknown or an argument is missing. */
char *im_event_build(const char *event, const char *integration_id, const char *account_id,
                     const char *provider, time_t at);

/* Builds, produces and flushes (up to flush_timeout_ms) one event. 0 or -1 with err. */
int im_event_publish(casb_producer *p, const char *event, const char *integration_id,
                     const char *account_id, const char *provider, int flush_timeout_ms,
                     char *err, size_t errlen);

#endif
