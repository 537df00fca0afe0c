#ifndef CASB_TIMEUTIL_H
#define CASB_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

int64_t casb_now_ms(void);       /* wall clock, ms since the epoch */
int64_t casb_monotonic_ms(void); /* for durations and deadlines */
void casb_sleep_ms(int64_t ms);

/* "2026-11-28T20:25:55Z" in UTC. buf needs 32 bytes. */
void casb_time_rfc3339(char *buf, size_t buflen, time_t t);
/* The same with milliseconds, from ms since the epoch: "2026-11-28T20:25:55.123Z". */
void casb_time_rfc3339_ms(char *buf, size_t buflen, int64_t epoch_ms);
/* Parses RFC 3339 / ISO 8601 UTC forms GitHub and PostgreSQL emit ("2014-12-10T15:53:42Z",
 * "2017-05-16T08:47:09.000-07:00", "2026-11-28 20:25:55.123+00"). Returns 0 and *out, or -1. */
int casb_time_parse(const char *s, time_t *out);

#endif
