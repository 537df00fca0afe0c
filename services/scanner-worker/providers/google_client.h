#ifndef CASB_GOOGLE_CLIENT_H
#define CASB_GOOGLE_CLIENT_H

/* The inside of casb_google_client, shared by google_auth.c (the key and the token cache),
 * google_api.c (requests, quota backoff, pacing) and google_collect.c (the per-thread HTTP
 * clients and the lock that serializes the sink). Tests include it to drive the clock. */

#include <pthread.h>
#include <stdatomic.h>

#include "google_internal.h"

/* Requests per second allowed by default across every thread of a scan. The Directory API
 * allows 2,400 queries per minute per user and project (40/s), and every tokens.list goes
 * through the one admin; Drive allows more per user, but a scan that stays under the
 * smallest quota never meets a 403 in normal operation. config.max_requests_per_second
 * raises it (a tenant whose project has more quota, the simulator). */
#define CASB_GOOGLE_DEFAULT_RPS 40

typedef struct google_token google_token;

struct casb_google_client {
    casb_google_key key;
    char *api_base;             /* without a trailing slash */
    char *admin;                /* config.admin_email */
    char customer[128];         /* config.customer_id or "my_customer" */
    volatile int *cancel;       /* borrowed, may be NULL */
    const casb_http_client_opts *http_opts; /* borrowed, may be NULL */
    atomic_long requests;
    atomic_int stopped;         /* the lease was lost during one of our waits */

    /* The token cache: one entry per (subject, scope). */
    pthread_mutex_t tok_mu;
    pthread_cond_t tok_cv;
    google_token *tokens;
    long token_exchanges;       /* for tests */

    /* The pacer: a token bucket as a theoretical arrival time (GCRA). */
    pthread_mutex_t pace_mu;
    long long pace_interval_us; /* 0: unpaced */
    long long pace_burst;
    long long pace_tat_us;

    /* Serializes the eval, the sink and http_opts->wait_check (which renews the scan's
     * lease as the sink's heartbeat does; neither is thread-safe). */
    pthread_mutex_t sink_mu;

    /* The clock, epoch seconds; tests replace it. */
    long long (*now_s)(void);
};

/* A valid access token for (subject, scope) into buf, exchanged when there is none or it
 * expires within CASB_GOOGLE_TOKEN_REFRESH_S. Callers for the same key wait for one
 * exchange in flight. Returns 0, CASB_EAUTH (refused; err says what to fix),
 * CASB_EUNAVAILABLE, or CASB_ERROR (cancelled, malformed answer). */
int casb_google_token(casb_google_client *c, casb_http_client *http, const char *subject,
                      const char *scope, char *buf, size_t buflen, char *err, size_t errlen);
/* Forgets token (a 401 answered it) so that the next call exchanges a new one. */
void casb_google_token_invalidate(casb_google_client *c, const char *subject,
                                  const char *scope, const char *token);
/* Drops every cached token of subject (a user whose work is done), so the cache does not
 * grow with the tenant. */
void casb_google_token_forget(casb_google_client *c, const char *subject);

/* Waits ms in slices of at most a second, calling http_opts->wait_check (under sink_mu)
 * about once a second. Returns 0, or -1 when the scan was cancelled or its lease lost. */
int casb_google_sleep_ms(casb_google_client *c, long long ms);
/* 1 when the scan must stop (cancelled, lease lost). */
int casb_google_cancelled(const casb_google_client *c);
/* The wait_check for HTTP clients the provider makes itself (ud: the client): the caller's
 * wait_check under sink_mu. */
int casb_google_locked_wait_check(void *ud);

#endif
