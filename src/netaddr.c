/* netaddr.c - IP addresses and CIDR blocks as plain values.
 *
 * Text goes through inet_pton/inet_ntop only; what this file adds is the policy around
 * them: one normal form per address (IPv4-mapped IPv6 becomes IPv4, unused bytes are
 * zero so values compare with memcmp), strict prefixes, and reverse names. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* Postfix writes IPv6 address literals as "IPv6:addr" (RFC 5321 4.1.3). */
#define IPV6_TAG "ipv6:"
/* Longest prefix length we read: "128" has three digits; anything longer is junk even
 * when it is a zero-padded small number, so a typo cannot hide behind leading zeros. */
#define PREFIX_DIGITS_MAX 3
/* RFC 3596 2.5: 32 nibble labels "x." then the suffix, plus the NUL. */
#define REVERSE6_SUFFIX "ip6.arpa"
#define REVERSE6_LEN (32 * 2 + sizeof REVERSE6_SUFFIX)

/* ::ffff:0:0/96 (RFC 4291 2.5.5.2); the IPv4 address fills the last 32 bits. */
#define V4MAPPED_BITS 96
static const uint8_t v4mapped_prefix[V4MAPPED_BITS / 8] = {0, 0, 0, 0, 0, 0,
                                                           0, 0, 0, 0, 0xff, 0xff};

static unsigned family_bits(int family)
{
    return family == AF_INET ? 32 : 128;
}

static size_t family_bytes(int family)
{
    return family == AF_INET ? 4 : 16;
}

/* Rewrites an IPv4-mapped IPv6 address in place as the IPv4 address it maps;
 * returns 1 if it did. */
static int unmap_v4(netaddr_t *a)
{
    if (a->family != AF_INET6 || memcmp(a->addr, v4mapped_prefix, sizeof v4mapped_prefix) != 0)
        return 0;
    memmove(a->addr, a->addr + sizeof v4mapped_prefix, 4);
    memset(a->addr + 4, 0, sizeof a->addr - 4);
    a->family = AF_INET;
    return 1;
}

/* Parses text as written: IPv4-mapped IPv6 stays IPv6 here. */
static int parse_raw(netaddr_t *a, const char *text)
{
    memset(a, 0, sizeof *a);
    if (strncasecmp(text, IPV6_TAG, strlen(IPV6_TAG)) == 0) {
        if (inet_pton(AF_INET6, text + strlen(IPV6_TAG), a->addr) == 1)
            a->family = AF_INET6;
    } else if (inet_pton(AF_INET, text, a->addr) == 1) {
        a->family = AF_INET;
    } else if (inet_pton(AF_INET6, text, a->addr) == 1) {
        a->family = AF_INET6;
    }
    if (a->family == 0) {
        memset(a, 0, sizeof *a);
        return -1;
    }
    return 0;
}

int netaddr_parse(netaddr_t *a, const char *text)
{
    if (parse_raw(a, text) != 0)
        return -1;
    unmap_v4(a);
    return 0;
}

/* Clears every bit of a beyond the first prefix bits. */
static void clear_host_bits(netaddr_t *a, unsigned prefix)
{
    size_t n = family_bytes(a->family);
    for (size_t i = 0; i < n; i++) {
        unsigned first = (unsigned)i * 8;
        if (prefix <= first)
            a->addr[i] = 0;
        else if (prefix < first + 8)
            a->addr[i] &= (uint8_t)(0xff << (8 - (prefix - first)));
    }
}

/* Reads a prefix length: 1 to PREFIX_DIGITS_MAX decimal digits, no sign, no leading
 * zero (except "0" itself), nothing after. -1 on anything else. */
static int parse_prefix(const char *s, unsigned *out)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > PREFIX_DIGITS_MAX || s[n] != '\0' || (s[0] == '0' && n > 1))
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    *out = v;
    return 0;
}

int netcidr_parse(netcidr_t *c, const char *text)
{
    char addr[NETADDR_STRLEN];
    const char *slash = strchr(text, '/');
    size_t addrlen = slash ? (size_t)(slash - text) : strlen(text);
    unsigned prefix;

    memset(c, 0, sizeof *c);
    if (addrlen >= sizeof addr)
        return -1;
    memcpy(addr, text, addrlen);
    addr[addrlen] = '\0';

    /* Unmapped only after the prefix is known: a mapped block shorter than the 96
     * mapping bits is an IPv6 block, not an IPv4 one. */
    netaddr_t a;
    if (parse_raw(&a, addr) != 0)
        return -1;

    if (slash) {
        if (parse_prefix(slash + 1, &prefix) != 0 || prefix > family_bits(a.family))
            goto bad;
    } else {
        prefix = family_bits(a.family);
    }

    netaddr_t net = a;
    clear_host_bits(&net, prefix);
    if (memcmp(net.addr, a.addr, sizeof a.addr) != 0)
        goto bad;

    if (prefix >= V4MAPPED_BITS && unmap_v4(&net))
        prefix -= V4MAPPED_BITS;
    c->net = net;
    c->prefix = prefix;
    return 0;

bad:
    memset(c, 0, sizeof *c);
    return -1;
}

int netcidr_match(const netcidr_t *c, const netaddr_t *a)
{
    if (c->net.family != a->family || c->prefix > family_bits(a->family))
        return 0;
    netaddr_t masked = *a;
    clear_host_bits(&masked, c->prefix);
    return memcmp(masked.addr, c->net.addr, family_bytes(a->family)) == 0;
}

/* glibc's inet_ntop formats IPv4 with sprintf; this runs for every policy request. */
static int netaddr_format4(const uint8_t *addr, char *buf, size_t len)
{
    char tmp[16];
    size_t o = 0;

    for (int i = 0; i < 4; i++) {
        unsigned v = addr[i];
        if (i)
            tmp[o++] = '.';
        if (v >= 100)
            tmp[o++] = (char)('0' + v / 100);
        if (v >= 10)
            tmp[o++] = (char)('0' + v / 10 % 10);
        tmp[o++] = (char)('0' + v % 10);
    }
    if (o >= len)
        return -1;
    memcpy(buf, tmp, o);
    buf[o] = '\0';
    return 0;
}

char *netaddr_format(const netaddr_t *a, char *buf, size_t len)
{
    if (len == 0)
        return buf;
    if (a->family == AF_INET) {
        if (netaddr_format4(a->addr, buf, len) < 0)
            buf[0] = '\0';
    } else if (a->family != AF_INET6 ||
               inet_ntop(a->family, a->addr, buf, (socklen_t)len) == NULL) {
        buf[0] = '\0';
    }
    return buf;
}

char *netcidr_format(const netcidr_t *c, char *buf, size_t len)
{
    char addr[NETADDR_STRLEN];

    if (len == 0)
        return buf;
    netaddr_format(&c->net, addr, sizeof addr);
    int n = snprintf(buf, len, "%s/%u", addr, c->prefix);
    if (addr[0] == '\0' || n < 0 || (size_t)n >= len)
        buf[0] = '\0';
    return buf;
}

void netaddr_network(netcidr_t *out, const netaddr_t *a, unsigned v4prefix, unsigned v6prefix)
{
    unsigned prefix = a->family == AF_INET ? v4prefix : v6prefix;
    if (prefix > family_bits(a->family))
        prefix = family_bits(a->family);
    memset(out, 0, sizeof *out);
    out->net = *a;
    clear_host_bits(&out->net, prefix);
    out->prefix = prefix;
}

char *netaddr_reverse_name(const netaddr_t *a, char *buf, size_t len)
{
    static const char hex[] = "0123456789abcdef";

    if (len == 0)
        return buf;
    buf[0] = '\0';
    if (a->family == AF_INET) {
        int n = snprintf(buf, len, "%u.%u.%u.%u.in-addr.arpa", a->addr[3], a->addr[2],
                         a->addr[1], a->addr[0]);
        if (n < 0 || (size_t)n >= len)
            buf[0] = '\0';
    } else if (a->family == AF_INET6 && len >= REVERSE6_LEN) {
        char *p = buf;
        for (int i = 15; i >= 0; i--) {
            *p++ = hex[a->addr[i] & 0x0f];
            *p++ = '.';
            *p++ = hex[a->addr[i] >> 4];
            *p++ = '.';
        }
        memcpy(p, REVERSE6_SUFFIX, sizeof REVERSE6_SUFFIX);
    }
    return buf;
}

int netaddr_equal(const netaddr_t *a, const netaddr_t *b)
{
    return a->family == b->family &&
           (a->family == AF_INET || a->family == AF_INET6) &&
           memcmp(a->addr, b->addr, family_bytes(a->family)) == 0;
}
