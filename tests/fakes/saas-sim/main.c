/* casb-saas-sim: serves GitHub's REST API for the orgs in tenant files, plus /_sim admin. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/log.h"
#include "sim.h"

#define PROG "casb-saas-sim"
#define MAX_TENANTS 64
#define MAX_KEY_BYTES (64 * 1024)

typedef struct {
    const char *addr;
    const char *tenants[MAX_TENANTS];
    size_t ntenants;
    const char *public_key_file;
    const char *google_key_file;
    const char *dns_addr;
    unsigned long long seed;
} cli;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROG " [--addr HOST:PORT] --tenant FILE [--tenant FILE ...]\n"
            "                     [--github-app-public-key PEMFILE] [--seed N]\n"
            "                     [--google-sa-public-key PEMFILE] [--dns-addr HOST:PORT]\n"
            "\n"
            "Serves GitHub's REST API (api_base_url = http://HOST:PORT) for every organization\n"
            "of its tenant files, with GitHub's auth, Link pagination, rate-limit headers and\n"
            "injectable faults, GitHub's OAuth web flow (/login/oauth/authorize and\n"
            "/login/oauth/access_token, for orgs with auth.oauth), plus an admin API under\n"
            "/_sim (see tenants/README.md). Tenant documents with \"kind\": \"google_workspace\"\n"
            "get Google Workspace's token endpoint (/token), Directory, Drive, Calendar and\n"
            "Gmail APIs on the same address, and their \"dns\" maps a UDP TXT responder.\n"
            "\n"
            "  --addr HOST:PORT              listen address (default 127.0.0.1:8090)\n"
            "  --tenant FILE                 org tenant document (JSON); repeatable\n"
            "  --github-app-public-key FILE  PEM public key verifying App JWTs of orgs whose\n"
            "                                auth.app has no public_key_pem\n"
            "  --seed N                      seed of the fault and token PRNG (default 1)\n"
            "  --google-sa-public-key FILE   PEM public key verifying the JWT assertions of Google\n"
            "                                tenants whose service_account has no public_key_pem\n"
            "  --dns-addr HOST:PORT          serve the Google tenants' TXT records over UDP here\n"
            "  -h, --help                    this text\n"
            "\n"
            "Environment: CASB_LOG_LEVEL (debug|info|warn|error, default info).\n");
}

static void die_usage(const char *msg, const char *arg)
{
    fprintf(stderr, PROG ": %s%s%s (see --help)\n", msg, arg ? ": " : "", arg ? arg : "");
    exit(2);
}

static int valid_addr(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    char *end = NULL;
    long port;

    if (!colon || colon == addr)
        return 0;
    port = strtol(colon + 1, &end, 10);
    return end && *end == '\0' && colon[1] != '\0' && port >= 1 && port <= 65535;
}

static void parse_args(int argc, char **argv, cli *c)
{
    c->addr = "127.0.0.1:8090";
    c->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(a, "--addr") != 0 && strcmp(a, "--tenant") != 0 &&
            strcmp(a, "--github-app-public-key") != 0 && strcmp(a, "--seed") != 0 &&
            strcmp(a, "--google-sa-public-key") != 0 && strcmp(a, "--dns-addr") != 0)
            die_usage("unknown argument", a);
        if (!v)
            die_usage("missing value for", a);
        i++;
        if (strcmp(a, "--addr") == 0) {
            if (!valid_addr(v))
                die_usage("--addr must be HOST:PORT with a port in 1..65535, got", v);
            c->addr = v;
        } else if (strcmp(a, "--tenant") == 0) {
            if (c->ntenants == MAX_TENANTS)
                die_usage("too many --tenant files", NULL);
            c->tenants[c->ntenants++] = v;
        } else if (strcmp(a, "--github-app-public-key") == 0) {
            c->public_key_file = v;
        } else if (strcmp(a, "--google-sa-public-key") == 0) {
            c->google_key_file = v;
        } else if (strcmp(a, "--dns-addr") == 0) {
            if (!valid_addr(v))
                die_usage("--dns-addr must be HOST:PORT with a port in 1..65535, got", v);
            c->dns_addr = v;
        } else {
            char *end = NULL;
            c->seed = strtoull(v, &end, 10);
            if (!end || *end != '\0' || v[0] == '\0' || v[0] == '-')
                die_usage("--seed must be a non-negative integer, got", v);
        }
    }
}

static char *read_pem(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, MAX_KEY_BYTES + 1);
    size_t n;

    if (!f || !buf) {
        if (f)
            fclose(f);
        free(buf);
        return NULL;
    }
    n = fread(buf, 1, MAX_KEY_BYTES, f);
    fclose(f);
    if (n == 0 || n == MAX_KEY_BYTES || !strstr(buf, "-----BEGIN")) {
        free(buf);
        return NULL;
    }
    return buf;
}

int main(int argc, char **argv)
{
    cli c = {0};
    sim_opts opts = {0};
    sim *s = NULL;
    char *pem = NULL, *google_pem = NULL;
    char err[512], seed[32], orgs[32], customers[32];
    sigset_t stop;
    int sig = 0, level;

    parse_args(argc, argv, &c);
    level = casb_log_level_parse(getenv("CASB_LOG_LEVEL") ? getenv("CASB_LOG_LEVEL") : "info");
    if (level < 0)
        die_usage("CASB_LOG_LEVEL must be debug, info, warn or error", NULL);
    casb_log_init("saas-sim", level);
    if (c.public_key_file) {
        pem = read_pem(c.public_key_file);
        if (!pem)
            die_usage("cannot read a PEM key from --github-app-public-key", c.public_key_file);
    }
    if (c.google_key_file) {
        google_pem = read_pem(c.google_key_file);
        if (!google_pem)
            die_usage("cannot read a PEM key from --google-sa-public-key", c.google_key_file);
    }
    opts.addr = c.addr;
    opts.app_public_key_pem = pem;
    opts.google_sa_public_key_pem = google_pem;
    opts.dns_addr = c.dns_addr;
    opts.seed = c.seed;
    if (sim_new(&s, &opts, err, sizeof err) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < c.ntenants; i++) {
        if (sim_tenant_load_file(s, c.tenants[i], err, sizeof err) != 0) {
            fprintf(stderr, PROG ": %s\n", err);
            sim_free(s);
            free(pem);
            free(google_pem);
            return 2;
        }
    }
    snprintf(seed, sizeof seed, "%llu", c.seed);
    snprintf(orgs, sizeof orgs, "%zu", s->norgs);
    snprintf(customers, sizeof customers, "%zu", s->ngtenants);
    /* Block the stop signals before the server's threads exist, so that only sigwait sees them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (sim_start(s, err, sizeof err) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        sim_free(s);
        free(pem);
        free(google_pem);
        return 1;
    }
    casb_log_info("saas simulator listening", "addr", c.addr, "orgs", orgs, "google_customers",
                  customers, "seed", seed);
    sigwait(&stop, &sig);
    casb_log_info("stopping", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM");
    sim_free(s);
    free(pem);
    free(google_pem);
    return 0;
}
