/* server.c - listeners and policy connections on the libev loop.
 *
 * A connection is in one of four states:
 *   reading  io watches EV_READ, the idle timer runs, buffered bytes are scanned;
 *   busy     a policy check is in flight: nothing is read (Postfix sends one request
 *            and waits) but EOF is noticed and cancels the check; the idle timer is
 *            stopped (the check has its own budget);
 *   writing  a reply did not fit the socket: io watches EV_WRITE, and the idle timer
 *            runs so a peer that never reads cannot pin the connection;
 *   closed   watchers stopped, descriptor closed, check cancelled; the struct waits
 *            in the graveyard and is freed before the loop next blocks, so a callback
 *            that closed its own connection may still look at it while unwinding.
 *
 * Memory: Postfix keeps policy connections open between mails, so most connections
 * are idle. An idle connection holds only its struct (about 300 bytes); the input
 * buffer exists while bytes are buffered and grows to POLICY_REQUEST_MAX only for
 * large requests, and the parsed request exists only while its check runs.
 *
 * Accepting stops at max_connections and resumes when a connection closes; out of
 * descriptors (EMFILE and friends), it pauses for SERVER_ACCEPT_BACKOFF instead of
 * spinning on a listening socket that stays readable. */
#include "server.h"

#include "log.h"
#include "policy.h"
#include "policy_proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

/* First input buffer of a connection: a Postfix request is 0.5-1.5 KB, so one
 * allocation of this size serves nearly every request; larger ones double it up to
 * POLICY_REQUEST_MAX. */
#define SERVER_IN_INITIAL 2048
/* Seconds accepting pauses when out of descriptors or memory (unless a connection
 * closes first): long enough not to spin, far below Postfix's policy connect timeout. */
#define SERVER_ACCEPT_BACKOFF 1.0
/* "[" IPv6 "]:" port and NUL. */
#define SERVER_PEER_LEN (INET6_ADDRSTRLEN + 8)
/* TCP ports are 16 bits; their text is up to 5 digits and a NUL. */
#define SERVER_PORT_MAX 65535
#define SERVER_PORT_LEN 6
/* Directories created above a unix socket: others must reach the socket (its own
 * mode says who may connect), only root may change the directory. */
#define SERVER_DIR_MODE 0755

static const char server_unix_prefix[] = "unix:";

typedef struct server_listener {
    ev_io io;
    server_t *server;
    struct server_listener *next;
    int is_unix;
    dev_t dev;                 /* of the socket file we bound: unlink only that one */
    ino_t ino;
    char name[CONFIG_ADDR_LEN];
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} server_listener_t;

typedef struct server_conn {
    ev_io io;
    ev_timer idle;
    server_t *server;
    struct server_conn *prev, *next;   /* live list; in the graveyard only next */
    unsigned long long id;
    char *in;                          /* NULL while nothing is buffered */
    size_t in_len, in_cap;
    policy_scanner_t scanner;
    policy_request_t *req;             /* only while job is in flight */
    policy_job_t *job;
    char *out;                         /* rest of a reply the socket did not take */
    size_t out_len, out_off;
    int closed;
    char peer[SERVER_PEER_LEN];
} server_conn_t;

struct server {
    struct ev_loop *loop;
    struct policy *policy;
    server_listener_t *listeners;
    server_conn_t *conns;
    server_conn_t *graveyard;
    ev_prepare reaper;
    ev_timer backoff;
    unsigned long long next_id;
    unsigned max_connections;
    double idle_timeout;
    int accepting;                     /* listener watchers started */
    int backing_off;                   /* accepting paused by a failed accept */
    int accept_failing;                /* the failure is logged; reset by a success */
    int draining;
    void (*drain_done)(void *ctx);
    void *drain_ctx;
    server_stats_t stats;
    size_t nlisten;
    char listen[CONFIG_MAX_LISTEN][CONFIG_ADDR_LEN];
};

static void conn_process(server_conn_t *c);
static void server_slot_freed(server_t *s);

/* ---- connections ---- */

static void server_update_accepting(server_t *s)
{
    int want = !s->draining && !s->backing_off && s->stats.connections < s->max_connections;
    server_listener_t *l;

    if (want == s->accepting)
        return;
    for (l = s->listeners; l; l = l->next) {
        if (want)
            ev_io_start(s->loop, &l->io);
        else
            ev_io_stop(s->loop, &l->io);
    }
    s->accepting = want;
}

static void conn_close(server_conn_t *c)
{
    server_t *s = c->server;

    if (c->closed)
        return;
    c->closed = 1;
    ev_io_stop(s->loop, &c->io);
    ev_timer_stop(s->loop, &c->idle);
    if (c->job) {
        policy_cancel(c->job);
        c->job = NULL;
        s->stats.busy--;
    }
    close(c->io.fd);
    free(c->in);
    free(c->req);
    free(c->out);
    c->in = c->out = NULL;
    c->req = NULL;
    policy_conn_closed(s->policy, c->id);

    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = NULL;
    c->next = s->graveyard;
    s->graveyard = c;
    s->stats.connections--;
    ev_prepare_start(s->loop, &s->reaper);
    server_slot_freed(s);
}

static void conn_watch(server_conn_t *c, int events)
{
    ev_io_stop(c->server->loop, &c->io);
    ev_io_modify(&c->io, events);
    ev_io_start(c->server->loop, &c->io);
}

/* The reply is out: close if draining, else go back to reading and look at what the
 * peer sent meanwhile. */
static void conn_reply_done(server_conn_t *c)
{
    c->server->stats.replies++;
    if (c->server->draining) {
        conn_close(c);
        return;
    }
    conn_watch(c, EV_READ);
    ev_timer_again(c->server->loop, &c->idle);
    conn_process(c);
}

static int conn_write_error(server_conn_t *c, const char *what)
{
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    /* Usually Postfix gave up waiting (its own timeout) and closed: its problem. */
    log_info("%s: %s: %s", c->peer, what, strerror(errno));
    c->server->stats.errors_closed++;
    conn_close(c);
    return -1;
}

static void conn_send_reply(server_conn_t *c, const char *action)
{
    static const char head[] = "action=", tail[] = "\n\n";
    size_t alen = strlen(action), total = sizeof(head) - 1 + alen + sizeof(tail) - 1;
    struct iovec iov[3] = {
        {(void *)head, sizeof(head) - 1},
        {(void *)action, alen},
        {(void *)tail, sizeof(tail) - 1},
    };
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 3};
    ssize_t n = sendmsg(c->io.fd, &mh, MSG_NOSIGNAL);
    size_t done, i, off = 0;

    if (n < 0 && conn_write_error(c, "write") < 0)
        return;
    done = n < 0 ? 0 : (size_t)n;
    if (done == total) {
        conn_reply_done(c);
        return;
    }
    c->out = malloc(total - done);
    if (!c->out) {
        log_error("%s: no memory for a %zu-byte reply", c->peer, total);
        c->server->stats.errors_closed++;
        conn_close(c);
        return;
    }
    for (i = 0; i < 3; i++) {
        size_t skip = done > iov[i].iov_len ? iov[i].iov_len : done;
        memcpy(c->out + off, (char *)iov[i].iov_base + skip, iov[i].iov_len - skip);
        off += iov[i].iov_len - skip;
        done -= skip;
    }
    c->out_len = off;
    c->out_off = 0;
    conn_watch(c, EV_WRITE);
    ev_timer_again(c->server->loop, &c->idle);
}

static void conn_write(server_conn_t *c)
{
    ssize_t n = send(c->io.fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

    if (n < 0) {
        conn_write_error(c, "write");
        return;
    }
    c->out_off += (size_t)n;
    if (c->out_off < c->out_len)
        return;
    free(c->out);
    c->out = NULL;
    conn_reply_done(c);
}

static void conn_reply(void *ctx, const char *action)
{
    server_conn_t *c = ctx;

    c->job = NULL;
    c->server->stats.busy--;
    free(c->req);
    c->req = NULL;
    if (!action) {
        log_error("%s: policy check failed; closing the connection", c->peer);
        c->server->stats.errors_closed++;
        conn_close(c);
        return;
    }
    /* A line break would end the reply early and smuggle in a second one. */
    if (strpbrk(action, "\r\n")) {
        log_error("%s: policy reply contains a line break; closing the connection",
                  c->peer);
        c->server->stats.errors_closed++;
        conn_close(c);
        return;
    }
    conn_send_reply(c, action);
}

static void conn_bad_input(server_conn_t *c, const char *why, const char *bytes, size_t len)
{
    char sample[LOG_SAMPLE_MAX + 4];

    log_warn("%s: %s; closing the connection; input: \"%s\"", c->peer, why,
             log_sample(sample, bytes, len));
    conn_close(c);
}

/* Scans the buffered bytes and starts a check for a complete request. */
static void conn_process(server_conn_t *c)
{
    server_t *s = c->server;
    char err[POLICY_ERR_LEN];
    size_t blen = 0;

    switch (policy_proto_scan(&c->scanner, c->in, c->in_len, &blen)) {
    case POLICY_SCAN_MORE:
        if (c->in_len == 0) {
            free(c->in);
            c->in = NULL;
            c->in_cap = 0;
        }
        return;
    case POLICY_SCAN_TOO_LONG:
        s->stats.overflows++;
        snprintf(err, sizeof(err), "request too long (a line over %d bytes or a request "
                 "over %d bytes)", POLICY_LINE_MAX, POLICY_REQUEST_MAX);
        conn_bad_input(c, err, c->in, c->in_len);
        return;
    case POLICY_SCAN_READY:
        break;
    }
    if (!(c->req = malloc(sizeof(*c->req)))) {
        log_error("%s: no memory for a request", c->peer);
        s->stats.errors_closed++;
        conn_close(c);
        return;
    }
    if (policy_proto_parse(c->req, c->in, blen, err) < 0) {
        s->stats.bad_requests++;
        conn_bad_input(c, err, c->in, blen);
        return;
    }
    c->in_len -= blen;
    memmove(c->in, c->in + blen, c->in_len);
    s->stats.requests++;
    s->stats.busy++;
    /* The io watcher stays on, but only to notice the peer leaving (conn_read). */
    ev_timer_stop(s->loop, &c->idle);
    c->job = policy_check(s->policy, c->id, c->req, conn_reply, c);
    if (!c->job) {
        s->stats.busy--;
        log_error("%s: no memory for a policy check", c->peer);
        s->stats.errors_closed++;
        conn_close(c);
    }
}

/* While a check runs nothing is read, so the next request waits its turn in the
 * kernel; a peek tells whether the peer went away, which cancels the check. */
static void conn_peek(server_conn_t *c)
{
    char byte;
    ssize_t n = recv(c->io.fd, &byte, 1, MSG_PEEK);

    if (n > 0) {
        ev_io_stop(c->server->loop, &c->io);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n == 0) {
        log_info("%s: disconnected while its request was being checked", c->peer);
    } else {
        log_info("%s: read: %s", c->peer, strerror(errno));
        c->server->stats.errors_closed++;
    }
    conn_close(c);
}

static void conn_read(server_conn_t *c)
{
    ssize_t n;

    if (c->job) {
        conn_peek(c);
        return;
    }
    if (!c->in) {
        c->in = malloc(SERVER_IN_INITIAL);
        c->in_cap = SERVER_IN_INITIAL;
    } else if (c->in_len == c->in_cap) {
        /* Never at POLICY_REQUEST_MAX: the scanner refuses a full buffer without a
         * complete request. */
        size_t cap = c->in_cap * 2 > POLICY_REQUEST_MAX ? POLICY_REQUEST_MAX : c->in_cap * 2;
        char *in = realloc(c->in, cap);
        if (in) {
            c->in = in;
            c->in_cap = cap;
        } else {
            free(c->in);
            c->in = NULL;
        }
    }
    if (!c->in) {
        log_error("%s: no memory for input", c->peer);
        c->server->stats.errors_closed++;
        conn_close(c);
        return;
    }
    n = read(c->io.fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (n > 0) {
        c->in_len += (size_t)n;
        ev_timer_again(c->server->loop, &c->idle);
        conn_process(c);
        return;
    }
    if (n == 0) {
        if (c->in_len > 0)
            log_info("%s: disconnected in the middle of a request (%zu bytes)", c->peer,
                     c->in_len);
        else
            log_debug("%s: disconnected", c->peer);
        conn_close(c);
        return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return;
    log_info("%s: read: %s", c->peer, strerror(errno));
    c->server->stats.errors_closed++;
    conn_close(c);
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    server_conn_t *c = w->data;

    (void)loop;
    if (revents & EV_READ)
        conn_read(c);
    else if (revents & EV_WRITE)
        conn_write(c);
}

static void conn_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    server_conn_t *c = w->data;

    (void)loop;
    (void)revents;
    log_debug("%s: %s for %g s; closing the connection", c->peer,
              c->out ? "reply not read" : "idle", c->server->idle_timeout);
    c->server->stats.idle_closed++;
    conn_close(c);
}

static void conn_peer_name(char *dst, const struct sockaddr_storage *sa, int is_unix)
{
    char host[INET6_ADDRSTRLEN];

    if (is_unix) {
        snprintf(dst, SERVER_PEER_LEN, "unix");
    } else if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
        snprintf(dst, SERVER_PEER_LEN, "%s:%u", host, (unsigned)ntohs(in4->sin_port));
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(dst, SERVER_PEER_LEN, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
    } else {
        snprintf(dst, SERVER_PEER_LEN, "unknown");
    }
}

static int conn_new(server_t *s, server_listener_t *l, int fd,
                    const struct sockaddr_storage *sa)
{
    server_conn_t *c = calloc(1, sizeof(*c));

    if (!c)
        return -1;
    c->server = s;
    c->id = ++s->next_id;
    conn_peer_name(c->peer, sa, l->is_unix);
    policy_scanner_reset(&c->scanner);
    ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
    c->io.data = c;
    ev_init(&c->idle, conn_idle_cb);
    c->idle.repeat = s->idle_timeout;
    c->idle.data = c;
    ev_io_start(s->loop, &c->io);
    ev_timer_again(s->loop, &c->idle);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->stats.accepted++;
    s->stats.connections++;
    log_debug("%s: connected (connection %llu)", c->peer, c->id);
    return 0;
}

/* ---- accepting ---- */

static void server_back_off(server_t *s, const char *why)
{
    /* Once per episode: the condition usually lasts, and one line says it all. */
    if (!s->accept_failing)
        log_error("accept: %s; pausing new connections for %g s at a time", why,
                  SERVER_ACCEPT_BACKOFF);
    s->accept_failing = 1;
    s->backing_off = 1;
    ev_timer_set(&s->backoff, SERVER_ACCEPT_BACKOFF, 0.);
    ev_timer_start(s->loop, &s->backoff);
    server_update_accepting(s);
}

static void server_backoff_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    server_t *s = w->data;

    (void)loop;
    (void)revents;
    s->backing_off = 0;
    server_update_accepting(s);
}

static void server_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    server_listener_t *l = w->data;
    server_t *s = l->server;

    (void)loop;
    (void)revents;
    while (s->accepting) {
        struct sockaddr_storage sa;
        socklen_t salen = sizeof(sa);
        int fd = accept4(w->fd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            server_back_off(s, strerror(errno));
            return;
        }
        if (conn_new(s, l, fd, &sa) < 0) {
            close(fd);
            server_back_off(s, "no memory for a connection");
            return;
        }
        s->accept_failing = 0;
        server_update_accepting(s);
    }
}

/* A closed connection may free a slot: resume accepting early. */
static void server_slot_freed(server_t *s)
{
    if (s->backing_off) {
        ev_timer_stop(s->loop, &s->backoff);
        s->backing_off = 0;
    }
    server_update_accepting(s);
}

static void server_reaper_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    server_t *s = w->data;
    void (*done)(void *ctx) = NULL;

    (void)revents;
    while (s->graveyard) {
        server_conn_t *c = s->graveyard;
        s->graveyard = c->next;
        free(c);
    }
    ev_prepare_stop(loop, w);
    if (s->draining && s->stats.connections == 0 && s->drain_done) {
        done = s->drain_done;
        s->drain_done = NULL;
        done(s->drain_ctx);
    }
}

/* ---- listeners ---- */

static void listener_close(server_t *s, server_listener_t *l)
{
    struct stat st;

    ev_io_stop(s->loop, &l->io);
    close(l->io.fd);
    /* Another instance may have replaced the file since: leave theirs alone. */
    if (l->is_unix && lstat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
        unlink(l->path);
}

static void server_close_listeners(server_t *s)
{
    while (s->listeners) {
        server_listener_t *l = s->listeners;
        s->listeners = l->next;
        listener_close(s, l);
        free(l);
    }
    s->accepting = 0;
}

static server_listener_t *listener_add(server_t *s, int fd, const char *name)
{
    server_listener_t *l = calloc(1, sizeof(*l));

    if (!l)
        return NULL;
    l->server = s;
    snprintf(l->name, sizeof(l->name), "%s", name);
    ev_io_init(&l->io, server_accept_cb, fd, EV_READ);
    l->io.data = l;
    l->next = s->listeners;
    s->listeners = l;
    return l;
}

/* Creates every missing directory above path. */
static int make_parents(const char *path, const char *name, char err[SERVER_ERR_LEN])
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    size_t i;

    snprintf(dir, sizeof(dir), "%s", path);
    for (i = 1; dir[i]; i++) {
        if (dir[i] != '/')
            continue;
        dir[i] = '\0';
        if (mkdir(dir, SERVER_DIR_MODE) < 0 && errno != EEXIST) {
            snprintf(err, SERVER_ERR_LEN, "listen %s: mkdir %s: %s", name, dir, strerror(errno));
            return -1;
        }
        dir[i] = '/';
    }
    return 0;
}

/* A socket file nobody listens on is left over from a crash; a live one is not ours
 * to take. */
static int remove_stale_socket(const char *path, const char *name, char err[SERVER_ERR_LEN])
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, SERVER_ERR_LEN, "listen %s: %s", name, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, SERVER_ERR_LEN, "listen %s: exists and is not a socket", name);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, SERVER_ERR_LEN, "listen %s: socket: %s", name, strerror(errno));
        return -1;
    }
    rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    close(fd);
    if (rc == 0 || errno == EAGAIN) {
        snprintf(err, SERVER_ERR_LEN, "listen %s: another process is listening on it", name);
        return -1;
    }
    if (unlink(path) < 0) {
        snprintf(err, SERVER_ERR_LEN, "listen %s: unlink stale socket: %s", name,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static int listen_unix(server_t *s, const char *name, const struct config *cfg,
                       char err[SERVER_ERR_LEN])
{
    const char *path = name + sizeof(server_unix_prefix) - 1;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    server_listener_t *l;
    struct stat st;
    int fd;

    if (path[0] == '\0' || strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, SERVER_ERR_LEN, "listen %s: path must have 1 to %zu bytes", name,
                 sizeof(sun.sun_path) - 1);
        return -1;
    }
    if (cfg->socket_owner[0]) {
        struct passwd *pw = getpwnam(cfg->socket_owner);
        if (!pw) {
            snprintf(err, SERVER_ERR_LEN, "listen %s: socket_owner '%s': unknown user", name,
                     cfg->socket_owner);
            return -1;
        }
        uid = pw->pw_uid;
    }
    if (cfg->socket_group[0]) {
        struct group *gr = getgrnam(cfg->socket_group);
        if (!gr) {
            snprintf(err, SERVER_ERR_LEN, "listen %s: socket_group '%s': unknown group", name,
                     cfg->socket_group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    if (make_parents(path, name, err) < 0 || remove_stale_socket(path, name, err) < 0)
        return -1;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, SERVER_ERR_LEN, "listen %s: socket: %s", name, strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        snprintf(err, SERVER_ERR_LEN, "listen %s: bind: %s", name, strerror(errno));
        close(fd);
        return -1;
    }
    if (chmod(path, cfg->socket_mode) < 0 || ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
                                              chown(path, uid, gid) < 0)) {
        snprintf(err, SERVER_ERR_LEN, "listen %s: set mode/owner: %s", name, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    if (listen(fd, SOMAXCONN) < 0 || lstat(path, &st) < 0) {
        snprintf(err, SERVER_ERR_LEN, "listen %s: %s", name, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    l = listener_add(s, fd, name);
    if (!l) {
        snprintf(err, SERVER_ERR_LEN, "listen %s: out of memory", name);
        close(fd);
        unlink(path);
        return -1;
    }
    l->is_unix = 1;
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    memcpy(l->path, path, strlen(path) + 1);
    return 0;
}

/* -1 with why filled and *errnum set from the failing call. */
static int listen_inet_one(server_t *s, const struct addrinfo *ai, const char *name,
                           char why[SERVER_ERR_LEN], int *errnum)
{
    const char *step = "socket";
    int fd, on = 1;

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        goto fail;
    step = "setsockopt";
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
        (ai->ai_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0))
        goto fail;
    step = "bind";
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        goto fail;
    step = "listen";
    if (listen(fd, SOMAXCONN) < 0)
        goto fail;
    if (!listener_add(s, fd, name)) {
        step = "listener";
        errno = ENOMEM;
        goto fail;
    }
    return 0;
fail:
    *errnum = errno;
    snprintf(why, SERVER_ERR_LEN, "%s: %s", step, strerror(*errnum));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* "host:port", "[v6]:port". A name may give several addresses (localhost: 127.0.0.1
 * and ::1): all are bound, except that one of a family this host lacks is skipped
 * when another works. Any other failure (a port in use) is an error: running on half
 * the addresses would send some clients elsewhere without a word. */
static int listen_inet(server_t *s, const char *name, char err[SERVER_ERR_LEN])
{
    char host[CONFIG_ADDR_LEN], port[SERVER_PORT_LEN], why[SERVER_ERR_LEN] = "";
    const char *colon, *p;
    struct addrinfo hints = {0}, *res, *ai;
    unsigned long portnum = 0;
    int rc, bound = 0, errnum = 0;

    if (name[0] == '[') {
        const char *close_br = strchr(name, ']');
        if (!close_br || close_br[1] != ':') {
            snprintf(err, SERVER_ERR_LEN, "listen %s: expected [address]:port", name);
            return -1;
        }
        snprintf(host, sizeof(host), "%.*s", (int)(close_br - name - 1), name + 1);
        colon = close_br + 1;
    } else {
        colon = strrchr(name, ':');
        if (!colon || memchr(name, ':', (size_t)(colon - name))) {
            snprintf(err, SERVER_ERR_LEN, "listen %s: expected host:port or [address]:port",
                     name);
            return -1;
        }
        snprintf(host, sizeof(host), "%.*s", (int)(colon - name), name);
    }
    for (p = colon + 1; *p >= '0' && *p <= '9' && portnum <= SERVER_PORT_MAX; p++)
        portnum = portnum * 10 + (unsigned long)(*p - '0');
    if (*p || p == colon + 1 || portnum == 0 || portnum > SERVER_PORT_MAX || host[0] == '\0') {
        snprintf(err, SERVER_ERR_LEN, "listen %s: expected host:port with a port of 1-%d",
                 name, SERVER_PORT_MAX);
        return -1;
    }
    snprintf(port, sizeof(port), "%lu", portnum);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, SERVER_ERR_LEN, "listen %s: %s", name, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        if (listen_inet_one(s, ai, name, why, &errnum) == 0) {
            bound++;
            continue;
        }
        if ((errnum != EAFNOSUPPORT && errnum != EADDRNOTAVAIL) || (!ai->ai_next && !bound))
            break;
        log_info("listen %s: skipping an address: %s", name, why);
    }
    freeaddrinfo(res);
    if (ai || !bound) {
        snprintf(err, SERVER_ERR_LEN, "listen %s: %s", name, why);
        return -1;
    }
    return 0;
}

/* ---- the server ---- */

server_t *server_new(struct ev_loop *loop, const struct config *cfg, struct policy *policy,
                     char err[SERVER_ERR_LEN])
{
    server_t *s = calloc(1, sizeof(*s));
    size_t i;

    if (!s) {
        snprintf(err, SERVER_ERR_LEN, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->policy = policy;
    s->max_connections = cfg->max_connections;
    s->idle_timeout = cfg->idle_timeout;
    ev_prepare_init(&s->reaper, server_reaper_cb);
    s->reaper.data = s;
    ev_init(&s->backoff, server_backoff_cb);
    s->backoff.data = s;
    s->nlisten = cfg->nlisten;
    for (i = 0; i < cfg->nlisten; i++) {
        int rc;
        memcpy(s->listen[i], cfg->listen[i], sizeof(s->listen[i]));
        if (strncmp(cfg->listen[i], server_unix_prefix, sizeof(server_unix_prefix) - 1) == 0)
            rc = listen_unix(s, cfg->listen[i], cfg, err);
        else
            rc = listen_inet(s, cfg->listen[i], err);
        if (rc < 0) {
            server_free(s);
            return NULL;
        }
        log_info("listening on %s", cfg->listen[i]);
    }
    server_update_accepting(s);
    return s;
}

void server_reconfigure(server_t *s, const struct config *cfg)
{
    server_conn_t *c;
    size_t i;
    int same = cfg->nlisten == s->nlisten;

    for (i = 0; same && i < cfg->nlisten; i++)
        same = strcmp(cfg->listen[i], s->listen[i]) == 0;
    if (!same)
        log_warn("listen changes need a restart; still listening as before");
    s->max_connections = cfg->max_connections;
    s->idle_timeout = cfg->idle_timeout;
    for (c = s->conns; c; c = c->next) {
        c->idle.repeat = s->idle_timeout;
        if (ev_is_active(&c->idle))
            ev_timer_again(s->loop, &c->idle);
    }
    server_update_accepting(s);
}

void server_drain(server_t *s, void (*done)(void *ctx), void *ctx)
{
    server_conn_t *c, *next;

    s->draining = 1;
    s->drain_done = done;
    s->drain_ctx = ctx;
    ev_timer_stop(s->loop, &s->backoff);
    server_close_listeners(s);
    for (c = s->conns; c; c = next) {
        next = c->next;
        if (!c->job && !c->out)
            conn_close(c);
    }
    /* done() runs from the loop, never before server_drain returns. */
    ev_prepare_start(s->loop, &s->reaper);
}

void server_free(server_t *s)
{
    if (!s)
        return;
    while (s->conns)
        conn_close(s->conns);
    while (s->graveyard) {
        server_conn_t *c = s->graveyard;
        s->graveyard = c->next;
        free(c);
    }
    ev_prepare_stop(s->loop, &s->reaper);
    ev_timer_stop(s->loop, &s->backoff);
    server_close_listeners(s);
    free(s);
}

void server_get_stats(const server_t *s, server_stats_t *out)
{
    *out = s->stats;
}
