/* cache.h - a bounded in-memory map from string keys to values, with expiry and
 * least-recently-used eviction.
 *
 * Owns its keys (copied) and its values (freed with the free function given to
 * cache_new when a value is replaced, evicted, expired or the cache is freed).
 * Time is passed in by the caller (ev_now), so tests control it. All operations are
 * O(1) on average. */
#ifndef CACHE_H
#define CACHE_H

#include <stddef.h>

typedef struct cache cache_t;
typedef void cache_free_fn(void *value);

/* max_entries >= 1. free_fn may be NULL when values need no freeing. */
cache_t *cache_new(size_t max_entries, cache_free_fn *free_fn);
void cache_free(cache_t *c);

/* The value stored under key if it has not expired at now (expires > now), else NULL
 * (an expired entry is removed). A hit makes the entry most recently used. The value
 * stays owned by the cache: valid until the next cache_put/cache_del/cache_free. */
void *cache_get(cache_t *c, const char *key, double now, double *expires);
/* Stores value (takes ownership) under key until expires, replacing any old value.
 * When full, evicts expired entries first, then the least recently used. 0 or -1
 * (out of memory: value is freed). */
int cache_put(cache_t *c, const char *key, void *value, double expires, double now);
int cache_del(cache_t *c, const char *key);
size_t cache_count(const cache_t *c);
/* Changes the bound; shrinking evicts least recently used entries at once. */
void cache_resize(cache_t *c, size_t max_entries);

#endif
