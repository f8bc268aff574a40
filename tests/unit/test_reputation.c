// unit-deps: reputation store cache config netaddr verdict log
/* The reputation model: parsing and decay of stored values, the header text, the
 * entities of a client, and against a real redis-server the update script: counts from
 * two "hosts" add up, old counts decay by e per window, every key has a TTL, and what
 * a host counted shows in its own reputation at once. */
#include <ev.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "redisfix.h"
#include "reputation.h"
#include "store.h"
#include "unit.h"

#define RUN_DEADLINE 10.0
#define WEEK 604800.0
/* Decayed counts are compared to this many decimal places. */
#define CLOSE 1e-4

static struct ev_loop *loop;
static redisfix_t redis;
static struct config cfg;

static int close_to(double got, double want)
{
    if (fabs(got - want) <= CLOSE)
        return 1;
    printf("    got %.6f, want %.6f\n", got, want);
    return 0;
}

/* ---- without Redis ---- */

static void test_reputation_parse(void)
{
    reputation_counts_t c;
    const char *v = "1700000000 1 2 30 4.5 0 0.25 7";

    CHECK_INT(reputation_parse(&c, v, strlen(v), 1700000000, WEEK), 0);
    CHECK(c.n[SPF_RES_NONE] == 1 && c.n[SPF_RES_NEUTRAL] == 2 && c.n[SPF_RES_PASS] == 30 &&
          c.n[SPF_RES_FAIL] == 4.5 && c.n[SPF_RES_SOFTFAIL] == 0 &&
          c.n[SPF_RES_TEMPERROR] == 0.25 && c.n[SPF_RES_PERMERROR] == 7);
    CHECK(reputation_total(&c) == 44.75);
    CHECK(reputation_failing(&c, 0) == 4.5);
    CHECK(reputation_failing(&c, 1) == 4.5);
    /* One window later everything weighs 1/e; a reader behind the writer's clock sees
     * no growth. */
    CHECK_INT(reputation_parse(&c, v, strlen(v), 1700000000 + WEEK, WEEK), 0);
    CHECK(close_to(c.n[SPF_RES_PASS], 30 / M_E));
    CHECK_INT(reputation_parse(&c, v, strlen(v), 1700000000 - 5, WEEK), 0);
    CHECK(c.n[SPF_RES_PASS] == 30);

    static const char *const bad[] = {
        "", "1700000000 1 2 3 4 5 6", "1700000000 1 2 3 4 5 6 7 8", " 1700000000 1 2 3 4 5 6 7",
        "1700000000 1 2 3 4 5 6 7 ", "1700000000  1 2 3 4 5 6 7", "1700000000 1 2 3 -4 5 6 7",
        "1700000000 1 2 3 inf 5 6 7", "1700000000 1 2 3 nan 5 6 7", "1700000000 1 2 x 4 5 6 7",
        "1700000000 1 2 3 4 5 6 7x", "1700000000\t1 2 3 4 5 6 7",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (reputation_parse(&c, bad[i], strlen(bad[i]), 1700000000, WEEK) != -1)
            UNIT_FAIL_("'%s' was accepted", bad[i]);
    CHECK_INT(reputation_parse(&c, "1 0 0 0 0\0 0 0 0", 16, 1, WEEK), -1);
}

static void test_reputation_header(void)
{
    reputation_counts_t net, ip, dom;
    const reputation_counts_t *all[REPUTATION_KINDS];
    char buf[REPUTATION_HEADER_MAX];

    memset(&net, 0, sizeof net);
    memset(&ip, 0, sizeof ip);
    memset(&dom, 0, sizeof dom);
    net.n[SPF_RES_FAIL] = 43;
    net.n[SPF_RES_SOFTFAIL] = 2;
    net.n[SPF_RES_PASS] = 25.4;
    ip.n[SPF_RES_PASS] = 3;
    dom.n[SPF_RES_PASS] = 119.6;
    dom.n[SPF_RES_FAIL] = 2.4;
    all[REPUTATION_DOMAIN] = &dom;
    all[REPUTATION_IP] = &ip;
    all[REPUTATION_NET] = &net;
    CHECK_INT(reputation_header(buf, sizeof buf, all, 0), 29);
    CHECK_STR(buf, "net 43/70 ip 0/3 domain 2/122");
    CHECK_INT(reputation_header(buf, sizeof buf, all, 1), 29);
    CHECK_STR(buf, "net 45/70 ip 0/3 domain 2/122");
    all[REPUTATION_IP] = NULL;
    CHECK_INT(reputation_header(buf, sizeof buf, all, 0), 22);
    CHECK_STR(buf, "net 43/70 domain 2/122");
    /* Cut at a whole pair when the buffer is short. */
    CHECK_INT(reputation_header(buf, 12, all, 0), 9);
    CHECK_STR(buf, "net 43/70");
    all[REPUTATION_NET] = all[REPUTATION_DOMAIN] = NULL;
    CHECK_INT(reputation_header(buf, sizeof buf, all, 0), 0);
    CHECK_STR(buf, "");
}

static void names_of(reputation_names_t *n, const netaddr_t *a, const char *domain)
{
    char ipstr[NETADDR_STRLEN];

    reputation_names(n, a, netaddr_format(a, ipstr, sizeof ipstr), domain);
}

static void test_reputation_names(void)
{
    reputation_names_t n;
    netaddr_t a;

    netaddr_parse(&a, "198.51.100.77");
    names_of(&n, &a, "example.com");
    CHECK_STR(n.name[REPUTATION_DOMAIN], "example.com");
    CHECK_STR(n.name[REPUTATION_IP], "198.51.100.77");
    CHECK_STR(n.name[REPUTATION_NET], "198.51.100.0/24");
    netaddr_parse(&a, "2001:db8:1:2:3:4:5:6");
    names_of(&n, &a, "");
    CHECK_STR(n.name[REPUTATION_DOMAIN], "");
    CHECK_STR(n.name[REPUTATION_IP], "2001:db8:1:2:3:4:5:6");
    CHECK_STR(n.name[REPUTATION_NET], "2001:db8:1:2::/64");
    netaddr_parse(&a, "::ffff:192.0.2.9");
    names_of(&n, &a, "x.test");
    CHECK_STR(n.name[REPUTATION_IP], "192.0.2.9");
    CHECK_STR(n.name[REPUTATION_NET], "192.0.2.0/24");
    /* Every digit count of an octet. */
    netaddr_parse(&a, "1.22.255.254");
    names_of(&n, &a, "x.test");
    CHECK_STR(n.name[REPUTATION_NET], "1.22.255.0/24");
    netaddr_parse(&a, "0.0.0.0");
    names_of(&n, &a, "x.test");
    CHECK_STR(n.name[REPUTATION_NET], "0.0.0.0/24");
    netaddr_parse(&a, "100.10.9.1");
    names_of(&n, &a, "x.test");
    CHECK_STR(n.name[REPUTATION_NET], "100.10.9.0/24");
}

/* ---- with Redis ---- */

static redisReply *get_key(const char *key)
{
    return redisfix_cmd(&redis, 0, "GET %s", key);
}

typedef struct want {
    const char *key;
    double pass, fail;
} want_t;

/* The stored counts of key reach pass/fail. */
static int stored(void *arg)
{
    const want_t *w = arg;
    redisReply *rp = get_key(w->key);
    reputation_counts_t c;
    int ok = rp && rp->type == REDIS_REPLY_STRING &&
             reputation_parse(&c, rp->str, rp->len, ev_time(), WEEK) == 0 &&
             fabs(c.n[SPF_RES_PASS] - w->pass) < CLOSE && fabs(c.n[SPF_RES_FAIL] - w->fail) < CLOSE;

    if (rp)
        freeReplyObject(rp);
    return ok;
}

static long long pttl(const char *key)
{
    redisReply *rp = redisfix_cmd(&redis, 0, "PTTL %s", key);
    long long v = rp && rp->type == REDIS_REPLY_INTEGER ? rp->integer : -100;

    if (rp)
        freeReplyObject(rp);
    return v;
}

static void new_host(store_t **s, reputation_t **r)
{
    char err[STORE_ERR_LEN];

    *s = store_new(loop, &cfg, err);
    *r = *s ? reputation_new(loop, *s, &cfg) : NULL;
    CHECK(*r != NULL);
    if (*s)
        CHECK(redisfix_run_until(loop, redisfix_store_up, *s, RUN_DEADLINE));
}

static void test_reputation_two_hosts_add_up(void)
{
    store_t *s1, *s2;
    reputation_t *r1, *r2;
    reputation_names_t n;
    reputation_counts_t c;
    reputation_stats_t st;
    char key[STORE_KEY_MAX];
    netaddr_t a;
    want_t w;

    new_host(&s1, &r1);
    new_host(&s2, &r2);
    if (!r1 || !r2)
        return;
    netaddr_parse(&a, "198.51.100.7");
    names_of(&n, &a, "two.test");
    for (int i = 0; i < 3; i++)
        reputation_count(r1, &n, SPF_RES_PASS);
    reputation_count(r1, &n, SPF_RES_FAIL);
    netaddr_parse(&a, "198.51.100.8");
    names_of(&n, &a, "two.test");
    for (int i = 0; i < 5; i++)
        reputation_count(r2, &n, SPF_RES_FAIL);

    CHECK_INT(reputation_key(r1, key, sizeof key, REPUTATION_NET, "198.51.100.0/24"), 21);
    CHECK_STR(key, "r:r:n:198.51.100.0/24");
    w = (want_t){"r:r:n:198.51.100.0/24", 3, 6};
    CHECK(redisfix_run_until(loop, stored, &w, RUN_DEADLINE));
    w = (want_t){"r:r:d:two.test", 3, 6};
    CHECK(redisfix_run_until(loop, stored, &w, RUN_DEADLINE));
    w = (want_t){"r:r:i:198.51.100.7", 3, 1};
    CHECK(redisfix_run_until(loop, stored, &w, RUN_DEADLINE));
    w = (want_t){"r:r:i:198.51.100.8", 0, 5};
    CHECK(redisfix_run_until(loop, stored, &w, RUN_DEADLINE));
    /* Every key expires, REPUTATION_TTL_WINDOWS windows after its last update. */
    CHECK(pttl("r:r:n:198.51.100.0/24") > (long long)(WEEK * REPUTATION_TTL_WINDOWS * 1000) - 60000);
    CHECK(pttl("r:r:d:two.test") <= (long long)(WEEK * REPUTATION_TTL_WINDOWS * 1000));
    CHECK(pttl("r:r:i:198.51.100.8") > 0);

    /* Host 1 has not read the reputation: unknown until learned, then its own counts
     * since show at once. */
    CHECK_INT(reputation_peek(r1, REPUTATION_NET, "198.51.100.0/24", &c), 0);
    {
        redisReply *rp = get_key("r:r:n:198.51.100.0/24");
        CHECK(rp && rp->type == REDIS_REPLY_STRING);
        if (rp && rp->type == REDIS_REPLY_STRING)
            reputation_learn(r1, REPUTATION_NET, "198.51.100.0/24", rp->str, rp->len);
        if (rp)
            freeReplyObject(rp);
    }
    CHECK_INT(reputation_peek(r1, REPUTATION_NET, "198.51.100.0/24", &c), 1);
    CHECK(close_to(c.n[SPF_RES_FAIL], 6));
    reputation_count(r1, &n, SPF_RES_FAIL);
    CHECK_INT(reputation_peek(r1, REPUTATION_NET, "198.51.100.0/24", &c), 1);
    CHECK(close_to(c.n[SPF_RES_FAIL], 7));
    /* After the flush the count stays (now part of what was learned). */
    w = (want_t){"r:r:n:198.51.100.0/24", 3, 7};
    CHECK(redisfix_run_until(loop, stored, &w, RUN_DEADLINE));
    CHECK_INT(reputation_peek(r1, REPUTATION_NET, "198.51.100.0/24", &c), 1);
    CHECK(close_to(c.n[SPF_RES_FAIL], 7));
    /* A missing key is learned as all zeros; a malformed value likewise. */
    reputation_learn(r1, REPUTATION_DOMAIN, "none.test", NULL, 0);
    CHECK_INT(reputation_peek(r1, REPUTATION_DOMAIN, "none.test", &c), 1);
    CHECK(reputation_total(&c) == 0);
    reputation_learn(r1, REPUTATION_DOMAIN, "bad.test", "garbage", 7);
    CHECK_INT(reputation_peek(r1, REPUTATION_DOMAIN, "bad.test", &c), 1);
    CHECK(reputation_total(&c) == 0);

    reputation_get_stats(r1, &st);
    CHECK_INT(st.counted, 5);
    CHECK(st.flushes >= 1 && st.flushes <= 3);
    reputation_free(r1);
    reputation_free(r2);
    store_free(s1);
    store_free(s2);
}

static void test_reputation_decay_in_redis(void)
{
    store_t *s;
    reputation_t *r;
    reputation_names_t n;
    netaddr_t a;
    char old[128];
    want_t w;
    redisReply *rp;

    new_host(&s, &r);
    if (!r)
        return;
    /* Counts written one window ago: 10 pass, 20 fail. */
    snprintf(old, sizeof old, "%.0f 0 0 10 20 0 0 0", ev_time() - WEEK);
    rp = redisfix_cmd(&redis, 0, "SET %s %s", "r:r:d:decay.test", old);
    if (rp)
        freeReplyObject(rp);
    netaddr_parse(&a, "203.0.113.1");
    names_of(&n, &a, "decay.test");
    reputation_count(r, &n, SPF_RES_PASS);
    w = (want_t){"r:r:d:decay.test", 10 / M_E + 1, 20 / M_E};
    CHECK(redisfix_run_until(loop, stored, &w, RUN_DEADLINE));
    /* A garbled value is started over, not propagated. */
    rp = redisfix_cmd(&redis, 0, "SET %s %s", "r:r:d:decay.test", "not counts");
    if (rp)
        freeReplyObject(rp);
    reputation_count(r, &n, SPF_RES_FAIL);
    w = (want_t){"r:r:d:decay.test", 0, 1};
    CHECK(redisfix_run_until(loop, stored, &w, RUN_DEADLINE));
    reputation_free(r);
    store_free(s);
}

static void test_reputation_kept_while_down(void)
{
    store_t *s;
    reputation_t *r;
    reputation_names_t n;
    reputation_stats_t st;
    netaddr_t a;
    want_t w;

    new_host(&s, &r);
    if (!r)
        return;
    netaddr_parse(&a, "203.0.113.9");
    names_of(&n, &a, "down.test");
    redisfix_stop(&redis);
    CHECK(redisfix_run_until(loop, redisfix_store_down, s, RUN_DEADLINE));
    reputation_count(r, &n, SPF_RES_PASS);
    reputation_count(r, &n, SPF_RES_PASS);
    /* Flushes fail while Redis is away; the counts wait for it. */
    CHECK(!redisfix_run_until(loop, redisfix_store_up, s, 0.3));
    reputation_get_stats(r, &st);
    CHECK_INT(st.flushed_entities, 0);
    CHECK_INT(redisfix_start(&redis), 0);
    w = (want_t){"r:r:i:203.0.113.9", 2, 0};
    CHECK(redisfix_run_until(loop, stored, &w, RUN_DEADLINE));
    reputation_get_stats(r, &st);
    CHECK_INT(st.flushed_entities, 3);
    CHECK_INT(st.dropped, 0);
    reputation_free(r);
    store_free(s);
}

static void test_reputation_cli(void)
{
    char path[128], out[2048], val[128];
    FILE *f;
    size_t n;
    redisReply *rp;

    snprintf(val, sizeof val, "%.0f 0 0 12 3 1 0 0", ev_time());
    rp = redisfix_cmd(&redis, 0, "SET %s %s", "r:r:i:192.0.2.55", val);
    if (rp)
        freeReplyObject(rp);
    snprintf(path, sizeof path, "%s/cli.out", redis.dir);
    f = fopen(path, "w+");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK_INT(reputation_cli(&cfg, "192.0.2.55", f), 0);
    rewind(f);
    n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    CHECK_STR(out, "ip 192.0.2.55: 16.0 checks, 3.0 failing: none 0.0, neutral 0.0, pass 12.0, "
                   "fail 3.0, softfail 1.0, temperror 0.0, permerror 0.0\n"
                   "net 192.0.2.0/24: 0.0 checks, 0.0 failing: none 0.0, neutral 0.0, pass 0.0, "
                   "fail 0.0, softfail 0.0, temperror 0.0, permerror 0.0\n");
    CHECK_INT(reputation_cli(&cfg, "not a name!", f), 2);
    fclose(f);
    unlink(path);
}

int main(void)
{
    loop = ev_default_loop(0);
    log_open("test_reputation", 1, 0, LOG_LEVEL_ERROR);
    UNIT_RUN(test_reputation_parse);
    UNIT_RUN(test_reputation_header);
    UNIT_RUN(test_reputation_names);
    if (redisfix_start(&redis) < 0) {
        printf("FAIL cannot start redis-server\n");
        unit_failed++;
        return unit_report();
    }
    config_defaults(&cfg);
    snprintf(cfg.redis_address, sizeof cfg.redis_address, "unix:%s", redis.sock);
    snprintf(cfg.redis_prefix, sizeof cfg.redis_prefix, "r:");
    cfg.reputation_flush = 0.02;
    cfg.redis_retry_max = 0.1;
    UNIT_RUN(test_reputation_two_hosts_add_up);
    UNIT_RUN(test_reputation_decay_in_redis);
    UNIT_RUN(test_reputation_kept_while_down);
    UNIT_RUN(test_reputation_cli);
    redisfix_cleanup(&redis);
    ev_loop_destroy(loop);
    return unit_report();
}
