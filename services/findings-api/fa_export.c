/* Exports of findings and instances: GET /v1/findings/export and GET /v1/instances/export
 * as CSV, JSON Lines or OCSF Detection Findings (one JSON object per line).
 *
 * An export can hold a million instances, so nothing is built whole: the query runs in
 * libpq's single-row mode on the pooled connection, each row is rendered into a fixed
 * buffer, and the buffer goes out as one HTTP chunk whenever it is nearly full. Memory
 * stays constant whatever the row count. A client that goes away makes a write fail: the
 * query is then cancelled and its results drained, so that the connection goes back to the
 * pool idle. */
#include "fa_export.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casb/db.h"
#include "casb/log.h"
#include "casb/query.h"
#include "fa_catalogue.h"
#include "fa_query.h"
#include "fa_request.h"
#include "fa_routes.h"

/* Rows are gathered up to this many bytes before a chunk is sent: few enough syscalls for a
 * million rows, small enough to be nothing next to the 100 MB budget. */
#define OUT_BUFFER_BYTES (64 * 1024)
#define OUT_FLUSH_BYTES (OUT_BUFFER_BYTES - 8 * 1024)
#define REMEDIATION_MAX_BYTES 4096

#define EXPORT_NPARAMS 10 /* of both statements */

#define OCSF_VERSION "1.1.0"
#define OCSF_CLASS_UID 2004   /* Detection Finding */
#define OCSF_CATEGORY_UID 2   /* Findings */
#define OCSF_ACTIVITY_CREATE 1

typedef enum { FORMAT_CSV, FORMAT_JSONL, FORMAT_OCSF } export_format;

typedef enum { EXPORT_FINDINGS, EXPORT_INSTANCES } export_kind;

/* The columns of the two queries, in SELECT order. The first names are the export's
 * columns (CSV header and JSON keys); the _ms columns only feed OCSF. */
enum {
    F_ID, F_INTEGRATION_ID, F_INTEGRATION_NAME, F_PROVIDER, F_FINDING_TYPE, F_SEVERITY,
    F_STATUS, F_INSTANCE_COUNT, F_FIRST_SEEN_AT, F_LAST_SEEN_AT, F_FIRST_SEEN_MS,
    F_LAST_SEEN_MS, F_NCOLS
};

enum {
    I_ID, I_FINDING_ID, I_INTEGRATION_ID, I_INTEGRATION_NAME, I_PROVIDER, I_FINDING_TYPE,
    I_SEVERITY, I_FINDING_STATUS, I_STATE, I_ASSET_KIND, I_ASSET_ID, I_ASSET_NAME,
    I_ASSET_URL, I_FIRST_SEEN_AT, I_LAST_SEEN_AT, I_RESOLVED_AT, I_LAST_SCAN_ID, I_DETAILS,
    I_FIRST_SEEN_MS, I_LAST_SEEN_MS, I_NCOLS
};

#define TS(col) FA_SQL_TS(col)
#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

/* No LIMIT and no cursor: everything that matches, in the list's order. */
static const char SQL_EXPORT_FINDINGS[] =
    "SELECT f.id, f.integration_id, i.name, i.provider, f.finding_type, f.severity, f.status,"
    "       f.instance_count, " TS("f.first_seen_at") ", " TS("f.last_seen_at") ","
    "       " MS("f.first_seen_at") ", " MS("f.last_seen_at")
    "  FROM findings f JOIN integrations i ON i.id = f.integration_id"
    FA_SQL_FINDING_FILTERS
    "   AND ($8::boolean OR f.instance_count > 0)"
    " ORDER BY CASE f.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1"
    "          WHEN 'medium' THEN 2 ELSE 3 END, f.instance_count DESC, f.id";

/* Instances of every finding the filters select (whatever its instance_count), then by
 * state. Ordered by finding then asset, which the (finding_id, asset_id) index serves. */
static const char SQL_EXPORT_INSTANCES[] =
    "SELECT fi.id, fi.finding_id, f.integration_id, i.name, i.provider, f.finding_type,"
    "       f.severity, f.status, fi.state, fi.asset_kind, fi.asset_id, fi.asset_name,"
    "       fi.asset_url, " TS("fi.first_seen_at") ", " TS("fi.last_seen_at") ","
    "       " TS("fi.resolved_at") ", fi.last_scan_id, fi.details::text,"
    "       " MS("fi.first_seen_at") ", " MS("fi.last_seen_at")
    "  FROM findings f JOIN integrations i ON i.id = f.integration_id"
    "  JOIN finding_instances fi ON fi.finding_id = f.id"
    FA_SQL_FINDING_FILTERS
    FA_SQL_INSTANCE_FILTERS
    " ORDER BY fi.finding_id, fi.asset_id";

/* Exports streaming at once (each holds a pooled connection throughout); more answer 429. */
#define FA_EXPORTS_MAX 4
static atomic_int running_exports;

static const char *const FINDING_COLUMNS[] = {
    "id", "integration_id", "integration_name", "provider", "finding_type", "title",
    "severity", "status", "instance_count", "first_seen_at", "last_seen_at", NULL};

static const char *const INSTANCE_COLUMNS[] = {
    "id", "finding_id", "integration_id", "integration_name", "provider", "finding_type",
    "title", "severity", "finding_status", "state", "asset_kind", "asset_id", "asset_name",
    "asset_url", "first_seen_at", "last_seen_at", "resolved_at", "last_scan_id", "details",
    NULL};

/* Where rows go: a buffer sent as one chunk when nearly full. failed is set once a write
 * fails (the client went away); everything after is dropped. */
typedef struct {
    casb_http_req *req;
    char *buf;
    size_t len;
    int failed;
} out_stream;

/* What an OCSF event takes from the catalogue for its finding type (title, desc, the
 * remediation object), kept for the type of the previous row: instances come grouped by
 * finding, so a million rows build these a handful of times instead of a million. */
typedef struct {
    char type_id[160];
    json_t *title;
    json_t *desc;        /* NULL: the catalogue has none */
    json_t *remediation; /* {"desc": ...}, or NULL */
} type_values;

typedef struct {
    export_kind kind;
    export_format format;
    const fa_catalogue *cat;
    type_values last;
    out_stream out;
} export_ctx;

/* ---- output ---------------------------------------------------------------------------- */

static void out_flush(out_stream *o)
{
    if (o->failed || o->len == 0) {
        o->len = 0;
        return;
    }
    if (casb_http_stream_write(o->req, o->buf, o->len) != 0)
        o->failed = 1;
    o->len = 0;
}

static void out_put(out_stream *o, const char *s, size_t n)
{
    while (n > 0 && !o->failed) {
        size_t room = OUT_BUFFER_BYTES - o->len;
        size_t take = n < room ? n : room;

        memcpy(o->buf + o->len, s, take);
        o->len += take;
        s += take;
        n -= take;
        if (o->len == OUT_BUFFER_BYTES)
            out_flush(o);
    }
}

static void out_str(out_stream *o, const char *s)
{
    out_put(o, s, strlen(s));
}

/* jansson's streaming dump writes straight into the buffer: no string per row. */
static int dump_to_out(const char *chunk, size_t n, void *data)
{
    out_put(data, chunk, n);
    return 0;
}

/* ---- CSV ------------------------------------------------------------------------------- */

/* One RFC 4180 field. A cell that a spreadsheet would read as a formula (= + - @, or a TAB
 * or CR that some strip before looking) gets a leading apostrophe: asset names and details
 * come from the SaaS tenant, i.e. possibly from an attacker. */
static void csv_field(out_stream *o, const char *v, int first)
{
    int defuse, quote;

    if (!first)
        out_put(o, ",", 1);
    if (!v || !*v)
        return;
    defuse = strchr("=+-@\t\r", v[0]) != NULL;
    quote = strpbrk(v, ",\"\r\n") != NULL;
    if (quote)
        out_put(o, "\"", 1);
    if (defuse)
        out_put(o, "'", 1);
    if (!quote) {
        out_str(o, v);
        return;
    }
    for (const char *p = v; *p; p++) {
        const char *q = strchr(p, '"');

        if (!q) {
            out_str(o, p);
            break;
        }
        out_put(o, p, (size_t)(q - p) + 1);
        out_put(o, "\"", 1);
        p = q;
    }
    out_put(o, "\"", 1);
}

static void csv_header(out_stream *o, const char *const *columns)
{
    for (size_t i = 0; columns[i]; i++)
        csv_field(o, columns[i], i == 0);
    out_put(o, "\r\n", 2);
}

/* ---- row values ------------------------------------------------------------------------ */

static const char *col(const PGresult *res, int c)
{
    return PQgetisnull(res, 0, c) ? NULL : PQgetvalue(res, 0, c);
}

/* A string value, or null when SQL NULL (or not UTF-8, which jansson refuses). */
static json_t *jstr(const char *v)
{
    json_t *s = v ? json_string(v) : NULL;

    return s ? s : json_null();
}

static json_t *jint(const char *v)
{
    return v ? json_integer(strtoll(v, NULL, 10)) : json_null();
}

static const char *type_title(const fa_catalogue *cat, const char *type_id)
{
    const fa_finding_type *t = fa_catalogue_find(cat, type_id);

    /* A type that left the catalogue after the finding was stored is still exported. */
    return t ? t->title : type_id;
}

static json_t *details_json(const char *text)
{
    json_t *d = text ? json_loads(text, 0, NULL) : NULL;

    return d ? d : json_object();
}

/* ---- OCSF ------------------------------------------------------------------------------ */

/* OCSF severity_id: 1 is Informational, so low is 2 .. critical 5. */
static int ocsf_severity_id(const char *severity, const char **caption)
{
    static const char *const captions[] = {"Critical", "High", "Medium", "Low"};
    int rank = fa_severity_rank(severity);

    if (rank < 0) {
        *caption = "Unknown";
        return 0;
    }
    *caption = captions[rank];
    return 5 - rank;
}

/* OCSF finding status from ours: an ignored finding or a hidden instance is Suppressed, a
 * resolved instance (or, for a finding, no active instance left) Resolved, anything else
 * New. In Progress is not used: CASB has no "being worked on" state. state is NULL for a
 * finding. */
static int ocsf_status_id(const char *finding_status, const char *state, long instance_count,
                          const char **caption)
{
    int ignored = finding_status && strcmp(finding_status, "ignored") == 0;
    int resolved;

    if (ignored || (state && strcmp(state, "hidden") == 0)) {
        *caption = "Suppressed";
        return 3;
    }
    resolved = state ? strcmp(state, "resolved") == 0 : instance_count == 0;
    if (resolved) {
        *caption = "Resolved";
        return 4;
    }
    *caption = "New";
    return 1;
}

/* The catalogue's remediation steps as one text ("1. ...\n2. ..."), into buf. */
static const char *remediation_text(const fa_finding_type *t, char *buf, size_t buflen)
{
    json_t *steps = t ? json_object_get(t->doc, "remediation") : NULL;
    size_t used = 0;
    size_t i;
    json_t *step;

    buf[0] = '\0';
    if (json_is_string(steps))
        return json_string_value(steps);
    json_array_foreach(steps, i, step) {
        int n;

        if (!json_is_string(step))
            continue;
        n = snprintf(buf + used, buflen - used, "%s%zu. %s", used ? "\n" : "", i + 1,
                     json_string_value(step));
        if (n < 0 || (size_t)n >= buflen - used)
            break; /* truncated at the buffer: the steps are short, this is a bound */
        used += (size_t)n;
    }
    return buf[0] ? buf : NULL;
}

static void type_values_clear(type_values *v)
{
    json_decref(v->title);
    json_decref(v->desc);
    json_decref(v->remediation);
    memset(v, 0, sizeof(*v));
}

/* The catalogue's values for type_id, from x->last when the previous row had that type. */
static const type_values *type_values_of(export_ctx *x, const char *type_id)
{
    const fa_finding_type *t;
    char steps[REMEDIATION_MAX_BYTES];
    const char *fix, *desc;

    if (x->last.title && strcmp(x->last.type_id, type_id) == 0)
        return &x->last;
    type_values_clear(&x->last);
    t = fa_catalogue_find(x->cat, type_id);
    snprintf(x->last.type_id, sizeof(x->last.type_id), "%s", type_id);
    x->last.title = jstr(type_title(x->cat, type_id));
    desc = t ? json_string_value(json_object_get(t->doc, "description")) : NULL;
    if (desc)
        x->last.desc = jstr(desc);
    fix = remediation_text(t, steps, sizeof(steps));
    if (fix)
        x->last.remediation = json_pack("{s:o}", "desc", jstr(fix));
    /* A type id longer than the key is simply not kept (never the case in the catalogue). */
    if (strlen(type_id) >= sizeof(x->last.type_id))
        x->last.type_id[0] = '\0';
    return &x->last;
}

/* A Detection Finding (class 2004, activity Create). Strings are borrowed from the row;
 * resources and unmapped are stolen. */
static json_t *ocsf_event(export_ctx *x, const char *uid, const char *type_id,
                          const char *severity, const char *status_id_caption, int status_id,
                          const char *first_ms, const char *last_ms, const char *provider,
                          json_t *resources, json_t *unmapped, const char *src_url)
{
    const type_values *tv = type_values_of(x, type_id);
    const char *sev_caption = NULL;
    int sev_id = ocsf_severity_id(severity, &sev_caption);
    json_t *info, *ev;

    info = json_pack("{s:o, s:O, s:[o], s:o, s:o}", "uid", jstr(uid), "title", tv->title,
                     "types", jstr(type_id), "first_seen_time", jint(first_ms),
                     "last_seen_time", jint(last_ms));
    if (info && tv->desc)
        json_object_set(info, "desc", tv->desc);
    if (info && src_url)
        json_object_set_new(info, "src_url", jstr(src_url));
    ev = json_pack("{s:i, s:s, s:i, s:s, s:i, s:s, s:i, s:s, s:o, s:i, s:s, s:i, s:s,"
                   " s:O, s:{s:{s:s, s:s}, s:s}, s:o, s:{s:o}}",
                   "class_uid", OCSF_CLASS_UID, "class_name", "Detection Finding",
                   "category_uid", OCSF_CATEGORY_UID, "category_name", "Findings",
                   "activity_id", OCSF_ACTIVITY_CREATE, "activity_name", "Create",
                   "type_uid", OCSF_CLASS_UID * 100 + OCSF_ACTIVITY_CREATE, "type_name",
                   "Detection Finding: Create", "time", jint(first_ms), "severity_id", sev_id,
                   "severity", sev_caption, "status_id", status_id, "status",
                   status_id_caption, "message", tv->title, "metadata", "product", "name",
                   "CASB", "vendor_name", "CASB", "version", OCSF_VERSION, "finding_info",
                   info ? info : json_object(), "cloud", "provider", jstr(provider));
    if (!ev) {
        json_decref(resources);
        json_decref(unmapped);
        return NULL;
    }
    if (resources)
        json_object_set_new(ev, "resources", resources);
    if (tv->remediation)
        json_object_set(ev, "remediation", tv->remediation);
    json_object_set_new(ev, "unmapped", unmapped ? unmapped : json_object());
    return ev;
}

/* ---- rows ------------------------------------------------------------------------------ */

static void finding_row(export_ctx *x, const PGresult *res)
{
    const char *type_id = col(res, F_FINDING_TYPE);
    const char *title = type_title(x->cat, type_id);
    json_t *row = NULL;

    if (x->format == FORMAT_CSV) {
        const char *v[] = {col(res, F_ID), col(res, F_INTEGRATION_ID),
                           col(res, F_INTEGRATION_NAME), col(res, F_PROVIDER), type_id, title,
                           col(res, F_SEVERITY), col(res, F_STATUS),
                           col(res, F_INSTANCE_COUNT), col(res, F_FIRST_SEEN_AT),
                           col(res, F_LAST_SEEN_AT)};
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
            csv_field(&x->out, v[i], i == 0);
        out_put(&x->out, "\r\n", 2);
        return;
    }
    if (x->format == FORMAT_JSONL) {
        row = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                        jstr(col(res, F_ID)), "integration_id", jstr(col(res, F_INTEGRATION_ID)),
                        "integration_name", jstr(col(res, F_INTEGRATION_NAME)), "provider",
                        jstr(col(res, F_PROVIDER)), "finding_type", jstr(type_id), "title",
                        jstr(title), "severity", jstr(col(res, F_SEVERITY)), "status",
                        jstr(col(res, F_STATUS)), "instance_count",
                        jint(col(res, F_INSTANCE_COUNT)), "first_seen_at",
                        jstr(col(res, F_FIRST_SEEN_AT)), "last_seen_at",
                        jstr(col(res, F_LAST_SEEN_AT)));
    } else {
        const char *status_caption = NULL;
        long count = strtol(col(res, F_INSTANCE_COUNT), NULL, 10);
        int status_id = ocsf_status_id(col(res, F_STATUS), NULL, count, &status_caption);
        json_t *unmapped = json_pack(
            "{s:o, s:o, s:o, s:o}", "integration_id", jstr(col(res, F_INTEGRATION_ID)),
            "integration_name", jstr(col(res, F_INTEGRATION_NAME)), "finding_status",
            jstr(col(res, F_STATUS)), "instance_count", jint(col(res, F_INSTANCE_COUNT)));

        row = ocsf_event(x, col(res, F_ID), type_id, col(res, F_SEVERITY), status_caption,
                         status_id, col(res, F_FIRST_SEEN_MS), col(res, F_LAST_SEEN_MS),
                         col(res, F_PROVIDER), NULL, unmapped, NULL);
    }
    if (row) {
        json_dump_callback(row, dump_to_out, &x->out, JSON_COMPACT);
        out_put(&x->out, "\n", 1);
    }
    json_decref(row);
}

static void instance_row(export_ctx *x, const PGresult *res)
{
    const char *type_id = col(res, I_FINDING_TYPE);
    const char *title = type_title(x->cat, type_id);
    json_t *row = NULL;

    if (x->format == FORMAT_CSV) {
        const char *v[] = {col(res, I_ID), col(res, I_FINDING_ID), col(res, I_INTEGRATION_ID),
                           col(res, I_INTEGRATION_NAME), col(res, I_PROVIDER), type_id, title,
                           col(res, I_SEVERITY), col(res, I_FINDING_STATUS), col(res, I_STATE),
                           col(res, I_ASSET_KIND), col(res, I_ASSET_ID), col(res, I_ASSET_NAME),
                           col(res, I_ASSET_URL), col(res, I_FIRST_SEEN_AT),
                           col(res, I_LAST_SEEN_AT), col(res, I_RESOLVED_AT),
                           col(res, I_LAST_SCAN_ID), col(res, I_DETAILS)};
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
            csv_field(&x->out, v[i], i == 0);
        out_put(&x->out, "\r\n", 2);
        return;
    }
    if (x->format == FORMAT_JSONL) {
        row = json_pack(
            "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
            " s:o, s:o, s:o}",
            "id", jstr(col(res, I_ID)), "finding_id", jstr(col(res, I_FINDING_ID)),
            "integration_id", jstr(col(res, I_INTEGRATION_ID)), "integration_name",
            jstr(col(res, I_INTEGRATION_NAME)), "provider", jstr(col(res, I_PROVIDER)),
            "finding_type", jstr(type_id), "title", jstr(title), "severity",
            jstr(col(res, I_SEVERITY)), "finding_status", jstr(col(res, I_FINDING_STATUS)),
            "state", jstr(col(res, I_STATE)), "asset_kind", jstr(col(res, I_ASSET_KIND)),
            "asset_id", jstr(col(res, I_ASSET_ID)), "asset_name", jstr(col(res, I_ASSET_NAME)),
            "asset_url", jstr(col(res, I_ASSET_URL)), "first_seen_at",
            jstr(col(res, I_FIRST_SEEN_AT)), "last_seen_at", jstr(col(res, I_LAST_SEEN_AT)),
            "resolved_at", jstr(col(res, I_RESOLVED_AT)), "last_scan_id",
            jstr(col(res, I_LAST_SCAN_ID)), "details", details_json(col(res, I_DETAILS)));
    } else {
        const char *status_caption = NULL;
        int status_id = ocsf_status_id(col(res, I_FINDING_STATUS), col(res, I_STATE), 0,
                                       &status_caption);
        json_t *resources = json_pack("[{s:o, s:o, s:o}]", "uid", jstr(col(res, I_ASSET_ID)),
                                      "name", jstr(col(res, I_ASSET_NAME)), "type",
                                      jstr(col(res, I_ASSET_KIND)));
        json_t *unmapped = json_pack(
            "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "integration_id",
            jstr(col(res, I_INTEGRATION_ID)), "integration_name",
            jstr(col(res, I_INTEGRATION_NAME)), "finding_id", jstr(col(res, I_FINDING_ID)),
            "finding_status", jstr(col(res, I_FINDING_STATUS)), "state",
            jstr(col(res, I_STATE)), "resolved_at", jstr(col(res, I_RESOLVED_AT)),
            "last_scan_id", jstr(col(res, I_LAST_SCAN_ID)), "details",
            details_json(col(res, I_DETAILS)));

        row = ocsf_event(x, col(res, I_ID), type_id, col(res, I_SEVERITY), status_caption,
                         status_id, col(res, I_FIRST_SEEN_MS), col(res, I_LAST_SEEN_MS),
                         col(res, I_PROVIDER), resources, unmapped, col(res, I_ASSET_URL));
    }
    if (row) {
        json_dump_callback(row, dump_to_out, &x->out, JSON_COMPACT);
        out_put(&x->out, "\n", 1);
    }
    json_decref(row);
}

/* ---- the query ------------------------------------------------------------------------- */

/* Stops the running statement and reads what is left of it, so that the connection is idle
 * again (the pool would otherwise hand out a connection still busy with our rows). */
static void query_abandon(PGconn *conn)
{
    PGcancel *cancel = PQgetCancel(conn);
    char why[256];
    PGresult *res;

    if (cancel) {
        if (!PQcancel(cancel, why, sizeof(why)))
            casb_log_warn("export: cancelling the query failed", "error", why);
        PQfreeCancel(cancel);
    }
    while ((res = PQgetResult(conn)) != NULL)
        PQclear(res);
}

static void drain(PGconn *conn)
{
    PGresult *res;

    while ((res = PQgetResult(conn)) != NULL)
        PQclear(res);
}

static const char *content_type_of(export_format f)
{
    switch (f) {
    case FORMAT_CSV: return "text/csv; charset=utf-8";
    case FORMAT_JSONL: return "application/x-ndjson";
    default: return "application/json";
    }
}

static const char *extension_of(export_format f)
{
    switch (f) {
    case FORMAT_CSV: return "csv";
    case FORMAT_JSONL: return "jsonl";
    default: return "ocsf.jsonl";
    }
}

static int stream_begin(export_ctx *x)
{
    char stamp[32], disposition[128];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(disposition, sizeof(disposition), "attachment; filename=\"casb-%s-%s.%s\"",
             x->kind == EXPORT_FINDINGS ? "findings" : "instances", stamp,
             extension_of(x->format));
    casb_http_add_header(x->out.req, "Content-Disposition", disposition);
    casb_http_add_header(x->out.req, "Cache-Control", "no-store");
    if (casb_http_stream_begin(x->out.req, 200, content_type_of(x->format)) != 0)
        return -1;
    if (x->format == FORMAT_CSV)
        csv_header(&x->out, x->kind == EXPORT_FINDINGS ? FINDING_COLUMNS : INSTANCE_COLUMNS);
    return 0;
}

/* Runs the export's statement in single-row mode and streams every row. Errors before the
 * first row are answered as usual (500); once the 200 has started, a failure can only end
 * the stream early, and is logged. Returns the status sent. */
static int export_run(export_ctx *x, casb_db *db, const char *sql, const char *const *params,
                      int nparams)
{
    PGconn *conn = casb_db_conn(db);
    long rows = 0;
    int started = 0;
    PGresult *res;

    if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
        return fa_reply_internal(x->out.req, "export", PQerrorMessage(conn));
    if (!PQsetSingleRowMode(conn)) {
        drain(conn);
        return fa_reply_internal(x->out.req, "export", "single-row mode refused");
    }
    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);

        if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK) {
            char err[256];

            snprintf(err, sizeof(err), "%s", PQresultErrorMessage(res));
            PQclear(res);
            drain(conn);
            if (!started)
                return fa_reply_internal(x->out.req, "export", err);
            /* Headers are gone: the stream is cut without its last chunk, so the client
             * knows the file is incomplete; the log says why. */
            casb_log_error("export ended early", "error", err);
            out_flush(&x->out);
            casb_http_stream_abort(x->out.req);
            return 200;
        }
        if (!started) {
            if (stream_begin(x) != 0) {
                PQclear(res);
                query_abandon(conn);
                return -1;
            }
            started = 1;
        }
        if (st == PGRES_SINGLE_TUPLE) {
            if (x->kind == EXPORT_FINDINGS)
                finding_row(x, res);
            else
                instance_row(x, res);
            rows++;
            if (x->out.len >= OUT_FLUSH_BYTES)
                out_flush(&x->out);
        }
        PQclear(res);
        if (x->out.failed) {
            char n[24];

            snprintf(n, sizeof(n), "%ld", rows);
            casb_log_info("export stopped: the client went away", "rows", n);
            query_abandon(conn);
            return 200;
        }
    }
    out_flush(&x->out);
    return 200;
}

/* ---- handlers -------------------------------------------------------------------------- */

static int parse_format(const char *s, export_format *out)
{
    if (!s || strcmp(s, "csv") == 0)
        *out = FORMAT_CSV;
    else if (strcmp(s, "jsonl") == 0)
        *out = FORMAT_JSONL;
    else if (strcmp(s, "ocsf") == 0)
        *out = FORMAT_OCSF;
    else
        return -1;
    return 0;
}

/* The shared part of both exports: filters checked like the lists', the category turned
 * into its type ids, the statement run. state is the instances' filter (NULL: every state;
 * always NULL for findings). */
static int export_handle(casb_http_req *r, export_kind kind, const char *format,
                         const fa_findings_params *p, const char *state)
{
    fa_app *a = casb_http_app(r);
    fa_findings_query q = {.account_id = fa_account_of(r)};
    export_ctx x = {.kind = kind, .cat = a->catalogue, .out = {.req = r}};
    const char *params[EXPORT_NPARAMS];
    const char *param = NULL;
    casb_db *db = NULL;
    char err[256];
    int counted = 0;
    int status;

    if (parse_format(format, &x.format) != 0)
        return casb_query_reply_invalid(r, "format", "format: expected csv, jsonl or ocsf");
    if (fa_query_findings(&q, p, &param, err, sizeof(err)) != 0)
        return casb_query_reply_invalid(r, param, err);
    if (fa_query_resolve(&q, p, a->catalogue) != 0) {
        status = fa_reply_internal(r, "export", "out of memory");
        goto out;
    }
    /* An export holds a pooled connection for as long as it streams (seconds to minutes):
     * a few at a time, so that the API always has connections left. */
    if (atomic_fetch_add(&running_exports, 1) >= FA_EXPORTS_MAX) {
        atomic_fetch_sub(&running_exports, 1);
        casb_http_add_header(r, "Retry-After", "10");
        status = casb_http_reply_problem(r, 429, "too many exports running; retry shortly",
                                         NULL);
        goto out;
    }
    counted = 1;
    x.out.buf = malloc(OUT_BUFFER_BYTES);
    if (!x.out.buf) {
        status = fa_reply_internal(r, "export", "out of memory");
        goto out;
    }
    /* $8: include_resolved for findings, the state filter for instances. */
    fa_query_filter_params(&q, kind == EXPORT_FINDINGS ? (q.include_resolved ? "true" : "false")
                                                       : state,
                           params);
    db = fa_acquire(r, &status);
    if (!db)
        goto out;
    status = export_run(&x, db, kind == EXPORT_FINDINGS ? SQL_EXPORT_FINDINGS
                                                        : SQL_EXPORT_INSTANCES,
                        params, EXPORT_NPARAMS);
    fa_release(r, db);
out:
    if (counted)
        atomic_fetch_sub(&running_exports, 1);
    type_values_clear(&x.last);
    free(x.out.buf);
    fa_findings_query_clear(&q);
    return status;
}

/* Both exports take the finding filters of the lists plus one parameter of their own:
 * include_resolved (findings, as in GET /v1/findings) or state (instances). */
static int export_request(casb_http_req *r, export_kind kind)
{
    fa_findings_params p = {0};
    fa_instances_params ip = {0};
    fa_instances_page page;
    const char *format = NULL;
    const casb_query_param params[] = {
        {"format", &format},
        FA_FINDINGS_FILTER_PARAMS(p),
        kind == EXPORT_FINDINGS ? (casb_query_param){"include_resolved", &p.include_resolved}
                                : (casb_query_param){"state", &ip.state},
        {NULL, NULL},
    };
    casb_query_text text;
    const char *param = NULL;
    char err[256];
    int status = casb_query_read(r, params, &text);

    if (status != 0)
        return status;
    if (kind == EXPORT_FINDINGS)
        return export_handle(r, kind, format, &p, NULL);
    /* Unlike the per-finding list, an export covers every state unless one is asked for. */
    if (!ip.state)
        ip.state = "all";
    if (fa_query_instances(&page, &ip, &param, err, sizeof(err)) != 0)
        return casb_query_reply_invalid(r, param, err);
    return export_handle(r, kind, format, &p, page.state);
}

static int handle_export_findings(casb_http_req *r)
{
    return export_request(r, EXPORT_FINDINGS);
}

static int handle_export_instances(casb_http_req *r)
{
    return export_request(r, EXPORT_INSTANCES);
}

int fa_export_register(casb_http_server *s)
{
    if (casb_http_route(s, "GET", "/v1/findings/export", handle_export_findings, 0) != 0 ||
        casb_http_route(s, "GET", "/v1/instances/export", handle_export_instances, 0) != 0)
        return -1;
    return 0;
}
