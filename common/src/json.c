#include "casb/json.h"

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
