// unit-deps: cache
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "unit.h"

/* Values are counters, so every test can say how often each one was freed. */
typedef struct val {
    int id;
    int freed;
} val_t;

static int frees;

static void val_free(void *p)
{
    ((val_t *)p)->freed++;
    frees++;
}

static val_t vals[16];

static void reset(void)
{
    frees = 0;
    for (int i = 0; i < 16; i++) {
        vals[i].id = i;
        vals[i].freed = 0;
    }
}

static void test_cache_new_rejects_zero(void)
{
    CHECK(cache_new(0, NULL) == NULL);
}

static void test_cache_get_put(void)
{
    cache_t *c = cache_new(4, val_free);
    double exp = 0;

    reset();
    CHECK_INT(cache_put(c, "1:example.com", &vals[1], 100, 0), 0);
    CHECK_INT(cache_put(c, "16:example.com", &vals[2], 50, 0), 0);
    CHECK_INT(cache_count(c), 2);
    CHECK(cache_get(c, "1:example.com", 10, &exp) == &vals[1]);
    CHECK(exp == 100);
    CHECK(cache_get(c, "16:example.com", 10, NULL) == &vals[2]);
    CHECK(cache_get(c, "1:example.co", 10, &exp) == NULL);
    CHECK(cache_get(c, "1:example.comx", 10, &exp) == NULL);
    CHECK(cache_get(c, "", 10, &exp) == NULL);
    CHECK_INT(frees, 0);
    cache_free(c);
    CHECK_INT(frees, 2);
    CHECK_INT(vals[1].freed, 1);
    CHECK_INT(vals[2].freed, 1);
}

static void test_cache_empty_key(void)
{
    cache_t *c = cache_new(2, val_free);

    reset();
    CHECK_INT(cache_put(c, "", &vals[0], 10, 0), 0);
    CHECK(cache_get(c, "", 1, NULL) == &vals[0]);
    CHECK_INT(cache_del(c, ""), 0);
    CHECK_INT(vals[0].freed, 1);
    cache_free(c);
    CHECK_INT(frees, 1);
}

static void test_cache_replace(void)
{
    cache_t *c = cache_new(4, val_free);
    double exp = 0;

    reset();
    cache_put(c, "k", &vals[1], 100, 0);
    CHECK_INT(cache_put(c, "k", &vals[2], 200, 0), 0);
    CHECK_INT(cache_count(c), 1);
    CHECK_INT(vals[1].freed, 1);
    CHECK_INT(vals[2].freed, 0);
    CHECK(cache_get(c, "k", 150, &exp) == &vals[2]);
    CHECK(exp == 200);
    /* Storing the same value again only moves the expiry: nothing is freed. */
    CHECK_INT(cache_put(c, "k", &vals[2], 300, 0), 0);
    CHECK_INT(vals[2].freed, 0);
    CHECK(cache_get(c, "k", 250, &exp) == &vals[2]);
    CHECK(exp == 300);
    cache_free(c);
    CHECK_INT(vals[2].freed, 1);
    CHECK_INT(frees, 2);
}

static void test_cache_del(void)
{
    cache_t *c = cache_new(4, val_free);

    reset();
    cache_put(c, "a", &vals[1], 100, 0);
    cache_put(c, "b", &vals[2], 100, 0);
    CHECK_INT(cache_del(c, "a"), 0);
    CHECK_INT(vals[1].freed, 1);
    CHECK_INT(cache_count(c), 1);
    CHECK_INT(cache_del(c, "a"), -1);
    CHECK_INT(cache_del(c, "zz"), -1);
    CHECK_INT(vals[1].freed, 1);
    CHECK(cache_get(c, "a", 0, NULL) == NULL);
    CHECK(cache_get(c, "b", 0, NULL) == &vals[2]);
    cache_free(c);
    CHECK_INT(frees, 2);
}

static void test_cache_expiry_boundary(void)
{
    cache_t *c = cache_new(4, val_free);

    reset();
    cache_put(c, "k", &vals[1], 10.0, 0);
    CHECK(cache_get(c, "k", 9.999, NULL) == &vals[1]);
    CHECK_INT(vals[1].freed, 0);
    /* Valid while expires > now: at exactly expires it is gone, and freed. */
    CHECK(cache_get(c, "k", 10.0, NULL) == NULL);
    CHECK_INT(vals[1].freed, 1);
    CHECK_INT(cache_count(c), 0);
    CHECK(cache_get(c, "k", 0, NULL) == NULL);
    cache_free(c);
    CHECK_INT(frees, 1);
}

static void test_cache_lru_order(void)
{
    cache_t *c = cache_new(3, val_free);

    reset();
    cache_put(c, "a", &vals[1], 100, 0);
    cache_put(c, "b", &vals[2], 100, 0);
    cache_put(c, "c", &vals[3], 100, 0);
    /* a becomes the most recently used, b the least. */
    CHECK(cache_get(c, "a", 1, NULL) == &vals[1]);
    cache_put(c, "d", &vals[4], 100, 1);
    CHECK_INT(vals[2].freed, 1);
    CHECK(cache_get(c, "b", 1, NULL) == NULL);
    /* Now c is the least recently used; a replace also counts as a use. */
    cache_put(c, "c", &vals[3], 100, 1);
    cache_put(c, "e", &vals[5], 100, 1);
    CHECK_INT(vals[1].freed, 1);
    CHECK(cache_get(c, "c", 1, NULL) == &vals[3]);
    CHECK(cache_get(c, "d", 1, NULL) == &vals[4]);
    CHECK(cache_get(c, "e", 1, NULL) == &vals[5]);
    CHECK_INT(cache_count(c), 3);
    CHECK_INT(frees, 2);
    cache_free(c);
    CHECK_INT(frees, 5);
}

static void test_cache_evicts_at_max(void)
{
    cache_t *c = cache_new(3, val_free);

    reset();
    for (int i = 0; i < 3; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        CHECK_INT(cache_put(c, key, &vals[i], 100, 0), 0);
    }
    /* Exactly fits: nothing evicted. */
    CHECK_INT(cache_count(c), 3);
    CHECK_INT(frees, 0);
    /* One over: the oldest goes. */
    CHECK_INT(cache_put(c, "k3", &vals[3], 100, 0), 0);
    CHECK_INT(cache_count(c), 3);
    CHECK_INT(frees, 1);
    CHECK_INT(vals[0].freed, 1);
    CHECK(cache_get(c, "k0", 0, NULL) == NULL);
    CHECK(cache_get(c, "k1", 0, NULL) == &vals[1]);
    CHECK(cache_get(c, "k3", 0, NULL) == &vals[3]);
    cache_free(c);
    CHECK_INT(frees, 4);
}

static void test_cache_evicts_expired_first(void)
{
    cache_t *c = cache_new(3, val_free);

    reset();
    cache_put(c, "a", &vals[1], 100, 0);
    cache_put(c, "b", &vals[2], 10, 0);
    cache_put(c, "c", &vals[3], 100, 0);
    /* a is the LRU tail but alive at 50; b has expired and goes instead. */
    cache_put(c, "d", &vals[4], 100, 50);
    CHECK_INT(vals[1].freed, 0);
    CHECK_INT(vals[2].freed, 1);
    CHECK_INT(cache_count(c), 3);
    CHECK(cache_get(c, "a", 50, NULL) == &vals[1]);
    cache_free(c);
    CHECK_INT(frees, 4);
}

static void test_cache_evicts_all_expired_in_scan(void)
{
    cache_t *c = cache_new(4, val_free);

    reset();
    cache_put(c, "a", &vals[1], 10, 0);
    cache_put(c, "b", &vals[2], 10, 0);
    cache_put(c, "c", &vals[3], 100, 0);
    cache_put(c, "d", &vals[4], 10, 0);
    cache_put(c, "e", &vals[5], 100, 20);
    CHECK_INT(cache_count(c), 2);
    CHECK_INT(frees, 3);
    CHECK_INT(vals[3].freed, 0);
    cache_free(c);
    CHECK_INT(frees, 5);
}

static void test_cache_no_free_fn(void)
{
    cache_t *c = cache_new(1, NULL);
    int x = 1, y = 2;

    CHECK_INT(cache_put(c, "a", &x, 10, 0), 0);
    CHECK_INT(cache_put(c, "b", &y, 10, 0), 0);
    CHECK_INT(cache_count(c), 1);
    CHECK(cache_get(c, "b", 0, NULL) == &y);
    cache_free(c);
}

static void test_cache_resize_shrink(void)
{
    cache_t *c = cache_new(10, val_free);

    reset();
    for (int i = 0; i < 10; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        cache_put(c, key, &vals[i], 100, 0);
    }
    CHECK(cache_get(c, "k0", 0, NULL) == &vals[0]);
    cache_resize(c, 3);
    CHECK_INT(cache_count(c), 3);
    CHECK_INT(frees, 7);
    /* Kept: the three most recently used (k0 was touched last). */
    CHECK(cache_get(c, "k0", 0, NULL) == &vals[0]);
    CHECK(cache_get(c, "k9", 0, NULL) == &vals[9]);
    CHECK(cache_get(c, "k8", 0, NULL) == &vals[8]);
    CHECK_INT(vals[7].freed, 1);
    CHECK_INT(vals[1].freed, 1);
    cache_put(c, "k10", &vals[10], 100, 0);
    CHECK_INT(cache_count(c), 3);
    CHECK_INT(vals[0].freed, 1);
    /* Growing evicts nothing and lets it fill again. */
    cache_resize(c, 5);
    cache_put(c, "k11", &vals[11], 100, 0);
    cache_put(c, "k12", &vals[12], 100, 0);
    CHECK_INT(cache_count(c), 5);
    CHECK_INT(frees, 8);
    /* 0 is not a bound: it behaves as 1. */
    cache_resize(c, 0);
    CHECK_INT(cache_count(c), 1);
    CHECK(cache_get(c, "k12", 0, NULL) == &vals[12]);
    cache_free(c);
    CHECK_INT(frees, 13);
    for (int i = 0; i < 13; i++)
        CHECK_INT(vals[i].freed, 1);
}

#define MANY 100000

/* Names that share a long prefix and differ only at the end, as a flood of
 * "<random>.victim.example" names would. */
static void many_key(char *buf, size_t size, int i)
{
    snprintf(buf, size,
             "16:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.x%d",
             i);
}

static void count_free(void *p)
{
    (void)p;
    frees++;
}

static void test_cache_many_colliding_prefix(void)
{
    cache_t *c = cache_new(MANY, count_free);
    int *ids = malloc(MANY * sizeof *ids);
    char key[200];
    int wrong = 0;

    frees = 0;
    for (int i = 0; i < MANY; i++) {
        ids[i] = i;
        many_key(key, sizeof key, i);
        if (cache_put(c, key, &ids[i], 1000, 0) != 0)
            wrong++;
    }
    CHECK_INT(wrong, 0);
    CHECK_INT(cache_count(c), MANY);
    CHECK_INT(frees, 0);
    for (int i = 0; i < MANY; i++) {
        many_key(key, sizeof key, i);
        int *v = cache_get(c, key, 1, NULL);
        if (!v || *v != i)
            wrong++;
    }
    CHECK_INT(wrong, 0);
    /* One more than the bound evicts exactly one: x0, the least recently used. */
    many_key(key, sizeof key, MANY);
    cache_put(c, key, &ids[0], 1000, 1);
    CHECK_INT(cache_count(c), MANY);
    CHECK_INT(frees, 1);
    many_key(key, sizeof key, 0);
    CHECK(cache_get(c, key, 1, NULL) == NULL);
    for (int i = 1; i < MANY; i += 2) {
        many_key(key, sizeof key, i);
        if (cache_del(c, key) != 0)
            wrong++;
    }
    CHECK_INT(wrong, 0);
    CHECK_INT(cache_count(c), MANY / 2);
    for (int i = 2; i < MANY; i += 2) {
        many_key(key, sizeof key, i);
        int *v = cache_get(c, key, 1, NULL);
        if (!v || *v != i)
            wrong++;
    }
    CHECK_INT(wrong, 0);
    cache_free(c);
    CHECK_INT(frees, MANY + 1);
    free(ids);
}

int main(void)
{
    UNIT_RUN(test_cache_new_rejects_zero);
    UNIT_RUN(test_cache_get_put);
    UNIT_RUN(test_cache_empty_key);
    UNIT_RUN(test_cache_replace);
    UNIT_RUN(test_cache_del);
    UNIT_RUN(test_cache_expiry_boundary);
    UNIT_RUN(test_cache_lru_order);
    UNIT_RUN(test_cache_evicts_at_max);
    UNIT_RUN(test_cache_evicts_expired_first);
    UNIT_RUN(test_cache_evicts_all_expired_in_scan);
    UNIT_RUN(test_cache_no_free_fn);
    UNIT_RUN(test_cache_resize_shrink);
    UNIT_RUN(test_cache_many_colliding_prefix);
    return unit_report();
}
