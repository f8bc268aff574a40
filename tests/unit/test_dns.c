// unit-deps: dns cache log
/* The DNS module against the real test server build/dnsd (started here on a free
 * loopback port with a zone of our own), on a real libev loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dns.h"
#include "log.h"
#include "unit.h"

/* How long dnsd may take to say it is ready, and any one test to get its answers:
 * generous, because valgrind slows everything down. */
#define START_DEADLINE 10.0
#define RUN_DEADLINE 10.0
#define NEG_TTL 120
/* Slack allowed past a deadline for the loop and the machine to notice it. */
#define LATE_SLACK 0.3

static const char zone_text[] =
    "a.test A 300 192.0.2.1\n"
    "a.test A 300 192.0.2.2\n"
    "a.test AAAA 300 2001:db8::1\n"
    "mx.test MX 600 10 mx1.test\n"
    "mx.test MX 600 20 MX2.Test\n"
    "txt.test TXT 300 \"v=spf1 \" \"ip4:192.0.2.0/24 \" \"-all\"\n"
    "nul.test TXT 300 \"a\\000b\"\n"
    "spf.test SPF 300 \"v=spf1 -all\"\n"
    "1.2.0.192.in-addr.arpa PTR 300 host.test\n"
    "alias.test CNAME 100 a.test\n"
    "loop1.test CNAME 300 loop2.test\n"
    "loop2.test CNAME 300 loop1.test\n"
    "short.test A 1 192.0.2.9\n"
    "long.test A 999999 192.0.2.10\n"
    "slow.test TIMEOUT\n"
    "broken.test SERVFAIL\n"
    "n0.test A 300 10.0.0.0\n"
    "n1.test A 300 10.0.0.1\n"
    "n2.test A 300 10.0.0.2\n"
    "n3.test A 300 10.0.0.3\n"
    "n4.test A 300 10.0.0.4\n"
    "n5.test A 300 10.0.0.5\n"
    "n6.test A 300 10.0.0.6\n"
    "n7.test A 300 10.0.0.7\n"
    "n8.test A 300 10.0.0.8\n"
    "n9.test A 300 10.0.0.9\n"
    "a$b.test A 300 192.0.2.5\n"
    "\\128.test A 300 192.0.2.6\n"
    "special.test MX 300 10 m@il(x).test\n"
    "esc.test PTR 300 a\\.b.test\n";

/* ---- the test DNS server ---- */

typedef struct dnsd {
    pid_t pid;
    int port;
    char dir[64], zone[96], qlog[96];
} dnsd_t;

/* Servers running, so that a crash of the test still stops them. */
#define DNSD_RUNNING_MAX 4
static dnsd_t *running[DNSD_RUNNING_MAX];

static void dnsd_stop(dnsd_t *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    unlink(s->zone);
    unlink(s->qlog);
    rmdir(s->dir);
    for (size_t i = 0; i < DNSD_RUNNING_MAX; i++)
        if (running[i] == s)
            running[i] = NULL;
}

static void stop_all(void)
{
    for (size_t i = 0; i < DNSD_RUNNING_MAX; i++)
        if (running[i])
            dnsd_stop(running[i]);
}

static void on_fatal_signal(int sig)
{
    stop_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Starts dnsd on a free port with the zone and latency given; -1 on failure. */
static int dnsd_start(dnsd_t *s, const char *zone, int latency_ms)
{
    const char *bin = getenv("DNSD_BIN") ? getenv("DNSD_BIN") : "build/dnsd";
    char lat[16], neg[16], line[128];
    int pipefd[2], fd;
    size_t got = 0;
    double deadline = now_mono() + START_DEADLINE;

    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/test_dns.XXXXXX");
    if (!mkdtemp(s->dir))
        return -1;
    for (size_t i = 0; i < DNSD_RUNNING_MAX; i++) {
        if (!running[i]) {
            running[i] = s;
            break;
        }
    }
    snprintf(s->zone, sizeof s->zone, "%s/zone", s->dir);
    snprintf(s->qlog, sizeof s->qlog, "%s/queries", s->dir);
    fd = open(s->zone, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, zone, strlen(zone)) != (ssize_t)strlen(zone))
        return -1;
    close(fd);
    if (access(bin, X_OK) != 0) {
        printf("FAIL %s not found: run make build/dnsd\n", bin);
        return -1;
    }
    snprintf(lat, sizeof lat, "%d", latency_ms);
    snprintf(neg, sizeof neg, "%d", NEG_TTL);
    if (pipe(pipefd) < 0)
        return -1;
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        /* Dies with the test, whatever kills the test. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pipefd[1], STDOUT_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        execl(bin, bin, "-p", "0", "-a", "127.0.0.1", "-z", s->zone, "-q", s->qlog,
              "-n", neg, "-l", lat, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    while (got < sizeof line - 1 && !memchr(line, '\n', got)) {
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        int left = (int)((deadline - now_mono()) * 1000);
        ssize_t n;
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        n = read(pipefd[0], line + got, sizeof line - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(pipefd[0]);
    line[got] = '\0';
    if (sscanf(line, "dnsd ready %d", &s->port) != 1) {
        printf("FAIL dnsd did not start: \"%s\"\n", line);
        return -1;
    }
    return 0;
}

/* How many queries for "name TYPE" dnsd has received. */
static int queries(const dnsd_t *s, const char *name, const char *type)
{
    char want[300], line[300];
    int n = 0;
    FILE *f = fopen(s->qlog, "r");

    if (!f)
        return 0;
    snprintf(want, sizeof want, "%s %s\n", name, type);
    while (fgets(line, sizeof line, f))
        if (strcmp(line, want) == 0)
            n++;
    fclose(f);
    return n;
}

/* Forgets the queries received so far (dnsd appends, so it writes on at 0). */
static void queries_reset(const dnsd_t *s)
{
    if (truncate(s->qlog, 0) < 0 && errno != ENOENT)
        printf("FAIL truncate %s: %s\n", s->qlog, strerror(errno));
}

/* The query log as one string, lines joined by ','. */
static void query_log(const dnsd_t *s, char *out, size_t size)
{
    char line[300];
    size_t len = 0;
    FILE *f = fopen(s->qlog, "r");

    out[0] = '\0';
    if (!f)
        return;
    while (fgets(line, sizeof line, f) && len < size) {
        line[strcspn(line, "\n")] = '\0';
        len += (size_t)snprintf(out + len, size - len, "%s%s", len ? "," : "", line);
    }
    fclose(f);
}

/* ---- the loop ---- */

static struct ev_loop *loop;
static dnsd_t main_dnsd;

typedef struct rec {
    int calls;
    int order;                      /* position among all callbacks of the test */
    enum dns_status status;
    int type;
    char name[300];
    uint32_t ttl;
    double expires, now;
    size_t count;
    char text[2048];                /* records, formatted, joined by '|' */
    size_t txtlen[4];
    struct rec *cancel;             /* cancelled from inside this callback */
    dns_lookup_t *cancel_handle;
    dns_t *lookup_from;             /* dns_lookup tried from inside this callback */
    int inner_null;                 /* ... and it returned NULL */
} rec_t;

static int calls_total;

static void format_rr(const dns_answer_t *a, size_t i, char *buf, size_t size)
{
    const dns_rr_t *r = &a->rr[i];

    switch (a->type) {
    case DNS_T_A:
        inet_ntop(AF_INET, &r->u.a, buf, (socklen_t)size);
        break;
    case DNS_T_AAAA:
        inet_ntop(AF_INET6, &r->u.aaaa, buf, (socklen_t)size);
        break;
    case DNS_T_MX:
        snprintf(buf, size, "%u %s", r->u.mx.pref, r->u.mx.name);
        break;
    case DNS_T_PTR:
        snprintf(buf, size, "%s", r->u.ptr);
        break;
    default:
        snprintf(buf, size, "%s", r->u.txt.data);
        break;
    }
}

static void record(void *ctx, const dns_answer_t *a)
{
    rec_t *r = ctx;

    r->calls++;
    r->order = ++calls_total;
    r->status = a->status;
    r->type = a->type;
    snprintf(r->name, sizeof r->name, "%s", a->name);
    r->ttl = a->ttl;
    r->expires = a->expires;
    r->now = ev_now(loop);
    r->count = a->count;
    r->text[0] = '\0';
    for (size_t i = 0; i < a->count; i++) {
        char one[1024];
        format_rr(a, i, one, sizeof one);
        snprintf(r->text + strlen(r->text), sizeof r->text - strlen(r->text), "%s%s",
                 i ? "|" : "", one);
        if ((a->type == DNS_T_TXT || a->type == DNS_T_SPF) && i < 4)
            r->txtlen[i] = a->rr[i].u.txt.len;
    }
    if (r->cancel_handle)
        dns_cancel(r->cancel_handle);
    if (r->lookup_from)
        r->inner_null = dns_lookup(r->lookup_from, "a.test", DNS_T_A, record, r) == NULL;
}

static int timed_out;

static void guard_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    timed_out = 1;
    ev_break(l, EVBREAK_ONE);
}

/* Runs the loop until every rec in the NULL-terminated list has been called, or the
 * deadline passes; 0 if they all were. */
static int run_until_called(rec_t **recs)
{
    ev_timer guard;
    int done = 0;

    timed_out = 0;
    ev_timer_init(&guard, guard_cb, RUN_DEADLINE, 0.);
    ev_timer_start(loop, &guard);
    while (!done && !timed_out) {
        done = 1;
        for (rec_t **r = recs; *r; r++)
            if ((*r)->calls == 0)
                done = 0;
        if (!done)
            ev_run(loop, EVRUN_ONCE);
    }
    ev_timer_stop(loop, &guard);
    return done ? 0 : -1;
}

static int run_one(rec_t *r)
{
    rec_t *list[] = {r, NULL};
    return run_until_called(list);
}

/* Lets the loop turn a few times, for callbacks that must not come. */
static void run_turns(int n)
{
    for (int i = 0; i < n; i++)
        ev_run(loop, EVRUN_NOWAIT);
}

static dns_options_t options(const dnsd_t *s, char *servers_buf, size_t size)
{
    dns_options_t o;

    snprintf(servers_buf, size, "127.0.0.1:%d", s->port);
    o.servers = servers_buf;
    o.timeout = 1.0;
    o.tries = 2;
    o.max_inflight = 100;
    o.cache_size = 1000;
    o.max_ttl = 86400;
    o.negative_ttl = 3600;
    o.error_ttl = 30;
    return o;
}

static dns_t *new_dns(const dnsd_t *s, dns_options_t *o, char *servers_buf, size_t size)
{
    char err[DNS_ERR_LEN] = "";
    dns_options_t def;
    dns_t *d;

    if (!o) {
        def = options(s, servers_buf, size);
        o = &def;
    }
    d = dns_new(loop, o, err);

    if (!d)
        printf("FAIL dns_new: %s\n", err);
    return d;
}

#define NEW_DNS(opt) new_dns(&main_dnsd, (opt), srv, sizeof srv)

static rec_t *rec_new(void)
{
    return calloc(1, sizeof(rec_t));
}

/* One lookup run to its answer. */
static rec_t *lookup_one(dns_t *d, const char *name, int type)
{
    rec_t *r = rec_new();

    if (!dns_lookup(d, name, type, record, r))
        printf("FAIL dns_lookup(%s) returned NULL\n", name);
    else if (run_one(r) < 0)
        printf("FAIL no answer for %s in %g s\n", name, RUN_DEADLINE);
    return r;
}

/* ---- tests ---- */

static void test_dns_a(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *r = lookup_one(d, "a.test", DNS_T_A);

    CHECK_INT(r->calls, 1);
    CHECK_INT(r->status, DNS_OK);
    CHECK_STR(r->name, "a.test");
    CHECK_INT(r->type, DNS_T_A);
    CHECK_INT(r->count, 2);
    CHECK_STR(r->text, "192.0.2.1|192.0.2.2");
    CHECK_INT(r->ttl, 300);
    CHECK(r->expires > r->now + 299 && r->expires <= r->now + 300);
    dns_free(d);
    CHECK_INT(r->calls, 1);
    free(r);
}

static void test_dns_aaaa(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *r = lookup_one(d, "a.test", DNS_T_AAAA);

    CHECK_INT(r->status, DNS_OK);
    CHECK_INT(r->count, 1);
    CHECK_STR(r->text, "2001:db8::1");
    dns_free(d);
    free(r);
}

static void test_dns_mx(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *r = lookup_one(d, "mx.test", DNS_T_MX);

    CHECK_INT(r->status, DNS_OK);
    CHECK_INT(r->count, 2);
    CHECK_STR(r->text, "10 mx1.test|20 MX2.Test");
    CHECK_INT(r->ttl, 600);
    dns_free(d);
    free(r);
}

static void test_dns_txt_multi_string(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *r = lookup_one(d, "txt.test", DNS_T_TXT);
    rec_t *n = lookup_one(d, "nul.test", DNS_T_TXT);
    rec_t *s = lookup_one(d, "spf.test", DNS_T_SPF);

    CHECK_INT(r->status, DNS_OK);
    CHECK_INT(r->count, 1);
    CHECK_STR(r->text, "v=spf1 ip4:192.0.2.0/24 -all");
    CHECK_INT(r->txtlen[0], 28);
    /* A NUL inside a string is kept and counted. */
    CHECK_INT(n->status, DNS_OK);
    CHECK_INT(n->txtlen[0], 3);
    CHECK_STR(n->text, "a");
    CHECK_INT(s->status, DNS_OK);
    CHECK_INT(s->type, DNS_T_SPF);
    CHECK_STR(s->text, "v=spf1 -all");
    dns_free(d);
    free(r);
    free(n);
    free(s);
}

static void test_dns_txt_nul_byte_position(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *r = lookup_one(d, "nul.test", DNS_T_TXT);
    const dns_answer_t *a = dns_peek(d, "nul.test", DNS_T_TXT);

    CHECK(a != NULL);
    if (a) {
        CHECK_INT(a->rr[0].u.txt.len, 3);
        CHECK(memcmp(a->rr[0].u.txt.data, "a\0b", 4) == 0);
    }
    dns_free(d);
    free(r);
}

static void test_dns_txt_over_512_via_tcp(void)
{
    char srv[64], zone[2048], want[700];
    dnsd_t big;
    dns_t *d;
    rec_t *r;

    for (int i = 0; i < 600; i++)
        want[i] = (char)('a' + i % 26);
    want[600] = '\0';
    snprintf(zone, sizeof zone, "big.test TXT 300 \"%s\"\n", want);
    CHECK_INT(dnsd_start(&big, zone, 0), 0);
    d = new_dns(&big, NULL, srv, sizeof srv);
    r = lookup_one(d, "big.test", DNS_T_TXT);
    CHECK_INT(r->status, DNS_OK);
    CHECK_INT(r->count, 1);
    CHECK_INT(r->txtlen[0], 600);
    CHECK_STR(r->text, want);
    /* Once over UDP (truncated), once over TCP. */
    CHECK_INT(queries(&big, "big.test", "TXT"), 2);
    dns_free(d);
    dnsd_stop(&big);
    free(r);
}

static void test_dns_ptr(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *r = lookup_one(d, "1.2.0.192.in-addr.arpa", DNS_T_PTR);

    CHECK_INT(r->status, DNS_OK);
    CHECK_INT(r->count, 1);
    CHECK_STR(r->text, "host.test");
    dns_free(d);
    free(r);
}

static void test_dns_cname_chain(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *r = lookup_one(d, "alias.test", DNS_T_A);
    rec_t *l = lookup_one(d, "loop1.test", DNS_T_A);

    /* The records of the chain's end, under the name asked; the TTL is the shortest
     * link's. */
    CHECK_INT(r->status, DNS_OK);
    CHECK_STR(r->name, "alias.test");
    CHECK_STR(r->text, "192.0.2.1|192.0.2.2");
    CHECK_INT(r->ttl, 100);
    /* dnsd answers a loop SERVFAIL itself. */
    CHECK_INT(l->status, DNS_SERVFAIL);
    dns_free(d);
    free(r);
    free(l);
}

static void test_dns_unusual_bytes_in_names(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *dollar = lookup_one(d, "A$B.test", DNS_T_A);
    rec_t *high = lookup_one(d, "\200.test", DNS_T_A);
    rec_t *mx = lookup_one(d, "special.test", DNS_T_MX);
    rec_t *ptr = lookup_one(d, "esc.test", DNS_T_PTR);

    /* c-ares writes such names back as "a\$b" and "\128": they must still match. */
    CHECK_INT(dollar->status, DNS_OK);
    CHECK_STR(dollar->text, "192.0.2.5");
    CHECK_STR(dollar->name, "a$b.test");
    CHECK_INT(high->status, DNS_OK);
    CHECK_STR(high->text, "192.0.2.6");
    CHECK_STR(mx->text, "10 m@il(x).test");
    /* A dot inside a label stays escaped: it is not a label boundary. */
    CHECK_STR(ptr->text, "a\\.b.test");
    dns_free(d);
    free(dollar);
    free(high);
    free(mx);
    free(ptr);
}

static void test_dns_nxdomain_and_nodata(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *nx = lookup_one(d, "nope.test", DNS_T_A);
    rec_t *nd = lookup_one(d, "a.test", DNS_T_MX);

    CHECK_INT(nx->status, DNS_NXDOMAIN);
    CHECK_INT(nx->count, 0);
    CHECK_STR(nx->text, "");
    CHECK_INT(nx->ttl, NEG_TTL);
    CHECK(nx->expires > nx->now + NEG_TTL - 1 && nx->expires <= nx->now + NEG_TTL);
    CHECK_INT(nd->status, DNS_NODATA);
    CHECK_INT(nd->count, 0);
    CHECK_INT(nd->ttl, NEG_TTL);
    dns_free(d);
    free(nx);
    free(nd);
}

static void test_dns_negative_ttl_capped(void)
{
    char srv[64];
    dns_options_t o = options(&main_dnsd, srv, sizeof srv);
    dns_t *d;
    rec_t *nx, *nd;

    o.negative_ttl = NEG_TTL - 1;
    d = NEW_DNS(&o);
    nx = lookup_one(d, "nope.test", DNS_T_A);
    nd = lookup_one(d, "a.test", DNS_T_MX);
    CHECK_INT(nx->ttl, NEG_TTL - 1);
    CHECK_INT(nd->ttl, NEG_TTL - 1);
    dns_free(d);
    free(nx);
    free(nd);
}

static void test_dns_ttl_capped_by_max_ttl(void)
{
    char srv[64];
    dns_options_t o = options(&main_dnsd, srv, sizeof srv);
    dns_t *d;
    rec_t *r, *fits;

    o.max_ttl = 300;
    d = NEW_DNS(&o);
    r = lookup_one(d, "long.test", DNS_T_A);
    fits = lookup_one(d, "a.test", DNS_T_A);
    CHECK_INT(r->status, DNS_OK);
    CHECK_INT(r->ttl, 300);
    CHECK(r->expires <= r->now + 300);
    /* A TTL equal to the cap is kept as it is. */
    CHECK_INT(fits->ttl, 300);
    dns_free(d);
    free(r);
    free(fits);
}

static void expiry_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)revents;
    *(int *)w->data = 1;
}

static void test_dns_ttl_expires(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *r = lookup_one(d, "short.test", DNS_T_A);
    rec_t *again;
    const dns_answer_t *a;
    ev_timer t;
    int fired = 0;

    CHECK_INT(r->ttl, 1);
    a = dns_peek(d, "short.test", DNS_T_A);
    CHECK(a != NULL);
    if (a)
        CHECK(a->expires == r->expires);
    CHECK_INT(queries(&main_dnsd, "short.test", "A"), 1);
    /* Wait (on the loop) until the answer's expiry time has come. */
    ev_timer_init(&t, expiry_cb, r->expires - ev_now(loop), 0.);
    t.data = &fired;
    ev_timer_start(loop, &t);
    while (!fired)
        ev_run(loop, EVRUN_ONCE);
    CHECK(ev_now(loop) >= r->expires);
    CHECK(dns_peek(d, "short.test", DNS_T_A) == NULL);
    again = lookup_one(d, "short.test", DNS_T_A);
    CHECK_INT(again->status, DNS_OK);
    CHECK_INT(queries(&main_dnsd, "short.test", "A"), 2);
    dns_free(d);
    free(r);
    free(again);
}

static void test_dns_cache_hit_is_async(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *first = lookup_one(d, "mx.test", DNS_T_MX);
    rec_t *second = rec_new();
    dns_stats_t st;

    CHECK(dns_lookup(d, "MX.test.", DNS_T_MX, record, second) != NULL);
    /* Not called from inside dns_lookup, even though the answer is at hand. */
    CHECK_INT(second->calls, 0);
    CHECK_INT(run_one(second), 0);
    CHECK_INT(second->calls, 1);
    CHECK_INT(second->status, DNS_OK);
    CHECK_STR(second->name, "mx.test");
    CHECK_STR(second->text, "10 mx1.test|20 MX2.Test");
    CHECK_INT(queries(&main_dnsd, "mx.test", "MX"), 1);
    dns_get_stats(d, &st);
    CHECK_INT(st.lookups, 2);
    CHECK_INT(st.cache_hits, 1);
    CHECK_INT(st.queries_sent, 1);
    CHECK_INT(st.coalesced, 0);
    CHECK_INT(st.inflight, 0);
    CHECK_INT(st.queued, 0);
    dns_free(d);
    CHECK_INT(first->calls, 1);
    CHECK_INT(second->calls, 1);
    free(first);
    free(second);
}

static void test_dns_peek(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *r;
    const dns_answer_t *a;
    dns_stats_t st;

    CHECK(dns_peek(d, "ptr.test", DNS_T_A) == NULL);
    r = lookup_one(d, "A.Test", DNS_T_AAAA);
    a = dns_peek(d, "a.test.", DNS_T_AAAA);
    CHECK(a != NULL);
    if (a) {
        CHECK_STR(a->name, "a.test");
        CHECK_INT(a->status, DNS_OK);
        CHECK_INT(a->count, 1);
    }
    CHECK(dns_peek(d, "a.test", DNS_T_A) == NULL);
    CHECK(dns_peek(d, "", DNS_T_AAAA) == NULL);
    dns_get_stats(d, &st);
    CHECK_INT(st.queries_sent, 1);
    dns_free(d);
    free(r);
}

static void test_dns_answer_refcount(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *r = lookup_one(d, "txt.test", DNS_T_TXT);
    const dns_answer_t *a = dns_peek(d, "txt.test", DNS_T_TXT);

    CHECK(a != NULL);
    if (a) {
        CHECK_INT(a->refs, 1);
        CHECK(dns_answer_ref(a) == a);
        CHECK_INT(a->refs, 2);
    }
    /* The cache's reference goes with the dns_t; ours keeps the answer alive. */
    dns_free(d);
    if (a) {
        CHECK_INT(a->refs, 1);
        CHECK_STR(a->rr[0].u.txt.data, "v=spf1 ip4:192.0.2.0/24 -all");
        dns_answer_unref(a);
    }
    free(r);
}

#define COALESCE_N 10

static void test_dns_coalesced(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *r[COALESCE_N + 1] = {0};
    const char *spelling[] = {"txt.test", "TXT.test", "txt.test.", "Txt.Test."};
    dns_stats_t st;

    for (int i = 0; i < COALESCE_N; i++) {
        r[i] = rec_new();
        CHECK(dns_lookup(d, spelling[i % 4], DNS_T_TXT, record, r[i]) != NULL);
    }
    dns_get_stats(d, &st);
    CHECK_INT(st.inflight, 1);
    CHECK_INT(st.coalesced, COALESCE_N - 1);
    CHECK_INT(run_until_called(r), 0);
    for (int i = 0; i < COALESCE_N; i++) {
        CHECK_INT(r[i]->calls, 1);
        CHECK_INT(r[i]->status, DNS_OK);
        CHECK_STR(r[i]->text, "v=spf1 ip4:192.0.2.0/24 -all");
        /* In the order they were asked. */
        CHECK_INT(r[i]->order, r[0]->order + i);
    }
    CHECK_INT(queries(&main_dnsd, "txt.test", "TXT"), 1);
    dns_get_stats(d, &st);
    CHECK_INT(st.queries_sent, 1);
    CHECK_INT(st.lookups, COALESCE_N);
    CHECK_INT(st.inflight, 0);
    dns_free(d);
    for (int i = 0; i < COALESCE_N; i++) {
        CHECK_INT(r[i]->calls, 1);
        free(r[i]);
    }
}

static void test_dns_cancel_one_waiter(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *a = rec_new(), *b = rec_new(), *c = rec_new(), *hit = rec_new();
    rec_t *wait_ac[] = {a, c, NULL};
    dns_lookup_t *lb, *lhit;

    CHECK(dns_lookup(d, "1.2.0.192.in-addr.arpa", DNS_T_PTR, record, a) != NULL);
    lb = dns_lookup(d, "1.2.0.192.in-addr.arpa", DNS_T_PTR, record, b);
    CHECK(dns_lookup(d, "1.2.0.192.in-addr.arpa", DNS_T_PTR, record, c) != NULL);
    CHECK(lb != NULL);
    dns_cancel(lb);
    CHECK_INT(run_until_called(wait_ac), 0);
    run_turns(3);
    CHECK_INT(a->calls, 1);
    CHECK_INT(b->calls, 0);
    CHECK_INT(c->calls, 1);
    CHECK_STR(c->text, "host.test");
    /* The answer was still cached: a cache hit, itself cancelled before delivery. */
    lhit = dns_lookup(d, "1.2.0.192.in-addr.arpa", DNS_T_PTR, record, hit);
    CHECK(lhit != NULL);
    dns_cancel(lhit);
    run_turns(3);
    CHECK_INT(hit->calls, 0);
    CHECK_INT(queries(&main_dnsd, "1.2.0.192.in-addr.arpa", "PTR"), 1);
    dns_cancel(NULL);
    dns_free(d);
    CHECK_INT(b->calls, 0);
    CHECK_INT(hit->calls, 0);
    free(a);
    free(b);
    free(c);
    free(hit);
}

static void test_dns_cancel_from_callback(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *a = rec_new(), *b = rec_new(), *c = rec_new();
    rec_t *wait_ac[] = {a, c, NULL};

    CHECK(dns_lookup(d, "n5.test", DNS_T_A, record, a) != NULL);
    a->cancel_handle = dns_lookup(d, "n5.test", DNS_T_A, record, b);
    CHECK(a->cancel_handle != NULL);
    CHECK(dns_lookup(d, "n5.test", DNS_T_A, record, c) != NULL);
    /* a's callback runs first and cancels b, whose answer is already on its way. */
    CHECK_INT(run_until_called(wait_ac), 0);
    run_turns(3);
    CHECK_INT(a->calls, 1);
    CHECK_INT(b->calls, 0);
    CHECK_INT(c->calls, 1);
    CHECK_STR(c->text, "10.0.0.5");
    dns_free(d);
    CHECK_INT(b->calls, 0);
    free(a);
    free(b);
    free(c);
}

static void test_dns_timeout(void)
{
    char srv[64];
    dns_options_t o = options(&main_dnsd, srv, sizeof srv);
    dns_t *d;
    rec_t *r = rec_new(), *again;
    double start, took;
    dns_stats_t st;

    o.timeout = 0.3;
    o.tries = 2;
    d = NEW_DNS(&o);
    start = now_mono();
    CHECK(dns_lookup(d, "slow.test", DNS_T_A, record, r) != NULL);
    CHECK_INT(run_one(r), 0);
    took = now_mono() - start;
    CHECK_INT(r->status, DNS_TIMEOUT);
    CHECK_INT(r->count, 0);
    CHECK_INT(r->ttl, 30);
    /* Both tries were made, and the whole took timeout x tries, not c-ares's
     * doubling 0.3 + 0.6. */
    CHECK(took >= 0.6 - 0.01);
    CHECK(took <= 0.6 + LATE_SLACK);
    CHECK_INT(queries(&main_dnsd, "slow.test", "A"), 2);
    dns_get_stats(d, &st);
    CHECK_INT(st.timeouts, 1);
    CHECK_INT(st.servfails, 0);
    /* The failure is remembered for error_ttl. */
    again = lookup_one(d, "slow.test", DNS_T_A);
    CHECK_INT(again->status, DNS_TIMEOUT);
    dns_get_stats(d, &st);
    CHECK_INT(st.cache_hits, 1);
    CHECK_INT(st.queries_sent, 1);
    dns_free(d);
    free(r);
    free(again);
}

static void test_dns_late_answer_refreshes_cache(void)
{
    char srv[64];
    dnsd_t slow;
    dns_options_t o;
    dns_t *d;
    rec_t *r = rec_new();
    dns_stats_t st;
    const dns_answer_t *a = NULL;
    double deadline;

    /* Tries at 0, 0.1 and 0.3 s (c-ares doubles), all given up at 0.7 s; our own
     * deadline is 0.3 s; dnsd answers the first try at 0.5 s. */
    CHECK_INT(dnsd_start(&slow, zone_text, 500), 0);
    o = options(&slow, srv, sizeof srv);
    o.timeout = 0.1;
    o.tries = 3;
    d = new_dns(&slow, &o, srv, sizeof srv);
    CHECK(dns_lookup(d, "n3.test", DNS_T_A, record, r) != NULL);
    CHECK_INT(run_one(r), 0);
    CHECK_INT(r->status, DNS_TIMEOUT);
    dns_get_stats(d, &st);
    /* c-ares still holds the query. */
    CHECK_INT(st.inflight, 1);
    deadline = now_mono() + RUN_DEADLINE;
    while (now_mono() < deadline) {
        a = dns_peek(d, "n3.test", DNS_T_A);
        if (a && a->status == DNS_OK)
            break;
        ev_run(loop, EVRUN_ONCE);
    }
    CHECK(a != NULL && a->status == DNS_OK);
    if (a && a->status == DNS_OK) {
        CHECK_INT(a->count, 1);
        CHECK_INT(a->ttl, 300);
    }
    dns_get_stats(d, &st);
    CHECK_INT(st.inflight, 0);
    CHECK_INT(st.timeouts, 1);
    CHECK_INT(r->calls, 1);
    dns_free(d);
    dnsd_stop(&slow);
    free(r);
}

static void test_dns_servfail(void)
{
    char srv[64];
    dns_t *d = NEW_DNS(NULL);
    rec_t *r = lookup_one(d, "broken.test", DNS_T_A);
    dns_stats_t st;

    CHECK_INT(r->status, DNS_SERVFAIL);
    CHECK_INT(r->count, 0);
    CHECK_INT(r->ttl, 30);
    CHECK_STR(r->name, "broken.test");
    dns_get_stats(d, &st);
    CHECK_INT(st.servfails, 1);
    CHECK_INT(st.timeouts, 0);
    dns_free(d);
    free(r);
}

/* ---- answers dnsd cannot give ----
 *
 * dnsd builds well-formed answers with an SOA whose TTL equals its minimum. A small
 * responder on the test's own loop sends what it is given instead: the query's ID
 * and question copied, then the sections in raw bytes, where 0xc0 0x0c names the
 * question's name. */

typedef struct raw {
    ev_io io;
    int fd, port;
    unsigned rcode, an, ns;
    const unsigned char *tail;      /* answer and authority records */
    size_t taillen;
} raw_t;

static void raw_cb(struct ev_loop *l, ev_io *w, int revents)
{
    raw_t *r = (raw_t *)w;
    unsigned char q[512], out[1024];
    struct sockaddr_in from;
    socklen_t fromlen = sizeof from;
    ssize_t n = recvfrom(r->fd, q, sizeof q, 0, (struct sockaddr *)&from, &fromlen);

    (void)l;
    (void)revents;
    if (n < 12 || (size_t)n - 12 + 12 + r->taillen > sizeof out)
        return;
    memcpy(out, q, 2);
    out[2] = 0x81;                  /* QR, RD */
    out[3] = (unsigned char)(0x80 | r->rcode);  /* RA, rcode */
    out[4] = 0;
    out[5] = 1;
    out[6] = 0;
    out[7] = (unsigned char)r->an;
    out[8] = 0;
    out[9] = (unsigned char)r->ns;
    out[10] = out[11] = 0;
    memcpy(out + 12, q + 12, (size_t)n - 12);
    if (r->taillen)
        memcpy(out + n, r->tail, r->taillen);
    sendto(r->fd, out, (size_t)n + r->taillen, 0, (struct sockaddr *)&from, fromlen);
}

static int raw_start(raw_t *r)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;

    memset(r, 0, sizeof *r);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (r->fd < 0 || bind(r->fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(r->fd, (struct sockaddr *)&sa, &len) < 0)
        return -1;
    r->port = ntohs(sa.sin_port);
    ev_io_init(&r->io, raw_cb, r->fd, EV_READ);
    ev_io_start(loop, &r->io);
    return 0;
}

static void raw_stop(raw_t *r)
{
    ev_io_stop(loop, &r->io);
    close(r->fd);
}

/* Looks name up (type) from a responder sending rcode and the records given. */
static rec_t *raw_lookup(raw_t *r, const char *name, int type, unsigned rcode, unsigned an,
                         unsigned ns, const unsigned char *tail, size_t taillen)
{
    char srv[64];
    dns_options_t o = options(&main_dnsd, srv, sizeof srv);
    dns_t *d;
    rec_t *res;

    snprintf(srv, sizeof srv, "127.0.0.1:%d", r->port);
    o.tries = 1;
    r->rcode = rcode;
    r->an = an;
    r->ns = ns;
    r->tail = tail;
    r->taillen = taillen;
    d = new_dns(&main_dnsd, &o, srv, sizeof srv);
    res = lookup_one(d, name, type);
    dns_free(d);
    return res;
}

/* Root-owned SOA with empty names: TTL and MINIMUM as given. */
#define SOA(ttl, min)                                                          \
    0, 0, 6, 0, 1, 0, 0, 0, (ttl), 0, 22, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0,  \
        0, 1, 0, 0, 0, 1, 0, 0, 0, (min)

static void test_dns_negative_ttl_from_soa(void)
{
    raw_t r;
    const unsigned char ttl_low[] = {SOA(50, 200)};
    const unsigned char min_low[] = {SOA(200, 40)};
    rec_t *a, *b, *c, *nd;

    CHECK_INT(raw_start(&r), 0);
    /* RFC 2308 5: the smaller of the SOA's own TTL and its MINIMUM. */
    a = raw_lookup(&r, "q.test", DNS_T_A, 3, 0, 1, ttl_low, sizeof ttl_low);
    CHECK_INT(a->status, DNS_NXDOMAIN);
    CHECK_INT(a->ttl, 50);
    b = raw_lookup(&r, "q.test", DNS_T_A, 3, 0, 1, min_low, sizeof min_low);
    CHECK_INT(b->status, DNS_NXDOMAIN);
    CHECK_INT(b->ttl, 40);
    nd = raw_lookup(&r, "q.test", DNS_T_TXT, 0, 0, 1, min_low, sizeof min_low);
    CHECK_INT(nd->status, DNS_NODATA);
    CHECK_INT(nd->ttl, 40);
    /* No SOA at all: a short fixed time. */
    c = raw_lookup(&r, "q.test", DNS_T_A, 3, 0, 0, NULL, 0);
    CHECK_INT(c->status, DNS_NXDOMAIN);
    CHECK_INT(c->ttl, 60);
    raw_stop(&r);
    free(a);
    free(b);
    free(c);
    free(nd);
}

static void test_dns_only_asked_names_kept(void)
{
    raw_t r;
    /* In this order: the chain's end, a stranger, then the CNAME leading there. */
    const unsigned char recs[] = {
        6, 't', 'a', 'r', 'g', 'e', 't', 4, 't', 'e', 's', 't', 0,
        0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 7,
        5, 'o', 't', 'h', 'e', 'r', 4, 't', 'e', 's', 't', 0,
        0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 8,
        0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 200, 0, 13,
        6, 'T', 'A', 'R', 'G', 'E', 'T', 4, 't', 'e', 's', 't', 0,
    };
    rec_t *a;

    CHECK_INT(raw_start(&r), 0);
    a = raw_lookup(&r, "q.test", DNS_T_A, 0, 3, 0, recs, sizeof recs);
    CHECK_INT(a->status, DNS_OK);
    CHECK_INT(a->count, 1);
    CHECK_STR(a->text, "192.0.2.7");
    CHECK_INT(a->ttl, 200);
    raw_stop(&r);
    free(a);
}

static void test_dns_ttl_top_bit_is_zero(void)
{
    raw_t r;
    const unsigned char rec[] = {0xc0, 0x0c, 0, 1, 0, 1, 0x80, 0, 0, 0, 0, 4, 192, 0, 2, 1};
    rec_t *a;

    CHECK_INT(raw_start(&r), 0);
    a = raw_lookup(&r, "q.test", DNS_T_A, 0, 1, 0, rec, sizeof rec);
    CHECK_INT(a->status, DNS_OK);
    CHECK_INT(a->ttl, 0);
    CHECK_STR(a->text, "192.0.2.1");
    raw_stop(&r);
    free(a);
}

static void test_dns_malformed_is_servfail(void)
{
    raw_t r;
    const unsigned char short_a[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 44, 0, 3, 192, 0, 2};
    const unsigned char txt_overrun[] = {0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 1, 44, 0, 3,
                                         5, 'a', 'b'};
    const unsigned char rdlen_overrun[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 44, 0, 9,
                                           192, 0, 2, 1};
    /* The RDATA's name points at itself (offset 36: header 12, question 12, owner
     * and fixed fields 12). Pointing into the header instead would read the random
     * query ID, which is sometimes a valid name. */
    const unsigned char ptr_loop[] = {0xc0, 0x0c, 0, 12, 0, 1, 0, 0, 1, 44, 0, 2,
                                      0xc0, 0x24};
    const unsigned char one_rec[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1};
    const unsigned char mx_short[] = {0xc0, 0x0c, 0, 15, 0, 1, 0, 0, 1, 44, 0, 2, 0, 10};
    /* The name's last byte lies past the RDATA. */
    const unsigned char ptr_past[] = {0xc0, 0x0c, 0, 12, 0, 1, 0, 0, 1, 44, 0, 2, 1, 'a', 0};
    rec_t *res[7];

    CHECK_INT(raw_start(&r), 0);
    res[0] = raw_lookup(&r, "q.test", DNS_T_A, 0, 1, 0, short_a, sizeof short_a);
    res[1] = raw_lookup(&r, "q.test", DNS_T_TXT, 0, 1, 0, txt_overrun, sizeof txt_overrun);
    res[2] = raw_lookup(&r, "q.test", DNS_T_A, 0, 1, 0, rdlen_overrun, sizeof rdlen_overrun);
    res[3] = raw_lookup(&r, "q.test", DNS_T_PTR, 0, 1, 0, ptr_loop, sizeof ptr_loop);
    /* Two records announced, one sent. */
    res[4] = raw_lookup(&r, "q.test", DNS_T_A, 0, 2, 0, one_rec, sizeof one_rec);
    res[5] = raw_lookup(&r, "q.test", DNS_T_MX, 0, 1, 0, mx_short, sizeof mx_short);
    res[6] = raw_lookup(&r, "q.test", DNS_T_PTR, 0, 1, 0, ptr_past, sizeof ptr_past);
    for (int i = 0; i < 7; i++) {
        CHECK_INT(res[i]->calls, 1);
        if (res[i]->status != DNS_SERVFAIL)
            printf("FAIL case %d: status %s\n", i, dns_status_name(res[i]->status));
        CHECK_INT(res[i]->status, DNS_SERVFAIL);
        CHECK_INT(res[i]->ttl, 30);
        free(res[i]);
    }
    raw_stop(&r);
}

static void test_dns_no_server(void)
{
    char srv[64], err[DNS_ERR_LEN] = "";
    dns_options_t o = options(&main_dnsd, srv, sizeof srv);
    dns_t *d;
    rec_t *r = rec_new();
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    double start;

    /* A port nobody listens on: a UDP socket that was bound and closed again. */
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    snprintf(srv, sizeof srv, "127.0.0.1:%u", ntohs(sa.sin_port));
    o.timeout = 0.5;
    o.tries = 1;
    d = dns_new(loop, &o, err);
    start = ev_now(loop);
    CHECK(d != NULL);
    CHECK(dns_lookup(d, "a.test", DNS_T_A, record, r) != NULL);
    CHECK_INT(r->calls, 0);
    CHECK_INT(run_one(r), 0);
    /* The ICMP port unreachable comes back as ECONNREFUSED: a server failure, at
     * once rather than after the timeout. */
    CHECK_INT(r->status, DNS_SERVFAIL);
    CHECK(r->now - start < o.timeout);
    dns_free(d);
    CHECK_INT(r->calls, 1);
    free(r);
}

/* The most queries in flight and queued seen at any loop turn. */
typedef struct probe {
    dns_t *d;
    unsigned max_inflight, max_queued;
} probe_t;

static void inflight_sample(struct ev_loop *l, ev_prepare *w, int revents)
{
    probe_t *p = w->data;
    dns_stats_t st;

    (void)l;
    (void)revents;
    dns_get_stats(p->d, &st);
    if (st.inflight > p->max_inflight)
        p->max_inflight = st.inflight;
    if (st.queued > p->max_queued)
        p->max_queued = st.queued;
}

#define INFLIGHT_N 10
#define INFLIGHT_LATENCY_MS 50

static void test_dns_max_inflight(void)
{
    char srv[64], name[32], want[32], log[512];
    dnsd_t lat;
    dns_options_t o;
    probe_t probe = {NULL, 0, 0};
    rec_t *r[INFLIGHT_N + 1] = {0};
    ev_prepare sample;
    dns_stats_t st;
    double start, took;

    CHECK_INT(dnsd_start(&lat, zone_text, INFLIGHT_LATENCY_MS), 0);
    o = options(&lat, srv, sizeof srv);
    o.max_inflight = 2;
    probe.d = new_dns(&lat, &o, srv, sizeof srv);
    ev_prepare_init(&sample, inflight_sample);
    sample.data = &probe;
    ev_prepare_start(loop, &sample);
    start = now_mono();
    for (int i = 0; i < INFLIGHT_N; i++) {
        r[i] = rec_new();
        snprintf(name, sizeof name, "n%d.test", i);
        CHECK(dns_lookup(probe.d, name, DNS_T_A, record, r[i]) != NULL);
    }
    dns_get_stats(probe.d, &st);
    CHECK_INT(st.inflight, 2);
    CHECK_INT(st.queued, INFLIGHT_N - 2);
    CHECK_INT(run_until_called(r), 0);
    took = now_mono() - start;
    ev_prepare_stop(loop, &sample);
    CHECK_INT(probe.max_inflight, 2);
    CHECK_INT(probe.max_queued, INFLIGHT_N - 2);
    for (int i = 0; i < INFLIGHT_N; i++) {
        snprintf(want, sizeof want, "10.0.0.%d", i);
        CHECK_INT(r[i]->status, DNS_OK);
        CHECK_STR(r[i]->text, want);
    }
    /* Two at a time: five rounds of latency at least. */
    CHECK(took >= (INFLIGHT_N / 2) * INFLIGHT_LATENCY_MS / 1000.0 - 0.01);
    /* Sent in the order asked (FIFO). */
    query_log(&lat, log, sizeof log);
    CHECK_STR(log, "n0.test A,n1.test A,n2.test A,n3.test A,n4.test A,n5.test A,"
                   "n6.test A,n7.test A,n8.test A,n9.test A");
    dns_get_stats(probe.d, &st);
    CHECK_INT(st.inflight, 0);
    CHECK_INT(st.queued, 0);
    CHECK_INT(st.queries_sent, INFLIGHT_N);
    dns_free(probe.d);
    dnsd_stop(&lat);
    for (int i = 0; i < INFLIGHT_N; i++)
        free(r[i]);
}

static void test_dns_free_fails_pending(void)
{
    char srv[64];
    dns_options_t o = options(&main_dnsd, srv, sizeof srv);
    dns_t *d;
    rec_t *cached, *hit = rec_new(), *sent = rec_new(), *shared = rec_new();
    rec_t *queued = rec_new(), *cancelled = rec_new();
    dns_lookup_t *lc;
    dns_stats_t st;
    ev_timer guard;
    double start;

    o.max_inflight = 1;
    d = NEW_DNS(&o);
    cached = lookup_one(d, "a.test", DNS_T_A);
    CHECK(dns_lookup(d, "a.test", DNS_T_A, record, hit) != NULL);
    CHECK(dns_lookup(d, "slow.test", DNS_T_A, record, sent) != NULL);
    CHECK(dns_lookup(d, "slow.test", DNS_T_A, record, shared) != NULL);
    CHECK(dns_lookup(d, "n1.test", DNS_T_A, record, queued) != NULL);
    lc = dns_lookup(d, "n2.test", DNS_T_A, record, cancelled);
    dns_cancel(lc);
    /* Lookups attempted from a shutdown callback are refused. */
    sent->lookup_from = d;
    dns_get_stats(d, &st);
    CHECK_INT(st.inflight, 1);
    CHECK_INT(st.queued, 2);
    CHECK_INT(hit->calls + sent->calls + queued->calls, 0);
    dns_free(d);
    CHECK_INT(hit->calls, 1);
    CHECK_INT(hit->status, DNS_SHUTDOWN);
    CHECK_STR(hit->name, "a.test");
    CHECK_INT(hit->count, 0);
    CHECK_INT(sent->calls, 1);
    CHECK_INT(sent->status, DNS_SHUTDOWN);
    CHECK_STR(sent->name, "slow.test");
    CHECK_INT(sent->inner_null, 1);
    CHECK_INT(shared->calls, 1);
    CHECK_INT(shared->status, DNS_SHUTDOWN);
    CHECK_INT(queued->calls, 1);
    CHECK_INT(queued->status, DNS_SHUTDOWN);
    CHECK_STR(queued->name, "n1.test");
    CHECK_INT(cancelled->calls, 0);
    CHECK_INT(cached->calls, 1);
    /* Every watcher is stopped: with only an unreferenced guard left, ev_run
     * returns at once instead of waiting for it. */
    timed_out = 0;
    ev_timer_init(&guard, guard_cb, 2.0, 0.);
    ev_timer_start(loop, &guard);
    ev_unref(loop);
    start = now_mono();
    ev_run(loop, 0);
    ev_ref(loop);
    ev_timer_stop(loop, &guard);
    CHECK_INT(timed_out, 0);
    CHECK(now_mono() - start < 1.0);
    run_turns(3);
    CHECK_INT(sent->calls, 1);
    CHECK_INT(hit->calls, 1);
    free(cached);
    free(hit);
    free(sent);
    free(shared);
    free(queued);
    free(cancelled);
}

static void test_dns_invalid_names(void)
{
    char srv[64], label63[80], label64[80], name253[300], name254[300], dot253[310];
    dns_t *d = NEW_DNS(NULL);
    rec_t *r63 = rec_new(), *r253 = rec_new(), *rdot = rec_new(), *nop = rec_new();
    rec_t *rspace = rec_new();
    rec_t *wait[] = {r63, r253, rdot, rspace, NULL};
    dns_stats_t st;

    memset(label63, 'a', 63);
    memcpy(label63 + 63, ".test", 6);
    memset(label64, 'a', 64);
    memcpy(label64 + 64, ".test", 6);
    /* 4 x 63 + 3 dots = 255 would be too long; 62+1+62+1+62+1+62+1+1 = 253. */
    snprintf(name253, sizeof name253, "%.62s.%.62s.%.62s.%.62s.b", label63, label63, label63,
             label63);
    snprintf(name254, sizeof name254, "%.62s.%.62s.%.62s.%.62s.bc", label63, label63,
             label63, label63);
    snprintf(dot253, sizeof dot253, "%s.", name253);
    CHECK_INT(strlen(name253), 253);
    CHECK_INT(strlen(name254), 254);

    CHECK(dns_lookup(d, "", DNS_T_A, record, nop) == NULL);
    CHECK(dns_lookup(d, ".", DNS_T_A, record, nop) == NULL);
    CHECK(dns_lookup(d, "a..test", DNS_T_A, record, nop) == NULL);
    CHECK(dns_lookup(d, ".a.test", DNS_T_A, record, nop) == NULL);
    CHECK(dns_lookup(d, "a.test..", DNS_T_A, record, nop) == NULL);
    CHECK(dns_lookup(d, label64, DNS_T_A, record, nop) == NULL);
    CHECK(dns_lookup(d, name254, DNS_T_A, record, nop) == NULL);
    CHECK(dns_lookup(d, "a\\.b.test", DNS_T_A, record, nop) == NULL);
    CHECK(dns_lookup(d, "a\tb.test", DNS_T_A, record, nop) == NULL);
    CHECK(dns_lookup(d, "a.test", 5, record, nop) == NULL);
    CHECK(dns_peek(d, label64, DNS_T_A) == NULL);
    dns_get_stats(d, &st);
    CHECK_INT(st.lookups, 0);
    CHECK_INT(st.queries_sent, 0);

    /* Exactly at the limits: accepted, asked, answered NXDOMAIN. */
    CHECK(dns_lookup(d, label63, DNS_T_A, record, r63) != NULL);
    CHECK(dns_lookup(d, name253, DNS_T_A, record, r253) != NULL);
    CHECK(dns_lookup(d, dot253, DNS_T_A, record, rdot) != NULL);
    /* A macro expansion can put a space in a name; labels may hold any byte. */
    CHECK(dns_lookup(d, "a b.test", DNS_T_A, record, rspace) != NULL);
    CHECK_INT(run_until_called(wait), 0);
    CHECK_INT(rspace->status, DNS_NXDOMAIN);
    CHECK_STR(rspace->name, "a b.test");
    CHECK_INT(r63->status, DNS_NXDOMAIN);
    CHECK_INT(strlen(r63->name), 63 + 5);
    CHECK_INT(r253->status, DNS_NXDOMAIN);
    CHECK_STR(r253->name, name253);
    CHECK_STR(rdot->name, name253);
    dns_get_stats(d, &st);
    CHECK_INT(st.queries_sent, 3);
    CHECK_INT(st.coalesced, 1);
    dns_free(d);
    CHECK_INT(nop->calls, 0);
    free(rspace);
    free(r63);
    free(r253);
    free(rdot);
    free(nop);
}

static void test_dns_new_errors(void)
{
    char srv[64], err[DNS_ERR_LEN];
    dns_options_t o = options(&main_dnsd, srv, sizeof srv);

    o.servers = "not an address";
    err[0] = '\0';
    CHECK(dns_new(loop, &o, err) == NULL);
    CHECK_STR(err, "dns: servers 'not an address': Misformatted string");
    o = options(&main_dnsd, srv, sizeof srv);
    o.timeout = 0;
    CHECK(dns_new(loop, &o, err) == NULL);
    CHECK_STR(err, "dns: timeout must be between 0.001 and 2147483 seconds");
    o = options(&main_dnsd, srv, sizeof srv);
    o.max_inflight = 0;
    CHECK(dns_new(loop, &o, err) == NULL);
    CHECK_STR(err, "dns: tries, max_inflight and cache_size must be at least 1");
}

static void test_dns_resolv_conf_default(void)
{
    char srv[64], err[DNS_ERR_LEN] = "";
    dns_options_t o = options(&main_dnsd, srv, sizeof srv);
    dns_t *d;

    /* No servers: c-ares reads /etc/resolv.conf; nothing is sent here. */
    o.servers = "";
    d = dns_new(loop, &o, err);
    CHECK(d != NULL);
    CHECK_STR(err, "");
    dns_free(d);
    o.servers = NULL;
    d = dns_new(loop, &o, err);
    CHECK(d != NULL);
    dns_free(d);
}

static void test_dns_names(void)
{
    CHECK_STR(dns_status_name(DNS_OK), "ok");
    CHECK_STR(dns_status_name(DNS_NODATA), "nodata");
    CHECK_STR(dns_status_name(DNS_NXDOMAIN), "nxdomain");
    CHECK_STR(dns_status_name(DNS_SERVFAIL), "servfail");
    CHECK_STR(dns_status_name(DNS_TIMEOUT), "timeout");
    CHECK_STR(dns_status_name(DNS_SHUTDOWN), "shutdown");
    CHECK_STR(dns_type_name(DNS_T_A), "A");
    CHECK_STR(dns_type_name(DNS_T_AAAA), "AAAA");
    CHECK_STR(dns_type_name(DNS_T_MX), "MX");
    CHECK_STR(dns_type_name(DNS_T_TXT), "TXT");
    CHECK_STR(dns_type_name(DNS_T_PTR), "PTR");
    CHECK_STR(dns_type_name(DNS_T_SPF), "SPF");
    CHECK_STR(dns_type_name(5), "unknown");
}

/* Every test starts with an empty query log. */
#define RUN(fn)                                                                \
    do {                                                                       \
        queries_reset(&main_dnsd);                                             \
        UNIT_RUN(fn);                                                          \
    } while (0)

int main(void)
{
    signal(SIGSEGV, on_fatal_signal);
    signal(SIGABRT, on_fatal_signal);
    signal(SIGINT, on_fatal_signal);
    signal(SIGTERM, on_fatal_signal);
    log_open("test_dns", 1, 0, LOG_LEVEL_WARN);
    loop = ev_default_loop(0);
    if (dnsd_start(&main_dnsd, zone_text, 0) < 0) {
        stop_all();
        printf("0 passed, 1 failed\n");
        return 1;
    }
    RUN(test_dns_a);
    RUN(test_dns_aaaa);
    RUN(test_dns_mx);
    RUN(test_dns_txt_multi_string);
    RUN(test_dns_txt_nul_byte_position);
    RUN(test_dns_txt_over_512_via_tcp);
    RUN(test_dns_ptr);
    RUN(test_dns_cname_chain);
    RUN(test_dns_unusual_bytes_in_names);
    RUN(test_dns_nxdomain_and_nodata);
    RUN(test_dns_negative_ttl_capped);
    RUN(test_dns_ttl_capped_by_max_ttl);
    RUN(test_dns_ttl_expires);
    RUN(test_dns_cache_hit_is_async);
    RUN(test_dns_peek);
    RUN(test_dns_answer_refcount);
    RUN(test_dns_coalesced);
    RUN(test_dns_cancel_one_waiter);
    RUN(test_dns_cancel_from_callback);
    RUN(test_dns_timeout);
    RUN(test_dns_late_answer_refreshes_cache);
    RUN(test_dns_servfail);
    RUN(test_dns_negative_ttl_from_soa);
    RUN(test_dns_only_asked_names_kept);
    RUN(test_dns_ttl_top_bit_is_zero);
    RUN(test_dns_malformed_is_servfail);
    RUN(test_dns_no_server);
    RUN(test_dns_max_inflight);
    RUN(test_dns_free_fails_pending);
    RUN(test_dns_invalid_names);
    RUN(test_dns_new_errors);
    RUN(test_dns_resolv_conf_default);
    RUN(test_dns_names);
    stop_all();
    ev_loop_destroy(loop);
    return unit_report();
}
