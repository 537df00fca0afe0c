#include "casb/timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int64_t casb_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t casb_monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps the whole duration: a signal interrupts nanosleep, and we go back to sleep for
 * what remains, so callers that need to react to a stop flag sleep in short slices. */
void casb_sleep_ms(int64_t ms)
{
    struct timespec req, rem;

    if (ms <= 0)
        return;
    req.tv_sec = (time_t)(ms / 1000);
    req.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&req, &rem) != 0 && errno == EINTR)
        req = rem;
}

/* The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
 * civil_from_days, the inverse of days_from_civil below). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static char *digits(char *p, int64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + n;
}

/* Without gmtime_r and snprintf: the API writes three of these per instance of a page. */
static void format_utc(char *buf, size_t buflen, time_t t, int ms)
{
    int64_t days = (int64_t)t / 86400, secs = (int64_t)t % 86400, year;
    char out[32], *p = out;
    int mon, day;
    size_t n;

    if (!buf || buflen == 0)
        return;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    civil_from_days(days, &year, &mon, &day);
    if (year < 0 || year > 9999) {
        buf[0] = '\0';
        return;
    }
    p = digits(p, year, 4);
    *p++ = '-';
    p = digits(p, mon, 2);
    *p++ = '-';
    p = digits(p, day, 2);
    *p++ = 'T';
    p = digits(p, secs / 3600, 2);
    *p++ = ':';
    p = digits(p, secs / 60 % 60, 2);
    *p++ = ':';
    p = digits(p, secs % 60, 2);
    if (ms >= 0) {
        *p++ = '.';
        p = digits(p, ms, 3);
    }
    *p++ = 'Z';
    n = (size_t)(p - out);
    if (n >= buflen) /* truncated, like snprintf */
        n = buflen - 1;
    memcpy(buf, out, n);
    buf[n] = '\0';
}

void casb_time_rfc3339(char *buf, size_t buflen, time_t t)
{
    format_utc(buf, buflen, t, -1);
}

void casb_time_rfc3339_ms(char *buf, size_t buflen, int64_t epoch_ms)
{
    int64_t secs = epoch_ms / 1000;
    int64_t ms = epoch_ms % 1000;

    /* Floor division, so that instants before 1970 keep a positive millisecond part. */
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    format_utc(buf, buflen, (time_t)secs, (int)ms);
}

/* Reads exactly n decimal digits. Returns the value or -1. */
static int read_digits(const char **p, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (m == 2 && is_leap(y))
        return 29;
    return days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil),
 * computed without the process time zone, unlike mktime. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Accepts YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|+HH|+HH:MM|+HHMM|-...). A zone is
 * required: a timestamp without one would be local time, which is never what we mean. */
int casb_time_parse(const char *s, time_t *out)
{
    const char *p = s;
    int year, mon, day, hour, min, sec;
    int64_t offset_s = 0;

    if (!s || !out)
        return -1;
    year = read_digits(&p, 4);
    if (year < 0 || *p++ != '-')
        return -1;
    mon = read_digits(&p, 2);
    if (mon < 1 || mon > 12 || *p++ != '-')
        return -1;
    day = read_digits(&p, 2);
    if (day < 1 || day > days_in_month(year, mon))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    hour = read_digits(&p, 2);
    if (hour < 0 || hour > 23 || *p++ != ':')
        return -1;
    min = read_digits(&p, 2);
    if (min < 0 || min > 59 || *p++ != ':')
        return -1;
    sec = read_digits(&p, 2);
    if (sec < 0 || sec > 60) /* 60: a leap second, which rolls over like timegm does */
        return -1;
    if (*p == '.' || *p == ',') {
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int oh, om = 0;

        p++;
        oh = read_digits(&p, 2);
        if (oh < 0 || oh > 23)
            return -1;
        if (*p == ':') {
            p++;
            om = read_digits(&p, 2);
            if (om < 0)
                return -1;
        } else if (*p >= '0' && *p <= '9') {
            om = read_digits(&p, 2);
            if (om < 0)
                return -1;
        }
        if (om > 59)
            return -1;
        offset_s = sign * (int64_t)(oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;

    int64_t t = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec;
    *out = (time_t)(t - offset_s);
    return 0;
}
