#include "casb/json.h"

#include <stdlib.h>
#include <string.h>

#include "casb/crypto.h"
#include "casb/error.h"

#define DEFAULT_MAX_DEPTH 64

/* Finds the deepest nesting of arrays and objects by scanning the bytes, outside string
 * literals, before jansson sees them: jansson's parser recurses per level, so a hostile
 * "[[[[..." must be refused without handing it to the parser. Returns 0 when within
 * max_depth. Malformed input is left for jansson to report. */
static int depth_ok(const char *buf, size_t len, size_t max_depth)
{
    size_t depth = 0;
    int in_string = 0;

    for (size_t i = 0; i < len; i++) {
        char c = buf[i];

        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character cannot end the string */
            else if (c == '"')
                in_string = 0;
            continue;
        }
        if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            depth++;
            if (depth > max_depth)
                return -1;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

json_t *casb_json_parse(const char *buf, size_t len, size_t max_depth, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *v;

    if (!buf) {
        casb_fail(err, errlen, CASB_EINVALID, "no JSON input");
        return NULL;
    }
    if (max_depth == 0)
        max_depth = DEFAULT_MAX_DEPTH;
    if (depth_ok(buf, len, max_depth) != 0) {
        casb_fail(err, errlen, CASB_EINVALID, "JSON nested deeper than %zu levels", max_depth);
        return NULL;
    }
    /* Duplicate keys are refused: two readers of the same document must not disagree
     * about which value counts. */
    v = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        casb_fail(err, errlen, CASB_EINVALID, "line %d: %s", jerr.line, jerr.text);
        return NULL;
    }
    return v;
}

char *casb_json_dump(const json_t *v)
{
    if (!v)
        return NULL;
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

int casb_text_append(casb_text *t, const char *s, size_t n)
{
    if (t->failed)
        return -1;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        char *d;

        while (cap < t->len + n + 1)
            cap *= 2;
        d = t->secret ? malloc(cap) : realloc(t->data, cap);
        if (!d) {
            t->failed = 1;
            return -1;
        }
        if (t->secret && t->data) {
            memcpy(d, t->data, t->len);
            casb_secret_wipe(t->data, t->cap);
            free(t->data);
        }
        t->data = d;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
    return 0;
}

int casb_text_append_str(casb_text *t, const char *s)
{
    return casb_text_append(t, s, strlen(s));
}

/* A failed append leaves the text as it was before, and failed. */
static int undo(casb_text *t, size_t len)
{
    t->failed = 1;
    t->len = len;
    if (t->data)
        t->data[len] = '\0';
    return -1;
}

int casb_text_append_json_str(casb_text *t, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t before = t->len;
    const char *run;

    if (!s)
        return casb_text_append(t, "null", 4);
    casb_text_append(t, "\"", 1);
    /* Runs that need no escaping are copied whole; only '"', '\\' and control characters
     * are escaped (as jansson does without JSON_ENSURE_ASCII or JSON_ESCAPE_SLASH). */
    for (run = s; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        size_t esclen = 2;

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        casb_text_append(t, run, (size_t)(s - run));
        run = s + 1;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default: esclen = 6; break;
        }
        casb_text_append(t, esc, esclen);
    }
    casb_text_append(t, run, (size_t)(s - run));
    if (casb_text_append(t, "\"", 1) != 0)
        return undo(t, before);
    return 0;
}

static int text_dump_callback(const char *buffer, size_t size, void *data)
{
    return casb_text_append(data, buffer, size);
}

int casb_text_append_json(casb_text *t, const json_t *v)
{
    size_t before = t->len;

    if (t->failed)
        return -1;
    if (!v)
        return undo(t, before);
    if (json_dump_callback(v, text_dump_callback, t, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
        return undo(t, before);
    return 0;
}

/* Appends the object v without its closing brace, then a comma when v has members, so
 * that more members can follow. */
static int open_object(casb_text *t, const json_t *v)
{
    if (!json_is_object(v) || casb_text_append_json(t, v) != 0)
        return undo(t, t->len);
    t->len--; /* a compact object ends with its '}' */
    return json_object_size(v) > 0 ? casb_text_append(t, ",", 1) : 0;
}

int casb_text_append_object_with(casb_text *t, const json_t *v, const char *members)
{
    size_t before = t->len;

    if (!members || !members[0])
        return casb_text_append_json(t, json_is_object(v) ? v : NULL);
    if (open_object(t, v) != 0 || casb_text_append_str(t, members) != 0 ||
        casb_text_append(t, "}", 1) != 0)
        return undo(t, before);
    return 0;
}

int casb_text_append_object_with_raw(casb_text *t, const json_t *v, const char *key,
                                     const char *raw)
{
    size_t before = t->len;
    json_t *k = json_string(key);
    int rc = k ? 0 : undo(t, before);

    if (rc == 0 && (open_object(t, v) != 0 || casb_text_append_json(t, k) != 0 ||
                    casb_text_append(t, ":", 1) != 0 || casb_text_append_str(t, raw) != 0 ||
                    casb_text_append(t, "}", 1) != 0))
        rc = undo(t, before);
    json_decref(k);
    return rc;
}

void casb_text_free(casb_text *t)
{
    if (t->secret && t->data)
        casb_secret_wipe(t->data, t->cap);
    free(t->data);
    memset(t, 0, sizeof(*t));
}

const char *casb_json_str(const json_t *obj, const char *key)
{
    json_t *v;

    if (!json_is_object(obj) || !key)
        return NULL;
    v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

long long casb_json_int(const json_t *obj, const char *key, long long def)
{
    json_t *v;

    if (!json_is_object(obj) || !key)
        return def;
    v = json_object_get(obj, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

int casb_json_bool(const json_t *obj, const char *key, int def)
{
    json_t *v;

    if (!json_is_object(obj) || !key)
        return def;
    v = json_object_get(obj, key);
    if (json_is_true(v))
        return 1;
    if (json_is_false(v))
        return 0;
    return def;
}

json_t *casb_json_path(const json_t *obj, const char *dotted_path)
{
    const json_t *cur = obj;
    const char *p = dotted_path;

    if (!obj || !dotted_path)
        return NULL;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);

        if (!json_is_object(cur))
            return NULL;
        cur = json_object_getn(cur, p, n);
        if (!cur)
            return NULL;
        if (!dot)
            return (json_t *)cur;
        p = dot + 1;
    }
}

const char *casb_json_path_str(const json_t *obj, const char *dotted_path)
{
    json_t *v = casb_json_path(obj, dotted_path);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

int casb_json_set_str(json_t *obj, const char *key, const char *value)
{
    json_t *v;

    if (!json_is_object(obj) || !key)
        return -1;
    v = value ? json_string(value) : json_null();
    if (!v) /* value was not valid UTF-8 */
        return -1;
    /* json_object_set_new steals v, also when it fails. */
    return json_object_set_new(obj, key, v) == 0 ? 0 : -1;
}

long casb_json_display_length(const json_t *s)
{
    const unsigned char *p = (const unsigned char *)json_string_value(s);
    size_t bytes = json_string_length(s);
    long chars = 0;

    if (!p || strlen((const char *)p) != bytes)
        return -1;
    for (size_t i = 0; i < bytes; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f)
            return -1;
        if ((p[i] & 0xC0) != 0x80)
            chars++;
    }
    return chars;
}

int casb_utf8_prefix_len(const char *s, int max_bytes)
{
    int n = 0;

    if (!s)
        return 0;
    while (n < max_bytes && s[n])
        n++;
    /* s[n] is the first byte left out: a continuation byte there means the cut splits a
     * sequence, whose start is then left out too. */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

void casb_json_wipe(json_t *v)
{
    const char *key;
    json_t *member;
    size_t i;

    if (json_is_string(v)) {
        casb_secret_wipe((char *)json_string_value(v), json_string_length(v));
    } else if (json_is_object(v)) {
        json_object_foreach(v, key, member)
            casb_json_wipe(member);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, member)
            casb_json_wipe(member);
    }
}
