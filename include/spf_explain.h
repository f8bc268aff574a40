/* spf_explain.h - an SPF check told to people: the trace events of one check (spf.h)
 * rendered as an indented tree, then the result and warnings for administrators.
 *
 * Owns nothing but its counters and warnings: each event becomes one or more lines at
 * once, handed to the emit callback (stdout for --explain, later the control socket),
 * and spf_explain_finish() adds the summary and the warnings. Text from DNS is printed
 * with every byte outside printable ASCII as \xHH, so a record cannot forge lines.
 *
 * Warnings: several SPF records, a record over 450 bytes (RFC 7208 3.4), a record or a
 * check needing more than 10 DNS lookups or 2 void lookups (4.6.4), ptr (5.5: do not
 * use), +all, and includes that alone cost more than SPF_EXPLAIN_INCLUDE_COST lookups
 * (a provider's whole record, where a narrower one would do). */
#ifndef SPF_EXPLAIN_H
#define SPF_EXPLAIN_H

#include "spf.h"

/* Longest line handed to emit, NUL included; longer text is cut with "...". */
#define SPF_EXPLAIN_LINE_MAX 1024
/* Warnings kept: one per distinct problem and place; more are counted. */
#define SPF_EXPLAIN_MAX_WARNINGS 32
/* RFC 7208 3.4: records should stay under 450 bytes so an answer fits in 512. */
#define SPF_EXPLAIN_RECORD_BYTES 450
/* An include that alone costs more lookups than this takes a large share of the 10. */
#define SPF_EXPLAIN_INCLUDE_COST 4

typedef void spf_explain_emit(void *ctx, const char *line);
typedef struct spf_explain spf_explain_t;

spf_explain_t *spf_explain_new(spf_explain_emit *emit, void *ctx);
void spf_explain_free(spf_explain_t *x);
/* The trace hook (spf_trace_fn): ctx is the spf_explain_t. */
void spf_explain_event(void *ctx, const spf_trace_event_t *ev);
/* Emits the summary lines and the warnings (call once, after the verdict). */
void spf_explain_finish(spf_explain_t *x, const spf_verdict_t *v);

#endif
