#include "im_events.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "casb/error.h"
#include "casb/json.h"
#include "casb/timeutil.h"

static const char *const event_names[] = {"created", "updated", "paused", "resumed", "deleted",
                                          NULL};

static int event_known(const char *event)
{
    for (size_t i = 0; event_names[i]; i++) {
        if (strcmp(event_names[i], event) == 0)
            return 1;
    }
    return 0;
}

char *im_event_build(const char *event, const char *integration_id, const char *account_id,
                     const char *provider, time_t at)
{
    json_t *o = NULL;
    char ts[32];
    char *out = NULL;

    if (!event || !integration_id || !account_id || !provider || !event_known(event))
        return NULL;
    casb_time_rfc3339(ts, sizeof(ts), at);
    o = json_object();
    json_object_set_new(o, "schema", json_string(IM_EVENT_SCHEMA));
    json_object_set_new(o, "event", json_string(event));
    json_object_set_new(o, "integration_id", json_string(integration_id));
    json_object_set_new(o, "account_id", json_string(account_id));
    json_object_set_new(o, "provider", json_string(provider));
    json_object_set_new(o, "at", json_string(ts));
    out = casb_json_dump(o);
    json_decref(o);
    return out;
}

int im_event_publish(casb_producer *p, const char *event, const char *integration_id,
                     const char *account_id, const char *provider, int flush_timeout_ms,
                     char *err, size_t errlen)
{
    char *msg = im_event_build(event, integration_id, account_id, provider, time(NULL));
    int rc = -1;

    if (!msg)
        return casb_fail(err, errlen, CASB_ERROR, "cannot build %s event", event);
    if (casb_producer_send(p, CASB_TOPIC_INTEGRATION_EVENTS, integration_id, msg, strlen(msg),
                           err, errlen) != 0)
        goto out;
    if (casb_producer_flush(p, flush_timeout_ms, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    free(msg);
    return rc;
}
