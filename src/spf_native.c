/* spf_native.c - RFC 7208 check_host() as an asynchronous state machine.
 *
 * A check holds a stack of frames, one per record being evaluated: the checked
 * domain's at the bottom, one more per include being evaluated; redirect= replaces
 * the top frame. run() steps the top frame until it needs an answer it does not have
 * (it records which in c->wait and returns), or the check ends. Every (name, type) the
 * check asks for lives in a slot, with the answer once it came; the slot's callback
 * stores the answer, issues the lookups that answer makes predictable (the literal
 * targets of an SPF record, the addresses of MX and PTR names) and resumes run() when
 * it was the one awaited. A term suspended in the middle is tried again from its start
 * on resume; its counters and trace are settled only when it ends, so that is cheap
 * and exact. Answers already in the DNS module's cache are taken at once (dns_peek),
 * so a check over cached data runs to the end in one go. */
#include "spf_native.h"

#include <ev.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns.h"
#include "spf_macro.h"
#include "spf_record.h"

/* "local@domain": a local part of up to 64 bytes (RFC 5321 4.5.3.1.1) is what SMTP
 * allows; the policy passes up to 255, and the domain is at most 253. */
#define NATIVE_SENDER_MAX 512
/* A verdict lives this long when no DNS answer behind it says otherwise (only a
 * check that needed no DNS at all: an invalid domain). */
#define NATIVE_DEFAULT_TTL 3600.0
/* Room for one line of trace detail: a DNS answer summarised for people. */
#define NATIVE_DETAIL_MAX 512
/* Addresses named in a trace line before "...". */
#define NATIVE_DETAIL_ADDRS 4
/* The default explanation as the config holds it (struct config). */
#define NATIVE_DEFAULT_EXP_MAX 512

enum step {
    STEP_CONTINUE,     /* go on stepping */
    STEP_WAIT,         /* suspended until c->wait answers */
    STEP_END,          /* the check finished: c may be gone */
};

enum term_outcome {
    TERM_MATCH,
    TERM_NO_MATCH,
    TERM_WAIT,
    TERM_PUSHED,       /* include: a frame for its target is on the stack */
    TERM_END,          /* the check finished (error) */
};

enum need {
    NEED_OK,
    NEED_WAIT,
    NEED_FAIL,         /* no lookup could be started */
};

typedef struct slot {
    spf_native_check_t *check;
    dns_lookup_t *lookup;          /* while in flight */
    const dns_answer_t *ans;       /* once answered: one reference */
    spf_record_t *rec;             /* TXT: the one SPF record, parsed */
    char *parse_err;               /* TXT: why that record did not parse */
    const char *spf_text;          /* TXT: the SPF record's text, inside ans */
    size_t spf_len;
    unsigned nspf;                 /* TXT: v=spf1 records in the answer */
    int type;
    int used;                      /* the evaluation read it: its TTL counts */
    char name[DNS_NAME_MAX + 1];
} slot_t;

typedef struct frame {
    const spf_record_t *rec;       /* NULL until fetched */
    size_t term;                   /* the term being tried; nterms: modifiers */
    int redirected;                /* entered through redirect= */
    int invalid;                   /* domain is not a valid DNS name */
    unsigned lookups_at_entry;     /* the check's term count when it was entered */
    char domain[DNS_NAME_MAX + 1];
} frame_t;

enum phase { PHASE_TERMS, PHASE_EXPLAIN };

struct spf_native_check {
    spf_native_t *n;
    spf_cb *cb;
    void *ctx;
    spf_trace_fn *trace;
    void *trace_ctx;
    netaddr_t ip;
    char sender[NATIVE_SENDER_MAX];
    char local[NATIVE_SENDER_MAX];
    char sender_domain[DNS_NAME_MAX + 1];
    char helo[DNS_NAME_MAX + 1];
    ev_timer budget;
    ev_timer deliver;              /* a verdict reached inside spf_native_check */
    int starting, finished;
    slot_t *wait;
    size_t nslots;
    slot_t *slots[SPF_NATIVE_MAX_ANSWERS];
    size_t depth;
    frame_t stack[SPF_NATIVE_MAX_DEPTH];
    enum phase phase;
    unsigned lookups, voids, uses;

    /* The term being tried on the top frame. */
    int term_started;              /* counted against the limit */
    int target_ready, target_valid;
    char target[DNS_NAME_MAX + 1];

    /* %{p}: the client's validated names (RFC 7208 5.5), found once per check. */
    int ptr_done;
    const dns_answer_t *ptr_ans;   /* borrowed from its slot */
    unsigned char ptr_valid[SPF_NATIVE_MAX_PTR];

    /* PHASE_EXPLAIN */
    int exp_default;               /* exp= unusable: expand the default instead */
    char exp_why[128];

    /* The verdict. */
    enum spf_result result;
    char domain[DNS_NAME_MAX + 1];
    char comment[SPF_COMMENT_MAX];
    char mechanism[SPF_MECH_MAX];
    char explanation[SPF_EXPLANATION_MAX + 1];
    char matched[SPF_MECH_MAX];    /* innermost term that matched, and where */
    char matched_in[DNS_NAME_MAX + 1];

    spf_native_check_t *prev, *next;
};

struct spf_native {
    struct ev_loop *loop;
    dns_t *dns;
    double timeout;
    char receiver[DNS_NAME_MAX + 1];
    char default_explanation[NATIVE_DEFAULT_EXP_MAX];
    unsigned npending;
    spf_native_check_t *checks;
};

static void run(spf_native_check_t *c);

/* ---- names and addresses ---- */

/* RFC 7208 4.3: a domain to check must be a valid, multi-label name. */
static int domain_checkable(const char *name)
{
    return strchr(name, '.') != NULL;
}

/* name equals domain or is below it. Both normalized. */
static int name_within(const char *name, const char *domain)
{
    size_t nl = strlen(name), dl = strlen(domain);

    if (nl == dl)
        return strcmp(name, domain) == 0;
    return nl > dl && name[nl - dl - 1] == '.' && strcmp(name + nl - dl, domain) == 0;
}

static int prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned bytes = bits / 8, rest = bits % 8;

    if (memcmp(a, b, bytes) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return ((a[bytes] ^ b[bytes]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static int addr_type(const spf_native_check_t *c)
{
    return c->ip.family == AF_INET6 ? DNS_T_AAAA : DNS_T_A;
}

/* The index of the first address of ans (A or AAAA) inside the client's network of
 * the given prefix, or -1. */
static int answer_match(const spf_native_check_t *c, const dns_answer_t *ans, unsigned cidr4,
                        unsigned cidr6)
{
    for (size_t i = 0; ans->status == DNS_OK && i < ans->count; i++) {
        if (ans->type == DNS_T_A && c->ip.family == AF_INET &&
            prefix_match((const uint8_t *)&ans->rr[i].u.a, c->ip.addr, cidr4))
            return (int)i;
        if (ans->type == DNS_T_AAAA && c->ip.family == AF_INET6 &&
            prefix_match(ans->rr[i].u.aaaa.s6_addr, c->ip.addr, cidr6))
            return (int)i;
    }
    return -1;
}

static int is_void(const dns_answer_t *a)
{
    return a->status == DNS_NXDOMAIN || a->status == DNS_NODATA;
}

static int is_dns_error(const dns_answer_t *a)
{
    return a->status == DNS_SERVFAIL || a->status == DNS_TIMEOUT || a->status == DNS_SHUTDOWN;
}

static int printable_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* snprintf for texts meant for people, where cutting a long name short is fine. */
static void say(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static enum spf_result qualifier_result(char q)
{
    switch (q) {
    case '-': return SPF_RES_FAIL;
    case '~': return SPF_RES_SOFTFAIL;
    case '?': return SPF_RES_NEUTRAL;
    default: return SPF_RES_PASS;
    }
}

/* The term as written, without its qualifier: what Received-SPF calls the mechanism. */
static const char *term_bare(const spf_term_t *t)
{
    const char *s = t->text;

    return (*s == '+' || *s == '-' || *s == '~' || *s == '?') ? s + 1 : s;
}

static int term_counts(const spf_term_t *t)
{
    return t->mech == SPF_MECH_INCLUDE || t->mech == SPF_MECH_A || t->mech == SPF_MECH_MX ||
           t->mech == SPF_MECH_PTR || t->mech == SPF_MECH_EXISTS;
}

/* ---- trace ---- */

static void trace_emit(spf_native_check_t *c, spf_trace_event_t *ev)
{
    ev->lookups = c->lookups;
    ev->voids = c->voids;
    if (!ev->detail)
        ev->detail = "";
    c->trace(c->trace_ctx, ev);
}

static void trace_term(spf_native_check_t *c, const spf_term_t *t, const char *text, int matched,
                       enum spf_result result, int counted, int void_lookup, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
static void trace_term(spf_native_check_t *c, const spf_term_t *t, const char *text, int matched,
                       enum spf_result result, int counted, int void_lookup, const char *fmt, ...)
{
    spf_trace_event_t ev;
    char detail[NATIVE_DETAIL_MAX];
    va_list ap;

    if (!c->trace)
        return;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    memset(&ev, 0, sizeof(ev));
    ev.kind = SPF_TRACE_TERM;
    ev.depth = (unsigned)c->depth - 1;
    ev.domain = c->stack[c->depth - 1].domain;
    ev.text = t ? t->text : text;
    ev.detail = detail;
    ev.matched = matched;
    ev.result = result;
    ev.counted = counted;
    ev.void_lookup = void_lookup;
    trace_emit(c, &ev);
}

/* "A example.com: 192.0.2.1 192.0.2.2" (the answer for people). */
static void describe_answer(char *out, size_t len, const dns_answer_t *a)
{
    size_t o;
    int n = snprintf(out, len, "%s %s:", dns_type_name(a->type), a->name);

    o = n > 0 && (size_t)n < len ? (size_t)n : len - 1;
    if (a->status != DNS_OK) {
        snprintf(out + o, len - o, " %s", dns_status_name(a->status));
        return;
    }
    for (size_t i = 0; i < a->count && o + 1 < len; i++) {
        char buf[NETADDR_STRLEN];
        const char *s = buf;
        netaddr_t na;
        if (i == NATIVE_DETAIL_ADDRS) {
            snprintf(out + o, len - o, " ... (%zu in all)", a->count);
            return;
        }
        memset(&na, 0, sizeof(na));
        switch (a->type) {
        case DNS_T_A:
            na.family = AF_INET;
            memcpy(na.addr, &a->rr[i].u.a, 4);
            netaddr_format(&na, buf, sizeof(buf));
            break;
        case DNS_T_AAAA:
            na.family = AF_INET6;
            memcpy(na.addr, &a->rr[i].u.aaaa, 16);
            netaddr_format(&na, buf, sizeof(buf));
            break;
        case DNS_T_MX:
            s = a->rr[i].u.mx.name;
            break;
        case DNS_T_PTR:
            s = a->rr[i].u.ptr;
            break;
        default:
            s = "(text)";
            break;
        }
        n = snprintf(out + o, len - o, " %s", *s ? s : ".");
        o = n > 0 && o + (size_t)n < len ? o + (size_t)n : len - 1;
    }
}

/* ---- the verdict ---- */

static void check_free(spf_native_check_t *c)
{
    spf_native_t *n = c->n;

    ev_timer_stop(n->loop, &c->budget);
    ev_timer_stop(n->loop, &c->deliver);
    for (size_t i = 0; i < c->nslots; i++) {
        slot_t *s = c->slots[i];
        if (s->lookup)
            dns_cancel(s->lookup);
        if (s->ans)
            dns_answer_unref(s->ans);
        spf_record_free(s->rec);
        free(s->parse_err);
        free(s);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        n->checks = c->next;
    if (c->next)
        c->next->prev = c->prev;
    n->npending--;
    free(c);
}

static double verdict_expires(const spf_native_check_t *c)
{
    double now = ev_now(c->n->loop), expires = now + NATIVE_DEFAULT_TTL;

    if (c->result == SPF_RES_TEMPERROR)
        return now;
    for (size_t i = 0; i < c->nslots; i++)
        if (c->slots[i]->used && c->slots[i]->ans && c->slots[i]->ans->expires < expires)
            expires = c->slots[i]->ans->expires;
    return expires;
}

static void deliver(spf_native_check_t *c)
{
    spf_verdict_t v;

    memset(&v, 0, sizeof(v));
    v.result = c->result;
    v.domain = c->domain;
    v.explanation = c->explanation;
    v.comment = c->comment;
    v.mechanism = c->mechanism;
    v.uses = c->uses;
    v.expires = verdict_expires(c);
    v.dns_lookups = c->lookups;
    v.void_lookups = c->voids;
    v.replays = 1;
    c->cb(c->ctx, &v);
    check_free(c);
}

static void deliver_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    deliver(w->data);
}

/* The one place a check ends, with c->comment already written. Inside
 * spf_native_check the callback waits for the next loop turn (never before the call
 * returns). */
static void finish_now(spf_native_check_t *c, enum spf_result result)
{
    c->finished = 1;
    c->result = result;
    ev_timer_stop(c->n->loop, &c->budget);
    for (size_t i = 0; i < c->nslots; i++) {
        if (c->slots[i]->lookup) {
            dns_cancel(c->slots[i]->lookup);
            c->slots[i]->lookup = NULL;
        }
    }
    if (c->trace) {
        spf_trace_event_t ev;
        memset(&ev, 0, sizeof(ev));
        ev.kind = SPF_TRACE_RESULT;
        ev.domain = c->domain;
        ev.text = c->explanation;
        ev.detail = c->comment;
        ev.result = result;
        trace_emit(c, &ev);
    }
    if (c->starting) {
        ev_timer_start(c->n->loop, &c->deliver);
        return;
    }
    deliver(c);
}

static void finish(spf_native_check_t *c, enum spf_result result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void finish(spf_native_check_t *c, enum spf_result result, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->comment, sizeof(c->comment), fmt, ap);
    va_end(ap);
    finish_now(c, result);
}

/* ---- slots: what the check asked the DNS ---- */

static slot_t *slot_find(const spf_native_check_t *c, const char *name, int type)
{
    for (size_t i = 0; i < c->nslots; i++)
        if (c->slots[i]->type == type && strcmp(c->slots[i]->name, name) == 0)
            return c->slots[i];
    return NULL;
}

static void prefetch(spf_native_check_t *c, const char *name, int type);

/* The literal targets of a record at domain, for the first 10 terms that query DNS
 * (beyond them the check is a permerror anyway). */
static void prefetch_record(spf_native_check_t *c, const spf_record_t *r, const char *domain)
{
    char name[DNS_NAME_MAX + 1];
    unsigned terms = 0;

    for (size_t i = 0; i < r->nterms && terms < SPF_NATIVE_MAX_TERMS; i++) {
        const spf_term_t *t = &r->terms[i];
        const char *spec = t->domain_spec;
        int type;
        if (!term_counts(t))
            continue;
        terms++;
        switch (t->mech) {
        case SPF_MECH_INCLUDE: type = DNS_T_TXT; break;
        case SPF_MECH_A: type = addr_type(c); break;
        case SPF_MECH_MX: type = DNS_T_MX; break;
        case SPF_MECH_EXISTS: type = DNS_T_A; break;
        default:
            if (netaddr_reverse_name(&c->ip, name, sizeof(name)))
                prefetch(c, name, DNS_T_PTR);
            continue;
        }
        if (!spec)
            prefetch(c, domain, type);
        else if (!strchr(spec, '%') && dns_name_normalize(name, spec, strlen(spec)) == 0)
            prefetch(c, name, type);
    }
    if (r->redirect && !strchr(r->redirect, '%') &&
        dns_name_normalize(name, r->redirect, strlen(r->redirect)) == 0)
        prefetch(c, name, DNS_T_TXT);
    if (r->exp && !strchr(r->exp, '%') && dns_name_normalize(name, r->exp, strlen(r->exp)) == 0)
        prefetch(c, name, DNS_T_TXT);
}

/* An answer came for s: keep it, and ask at once for what it makes predictable. */
static void slot_answered(slot_t *s, const dns_answer_t *a)
{
    spf_native_check_t *c = s->check;
    char name[DNS_NAME_MAX + 1];

    s->lookup = NULL;
    s->ans = dns_answer_ref(a);
    if (a->status != DNS_OK)
        return;
    switch (a->type) {
    case DNS_T_TXT:
        for (size_t i = 0; i < a->count; i++) {
            if (spf_record_is_spf(a->rr[i].u.txt.data, a->rr[i].u.txt.len)) {
                s->spf_text = a->rr[i].u.txt.data;
                s->spf_len = a->rr[i].u.txt.len;
                s->nspf++;
            }
        }
        if (s->nspf == 1) {
            char err[SPF_RECORD_ERR_LEN];
            if (spf_record_parse(s->spf_text, s->spf_len, &s->rec, err) < 0) {
                s->rec = NULL;
                s->parse_err = strdup(err);
            } else {
                prefetch_record(c, s->rec, s->name);
            }
        }
        break;
    case DNS_T_MX:
        for (size_t i = 0; a->count <= SPF_NATIVE_MAX_MX && i < a->count; i++)
            if (dns_name_normalize(name, a->rr[i].u.mx.name, strlen(a->rr[i].u.mx.name)) == 0)
                prefetch(c, name, addr_type(c));
        break;
    case DNS_T_PTR:
        for (size_t i = 0; i < a->count && i < SPF_NATIVE_MAX_PTR; i++)
            if (dns_name_normalize(name, a->rr[i].u.ptr, strlen(a->rr[i].u.ptr)) == 0)
                prefetch(c, name, addr_type(c));
        break;
    default:
        break;
    }
}

static void slot_cb(void *ctx, const dns_answer_t *a)
{
    slot_t *s = ctx;
    spf_native_check_t *c = s->check;

    if (a->status == DNS_SHUTDOWN) {
        s->lookup = NULL;
        finish(c, SPF_RES_TEMPERROR, "shutting down");
        return;
    }
    slot_answered(s, a);
    if (c->wait == s) {
        c->wait = NULL;
        run(c);
    }
}

/* Opens a slot for a normalized name: from the DNS cache at once, else a lookup. */
static slot_t *slot_open(spf_native_check_t *c, const char *name, int type, const dns_answer_t *cached)
{
    slot_t *s;

    if (c->nslots == SPF_NATIVE_MAX_ANSWERS)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->check = c;
    s->type = type;
    snprintf(s->name, sizeof(s->name), "%s", name);
    c->slots[c->nslots++] = s;
    if (cached) {
        slot_answered(s, cached);
        return s;
    }
    s->lookup = dns_lookup(c->n->dns, name, type, slot_cb, s);
    if (!s->lookup) {
        c->nslots--;
        free(s);
        return NULL;
    }
    return s;
}

/* A lookup the evaluation will probably need. What the DNS module has cached is left
 * there until the evaluation asks. */
static void prefetch(spf_native_check_t *c, const char *name, int type)
{
    if (c->nslots >= SPF_NATIVE_PREFETCH_MAX || slot_find(c, name, type) ||
        dns_peek(c->n->dns, name, type))
        return;
    slot_open(c, name, type, NULL);
}

/* The answer for a normalized (name, type): NEED_OK with *out, or NEED_WAIT with
 * c->wait set, or NEED_FAIL. */
static enum need need(spf_native_check_t *c, const char *name, int type, const dns_answer_t **out)
{
    slot_t *s = slot_find(c, name, type);

    if (!s) {
        s = slot_open(c, name, type, dns_peek(c->n->dns, name, type));
        if (!s)
            return NEED_FAIL;
    }
    if (!s->ans) {
        c->wait = s;
        return NEED_WAIT;
    }
    s->used = 1;
    *out = s->ans;
    return NEED_OK;
}

/* ---- macros ---- */

static unsigned uses_of(unsigned macro_uses)
{
    return (macro_uses & SPF_MACRO_USES_LOCALPART ? SPF_USES_LOCALPART : 0) |
           (macro_uses & SPF_MACRO_USES_HELO ? SPF_USES_HELO : 0);
}

/* %{p}: looks up the client's PTR names (the first 10) and their addresses, once.
 * NEED_OK when done, or NEED_WAIT; any DNS trouble (even a lookup that cannot start)
 * just leaves fewer validated names, down to "unknown". */
static enum need ptr_resolve(spf_native_check_t *c)
{
    char rev[DNS_NAME_MAX + 1], name[DNS_NAME_MAX + 1];
    const dns_answer_t *a, *b;
    enum need r;

    if (c->ptr_done)
        return NEED_OK;
    if (!netaddr_reverse_name(&c->ip, rev, sizeof(rev))) {
        c->ptr_done = 1;
        return NEED_OK;
    }
    r = need(c, rev, DNS_T_PTR, &a);
    if (r == NEED_WAIT)
        return r;
    if (r == NEED_FAIL) {
        c->ptr_done = 1;
        return NEED_OK;
    }
    for (size_t i = 0; a->status == DNS_OK && i < a->count && i < SPF_NATIVE_MAX_PTR; i++) {
        if (dns_name_normalize(name, a->rr[i].u.ptr, strlen(a->rr[i].u.ptr)) < 0)
            continue;
        r = need(c, name, addr_type(c), &b);
        if (r == NEED_WAIT)
            return r;
        c->ptr_valid[i] = r == NEED_OK && answer_match(c, b, 32, 128) >= 0;
    }
    c->ptr_ans = a;
    c->ptr_done = 1;
    return NEED_OK;
}

/* RFC 7208 7.3 p: a validated name at or below domain if there is one, else any
 * validated name, else "unknown". */
static const char *ptr_name(spf_native_check_t *c, const char *domain, char out[DNS_NAME_MAX + 1])
{
    const char *any = NULL;

    for (size_t i = 0; c->ptr_ans && i < c->ptr_ans->count && i < SPF_NATIVE_MAX_PTR; i++) {
        const char *p = c->ptr_ans->rr[i].u.ptr;
        if (!c->ptr_valid[i] || dns_name_normalize(out, p, strlen(p)) < 0)
            continue;
        if (name_within(out, domain))
            return out;
        if (!any)
            any = p;
    }
    if (any && dns_name_normalize(out, any, strlen(any)) == 0)
        return out;
    return "unknown";
}

/* Expands a macro-string for the frame's domain into out. NEED_OK (0 written into
 * *ok when it could not be expanded), or NEED_WAIT for %{p}; never NEED_FAIL. */
static enum need expand(spf_native_check_t *c, const char *domain, const char *text, size_t len,
                        int explanation, int is_domain, char *out, size_t outlen, int *ok)
{
    spf_macro_ctx_t m;
    char ptrbuf[DNS_NAME_MAX + 1], err[SPF_MACRO_ERR_LEN];
    unsigned u;

    if (!memchr(text, '%', len)) {
        *ok = len < outlen;
        if (*ok) {
            memcpy(out, text, len);
            out[len] = '\0';
        }
        return NEED_OK;
    }
    u = spf_macro_uses(text, len);
    c->uses |= uses_of(u);
    if (u & SPF_MACRO_USES_PTR) {
        enum need r = ptr_resolve(c);
        if (r != NEED_OK)
            return r;
    }
    memset(&m, 0, sizeof(m));
    m.sender = c->sender;
    m.local = c->local;
    m.sender_domain = c->sender_domain;
    m.domain = domain;
    m.ip = &c->ip;
    m.helo = c->helo;
    m.receiver = c->n->receiver;
    m.ptr_name = (u & SPF_MACRO_USES_PTR) ? ptr_name(c, domain, ptrbuf) : NULL;
    m.now = (long long)ev_now(c->n->loop);
    *ok = spf_macro_expand(text, len, &m, explanation, is_domain, out, outlen, err) == 0;
    return NEED_OK;
}

/* The current term's target name: its domain-spec expanded, or the frame's domain. */
static enum need term_target(spf_native_check_t *c, const frame_t *f, const char *spec)
{
    char buf[SPF_MACRO_OUT_MAX];
    int ok;
    enum need r;

    if (c->target_ready)
        return NEED_OK;
    if (!spec) {
        snprintf(c->target, sizeof(c->target), "%s", f->domain);
        c->target_valid = 1;
        c->target_ready = 1;
        return NEED_OK;
    }
    r = expand(c, f->domain, spec, strlen(spec), 0, 1, buf, sizeof(buf), &ok);
    if (r != NEED_OK)
        return r;
    c->target_valid = ok && dns_name_normalize(c->target, buf, strlen(buf)) == 0;
    if (!c->target_valid)
        snprintf(c->target, sizeof(c->target), "%.*s", DNS_NAME_MAX, ok ? buf : spec);
    c->target_ready = 1;
    return NEED_OK;
}

/* ---- terms ---- */

static void term_reset(spf_native_check_t *c)
{
    c->term_started = 0;
    c->target_ready = 0;
    c->target_valid = 0;
}

static enum term_outcome term_error(spf_native_check_t *c, const spf_term_t *t, const char *text,
                                    enum spf_result result, const char *why)
{
    trace_term(c, t, text, -1, result, t ? term_counts(t) : 1, 0, "%s", why);
    finish(c, result, "%s", why);
    return TERM_END;
}

static enum term_outcome need_error(spf_native_check_t *c, const spf_term_t *t)
{
    return term_error(c, t, NULL, SPF_RES_TEMPERROR, "no DNS lookup could be started");
}

/* Counts a void lookup of term t; TERM_END when it is one too many. */
static int count_void(spf_native_check_t *c, const spf_term_t *t, const dns_answer_t *a)
{
    char why[SPF_COMMENT_MAX];

    if (++c->voids <= SPF_NATIVE_MAX_VOIDS)
        return 0;
    say(why, sizeof(why), "more than %d void DNS lookups (%s %s: %s)", SPF_NATIVE_MAX_VOIDS,
             dns_type_name(a->type), a->name, dns_status_name(a->status));
    term_error(c, t, NULL, SPF_RES_PERMERROR, why);
    return -1;
}

static enum term_outcome dns_error(spf_native_check_t *c, const spf_term_t *t, const dns_answer_t *a)
{
    char why[SPF_COMMENT_MAX];

    say(why, sizeof(why), "DNS error looking up %s %s: %s", dns_type_name(a->type), a->name,
             dns_status_name(a->status));
    return term_error(c, t, NULL, SPF_RES_TEMPERROR, why);
}

static enum term_outcome term_done(spf_native_check_t *c, const spf_term_t *t, int matched,
                                   int void_lookup, const char *detail)
{
    trace_term(c, t, NULL, matched, matched ? qualifier_result(t->qualifier) : SPF_RES_NONE,
               term_counts(t), void_lookup, "%s", detail);
    return matched ? TERM_MATCH : TERM_NO_MATCH;
}

/* The answer for the target of an a, mx or exists term: 1 with *a set, or 0 with *out
 * saying how the term ends without one (an invalid target does not match, a lookup
 * on its way waits, a DNS error ends the check). */
static int target_answer(spf_native_check_t *c, const spf_term_t *t, int type,
                         const dns_answer_t **a, enum term_outcome *out)
{
    char detail[NATIVE_DETAIL_MAX] = "";

    if (!c->target_valid) {
        if (c->trace)
            say(detail, sizeof(detail), "'%s' is not a valid domain name", c->target);
        *out = term_done(c, t, 0, 0, detail);
        return 0;
    }
    switch (need(c, c->target, type, a)) {
    case NEED_WAIT:
        *out = TERM_WAIT;
        return 0;
    case NEED_FAIL:
        *out = need_error(c, t);
        return 0;
    case NEED_OK:
        break;
    }
    if (is_dns_error(*a)) {
        *out = dns_error(c, t, *a);
        return 0;
    }
    return 1;
}

static enum term_outcome term_a(spf_native_check_t *c, const spf_term_t *t)
{
    enum term_outcome out;
    const dns_answer_t *a;
    char detail[NATIVE_DETAIL_MAX] = "";
    int hit;

    if (!target_answer(c, t, addr_type(c), &a, &out))
        return out;
    if (is_void(a) && count_void(c, t, a) < 0)
        return TERM_END;
    hit = answer_match(c, a, t->cidr4, t->cidr6) >= 0;
    if (c->trace)
        describe_answer(detail, sizeof(detail), a);
    return term_done(c, t, hit, is_void(a), detail);
}

static enum term_outcome term_mx(spf_native_check_t *c, const spf_term_t *t)
{
    enum term_outcome out;
    const dns_answer_t *a, *b;
    char name[DNS_NAME_MAX + 1], detail[NATIVE_DETAIL_MAX] = "", why[SPF_COMMENT_MAX];
    int hit;

    if (!target_answer(c, t, DNS_T_MX, &a, &out))
        return out;
    if (is_void(a)) {
        if (count_void(c, t, a) < 0)
            return TERM_END;
        if (c->trace)
            describe_answer(detail, sizeof(detail), a);
        return term_done(c, t, 0, 1, detail);
    }
    if (a->count > SPF_NATIVE_MAX_MX) {
        say(why, sizeof(why), "more than %d MX names for %s (%zu)", SPF_NATIVE_MAX_MX,
                 a->name, a->count);
        return term_error(c, t, NULL, SPF_RES_PERMERROR, why);
    }
    /* Every exchange's lookup is out already (slot_answered): wait for them in order. */
    if (c->trace)
        describe_answer(detail, sizeof(detail), a);
    for (size_t i = 0; i < a->count; i++) {
        const char *x = a->rr[i].u.mx.name;
        /* A null MX (RFC 7505, exchange ".") names no host. */
        if (dns_name_normalize(name, x, strlen(x)) < 0)
            continue;
        switch (need(c, name, addr_type(c), &b)) {
        case NEED_WAIT: return TERM_WAIT;
        case NEED_FAIL: return need_error(c, t);
        case NEED_OK: break;
        }
        if (is_dns_error(b))
            return dns_error(c, t, b);
        hit = answer_match(c, b, t->cidr4, t->cidr6) >= 0;
        if (c->trace) {
            size_t o = strlen(detail);
            if (o + 2 < sizeof(detail)) {
                memcpy(detail + o, "; ", 3);
                describe_answer(detail + o + 2, sizeof(detail) - o - 2, b);
            }
        }
        if (hit)
            return term_done(c, t, 1, 0, detail);
    }
    return term_done(c, t, 0, 0, detail);
}

/* RFC 7208 5.5: the client's PTR names (the first 10) that validate (their addresses
 * include the client) and are at or below the target. DNS errors: the PTR lookup's
 * makes no match, an address lookup's skips that name. */
static enum term_outcome term_ptr(spf_native_check_t *c, const spf_term_t *t)
{
    const dns_answer_t *a, *b;
    char rev[DNS_NAME_MAX + 1], name[DNS_NAME_MAX + 1], detail[NATIVE_DETAIL_MAX] = "";

    if (!c->target_valid) {
        if (c->trace)
            say(detail, sizeof(detail), "'%s' is not a valid domain name", c->target);
        return term_done(c, t, 0, 0, detail);
    }
    if (!netaddr_reverse_name(&c->ip, rev, sizeof(rev)))
        return term_done(c, t, 0, 0, "the client address has no reverse name");
    switch (need(c, rev, DNS_T_PTR, &a)) {
    case NEED_WAIT: return TERM_WAIT;
    case NEED_FAIL: return need_error(c, t);
    case NEED_OK: break;
    }
    if (is_void(a) && count_void(c, t, a) < 0)
        return TERM_END;
    if (c->trace)
        describe_answer(detail, sizeof(detail), a);
    for (size_t i = 0; a->status == DNS_OK && i < a->count && i < SPF_NATIVE_MAX_PTR; i++) {
        if (dns_name_normalize(name, a->rr[i].u.ptr, strlen(a->rr[i].u.ptr)) < 0 ||
            !name_within(name, c->target))
            continue;
        switch (need(c, name, addr_type(c), &b)) {
        case NEED_WAIT: return TERM_WAIT;
        case NEED_FAIL: return need_error(c, t);
        case NEED_OK: break;
        }
        if (answer_match(c, b, 32, 128) >= 0) {
            if (c->trace)
                say(detail, sizeof(detail), "validated PTR name %s", name);
            return term_done(c, t, 1, 0, detail);
        }
    }
    return term_done(c, t, 0, is_void(a), detail);
}

static enum term_outcome term_exists(spf_native_check_t *c, const spf_term_t *t)
{
    enum term_outcome out;
    const dns_answer_t *a;
    char detail[NATIVE_DETAIL_MAX] = "";

    /* RFC 7208 5.7: always an A query, whatever the client's address family. */
    if (!target_answer(c, t, DNS_T_A, &a, &out))
        return out;
    if (is_void(a) && count_void(c, t, a) < 0)
        return TERM_END;
    if (c->trace)
        describe_answer(detail, sizeof(detail), a);
    return term_done(c, t, a->status == DNS_OK && a->count > 0, is_void(a), detail);
}

static enum term_outcome term_ip(spf_native_check_t *c, const spf_term_t *t)
{
    int hit;

    if (t->mech == SPF_MECH_IP4)
        hit = c->ip.family == AF_INET && prefix_match(t->addr, c->ip.addr, t->cidr4);
    else
        hit = c->ip.family == AF_INET6 && prefix_match(t->addr, c->ip.addr, t->cidr6);
    return term_done(c, t, hit, 0, "");
}

static enum term_outcome term_include(spf_native_check_t *c, const spf_term_t *t)
{
    frame_t *f;

    if (c->depth == SPF_NATIVE_MAX_DEPTH)
        return term_error(c, t, NULL, SPF_RES_PERMERROR, "includes nested too deep");
    f = &c->stack[c->depth++];
    memset(f, 0, sizeof(*f));
    snprintf(f->domain, sizeof(f->domain), "%s", c->target);
    f->invalid = !c->target_valid;
    f->lookups_at_entry = c->lookups;
    if (c->trace) {
        spf_trace_event_t ev;
        memset(&ev, 0, sizeof(ev));
        ev.kind = SPF_TRACE_INCLUDE;
        ev.depth = (unsigned)c->depth - 2;
        ev.domain = c->stack[c->depth - 2].domain;
        ev.text = t->text;
        ev.counted = 1;
        trace_emit(c, &ev);
    }
    return TERM_PUSHED;
}

static enum term_outcome term_eval(spf_native_check_t *c, frame_t *f, const spf_term_t *t)
{
    if (!c->term_started) {
        c->term_started = 1;
        if (term_counts(t) && ++c->lookups > SPF_NATIVE_MAX_TERMS)
            return term_error(c, t, NULL, SPF_RES_PERMERROR, "more than 10 DNS-querying terms");
    }
    if (term_counts(t) && term_target(c, f, t->domain_spec) == NEED_WAIT)
        return TERM_WAIT;
    switch (t->mech) {
    case SPF_MECH_ALL: return term_done(c, t, 1, 0, "");
    case SPF_MECH_IP4:
    case SPF_MECH_IP6: return term_ip(c, t);
    case SPF_MECH_A: return term_a(c, t);
    case SPF_MECH_MX: return term_mx(c, t);
    case SPF_MECH_PTR: return term_ptr(c, t);
    case SPF_MECH_EXISTS: return term_exists(c, t);
    case SPF_MECH_INCLUDE: return term_include(c, t);
    }
    return term_error(c, t, NULL, SPF_RES_PERMERROR, "unknown mechanism");
}

/* ---- records ---- */

static void trace_record(spf_native_check_t *c, const frame_t *f, const slot_t *s,
                         enum spf_result result, const char *detail)
{
    spf_trace_event_t ev;

    if (!c->trace)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.kind = SPF_TRACE_RECORD;
    ev.depth = (unsigned)c->depth - 1;
    ev.domain = f->domain;
    ev.detail = detail;
    ev.result = result;
    if (s && s->ans) {
        ev.ttl = s->ans->ttl;
        ev.records = s->nspf;
        if (s->nspf == 1) {
            ev.text = s->spf_text;
            ev.record_len = s->spf_len;
            ev.record_terms = s->rec ? s->rec->dns_terms : 0;
        }
    }
    trace_emit(c, &ev);
}

/* A frame's record is missing or unusable: none for the checked domain, permerror for
 * include and redirect targets (RFC 7208 5.2, 6.1), temperror on DNS errors. */
static enum step record_problem(spf_native_check_t *c, frame_t *f, const slot_t *s,
                                enum spf_result result, const char *why)
{
    char buf[SPF_COMMENT_MAX];

    if (result == SPF_RES_NONE && (f->redirected || c->depth > 1)) {
        say(buf, sizeof(buf), "%s%s: %s", f->redirected ? "redirect=" : "include:", f->domain,
            why);
        why = buf;
        result = SPF_RES_PERMERROR;
    }
    trace_record(c, f, s, result, why);
    finish(c, result, "%s", why);
    return STEP_END;
}

static enum step frame_fetch(spf_native_check_t *c, frame_t *f)
{
    const dns_answer_t *a;
    char why[SPF_COMMENT_MAX];
    slot_t *s;

    if (f->invalid || !domain_checkable(f->domain))
        return record_problem(c, f, NULL, SPF_RES_NONE, "not a valid domain name");
    switch (need(c, f->domain, DNS_T_TXT, &a)) {
    case NEED_WAIT: return STEP_WAIT;
    case NEED_FAIL: return record_problem(c, f, NULL, SPF_RES_NONE, "not a valid domain name");
    case NEED_OK: break;
    }
    s = slot_find(c, f->domain, DNS_T_TXT);
    if (is_dns_error(a)) {
        say(why, sizeof(why), "DNS error looking up TXT %s: %s", f->domain,
                 dns_status_name(a->status));
        return record_problem(c, f, s, SPF_RES_TEMPERROR, why);
    }
    if (is_void(a) && (c->depth > 1 || f->redirected))
        c->voids++;
    if (is_void(a) || s->nspf == 0) {
        say(why, sizeof(why), "no SPF record at %s", f->domain);
        return record_problem(c, f, s, SPF_RES_NONE, why);
    }
    if (s->nspf > 1) {
        say(why, sizeof(why), "%u SPF records at %s", s->nspf, f->domain);
        return record_problem(c, f, s, SPF_RES_PERMERROR, why);
    }
    if (!s->rec) {
        say(why, sizeof(why), "SPF record of %s: %s", f->domain, s->parse_err ? s->parse_err : "out of memory");
        return record_problem(c, f, s, SPF_RES_PERMERROR, why);
    }
    f->rec = s->rec;
    f->term = 0;
    term_reset(c);
    trace_record(c, f, s, SPF_RES_NONE, "");
    return STEP_CONTINUE;
}

/* The record on top of the stack produced result through term t (NULL: no term
 * matched). An included record's pass makes its include match (RFC 7208 5.2). */
static enum step frame_end(spf_native_check_t *c, enum spf_result result, const spf_term_t *t)
{
    char ipstr[NETADDR_STRLEN];

    for (;;) {
        frame_t *f = &c->stack[c->depth - 1];
        const spf_term_t *inc;
        if (c->depth == 1) {
            netaddr_format(&c->ip, ipstr, sizeof(ipstr));
            if (t)
                snprintf(c->mechanism, sizeof(c->mechanism), "%s", term_bare(t));
            if (!t)
                say(c->comment, sizeof(c->comment), "no mechanism matched in %s", f->domain);
            else if (strcmp(c->matched_in, f->domain) == 0 && strcmp(c->matched, t->text) == 0)
                say(c->comment, sizeof(c->comment), "%s matched %s in %s", ipstr, c->matched,
                         f->domain);
            else
                say(c->comment, sizeof(c->comment), "%s matched %s in %s via %s", ipstr,
                         c->matched, c->matched_in, term_bare(t));
            c->result = result;
            if (result == SPF_RES_FAIL) {
                c->phase = PHASE_EXPLAIN;
                c->target_ready = 0;
                return STEP_CONTINUE;
            }
            finish_now(c, result);
            return STEP_END;
        }
        if (c->trace) {
            spf_trace_event_t ev;
            memset(&ev, 0, sizeof(ev));
            ev.kind = SPF_TRACE_RETURN;
            ev.depth = (unsigned)c->depth - 1;
            ev.domain = f->domain;
            ev.result = result;
            ev.counted = (int)(c->lookups - f->lookups_at_entry);
            trace_emit(c, &ev);
        }
        c->depth--;
        f = &c->stack[c->depth - 1];
        inc = &f->rec->terms[f->term];
        trace_term(c, inc, NULL, result == SPF_RES_PASS,
                   result == SPF_RES_PASS ? qualifier_result(inc->qualifier) : SPF_RES_NONE, 0, 0,
                   "%s of the included record", spf_result_name(result));
        if (result != SPF_RES_PASS) {
            f->term++;
            term_reset(c);
            return STEP_CONTINUE;
        }
        result = qualifier_result(inc->qualifier);
        t = inc;
    }
}

static enum step frame_redirect(spf_native_check_t *c, frame_t *f)
{
    const char *spec = f->rec->redirect;
    char why[SPF_COMMENT_MAX];

    if (!c->term_started) {
        c->term_started = 1;
        if (++c->lookups > SPF_NATIVE_MAX_TERMS) {
            say(why, sizeof(why), "more than 10 DNS-querying terms");
            trace_term(c, NULL, "redirect", -1, SPF_RES_PERMERROR, 1, 0, "%s", why);
            finish(c, SPF_RES_PERMERROR, "%s", why);
            return STEP_END;
        }
    }
    if (term_target(c, f, spec) == NEED_WAIT)
        return STEP_WAIT;
    if (c->trace) {
        char text[SPF_MECH_MAX];
        say(text, sizeof(text), "redirect=%s", spec);
        trace_term(c, NULL, text, 1, SPF_RES_NONE, 1, 0, "continue with the record of %s",
                   c->target);
    }
    /* RFC 7208 6.1: a malformed target is a permerror, as is one without a record;
     * the record replaces this one, and so does its exp=. */
    snprintf(f->domain, sizeof(f->domain), "%s", c->target);
    f->rec = NULL;
    f->term = 0;
    f->redirected = 1;
    f->invalid = !c->target_valid;
    term_reset(c);
    return STEP_CONTINUE;
}

static enum step step_terms(spf_native_check_t *c)
{
    frame_t *f = &c->stack[c->depth - 1];
    const spf_term_t *t;

    if (!f->rec)
        return frame_fetch(c, f);
    if (f->term == f->rec->nterms) {
        if (f->rec->redirect)
            return frame_redirect(c, f);
        /* RFC 7208 4.7: no match and no redirect= is neutral. */
        snprintf(c->matched, sizeof(c->matched), "%s", "");
        return frame_end(c, SPF_RES_NEUTRAL, NULL);
    }
    t = &f->rec->terms[f->term];
    switch (term_eval(c, f, t)) {
    case TERM_WAIT: return STEP_WAIT;
    case TERM_END: return STEP_END;
    case TERM_PUSHED:
        term_reset(c);
        return STEP_CONTINUE;
    case TERM_NO_MATCH:
        f->term++;
        term_reset(c);
        return STEP_CONTINUE;
    case TERM_MATCH:
        snprintf(c->matched, sizeof(c->matched), "%s", t->text);
        snprintf(c->matched_in, sizeof(c->matched_in), "%s", f->domain);
        return frame_end(c, qualifier_result(t->qualifier), t);
    }
    return STEP_END;
}

/* ---- the explanation (RFC 7208 6.2) ---- */

/* The default explanation is the receiver's text about the sender's domain, so its
 * %{d} is the domain checked, also after a redirect (unlike an exp= of a record). */
static enum step explain_default(spf_native_check_t *c, const frame_t *f)
{
    const char *text = c->n->default_explanation;
    size_t len = strlen(text);
    char out[SPF_MACRO_OUT_MAX], err[SPF_MACRO_ERR_LEN];
    int ok = 0;

    if (spf_macro_check(text, len, 1, err) == 0) {
        if (expand(c, c->sender_domain, text, len, 1, 0, out, sizeof(out), &ok) == NEED_WAIT)
            return STEP_WAIT;
    }
    say(c->explanation, sizeof(c->explanation), "%s", ok ? out : text);
    if (c->trace && f->rec->exp) {
        char t[SPF_MECH_MAX];
        say(t, sizeof(t), "exp=%s", f->rec->exp);
        trace_term(c, NULL, t, 0, SPF_RES_NONE, 0, 0, "%s: default explanation", c->exp_why);
    }
    finish_now(c, SPF_RES_FAIL);
    return STEP_END;
}

static enum step exp_unusable(spf_native_check_t *c, const frame_t *f, const char *why)
{
    c->exp_default = 1;
    say(c->exp_why, sizeof(c->exp_why), "%s", why);
    return explain_default(c, f);
}

static enum step step_explain(spf_native_check_t *c)
{
    const frame_t *f = &c->stack[0];
    const dns_answer_t *a;
    const char *text;
    char out[SPF_MACRO_OUT_MAX], err[SPF_MACRO_ERR_LEN], why[128];
    size_t len;
    int ok;

    if (!f->rec->exp || c->exp_default)
        return explain_default(c, f);
    if (term_target(c, f, f->rec->exp) == NEED_WAIT)
        return STEP_WAIT;
    if (!c->target_valid)
        return exp_unusable(c, f, "not a valid domain name");
    switch (need(c, c->target, DNS_T_TXT, &a)) {
    case NEED_WAIT: return STEP_WAIT;
    case NEED_FAIL: return exp_unusable(c, f, "no DNS lookup could be started");
    case NEED_OK: break;
    }
    if (a->status != DNS_OK) {
        say(why, sizeof(why), "TXT %s: %s", a->name, dns_status_name(a->status));
        return exp_unusable(c, f, why);
    }
    if (a->count != 1) {
        say(why, sizeof(why), "TXT %s: %zu records", a->name, a->count);
        return exp_unusable(c, f, why);
    }
    text = a->rr[0].u.txt.data;
    len = a->rr[0].u.txt.len;
    if (!printable_ascii(text, len))
        return exp_unusable(c, f, "explanation is not printable ASCII");
    if (spf_macro_check(text, len, 1, err) < 0) {
        say(why, sizeof(why), "explanation: %s", err);
        return exp_unusable(c, f, why);
    }
    if (expand(c, f->domain, text, len, 1, 0, out, sizeof(out), &ok) == NEED_WAIT)
        return STEP_WAIT;
    if (!ok)
        return exp_unusable(c, f, "explanation does not expand");
    say(c->explanation, sizeof(c->explanation), "%s", out);
    if (c->trace) {
        char t[SPF_MECH_MAX];
        say(t, sizeof(t), "exp=%s", f->rec->exp);
        trace_term(c, NULL, t, 1, SPF_RES_NONE, 0, 0, "%s", c->explanation);
    }
    finish_now(c, SPF_RES_FAIL);
    return STEP_END;
}

/* ---- the loop ---- */

static void run(spf_native_check_t *c)
{
    for (;;) {
        enum step s = c->phase == PHASE_EXPLAIN ? step_explain(c) : step_terms(c);
        if (s != STEP_CONTINUE)
            return;
    }
}

static void budget_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    spf_native_check_t *c = w->data;

    (void)loop;
    (void)revents;
    finish(c, SPF_RES_TEMPERROR, "time budget of %.1f s for the check exceeded", c->n->timeout);
}

spf_native_check_t *spf_native_check(spf_native_t *n, const spf_query_t *q, spf_trace_fn *trace,
                                     void *trace_ctx, spf_cb *cb, void *ctx)
{
    spf_native_check_t *c = calloc(1, sizeof(*c));
    const char *at;
    frame_t *f;

    if (!c)
        return NULL;
    c->n = n;
    c->cb = cb;
    c->ctx = ctx;
    c->trace = trace;
    c->trace_ctx = trace_ctx;
    c->ip = q->ip;
    snprintf(c->sender, sizeof(c->sender), "%s", q->sender);
    at = strrchr(c->sender, '@');
    snprintf(c->local, sizeof(c->local), "%.*s", at ? (int)(at - c->sender) : 0, c->sender);
    /* RFC 7208 4.3: no local part means "postmaster". */
    if (!*c->local)
        snprintf(c->local, sizeof(c->local), "postmaster");
    snprintf(c->domain, sizeof(c->domain), "%.*s", DNS_NAME_MAX, at ? at + 1 : c->sender);
    snprintf(c->sender_domain, sizeof(c->sender_domain), "%s", c->domain);
    snprintf(c->helo, sizeof(c->helo), "%s", q->helo ? q->helo : "");
    ev_timer_init(&c->budget, budget_cb, n->timeout, 0);
    c->budget.data = c;
    ev_timer_init(&c->deliver, deliver_cb, 0, 0);
    c->deliver.data = c;
    c->next = n->checks;
    if (n->checks)
        n->checks->prev = c;
    n->checks = c;
    n->npending++;

    f = &c->stack[c->depth++];
    if (dns_name_normalize(f->domain, c->domain, strlen(c->domain)) < 0) {
        snprintf(f->domain, sizeof(f->domain), "%s", c->domain);
        f->invalid = 1;
    }
    ev_timer_start(n->loop, &c->budget);
    c->starting = 1;
    run(c);
    c->starting = 0;
    return c;
}

void spf_native_cancel(spf_native_check_t *c)
{
    check_free(c);
}

unsigned spf_native_pending(const spf_native_t *n)
{
    return n->npending;
}

void spf_native_reconfigure(spf_native_t *n, const spf_options_t *opt)
{
    n->timeout = opt->timeout;
    snprintf(n->receiver, sizeof(n->receiver), "%s", opt->receiver ? opt->receiver : "");
    snprintf(n->default_explanation, sizeof(n->default_explanation), "%s",
             opt->default_explanation ? opt->default_explanation : "");
}

spf_native_t *spf_native_new(struct ev_loop *loop, struct dns *dns, const spf_options_t *opt,
                             char err[SPF_ERR_LEN])
{
    spf_native_t *n = calloc(1, sizeof(*n));

    if (!n) {
        snprintf(err, SPF_ERR_LEN, "out of memory");
        return NULL;
    }
    n->loop = loop;
    n->dns = dns;
    spf_native_reconfigure(n, opt);
    return n;
}

void spf_native_free(spf_native_t *n)
{
    if (!n)
        return;
    while (n->checks) {
        spf_native_check_t *c = n->checks;
        if (c->finished) {
            deliver(c);
            continue;
        }
        c->starting = 0;
        finish(c, SPF_RES_TEMPERROR, "shutting down");
    }
    free(n);
}
