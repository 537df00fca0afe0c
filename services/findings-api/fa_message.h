#ifndef FA_MESSAGE_H
#define FA_MESSAGE_H

#include <jansson.h>
#include <stddef.h>

#include "fa_catalogue.h"

/* casb.scan.result/v1 messages: parsing and validation, with no I/O (unit-tested). A message
 * that fails validation goes to the dead-letter topic with the reason. */

#define FA_RESULT_SCHEMA "casb.scan.result/v1"
#define FA_MAX_FINDINGS_PER_MESSAGE 500

typedef enum {
    FA_KIND_FINDINGS = 0,
    FA_KIND_PROGRESS,
    FA_KIND_COMPLETED,
    FA_KIND_FAILED,
} fa_kind;

/* A validated message. Every pointer borrows from root, which the message owns. */
typedef struct {
    json_t *root;
    const char *scan_id;
    const char *integration_id;
    const char *account_id;
    const char *provider;
    const char *scan_started_at; /* RFC 3339, checked by shape; PostgreSQL parses it */
    int attempt;                 /* 1..: the scan's attempt (lease) that sent the message */
    int seq;                     /* 1.., within the attempt */
    fa_kind kind;
    const char *kind_name;
    json_t *findings;            /* findings: array of valid findings */
    json_t *stats;               /* object or NULL */
    json_t *coverage;            /* completed: {"ran":[...],"skipped":[...]} */
    int total_messages;          /* completed and failed: equals seq */
    const char *error;           /* failed */
    const char *error_kind;      /* failed: auth | unavailable | internal | cancelled */
} fa_result_msg;

/* Parses and validates buf. Finding types (in findings and coverage.ran) must be in the
 * catalogue and belong to the message's provider. Returns 0, or CASB_EINVALID with a reason
 * that names the field but never quotes values. */
int fa_message_parse(fa_result_msg *out, const char *buf, size_t len, const fa_catalogue *cat,
                     char *reason, size_t reasonlen);
void fa_message_clear(fa_result_msg *m); /* safe on a zeroed or cleared message */

/* The rows the ingest SQL reads with jsonb_to_recordset, as new references, for the n
 * findings messages ms (of one scan attempt, in the order they were sent):
 * - types: one {"finding_type","severity"} per distinct type;
 * - instances: one {"ord","finding_type","asset_kind","asset_id","asset_name","asset_url",
 *   "details"} per finding, ord being its position across the messages (the last sighting
 *   of a repeated asset wins). */
json_t *fa_message_type_rows(const fa_result_msg *const *ms, size_t n,
                             const fa_catalogue *cat);
json_t *fa_message_instance_rows(const fa_result_msg *const *ms, size_t n);

/* 1 when s has the shape of an RFC 3339 date-time (2026-11-28T20:25:55.123456Z). */
int fa_rfc3339_valid(const char *s);

#endif
