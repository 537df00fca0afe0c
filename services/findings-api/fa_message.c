#include "fa_message.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The finding type must be catalogued for this provider; *found (when not NULL) is its
 * catalogue entry. */
static int known_type(const fa_catalogue *cat, const char *provider, const char *type,
                      const fa_finding_type **found, const char *where, char *reason,
                      size_t reasonlen)
{
    const fa_finding_type *t = fa_catalogue_find(cat, type);

    if (found)
        *found = t;
    if (!t)
        return casb_fail(reason, reasonlen, CASB_EINVALID, "%s: unknown finding type", where);
    if (strcmp(t->provider, provider) != 0)
        return casb_fail(reason, reasonlen, CASB_EINVALID,
                         "%s: finding type of another provider", where);
    return 0;
}

/* Checks finding f, the i-th; *t is its type's catalogue entry. */
static int check_finding(const json_t *f, size_t i, const fa_catalogue *cat,
                         const char *provider, const fa_finding_type **t, char *reason,
                         size_t reasonlen)
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
    if (known_type(cat, provider, type, t, where, reason, reasonlen) != 0)
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
        if (known_type(cat, provider, json_string_value(v), NULL, where, reason,
                       reasonlen) != 0)
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

int fa_message_type_rows(const fa_result_msg *const *ms, size_t n, casb_text *out)
{
    const fa_finding_type **seen = NULL;
    size_t nseen = 0, total = 0;
    int rc = -1;

    for (size_t k = 0; k < n; k++)
        total += ms[k]->ntypes;
    if (total > 0 && !(seen = calloc(total, sizeof(*seen))))
        return -1;
    casb_text_append(out, "[", 1);
    for (size_t k = 0; k < n; k++) {
        for (size_t i = 0; i < ms[k]->ntypes; i++) {
            const fa_finding_type *t = ms[k]->types[i];
            size_t j = 0;

            while (j < nseen && seen[j] != t)
                j++;
            if (j < nseen)
                continue;
            seen[nseen++] = t;
            /* Catalogue ids and severities need no escaping: checked when it was loaded. */
            if (nseen > 1)
                casb_text_append(out, ",", 1);
            casb_text_append_str(out, "{\"finding_type\":\"");
            casb_text_append_str(out, t->id);
            casb_text_append_str(out, "\",\"severity\":\"");
            casb_text_append_str(out, t->severity);
            casb_text_append_str(out, "\"}");
        }
    }
    rc = casb_text_append(out, "]", 1);
    free(seen);
    return rc;
}

/* Appends the row of finding f, the ord-th of the seq-th message. */
static int append_instance_row(casb_text *t, const json_t *f, int seq, size_t ord)
{
    const json_t *asset = json_object_get(f, "asset");
    const json_t *id = json_object_get(asset, "id");
    const json_t *name = json_object_get(asset, "name");
    const json_t *url = json_object_get(asset, "url");
    const json_t *details = json_object_get(f, "details");
    char head[64];

    snprintf(head, sizeof(head), "{\"seq\":%d,\"ord\":%zu,\"finding_type\":", seq, ord);
    casb_text_append_str(t, head);
    casb_text_append_json(t, json_object_get(f, "finding_type"));
    casb_text_append_str(t, ",\"asset_kind\":");
    casb_text_append_json(t, json_object_get(asset, "kind"));
    casb_text_append_str(t, ",\"asset_id\":");
    casb_text_append_json(t, id);
    casb_text_append_str(t, ",\"asset_name\":");
    casb_text_append_json(t, json_is_string(name) ? name : id); /* no name: the id */
    casb_text_append_str(t, ",\"asset_url\":");
    if (json_is_string(url))
        casb_text_append_json(t, url);
    else
        casb_text_append_str(t, "null");
    casb_text_append_str(t, ",\"details\":");
    if (json_is_object(details))
        casb_text_append_json(t, details);
    else
        casb_text_append_str(t, "{}");
    return casb_text_append(t, "}", 1);
}

int fa_message_instance_rows(const fa_result_msg *const *ms, size_t n, casb_text *out)
{
    int first = 1;

    casb_text_append(out, "[", 1);
    for (size_t k = 0; k < n; k++) {
        if (ms[k]->rows.len == 0)
            continue;
        if (!first)
            casb_text_append(out, ",", 1);
        casb_text_append(out, ms[k]->rows.data, ms[k]->rows.len);
        first = 0;
    }
    return casb_text_append(out, "]", 1);
}

/* Adds the row of m's i-th finding f, valid and of type t, and t to m's distinct types
 * (room for one per finding). */
static int add_row(fa_result_msg *m, const json_t *f, size_t i, const fa_finding_type *t)
{
    size_t j = 0;

    while (j < m->ntypes && m->types[j] != t)
        j++;
    if (j == m->ntypes)
        m->types[m->ntypes++] = t;
    if (i > 0)
        casb_text_append(&m->rows, ",", 1);
    return append_instance_row(&m->rows, f, m->seq, i);
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
        if (json_array_size(out->findings) > 0 &&
            !(out->types = calloc(json_array_size(out->findings), sizeof(*out->types))))
            goto out_of_memory;
        /* Each finding is checked, then its row written, in one pass. */
        json_array_foreach(out->findings, i, f) {
            const fa_finding_type *t = NULL;

            if (check_finding(f, i, cat, out->provider, &t, reason, reasonlen) != 0)
                goto fail;
            if (add_row(out, f, i, t) != 0)
                goto out_of_memory;
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
out_of_memory:
    casb_fail(reason, reasonlen, CASB_ERROR, "out of memory");
    fa_message_clear(out);
    return CASB_ERROR;
}

void fa_message_clear(fa_result_msg *m)
{
    json_decref(m->root);
    casb_text_free(&m->rows);
    free(m->types);
    memset(m, 0, sizeof(*m));
}

