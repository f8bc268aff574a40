// unit-deps: dns cache log
/* The packed form of DNS answers shared through Redis: every record type and status
 * round-trips, expiry and TTL survive (and another host's clock cannot stretch them),
 * and anything but one well-formed answer for the name and type asked is refused. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "log.h"
#include "unit.h"

#define NOW 1700000000.0

/* An answer on the stack, as dns.c would hold it. */
typedef struct built {
    dns_answer_t a;
    dns_rr_t rr[3];
} built_t;

static void build(built_t *b, const char *name, int type, enum dns_status st, size_t count,
                  uint32_t ttl)
{
    memset(b, 0, sizeof *b);
    b->a.name = (char *)name;
    b->a.type = type;
    b->a.status = st;
    b->a.ttl = ttl;
    b->a.expires = NOW + ttl;
    b->a.count = count;
    b->a.rr = b->rr;
    b->a.refs = 1;
}

/* Packs a, unpacks it for name/type at now, packs the result again: the two packed
 * forms must be the same bytes. Returns the unpacked answer (caller unrefs). */
static dns_answer_t *round_trip(const dns_answer_t *a, double now)
{
    size_t len, len2;
    unsigned char *p = dns_answer_pack(a, &len), *p2;
    dns_answer_t *u;

    CHECK(p != NULL);
    if (!p)
        return NULL;
    u = dns_answer_unpack(p, len, a->name, a->type, now);
    CHECK(u != NULL);
    if (u) {
        p2 = dns_answer_pack(u, &len2);
        CHECK(p2 != NULL);
        CHECK_INT(len2, len);
        if (p2 && len2 == len)
            CHECK(memcmp(p, p2, len) == 0);
        free(p2);
    }
    free(p);
    return u;
}

static void test_dns_pack_every_type(void)
{
    built_t b;
    dns_answer_t *u;
    static const char txt[] = "v=spf1 \0ip4:192.0.2.0/24 -all";

    build(&b, "a.test", DNS_T_A, DNS_OK, 2, 300);
    inet_pton(AF_INET, "192.0.2.1", &b.rr[0].u.a);
    inet_pton(AF_INET, "192.0.2.2", &b.rr[1].u.a);
    u = round_trip(&b.a, NOW);
    if (u) {
        CHECK_STR(u->name, "a.test");
        CHECK_INT(u->type, DNS_T_A);
        CHECK_INT(u->status, DNS_OK);
        CHECK_INT(u->count, 2);
        CHECK(memcmp(&u->rr[1].u.a, &b.rr[1].u.a, 4) == 0);
        CHECK_INT(u->ttl, 300);
        CHECK(u->expires == NOW + 300);
        CHECK_INT(u->refs, 1);
        dns_answer_unref(u);
    }

    build(&b, "a.test", DNS_T_AAAA, DNS_OK, 1, 60);
    inet_pton(AF_INET6, "2001:db8::1", &b.rr[0].u.aaaa);
    u = round_trip(&b.a, NOW);
    if (u) {
        CHECK(memcmp(&u->rr[0].u.aaaa, &b.rr[0].u.aaaa, 16) == 0);
        dns_answer_unref(u);
    }

    build(&b, "mx.test", DNS_T_MX, DNS_OK, 2, 600);
    b.rr[0].u.mx.pref = 10;
    b.rr[0].u.mx.name = "mx1.test";
    b.rr[1].u.mx.pref = 65535;
    b.rr[1].u.mx.name = "m@il(x).test";
    u = round_trip(&b.a, NOW);
    if (u) {
        CHECK_INT(u->rr[0].u.mx.pref, 10);
        CHECK_STR(u->rr[0].u.mx.name, "mx1.test");
        CHECK_INT(u->rr[1].u.mx.pref, 65535);
        CHECK_STR(u->rr[1].u.mx.name, "m@il(x).test");
        dns_answer_unref(u);
    }

    build(&b, "1.2.0.192.in-addr.arpa", DNS_T_PTR, DNS_OK, 1, 300);
    b.rr[0].u.ptr = "a\\.b.test";
    u = round_trip(&b.a, NOW);
    if (u) {
        CHECK_STR(u->rr[0].u.ptr, "a\\.b.test");
        dns_answer_unref(u);
    }

    /* TXT keeps NUL bytes inside, and stays NUL-terminated. */
    for (int type = DNS_T_TXT; type; type = type == DNS_T_TXT ? DNS_T_SPF : 0) {
        build(&b, "txt.test", type, DNS_OK, 2, 300);
        b.rr[0].u.txt.data = (char *)txt;
        b.rr[0].u.txt.len = sizeof txt - 1;
        b.rr[1].u.txt.data = "";
        b.rr[1].u.txt.len = 0;
        u = round_trip(&b.a, NOW);
        if (u) {
            CHECK_INT(u->rr[0].u.txt.len, sizeof txt - 1);
            CHECK(memcmp(u->rr[0].u.txt.data, txt, sizeof txt) == 0);
            CHECK_INT(u->rr[1].u.txt.len, 0);
            CHECK_STR(u->rr[1].u.txt.data, "");
            dns_answer_unref(u);
        }
    }
}

static void test_dns_pack_statuses(void)
{
    static const enum dns_status st[] = {DNS_NODATA, DNS_NXDOMAIN, DNS_SERVFAIL, DNS_TIMEOUT};
    built_t b;
    size_t len;

    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        build(&b, "none.test", DNS_T_TXT, st[i], 0, 30);
        dns_answer_t *u = round_trip(&b.a, NOW);
        if (u) {
            CHECK_INT(u->status, st[i]);
            CHECK_INT(u->count, 0);
            dns_answer_unref(u);
        }
    }
    /* A shutdown is no answer to share. */
    build(&b, "none.test", DNS_T_TXT, DNS_SHUTDOWN, 0, 0);
    CHECK(dns_answer_pack(&b.a, &len) == NULL);
}

static void test_dns_pack_expiry(void)
{
    built_t b;
    size_t len;
    unsigned char *p;
    dns_answer_t *u;

    build(&b, "a.test", DNS_T_A, DNS_OK, 1, 300);
    p = dns_answer_pack(&b.a, &len);
    CHECK(p != NULL);
    if (!p)
        return;
    /* 100 s later: 200 s left, expiry unchanged. */
    u = dns_answer_unpack(p, len, "a.test", DNS_T_A, NOW + 100);
    CHECK(u != NULL);
    if (u) {
        CHECK(u->expires == NOW + 300);
        CHECK_INT(u->ttl, 200);
        dns_answer_unref(u);
    }
    /* Half a second before the end: rounded up to one second. */
    u = dns_answer_unpack(p, len, "a.test", DNS_T_A, NOW + 299.5);
    CHECK(u != NULL);
    if (u) {
        CHECK_INT(u->ttl, 1);
        dns_answer_unref(u);
    }
    /* Expired, exactly and after. */
    CHECK(dns_answer_unpack(p, len, "a.test", DNS_T_A, NOW + 300) == NULL);
    CHECK(dns_answer_unpack(p, len, "a.test", DNS_T_A, NOW + 301) == NULL);
    /* A reader whose clock is behind the writer's: never more than the TTL from now. */
    u = dns_answer_unpack(p, len, "a.test", DNS_T_A, NOW - 3600);
    CHECK(u != NULL);
    if (u) {
        CHECK(u->expires == NOW - 3600 + 300);
        CHECK_INT(u->ttl, 300);
        dns_answer_unref(u);
    }
    free(p);
}

/* A well-formed packed MX answer for mx.test, and variations of it. */
static size_t good_mx(unsigned char *buf)
{
    built_t b;
    size_t len;
    unsigned char *p;

    build(&b, "mx.test", DNS_T_MX, DNS_OK, 1, 300);
    b.rr[0].u.mx.pref = 10;
    b.rr[0].u.mx.name = "mx1.test";
    p = dns_answer_pack(&b.a, &len);
    if (!p)
        return 0;
    memcpy(buf, p, len);
    free(p);
    return len;
}

static void test_dns_pack_corrupt(void)
{
    unsigned char good[128], bad[129];
    size_t n = good_mx(good);
    dns_answer_t *u;

    CHECK_INT(n, 2 + 1 + 2 + 4 + 8 + 2 + 1 + 7 + 2 + 1 + 8);
    u = dns_answer_unpack(good, n, "mx.test", DNS_T_MX, NOW);
    CHECK(u != NULL);
    dns_answer_unref(u);

    for (size_t len = 0; len < n; len++)
        if ((u = dns_answer_unpack(good, len, "mx.test", DNS_T_MX, NOW)) != NULL) {
            UNIT_FAIL_("an answer cut to %zu of %zu bytes was accepted", len, n);
            dns_answer_unref(u);
        }
    memcpy(bad, good, n);
    bad[n] = 0;
    CHECK(dns_answer_unpack(bad, n + 1, "mx.test", DNS_T_MX, NOW) == NULL);

    /* The wrong name or type for the key it was found under. */
    CHECK(dns_answer_unpack(good, n, "mx.tesu", DNS_T_MX, NOW) == NULL);
    CHECK(dns_answer_unpack(good, n, "MX.test", DNS_T_MX, NOW) == NULL);
    CHECK(dns_answer_unpack(good, n, "mx.test.", DNS_T_MX, NOW) == NULL);
    CHECK(dns_answer_unpack(good, n, "mx.test", DNS_T_A, NOW) == NULL);

#define MUTATE(off, val)                                                       \
    do {                                                                       \
        memcpy(bad, good, n);                                                  \
        bad[off] = (unsigned char)(val);                                       \
        u = dns_answer_unpack(bad, n, "mx.test", DNS_T_MX, NOW);               \
        if (u) {                                                               \
            UNIT_FAIL_("byte %d set to %d was accepted", (int)(off), (int)(val)); \
            dns_answer_unref(u);                                               \
        }                                                                      \
    } while (0)
    MUTATE(0, 'X');                   /* magic */
    MUTATE(1, '2');
    MUTATE(2, DNS_SHUTDOWN);          /* status */
    MUTATE(2, 9);
    MUTATE(2, DNS_NODATA);            /* a negative answer with a record */
    MUTATE(4, 1);                     /* type A under an MX key */
    MUTATE(5, 0x80);                  /* TTL with the top bit set (RFC 2181 8) */
    MUTATE(17, 1);                    /* 257 records */
    MUTATE(18, 0);                    /* OK without a record */
    MUTATE(18, 2);                    /* a record missing */
    MUTATE(19, 6);                    /* name length */
    MUTATE(19, 254);
    MUTATE(29, 0);                    /* the MX name empty */
    MUTATE(29, 9);                    /* the MX name longer than the data */
    MUTATE(30, 0);                    /* a NUL inside the MX name */
#undef MUTATE
    /* Expired long ago: an expiry of 0 ms. */
    memcpy(bad, good, n);
    memset(bad + 9, 0, 8);
    CHECK(dns_answer_unpack(bad, n, "mx.test", DNS_T_MX, NOW) == NULL);
}

int main(void)
{
    log_open("test_dns_pack", 1, 0, LOG_LEVEL_WARN);
    UNIT_RUN(test_dns_pack_every_type);
    UNIT_RUN(test_dns_pack_statuses);
    UNIT_RUN(test_dns_pack_expiry);
    UNIT_RUN(test_dns_pack_corrupt);
    return unit_report();
}
