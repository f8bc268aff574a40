/* dnsd - the test DNS server: answers only from a zone file, over UDP and TCP.
 *
 *     dnsd -p PORT [-a 127.0.0.1] -z ZONEFILE [-l LATENCY_MS] [-q QUERYLOG] [-n NEG_TTL]
 *
 * -p 0 picks a port free for both UDP and TCP. When listening it prints
 * "dnsd ready PORT" on stdout. -l delays every answer by that many milliseconds
 * (each on its own timer, so any number wait in parallel). -q appends "name TYPE" to
 * QUERYLOG for every query received, written at once; names are in the text form of
 * msg_name_text (as received, unusual bytes as \DDD). -n sets the SOA minimum and TTL
 * of negative answers (default 300). SIGHUP re-reads the zone file and prints
 * "dnsd reloaded" or, after an error line on stderr, "dnsd reload failed" (the old
 * zone stays). SIGTERM and SIGINT stop it. A bad zone at start: "FILE:LINE: reason"
 * on stderr, exit 1. Zone grammar and answers: zone.h.
 *
 * One thread, one libev loop. Replies are built when the query arrives and sent when
 * their latency timer fires. UDP replies over MSG_UDP_MAX go out truncated with TC.
 * TCP: 2-byte length framing, any number of queries per connection, answered in the
 * order their timers fire. Answers that could not be sent, queries dropped over the
 * in-flight cap and refused connections are counted and reported at exit. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg.h"
#include "zone.h"

/* Delayed answers waiting for their timer; past it queries are dropped, as an
 * overloaded server would, instead of growing without bound. */
#define DNSD_PENDING_MAX 200000
/* TCP connections at once; more are closed at accept. */
#define DNSD_CONN_MAX 1024
/* Unsent TCP output per connection; a client that stops reading is cut off there. */
#define DNSD_WBUF_MAX (8 * (MSG_MAX + MSG_TCP_PREFIX))
/* Datagrams read per wakeup, so TCP clients are not starved by a UDP flood. */
#define DNSD_UDP_BATCH 64
/* Socket buffers for benchmark bursts of thousands of queries. */
#define DNSD_SOCKBUF (4 * 1024 * 1024)
/* Attempts at finding a port free for both UDP and TCP with -p 0. */
#define DNSD_BIND_TRIES 50
#define DNSD_LISTEN_BACKLOG 512
#define DNSD_NEG_TTL_DEFAULT 300
/* Latency beyond an hour is a typo. */
#define DNSD_LATENCY_MAX_MS 3600000UL
#define MS_PER_S 1000.0
#define DNSD_EXIT_USAGE 2

struct server;
struct conn;

struct pending {
    ev_timer timer;
    struct server *srv;
    struct conn *conn;              /* NULL: UDP, sent to peer */
    struct pending *prev, *next;
    struct sockaddr_storage peer;
    socklen_t peerlen;
    size_t len;
    unsigned char msg[];
};

struct conn {
    ev_io rio, wio;
    struct server *srv;
    int fd;
    struct conn *prev, *next;
    struct pending *pending;
    int eof;                        /* the client has finished sending */
    int dead;                       /* broken: free when the callback unwinds */
    size_t rlen;
    unsigned char *wbuf;
    size_t wlen, wcap;
    unsigned char rbuf[MSG_TCP_PREFIX + MSG_MAX];
};

struct server {
    struct ev_loop *loop;
    zone_t *zone;
    const char *zone_path;
    uint32_t neg_ttl;
    double latency;
    int qlog_fd;
    int udp_fd, tcp_fd;
    ev_io udp_w, tcp_w;
    ev_signal hup_w, term_w, int_w;
    struct pending *udp_pending;
    size_t npending;
    struct conn *conns;
    size_t nconns;
    /* Counted, not logged one by one, so an overload does not flood stderr; the
     * totals are printed at exit. */
    unsigned long unsent, dropped, refused;
    unsigned char in[MSG_MAX];
    unsigned char out[MSG_MAX];
};

static void usage(void)
{
    fprintf(stderr, "usage: dnsd -p PORT [-a ADDRESS] -z ZONEFILE [-l LATENCY_MS] "
                    "[-q QUERYLOG] [-n NEG_TTL]\n");
    exit(DNSD_EXIT_USAGE);
}

static int parse_num(const char *s, unsigned long max, unsigned long *v)
{
    char *end;

    if (!*s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    *v = strtoul(s, &end, 10);
    return (*end || errno || *v > max) ? -1 : 0;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* ---- query log ---- */

static void log_query(struct server *s, const struct msg_query *q)
{
    char name[MSG_NAME_TEXT_MAX], tbuf[MSG_TYPE_NAME_LEN];
    char line[MSG_NAME_TEXT_MAX + MSG_TYPE_NAME_LEN + 2];
    int n;

    if (s->qlog_fd < 0)
        return;
    n = snprintf(line, sizeof(line), "%s %s\n", msg_name_text(q->qname, name),
                 msg_type_name(q->qtype, tbuf, sizeof(tbuf)));
    if (n > 0 && write(s->qlog_fd, line, (size_t)n) != n)
        fprintf(stderr, "dnsd: query log: %s\n", strerror(errno));
}

/* ---- pending answers ---- */

static struct pending **pending_list(struct pending *p)
{
    return p->conn ? &p->conn->pending : &p->srv->udp_pending;
}

static void pending_free(struct pending *p)
{
    struct pending **head = pending_list(p);

    ev_timer_stop(p->srv->loop, &p->timer);
    if (p->prev)
        p->prev->next = p->next;
    else
        *head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->srv->npending--;
    free(p);
}

/* ---- TCP ---- */

static void conn_free(struct conn *c)
{
    struct server *s = c->srv;

    while (c->pending)
        pending_free(c->pending);
    ev_io_stop(s->loop, &c->rio);
    ev_io_stop(s->loop, &c->wio);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    free(c->wbuf);
    free(c);
}

/* Frees c when it is broken, or when the client is done and everything is sent.
 * Callers return right after. */
static void conn_settle(struct conn *c)
{
    if (c->dead || (c->eof && !c->pending && c->wlen == 0))
        conn_free(c);
}

static void conn_flush(struct conn *c)
{
    size_t off = 0;

    while (off < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + off, c->wlen - off, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                c->dead = 1;
            break;
        }
        off += (size_t)n;
    }
    memmove(c->wbuf, c->wbuf + off, c->wlen - off);
    c->wlen -= off;
    if (c->wlen && !c->dead)
        ev_io_start(c->srv->loop, &c->wio);
    else
        ev_io_stop(c->srv->loop, &c->wio);
}

static void conn_send(struct conn *c, const unsigned char *msg, size_t len)
{
    size_t need = c->wlen + MSG_TCP_PREFIX + len;

    if (need > DNSD_WBUF_MAX) {
        fprintf(stderr, "dnsd: TCP client not reading, closing\n");
        c->dead = 1;
        return;
    }
    if (need > c->wcap) {
        size_t cap = c->wcap ? c->wcap : MSG_TCP_PREFIX + MSG_MAX;
        unsigned char *w;

        while (cap < need)
            cap *= 2;
        if (!(w = realloc(c->wbuf, cap))) {
            c->dead = 1;
            return;
        }
        c->wbuf = w;
        c->wcap = cap;
    }
    c->wbuf[c->wlen] = (unsigned char)(len >> 8);
    c->wbuf[c->wlen + 1] = (unsigned char)len;
    memcpy(c->wbuf + c->wlen + MSG_TCP_PREFIX, msg, len);
    c->wlen = need;
    conn_flush(c);
}

static void send_reply(struct server *s, struct conn *c, const struct sockaddr *peer,
                       socklen_t peerlen, const unsigned char *msg, size_t len)
{
    if (c)
        conn_send(c, msg, len);
    else if (sendto(s->udp_fd, msg, len, MSG_NOSIGNAL, peer, peerlen) < 0)
        s->unsent++;
}

static void pending_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct pending *p = w->data;
    struct conn *c = p->conn;

    (void)loop;
    (void)revents;
    send_reply(p->srv, c, (const struct sockaddr *)&p->peer, p->peerlen, p->msg, p->len);
    pending_free(p);
    if (c)
        conn_settle(c);
}

/* One message from a UDP peer (c NULL) or a TCP connection. */
static void handle(struct server *s, struct conn *c, const unsigned char *m, size_t len,
                   const struct sockaddr *peer, socklen_t peerlen)
{
    struct msg_query q;
    struct msg_buf b;
    struct pending *p;

    msg_buf_init(&b, s->out, sizeof(s->out));
    switch (msg_parse_query(m, len, &q)) {
    case MSG_IGNORE:
        return;
    case MSG_FORMERR:
        msg_reply_start(&b, m, &q, MSG_R_FORMERR);
        break;
    case MSG_NOTIMP:
        msg_reply_start(&b, m, &q, MSG_R_NOTIMP);
        break;
    case MSG_QUERY:
        log_query(s, &q);
        if (zone_answer(s->zone, m, &q, &b) == ZONE_SILENT)
            return;
        break;
    }
    if (!c && b.len > MSG_UDP_MAX)
        msg_truncate(&b, &q);
    if (s->latency <= 0) {
        send_reply(s, c, peer, peerlen, b.p, b.len);
        return;
    }
    if (s->npending >= DNSD_PENDING_MAX || !(p = malloc(sizeof(*p) + b.len))) {
        s->dropped++;
        return;
    }
    p->srv = s;
    p->conn = c;
    p->len = b.len;
    memcpy(p->msg, b.p, b.len);
    if (!c) {
        memcpy(&p->peer, peer, peerlen);
        p->peerlen = peerlen;
    }
    p->prev = NULL;
    p->next = *pending_list(p);
    if (p->next)
        p->next->prev = p;
    *pending_list(p) = p;
    s->npending++;
    ev_timer_init(&p->timer, pending_cb, s->latency, 0.);
    p->timer.data = p;
    ev_timer_start(s->loop, &p->timer);
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    ssize_t n;
    size_t off = 0;

    (void)revents;
    n = recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, 0);
    if (n == 0) {
        c->eof = 1;
        ev_io_stop(loop, &c->rio);
    } else if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            c->dead = 1;
    } else {
        c->rlen += (size_t)n;
    }
    while (!c->dead && c->rlen - off >= MSG_TCP_PREFIX) {
        size_t mlen = (size_t)c->rbuf[off] << 8 | c->rbuf[off + 1];

        if (c->rlen - off - MSG_TCP_PREFIX < mlen)
            break;
        handle(c->srv, c, c->rbuf + off + MSG_TCP_PREFIX, mlen, NULL, 0);
        off += MSG_TCP_PREFIX + mlen;
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    conn_settle(c);
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;

    (void)loop;
    (void)revents;
    conn_flush(c);
    conn_settle(c);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct server *s = w->data;
    struct conn *c;
    int fd;

    (void)revents;
    fd = accept(s->tcp_fd, NULL, NULL);
    if (fd < 0)
        return;
    if (s->nconns >= DNSD_CONN_MAX || set_nonblock(fd) < 0 || !(c = calloc(1, sizeof(*c)))) {
        s->refused++;
        close(fd);
        return;
    }
    c->srv = s;
    c->fd = fd;
    c->next = s->conns;
    if (c->next)
        c->next->prev = c;
    s->conns = c;
    s->nconns++;
    ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
    ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
    c->rio.data = c;
    c->wio.data = c;
    ev_io_start(loop, &c->rio);
}

/* ---- UDP ---- */

static void udp_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct server *s = w->data;

    (void)loop;
    (void)revents;
    for (int i = 0; i < DNSD_UDP_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t peerlen = sizeof(peer);
        ssize_t n = recvfrom(s->udp_fd, s->in, sizeof(s->in), 0, (struct sockaddr *)&peer,
                             &peerlen);

        if (n < 0)
            break;
        handle(s, NULL, s->in, (size_t)n, (const struct sockaddr *)&peer, peerlen);
    }
}

/* ---- signals ---- */

static void hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct server *s = w->data;
    char err[ZONE_ERR_LEN];
    zone_t *z;

    (void)loop;
    (void)revents;
    if (!(z = zone_load(s->zone_path, s->neg_ttl, err, sizeof(err)))) {
        fprintf(stderr, "%s\n", err);
        printf("dnsd reload failed\n");
    } else {
        zone_free(s->zone);
        s->zone = z;
        printf("dnsd reloaded\n");
    }
    fflush(stdout);
}

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* ---- setup ---- */

static int bind_one(const struct addrinfo *ai, int type, uint16_t port)
{
    struct sockaddr_storage ss;
    int one = 1, buf = DNSD_SOCKBUF;
    int fd = socket(ai->ai_family, type, 0);

    if (fd < 0)
        return -1;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (ai->ai_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
    if (type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    else {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    }
    if (bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) < 0 ||
        (type == SOCK_STREAM && listen(fd, DNSD_LISTEN_BACKLOG) < 0) ||
        set_nonblock(fd) < 0) {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static uint16_t bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* TCP first: with port 0 the kernel picks it, and UDP must get the same one. */
static int open_sockets(struct server *s, const char *addr, uint16_t port, uint16_t *got)
{
    struct addrinfo hints = {0}, *ai;
    int rc, tries = port ? 1 : DNSD_BIND_TRIES;

    hints.ai_flags = AI_NUMERICHOST;
    hints.ai_socktype = SOCK_DGRAM;
    if ((rc = getaddrinfo(addr, NULL, &hints, &ai)) != 0) {
        fprintf(stderr, "dnsd: address %s: %s\n", addr, gai_strerror(rc));
        return -1;
    }
    while (tries-- > 0) {
        if ((s->tcp_fd = bind_one(ai, SOCK_STREAM, port)) < 0)
            break;
        *got = bound_port(s->tcp_fd);
        if ((s->udp_fd = bind_one(ai, SOCK_DGRAM, *got)) >= 0) {
            freeaddrinfo(ai);
            return 0;
        }
        close(s->tcp_fd);
        s->tcp_fd = -1;
        if (errno != EADDRINUSE)
            break;
    }
    fprintf(stderr, "dnsd: bind %s port %u: %s\n", addr, (unsigned)port, strerror(errno));
    freeaddrinfo(ai);
    return -1;
}

static void cleanup(struct server *s)
{
    if (s->unsent || s->dropped || s->refused)
        fprintf(stderr, "dnsd: %lu UDP answers not sent (socket full), %lu queries "
                        "dropped (%d answers in flight), %lu TCP connections refused "
                        "(%d open)\n", s->unsent, s->dropped, DNSD_PENDING_MAX, s->refused,
                DNSD_CONN_MAX);
    while (s->conns)
        conn_free(s->conns);
    while (s->udp_pending)
        pending_free(s->udp_pending);
    ev_io_stop(s->loop, &s->udp_w);
    ev_io_stop(s->loop, &s->tcp_w);
    ev_signal_stop(s->loop, &s->hup_w);
    ev_signal_stop(s->loop, &s->term_w);
    ev_signal_stop(s->loop, &s->int_w);
    close(s->udp_fd);
    close(s->tcp_fd);
    if (s->qlog_fd >= 0)
        close(s->qlog_fd);
    zone_free(s->zone);
}

int main(int argc, char **argv)
{
    static struct server srv; /* too big for the stack: two MSG_MAX buffers */
    struct server *s = &srv;
    const char *addr = "127.0.0.1", *qlog = NULL;
    unsigned long port = 0, latency = 0, neg = DNSD_NEG_TTL_DEFAULT;
    char err[ZONE_ERR_LEN];
    int have_port = 0, opt;
    uint16_t got;

    while ((opt = getopt(argc, argv, "p:a:z:l:q:n:")) != -1) {
        switch (opt) {
        case 'p':
            if (parse_num(optarg, UINT16_MAX, &port) < 0)
                usage();
            have_port = 1;
            break;
        case 'a': addr = optarg; break;
        case 'z': s->zone_path = optarg; break;
        case 'l':
            if (parse_num(optarg, DNSD_LATENCY_MAX_MS, &latency) < 0)
                usage();
            break;
        case 'q': qlog = optarg; break;
        case 'n':
            if (parse_num(optarg, ZONE_TTL_MAX, &neg) < 0)
                usage();
            break;
        default: usage();
        }
    }
    if (optind != argc || !have_port || !s->zone_path)
        usage();
    s->neg_ttl = (uint32_t)neg;
    s->latency = (double)latency / MS_PER_S;
    s->qlog_fd = -1;
    if (!(s->zone = zone_load(s->zone_path, s->neg_ttl, err, sizeof(err)))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (qlog && (s->qlog_fd = open(qlog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                                   0644)) < 0) {
        fprintf(stderr, "dnsd: %s: %s\n", qlog, strerror(errno));
        zone_free(s->zone);
        return 1;
    }
    if (open_sockets(s, addr, (uint16_t)port, &got) < 0) {
        zone_free(s->zone);
        return 1;
    }
    s->loop = ev_default_loop(0);
    ev_io_init(&s->udp_w, udp_cb, s->udp_fd, EV_READ);
    ev_io_init(&s->tcp_w, accept_cb, s->tcp_fd, EV_READ);
    ev_signal_init(&s->hup_w, hup_cb, SIGHUP);
    ev_signal_init(&s->term_w, stop_cb, SIGTERM);
    ev_signal_init(&s->int_w, stop_cb, SIGINT);
    s->udp_w.data = s->tcp_w.data = s->hup_w.data = s;
    ev_io_start(s->loop, &s->udp_w);
    ev_io_start(s->loop, &s->tcp_w);
    ev_signal_start(s->loop, &s->hup_w);
    ev_signal_start(s->loop, &s->term_w);
    ev_signal_start(s->loop, &s->int_w);
    printf("dnsd ready %u\n", (unsigned)got);
    fflush(stdout);
    ev_run(s->loop, 0);
    cleanup(s);
    ev_loop_destroy(s->loop);
    return 0;
}
