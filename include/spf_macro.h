/* spf_macro.h - macro expansion of RFC 7208 section 7 for the native engine.
 *
 * Owns nothing: it expands a macro-string (a domain-spec, or an explanation with the
 * c, r and t letters allowed) into a caller buffer, from the values in a context the
 * caller fills. %{p} needs DNS work (a validated PTR name, RFC 7208 5.5); the caller
 * learns from spf_macro_uses() that a string needs it and puts the name (or
 * "unknown") in the context before expanding. A domain-spec longer than 253 bytes
 * after expansion loses labels from the left (7.3). */
#ifndef SPF_MACRO_H
#define SPF_MACRO_H

#include <stddef.h>
#include "netaddr.h"

#define SPF_MACRO_ERR_LEN 128
/* The longest expansion kept: an explanation line (RFC 5321 reply text) or a name. */
#define SPF_MACRO_OUT_MAX 1024

enum {
    SPF_MACRO_USES_LOCALPART = 1 << 0,  /* l, s: the verdict depends on the local part */
    SPF_MACRO_USES_HELO = 1 << 1,       /* h */
    SPF_MACRO_USES_PTR = 1 << 2,        /* p: a PTR lookup is needed first */
};

typedef struct spf_macro_ctx {
    const char *sender;       /* s: "local@domain" */
    const char *local;        /* l */
    const char *sender_domain;/* o */
    const char *domain;       /* d: the current domain */
    const netaddr_t *ip;      /* i, c, v */
    const char *helo;         /* h */
    const char *receiver;     /* r (explanations only) */
    const char *ptr_name;     /* p: validated name or "unknown"; NULL if not looked up */
    long long now;            /* t (explanations only), seconds since the epoch */
} spf_macro_ctx_t;

/* 0 if text (len bytes) is a valid macro-string (explanation: 1 allows c, r, t),
 * else -1 with err naming the bad macro. */
int spf_macro_check(const char *text, size_t len, int explanation, char err[SPF_MACRO_ERR_LEN]);
/* SPF_MACRO_USES_* of a valid macro-string. */
unsigned spf_macro_uses(const char *text, size_t len);
/* Expands text into out (outlen bytes). 0, or -1 with err (invalid macro, or the
 * result does not fit). is_domain: the result is a name to query: one trailing dot is
 * dropped and the 253-byte left truncation of 7.3 applied. */
int spf_macro_expand(const char *text, size_t len, const spf_macro_ctx_t *ctx, int explanation,
                     int is_domain, char *out, size_t outlen, char err[SPF_MACRO_ERR_LEN]);

#endif
