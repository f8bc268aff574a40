/* main.c - command line, configuration, privileges, signals and the loop.
 *
 * Owns the top-level state (config, loop, and one instance of each module) and wires
 * the data flow: server -> policy -> spf -> dns. SIGHUP reloads the config file (a bad
 * one is logged and the running config kept); SIGTERM/SIGINT stop accepting, let the
 * requests in flight finish, and exit. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "policy.h"
#include "server.h"
#include "spf.h"
#include "spf_explain.h"
#include "reputation.h"
#include "store.h"

#define PROGRAM "spf-policyd"
/* Descriptors beyond the connections: listeners, DNS sockets, log, stdio. */
#define FD_RESERVE 64
/* A stop that waits longer than this for checks in flight gives up on them. */
#define DRAIN_TIMEOUT 30.0

typedef struct daemon {
    struct ev_loop *loop;
    struct config cfg;
    int foreground;
    char hostname[256];
    dns_t *dns;
    spf_t *spf;
    policy_t *policy;
    server_t *server;
    store_t *store;                      /* NULL without [redis] */
    reputation_t *rep;
    ev_signal sigterm, sigint, sighup;
    ev_timer drain_timer;
    int stopping;
} daemon_t;

/* --explain's own longest sender: a local part (RFC 5321: 64) and a domain. */
#define EXPLAIN_SENDER_MAX 512

static void usage(FILE *out)
{
    fprintf(out,
            "usage: " PROGRAM " [-f] [-t] [-c FILE]\n"
            "       " PROGRAM " [-c FILE] --explain --ip IP --sender ADDR [--helo NAME]\n"
            "       " PROGRAM " [-c FILE] --reputation IP|DOMAIN\n"
            "  -c FILE    configuration file (default: built-in defaults, see policy.ini.example)\n"
            "  -f         log to stderr instead of syslog (the daemon never forks)\n"
            "  -t         check the configuration and exit\n"
            "  --explain  run one SPF check with the native engine over the configured DNS\n"
            "             servers and print how it was evaluated, with warnings; ADDR is\n"
            "             local@domain or a domain; an empty ADDR checks the HELO name\n"
            "  --reputation IP|DOMAIN  print the shared reputation of an address (and its\n"
            "             network) or a sender domain, as kept in the configured Redis\n"
            "  -h         this help\n"
            "exit status: 0 done (whatever the SPF result), 1 error, 2 usage\n");
}

static int load_config(struct config *cfg, const char *path, char err[CONFIG_ERR_LEN])
{
    config_defaults(cfg);
    if (path && config_load(cfg, path, err) < 0)
        return -1;
    return config_validate(cfg, err);
}

static void dns_options(const struct config *c, dns_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->servers = c->dns_servers;
    o->timeout = c->dns_timeout;
    o->tries = c->dns_tries;
    o->max_inflight = c->dns_max_inflight;
    o->cache_size = c->dns_cache_size;
    o->max_ttl = c->dns_max_ttl;
    o->negative_ttl = c->dns_negative_ttl;
    o->error_ttl = c->dns_error_ttl;
}

static void spf_options(const daemon_t *d, spf_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->engine = d->cfg.engine;
    o->timeout = d->cfg.request_timeout;
    o->receiver = *d->cfg.receiver ? d->cfg.receiver : d->hostname;
    o->default_explanation = d->cfg.default_explanation;
}

typedef struct explain_run {
    struct ev_loop *loop;
    spf_explain_t *x;
    int done;
} explain_run_t;

static void explain_line(void *ctx, const char *line)
{
    (void)ctx;
    printf("%s\n", line);
}

static void explain_done(void *ctx, const spf_verdict_t *v)
{
    explain_run_t *r = ctx;

    spf_explain_finish(r->x, v);
    r->done = 1;
    ev_break(r->loop, EVBREAK_ALL);
}

/* --explain: one check, traced to stdout. */
static int explain(const struct config *cfg, const char *ipstr, const char *sender, const char *helo)
{
    char addr[EXPLAIN_SENDER_MAX], err[DNS_ERR_LEN > SPF_ERR_LEN ? DNS_ERR_LEN : SPF_ERR_LEN];
    explain_run_t run = {0};
    dns_options_t dopt;
    spf_options_t sopt;
    spf_query_t q;
    dns_t *dns;
    spf_t *spf;
    int rc = 1;

    memset(&q, 0, sizeof(q));
    if (netaddr_parse(&q.ip, ipstr) < 0) {
        fprintf(stderr, PROGRAM ": --ip %s: not an IP address\n", ipstr);
        return 2;
    }
    q.identity = *sender ? SPF_ID_MAILFROM : SPF_ID_HELO;
    if (!*sender && !*helo) {
        fprintf(stderr, PROGRAM ": an empty --sender needs --helo\n");
        return 2;
    }
    /* As the policy asks: the HELO identity is postmaster@helo (RFC 7208 2.3). */
    if (!*sender)
        snprintf(addr, sizeof(addr), "postmaster@%s", helo);
    else if (!strchr(sender, '@'))
        snprintf(addr, sizeof(addr), "postmaster@%s", sender);
    else
        snprintf(addr, sizeof(addr), "%s", sender);
    q.sender = addr;
    q.helo = helo;
    log_open(PROGRAM, 1, cfg->log_facility, LOG_LEVEL_WARN);
    run.loop = ev_default_loop(EVFLAG_AUTO);
    dns_options(cfg, &dopt);
    memset(&sopt, 0, sizeof(sopt));
    sopt.engine = ENGINE_NATIVE;
    sopt.timeout = cfg->request_timeout;
    sopt.receiver = *cfg->receiver ? cfg->receiver : "localhost";
    sopt.default_explanation = cfg->default_explanation;
    if (!(dns = dns_new(run.loop, &dopt, err))) {
        fprintf(stderr, PROGRAM ": dns: %s\n", err);
        return 1;
    }
    spf = spf_new(run.loop, dns, &sopt, err);
    run.x = spf_explain_new(explain_line, NULL);
    if (!spf || !run.x) {
        fprintf(stderr, PROGRAM ": spf: %s\n", spf ? "out of memory" : err);
    } else {
        char ip[NETADDR_STRLEN];
        printf("SPF check of %s from %s, HELO %s, identity %s\n", addr,
               netaddr_format(&q.ip, ip, sizeof(ip)), *helo ? helo : "(none)",
               spf_identity_name(q.identity));
        if (spf_check_traced(spf, &q, spf_explain_event, run.x, explain_done, &run)) {
            ev_run(run.loop, 0);
            rc = run.done ? 0 : 1;
        } else {
            fprintf(stderr, PROGRAM ": out of memory\n");
        }
    }
    if (spf)
        spf_free(spf);
    dns_free(dns);
    spf_explain_free(run.x);
    ev_loop_destroy(run.loop);
    fflush(stdout);
    return rc;
}

static void open_log(const daemon_t *d)
{
    log_open(PROGRAM, d->foreground || d->cfg.log_stderr, d->cfg.log_facility,
             (enum log_level)d->cfg.log_level);
}

static void raise_fd_limit(unsigned connections)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)connections + FD_RESERVE;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want <= rl.rlim_max ? want : rl.rlim_max;
    if (rl.rlim_max < want && geteuid() == 0)
        rl.rlim_max = rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
        log_warn("open files limit is %llu: fewer than max_connections = %u can be served",
                 (unsigned long long)rl.rlim_cur, connections);
}

static void drop_privileges(const char *user)
{
    struct passwd *pw;

    if (!*user)
        return;
    errno = 0;
    pw = getpwnam(user);
    if (!pw)
        log_fatal("[server] user = %s: no such user", user);
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0)
        log_fatal("cannot run as user %s: %s", user, strerror(errno));
}

static void reload(daemon_t *d)
{
    char err[CONFIG_ERR_LEN];
    spf_options_t so;
    struct config *next = malloc(sizeof(*next));

    if (!next) {
        log_error("reload: out of memory; keeping the running configuration");
        return;
    }
    if (load_config(next, *d->cfg.path ? d->cfg.path : NULL, err) < 0) {
        log_error("reload failed, keeping the running configuration: %s", err);
        free(next);
        return;
    }
    if (memcmp(next->dns_servers, d->cfg.dns_servers, sizeof(next->dns_servers)) != 0 ||
        next->engine != d->cfg.engine)
        log_warn("reload: [dns] and [spf] engine changes take effect at the next restart");
    if (strcmp(next->redis_address, d->cfg.redis_address) != 0 ||
        next->nredis_sentinels != d->cfg.nredis_sentinels ||
        strcmp(next->redis_prefix, d->cfg.redis_prefix) != 0 ||
        next->reputation_window != d->cfg.reputation_window)
        log_warn("reload: [redis] and the [reputation] window change at the next restart");
    memcpy(next->dns_servers, d->cfg.dns_servers, sizeof(next->dns_servers));
    next->engine = d->cfg.engine;
    d->cfg = *next;
    free(next);
    open_log(d);
    spf_options(d, &so);
    spf_reconfigure(d->spf, &so);
    policy_reconfigure(d->policy, &d->cfg);
    server_reconfigure(d->server, &d->cfg);
    log_info("configuration reloaded from %s", *d->cfg.path ? d->cfg.path : "built-in defaults");
}

static void drained(void *ctx)
{
    daemon_t *d = ctx;

    ev_break(d->loop, EVBREAK_ALL);
}

static void drain_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    (void)w;
    log_warn("requests still in flight after %.0f s: stopping anyway", DRAIN_TIMEOUT);
    ev_break(loop, EVBREAK_ALL);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    daemon_t *d = w->data;

    (void)loop;
    (void)revents;
    if (w->signum == SIGHUP) {
        reload(d);
        return;
    }
    if (d->stopping)
        return;
    d->stopping = 1;
    log_info("stopping on signal %d: finishing requests in flight", w->signum);
    ev_timer_start(d->loop, &d->drain_timer);
    server_drain(d->server, drained, d);
}

/* With [redis]: the store, the reputation on it, and the DNS answers and verdicts
 * shared through it. */
static void share_start(daemon_t *d)
{
    char err[STORE_ERR_LEN];
    dns_shared_t sh;

    if (!*d->cfg.redis_address && d->cfg.nredis_sentinels == 0)
        return;
    if (!(d->store = store_new(d->loop, &d->cfg, err)))
        log_fatal("%s", err);
    if (!(d->rep = reputation_new(d->loop, d->store, &d->cfg)))
        log_fatal("reputation: out of memory");
    store_dns_shared(d->store, &sh);
    dns_set_shared(d->dns, &sh);
    policy_share(d->policy, d->store, d->rep);
}

static void share_stop(daemon_t *d)
{
    store_stats_t st;

    if (!d->store)
        return;
    store_get_stats(d->store, &st);
    log_info("redis: %llu commands, %llu replies, %llu timeouts, %llu late, %llu errors, "
             "%llu reads refused, %llu writes dropped, %llu connects, %llu outages",
             st.commands, st.replies, st.timeouts, st.late, st.errors, st.refused, st.dropped,
             st.connects, st.outages);
    reputation_free(d->rep);
    store_free(d->store);
}

static void daemon_free(daemon_t *d)
{
    if (d->server)
        server_free(d->server);
    if (d->policy)
        policy_free(d->policy);
    if (d->spf)
        spf_free(d->spf);
    if (d->dns)
        dns_free(d->dns);
    share_stop(d);
}

int main(int argc, char **argv)
{
    static daemon_t d;
    enum { OPT_EXPLAIN = 256, OPT_IP, OPT_SENDER, OPT_HELO, OPT_REPUTATION };
    static const struct option long_options[] = {
        {"explain", no_argument, NULL, OPT_EXPLAIN},
        {"ip", required_argument, NULL, OPT_IP},
        {"sender", required_argument, NULL, OPT_SENDER},
        {"helo", required_argument, NULL, OPT_HELO},
        {"reputation", required_argument, NULL, OPT_REPUTATION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *ip = NULL, *sender = NULL, *helo = NULL, *reputation_of = NULL;
    int check_only = 0, explain_mode = 0, opt;
    char err[CONFIG_ERR_LEN], dns_err[DNS_ERR_LEN], spf_err[SPF_ERR_LEN],
        policy_err[POLICY_NEW_ERR_LEN], server_err[SERVER_ERR_LEN];
    dns_options_t dopt;
    spf_options_t sopt;

    while ((opt = getopt_long(argc, argv, "c:fth", long_options, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'f': d.foreground = 1; break;
        case 't': check_only = 1; break;
        case 'h': usage(stdout); return 0;
        case OPT_EXPLAIN: explain_mode = 1; break;
        case OPT_IP: ip = optarg; break;
        case OPT_SENDER: sender = optarg; break;
        case OPT_HELO: helo = optarg; break;
        case OPT_REPUTATION: reputation_of = optarg; break;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || (explain_mode && (!ip || !sender || check_only)) ||
        (!explain_mode && (ip || sender || helo)) ||
        (reputation_of && (explain_mode || check_only))) {
        usage(stderr);
        return 2;
    }
    if (load_config(&d.cfg, path, err) < 0) {
        fprintf(stderr, PROGRAM ": %s\n", err);
        return 1;
    }
    if (explain_mode)
        return explain(&d.cfg, ip, sender, helo ? helo : "");
    if (reputation_of)
        return reputation_cli(&d.cfg, reputation_of, stdout);
    if (check_only) {
        printf(PROGRAM ": %s: configuration OK\n", path ? path : "built-in defaults");
        return 0;
    }
    if (gethostname(d.hostname, sizeof(d.hostname) - 1) < 0 || !*d.hostname)
        snprintf(d.hostname, sizeof(d.hostname), "localhost");
    open_log(&d);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(d.cfg.max_connections);

    d.loop = ev_default_loop(EVFLAG_AUTO);
    dns_options(&d.cfg, &dopt);
    spf_options(&d, &sopt);
    if (!(d.dns = dns_new(d.loop, &dopt, dns_err)))
        log_fatal("dns: %s", dns_err);
    if (!(d.spf = spf_new(d.loop, d.dns, &sopt, spf_err)))
        log_fatal("spf: %s", spf_err);
    if (!(d.policy = policy_new(d.loop, &d.cfg, d.dns, d.spf, policy_err)))
        log_fatal("policy: %s", policy_err);
    share_start(&d);
    if (!(d.server = server_new(d.loop, &d.cfg, d.policy, server_err)))
        log_fatal("%s", server_err);
    drop_privileges(d.cfg.user);

    ev_signal_init(&d.sigterm, signal_cb, SIGTERM);
    ev_signal_init(&d.sigint, signal_cb, SIGINT);
    ev_signal_init(&d.sighup, signal_cb, SIGHUP);
    d.sigterm.data = d.sigint.data = d.sighup.data = &d;
    ev_signal_start(d.loop, &d.sigterm);
    ev_signal_start(d.loop, &d.sigint);
    ev_signal_start(d.loop, &d.sighup);
    ev_timer_init(&d.drain_timer, drain_timeout_cb, DRAIN_TIMEOUT, 0);

    log_info("started: %zu listener(s), engine %s, config %s", d.cfg.nlisten,
             d.cfg.engine == ENGINE_NATIVE ? "native" : "libspf2", path ? path : "built-in defaults");
    ev_run(d.loop, 0);

    ev_timer_stop(d.loop, &d.drain_timer);
    ev_signal_stop(d.loop, &d.sigterm);
    ev_signal_stop(d.loop, &d.sigint);
    ev_signal_stop(d.loop, &d.sighup);
    /* Stopping a watcher restores the default action: a second TERM now must not
     * kill the teardown halfway. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    daemon_free(&d);
    ev_loop_destroy(d.loop);
    log_info("stopped");
    log_close();
    return 0;
}
