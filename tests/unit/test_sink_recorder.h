/* A scan sink that records everything a provider reports, for the provider tests (checks on
 * snapshots, scans against a fake API). Header-only, included after cmocka.h and
 * provider.h. */
#ifndef CASB_TEST_SINK_RECORDER_H
#define CASB_TEST_SINK_RECORDER_H

#include <jansson.h>
#include <string.h>

#include "casb/json.h"
#include "provider.h"

typedef struct {
    casb_scan_sink sink;
    json_t *findings; /* [{"type","kind","id","name","url","details"}] */
    json_t *ran;      /* ["type", ...] */
    json_t *skipped;  /* {"type": "reason"} */
    json_t *seen;     /* {"kind": count} */
    int refuse;       /* make finding() fail */
    volatile int *cancel_after_first; /* set to 1 when the first finding arrives */
} recorder;

static int rec_finding(casb_scan_sink *sink, const char *type, const char *kind, const char *id,
                       const char *name, const char *url, json_t *details)
{
    recorder *r = sink->ctx;

    if (r->refuse) {
        json_decref(details);
        return -1;
    }
    json_array_append_new(r->findings,
                          json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:o}", "type", type, "kind", kind,
                                    "id", id, "name", name, "url", url, "details",
                                    details ? details : json_null()));
    if (r->cancel_after_first)
        *r->cancel_after_first = 1;
    return 0;
}

static void rec_ran(casb_scan_sink *sink, const char *type)
{
    json_array_append_new(((recorder *)sink->ctx)->ran, json_string(type));
}

static void rec_skipped(casb_scan_sink *sink, const char *type, const char *reason)
{
    json_object_set_new(((recorder *)sink->ctx)->skipped, type, json_string(reason));
}

static void rec_seen(casb_scan_sink *sink, const char *kind)
{
    recorder *r = sink->ctx;

    json_object_set_new(r->seen, kind, json_integer(casb_json_int(r->seen, kind, 0) + 1));
}

static void rec_init(recorder *r)
{
    memset(r, 0, sizeof(*r));
    r->sink.finding = rec_finding;
    r->sink.check_ran = rec_ran;
    r->sink.check_skipped = rec_skipped;
    r->sink.asset_seen = rec_seen;
    r->sink.ctx = r;
    r->findings = json_array();
    r->ran = json_array();
    r->skipped = json_object();
    r->seen = json_object();
}

static void rec_free(recorder *r)
{
    json_decref(r->findings);
    json_decref(r->ran);
    json_decref(r->skipped);
    json_decref(r->seen);
}

#endif
