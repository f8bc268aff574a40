/* spf.h - one SPF check (RFC 7208 check_host()) started, one callback with the verdict.
 *
 * Owns the SPF engine chosen by the config and the checks in progress, each with its
 * time budget timer. Two engines sit behind this interface: the native one
 * (spf_native.h: our own evaluator, driven by the DNS module's callbacks) and libspf2
 * (spf_libspf2.h: libspf2 evaluated through spf_dns, replayed once the DNS module has
 * fetched what was missing). The callback fires exactly once per spf_check (verdict,
 * timeout -> temperror, spf_free -> temperror), never before spf_check returns, and
 * not at all after spf_cancel. The verdict is valid only during the callback.
 *
 * A check may carry a trace hook (native engine only): the evaluator calls it for each
 * record fetched, term tried, include entered and left, and for the result, so a
 * person can see why (spf_explain.h renders it as a tree). Event data is valid only
 * during the hook call; the hook must not start or cancel checks. */
#ifndef SPF_H
#define SPF_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "netaddr.h"
#include "verdict.h"

struct ev_loop;
struct dns;

#define SPF_ERR_LEN 256
/* An explanation is one TXT record's expansion; RFC 7208 6.2 bounds nothing, we cut
 * it for the 550 reply line (RFC 5321 4.5.3.1.5: a reply line is at most 512). */
#define SPF_EXPLANATION_MAX 400
#define SPF_COMMENT_MAX 256
#define SPF_MECH_MAX 256

/* Which inputs besides the client IP and the domain a verdict depended on, so the
 * verdict cache can key on exactly those (macros %{l} %{s} %{h}; %{p} needs PTR). */
enum {
    SPF_USES_LOCALPART = 1 << 0,
    SPF_USES_HELO = 1 << 1,
};

typedef struct spf_query {
    netaddr_t ip;
    const char *sender;       /* "local@domain"; for the HELO identity "postmaster@helo" */
    const char *helo;         /* HELO/EHLO name as given, "" if none */
    enum spf_identity identity;
} spf_query_t;

typedef struct spf_verdict {
    enum spf_result result;
    const char *domain;       /* the domain checked */
    const char *explanation;  /* fail: expanded exp= text or the default; else "" */
    const char *comment;      /* why, for people: mechanism matched or error */
    const char *mechanism;    /* the mechanism that matched, "" if none */
    unsigned uses;            /* SPF_USES_* */
    double expires;           /* ev_now time when the DNS data behind it expires */
    unsigned dns_lookups;     /* terms that counted against the 10-lookup limit */
    unsigned void_lookups;
    unsigned replays;         /* evaluations run: libspf2 replays after each DNS miss
                                 (1 = none); the native engine never replays (1) */
} spf_verdict_t;

/* What the evaluator reports to a trace hook, in evaluation order. */
enum spf_trace_kind {
    SPF_TRACE_RECORD,      /* the SPF record of domain fetched (or why there is none) */
    SPF_TRACE_TERM,        /* a mechanism tried, or redirect=/exp= acted on */
    SPF_TRACE_INCLUDE,     /* include:text entered; the included record follows */
    SPF_TRACE_RETURN,      /* the included record's result */
    SPF_TRACE_RESULT,      /* the check's result; detail says why */
};

typedef struct spf_trace_event {
    enum spf_trace_kind kind;
    unsigned depth;           /* include nesting: 0 for the domain checked */
    const char *domain;       /* the domain whose record is evaluated */
    const char *text;         /* RECORD: record text or NULL; TERM, INCLUDE: term as
                                 written; RESULT: explanation ("" unless fail) */
    const char *detail;       /* what happened, for people, never NULL */
    int matched;              /* TERM: 1 matched, 0 did not, -1 error ended the check */
    enum spf_result result;   /* TERM (matched), RETURN, RESULT; RECORD: none, temperror
                                 or permerror when there is no usable record */
    unsigned records;         /* RECORD: SPF records found at domain */
    size_t record_len;        /* RECORD: bytes of the record */
    unsigned record_terms;    /* RECORD: DNS-querying terms the record itself holds */
    uint32_t ttl;             /* RECORD: TTL of the TXT answer */
    int counted;              /* TERM, INCLUDE: counted against the 10-lookup limit */
    int void_lookup;          /* TERM: its DNS query came back empty */
    unsigned lookups, voids;  /* counters of the check after this event */
} spf_trace_event_t;

typedef void spf_trace_fn(void *ctx, const spf_trace_event_t *ev);

typedef struct spf_options {
    enum engine engine;
    double timeout;           /* budget per check, seconds */
    const char *receiver;     /* %{r} */
    const char *default_explanation;   /* macro-string for fail without exp= */
} spf_options_t;

typedef struct spf spf_t;
typedef struct spf_check spf_check_t;
typedef void spf_cb(void *ctx, const spf_verdict_t *v);

spf_t *spf_new(struct ev_loop *loop, struct dns *dns, const spf_options_t *opt,
               char err[SPF_ERR_LEN]);
/* Ends pending checks with a temperror callback, then frees. */
void spf_free(spf_t *s);
void spf_reconfigure(spf_t *s, const spf_options_t *opt);
/* NULL only when out of memory (nothing started). */
spf_check_t *spf_check(spf_t *s, const spf_query_t *q, spf_cb *cb, void *ctx);
/* spf_check with a trace hook called during the evaluation (native engine; the
 * libspf2 engine never calls it). */
spf_check_t *spf_check_traced(spf_t *s, const spf_query_t *q, spf_trace_fn *trace,
                              void *trace_ctx, spf_cb *cb, void *ctx);
void spf_cancel(spf_check_t *c);
unsigned spf_pending(const spf_t *s);

#endif
