#include "casb/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "casb/error.h"
#include "casb/log.h"

/* Copies a value for an error message: printable ASCII only and bounded, so that a stray
 * control character or a huge value cannot garble the one line we print. */
static void quote_value(char *out, size_t outlen, const char *v)
{
    size_t i = 0;

    if (outlen == 0)
        return;
    for (; *v && i + 4 < outlen && i < 64; v++)
        out[i++] = (*v >= 0x20 && *v < 0x7f) ? *v : '?';
    if (*v && i + 4 <= outlen) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

/* Formats "<NAME>: <why>" and, unless the variable is secret, the offending value. */
static int bad_value(const casb_cfg_var *v, const char *value, const char *why,
                     char *err, size_t errlen)
{
    char shown[80];

    if (v->secret)
        return casb_fail(err, errlen, -1, "%s: %s", v->name, why);
    quote_value(shown, sizeof(shown), value);
    return casb_fail(err, errlen, -1, "%s: \"%s\" %s", v->name, shown, why);
}

static int parse_long(const char *s, long *out)
{
    char *end = NULL;
    long n;

    errno = 0;
    n = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = n;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"true", "1", "yes", "on"};
    static const char *no[] = {"false", "0", "no", "off"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* "a.b.c.d:port" with a dotted-quad IPv4 address and a port in 1..65535. */
static int valid_addr(const char *s)
{
    const char *colon = strrchr(s, ':');
    char host[INET_ADDRSTRLEN];
    struct in_addr a;
    long port;
    size_t hlen;

    if (!colon)
        return 0;
    hlen = (size_t)(colon - s);
    if (hlen == 0 || hlen >= sizeof(host))
        return 0;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, &a) != 1)
        return 0;
    if (colon[1] < '0' || colon[1] > '9')
        return 0;
    if (parse_long(colon + 1, &port) != 0 || port < 1 || port > 65535)
        return 0;
    return 1;
}

/* http(s)://host[...] with a non-empty host; deeper checks belong to the user of the URL. */
static int valid_url(const char *s)
{
    const char *rest;

    if (strncasecmp(s, "http://", 7) == 0)
        rest = s + 7;
    else if (strncasecmp(s, "https://", 8) == 0)
        rest = s + 8;
    else
        return 0;
    if (*rest == '\0' || *rest == '/' || *rest == ':' || *rest == '?' || *rest == '#')
        return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

static int load_one(const casb_cfg_var *v, char *err, size_t errlen)
{
    const char *value = getenv(v->name);
    const char *origin = "";

    /* An empty variable counts as unset: `CASB_MASTER_KEY_PREVIOUS=` in an env file means
     * "none", not "the empty key". */
    if (value && value[0] == '\0')
        value = NULL;
    if (!value) {
        value = v->default_value;
        origin = " (default)";
    }
    if (!value) {
        if (v->required)
            return casb_fail(err, errlen, -1, "%s: required but not set", v->name);
        /* Unset optional variables leave a defined zero value in the target. */
        switch (v->type) {
        case CASB_CFG_STRING:
        case CASB_CFG_ADDR:
        case CASB_CFG_URL:
            *(const char **)v->target = NULL;
            break;
        case CASB_CFG_INT:
            *(long *)v->target = 0;
            break;
        case CASB_CFG_BOOL:
            *(int *)v->target = 0;
            break;
        case CASB_CFG_LOGLEVEL:
            *(int *)v->target = CASB_LOG_INFO;
            break;
        }
        return 0;
    }

    switch (v->type) {
    case CASB_CFG_STRING:
        *(const char **)v->target = value;
        return 0;
    case CASB_CFG_INT: {
        long n;
        char why[96];

        if (parse_long(value, &n) != 0)
            return bad_value(v, value, "is not an integer", err, errlen);
        if ((v->min != 0 || v->max != 0) && (n < v->min || n > v->max)) {
            snprintf(why, sizeof(why), "is out of range [%ld, %ld]%s", v->min, v->max, origin);
            return bad_value(v, value, why, err, errlen);
        }
        *(long *)v->target = n;
        return 0;
    }
    case CASB_CFG_BOOL:
        if (parse_bool(value, (int *)v->target) != 0)
            return bad_value(v, value, "is not a boolean (true/false/1/0/yes/no/on/off)", err,
                             errlen);
        return 0;
    case CASB_CFG_ADDR:
        if (!valid_addr(value))
            return bad_value(v, value, "is not host:port with an IPv4 host and a port 1..65535",
                             err, errlen);
        *(const char **)v->target = value;
        return 0;
    case CASB_CFG_URL:
        if (!valid_url(value))
            return bad_value(v, value, "is not an http:// or https:// URL", err, errlen);
        *(const char **)v->target = value;
        return 0;
    case CASB_CFG_LOGLEVEL: {
        int level = casb_log_level_parse(value);

        if (level < 0)
            return bad_value(v, value, "is not one of debug, info, warn, error", err, errlen);
        *(int *)v->target = level;
        return 0;
    }
    }
    return casb_fail(err, errlen, -1, "%s: unknown variable type", v->name);
}

int casb_config_load(const casb_cfg_var *vars, size_t nvars, char *err, size_t errlen)
{
    for (size_t i = 0; i < nvars; i++) {
        if (!vars[i].name || !vars[i].target)
            return casb_fail(err, errlen, -1, "configuration table entry %zu is incomplete", i);
        if (load_one(&vars[i], err, errlen) != 0)
            return -1;
    }
    return 0;
}

static const char *type_hint(const casb_cfg_var *v)
{
    switch (v->type) {
    case CASB_CFG_STRING:
        return "string";
    case CASB_CFG_INT:
        return "integer";
    case CASB_CFG_BOOL:
        return "boolean";
    case CASB_CFG_ADDR:
        return "host:port";
    case CASB_CFG_URL:
        return "URL";
    case CASB_CFG_LOGLEVEL:
        return "debug|info|warn|error";
    }
    return "?";
}

void casb_config_help(FILE *out, const char *prog, const char *summary,
                      const casb_cfg_var *vars, size_t nvars)
{
    fprintf(out, "Usage: %s [--help]\n\n", prog);
    if (summary && summary[0])
        fprintf(out, "%s\n\n", summary);
    fprintf(out, "Configuration is read from environment variables:\n\n");
    for (size_t i = 0; i < nvars; i++) {
        const casb_cfg_var *v = &vars[i];

        fprintf(out, "  %s (%s", v->name, type_hint(v));
        if (v->type == CASB_CFG_INT && (v->min != 0 || v->max != 0))
            fprintf(out, ", %ld..%ld", v->min, v->max);
        if (v->required && !v->default_value)
            fprintf(out, ", required");
        if (v->default_value && !v->secret)
            fprintf(out, ", default %s", v->default_value);
        if (v->secret)
            fprintf(out, ", secret");
        fprintf(out, ")\n");
        if (v->help && v->help[0])
            fprintf(out, "      %s\n", v->help);
    }
}

void casb_config_init_or_exit(int argc, char **argv, const char *prog, const char *summary,
                              const casb_cfg_var *vars, size_t nvars)
{
    char err[512];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            casb_config_help(stdout, prog, summary, vars, nvars);
            fflush(stdout);
            exit(0);
        }
    }
    if (argc > 1) {
        char shown[80];

        quote_value(shown, sizeof(shown), argv[1]);
        fprintf(stderr, "%s: unknown argument \"%s\" (configuration comes from the environment; "
                        "see --help)\n", prog, shown);
        exit(2);
    }
    if (casb_config_load(vars, nvars, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        exit(2);
    }
}
