/* loadgen - load generator for spf-policyd's policy protocol (the benchmark).
 *
 * Speaks Postfix's SMTPD access policy protocol over N persistent TCP or unix
 * connections on one libev loop, each with at most one request outstanding, as smtpd
 * does. Modes (-m):
 *   cached    -k sender/client pairs, repeated: the verdict-cache path
 *   distinct  a never-used sender domain per request (key -o, -o + 1, ...): every
 *             check is cold and costs DNS round trips
 *   idle      every connection asks once (which proves the daemon accepted it), then
 *             all are held open until -d runs out or SIGINT/SIGTERM: the RSS figure.
 *             "idle: N connections open" is printed on stdout once all are answered.
 * Every request carries its own instance= so the daemon decides each one afresh
 * instead of answering DUNNO from its per-message memo.
 *
 * The run ends by itself: after -n requests, at the -d deadline (requests still
 * outstanding then get -t seconds to finish), or after -e errors. A connection that
 * fails is closed and reopened. Prints requests, errors by kind, req/s, latency
 * percentiles from a fixed-size histogram (nothing is allocated per request) and the
 * replies by their first -w words. Exit status: 0 when every request was answered,
 * 1 after errors or with nothing answered, 2 on bad usage or setup failure. */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hist.h"

/* Ephemeral ports bound TCP connections to one server address to ~60,000 anyway;
 * the cap keeps the connection table a sane allocation whatever -c says. */
#define CONNS_MAX 60000
/* Descriptors besides the connections: stdio, the epoll fd, libev's signal and
 * async pipes, and slack for the C library. */
#define FD_SPARE 32
/* A request is ~800 bytes of fixed attributes plus the expanded patterns. */
#define REQ_MAX 2048
/* A reply is one "action=..." line: an SMTP reply line is at most 512 bytes (RFC 5321
 * 4.5.3.1.5) and a PREPENDed header line at most 998 (RFC 5322 2.1.1). */
#define REPLY_MAX 2048
/* Sender and HELO patterns; with 20-digit keys they still fit REQ_MAX. */
#define PATTERN_MAX 200
/* Connections being opened or waiting for their first reply at once. Opening 10,000
 * at the same instant would overflow the daemon's listen backlog, and a dropped SYN
 * is retried only after a second, which would measure the kernel, not the daemon. */
#define CONNECT_PENDING_MAX 64
/* A refused connect is retried after this pause, so a dead server costs one error
 * per connection per 10 ms instead of a busy loop. */
#define RECONNECT_DELAY 0.01
/* How often outstanding requests and connects are checked against -t. */
#define SWEEP_INTERVAL 0.25
/* Distinct reply classes counted; more are added up as "(other)". */
#define ACTIONS_MAX 32
#define ACTION_KEY_MAX 64
#define WORDS_MAX 8
#define PLACEHOLDER "{N}"

enum mode { MODE_CACHED, MODE_DISTINCT, MODE_IDLE };
enum cstate { ST_DOWN, ST_CONNECTING, ST_BUSY, ST_READY };
enum err_kind { ERR_CONNECT, ERR_CLOSED, ERR_MALFORMED, ERR_TIMEOUT, ERR_KINDS };

static const char *const err_names[ERR_KINDS] = { "connect", "closed", "malformed", "timeout" };
static const char *const mode_names[] = { "cached", "distinct", "idle" };

struct options {
    const char *host, *port, *unix_path;
    unsigned conns;
    uint64_t requests;            /* 0: no limit */
    double duration;              /* seconds; 0: none */
    enum mode mode;
    uint64_t keys;                /* pairs repeated in cached and idle mode */
    uint64_t offset;              /* first key in distinct mode */
    const char *sender, *helo;    /* patterns, PLACEHOLDER replaced by the key */
    uint32_t net, hosts;          /* client addresses: net + 1 + key % hosts */
    double timeout;               /* seconds a reply or a connect may take */
    uint64_t max_errors;
    unsigned words;               /* reply words that make its class */
};

struct run;

struct conn {
    ev_io rio, wio;               /* data points to this conn */
    struct run *run;
    int fd;
    enum cstate state;
    int up;                       /* answered at least once since it connected */
    uint64_t since_ns;            /* connect started, or request sent */
    size_t outlen, outoff, inlen;
    char out[REQ_MAX];
    char in[REPLY_MAX];
};

struct action_count {
    char key[ACTION_KEY_MAX];
    uint64_t n;
};

struct run {
    struct ev_loop *loop;
    struct options opt;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct conn *conns;
    unsigned *queue;              /* ring of connections waiting to (re)connect */
    unsigned qhead, qlen;
    unsigned pending;             /* connecting or awaiting their first reply */
    unsigned busy;                /* requests outstanding */
    unsigned up;                  /* connections answered since they connected */
    int stopping, interrupted, ready_reported, setup_failed;
    uint64_t issued, completed, errors[ERR_KINDS], nerrors;
    uint64_t t0_ns, first_ns, last_ns;
    hist_t *hist;
    struct action_count actions[ACTIONS_MAX];
    unsigned nactions;
    uint64_t actions_other;
    ev_timer deadline, grace, sweep, pump;
    ev_signal sigint, sigterm;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void conn_start(struct run *r, struct conn *c);
static void conn_fail(struct conn *c, enum err_kind kind);
static void issue_next(struct conn *c);

/* ---- requests ---- */

struct buf {
    char *p;
    size_t len, cap;
    int overflow;
};

static void buf_put(struct buf *b, const char *s, size_t n)
{
    if (b->overflow || n > b->cap - b->len) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void buf_str(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static void buf_u64(struct buf *b, uint64_t v, int base)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = "0123456789abcdef"[v % (uint64_t)base];
        v /= (uint64_t)base;
    } while (v);
    buf_put(b, tmp + i, sizeof tmp - i);
}

static void buf_pattern(struct buf *b, const char *pattern, uint64_t key)
{
    const char *p = pattern, *hit;
    while ((hit = strstr(p, PLACEHOLDER)) != NULL) {
        buf_put(b, p, (size_t)(hit - p));
        buf_u64(b, key, 10);
        p = hit + strlen(PLACEHOLDER);
    }
    buf_str(b, p);
}

static uint64_t key_of(const struct run *r, uint64_t seq)
{
    if (r->opt.mode == MODE_DISTINCT)
        return r->opt.offset + seq;
    return seq % r->opt.keys;
}

/* The attributes Postfix 3.7 sends for RCPT TO, so the daemon parses a request of
 * realistic size; the varying ones are filled in by build_request(). */
static const char req_head[] =
    "request=smtpd_access_policy\n"
    "protocol_state=RCPT\n"
    "protocol_name=ESMTP\n"
    "client_name=unknown\n"
    "reverse_client_name=unknown\n"
    "client_port=40000\n"
    "recipient=rcpt@bench.example\n"
    "recipient_count=0\n"
    "queue_id=\n"
    "size=0\n"
    "etrn_domain=\n"
    "stress=\n"
    "sasl_method=\n"
    "sasl_username=\n"
    "sasl_sender=\n"
    "ccert_subject=\n"
    "ccert_issuer=\n"
    "ccert_fingerprint=\n"
    "ccert_pubkey_fingerprint=\n"
    "encryption_protocol=TLSv1.3\n"
    "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
    "encryption_keysize=256\n"
    "server_address=127.0.0.1\n"
    "server_port=25\n"
    "policy_context=\n"
    "compatibility_level=3.6\n"
    "mail_version=3.7.11\n";

/* Fills out with request number seq; -1 when it does not fit REQ_MAX. */
static int build_request(const struct run *r, uint64_t seq, char *out, size_t cap,
                         size_t *len)
{
    uint64_t key = key_of(r, seq);
    uint32_t ip = r->opt.net + 1 + (uint32_t)(key % r->opt.hosts);
    struct buf b = { out, 0, cap, 0 };

    buf_put(&b, req_head, sizeof req_head - 1);
    buf_str(&b, "client_address=");
    for (int shift = 24; shift >= 0; shift -= 8) {
        buf_u64(&b, (ip >> shift) & 0xff, 10);
        buf_str(&b, shift ? "." : "\n");
    }
    buf_str(&b, "helo_name=");
    buf_pattern(&b, r->opt.helo, key);
    buf_str(&b, "\nsender=");
    buf_pattern(&b, r->opt.sender, key);
    /* Unique across runs too: the pid tells loadgen processes apart. */
    buf_str(&b, "\ninstance=bench.");
    buf_u64(&b, (uint64_t)getpid(), 16);
    buf_str(&b, ".");
    buf_u64(&b, seq, 16);
    buf_str(&b, "\n\n");
    *len = b.len;
    return b.overflow ? -1 : 0;
}

/* ---- replies ---- */

static void count_action(struct run *r, const char *text, size_t len)
{
    char key[ACTION_KEY_MAX];
    size_t k = 0;
    unsigned words = 0;
    for (size_t i = 0; i < len && k < sizeof key - 1; i++) {
        if (text[i] == ' ' && ++words == r->opt.words)
            break;
        key[k++] = (text[i] >= 0x20 && text[i] < 0x7f) ? text[i] : '?';
    }
    key[k] = '\0';
    for (unsigned i = 0; i < r->nactions; i++) {
        if (strcmp(r->actions[i].key, key) == 0) {
            r->actions[i].n++;
            return;
        }
    }
    if (r->nactions == ACTIONS_MAX) {
        r->actions_other++;
        return;
    }
    memcpy(r->actions[r->nactions].key, key, k + 1);
    r->actions[r->nactions++].n = 1;
}

/* A reply is exactly "action=<text>\n\n" with a non-empty one-line text. Returns its
 * length once complete, 0 while more is needed, -1 when it is malformed, which
 * includes filling REPLY_MAX without completing. */
static long reply_scan(const char *in, size_t len, const char **text, size_t *textlen)
{
    static const char prefix[] = "action=";
    size_t plen = sizeof prefix - 1;
    size_t cmp = len < plen ? len : plen;
    if (memcmp(in, prefix, cmp) != 0)
        return -1;
    const char *nl = memchr(in, '\n', len);
    if (nl == NULL || (size_t)(nl - in) + 1 == len)
        return len == REPLY_MAX ? -1 : 0;
    size_t end = (size_t)(nl - in);
    if (in[end + 1] != '\n' || end <= plen)
        return -1;
    *text = in + plen;
    *textlen = end - plen;
    return (long)(end + 2);
}

/* ---- the run ---- */

static void finish(struct run *r)
{
    ev_break(r->loop, EVBREAK_ALL);
}

static void maybe_finish(struct run *r)
{
    int exhausted = r->opt.requests && r->issued >= r->opt.requests;
    if ((r->stopping || exhausted) && r->busy == 0)
        finish(r);
}

static void stop_issuing(struct run *r)
{
    r->stopping = 1;
    ev_timer_stop(r->loop, &r->pump);
    if (r->opt.mode == MODE_IDLE || r->busy == 0) {
        finish(r);
        return;
    }
    ev_timer_set(&r->grace, r->opt.timeout, 0.);
    ev_timer_start(r->loop, &r->grace);
}

static void pump(struct run *r)
{
    /* Bounded by the queue's length on entry: a connect that fails at once goes
     * back to the queue and waits for the next RECONNECT_DELAY tick. */
    for (unsigned n = r->qlen; n && r->qlen && r->pending < CONNECT_PENDING_MAX &&
                               !r->stopping; n--) {
        unsigned i = r->queue[r->qhead];
        r->qhead = (r->qhead + 1) % r->opt.conns;
        r->qlen--;
        conn_start(r, &r->conns[i]);
    }
    if (r->qlen && !r->stopping) {
        if (!ev_is_active(&r->pump))
            ev_timer_again(r->loop, &r->pump);
    } else {
        ev_timer_stop(r->loop, &r->pump);
    }
}

static void enqueue(struct run *r, struct conn *c)
{
    r->queue[(r->qhead + r->qlen) % r->opt.conns] = (unsigned)(c - r->conns);
    r->qlen++;
}

static void conn_close(struct conn *c)
{
    struct run *r = c->run;
    ev_io_stop(r->loop, &c->rio);
    ev_io_stop(r->loop, &c->wio);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->state == ST_BUSY)
        r->busy--;
    if (c->state != ST_DOWN && !c->up)
        r->pending--;
    if (c->up)
        r->up--;
    c->up = 0;
    c->state = ST_DOWN;
    c->inlen = c->outlen = c->outoff = 0;
}

static void conn_fail(struct conn *c, enum err_kind kind)
{
    struct run *r = c->run;
    conn_close(c);
    r->errors[kind]++;
    if (++r->nerrors >= r->opt.max_errors) {
        fprintf(stderr, "loadgen: stopping after %llu errors\n",
                (unsigned long long)r->nerrors);
        r->stopping = 1;
        finish(r);
        return;
    }
    if (!r->stopping) {
        enqueue(r, c);
        if (!ev_is_active(&r->pump))
            ev_timer_again(r->loop, &r->pump);
    }
    maybe_finish(r);
}

static void conn_write(struct conn *c)
{
    struct run *r = c->run;
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                ev_io_start(r->loop, &c->wio);
                return;
            }
            conn_fail(c, ERR_CLOSED);
            return;
        }
        c->outoff += (size_t)n;
    }
    ev_io_stop(r->loop, &c->wio);
}

static int may_issue(const struct run *r, const struct conn *c)
{
    if (r->stopping)
        return 0;
    if (r->opt.mode == MODE_IDLE)
        return !c->up;
    return r->opt.requests == 0 || r->issued < r->opt.requests;
}

static void issue_next(struct conn *c)
{
    struct run *r = c->run;
    if (!may_issue(r, c)) {
        c->state = ST_READY;
        maybe_finish(r);
        return;
    }
    if (build_request(r, r->issued, c->out, sizeof c->out, &c->outlen) < 0) {
        fprintf(stderr, "loadgen: request %llu does not fit %d bytes\n",
                (unsigned long long)r->issued, REQ_MAX);
        r->setup_failed = 1;
        r->stopping = 1;
        finish(r);
        return;
    }
    r->issued++;
    r->busy++;
    c->state = ST_BUSY;
    c->outoff = 0;
    c->since_ns = now_ns();
    if (r->first_ns == 0)
        r->first_ns = c->since_ns;
    conn_write(c);
}

static void conn_connected(struct conn *c)
{
    struct run *r = c->run;
    c->state = ST_READY;
    ev_io_stop(r->loop, &c->wio);
    ev_io_start(r->loop, &c->rio);
    issue_next(c);
}

static void reply_done(struct conn *c, const char *text, size_t textlen)
{
    struct run *r = c->run;
    uint64_t t = now_ns();
    hist_record(r->hist, (t - c->since_ns) / 1000);
    r->completed++;
    r->last_ns = t;
    count_action(r, text, textlen);
    r->busy--;
    c->state = ST_READY;
    c->inlen = 0;
    if (!c->up) {
        c->up = 1;
        r->up++;
        r->pending--;
        if (r->opt.mode == MODE_IDLE && !r->ready_reported && r->up == r->opt.conns) {
            r->ready_reported = 1;
            printf("idle: %u connections open, each answered once, after %.3f s\n",
                   r->up, (double)(t - r->t0_ns) / 1e9);
            fflush(stdout);
        }
        pump(r);
    }
    issue_next(c);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    (void)loop;
    (void)revents;
    for (;;) {
        ssize_t n = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            conn_fail(c, ERR_CLOSED);
            return;
        }
        if (n == 0) {
            conn_fail(c, ERR_CLOSED);
            return;
        }
        if (c->state != ST_BUSY) {
            conn_fail(c, ERR_MALFORMED);
            return;
        }
        c->inlen += (size_t)n;
        const char *text;
        size_t textlen;
        long done = reply_scan(c->in, c->inlen, &text, &textlen);
        if (done == 0)
            continue;
        if (done < 0 || (size_t)done != c->inlen) {
            conn_fail(c, ERR_MALFORMED);
            return;
        }
        reply_done(c, text, textlen);
        /* One reply per read callback: the next request has just been sent, and
         * its reply comes through the loop like every other. */
        return;
    }
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    (void)loop;
    (void)revents;
    if (c->state != ST_CONNECTING) {
        conn_write(c);
        return;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr != 0) {
        conn_fail(c, ERR_CONNECT);
        return;
    }
    conn_connected(c);
}

static void conn_start(struct run *r, struct conn *c)
{
    int fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "loadgen: socket: %s\n", strerror(errno));
        c->state = ST_DOWN;
        r->errors[ERR_CONNECT]++;
        r->nerrors++;
        r->setup_failed = 1;
        r->stopping = 1;
        finish(r);
        return;
    }
    if (r->addr.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->since_ns = now_ns();
    r->pending++;
    ev_io_set(&c->rio, fd, EV_READ);
    ev_io_set(&c->wio, fd, EV_WRITE);
    if (connect(fd, (struct sockaddr *)&r->addr, r->addrlen) == 0) {
        conn_connected(c);
        return;
    }
    if (errno == EINPROGRESS || errno == EAGAIN) {
        ev_io_start(r->loop, &c->wio);
        return;
    }
    conn_fail(c, ERR_CONNECT);
}

static void on_pump(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    pump(w->data);
}

static void on_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct run *r = w->data;
    uint64_t limit = (uint64_t)(r->opt.timeout * 1e9), t = now_ns();
    (void)loop;
    (void)revents;
    for (unsigned i = 0; i < r->opt.conns; i++) {
        struct conn *c = &r->conns[i];
        if (t - c->since_ns <= limit)
            continue;
        if (c->state == ST_CONNECTING)
            conn_fail(c, ERR_CONNECT);
        else if (c->state == ST_BUSY)
            conn_fail(c, ERR_TIMEOUT);
    }
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    stop_issuing(w->data);
}

static void on_grace(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct run *r = w->data;
    (void)loop;
    (void)revents;
    for (unsigned i = 0; i < r->opt.conns; i++)
        if (r->conns[i].state == ST_BUSY)
            conn_fail(&r->conns[i], ERR_TIMEOUT);
    finish(r);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct run *r = w->data;
    (void)loop;
    (void)revents;
    r->interrupted = 1;
    r->stopping = 1;
    finish(r);
}

/* ---- setup and report ---- */

static void usage(void)
{
    fprintf(stderr,
        "usage: loadgen [-H host] [-p port] [-u unixpath] [-c connections]\n"
        "               [-n requests] [-d seconds] [-m cached|distinct|idle] [-k keys]\n"
        "               [-o offset] [-s sender] [-h helo] [-a client-cidr]\n"
        "               [-t timeout] [-e max-errors] [-w words]\n"
        "  -H -p     TCP server (127.0.0.1 10041); -u a unix socket instead\n"
        "  -c        persistent connections, one request outstanding each (100)\n"
        "  -n -d     stop after this many requests / seconds (one is needed;\n"
        "            idle mode needs -d, the time to hold the connections)\n"
        "  -m        cached: -k pairs repeated; distinct: a new key per request\n"
        "            from -o on; idle: one request per connection, then hold\n"
        "  -k        sender/client pairs in cached and idle mode (10)\n"
        "  -s -h     sender and HELO patterns, {N} is the key\n"
        "            (user@c{N}.bench.test or user@d{N}.bench.test, mail.bench.test)\n"
        "  -a        IPv4 network of the client addresses (198.51.100.0/24)\n"
        "  -t        seconds a connect or a reply may take (10)\n"
        "  -e        stop after this many errors (1000)\n"
        "  -w        words of the action text that classify a reply (1)\n");
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 86400 * 365)
        return -1;
    *out = v;
    return 0;
}

static int parse_cidr(const char *s, uint32_t *net, uint32_t *hosts)
{
    char addr[INET_ADDRSTRLEN];
    const char *slash = strchr(s, '/');
    uint64_t bits;
    struct in_addr in;
    if (slash == NULL || (size_t)(slash - s) >= sizeof addr)
        return -1;
    memcpy(addr, s, (size_t)(slash - s));
    addr[slash - s] = '\0';
    /* At least 2 usable addresses after the network and broadcast ones. */
    if (inet_pton(AF_INET, addr, &in) != 1 || parse_u64(slash + 1, 0, 30, &bits) < 0)
        return -1;
    uint64_t size = (uint64_t)1 << (32 - bits);
    *net = ntohl(in.s_addr) & (uint32_t)~(size - 1);
    *hosts = (uint32_t)(size - 2);
    return 0;
}

static int parse_pattern(const char *s, const char **out)
{
    if (strlen(s) > PATTERN_MAX || strchr(s, '\n'))
        return -1;
    *out = s;
    return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    uint64_t v;
    int opt;
    const char *sender = NULL;
    *o = (struct options){
        .host = "127.0.0.1", .port = "10041", .conns = 100, .mode = MODE_CACHED,
        .keys = 10, .helo = "mail.bench.test", .timeout = 10, .max_errors = 1000,
        .words = 1,
    };
    parse_cidr("198.51.100.0/24", &o->net, &o->hosts);
    while ((opt = getopt(argc, argv, "H:p:u:c:n:d:m:k:o:s:h:a:t:e:w:")) != -1) {
        switch (opt) {
        case 'H': o->host = optarg; break;
        case 'p': o->port = optarg; break;
        case 'u':
            if (strlen(optarg) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
                fprintf(stderr, "loadgen: -u: path too long\n");
                return -1;
            }
            o->unix_path = optarg;
            break;
        case 'c':
            if (parse_u64(optarg, 1, CONNS_MAX, &v) < 0) {
                fprintf(stderr, "loadgen: -c: must be between 1 and %d\n", CONNS_MAX);
                return -1;
            }
            o->conns = (unsigned)v;
            break;
        case 'n':
            if (parse_u64(optarg, 1, UINT64_MAX, &o->requests) < 0) {
                fprintf(stderr, "loadgen: -n: must be a positive number\n");
                return -1;
            }
            break;
        case 'd':
        case 't':
            if (parse_seconds(optarg, opt == 'd' ? &o->duration : &o->timeout) < 0) {
                fprintf(stderr, "loadgen: -%c: must be a positive number of seconds\n", opt);
                return -1;
            }
            break;
        case 'm':
            if (strcmp(optarg, "cached") == 0)
                o->mode = MODE_CACHED;
            else if (strcmp(optarg, "distinct") == 0)
                o->mode = MODE_DISTINCT;
            else if (strcmp(optarg, "idle") == 0)
                o->mode = MODE_IDLE;
            else {
                fprintf(stderr, "loadgen: -m: must be cached, distinct or idle\n");
                return -1;
            }
            break;
        case 'k':
            if (parse_u64(optarg, 1, UINT64_MAX, &o->keys) < 0) {
                fprintf(stderr, "loadgen: -k: must be a positive number\n");
                return -1;
            }
            break;
        case 'o':
            if (parse_u64(optarg, 0, UINT64_MAX / 2, &o->offset) < 0) {
                fprintf(stderr, "loadgen: -o: must be a number\n");
                return -1;
            }
            break;
        case 's':
        case 'h':
            if (parse_pattern(optarg, opt == 's' ? &sender : &o->helo) < 0) {
                fprintf(stderr, "loadgen: -%c: one line of at most %d bytes\n", opt,
                        PATTERN_MAX);
                return -1;
            }
            break;
        case 'a':
            if (parse_cidr(optarg, &o->net, &o->hosts) < 0) {
                fprintf(stderr, "loadgen: -a: must be an IPv4 network, /0 to /30\n");
                return -1;
            }
            break;
        case 'e':
            if (parse_u64(optarg, 1, UINT64_MAX, &o->max_errors) < 0) {
                fprintf(stderr, "loadgen: -e: must be a positive number\n");
                return -1;
            }
            break;
        case 'w':
            if (parse_u64(optarg, 1, WORDS_MAX, &v) < 0) {
                fprintf(stderr, "loadgen: -w: must be between 1 and %d\n", WORDS_MAX);
                return -1;
            }
            o->words = (unsigned)v;
            break;
        default:
            usage();
            return -1;
        }
    }
    if (optind != argc) {
        usage();
        return -1;
    }
    if (o->mode == MODE_IDLE ? o->duration == 0 : (o->duration == 0 && o->requests == 0)) {
        fprintf(stderr, "loadgen: %s\n", o->mode == MODE_IDLE
                ? "idle mode needs -d, how long to hold the connections"
                : "needs -n or -d, or both, so the run ends");
        return -1;
    }
    o->sender = sender ? sender
              : o->mode == MODE_DISTINCT ? "user@d{N}.bench.test" : "user@c{N}.bench.test";
    return 0;
}

static int resolve(struct run *r)
{
    const struct options *o = &r->opt;
    if (o->unix_path) {
        struct sockaddr_un *ua = (struct sockaddr_un *)&r->addr;
        ua->sun_family = AF_UNIX;
        memcpy(ua->sun_path, o->unix_path, strlen(o->unix_path) + 1);
        r->addrlen = sizeof *ua;
        return 0;
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res;
    int rc = getaddrinfo(o->host, o->port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "loadgen: %s port %s: %s\n", o->host, o->port, gai_strerror(rc));
        return -1;
    }
    memcpy(&r->addr, res->ai_addr, res->ai_addrlen);
    r->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int raise_nofile(unsigned conns)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)conns + FD_SPARE;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        fprintf(stderr, "loadgen: getrlimit: %s\n", strerror(errno));
        return -1;
    }
    if (rl.rlim_cur >= need)
        return 0;
    rl.rlim_cur = need;
    if (rl.rlim_max < need)
        rl.rlim_max = need;        /* only root may; the error below says so */
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        fprintf(stderr, "loadgen: %u connections need %llu descriptors: setrlimit: %s\n",
                conns, (unsigned long long)need, strerror(errno));
        return -1;
    }
    return 0;
}

static double ms(uint64_t us)
{
    return (double)us / 1000.0;
}

static void report(const struct run *r)
{
    const struct options *o = &r->opt;
    uint64_t end = r->last_ns ? r->last_ns : r->first_ns;
    double elapsed = r->first_ns ? (double)(end - r->first_ns) / 1e9 : 0.0;
    unsigned in_flight = r->busy;

    if (o->unix_path)
        printf("target: unix:%s, %u connections, mode %s\n", o->unix_path, o->conns,
               mode_names[o->mode]);
    else
        printf("target: %s:%s, %u connections, mode %s\n", o->host, o->port, o->conns,
               mode_names[o->mode]);
    printf("requests: %llu sent, %llu answered, %u in flight at the end%s\n",
           (unsigned long long)r->issued, (unsigned long long)r->completed, in_flight,
           r->interrupted ? " (interrupted)" : "");
    printf("errors: %llu (", (unsigned long long)r->nerrors);
    for (int k = 0; k < ERR_KINDS; k++)
        printf("%s%s %llu", k ? ", " : "", err_names[k], (unsigned long long)r->errors[k]);
    printf(")\n");
    printf("elapsed: %.3f s\n", elapsed);
    printf("rate: %.0f req/s\n", elapsed > 0 ? (double)r->completed / elapsed : 0.0);
    printf("latency ms: p50 %.3f p90 %.3f p99 %.3f max %.3f (min %.3f mean %.3f)\n",
           ms(hist_percentile(r->hist, 50)), ms(hist_percentile(r->hist, 90)),
           ms(hist_percentile(r->hist, 99)), ms(hist_max(r->hist)),
           ms(hist_min(r->hist)), hist_mean(r->hist) / 1000.0);
    for (unsigned i = 0; i < r->nactions; i++)
        printf("action: %s: %llu (%.2f%%)\n", r->actions[i].key,
               (unsigned long long)r->actions[i].n,
               100.0 * (double)r->actions[i].n / (double)r->completed);
    if (r->actions_other)
        printf("action: (other): %llu\n", (unsigned long long)r->actions_other);
    if (o->mode == MODE_IDLE)
        printf("idle: %u of %u connections open at the end\n", r->up, o->conns);
}

int main(int argc, char **argv)
{
    struct run *r = calloc(1, sizeof *r);
    int status = 2;
    if (r == NULL || parse_args(argc, argv, &r->opt) < 0 || resolve(r) < 0 ||
        raise_nofile(r->opt.conns) < 0)
        goto out;

    char probe[REQ_MAX];
    size_t probelen;
    if (build_request(r, UINT64_MAX / 2, probe, sizeof probe, &probelen) < 0) {
        fprintf(stderr, "loadgen: a request with these patterns does not fit %d bytes\n",
                REQ_MAX);
        goto out;
    }

    r->conns = calloc(r->opt.conns, sizeof *r->conns);
    r->queue = calloc(r->opt.conns, sizeof *r->queue);
    r->hist = hist_new();
    r->loop = ev_default_loop(0);
    if (r->conns == NULL || r->queue == NULL || r->hist == NULL || r->loop == NULL) {
        fprintf(stderr, "loadgen: out of memory\n");
        goto out;
    }
    for (unsigned i = 0; i < r->opt.conns; i++) {
        struct conn *c = &r->conns[i];
        c->run = r;
        c->fd = -1;
        ev_init(&c->rio, on_read);
        ev_init(&c->wio, on_write);
        c->rio.data = c->wio.data = c;
        enqueue(r, c);
    }
    ev_init(&r->pump, on_pump);
    r->pump.repeat = RECONNECT_DELAY;
    ev_timer_init(&r->sweep, on_sweep, SWEEP_INTERVAL, SWEEP_INTERVAL);
    ev_init(&r->grace, on_grace);
    ev_signal_init(&r->sigint, on_signal, SIGINT);
    ev_signal_init(&r->sigterm, on_signal, SIGTERM);
    r->pump.data = r->sweep.data = r->grace.data = r;
    r->sigint.data = r->sigterm.data = r;
    ev_timer_start(r->loop, &r->sweep);
    ev_signal_start(r->loop, &r->sigint);
    ev_signal_start(r->loop, &r->sigterm);
    ev_timer_init(&r->deadline, on_deadline, r->opt.duration, 0.);
    r->deadline.data = r;
    if (r->opt.duration > 0)
        ev_timer_start(r->loop, &r->deadline);

    r->t0_ns = now_ns();
    pump(r);
    ev_run(r->loop, 0);

    report(r);
    status = r->setup_failed ? 2 : (r->nerrors || r->completed == 0) ? 1 : 0;

    for (unsigned i = 0; i < r->opt.conns; i++)
        if (r->conns[i].fd >= 0) {
            ev_io_stop(r->loop, &r->conns[i].rio);
            ev_io_stop(r->loop, &r->conns[i].wio);
            close(r->conns[i].fd);
        }
    ev_timer_stop(r->loop, &r->pump);
    ev_timer_stop(r->loop, &r->sweep);
    ev_timer_stop(r->loop, &r->grace);
    ev_timer_stop(r->loop, &r->deadline);
    ev_signal_stop(r->loop, &r->sigint);
    ev_signal_stop(r->loop, &r->sigterm);
out:
    if (r) {
        hist_free(r->hist);
        free(r->conns);
        free(r->queue);
        free(r);
    }
    return status;
}
