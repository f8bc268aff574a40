/* fuzz_spf_record.c - libFuzzer harness for the SPF record parser and the macro expander.
 *
 * Build and run from the top of the tree:
 *   make build/fuzz_spf_record
 *   mkdir -p build/fuzz-corpus/spf_record
 *   build/fuzz_spf_record -max_len=40000 build/fuzz-corpus/spf_record tests/fuzz/corpus/spf_record
 * (new inputs go to the first directory, so the seeds stay as committed).
 *
 * The input is parsed as a record; a parsed record is checked against what the parser
 * promises (terms inside their bounds, domain-specs that are valid macro-strings,
 * lookups counted) and each of its domain-specs is expanded. The input is also taken
 * as an explanation and as a domain-spec: checking and expanding must agree, and an
 * expanded name must be at most 253 bytes. The context alternates between an IPv4 and
 * an IPv6 client and between short and long values, so transformers and the 253-byte
 * cut both see use. A broken promise aborts, which the fuzzer reports like a crash. */
#include "spf_macro.h"
#include "spf_record.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A local part of many labels and delimiters, longer than any name may be. */
#define LONG_LOCAL_LABELS 40

static char long_local[LONG_LOCAL_LABELS * 8 + 1];
static char out[SPF_MACRO_OUT_MAX];

static void check_err(const char *err, size_t len)
{
    if (!memchr(err, '\0', len) || err[0] == '\0')
        abort();
}

static void make_ctx(spf_macro_ctx_t *ctx, netaddr_t *ip, size_t variant)
{
    static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                   0, 0, 0, 0, 0, 0, 0xcb, 0x01};

    memset(ip, 0, sizeof *ip);
    if (variant & 1) {
        ip->family = AF_INET6;
        memcpy(ip->addr, v6, sizeof v6);
    } else {
        ip->family = AF_INET;
        ip->addr[0] = 192;
        ip->addr[2] = 2;
        ip->addr[3] = 3;
    }
    if (long_local[0] == '\0') {
        for (size_t i = 0; i < LONG_LOCAL_LABELS; i++)
            memcpy(long_local + i * 8, "ab-c+d.", 8);
        long_local[sizeof long_local - 1] = '\0';
    }
    memset(ctx, 0, sizeof *ctx);
    ctx->sender = "a.b-c+d,e/f_g=h ~x@example.com";
    ctx->local = variant & 2 ? long_local : "a.b-c+d,e/f_g=h ~x";
    ctx->sender_domain = "example.com";
    ctx->domain = "sub.example.com";
    ctx->ip = ip;
    ctx->helo = "helo.example.org";
    ctx->receiver = "mx.example.net";
    ctx->ptr_name = "ptr.example.org";
    ctx->now = 1700000000;
}

/* Expands a string the parser accepted as a domain-spec: it must succeed or fail only
 * for a label too long to cut, and fit in 253 bytes. */
static void expand_domain_spec(const char *spec, const spf_macro_ctx_t *ctx)
{
    char err[SPF_MACRO_ERR_LEN];

    if (spf_macro_check(spec, strlen(spec), 0, err) != 0)
        abort();
    if (spf_macro_expand(spec, strlen(spec), ctx, 0, 1, out, sizeof out, err) != 0) {
        check_err(err, sizeof err);
        if (!strstr(err, "label that alone exceeds"))
            abort();
        return;
    }
    if (strlen(out) > 253)
        abort();
}

static void check_record(const spf_record_t *r, const uint8_t *data, size_t size,
                         const spf_macro_ctx_t *ctx)
{
    unsigned dns_terms = 0;

    if (!spf_record_is_spf((const char *)data, size) || r->nterms > size / 2)
        abort();
    for (size_t i = 0; i < r->nterms; i++) {
        const spf_term_t *t = &r->terms[i];
        size_t tlen = strlen(t->text);

        if (!strchr("+-?~", t->qualifier) || t->qualifier == '\0')
            abort();
        if (tlen == 0 || tlen > size || !memmem(data, size, t->text, tlen))
            abort();
        if (t->cidr4 > 32 || t->cidr6 > 128)
            abort();
        switch (t->mech) {
        case SPF_MECH_INCLUDE:
        case SPF_MECH_EXISTS:
            if (!t->domain_spec)
                abort();
            /* fall through */
        case SPF_MECH_A:
        case SPF_MECH_MX:
        case SPF_MECH_PTR:
            dns_terms++;
            if (t->domain_spec)
                expand_domain_spec(t->domain_spec, ctx);
            break;
        case SPF_MECH_ALL:
        case SPF_MECH_IP4:
        case SPF_MECH_IP6:
            if (t->domain_spec)
                abort();
            break;
        default:
            abort();
        }
    }
    if (r->redirect) {
        dns_terms++;
        expand_domain_spec(r->redirect, ctx);
    }
    if (r->exp)
        expand_domain_spec(r->exp, ctx);
    if (dns_terms != r->dns_terms)
        abort();
}

/* Checking and expanding the same text must agree on whether it is valid, and say so
 * with the same words. */
static void check_macro_string(const char *text, size_t len, const spf_macro_ctx_t *ctx,
                               int explanation)
{
    char cerr[SPF_MACRO_ERR_LEN], xerr[SPF_MACRO_ERR_LEN];
    int valid = spf_macro_check(text, len, explanation, cerr) == 0;

    spf_macro_uses(text, len);
    if (spf_macro_expand(text, len, ctx, explanation, !explanation, out, sizeof out, xerr) == 0) {
        if (!valid || !memchr(out, '\0', sizeof out))
            abort();
        if (!explanation && strlen(out) > 253)
            abort();
        return;
    }
    check_err(xerr, sizeof xerr);
    if (!valid) {
        check_err(cerr, sizeof cerr);
        if (strcmp(cerr, xerr) != 0)
            abort();
    } else if (!strstr(xerr, "does not fit") && !strstr(xerr, "label that alone exceeds")) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[SPF_RECORD_ERR_LEN];
    spf_record_t *r = NULL;
    spf_macro_ctx_t ctx;
    netaddr_t ip;

    make_ctx(&ctx, &ip, size);
    if (spf_record_parse((const char *)data, size, &r, err) == 0) {
        if (!r)
            abort();
        check_record(r, data, size, &ctx);
        spf_record_free(r);
    } else {
        if (r)
            abort();
        check_err(err, sizeof err);
    }
    check_macro_string((const char *)data, size, &ctx, 1);
    check_macro_string((const char *)data, size, &ctx, 0);
    return 0;
}
