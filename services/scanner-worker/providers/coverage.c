#include "coverage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void casb_coverage_init(casb_coverage *c, casb_scan_sink *sink, const char *const *types)
{
    memset(c, 0, sizeof(*c));
    c->sink = sink;
    c->types = types;
    while (types[c->ntypes] && c->ntypes < CASB_COVERAGE_MAX_TYPES)
        c->ntypes++;
}

void casb_coverage_cleanup(casb_coverage *c)
{
    for (int i = 0; i < c->ntypes; i++) {
        free(c->skip_reason[i]);
        c->skip_reason[i] = NULL;
    }
}

void casb_coverage_vskip(casb_coverage *c, int type, const char *fmt, va_list ap)
{
    char buf[512];

    if (type < 0 || type >= c->ntypes || c->skip_reason[type])
        return;
    vsnprintf(buf, sizeof(buf), fmt, ap);
    c->skip_reason[type] = strdup(buf);
    if (!c->skip_reason[type])
        c->skip_reason[type] = strdup("check incomplete"); /* still marks it skipped */
}

void casb_coverage_skip(casb_coverage *c, int type, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    casb_coverage_vskip(c, type, fmt, ap);
    va_end(ap);
}

void casb_coverage_report(const casb_coverage *c)
{
    for (int i = 0; i < c->ntypes; i++) {
        if (c->skip_reason[i]) {
            if (c->sink->check_skipped)
                c->sink->check_skipped(c->sink, c->types[i], c->skip_reason[i]);
        } else if (c->sink->check_ran) {
            c->sink->check_ran(c->sink, c->types[i]);
        }
    }
}

int casb_coverage_emit(casb_coverage *c, int type, const char *kind, const char *id,
                       const char *name, const char *url, json_t *details)
{
    if (c->sink_failed) {
        json_decref(details);
        return -1;
    }
    /* A finding is keyed by its asset: one the vendor sent without an identifier cannot be
     * tracked across scans, so the check is reported incomplete instead of guessing a key. */
    if (!id || !id[0]) {
        json_decref(details);
        casb_coverage_skip(c, type, "the API returned a %s without an identifier",
                           kind ? kind : "resource");
        return 0;
    }
    if (c->sink->finding(c->sink, c->types[type], kind, id, name, url, details) != 0) {
        c->sink_failed = 1;
        return -1;
    }
    c->findings++;
    return 0;
}
