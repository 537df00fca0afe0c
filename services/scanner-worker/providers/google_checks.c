/* The Google Workspace checks: predicates over one normalized asset (see google_internal.h
 * for the shapes) that report findings through the scan sink. They never call the network,
 * so tests run them on snapshots. A check that meets an asset it cannot judge (a field
 * missing, DNS unreadable) marks its type skipped for the scan instead of guessing: a skipped
 * type resolves nothing.
 *
 * Decisions the catalogue documents:
 *  - a user is active when neither suspended nor archived; 2-Step Verification, recovery
 *    email/phone and inactivity are judged on active users only, suspension on the others;
 *  - admin = isAdmin (super admin) or isDelegatedAdmin; a user gets the admin or the user
 *    variant of a type, never both;
 *  - a public calendar is a "default" ACL rule with any role but "none": freeBusyReader
 *    counts, since it publishes when the owner is busy to the whole internet;
 *  - apps: one instance per app and scope family it holds; Sign In is reported for every
 *    app that has sign-in scopes, alongside its other families (Cloudflare keeps it Low). */

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "casb/json.h"
#include "casb/mailauth.h"
#include "casb/timeutil.h"
#include "google_internal.h"

const char *const casb_google_finding_types[GW_T_COUNT + 1] = {
    [GW_T_ADMIN_2SV_DISABLED] = "google_workspace.admin.two_step_disabled",
    [GW_T_USER_2SV_DISABLED] = "google_workspace.user.two_step_disabled",
    [GW_T_USER_NO_RECOVERY_EMAIL] = "google_workspace.user.no_recovery_email",
    [GW_T_USER_NO_RECOVERY_PHONE] = "google_workspace.user.no_recovery_phone",
    [GW_T_ADMIN_INACTIVE] = "google_workspace.admin.inactive",
    [GW_T_ADMIN_SUSPENDED] = "google_workspace.admin.suspended",
    [GW_T_USER_INACTIVE] = "google_workspace.user.inactive",
    [GW_T_USER_SUSPENDED] = "google_workspace.user.suspended",
    [GW_T_FILE_PUBLIC_EDIT] = "google_workspace.file.public_edit",
    [GW_T_FILE_PUBLIC_VIEW] = "google_workspace.file.public_view",
    [GW_T_FILE_EXTERNAL_EDIT] = "google_workspace.file.external_edit",
    [GW_T_FILE_EXTERNAL_VIEW] = "google_workspace.file.external_view",
    [GW_T_FILE_DOMAIN_EDIT] = "google_workspace.file.domain_edit",
    [GW_T_FILE_DOMAIN_VIEW] = "google_workspace.file.domain_view",
    [GW_T_CALENDAR_PUBLIC] = "google_workspace.calendar.public",
    [GW_T_APP_DRIVE] = "google_workspace.app.drive_access",
    [GW_T_APP_GMAIL] = "google_workspace.app.gmail_access",
    [GW_T_APP_DOCS] = "google_workspace.app.docs_access",
    [GW_T_APP_CALENDAR] = "google_workspace.app.calendar_access",
    [GW_T_APP_SLIDES] = "google_workspace.app.slides_access",
    [GW_T_APP_SHEETS] = "google_workspace.app.sheets_access",
    [GW_T_APP_SIGN_IN] = "google_workspace.app.sign_in_access",
    [GW_T_USER_DELEGATES_EMAIL] = "google_workspace.user.delegates_email",
    [GW_T_SPF_ALLOWS_ANY] = "google_workspace.domain.spf_allows_any",
    [GW_T_SPF_MISSING] = "google_workspace.domain.spf_missing",
    [GW_T_DMARC_MISSING] = "google_workspace.domain.dmarc_missing",
    [GW_T_DMARC_NOT_ENFORCED] = "google_workspace.domain.dmarc_not_enforced",
    [GW_T_DMARC_SUBDOMAINS_NOT_ENFORCED] =
        "google_workspace.domain.dmarc_subdomains_not_enforced",
    [GW_T_DMARC_PARTIAL] = "google_workspace.domain.dmarc_partial",
    [GW_T_TOO_MANY_SUPER_ADMINS] = "google_workspace.tenant.too_many_super_admins",
    [GW_T_TOO_FEW_SUPER_ADMINS] = "google_workspace.tenant.too_few_super_admins",
    [GW_T_SUPER_ADMIN_DAILY_USE] = "google_workspace.admin.super_admin_daily_use",
    [GW_T_SHARED_DRIVE_EXTERNAL_EDITOR] = "google_workspace.shared_drive.external_editor",
    [GW_T_APP_UNVERIFIED_HIGH_RISK] = "google_workspace.app.unverified_high_risk",
    [GW_T_COUNT] = NULL,
};
_Static_assert(GW_T_COUNT <= CASB_COVERAGE_MAX_TYPES, "more finding types than a coverage holds");

/* Entries of a list put in a finding's details at most: a file shared with thousands must
 * not make a megabyte finding. The count says how many there were. */
#define DETAILS_LIST_MAX 20
/* Distinct scopes kept per app (Google has a few hundred in all). */
#define APP_SCOPES_MAX 100

#define ADMIN_USER_URL "https://admin.google.com/ac/users/"

static const int spf_types[] = {GW_T_SPF_ALLOWS_ANY, GW_T_SPF_MISSING};
static const int dmarc_types[] = {GW_T_DMARC_MISSING, GW_T_DMARC_NOT_ENFORCED,
                                  GW_T_DMARC_SUBDOMAINS_NOT_ENFORCED, GW_T_DMARC_PARTIAL};
static const int file_types[] = {GW_T_FILE_PUBLIC_EDIT,   GW_T_FILE_PUBLIC_VIEW,
                                 GW_T_FILE_EXTERNAL_EDIT, GW_T_FILE_EXTERNAL_VIEW,
                                 GW_T_FILE_DOMAIN_EDIT,   GW_T_FILE_DOMAIN_VIEW};
static const int app_types[] = {GW_T_APP_DRIVE,  GW_T_APP_GMAIL,   GW_T_APP_DOCS,
                                GW_T_APP_CALENDAR, GW_T_APP_SLIDES, GW_T_APP_SHEETS,
                                GW_T_APP_SIGN_IN, GW_T_APP_UNVERIFIED_HIGH_RISK};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

void casb_google_eval_init(casb_google_eval *ev, casb_scan_sink *sink, long long now_s,
                           const char *customer)
{
    memset(ev, 0, sizeof(*ev));
    casb_coverage_init(&ev->cov, sink, casb_google_finding_types);
    ev->now_s = now_s;
    ev->domains = json_array();
    ev->super_admin_sample = json_array();
    ev->app_index = json_object();
    snprintf(ev->customer, sizeof(ev->customer), "%s", customer ? customer : "my_customer");
}

void casb_google_eval_cleanup(casb_google_eval *ev)
{
    casb_google_app *a, *next;

    if (!ev)
        return;
    casb_coverage_cleanup(&ev->cov);
    for (a = ev->apps; a; a = next) {
        next = a->next;
        free(a->client_id);
        free(a->name);
        json_decref(a->scopes);
        json_decref(a->sample_users);
        free(a);
    }
    ev->apps = NULL;
    json_decref(ev->domains);
    json_decref(ev->super_admin_sample);
    json_decref(ev->app_index);
    ev->domains = ev->super_admin_sample = ev->app_index = NULL;
}

void casb_google_eval_skip(casb_google_eval *ev, int type, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    casb_coverage_vskip(&ev->cov, type, fmt, ap);
    va_end(ap);
}

static void skip_all(casb_google_eval *ev, const int *types, size_t n, const char *why,
                     const char *what)
{
    for (size_t i = 0; i < n; i++)
        casb_google_eval_skip(ev, types[i], "%s: %s", what, why);
}

void casb_google_eval_report(casb_google_eval *ev)
{
    casb_coverage_report(&ev->cov);
}

int casb_google_eval_add_domain(casb_google_eval *ev, const char *domain)
{
    char *lower;
    int rc;

    if (!domain || !domain[0])
        return 0;
    if (casb_google_is_internal(ev, domain))
        return 0;
    lower = strdup(domain);
    if (!lower)
        return -1;
    for (char *p = lower; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    rc = json_array_append_new(ev->domains, json_string(lower));
    free(lower);
    return rc == 0 ? 0 : -1;
}

/* Exact domain match, case-insensitive: a subdomain of a customer's domain is another domain
 * unless the customer added it (Google requires that for mail and accounts too). */
int casb_google_is_internal(const casb_google_eval *ev, const char *email_or_domain)
{
    const char *at, *domain;
    json_t *d;
    size_t i;

    if (!email_or_domain)
        return 0;
    at = strrchr(email_or_domain, '@');
    domain = at ? at + 1 : email_or_domain;
    if (!domain[0])
        return 0;
    json_array_foreach(ev->domains, i, d) {
        if (strcasecmp(json_string_value(d), domain) == 0)
            return 1;
    }
    return 0;
}

/* Hands one finding to the sink; details is stolen whatever happens. */
static int emit(casb_google_eval *ev, int type, const char *kind, const char *id,
                const char *name, const char *url, json_t *details)
{
    return casb_coverage_emit(&ev->cov, type, kind, id, name, url, details);
}

/* Copies obj[key] into details when present (the evidence next to a finding). */
static void copy_member(json_t *details, const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    if (v)
        json_object_set(details, key, v);
}

/* Appends v (stolen) to list unless it already holds DETAILS_LIST_MAX entries. */
static void append_capped(json_t *list, json_t *v)
{
    if (json_array_size(list) < DETAILS_LIST_MAX)
        json_array_append_new(list, v);
    else
        json_decref(v);
}

/* The summary of a list entry that matters to a check, or NULL when it does not. */
typedef json_t *(*match_fn)(const casb_google_eval *ev, const json_t *entry);

/* The summaries of list's matching entries (at most DETAILS_LIST_MAX) with their full count
 * in *count; NULL when none matches. */
static json_t *collect_matches(const casb_google_eval *ev, const json_t *list, match_fn match,
                               long *count)
{
    json_t *out = NULL, *entry;
    size_t i;

    *count = 0;
    json_array_foreach(list, i, entry) {
        json_t *summary = match(ev, entry);

        if (!summary)
            continue;
        if (!out)
            out = json_array();
        (*count)++;
        append_capped(out, summary);
    }
    return out;
}

/* ---- user ------------------------------------------------------------------------------ */

/* Seconds since ts (an RFC 3339 time): 0 and *age_s, 1 when ts is the epoch (never), -1
 * when missing or unreadable. */
static int age_of(const casb_google_eval *ev, const char *ts, long long *age_s)
{
    time_t t;

    if (!ts || casb_time_parse(ts, &t) != 0)
        return -1;
    if ((long long)t <= 0)
        return 1;
    *age_s = ev->now_s - (long long)t;
    return 0;
}

typedef struct {
    const json_t *user;
    const char *id, *email, *url;
    int admin;
} user_ref;

static json_t *user_details(const user_ref *u)
{
    json_t *d = json_object();

    json_object_set_new(d, "primaryEmail", json_string(u->email));
    copy_member(d, u->user, "isAdmin");
    copy_member(d, u->user, "isDelegatedAdmin");
    return d;
}

static int emit_user(casb_google_eval *ev, int type, const user_ref *u, json_t *details)
{
    return emit(ev, type, "user", u->id, u->email, u->url, details);
}

/* Inactive: no login for CASB_GOOGLE_INACTIVE_AFTER_S, or never logged in (Google shows the
 * epoch) on an account created longer ago than that. */
static int check_inactive(casb_google_eval *ev, const user_ref *u)
{
    int type = u->admin ? GW_T_ADMIN_INACTIVE : GW_T_USER_INACTIVE;
    const char *last = casb_json_str(u->user, "lastLoginTime");
    const char *created = casb_json_str(u->user, "creationTime");
    long long age_s = 0, created_age_s = 0;
    int r = age_of(ev, last, &age_s);
    json_t *d;

    if (r < 0) {
        casb_google_eval_skip(ev, type, "user %s has no readable lastLoginTime", u->email);
        return 0;
    }
    if (r == 1) {
        /* Never logged in: judged by the account's age; a new account is not inactive. */
        if (age_of(ev, created, &created_age_s) != 0 ||
            created_age_s <= CASB_GOOGLE_INACTIVE_AFTER_S)
            return 0;
        d = user_details(u);
        json_object_set_new(d, "never_logged_in", json_true());
        copy_member(d, u->user, "creationTime");
        json_object_set_new(d, "days_since_creation", json_integer(created_age_s / 86400));
        return emit_user(ev, type, u, d);
    }
    if (age_s <= CASB_GOOGLE_INACTIVE_AFTER_S)
        return 0;
    d = user_details(u);
    json_object_set_new(d, "lastLoginTime", json_string(last));
    json_object_set_new(d, "days_since_login", json_integer(age_s / 86400));
    return emit_user(ev, type, u, d);
}

static int check_2sv(casb_google_eval *ev, const user_ref *u)
{
    int type = u->admin ? GW_T_ADMIN_2SV_DISABLED : GW_T_USER_2SV_DISABLED;
    json_t *v = json_object_get(u->user, "isEnrolledIn2Sv");
    json_t *d;

    if (!json_is_boolean(v)) {
        casb_google_eval_skip(ev, type, "user %s has no isEnrolledIn2Sv", u->email);
        return 0;
    }
    if (json_is_true(v))
        return 0;
    d = user_details(u);
    json_object_set_new(d, "isEnrolledIn2Sv", json_false());
    copy_member(d, u->user, "isEnforcedIn2Sv");
    return emit_user(ev, type, u, d);
}

/* Google leaves unset fields out of the response: absent or empty means not set. */
static int check_recovery(casb_google_eval *ev, const user_ref *u, int type, const char *field)
{
    const char *v = casb_json_str(u->user, field);
    json_t *d;

    if (v && v[0])
        return 0;
    d = user_details(u);
    json_object_set_new(d, field, json_null());
    return emit_user(ev, type, u, d);
}

/* A super admin with a mailbox who signed in recently is reading mail and browsing with
 * the keys to the whole tenant. */
static int check_daily_use(casb_google_eval *ev, const user_ref *u)
{
    const char *last = casb_json_str(u->user, "lastLoginTime");
    long long age_s = 0;
    json_t *d;

    if (!json_is_true(json_object_get(u->user, "isAdmin")) ||
        !json_is_true(json_object_get(u->user, "isMailboxSetup")))
        return 0;
    if (age_of(ev, last, &age_s) != 0 || age_s > CASB_GOOGLE_DAILY_USE_WITHIN_S)
        return 0;
    d = user_details(u);
    json_object_set_new(d, "isMailboxSetup", json_true());
    json_object_set_new(d, "lastLoginTime", json_string(last));
    return emit_user(ev, GW_T_SUPER_ADMIN_DAILY_USE, u, d);
}

int casb_google_check_user(casb_google_eval *ev, const json_t *user)
{
    char url[256];
    user_ref u = {.user = user};
    int suspended, archived;
    int rc = 0;

    u.id = casb_json_str(user, "id");
    u.email = casb_json_str(user, "primaryEmail");
    if (!u.id || !u.email)
        return 0;
    snprintf(url, sizeof(url), ADMIN_USER_URL "%s", u.id);
    u.url = url;
    u.admin = json_is_true(json_object_get(user, "isAdmin")) ||
              json_is_true(json_object_get(user, "isDelegatedAdmin"));
    suspended = json_is_true(json_object_get(user, "suspended"));
    archived = json_is_true(json_object_get(user, "archived"));

    if (suspended) {
        json_t *d = user_details(&u);

        copy_member(d, user, "suspensionReason");
        copy_member(d, user, "lastLoginTime");
        return emit_user(ev, u.admin ? GW_T_ADMIN_SUSPENDED : GW_T_USER_SUSPENDED, &u, d);
    }
    if (json_is_true(json_object_get(user, "isAdmin"))) {
        ev->super_admins++;
        append_capped(ev->super_admin_sample, json_string(u.email));
    }
    /* An archived user cannot sign in: its sign-in settings and idleness do not matter. */
    if (archived)
        return 0;
    rc |= check_2sv(ev, &u);
    rc |= check_recovery(ev, &u, GW_T_USER_NO_RECOVERY_EMAIL, "recoveryEmail");
    rc |= check_recovery(ev, &u, GW_T_USER_NO_RECOVERY_PHONE, "recoveryPhone");
    rc |= check_inactive(ev, &u);
    rc |= check_daily_use(ev, &u);
    return rc ? -1 : 0;
}

/* Appends v (stolen) to the list of matches of type, creating it. */
static void add_match(json_t **matched, int type, json_t *v)
{
    if (!matched[type])
        matched[type] = json_array();
    append_capped(matched[type], v);
}

/* ---- files and shared drives ----------------------------------------------------------- */

/* Edit = writer and above; owner is the file's owner, not a share, and is left out. */
static int role_edits(const char *role)
{
    return strcmp(role, "writer") == 0 || strcmp(role, "organizer") == 0 ||
           strcmp(role, "fileOrganizer") == 0;
}

static int role_views(const char *role)
{
    return strcmp(role, "reader") == 0 || strcmp(role, "commenter") == 0;
}

/* Who a permission shares with: 0 internal (not reported), or the type family base among
 * public / external / domain; -1 when it cannot be told (no email). */
enum { AUD_NONE, AUD_PUBLIC, AUD_EXTERNAL, AUD_DOMAIN };

static int audience(const casb_google_eval *ev, const json_t *perm)
{
    const char *type = casb_json_str(perm, "type");

    if (!type)
        return AUD_NONE;
    if (strcmp(type, "anyone") == 0)
        return AUD_PUBLIC;
    if (strcmp(type, "domain") == 0)
        return casb_google_is_internal(ev, casb_json_str(perm, "domain")) ? AUD_DOMAIN
                                                                           : AUD_EXTERNAL;
    if (strcmp(type, "user") == 0 || strcmp(type, "group") == 0) {
        const char *email = casb_json_str(perm, "emailAddress");

        /* Google hides the address of a deleted account: nobody to share with any more. */
        if (!email)
            return AUD_NONE;
        return casb_google_is_internal(ev, email) ? AUD_NONE : AUD_EXTERNAL;
    }
    return AUD_NONE;
}

/* The permission's evidence, without display names or photos. */
static json_t *perm_summary(const json_t *perm)
{
    json_t *p = json_object();

    copy_member(p, perm, "type");
    copy_member(p, perm, "role");
    copy_member(p, perm, "emailAddress");
    copy_member(p, perm, "domain");
    copy_member(p, perm, "allowFileDiscovery");
    return p;
}

static int file_type_of(int aud, int edit)
{
    switch (aud) {
    case AUD_PUBLIC:
        return edit ? GW_T_FILE_PUBLIC_EDIT : GW_T_FILE_PUBLIC_VIEW;
    case AUD_EXTERNAL:
        return edit ? GW_T_FILE_EXTERNAL_EDIT : GW_T_FILE_EXTERNAL_VIEW;
    case AUD_DOMAIN:
        return edit ? GW_T_FILE_DOMAIN_EDIT : GW_T_FILE_DOMAIN_VIEW;
    default:
        return -1;
    }
}

static json_t *file_details(const json_t *file)
{
    json_t *d = json_object();
    json_t *owner = json_array_get(json_object_get(file, "owners"), 0);

    copy_member(d, file, "mimeType");
    if (owner)
        copy_member(d, owner, "emailAddress");
    copy_member(d, file, "shared_drive");
    return d;
}

int casb_google_check_file(casb_google_eval *ev, const json_t *file)
{
    const char *id = casb_json_str(file, "id");
    const char *name = casb_json_str(file, "name");
    json_t *perms = json_object_get(file, "permissions");
    json_t *matched[GW_T_COUNT] = {0};
    long counts[GW_T_COUNT] = {0};
    json_t *perm;
    size_t i;
    int rc = 0;

    if (!id)
        return 0;
    if (!json_is_array(perms)) {
        skip_all(ev, file_types, NELEM(file_types), "permissions not readable", id);
        return 0;
    }
    json_array_foreach(perms, i, perm) {
        const char *role = casb_json_str(perm, "role");
        int type;

        if (!role || (!role_edits(role) && !role_views(role)))
            continue;
        type = file_type_of(audience(ev, perm), role_edits(role));
        if (type < 0)
            continue;
        counts[type]++;
        add_match(matched, type, perm_summary(perm));
    }
    for (size_t k = 0; k < NELEM(file_types); k++) {
        int type = file_types[k];
        json_t *d;

        if (!matched[type])
            continue;
        d = file_details(file);
        json_object_set_new(d, "permissions", matched[type]);
        json_object_set_new(d, "permission_count", json_integer(counts[type]));
        rc |= emit(ev, type, "file", id, name ? name : id, casb_json_str(file, "webViewLink"),
                   d);
    }
    return rc ? -1 : 0;
}

static json_t *external_editor(const casb_google_eval *ev, const json_t *perm)
{
    const char *role = casb_json_str(perm, "role");

    if (!role || !role_edits(role) || audience(ev, perm) != AUD_EXTERNAL)
        return NULL;
    return perm_summary(perm);
}

int casb_google_check_shared_drive(casb_google_eval *ev, const json_t *drive)
{
    const char *id = casb_json_str(drive, "id");
    const char *name = casb_json_str(drive, "name");
    json_t *perms = json_object_get(drive, "permissions");
    json_t *editors, *d;
    long count;
    char url[256];

    if (!id)
        return 0;
    if (!json_is_array(perms)) {
        casb_google_eval_skip(ev, GW_T_SHARED_DRIVE_EXTERNAL_EDITOR,
                              "members of shared drive %s not readable", id);
        return 0;
    }
    editors = collect_matches(ev, perms, external_editor, &count);
    if (!editors)
        return 0;
    snprintf(url, sizeof(url), "https://drive.google.com/drive/folders/%s", id);
    d = json_pack("{s:o,s:I}", "external_editors", editors, "external_editor_count",
                  (json_int_t)count);
    return emit(ev, GW_T_SHARED_DRIVE_EXTERNAL_EDITOR, "shared_drive", id, name ? name : id,
                url, d);
}

/* ---- calendar -------------------------------------------------------------------------- */

/* Percent-encodes s into buf for a URL's query (calendar ids hold '@' and '#'). */
static void url_encode(char *buf, size_t buflen, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (; *s && n + 4 < buflen; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '-' || c == '_') {
            buf[n++] = (char)c;
        } else {
            buf[n++] = '%';
            buf[n++] = hex[c >> 4];
            buf[n++] = hex[c & 15];
        }
    }
    buf[n] = '\0';
}

int casb_google_check_calendar(casb_google_eval *ev, const json_t *calendar)
{
    const char *id = casb_json_str(calendar, "id");
    json_t *acl = json_object_get(calendar, "acl");
    const char *role = NULL;
    char url[600], enc[512];
    json_t *rule;
    size_t i;

    if (!id)
        return 0;
    if (!json_is_array(acl)) {
        casb_google_eval_skip(ev, GW_T_CALENDAR_PUBLIC, "sharing of calendar %s not readable",
                              id);
        return 0;
    }
    json_array_foreach(acl, i, rule) {
        const char *scope = casb_json_path_str(rule, "scope.type");
        const char *r = casb_json_str(rule, "role");

        if (scope && strcmp(scope, "default") == 0 && r && strcmp(r, "none") != 0)
            role = r;
    }
    if (!role)
        return 0;
    url_encode(enc, sizeof(enc), id);
    snprintf(url, sizeof(url), "https://calendar.google.com/calendar/embed?src=%s", enc);
    return emit(ev, GW_T_CALENDAR_PUBLIC, "calendar", id, id, url,
                json_pack("{s:s?,s:s,s:b}", "owner", casb_json_str(calendar, "owner"), "role",
                          role, "event_details_visible", strcmp(role, "freeBusyReader") != 0));
}

/* ---- Gmail delegates ------------------------------------------------------------------- */

/* A pending delegate has no access until it accepts. */
static json_t *accepted_delegate(const casb_google_eval *ev, const json_t *dl)
{
    const char *status = casb_json_str(dl, "verificationStatus");
    const char *to = casb_json_str(dl, "delegateEmail");

    if (!to || !status || strcmp(status, "accepted") != 0)
        return NULL;
    return json_pack("{s:s,s:b}", "delegateEmail", to, "internal",
                     casb_google_is_internal(ev, to));
}

int casb_google_check_delegates(casb_google_eval *ev, const json_t *delegates)
{
    const char *email = casb_json_str(delegates, "user");
    const char *uid = casb_json_str(delegates, "user_id");
    json_t *list = json_object_get(delegates, "delegates");
    json_t *accepted, *d;
    long count;
    char url[256];

    if (!email)
        return 0;
    if (!json_is_array(list)) {
        casb_google_eval_skip(ev, GW_T_USER_DELEGATES_EMAIL,
                              "mail delegates of %s not readable", email);
        return 0;
    }
    accepted = collect_matches(ev, list, accepted_delegate, &count);
    if (!accepted)
        return 0;
    if (!uid)
        uid = email;
    snprintf(url, sizeof(url), ADMIN_USER_URL "%s", uid);
    d = json_pack("{s:s,s:o,s:I}", "primaryEmail", email, "delegates", accepted,
                  "delegate_count", (json_int_t)count);
    return emit(ev, GW_T_USER_DELEGATES_EMAIL, "user", uid, email, url, d);
}

/* ---- domain (SPF, DMARC) --------------------------------------------------------------- */

static int check_spf(casb_google_eval *ev, const json_t *domain, const char *name,
                     const char *url)
{
    json_t *txts = json_object_get(domain, "spf");
    casb_spf_result spf;
    char qualifier[2] = {0};

    if (!json_is_array(txts)) {
        skip_all(ev, spf_types, NELEM(spf_types), "TXT records not collected", name);
        return 0;
    }
    casb_spf_eval(txts, &spf);
    if (!spf.present)
        return emit(ev, GW_T_SPF_MISSING, "domain", name, name, url,
                    json_pack("{s:s,s:s,s:b}", "problem", spf.problem, "record", spf.record,
                              "multiple_records", spf.multiple));
    if (!spf.allows_any)
        return 0;
    qualifier[0] = spf.all_qualifier;
    return emit(ev, GW_T_SPF_ALLOWS_ANY, "domain", name, name, url,
                json_pack("{s:s,s:s,s:s}", "record", spf.record, "problem", spf.problem,
                          "all_qualifier", qualifier));
}

static int check_dmarc(casb_google_eval *ev, const json_t *domain, const char *name,
                       const char *url)
{
    json_t *txts = json_object_get(domain, "dmarc");
    casb_dmarc_result dm;
    int rc = 0;

    if (!json_is_array(txts)) {
        skip_all(ev, dmarc_types, NELEM(dmarc_types), "TXT records not collected", name);
        return 0;
    }
    casb_dmarc_eval(txts, &dm);
    if (!dm.present)
        return emit(ev, GW_T_DMARC_MISSING, "domain", name, name, url,
                    json_pack("{s:s,s:s,s:b}", "problem", dm.problem, "record", dm.record,
                              "multiple_records", dm.multiple));
    if (strcmp(dm.p, "none") == 0)
        rc |= emit(ev, GW_T_DMARC_NOT_ENFORCED, "domain", name, name, url,
                   json_pack("{s:s,s:s}", "record", dm.record, "p", dm.p));
    /* sp defaults to p: p=none without sp leaves subdomains unenforced too. */
    if (strcmp(dm.sp, "none") == 0)
        rc |= emit(ev, GW_T_DMARC_SUBDOMAINS_NOT_ENFORCED, "domain", name, name, url,
                   json_pack("{s:s,s:s,s:b}", "record", dm.record, "sp", dm.sp, "sp_explicit",
                             dm.sp_explicit));
    /* pct samples only the messages a quarantine or reject policy acts on. */
    if (dm.pct < 100 && strcmp(dm.p, "none") != 0)
        rc |= emit(ev, GW_T_DMARC_PARTIAL, "domain", name, name, url,
                   json_pack("{s:s,s:s,s:i}", "record", dm.record, "p", dm.p, "pct", dm.pct));
    return rc ? -1 : 0;
}

int casb_google_check_domain(casb_google_eval *ev, const json_t *domain)
{
    const char *name = casb_json_str(domain, "domainName");
    const char *dns_error = casb_json_str(domain, "dns_error");
    char url[] = "https://admin.google.com/ac/domains/manage";
    int rc = 0;

    if (!name || !json_is_true(json_object_get(domain, "verified")))
        return 0;
    if (dns_error) {
        skip_all(ev, spf_types, NELEM(spf_types), dns_error, name);
        skip_all(ev, dmarc_types, NELEM(dmarc_types), dns_error, name);
        return 0;
    }
    rc |= check_spf(ev, domain, name, url);
    rc |= check_dmarc(ev, domain, name, url);
    return rc ? -1 : 0;
}

/* ---- third-party apps ------------------------------------------------------------------ */

#define AUTH_PREFIX "https://www.googleapis.com/auth/"

/* scope is base or base.<anything> below AUTH_PREFIX. */
static int scope_under(const char *scope, const char *base)
{
    size_t plen = strlen(AUTH_PREFIX), blen = strlen(base);

    if (strncmp(scope, AUTH_PREFIX, plen) != 0)
        return 0;
    scope += plen;
    return strncmp(scope, base, blen) == 0 && (scope[blen] == '\0' || scope[blen] == '.');
}

/* The family type a scope belongs to, or -1 (admin, contacts and others are not judged). */
static int scope_family(const char *s)
{
    if (scope_under(s, "drive"))
        return GW_T_APP_DRIVE;
    if (strcmp(s, "https://mail.google.com/") == 0 || scope_under(s, "gmail"))
        return GW_T_APP_GMAIL;
    if (scope_under(s, "documents"))
        return GW_T_APP_DOCS;
    if (scope_under(s, "calendar"))
        return GW_T_APP_CALENDAR;
    if (scope_under(s, "presentations"))
        return GW_T_APP_SLIDES;
    if (scope_under(s, "spreadsheets"))
        return GW_T_APP_SHEETS;
    if (strcmp(s, "openid") == 0 || strcmp(s, "email") == 0 || strcmp(s, "profile") == 0 ||
        strcmp(s, AUTH_PREFIX "userinfo.email") == 0 ||
        strcmp(s, AUTH_PREFIX "userinfo.profile") == 0)
        return GW_T_APP_SIGN_IN;
    return -1;
}

/* Full Drive and reading or changing mail: what an unverified app must not hold. */
static int scope_high_risk(const char *s)
{
    return strcmp(s, AUTH_PREFIX "drive") == 0 || strcmp(s, "https://mail.google.com/") == 0 ||
           strcmp(s, AUTH_PREFIX "gmail.readonly") == 0 ||
           strcmp(s, AUTH_PREFIX "gmail.modify") == 0;
}

static casb_google_app *app_find(const casb_google_eval *ev, const char *client_id)
{
    json_t *v = json_object_get(ev->app_index, client_id);

    return v ? (casb_google_app *)(uintptr_t)json_integer_value(v) : NULL;
}

static casb_google_app *app_new(casb_google_eval *ev, const char *client_id, const char *name)
{
    casb_google_app *a = calloc(1, sizeof(*a));

    if (!a)
        return NULL;
    a->client_id = strdup(client_id);
    a->name = strdup(name ? name : client_id);
    a->scopes = json_array();
    a->sample_users = json_array();
    if (!a->client_id || !a->name || !a->scopes || !a->sample_users ||
        json_object_set_new(ev->app_index, client_id,
                            json_integer((json_int_t)(uintptr_t)a)) != 0) {
        free(a->client_id);
        free(a->name);
        json_decref(a->scopes);
        json_decref(a->sample_users);
        free(a);
        return NULL;
    }
    a->next = ev->apps;
    ev->apps = a;
    ev->apps_count++;
    return a;
}

static int has_string(const json_t *list, const char *s)
{
    json_t *v;
    size_t i;

    json_array_foreach(list, i, v) {
        if (strcmp(json_string_value(v), s) == 0)
            return 1;
    }
    return 0;
}

int casb_google_add_token(casb_google_eval *ev, const json_t *token, const char *user_email)
{
    const char *client_id = casb_json_str(token, "clientId");
    casb_google_app *a;
    json_t *scope;
    size_t i;

    if (!client_id || !client_id[0])
        return 0;
    a = app_find(ev, client_id);
    if (!a) {
        if (ev->apps_count >= CASB_GOOGLE_APPS_MAX) {
            char why[128];

            ev->apps_dropped++;
            snprintf(why, sizeof(why), "more than %d distinct apps, the most a scan keeps",
                     CASB_GOOGLE_APPS_MAX);
            skip_all(ev, app_types, NELEM(app_types), why, "third-party apps");
            return 0;
        }
        a = app_new(ev, client_id, casb_json_str(token, "displayText"));
        if (!a)
            return -1;
    }
    a->users++;
    if (json_is_true(json_object_get(token, "anonymous")))
        a->anonymous = 1;
    if (user_email && json_array_size(a->sample_users) < CASB_GOOGLE_APP_SAMPLE_USERS)
        json_array_append_new(a->sample_users, json_string(user_email));
    json_array_foreach(json_object_get(token, "scopes"), i, scope) {
        const char *s = json_string_value(scope);

        if (s && json_array_size(a->scopes) < APP_SCOPES_MAX && !has_string(a->scopes, s))
            json_array_append_new(a->scopes, json_string(s));
    }
    return 0;
}

static json_t *app_details(const casb_google_app *a, json_t *matching)
{
    return json_pack("{s:O,s:I,s:O,s:b,s:o}", "scopes", a->scopes, "users", (json_int_t)a->users,
                     "sample_users", a->sample_users, "anonymous", a->anonymous,
                     "matching_scopes", matching);
}

static int check_app(casb_google_eval *ev, const casb_google_app *a)
{
    json_t *matched[GW_T_COUNT] = {0};
    json_t *scope;
    size_t i;
    int rc = 0;

    json_array_foreach(a->scopes, i, scope) {
        const char *s = json_string_value(scope);
        int type = scope_family(s);

        if (a->anonymous && scope_high_risk(s))
            add_match(matched, GW_T_APP_UNVERIFIED_HIGH_RISK, json_string(s));
        if (type >= 0)
            add_match(matched, type, json_string(s));
    }
    for (size_t k = 0; k < NELEM(app_types); k++) {
        int type = app_types[k];

        if (matched[type])
            rc |= emit(ev, type, "app", a->client_id, a->name,
                       "https://admin.google.com/ac/owl/list?tab=configuredApps",
                       app_details(a, matched[type]));
    }
    return rc ? -1 : 0;
}

static int check_super_admins(casb_google_eval *ev)
{
    int type;
    json_t *d;

    if (ev->super_admins > CASB_GOOGLE_SUPER_ADMINS_MAX)
        type = GW_T_TOO_MANY_SUPER_ADMINS;
    else if (ev->super_admins < CASB_GOOGLE_SUPER_ADMINS_MIN)
        type = GW_T_TOO_FEW_SUPER_ADMINS;
    else
        return 0;
    d = json_pack("{s:I,s:i,s:i,s:O}", "super_admins", (json_int_t)ev->super_admins,
                  "recommended_min", CASB_GOOGLE_SUPER_ADMINS_MIN, "recommended_max",
                  CASB_GOOGLE_SUPER_ADMINS_MAX, "sample", ev->super_admin_sample);
    return emit(ev, type, "customer", ev->customer, ev->customer,
                "https://admin.google.com/ac/roles", d);
}

int casb_google_check_tenant(casb_google_eval *ev)
{
    int rc = 0;

    for (const casb_google_app *a = ev->apps; a; a = a->next)
        rc |= check_app(ev, a);
    rc |= check_super_admins(ev);
    return rc ? -1 : 0;
}
