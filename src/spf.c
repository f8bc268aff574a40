/* spf.c - the engine-neutral front of SPF checks: it starts the engine the config
 * names (native or libspf2) and hands each check to it.
 *
 * A check handle here wraps the engine's: the engine calls back through check_done,
 * which passes the verdict on and frees the wrapper, so spf_cancel works the same for
 * both engines. The engine cannot change at reload (the daemon logs that it needs a
 * restart); the other options can. */
#include "spf.h"

#include <stdio.h>
#include <stdlib.h>

#include "spf_libspf2.h"
#include "spf_native.h"

struct spf_check {
    spf_t *spf;
    spf_cb *cb;
    void *ctx;
    spf_native_check_t *native;
    spf_libspf2_check_t *libspf2;
};

struct spf {
    spf_native_t *native;
    spf_libspf2_t *libspf2;
};

spf_t *spf_new(struct ev_loop *loop, struct dns *dns, const spf_options_t *opt,
               char err[SPF_ERR_LEN])
{
    spf_t *s = calloc(1, sizeof(*s));

    if (!s) {
        snprintf(err, SPF_ERR_LEN, "out of memory");
        return NULL;
    }
    if (opt->engine == ENGINE_NATIVE)
        s->native = spf_native_new(loop, dns, opt, err);
    else
        s->libspf2 = spf_libspf2_new(loop, dns, opt, err);
    if (!s->native && !s->libspf2) {
        free(s);
        return NULL;
    }
    return s;
}

void spf_free(spf_t *s)
{
    if (!s)
        return;
    if (s->native)
        spf_native_free(s->native);
    if (s->libspf2)
        spf_libspf2_free(s->libspf2);
    free(s);
}

void spf_reconfigure(spf_t *s, const spf_options_t *opt)
{
    if (s->native)
        spf_native_reconfigure(s->native, opt);
    else
        spf_libspf2_reconfigure(s->libspf2, opt);
}

unsigned spf_pending(const spf_t *s)
{
    return s->native ? spf_native_pending(s->native) : spf_libspf2_pending(s->libspf2);
}

static void check_done(void *ctx, const spf_verdict_t *v)
{
    spf_check_t *c = ctx;

    c->cb(c->ctx, v);
    free(c);
}

spf_check_t *spf_check_traced(spf_t *s, const spf_query_t *q, spf_trace_fn *trace,
                              void *trace_ctx, spf_cb *cb, void *ctx)
{
    spf_check_t *c = malloc(sizeof(*c));

    if (!c)
        return NULL;
    c->spf = s;
    c->cb = cb;
    c->ctx = ctx;
    c->native = NULL;
    c->libspf2 = NULL;
    if (s->native)
        c->native = spf_native_check(s->native, q, trace, trace_ctx, check_done, c);
    else
        c->libspf2 = spf_libspf2_check(s->libspf2, q, check_done, c);
    if (!c->native && !c->libspf2) {
        free(c);
        return NULL;
    }
    return c;
}

spf_check_t *spf_check(spf_t *s, const spf_query_t *q, spf_cb *cb, void *ctx)
{
    return spf_check_traced(s, q, NULL, NULL, cb, ctx);
}

void spf_cancel(spf_check_t *c)
{
    if (c->native)
        spf_native_cancel(c->native);
    else
        spf_libspf2_cancel(c->libspf2);
    free(c);
}
