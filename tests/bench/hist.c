/* hist.c - log-linear latency histogram (see hist.h). */
#include "hist.h"

#include <math.h>
#include <stdlib.h>

#define HIST_VALUE_LIMIT (((uint64_t)1 << HIST_MAX_BITS) - 1)
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
    uint64_t count, min, max;
    double sum;
    uint64_t bucket[HIST_BUCKETS];
};

hist_t *hist_new(void)
{
    return calloc(1, sizeof(hist_t));
}

void hist_free(hist_t *h)
{
    free(h);
}

/* Below 2 * HIST_SUB a value is its own bucket. Above, with e = (index of the top
 * bit) - HIST_SUB_BITS, the top HIST_SUB_BITS + 1 bits (v >> e, in [HIST_SUB,
 * 2 * HIST_SUB)) pick the bucket e * HIST_SUB + (v >> e), which continues the exact
 * range without a gap. */
static unsigned bucket_of(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (unsigned)v;
    unsigned e = (unsigned)(63 - __builtin_clzll(v)) - HIST_SUB_BITS;
    return e * HIST_SUB + (unsigned)(v >> e);
}

static uint64_t bucket_top(unsigned idx)
{
    if (idx < 2 * HIST_SUB)
        return idx;
    unsigned e = idx / HIST_SUB - 1;
    uint64_t s = idx - e * HIST_SUB;
    return ((s + 1) << e) - 1;
}

void hist_record(hist_t *h, uint64_t us)
{
    if (us > HIST_VALUE_LIMIT)
        us = HIST_VALUE_LIMIT;
    if (h->count == 0 || us < h->min)
        h->min = us;
    if (us > h->max)
        h->max = us;
    h->count++;
    h->sum += (double)us;
    h->bucket[bucket_of(us)]++;
}

uint64_t hist_count(const hist_t *h)
{
    return h->count;
}

uint64_t hist_min(const hist_t *h)
{
    return h->min;
}

uint64_t hist_max(const hist_t *h)
{
    return h->max;
}

double hist_mean(const hist_t *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}

uint64_t hist_percentile(const hist_t *h, double pct)
{
    if (h->count == 0)
        return 0;
    /* The rank of the sample asked for, 1-based: p50 of 4 samples is the 2nd. */
    uint64_t rank = (uint64_t)ceil(pct / 100.0 * (double)h->count);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t top = bucket_top(i);
            return top < h->max ? top : h->max;
        }
    }
    return h->max;
}
