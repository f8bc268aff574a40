/* store.c - the shared Redis: hiredis's async API with its libev adapter, on the
 * daemon's one loop.
 *
 * States: DOWN (waiting for the retry timer), SENTINEL (asking one sentinel for the
 * master), CONNECTING (connect, then the handshake pipeline), UP. Every failure on the
 * way, and the loss of an UP connection, leads back to DOWN with the next backoff
 * (doubled each time up to retry_max, reset once UP); with Sentinel each attempt asks
 * the next sentinel first, so a failover is followed by asking again. The connect timer
 * bounds SENTINEL and CONNECTING by connect_timeout.
 *
 * Every command sent on the data connection has a record in a FIFO, in send order:
 * Redis answers in that order, so a reply always belongs to the head. Deadlines
 * (sent + timeout) grow along the FIFO; one timer walks a cursor over the records
 * whose deadline has passed and fails their reads ("no answer"), and drops the
 * connection when the head is still unanswered connect_timeout after its deadline.
 * A record lives until hiredis calls back for it (with its reply, or NULL when the
 * connection goes), which is what makes a late reply safe to drop.
 *
 * hiredis 0.14 calls the callbacks of a context's pending commands (with NULL) from
 * redisAsyncFree, and frees a context itself after a failed connect or a read error;
 * a redisAsyncFree from inside one of its callbacks is deferred until that callback
 * returns. So s->ac and s->sc are cleared before a context is given up, and callbacks
 * about a context that is no longer ours are ignored. New connections are only opened
 * from the retry timer, or from the sentinel's reply, never while an old data
 * connection is being torn down. */
#include "store.h"

#include <ev.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libev.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "log.h"
#include "spf.h"
#include "verdict.h"

/* The first reconnection attempt after a failure waits this long; each further one
 * twice as long as the one before, up to retry_max. Short enough that a Redis restart
 * is noticed within a second, long enough not to spin. */
#define STORE_RETRY_MIN 0.05
/* Milliseconds in a second: TTLs go to Redis as PX. */
#define STORE_MS 1000.0
/* A host:port we connect to, without brackets. */
#define STORE_HOST_LEN 256
/* Digits of a TTL in milliseconds (a year fits in 11), with room. */
#define STORE_NUM_LEN 24
/* "host:port" as store_server shows it. */
#define STORE_SERVER_LEN (STORE_HOST_LEN + 8)
/* A SHA1 in hex, as SCRIPT LOAD answers. */
#define STORE_SHA_LEN 40
#define STORE_VERDICT_MAGIC "V1"

enum state { ST_DOWN, ST_SENTINEL, ST_CONNECTING, ST_UP };

enum cmd_kind {
    CMD_MGET,         /* store_mget: mget_cb */
    CMD_GET,          /* store_get: get_cb */
    CMD_WRITE,        /* SET, EVALSHA: nobody waits */
    CMD_HELLO,        /* handshake steps: AUTH, SELECT, ROLE */
    CMD_SCRIPT,       /* SCRIPT LOAD of scripts[script] */
    CMD_PING,         /* the handshake's last step */
};

struct store_req {
    struct store_req *next;
    store_t *s;
    double deadline;
    enum cmd_kind kind;
    int script;                     /* CMD_SCRIPT: which */
    int role;                       /* CMD_HELLO: ROLE, whose answer must be "master" */
    int waiting;                    /* a read whose callback has not fired yet */
    store_mget_cb *mget_cb;
    store_get_cb *get_cb;
    void *ctx;
    size_t nkeys;
};

typedef struct script {
    char *body;
    char sha[STORE_SHA_LEN + 1];    /* "" until loaded on this connection */
} script_t;

struct store {
    struct ev_loop *loop;
    enum state state;
    redisAsyncContext *ac;          /* the data connection; NULL unless CONNECTING/UP */
    redisAsyncContext *sc;          /* the sentinel being asked; NULL unless SENTINEL */
    ev_timer retry_timer;           /* DOWN -> next attempt */
    ev_timer connect_timer;         /* bounds SENTINEL and CONNECTING */
    ev_timer cmd_timer;             /* the next deadline in the FIFO */
    double backoff;
    int hello_failed;               /* a handshake reply was wrong: drop at the PING */
    int reported;                   /* the current outage has been logged */
    int ever_up;
    double down_since;
    unsigned attempts;              /* since the last UP */
    store_req_t *head, *tail, *cursor;   /* cursor: first record not past its deadline */
    size_t nscripts;
    script_t scripts[STORE_SCRIPTS_MAX];
    size_t next_sentinel;
    char host[STORE_HOST_LEN];      /* what the data connection goes to */
    int port;                       /* 0: host is a unix socket path */
    char server[STORE_SERVER_LEN];
    char why[STORE_ERR_LEN];        /* the last failure, for the log */
    struct config cfg;              /* [redis] as given; the rest unused */
    store_stats_t stats;
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n);

    if (!p)
        log_fatal("store: out of memory");
    return p;
}

/* ---- addresses ---- */

/* "unix:/path", "host:port" or "[v6]:port" into host and port (0 for unix). */
static int parse_address(const char *addr, char host[STORE_HOST_LEN], int *port)
{
    const char *colon;
    size_t n;
    char *end;
    long p;

    if (strncmp(addr, "unix:", 5) == 0) {
        if (strlen(addr + 5) >= STORE_HOST_LEN)
            return -1;
        snprintf(host, STORE_HOST_LEN, "%s", addr + 5);
        *port = 0;
        return 0;
    }
    colon = strrchr(addr, ':');
    if (!colon || colon == addr)
        return -1;
    n = (size_t)(colon - addr);
    if (addr[0] == '[' && n >= 2 && addr[n - 1] == ']') {
        addr++;
        n -= 2;
    }
    if (n >= STORE_HOST_LEN)
        return -1;
    memcpy(host, addr, n);
    host[n] = '\0';
    p = strtol(colon + 1, &end, 10);
    if (*end || p < 1 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

static void server_name(store_t *s)
{
    if (s->port)
        snprintf(s->server, sizeof s->server, strchr(s->host, ':') ? "[%s]:%d" : "%s:%d",
                 s->host, s->port);
    else
        snprintf(s->server, sizeof s->server, "unix:%s", s->host);
}

/* ---- the FIFO of commands ---- */

static void fifo_push(store_t *s, store_req_t *r)
{
    r->next = NULL;
    if (s->tail)
        s->tail->next = r;
    else
        s->head = r;
    s->tail = r;
    if (!s->cursor)
        s->cursor = r;
    s->stats.pending++;
    s->stats.commands++;
}

static void fifo_pop(store_t *s, store_req_t *r)
{
    if (s->head != r)
        log_panic("store: a reply that is not for the oldest command");
    s->head = r->next;
    if (!s->head)
        s->tail = NULL;
    if (s->cursor == r)
        s->cursor = r->next;
    s->stats.pending--;
}

static void read_fail(store_req_t *r)
{
    r->waiting = 0;
    if (r->kind == CMD_MGET)
        r->mget_cb(r->ctx, NULL, 0);
    else
        r->get_cb(r->ctx, NULL, 0);
}

/* ---- connection state ---- */

static void connection_drop(store_t *s, const char *why);

static void retry_later(store_t *s)
{
    s->state = ST_DOWN;
    ev_timer_stop(s->loop, &s->connect_timer);
    ev_timer_set(&s->retry_timer, s->backoff, 0.);
    ev_timer_start(s->loop, &s->retry_timer);
    s->backoff = s->backoff * 2 < s->cfg.redis_retry_max ? s->backoff * 2 : s->cfg.redis_retry_max;
}

/* An attempt failed or a connection was lost: log it once per outage. */
static void failed(store_t *s, const char *why)
{
    double now = ev_now(s->loop);

    snprintf(s->why, sizeof s->why, "%s", why);
    if (s->state == ST_UP) {
        s->stats.outages++;
        s->down_since = now;
        s->attempts = 0;
    } else {
        s->stats.failed_attempts++;
    }
    s->stats.up = 0;
    s->attempts++;
    if (!s->reported) {
        s->reported = 1;
        log_error("redis: %s: %s; answering from memory and DNS until it is back",
                  *s->server ? s->server : "sentinels", why);
    } else {
        log_debug("redis: attempt %u failed: %s", s->attempts, why);
    }
    retry_later(s);
}

static void became_up(store_t *s)
{
    double now = ev_now(s->loop);

    ev_timer_stop(s->loop, &s->connect_timer);
    s->state = ST_UP;
    s->stats.up = 1;
    s->stats.connects++;
    s->backoff = STORE_RETRY_MIN;
    if (s->reported && s->ever_up)
        log_info("redis: %s answers again after %.1f s and %u attempt(s); sharing resumes",
                 s->server, now - s->down_since, s->attempts);
    else
        log_info("redis: connected to %s%s", s->server,
                 s->reported ? " after all; sharing starts" : "");
    s->reported = 0;
    s->ever_up = 1;
    s->attempts = 0;
}

/* Gives up the data connection: pending commands get NULL replies from hiredis
 * (reads fail), then the retry timer takes over. */
static void connection_drop(store_t *s, const char *why)
{
    redisAsyncContext *ac = s->ac;

    failed(s, why);
    s->ac = NULL;
    if (ac)
        redisAsyncFree(ac);
}

static void sentinel_drop(store_t *s, const char *why)
{
    redisAsyncContext *sc = s->sc;

    s->sc = NULL;
    if (sc)
        redisAsyncFree(sc);
    failed(s, why);
}

/* ---- deadlines ---- */

/* The timer runs for the earliest of the cursor's deadline and the head's stall time.
 * Called after each command sent: a timer already due no later is left alone, so the
 * common case costs no heap operation. */
static void cmd_timer_arm(store_t *s)
{
    double at, left;

    if (s->cursor)
        at = s->cursor->deadline;
    else if (s->head && s->state == ST_UP)
        at = s->head->deadline + s->cfg.redis_connect_timeout;
    else
        return;
    left = fmax(at - ev_now(s->loop), 0.);
    if (ev_is_active(&s->cmd_timer)) {
        if (ev_timer_remaining(s->loop, &s->cmd_timer) <= left)
            return;
        ev_timer_stop(s->loop, &s->cmd_timer);
    }
    ev_timer_set(&s->cmd_timer, left, 0.);
    ev_timer_start(s->loop, &s->cmd_timer);
}

static void cmd_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    store_t *s = w->data;
    double now = ev_now(loop);

    (void)revents;
    while (s->cursor && s->cursor->deadline <= now) {
        store_req_t *r = s->cursor;
        s->cursor = r->next;
        if (r->waiting) {
            s->stats.timeouts++;
            read_fail(r);
        }
    }
    if (s->state == ST_UP && s->head &&
        s->head->deadline + s->cfg.redis_connect_timeout <= now) {
        char why[STORE_ERR_LEN];
        snprintf(why, sizeof why, "no reply for %.3f s", now - s->head->deadline +
                 s->cfg.redis_timeout);
        connection_drop(s, why);
        return;
    }
    cmd_timer_arm(s);
}

/* ---- replies ---- */

static int reply_is_error(const redisReply *rp, const char *prefix)
{
    return rp && rp->type == REDIS_REPLY_ERROR && rp->str &&
           strncmp(rp->str, prefix, strlen(prefix)) == 0;
}

static void deliver_read(store_t *s, store_req_t *r, const redisReply *rp)
{
    store_value_t values[STORE_MGET_MAX];

    if (!r->waiting) {
        if (rp)
            s->stats.late++;
        return;
    }
    if (r->kind == CMD_GET) {
        if (rp && rp->type == REDIS_REPLY_STRING) {
            r->waiting = 0;
            r->get_cb(r->ctx, rp->str, rp->len);
            return;
        }
        if (rp && rp->type == REDIS_REPLY_NIL) {
            r->waiting = 0;
            r->get_cb(r->ctx, NULL, 0);
            return;
        }
    } else if (rp && rp->type == REDIS_REPLY_ARRAY && rp->elements == r->nkeys) {
        for (size_t i = 0; i < rp->elements; i++) {
            const redisReply *e = rp->element[i];
            values[i].data = e->type == REDIS_REPLY_STRING ? e->str : NULL;
            values[i].len = e->type == REDIS_REPLY_STRING ? e->len : 0;
        }
        r->waiting = 0;
        r->mget_cb(r->ctx, values, r->nkeys);
        return;
    }
    read_fail(r);
}

static void hello_reply(store_t *s, store_req_t *r, const redisReply *rp)
{
    char sample[LOG_SAMPLE_MAX + 4];

    if (!rp || s->hello_failed)
        return;
    if (rp->type == REDIS_REPLY_ERROR) {
        snprintf(s->why, sizeof s->why, "handshake refused: %s",
                 log_sample(sample, rp->str, rp->len));
        s->hello_failed = 1;
    } else if (r->role && !(rp->type == REDIS_REPLY_ARRAY && rp->elements > 0 &&
                              rp->element[0]->type == REDIS_REPLY_STRING &&
                              strcmp(rp->element[0]->str, "master") == 0)) {
        snprintf(s->why, sizeof s->why, "not a master (failover in progress?)");
        s->hello_failed = 1;
    }
}

static void script_reply(store_t *s, store_req_t *r, const redisReply *rp)
{
    if (!rp)
        return;
    if (rp->type == REDIS_REPLY_STRING && rp->len == STORE_SHA_LEN) {
        memcpy(s->scripts[r->script].sha, rp->str, STORE_SHA_LEN + 1);
    } else {
        char sample[LOG_SAMPLE_MAX + 4];
        snprintf(s->why, sizeof s->why, "SCRIPT LOAD: %s",
                 rp->str ? log_sample(sample, rp->str, rp->len) : "unexpected reply");
        s->hello_failed = 1;
    }
}

static int send_cmd(store_t *s, store_req_t *r, int argc, const char **argv,
                    const size_t *argvlen);

static void script_load(store_t *s, int script)
{
    store_req_t *r = xmalloc(sizeof *r);
    const char *argv[] = {"SCRIPT", "LOAD", s->scripts[script].body};
    size_t lens[] = {6, 4, strlen(s->scripts[script].body)};

    memset(r, 0, sizeof *r);
    r->kind = CMD_SCRIPT;
    r->script = script;
    s->scripts[script].sha[0] = '\0';
    if (send_cmd(s, r, 3, argv, lens) < 0)
        free(r);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    store_req_t *r = privdata;
    store_t *s = r->s;
    const redisReply *rp = reply;

    fifo_pop(s, r);
    if (rp) {
        s->stats.replies++;
        if (rp->type == REDIS_REPLY_ERROR)
            s->stats.errors++;
    }
    switch (r->kind) {
    case CMD_MGET:
    case CMD_GET:
        deliver_read(s, r, rp);
        break;
    case CMD_WRITE:
        /* Someone flushed the script cache: load again, once. */
        if (reply_is_error(rp, "NOSCRIPT") && s->state == ST_UP && ac == s->ac) {
            for (size_t i = 0; i < s->nscripts; i++)
                if (s->scripts[i].sha[0])
                    script_load(s, (int)i);
        }
        break;
    case CMD_HELLO:
        hello_reply(s, r, rp);
        break;
    case CMD_SCRIPT:
        script_reply(s, r, rp);
        break;
    case CMD_PING:
        if (rp && s->state == ST_CONNECTING && ac == s->ac) {
            /* e.g. LOADING: a Redis reading its data back is not ready yet. */
            if (rp->type == REDIS_REPLY_ERROR && !s->hello_failed) {
                char sample[LOG_SAMPLE_MAX + 4];
                snprintf(s->why, sizeof s->why, "not ready: %s",
                         log_sample(sample, rp->str, rp->len));
                s->hello_failed = 1;
            }
            if (s->hello_failed) {
                char why[STORE_ERR_LEN];
                snprintf(why, sizeof why, "%s", s->why);
                connection_drop(s, why);
            } else {
                became_up(s);
            }
        }
        break;
    }
    /* A replica promoted while we wrote to the old master: ask again. */
    if (reply_is_error(rp, "READONLY") && ac == s->ac && s->state == ST_UP)
        connection_drop(s, "the server became a replica");
    free(r);
}

/* Queues one command on the data connection. */
static int send_cmd(store_t *s, store_req_t *r, int argc, const char **argv,
                    const size_t *argvlen)
{
    r->s = s;
    r->deadline = ev_now(s->loop) + s->cfg.redis_timeout;
    if (redisAsyncCommandArgv(s->ac, on_reply, r, argc, argv, argvlen) != REDIS_OK)
        return -1;
    fifo_push(s, r);
    cmd_timer_arm(s);
    return 0;
}

/* ---- connecting ---- */

static void on_connect(const redisAsyncContext *ac, int status)
{
    store_t *s = ac->data;

    if (ac != s->ac || status == REDIS_OK)
        return;
    /* hiredis frees the context after this returns. */
    s->ac = NULL;
    failed(s, ac->errstr[0] ? ac->errstr : "cannot connect");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    store_t *s = ac->data;

    (void)status;
    if (ac != s->ac)
        return;
    s->ac = NULL;
    failed(s, ac->errstr[0] ? ac->errstr : "connection closed");
}

static redisAsyncContext *open_context(store_t *s, const char *host, int port, char *why,
                                       size_t wlen)
{
    redisAsyncContext *ac = port ? redisAsyncConnect(host, port) : redisAsyncConnectUnix(host);

    if (!ac) {
        snprintf(why, wlen, "out of memory");
        return NULL;
    }
    if (ac->err) {
        snprintf(why, wlen, "%s", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = s;
    redisLibevAttach(s->loop, ac);
    return ac;
}

/* Opens the data connection and queues the whole handshake behind the connect. */
static void connect_data(store_t *s)
{
    char why[STORE_ERR_LEN], db[STORE_NUM_LEN];
    store_req_t *r;

    server_name(s);
    s->state = ST_CONNECTING;
    s->hello_failed = 0;
    s->ac = open_context(s, s->host, s->port, why, sizeof why);
    if (!s->ac) {
        failed(s, why);
        return;
    }
    redisAsyncSetConnectCallback(s->ac, on_connect);
    redisAsyncSetDisconnectCallback(s->ac, on_disconnect);
    if (*s->cfg.redis_password) {
        const char *argv[] = {"AUTH", s->cfg.redis_username, s->cfg.redis_password};
        size_t lens[] = {4, strlen(s->cfg.redis_username), strlen(s->cfg.redis_password)};
        int named = *s->cfg.redis_username != '\0';
        r = xmalloc(sizeof *r);
        memset(r, 0, sizeof *r);
        r->kind = CMD_HELLO;
        if (!named) {
            argv[1] = argv[2];
            lens[1] = lens[2];
        }
        if (send_cmd(s, r, named ? 3 : 2, argv, lens) < 0)
            free(r);
    }
    if (s->cfg.redis_database) {
        const char *argv[] = {"SELECT", db};
        size_t lens[2];
        lens[0] = 6;
        lens[1] = (size_t)snprintf(db, sizeof db, "%u", s->cfg.redis_database);
        r = xmalloc(sizeof *r);
        memset(r, 0, sizeof *r);
        r->kind = CMD_HELLO;
        if (send_cmd(s, r, 2, argv, lens) < 0)
            free(r);
    }
    if (s->cfg.nredis_sentinels) {
        const char *argv[] = {"ROLE"};
        size_t lens[] = {4};
        r = xmalloc(sizeof *r);
        memset(r, 0, sizeof *r);
        r->kind = CMD_HELLO;
        r->role = 1;
        if (send_cmd(s, r, 1, argv, lens) < 0)
            free(r);
    }
    for (size_t i = 0; i < s->nscripts; i++)
        script_load(s, (int)i);
    {
        const char *argv[] = {"PING"};
        size_t lens[] = {4};
        r = xmalloc(sizeof *r);
        memset(r, 0, sizeof *r);
        r->kind = CMD_PING;
        if (send_cmd(s, r, 1, argv, lens) < 0) {
            free(r);
            connection_drop(s, "cannot queue the handshake");
        }
    }
}

static void on_sentinel_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    store_t *s = privdata;
    const redisReply *rp = reply;
    char why[STORE_ERR_LEN];
    long port;
    char *end;

    if (ac != s->sc || s->state != ST_SENTINEL)
        return;
    if (!rp) {
        s->sc = NULL;
        failed(s, "the sentinel closed the connection");
        return;
    }
    if (rp->type != REDIS_REPLY_ARRAY || rp->elements != 2 ||
        rp->element[0]->type != REDIS_REPLY_STRING ||
        rp->element[1]->type != REDIS_REPLY_STRING ||
        rp->element[0]->len >= sizeof s->host) {
        snprintf(why, sizeof why, "sentinel %s does not know master '%s'",
                 s->cfg.redis_sentinels[(s->next_sentinel + s->cfg.nredis_sentinels - 1) %
                                        s->cfg.nredis_sentinels],
                 s->cfg.redis_master_name);
        sentinel_drop(s, why);
        return;
    }
    port = strtol(rp->element[1]->str, &end, 10);
    if (*end || port < 1 || port > 65535) {
        sentinel_drop(s, "the sentinel named a bad port");
        return;
    }
    memcpy(s->host, rp->element[0]->str, rp->element[0]->len + 1);
    s->port = (int)port;
    s->sc = NULL;
    redisAsyncFree(ac);
    connect_data(s);
}

static void on_sentinel_connect(const redisAsyncContext *ac, int status)
{
    store_t *s = ac->data;

    if (ac != s->sc || status == REDIS_OK)
        return;
    s->sc = NULL;
    failed(s, ac->errstr[0] ? ac->errstr : "cannot connect to the sentinel");
}

static void on_sentinel_disconnect(const redisAsyncContext *ac, int status)
{
    store_t *s = ac->data;

    (void)status;
    if (ac != s->sc)
        return;
    s->sc = NULL;
    failed(s, "the sentinel closed the connection");
}

static void ask_sentinel(store_t *s)
{
    const char *addr = s->cfg.redis_sentinels[s->next_sentinel];
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", s->cfg.redis_master_name};
    size_t lens[] = {8, 23, strlen(s->cfg.redis_master_name)};
    char host[STORE_HOST_LEN], why[STORE_ERR_LEN];
    int port;

    s->next_sentinel = (s->next_sentinel + 1) % s->cfg.nredis_sentinels;
    s->state = ST_SENTINEL;
    if (parse_address(addr, host, &port) < 0 || port == 0) {
        char sample[LOG_SAMPLE_MAX + 4];
        snprintf(why, sizeof why, "bad sentinel address %s",
                 log_sample(sample, addr, strlen(addr)));
        failed(s, why);
        return;
    }
    s->sc = open_context(s, host, port, why, sizeof why);
    if (!s->sc) {
        failed(s, why);
        return;
    }
    redisAsyncSetConnectCallback(s->sc, on_sentinel_connect);
    redisAsyncSetDisconnectCallback(s->sc, on_sentinel_disconnect);
    if (redisAsyncCommandArgv(s->sc, on_sentinel_reply, s, 3, argv, lens) != REDIS_OK)
        sentinel_drop(s, "cannot ask the sentinel");
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    store_t *s = w->data;

    (void)revents;
    ev_timer_set(&s->connect_timer, s->cfg.redis_connect_timeout, 0.);
    ev_timer_start(loop, &s->connect_timer);
    if (s->cfg.nredis_sentinels)
        ask_sentinel(s);
    else
        connect_data(s);
}

static void connect_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    store_t *s = w->data;
    char why[STORE_ERR_LEN];

    (void)loop;
    (void)revents;
    snprintf(why, sizeof why, "no answer within connect_timeout (%g s)",
             s->cfg.redis_connect_timeout);
    if (s->state == ST_SENTINEL)
        sentinel_drop(s, why);
    else if (s->state == ST_CONNECTING)
        connection_drop(s, why);
}

/* ---- public ---- */

store_t *store_new(struct ev_loop *loop, const struct config *cfg, char err[STORE_ERR_LEN])
{
    store_t *s;

    if (!*cfg->redis_address && cfg->nredis_sentinels == 0) {
        snprintf(err, STORE_ERR_LEN, "store: no [redis] address and no sentinels");
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, STORE_ERR_LEN, "store: out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    if (!cfg->nredis_sentinels && parse_address(cfg->redis_address, s->host, &s->port) < 0) {
        char sample[LOG_SAMPLE_MAX + 4];
        snprintf(err, STORE_ERR_LEN, "store: bad address '%s'",
                 log_sample(sample, cfg->redis_address, strlen(cfg->redis_address)));
        free(s);
        return NULL;
    }
    s->loop = loop;
    s->state = ST_DOWN;
    s->backoff = STORE_RETRY_MIN;
    ev_init(&s->retry_timer, retry_cb);
    s->retry_timer.data = s;
    ev_init(&s->connect_timer, connect_timer_cb);
    s->connect_timer.data = s;
    ev_init(&s->cmd_timer, cmd_timer_cb);
    s->cmd_timer.data = s;
    ev_timer_set(&s->retry_timer, 0., 0.);
    ev_timer_start(loop, &s->retry_timer);
    return s;
}

void store_free(store_t *s)
{
    redisAsyncContext *ac, *sc;

    if (!s)
        return;
    ev_timer_stop(s->loop, &s->retry_timer);
    ev_timer_stop(s->loop, &s->connect_timer);
    ev_timer_stop(s->loop, &s->cmd_timer);
    ac = s->ac;
    sc = s->sc;
    s->ac = s->sc = NULL;
    s->state = ST_DOWN;
    if (ac)
        redisAsyncFree(ac);
    if (sc)
        redisAsyncFree(sc);
    for (size_t i = 0; i < s->nscripts; i++)
        free(s->scripts[i].body);
    free(s);
}

int store_up(const store_t *s)
{
    return s->state == ST_UP;
}

void store_get_stats(const store_t *s, store_stats_t *out)
{
    *out = s->stats;
}

const char *store_server(const store_t *s)
{
    return s->state == ST_UP ? s->server : "";
}

size_t store_key(const store_t *s, char *buf, size_t len, const char *kind, const char *name,
                 size_t namelen)
{
    size_t plen = strlen(s->cfg.redis_prefix), klen = strlen(kind);

    if (plen + klen + namelen >= len)
        return 0;
    memcpy(buf, s->cfg.redis_prefix, plen);
    memcpy(buf + plen, kind, klen);
    memcpy(buf + plen + klen, name, namelen);
    buf[plen + klen + namelen] = '\0';
    return plen + klen + namelen;
}

static int can_send(store_t *s)
{
    return s->state == ST_UP && s->stats.pending < s->cfg.redis_max_pending;
}

store_req_t *store_mget(store_t *s, size_t n, const char *const *keys, const size_t *keylens,
                        store_mget_cb *cb, void *ctx)
{
    const char *argv[STORE_MGET_MAX + 1];
    size_t lens[STORE_MGET_MAX + 1];
    store_req_t *r;

    if (n < 1 || n > STORE_MGET_MAX || !can_send(s)) {
        s->stats.refused++;
        return NULL;
    }
    argv[0] = "MGET";
    lens[0] = 4;
    for (size_t i = 0; i < n; i++) {
        argv[i + 1] = keys[i];
        lens[i + 1] = keylens[i];
    }
    r = xmalloc(sizeof *r);
    memset(r, 0, sizeof *r);
    r->kind = CMD_MGET;
    r->mget_cb = cb;
    r->ctx = ctx;
    r->nkeys = n;
    r->waiting = 1;
    if (send_cmd(s, r, (int)n + 1, argv, lens) < 0) {
        free(r);
        s->stats.refused++;
        return NULL;
    }
    return r;
}

store_req_t *store_get(store_t *s, const char *key, size_t keylen, store_get_cb *cb, void *ctx)
{
    const char *argv[] = {"GET", key};
    size_t lens[] = {3, keylen};
    store_req_t *r;

    if (!can_send(s)) {
        s->stats.refused++;
        return NULL;
    }
    r = xmalloc(sizeof *r);
    memset(r, 0, sizeof *r);
    r->kind = CMD_GET;
    r->get_cb = cb;
    r->ctx = ctx;
    r->nkeys = 1;
    r->waiting = 1;
    if (send_cmd(s, r, 2, argv, lens) < 0) {
        free(r);
        s->stats.refused++;
        return NULL;
    }
    return r;
}

void store_cancel(store_req_t *r)
{
    if (r)
        r->waiting = 0;
}

static int send_write(store_t *s, int argc, const char **argv, const size_t *lens)
{
    store_req_t *r;

    if (!can_send(s)) {
        s->stats.dropped++;
        return -1;
    }
    r = xmalloc(sizeof *r);
    memset(r, 0, sizeof *r);
    r->kind = CMD_WRITE;
    if (send_cmd(s, r, argc, argv, lens) < 0) {
        free(r);
        s->stats.dropped++;
        return -1;
    }
    return 0;
}

int store_set(store_t *s, const char *key, size_t keylen, const void *value, size_t len,
              double ttl)
{
    char px[STORE_NUM_LEN];
    double ms = ceil(ttl * STORE_MS);
    const char *argv[] = {"SET", key, value, "PX", px};
    size_t lens[] = {3, keylen, len, 2, 0};

    lens[4] = (size_t)snprintf(px, sizeof px, "%.0f", ms < 1 ? 1 : ms);
    return send_write(s, 5, argv, lens);
}

int store_script_add(store_t *s, const char *body)
{
    if (s->nscripts == STORE_SCRIPTS_MAX)
        return -1;
    s->scripts[s->nscripts].body = strdup(body);
    if (!s->scripts[s->nscripts].body)
        log_fatal("store: out of memory");
    s->scripts[s->nscripts].sha[0] = '\0';
    return (int)s->nscripts++;
}

int store_eval(store_t *s, int script, size_t nkeys, const char *const *keys,
               const size_t *keylens, size_t nargs, const char *const *args,
               const size_t *arglens)
{
    const char *argv[STORE_EVAL_ARGS_MAX];
    size_t lens[STORE_EVAL_ARGS_MAX];
    char num[STORE_NUM_LEN];
    size_t n = 0;

    if (script < 0 || (size_t)script >= s->nscripts || 3 + nkeys + nargs > STORE_EVAL_ARGS_MAX ||
        !s->scripts[script].sha[0]) {
        s->stats.dropped++;
        return -1;
    }
    argv[n] = "EVALSHA";
    lens[n++] = 7;
    argv[n] = s->scripts[script].sha;
    lens[n++] = STORE_SHA_LEN;
    argv[n] = num;
    lens[n++] = (size_t)snprintf(num, sizeof num, "%zu", nkeys);
    for (size_t i = 0; i < nkeys; i++) {
        argv[n] = keys[i];
        lens[n++] = keylens[i];
    }
    for (size_t i = 0; i < nargs; i++) {
        argv[n] = args[i];
        lens[n++] = arglens[i];
    }
    return send_write(s, (int)n, argv, lens);
}

/* ---- the DNS module's shared cache ---- */

static void *dns_shared_get(void *ctx, const char *key, dns_shared_cb *cb, void *arg)
{
    store_t *s = ctx;
    char full[STORE_KEY_MAX];
    size_t n = store_key(s, full, sizeof full, STORE_KIND_DNS, key, strlen(key));

    return n ? store_get(s, full, n, cb, arg) : NULL;
}

static void dns_shared_cancel(void *req)
{
    store_cancel(req);
}

static void dns_shared_put(void *ctx, const char *key, const void *value, size_t len, double ttl)
{
    store_t *s = ctx;
    char full[STORE_KEY_MAX];
    size_t n = store_key(s, full, sizeof full, STORE_KIND_DNS, key, strlen(key));

    if (n)
        store_set(s, full, n, value, len, ttl);
}

void store_dns_shared(store_t *s, struct dns_shared *sh)
{
    sh->ctx = s;
    sh->get = dns_shared_get;
    sh->cancel = dns_shared_cancel;
    sh->put = dns_shared_put;
    sh->error_ttl = s->cfg.redis_error_ttl;
}

/* ---- shared verdicts ---- */

static void put16(unsigned char *p, size_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static size_t get16(const unsigned char *p)
{
    return (size_t)p[0] << 8 | p[1];
}

static int text_ok(const char *t, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
            return 0;
    return 1;
}

size_t store_verdict_pack(char *buf, size_t len, const store_verdict_t *v)
{
    unsigned char *p = (unsigned char *)buf;
    size_t total = STORE_VERDICT_FIXED_LEN + v->explanation_len + v->comment_len;
    uint64_t ms = v->expires > 0 ? (uint64_t)llround(v->expires * STORE_MS) : 0;

    if (v->explanation_len > STORE_VERDICT_TEXT_MAX || v->comment_len > STORE_VERDICT_TEXT_MAX ||
        total > len || v->result < 0 || v->result >= SPF_RES_COUNT || v->uses > 0xff)
        return 0;
    memcpy(p, STORE_VERDICT_MAGIC, 2);
    p[2] = (unsigned char)v->result;
    p[3] = (unsigned char)v->uses;
    for (int i = 0; i < 8; i++)
        p[4 + i] = (unsigned char)(ms >> (56 - 8 * i));
    p += 12;
    put16(p, v->explanation_len);
    memcpy(p + 2, v->explanation, v->explanation_len);
    p += 2 + v->explanation_len;
    put16(p, v->comment_len);
    memcpy(p + 2, v->comment, v->comment_len);
    return total;
}

int store_verdict_unpack(store_verdict_t *v, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t ms = 0;
    size_t elen, clen;

    if (len < STORE_VERDICT_FIXED_LEN || memcmp(p, STORE_VERDICT_MAGIC, 2) != 0 ||
        p[2] >= SPF_RES_COUNT || (p[3] & ~(SPF_USES_LOCALPART | SPF_USES_HELO)))
        return -1;
    for (int i = 0; i < 8; i++)
        ms = ms << 8 | p[4 + i];
    elen = get16(p + 12);
    if (elen > STORE_VERDICT_TEXT_MAX || len < STORE_VERDICT_FIXED_LEN + elen)
        return -1;
    clen = get16(p + 14 + elen);
    if (clen > STORE_VERDICT_TEXT_MAX || len != STORE_VERDICT_FIXED_LEN + elen + clen)
        return -1;
    if (!text_ok((const char *)p + 14, elen) || !text_ok((const char *)p + 16 + elen, clen))
        return -1;
    v->result = p[2];
    v->uses = p[3];
    v->expires = (double)ms / STORE_MS;
    v->explanation = (const char *)p + 14;
    v->explanation_len = elen;
    v->comment = (const char *)p + 16 + elen;
    v->comment_len = clen;
    return 0;
}
