/* spf_libspf2.c - SPF checks with libspf2, replayed over the asynchronous DNS module.
 *
 * A check runs libspf2 against spf_dns, which answers only from what the check already
 * knows. Each evaluation that hits unknown names records them; we fetch those (plus the
 * literal targets of every record seen, and the addresses of MX exchanges, in parallel)
 * and evaluate again from the start once the blocking names are in. Evaluations cost
 * no I/O, so a cold check costs about the depth of its include tree in round trips. */
#include "spf_libspf2.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns.h"
#include "log.h"
#include "spf_dns.h"
#include "spf_macro.h"

/* Lookups one check may have outstanding: misses, prefetched record targets, and the
 * addresses of up to 10 MX exchanges. */
#define SPF_MAX_PENDING 64
/* Each evaluation must learn at least one new answer, and a check can need at most
 * SPF_DNS_MAX_KNOWN of them, so this bounds a check that keeps asking for more. */
#define SPF_MAX_EVALUATIONS (SPF_DNS_MAX_KNOWN + 1)
#define SPF_SENDER_MAX 512
/* libspf2 writes spaces in an explanation as '%' (a known 1.2.10 bug), so the default
 * explanation is not given to it: it gets this token, and we expand our own text. */
#define SPF_DEFAULT_EXP_TOKEN "spf-policyd-default-explanation"

typedef struct spf_pending {
    spf_libspf2_check_t *check;
    dns_lookup_t *lookup;
    int blocking;                 /* the last evaluation stopped for this name */
    int type;
    char name[DNS_NAME_MAX + 1];
} spf_pending_t;

struct spf_libspf2_check {
    spf_libspf2_t *spf;
    spf_cb *cb;
    void *ctx;
    netaddr_t ip;
    char sender[SPF_SENDER_MAX];
    char helo[DNS_NAME_MAX + 1];
    char domain[DNS_NAME_MAX + 1];
    enum spf_identity identity;
    ev_timer budget;
    ev_timer start;               /* runs the first evaluation on the next loop turn */
    spf_dns_run_t run;
    size_t npending;
    unsigned blocking;
    unsigned evaluations;
    spf_pending_t *pending[SPF_MAX_PENDING];
    spf_libspf2_check_t *prev, *next;
};

struct spf_libspf2 {
    struct ev_loop *loop;
    dns_t *dns;
    SPF_server_t *server;
    SPF_dns_server_t *layer;
    double timeout;
    char receiver[DNS_NAME_MAX + 1];
    char default_explanation[SPF_EXPLANATION_MAX + 1];
    unsigned npending_checks;
    spf_libspf2_check_t *checks;
};

static void libspf2_log(const char *file, int line, const char *msg)
{
    (void)file;
    (void)line;
    log_debug("libspf2: %s", msg);
}

static void libspf2_error(const char *file, int line, const char *msg)
    __attribute__((noreturn));
static void libspf2_error(const char *file, int line, const char *msg)
{
    log_panic("libspf2 %s:%d: %s", file, line, msg);
}

static int spf_configure(spf_libspf2_t *s, const spf_options_t *opt, char err[SPF_ERR_LEN])
{
    SPF_response_t *resp = NULL;
    SPF_errcode_t e;

    s->timeout = opt->timeout;
    if (opt->receiver && *opt->receiver &&
        SPF_server_set_rec_dom(s->server, opt->receiver) != SPF_E_SUCCESS) {
        snprintf(err, SPF_ERR_LEN, "receiver '%s' is not usable", opt->receiver);
        return -1;
    }
    e = SPF_server_set_explanation(s->server, SPF_DEFAULT_EXP_TOKEN, &resp);
    if (resp)
        SPF_response_free(resp);
    if (e != SPF_E_SUCCESS) {
        snprintf(err, SPF_ERR_LEN, "default explanation: %s", SPF_strerror(e));
        return -1;
    }
    snprintf(s->receiver, sizeof(s->receiver), "%s", opt->receiver ? opt->receiver : "");
    snprintf(s->default_explanation, sizeof(s->default_explanation), "%s",
             opt->default_explanation ? opt->default_explanation : "");
    return 0;
}

spf_libspf2_t *spf_libspf2_new(struct ev_loop *loop, struct dns *dns, const spf_options_t *opt,
               char err[SPF_ERR_LEN])
{
    spf_libspf2_t *s;

    s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, SPF_ERR_LEN, "out of memory");
        return NULL;
    }
    SPF_error_handler = libspf2_error;
    SPF_warning_handler = libspf2_log;
    SPF_info_handler = libspf2_log;
    SPF_debug_handler = libspf2_log;
    s->loop = loop;
    s->dns = dns;
    s->layer = spf_dns_new();
    s->server = s->layer ? SPF_server_new_dns(s->layer, 0) : NULL;
    if (!s->server) {
        snprintf(err, SPF_ERR_LEN, "out of memory");
        spf_libspf2_free(s);
        return NULL;
    }
    if (spf_configure(s, opt, err) < 0) {
        spf_libspf2_free(s);
        return NULL;
    }
    return s;
}

void spf_libspf2_reconfigure(spf_libspf2_t *s, const spf_options_t *opt)
{
    char err[SPF_ERR_LEN];

    if (spf_configure(s, opt, err) < 0)
        log_error("spf: keeping the previous settings: %s", err);
}

unsigned spf_libspf2_pending(const spf_libspf2_t *s)
{
    return s->npending_checks;
}

static void check_unlink(spf_libspf2_check_t *c)
{
    spf_libspf2_t *s = c->spf;

    if (c->prev)
        c->prev->next = c->next;
    else
        s->checks = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->npending_checks--;
}

static void check_free(spf_libspf2_check_t *c)
{
    ev_timer_stop(c->spf->loop, &c->budget);
    ev_timer_stop(c->spf->loop, &c->start);
    for (size_t i = 0; i < c->npending; i++) {
        dns_cancel(c->pending[i]->lookup);
        free(c->pending[i]);
    }
    c->npending = 0;
    spf_dns_run_clear(&c->run);
    check_unlink(c);
    free(c);
}

void spf_libspf2_cancel(spf_libspf2_check_t *c)
{
    check_free(c);
}

static double run_expires(const spf_dns_run_t *run, double now, double fallback)
{
    double expires = now + fallback;

    for (size_t i = 0; i < run->nknown; i++)
        if (run->known[i]->expires < expires)
            expires = run->known[i]->expires;
    return expires;
}

/* The one place a check ends: the callback runs, then the check is gone. */
static void check_finish(spf_libspf2_check_t *c, enum spf_result result, const char *comment,
                         const char *explanation)
{
    spf_verdict_t v;
    double now = ev_now(c->spf->loop);

    memset(&v, 0, sizeof(v));
    v.result = result;
    v.domain = c->domain;
    v.explanation = explanation ? explanation : "";
    v.comment = comment ? comment : "";
    v.mechanism = "";
    v.uses = c->run.uses;
    /* Errors are not worth keeping: what failed may work a moment later. */
    v.expires = (result == SPF_RES_TEMPERROR) ? now : run_expires(&c->run, now, 86400);
    v.dns_lookups = c->run.terms;
    v.void_lookups = c->run.voids;
    v.replays = c->evaluations;
    c->cb(c->ctx, &v);
    check_free(c);
}

static enum spf_result map_result(SPF_result_t r, enum spf_dns_top top)
{
    switch (r) {
    case SPF_RESULT_NEUTRAL: return SPF_RES_NEUTRAL;
    case SPF_RESULT_PASS: return SPF_RES_PASS;
    case SPF_RESULT_FAIL: return SPF_RES_FAIL;
    case SPF_RESULT_SOFTFAIL: return SPF_RES_SOFTFAIL;
    case SPF_RESULT_NONE: return SPF_RES_NONE;
    case SPF_RESULT_TEMPERROR: return SPF_RES_TEMPERROR;
    case SPF_RESULT_PERMERROR: return SPF_RES_PERMERROR;
    default:
        /* libspf2 reports trouble with the top-level record as INVALID. */
        return top == SPF_DNS_TOP_TEMP ? SPF_RES_TEMPERROR
               : top == SPF_DNS_TOP_NONE ? SPF_RES_NONE : SPF_RES_PERMERROR;
    }
}

static void pending_cb(void *ctx, const dns_answer_t *ans);

static spf_pending_t *pending_find(spf_libspf2_check_t *c, const char *name, int type)
{
    for (size_t i = 0; i < c->npending; i++)
        if (c->pending[i]->type == type && strcmp(c->pending[i]->name, name) == 0)
            return c->pending[i];
    return NULL;
}

/* Starts a lookup for the check unless it is known or already on its way. A blocking
 * one is what the last evaluation stopped for. -1 when nothing can be started. */
static int check_fetch(spf_libspf2_check_t *c, const char *name, int type, int blocking)
{
    spf_pending_t *p;

    if (spf_dns_run_find(&c->run, name, type))
        return 0;
    p = pending_find(c, name, type);
    if (p) {
        if (blocking && !p->blocking) {
            p->blocking = 1;
            c->blocking++;
        }
        return 0;
    }
    if (c->npending == SPF_MAX_PENDING)
        return blocking ? -1 : 0;
    p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    p->check = c;
    p->type = type;
    p->blocking = blocking;
    snprintf(p->name, sizeof(p->name), "%s", name);
    c->pending[c->npending++] = p;
    p->lookup = dns_lookup(c->spf->dns, name, type, pending_cb, p);
    if (!p->lookup) {
        c->npending--;
        free(p);
        return -1;
    }
    if (blocking)
        c->blocking++;
    return 0;
}

/* What went wrong, for the header: libspf2 leaves the response's error code at
 * "success" when a record does not compile, and puts the reason in its messages. */
static void error_text(SPF_response_t *resp, char *out, size_t len)
{
    for (int i = 0; i < SPF_response_messages(resp); i++) {
        SPF_error_t *e = SPF_response_message(resp, i);
        if (SPF_error_errorp(e) && SPF_error_message(e)) {
            snprintf(out, len, "%s", SPF_error_message(e));
            return;
        }
    }
    snprintf(out, len, "%s", SPF_strerror(SPF_response_errcode(resp)));
}

/* The default explanation, expanded by our macro expander (RFC 7208 7.3; %{p} is
 * "unknown": no PTR lookup is made for it); text that is not a valid macro-string is
 * used as written. */
static void expand_default(const spf_libspf2_check_t *c, char *out, size_t size)
{
    const char *t = c->spf->default_explanation, *at = strrchr(c->sender, '@');
    char local[SPF_SENDER_MAX], buf[SPF_MACRO_OUT_MAX], err[SPF_MACRO_ERR_LEN];
    spf_macro_ctx_t m;
    size_t len;

    snprintf(local, sizeof(local), "%.*s", at ? (int)(at - c->sender) : 0, c->sender);
    memset(&m, 0, sizeof(m));
    m.sender = c->sender;
    m.local = *local ? local : "postmaster";
    m.sender_domain = c->domain;
    m.domain = c->domain;
    m.ip = &c->ip;
    m.helo = c->helo;
    m.receiver = c->spf->receiver;
    m.ptr_name = "unknown";
    m.now = (long long)ev_now(c->spf->loop);
    if (spf_macro_expand(t, strlen(t), &m, 1, 0, buf, sizeof(buf), err) == 0)
        t = buf;
    len = strnlen(t, size - 1);
    memcpy(out, t, len);
    out[len] = '\0';
}

static void check_evaluate(spf_libspf2_check_t *c)
{
    spf_libspf2_t *s = c->spf;
    SPF_request_t *req;
    SPF_response_t *resp = NULL;
    char addr[NETADDR_STRLEN], explanation[SPF_EXPLANATION_MAX + 1], comment[SPF_COMMENT_MAX];
    enum spf_result result;

    if (++c->evaluations > SPF_MAX_EVALUATIONS) {
        check_finish(c, SPF_RES_TEMPERROR, "evaluation did not converge", NULL);
        return;
    }
    req = SPF_request_new(s->server);
    if (!req) {
        check_finish(c, SPF_RES_TEMPERROR, "out of memory", NULL);
        return;
    }
    netaddr_format(&c->ip, addr, sizeof(addr));
    if (c->ip.family == AF_INET)
        SPF_request_set_ipv4_str(req, addr);
    else
        SPF_request_set_ipv6_str(req, addr);
    if (*c->helo)
        SPF_request_set_helo_dom(req, c->helo);
    SPF_request_set_env_from(req, c->sender);

    spf_dns_begin(s->layer, &c->run);
    SPF_request_query_mailfrom(req, &resp);
    spf_dns_end(s->layer);

    if (c->run.nmiss > 0 && !c->run.over_limit) {
        int failed = 0;
        for (size_t i = 0; i < c->run.nmiss; i++)
            if (check_fetch(c, c->run.miss[i].name, c->run.miss[i].type, 1) < 0)
                failed = 1;
        for (size_t i = 0; i < c->run.nprefetch; i++)
            check_fetch(c, c->run.prefetch[i].name, c->run.prefetch[i].type, 0);
        if (resp)
            SPF_response_free(resp);
        SPF_request_free(req);
        if (failed)
            check_finish(c, SPF_RES_PERMERROR, "a name to look up is not a valid DNS name", NULL);
        else if (c->blocking == 0)
            check_evaluate(c);
        return;
    }

    explanation[0] = comment[0] = '\0';
    if (c->run.over_limit) {
        result = SPF_RES_PERMERROR;
        snprintf(comment, sizeof(comment), "%s", c->run.problem);
    } else {
        result = resp ? map_result(SPF_response_result(resp), c->run.top) : SPF_RES_TEMPERROR;
        if (*c->run.problem)
            snprintf(comment, sizeof(comment), "%s", c->run.problem);
        else if (resp && (result == SPF_RES_PERMERROR || result == SPF_RES_TEMPERROR))
            error_text(resp, comment, sizeof(comment));
        if (result == SPF_RES_FAIL && resp && SPF_response_get_explanation(resp)) {
            const char *e = SPF_response_get_explanation(resp);
            if (strcmp(e, SPF_DEFAULT_EXP_TOKEN) == 0)
                expand_default(c, explanation, sizeof(explanation));
            else
                snprintf(explanation, sizeof(explanation), "%s", e);
        }
    }
    if (resp)
        SPF_response_free(resp);
    SPF_request_free(req);
    check_finish(c, result, comment, explanation);
}

static void pending_cb(void *ctx, const dns_answer_t *ans)
{
    spf_pending_t *p = ctx;
    spf_libspf2_check_t *c = p->check;
    int blocking = p->blocking;

    for (size_t i = 0; i < c->npending; i++) {
        if (c->pending[i] == p) {
            c->pending[i] = c->pending[--c->npending];
            break;
        }
    }
    free(p);
    if (ans->status == DNS_SHUTDOWN) {
        check_finish(c, SPF_RES_TEMPERROR, "shutting down", NULL);
        return;
    }
    if (spf_dns_run_add(&c->run, ans) < 0) {
        check_finish(c, SPF_RES_PERMERROR, "too many DNS answers for one check", NULL);
        return;
    }
    /* The exchanges of an mx term are looked up next: fetch them all at once. */
    if (ans->type == DNS_T_MX && ans->status == DNS_OK && ans->count <= SPF_DNS_MAX_MX) {
        int type = c->ip.family == AF_INET6 ? DNS_T_AAAA : DNS_T_A;
        char name[DNS_NAME_MAX + 1];
        for (size_t i = 0; i < ans->count; i++)
            if (dns_name_normalize(name, ans->rr[i].u.mx.name, strlen(ans->rr[i].u.mx.name)) == 0)
                check_fetch(c, name, type, 0);
    }
    if (blocking && --c->blocking == 0)
        check_evaluate(c);
}

static void start_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    check_evaluate(w->data);
}

static void budget_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    spf_libspf2_check_t *c = w->data;

    (void)loop;
    (void)revents;
    check_finish(c, SPF_RES_TEMPERROR, "time budget for the check exceeded", NULL);
}

spf_libspf2_check_t *spf_libspf2_check(spf_libspf2_t *s, const spf_query_t *q, spf_cb *cb, void *ctx)
{
    spf_libspf2_check_t *c = calloc(1, sizeof(*c));
    const char *at;

    if (!c)
        return NULL;
    c->spf = s;
    c->cb = cb;
    c->ctx = ctx;
    c->ip = q->ip;
    c->identity = q->identity;
    snprintf(c->sender, sizeof(c->sender), "%s", q->sender);
    snprintf(c->helo, sizeof(c->helo), "%s", q->helo ? q->helo : "");
    at = strrchr(c->sender, '@');
    snprintf(c->domain, sizeof(c->domain), "%.253s", at ? at + 1 : c->sender);
    c->run.dns = s->dns;
    c->run.family = q->ip.family;
    ev_timer_init(&c->budget, budget_cb, s->timeout, 0);
    c->budget.data = c;
    ev_timer_init(&c->start, start_cb, 0, 0);
    c->start.data = c;
    ev_timer_start(s->loop, &c->budget);
    ev_timer_start(s->loop, &c->start);
    c->next = s->checks;
    if (s->checks)
        s->checks->prev = c;
    s->checks = c;
    s->npending_checks++;
    return c;
}

void spf_libspf2_free(spf_libspf2_t *s)
{
    if (!s)
        return;
    while (s->checks)
        check_finish(s->checks, SPF_RES_TEMPERROR, "shutting down", NULL);
    if (s->server)
        SPF_server_free(s->server);
    if (s->layer)
        SPF_dns_free(s->layer);
    free(s);
}
