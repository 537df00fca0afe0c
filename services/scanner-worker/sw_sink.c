#include "sw_sink.h"

#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"
#include "casb/timeutil.h"

#define SW_DEFAULT_MAX_BATCH_BYTES (768 * 1024)
#define SW_DEFAULT_HEARTBEAT_MS 10000
/* A single finding larger than this keeps its asset but loses its details, so one odd asset
 * cannot push a message past the broker's 1 MiB limit. */
#define SW_MAX_FINDING_BYTES (64 * 1024)

struct sw_sink {
    casb_scan_sink iface;
    char *scan_id;
    char *integration_id;
    char *account_id;
    char *provider;
    char *scan_started_at;
    int attempt;
    int batch_size;
    size_t max_batch_bytes;
    sw_sink_send_fn send;
    void *send_ud;
    sw_sink_heartbeat_fn heartbeat;
    void *heartbeat_ud;
    long heartbeat_interval_ms;
    sw_sink_clock_fn clock_ms;

    json_t *pending;      /* array of findings not yet sent */
    size_t pending_bytes; /* their serialized size */
    int seq;              /* messages sent so far */
    long findings;
    long assets_seen;
    int64_t last_heartbeat_ms;
    json_t *ran;          /* object used as an ordered set of finding types */
    json_t *skipped;      /* object: finding type -> reason */
    int lease_lost;
    int send_failed;
    int finished;
};

static int64_t default_clock(void)
{
    return casb_monotonic_ms();
}

int sw_sink_new(sw_sink **out, const sw_sink_opts *o, char *err, size_t errlen)
{
    sw_sink *s = NULL;

    *out = NULL;
    if (!o->scan_id || !o->integration_id || !o->account_id || !o->provider ||
        !o->scan_started_at || !o->send)
        return casb_fail(err, errlen, CASB_EINVALID, "sink: missing option");
    if (o->attempt < 1)
        return casb_fail(err, errlen, CASB_EINVALID, "sink: attempt must be >= 1");
    if (o->batch_size < 1 || o->batch_size > SW_SINK_MAX_BATCH)
        return casb_fail(err, errlen, CASB_EINVALID, "sink: batch size must be 1..%d",
                         SW_SINK_MAX_BATCH);
    s = calloc(1, sizeof(*s));
    if (!s)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    s->scan_id = strdup(o->scan_id);
    s->integration_id = strdup(o->integration_id);
    s->account_id = strdup(o->account_id);
    s->provider = strdup(o->provider);
    s->scan_started_at = strdup(o->scan_started_at);
    s->pending = json_array();
    s->ran = json_object();
    s->skipped = json_object();
    if (!s->scan_id || !s->integration_id || !s->account_id || !s->provider ||
        !s->scan_started_at || !s->pending || !s->ran || !s->skipped) {
        sw_sink_free(s);
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    }
    s->attempt = o->attempt;
    s->batch_size = o->batch_size;
    s->max_batch_bytes = o->max_batch_bytes ? o->max_batch_bytes : SW_DEFAULT_MAX_BATCH_BYTES;
    s->send = o->send;
    s->send_ud = o->send_ud;
    s->heartbeat = o->heartbeat;
    s->heartbeat_ud = o->heartbeat_ud;
    s->heartbeat_interval_ms =
        o->heartbeat_interval_ms > 0 ? o->heartbeat_interval_ms : SW_DEFAULT_HEARTBEAT_MS;
    s->clock_ms = o->clock_ms ? o->clock_ms : default_clock;
    s->last_heartbeat_ms = s->clock_ms();
    *out = s;
    return 0;
}

void sw_sink_free(sw_sink *s)
{
    if (!s)
        return;
    free(s->scan_id);
    free(s->integration_id);
    free(s->account_id);
    free(s->provider);
    free(s->scan_started_at);
    json_decref(s->pending);
    json_decref(s->ran);
    json_decref(s->skipped);
    free(s);
}

/* The members every result message starts with. seq is the number this message gets. */
static json_t *message_new(const sw_sink *s, const char *kind)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s}", "schema",
                     SW_RESULT_SCHEMA, "scan_id", s->scan_id, "integration_id",
                     s->integration_id, "account_id", s->account_id, "provider", s->provider,
                     "attempt", s->attempt, "seq", s->seq + 1, "kind", kind, "scan_started_at",
                     s->scan_started_at);
}

/* Serializes and sends msg (borrowed); on success the sequence number moves on. */
static int send_message(sw_sink *s, const json_t *msg, char *err, size_t errlen)
{
    char *text = NULL;
    int rc = -1;

    if (s->send_failed)
        return casb_fail(err, errlen, CASB_ERROR, "an earlier result message was not sent");
    text = casb_json_dump(msg);
    if (!text) {
        casb_fail(err, errlen, CASB_ERROR, "cannot serialize a result message");
        goto out;
    }
    if (s->send(s->send_ud, s->integration_id, text, strlen(text), err, errlen) != 0)
        goto out;
    s->seq++;
    rc = 0;
out:
    if (rc != 0)
        s->send_failed = 1;
    free(text);
    return rc;
}

/* Sends the pending findings as one "findings" message; nothing to do when empty. */
static int flush_pending(sw_sink *s, char *err, size_t errlen)
{
    json_t *msg = NULL;
    int rc = -1;

    if (json_array_size(s->pending) == 0)
        return 0;
    msg = message_new(s, "findings");
    if (!msg || json_object_set(msg, "findings", s->pending) != 0) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    if (send_message(s, msg, err, errlen) != 0)
        goto out;
    json_decref(s->pending);
    s->pending = json_array();
    s->pending_bytes = 0;
    if (!s->pending) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    rc = 0;
out:
    json_decref(msg);
    return rc;
}

/* Renews the lease when the interval has passed since the last renewal. */
static void maybe_heartbeat(sw_sink *s)
{
    int64_t now;

    if (!s->heartbeat || s->lease_lost)
        return;
    now = s->clock_ms();
    if (now - s->last_heartbeat_ms < s->heartbeat_interval_ms)
        return;
    s->last_heartbeat_ms = now;
    if (s->heartbeat(s->heartbeat_ud) != 0)
        s->lease_lost = 1;
}

/* Builds {"finding_type","asset":{kind,id,name,url},"details"}; details is stolen. */
static json_t *finding_new(const char *finding_type, const char *asset_kind,
                           const char *asset_id, const char *asset_name, const char *asset_url,
                           json_t *details)
{
    json_t *asset = json_pack("{s:s, s:s, s:s}", "kind", asset_kind, "id", asset_id, "name",
                              asset_name && asset_name[0] ? asset_name : asset_id);
    json_t *f = NULL;

    if (!asset)
        goto fail;
    if (casb_json_set_str(asset, "url", asset_url && asset_url[0] ? asset_url : NULL) != 0)
        goto fail;
    if (!details) {
        details = json_object();
    } else if (!json_is_object(details)) {
        /* The message contract wants an object; keep the value rather than lose it. */
        json_t *wrapped = json_object();
        if (!wrapped || json_object_set_new(wrapped, "value", details) != 0) {
            json_decref(wrapped);
            details = NULL;
            goto fail;
        }
        details = wrapped;
    }
    f = json_pack("{s:s, s:o, s:o}", "finding_type", finding_type, "asset", asset, "details",
                  details);
    /* json_pack "o" steals even on failure. */
    return f;
fail:
    json_decref(asset);
    json_decref(details);
    return NULL;
}

static int sink_finding(casb_scan_sink *iface, const char *finding_type, const char *asset_kind,
                        const char *asset_id, const char *asset_name, const char *asset_url,
                        json_t *details)
{
    sw_sink *s = iface->ctx;
    char err[256] = "";
    json_t *f = NULL;
    char *text = NULL;
    size_t len;
    int rc = -1;

    if (s->finished || s->send_failed || s->lease_lost) {
        json_decref(details);
        return -1;
    }
    if (!finding_type || !finding_type[0] || !asset_kind || !asset_kind[0] || !asset_id ||
        !asset_id[0]) {
        /* A provider bug; dropping one finding beats failing a whole scan over it. */
        casb_log_error("finding without type or asset dropped", "scan_id", s->scan_id,
                       "finding_type", finding_type);
        json_decref(details);
        return 0;
    }
    f = finding_new(finding_type, asset_kind, asset_id, asset_name, asset_url, details);
    if (!f)
        goto out;
    text = casb_json_dump(f);
    if (!text)
        goto out;
    len = strlen(text);
    if (len > SW_MAX_FINDING_BYTES) {
        json_object_set_new(f, "details", json_pack("{s:b}", "truncated", 1));
        free(text);
        text = casb_json_dump(f);
        if (!text)
            goto out;
        len = strlen(text);
    }
    if (json_array_size(s->pending) > 0 && s->pending_bytes + len > s->max_batch_bytes) {
        if (flush_pending(s, err, sizeof(err)) != 0)
            goto out;
    }
    if (json_array_append(s->pending, f) != 0)
        goto out;
    s->pending_bytes += len + 1;
    s->findings++;
    if (json_array_size(s->pending) >= (size_t)s->batch_size) {
        if (flush_pending(s, err, sizeof(err)) != 0)
            goto out;
    }
    maybe_heartbeat(s);
    rc = s->lease_lost ? -1 : 0;
out:
    if (rc != 0 && s->send_failed)
        casb_log_error("result message not sent; scan aborted", "scan_id", s->scan_id,
                       "error", err);
    free(text);
    json_decref(f);
    return rc;
}

static void sink_check_ran(casb_scan_sink *iface, const char *finding_type)
{
    sw_sink *s = iface->ctx;

    if (!finding_type || !finding_type[0])
        return;
    /* A check skipped anywhere in the scan did not evaluate everything it covers, so it
     * must not resolve anything: skipped wins over ran. */
    if (json_object_get(s->skipped, finding_type))
        return;
    json_object_set_new(s->ran, finding_type, json_true());
}

static void sink_check_skipped(casb_scan_sink *iface, const char *finding_type,
                               const char *reason)
{
    sw_sink *s = iface->ctx;

    if (!finding_type || !finding_type[0])
        return;
    json_object_del(s->ran, finding_type);
    json_object_set_new(s->skipped, finding_type,
                        json_string(reason && reason[0] ? reason : "skipped"));
}

static void sink_asset_seen(casb_scan_sink *iface, const char *asset_kind)
{
    sw_sink *s = iface->ctx;

    s->assets_seen++;
    maybe_heartbeat(s);
}

casb_scan_sink *sw_sink_iface(sw_sink *s)
{
    s->iface.finding = sink_finding;
    s->iface.check_ran = sink_check_ran;
    s->iface.check_skipped = sink_check_skipped;
    s->iface.asset_seen = sink_asset_seen;
    s->iface.ctx = s;
    return &s->iface;
}

json_t *sw_sink_coverage(const sw_sink *s)
{
    json_t *ran = json_array();
    json_t *skipped = json_array();
    const char *key;
    json_t *value;

    if (!ran || !skipped)
        goto fail;
    json_object_foreach(s->ran, key, value) {
        if (json_array_append_new(ran, json_string(key)) != 0)
            goto fail;
    }
    json_object_foreach(s->skipped, key, value) {
        json_t *one = json_pack("{s:s, s:O}", "finding_type", key, "reason", value);
        if (json_array_append_new(skipped, one) != 0)
            goto fail;
    }
    return json_pack("{s:o, s:o}", "ran", ran, "skipped", skipped);
fail:
    json_decref(ran);
    json_decref(skipped);
    return NULL;
}

static json_t *stats_new(const sw_sink *s, const sw_sink_http_stats *st)
{
    sw_sink_http_stats zero = {0};

    if (!st)
        st = &zero;
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "api_calls", (json_int_t)st->api_calls,
                     "assets_seen", (json_int_t)s->assets_seen, "findings",
                     (json_int_t)s->findings, "rate_limit_waits",
                     (json_int_t)st->rate_limit_waits, "retries", (json_int_t)st->retries,
                     "wait_ms", (json_int_t)st->wait_ms);
}

/* Sends the pending findings, then the final message of the given kind; extra (stolen) is
 * merged into it. */
static int finish(sw_sink *s, const char *kind, json_t *extra, const sw_sink_http_stats *st,
                  char *err, size_t errlen)
{
    json_t *msg = NULL;
    int rc = -1;

    if (s->finished) {
        casb_fail(err, errlen, CASB_ECONFLICT, "the scan's final message was already sent");
        goto out;
    }
    if (!extra) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    if (flush_pending(s, err, errlen) != 0)
        goto out;
    msg = message_new(s, kind);
    if (!msg || json_object_update(msg, extra) != 0 ||
        json_object_set_new(msg, "stats", stats_new(s, st)) != 0 ||
        json_object_set_new(msg, "total_messages", json_integer(s->seq + 1)) != 0) {
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    if (send_message(s, msg, err, errlen) != 0)
        goto out;
    s->finished = 1;
    rc = 0;
out:
    json_decref(extra);
    json_decref(msg);
    return rc;
}

int sw_sink_complete(sw_sink *s, const sw_sink_http_stats *stats, char *err, size_t errlen)
{
    json_t *coverage = sw_sink_coverage(s);
    json_t *extra = coverage ? json_pack("{s:o}", "coverage", coverage) : NULL;

    return finish(s, "completed", extra, stats, err, errlen);
}

int sw_sink_fail(sw_sink *s, const char *error, const char *error_kind,
                 const sw_sink_http_stats *stats, char *err, size_t errlen)
{
    json_t *extra = json_pack("{s:s, s:s}", "error", error && error[0] ? error : "scan failed",
                              "error_kind", error_kind ? error_kind : "internal");

    return finish(s, "failed", extra, stats, err, errlen);
}

long sw_sink_findings(const sw_sink *s)
{
    return s->findings;
}

long sw_sink_assets_seen(const sw_sink *s)
{
    return s->assets_seen;
}

int sw_sink_messages(const sw_sink *s)
{
    return s->seq;
}

int sw_sink_lease_lost(const sw_sink *s)
{
    return s->lease_lost;
}

int sw_sink_send_failed(const sw_sink *s)
{
    return s->send_failed;
}

size_t sw_sink_checks_ran(const sw_sink *s)
{
    return json_object_size(s->ran);
}

size_t sw_sink_checks_skipped(const sw_sink *s)
{
    return json_object_size(s->skipped);
}
