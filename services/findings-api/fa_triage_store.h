#ifndef FA_TRIAGE_STORE_H
#define FA_TRIAGE_STORE_H

#include <stddef.h>

#include "casb/db.h"

/* The writes of triage: a finding's status and severity, an instance's visibility. Each
 * change and its timeline event (finding_events) commit together, scoped to the account;
 * a change to what a row already is changes nothing and records nothing. Functions return
 * 0, or -1 with err (a database failure). */

/* Sets status (active | ignored) of the account's findings among ids (a PostgreSQL array
 * literal of UUIDs, "{...}"). *changed: rows that changed; *known: rows of the account among
 * ids (the others are unknown to the caller). event: "ignored" | "unignored". */
int fa_triage_finding_status(casb_db *db, const char *account_id, const char *ids,
                             const char *status, const char *event, const char *actor,
                             long *changed, long *known, char *err, size_t errlen);

/* Hides (hide = 1: active or resolved -> hidden) or unhides (hidden -> active) the account's
 * instances among ids, and recounts their findings' active instances. Same outputs. */
int fa_triage_instance_visibility(casb_db *db, const char *account_id, const char *ids,
                                  int hide, const char *actor, long *changed, long *known,
                                  char *err, size_t errlen);

/* Sets a finding's severity: tuned = 1 pins it against scans (event severity_changed),
 * tuned = 0 puts it back to the catalogue's (event severity_reset). *found: 0 when the
 * account has no such finding. */
int fa_triage_severity(casb_db *db, const char *account_id, const char *finding_id,
                       const char *severity, int tuned, const char *actor, int *found,
                       char *err, size_t errlen);

#endif
