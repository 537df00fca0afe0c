#ifndef CASB_DNS_H
#define CASB_DNS_H

#include <jansson.h>
#include <stddef.h>

/* TXT lookups for the mail-authentication checks (SPF, DMARC), through libresolv.
 *
 * resolver is "ip:port" (IPv4; ":port" may be left out for 53), or NULL / "" for the system
 * resolver (/etc/resolv.conf). name is queried as given (no search list). timeout_ms bounds
 * each try (rounded up to whole seconds, libresolv's unit; two tries).
 *
 * Returns 0 with *out a new JSON array of strings, one per TXT record, each the
 * concatenation of the record's character-strings (bytes outside printable ASCII become
 * '?'); [] when the name does not exist (NXDOMAIN) or has no TXT record (NODATA).
 * CASB_EUNAVAILABLE with err for a timeout, SERVFAIL, REFUSED or an unparsable answer;
 * CASB_EINVALID for a bad resolver address or name. Thread-safe (a resolver state per
 * call). */
int casb_dns_txt(const char *resolver, const char *name, int timeout_ms, json_t **out,
                 char *err, size_t errlen);

/* The reading half of casb_dns_txt: the TXT strings of one DNS answer message (as
 * res_nquery returns it; bytes beyond the answer buffer casb_dns_txt uses are ignored)
 * for name, which only appears in messages. Returns 0 with *out a new array as above, or
 * CASB_EUNAVAILABLE with err for an unparsable answer or a malformed TXT record. */
int casb_dns_txt_parse(const unsigned char *answer, size_t len, const char *name,
                       json_t **out, char *err, size_t errlen);

#endif
