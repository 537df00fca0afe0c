/* The Google Workspace provider: its descriptor (what GET /v1/providers shows), the validation
 * of an integration's config and credentials, the connection test, and the scan driver. The
 * work itself is in google_auth.c, google_api.c, google_collect.c and google_checks.c. */

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"
#include "google_internal.h"

static const char *const auth_methods[] = {"service_account", NULL};

static const casb_provider_field config_fields[] = {
    {"admin_email", "string", 0, 1, NULL,
     "Email of a super admin of the Google Workspace the service account impersonates for the "
     "Directory (users, app grants, domains) and to list shared drives."},
    {"customer_id", "string", 0, 0, NULL,
     "The Google Workspace customer id (Admin console, Account settings: C0xxxxxxx). Default: "
     "my_customer, the admin's own."},
    {"api_base_url", "string", 0, 0, NULL,
     "Google APIs base URL. Default https://www.googleapis.com; any other URL (the simulator) "
     "must be listed by the operator in CASB_ALLOWED_ENDPOINTS."},
    {"concurrency", "integer", 0, 0, NULL,
     "Users scanned at the same time (their Drive, Calendar, Gmail and app grants), 1 to 32. "
     "Default 8."},
    {"max_requests_per_second", "integer", 0, 0, NULL,
     "Pace of all requests of a scan together, 1 to 1000 (Google's Directory quota is 2,400 "
     "queries per minute per user). Default 30."},
    {NULL, NULL, 0, 0, NULL, NULL},
};

static const casb_provider_field credential_fields[] = {
    {"service_account_key", "json", 1, 1, "service_account",
     "The service account's JSON key file as Google issues it (type, client_email, "
     "private_key, token_uri...), given as a JSON object or as a string holding it. The "
     "account needs domain-wide delegation for the scopes listed below, granted to its "
     "client id in the Admin console (Security, Access and data control, API controls)."},
    {NULL, NULL, 0, 0, NULL, NULL},
};

/* The read-only scopes requested, each with why; the only broader one is marked. */
static const casb_provider_permission permissions[] = {
    {CASB_GOOGLE_SCOPE_USERS,
     "users: 2-Step Verification, admin roles, suspension, last login, recovery email and "
     "phone (as the admin)"},
    {CASB_GOOGLE_SCOPE_TOKENS,
     "the third-party apps each user granted and their scopes (tokens.list): Google offers no "
     "read-only scope for it; CASB only lists, never deletes"},
    {CASB_GOOGLE_SCOPE_DOMAINS, "the domains and aliases whose SPF and DMARC records are checked"},
    {CASB_GOOGLE_SCOPE_DRIVE,
     "files and shared drives with their sharing (names and permissions, never content)"},
    {CASB_GOOGLE_SCOPE_CALENDAR, "who each user's calendar is shared with (its ACL)"},
    {CASB_GOOGLE_SCOPE_GMAIL,
     "mail delegates of each user: the narrowest scope that lists them (no content is read)"},
    {NULL, NULL},
};

/* ---- validate -------------------------------------------------------------------------- */

static int invalid(char *field, size_t fieldlen, const char *name, char *err, size_t errlen,
                   const char *msg)
{
    if (field && fieldlen)
        snprintf(field, fieldlen, "%s", name);
    return casb_fail(err, errlen, CASB_EINVALID, "%s: %s", name, msg);
}

/* local@domain of printable ASCII without spaces: it goes into token requests and paths. */
static int email_ok(const char *s)
{
    const char *at = s ? strchr(s, '@') : NULL;

    if (!at || at == s || !at[1] || strchr(at + 1, '@') || strlen(s) > 254)
        return 0;
    for (const char *p = s; *p; p++) {
        if (!isgraph((unsigned char)*p) || strchr("/?#%\\\"<>", *p))
            return 0;
    }
    return 1;
}

static int customer_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return 0;
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_')
            return 0;
    }
    return 1;
}

static int int_in(const json_t *v, long long lo, long long hi)
{
    return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

static int validate_config(const json_t *config, char *field, size_t fieldlen, char *err,
                           size_t errlen)
{
    const json_t *v;

    if (!email_ok(casb_json_str(config, "admin_email")))
        return invalid(field, fieldlen, "config.admin_email", err, errlen,
                       "required: the email of a super admin (admin@example.com)");
    v = json_object_get(config, "customer_id");
    if (v && (!json_is_string(v) || !customer_ok(json_string_value(v))))
        return invalid(field, fieldlen, "config.customer_id", err, errlen,
                       "must be a customer id (letters, digits, underscore) or my_customer");
    v = json_object_get(config, "api_base_url");
    if (v && (!json_is_string(v) || (strncmp(json_string_value(v), "https://", 8) != 0 &&
                                     strncmp(json_string_value(v), "http://", 7) != 0)))
        return invalid(field, fieldlen, "config.api_base_url", err, errlen,
                       "must be an http(s) URL");
    v = json_object_get(config, "concurrency");
    if (v && !int_in(v, 1, 32))
        return invalid(field, fieldlen, "config.concurrency", err, errlen,
                       "must be an integer from 1 to 32");
    v = json_object_get(config, "max_requests_per_second");
    if (v && !int_in(v, 1, 1000))
        return invalid(field, fieldlen, "config.max_requests_per_second", err, errlen,
                       "must be an integer from 1 to 1000");
    return 0;
}

static int google_validate(const json_t *config, const json_t *credentials, char *field,
                           size_t fieldlen, char *err, size_t errlen)
{
    casb_google_key k;
    int rc;

    if (!json_is_object(config))
        return invalid(field, fieldlen, "config", err, errlen, "must be an object");
    if (!json_is_object(credentials))
        return invalid(field, fieldlen, "credentials", err, errlen, "must be an object");
    rc = validate_config(config, field, fieldlen, err, errlen);
    if (rc != 0)
        return rc;
    if (json_object_size(credentials) != 1 || !json_object_get(credentials,
                                                                "service_account_key"))
        return invalid(field, fieldlen, "credentials", err, errlen,
                       "must hold service_account_key only");
    memset(&k, 0, sizeof(k));
    rc = casb_google_key_parse(&k, credentials, field, fieldlen, err, errlen);
    casb_google_key_clear(&k);
    return rc;
}

/* ---- check_connection ------------------------------------------------------------------ */

/* The admin's token and one user: the key, the delegation of the directory scopes and the
 * admin all proved with two requests. */
static int google_check_connection(casb_scan_ctx *ctx, char *err, size_t errlen)
{
    casb_google_client *c = NULL;
    casb_google_resp r;
    const char *customer = casb_json_str(ctx->config, "customer_id");
    const char *admin = casb_json_str(ctx->config, "admin_email");
    char path[256];
    int rc;

    memset(&r, 0, sizeof(r));
    rc = casb_google_client_new(&c, ctx, err, errlen);
    if (rc != 0)
        goto out;
    snprintf(path, sizeof(path),
             "/admin/directory/v1/users?customer=%s&maxResults=1&fields=users(id)",
             customer ? customer : "my_customer");
    rc = casb_google_get(c, ctx->http, admin, CASB_GOOGLE_SCOPE_USERS " " CASB_GOOGLE_SCOPE_TOKENS
                         " " CASB_GOOGLE_SCOPE_DOMAINS, path, &r, err, errlen);
    if (rc != 0)
        goto out;
    if (r.status >= 200 && r.status < 300) {
        rc = 0;
    } else if (r.status == 401 || r.status == 403 || r.status == 404) {
        rc = casb_fail(err, errlen, CASB_EAUTH,
                       "Google refused to list the users as %s (%ld: %s): is it a super admin "
                       "of customer %s?",
                       admin, r.status, r.message[0] ? r.message : "no message",
                       customer ? customer : "my_customer");
    } else {
        rc = casb_google_status_error(&r, "GET users", err, errlen);
        if (rc != CASB_EUNAVAILABLE)
            rc = CASB_ERROR;
    }
out:
    casb_google_resp_clear(&r);
    casb_google_client_free(c);
    return rc;
}

/* ---- scan ------------------------------------------------------------------------------ */

static int google_scan(casb_scan_ctx *ctx, char *err, size_t errlen)
{
    const char *customer = casb_json_str(ctx->config, "customer_id");
    casb_google_client *c = NULL;
    casb_google_eval ev;
    char findings[32], requests[32];
    int rc;

    casb_google_eval_init(&ev, ctx->sink, ctx->now_s, customer ? customer : "my_customer");
    rc = casb_google_client_new(&c, ctx, err, errlen);
    if (rc == 0)
        rc = casb_google_collect_all(c, ctx, &ev, err, errlen);
    if (rc == 0) {
        casb_google_eval_report(&ev);
        snprintf(findings, sizeof(findings), "%ld", ev.cov.findings);
        snprintf(requests, sizeof(requests), "%ld", casb_google_client_requests(c));
        casb_log_info("google workspace scan collected", "customer", ev.customer, "findings",
                      findings, "requests", requests);
    }
    casb_google_client_free(c);
    casb_google_eval_cleanup(&ev);
    /* The worker tells rejected credentials (needs reauthorization) and an unavailable
     * Google (5xx, network, quota exhausted) from the rest. */
    if (rc != 0 && rc != CASB_EAUTH && rc != CASB_EUNAVAILABLE)
        rc = CASB_ERROR;
    return rc;
}

const casb_provider casb_provider_google_workspace = {
    .id = CASB_GOOGLE_PROVIDER_ID,
    .display_name = "Google Workspace",
    .default_api_base_url = CASB_GOOGLE_DEFAULT_API_URL,
    /* Daily, like GitHub: sharing and grants change during the day, but a full pass over a
     * large tenant's Drive is thousands of requests. Users may go down to 1 h. */
    .default_scan_interval_s = 86400,
    .auth_methods = auth_methods,
    .config_fields = config_fields,
    .credential_fields = credential_fields,
    .permissions = permissions,
    .finding_types = casb_google_finding_types,
    .oauth = NULL,
    .validate = google_validate,
    .check_connection = google_check_connection,
    .scan = google_scan,
};
