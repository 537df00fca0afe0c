#ifndef SW_JOB_H
#define SW_JOB_H

#include <stddef.h>

/* A validated casb.scan.job/v1 message. The strings are copies (fixed buffers), so the job
 * outlives the Kafka message it came from. */
typedef struct {
    char job_id[37];
    char scan_id[37];
    char account_id[37];
    char integration_id[37];
    char provider[64];
    char reason[16]; /* scheduled | manual | first | resume */
} sw_job;

/* Parses and validates one job message. Returns 0, or CASB_EINVALID with reason set (the
 * text goes into the dead-letter header, so it never quotes field values). */
int sw_job_parse(sw_job *out, const char *buf, size_t len, char *reason, size_t reasonlen);

#endif
