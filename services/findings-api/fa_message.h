#ifndef FA_MESSAGE_H
#define FA_MESSAGE_H

#include <jansson.h>
#include <stddef.h>

#include "casb/json.h"
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
    /* findings: what ingest writes of them, made while parsing (on the consumer's reader
     * thread, so that the thread applying the previous messages only sends it): */
    casb_text rows;              /* its instance rows, comma-separated (see below) */
    const fa_finding_type **types; /* its distinct types, borrowed from the catalogue */
    size_t ntypes;
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

/* The rows the ingest SQL reads with jsonb_to_recordset, as JSON arrays appended to out,
 * for the n findings messages ms (of one scan attempt, each seq once). 0, or -1 when out
 * of memory.
 * - types: one {"finding_type","severity"} per distinct type;
 * - instances: one {"seq","ord","finding_type","asset_kind","asset_id","asset_name",
 *   "asset_url","details"} per finding, (seq, ord) being its message and position in it:
 *   the last sighting of a repeated asset wins. */
int fa_message_type_rows(const fa_result_msg *const *ms, size_t n, casb_text *out);
int fa_message_instance_rows(const fa_result_msg *const *ms, size_t n, casb_text *out);

/* 1 when s has the shape of an RFC 3339 date-time (2026-11-28T20:25:55.123456Z). */
int fa_rfc3339_valid(const char *s);

#endif
