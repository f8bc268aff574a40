// unit-deps: store config netaddr verdict log
/* The store module against a real redis-server (redisfix.h) on a real libev loop: key
 * layout, the shared verdict format, reads and writes, deadlines and late replies, a
 * stalled, stopped and restarted Redis, AUTH and SELECT, the cap on pending commands,
 * scripts, and teardown. */
#include <ev.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "redisfix.h"
#include "spf.h"
#include "store.h"
#include "unit.h"

/* How long a test waits for the loop to reach a state; slack allowed past a deadline
 * for the loop and a loaded machine. */
#define RUN_DEADLINE 10.0
#define LATE_SLACK 0.3

static struct ev_loop *loop;
static redisfix_t redis;
static struct config cfg;
static char err[STORE_ERR_LEN];

/* ---- replies recorded ---- */

typedef struct rec {
    int calls;
    int answered;             /* values given (not "no answer") */
    size_t n;
    int found[STORE_MGET_MAX];
    char data[STORE_MGET_MAX][64];
    size_t len[STORE_MGET_MAX];
    double at;
} rec_t;

static void rec_mget(void *ctx, const store_value_t *v, size_t n)
{
    rec_t *r = ctx;

    r->calls++;
    r->at = redisfix_now();
    r->answered = v != NULL;
    r->n = n;
    for (size_t i = 0; v && i < n; i++) {
        r->found[i] = v[i].data != NULL;
        r->len[i] = v[i].len;
        if (v[i].data && v[i].len <= sizeof r->data[i])
            memcpy(r->data[i], v[i].data, v[i].len);
    }
}

static void rec_get(void *ctx, const void *data, size_t len)
{
    rec_t *r = ctx;

    r->calls++;
    r->at = redisfix_now();
    r->answered = 1;
    r->n = 1;
    r->found[0] = data != NULL;
    r->len[0] = len;
    if (data && len <= sizeof r->data[0])
        memcpy(r->data[0], data, len);
}

static int rec_called(void *r)
{
    return ((rec_t *)r)->calls > 0;
}

/* ---- set-up ---- */

static void base_config(const char *address)
{
    config_defaults(&cfg);
    snprintf(cfg.redis_address, sizeof cfg.redis_address, "%s", address);
    snprintf(cfg.redis_prefix, sizeof cfg.redis_prefix, "t:");
    cfg.redis_timeout = 0.2;
    cfg.redis_connect_timeout = 0.5;
    cfg.redis_retry_max = 0.2;
}

static char unix_address[128], tcp_address[64];

static store_t *new_up_store(void)
{
    store_t *s = store_new(loop, &cfg, err);

    if (!s) {
        printf("store_new: %s\n", err);
        return NULL;
    }
    if (!redisfix_run_until(loop, redisfix_store_up, s, RUN_DEADLINE))
        printf("store did not come up\n");
    return s;
}

static long long pttl(int db, const char *key)
{
    redisReply *rp = redisfix_cmd(&redis, db, "PTTL %s", key);
    long long v = rp && rp->type == REDIS_REPLY_INTEGER ? rp->integer : -100;

    if (rp)
        freeReplyObject(rp);
    return v;
}

static int get_equals(int db, const char *key, const void *want, size_t len)
{
    redisReply *rp = redisfix_cmd(&redis, db, "GET %s", key);
    int ok = rp && rp->type == REDIS_REPLY_STRING && rp->len == len &&
             memcmp(rp->str, want, len) == 0;

    if (rp)
        freeReplyObject(rp);
    return ok;
}

/* ---- key layout and verdicts ---- */

static void test_store_key_layout(void)
{
    char buf[STORE_KEY_MAX];
    static const char bin[] = "192.0.2.1|ex\0ample.com";
    store_t *s;

    base_config("unix:/nonexistent/redis.sock");
    snprintf(cfg.redis_prefix, sizeof cfg.redis_prefix, "mx:spf:");
    s = store_new(loop, &cfg, err);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_INT(store_key(s, buf, sizeof buf, STORE_KIND_VERDICT, "192.0.2.1|example.com", 21),
              30);
    CHECK_STR(buf, "mx:spf:v:192.0.2.1|example.com");
    CHECK_INT(store_key(s, buf, sizeof buf, STORE_KIND_DNS, "16:example.com", 14), 23);
    CHECK_STR(buf, "mx:spf:d:16:example.com");
    CHECK_INT(store_key(s, buf, sizeof buf, STORE_KIND_REPUTATION, "n:192.0.2.0/24", 14), 23);
    CHECK_STR(buf, "mx:spf:r:n:192.0.2.0/24");
    /* Bytes are kept as they are, NUL included. */
    CHECK_INT(store_key(s, buf, sizeof buf, STORE_KIND_VERDICT, bin, sizeof bin - 1), 31);
    CHECK(memcmp(buf, "mx:spf:v:192.0.2.1|ex\0ample.com", 32) == 0);
    /* Just fits (with its NUL), one byte over. */
    CHECK_INT(store_key(s, buf, 12, STORE_KIND_DNS, "ab", 2), 11);
    CHECK_STR(buf, "mx:spf:d:ab");
    CHECK_INT(store_key(s, buf, 11, STORE_KIND_DNS, "ab", 2), 0);
    CHECK_STR(store_server(s), "");
    store_free(s);

    config_defaults(&cfg);
    CHECK(store_new(loop, &cfg, err) == NULL);
    CHECK_STR(err, "store: no [redis] address and no sentinels");
}

static void test_store_verdict_round_trip(void)
{
    char buf[STORE_VERDICT_MAX];
    char longtext[STORE_VERDICT_TEXT_MAX + 1];
    store_verdict_t v = {SPF_RES_FAIL, 0, 1700000000.125, "192.0.2.1 is not allowed", 24,
                         "mechanism -all matched", 22};
    store_verdict_t out;
    size_t n = store_verdict_pack(buf, sizeof buf, &v);

    CHECK_INT(n, STORE_VERDICT_FIXED_LEN + 24 + 22);
    CHECK(memcmp(buf, "V1", 2) == 0);
    memset(&out, 0, sizeof out);
    CHECK_INT(store_verdict_unpack(&out, buf, n), 0);
    CHECK_INT(out.result, SPF_RES_FAIL);
    CHECK_INT(out.uses, 0);
    CHECK(out.expires == 1700000000.125);
    CHECK_INT(out.explanation_len, 24);
    CHECK(memcmp(out.explanation, "192.0.2.1 is not allowed", 24) == 0);
    CHECK_INT(out.comment_len, 22);
    CHECK(memcmp(out.comment, "mechanism -all matched", 22) == 0);

    /* A marker: uses bits, empty texts. */
    store_verdict_t m = {SPF_RES_NONE, SPF_USES_LOCALPART | SPF_USES_HELO, 1700000001.0, "", 0,
                         "", 0};
    n = store_verdict_pack(buf, sizeof buf, &m);
    CHECK_INT(n, STORE_VERDICT_FIXED_LEN);
    CHECK_INT(store_verdict_unpack(&out, buf, n), 0);
    CHECK_INT(out.uses, SPF_USES_LOCALPART | SPF_USES_HELO);
    CHECK_INT(out.explanation_len + out.comment_len, 0);

    /* Texts of exactly the maximum fit; one byte more does not. */
    memset(longtext, 'x', sizeof longtext);
    v.explanation = longtext;
    v.explanation_len = STORE_VERDICT_TEXT_MAX;
    v.comment = longtext;
    v.comment_len = STORE_VERDICT_TEXT_MAX;
    n = store_verdict_pack(buf, sizeof buf, &v);
    CHECK_INT(n, STORE_VERDICT_MAX);
    CHECK_INT(store_verdict_unpack(&out, buf, n), 0);
    v.comment_len = STORE_VERDICT_TEXT_MAX + 1;
    CHECK_INT(store_verdict_pack(buf, sizeof buf, &v), 0);
    /* A buffer one byte short. */
    v.comment_len = 3;
    CHECK_INT(store_verdict_pack(buf, STORE_VERDICT_FIXED_LEN + STORE_VERDICT_TEXT_MAX + 2, &v),
              0);
    CHECK_INT(store_verdict_pack(buf, STORE_VERDICT_FIXED_LEN + STORE_VERDICT_TEXT_MAX + 3, &v),
              STORE_VERDICT_FIXED_LEN + STORE_VERDICT_TEXT_MAX + 3);
    /* Each result survives. */
    for (int r = 0; r < SPF_RES_COUNT; r++) {
        store_verdict_t x = {r, 0, 1.5, "", 0, "c", 1};
        n = store_verdict_pack(buf, sizeof buf, &x);
        CHECK_INT(store_verdict_unpack(&out, buf, n), 0);
        CHECK_INT(out.result, r);
    }
    store_verdict_t bad = {SPF_RES_COUNT, 0, 1.5, "", 0, "", 0};
    CHECK_INT(store_verdict_pack(buf, sizeof buf, &bad), 0);
}

static void test_store_verdict_corrupt(void)
{
    char buf[STORE_VERDICT_MAX], copy[STORE_VERDICT_MAX + 1];
    store_verdict_t v = {SPF_RES_PASS, SPF_USES_HELO, 1700000000.0, "exp", 3, "comment", 7};
    store_verdict_t out;
    size_t n = store_verdict_pack(buf, sizeof buf, &v);

    /* Every truncation, and one byte more, are refused. */
    for (size_t len = 0; len < n; len++)
        if (store_verdict_unpack(&out, buf, len) != -1)
            UNIT_FAIL_("a verdict cut to %zu of %zu bytes was accepted", len, n);
    memcpy(copy, buf, n);
    copy[n] = 'x';
    CHECK_INT(store_verdict_unpack(&out, copy, n + 1), -1);

    memcpy(copy, buf, n);
    copy[0] = 'W';
    CHECK_INT(store_verdict_unpack(&out, copy, n), -1);
    memcpy(copy, buf, n);
    copy[1] = '2';
    CHECK_INT(store_verdict_unpack(&out, copy, n), -1);
    memcpy(copy, buf, n);
    copy[2] = SPF_RES_COUNT;
    CHECK_INT(store_verdict_unpack(&out, copy, n), -1);
    memcpy(copy, buf, n);
    copy[3] = 4;                      /* an unknown uses bit */
    CHECK_INT(store_verdict_unpack(&out, copy, n), -1);
    memcpy(copy, buf, n);
    copy[13] = 4;                     /* explanation length 4: comment length misread */
    CHECK_INT(store_verdict_unpack(&out, copy, n), -1);
    memcpy(copy, buf, n);
    copy[12] = 0x04;                  /* explanation length over the maximum */
    copy[13] = 0x01;
    CHECK_INT(store_verdict_unpack(&out, copy, n), -1);
    memcpy(copy, buf, n);
    copy[14] = '\n';                  /* a control byte in a text */
    CHECK_INT(store_verdict_unpack(&out, copy, n), -1);
    memcpy(copy, buf, n);
    copy[n - 1] = 0x7f;
    CHECK_INT(store_verdict_unpack(&out, copy, n), -1);
    /* And the unchanged copy still reads. */
    memcpy(copy, buf, n);
    CHECK_INT(store_verdict_unpack(&out, copy, n), 0);
}

/* ---- against Redis ---- */

static void test_store_get_set_mget(void)
{
    static const char value[] = "bin\0ary\r\nvalue";
    const char *keys[3];
    size_t lens[3];
    char k1[STORE_KEY_MAX], k2[STORE_KEY_MAX];
    rec_t g, m;
    store_stats_t st;
    store_t *s;

    base_config(unix_address);
    s = new_up_store();
    if (!s)
        return;
    CHECK_STR(store_server(s), unix_address);
    lens[0] = store_key(s, k1, sizeof k1, STORE_KIND_DNS, "16:a.test", 9);
    lens[1] = store_key(s, k2, sizeof k2, STORE_KIND_DNS, "16:missing.test", 15);
    keys[0] = k1;
    keys[1] = k2;
    keys[2] = k1;
    lens[2] = lens[0];
    CHECK_INT(store_set(s, k1, lens[0], value, sizeof value - 1, 10.0), 0);

    memset(&g, 0, sizeof g);
    CHECK(store_get(s, k1, lens[0], rec_get, &g) != NULL);
    CHECK_INT(g.calls, 0);            /* never before the call returns */
    CHECK(redisfix_run_until(loop, rec_called, &g, RUN_DEADLINE));
    CHECK_INT(g.calls, 1);
    CHECK(g.found[0]);
    CHECK_INT(g.len[0], sizeof value - 1);
    CHECK(memcmp(g.data[0], value, sizeof value - 1) == 0);
    CHECK(get_equals(0, "t:d:16:a.test", value, sizeof value - 1));
    /* The expiry went with it: PX 10000. */
    CHECK(pttl(0, "t:d:16:a.test") > 9000 && pttl(0, "t:d:16:a.test") <= 10000);

    memset(&m, 0, sizeof m);
    CHECK(store_mget(s, 3, keys, lens, rec_mget, &m) != NULL);
    CHECK_INT(m.calls, 0);
    CHECK(redisfix_run_until(loop, rec_called, &m, RUN_DEADLINE));
    CHECK_INT(m.calls, 1);
    CHECK(m.answered);
    CHECK_INT(m.n, 3);
    CHECK(m.found[0] && !m.found[1] && m.found[2]);
    CHECK(memcmp(m.data[2], value, sizeof value - 1) == 0);

    /* A missing key through GET, a cancelled read, and MGET's bounds. */
    memset(&g, 0, sizeof g);
    CHECK(store_get(s, k2, lens[1], rec_get, &g) != NULL);
    CHECK(redisfix_run_until(loop, rec_called, &g, RUN_DEADLINE));
    CHECK(g.answered && !g.found[0]);
    memset(&g, 0, sizeof g);
    store_cancel(store_get(s, k1, lens[0], rec_get, &g));
    memset(&m, 0, sizeof m);
    CHECK(store_mget(s, 1, keys, lens, rec_mget, &m) != NULL);
    CHECK(redisfix_run_until(loop, rec_called, &m, RUN_DEADLINE));
    CHECK_INT(g.calls, 0);
    CHECK(store_mget(s, 0, keys, lens, rec_mget, &m) == NULL);
    CHECK(store_mget(s, STORE_MGET_MAX + 1, keys, lens, rec_mget, &m) == NULL);

    /* A TTL under a millisecond still expires, never lives forever. */
    CHECK_INT(store_set(s, k2, lens[1], "x", 1, 0.0001), 0);
    memset(&m, 0, sizeof m);
    CHECK(store_mget(s, 1, keys, lens, rec_mget, &m) != NULL);
    CHECK(redisfix_run_until(loop, rec_called, &m, RUN_DEADLINE));
    CHECK(pttl(0, "t:d:16:missing.test") < 2);

    store_get_stats(s, &st);
    CHECK_INT(st.connects, 1);
    CHECK_INT(st.outages, 0);
    CHECK_INT(st.pending, 0);
    CHECK_INT(st.up, 1);
    CHECK_INT(st.refused, 2);
    store_free(s);
}

static void test_store_timeout_and_late_reply(void)
{
    char k[STORE_KEY_MAX];
    size_t klen;
    rec_t g;
    store_stats_t st;
    double t0;
    store_t *s;

    base_config(tcp_address);
    cfg.redis_timeout = 0.1;
    cfg.redis_connect_timeout = 5;
    s = new_up_store();
    if (!s)
        return;
    klen = store_key(s, k, sizeof k, STORE_KIND_DNS, "1:x.test", 8);
    kill(redis.pid, SIGSTOP);
    memset(&g, 0, sizeof g);
    t0 = redisfix_now();
    CHECK(store_get(s, k, klen, rec_get, &g) != NULL);
    CHECK(redisfix_run_until(loop, rec_called, &g, RUN_DEADLINE));
    CHECK_INT(g.calls, 1);
    CHECK(!g.answered || !g.found[0]);
    CHECK(g.at - t0 >= 0.1 - 0.01);
    CHECK(g.at - t0 <= 0.1 + LATE_SLACK);
    store_get_stats(s, &st);
    CHECK_INT(st.timeouts, 1);
    CHECK_INT(st.pending, 1);
    kill(redis.pid, SIGCONT);
    /* The reply still comes, and is dropped: no second callback. */
    while (st.pending && redisfix_now() < t0 + RUN_DEADLINE) {
        ev_run(loop, EVRUN_ONCE | EVRUN_NOWAIT);
        store_get_stats(s, &st);
    }
    CHECK_INT(st.pending, 0);
    CHECK_INT(st.late, 1);
    CHECK_INT(g.calls, 1);
    CHECK_INT(st.up, 1);
    CHECK_INT(st.outages, 0);
    store_free(s);
}

static void test_store_stall_and_restart(void)
{
    char k[STORE_KEY_MAX];
    size_t klen;
    rec_t g;
    store_stats_t st;
    store_t *s;

    base_config(tcp_address);
    cfg.redis_timeout = 0.05;
    cfg.redis_connect_timeout = 0.2;
    s = new_up_store();
    if (!s)
        return;
    klen = store_key(s, k, sizeof k, STORE_KIND_DNS, "1:x.test", 8);

    /* Stalled: nothing answers for connect_timeout past a deadline -> dropped. */
    kill(redis.pid, SIGSTOP);
    memset(&g, 0, sizeof g);
    CHECK(store_get(s, k, klen, rec_get, &g) != NULL);
    CHECK(redisfix_run_until(loop, redisfix_store_down, s, RUN_DEADLINE));
    CHECK_INT(g.calls, 1);
    store_get_stats(s, &st);
    CHECK_INT(st.outages, 1);
    CHECK_INT(st.pending, 0);
    /* While down: reads refused at once, writes dropped. */
    CHECK(store_get(s, k, klen, rec_get, &g) == NULL);
    CHECK_INT(store_set(s, k, klen, "v", 1, 1), -1);
    kill(redis.pid, SIGCONT);
    CHECK(redisfix_run_until(loop, redisfix_store_up, s, RUN_DEADLINE));
    store_get_stats(s, &st);
    CHECK_INT(st.connects, 2);

    /* Stopped and started again: down at once, up again without help. */
    redisfix_stop(&redis);
    CHECK(redisfix_run_until(loop, redisfix_store_down, s, RUN_DEADLINE));
    CHECK(store_get(s, k, klen, rec_get, &g) == NULL);
    CHECK_INT(redisfix_start(&redis), 0);
    CHECK(redisfix_run_until(loop, redisfix_store_up, s, RUN_DEADLINE));
    store_get_stats(s, &st);
    CHECK_INT(st.outages, 2);
    CHECK_INT(st.connects, 3);
    CHECK(st.refused >= 2);
    CHECK(st.dropped >= 1);
    CHECK_INT(store_set(s, k, klen, "v", 1, 5), 0);
    memset(&g, 0, sizeof g);
    CHECK(store_get(s, k, klen, rec_get, &g) != NULL);
    CHECK(redisfix_run_until(loop, rec_called, &g, RUN_DEADLINE));
    CHECK(g.found[0] && g.len[0] == 1 && g.data[0][0] == 'v');
    store_free(s);
}

static void test_store_max_pending(void)
{
    char k[STORE_KEY_MAX];
    size_t klen;
    rec_t g[2];
    store_stats_t st;
    store_t *s;

    base_config(unix_address);
    cfg.redis_max_pending = 3;
    cfg.redis_timeout = 5;
    cfg.redis_connect_timeout = 5;
    s = new_up_store();
    if (!s)
        return;
    klen = store_key(s, k, sizeof k, STORE_KIND_DNS, "1:x.test", 8);
    kill(redis.pid, SIGSTOP);
    memset(g, 0, sizeof g);
    CHECK_INT(store_set(s, k, klen, "a", 1, 5), 0);
    CHECK_INT(store_set(s, k, klen, "b", 1, 5), 0);
    CHECK(store_get(s, k, klen, rec_get, &g[0]) != NULL);
    /* The fourth is one too many. */
    CHECK_INT(store_set(s, k, klen, "c", 1, 5), -1);
    CHECK(store_get(s, k, klen, rec_get, &g[1]) == NULL);
    store_get_stats(s, &st);
    CHECK_INT(st.pending, 3);
    CHECK_INT(st.dropped, 1);
    CHECK_INT(st.refused, 1);
    kill(redis.pid, SIGCONT);
    CHECK(redisfix_run_until(loop, rec_called, &g[0], RUN_DEADLINE));
    CHECK(g[0].found[0] && g[0].data[0][0] == 'b');
    CHECK_INT(g[1].calls, 0);
    store_free(s);
}

static void test_store_free_ends_reads(void)
{
    char k[STORE_KEY_MAX];
    size_t klen;
    rec_t g;
    store_t *s;

    base_config(unix_address);
    cfg.redis_timeout = 5;
    cfg.redis_connect_timeout = 5;
    s = new_up_store();
    if (!s)
        return;
    klen = store_key(s, k, sizeof k, STORE_KIND_DNS, "1:x.test", 8);
    kill(redis.pid, SIGSTOP);
    memset(&g, 0, sizeof g);
    CHECK(store_get(s, k, klen, rec_get, &g) != NULL);
    store_free(s);
    CHECK_INT(g.calls, 1);
    CHECK(!g.found[0]);
    kill(redis.pid, SIGCONT);
}

static void test_store_auth_and_select(void)
{
    static redisfix_t locked;
    char k[STORE_KEY_MAX];
    size_t klen;
    store_stats_t st;
    store_t *s;
    rec_t g;

    snprintf(locked.password, sizeof locked.password, "pa55word");
    CHECK_INT(redisfix_start(&locked), 0);
    if (!locked.pid)
        return;
    base_config("");
    snprintf(cfg.redis_address, sizeof cfg.redis_address, "127.0.0.1:%d", locked.port);
    snprintf(cfg.redis_password, sizeof cfg.redis_password, "wrong");
    s = store_new(loop, &cfg, err);
    CHECK(s != NULL);
    CHECK(!redisfix_run_until(loop, redisfix_store_up, s, 1.0));
    store_get_stats(s, &st);
    CHECK(st.failed_attempts >= 2);
    CHECK_INT(st.connects, 0);
    store_free(s);

    snprintf(cfg.redis_password, sizeof cfg.redis_password, "pa55word");
    cfg.redis_database = 3;
    s = new_up_store();
    if (!s)
        return;
    klen = store_key(s, k, sizeof k, STORE_KIND_VERDICT, "192.0.2.1|a.test", 16);
    CHECK_INT(store_set(s, k, klen, "in db 3", 7, 60), 0);
    memset(&g, 0, sizeof g);
    CHECK(store_get(s, k, klen, rec_get, &g) != NULL);
    CHECK(redisfix_run_until(loop, rec_called, &g, RUN_DEADLINE));
    redisReply *rp = redisfix_cmd(&locked, 3, "GET %s", "t:v:192.0.2.1|a.test");
    CHECK(rp && rp->type == REDIS_REPLY_STRING && strcmp(rp->str, "in db 3") == 0);
    if (rp)
        freeReplyObject(rp);
    rp = redisfix_cmd(&locked, 0, "EXISTS %s", "t:v:192.0.2.1|a.test");
    CHECK(rp && rp->type == REDIS_REPLY_INTEGER && rp->integer == 0);
    if (rp)
        freeReplyObject(rp);
    store_free(s);
    redisfix_cleanup(&locked);
}

static const char *const set_script =
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1";

static void test_store_scripts(void)
{
    const char *keys[1], *args[2];
    size_t klens[1], alens[2];
    char k[STORE_KEY_MAX];
    store_stats_t st;
    redisReply *rp;
    store_t *s;
    int id, done = 0;
    double deadline;

    base_config(unix_address);
    s = store_new(loop, &cfg, err);
    if (!s)
        return;
    id = store_script_add(s, set_script);
    CHECK_INT(id, 0);
    for (int i = 1; i < STORE_SCRIPTS_MAX; i++)
        CHECK_INT(store_script_add(s, "return 1"), i);
    CHECK_INT(store_script_add(s, "return 1"), -1);
    CHECK(redisfix_run_until(loop, redisfix_store_up, s, RUN_DEADLINE));
    klens[0] = store_key(s, k, sizeof k, STORE_KIND_REPUTATION, "d:a.test", 8);
    keys[0] = k;
    args[0] = "counted";
    alens[0] = 7;
    args[1] = "30000";
    alens[1] = 5;
    CHECK_INT(store_eval(s, id, 1, keys, klens, 2, args, alens), 0);
    CHECK_INT(store_eval(s, 7, 1, keys, klens, 2, args, alens), -1);
    deadline = redisfix_now() + RUN_DEADLINE;
    while (!done && redisfix_now() < deadline) {
        ev_run(loop, EVRUN_ONCE | EVRUN_NOWAIT);
        done = get_equals(0, "t:r:d:a.test", "counted", 7);
    }
    CHECK(done);
    CHECK(pttl(0, "t:r:d:a.test") > 29000);

    /* The script cache flushed behind our back: NOSCRIPT, loaded again, works again. */
    rp = redisfix_cmd(&redis, 0, "SCRIPT FLUSH");
    if (rp)
        freeReplyObject(rp);
    args[0] = "again";
    alens[0] = 5;
    done = 0;
    deadline = redisfix_now() + RUN_DEADLINE;
    while (!done && redisfix_now() < deadline) {
        store_eval(s, id, 1, keys, klens, 2, args, alens);
        redisfix_run_until(loop, redisfix_store_down, s, 0.02);
        done = get_equals(0, "t:r:d:a.test", "again", 5);
    }
    CHECK(done);
    store_get_stats(s, &st);
    CHECK(st.errors >= 1);
    CHECK_INT(st.up, 1);
    CHECK_INT(st.outages, 0);
    store_free(s);
}

int main(void)
{
    loop = ev_default_loop(0);
    log_open("test_store", 1, 0, LOG_LEVEL_WARN);
    if (redisfix_start(&redis) < 0) {
        printf("FAIL cannot start redis-server\n0 passed, 1 failed\n");
        return 1;
    }
    snprintf(unix_address, sizeof unix_address, "unix:%s", redis.sock);
    snprintf(tcp_address, sizeof tcp_address, "127.0.0.1:%d", redis.port);

    UNIT_RUN(test_store_key_layout);
    UNIT_RUN(test_store_verdict_round_trip);
    UNIT_RUN(test_store_verdict_corrupt);
    UNIT_RUN(test_store_get_set_mget);
    UNIT_RUN(test_store_timeout_and_late_reply);
    UNIT_RUN(test_store_stall_and_restart);
    UNIT_RUN(test_store_max_pending);
    UNIT_RUN(test_store_free_ends_reads);
    UNIT_RUN(test_store_auth_and_select);
    UNIT_RUN(test_store_scripts);
    redisfix_cleanup(&redis);
    ev_loop_destroy(loop);
    return unit_report();
}
