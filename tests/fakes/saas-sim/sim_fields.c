/* Google's partial response (the `fields` parameter): a comma list of members, "a/b" for a
 * member of a member, "a(b,c)" for several members of a (of each element when a is an
 * array), "*" for every member. A mask is a tree: a node without children selects its
 * member whole. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_google.h"

#define FIELDS_MAX_DEPTH 16

struct sim_fields {
    char *name;
    int whole;              /* selected entirely (a leaf, or selected again as a leaf) */
    struct sim_fields *kids;
    struct sim_fields *next;
};

typedef struct {
    const char *p;
    char *err;
    size_t errlen;
    int depth;
} parser;

void sim_fields_free(sim_fields *f)
{
    while (f) {
        sim_fields *next = f->next;
        sim_fields_free(f->kids);
        free(f->name);
        free(f);
        f = next;
    }
}

static int name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '*' || c == '-' || c == '.' || c == '@';
}

/* The child of *list named name[0..len), created when absent. */
static sim_fields *child(sim_fields **list, const char *name, size_t len)
{
    sim_fields **link = list;

    for (; *link; link = &(*link)->next) {
        if (strlen((*link)->name) == len && strncmp((*link)->name, name, len) == 0)
            return *link;
    }
    *link = calloc(1, sizeof **link);
    if (!*link)
        return NULL;
    (*link)->name = strndup(name, len);
    if (!(*link)->name) {
        free(*link);
        *link = NULL;
        return NULL;
    }
    return *link;
}

static int fail(parser *ps, const char *what)
{
    snprintf(ps->err, ps->errlen, "Invalid field selection %s", what);
    return -1;
}

static int parse_list(parser *ps, sim_fields **list);

/* path ['(' list ')'] into *list. */
static int parse_item(parser *ps, sim_fields **list)
{
    sim_fields *node = NULL, **at = list;

    for (;;) {
        const char *start = ps->p;
        while (name_char(*ps->p))
            ps->p++;
        if (ps->p == start)
            return fail(ps, *start ? start : "(empty)");
        node = child(at, start, (size_t)(ps->p - start));
        if (!node)
            return fail(ps, "(out of memory)");
        if (*ps->p != '/')
            break;
        ps->p++;
        at = &node->kids;
    }
    if (*ps->p == '(') {
        ps->p++;
        if (++ps->depth > FIELDS_MAX_DEPTH)
            return fail(ps, "(too deep)");
        if (parse_list(ps, &node->kids) != 0)
            return -1;
        ps->depth--;
        if (*ps->p != ')')
            return fail(ps, *ps->p ? ps->p : "(unclosed parenthesis)");
        ps->p++;
    } else {
        node->whole = 1;
    }
    return 0;
}

static int parse_list(parser *ps, sim_fields **list)
{
    for (;;) {
        while (*ps->p == ' ')
            ps->p++;
        if (parse_item(ps, list) != 0)
            return -1;
        while (*ps->p == ' ')
            ps->p++;
        if (*ps->p != ',')
            return 0;
        ps->p++;
    }
}

sim_fields *sim_fields_parse(const char *spec, char *err, size_t errlen)
{
    parser ps = {.p = spec ? spec : "", .err = err, .errlen = errlen};
    sim_fields *root = NULL;

    if (errlen > 0)
        err[0] = '\0';
    if (parse_list(&ps, &root) != 0 || *ps.p != '\0') {
        if (err[0] == '\0')
            fail(&ps, ps.p);
        sim_fields_free(root);
        return NULL;
    }
    return root;
}

static json_t *select_one(const sim_fields *node, const json_t *v)
{
    if (node->whole || !node->kids)
        return json_deep_copy(v);
    return sim_fields_apply(node->kids, v);
}

json_t *sim_fields_apply(const sim_fields *f, const json_t *v)
{
    json_t *out;

    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        out = json_array();
        json_array_foreach(v, i, e)
            json_array_append_new(out, sim_fields_apply(f, e));
        return out;
    }
    if (!json_is_object(v))
        return json_deep_copy(v);
    out = json_object();
    for (const sim_fields *n = f; n; n = n->next) {
        if (strcmp(n->name, "*") == 0) {
            const char *key;
            json_t *m;
            json_object_foreach((json_t *)v, key, m) {
                if (!json_object_get(out, key))
                    json_object_set_new(out, key, select_one(n, m));
            }
            continue;
        }
        json_t *m = json_object_get(v, n->name);
        if (m)
            json_object_set_new(out, n->name, select_one(n, m));
    }
    return out;
}
