/* Injectable faults per org, drawn with a seeded PRNG so that a run with the same --seed and
 * the same sequence of requests faults the same responses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/json.h"
#include "sim.h"

static const struct {
    const char *name;
    sim_fault_mode mode;
} MODES[] = {
    {"429", SIM_FAULT_429},   {"500", SIM_FAULT_500},           {"503", SIM_FAULT_503},
    {"slow", SIM_FAULT_SLOW}, {"malformed", SIM_FAULT_MALFORMED}, {"timeout", SIM_FAULT_TIMEOUT},
    {"quota", SIM_FAULT_QUOTA},
};

/* splitmix64: tiny, good enough for test draws, and fully determined by its state. */
uint64_t sim_prng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Each org draws from its own stream, so that traffic to one org does not change which
 * requests of another are faulted. */
uint64_t sim_prng_seed_for(uint64_t seed, const char *login)
{
    uint64_t h = 1469598103934665603ull;

    for (const unsigned char *p = (const unsigned char *)login; *p; p++) {
        h ^= (uint64_t)(*p | 0x20); /* logins compare case-insensitively */
        h *= 1099511628211ull;
    }
    return seed ^ h;
}

const char *sim_fault_mode_name(sim_fault_mode m)
{
    for (size_t i = 0; i < sizeof MODES / sizeof MODES[0]; i++) {
        if (MODES[i].mode == m)
            return MODES[i].name;
    }
    return "none";
}

void sim_fault_free(sim_fault *f)
{
    if (!f)
        return;
    free(f->path_contains);
    free(f);
}

static int read_int(const json_t *body, const char *key, long long min, long long max,
                    long long def, long long *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(body, key);

    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return casb_fail(err, errlen, CASB_EINVALID, "%s must be an integer in [%lld, %lld]", key,
                         min, max);
    *out = json_integer_value(v);
    return 0;
}

int sim_fault_parse(sim_fault **out, const json_t *body, char *err, size_t errlen)
{
    sim_fault *f = NULL;
    const char *mode;
    json_t *v;
    long long n;
    int rc = CASB_EINVALID;

    *out = NULL;
    if (!json_is_object(body))
        return casb_fail(err, errlen, CASB_EINVALID, "a fault is a JSON object");
    f = calloc(1, sizeof *f);
    if (!f)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    mode = casb_json_str(body, "mode");
    for (size_t i = 0; mode && i < sizeof MODES / sizeof MODES[0]; i++) {
        if (strcmp(MODES[i].name, mode) == 0)
            f->mode = MODES[i].mode;
    }
    if (f->mode == SIM_FAULT_NONE) {
        casb_fail(err, errlen, CASB_EINVALID,
                  "mode must be one of 429, 500, 503, slow, malformed, timeout, quota");
        goto out;
    }
    f->rate = 1.0;
    v = json_object_get(body, "rate");
    if (v) {
        if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0.0 ||
            json_number_value(v) > 1.0) {
            casb_fail(err, errlen, CASB_EINVALID, "rate must be a number in [0, 1]");
            goto out;
        }
        f->rate = json_number_value(v);
    }
    if (read_int(body, "count", -1, 1000000000, -1, &f->remaining, err, errlen) != 0)
        goto out;
    if (f->remaining == 0) {
        casb_fail(err, errlen, CASB_EINVALID, "count must be positive, or -1 for until cleared");
        goto out;
    }
    if (read_int(body, "retry_after_s", 0, 3600, 1, &n, err, errlen) != 0)
        goto out;
    f->retry_after_s = (long)n;
    if (read_int(body, "delay_ms", 0, SIM_MAX_HOLD_MS,
                 f->mode == SIM_FAULT_TIMEOUT ? SIM_TIMEOUT_HOLD_MS : SIM_SLOW_DELAY_MS, &n, err,
                 errlen) != 0)
        goto out;
    f->delay_ms = (long)n;
    v = json_object_get(body, "path_contains");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) {
            casb_fail(err, errlen, CASB_EINVALID, "path_contains must be a string");
            goto out;
        }
        f->path_contains = strdup(json_string_value(v));
        if (!f->path_contains) {
            rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
            goto out;
        }
    }
    *out = f;
    f = NULL;
    rc = 0;
out:
    sim_fault_free(f);
    return rc;
}

void sim_faults_clear(sim_org *o)
{
    sim_fault *f = o->faults;

    while (f) {
        sim_fault *next = f->next;
        sim_fault_free(f);
        f = next;
    }
    o->faults = NULL;
}

void sim_faults_add(sim_org *o, sim_fault *f)
{
    sim_fault **tail = &o->faults;

    while (*tail)
        tail = &(*tail)->next;
    f->id = o->next_fault_id++;
    f->next = NULL;
    *tail = f;
}

int sim_faults_pick(sim_org *o, const char *path, sim_fault_hit *hit)
{
    sim_fault **link = &o->faults;

    while (*link) {
        sim_fault *f = *link;

        if (f->path_contains && !strstr(path, f->path_contains)) {
            link = &f->next;
            continue;
        }
        /* rate 1 draws nothing, so adding a certain fault keeps the stream of the others. */
        if (f->rate < 1.0) {
            double u = (double)(sim_prng_next(&o->prng) >> 11) / 9007199254740992.0; /* 2^53 */
            if (u >= f->rate) {
                link = &f->next;
                continue;
            }
        }
        hit->mode = f->mode;
        hit->retry_after_s = f->retry_after_s;
        hit->delay_ms = f->delay_ms;
        f->injected++;
        if (f->remaining > 0 && --f->remaining == 0) {
            *link = f->next;
            sim_fault_free(f);
        }
        return 1;
    }
    return 0;
}

json_t *sim_fault_json(const sim_fault *f)
{
    return json_pack("{s:I, s:s, s:f, s:I, s:i, s:i, s:s?, s:I}", "id", (json_int_t)f->id, "mode",
                     sim_fault_mode_name(f->mode), "rate", f->rate, "count",
                     (json_int_t)f->remaining, "retry_after_s", (int)f->retry_after_s, "delay_ms",
                     (int)f->delay_ms, "path_contains", f->path_contains, "injected",
                     (json_int_t)f->injected);
}
