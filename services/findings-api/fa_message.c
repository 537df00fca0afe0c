#include "fa_message.h"

#include <ctype.h>
#include <string.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/json.h"

/* Bounds that keep one message's rows reasonable for the database. */
#define FA_MAX_ASSET_ID 1024
#define FA_MAX_ASSET_NAME 1024
#define FA_MAX_ASSET_URL 2048
#define FA_MAX_ASSET_KIND 64
#define FA_MAX_ERROR 2000
#define FA_MAX_SEQ 1000000
#define FA_MAX_ATTEMPT 1000000

static int digits(const char *s, int n)
{
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
    }
    return 1;
}

static int num(const char *s, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

int fa_rfc3339_valid(const char *s)
{
    if (!s || strlen(s) < 20)
        return 0;
    /* YYYY-MM-DDTHH:MM:SS */
    if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2) ||
        s[10] != 'T' || !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) ||
        s[16] != ':' || !digits(s + 17, 2))
        return 0;
    if (num(s + 5, 2) < 1 || num(s + 5, 2) > 12 || num(s + 8, 2) < 1 || num(s + 8, 2) > 31 ||
        num(s + 11, 2) > 23 || num(s + 14, 2) > 59 || num(s + 17, 2) > 60)
        return 0;
    s += 19;
    if (*s == '.') {
        int n = 0;
        s++;
        while (isdigit((unsigned char)s[n]))
            n++;
        if (n < 1 || n > 9)
            return 0;
        s += n;
    }
    if (strcmp(s, "Z") == 0)
        return 1;
    if ((s[0] == '+' || s[0] == '-') && strlen(s) == 6 && digits(s + 1, 2) && s[3] == ':' &&
        digits(s + 4, 2))
        return num(s + 1, 2) <= 23 && num(s + 4, 2) <= 59;
    return 0;
}

static int uuid_member(const json_t *root, const char *key, const char **out, char *reason,
                       size_t reasonlen)
{
    const char *v = casb_json_str(root, key);

    if (!v || !casb_uuid_valid(v))
        return casb_fail(reason, reasonlen, CASB_EINVALID, "%s: missing or not a UUID", key);
    *out = v;
    return 0;
}

/* A string member with 1..max bytes (optional: absent or null allowed, *out NULL). */
static int str_member(const json_t *obj, const char *key, size_t max, int optional,
                      const char **out, const char *where, char *reason, size_t reasonlen)
{
    const json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (!v || json_is_null(v)) {
        if (optional)
            return 0;
        return casb_fail(reason, reasonlen, CASB_EINVALID, "%s.%s: missing", where, key);
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v))
        return casb_fail(reason, reasonlen, CASB_EINVALID,
                         "%s.%s: not a string of 1..%zu bytes", where, key, max);
    *out = json_string_value(v);
    return 0;
}

/* The finding type must be catalogued for this provider. */
static int known_type(const fa_catalogue *cat, const char *provider, const char *type,
                      const char *where, char *reason, size_t reasonlen)
{
    const fa_finding_type *t = fa_catalogue_find(cat, type);

    if (!t)
        return casb_fail(reason, reasonlen, CASB_EINVALID, "%s: unknown finding type", where);
    if (strcmp(t->provider, provider) != 0)
        return casb_fail(reason, reasonlen, CASB_EINVALID,
                         "%s: finding type of another provider", where);
    return 0;
}

static int check_finding(const json_t *f, size_t i, const fa_catalogue *cat,
                         const char *provider, char *reason, size_t reasonlen)
{
    char where[64];
    const char *type, *s;
    const json_t *asset, *details;

    snprintf(where, sizeof(where), "findings[%zu]", i);
    if (!json_is_object(f))
        return casb_fail(reason, reasonlen, CASB_EINVALID, "%s: not an object", where);
    if (str_member(f, "finding_type", 128, 0, &type, where, reason, reasonlen) != 0)
        return CASB_EINVALID;
    snprintf(where, sizeof(where), "findings[%zu].finding_type", i);
    if (known_type(cat, provider, type, where, reason, reasonlen) != 0)
        return CASB_EINVALID;
    snprintf(where, sizeof(where), "findings[%zu].asset", i);
    asset = json_object_get(f, "asset");
    if (!json_is_object(asset))
        return casb_fail(reason, reasonlen, CASB_EINVALID, "%s: missing or not an object",
                         where);
    if (str_member(asset, "kind", FA_MAX_ASSET_KIND, 0, &s, where, reason, reasonlen) != 0 ||
        str_member(asset, "id", FA_MAX_ASSET_ID, 0, &s, where, reason, reasonlen) != 0 ||
        str_member(asset, "name", FA_MAX_ASSET_NAME, 1, &s, where, reason, reasonlen) != 0 ||
        str_member(asset, "url", FA_MAX_ASSET_URL, 1, &s, where, reason, reasonlen) != 0)
        return CASB_EINVALID;
    details = json_object_get(f, "details");
    if (details && !json_is_null(details) && !json_is_object(details))
        return casb_fail(reason, reasonlen, CASB_EINVALID, "findings[%zu].details: not an object",
                         i);
    return 0;
}

static int check_coverage(const json_t *cov, const fa_catalogue *cat, const char *provider,
                          char *reason, size_t reasonlen)
{
    const json_t *ran, *skipped, *v;
    size_t i;
    char where[64];

    if (!json_is_object(cov))
        return casb_fail(reason, reasonlen, CASB_EINVALID, "coverage: missing or not an object");
    ran = json_object_get(cov, "ran");
    skipped = json_object_get(cov, "skipped");
    if (!json_is_array(ran))
        return casb_fail(reason, reasonlen, CASB_EINVALID, "coverage.ran: missing or not an array");
    if (skipped && !json_is_array(skipped))
        return casb_fail(reason, reasonlen, CASB_EINVALID, "coverage.skipped: not an array");
    json_array_foreach(ran, i, v) {
        snprintf(where, sizeof(where), "coverage.ran[%zu]", i);
        if (!json_is_string(v))
            return casb_fail(reason, reasonlen, CASB_EINVALID, "%s: not a string", where);
        if (known_type(cat, provider, json_string_value(v), where, reason, reasonlen) != 0)
            return CASB_EINVALID;
    }
    json_array_foreach(skipped, i, v) {
        const char *s;
        snprintf(where, sizeof(where), "coverage.skipped[%zu]", i);
        if (!json_is_object(v))
            return casb_fail(reason, reasonlen, CASB_EINVALID, "%s: not an object", where);
        if (str_member(v, "finding_type", 128, 0, &s, where, reason, reasonlen) != 0 ||
            str_member(v, "reason", FA_MAX_ERROR, 1, &s, where, reason, reasonlen) != 0)
            return CASB_EINVALID;
    }
    return 0;
}

static int parse_kind(const char *k, fa_kind *out)
{
    static const char *const names[] = {"findings", "progress", "completed", "failed"};

    for (int i = 0; i < 4; i++) {
        if (k && strcmp(k, names[i]) == 0) {
            *out = (fa_kind)i;
            return 0;
        }
    }
    return -1;
}

static int error_kind_valid(const char *k)
{
    return strcmp(k, "auth") == 0 || strcmp(k, "unavailable") == 0 ||
           strcmp(k, "internal") == 0 || strcmp(k, "cancelled") == 0;
}

int fa_message_parse(fa_result_msg *out, const char *buf, size_t len, const fa_catalogue *cat,
                     char *reason, size_t reasonlen)
{
    char perr[160];
    json_t *root, *v;
    const char *s;
    json_int_t seq, attempt;

    memset(out, 0, sizeof(*out));
    root = casb_json_parse(buf, len, 32, perr, sizeof(perr));
    if (!root)
        return casb_fail(reason, reasonlen, CASB_EINVALID, "not JSON: %s", perr);
    out->root = root;
    if (!json_is_object(root)) {
        casb_fail(reason, reasonlen, CASB_EINVALID, "not a JSON object");
        goto fail;
    }
    s = casb_json_str(root, "schema");
    if (!s || strcmp(s, FA_RESULT_SCHEMA) != 0) {
        casb_fail(reason, reasonlen, CASB_EINVALID, "schema: expected " FA_RESULT_SCHEMA);
        goto fail;
    }
    if (uuid_member(root, "scan_id", &out->scan_id, reason, reasonlen) != 0 ||
        uuid_member(root, "integration_id", &out->integration_id, reason, reasonlen) != 0 ||
        uuid_member(root, "account_id", &out->account_id, reason, reasonlen) != 0)
        goto fail;
    if (str_member(root, "provider", 64, 0, &out->provider, "message", reason, reasonlen) != 0)
        goto fail;
    v = json_object_get(root, "seq");
    seq = json_is_integer(v) ? json_integer_value(v) : 0;
    if (seq < 1 || seq > FA_MAX_SEQ) {
        casb_fail(reason, reasonlen, CASB_EINVALID, "seq: missing or not an integer 1..%d",
                  FA_MAX_SEQ);
        goto fail;
    }
    out->seq = (int)seq;
    v = json_object_get(root, "attempt");
    attempt = json_is_integer(v) ? json_integer_value(v) : 0;
    if (attempt < 1 || attempt > FA_MAX_ATTEMPT) {
        casb_fail(reason, reasonlen, CASB_EINVALID, "attempt: missing or not an integer 1..%d",
                  FA_MAX_ATTEMPT);
        goto fail;
    }
    out->attempt = (int)attempt;
    out->kind_name = casb_json_str(root, "kind");
    if (parse_kind(out->kind_name, &out->kind) != 0) {
        casb_fail(reason, reasonlen, CASB_EINVALID,
                  "kind: expected findings, progress, completed or failed");
        goto fail;
    }
    out->scan_started_at = casb_json_str(root, "scan_started_at");
    if (!fa_rfc3339_valid(out->scan_started_at)) {
        casb_fail(reason, reasonlen, CASB_EINVALID, "scan_started_at: missing or not RFC 3339");
        goto fail;
    }
    out->stats = json_object_get(root, "stats");
    if (out->stats && json_is_null(out->stats))
        out->stats = NULL;
    if (out->stats && !json_is_object(out->stats)) {
        casb_fail(reason, reasonlen, CASB_EINVALID, "stats: not an object");
        goto fail;
    }

    switch (out->kind) {
    case FA_KIND_FINDINGS: {
        size_t i;
        json_t *f;
        out->findings = json_object_get(root, "findings");
        if (!json_is_array(out->findings)) {
            casb_fail(reason, reasonlen, CASB_EINVALID, "findings: missing or not an array");
            goto fail;
        }
        if (json_array_size(out->findings) > FA_MAX_FINDINGS_PER_MESSAGE) {
            casb_fail(reason, reasonlen, CASB_EINVALID, "findings: more than %d entries",
                      FA_MAX_FINDINGS_PER_MESSAGE);
            goto fail;
        }
        json_array_foreach(out->findings, i, f) {
            if (check_finding(f, i, cat, out->provider, reason, reasonlen) != 0)
                goto fail;
        }
        break;
    }
    case FA_KIND_PROGRESS:
        break;
    case FA_KIND_COMPLETED:
    case FA_KIND_FAILED:
        v = json_object_get(root, "total_messages");
        if (!json_is_integer(v) || json_integer_value(v) != seq) {
            casb_fail(reason, reasonlen, CASB_EINVALID,
                      "total_messages: missing or not equal to seq");
            goto fail;
        }
        out->total_messages = (int)seq;
        if (out->kind == FA_KIND_COMPLETED) {
            out->coverage = json_object_get(root, "coverage");
            if (check_coverage(out->coverage, cat, out->provider, reason, reasonlen) != 0)
                goto fail;
            break;
        }
        if (str_member(root, "error", FA_MAX_ERROR, 0, &out->error, "message", reason,
                       reasonlen) != 0)
            goto fail;
        out->error_kind = casb_json_str(root, "error_kind");
        if (json_object_get(root, "error_kind") && !json_is_null(json_object_get(root, "error_kind")) &&
            (!out->error_kind || !error_kind_valid(out->error_kind))) {
            casb_fail(reason, reasonlen, CASB_EINVALID,
                      "error_kind: expected auth, unavailable, internal or cancelled");
            goto fail;
        }
        if (!out->error_kind)
            out->error_kind = "internal";
        break;
    }
    return 0;
fail:
    fa_message_clear(out);
    return CASB_EINVALID;
}

void fa_message_clear(fa_result_msg *m)
{
    json_decref(m->root);
    memset(m, 0, sizeof(*m));
}

json_t *fa_message_type_rows(const fa_result_msg *const *ms, size_t n,
                             const fa_catalogue *cat)
{
    json_t *seen = json_object();
    json_t *rows = json_array();
    size_t i, k;
    json_t *f;

    if (!seen || !rows)
        goto fail;
    for (k = 0; k < n; k++) {
        json_array_foreach(ms[k]->findings, i, f) {
            const char *type = casb_json_str(f, "finding_type");
            const fa_finding_type *t = fa_catalogue_find(cat, type);
            if (!t || json_object_get(seen, type))
                continue;
            if (json_object_set_new(seen, type, json_true()) != 0 ||
                json_array_append_new(rows, json_pack("{s:s, s:s}", "finding_type", type,
                                                      "severity", t->severity)) != 0)
                goto fail;
        }
    }
    json_decref(seen);
    return rows;
fail:
    json_decref(seen);
    json_decref(rows);
    return NULL;
}

/* One row of a finding; ord orders the sightings of the rows being built. */
static json_t *instance_row(const json_t *f, json_int_t ord)
{
    const json_t *asset = json_object_get(f, "asset");
    const char *id = casb_json_str(asset, "id");
    const char *name = casb_json_str(asset, "name");
    json_t *details = json_object_get(f, "details");
    json_t *row = json_pack("{s:I, s:s, s:s, s:s, s:s}", "ord", ord, "finding_type",
                            casb_json_str(f, "finding_type"), "asset_kind",
                            casb_json_str(asset, "kind"), "asset_id", id, "asset_name",
                            name ? name : id);

    if (!row || casb_json_set_str(row, "asset_url", casb_json_str(asset, "url")) != 0 ||
        json_object_set_new(row, "details",
                            json_is_object(details) ? json_incref(details) : json_object()) != 0) {
        json_decref(row);
        return NULL;
    }
    return row;
}

json_t *fa_message_instance_rows(const fa_result_msg *const *ms, size_t n)
{
    json_t *rows = json_array();
    size_t i, k;
    json_t *f;

    if (!rows)
        return NULL;
    for (k = 0; k < n; k++) {
        json_array_foreach(ms[k]->findings, i, f) {
            json_int_t ord = (json_int_t)json_array_size(rows);
            if (json_array_append_new(rows, instance_row(f, ord)) != 0) {
                json_decref(rows);
                return NULL;
            }
        }
    }
    return rows;
}
