/* reputation.h - how each sender domain, client IP address and client network (/24,
 * /64) has fared in SPF checks, counted by every MX host in the shared Redis.
 *
 * The model: per entity, one decayed count per SPF result. A check adds 1 to its
 * result's count; every count decays exponentially with the time constant [reputation]
 * window (after one window a check weighs 1/e), so a steady flow of mail shows the
 * number of checks of the last window and an entity that stops sending fades away.
 * One Redis string per entity,
 *     <prefix>r:d:<domain>  r:i:<ip>  r:n:<network>
 *     "<t> <none> <neutral> <pass> <fail> <softfail> <temperror> <permerror>"
 * (t: the time, in seconds since the epoch, the counts were decayed to), written only
 * by a Lua script that decays, adds and sets the key again with an expiry of
 * REPUTATION_TTL_WINDOWS windows, atomically, so every host's counts add up.
 *
 * Owns the counts gathered here since the last flush (sent every flush_interval in
 * batched script calls, never waited for) and a memory cache of reputations read from
 * Redis (kept refresh seconds). Reading from Redis is the caller's (policy.c puts the
 * keys in the one MGET of a request): reputation_key() names them, reputation_learn()
 * takes the values, reputation_peek() answers from memory. */
#ifndef REPUTATION_H
#define REPUTATION_H

#include <stddef.h>
#include <stdio.h>
#include "config.h"
#include "netaddr.h"
#include "verdict.h"

struct ev_loop;
struct store;

/* Keys live this many windows after their last update: what is left of a count by
 * then (e^-3, under 5 %) is not worth keeping. */
#define REPUTATION_TTL_WINDOWS 3
/* Entities counted between two flushes; past it a flush happens at once, so memory
 * stays bounded whatever the mail flow. */
#define REPUTATION_PENDING_MAX 10000
/* Entities per script call: each takes a key and an argument of the call. */
#define REPUTATION_FLUSH_BATCH 100
/* The longest entity: a domain name (253), or an IPv6 network in text. */
#define REPUTATION_ENTITY_MAX 256
/* The longest header value: "net F/N ip F/N domain F/N" with 10-digit numbers. */
#define REPUTATION_HEADER_MAX 96

enum reputation_kind { REPUTATION_DOMAIN, REPUTATION_IP, REPUTATION_NET };
#define REPUTATION_KINDS 3

typedef struct reputation reputation_t;

typedef struct reputation_counts {
    double n[SPF_RES_COUNT];          /* indexed by enum spf_result */
} reputation_counts_t;

/* The three entities of a message: its sender domain ("" when it has none), its client
 * IP and network, as text. */
typedef struct reputation_names {
    char name[REPUTATION_KINDS][REPUTATION_ENTITY_MAX];
} reputation_names_t;

typedef struct reputation_stats {
    unsigned long long counted, flushes, flushed_entities, dropped, learned, cache_hits;
} reputation_stats_t;

/* Uses [reputation] of cfg and store (borrowed; must outlive it). Registers the update
 * script with the store: call right after store_new. NULL when out of memory. */
reputation_t *reputation_new(struct ev_loop *loop, struct store *store,
                             const struct config *cfg);
/* Queues what is still pending (sent if the store gets to it), then frees. */
void reputation_free(reputation_t *r);
void reputation_get_stats(const reputation_t *r, reputation_stats_t *out);

/* ipstr: ip as netaddr_format writes it (the caller has it already). */
void reputation_names(reputation_names_t *out, const netaddr_t *ip, const char *ipstr,
                      const char *domain);
/* The full Redis key of an entity, in buf (STORE_KEY_MAX). Its length, 0 if it does
 * not fit. */
size_t reputation_key(const reputation_t *r, char *buf, size_t len, enum reputation_kind kind,
                      const char *entity);

/* Counts one result for each non-empty entity of names. */
void reputation_count(reputation_t *r, const reputation_names_t *names, enum spf_result res);
/* 1 with *out when the entity's reputation is in memory (read within refresh seconds;
 * counts gathered here since are included), else 0. */
int reputation_peek(reputation_t *r, enum reputation_kind kind, const char *entity,
                    reputation_counts_t *out);
/* Keeps a value read from Redis (NULL: no such key, all counts 0). A malformed value
 * is taken as no value. */
void reputation_learn(reputation_t *r, enum reputation_kind kind, const char *entity,
                      const void *value, size_t len);

/* Parses a stored value, decayed to now with the given window. 0, or -1 when it is not
 * eight non-negative numbers. */
int reputation_parse(reputation_counts_t *out, const void *value, size_t len, double now,
                     double window);
double reputation_total(const reputation_counts_t *c);
/* fail, and softfail too when count_softfail. */
double reputation_failing(const reputation_counts_t *c, int count_softfail);
/* "net 43/70 ip 0/3 domain 2/122" (rounded; kinds with NULL counts left out) in buf.
 * Returns the length, 0 when nothing is known. */
size_t reputation_header(char *buf, size_t len, const reputation_counts_t *c[REPUTATION_KINDS],
                         int count_softfail);

/* spf-policyd --reputation IP|DOMAIN: connects to the configured Redis, prints the
 * reputation of the domain, or of the address and its network, to out. Exit status:
 * 0, 1 when Redis could not be asked, 2 when what is not an address or domain. */
int reputation_cli(const struct config *cfg, const char *what, FILE *out);

#endif
