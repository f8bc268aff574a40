/* dns.c - c-ares on the libev loop, with an answer cache, coalescing of identical
 * queries, a cap on queries in flight and our own parse of every answer.
 *
 * Life of a lookup: dns_lookup answers from the cache, or joins the query already
 * pending for the same (type, name), or creates one. A query waits in a FIFO until
 * fewer than max_inflight queries are out, then goes to c-ares. When it ends, its
 * answer is cached and every waiter moves to the ready list; a 0-second timer drains
 * that list on the next loop turn. So callbacks run from one place only, never inside
 * dns_lookup and never inside c-ares: a callback may start or cancel lookups freely.
 *
 * c-ares 1.18 doubles the per-try timeout on every round, so tries = 2 would take
 * 3 x timeout. Each query therefore has its own deadline of timeout x tries; when it
 * passes, the waiters get DNS_TIMEOUT and the c-ares query is orphaned: it still holds
 * its slot until c-ares gives up, and a late real answer still refreshes the cache.
 *
 * c-ares 1.18's parse helpers drop TTLs for most types, so answers are walked here:
 * records of the asked type owned by the name or by the end of its CNAME chain are
 * kept, the TTL is the smallest over them and the chain, and negative answers take
 * min(SOA TTL, SOA MINIMUM) from the authority section (RFC 2308 5).
 *
 * With a shared cache (dns_set_shared: Redis, through the store module), a new query
 * first asks it (state Q_SHARED, not yet in the FIFO): a hit is delivered like any
 * answer, a miss or no answer within the store's timeout puts the query in the FIFO.
 * Every answer that came from the network is handed to the shared cache with what is
 * left of its TTL; answers that came from the shared cache are not written back. */
#include "dns.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <ev.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache.h"
#include "log.h"

/* CNAME links followed inside one answer; a longer chain is treated as a loop and
 * yields no records (recursive resolvers cap chains at about this length too). */
#define DNS_CNAME_MAX 16
/* RFC 2308 5: a negative answer without an SOA gives no TTL to honour. Caching it
 * briefly still spares the servers a storm of identical questions. */
#define DNS_NEG_TTL_NO_SOA 60
/* "65535:" + name + NUL: the cache and in-flight key of a (type, name). */
#define DNS_KEY_LEN (6 + DNS_NAME_MAX + 1)
/* RFC 2181 8: a TTL with the top bit set is to be read as zero. */
#define DNS_TTL_MAX_VALID 0x7fffffffU
/* Smallest resource record: root owner (1), type, class, ttl, rdlength (10). */
#define DNS_RR_MIN_LEN 11
/* SOA RDATA after its two names: serial, refresh, retry, expire, minimum. */
#define DNS_SOA_FIXED_LEN 20
/* The packed form of a shared answer: magic, status, type, TTL, expiry in ms, count,
 * name length. */
#define DNS_PACK_MAGIC "D1"
#define DNS_PACK_FIXED_LEN (2 + 1 + 2 + 4 + 8 + 2 + 1)
/* The smallest packed record: an MX or PTR with a one-byte name, or a TXT of 3 bytes. */
#define DNS_PACK_RR_MIN 2
/* Milliseconds in a second: expiry times are shared in ms. */
#define DNS_MS 1000.0
/* The in-flight map never evicts: queries leave it when they end. Its size (stats
 * inflight + queued) is bounded by the callers: a check caps its pending lookups
 * and the server caps connections. */
#define DNS_INFLIGHT_UNBOUNDED ((size_t)-1)

struct dns_lookup {
    struct dns_lookup *next;
    dns_cb *cb;                     /* NULL once cancelled: skipped, freed later */
    void *ctx;
    const dns_answer_t *ans;        /* on the ready list: one reference */
};

typedef struct waiters {
    dns_lookup_t *head, **tail;
} waiters_t;

enum query_state { Q_SHARED, Q_QUEUED, Q_SENT, Q_ORPHAN };

typedef struct query {
    ev_timer deadline;              /* timeout x tries once sent */
    dns_t *d;
    struct query *qnext;            /* FIFO of queued queries */
    struct query *sprev, *snext;    /* Q_SHARED: list of queries asking the shared cache */
    void *shared_req;
    waiters_t waiters;
    enum query_state state;
    int type;
    int sending;                    /* inside ares_query: a callback now is synchronous */
    int sync_done, sync_status;
    const char *name;               /* points into key, after "type:" */
    char key[];
} query_t;

typedef struct sock {
    ev_io io;
    dns_t *d;
    struct sock *next;
} sock_t;

struct dns {
    struct ev_loop *loop;
    ares_channel channel;
    ev_timer ares_timer;            /* ares_timeout(): c-ares retries and timeouts */
    ev_timer ready_timer;           /* 0 s: delivers the ready list next loop turn */
    sock_t *socks;                  /* one ev_io per socket c-ares has open */
    cache_t *cache;                 /* key -> dns_answer_t, one reference each */
    cache_t *inflight;              /* key -> query_t, queued or sent, not orphaned */
    query_t *qhead, **qtail;
    query_t *shared_head;           /* Q_SHARED queries */
    dns_shared_t shared;
    int sharing;
    waiters_t ready;
    double attempt_timeout;
    unsigned tries, max_inflight, max_ttl, negative_ttl, error_ttl;
    int closing;
    dns_stats_t stats;
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n);

    if (!p)
        log_fatal("dns: out of memory");
    return p;
}

static void waiters_init(waiters_t *w)
{
    w->head = NULL;
    w->tail = &w->head;
}

static void waiters_push(waiters_t *w, dns_lookup_t *l)
{
    l->next = NULL;
    *w->tail = l;
    w->tail = &l->next;
}

/* ---- answers ---- */

static dns_answer_t *answer_alloc(const char *name, int type, enum dns_status status,
                                  size_t count, size_t extra, char **strings)
{
    size_t namelen = strlen(name) + 1;
    dns_answer_t *a = xmalloc(sizeof *a + count * sizeof(dns_rr_t) + namelen + extra);

    a->rr = (dns_rr_t *)(a + 1);
    a->name = (char *)(a->rr + count);
    memcpy(a->name, name, namelen);
    a->type = type;
    a->status = status;
    a->ttl = 0;
    a->expires = 0;
    a->count = count;
    a->refs = 1;
    if (strings)
        *strings = a->name + namelen;
    return a;
}

static dns_answer_t *answer_status(dns_t *d, const char *name, int type,
                                   enum dns_status status, uint32_t ttl)
{
    dns_answer_t *a = answer_alloc(name, type, status, 0, 0, NULL);

    a->ttl = ttl;
    a->expires = ev_now(d->loop) + ttl;
    return a;
}

const dns_answer_t *dns_answer_ref(const dns_answer_t *a)
{
    ((dns_answer_t *)a)->refs++;
    return a;
}

void dns_answer_unref(const dns_answer_t *a)
{
    if (a && --((dns_answer_t *)a)->refs == 0)
        free((dns_answer_t *)a);
}

static void answer_cache_free(void *a)
{
    dns_answer_unref(a);
}

/* ---- message parsing ---- */

typedef struct rrinfo {
    char *owner;                    /* ares_expand_name's, freed by rrs_free */
    char *target;                   /* CNAME/MX/PTR name, if parsed */
    unsigned type, rclass;
    uint32_t ttl;
    const unsigned char *rdata;
    size_t rdlen;
    int kept;                       /* goes into the answer */
} rrinfo_t;

static unsigned get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t ttl_of(uint32_t wire)
{
    return wire > DNS_TTL_MAX_VALID ? 0 : wire;
}

/* ares_expand_name escapes bytes that are special in zone files ("\$", "\@") or not
 * printable ("\128"), but a name is asked, compared and handed on as its bytes. Only
 * "\." and "\\" (a dot or backslash inside a label) and "\000" stay escaped: as bytes
 * they would change the name's labels or end the string. */
static void name_unescape(char *s)
{
    char *out = s;

    while (*s) {
        int ddd = s[0] == '\\' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' &&
                  s[2] <= '9' && s[3] >= '0' && s[3] <= '9';
        int v = ddd ? (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0') : -1;
        if (s[0] != '\\' || !s[1]) {
            *out++ = *s++;
        } else if (ddd && v > 0 && v < 256) {
            *out++ = (char)v;
            s += 4;
        } else if (ddd || s[1] == '.' || s[1] == '\\') {
            *out++ = *s++;
            *out++ = *s++;
        } else {
            *out++ = s[1];
            s += 2;
        }
    }
    *out = '\0';
}

/* A name at p that must end within limit bytes: the name and its encoded length,
 * or -1. */
static int name_read(const unsigned char *abuf, int alen, const unsigned char *p,
                     size_t limit, char **out, size_t *used)
{
    long enclen;

    if (ares_expand_name(p, abuf, alen, out, &enclen) != ARES_SUCCESS)
        return -1;
    if (enclen <= 0 || (size_t)enclen > limit) {
        ares_free_string(*out);
        *out = NULL;
        return -1;
    }
    name_unescape(*out);
    *used = (size_t)enclen;
    return 0;
}

/* Reads the record at *pp and moves *pp past it; -1 if it overruns the message. */
static int rr_read(const unsigned char *abuf, int alen, const unsigned char **pp,
                   rrinfo_t *ri)
{
    const unsigned char *p = *pp, *end = abuf + alen;
    size_t used;

    ri->target = NULL;
    ri->kept = 0;
    if (name_read(abuf, alen, p, (size_t)(end - p), &ri->owner, &used) < 0)
        return -1;
    p += used;
    if (end - p < 10 || (size_t)(end - p - 10) < get16(p + 8)) {
        ares_free_string(ri->owner);
        ri->owner = NULL;
        return -1;
    }
    ri->type = get16(p);
    ri->rclass = get16(p + 2);
    ri->ttl = ttl_of(get32(p + 4));
    ri->rdlen = get16(p + 8);
    ri->rdata = p + 10;
    *pp = ri->rdata + ri->rdlen;
    return 0;
}

static void rrs_free(rrinfo_t *rr, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ares_free_string(rr[i].owner);
        if (rr[i].target)
            ares_free_string(rr[i].target);
    }
    free(rr);
}

/* Bytes of string storage the record needs in an answer (after its check), or -1
 * if its RDATA is malformed. MX/PTR targets are expanded into ri->target. */
static long rr_size(const unsigned char *abuf, int alen, rrinfo_t *ri)
{
    size_t used, total = 0;

    switch (ri->type) {
    case DNS_T_A:
        return ri->rdlen == 4 ? 0 : -1;
    case DNS_T_AAAA:
        return ri->rdlen == 16 ? 0 : -1;
    case DNS_T_MX:
        if (ri->rdlen < 3 || name_read(abuf, alen, ri->rdata + 2, ri->rdlen - 2,
                                       &ri->target, &used) < 0)
            return -1;
        return (long)strlen(ri->target) + 1;
    case DNS_T_PTR:
        if (name_read(abuf, alen, ri->rdata, ri->rdlen, &ri->target, &used) < 0)
            return -1;
        return (long)strlen(ri->target) + 1;
    default:                        /* TXT, SPF: character-strings */
        for (size_t off = 0; off < ri->rdlen; off += 1 + ri->rdata[off]) {
            if (off + 1 + ri->rdata[off] > ri->rdlen)
                return -1;
            total += ri->rdata[off];
        }
        return (long)total + 1;
    }
}

static void rr_fill(dns_rr_t *out, const rrinfo_t *ri, char **strings)
{
    char *s = *strings;
    size_t len;

    switch (ri->type) {
    case DNS_T_A:
        memcpy(&out->u.a, ri->rdata, 4);
        return;
    case DNS_T_AAAA:
        memcpy(&out->u.aaaa, ri->rdata, 16);
        return;
    case DNS_T_MX:
        out->u.mx.pref = (uint16_t)get16(ri->rdata);
        out->u.mx.name = s;
        len = strlen(ri->target) + 1;
        memcpy(s, ri->target, len);
        break;
    case DNS_T_PTR:
        out->u.ptr = s;
        len = strlen(ri->target) + 1;
        memcpy(s, ri->target, len);
        break;
    default:
        out->u.txt.data = s;
        len = 0;
        for (size_t off = 0; off < ri->rdlen; off += 1 + ri->rdata[off]) {
            memcpy(s + len, ri->rdata + off + 1, ri->rdata[off]);
            len += ri->rdata[off];
        }
        out->u.txt.len = len;
        s[len++] = '\0';
        break;
    }
    *strings = s + len;
}

/* TTL for a negative answer from the first SOA of the authority section. */
static uint32_t negative_ttl(const dns_t *d, const rrinfo_t *ns, size_t nns,
                             const unsigned char *abuf, int alen)
{
    uint32_t ttl = DNS_NEG_TTL_NO_SOA;

    for (size_t i = 0; i < nns; i++) {
        size_t used, off = 0;
        char *name;
        int names = 0;
        if (ns[i].type != ns_t_soa || ns[i].rclass != ns_c_in)
            continue;
        /* MNAME and RNAME, then the fixed fields. */
        for (; names < 2; names++) {
            if (name_read(abuf, alen, ns[i].rdata + off, ns[i].rdlen - off, &name, &used) < 0)
                break;
            ares_free_string(name);
            off += used;
        }
        if (names < 2 || ns[i].rdlen - off != DNS_SOA_FIXED_LEN)
            continue;
        ttl = ttl_of(get32(ns[i].rdata + off + 16));
        if (ns[i].ttl < ttl)
            ttl = ns[i].ttl;
        break;
    }
    return ttl < d->negative_ttl ? ttl : d->negative_ttl;
}

/* Reads count records into a new array; NULL if the message is cut short. */
static rrinfo_t *section_read(const unsigned char *abuf, int alen, const unsigned char **pp,
                              size_t count)
{
    rrinfo_t *rr;

    /* The count comes from the peer: bound it by what the message could hold. */
    if (count > (size_t)(abuf + alen - *pp) / DNS_RR_MIN_LEN)
        return NULL;
    rr = xmalloc((count ? count : 1) * sizeof *rr);
    for (size_t i = 0; i < count; i++) {
        if (rr_read(abuf, alen, pp, &rr[i]) < 0) {
            rrs_free(rr, i);
            return NULL;
        }
    }
    return rr;
}

/* The answer in a c-ares reply whose status is ARES_SUCCESS (records may still be
 * only CNAMEs), ARES_ENODATA or ARES_ENOTFOUND; DNS_SERVFAIL if malformed. */
static dns_answer_t *answer_parse(dns_t *d, const query_t *q, int status,
                                  const unsigned char *abuf, int alen)
{
    const unsigned char *p;
    rrinfo_t *an = NULL, *ns = NULL;
    size_t nan, nns, kept = 0, strings = 0, used;
    const char *owner = q->name;
    uint32_t ttl = d->max_ttl;
    dns_answer_t *a = NULL;
    char *sp, *name;

    if (!abuf || alen < HFIXEDSZ)
        goto malformed;
    p = abuf + HFIXEDSZ;
    for (unsigned i = get16(abuf + 4); i > 0; i--) {
        if (name_read(abuf, alen, p, (size_t)(abuf + alen - p), &name, &used) < 0)
            goto malformed;
        ares_free_string(name);
        if ((size_t)(abuf + alen - p) < used + QFIXEDSZ)
            goto malformed;
        p += used + QFIXEDSZ;
    }
    nan = get16(abuf + 6);
    nns = get16(abuf + 8);
    an = section_read(abuf, alen, &p, nan);
    if (!an)
        goto malformed;
    ns = section_read(abuf, alen, &p, nns);
    if (!ns)
        goto malformed;

    if (status == ARES_SUCCESS) {
        int links = 0;
        for (size_t i = 0; i < nan; i++) {
            if (an[i].type != ns_t_cname || an[i].rclass != ns_c_in ||
                strcasecmp(an[i].owner, owner) != 0)
                continue;
            /* A link used twice, or too many links, is a loop. */
            if (an[i].target || ++links > DNS_CNAME_MAX) {
                links = DNS_CNAME_MAX + 1;
                break;
            }
            if (name_read(abuf, alen, an[i].rdata, an[i].rdlen, &an[i].target, &used) < 0)
                goto malformed;
            if (an[i].ttl < ttl)
                ttl = an[i].ttl;
            owner = an[i].target;
            i = (size_t)-1;         /* the next link may come earlier in the section */
        }
        for (size_t i = 0; i < nan && links <= DNS_CNAME_MAX; i++) {
            long size;
            if ((int)an[i].type != q->type || an[i].rclass != ns_c_in ||
                strcasecmp(an[i].owner, owner) != 0)
                continue;
            size = rr_size(abuf, alen, &an[i]);
            if (size < 0)
                goto malformed;
            strings += (size_t)size;
            if (an[i].ttl < ttl)
                ttl = an[i].ttl;
            an[i].kept = 1;
            kept++;
        }
    }
    if (kept == 0) {
        enum dns_status st = status == ARES_ENOTFOUND ? DNS_NXDOMAIN : DNS_NODATA;
        a = answer_status(d, q->name, q->type, st, negative_ttl(d, ns, nns, abuf, alen));
    } else {
        size_t j = 0;
        a = answer_alloc(q->name, q->type, DNS_OK, kept, strings, &sp);
        for (size_t i = 0; i < nan; i++) {
            if (an[i].kept)
                rr_fill(&a->rr[j++], &an[i], &sp);
        }
        a->ttl = ttl;
        a->expires = ev_now(d->loop) + ttl;
    }
    rrs_free(an, nan);
    rrs_free(ns, nns);
    return a;

malformed:
    if (an)
        rrs_free(an, nan);
    if (ns)
        rrs_free(ns, nns);
    return answer_status(d, q->name, q->type, DNS_SERVFAIL, d->error_ttl);
}

/* ---- names ---- */

static int type_known(int type)
{
    return type == DNS_T_A || type == DNS_T_PTR || type == DNS_T_MX || type == DNS_T_TXT ||
           type == DNS_T_AAAA || type == DNS_T_SPF;
}

int dns_name_normalize(char out[DNS_NAME_MAX + 1], const char *name, size_t len)
{
    size_t label = 0;

    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_NAME_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.') {
            if (label == 0)
                return -1;
            label = 0;
        } else if (c < ' ' || c == 0x7f || c == '\\' || ++label > 63) {
            return -1;
        }
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    if (label == 0)
        return -1;
    out[len] = '\0';
    return 0;
}

/* Writes "type:name" with name normalized; returns the offset of the name in key, or
 * -1 if name is no valid DNS name. */
static int key_make(char key[DNS_KEY_LEN], int type, const char *name)
{
    int off = snprintf(key, DNS_KEY_LEN, "%d:", type);

    if (dns_name_normalize(key + off, name, strnlen(name, DNS_NAME_MAX + 2)) < 0)
        return -1;
    return off;
}

/* ---- delivery ---- */

static void ready_start(dns_t *d)
{
    if (!d->closing && d->ready.head && !ev_is_active(&d->ready_timer)) {
        ev_timer_set(&d->ready_timer, 0., 0.);
        ev_timer_start(d->loop, &d->ready_timer);
    }
}

/* Moves every waiter of a query to the ready list, each with a reference to a. */
static void deliver_later(dns_t *d, waiters_t *from, const dns_answer_t *a)
{
    dns_lookup_t *l, *next;

    for (l = from->head; l; l = next) {
        next = l->next;
        l->ans = dns_answer_ref(a);
        waiters_push(&d->ready, l);
    }
    waiters_init(from);
    ready_start(d);
}

static void ready_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    dns_t *d = w->data;
    dns_lookup_t *l = d->ready.head, *next;

    (void)loop;
    (void)revents;
    /* Lookups the callbacks start go to a fresh list, for the next turn. */
    waiters_init(&d->ready);
    for (; l; l = next) {
        next = l->next;
        if (l->cb)
            l->cb(l->ctx, l->ans);
        dns_answer_unref(l->ans);
        free(l);
    }
}

/* The cache takes its own reference; answers that cannot be reused are not kept. */
static void answer_store(dns_t *d, const char *key, const dns_answer_t *a)
{
    double now = ev_now(d->loop);

    if (a->status != DNS_SHUTDOWN && a->expires > now)
        cache_put(d->cache, key, (void *)dns_answer_ref(a), a->expires, now);
}

/* An answer from the network, for the other hosts: its remaining TTL, a temporary
 * failure no longer than the shared error_ttl. */
static void answer_share(dns_t *d, const char *key, const dns_answer_t *a)
{
    double now = ev_now(d->loop), ttl = a->expires - now;
    dns_answer_t shared;
    unsigned char *packed;
    size_t len;

    if (!d->sharing || a->status == DNS_SHUTDOWN)
        return;
    if ((a->status == DNS_SERVFAIL || a->status == DNS_TIMEOUT) && ttl > d->shared.error_ttl)
        ttl = d->shared.error_ttl;
    if (ttl <= 0)
        return;
    /* The other hosts must not keep it longer than Redis does: a shortened lifetime
     * goes into the value too. */
    shared = *a;
    shared.expires = now + ttl;
    shared.ttl = (uint32_t)ceil(ttl);
    if (!(packed = dns_answer_pack(&shared, &len)))
        return;
    d->stats.shared_puts++;
    d->shared.put(d->shared.ctx, key, packed, len, ttl);
    free(packed);
}

/* ---- queries ---- */

static void ares_timer_update(dns_t *d)
{
    struct timeval tv;

    ev_timer_stop(d->loop, &d->ares_timer);
    if (ares_timeout(d->channel, NULL, &tv)) {
        ev_timer_set(&d->ares_timer, (double)tv.tv_sec + (double)tv.tv_usec / 1e6, 0.);
        ev_timer_start(d->loop, &d->ares_timer);
    }
}

/* A query has its answer (or gave up): cache it and hand it to every waiter. */
static void query_end(query_t *q, const dns_answer_t *a)
{
    dns_t *d = q->d;
    char sample[LOG_SAMPLE_MAX + 4];

    cache_del(d->inflight, q->key);
    if (a->status == DNS_TIMEOUT)
        d->stats.timeouts++;
    else if (a->status == DNS_SERVFAIL)
        d->stats.servfails++;
    log_debug("dns: %s %s: %s, ttl %u", dns_type_name(q->type),
              log_sample(sample, q->name, strlen(q->name)), dns_status_name(a->status),
              a->ttl);
    answer_store(d, q->key, a);
    answer_share(d, q->key, a);
    deliver_later(d, &q->waiters, a);
}

static dns_answer_t *answer_of(dns_t *d, const query_t *q, int status,
                               const unsigned char *abuf, int alen)
{
    switch (status) {
    case ARES_SUCCESS:
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
        return answer_parse(d, q, status, abuf, alen);
    case ARES_ETIMEOUT:
        return answer_status(d, q->name, q->type, DNS_TIMEOUT, d->error_ttl);
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
        return answer_status(d, q->name, q->type, DNS_SHUTDOWN, 0);
    default:
        return answer_status(d, q->name, q->type, DNS_SERVFAIL, d->error_ttl);
    }
}

/* c-ares is done with q: its slot frees, and q with it. */
static void query_answered(query_t *q, int status, const unsigned char *abuf, int alen)
{
    dns_t *d = q->d;
    dns_answer_t *a = answer_of(d, q, status, abuf, alen);

    d->stats.inflight--;
    ev_timer_stop(d->loop, &q->deadline);
    if (q->state != Q_ORPHAN)
        query_end(q, a);
    else if (a->status == DNS_OK || a->status == DNS_NODATA || a->status == DNS_NXDOMAIN) {
        answer_store(d, q->key, a);
        answer_share(d, q->key, a);
    }
    dns_answer_unref(a);
    free(q);
}

static void on_ares_answer(void *arg, int status, int timeouts, unsigned char *abuf,
                           int alen)
{
    query_t *q = arg;

    (void)timeouts;
    /* Only errors come back synchronously; query_send handles them. */
    if (q->sending) {
        q->sync_done = 1;
        q->sync_status = status;
        return;
    }
    query_answered(q, status, abuf, alen);
}

/* Past timeout x tries: the waiters get DNS_TIMEOUT now, c-ares keeps the query. */
static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    query_t *q = w->data;
    dns_answer_t *a = answer_status(q->d, q->name, q->type, DNS_TIMEOUT, q->d->error_ttl);

    (void)loop;
    (void)revents;
    q->state = Q_ORPHAN;
    query_end(q, a);
    dns_answer_unref(a);
}

static void query_send(query_t *q)
{
    dns_t *d = q->d;

    q->state = Q_SENT;
    d->stats.inflight++;
    d->stats.queries_sent++;
    ev_timer_set(&q->deadline, d->attempt_timeout * d->tries, 0.);
    ev_timer_start(d->loop, &q->deadline);
    q->sending = 1;
    ares_query(d->channel, q->name, ns_c_in, q->type, on_ares_answer, q);
    q->sending = 0;
    if (q->sync_done)
        query_answered(q, q->sync_status, NULL, 0);
}

/* Fills free slots from the queue, oldest first; called only from the top of an
 * entry point, never from inside c-ares. */
static void send_queued(dns_t *d)
{
    while (d->qhead && d->stats.inflight < d->max_inflight) {
        query_t *q = d->qhead;
        d->qhead = q->qnext;
        if (!d->qhead)
            d->qtail = &d->qhead;
        d->stats.queued--;
        query_send(q);
    }
    ares_timer_update(d);
}

static void query_enqueue(dns_t *d, query_t *q)
{
    q->state = Q_QUEUED;
    q->qnext = NULL;
    *d->qtail = q;
    d->qtail = &q->qnext;
    d->stats.queued++;
}

static void shared_unlink(dns_t *d, query_t *q)
{
    if (q->sprev)
        q->sprev->snext = q->snext;
    else
        d->shared_head = q->snext;
    if (q->snext)
        q->snext->sprev = q->sprev;
}

/* The shared cache's answer: a hit ends the query, anything else sends it. */
static void shared_cb(void *arg, const void *value, size_t len)
{
    query_t *q = arg;
    dns_t *d = q->d;
    dns_answer_t *a = value ? dns_answer_unpack(value, len, q->name, q->type, ev_now(d->loop))
                            : NULL;
    char sample[LOG_SAMPLE_MAX + 4];

    q->shared_req = NULL;
    shared_unlink(d, q);
    if (!a) {
        d->stats.shared_misses++;
        query_enqueue(d, q);
        send_queued(d);
        return;
    }
    d->stats.shared_hits++;
    log_debug("dns: %s %s: %s, ttl %u, from the shared cache", dns_type_name(q->type),
              log_sample(sample, q->name, strlen(q->name)), dns_status_name(a->status), a->ttl);
    cache_del(d->inflight, q->key);
    answer_store(d, q->key, a);
    deliver_later(d, &q->waiters, a);
    dns_answer_unref(a);
    free(q);
}

static query_t *query_new(dns_t *d, const char *key, int nameoff, int type)
{
    size_t keylen = strlen(key) + 1;
    query_t *q = xmalloc(sizeof *q + keylen);

    memcpy(q->key, key, keylen);
    q->name = q->key + nameoff;
    q->d = d;
    q->type = type;
    q->sending = q->sync_done = q->sync_status = 0;
    q->qnext = q->sprev = q->snext = NULL;
    q->shared_req = NULL;
    waiters_init(&q->waiters);
    ev_init(&q->deadline, deadline_cb);
    q->deadline.data = q;
    if (cache_put(d->inflight, q->key, q, HUGE_VAL, 0) < 0)
        log_fatal("dns: out of memory");
    if (d->sharing) {
        q->state = Q_SHARED;
        q->snext = d->shared_head;
        if (d->shared_head)
            d->shared_head->sprev = q;
        d->shared_head = q;
        q->shared_req = d->shared.get(d->shared.ctx, q->key, shared_cb, q);
        if (q->shared_req)
            return q;
        shared_unlink(d, q);
        q->snext = NULL;
    }
    query_enqueue(d, q);
    return q;
}

/* ---- sockets and timers ---- */

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    sock_t *s = w->data;
    dns_t *d = s->d;
    ares_socket_t fd = w->fd;

    (void)loop;
    /* c-ares may close the socket and so free s: neither is touched after this. */
    ares_process_fd(d->channel, revents & EV_READ ? fd : ARES_SOCKET_BAD,
                    revents & EV_WRITE ? fd : ARES_SOCKET_BAD);
    send_queued(d);
}

static void ares_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    dns_t *d = w->data;

    (void)loop;
    (void)revents;
    ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    send_queued(d);
}

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    dns_t *d = data;
    sock_t **pp = &d->socks, *s;

    while (*pp && (*pp)->io.fd != fd)
        pp = &(*pp)->next;
    s = *pp;
    if (!readable && !writable) {
        if (s) {
            ev_io_stop(d->loop, &s->io);
            *pp = s->next;
            free(s);
        }
        return;
    }
    if (s) {
        ev_io_stop(d->loop, &s->io);
    } else {
        s = xmalloc(sizeof *s);
        s->d = d;
        s->next = d->socks;
        d->socks = s;
        ev_init(&s->io, io_cb);
        s->io.data = s;
    }
    ev_io_set(&s->io, fd, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
    ev_io_start(d->loop, &s->io);
}

/* ---- public ---- */

dns_t *dns_new(struct ev_loop *loop, const dns_options_t *opt, char err[DNS_ERR_LEN])
{
    struct ares_options ao;
    dns_t *d;
    int rc;

    if (!(opt->timeout >= 0.001 && opt->timeout <= INT_MAX / 1000)) {
        snprintf(err, DNS_ERR_LEN, "dns: timeout must be between 0.001 and %d seconds",
                 INT_MAX / 1000);
        return NULL;
    }
    if (opt->tries < 1 || opt->tries > INT_MAX || opt->max_inflight < 1 ||
        opt->cache_size < 1) {
        snprintf(err, DNS_ERR_LEN, "dns: tries, max_inflight and cache_size must be at least 1");
        return NULL;
    }
    rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        snprintf(err, DNS_ERR_LEN, "dns: c-ares: %s", ares_strerror(rc));
        return NULL;
    }
    d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, DNS_ERR_LEN, "dns: out of memory");
        ares_library_cleanup();
        return NULL;
    }
    memset(&ao, 0, sizeof ao);
    ao.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    ao.timeout = (int)ceil(opt->timeout * 1000);
    ao.tries = (int)opt->tries;
    ao.sock_state_cb = sock_state_cb;
    ao.sock_state_cb_data = d;
    rc = ares_init_options(&d->channel, &ao, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS |
                                                 ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB);
    if (rc != ARES_SUCCESS) {
        snprintf(err, DNS_ERR_LEN, "dns: c-ares: %s", ares_strerror(rc));
        free(d);
        ares_library_cleanup();
        return NULL;
    }
    if (opt->servers && *opt->servers &&
        (rc = ares_set_servers_ports_csv(d->channel, opt->servers)) != ARES_SUCCESS) {
        char sample[LOG_SAMPLE_MAX + 4];
        snprintf(err, DNS_ERR_LEN, "dns: servers '%s': %s",
                 log_sample(sample, opt->servers, strlen(opt->servers)), ares_strerror(rc));
        ares_destroy(d->channel);
        free(d);
        ares_library_cleanup();
        return NULL;
    }
    d->cache = cache_new(opt->cache_size, answer_cache_free);
    d->inflight = cache_new(DNS_INFLIGHT_UNBOUNDED, NULL);
    if (!d->cache || !d->inflight) {
        snprintf(err, DNS_ERR_LEN, "dns: out of memory");
        cache_free(d->cache);
        cache_free(d->inflight);
        ares_destroy(d->channel);
        free(d);
        ares_library_cleanup();
        return NULL;
    }
    d->loop = loop;
    d->attempt_timeout = opt->timeout;
    d->tries = opt->tries;
    d->max_inflight = opt->max_inflight;
    d->max_ttl = opt->max_ttl;
    d->negative_ttl = opt->negative_ttl;
    d->error_ttl = opt->error_ttl;
    d->qtail = &d->qhead;
    waiters_init(&d->ready);
    ev_init(&d->ares_timer, ares_timer_cb);
    d->ares_timer.data = d;
    ev_init(&d->ready_timer, ready_cb);
    d->ready_timer.data = d;
    return d;
}

void dns_free(dns_t *d)
{
    dns_lookup_t *l, *next;

    if (!d)
        return;
    d->closing = 1;
    ev_timer_stop(d->loop, &d->ares_timer);
    ev_timer_stop(d->loop, &d->ready_timer);
    /* c-ares calls back every query it holds with ARES_EDESTRUCTION, whose waiters
     * join the ready list, and reports each socket closed. */
    ares_destroy(d->channel);
    while (d->shared_head) {
        query_t *q = d->shared_head;
        dns_answer_t *a = answer_status(d, q->name, q->type, DNS_SHUTDOWN, 0);
        shared_unlink(d, q);
        d->shared.cancel(q->shared_req);
        query_end(q, a);
        dns_answer_unref(a);
        free(q);
    }
    while (d->qhead) {
        query_t *q = d->qhead;
        dns_answer_t *a = answer_status(d, q->name, q->type, DNS_SHUTDOWN, 0);
        d->qhead = q->qnext;
        d->stats.queued--;
        query_end(q, a);
        dns_answer_unref(a);
        free(q);
    }
    l = d->ready.head;
    waiters_init(&d->ready);
    for (; l; l = next) {
        next = l->next;
        if (l->cb) {
            if (l->ans->status != DNS_SHUTDOWN) {
                const dns_answer_t *a = l->ans;
                l->ans = answer_status(d, a->name, a->type, DNS_SHUTDOWN, 0);
                dns_answer_unref(a);
            }
            l->cb(l->ctx, l->ans);
        }
        dns_answer_unref(l->ans);
        free(l);
    }
    cache_free(d->inflight);
    cache_free(d->cache);
    free(d);
    ares_library_cleanup();
}

dns_lookup_t *dns_lookup(dns_t *d, const char *name, int type, dns_cb *cb, void *ctx)
{
    char key[DNS_KEY_LEN];
    const dns_answer_t *a;
    dns_lookup_t *l;
    query_t *q;
    int nameoff;

    if (d->closing || !type_known(type) || (nameoff = key_make(key, type, name)) < 0)
        return NULL;
    l = xmalloc(sizeof *l);
    l->cb = cb;
    l->ctx = ctx;
    l->ans = NULL;
    d->stats.lookups++;
    a = cache_get(d->cache, key, ev_now(d->loop), NULL);
    if (a) {
        d->stats.cache_hits++;
        l->ans = dns_answer_ref(a);
        waiters_push(&d->ready, l);
        ready_start(d);
        return l;
    }
    q = cache_get(d->inflight, key, 0, NULL);
    if (q) {
        d->stats.coalesced++;
        waiters_push(&q->waiters, l);
        return l;
    }
    q = query_new(d, key, nameoff, type);
    waiters_push(&q->waiters, l);
    send_queued(d);
    return l;
}

void dns_cancel(dns_lookup_t *l)
{
    /* Its node stays where it is, in a query's or the ready list, and is freed when
     * that list is delivered: no list walk, and safe while a delivery is running. */
    if (l)
        l->cb = NULL;
}

const dns_answer_t *dns_peek(dns_t *d, const char *name, int type)
{
    char key[DNS_KEY_LEN];

    if (d->closing || !type_known(type) || key_make(key, type, name) < 0)
        return NULL;
    return cache_get(d->cache, key, ev_now(d->loop), NULL);
}

void dns_get_stats(const dns_t *d, dns_stats_t *out)
{
    *out = d->stats;
}

void dns_set_shared(dns_t *d, const dns_shared_t *sh)
{
    d->sharing = sh != NULL;
    if (sh)
        d->shared = *sh;
}

/* ---- the packed form ---- */

static void pack16(unsigned char **p, size_t v)
{
    (*p)[0] = (unsigned char)(v >> 8);
    (*p)[1] = (unsigned char)v;
    *p += 2;
}

static void pack_name(unsigned char **p, const char *name)
{
    size_t n = strlen(name);

    **p = (unsigned char)n;
    memcpy(*p + 1, name, n);
    *p += 1 + n;
}

unsigned char *dns_answer_pack(const dns_answer_t *a, size_t *len)
{
    size_t total = DNS_PACK_FIXED_LEN + strlen(a->name);
    uint64_t ms = a->expires > 0 ? (uint64_t)llround(a->expires * DNS_MS) : 0;
    unsigned char *buf, *p;

    if (a->status == DNS_SHUTDOWN || strlen(a->name) > DNS_NAME_MAX)
        return NULL;
    for (size_t i = 0; i < a->count; i++) {
        switch (a->type) {
        case DNS_T_A: total += 4; break;
        case DNS_T_AAAA: total += 16; break;
        case DNS_T_MX: total += 3 + strlen(a->rr[i].u.mx.name); break;
        case DNS_T_PTR: total += 1 + strlen(a->rr[i].u.ptr); break;
        default:
            if (a->rr[i].u.txt.len > UINT16_MAX)
                return NULL;
            total += 2 + a->rr[i].u.txt.len;
            break;
        }
    }
    p = buf = malloc(total);
    if (!buf)
        return NULL;
    memcpy(p, DNS_PACK_MAGIC, 2);
    p += 2;
    *p++ = (unsigned char)a->status;
    pack16(&p, (size_t)a->type);
    for (int i = 0; i < 4; i++)
        *p++ = (unsigned char)(a->ttl >> (24 - 8 * i));
    for (int i = 0; i < 8; i++)
        *p++ = (unsigned char)(ms >> (56 - 8 * i));
    pack16(&p, a->count);
    pack_name(&p, a->name);
    for (size_t i = 0; i < a->count; i++) {
        const dns_rr_t *rr = &a->rr[i];
        switch (a->type) {
        case DNS_T_A: memcpy(p, &rr->u.a, 4); p += 4; break;
        case DNS_T_AAAA: memcpy(p, &rr->u.aaaa, 16); p += 16; break;
        case DNS_T_MX: pack16(&p, rr->u.mx.pref); pack_name(&p, rr->u.mx.name); break;
        case DNS_T_PTR: pack_name(&p, rr->u.ptr); break;
        default:
            pack16(&p, rr->u.txt.len);
            memcpy(p, rr->u.txt.data, rr->u.txt.len);
            p += rr->u.txt.len;
            break;
        }
    }
    *len = total;
    return buf;
}

/* A packed name at *p (before end): its length, or -1 when it overruns or is not one
 * name (empty, too long, a NUL inside). */
static long unpack_name(const unsigned char *p, const unsigned char *end)
{
    size_t n;

    if (p >= end)
        return -1;
    n = *p;
    if (n == 0 || n > DNS_NAME_MAX || (size_t)(end - p - 1) < n || memchr(p + 1, '\0', n))
        return -1;
    return (long)n;
}

/* Checks one packed record at *p, moves *p past it and adds the string bytes it
 * needs to *strings; -1 when malformed. */
static int unpack_check_rr(int type, const unsigned char **p, const unsigned char *end,
                           size_t *strings)
{
    long n;
    size_t need;

    switch (type) {
    case DNS_T_A:
    case DNS_T_AAAA:
        need = type == DNS_T_A ? 4 : 16;
        if ((size_t)(end - *p) < need)
            return -1;
        *p += need;
        return 0;
    case DNS_T_MX:
        if (end - *p < 2 || (n = unpack_name(*p + 2, end)) < 0)
            return -1;
        *p += 3 + n;
        *strings += (size_t)n + 1;
        return 0;
    case DNS_T_PTR:
        if ((n = unpack_name(*p, end)) < 0)
            return -1;
        *p += 1 + n;
        *strings += (size_t)n + 1;
        return 0;
    default:
        if (end - *p < 2)
            return -1;
        need = (size_t)(*p)[0] << 8 | (*p)[1];
        if ((size_t)(end - *p - 2) < need)
            return -1;
        *p += 2 + need;
        *strings += need + 1;
        return 0;
    }
}

dns_answer_t *dns_answer_unpack(const void *data, size_t len, const char *name, int type,
                                double now)
{
    const unsigned char *p = data, *end = p + len, *rrs;
    size_t count, strings = 0, namelen;
    unsigned status;
    uint32_t ttl = 0;
    uint64_t ms = 0;
    double expires;
    dns_answer_t *a;
    char *sp;

    if (len < DNS_PACK_FIXED_LEN || memcmp(p, DNS_PACK_MAGIC, 2) != 0)
        return NULL;
    status = p[2];
    if (!(status == DNS_OK || status == DNS_NODATA || status == DNS_NXDOMAIN ||
          status == DNS_SERVFAIL || status == DNS_TIMEOUT) ||
        (int)((unsigned)p[3] << 8 | p[4]) != type || !type_known(type))
        return NULL;
    for (int i = 0; i < 4; i++)
        ttl = ttl << 8 | p[5 + i];
    for (int i = 0; i < 8; i++)
        ms = ms << 8 | p[9 + i];
    count = (size_t)p[17] << 8 | p[18];
    namelen = strlen(name);
    if ((status == DNS_OK) != (count > 0) || p[19] != namelen ||
        (size_t)(end - p - DNS_PACK_FIXED_LEN) < namelen ||
        memcmp(p + DNS_PACK_FIXED_LEN, name, namelen) != 0)
        return NULL;
    rrs = p + DNS_PACK_FIXED_LEN + namelen;
    /* The count comes from the data: bound it by what the data could hold. */
    if (count > (size_t)(end - rrs) / DNS_PACK_RR_MIN)
        return NULL;
    p = rrs;
    for (size_t i = 0; i < count; i++)
        if (unpack_check_rr(type, &p, end, &strings) < 0)
            return NULL;
    expires = (double)ms / DNS_MS;
    if (p != end || ttl > DNS_TTL_MAX_VALID || expires <= now)
        return NULL;
    /* Another host's clock may run ahead: never past what the TTL allows from now. */
    if (expires > now + ttl)
        expires = now + ttl;
    a = answer_alloc(name, type, (enum dns_status)status, count, strings, &sp);
    a->expires = expires;
    a->ttl = (uint32_t)ceil(expires - now);
    for (size_t i = 0; i < count; i++) {
        dns_rr_t *rr = &a->rr[i];
        size_t n;
        switch (type) {
        case DNS_T_A: memcpy(&rr->u.a, rrs, 4); rrs += 4; break;
        case DNS_T_AAAA: memcpy(&rr->u.aaaa, rrs, 16); rrs += 16; break;
        case DNS_T_MX:
            rr->u.mx.pref = (uint16_t)(rrs[0] << 8 | rrs[1]);
            n = rrs[2];
            memcpy(sp, rrs + 3, n);
            sp[n] = '\0';
            rr->u.mx.name = sp;
            sp += n + 1;
            rrs += 3 + n;
            break;
        case DNS_T_PTR:
            n = rrs[0];
            memcpy(sp, rrs + 1, n);
            sp[n] = '\0';
            rr->u.ptr = sp;
            sp += n + 1;
            rrs += 1 + n;
            break;
        default:
            n = (size_t)rrs[0] << 8 | rrs[1];
            memcpy(sp, rrs + 2, n);
            sp[n] = '\0';
            rr->u.txt.data = sp;
            rr->u.txt.len = n;
            sp += n + 1;
            rrs += 2 + n;
            break;
        }
    }
    return a;
}

const char *dns_status_name(enum dns_status s)
{
    switch (s) {
    case DNS_OK: return "ok";
    case DNS_NODATA: return "nodata";
    case DNS_NXDOMAIN: return "nxdomain";
    case DNS_SERVFAIL: return "servfail";
    case DNS_TIMEOUT: return "timeout";
    case DNS_SHUTDOWN: return "shutdown";
    }
    return "unknown";
}

const char *dns_type_name(int type)
{
    switch (type) {
    case DNS_T_A: return "A";
    case DNS_T_PTR: return "PTR";
    case DNS_T_MX: return "MX";
    case DNS_T_TXT: return "TXT";
    case DNS_T_AAAA: return "AAAA";
    case DNS_T_SPF: return "SPF";
    }
    return "unknown";
}
