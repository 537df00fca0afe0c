#ifndef CASB_COVERAGE_H
#define CASB_COVERAGE_H

/* What every provider's checks share: the sink findings go to, and the scan's coverage:
 * which finding types could not evaluate every asset they cover (reported skipped, so they
 * resolve nothing) and which ran. A provider's evaluation state embeds one. */

#include <jansson.h>
#include <stdarg.h>

#include "provider.h"

#define CASB_COVERAGE_MAX_TYPES 64

typedef struct {
    casb_scan_sink *sink;
    const char *const *types;  /* the provider's finding type ids, NULL-terminated */
    int ntypes;
    char *skip_reason[CASB_COVERAGE_MAX_TYPES]; /* malloc'ed; NULL while the check is whole */
    long findings;
    int sink_failed;           /* the sink refused a finding: the scan must fail */
} casb_coverage;

/* types: at most CASB_COVERAGE_MAX_TYPES ids (more are ignored: a provider's catalogue
 * test keeps them in range). */
void casb_coverage_init(casb_coverage *c, casb_scan_sink *sink, const char *const *types);
void casb_coverage_cleanup(casb_coverage *c);
/* Marks a type incomplete for this scan. The first reason is kept (the most specific:
 * collectors give theirs before the checks meet the missing input). */
void casb_coverage_vskip(casb_coverage *c, int type, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
void casb_coverage_skip(casb_coverage *c, int type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reports check_ran / check_skipped for every type to the sink. */
void casb_coverage_report(const casb_coverage *c);
/* Hands one finding of type to the sink; details is stolen whatever happens. 0, or -1 when
 * the sink refused it (then and ever after). A finding without an asset id is not handed
 * on: the type is marked skipped instead, since nothing could track it across scans. */
int casb_coverage_emit(casb_coverage *c, int type, const char *kind, const char *id,
                       const char *name, const char *url, json_t *details);

#endif
