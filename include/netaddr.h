/* netaddr.h - IP addresses and CIDR blocks as plain values.
 *
 * Owns parsing and formatting of IPv4/IPv6 addresses and prefixes, prefix matching
 * (an IPv4-mapped IPv6 address is treated as the IPv4 address it maps), and the
 * "network of an address" used for reputation (/24, /64). No allocation. */
#ifndef NETADDR_H
#define NETADDR_H

#include <stdint.h>
#include <stddef.h>

/* Longest textual form, with NUL (INET6_ADDRSTRLEN plus "/128"). */
#define NETADDR_STRLEN 52

typedef struct netaddr {
    int family;            /* AF_INET or AF_INET6 */
    uint8_t addr[16];      /* network order; IPv4 uses the first 4 bytes */
} netaddr_t;

typedef struct netcidr {
    netaddr_t net;         /* host bits are cleared */
    unsigned prefix;       /* 0..32 or 0..128 */
} netcidr_t;

/* 0 on success, -1 if text is not exactly one address. IPv4-mapped IPv6 text
 * ("::ffff:192.0.2.1") is stored as AF_INET; an optional "ipv6:" prefix (as Postfix
 * sends it in some attributes) is accepted. */
int netaddr_parse(netaddr_t *a, const char *text);
/* "192.0.2.0/24", "2001:db8::/32", or a bare address (full-length prefix).
 * Host bits set beyond the prefix are an error (-1) so typos are caught. */
int netcidr_parse(netcidr_t *c, const char *text);
int netcidr_match(const netcidr_t *c, const netaddr_t *a);
/* Writes the canonical text (inet_ntop); returns buf. */
char *netaddr_format(const netaddr_t *a, char *buf, size_t len);
char *netcidr_format(const netcidr_t *c, char *buf, size_t len);
/* The /v4prefix or /v6prefix block that contains a. */
void netaddr_network(netcidr_t *out, const netaddr_t *a, unsigned v4prefix, unsigned v6prefix);
/* Reverse-DNS name: "1.2.0.192.in-addr.arpa" / nibble form under ip6.arpa. */
char *netaddr_reverse_name(const netaddr_t *a, char *buf, size_t len);
int netaddr_equal(const netaddr_t *a, const netaddr_t *b);

#endif
