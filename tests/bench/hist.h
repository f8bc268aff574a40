/* hist.h - the load generator's latency histogram: fixed memory, nothing allocated
 * per sample, under 1% relative error (HdrHistogram's log-linear bucketing).
 *
 * Values are whole microseconds. Values below 2 * HIST_SUB are kept exactly; above,
 * each power-of-two range is split into HIST_SUB equal buckets, so a bucket is never
 * wider than 1/HIST_SUB of its values. hist_new() allocates the whole table once;
 * hist_free() releases it. */
#ifndef HIST_H
#define HIST_H

#include <stdint.h>

/* 2^7 sub-buckets per power of two: a reported percentile is within 0.8% of the true
 * sample, finer than run-to-run noise on a shared machine. */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
/* Samples are clamped below 2^40 us (12 days): no reply is awaited that long, and the
 * table stays at 34 * 128 buckets (35 KiB). */
#define HIST_MAX_BITS 40

typedef struct hist hist_t;

hist_t *hist_new(void);
void hist_free(hist_t *h);
void hist_record(hist_t *h, uint64_t us);
uint64_t hist_count(const hist_t *h);
uint64_t hist_min(const hist_t *h);          /* exact; 0 when empty */
uint64_t hist_max(const hist_t *h);          /* exact; 0 when empty */
double hist_mean(const hist_t *h);           /* exact; 0 when empty */
/* The value at or below which pct percent (0 < pct <= 100) of the samples fall: the
 * top of the bucket holding that rank, never above the largest sample; 0 when empty. */
uint64_t hist_percentile(const hist_t *h, double pct);

#endif
