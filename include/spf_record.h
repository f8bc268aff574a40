/* spf_record.h - the native engine's SPF record parser (RFC 7208 section 4.6 and 12,
 * with errata): any byte string in, a parsed record or a precise syntax error out.
 *
 * Owns the parsed record: one allocation proportional to the input (no other
 * allocation, nothing unbounded), freed with spf_record_free. Strict: every syntax
 * error RFC 7208 makes a permerror is an error here (unknown mechanisms, bad
 * domain-specs and macros, bad CIDR lengths, duplicate redirect= or exp=, non-ASCII).
 * Also used to guard libspf2: a record this parser rejects never reaches it. */
#ifndef SPF_RECORD_H
#define SPF_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define SPF_RECORD_ERR_LEN 160
/* The longest record parsed: a TXT RDATA is at most 65535 bytes (RFC 1035 3.2.1), so
 * anything longer did not come from DNS. */
#define SPF_RECORD_MAX 65535

enum spf_mech {
    SPF_MECH_ALL,
    SPF_MECH_INCLUDE,
    SPF_MECH_A,
    SPF_MECH_MX,
    SPF_MECH_PTR,
    SPF_MECH_IP4,
    SPF_MECH_IP6,
    SPF_MECH_EXISTS,
};

typedef struct spf_term {
    enum spf_mech mech;
    char qualifier;           /* '+', '-', '~' or '?' ('+' when none was written) */
    const char *domain_spec;  /* macro-string after ':' (NUL-terminated), or NULL */
    unsigned cidr4, cidr6;    /* a, mx, ip4, ip6: prefix lengths (32 / 128 default) */
    uint8_t addr[16];         /* ip4 (first 4 bytes) and ip6 */
    const char *text;         /* the term as written, for explanations to people */
} spf_term_t;

typedef struct spf_record {
    size_t nterms;
    spf_term_t *terms;        /* mechanisms, in record order */
    const char *redirect;     /* domain-spec of redirect=, or NULL */
    const char *exp;          /* domain-spec of exp=, or NULL */
    size_t nunknown;          /* unknown modifiers (ignored, RFC 7208 6) */
    unsigned dns_terms;       /* include a mx ptr exists + redirect (4.6.4) */
} spf_record_t;

/* 1 when text (len bytes) is an SPF record: "v=spf1" (case-insensitive) followed by a
 * space or the end (RFC 7208 4.5). */
int spf_record_is_spf(const char *text, size_t len);

/* Parses len bytes of text, which must be an SPF record (spf_record_is_spf). 0 with
 * *out set, or -1 with err saying what and where, e.g.
 * "term 3 'a:foo.-bar': invalid domain-spec" or "duplicate redirect= modifier". */
int spf_record_parse(const char *text, size_t len, spf_record_t **out,
                     char err[SPF_RECORD_ERR_LEN]);
void spf_record_free(spf_record_t *r);

const char *spf_mech_name(enum spf_mech m);

#endif
