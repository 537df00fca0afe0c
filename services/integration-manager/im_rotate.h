#ifndef IM_ROTATE_H
#define IM_ROTATE_H

#include <jansson.h>
#include <stddef.h>

#include "casb/crypto.h"
#include "casb/db.h"

/* Master key rotation: re-seals every secret sealed under the master key whose envelope is
 * not under the keyring's current key (integrations' credentials, webhooks' secrets), so that
 * CASB_MASTER_KEY_PREVIOUS can then be dropped. Runs while the services run: rows are taken
 * in batches, each batch one transaction with FOR UPDATE SKIP LOCKED, so a row a service
 * holds is left to a later pass, not waited for. */

#define IM_ROTATE_COMMAND "rotate-credentials"
#define IM_ROTATE_BATCH 100

/* What a run did to the rows of one table. */
typedef struct {
    long rotated;         /* re-sealed under the current key by this run */
    long already_current; /* under the current key when the run started */
    long failed;          /* could not be opened (unknown key, tampered) or stayed locked */
    json_t *failed_ids;   /* array of the failed rows' ids; owned, see im_rotate_stats_clear */
} im_rotate_counts;

typedef struct {
    im_rotate_counts integrations; /* integrations.credentials_sealed */
    im_rotate_counts webhooks;     /* webhooks.auth_sealed; rows without secrets not counted */
} im_rotate_stats;

/* Re-seals every integration's credentials and every webhook's secrets not under the
 * current key of keys (which must also hold the key that sealed them, normally as the
 * previous key); webhooks without secrets (auth_sealed NULL) are not looked at. A row that
 * cannot be opened is left unchanged, counted in failed and named in failed_ids (and logged
 * with its id, never its content); the run goes on. Idempotent. batch_size <= 0 means
 * IM_ROTATE_BATCH. Returns 0 (failed rows included), or -1 with err set when the database
 * failed; stats holds what was done either way and must be released with
 * im_rotate_stats_clear. */
int im_rotate_credentials(casb_db *db, const casb_keyring *keys, long batch_size,
                          im_rotate_stats *stats, char *err, size_t errlen);
void im_rotate_stats_clear(im_rotate_stats *stats);

/* The one-line JSON summary the command prints. The integrations' counts stay at the top
 * level, as before webhooks existed:
 * {"key_id","rotated","already_current","failed","failed_integration_ids":[...],
 *  "webhooks":{"rotated","already_current","failed","failed_webhook_ids":[...]}}.
 * malloc'ed; the caller frees it. NULL when out of memory. */
char *im_rotate_summary(const im_rotate_stats *stats, const char *key_id);

/* `casb-integration-manager rotate-credentials`: argv[0] is the subcommand. Loads its
 * settings from the environment (--help documents them), runs the rotation, prints the
 * summary on stdout. Returns the process exit status: 0 when every row of every table is
 * under the current key, 1 when a row failed or the database did, 2 for a bad configuration. */
int im_rotate_main(int argc, char **argv);

#endif
