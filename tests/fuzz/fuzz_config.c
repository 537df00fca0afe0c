/* The services' configuration: casb_config_load over each service's variable table
 * (integration-manager with its rotate, migrate and topics commands, scheduler,
 * scanner-worker, findings-api), the environment set from the input: the first byte picks
 * the table, then one line per variable, in table order (a missing line leaves it unset).
 * Invariants: every loaded value is of its type and in its range, and an error about a
 * secret variable never quotes its value. */
#include <string.h>

#include "casb/config.h"
#include "casb/log.h"
#include "fa_settings.h"
#include "fuzz_common.h"
#include "im_settings.h"
#include "sched_settings.h"
#include "sw_settings.h"

#define MAX_VARS 64

/* The table of one service; the settings structs are only targets. */
static size_t table(int which, casb_cfg_var *vars)
{
    static im_settings im;
    static im_rotate_settings rotate;
    static im_migrate_settings migrate;
    static im_topics_settings topics;
    static sched_settings sched;
    static sw_settings sw;
    static fa_settings fa;

    switch (which % 7) {
    case 0:
        return im_settings_table(&im, vars, MAX_VARS);
    case 1:
        return im_rotate_settings_table(&rotate, vars, MAX_VARS);
    case 2:
        return im_migrate_settings_table(&migrate, vars, MAX_VARS);
    case 3:
        return im_topics_settings_table(&topics, vars, MAX_VARS);
    case 4:
        return sched_settings_table(&sched, vars, MAX_VARS);
    case 5:
        return sw_settings_table(&sw, vars, MAX_VARS);
    default:
        return fa_settings_table(&fa, vars, MAX_VARS);
    }
}

static void check_loaded(const casb_cfg_var *v)
{
    switch (v->type) {
    case CASB_CFG_INT: {
        long n = *(long *)v->target;
        FUZZ_CHECK((v->min == 0 && v->max == 0) || (n >= v->min && n <= v->max) ||
                   (n == 0 && !getenv(v->name) && !v->default_value));
        break;
    }
    case CASB_CFG_BOOL:
        FUZZ_CHECK(*(int *)v->target == 0 || *(int *)v->target == 1);
        break;
    case CASB_CFG_ADDR: {
        const char *s = *(const char **)v->target;
        FUZZ_CHECK(!s || strchr(s, ':'));
        break;
    }
    case CASB_CFG_URL: {
        const char *s = *(const char **)v->target;
        FUZZ_CHECK(!s || !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8));
        break;
    }
    case CASB_CFG_LOGLEVEL:
        FUZZ_CHECK(*(int *)v->target >= CASB_LOG_DEBUG && *(int *)v->target <= CASB_LOG_ERROR);
        break;
    case CASB_CFG_STRING:
        break;
    }
}

/* An error about a secret variable ("<NAME>: <why>") never quotes its value. Values short
 * enough to occur in any message, or in the name, prove nothing and are not looked for. */
static void check_no_secret(const casb_cfg_var *vars, size_t n, const char *err)
{
    for (size_t i = 0; i < n; i++) {
        size_t namelen = strlen(vars[i].name);
        const char *value = getenv(vars[i].name);

        if (!vars[i].secret || strncmp(err, vars[i].name, namelen) != 0 || err[namelen] != ':')
            continue;
        if (!value || strlen(value) < 8 || strstr(vars[i].name, value))
            continue;
        if (strstr(err + namelen, value))
            fprintf(stderr, "the value of %s is in the error\n", vars[i].name);
        FUZZ_CHECK(!strstr(err + namelen, value));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    casb_cfg_var vars[MAX_VARS];
    char err[512] = "";
    char *input, *line;
    size_t n;

    if (size < 1)
        return 0;
    n = table(data[0], vars);
    FUZZ_CHECK(n <= MAX_VARS);
    input = fuzz_cstr(data + 1, size - 1);
    line = input;
    for (size_t i = 0; i < n; i++) {
        char *nl = line ? strchr(line, '\n') : NULL;
        if (nl)
            *nl = '\0';
        if (line)
            setenv(vars[i].name, line, 1);
        else
            unsetenv(vars[i].name);
        line = nl ? nl + 1 : NULL;
    }
    if (casb_config_load(vars, n, err, sizeof(err)) == 0) {
        for (size_t i = 0; i < n; i++)
            check_loaded(&vars[i]);
    } else {
        FUZZ_CHECK(err[0]);
        check_no_secret(vars, n, err);
    }
    free(input);
    return 0;
}
