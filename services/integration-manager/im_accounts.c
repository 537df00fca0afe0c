#include "im_accounts.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"
#include "casb/service.h"
#include "im_settings.h"

#define CONNECT_TIMEOUT_MS 10000

int im_account_create(casb_db *db, const char *name, char account_id[37],
                      char token[CASB_TOKEN_SIZE], char token_id[37], char *err,
                      size_t errlen)
{
    const char *params[2];
    casb_token_spec spec = {account_id, "initial admin", CASB_ROLE_ADMIN, NULL,
                            "create-account"};
    size_t n = name ? strlen(name) : 0;
    int rc;

    if (n == 0 || n > IM_ACCOUNT_NAME_MAX)
        return casb_fail(err, errlen, CASB_EINVALID, "the account name must be 1 to %d bytes",
                         IM_ACCOUNT_NAME_MAX);
    casb_uuid_v4(account_id);
    params[0] = account_id;
    params[1] = name;
    if (casb_db_begin(db, err, errlen) != 0)
        return CASB_ERROR;
    rc = casb_db_exec(db, "INSERT INTO accounts (id, name) VALUES ($1, $2)", 2, params, NULL,
                      err, errlen);
    if (rc == 0)
        rc = casb_auth_issue(db, &spec, token, token_id, err, errlen);
    if (rc == 0)
        rc = casb_db_commit(db, err, errlen);
    if (rc != 0) {
        casb_db_rollback(db);
        casb_secret_wipe(token, CASB_TOKEN_SIZE);
        return rc == CASB_EINVALID ? rc : CASB_ERROR;
    }
    return 0;
}

/* The one line on stdout; the secret goes nowhere else (no log line carries it). */
static void print_issued(const char *account_id, const char *token_id, const char *token)
{
    json_t *line = json_pack("{ss ss ss}", "account_id", account_id, "token_id", token_id,
                             "token", token);
    char *text = line ? casb_json_dump(line) : NULL;

    if (text) {
        printf("%s\n", text);
        fflush(stdout);
        casb_secret_wipe(text, strlen(text));
    }
    free(text);
    casb_json_wipe(line);
    json_decref(line);
}

static int exit_status(int rc, const char *what, const char *err)
{
    if (rc == CASB_EINVALID) {
        fprintf(stderr, "casb-integration-manager: %s\n", err);
        return CASB_SERVICE_EXIT_CONFIG;
    }
    casb_log_error(what, "error", err);
    return 1;
}

int im_account_main(int argc, char **argv)
{
    im_account_settings st;
    char account_id[37], token_id[37], token[CASB_TOKEN_SIZE];
    char err[512] = "";
    casb_db *db = NULL;
    int rc;

    im_account_settings_load_or_exit(&st, 0, argc, argv);
    casb_log_init("integration-manager", st.log_level);
    if (casb_service_migrate(st.database_url, err, sizeof(err)) != 0 ||
        casb_db_open(&db, st.database_url, CONNECT_TIMEOUT_MS, err, sizeof(err)) != 0)
        return exit_status(CASB_ERROR, "cannot open the database", err);
    rc = im_account_create(db, st.account_name, account_id, token, token_id, err, sizeof(err));
    casb_db_close(db);
    if (rc != 0)
        return exit_status(rc, "cannot create the account", err);
    casb_log_info("account created", "account_id", account_id, "token_id", token_id);
    print_issued(account_id, token_id, token);
    casb_secret_wipe(token, sizeof(token));
    return 0;
}

int im_token_main(int argc, char **argv)
{
    im_account_settings st;
    casb_token_spec spec;
    char token_id[37], token[CASB_TOKEN_SIZE];
    char err[512] = "";
    casb_db *db = NULL;
    int rc;

    im_account_settings_load_or_exit(&st, 1, argc, argv);
    casb_log_init("integration-manager", st.log_level);
    memset(&spec, 0, sizeof(spec));
    spec.account_id = st.account_id;
    spec.name = st.token_name;
    spec.expires_at = st.token_expires_at;
    spec.created_by = "create-token";
    if (casb_role_parse(st.token_role, &spec.role) != 0) {
        fprintf(stderr, "casb-integration-manager: CASB_TOKEN_ROLE: expected admin, analyst or "
                        "read_only\n");
        return CASB_SERVICE_EXIT_CONFIG;
    }
    if (casb_service_migrate(st.database_url, err, sizeof(err)) != 0 ||
        casb_db_open(&db, st.database_url, CONNECT_TIMEOUT_MS, err, sizeof(err)) != 0)
        return exit_status(CASB_ERROR, "cannot open the database", err);
    rc = casb_auth_issue(db, &spec, token, token_id, err, sizeof(err));
    casb_db_close(db);
    if (rc != 0) /* an unknown account fails its foreign key: a database refusal */
        return exit_status(rc, "cannot issue the token", err);
    casb_log_info("API token issued", "account_id", spec.account_id, "token_id", token_id);
    print_issued(spec.account_id, token_id, token);
    casb_secret_wipe(token, sizeof(token));
    return 0;
}
