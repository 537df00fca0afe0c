#ifndef CASB_CONFIG_H
#define CASB_CONFIG_H

#include <stddef.h>
#include <stdio.h>

/* Configuration from environment variables, described by one table per service that also
 * generates the --help text. Values are validated at start; a bad value stops the process
 * with one line on stderr and exit code 2. */

typedef enum {
    CASB_CFG_STRING,   /* target: char ** (points into the environment or the default; not freed) */
    CASB_CFG_INT,      /* target: long *, checked against [min, max] */
    CASB_CFG_BOOL,     /* target: int *; accepts true/false/1/0/yes/no/on/off */
    CASB_CFG_ADDR,     /* target: char **; "host:port" with an IPv4 host, port 1..65535 */
    CASB_CFG_URL,      /* target: char **; http:// or https:// (postgres:// for database URLs is STRING) */
    CASB_CFG_LOGLEVEL, /* target: int *; debug|info|warn|error */
} casb_cfg_type;

typedef struct {
    const char *name;          /* environment variable, e.g. "CASB_HTTP_ADDR" */
    casb_cfg_type type;
    const char *default_value; /* NULL: no default */
    int required;              /* non-zero: missing (and no default) is an error */
    int secret;                /* non-zero: the value is never printed, even in errors */
    long min, max;             /* for CASB_CFG_INT; both 0 means unbounded */
    const char *help;          /* one sentence for --help */
    void *target;
} casb_cfg_var;

/* Parses every variable of the table into its target. Returns 0, or -1 with err naming
 * the first bad variable (without its value when secret). */
int casb_config_load(const casb_cfg_var *vars, size_t nvars, char *err, size_t errlen);

/* Writes the --help text: usage line, summary, then one entry per variable. */
void casb_config_help(FILE *out, const char *prog, const char *summary,
                      const casb_cfg_var *vars, size_t nvars);

/* The usual start of a service's main: prints help and exits 0 on --help/-h, rejects
 * unknown arguments, loads the table, and on error prints "<prog>: <message>" and exits 2. */
void casb_config_init_or_exit(int argc, char **argv, const char *prog, const char *summary,
                              const casb_cfg_var *vars, size_t nvars);

#endif
