#ifndef SW_SINK_H
#define SW_SINK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "provider.h"

/* The scan sink of the scanner-worker: it turns the provider's callbacks into
 * casb.scan.result/v1 messages. Findings accumulate into a "findings" message that is sent
 * when it holds batch_size findings (or would pass max_batch_bytes); sequence numbers start
 * at 1 and increase by one per message. Every message carries the attempt: a scan taken over
 * by another worker is a new attempt, numbered from 1 again. It records coverage (checks
 * that ran or were skipped) and, from the asset_seen and finding callbacks, asks for a lease
 * heartbeat at most every heartbeat_interval_ms. The module does no I/O itself: messages go
 * out through the send callback, so it is tested without Kafka. One sink serves one attempt
 * of one scan. */

#define SW_RESULT_SCHEMA "casb.scan.result/v1"
#define SW_SINK_MAX_BATCH 500

/* Queues one message (value is len bytes of JSON; key is the integration id). 0 or -1. */
typedef int (*sw_sink_send_fn)(void *ud, const char *key, const char *value, size_t len,
                               char *err, size_t errlen);
/* Renews the scan lease. 0 ok (or a transient failure worth ignoring), -1: the lease is lost
 * and the scan must stop. */
typedef int (*sw_sink_heartbeat_fn)(void *ud);
typedef int64_t (*sw_sink_clock_fn)(void);

typedef struct {
    const char *scan_id;
    const char *integration_id;
    const char *account_id;
    const char *provider;
    int attempt;                  /* >= 1, from the lease: the scan's attempt this is */
    const char *scan_started_at;  /* RFC 3339, from the lease: the attempt's start */
    int batch_size;               /* 1..500 */
    size_t max_batch_bytes;       /* serialized findings per message; 0: 768 KiB */
    sw_sink_send_fn send;
    void *send_ud;
    sw_sink_heartbeat_fn heartbeat; /* optional */
    void *heartbeat_ud;
    long heartbeat_interval_ms;   /* 0: 10000 */
    sw_sink_clock_fn clock_ms;    /* NULL: casb_monotonic_ms */
} sw_sink_opts;

/* What the scan's HTTP client counted (casb_http_client_stats). */
typedef struct {
    long api_calls;
    long rate_limit_waits;
    long retries;
    long long wait_ms;
} sw_sink_http_stats;

typedef struct sw_sink sw_sink;

/* Copies every string of opts. */
int sw_sink_new(sw_sink **out, const sw_sink_opts *opts, char *err, size_t errlen);
void sw_sink_free(sw_sink *s); /* NULL-safe */

/* The provider-facing interface; borrowed, lives as long as the sink. */
casb_scan_sink *sw_sink_iface(sw_sink *s);

/* Sends what is pending and then the "completed" message (stats, coverage,
 * total_messages). 0, or -1 with err. */
int sw_sink_complete(sw_sink *s, const sw_sink_http_stats *stats, char *err, size_t errlen);
/* Sends what is pending and then the "failed" message. error_kind is "auth",
 * "unavailable", "internal" or "cancelled" (NULL: "internal"). 0, or -1 with err. */
int sw_sink_fail(sw_sink *s, const char *error, const char *error_kind,
                 const sw_sink_http_stats *stats, char *err, size_t errlen);

long sw_sink_findings(const sw_sink *s);    /* findings accepted so far */
long sw_sink_assets_seen(const sw_sink *s);
int sw_sink_messages(const sw_sink *s);     /* messages sent (the last seq) */
int sw_sink_lease_lost(const sw_sink *s);   /* the heartbeat reported a lost lease */
int sw_sink_send_failed(const sw_sink *s);  /* a send failed; the scan was aborted */
/* {"ran":[...],"skipped":[{"finding_type","reason"}]} as a new reference. */
json_t *sw_sink_coverage(const sw_sink *s);
/* Counts of the coverage lists (for logs and metrics). */
size_t sw_sink_checks_ran(const sw_sink *s);
size_t sw_sink_checks_skipped(const sw_sink *s);

#endif
