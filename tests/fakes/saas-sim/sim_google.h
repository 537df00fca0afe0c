#ifndef CASB_SAAS_SIM_GOOGLE_H
#define CASB_SAAS_SIM_GOOGLE_H

/* Google Workspace in the simulator, shared by its files:
 *  - sim_google_tenant.c  the tenant store (by customer_id), validation, and the model that
 *                         hides stored versus generated users and files;
 *  - sim_google.c         POST /token (JWT bearer grant) and the Directory, Drive, Calendar
 *                         and Gmail endpoints in Google's shapes;
 *  - sim_google_admin.c   /_sim/google/{customer_id}: put/patch/delete, faults, stats;
 *  - sim_fields.c         Google's partial-response `fields` syntax;
 *  - sim_dns.c            the UDP TXT responder over the tenants' "dns" maps.
 * A tenant is a sim_org (login = customer_id) so that the fault list, the stats and the
 * rate budget of sim_faults.c / sim_stats.c serve it as they serve GitHub orgs. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "sim.h"

typedef struct sim_gtenant {
    sim_org o;                  /* o.login = customer_id; o.doc the tenant document */
    /* Guarded by sim.mu. */
    long long token_issues;
    /* Derived from o.doc when it is stored (guarded by sim.lock like the doc). */
    unsigned char secret[32];   /* signs access tokens and page tokens of this tenant */
    size_t nexplicit;           /* users stored in the document */
    long long ngenerated;       /* users computed on the fly ("generate") */
    long long files_per_user;   /* of a generated user */
    uint64_t gen_seed;
    char primary[128];          /* the primary domain: generated users' addresses */
} sim_gtenant;

/* ---- sim_google_tenant.c; callers hold sim.lock (read) unless said otherwise ---- */
int sim_gtenant_validate(const json_t *doc, const char *customer_id, char *err, size_t errlen);
/* Creates or replaces (counters and faults kept). Steals doc. Takes sim.lock itself. */
int sim_gtenant_put(sim *s, const char *customer_id, json_t *doc, int *created, char *err,
                    size_t errlen);
int sim_gtenant_patch(sim *s, const char *customer_id, const json_t *patch, json_t **result,
                      char *err, size_t errlen);
int sim_gtenant_delete(sim *s, const char *customer_id);
sim_gtenant *sim_gtenant_find(sim *s, const char *customer_id);
sim_gtenant *sim_gtenant_by_client_email(sim *s, const char *client_email);
long long sim_gtenant_nusers(const sim_gtenant *t);
/* The user at index (stored first, then generated), in the tenant document's shape (with
 * tokens, delegates, calendar_acl); new reference or NULL. */
json_t *sim_gtenant_user(const sim_gtenant *t, long long index);
/* Index of the user by primaryEmail (any case) or id; -1 when none. */
long long sim_gtenant_user_find(const sim_gtenant *t, const char *key);
long long sim_gtenant_nfiles(const sim_gtenant *t, long long user);
/* File j of a user (tenant shape, permissions without the owner's); new reference. */
json_t *sim_gtenant_file(const sim_gtenant *t, long long user, long long j);
/* A user's file by id: 0 with *user and *j, or -1. */
int sim_gtenant_file_find(const sim_gtenant *t, const char *id, long long *user, long long *j);
/* TXT records of name over every tenant: 0 with *records (new array of strings), 1 when the
 * name is set to "SERVFAIL", -1 when no tenant knows it. Takes sim.lock itself. */
int sim_google_dns_lookup(sim *s, const char *name, json_t **records);
/* "now-40d" style times in Google's format (2024-01-02T03:04:05.000Z); others as given. */
const char *sim_google_time(const char *in, char *buf, size_t len);

/* ---- sim_fields.c ---- */
typedef struct sim_fields sim_fields;
/* Parses a fields mask ("nextPageToken,files(id,name,permissions(id,type))", "a/b"). NULL
 * with err on a syntax error. */
sim_fields *sim_fields_parse(const char *spec, char *err, size_t errlen);
/* The members of v that the mask selects (arrays apply it to each element); new reference. */
json_t *sim_fields_apply(const sim_fields *f, const json_t *v);
void sim_fields_free(sim_fields *f);

#endif
