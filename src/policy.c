/* policy.c - one policy request in, one action out.
 *
 * Order of a decision (DESIGN.md): the per-message memo, skip rules, whitelists, then
 * the HELO identity (first; alone for the null sender), then MAIL FROM. Verdicts come
 * from the verdict cache or an SPF check; the reply is built from the config's
 * result -> action mapping.
 *
 * With a store (policy_share), after the skip rules and the whitelists that need no
 * DNS, one MGET fetches at once whatever memory lacks: the verdict keys of both
 * identities (the short key and its three longer variants, so a marker never costs a
 * second round trip) and the three reputations of the message. Then the reputation of
 * the client network may refuse the request before any DNS work. Verdicts of checks
 * run here are written to Redis with their remaining lifetime (a temperror for the
 * shared error_ttl at most); each decided message adds its result to the reputation. Every path that accepts the message prepends exactly one
 * Received-SPF header (unless the header style says none), so the first such header a
 * filter sees is always ours. */
#include "policy.h"

#include <stddef.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cache.h"
#include "dns.h"
#include "header.h"
#include "log.h"
#include "netaddr.h"
#include "reply.h"
#include "reputation.h"
#include "spf.h"
#include "store.h"

#define POLICY_KEY_MAX 700
#define POLICY_INSTANCE_MAX 64
/* PTR names a whitelist check follows (RFC 7208 5.5 uses the same bound). */
#define POLICY_PTR_NAMES_MAX 10
/* A verdict is never kept longer than a day, whatever its TTLs say. */
#define POLICY_VERDICT_TTL_MAX 86400.0
/* Verdict keys per identity in the shared MGET: the short key and the variants with
 * the local part, the HELO name, and both (indexed by the SPF_USES_* bits). */
#define POLICY_SHARED_VARIANTS 4

typedef struct cached_verdict {
    enum spf_result result;
    unsigned uses;
    char *explanation;
    char *comment;
    char text[];                 /* explanation, NUL, comment, NUL */
} cached_verdict_t;

/* What one message (instance) got on one connection: later requests of the same
 * message repeat a rejection, or get the second header, or DUNNO. */
typedef struct memo {
    char instance[POLICY_INSTANCE_MAX];
    int final;                   /* reply repeats: reject / defer */
    size_t cap;                  /* bytes in text[] */
    char *second_header;         /* Authentication-Results still to send, in text[] */
    /* The reply, NUL, the second header, NUL: sized to what this message needs, as a
     * memo lives as long as its connection and idle connections are many. */
    char text[];
} memo_t;

typedef struct verdict_copy {
    int done;
    enum spf_result result;
    unsigned uses;
    char explanation[SPF_EXPLANATION_MAX + 1];
    char comment[SPF_COMMENT_MAX];
} verdict_copy_t;

enum job_stage {
    STAGE_START, STAGE_SHARED, STAGE_REPUTATION, STAGE_WL_HELO, STAGE_WL_PTR, STAGE_HELO,
    STAGE_HELO_DONE, STAGE_MAILFROM, STAGE_DONE
};

/* Small state first, buffers last: a job is allocated per request and only the part
 * before `ip` is cleared; policy_check empties the strings after it and the verdict
 * copies' done flags, and everything else there is written before it is read. */
struct policy_job {
    policy_t *p;
    policy_reply_cb *cb;
    void *ctx;
    unsigned long long conn_id;
    const policy_request_t *req;
    ev_timer kick;
    double started;
    enum job_stage stage;
    int null_sender;
    spf_check_t *check;
    enum spf_identity checking;
    size_t nlookups;
    struct wl_lookup {
        policy_job_t *job;
        dns_lookup_t *lookup;        /* NULL when the slot is free */
    } wl[POLICY_PTR_NAMES_MAX + 1];
    int confirmed;
    store_req_t *shared;                 /* the MGET in flight */
    int shared_at[2];                    /* per identity: first of its keys, or -1 */
    int rep_at[REPUTATION_KINDS];        /* per reputation kind: its key, or -1 */
    int rep_named;                       /* rep_names filled */
    int rep_known[REPUTATION_KINDS];     /* rep_counts[k] is what memory knew */
    policy_job_t *prev, *next;
    netaddr_t ip;
    char ipstr[NETADDR_STRLEN];
    char helo[DNS_NAME_MAX + 1];         /* valid, lower-case HELO domain or "" */
    char from_local[256];
    char from_domain[DNS_NAME_MAX + 1];  /* valid sender domain or "" */
    verdict_copy_t helo_v, from_v;
    reputation_names_t rep_names;
    reputation_counts_t rep_counts[REPUTATION_KINDS];
};

struct policy {
    struct ev_loop *loop;
    struct config cfg;
    char hostname[DNS_NAME_MAX + 1];
    dns_t *dns;
    spf_t *spf;
    store_t *store;
    reputation_t *rep;
    cache_t *verdicts;
    cache_t *memos;
    policy_job_t *jobs;
    policy_stats_t stats;
};

/* snprintf(dst, len, "%s", src) for the per-request path, where printf shows. */
static void copy_str(char *dst, size_t len, const char *src)
{
    size_t n = strnlen(src, len - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

static const char *receiver_of(const policy_t *p)
{
    return *p->cfg.receiver ? p->cfg.receiver : p->hostname;
}

static const char *authserv_of(const policy_t *p)
{
    return *p->cfg.authserv_id ? p->cfg.authserv_id : p->hostname;
}

/* RFC 7208 4.3: a domain that is malformed or has a single label gives "none". Names
 * from the client are held to more than DNS allows: no spaces, nothing beyond ASCII. */
static int domain_normalize(char out[DNS_NAME_MAX + 1], const char *in)
{
    size_t len = strlen(in);

    for (size_t i = 0; i < len; i++)
        if ((unsigned char)in[i] <= 0x20 || (unsigned char)in[i] >= 0x7f)
            return -1;
    if (dns_name_normalize(out, in, len) < 0)
        return -1;
    return strchr(out, '.') ? 0 : -1;
}

/* name is entry, or below it at a dot boundary ("mail.example.com" is below
 * "example.com"; "badexample.com" is not). */
static int name_list_match(const name_list_t *list, const char *name)
{
    size_t nlen = strlen(name);

    for (size_t i = 0; i < list->n; i++) {
        const char *e = list->name[i];
        size_t elen = strlen(e);
        if (nlen == elen && strcmp(name, e) == 0)
            return 1;
        if (nlen > elen && name[nlen - elen - 1] == '.' && strcmp(name + nlen - elen, e) == 0)
            return 1;
    }
    return 0;
}

static int cidr_list_match(const cidr_list_t *list, const netaddr_t *a)
{
    for (size_t i = 0; i < list->n; i++)
        if (netcidr_match(&list->cidr[i], a))
            return 1;
    return 0;
}

static void memo_free(void *v)
{
    free(v);
}

static void verdict_free(void *v)
{
    free(v);
}

static int policy_caches(policy_t *p, char err[POLICY_NEW_ERR_LEN])
{
    p->verdicts = cache_new(p->cfg.verdict_cache_size, verdict_free);
    p->memos = cache_new(p->cfg.max_connections, memo_free);
    if (!p->verdicts || !p->memos) {
        snprintf(err, POLICY_NEW_ERR_LEN, "out of memory");
        return -1;
    }
    return 0;
}

policy_t *policy_new(struct ev_loop *loop, const struct config *cfg, struct dns *dns,
                     struct spf *spf, char err[POLICY_NEW_ERR_LEN])
{
    policy_t *p = calloc(1, sizeof(*p));

    if (!p) {
        snprintf(err, POLICY_NEW_ERR_LEN, "out of memory");
        return NULL;
    }
    p->loop = loop;
    p->cfg = *cfg;
    p->dns = dns;
    p->spf = spf;
    if (gethostname(p->hostname, sizeof(p->hostname) - 1) < 0 || !*p->hostname)
        snprintf(p->hostname, sizeof(p->hostname), "localhost");
    if (policy_caches(p, err) < 0) {
        policy_free(p);
        return NULL;
    }
    return p;
}

void policy_share(policy_t *p, struct store *store, struct reputation *rep)
{
    p->store = store;
    p->rep = rep;
}

void policy_reconfigure(policy_t *p, const struct config *cfg)
{
    p->cfg = *cfg;
    cache_resize(p->verdicts, cfg->verdict_cache_size);
    cache_resize(p->memos, cfg->max_connections);
}

void policy_get_stats(const policy_t *p, policy_stats_t *out)
{
    *out = p->stats;
}

static void job_unlink(policy_job_t *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        j->p->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
}

static void job_stop_io(policy_job_t *j)
{
    ev_timer_stop(j->p->loop, &j->kick);
    if (j->shared) {
        store_cancel(j->shared);
        j->shared = NULL;
    }
    if (j->check) {
        spf_cancel(j->check);
        j->check = NULL;
    }
    for (size_t i = 0; i < sizeof(j->wl) / sizeof(j->wl[0]); i++) {
        if (j->wl[i].lookup)
            dns_cancel(j->wl[i].lookup);
        j->wl[i].lookup = NULL;
    }
    j->nlookups = 0;
}

void policy_cancel(policy_job_t *j)
{
    job_stop_io(j);
    job_unlink(j);
    free(j);
}

void policy_free(policy_t *p)
{
    if (!p)
        return;
    while (p->jobs)
        policy_cancel(p->jobs);
    if (p->verdicts)
        cache_free(p->verdicts);
    if (p->memos)
        cache_free(p->memos);
    free(p);
}

static void memo_key(char key[32], unsigned long long conn_id)
{
    char digits[24];
    size_t n = 0;

    do {
        digits[n++] = (char)('0' + conn_id % 10);
        conn_id /= 10;
    } while (conn_id);
    for (size_t i = 0; i < n; i++)
        key[i] = digits[n - 1 - i];
    key[n] = '\0';
}

void policy_conn_closed(policy_t *p, unsigned long long conn_id)
{
    char key[32];

    memo_key(key, conn_id);
    cache_del(p->memos, key);
}

static void job_reply(policy_job_t *j, const char *reply, enum action a)
{
    const policy_request_t *r = j->req;
    char id[LOG_SAMPLE_MAX + 4], name[LOG_SAMPLE_MAX + 4], addr[LOG_SAMPLE_MAX + 4],
        helo[LOG_SAMPLE_MAX + 4], from[LOG_SAMPLE_MAX + 4];
    const char *idsrc = *r->queue_id ? r->queue_id : (*r->instance ? r->instance : "NOQUEUE");

    if ((unsigned)a < ACTION_COUNT)
        j->p->stats.actions[a]++;
    /* The samples cost more than the rest of a cached decision: only when logged. */
    if (log_get_level() <= LOG_LEVEL_INFO) {
        double ms = (ev_time() - j->started) * 1000.0;
        log_info("%s: client=%s[%s], helo=<%s>, from=<%s>, helo_result=%s, "
                 "mailfrom_result=%s, action=%s, %.1f ms",
                 log_sample(id, idsrc, strlen(idsrc)),
                 log_sample(name, r->client_name, strlen(r->client_name)),
                 log_sample(addr, r->client_address, strlen(r->client_address)),
                 log_sample(helo, r->helo_name, strlen(r->helo_name)),
                 log_sample(from, r->sender, strlen(r->sender)),
                 j->helo_v.done ? spf_result_name(j->helo_v.result) : "-",
                 j->from_v.done ? spf_result_name(j->from_v.result) : "-", action_name(a), ms);
    }
    j->stage = STAGE_DONE;
    job_stop_io(j);
    job_unlink(j);
    j->cb(j->ctx, reply);
    free(j);
}

static void memo_store(policy_job_t *j, int final, const char *reply, const char *second)
{
    char key[32];
    double now = ev_now(j->p->loop);
    memo_t *m;

    if (!*j->req->instance)
        return;
    memo_key(key, j->conn_id);
    /* One memo per connection (one SMTP session at a time), reused message after
     * message. */
    size_t rlen = strnlen(reply, REPLY_MAX), slen = second ? strnlen(second, HEADER_MAX - 1) : 0;

    if (!*j->req->instance)
        return;
    memo_key(key, j->conn_id);
    /* One memo per connection (one SMTP session at a time), reused message after
     * message while the texts fit. */
    m = cache_get(j->p->memos, key, now, NULL);
    if (!m || m->cap < rlen + slen + 2) {
        m = malloc(sizeof(*m) + rlen + slen + 2);
        if (!m)
            return;
        m->cap = rlen + slen + 2;
        if (cache_put(j->p->memos, key, m, now + j->p->cfg.idle_timeout + 3600, now) < 0)
            return;
    }
    copy_str(m->instance, sizeof(m->instance), j->req->instance);
    m->final = final;
    memcpy(m->text, reply, rlen);
    m->text[rlen] = '\0';
    m->second_header = m->text + rlen + 1;
    memcpy(m->second_header, second ? second : "", slen);
    m->second_header[slen] = '\0';
}

static void header_info_fill(policy_job_t *j, header_info_t *h, const verdict_copy_t *v,
                             enum spf_identity id, const char *comment, char *from, size_t fromlen)
{
    memset(h, 0, sizeof(*h));
    h->result = v->result;
    h->identity = id;
    h->client_ip = j->ipstr;
    h->helo = j->req->helo_name;
    if (j->null_sender || id == SPF_ID_HELO) {
        memcpy(from, "postmaster@", 11);
        copy_str(from + 11, fromlen - 11, j->req->helo_name);
    } else {
        copy_str(from, fromlen, j->req->sender);
    }
    h->envelope_from = from;
    h->domain = id == SPF_ID_HELO || j->null_sender ? (*j->helo ? j->helo : j->req->helo_name)
                                                    : (*j->from_domain ? j->from_domain : "");
    h->receiver = receiver_of(j->p);
    h->comment = comment;
    h->mechanism = "";
    h->problem = (v->result == SPF_RES_PERMERROR || v->result == SPF_RES_TEMPERROR) ? v->comment : "";
}

/* "net F/N ip F/N domain F/N" for our Received-SPF, when the reputation is wanted
 * there and known; else NULL. */
static const char *reputation_text(policy_job_t *j, char *buf, size_t len)
{
    const reputation_counts_t *c[REPUTATION_KINDS];
    policy_t *p = j->p;

    if (!p->rep || !p->cfg.reputation_header || !j->rep_named)
        return NULL;
    for (int k = 0; k < REPUTATION_KINDS; k++)
        c[k] = j->rep_known[k] ? &j->rep_counts[k] : NULL;
    return reputation_header(buf, len, c, p->cfg.reputation_count_softfail) ? buf : NULL;
}

/* PREPEND with the configured header, remembering the second one for later. */
static void reply_accept(policy_job_t *j, const verdict_copy_t *v, const char *comment,
                         enum action a)
{
    static const char prepend[] = "PREPEND ";
    char reply[sizeof(prepend) - 1 + HEADER_MAX], ar[HEADER_MAX], from[600];
    char reptext[REPUTATION_HEADER_MAX];
    header_info_t h;
    enum header_style style = j->p->cfg.header_style;
    int n = 0;

    if (a == ACTION_DUNNO || style == HEADER_NONE) {
        memo_store(j, 0, "DUNNO", NULL);
        job_reply(j, "DUNNO", a == ACTION_DUNNO ? ACTION_DUNNO : ACTION_PREPEND);
        return;
    }
    header_info_fill(j, &h, v, SPF_ID_MAILFROM, comment, from, sizeof(from));
    h.reputation = reputation_text(j, reptext, sizeof(reptext));
    memcpy(reply, prepend, sizeof(prepend));
    if (style == HEADER_AUTH_RESULTS)
        n = header_auth_results(reply + sizeof(prepend) - 1, HEADER_MAX, authserv_of(j->p), &h);
    else
        n = header_received_spf(reply + sizeof(prepend) - 1, HEADER_MAX, &h);
    if (n >= 0 && style == HEADER_BOTH)
        n = header_auth_results(ar, sizeof(ar), authserv_of(j->p), &h);
    if (n < 0) {
        log_error("%s: header does not fit in %d bytes", j->ipstr, HEADER_MAX);
        job_reply(j, NULL, ACTION_DUNNO);
        return;
    }
    memo_store(j, 0, "DUNNO", style == HEADER_BOTH ? ar : NULL);
    job_reply(j, reply, ACTION_PREPEND);
}

static const char *identity_domain(const policy_job_t *j, enum spf_identity id)
{
    return id == SPF_ID_HELO || j->null_sender ? j->req->helo_name : j->from_domain;
}

static void reply_refuse(policy_job_t *j, const verdict_copy_t *v, enum spf_identity id,
                         enum action a)
{
    char reply[REPLY_MAX + 1];
    reply_verdict_t rv = {
        .result = v->result,
        .domain = identity_domain(j, id),
        .client_ip = j->ipstr,
        .explanation = v->explanation,
        .comment = v->comment,
    };

    if (reply_refusal(reply, sizeof(reply), a, &rv) < 0) {
        log_error("%s: no refusal text for action %s", j->ipstr, action_name(a));
        job_reply(j, NULL, a);
        return;
    }
    memo_store(j, a != ACTION_HOLD, a == ACTION_HOLD ? "DUNNO" : reply, NULL);
    job_reply(j, reply, a);
}

static void job_step(policy_job_t *j);


static void verdict_copy_from(verdict_copy_t *dst, enum spf_result r, unsigned uses,
                              const char *explanation, const char *comment)
{
    dst->done = 1;
    dst->result = r;
    dst->uses = uses;
    copy_str(dst->explanation, sizeof(dst->explanation), explanation);
    copy_str(dst->comment, sizeof(dst->comment), comment);
}

/* Cache keys: the IP and domain always; the local part and HELO only when the records
 * behind the verdict used them (%{l} %{s} %{h}); a marker under the short key says so. */
static void verdict_key(char key[POLICY_KEY_MAX], const policy_job_t *j, const char *local,
                        const char *domain, unsigned uses)
{
    const char *parts[] = {
        j->ipstr, "|", domain,
        uses & SPF_USES_LOCALPART ? "|l=" : "", uses & SPF_USES_LOCALPART ? local : "",
        uses & SPF_USES_HELO ? "|h=" : "", uses & SPF_USES_HELO ? j->req->helo_name : "",
    };
    size_t o = 0;

    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        size_t n = strnlen(parts[i], POLICY_KEY_MAX - 1 - o);
        memcpy(key + o, parts[i], n);
        o += n;
    }
    key[o] = '\0';
}

static const cached_verdict_t *verdict_lookup(policy_job_t *j, const char *local, const char *domain)
{
    char key[POLICY_KEY_MAX];
    double now = ev_now(j->p->loop);
    const cached_verdict_t *v;

    verdict_key(key, j, local, domain, 0);
    v = cache_get(j->p->verdicts, key, now, NULL);
    if (v && v->uses) {
        verdict_key(key, j, local, domain, v->uses);
        v = cache_get(j->p->verdicts, key, now, NULL);
    }
    return v;
}

/* Into the memory cache: the verdict (texts of elen and clen bytes) and, when it
 * depends on more than IP and domain, the marker under the short key. */
static void verdict_put(policy_job_t *j, const char *local, const char *domain,
                        enum spf_result result, unsigned uses, const char *explanation,
                        size_t elen, const char *comment, size_t clen, double expires)
{
    char key[POLICY_KEY_MAX];
    double now = ev_now(j->p->loop);
    cached_verdict_t *c;

    if (uses) {
        cached_verdict_t *marker = calloc(1, sizeof(*marker) + 2);
        if (!marker)
            return;
        marker->uses = uses;
        marker->explanation = marker->comment = marker->text;
        verdict_key(key, j, local, domain, 0);
        cache_put(j->p->verdicts, key, marker, expires, now);
    }
    c = malloc(sizeof(*c) + elen + clen + 2);
    if (!c)
        return;
    c->result = result;
    c->uses = 0;
    c->explanation = c->text;
    memcpy(c->explanation, explanation, elen);
    c->explanation[elen] = '\0';
    c->comment = c->text + elen + 1;
    memcpy(c->comment, comment, clen);
    c->comment[clen] = '\0';
    verdict_key(key, j, local, domain, uses);
    cache_put(j->p->verdicts, key, c, expires, now);
}

/* Writes one shared verdict (fire-and-forget). */
static void shared_set(policy_job_t *j, const char *local, const char *domain, unsigned keyuses,
                       const store_verdict_t *sv, double ttl)
{
    char key[POLICY_KEY_MAX], full[STORE_KEY_MAX], packed[STORE_VERDICT_MAX];
    size_t klen, plen;

    verdict_key(key, j, local, domain, keyuses);
    klen = store_key(j->p->store, full, sizeof(full), STORE_KIND_VERDICT, key, strlen(key));
    plen = store_verdict_pack(packed, sizeof(packed), sv);
    if (klen && plen && store_set(j->p->store, full, klen, packed, plen, ttl) == 0)
        j->p->stats.shared_puts++;
}

/* A verdict of a check run here, for the other hosts: its remaining lifetime, a
 * temperror no longer than [redis] error_ttl. */
static void verdict_share(policy_job_t *j, const char *local, const char *domain,
                          const spf_verdict_t *v, double expires)
{
    double ttl = expires - ev_now(j->p->loop);
    store_verdict_t sv;

    if (!j->p->store)
        return;
    if (v->result == SPF_RES_TEMPERROR && ttl > j->p->cfg.redis_error_ttl)
        ttl = j->p->cfg.redis_error_ttl;
    if (ttl <= 0)
        return;
    memset(&sv, 0, sizeof(sv));
    sv.expires = ev_now(j->p->loop) + ttl;
    sv.explanation = sv.comment = "";
    if (v->uses) {
        sv.uses = v->uses;
        shared_set(j, local, domain, 0, &sv, ttl);
    }
    sv.result = (int)v->result;
    sv.uses = 0;
    sv.explanation = v->explanation;
    sv.explanation_len = strlen(v->explanation);
    sv.comment = v->comment;
    sv.comment_len = strlen(v->comment);
    shared_set(j, local, domain, v->uses, &sv, ttl);
}

static void verdict_store(policy_job_t *j, const char *local, const char *domain,
                          const spf_verdict_t *v)
{
    double now = ev_now(j->p->loop), expires = v->expires;

    if (expires > now + POLICY_VERDICT_TTL_MAX)
        expires = now + POLICY_VERDICT_TTL_MAX;
    if (expires <= now)
        return;
    verdict_put(j, local, domain, v->result, v->uses, v->explanation, strlen(v->explanation),
                v->comment, strlen(v->comment), expires);
    verdict_share(j, local, domain, v, expires);
}

/* A verdict read from Redis (the four keys of one identity, short key first) into the
 * memory cache, where identity_verdict will find it. */
static void shared_learn(policy_job_t *j, const char *local, const char *domain,
                         const store_value_t *v)
{
    double now = ev_now(j->p->loop);
    store_verdict_t head, full;

    if (!v[0].data || store_verdict_unpack(&head, v[0].data, v[0].len) < 0 ||
        head.expires <= now)
        return;
    full = head;
    if (head.uses) {
        const store_value_t *x = &v[head.uses];
        if (!x->data || store_verdict_unpack(&full, x->data, x->len) < 0 || full.uses ||
            full.expires <= now)
            return;
    }
    if (full.expires > now + POLICY_VERDICT_TTL_MAX)
        full.expires = now + POLICY_VERDICT_TTL_MAX;
    verdict_put(j, local, domain, (enum spf_result)full.result, head.uses, full.explanation,
                full.explanation_len, full.comment, full.comment_len, full.expires);
    j->p->stats.shared_hits++;
}

static void check_done(void *ctx, const spf_verdict_t *v)
{
    policy_job_t *j = ctx;
    int helo = j->checking == SPF_ID_HELO;

    j->check = NULL;
    j->p->stats.results[v->result]++;
    verdict_store(j, helo ? "postmaster" : j->from_local, v->domain, v);
    verdict_copy_from(helo ? &j->helo_v : &j->from_v, v->result, v->uses, v->explanation,
                      v->comment);
    j->stage = helo ? STAGE_HELO_DONE : STAGE_DONE;
    job_step(j);
}

/* The verdict for one identity, from the cache or a new check. 1 when it is known
 * now, 0 when a check was started (job_step runs again from check_done). */
static int identity_verdict(policy_job_t *j, enum spf_identity id)
{
    int helo = id == SPF_ID_HELO;
    verdict_copy_t *out = helo ? &j->helo_v : &j->from_v;
    const char *local = helo ? "postmaster" : j->from_local;
    const char *domain = helo ? j->helo : j->from_domain;
    const cached_verdict_t *cv;
    char sender[600];
    spf_query_t q;

    if (!*domain) {
        verdict_copy_from(out, SPF_RES_NONE, 0, "",
                          helo ? "HELO name is not a domain" : "sender has no valid domain");
        return 1;
    }
    cv = verdict_lookup(j, local, domain);
    if (cv) {
        j->p->stats.cache_hits++;
        j->p->stats.results[cv->result]++;
        verdict_copy_from(out, cv->result, cv->uses, cv->explanation, cv->comment);
        return 1;
    }
    snprintf(sender, sizeof(sender), "%s@%s", local, domain);
    memset(&q, 0, sizeof(q));
    q.ip = j->ip;
    q.sender = sender;
    q.helo = j->req->helo_name;
    q.identity = id;
    j->checking = id;
    j->p->stats.checks++;
    j->check = spf_check(j->p->spf, &q, check_done, j);
    if (!j->check) {
        verdict_copy_from(out, SPF_RES_TEMPERROR, 0, "", "out of memory");
        return 1;
    }
    return 0;
}

static void wl_done(policy_job_t *j, const char *why)
{
    verdict_copy_t v;

    memset(&v, 0, sizeof(v));
    v.result = SPF_RES_NONE;
    j->p->stats.whitelisted++;
    reply_accept(j, &v, why, ACTION_PREPEND);
}

static int answer_has_ip(const dns_answer_t *a, const netaddr_t *ip)
{
    for (size_t i = 0; a->status == DNS_OK && i < a->count; i++) {
        if (a->type == DNS_T_A && ip->family == AF_INET && memcmp(&a->rr[i].u.a, ip->addr, 4) == 0)
            return 1;
        if (a->type == DNS_T_AAAA && ip->family == AF_INET6 &&
            memcmp(&a->rr[i].u.aaaa, ip->addr, 16) == 0)
            return 1;
    }
    return 0;
}

static void wl_dns_cb(void *ctx, const dns_answer_t *a);

static int job_lookup(policy_job_t *j, const char *name, int type)
{
    for (size_t i = 0; i < sizeof(j->wl) / sizeof(j->wl[0]); i++) {
        if (j->wl[i].lookup)
            continue;
        j->wl[i].job = j;
        j->wl[i].lookup = dns_lookup(j->p->dns, name, type, wl_dns_cb, &j->wl[i]);
        if (!j->wl[i].lookup)
            return -1;
        j->nlookups++;
        return 0;
    }
    return -1;
}

static void wl_dns_cb(void *ctx, const dns_answer_t *a)
{
    struct wl_lookup *slot = ctx;
    policy_job_t *j = slot->job;
    int addr_type = j->ip.family == AF_INET6 ? DNS_T_AAAA : DNS_T_A;

    slot->lookup = NULL;
    j->nlookups--;
    if (a->status == DNS_SHUTDOWN) {
        job_reply(j, NULL, ACTION_DUNNO);
        return;
    }
    if (a->type == DNS_T_PTR) {
        char name[DNS_NAME_MAX + 1];
        for (size_t i = 0; a->status == DNS_OK && i < a->count && i < POLICY_PTR_NAMES_MAX; i++)
            if (domain_normalize(name, a->rr[i].u.ptr) == 0 &&
                name_list_match(&j->p->cfg.whitelist_ptr, name))
                job_lookup(j, name, addr_type);
    } else if (answer_has_ip(a, &j->ip)) {
        j->confirmed = 1;
    }
    if (j->nlookups > 0)
        return;
    if (j->confirmed) {
        wl_done(j, j->stage == STAGE_WL_HELO ? "whitelisted: HELO name forward-confirmed"
                                             : "whitelisted: client's forward-confirmed PTR name");
        return;
    }
    j->stage = j->stage == STAGE_WL_HELO ? STAGE_WL_PTR : STAGE_HELO;
    job_step(j);
}

static int skip_reason(const policy_job_t *j, const char **why)
{
    const struct config *c = &j->p->cfg;
    const policy_request_t *r = j->req;

    if (cidr_list_match(&c->skip_clients, &j->ip))
        *why = "skipped: client is in [skip] clients";
    else if (c->skip_sasl && *r->sasl_username)
        *why = "skipped: client authenticated with SASL";
    else if (*r->policy_context && name_list_match(&c->skip_policy_contexts, r->policy_context))
        *why = "skipped: policy_context is in [skip] policy_contexts";
    else {
        unsigned long port = strtoul(r->server_port, NULL, 10);
        for (size_t i = 0; *r->server_port && i < c->nskip_ports; i++)
            if (c->skip_server_ports[i] == port) {
                *why = "skipped: server_port is in [skip] server_ports";
                return 1;
            }
        return 0;
    }
    return 1;
}

static void job_start(policy_job_t *j)
{
    const struct config *c = &j->p->cfg;
    const char *why;
    verdict_copy_t none;

    if (skip_reason(j, &why)) {
        memset(&none, 0, sizeof(none));
        j->p->stats.skipped++;
        reply_accept(j, &none, why, ACTION_PREPEND);
        return;
    }
    if (cidr_list_match(&c->whitelist_clients, &j->ip)) {
        wl_done(j, "whitelisted: client is in [whitelist] clients");
        return;
    }
    if (*j->from_domain && name_list_match(&c->whitelist_senders, j->from_domain)) {
        wl_done(j, "whitelisted: sender domain is in [whitelist] senders");
        return;
    }
    j->stage = STAGE_SHARED;
    job_step(j);
}

static int before_mail_from(const char *state);

/* The reputations of this message are of use: to refuse, or for the header. */
static int reputation_wanted(const policy_t *p)
{
    return p->rep && (p->cfg.reputation_action != REPUTATION_NONE ||
                      (p->cfg.reputation_header && p->cfg.header_style != HEADER_NONE &&
                       p->cfg.header_style != HEADER_AUTH_RESULTS));
}

/* What memory knows of the message's reputation of kind k, kept for this request. */
static void rep_snapshot(policy_job_t *j, int k)
{
    j->rep_known[k] = j->rep_names.name[k][0] &&
                      reputation_peek(j->p->rep, (enum reputation_kind)k, j->rep_names.name[k],
                                      &j->rep_counts[k]);
}

static void rep_name(policy_job_t *j)
{
    reputation_names(&j->rep_names, &j->ip, j->ipstr, j->null_sender ? j->helo : j->from_domain);
    j->rep_named = 1;
}

static void shared_done(void *ctx, const store_value_t *values, size_t n)
{
    policy_job_t *j = ctx;

    (void)n;
    j->shared = NULL;
    for (int id = 0; values && id < 2; id++)
        if (j->shared_at[id] >= 0)
            shared_learn(j, id == SPF_ID_HELO ? "postmaster" : j->from_local,
                         id == SPF_ID_HELO ? j->helo : j->from_domain, values + j->shared_at[id]);
    for (int k = 0; values && k < REPUTATION_KINDS; k++)
        if (j->rep_at[k] >= 0) {
            reputation_learn(j->p->rep, (enum reputation_kind)k, j->rep_names.name[k],
                             values[j->rep_at[k]].data, values[j->rep_at[k]].len);
            rep_snapshot(j, k);
        }
    j->stage = STAGE_REPUTATION;
    job_step(j);
}

/* Puts the key of name (len bytes) of kind into the MGET being built. */
static int shared_add(policy_job_t *j, char keys[STORE_MGET_MAX][STORE_KEY_MAX], size_t *lens,
                      size_t *n, const char *kind, const char *name)
{
    lens[*n] = store_key(j->p->store, keys[*n], STORE_KEY_MAX, kind, name, strlen(name));
    if (!lens[*n])
        return -1;
    (*n)++;
    return 0;
}

/* One MGET for everything memory lacks. 1 when it was sent (shared_done goes on). */
static int shared_fetch(policy_job_t *j)
{
    policy_t *p = j->p;
    char keys[STORE_MGET_MAX][STORE_KEY_MAX], key[POLICY_KEY_MAX];
    const char *kp[STORE_MGET_MAX];
    size_t lens[STORE_MGET_MAX], n = 0;
    int want[2];

    j->shared_at[0] = j->shared_at[1] = -1;
    for (int k = 0; k < REPUTATION_KINDS; k++)
        j->rep_at[k] = -1;
    if (reputation_wanted(p)) {
        rep_name(j);
        for (int k = 0; k < REPUTATION_KINDS; k++)
            rep_snapshot(j, k);
    }
    if (!p->store || !store_up(p->store))
        return 0;
    want[SPF_ID_HELO] = (p->cfg.check_helo || j->null_sender) && *j->helo &&
                        !verdict_lookup(j, "postmaster", j->helo);
    want[SPF_ID_MAILFROM] = !j->null_sender && !before_mail_from(j->req->protocol_state) &&
                            *j->from_domain && !verdict_lookup(j, j->from_local, j->from_domain);
    for (int id = 0; id < 2; id++) {
        if (!want[id])
            continue;
        j->shared_at[id] = (int)n;
        for (unsigned uses = 0; uses < POLICY_SHARED_VARIANTS; uses++) {
            verdict_key(key, j, id == SPF_ID_HELO ? "postmaster" : j->from_local,
                        id == SPF_ID_HELO ? j->helo : j->from_domain, uses);
            if (shared_add(j, keys, lens, &n, STORE_KIND_VERDICT, key) < 0)
                return 0;
        }
    }
    for (int k = 0; j->rep_named && k < REPUTATION_KINDS; k++) {
        if (!j->rep_names.name[k][0] || j->rep_known[k])
            continue;
        lens[n] = reputation_key(p->rep, keys[n], STORE_KEY_MAX, (enum reputation_kind)k,
                                 j->rep_names.name[k]);
        if (!lens[n])
            return 0;
        j->rep_at[k] = (int)n++;
    }
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        kp[i] = keys[i];
    j->shared = store_mget(p->store, n, kp, lens, shared_done, j);
    return j->shared != NULL;
}

/* A client network that keeps failing SPF on every host: refused before any DNS work.
 * 1 when the request was answered. */
static int reputation_refuse(policy_job_t *j)
{
    const struct config *c = &j->p->cfg;
    const char *net = j->rep_names.name[REPUTATION_NET];
    const reputation_counts_t *rc = &j->rep_counts[REPUTATION_NET];
    char reply[REPLY_MAX + 1];
    double total, failing;
    int defer = c->reputation_action == REPUTATION_DEFER;

    if (c->reputation_action == REPUTATION_NONE || !j->rep_named ||
        !j->rep_known[REPUTATION_NET])
        return 0;
    total = reputation_total(rc);
    failing = reputation_failing(rc, c->reputation_count_softfail);
    if (total < c->reputation_min_checks || failing * 100 < c->reputation_fail_percent * total)
        return 0;
    /* A long text is cut: the reply line is bounded (RFC 5321 4.5.3.1.5). */
    if (snprintf(reply, sizeof(reply), "%s %s %s (%s: %.0f of %.0f recent SPF checks failed)",
                 defer ? "451" : "550",
                 defer ? c->reputation_defer_status : c->reputation_reject_status,
                 c->reputation_text, net, failing, total) < 0)
        return 0;
    j->p->stats.reputation_refused++;
    memo_store(j, 1, reply, NULL);
    job_reply(j, reply, defer ? ACTION_DEFER : ACTION_REJECT);
    return 1;
}

/* A message's result for its reputation: with its sender domain, or (when the HELO
 * decided before the sender's domain was checked) for its address and network only. */
static void reputation_add(policy_job_t *j, enum spf_result res, int with_domain)
{
    reputation_names_t names;

    if (!j->p->rep)
        return;
    if (!j->rep_named)
        rep_name(j);
    if (with_domain) {
        reputation_count(j->p->rep, &j->rep_names, res);
        return;
    }
    names = j->rep_names;
    names.name[REPUTATION_DOMAIN][0] = '\0';
    reputation_count(j->p->rep, &names, res);
}

static void job_decide(policy_job_t *j)
{
    const struct config *c = &j->p->cfg;
    enum action ha = j->helo_v.done ? c->helo_action[j->helo_v.result] : ACTION_DUNNO;
    enum action fa;

    reputation_add(j, j->null_sender ? j->helo_v.result : j->from_v.result, 1);
    if (j->null_sender) {
        /* RFC 7208 2.4: the HELO check is the MAIL FROM check of postmaster@helo. */
        fa = c->check_helo ? ha : c->mailfrom_action[j->helo_v.result];
        j->from_v = j->helo_v;
        if (reply_stronger(fa, ACTION_PREPEND) != ACTION_PREPEND)
            reply_refuse(j, &j->helo_v, SPF_ID_HELO, fa);
        else
            reply_accept(j, &j->helo_v, "", fa);
        return;
    }
    fa = c->mailfrom_action[j->from_v.result];
    if (reply_stronger(fa, ha) != fa && reply_stronger(ha, ACTION_PREPEND) != ACTION_PREPEND)
        reply_refuse(j, &j->helo_v, SPF_ID_HELO, ha);
    else if (reply_stronger(fa, ACTION_PREPEND) != ACTION_PREPEND)
        reply_refuse(j, &j->from_v, SPF_ID_MAILFROM, fa);
    else
        reply_accept(j, &j->from_v, "", fa);
}

/* Reject and defer end the transaction at once; hold waits for the message. */
static int refuses_now(enum action a)
{
    return a == ACTION_REJECT || a == ACTION_DEFER;
}

static int before_mail_from(const char *state)
{
    return strcasecmp(state, "CONNECT") == 0 || strcasecmp(state, "EHLO") == 0 ||
           strcasecmp(state, "HELO") == 0;
}

static void job_step(policy_job_t *j)
{
    const struct config *c = &j->p->cfg;
    int addr_type = j->ip.family == AF_INET6 ? DNS_T_AAAA : DNS_T_A;
    char rev[DNS_NAME_MAX + 1];

    switch (j->stage) {
    case STAGE_START:
        job_start(j);
        return;
    case STAGE_SHARED:
        if (shared_fetch(j))
            return;
        j->stage = STAGE_REPUTATION;
        /* fall through */
    case STAGE_REPUTATION:
        if (reputation_refuse(j))
            return;
        j->stage = STAGE_WL_HELO;
        /* fall through */
    case STAGE_WL_HELO:
        if (*j->helo && name_list_match(&c->whitelist_helo, j->helo) &&
            job_lookup(j, j->helo, addr_type) == 0)
            return;
        j->stage = STAGE_WL_PTR;
        /* fall through */
    case STAGE_WL_PTR:
        if (c->whitelist_ptr.n > 0 && netaddr_reverse_name(&j->ip, rev, sizeof(rev)) &&
            job_lookup(j, rev, DNS_T_PTR) == 0)
            return;
        j->stage = STAGE_HELO;
        /* fall through */
    case STAGE_HELO:
        if ((c->check_helo || j->null_sender) && !identity_verdict(j, SPF_ID_HELO))
            return;
        j->stage = STAGE_HELO_DONE;
        /* fall through */
    case STAGE_HELO_DONE:
        if (j->null_sender || before_mail_from(j->req->protocol_state)) {
            j->stage = STAGE_DONE;
            job_step(j);
            return;
        }
        if (j->helo_v.done && refuses_now(c->helo_action[j->helo_v.result])) {
            reputation_add(j, j->helo_v.result, 0);
            reply_refuse(j, &j->helo_v, SPF_ID_HELO, c->helo_action[j->helo_v.result]);
            return;
        }
        j->stage = STAGE_MAILFROM;
        /* fall through */
    case STAGE_MAILFROM:
        if (!identity_verdict(j, SPF_ID_MAILFROM))
            return;
        j->stage = STAGE_DONE;
        /* fall through */
    case STAGE_DONE:
        if (before_mail_from(j->req->protocol_state)) {
            enum action ha = j->helo_v.done ? c->helo_action[j->helo_v.result] : ACTION_DUNNO;
            /* No message yet to put a header on: only a refusal means anything here. */
            if (refuses_now(ha))
                reply_refuse(j, &j->helo_v, SPF_ID_HELO, ha);
            else
                job_reply(j, "DUNNO", ACTION_DUNNO);
            return;
        }
        job_decide(j);
        return;
    }
}

/* A later request of a message already decided. 1 when answered from the memo. */
static int memo_answer(policy_job_t *j)
{
    char key[32];
    memo_t *m;

    if (!*j->req->instance)
        return 0;
    memo_key(key, j->conn_id);
    m = cache_get(j->p->memos, key, ev_now(j->p->loop), NULL);
    if (!m || strcmp(m->instance, j->req->instance) != 0)
        return 0;
    j->p->stats.memo_hits++;
    if (*m->second_header) {
        char reply[HEADER_MAX + 16];
        snprintf(reply, sizeof(reply), "PREPEND %s", m->second_header);
        m->second_header[0] = '\0';
        job_reply(j, reply, ACTION_PREPEND);
    } else {
        char reply[REPLY_MAX + 1];
        snprintf(reply, sizeof(reply), "%s", m->final ? m->text : "DUNNO");
        job_reply(j, reply, m->final ? (m->text[0] == '5' ? ACTION_REJECT : ACTION_DEFER)
                                     : ACTION_DUNNO);
    }
    return 1;
}

static void kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    policy_job_t *j = w->data;
    const policy_request_t *r = j->req;
    const char *at;

    (void)loop;
    (void)revents;
    if (netaddr_parse(&j->ip, r->client_address) < 0) {
        char sample[LOG_SAMPLE_MAX + 4];
        log_warn("policy request with unusable client_address=%s: answering DUNNO",
                 log_sample(sample, r->client_address, strlen(r->client_address)));
        job_reply(j, "DUNNO", ACTION_DUNNO);
        return;
    }
    netaddr_format(&j->ip, j->ipstr, sizeof(j->ipstr));
    if (memo_answer(j))
        return;
    if (domain_normalize(j->helo, r->helo_name) < 0)
        j->helo[0] = '\0';
    j->null_sender = r->sender[0] == '\0';
    at = strrchr(r->sender, '@');
    if (!j->null_sender) {
        size_t llen = at ? (size_t)(at - r->sender) : 0;
        if (llen > sizeof(j->from_local) - 1)
            llen = sizeof(j->from_local) - 1;
        memcpy(j->from_local, r->sender, llen);
        j->from_local[llen] = '\0';
        /* RFC 7208 4.3: an empty local part is "postmaster". */
        if (!*j->from_local)
            snprintf(j->from_local, sizeof(j->from_local), "postmaster");
        if (!at || domain_normalize(j->from_domain, at + 1) < 0)
            j->from_domain[0] = '\0';
    }
    if (strcasecmp(r->protocol_state, "CONNECT") == 0 || strcasecmp(r->protocol_state, "VRFY") == 0 ||
        strcasecmp(r->protocol_state, "ETRN") == 0 ||
        (before_mail_from(r->protocol_state) && !*j->helo)) {
        job_reply(j, "DUNNO", ACTION_DUNNO);
        return;
    }
    job_step(j);
}

policy_job_t *policy_check(policy_t *p, unsigned long long conn_id, const policy_request_t *req,
                           policy_reply_cb *cb, void *ctx)
{
    policy_job_t *j = malloc(sizeof(*j));

    if (!j)
        return NULL;
    memset(j, 0, offsetof(policy_job_t, ip));
    j->helo_v.done = j->from_v.done = 0;
    j->ipstr[0] = j->helo[0] = j->from_local[0] = j->from_domain[0] = '\0';
    j->p = p;
    j->cb = cb;
    j->ctx = ctx;
    j->conn_id = conn_id;
    j->req = req;
    /* The loop's time, not the clock's: a syscall-free stamp, at most one loop turn
     * early, and the clock is read only when the decision is logged. */
    j->started = ev_now(p->loop);
    j->stage = STAGE_START;
    ev_timer_init(&j->kick, kick_cb, 0, 0);
    j->kick.data = j;
    ev_timer_start(p->loop, &j->kick);
    j->next = p->jobs;
    if (p->jobs)
        p->jobs->prev = j;
    p->jobs = j;
    return j;
}
