/* dns.h - every DNS lookup the daemon makes: c-ares on the libev loop, an answer
 * cache, coalescing and a cap on queries in flight.
 *
 * Owns the c-ares channel and its watchers, the answer cache (TTLs honoured, capped by
 * config; negative answers per RFC 2308 from the SOA minimum; SERVFAIL and timeouts
 * remembered briefly), and the set of queries in flight: identical (name, type) lookups
 * share one query; past dns_max_inflight, lookups wait in a FIFO queue.
 *
 * Callbacks fire exactly once per dns_lookup (answer, error, timeout or dns_free),
 * never before dns_lookup returns (cache hits are delivered on the next loop turn),
 * unless the lookup is cancelled first. Answers are immutable and reference-counted;
 * the pointer given to a callback is valid only during the callback unless the
 * callee takes dns_answer_ref(). */
#ifndef DNS_H
#define DNS_H

#include <stdint.h>
#include <stddef.h>
#include <netinet/in.h>

struct ev_loop;

#define DNS_ERR_LEN 256
/* Longest presentation name we look up (RFC 1035 2.3.4: 253 without the dot). */
#define DNS_NAME_MAX 253

enum dns_type {
    DNS_T_A = 1,
    DNS_T_PTR = 12,
    DNS_T_MX = 15,
    DNS_T_TXT = 16,
    DNS_T_AAAA = 28,
    DNS_T_SPF = 99,
};

enum dns_status {
    DNS_OK,           /* rcode NOERROR with at least one record of the type */
    DNS_NODATA,       /* NOERROR, no record of that type */
    DNS_NXDOMAIN,     /* name does not exist */
    DNS_SERVFAIL,     /* server failure, refused, or malformed answer: temporary */
    DNS_TIMEOUT,      /* no answer in time: temporary */
    DNS_SHUTDOWN,     /* dns_free() while the lookup was pending */
};

typedef struct dns_rr {
    union {
        struct in_addr a;
        struct in6_addr aaaa;
        struct { uint16_t pref; char *name; } mx;
        char *ptr;
        struct { char *data; size_t len; } txt;  /* character-strings concatenated
                                                    (RFC 7208 3.3), NUL-terminated,
                                                    may contain NUL bytes inside */
    } u;
} dns_rr_t;

typedef struct dns_answer {
    char *name;               /* the name asked for, lower-case, no trailing dot */
    int type;                 /* enum dns_type */
    enum dns_status status;
    uint32_t ttl;             /* as cached: after the config's min/max */
    double expires;           /* ev_now() time after which it must not be used */
    size_t count;             /* records, 0 unless DNS_OK */
    dns_rr_t *rr;
    unsigned refs;
} dns_answer_t;

typedef struct dns dns_t;
typedef struct dns_lookup dns_lookup_t;
typedef void dns_cb(void *ctx, const dns_answer_t *ans);

typedef struct dns_options {
    const char *servers;      /* "host[:port],..." or NULL/"" for /etc/resolv.conf */
    double timeout;           /* seconds per attempt */
    unsigned tries;
    unsigned max_inflight;
    unsigned cache_size;
    unsigned max_ttl, negative_ttl, error_ttl;
} dns_options_t;

typedef struct dns_stats {
    unsigned long long lookups, cache_hits, coalesced, queries_sent, timeouts, servfails;
    unsigned inflight, queued;
    unsigned long long shared_hits, shared_misses, shared_puts;   /* dns_set_shared */
} dns_stats_t;

/* A second cache level shared with other hosts (the store module's Redis; main.c wires
 * it): after a memory miss a lookup asks it before the network, and every answer
 * fetched from the network is handed to it with its remaining TTL, temporary failures
 * (SERVFAIL, timeout) with error_ttl at most and not at all when that is 0. Keys are
 * "type:name"; values are dns_answer_pack's. */
typedef void dns_shared_cb(void *arg, const void *value, size_t len);
typedef struct dns_shared {
    void *ctx;
    /* Starts a read; NULL when none can be started now (no callback then). The
     * callback fires once: value NULL when the key is missing or there was no answer. */
    void *(*get)(void *ctx, const char *key, dns_shared_cb *cb, void *arg);
    void (*cancel)(void *req);
    void (*put)(void *ctx, const char *key, const void *value, size_t len, double ttl);
    double error_ttl;
} dns_shared_t;

dns_t *dns_new(struct ev_loop *loop, const dns_options_t *opt, char err[DNS_ERR_LEN]);
/* Fails pending lookups with DNS_SHUTDOWN, then frees everything. */
void dns_free(dns_t *d);

/* Starts a lookup of name (case-insensitive, trailing dot optional) and type. Returns
 * a handle for dns_cancel, or NULL with nothing started if name is not a valid DNS
 * name (empty, label > 63, total > 253). */
dns_lookup_t *dns_lookup(dns_t *d, const char *name, int type, dns_cb *cb, void *ctx);
/* The callback of this lookup will not fire. The query itself goes on (others may
 * share it) and its answer is still cached. */
void dns_cancel(dns_lookup_t *l);
/* The cached, unexpired answer for (name, type) or NULL; no query is sent. Valid
 * until control returns to the loop. */
const dns_answer_t *dns_peek(dns_t *d, const char *name, int type);

/* Lower-cases name (len bytes) into out without its trailing dot, by the rules
 * dns_lookup applies: no empty label, labels of at most 63 bytes, at most DNS_NAME_MAX,
 * no control bytes and no backslash (c-ares would read it as an escape and ask for
 * another name). Spaces are allowed: a macro expansion can put them in a name, and a
 * label may hold any byte. 0, or -1 for a name dns_lookup refuses. */
int dns_name_normalize(char out[DNS_NAME_MAX + 1], const char *name, size_t len);

const dns_answer_t *dns_answer_ref(const dns_answer_t *a);
void dns_answer_unref(const dns_answer_t *a);

void dns_get_stats(const dns_t *d, dns_stats_t *out);
/* Copies sh; NULL stops sharing. */
void dns_set_shared(dns_t *d, const dns_shared_t *sh);

/* The packed form of an answer, for sharing: "D1", status, type, TTL, expiry (ms since
 * the epoch), the name and each record with explicit lengths. A malloc'ed buffer and
 * its length, or NULL (out of memory, or a status that is not shared). */
unsigned char *dns_answer_pack(const dns_answer_t *a, size_t *len);
/* A new answer (one reference) from len bytes of packed data, for name (normalized, as
 * in the key) and type, expiring at min(its expiry, now + its TTL); NULL when the data
 * is not exactly one well-formed answer for that name and type, or has expired. */
dns_answer_t *dns_answer_unpack(const void *data, size_t len, const char *name, int type,
                                double now);
const char *dns_status_name(enum dns_status s);
const char *dns_type_name(int type);

#endif
