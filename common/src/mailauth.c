/* SPF and DMARC policy evaluation over TXT strings (see casb/mailauth.h for what is and is
 * not resolved). Pure string work: no DNS here. */
#include "casb/mailauth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* "v=spf1" (any case) followed by a space or the end (RFC 7208 4.5). */
static int is_spf_record(const char *s)
{
    return strncasecmp(s, "v=spf1", 6) == 0 && (s[6] == '\0' || s[6] == ' ');
}

/* One SPF term: its qualifier (default '+') and whether it is "all" or a mechanism that
 * matches every address (ip4:0.0.0.0/0, ip6:::/0). Returns 1 for all, 2 for any-IP, else 0. */
static int spf_term(const char *t, size_t n, char *qualifier)
{
    *qualifier = '+';
    if (n > 0 && strchr("+-~?", t[0])) {
        *qualifier = t[0];
        t++;
        n--;
    }
    if (n == 3 && strncasecmp(t, "all", 3) == 0)
        return 1;
    if ((n == 13 && strncasecmp(t, "ip4:0.0.0.0/0", 13) == 0) ||
        (n == 8 && strncasecmp(t, "ip6:::/0", 8) == 0))
        return 2;
    return 0;
}

static void spf_parse(const char *rec, casb_spf_result *out)
{
    const char *p = rec + 6;

    while (*p) {
        size_t n;
        char q;
        int kind;

        while (is_wsp(*p))
            p++;
        n = strcspn(p, " \t");
        if (n == 0)
            break;
        kind = spf_term(p, n, &q);
        if (kind == 2 && (q == '+' || q == '?')) {
            out->allows_any = 1;
            snprintf(out->problem, sizeof(out->problem), "%.*s matches every address",
                     (int)n, p);
        }
        /* Mechanisms after "all" are never reached (RFC 7208 5.1). */
        if (kind == 1) {
            out->all_qualifier = q;
            if (q == '+' || q == '?') {
                out->allows_any = 1;
                snprintf(out->problem, sizeof(out->problem),
                         "%call lets any host send mail for the domain (%s)", q,
                         q == '+' ? "pass" : "neutral");
            }
            break;
        }
        p += n;
    }
}

void casb_spf_eval(const json_t *txts, casb_spf_result *out)
{
    const char *rec = NULL;
    size_t i, found = 0;
    json_t *v;

    memset(out, 0, sizeof(*out));
    json_array_foreach(txts, i, v) {
        const char *s = json_string_value(v);

        if (s && is_spf_record(s)) {
            if (!rec)
                rec = s;
            found++;
        }
    }
    if (found == 0) {
        snprintf(out->problem, sizeof(out->problem), "no TXT record starting with v=spf1");
        return;
    }
    snprintf(out->record, sizeof(out->record), "%s", rec);
    if (found > 1) {
        out->multiple = 1;
        snprintf(out->problem, sizeof(out->problem),
                 "%zu SPF records: multiple records (permerror, RFC 7208 4.5), so none applies",
                 found);
        return;
    }
    out->present = 1;
    spf_parse(rec, out);
}

/* ---- DMARC ---------------------------------------------------------------------------- */

/* Trims s[0..*n) of surrounding whitespace in place (returns the new start). */
static const char *trim(const char *s, size_t *n)
{
    while (*n > 0 && is_wsp(s[0])) {
        s++;
        (*n)--;
    }
    while (*n > 0 && is_wsp(s[*n - 1]))
        (*n)--;
    return s;
}

/* Splits the tag at s[0..n) into name and value; 0, or -1 without '='. */
static int split_tag(const char *s, size_t n, const char **name, size_t *nlen,
                     const char **val, size_t *vlen)
{
    const char *eq = memchr(s, '=', n);

    if (!eq)
        return -1;
    *nlen = (size_t)(eq - s);
    *name = trim(s, nlen);
    *vlen = n - (size_t)(eq + 1 - s);
    *val = trim(eq + 1, vlen);
    return 0;
}

/* A record whose first tag is v=DMARC1 (spaces around '=' allowed, as in the RFC's ABNF). */
static int is_dmarc_record(const char *s)
{
    size_t n = strcspn(s, ";"), nlen, vlen;
    const char *name, *val;

    s = trim(s, &n);
    if (split_tag(s, n, &name, &nlen, &val, &vlen) != 0)
        return 0;
    return nlen == 1 && tolower((unsigned char)name[0]) == 'v' && vlen == 6 &&
           strncasecmp(val, "DMARC1", 6) == 0;
}

static int policy_value(const char *val, size_t vlen, char *out, size_t outlen)
{
    static const char *const policies[] = {"none", "quarantine", "reject", NULL};

    for (size_t i = 0; policies[i]; i++) {
        if (vlen == strlen(policies[i]) && strncasecmp(val, policies[i], vlen) == 0) {
            snprintf(out, outlen, "%s", policies[i]);
            return 0;
        }
    }
    return -1;
}

/* pct: 0..100 in digits; anything else keeps the default (RFC 7489 6.3: syntax errors fall
 * back to defaults). */
static void pct_value(const char *val, size_t vlen, int *pct)
{
    int n = 0;

    if (vlen == 0 || vlen > 3)
        return;
    for (size_t i = 0; i < vlen; i++) {
        if (!isdigit((unsigned char)val[i]))
            return;
        n = n * 10 + (val[i] - '0');
    }
    if (n <= 100)
        *pct = n;
}

static void dmarc_parse(const char *rec, casb_dmarc_result *out)
{
    const char *p = rec;
    int bad_sp = 0;

    out->pct = 100;
    while (*p) {
        size_t n = strcspn(p, ";"), nlen, vlen;
        const char *tag = p, *name, *val;

        p += n;
        if (*p == ';')
            p++;
        tag = trim(tag, &n);
        if (n == 0 || split_tag(tag, n, &name, &nlen, &val, &vlen) != 0)
            continue;
        if (nlen == 1 && tolower((unsigned char)name[0]) == 'p') {
            if (policy_value(val, vlen, out->p, sizeof(out->p)) != 0)
                snprintf(out->problem, sizeof(out->problem),
                         "p=%.*s is not none, quarantine or reject", (int)(vlen > 40 ? 40 : vlen),
                         val);
        } else if (nlen == 2 && strncasecmp(name, "sp", 2) == 0) {
            if (policy_value(val, vlen, out->sp, sizeof(out->sp)) == 0)
                out->sp_explicit = 1;
            else
                bad_sp = 1;
        } else if (nlen == 3 && strncasecmp(name, "pct", 3) == 0) {
            pct_value(val, vlen, &out->pct);
        }
    }
    if (!out->p[0]) {
        if (!out->problem[0])
            snprintf(out->problem, sizeof(out->problem), "the record has no p tag");
        return;
    }
    if (bad_sp) {
        snprintf(out->problem, sizeof(out->problem),
                 "sp is not none, quarantine or reject");
        return;
    }
    if (!out->sp_explicit)
        snprintf(out->sp, sizeof(out->sp), "%s", out->p);
    out->problem[0] = '\0';
    out->present = 1;
}

void casb_dmarc_eval(const json_t *txts, casb_dmarc_result *out)
{
    const char *rec = NULL, *misplaced = NULL;
    size_t i, found = 0;
    json_t *v;

    memset(out, 0, sizeof(*out));
    out->pct = 100;
    json_array_foreach(txts, i, v) {
        const char *s = json_string_value(v);

        if (!s)
            continue;
        if (is_dmarc_record(s)) {
            if (!rec)
                rec = s;
            found++;
        } else if (strcasestr(s, "v=DMARC1")) {
            misplaced = s;
        }
    }
    if (found == 0) {
        if (misplaced) {
            snprintf(out->record, sizeof(out->record), "%s", misplaced);
            snprintf(out->problem, sizeof(out->problem),
                     "malformed: v=DMARC1 is not the first tag, so the record is ignored");
        } else {
            snprintf(out->problem, sizeof(out->problem), "no TXT record starting with v=DMARC1");
        }
        return;
    }
    snprintf(out->record, sizeof(out->record), "%s", rec);
    if (found > 1) {
        out->multiple = 1;
        snprintf(out->problem, sizeof(out->problem),
                 "%zu DMARC records: with more than one, none applies (RFC 7489 6.6.3)", found);
        return;
    }
    dmarc_parse(rec, out);
    if (!out->present) {
        char why[sizeof(out->problem)];

        memcpy(why, out->problem, sizeof(why));
        snprintf(out->problem, sizeof(out->problem), "malformed: %.200s, so the record is ignored",
                 why);
        out->p[0] = out->sp[0] = '\0';
        out->pct = 100;
    }
}
