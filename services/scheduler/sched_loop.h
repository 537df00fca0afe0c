#ifndef SCHED_LOOP_H
#define SCHED_LOOP_H

#include <stdint.h>

#include "sched_app.h"

/* The scheduler's single loop: claim due integrations every tick (back to back while full
 * batches come out), relay the outbox every poll interval (at once after a claim queued
 * something, and back to back while a full batch comes out), sweep once a minute. Returns
 * once the process is asked to stop (casb_service_stopping); a step in progress finishes
 * first. */
void sched_loop_run(sched_app *app);

/* Deadlines of the loop's steps, in monotonic ms. */
typedef struct {
    int64_t claim;
    int64_t relay;
    int64_t backlog;
    int64_t sweep;
} sched_deadlines;

/* How long the loop may sleep at now before the earliest deadline: 0 when one is due,
 * never more than max_ms (so that a stop request is seen promptly). */
int64_t sched_loop_sleep_ms(const sched_deadlines *d, int64_t now, int64_t max_ms);

/* When the claim runs next after a round that claimed `claimed` integrations with at most
 * batch a round (claimed < 0: the round failed): at once after a full batch, since more may
 * be due, else a tick after now. */
int64_t sched_loop_next_claim(int64_t now, int claimed, long batch, long tick_ms);

/* When the relay runs next after a round that published sent rows of at most batch
 * (sent < 0: the round failed): at once while the outbox drains in full batches, after
 * poll_ms otherwise, and after a backoff (at least 1 s) when it failed. */
int64_t sched_loop_next_relay(int64_t now, int sent, long batch, long poll_ms);

#endif
