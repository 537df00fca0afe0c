#ifndef FA_WEBHOOK_H
#define FA_WEBHOOK_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "fa_catalogue.h"

/* Webhook destinations: what a POST or PATCH /v1/webhooks body may say, checked without
 * network or database; how a stored one is shown (never its secrets); and how a delivery is
 * signed. */

#define FA_WEBHOOK_NAME_MAX_CHARS 200
#define FA_WEBHOOK_URL_MAX 2048
#define FA_WEBHOOK_HEADERS_MAX 20
#define FA_WEBHOOK_SECRET_MIN 16  /* bytes of an HMAC signing secret */
#define FA_WEBHOOK_SECRET_MAX 256

/* Which members a body carried (a PATCH changes only those). */
enum {
    FA_WEBHOOK_NAME = 1 << 0,
    FA_WEBHOOK_URL = 1 << 1,
    FA_WEBHOOK_AUTH = 1 << 2,
    FA_WEBHOOK_FINDING_TYPES = 1 << 3,
    FA_WEBHOOK_SEVERITIES = 1 << 4,
    FA_WEBHOOK_INTEGRATIONS = 1 << 5,
    FA_WEBHOOK_ENABLED = 1 << 6,
};

/* A checked body. Strings borrow from the body, which the caller may hand over in body;
 * the JSON members are new references (all released by fa_webhook_input_clear). */
typedef struct {
    json_t *body;             /* optional: released with the rest */
    unsigned present;         /* FA_WEBHOOK_* of the members given */
    const char *name;
    const char *url;
    const char *auth_type;    /* none | basic | bearer | headers | hmac_sha256 */
    json_t *auth_public;      /* shown back: {"username"} or {"header_names"}; {} otherwise */
    json_t *auth_secret;      /* sealed: {"username", "password"}, {"token"}, {"headers"},
                               * {"secret"};
                               * NULL for none. Wiped by fa_webhook_input_clear. */
    int secret_generated;     /* hmac_sha256 without a secret: one was made, to show once */
    json_t *finding_types;    /* arrays of strings ([] = all) */
    json_t *severities;
    json_t *integration_ids;
    int enabled;
} fa_webhook_input;

/* Checks a POST (partial 0: name, url and auth required) or PATCH (partial 1: at least one
 * member) body: name 1..200 characters without control characters; url http(s) without
 * userinfo or fragment, at most 2048 bytes; auth {"type", ...} with the type's members
 * (basic: username without ':' and password; bearer: token; headers: an object of 1..20
 * header names (RFC 9110 tokens, not ones the delivery sets itself) to values without
 * CR/LF; hmac_sha256: an optional secret of 16..256 bytes, made when absent); finding
 * types of the catalogue; severities; integration ids as UUIDs; enabled a boolean; no
 * other member. Returns 0, or -1 with field naming the member and err the detail. */
int fa_webhook_parse(fa_webhook_input *in, const json_t *body, int partial,
                     const fa_catalogue *cat, char *field, size_t fieldlen, char *err,
                     size_t errlen);
void fa_webhook_input_clear(fa_webhook_input *in);

/* The API view of a webhooks row (columns of fa_webhook_store's SELECT), with its delivery
 * counts. Secrets are not in the row's columns the view reads, and not in the view. */
json_t *fa_webhook_view(const PGresult *res, int row);
/* The API view of a webhook_deliveries row. */
json_t *fa_webhook_delivery_view(const PGresult *res, int row);

/* The X-CASB-Signature value of a delivery: "t=<timestamp>,v1=<hex HMAC-SHA256 over
 * "<timestamp>.<body>" keyed with secret>", in out (at least FA_WEBHOOK_SIGNATURE_LEN). */
#define FA_WEBHOOK_SIGNATURE_LEN 96
int fa_webhook_sign(const char *secret, long long timestamp, const char *body, size_t len,
                    char *out, size_t outlen);

#endif
