// unit-deps: netaddr
#include "netaddr.h"
#include "unit.h"

#include <sys/socket.h>

/* The canonical text of text parsed as an address, or "ERR". */
static const char *addr_round_trip(const char *text, char *buf, size_t len)
{
    netaddr_t a;
    if (netaddr_parse(&a, text) != 0)
        return "ERR";
    return netaddr_format(&a, buf, len);
}

static const char *cidr_round_trip(const char *text, char *buf, size_t len)
{
    netcidr_t c;
    if (netcidr_parse(&c, text) != 0)
        return "ERR";
    return netcidr_format(&c, buf, len);
}

static int cidr_matches(const char *cidr, const char *addr)
{
    netcidr_t c;
    netaddr_t a;
    if (netcidr_parse(&c, cidr) != 0 || netaddr_parse(&a, addr) != 0)
        return -1;
    return netcidr_match(&c, &a);
}

static void test_netaddr_parse_v4(void)
{
    netaddr_t a;
    char buf[NETADDR_STRLEN];

    CHECK_INT(netaddr_parse(&a, "192.0.2.1"), 0);
    CHECK_INT(a.family, AF_INET);
    CHECK_INT(a.addr[0], 192);
    CHECK_INT(a.addr[1], 0);
    CHECK_INT(a.addr[2], 2);
    CHECK_INT(a.addr[3], 1);
    for (int i = 4; i < 16; i++)
        CHECK_INT(a.addr[i], 0);
    CHECK_STR(addr_round_trip("0.0.0.0", buf, sizeof buf), "0.0.0.0");
    CHECK_STR(addr_round_trip("255.255.255.255", buf, sizeof buf), "255.255.255.255");
}

static void test_netaddr_parse_v4_junk(void)
{
    static const char *const bad[] = {
        "", "192.0.2", "192.0.2.256", "192.0.2.1 ", " 192.0.2.1", "192.0.2.01",
        "192.0.2.1/32", "1.2.3.4.5", "192.0.2.", "-1.0.0.0", "0x7f.0.0.1", "abc",
        "192.0.2.1\n", "ipv6:192.0.2.1",
    };
    char buf[NETADDR_STRLEN];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_STR(addr_round_trip(bad[i], buf, sizeof buf), "ERR");
    }
}

static void test_netaddr_parse_v6(void)
{
    netaddr_t a;
    char buf[NETADDR_STRLEN];

    CHECK_INT(netaddr_parse(&a, "2001:DB8::1"), 0);
    CHECK_INT(a.family, AF_INET6);
    CHECK_INT(a.addr[0], 0x20);
    CHECK_INT(a.addr[1], 0x01);
    CHECK_INT(a.addr[2], 0x0d);
    CHECK_INT(a.addr[3], 0xb8);
    CHECK_INT(a.addr[15], 1);
    CHECK_STR(netaddr_format(&a, buf, sizeof buf), "2001:db8::1");
    CHECK_STR(addr_round_trip("::", buf, sizeof buf), "::");
    CHECK_STR(addr_round_trip("::1", buf, sizeof buf), "::1");
    CHECK_STR(addr_round_trip("2001:0db8:0000:0000:0000:0000:0000:0001", buf, sizeof buf),
              "2001:db8::1");
    CHECK_STR(addr_round_trip("ipv6:2001:db8::1", buf, sizeof buf), "2001:db8::1");
    CHECK_STR(addr_round_trip("IPv6:2001:db8::2", buf, sizeof buf), "2001:db8::2");
    /* IPv4-compatible (deprecated, RFC 4291 2.5.5.1) is not mapped: it stays IPv6. */
    CHECK_STR(addr_round_trip("::192.0.2.1", buf, sizeof buf), "::192.0.2.1");
}

static void test_netaddr_parse_v6_junk(void)
{
    static const char *const bad[] = {
        "2001:db8:::1", "2001:db8::g", "fe80::1%lo", "2001:db8::1/128", "[::1]",
        "ipv6:", "ipv6", "ipv6::::1", "1:2:3:4:5:6:7:8:9", ":::", "2001:db8::1 ",
    };
    char buf[NETADDR_STRLEN];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_STR(addr_round_trip(bad[i], buf, sizeof buf), "ERR");
    }
}

static void test_netaddr_parse_mapped_is_v4(void)
{
    netaddr_t a, b;
    char buf[NETADDR_STRLEN];

    CHECK_INT(netaddr_parse(&a, "::ffff:192.0.2.1"), 0);
    CHECK_INT(netaddr_parse(&b, "192.0.2.1"), 0);
    CHECK_INT(a.family, AF_INET);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    CHECK_STR(netaddr_format(&a, buf, sizeof buf), "192.0.2.1");
    CHECK_STR(addr_round_trip("::FFFF:c000:0201", buf, sizeof buf), "192.0.2.1");
    CHECK_STR(addr_round_trip("ipv6:::ffff:192.0.2.9", buf, sizeof buf), "192.0.2.9");
    /* One bit away from the mapped prefix is an ordinary IPv6 address. */
    CHECK_STR(addr_round_trip("::fffe:192.0.2.1", buf, sizeof buf), "::fffe:c000:201");
    CHECK_STR(addr_round_trip("0:0:0:0:1:ffff:c000:201", buf, sizeof buf), "::1:ffff:c000:201");
}

static void test_netaddr_parse_failure_clears(void)
{
    netaddr_t a, zero;

    memset(&zero, 0, sizeof zero);
    memset(&a, 0xaa, sizeof a);
    CHECK_INT(netaddr_parse(&a, "not an address"), -1);
    CHECK(memcmp(&a, &zero, sizeof a) == 0);
}

static void test_netaddr_format_buffer_limits(void)
{
    netaddr_t a;
    char buf[NETADDR_STRLEN];

    CHECK_INT(netaddr_parse(&a, "192.0.2.1"), 0);
    /* "192.0.2.1" is 9 bytes plus the NUL. */
    CHECK_STR(netaddr_format(&a, buf, 10), "192.0.2.1");
    CHECK_STR(netaddr_format(&a, buf, 9), "");
    CHECK(netaddr_format(&a, buf, 0) == buf);

    CHECK_INT(netaddr_parse(&a, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), 0);
    CHECK_STR(netaddr_format(&a, buf, 40), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
    CHECK_STR(netaddr_format(&a, buf, 39), "");

    memset(&a, 0, sizeof a);
    snprintf(buf, sizeof buf, "%s", "stale");
    CHECK_STR(netaddr_format(&a, buf, sizeof buf), "");
}

static void test_netaddr_cidr_parse_v4(void)
{
    netcidr_t c;
    char buf[NETADDR_STRLEN];

    CHECK_INT(netcidr_parse(&c, "192.0.2.0/24"), 0);
    CHECK_INT(c.net.family, AF_INET);
    CHECK_INT(c.prefix, 24);
    CHECK_STR(netcidr_format(&c, buf, sizeof buf), "192.0.2.0/24");
    CHECK_STR(cidr_round_trip("192.0.2.1", buf, sizeof buf), "192.0.2.1/32");
    CHECK_STR(cidr_round_trip("192.0.2.1/32", buf, sizeof buf), "192.0.2.1/32");
    CHECK_STR(cidr_round_trip("0.0.0.0/0", buf, sizeof buf), "0.0.0.0/0");
    CHECK_STR(cidr_round_trip("128.0.0.0/1", buf, sizeof buf), "128.0.0.0/1");
    CHECK_STR(cidr_round_trip("192.0.2.0/23", buf, sizeof buf), "192.0.2.0/23");
    CHECK_STR(cidr_round_trip("192.0.2.128/25", buf, sizeof buf), "192.0.2.128/25");
    CHECK_STR(cidr_round_trip("10.0.0.0/8", buf, sizeof buf), "10.0.0.0/8");
}

static void test_netaddr_cidr_rejects_host_bits(void)
{
    char buf[NETADDR_STRLEN];

    CHECK_STR(cidr_round_trip("192.0.2.1/24", buf, sizeof buf), "ERR");
    CHECK_STR(cidr_round_trip("192.0.2.1/31", buf, sizeof buf), "ERR");
    CHECK_STR(cidr_round_trip("192.0.2.128/24", buf, sizeof buf), "ERR");
    CHECK_STR(cidr_round_trip("192.0.3.0/23", buf, sizeof buf), "ERR");
    CHECK_STR(cidr_round_trip("192.0.2.64/25", buf, sizeof buf), "ERR");
    CHECK_STR(cidr_round_trip("1.0.0.0/0", buf, sizeof buf), "ERR");
    CHECK_STR(cidr_round_trip("2001:db8::1/127", buf, sizeof buf), "ERR");
    CHECK_STR(cidr_round_trip("2001:db9::/31", buf, sizeof buf), "ERR");
    CHECK_STR(cidr_round_trip("::1/0", buf, sizeof buf), "ERR");
}

static void test_netaddr_cidr_rejects_bad_prefix(void)
{
    static const char *const bad[] = {
        "192.0.2.1/33", "192.0.2.0/", "192.0.2.0/-1", "192.0.2.0/+24", "192.0.2.0/024",
        "192.0.2.0/00", "192.0.2.0/24x", "192.0.2.0/ 24", "192.0.2.0 /24", "192.0.2.0/24/8",
        "192.0.2.0/2a", "192.0.2.0/1000", "/24", "", "::/129", "::1/1280", "::/",
        "192.0.2.0/4294967320",
        "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0/8",
    };
    char buf[NETADDR_STRLEN];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_STR(cidr_round_trip(bad[i], buf, sizeof buf), "ERR");
    }
}

static void test_netaddr_cidr_parse_v6(void)
{
    char buf[NETADDR_STRLEN];

    CHECK_STR(cidr_round_trip("::/0", buf, sizeof buf), "::/0");
    CHECK_STR(cidr_round_trip("::1", buf, sizeof buf), "::1/128");
    CHECK_STR(cidr_round_trip("::1/128", buf, sizeof buf), "::1/128");
    CHECK_STR(cidr_round_trip("2001:DB8::/32", buf, sizeof buf), "2001:db8::/32");
    CHECK_STR(cidr_round_trip("2001:db8::/31", buf, sizeof buf), "2001:db8::/31");
    CHECK_STR(cidr_round_trip("2001:db8::/33", buf, sizeof buf), "2001:db8::/33");
    CHECK_STR(cidr_round_trip("2001:db8:0:1::/64", buf, sizeof buf), "2001:db8:0:1::/64");
    CHECK_STR(cidr_round_trip("ipv6:2001:db8::/48", buf, sizeof buf), "2001:db8::/48");
    CHECK_STR(cidr_round_trip("8000::/1", buf, sizeof buf), "8000::/1");
}

static void test_netaddr_cidr_mapped_becomes_v4(void)
{
    netcidr_t c;
    char buf[NETADDR_STRLEN];

    CHECK_INT(netcidr_parse(&c, "::ffff:192.0.2.0/120"), 0);
    CHECK_INT(c.net.family, AF_INET);
    CHECK_INT(c.prefix, 24);
    CHECK_STR(cidr_round_trip("::ffff:192.0.2.0/119", buf, sizeof buf), "192.0.2.0/23");
    CHECK_STR(cidr_round_trip("::ffff:192.0.2.7", buf, sizeof buf), "192.0.2.7/32");
    CHECK_STR(cidr_round_trip("::ffff:0:0/96", buf, sizeof buf), "0.0.0.0/0");
    CHECK_STR(cidr_round_trip("::ffff:192.0.2.1/120", buf, sizeof buf), "ERR");
    /* Shorter than the mapping prefix: a plain IPv6 block that no address matches,
     * since parsed addresses are unmapped. */
    CHECK_STR(cidr_round_trip("::ffff:0:0/95", buf, sizeof buf), "ERR");
    CHECK_STR(cidr_round_trip("::/80", buf, sizeof buf), "::/80");
}

static void test_netaddr_cidr_failure_clears(void)
{
    netcidr_t c, zero;

    memset(&zero, 0, sizeof zero);
    memset(&c, 0xaa, sizeof c);
    CHECK_INT(netcidr_parse(&c, "192.0.2.1/24"), -1);
    CHECK(memcmp(&c, &zero, sizeof c) == 0);
}

static void test_netaddr_cidr_format_buffer_limits(void)
{
    netcidr_t c;
    char buf[NETADDR_STRLEN];

    CHECK_INT(netcidr_parse(&c, "192.0.2.0/24"), 0);
    /* "192.0.2.0/24" is 12 bytes plus the NUL. */
    CHECK_STR(netcidr_format(&c, buf, 13), "192.0.2.0/24");
    CHECK_STR(netcidr_format(&c, buf, 12), "");
    CHECK(netcidr_format(&c, buf, 0) == buf);

    CHECK_INT(netcidr_parse(&c, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"), 0);
    CHECK_STR(netcidr_format(&c, buf, sizeof buf), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127");
    CHECK_STR(netcidr_format(&c, buf, 44), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127");
    CHECK_STR(netcidr_format(&c, buf, 43), "");
}

static void test_netaddr_match_v4(void)
{
    CHECK_INT(cidr_matches("192.0.2.0/24", "192.0.2.0"), 1);
    CHECK_INT(cidr_matches("192.0.2.0/24", "192.0.2.255"), 1);
    CHECK_INT(cidr_matches("192.0.2.0/24", "192.0.3.0"), 0);
    CHECK_INT(cidr_matches("192.0.2.0/24", "192.0.1.255"), 0);
    CHECK_INT(cidr_matches("192.0.2.128/25", "192.0.2.128"), 1);
    CHECK_INT(cidr_matches("192.0.2.128/25", "192.0.2.255"), 1);
    CHECK_INT(cidr_matches("192.0.2.128/25", "192.0.2.127"), 0);
    CHECK_INT(cidr_matches("192.0.2.1/32", "192.0.2.1"), 1);
    CHECK_INT(cidr_matches("192.0.2.1/32", "192.0.2.0"), 0);
    CHECK_INT(cidr_matches("192.0.2.1/32", "192.0.2.2"), 0);
    CHECK_INT(cidr_matches("0.0.0.0/0", "255.255.255.255"), 1);
    CHECK_INT(cidr_matches("0.0.0.0/0", "0.0.0.0"), 1);
    CHECK_INT(cidr_matches("0.0.0.0/0", "::1"), 0);
    CHECK_INT(cidr_matches("127.0.0.0/8", "::ffff:127.0.0.1"), 1);
    CHECK_INT(cidr_matches("::ffff:127.0.0.0/104", "127.1.2.3"), 1);
}

static void test_netaddr_match_v6(void)
{
    CHECK_INT(cidr_matches("2001:db8::/32", "2001:db8::"), 1);
    CHECK_INT(cidr_matches("2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"), 1);
    CHECK_INT(cidr_matches("2001:db8::/32", "2001:db9::"), 0);
    CHECK_INT(cidr_matches("2001:db8::/32", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"), 0);
    CHECK_INT(cidr_matches("2001:db8::/33", "2001:db8:7fff::1"), 1);
    CHECK_INT(cidr_matches("2001:db8::/33", "2001:db8:8000::"), 0);
    CHECK_INT(cidr_matches("::1/128", "::1"), 1);
    CHECK_INT(cidr_matches("::1/128", "::2"), 0);
    CHECK_INT(cidr_matches("::1/128", "::"), 0);
    CHECK_INT(cidr_matches("::/0", "ffff::"), 1);
    CHECK_INT(cidr_matches("::/0", "192.0.2.1"), 0);
    CHECK_INT(cidr_matches("::/0", "::ffff:192.0.2.1"), 0);
}

static void test_netaddr_match_rejects_garbage_prefix(void)
{
    netcidr_t c;
    netaddr_t a;

    CHECK_INT(netaddr_parse(&a, "192.0.2.1"), 0);
    memset(&c, 0, sizeof c);
    c.net.family = AF_INET;
    c.prefix = 33;
    CHECK_INT(netcidr_match(&c, &a), 0);
}

static void test_netaddr_network(void)
{
    netaddr_t a;
    netcidr_t n;
    char buf[NETADDR_STRLEN];

    CHECK_INT(netaddr_parse(&a, "192.0.2.77"), 0);
    netaddr_network(&n, &a, 24, 64);
    CHECK_STR(netcidr_format(&n, buf, sizeof buf), "192.0.2.0/24");
    netaddr_network(&n, &a, 32, 64);
    CHECK_STR(netcidr_format(&n, buf, sizeof buf), "192.0.2.77/32");
    netaddr_network(&n, &a, 33, 64);
    CHECK_STR(netcidr_format(&n, buf, sizeof buf), "192.0.2.77/32");
    netaddr_network(&n, &a, 0, 64);
    CHECK_STR(netcidr_format(&n, buf, sizeof buf), "0.0.0.0/0");
    netaddr_network(&n, &a, 25, 64);
    CHECK_STR(netcidr_format(&n, buf, sizeof buf), "192.0.2.0/25");
    CHECK_INT(netcidr_match(&n, &a), 1);

    CHECK_INT(netaddr_parse(&a, "2001:db8:1:2:3:4:5:6"), 0);
    netaddr_network(&n, &a, 24, 64);
    CHECK_STR(netcidr_format(&n, buf, sizeof buf), "2001:db8:1:2::/64");
    netaddr_network(&n, &a, 24, 128);
    CHECK_STR(netcidr_format(&n, buf, sizeof buf), "2001:db8:1:2:3:4:5:6/128");
    netaddr_network(&n, &a, 24, 129);
    CHECK_STR(netcidr_format(&n, buf, sizeof buf), "2001:db8:1:2:3:4:5:6/128");
    netaddr_network(&n, &a, 24, 0);
    CHECK_STR(netcidr_format(&n, buf, sizeof buf), "::/0");
    netaddr_network(&n, &a, 24, 63);
    CHECK_STR(netcidr_format(&n, buf, sizeof buf), "2001:db8:1:2::/63");
    CHECK_INT(netcidr_match(&n, &a), 1);
}

static void test_netaddr_reverse_name(void)
{
    netaddr_t a;
    char buf[128];
    const char *v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";

    CHECK_INT(netaddr_parse(&a, "192.0.2.1"), 0);
    CHECK_STR(netaddr_reverse_name(&a, buf, sizeof buf), "1.2.0.192.in-addr.arpa");
    /* 22 bytes plus the NUL. */
    CHECK_STR(netaddr_reverse_name(&a, buf, 23), "1.2.0.192.in-addr.arpa");
    CHECK_STR(netaddr_reverse_name(&a, buf, 22), "");

    CHECK_INT(netaddr_parse(&a, "::ffff:10.20.30.40"), 0);
    CHECK_STR(netaddr_reverse_name(&a, buf, sizeof buf), "40.30.20.10.in-addr.arpa");

    CHECK_INT(netaddr_parse(&a, "2001:db8::1"), 0);
    CHECK_STR(netaddr_reverse_name(&a, buf, sizeof buf), v6);
    /* 72 bytes plus the NUL. */
    CHECK_INT(strlen(v6), 72);
    CHECK_STR(netaddr_reverse_name(&a, buf, 73), v6);
    CHECK_STR(netaddr_reverse_name(&a, buf, 72), "");

    CHECK_INT(netaddr_parse(&a, "fedc:ba98:7654:3210:0123:4567:89ab:cdef"), 0);
    CHECK_STR(netaddr_reverse_name(&a, buf, sizeof buf),
              "f.e.d.c.b.a.9.8.7.6.5.4.3.2.1.0.0.1.2.3.4.5.6.7.8.9.a.b.c.d.e.f.ip6.arpa");
    CHECK(netaddr_reverse_name(&a, buf, 0) == buf);
}

static void test_netaddr_equal(void)
{
    netaddr_t a, b;

    CHECK_INT(netaddr_parse(&a, "192.0.2.1"), 0);
    CHECK_INT(netaddr_parse(&b, "::ffff:192.0.2.1"), 0);
    CHECK_INT(netaddr_equal(&a, &b), 1);
    CHECK_INT(netaddr_parse(&b, "192.0.2.2"), 0);
    CHECK_INT(netaddr_equal(&a, &b), 0);
    CHECK_INT(netaddr_parse(&b, "::c000:201"), 0);
    CHECK_INT(netaddr_equal(&a, &b), 0);
    CHECK_INT(netaddr_parse(&a, "2001:db8::1"), 0);
    CHECK_INT(netaddr_parse(&b, "IPv6:2001:DB8:0::1"), 0);
    CHECK_INT(netaddr_equal(&a, &b), 1);
    CHECK_INT(netaddr_parse(&b, "2001:db8::2"), 0);
    CHECK_INT(netaddr_equal(&a, &b), 0);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    CHECK_INT(netaddr_equal(&a, &b), 0);
}

int main(void)
{
    UNIT_RUN(test_netaddr_parse_v4);
    UNIT_RUN(test_netaddr_parse_v4_junk);
    UNIT_RUN(test_netaddr_parse_v6);
    UNIT_RUN(test_netaddr_parse_v6_junk);
    UNIT_RUN(test_netaddr_parse_mapped_is_v4);
    UNIT_RUN(test_netaddr_parse_failure_clears);
    UNIT_RUN(test_netaddr_format_buffer_limits);
    UNIT_RUN(test_netaddr_cidr_parse_v4);
    UNIT_RUN(test_netaddr_cidr_rejects_host_bits);
    UNIT_RUN(test_netaddr_cidr_rejects_bad_prefix);
    UNIT_RUN(test_netaddr_cidr_parse_v6);
    UNIT_RUN(test_netaddr_cidr_mapped_becomes_v4);
    UNIT_RUN(test_netaddr_cidr_failure_clears);
    UNIT_RUN(test_netaddr_cidr_format_buffer_limits);
    UNIT_RUN(test_netaddr_match_v4);
    UNIT_RUN(test_netaddr_match_v6);
    UNIT_RUN(test_netaddr_match_rejects_garbage_prefix);
    UNIT_RUN(test_netaddr_network);
    UNIT_RUN(test_netaddr_reverse_name);
    UNIT_RUN(test_netaddr_equal);
    return unit_report();
}
