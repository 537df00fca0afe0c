/* What the fuzz targets share: invariant checks that abort (libFuzzer records the input as
 * a crash), a NUL-terminated copy of the input, the finding catalogue, and a scan sink that checks every finding
 * a provider's checks report. Header-only: each target is one program. */
#ifndef CASB_FUZZ_COMMON_H
#define CASB_FUZZ_COMMON_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fa_catalogue.h"
#include "provider.h"

/* An invariant of the code under test: a failure is a bug, reported like a crash. */
#define FUZZ_CHECK(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/* The input as a C string (malloc'ed; an embedded NUL simply ends it early, as it would
 * for a caller that holds a C string). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    FUZZ_CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* The shipped finding catalogue (proto/findings), loaded once for the whole run. */
static inline fa_catalogue *fuzz_catalogue(void)
{
    static fa_catalogue *cat;
    char err[256];

    if (!cat && fa_catalogue_load_dir(&cat, CASB_SOURCE_DIR "/proto/findings", err,
                                      sizeof(err)) != 0) {
        fprintf(stderr, "catalogue: %s\n", err);
        abort();
    }
    return cat;
}

/* 1 when s is one of the NULL-terminated ids. */
static inline int fuzz_in_list(const char *s, const char *const *ids)
{
    for (size_t i = 0; s && ids[i]; i++) {
        if (strcmp(s, ids[i]) == 0)
            return 1;
    }
    return 0;
}

/* A sink that holds every report to the contract of provider.h: a finding names one of the
 * provider's types and a non-empty asset kind and id, its details are an object (or none),
 * and the reason of a skipped check is text. findings counts what arrived. */
typedef struct {
    casb_scan_sink sink;
    const char *const *types;
    long findings;
} fuzz_sink;

static int fuzz_sink_finding(casb_scan_sink *sink, const char *type, const char *kind,
                             const char *id, const char *name, const char *url, json_t *details)
{
    fuzz_sink *f = sink->ctx;

    FUZZ_CHECK(fuzz_in_list(type, f->types));
    FUZZ_CHECK(kind && kind[0]);
    FUZZ_CHECK(id && id[0]);
    FUZZ_CHECK(!details || json_is_object(details));
    (void)name;
    (void)url;
    json_decref(details);
    f->findings++;
    return 0;
}

static void fuzz_sink_ran(casb_scan_sink *sink, const char *type)
{
    FUZZ_CHECK(fuzz_in_list(type, ((fuzz_sink *)sink->ctx)->types));
}

static void fuzz_sink_skipped(casb_scan_sink *sink, const char *type, const char *reason)
{
    FUZZ_CHECK(fuzz_in_list(type, ((fuzz_sink *)sink->ctx)->types));
    FUZZ_CHECK(reason && reason[0]);
}

static void fuzz_sink_seen(casb_scan_sink *sink, const char *kind)
{
    FUZZ_CHECK(kind && kind[0]);
}

static inline void fuzz_sink_init(fuzz_sink *f, const char *const *types)
{
    memset(f, 0, sizeof(*f));
    f->sink.finding = fuzz_sink_finding;
    f->sink.check_ran = fuzz_sink_ran;
    f->sink.check_skipped = fuzz_sink_skipped;
    f->sink.asset_seen = fuzz_sink_seen;
    f->sink.ctx = f;
    f->types = types;
}

#endif
