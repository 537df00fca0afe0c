#ifndef FA_INGEST_H
#define FA_INGEST_H

#include <stddef.h>

#include "casb/db.h"
#include "casb/kafka.h"
#include "fa_catalogue.h"
#include "fa_message.h"

/* Ingest of casb.scan.results: each message is applied in a PostgreSQL transaction that
 * also records (scan_id, attempt, seq) in ingested_batches, so a redelivered message changes
 * nothing (at-least-once delivery, exactly-once effect). The Kafka offset is committed only
 * after that transaction committed. A run of findings messages of one scan attempt that the
 * consumer already holds shares one transaction (fa_ingest_apply_findings).
 *
 * A scan taken over by another worker (its first worker died or lost the lease) is a new
 * attempt (scans.attempt) that rescans from the start with seq 1..N again. Its findings
 * messages are applied like any other: sightings of every attempt are real, and
 * last_scan_started_at (the attempt's start) keeps them ordered. Only the scan's current
 * attempt may end it: a completed or failed message of an earlier attempt is recorded and
 * otherwise ignored (FA_APPLY_SUPERSEDED). */

typedef enum {
    FA_APPLY_APPLIED = 0,  /* committed */
    FA_APPLY_DUPLICATE,    /* (scan, attempt, seq) was applied before: nothing done */
    FA_APPLY_SUPERSEDED,   /* completed/failed of an attempt that is not the scan's current
                            * one: recorded and committed, the scan left alone */
    FA_APPLY_DROPPED,      /* the integration no longer exists: nothing to do */
    FA_APPLY_INCOMPLETE,   /* completed, but earlier messages of the scan are missing */
    FA_APPLY_REJECTED,     /* the message contradicts the database (reason set): dead-letter */
    FA_APPLY_ERROR,        /* database error (reason set): retry */
} fa_apply_result;

/* Applies one validated message. Commits on APPLIED and SUPERSEDED, rolls back on anything
 * else. */
fa_apply_result fa_ingest_apply(casb_db *db, const fa_result_msg *m, const fa_catalogue *cat,
                                char *reason, size_t reasonlen);

/* The most findings messages applied in one transaction (500 findings each). */
#define FA_INGEST_MAX_BATCH 16

/* 1 when b belongs to the same scan attempt as a (scan, integration, account, provider). */
int fa_ingest_same_attempt(const fa_result_msg *a, const fa_result_msg *b);

/* Applies n (1..FA_INGEST_MAX_BATCH) findings messages of one scan attempt, in the order
 * they were sent, in one transaction: one lock of the scan, each message recorded in
 * ingested_batches (one applied before counts in *duplicates and is skipped), and one
 * upsert of all their findings and instances, so that a large scan's backlog is ingested in
 * a few large statements instead of many small ones. Gives APPLIED (committed) or, with
 * everything rolled back and *duplicates 0, what fa_ingest_apply would give for the first
 * message (DROPPED, REJECTED, ERROR): the caller then applies them one by one, which sorts
 * out which message is at fault. */
fa_apply_result fa_ingest_apply_findings(casb_db *db, const fa_result_msg *const *ms, size_t n,
                                         size_t *duplicates, char *reason, size_t reasonlen);

/* Ends a scan whose results will never be complete: marks it failed with error (resolving
 * nothing) and records (scan, attempt, seq) so a redelivery is a duplicate. When m's attempt
 * is no longer the scan's current one, the scan is left alone: SUPERSEDED. */
fa_apply_result fa_ingest_fail_scan(casb_db *db, const fa_result_msg *m, const char *error,
                                    char *reason, size_t reasonlen);

/* The health reason a failed scan gives its integration: the scan's error (which names
 * what is wrong: "GitHub rejected the credentials: Bad credentials", "GitHub answered 500
 * repeatedly (...)") followed by what the user can do, by error_kind: auth -> reauthorize
 * (naming the endpoint), unavailable -> retried at the next interval, internal -> retried,
 * and where to look. Truncated to outlen. */
void fa_ingest_health_reason(char *out, size_t outlen, const char *integration_id,
                             const char *scan_id, const char *error_kind, const char *error);

/* The consumer thread. */
typedef struct fa_ingest fa_ingest;

typedef struct {
    const char *database_url;
    const char *kafka_brokers;
    const fa_catalogue *catalogue; /* borrowed; outlives the thread */
    casb_producer *producer;       /* borrowed; dead letters */
} fa_ingest_opts;

/* Connects and starts consuming in a new thread. */
int fa_ingest_start(fa_ingest **out, const fa_ingest_opts *opts, char *err, size_t errlen);
/* Stops after the message in progress (uncommitted work is redelivered later), leaves the
 * group and frees. NULL-safe. */
void fa_ingest_stop(fa_ingest *ing);

/* 0 once the consumer hit a fatal error and ingest stopped (for /readyz). */
int fa_ingest_alive(fa_ingest *ing);

void fa_ingest_metrics_init(void);

#endif
