/* reputation.c - decayed per-result counts per sender domain, client IP and network,
 * gathered here, added up in Redis by a script, read back through the request's MGET.
 *
 * Counting costs no Redis command per message: counts gather in a pending table
 * (bounded by REPUTATION_PENDING_MAX entities) and a timer sends them every
 * flush_interval, REPUTATION_FLUSH_BATCH entities per EVALSHA. While Redis cannot take
 * them they stay pending, up to the bound; past it they are dropped and counted. A
 * reputation read from Redis is kept refresh seconds; what was counted here since is
 * added to it, so a host sees its own counts at once. */
#include "reputation.h"

#include <ctype.h>
#include <ev.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cache.h"
#include "log.h"
#include "store.h"

/* The script: KEYS are entity keys; ARGV[1] now (s), ARGV[2] the window (s), ARGV[3]
 * the key TTL (ms), then one "c1 ... c7" increment per key. An unreadable old value
 * counts as none. A host whose clock is behind does not move t back. */
static const char update_script[] =
    "local now, tau, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]\n"
    "for i, key in ipairs(KEYS) do\n"
    "  local c, t = {0, 0, 0, 0, 0, 0, 0}, now\n"
    "  local old = redis.call('GET', key)\n"
    "  if old then\n"
    "    local f = {}\n"
    "    for x in string.gmatch(old, '%S+') do f[#f + 1] = tonumber(x) end\n"
    "    if #f == 8 then\n"
    "      local k = 1\n"
    "      if f[1] < now then k = math.exp((f[1] - now) / tau) else t = f[1] end\n"
    "      for j = 1, 7 do c[j] = f[j + 1] * k end\n"
    "    end\n"
    "  end\n"
    "  local j = 1\n"
    "  for x in string.gmatch(ARGV[3 + i], '%S+') do\n"
    "    if j <= 7 then c[j] = c[j] + tonumber(x) end\n"
    "    j = j + 1\n"
    "  end\n"
    "  redis.call('SET', key, string.format('%.0f %.6g %.6g %.6g %.6g %.6g %.6g %.6g', t,\n"
    "    c[1], c[2], c[3], c[4], c[5], c[6], c[7]), 'PX', ttl)\n"
    "end\n"
    "return #KEYS\n";

/* Where the kind goes in a key: r:<letter>:<entity>. */
static const char kind_letter[REPUTATION_KINDS] = {'d', 'i', 'n'};
static const char *const kind_name[REPUTATION_KINDS] = {"domain", "ip", "net"};
/* The networks a client is counted in (DESIGN.md: /24 for IPv4, /64 for IPv6). */
#define REPUTATION_V4_PREFIX 24
#define REPUTATION_V6_PREFIX 64
#define REPUTATION_V4_SUFFIX "/24"
#define REPUTATION_V6_SUFFIX "/64"
/* "d:" + entity: the name in the memory maps, and the key after the prefix and "r:". */
#define REPUTATION_NAME_LEN (2 + REPUTATION_ENTITY_MAX)
/* Digits of a number in a script argument; counts and times fit easily. */
#define REPUTATION_NUM_LEN 32
#define REPUTATION_INCR_LEN (SPF_RES_COUNT * REPUTATION_NUM_LEN)
/* Fields of a stored value: the time, then the seven counts. */
#define REPUTATION_FIELDS (1 + SPF_RES_COUNT)
/* The command line waits for the first connection this many connect_timeouts: the
 * first attempt and the retries after it. */
#define REPUTATION_CLI_CONNECT_TRIES 3
#define REPUTATION_CLI_POLL 0.01

typedef struct pending {
    char name[REPUTATION_NAME_LEN];
    double n[SPF_RES_COUNT];
} pending_t;

typedef struct known {
    reputation_counts_t c;
} known_t;

struct reputation {
    struct ev_loop *loop;
    struct store *store;
    int script;
    double window, refresh, flush;
    cache_t *known;                   /* name -> known_t, refresh seconds */
    cache_t *index;                   /* name -> pending_t in pend[] */
    pending_t *pend[REPUTATION_PENDING_MAX];
    size_t npend;
    ev_timer flush_timer;
    reputation_stats_t stats;
};

/* Copies at most len - 1 bytes of src and a NUL. No printf: this runs several times
 * for every message. */
static size_t copy_str(char *dst, size_t len, const char *src)
{
    size_t n = strnlen(src, len - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

static void name_of(char out[REPUTATION_NAME_LEN], enum reputation_kind kind, const char *entity)
{
    out[0] = kind_letter[kind];
    out[1] = ':';
    copy_str(out + 2, REPUTATION_NAME_LEN - 2, entity);
}

static void known_free(void *v)
{
    free(v);
}

/* ---- flushing ---- */

static void flush(reputation_t *r);

static void flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    flush(w->data);
}

/* Sends pending counts in batches; what Redis cannot take now stays pending. */
static void flush(reputation_t *r)
{
    char now[REPUTATION_NUM_LEN], win[REPUTATION_NUM_LEN], ttl[REPUTATION_NUM_LEN];
    char keys[REPUTATION_FLUSH_BATCH][STORE_KEY_MAX];
    char incr[REPUTATION_FLUSH_BATCH][REPUTATION_INCR_LEN];
    const char *kp[REPUTATION_FLUSH_BATCH], *ap[3 + REPUTATION_FLUSH_BATCH];
    size_t kl[REPUTATION_FLUSH_BATCH], al[3 + REPUTATION_FLUSH_BATCH];
    double t = ev_now(r->loop);
    size_t done = 0;

    ev_timer_stop(r->loop, &r->flush_timer);
    al[0] = (size_t)snprintf(now, sizeof now, "%.0f", t);
    al[1] = (size_t)snprintf(win, sizeof win, "%.0f", r->window);
    al[2] = (size_t)snprintf(ttl, sizeof ttl, "%.0f", r->window * REPUTATION_TTL_WINDOWS * 1000);
    ap[0] = now;
    ap[1] = win;
    ap[2] = ttl;
    while (done < r->npend) {
        size_t n = 0;
        for (size_t i = done; i < r->npend && n < REPUTATION_FLUSH_BATCH; i++) {
            const pending_t *p = r->pend[i];
            size_t len = 0;
            kl[n] = store_key(r->store, keys[n], sizeof keys[n], STORE_KIND_REPUTATION, p->name,
                              strlen(p->name));
            kp[n] = keys[n];
            for (int k = 0; k < SPF_RES_COUNT; k++)
                len += (size_t)snprintf(incr[n] + len, sizeof incr[n] - len, "%s%.0f",
                                        k ? " " : "", p->n[k]);
            ap[3 + n] = incr[n];
            al[3 + n] = len;
            n++;
        }
        /* The script takes now, window and TTL before the increments. */
        if (store_eval(r->store, r->script, n, kp, kl, 3 + n, ap, al) < 0)
            break;
        r->stats.flushes++;
        done += n;
    }
    for (size_t i = 0; i < done; i++) {
        pending_t *p = r->pend[i];
        known_t *k = cache_get(r->known, p->name, t, NULL);
        if (k)
            for (int j = 0; j < SPF_RES_COUNT; j++)
                k->c.n[j] += p->n[j];
        cache_del(r->index, p->name);
        free(p);
        r->stats.flushed_entities++;
    }
    memmove(r->pend, r->pend + done, (r->npend - done) * sizeof r->pend[0]);
    r->npend -= done;
    if (r->npend) {
        ev_timer_set(&r->flush_timer, r->flush, 0.);
        ev_timer_start(r->loop, &r->flush_timer);
    }
}

/* ---- public ---- */

reputation_t *reputation_new(struct ev_loop *loop, struct store *store, const struct config *cfg)
{
    reputation_t *r = calloc(1, sizeof *r);

    if (!r)
        return NULL;
    r->loop = loop;
    r->store = store;
    r->window = cfg->reputation_window;
    r->refresh = cfg->reputation_refresh;
    r->flush = cfg->reputation_flush;
    ev_init(&r->flush_timer, flush_cb);
    r->flush_timer.data = r;
    r->known = cache_new(cfg->reputation_cache_size, known_free);
    r->index = cache_new(REPUTATION_PENDING_MAX, NULL);
    r->script = store_script_add(store, update_script);
    if (!r->known || !r->index || r->script < 0) {
        reputation_free(r);
        return NULL;
    }
    return r;
}

void reputation_free(reputation_t *r)
{
    if (!r)
        return;
    if (r->npend)
        flush(r);
    ev_timer_stop(r->loop, &r->flush_timer);
    for (size_t i = 0; i < r->npend; i++)
        free(r->pend[i]);
    if (r->known)
        cache_free(r->known);
    if (r->index)
        cache_free(r->index);
    free(r);
}

void reputation_get_stats(const reputation_t *r, reputation_stats_t *out)
{
    *out = r->stats;
}

/* "a.b.c." of an IPv4 address at p: inet_ntop goes through sprintf, and this runs
 * for every message. Returns the bytes written. */
static size_t put_v4_head(char *p, const uint8_t *a)
{
    size_t n = 0;

    for (int i = 0; i < 3; i++) {
        unsigned v = a[i];
        if (v >= 100)
            p[n++] = (char)('0' + v / 100);
        if (v >= 10)
            p[n++] = (char)('0' + v / 10 % 10);
        p[n++] = (char)('0' + v % 10);
        p[n++] = '.';
    }
    return n;
}

void reputation_names(reputation_names_t *out, const netaddr_t *ip, const char *ipstr,
                      const char *domain)
{
    netcidr_t net;
    char *p = out->name[REPUTATION_NET];
    size_t n;

    copy_str(out->name[REPUTATION_DOMAIN], REPUTATION_ENTITY_MAX, domain);
    copy_str(out->name[REPUTATION_IP], REPUTATION_ENTITY_MAX, ipstr);
    if (ip->family == AF_INET) {
        n = put_v4_head(p, ip->addr);
        copy_str(p + n, REPUTATION_ENTITY_MAX - n, "0" REPUTATION_V4_SUFFIX);
        return;
    }
    netaddr_network(&net, ip, REPUTATION_V4_PREFIX, REPUTATION_V6_PREFIX);
    netaddr_format(&net.net, p, REPUTATION_ENTITY_MAX);
    n = strlen(p);
    copy_str(p + n, REPUTATION_ENTITY_MAX - n, REPUTATION_V6_SUFFIX);
}

size_t reputation_key(const reputation_t *r, char *buf, size_t len, enum reputation_kind kind,
                      const char *entity)
{
    char name[REPUTATION_NAME_LEN];

    name_of(name, kind, entity);
    return store_key(r->store, buf, len, STORE_KIND_REPUTATION, name, strlen(name));
}

void reputation_count(reputation_t *r, const reputation_names_t *names, enum spf_result res)
{
    for (int kind = 0; kind < REPUTATION_KINDS; kind++) {
        char name[REPUTATION_NAME_LEN];
        pending_t *p;
        if (!names->name[kind][0])
            continue;
        name_of(name, (enum reputation_kind)kind, names->name[kind]);
        p = cache_get(r->index, name, 0, NULL);
        if (!p) {
            if (r->npend == REPUTATION_PENDING_MAX) {
                flush(r);
                if (r->npend == REPUTATION_PENDING_MAX) {
                    /* Redis has not taken anything for a while: start over. */
                    r->stats.dropped += r->npend;
                    for (size_t i = 0; i < r->npend; i++) {
                        cache_del(r->index, r->pend[i]->name);
                        free(r->pend[i]);
                    }
                    r->npend = 0;
                }
            }
            p = calloc(1, sizeof *p);
            if (!p)
                return;
            memcpy(p->name, name, sizeof name);
            if (cache_put(r->index, p->name, p, HUGE_VAL, 0) < 0) {
                free(p);
                return;
            }
            r->pend[r->npend++] = p;
        }
        p->n[res]++;
    }
    r->stats.counted++;
    if (!ev_is_active(&r->flush_timer)) {
        ev_timer_set(&r->flush_timer, r->flush, 0.);
        ev_timer_start(r->loop, &r->flush_timer);
    }
}

int reputation_peek(reputation_t *r, enum reputation_kind kind, const char *entity,
                    reputation_counts_t *out)
{
    char name[REPUTATION_NAME_LEN];
    const known_t *k;
    const pending_t *p;

    name_of(name, kind, entity);
    k = cache_get(r->known, name, ev_now(r->loop), NULL);
    if (!k)
        return 0;
    *out = k->c;
    p = cache_get(r->index, name, 0, NULL);
    for (int j = 0; p && j < SPF_RES_COUNT; j++)
        out->n[j] += p->n[j];
    r->stats.cache_hits++;
    return 1;
}

void reputation_learn(reputation_t *r, enum reputation_kind kind, const char *entity,
                      const void *value, size_t len)
{
    char name[REPUTATION_NAME_LEN];
    double now = ev_now(r->loop);
    known_t *k = calloc(1, sizeof *k);

    if (!k)
        return;
    if (value && reputation_parse(&k->c, value, len, now, r->window) < 0)
        memset(&k->c, 0, sizeof k->c);
    name_of(name, kind, entity);
    cache_put(r->known, name, k, now + r->refresh, now);
    r->stats.learned++;
}

int reputation_parse(reputation_counts_t *out, const void *value, size_t len, double now,
                     double window)
{
    char text[REPUTATION_FIELDS * REPUTATION_NUM_LEN];
    double f[REPUTATION_FIELDS], k = 1;
    const char *p = text;
    char *end;

    if (len >= sizeof text || memchr(value, '\0', len))
        return -1;
    memcpy(text, value, len);
    text[len] = '\0';
    for (int i = 0; i < REPUTATION_FIELDS; i++) {
        if (i && *p++ != ' ')
            return -1;
        if (!*p || isspace((unsigned char)*p))
            return -1;
        f[i] = strtod(p, &end);
        if (end == p || !isfinite(f[i]) || f[i] < 0)
            return -1;
        p = end;
    }
    if (*p)
        return -1;
    if (f[0] < now)
        k = exp((f[0] - now) / window);
    for (int j = 0; j < SPF_RES_COUNT; j++)
        out->n[j] = f[j + 1] * k;
    return 0;
}

double reputation_total(const reputation_counts_t *c)
{
    double t = 0;

    for (int j = 0; j < SPF_RES_COUNT; j++)
        t += c->n[j];
    return t;
}

double reputation_failing(const reputation_counts_t *c, int count_softfail)
{
    return c->n[SPF_RES_FAIL] + (count_softfail ? c->n[SPF_RES_SOFTFAIL] : 0);
}

/* The count rounded, in decimal, at p; returns the digits written (at most
 * REPUTATION_NUM_LEN - 1). */
static size_t put_count(char *p, double v)
{
    char digits[REPUTATION_NUM_LEN];
    unsigned long long u = v < 1e18 ? (unsigned long long)llround(v) : 999999999999999999ULL;
    size_t n = 0;

    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    for (size_t i = 0; i < n; i++)
        p[i] = digits[n - 1 - i];
    return n;
}

size_t reputation_header(char *buf, size_t len, const reputation_counts_t *c[REPUTATION_KINDS],
                         int count_softfail)
{
    static const enum reputation_kind order[] = {REPUTATION_NET, REPUTATION_IP,
                                                 REPUTATION_DOMAIN};
    char pair[2 * REPUTATION_NUM_LEN + 16];
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const reputation_counts_t *x = c[order[i]];
        size_t n = 0;
        if (!x)
            continue;
        if (used)
            pair[n++] = ' ';
        n += copy_str(pair + n, sizeof pair - n, kind_name[order[i]]);
        pair[n++] = ' ';
        n += put_count(pair + n, reputation_failing(x, count_softfail));
        pair[n++] = '/';
        n += put_count(pair + n, reputation_total(x));
        if (n >= len - used)
            break;
        memcpy(buf + used, pair, n);
        used += n;
        buf[used] = '\0';
    }
    return used;
}

/* ---- the command line ---- */

typedef struct cli {
    store_t *store;
    int answered, done;
    double deadline;
    size_t n;
    enum reputation_kind kinds[2];
    const char *entities[2];
    FILE *out;
    double window;
    int count_softfail;
} cli_t;

static void cli_print(cli_t *c, const store_value_t *v)
{
    double now = ev_time();

    for (size_t i = 0; i < c->n; i++) {
        reputation_counts_t rc;
        memset(&rc, 0, sizeof rc);
        if (v[i].data && reputation_parse(&rc, v[i].data, v[i].len, now, c->window) < 0) {
            fprintf(c->out, "%s %s: unreadable value in Redis\n", kind_name[c->kinds[i]],
                    c->entities[i]);
            continue;
        }
        fprintf(c->out, "%s %s: %.1f checks, %.1f failing:", kind_name[c->kinds[i]],
                c->entities[i], reputation_total(&rc), reputation_failing(&rc, c->count_softfail));
        for (int j = 0; j < SPF_RES_COUNT; j++)
            fprintf(c->out, "%s %s %.1f", j ? "," : "", spf_result_name((enum spf_result)j),
                    rc.n[j]);
        fprintf(c->out, "\n");
    }
}

static void cli_reply(void *ctx, const store_value_t *values, size_t n)
{
    cli_t *c = ctx;

    c->done = 1;
    if (values && n == c->n) {
        c->answered = 1;
        cli_print(c, values);
    }
}

static void cli_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
    cli_t *c = w->data;

    (void)revents;
    if (c->done || ev_now(loop) > c->deadline) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    if (!c->answered && store_up(c->store) && !c->done) {
        char keys[2][STORE_KEY_MAX], name[REPUTATION_NAME_LEN];
        const char *kp[2];
        size_t kl[2];
        for (size_t i = 0; i < c->n; i++) {
            name_of(name, c->kinds[i], c->entities[i]);
            kl[i] = store_key(c->store, keys[i], sizeof keys[i], STORE_KIND_REPUTATION, name,
                              strlen(name));
            kp[i] = keys[i];
        }
        /* Asked once: the reply, or the store's timeout, ends the wait. */
        c->answered = -1;
        if (!store_mget(c->store, c->n, kp, kl, cli_reply, c))
            c->done = 1;
    }
}

int reputation_cli(const struct config *cfg, const char *what, FILE *out)
{
    char domain[REPUTATION_ENTITY_MAX], err[STORE_ERR_LEN];
    reputation_names_t names;
    netaddr_t ip;
    cli_t c;
    ev_timer poll;
    struct ev_loop *loop;
    size_t len = strlen(what);

    memset(&c, 0, sizeof c);
    if (netaddr_parse(&ip, what) == 0) {
        char ipstr[NETADDR_STRLEN];
        reputation_names(&names, &ip, netaddr_format(&ip, ipstr, sizeof ipstr), "");
        c.kinds[0] = REPUTATION_IP;
        c.entities[0] = names.name[REPUTATION_IP];
        c.kinds[1] = REPUTATION_NET;
        c.entities[1] = names.name[REPUTATION_NET];
        c.n = 2;
    } else {
        if (len > 0 && what[len - 1] == '.')
            len--;
        if (len == 0 || len >= sizeof domain || strspn(what, "abcdefghijklmnopqrstuvwxyz"
                                                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                             "0123456789-_.") < len) {
            fprintf(stderr, "spf-policyd: --reputation: '%s' is neither an IP address nor "
                            "a domain name\n", what);
            return 2;
        }
        for (size_t i = 0; i < len; i++)
            domain[i] = (char)tolower((unsigned char)what[i]);
        domain[len] = '\0';
        c.kinds[0] = REPUTATION_DOMAIN;
        c.entities[0] = domain;
        c.n = 1;
    }
    loop = ev_loop_new(EVFLAG_AUTO);
    if (!loop || !(c.store = store_new(loop, cfg, err))) {
        fprintf(stderr, "spf-policyd: --reputation: %s\n",
                loop ? err : "cannot create an event loop");
        if (loop)
            ev_loop_destroy(loop);
        return 1;
    }
    c.out = out;
    c.window = cfg->reputation_window;
    c.count_softfail = cfg->reputation_count_softfail;
    c.deadline = ev_time() + cfg->redis_connect_timeout * REPUTATION_CLI_CONNECT_TRIES +
                 cfg->redis_timeout;
    ev_timer_init(&poll, cli_poll, REPUTATION_CLI_POLL, REPUTATION_CLI_POLL);
    poll.data = &c;
    ev_timer_start(loop, &poll);
    ev_run(loop, 0);
    ev_timer_stop(loop, &poll);
    store_free(c.store);
    ev_loop_destroy(loop);
    if (c.answered != 1) {
        fprintf(stderr, "spf-policyd: --reputation: no answer from Redis (%s)\n",
                *cfg->redis_address ? cfg->redis_address : "sentinels");
        return 1;
    }
    return 0;
}
