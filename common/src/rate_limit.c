#include "casb/rate_limit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 256

typedef struct bucket {
    struct bucket *next;
    double tokens;
    int64_t updated_ms;
    char key[];
} bucket;

struct casb_rate_limiter {
    pthread_mutex_t lock;
    double per_ms;
    double burst;
    bucket *slots[SLOTS];
};

casb_rate_limiter *casb_rate_limiter_new(double per_second, int burst)
{
    casb_rate_limiter *rl;

    if (!(per_second > 0) || burst < 1)
        return NULL;
    rl = calloc(1, sizeof(*rl));
    if (!rl)
        return NULL;
    pthread_mutex_init(&rl->lock, NULL);
    rl->per_ms = per_second / 1000.0;
    rl->burst = burst;
    return rl;
}

void casb_rate_limiter_free(casb_rate_limiter *rl)
{
    if (!rl)
        return;
    for (int i = 0; i < SLOTS; i++) {
        for (bucket *b = rl->slots[i], *next; b; b = next) {
            next = b->next;
            free(b);
        }
    }
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

static unsigned slot_of(const char *key)
{
    unsigned h = 2166136261u; /* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % SLOTS;
}

/* The key's bucket, made full on first sight. NULL when out of memory. */
static bucket *bucket_of(casb_rate_limiter *rl, const char *key, int64_t now_ms)
{
    unsigned s = slot_of(key);
    size_t n = strlen(key);
    bucket *b;

    for (b = rl->slots[s]; b; b = b->next) {
        if (strcmp(b->key, key) == 0)
            return b;
    }
    b = malloc(sizeof(*b) + n + 1);
    if (!b)
        return NULL;
    memcpy(b->key, key, n + 1);
    b->tokens = rl->burst;
    b->updated_ms = now_ms;
    b->next = rl->slots[s];
    rl->slots[s] = b;
    return b;
}

int casb_rate_limiter_take(casb_rate_limiter *rl, const char *key, int64_t now_ms,
                           int *retry_after_s)
{
    bucket *b;
    int allowed = 1;

    *retry_after_s = 0;
    if (!rl || !key)
        return 1;
    pthread_mutex_lock(&rl->lock);
    b = bucket_of(rl, key, now_ms);
    if (b) {
        if (now_ms > b->updated_ms) {
            b->tokens = fmin(rl->burst, b->tokens + (double)(now_ms - b->updated_ms) * rl->per_ms);
            b->updated_ms = now_ms;
        }
        if (b->tokens >= 1.0) {
            b->tokens -= 1.0;
        } else {
            allowed = 0;
            *retry_after_s = (int)ceil((1.0 - b->tokens) / rl->per_ms / 1000.0);
            if (*retry_after_s < 1)
                *retry_after_s = 1;
        }
    }
    pthread_mutex_unlock(&rl->lock);
    return allowed;
}
