#ifndef CASB_JSON_H
#define CASB_JSON_H

#include <jansson.h>
#include <stddef.h>

/* Small helpers over jansson. Getters borrow: returned pointers live as long as the object. */

/* Parses len bytes as one JSON value, refusing nesting deeper than max_depth (0: 64).
 * Returns a new reference, or NULL with err set ("line 3: unexpected token"). */
json_t *casb_json_parse(const char *buf, size_t len, size_t max_depth, char *err, size_t errlen);

/* Compact serialisation; the caller frees the result with free(). NULL on failure. */
char *casb_json_dump(const json_t *v);

/* JSON text assembled from pieces, for answers made of many small documents (a page of a
 * list) and of parts serialised once and reused (a catalogue entry's text): one buffer, no
 * tree of the whole. A failed append (out of memory, or no value to serialise) leaves the
 * text as it was and marks it failed: every later append fails too. Free with casb_text_free; a zeroed casb_text is empty. */
typedef struct {
    char *data; /* NUL-terminated when len > 0 */
    size_t len, cap;
    int failed;
    /* Set before the first append when the text will hold secrets (a form body with a
     * client secret): it then grows by copying and wiping instead of realloc, which would
     * leave copies in freed memory, and casb_text_free wipes it. */
    int secret;
} casb_text;

int casb_text_append(casb_text *t, const char *s, size_t n); /* 0 or -1 */
int casb_text_append_str(casb_text *t, const char *s);       /* a C string, as is */
int casb_text_append_json(casb_text *t, const json_t *v);    /* v's compact serialisation */
/* The JSON string of s, or null when s is NULL, written straight into t: for rows of
 * PostgreSQL text, without a jansson value per column. s must be UTF-8 (text of a UTF8
 * database is); it is copied as it is but for '"', '\\' and control characters. */
int casb_text_append_json_str(casb_text *t, const char *s);
/* Appends the compact serialisation of the object v with more members at its end:
 * members is a run of serialised members ("\"a\":1,\"b\":[2]", "" for none); with_raw
 * adds one, key, whose value raw is JSON text already (a jsonb column's). */
int casb_text_append_object_with(casb_text *t, const json_t *v, const char *members);
int casb_text_append_object_with_raw(casb_text *t, const json_t *v, const char *key,
                                     const char *raw);
void casb_text_free(casb_text *t);

/* Member getters: the value when the member exists with the right type, else def / NULL. */
const char *casb_json_str(const json_t *obj, const char *key);
long long casb_json_int(const json_t *obj, const char *key, long long def);
int casb_json_bool(const json_t *obj, const char *key, int def); /* JSON true/false only */

/* Follows a dotted path ("security_and_analysis.secret_scanning.status") through objects.
 * Returns a borrowed value or NULL. */
json_t *casb_json_path(const json_t *obj, const char *dotted_path);
const char *casb_json_path_str(const json_t *obj, const char *dotted_path);

/* Sets obj[key] to a string, or to null when value is NULL. Returns 0 or -1. */
int casb_json_set_str(json_t *obj, const char *key, const char *value);

/* The number of characters (UTF-8 code points; jansson has checked the encoding) of the
 * JSON string s, or -1 when it holds a control character or an embedded NUL, which names
 * and PostgreSQL text cannot hold. */
long casb_json_display_length(const json_t *s);

/* How many bytes of s, at most max_bytes, end on a character boundary: for "%.*s" of a name
 * from the request quoted back in an answer. A cut inside a UTF-8 sequence leaves a string
 * that is no JSON string (jansson refuses it, and the answer lost its detail). */
int casb_utf8_prefix_len(const char *s, int max_bytes);

/* Overwrites every string inside v with zeros (the object stays, its strings emptied of
 * content but not of length): for documents that held secrets, before they are freed.
 * jansson owns the buffers; writing through them is the only way to wipe them. */
void casb_json_wipe(json_t *v);

#endif
