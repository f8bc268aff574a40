/* spf_explain.c - trace events of one SPF check as lines for people.
 *
 * Each record fetched is a line at its include depth, each term tried a line under it
 * with what happened and the lookups it cost; an include opens a deeper level and its
 * result closes it. Warnings are gathered on the way and printed by
 * spf_explain_finish after the result. */
#include "spf_explain.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "spf_native.h"
#include "spf_record.h"

/* A record's terms are indented one step under it, an included record one step
 * under its include term. */
#define EXPLAIN_INDENT 2
#define RECORD_INDENT(depth) ((depth) * 2 * EXPLAIN_INDENT)
#define TERM_INDENT(depth) (RECORD_INDENT(depth) + EXPLAIN_INDENT)
#define EXPLAIN_WARNING_MAX 256

typedef struct line {
    char buf[SPF_EXPLAIN_LINE_MAX];
    size_t len;
    int cut;
} line_t;

struct spf_explain {
    spf_explain_emit *emit;
    void *ctx;
    size_t nwarnings;
    unsigned dropped;              /* warnings beyond SPF_EXPLAIN_MAX_WARNINGS */
    char warnings[SPF_EXPLAIN_MAX_WARNINGS][EXPLAIN_WARNING_MAX];
};

static void put_raw(line_t *l, const char *s, size_t n)
{
    size_t room = sizeof(l->buf) - 1 - l->len;

    if (n > room) {
        n = room;
        l->cut = 1;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    l->buf[l->len] = '\0';
}

static void put(line_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(line_t *l, const char *fmt, ...)
{
    char tmp[SPF_EXPLAIN_LINE_MAX];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(tmp)) {
        n = (int)sizeof(tmp) - 1;
        l->cut = 1;
    }
    put_raw(l, tmp, (size_t)n);
}

/* Text from DNS or the client: printable ASCII as is, anything else as \xHH. */
static void put_text(line_t *l, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            put_raw(l, (const char *)&ch, 1);
        else
            put(l, "\\x%02X", ch);
    }
}

static void put_str(line_t *l, const char *s)
{
    put_text(l, s, strlen(s));
}

static void line_start(line_t *l, unsigned indent)
{
    l->len = 0;
    l->cut = 0;
    l->buf[0] = '\0';
    for (unsigned i = 0; i < indent && i < sizeof(l->buf) - 1; i++)
        put_raw(l, " ", 1);
}

static void line_emit(spf_explain_t *x, line_t *l)
{
    if (l->cut && l->len >= 3)
        memcpy(l->buf + l->len - 3, "...", 3);
    x->emit(x->ctx, l->buf);
}

static void warn(spf_explain_t *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(spf_explain_t *x, const char *fmt, ...)
{
    char w[EXPLAIN_WARNING_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(w, sizeof(w), fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < x->nwarnings; i++)
        if (strcmp(x->warnings[i], w) == 0)
            return;
    if (x->nwarnings == SPF_EXPLAIN_MAX_WARNINGS) {
        x->dropped++;
        return;
    }
    memcpy(x->warnings[x->nwarnings++], w, sizeof(w));
}

spf_explain_t *spf_explain_new(spf_explain_emit *emit, void *ctx)
{
    spf_explain_t *x = calloc(1, sizeof(*x));

    if (!x)
        return NULL;
    x->emit = emit;
    x->ctx = ctx;
    return x;
}

void spf_explain_free(spf_explain_t *x)
{
    free(x);
}

/* What administrators get wrong in a record, whether or not the check reached it. */
static void record_warnings(spf_explain_t *x, const spf_trace_event_t *ev)
{
    char err[SPF_RECORD_ERR_LEN], name[DNS_NAME_MAX + 1];
    spf_record_t *r;

    snprintf(name, sizeof(name), "%s", ev->domain);
    if (ev->records > 1)
        warn(x, "%s publishes %u SPF records: one is allowed, so every check of it is a "
                "permerror (RFC 7208 4.5)", name, ev->records);
    if (!ev->text)
        return;
    if (ev->record_len > SPF_EXPLAIN_RECORD_BYTES)
        warn(x, "the SPF record of %s is %zu bytes: keep it under %d so the DNS answer fits "
                "in 512 bytes (RFC 7208 3.4)", name, ev->record_len, SPF_EXPLAIN_RECORD_BYTES);
    if (ev->record_terms > SPF_NATIVE_MAX_TERMS)
        warn(x, "the SPF record of %s alone has %u DNS-querying terms: more than the %d "
                "allowed (RFC 7208 4.6.4)", name, ev->record_terms, SPF_NATIVE_MAX_TERMS);
    if (spf_record_parse(ev->text, ev->record_len, &r, err) < 0)
        return;
    for (size_t i = 0; i < r->nterms; i++) {
        if (r->terms[i].mech == SPF_MECH_PTR)
            warn(x, "%s uses ptr: slow, unreliable, and RFC 7208 5.5 says not to use it", name);
        if (r->terms[i].mech == SPF_MECH_ALL && r->terms[i].qualifier == '+')
            warn(x, "%s uses +all: it authorises every host on the Internet", name);
    }
    spf_record_free(r);
}

static void put_counts(line_t *l, const spf_trace_event_t *ev)
{
    if (ev->counted)
        put(l, " [lookup %u/%d]", ev->lookups, SPF_NATIVE_MAX_TERMS);
    if (ev->void_lookup)
        put(l, " [void %u/%d]", ev->voids, SPF_NATIVE_MAX_VOIDS);
}

static void on_record(spf_explain_t *x, const spf_trace_event_t *ev, line_t *l)
{
    line_start(l, RECORD_INDENT(ev->depth));
    put_str(l, ev->domain);
    if (ev->text) {
        put(l, ": \"");
        put_text(l, ev->text, ev->record_len);
        put(l, "\" (TTL %u)", (unsigned)ev->ttl);
        if (ev->result != SPF_RES_NONE) {
            put(l, " -> %s: ", spf_result_name(ev->result));
            put_str(l, ev->detail);
        }
    } else {
        put(l, ": ");
        put_str(l, ev->detail);
        put(l, " -> %s", spf_result_name(ev->result));
    }
    line_emit(x, l);
    record_warnings(x, ev);
}

static int is_modifier(const char *text)
{
    return strncmp(text, "redirect=", 9) == 0 || strncmp(text, "exp=", 4) == 0;
}

static void on_term(spf_explain_t *x, const spf_trace_event_t *ev, line_t *l)
{
    line_start(l, TERM_INDENT(ev->depth));
    put_str(l, ev->text);
    if (ev->matched < 0) {
        put(l, ": error -> %s", spf_result_name(ev->result));
        put_counts(l, ev);
        put(l, " (");
        put_str(l, ev->detail);
        put(l, ")");
        line_emit(x, l);
        if (ev->lookups > SPF_NATIVE_MAX_TERMS)
            warn(x, "the check needs more than %d DNS lookups: a permerror for every "
                    "receiver that counts them (RFC 7208 4.6.4)", SPF_NATIVE_MAX_TERMS);
        if (ev->voids > SPF_NATIVE_MAX_VOIDS)
            warn(x, "the check makes more than %d lookups that find nothing: a permerror "
                    "(RFC 7208 4.6.4); remove the terms naming names that do not exist",
                 SPF_NATIVE_MAX_VOIDS);
        return;
    }
    if (is_modifier(ev->text)) {
        put(l, ": ");
        put_str(l, ev->detail);
        put_counts(l, ev);
        line_emit(x, l);
        return;
    }
    if (ev->matched)
        put(l, ": match -> %s", spf_result_name(ev->result));
    else
        put(l, ": no match");
    put_counts(l, ev);
    if (*ev->detail) {
        put(l, " (");
        put_str(l, ev->detail);
        put(l, ")");
    }
    line_emit(x, l);
}

void spf_explain_event(void *ctx, const spf_trace_event_t *ev)
{
    spf_explain_t *x = ctx;
    line_t l;

    switch (ev->kind) {
    case SPF_TRACE_RECORD:
        on_record(x, ev, &l);
        break;
    case SPF_TRACE_TERM:
        on_term(x, ev, &l);
        break;
    case SPF_TRACE_INCLUDE:
        line_start(&l, TERM_INDENT(ev->depth));
        put_str(&l, ev->text);
        put_counts(&l, ev);
        line_emit(x, &l);
        break;
    case SPF_TRACE_RETURN:
        line_start(&l, RECORD_INDENT(ev->depth));
        put_str(&l, ev->domain);
        put(&l, " -> %s", spf_result_name(ev->result));
        line_emit(x, &l);
        if (ev->counted > SPF_EXPLAIN_INCLUDE_COST)
            warn(x, "include:%.200s alone costs %d of the %d DNS lookups: include only "
                    "the part of a provider's record your mail comes from", ev->domain,
                 ev->counted + 1, SPF_NATIVE_MAX_TERMS);
        break;
    case SPF_TRACE_RESULT:
        break;
    }
}

void spf_explain_finish(spf_explain_t *x, const spf_verdict_t *v)
{
    line_t l;

    line_start(&l, 0);
    put(&l, "result: %s", spf_result_name(v->result));
    if (*v->mechanism) {
        put(&l, " (mechanism ");
        put_str(&l, v->mechanism);
        put(&l, ")");
    }
    line_emit(x, &l);
    line_start(&l, 0);
    put(&l, "why: ");
    put_str(&l, v->comment);
    line_emit(x, &l);
    if (v->result == SPF_RES_FAIL) {
        line_start(&l, 0);
        put(&l, "explanation: ");
        put_str(&l, v->explanation);
        line_emit(x, &l);
    }
    line_start(&l, 0);
    put(&l, "DNS lookups: %u of %d, void lookups: %u of %d", v->dns_lookups,
        SPF_NATIVE_MAX_TERMS, v->void_lookups, SPF_NATIVE_MAX_VOIDS);
    line_emit(x, &l);
    line_start(&l, 0);
    put(&l, x->nwarnings ? "warnings:" : "warnings: none");
    line_emit(x, &l);
    for (size_t i = 0; i < x->nwarnings; i++) {
        line_start(&l, EXPLAIN_INDENT);
        put_str(&l, x->warnings[i]);
        line_emit(x, &l);
    }
    if (x->dropped) {
        line_start(&l, EXPLAIN_INDENT);
        put(&l, "(%u more)", x->dropped);
        line_emit(x, &l);
    }
}
