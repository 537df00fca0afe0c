/* Statement text specialised for its NULL parameters (casb/sql.h). */
#include "casb/sql.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"

/* The most parameters one group may name (the widest, a keyset cursor, names three). */
#define GROUP_PARAMS_MAX 8

typedef struct {
    int n;            /* $n */
    const char *cast; /* "::type" in the group, or NULL */
    size_t cast_len;
} group_param;

/* Reads "$<digits>[::<type>]" at s: returns its length and fills *p, or 0. */
static size_t read_param(const char *s, group_param *p)
{
    const char *e = s + 1;
    long n;

    if (*s != '$' || !isdigit((unsigned char)*e))
        return 0;
    n = strtol(e, (char **)&e, 10);
    p->n = n > 0 && n < 100000 ? (int)n : 0;
    p->cast = NULL;
    p->cast_len = 0;
    if (e[0] == ':' && e[1] == ':' && (isalpha((unsigned char)e[2]) || e[2] == '_')) {
        const char *t = e + 2;

        while (isalnum((unsigned char)*t) || *t == '_')
            t++;
        p->cast = e;
        p->cast_len = (size_t)(t - e);
        e = t;
    }
    return (size_t)(e - s);
}

static const char *skip_space(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return s;
}

/* Matches the keyword kw (upper case) at s followed by a space: the position after the
 * spaces, or NULL. */
static const char *keyword(const char *s, const char *kw)
{
    size_t n = strlen(kw);

    if (strncmp(s, kw, n) != 0 || !isspace((unsigned char)s[n]))
        return NULL;
    return skip_space(s + n);
}

/* "($N::type IS NULL OR " at s: returns the text after it and fills *lead, or NULL. */
static const char *group_head(const char *s, group_param *lead)
{
    size_t n;

    if (s[0] != '(' || !(n = read_param(s + 1, lead)) || !lead->cast)
        return NULL;
    s = skip_space(s + 1 + n);
    if (!(s = keyword(s, "IS")) || !(s = keyword(s, "NULL")))
        return NULL;
    return keyword(s, "OR");
}

/* The end of a quoted literal or identifier starting at s (its closing quote + 1). */
static const char *skip_quoted(const char *s)
{
    char q = *s++;

    while (*s && *s != q)
        s++;
    return *s ? s + 1 : s;
}

/* The closing parenthesis of the group opening at s, or NULL when unbalanced. */
static const char *group_end(const char *s)
{
    int depth = 0;

    while (*s) {
        if (*s == '\'' || *s == '"') {
            s = skip_quoted(s);
            continue;
        }
        if (*s == '(')
            depth++;
        else if (*s == ')' && --depth == 0)
            return s;
        s++;
    }
    return NULL;
}

/* Collects the distinct parameters of [s, end) with the first cast of each. Returns their
 * number, or -1 when there are too many. */
static int group_params(const char *s, const char *end, group_param *out)
{
    int count = 0;

    while (s < end) {
        group_param p;
        size_t n;
        int i;

        if (*s == '\'' || *s == '"') {
            s = skip_quoted(s);
            continue;
        }
        if (!(n = read_param(s, &p))) {
            s++;
            continue;
        }
        for (i = 0; i < count && out[i].n != p.n; i++)
            ;
        if (i == count) {
            if (count == GROUP_PARAMS_MAX)
                return -1;
            out[count++] = p;
        } else if (!out[i].cast && p.cast) {
            out[i].cast = p.cast;
            out[i].cast_len = p.cast_len;
        }
        s += n;
    }
    return count;
}

static int param_is_null(int n, int nparams, const char *const *params)
{
    return n >= 1 && n <= nparams && params[n - 1] == NULL;
}

/* The true condition that replaces a group whose parameters are all NULL, or 0 when the
 * group must stay as written. */
static int append_all_null(casb_text *out, const group_param *ps, int count, int nparams,
                           const char *const *params)
{
    char num[16];

    for (int i = 0; i < count; i++) {
        if (!ps[i].cast || !param_is_null(ps[i].n, nparams, params))
            return 0;
    }
    casb_text_append_str(out, "(");
    for (int i = 0; i < count; i++) {
        snprintf(num, sizeof num, "%s$%d", i ? " AND " : "", ps[i].n);
        casb_text_append_str(out, num);
        casb_text_append(out, ps[i].cast, ps[i].cast_len);
        casb_text_append_str(out, " IS NULL");
    }
    casb_text_append_str(out, ")");
    return 1;
}

int casb_sql_specialize(const char *sql, int nparams, const char *const *params,
                        casb_text *out)
{
    const char *s = sql, *copied = sql;

    while (*s) {
        group_param lead, ps[GROUP_PARAMS_MAX];
        const char *body, *end;
        int count;

        if (*s == '\'' || *s == '"') {
            s = skip_quoted(s);
            continue;
        }
        if (!(body = group_head(s, &lead)) || lead.n < 1 || lead.n > nparams) {
            s++;
            continue;
        }
        casb_text_append(out, copied, (size_t)(s - copied));
        if (params[lead.n - 1] != NULL) { /* keep expr; groups inside it are seen next */
            casb_text_append_str(out, "(");
            s = copied = body;
            continue;
        }
        end = group_end(s);
        if (!end) { /* unbalanced: the rest as written */
            copied = s;
            break;
        }
        count = group_params(s, end, ps);
        if (count < 0 || !append_all_null(out, ps, count, nparams, params))
            casb_text_append(out, s, (size_t)(end + 1 - s));
        s = copied = end + 1;
    }
    casb_text_append_str(out, copied);
    return out->failed ? -1 : 0;
}

static PGresult *query_specialised(casb_db *db, const char *sql, int nparams,
                                   const char *const *params, int binary, char *err,
                                   size_t errlen)
{
    casb_text text = {0};
    PGresult *res = NULL;

    if (casb_sql_specialize(sql, nparams, params, &text) != 0)
        casb_fail(err, errlen, CASB_ERROR, "database: out of memory");
    else if (binary)
        res = casb_db_query_generic_binary(db, text.data, nparams, params, err, errlen);
    else
        res = casb_db_query_generic(db, text.data, nparams, params, err, errlen);
    casb_text_free(&text);
    return res;
}

PGresult *casb_db_query_specialised(casb_db *db, const char *sql, int nparams,
                                    const char *const *params, char *err, size_t errlen)
{
    return query_specialised(db, sql, nparams, params, 0, err, errlen);
}

PGresult *casb_db_query_specialised_binary(casb_db *db, const char *sql, int nparams,
                                           const char *const *params, char *err,
                                           size_t errlen)
{
    return query_specialised(db, sql, nparams, params, 1, err, errlen);
}
