/* The JSON entry of every body and message: casb_json_parse with its nesting limit (the
 * first input byte picks the limit, 0 meaning the default 64). Invariants: an accepted
 * document is no deeper than the limit, re-encodes and parses back equal; a refused one
 * says why; the string helpers agree with jansson. */
#include <string.h>

#include "casb/json.h"
#include "fuzz_common.h"

#define DEFAULT_DEPTH 64

/* Levels of arrays and objects: a scalar is 0. */
static size_t depth_of(const json_t *v)
{
    size_t deepest = 0, i;
    const char *key;
    json_t *m;

    if (json_is_array(v)) {
        json_array_foreach(v, i, m) {
            size_t d = depth_of(m);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, m) {
            size_t d = depth_of(m);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    return 0;
}

static void check_strings(const json_t *v)
{
    const char *key;
    json_t *m;
    size_t i;

    if (json_is_string(v)) {
        long chars = casb_json_display_length(v);
        FUZZ_CHECK(chars >= -1 && (size_t)(chars < 0 ? 0 : chars) <= json_string_length(v));
        return;
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, m) check_strings(m);
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, m) {
            FUZZ_CHECK(casb_json_path((json_t *)v, key) == m || strchr(key, '.'));
            check_strings(m);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    size_t max_depth;
    json_t *v, *again;
    char *text;

    if (size < 1)
        return 0;
    max_depth = data[0] % 70;
    v = casb_json_parse((const char *)data + 1, size - 1, max_depth, err, sizeof(err));
    if (!v) {
        FUZZ_CHECK(err[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(depth_of(v) <= (max_depth ? max_depth : DEFAULT_DEPTH));
    check_strings(v);
    text = casb_json_dump(v);
    FUZZ_CHECK(text != NULL);
    again = casb_json_parse(text, strlen(text), max_depth, err, sizeof(err));
    FUZZ_CHECK(again != NULL);
    FUZZ_CHECK(json_equal(v, again));
    json_decref(again);
    free(text);
    json_decref(v);
    return 0;
}
