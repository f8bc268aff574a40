/* cache.c - bounded string-keyed map with expiry and LRU eviction.
 *
 * A chained hash table whose buckets point into the entries, plus an intrusive
 * doubly-linked LRU list through the same entries (head side = most recently used).
 * The key is stored inline at the end of each entry, so one entry is one malloc.
 *
 * Keys are attacker-influenced (domain names from mail), so the hash is SipHash-2-4
 * keyed with random bytes drawn per cache: without the key, nobody can choose names
 * that land in one bucket and turn lookups into list walks.
 *
 * Memory, measured with mallinfo2() on glibc 2.36 x86-64 for 100,000 entries with
 * 25-byte keys ("16:host-NNNNN.example.com"): 80 bytes per entry (the 44-byte header
 * and the key share one malloc chunk) plus a 131,072-bucket array of pointers (10.5
 * bytes per entry), about 91 bytes per entry in all; each further 16 bytes of key
 * add 16. Values are the caller's and not counted. */
#include "cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Smallest bucket array; the table doubles when entries outnumber buckets, so a
 * cache costs memory in proportion to what it holds, not to its bound. */
#define CACHE_MIN_BUCKETS 16
/* When full, this many entries from the LRU tail are checked for expiry before the
 * tail itself is evicted: dropping dead entries first keeps live ones, and a fixed
 * bound keeps cache_put O(1). */
#define CACHE_EXPIRED_SCAN 16

struct link {
    struct link *prev, *next;
};

struct entry {
    struct link lru;          /* first member: a struct link * is a struct entry * */
    struct entry *hnext;      /* next in the same bucket */
    void *value;
    double expires;
    uint32_t hash;
    char key[];
};

struct cache {
    struct entry **buckets;
    size_t nbuckets;          /* power of two */
    size_t count;
    size_t max_entries;
    struct link lru;          /* sentinel: lru.next is the most recently used */
    cache_free_fn *free_fn;
    uint64_t k0, k1;          /* SipHash key */
};

static uint64_t rotl64(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIP_ROUND(v0, v1, v2, v3)                                              \
    do {                                                                       \
        v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32);          \
        v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;                               \
        v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;                               \
        v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32);          \
    } while (0)

/* SipHash-2-4 (Aumasson and Bernstein, 2012), written from the paper. */
static uint64_t siphash(const cache_t *c, const unsigned char *in, size_t len)
{
    uint64_t v0 = c->k0 ^ 0x736f6d6570736575ULL;
    uint64_t v1 = c->k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = c->k0 ^ 0x6c7967656e657261ULL;
    uint64_t v3 = c->k1 ^ 0x7465646279746573ULL;
    size_t whole = len - len % 8;
    uint64_t m;

    for (size_t i = 0; i < whole; i += 8) {
        m = 0;
        for (int j = 7; j >= 0; j--)
            m = (m << 8) | in[i + (size_t)j];
        v3 ^= m;
        SIP_ROUND(v0, v1, v2, v3);
        SIP_ROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    m = (uint64_t)(len & 0xff) << 56;
    for (size_t j = 0; j < len % 8; j++)
        m |= (uint64_t)in[whole + j] << (8 * j);
    v3 ^= m;
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    v0 ^= m;
    v2 ^= 0xff;
    for (int r = 0; r < 4; r++)
        SIP_ROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* The kernel's random bytes; if getrandom is unavailable (old kernel, seccomp), a
 * mix of clock, pid and addresses, which still differs between runs and processes. */
static void seed_key(cache_t *c)
{
    uint64_t k[2];
    struct timespec ts;

    if (getrandom(k, sizeof k, GRND_NONBLOCK) == (ssize_t)sizeof k) {
        c->k0 = k[0];
        c->k1 = k[1];
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    c->k0 = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_sec;
    c->k1 = (uint64_t)getpid() * 0xbf58476d1ce4e5b9ULL ^ (uint64_t)(uintptr_t)c;
}

static void lru_unlink(struct link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
}

static void lru_push_front(cache_t *c, struct link *l)
{
    l->prev = &c->lru;
    l->next = c->lru.next;
    c->lru.next->prev = l;
    c->lru.next = l;
}

static struct entry **bucket_of(const cache_t *c, uint32_t hash)
{
    return &c->buckets[hash & (c->nbuckets - 1)];
}

/* strcmp, not memcmp of len + 1 bytes: a stored key with the same hash may be shorter
 * than key, and memcmp would read past its end. */
static struct entry *find(const cache_t *c, const char *key, uint32_t hash)
{
    for (struct entry *e = *bucket_of(c, hash); e; e = e->hnext)
        if (e->hash == hash && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* Unlinks e from its bucket and the LRU list, frees its value and itself. */
static void remove_entry(cache_t *c, struct entry *e)
{
    struct entry **pp = bucket_of(c, e->hash);

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(&e->lru);
    c->count--;
    if (c->free_fn)
        c->free_fn(e->value);
    free(e);
}

/* Moves every entry into a new bucket array of n buckets; on allocation failure the
 * old array stays (chains get longer, nothing is lost). */
static void rehash(cache_t *c, size_t n)
{
    struct entry **nb = calloc(n, sizeof *nb);

    if (!nb)
        return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct entry *e = c->buckets[i], *next;
        for (; e; e = next) {
            next = e->hnext;
            e->hnext = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
        }
    }
    free(c->buckets);
    c->buckets = nb;
    c->nbuckets = n;
}

cache_t *cache_new(size_t max_entries, cache_free_fn *free_fn)
{
    cache_t *c;

    if (max_entries < 1)
        return NULL;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->buckets = calloc(CACHE_MIN_BUCKETS, sizeof *c->buckets);
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    c->nbuckets = CACHE_MIN_BUCKETS;
    c->max_entries = max_entries;
    c->free_fn = free_fn;
    c->lru.prev = c->lru.next = &c->lru;
    seed_key(c);
    return c;
}

void cache_free(cache_t *c)
{
    if (!c)
        return;
    while (c->lru.next != &c->lru)
        remove_entry(c, (struct entry *)c->lru.next);
    free(c->buckets);
    free(c);
}

void *cache_get(cache_t *c, const char *key, double now, double *expires)
{
    size_t len = strlen(key);
    uint32_t hash = (uint32_t)siphash(c, (const unsigned char *)key, len);
    struct entry *e = find(c, key, hash);

    if (!e)
        return NULL;
    if (e->expires <= now) {
        remove_entry(c, e);
        return NULL;
    }
    lru_unlink(&e->lru);
    lru_push_front(c, &e->lru);
    if (expires)
        *expires = e->expires;
    return e->value;
}

/* Frees one slot for a new entry: expired entries near the LRU tail go first, and
 * only if none was found does the least recently used live entry go. */
static void make_room(cache_t *c, double now)
{
    struct link *l = c->lru.prev, *prev;

    for (int i = 0; i < CACHE_EXPIRED_SCAN && l != &c->lru; i++, l = prev) {
        prev = l->prev;
        if (((struct entry *)l)->expires <= now)
            remove_entry(c, (struct entry *)l);
    }
    while (c->count >= c->max_entries)
        remove_entry(c, (struct entry *)c->lru.prev);
}

int cache_put(cache_t *c, const char *key, void *value, double expires, double now)
{
    size_t len = strlen(key);
    uint32_t hash = (uint32_t)siphash(c, (const unsigned char *)key, len);
    struct entry *e = find(c, key, hash);
    size_t size;

    if (e) {
        if (e->value != value && c->free_fn)
            c->free_fn(e->value);
        e->value = value;
        e->expires = expires;
        lru_unlink(&e->lru);
        lru_push_front(c, &e->lru);
        return 0;
    }
    /* A short key must not leave the allocation smaller than the struct itself. */
    size = offsetof(struct entry, key) + len + 1;
    if (size < sizeof *e)
        size = sizeof *e;
    e = malloc(size);
    if (!e) {
        if (c->free_fn)
            c->free_fn(value);
        return -1;
    }
    if (c->count >= c->max_entries)
        make_room(c, now);
    if (c->count >= c->nbuckets)
        rehash(c, c->nbuckets * 2);
    memcpy(e->key, key, len + 1);
    e->hash = hash;
    e->value = value;
    e->expires = expires;
    e->hnext = *bucket_of(c, hash);
    *bucket_of(c, hash) = e;
    lru_push_front(c, &e->lru);
    c->count++;
    return 0;
}

int cache_del(cache_t *c, const char *key)
{
    size_t len = strlen(key);
    uint32_t hash = (uint32_t)siphash(c, (const unsigned char *)key, len);
    struct entry *e = find(c, key, hash);

    if (!e)
        return -1;
    remove_entry(c, e);
    return 0;
}

size_t cache_count(const cache_t *c)
{
    return c->count;
}

void cache_resize(cache_t *c, size_t max_entries)
{
    size_t n = CACHE_MIN_BUCKETS;

    c->max_entries = max_entries < 1 ? 1 : max_entries;
    while (c->count > c->max_entries)
        remove_entry(c, (struct entry *)c->lru.prev);
    /* Give back a bucket array sized for a larger past. */
    while (n < c->count)
        n *= 2;
    if (n * 4 <= c->nbuckets)
        rehash(c, n);
}
