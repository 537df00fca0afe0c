#ifndef CASB_NETGUARD_H
#define CASB_NETGUARD_H

#include <stddef.h>
#include <sys/socket.h>

/* An egress guard for URLs that users configure (webhooks, later provider endpoints): it
 * refuses destinations that resolve to loopback, private, link-local, cloud metadata and
 * other non-public addresses unless an operator listed their network. To resist DNS
 * rebinding, the check resolves the host once and hands back a pin (a CURLOPT_RESOLVE entry,
 * see casb_http_client_pin) so that the request connects to the address that was checked,
 * not to whatever a second lookup returns. Messages do not name the setting that holds the
 * allowed networks: the caller adds its name. */

typedef struct casb_netguard casb_netguard;

/* allowed_networks_csv: comma-separated CIDRs ("127.0.0.0/8", "10.1.2.3" meaning /32,
 * "::1/128", "fd00::/8"), at most 64; blanks around entries and empty entries are ignored;
 * NULL or "": no non-public network is allowed. An entry with bits set beyond its prefix
 * ("10.1.2.3/8") is refused as a likely typo. IPv4-mapped IPv6 networks
 * ("::ffff:10.0.0.0/104") count as their IPv4 network. On success *out belongs to the caller
 * (free with casb_netguard_free). Returns 0, or -1 with err naming the bad entry. */
int casb_netguard_new(casb_netguard **out, const char *allowed_networks_csv, char *err,
                      size_t errlen);
void casb_netguard_free(casb_netguard *g);

/* NULL for a public unicast address; otherwise a short class name: "loopback", "private",
 * "link-local", "metadata", "carrier-grade NAT", "unspecified", "multicast" or "reserved"
 * (IPv4 240/4, documentation and benchmarking ranges, IPv6 outside 2000::/3). IPv6 forms
 * that carry an IPv4 address (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64
 * 64:ff9b::/96, 6to4 2002::/16) are classified by that IPv4 address. A family other than
 * AF_INET and AF_INET6 is "reserved". The string is static. */
const char *casb_netguard_address_class(const struct sockaddr *sa);

/* 1 when sa may be connected to (public, or inside an allowed network); 0 with why set
 * ("127.0.0.1, a loopback address, is not in an allowed network") when not. */
int casb_netguard_addr_allowed(const casb_netguard *g, const struct sockaddr *sa, char *why,
                               size_t whylen);

/* Checks an http or https URL (no userinfo, no fragment, a host, a valid port; IPv6 hosts in
 * brackets) and resolves its host (getaddrinfo, AF_UNSPEC, SOCK_STREAM). Every resolved
 * address must be allowed, so that no retry or address fallback reaches a refused one.
 * Returns 1 with pin set to "host:port:address" for the first address (an IPv6 address in
 * brackets: "host:443:[2001:db8::1]"; the port defaults to 80 or 443 by scheme); 0 with err
 * set when an address is refused; -1 with err when the URL is not acceptable or the host
 * does not resolve ("cannot resolve host \"x\": <reason>"). */
int casb_netguard_check_url(const casb_netguard *g, const char *url, char *pin, size_t pinlen,
                            char *err, size_t errlen);

#endif
