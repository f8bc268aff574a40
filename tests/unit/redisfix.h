/* redisfix.h - a real redis-server for unit tests: started on a free loopback port
 * (and a unix socket) in a temporary directory, stopped at exit, also when the test
 * dies of a signal (atexit and a fatal-signal handler, and PR_SET_PDEATHSIG in the
 * child). Readiness is polled with a deadline. A synchronous hiredis connection
 * (redisfix_cmd) lets a test look at what the code under test wrote.
 *
 * Also the loop helpers the store's tests share (redisfix_run_until and the
 * store_up conditions), so the file needs store.h.
 *
 * Header-only, like unit.h: include it in one test file. */
#ifndef REDISFIX_H
#define REDISFIX_H

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "store.h"
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Generous: valgrind and the sanitizers slow redis-server's start-up down too. */
#define REDISFIX_START_DEADLINE 10.0
#define REDISFIX_POLL_NS 10000000L
#define REDISFIX_RUNNING_MAX 4
#define REDISFIX_ARGS_MAX 32

typedef struct redisfix {
    pid_t pid;
    int port;
    char dir[64], sock[96];
    char password[64];
} redisfix_t;

static redisfix_t *redisfix_running[REDISFIX_RUNNING_MAX];

static double redisfix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void redisfix_sleep_poll(void)
{
    struct timespec ts = {0, REDISFIX_POLL_NS};
    nanosleep(&ts, NULL);
}

/* A port nobody listens on now: the kernel's choice for port 0. */
static int redisfix_free_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
        getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
        port = ntohs(sin.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* A synchronous connection to r, authenticated; NULL when it does not answer. */
static redisContext *redisfix_connect(const redisfix_t *r)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    redisReply *rp;

    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    if (*r->password) {
        rp = redisCommand(c, "AUTH %s", r->password);
        if (!rp || rp->type == REDIS_REPLY_ERROR) {
            if (rp)
                freeReplyObject(rp);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(rp);
    }
    return c;
}

/* One command on a fresh connection (database db); the reply, to be freed with
 * freeReplyObject, or NULL. */
static redisReply *redisfix_cmd(const redisfix_t *r, int db, const char *fmt, ...)
{
    redisContext *c = redisfix_connect(r);
    redisReply *rp = NULL;
    va_list ap;

    if (!c)
        return NULL;
    if (db) {
        rp = redisCommand(c, "SELECT %d", db);
        if (rp)
            freeReplyObject(rp);
    }
    va_start(ap, fmt);
    rp = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return rp;
}

static int redisfix_ping(const redisfix_t *r)
{
    redisReply *rp = redisfix_cmd(r, 0, "PING");
    int ok = rp && rp->type == REDIS_REPLY_STATUS;

    if (rp)
        freeReplyObject(rp);
    return ok;
}

static void redisfix_stop(redisfix_t *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGCONT);
        kill(r->pid, SIGTERM);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

static void redisfix_cleanup(redisfix_t *r)
{
    char path[128];

    redisfix_stop(r);
    unlink(r->sock);
    snprintf(path, sizeof path, "%s/dump.rdb", r->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/redis.log", r->dir);
    unlink(path);
    if (*r->dir)
        rmdir(r->dir);
    for (size_t i = 0; i < REDISFIX_RUNNING_MAX; i++)
        if (redisfix_running[i] == r)
            redisfix_running[i] = NULL;
}

static void redisfix_stop_all(void)
{
    for (size_t i = 0; i < REDISFIX_RUNNING_MAX; i++)
        if (redisfix_running[i])
            redisfix_cleanup(redisfix_running[i]);
}

static void redisfix_on_signal(int sig)
{
    redisfix_stop_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* (Re)starts redis-server for r: on r->port (a free one the first time), its unix
 * socket in r->dir, no persistence, password r->password if set. 0 once it answers
 * PING, -1 otherwise. */
static int redisfix_start(redisfix_t *r)
{
    const char *argv[REDISFIX_ARGS_MAX];
    char port[16], logfile[128];
    int n = 0;
    double deadline = redisfix_now() + REDISFIX_START_DEADLINE;

    if (!*r->dir) {
        snprintf(r->dir, sizeof r->dir, "/tmp/test_redis.XXXXXX");
        if (!mkdtemp(r->dir)) {
            r->dir[0] = '\0';
            return -1;
        }
        snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
        r->port = redisfix_free_port();
        for (size_t i = 0; i < REDISFIX_RUNNING_MAX; i++)
            if (!redisfix_running[i]) {
                redisfix_running[i] = r;
                break;
            }
        atexit(redisfix_stop_all);
        signal(SIGINT, redisfix_on_signal);
        signal(SIGTERM, redisfix_on_signal);
        signal(SIGABRT, redisfix_on_signal);
        signal(SIGSEGV, redisfix_on_signal);
    }
    snprintf(port, sizeof port, "%d", r->port);
    argv[n++] = "redis-server";
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--unixsocket";
    argv[n++] = r->sock;
    argv[n++] = "--dir";
    argv[n++] = r->dir;
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--loglevel";
    argv[n++] = "warning";
    argv[n++] = "--logfile";
    snprintf(logfile, sizeof logfile, "%s/redis.log", r->dir);
    argv[n++] = logfile;
    if (*r->password) {
        argv[n++] = "--requirepass";
        argv[n++] = r->password;
    }
    argv[n] = NULL;
    r->pid = fork();
    if (r->pid < 0)
        return -1;
    if (r->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    while (redisfix_now() < deadline) {
        int status;
        if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
            r->pid = 0;
            printf("redis-server exited at start (port %d busy?)\n", r->port);
            return -1;
        }
        if (redisfix_ping(r))
            return 0;
        redisfix_sleep_poll();
    }
    printf("redis-server did not answer within %g s\n", REDISFIX_START_DEADLINE);
    return -1;
}

/* ---- running the daemon's loop until something happened ---- */

/* How often the loop wakes to re-test a condition. */
#define REDISFIX_TICK 0.005

static void redisfix_tick_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)w;
    (void)revents;
}

/* Runs loop until done(arg) or seconds pass; 1 when done() became true. */
static int redisfix_run_until(struct ev_loop *loop, int (*done)(void *), void *arg,
                              double seconds)
{
    ev_timer tick;
    double deadline = redisfix_now() + seconds;
    int ok;

    ev_timer_init(&tick, redisfix_tick_cb, REDISFIX_TICK, REDISFIX_TICK);
    ev_timer_start(loop, &tick);
    while (!(ok = done(arg)) && redisfix_now() < deadline)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &tick);
    return ok;
}

static int redisfix_store_up(void *s)
{
    return store_up(s);
}

static int redisfix_store_down(void *s)
{
    return !store_up(s);
}

#endif
