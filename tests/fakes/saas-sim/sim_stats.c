/* Per-org request counters and GitHub's primary rate limit (one budget per org, refilled
 * every window). The caller holds sim.mu for every function here. */
#include <time.h>

#include "casb/json.h"
#include "sim.h"

#define DEFAULT_LIMIT 5000
#define DEFAULT_WINDOW_S 3600

void sim_stats_count(sim_org *o, const char *endpoint)
{
    json_t *n = json_object_get(o->by_endpoint, endpoint);

    o->requests++;
    if (n)
        json_integer_set(n, json_integer_value(n) + 1);
    else
        json_object_set_new(o->by_endpoint, endpoint, json_integer(1));
}

void sim_stats_reset(sim_org *o)
{
    o->requests = 0;
    o->faults_injected = 0;
    o->not_modified = 0;
    json_object_clear(o->by_endpoint);
}

json_t *sim_stats_json(const sim_org *o)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:O}", "requests", (json_int_t)o->requests,
                     "faults_injected", (json_int_t)o->faults_injected, "not_modified",
                     (json_int_t)o->not_modified, "rate_limit_used", (json_int_t)o->rl_used,
                     "by_endpoint", o->by_endpoint);
}

void sim_rate_reset(sim_org *o)
{
    o->rl_used = 0;
    o->rl_reset_s = 0;
}

int sim_rate_take(sim_org *o, int consume, sim_rate *out)
{
    json_t *rl = json_object_get(o->doc, "rate_limit");
    long long limit = casb_json_int(rl, "limit", DEFAULT_LIMIT);
    long long window_s = casb_json_int(rl, "window_s", DEFAULT_WINDOW_S);
    long long now = (long long)time(NULL);
    int allowed;

    if (limit < 0)
        limit = 0;
    if (o->rl_reset_s == 0 || now >= o->rl_reset_s) {
        o->rl_used = 0;
        o->rl_reset_s = now + window_s;
    }
    allowed = o->rl_used < limit;
    if (allowed && consume)
        o->rl_used++;
    out->limit = limit;
    out->used = o->rl_used;
    out->remaining = limit > o->rl_used ? limit - o->rl_used : 0;
    out->reset_s = o->rl_reset_s;
    return allowed;
}

void sim_rate_refund(sim_org *o, sim_rate *rate)
{
    if (o->rl_used > 0)
        o->rl_used--;
    rate->used = o->rl_used;
    rate->remaining = rate->limit > o->rl_used ? rate->limit - o->rl_used : 0;
}
