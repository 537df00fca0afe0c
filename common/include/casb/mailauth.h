#ifndef CASB_MAILAUTH_H
#define CASB_MAILAUTH_H

#include <jansson.h>

/* SPF (RFC 7208) and DMARC (RFC 7489) policy evaluation over the TXT strings of a name (as
 * casb_dns_txt returns them). Only what a posture check needs: is there exactly one record,
 * and how strict is it. Nothing is resolved: SPF include: and redirect= are not followed
 * (a "+all" reached only through a redirect is not seen), and a record without an "all"
 * mechanism is not reported as allowing any host (its default result is neutral, but the
 * record's author did not write that). */

typedef struct {
    int present;        /* exactly one SPF record */
    int multiple;       /* more than one "v=spf1" record: a permerror (RFC 7208 4.5) */
    char all_qualifier; /* '+', '-', '~' or '?' of the first "all" mechanism; 0: no "all" */
    int allows_any;     /* "+all", "?all", or a "+ip4:0.0.0.0/0" / "+ip6:::/0" mechanism */
    char record[512];   /* the record (truncated), or "" */
    char problem[256];  /* why it is missing or weak, for a finding's details; "" when fine */
} casb_spf_result;

/* Evaluates the TXT strings of a domain (an array of strings; NULL is an empty one). */
void casb_spf_eval(const json_t *txts, casb_spf_result *out);

typedef struct {
    int present;        /* exactly one valid DMARC record */
    int multiple;       /* more than one "v=DMARC1" record: none applies (RFC 7489 6.6.3) */
    char p[16];         /* "none", "quarantine" or "reject" (lower case) */
    char sp[16];        /* the subdomain policy: sp, or p when sp is absent */
    int sp_explicit;    /* sp was in the record */
    int pct;            /* 0..100; 100 when absent or not a valid number */
    char record[512];   /* the record (truncated), or "" */
    char problem[256];  /* why it is missing or malformed, for details; "" when valid */
} casb_dmarc_result;

/* Evaluates the TXT strings at _dmarc.<domain>. A record whose first tag is not
 * "v=DMARC1", or without a valid p (or with an invalid sp), is malformed and treated as not
 * present (present = 0 with problem set), as RFC 7489 6.6.3 has receivers do when no rua is
 * usable. */
void casb_dmarc_eval(const json_t *txts, casb_dmarc_result *out);

#endif
