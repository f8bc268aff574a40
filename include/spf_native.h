/* spf_native.h - the native SPF engine: RFC 7208 check_host() (sections 4 and 5, with
 * errata) evaluated asynchronously over the DNS module.
 *
 * Owns its checks. Each check is a state machine with an explicit stack of records
 * (include pushes, redirect replaces the top); it suspends when an answer it needs is
 * missing and resumes in that lookup's callback, so nothing is ever evaluated twice.
 * Lookups that do not depend on each other go out together: when an SPF record
 * arrives, the lookups for every literal target in it (include and redirect TXT, a
 * and mx targets, exists, exp, the client's PTR for ptr) are issued at once, and when
 * an MX or PTR answer arrives, the addresses of all its names (up to 10). A check
 * keeps one reference to each answer it asked for, so it sees the same data from
 * start to end, and parses each record it fetched once.
 *
 * Limits (RFC 7208 4.6.4): 10 DNS-querying terms (include, a, mx, ptr, exists,
 * redirect) across includes and redirects, 2 void lookups, 10 MX names (more is a
 * permerror), 10 PTR names (the rest ignored); the time budget gives a temperror.
 * Callbacks: as spf.h says (exactly once, never before spf_native_check returns, not
 * after spf_native_cancel); the trace hook, when given, is called during the
 * evaluation. */
#ifndef SPF_NATIVE_H
#define SPF_NATIVE_H

#include "spf.h"

struct ev_loop;
struct dns;

/* RFC 7208 4.6.4. */
#define SPF_NATIVE_MAX_TERMS 10
#define SPF_NATIVE_MAX_VOIDS 2
#define SPF_NATIVE_MAX_MX 10
#define SPF_NATIVE_MAX_PTR 10
/* Every include costs one of the 10 terms, so the stack never holds more records
 * than the checked domain's plus 10 included ones. */
#define SPF_NATIVE_MAX_DEPTH (SPF_NATIVE_MAX_TERMS + 1)
/* (name, type) answers one check may hold. What an evaluation can need: its own
 * record, 10 terms, the addresses of 10 MX names for each, the PTR names of the client
 * for ptr and %{p} with their addresses, and exp= (1 + 10 + 100 + 11 + 2 < 128);
 * prefetching may take the rest. */
#define SPF_NATIVE_MAX_ANSWERS 256
/* Prefetching stops at this many answers held, so what the evaluation needs always
 * finds a free slot. */
#define SPF_NATIVE_PREFETCH_MAX (SPF_NATIVE_MAX_ANSWERS - 128)

typedef struct spf_native spf_native_t;
typedef struct spf_native_check spf_native_check_t;

spf_native_t *spf_native_new(struct ev_loop *loop, struct dns *dns, const spf_options_t *opt,
                             char err[SPF_ERR_LEN]);
/* Ends pending checks with a temperror callback, then frees. */
void spf_native_free(spf_native_t *n);
void spf_native_reconfigure(spf_native_t *n, const spf_options_t *opt);
/* q is borrowed for the call only. trace may be NULL. NULL only when out of memory. */
spf_native_check_t *spf_native_check(spf_native_t *n, const spf_query_t *q, spf_trace_fn *trace,
                                     void *trace_ctx, spf_cb *cb, void *ctx);
void spf_native_cancel(spf_native_check_t *c);
unsigned spf_native_pending(const spf_native_t *n);

#endif
