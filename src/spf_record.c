/* spf_record.c - the SPF record parser of the native engine (RFC 7208 4.6, 5, 6, 12).
 *
 * Grammar (ABNF literals are case-insensitive):
 *
 *     record      = "v=spf1" *( 1*SP ( directive / modifier ) ) *SP
 *     directive   = [ "+" / "-" / "?" / "~" ] mechanism
 *     mechanism   = "all" / "include:" domain-spec / "exists:" domain-spec
 *                 / "a" [ ":" domain-spec ] [ dual-cidr ] / "mx" [ ":" domain-spec ] [ dual-cidr ]
 *                 / "ptr" [ ":" domain-spec ]
 *                 / "ip4:" ip4-network [ "/" cidr4 ] / "ip6:" ip6-network [ "/" cidr6 ]
 *     dual-cidr   = [ "/" cidr4 ] [ "//" cidr6 ]
 *     cidr4       = "0" / %x31-39 0*1DIGIT (0..32);  cidr6 = "0" / %x31-39 0*2DIGIT (0..128)
 *     modifier    = "redirect=" domain-spec / "exp=" domain-spec / name "=" macro-string
 *     name        = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
 *     domain-spec = macro-string ( ( "." toplabel [ "." ] ) / macro-expand )
 *     toplabel    = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
 *
 * A term is a modifier when it starts with a name and "="; anything else is a
 * directive. "redirect" and "exp" are never unknown modifiers, so a bad value of theirs
 * is an error rather than an ignored modifier (the erratum the conformance suite's
 * redirect-syntax-error and exp-syntax-error follow). Only SP separates terms: any
 * other byte outside %x21-7E (NUL, CR, LF, TAB, non-ASCII) is an error wherever it is.
 *
 * A domain-spec may contain "/" (a:foo:bar/baz.example.com is valid), so a dual-cidr is
 * found from the end of the term; a trailing "/digits" can never end a valid
 * domain-spec, so reading it as a prefix length loses no valid record.
 *
 * The record is one allocation: the spf_record_t, then its terms, then the strings
 * (each term's text and domain-spec, redirect= and exp= values). Their total is at most
 * twice the input plus a NUL per string, so it is sized before parsing begins. */
#include "spf_record.h"

#include "spf_macro.h"

#include <arpa/inet.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPF_RECORD_VERSION "v=spf1"
#define SPF_RECORD_VERSION_LEN (sizeof SPF_RECORD_VERSION - 1)
/* Room for the part of a term an error message repeats (non-printable bytes take four,
 * as \xNN): enough to find it in the record, short enough to leave room in
 * SPF_RECORD_ERR_LEN for the reason. */
#define SPF_RECORD_ERR_SAMPLE 52
/* The longest IPv6 text inet_pton can accept, with its NUL (INET6_ADDRSTRLEN). */
#define SPF_RECORD_IP6_TEXT_MAX 46

static const struct {
    const char *name;
    enum spf_mech mech;
} spf_record_mechs[] = {
    {"all", SPF_MECH_ALL},   {"include", SPF_MECH_INCLUDE}, {"a", SPF_MECH_A},
    {"mx", SPF_MECH_MX},     {"ptr", SPF_MECH_PTR},         {"ip4", SPF_MECH_IP4},
    {"ip6", SPF_MECH_IP6},   {"exists", SPF_MECH_EXISTS},
};

/* Parsing state: the record being filled and the next free byte of its storage. */
typedef struct spf_record_parse {
    spf_record_t *rec;
    char *store;
    unsigned term_no;           /* 1-based, counting modifiers too */
    const char *term;           /* the term being parsed, for error messages */
    size_t term_len;
    char *err;
} spf_record_parse_t;

static char spf_record_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int spf_record_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int spf_record_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int spf_record_alnum(char c)
{
    return spf_record_alpha(c) || spf_record_digit(c);
}

/* 1 if text (len bytes) is lit, ignoring ASCII case. */
static int spf_record_ieq(const char *text, size_t len, const char *lit)
{
    size_t n = strlen(lit);

    if (len != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (spf_record_lower(text[i]) != lit[i])
            return 0;
    return 1;
}

int spf_record_is_spf(const char *text, size_t len)
{
    return len >= SPF_RECORD_VERSION_LEN &&
           spf_record_ieq(text, SPF_RECORD_VERSION_LEN, SPF_RECORD_VERSION) &&
           (len == SPF_RECORD_VERSION_LEN || text[SPF_RECORD_VERSION_LEN] == ' ');
}

const char *spf_mech_name(enum spf_mech m)
{
    for (size_t i = 0; i < sizeof spf_record_mechs / sizeof spf_record_mechs[0]; i++)
        if (spf_record_mechs[i].mech == m)
            return spf_record_mechs[i].name;
    return "?";
}

static int spf_record_fail(spf_record_parse_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Fails on the current term: "term N 'sample': why", the term made printable. */
static int spf_record_fail(spf_record_parse_t *p, const char *fmt, ...)
{
    char sample[SPF_RECORD_ERR_SAMPLE];
    size_t n = 0, i;
    int w;
    va_list ap;

    /* Room is kept for "..." and the NUL. */
    for (i = 0; i < p->term_len; i++) {
        unsigned char c = (unsigned char)p->term[i];
        int printable = c > 0x20 && c < 0x7f && c != '\'' && c != '\\';

        if (n + (printable ? 1 : 4) + 4 > sizeof sample)
            break;
        if (printable)
            sample[n++] = (char)c;
        else
            n += (size_t)snprintf(sample + n, sizeof sample - n, "\\x%02x", c);
    }
    memcpy(sample + n, i < p->term_len ? "..." : "", i < p->term_len ? 4 : 1);
    w = snprintf(p->err, SPF_RECORD_ERR_LEN, "term %u '%s': ", p->term_no, sample);
    va_start(ap, fmt);
    vsnprintf(p->err + w, SPF_RECORD_ERR_LEN - (size_t)w, fmt, ap);
    va_end(ap);
    return -1;
}

/* Copies len bytes into the record's storage as a NUL-terminated string. */
static const char *spf_record_keep(spf_record_parse_t *p, const char *s, size_t len)
{
    char *copy = p->store;

    memcpy(copy, s, len);
    copy[len] = '\0';
    p->store += len + 1;
    return copy;
}

/* Checks the macro-string s (len bytes, inside the current term). The term's bytes
 * before s ("-exists:", "redirect=") are plain macro-literals, so checking from the
 * start of the term gives the same verdict with offsets that count from the term. */
static int spf_record_macros(spf_record_parse_t *p, const char *s, size_t len)
{
    char merr[SPF_MACRO_ERR_LEN];

    if (spf_macro_check(p->term, (size_t)(s - p->term) + len, 0, merr) != 0)
        return spf_record_fail(p, "%s", merr);
    return 0;
}

/* 1 if s (len bytes, a valid macro-string) ends with a macro-expand. */
static int spf_record_ends_in_macro(const char *s, size_t len)
{
    int last_macro = 0;

    for (size_t i = 0; i < len;) {
        if (s[i] != '%') {
            i++;
            last_macro = 0;
        } else if (s[i + 1] == '{') {
            i = (size_t)((const char *)memchr(s + i, '}', len - i) - s) + 1;
            last_macro = 1;
        } else {
            i += 2;
            last_macro = 1;
        }
    }
    return last_macro;
}

/* toplabel: letters and digits with at least one letter (RFC 3696 2: a top-level
 * domain is never all-numeric, so "a:192.0.2.1" is caught as the mistake it is), or
 * letters, digits and inner hyphens ("xn--zckzah"). */
static int spf_record_toplabel(const char *s, size_t len)
{
    int hyphen = 0, alpha = 0;

    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '-')
            hyphen = 1;
        else if (spf_record_alpha(s[i]))
            alpha = 1;
        else if (!spf_record_digit(s[i]))
            return 0;
    }
    return hyphen ? spf_record_alnum(s[0]) && spf_record_alnum(s[len - 1]) : alpha;
}

/* Checks a domain-spec; what names it in an error ("include:", "redirect="). */
static int spf_record_domain_spec(spf_record_parse_t *p, const char *s, size_t len,
                                  const char *what)
{
    size_t end = len, dot;

    if (len == 0)
        return spf_record_fail(p, "empty domain-spec after %s", what);
    if (spf_record_macros(p, s, len) != 0)
        return -1;
    if (spf_record_ends_in_macro(s, len))
        return 0;
    if (s[end - 1] == '.')
        end--;
    for (dot = end; dot > 0 && s[dot - 1] != '.'; dot--)
        ;
    if (dot == 0 || !spf_record_toplabel(s + dot, end - dot))
        return spf_record_fail(p, "invalid domain-spec: it must end in a macro or in '.' "
                                  "and a top-level label");
    return 0;
}

/* Parses the digits of a prefix length (len bytes at s): no leading zero, at most
 * max. 0 with *out, or -1 with the error set. */
static int spf_record_cidr(spf_record_parse_t *p, const char *s, size_t len, unsigned max,
                           unsigned *out)
{
    unsigned v = 0;

    if (len == 0)
        return spf_record_fail(p, "'/' without a prefix length");
    for (size_t i = 0; i < len; i++) {
        if (!spf_record_digit(s[i]))
            return spf_record_fail(p, "invalid prefix length");
        /* 4 digits already exceed any maximum; stop before v can overflow. */
        if (i == 3)
            return spf_record_fail(p, "prefix length must be 0 to %u", max);
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (len > 1 && s[0] == '0')
        return spf_record_fail(p, "prefix length with a leading zero");
    if (v > max)
        return spf_record_fail(p, "prefix length must be 0 to %u", max);
    *out = v;
    return 0;
}

/* ip4-network: four qnums (0-255, no leading zeros) joined by dots. */
static int spf_record_ip4(const char *s, size_t len, uint8_t *addr)
{
    size_t i = 0;

    for (int part = 0; part < 4; part++) {
        unsigned v = 0;
        size_t start = i;

        if (part > 0) {
            if (i >= len || s[i] != '.')
                return -1;
            start = ++i;
        }
        while (i < len && spf_record_digit(s[i]) && i - start < 3)
            v = v * 10 + (unsigned)(s[i++] - '0');
        if (i == start || v > 255 || (i - start > 1 && s[start] == '0'))
            return -1;
        addr[part] = (uint8_t)v;
    }
    return i == len ? 0 : -1;
}

static int spf_record_ip6(const char *s, size_t len, uint8_t *addr)
{
    char text[SPF_RECORD_IP6_TEXT_MAX];

    if (len >= sizeof text)
        return -1;
    memcpy(text, s, len);
    text[len] = '\0';
    return inet_pton(AF_INET6, text, addr) == 1 ? 0 : -1;
}

/* ip4: / ip6: arguments after the ':': network, then an optional "/" prefix length. */
static int spf_record_ip(spf_record_parse_t *p, spf_term_t *t, const char *arg, size_t len)
{
    const char *slash = memchr(arg, '/', len);
    size_t net_len = slash ? (size_t)(slash - arg) : len;
    int v4 = t->mech == SPF_MECH_IP4;

    if (net_len == 0)
        return spf_record_fail(p, "missing %s address", v4 ? "IPv4" : "IPv6");
    if (v4 ? spf_record_ip4(arg, net_len, t->addr) : spf_record_ip6(arg, net_len, t->addr))
        return spf_record_fail(p, "invalid %s address", v4 ? "IPv4" : "IPv6");
    if (!slash)
        return 0;
    return spf_record_cidr(p, slash + 1, len - net_len - 1, v4 ? 32 : 128,
                           v4 ? &t->cidr4 : &t->cidr6);
}

/* Length of the run of digits that ends s[0..len). */
static size_t spf_record_digits_at_end(const char *s, size_t len)
{
    size_t n = 0;

    while (n < len && spf_record_digit(s[len - 1 - n]))
        n++;
    return n;
}

/* a and mx: strips a dual-cidr from the end of arg (*len shrinks) and parses it. */
static int spf_record_dual_cidr(spf_record_parse_t *p, spf_term_t *t, const char *arg,
                                size_t *len)
{
    size_t n = *len, d = spf_record_digits_at_end(arg, n);

    if (d > 0 && n - d >= 2 && arg[n - d - 1] == '/' && arg[n - d - 2] == '/') {
        if (spf_record_cidr(p, arg + n - d, d, 128, &t->cidr6) != 0)
            return -1;
        n -= d + 2;
        d = spf_record_digits_at_end(arg, n);
    }
    if (d > 0 && n - d >= 1 && arg[n - d - 1] == '/') {
        if (spf_record_cidr(p, arg + n - d, d, 32, &t->cidr4) != 0)
            return -1;
        n -= d + 1;
    }
    *len = n;
    return 0;
}

/* Length of a modifier name at the start of s followed by "=", or 0 if s does not
 * start that way. */
static size_t spf_record_modifier_name(const char *s, size_t len)
{
    size_t i = 1;

    if (len == 0 || !spf_record_alpha(s[0]))
        return 0;
    while (i < len && (spf_record_alnum(s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.'))
        i++;
    return i < len && s[i] == '=' ? i : 0;
}

static int spf_record_modifier(spf_record_parse_t *p, const char *s, size_t len, size_t name_len)
{
    const char *value = s + name_len + 1;
    size_t value_len = len - name_len - 1;
    const char **slot = NULL;

    if (spf_record_ieq(s, name_len, "redirect"))
        slot = &p->rec->redirect;
    else if (spf_record_ieq(s, name_len, "exp"))
        slot = &p->rec->exp;
    if (!slot) {
        /* Unknown modifiers are ignored (RFC 7208 6), but must be well-formed. */
        if (spf_record_macros(p, value, value_len) != 0)
            return -1;
        p->rec->nunknown++;
        return 0;
    }
    if (*slot)
        return spf_record_fail(p, "duplicate %s= modifier", slot == &p->rec->exp ? "exp" : "redirect");
    if (spf_record_domain_spec(p, value, value_len, slot == &p->rec->exp ? "exp=" : "redirect=") != 0)
        return -1;
    *slot = spf_record_keep(p, value, value_len);
    if (slot == &p->rec->redirect)
        p->rec->dns_terms++;
    return 0;
}

static int spf_record_mechanism(spf_record_parse_t *p, const char *s, size_t len)
{
    spf_term_t *t = &p->rec->terms[p->rec->nterms];
    size_t name_len = 0, arg_len;
    const char *arg, *name;
    size_t i;

    memset(t, 0, sizeof *t);
    t->qualifier = '+';
    t->cidr4 = 32;
    t->cidr6 = 128;
    if (strchr("+-?~", s[0])) {
        t->qualifier = s[0];
        s++;
        len--;
    }
    if (len == 0)
        return spf_record_fail(p, "qualifier without a mechanism");
    if (spf_record_modifier_name(s, len) > 0)
        return spf_record_fail(p, "a modifier takes no qualifier");
    while (name_len < len && s[name_len] != ':' && s[name_len] != '/')
        name_len++;
    name = s;
    arg = s + name_len;
    arg_len = len - name_len;
    for (i = 0; i < sizeof spf_record_mechs / sizeof spf_record_mechs[0]; i++)
        if (spf_record_ieq(name, name_len, spf_record_mechs[i].name))
            break;
    if (i == sizeof spf_record_mechs / sizeof spf_record_mechs[0]) {
        const char *eq = memchr(name, '=', name_len);

        if (eq == name)
            return spf_record_fail(p, "modifier without a name");
        if (eq)
            return spf_record_fail(p, "invalid modifier name: it must start with a letter "
                                      "and hold only letters, digits, '-', '_' and '.'");
        if (name_len == 0)
            return spf_record_fail(p, "missing mechanism name");
        return spf_record_fail(p, "unknown mechanism");
    }
    t->mech = spf_record_mechs[i].mech;
    switch (t->mech) {
    case SPF_MECH_ALL:
        if (arg_len > 0)
            return spf_record_fail(p, "'all' takes no argument");
        break;
    case SPF_MECH_INCLUDE:
    case SPF_MECH_EXISTS:
    case SPF_MECH_PTR:
        if (arg_len == 0 && t->mech == SPF_MECH_PTR)
            break;
        if (arg_len == 0 || arg[0] != ':')
            return spf_record_fail(p, arg_len == 0 ? "'%s' needs ':' and a domain-spec"
                                                   : "'%s' takes no prefix length",
                                   spf_record_mechs[i].name);
        if (spf_record_domain_spec(p, arg + 1, arg_len - 1, spf_record_mechs[i].name) != 0)
            return -1;
        t->domain_spec = spf_record_keep(p, arg + 1, arg_len - 1);
        break;
    case SPF_MECH_A:
    case SPF_MECH_MX:
        if (spf_record_dual_cidr(p, t, arg, &arg_len) != 0)
            return -1;
        if (arg_len == 0)
            break;
        if (arg[0] != ':')
            return spf_record_fail(p, "invalid prefix length");
        if (spf_record_domain_spec(p, arg + 1, arg_len - 1, spf_record_mechs[i].name) != 0)
            return -1;
        t->domain_spec = spf_record_keep(p, arg + 1, arg_len - 1);
        break;
    case SPF_MECH_IP4:
    case SPF_MECH_IP6:
        if (arg_len == 0 || arg[0] != ':')
            return spf_record_fail(p, "'%s' needs ':' and an address", spf_record_mechs[i].name);
        if (spf_record_ip(p, t, arg + 1, arg_len - 1) != 0)
            return -1;
        break;
    }
    if (t->mech != SPF_MECH_ALL && t->mech != SPF_MECH_IP4 && t->mech != SPF_MECH_IP6)
        p->rec->dns_terms++;
    t->text = spf_record_keep(p, p->term, p->term_len);
    p->rec->nterms++;
    return 0;
}

static int spf_record_term(spf_record_parse_t *p, const char *s, size_t len)
{
    size_t name_len;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x21 || c > 0x7e)
            return spf_record_fail(p, "byte 0x%02x at offset %zu is not visible ASCII", c, i);
    }
    name_len = spf_record_modifier_name(s, len);
    if (name_len > 0)
        return spf_record_modifier(p, s, len, name_len);
    return spf_record_mechanism(p, s, len);
}

int spf_record_parse(const char *text, size_t len, spf_record_t **out,
                     char err[SPF_RECORD_ERR_LEN])
{
    spf_record_parse_t p;
    size_t nterms = 0, terms_off, store_off, size, i;
    spf_record_t *rec;

    *out = NULL;
    if (len > SPF_RECORD_MAX) {
        snprintf(err, SPF_RECORD_ERR_LEN, "record of %zu bytes is longer than %d", len,
                 SPF_RECORD_MAX);
        return -1;
    }
    if (!spf_record_is_spf(text, len)) {
        snprintf(err, SPF_RECORD_ERR_LEN, "not an SPF record: it must start with \"v=spf1\" "
                                          "and a space or end there");
        return -1;
    }
    for (i = SPF_RECORD_VERSION_LEN; i < len; i++)
        if (text[i] != ' ' && text[i - 1] == ' ')
            nterms++;
    /* Strings: each term's text and at most one value, each no longer than the term,
     * plus their NULs. */
    terms_off = (sizeof *rec + alignof(spf_term_t) - 1) / alignof(spf_term_t) *
                alignof(spf_term_t);
    store_off = terms_off + nterms * sizeof(spf_term_t);
    size = store_off + 2 * len + 2 * nterms + 1;
    rec = calloc(1, size);
    if (!rec) {
        snprintf(err, SPF_RECORD_ERR_LEN, "out of memory for a record of %zu bytes", len);
        return -1;
    }
    rec->terms = (spf_term_t *)((char *)rec + terms_off);
    memset(&p, 0, sizeof p);
    p.rec = rec;
    p.store = (char *)rec + store_off;
    p.err = err;
    for (i = SPF_RECORD_VERSION_LEN; i < len;) {
        size_t start;

        if (text[i] == ' ') {
            i++;
            continue;
        }
        start = i;
        while (i < len && text[i] != ' ')
            i++;
        p.term_no++;
        p.term = text + start;
        p.term_len = i - start;
        if (spf_record_term(&p, p.term, p.term_len) != 0) {
            free(rec);
            return -1;
        }
    }
    *out = rec;
    return 0;
}

void spf_record_free(spf_record_t *r)
{
    free(r);
}
