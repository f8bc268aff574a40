/* spf_macro.c - macro-strings of RFC 7208 section 7: checking and expansion.
 *
 * Grammar (RFC 7208 7.1 and 12; ABNF literals are case-insensitive, so "%{S}" and
 * "%{dR}" are valid):
 *
 *     macro-string  = *( macro-expand / macro-literal )
 *     explain-string = *( macro-string / SP )
 *     macro-expand  = ( "%{" macro-letter transformers *delimiter "}" )
 *                     / "%%" / "%_" / "%-"
 *     macro-literal = %x21-24 / %x26-7E
 *     macro-letter  = "s" / "l" / "o" / "d" / "i" / "p" / "h" / "c" / "r" / "t" / "v"
 *     transformers  = *DIGIT [ "r" ]
 *     delimiter     = "." / "-" / "+" / "," / "/" / "_" / "="
 *
 * c, r and t only in explanations (7.3); a digit transformer must be nonzero.
 *
 * One tokenizer serves checking and expansion, so they cannot disagree about what is
 * valid. Expansion streams into a sink that can count without writing: a domain
 * result is measured first, then written from the first label that makes it fit in
 * 253 bytes (7.3), so no intermediate copy of unbounded size is ever needed. Part
 * splitting and reversal walk the value in place instead of building a list.
 *
 * The nibbles of an IPv6 %{i} are lower case in a domain name (the example of RFC
 * 7208 7.4; DNS ignores case there anyway) and upper case in an explanation, the
 * text people read: that is how RFC 4408 8.1 wrote them and what the conformance
 * suite's v-macro-ip6 expects. */
#include "spf_macro.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* RFC 7208 7.3: a name used in a query is cut from the left to this many bytes (the
 * longest domain name in text form, without its final dot). */
#define SPF_MACRO_DOMAIN_MAX 253
/* The longest computed value: 32 IPv6 nibbles with 31 dots, plus NUL. */
#define SPF_MACRO_VALUE_MAX 64
/* How much of a bad macro an error message repeats. */
#define SPF_MACRO_ERR_SAMPLE 24

static const char spf_macro_delims[] = ".-+,/_=";

enum spf_macro_tok_kind { TOK_TEXT, TOK_MACRO };

typedef struct spf_macro_tok {
    enum spf_macro_tok_kind kind;
    const char *text;     /* TOK_TEXT: the bytes it stands for */
    size_t text_len;
    char letter;          /* TOK_MACRO: lower-case macro letter */
    int upper;            /* written in upper case: URL-escape the result */
    size_t keep;          /* right-most parts kept, 0 for all */
    int reverse;
    unsigned delims;      /* bit i set: spf_macro_delims[i] splits; 0 means "." */
} spf_macro_tok_t;

static int spf_macro_is_delim(unsigned delims, char c)
{
    const char *d;

    if (delims == 0)
        return c == '.';
    d = strchr(spf_macro_delims, c);
    return c != '\0' && d && (delims & (1u << (d - spf_macro_delims)));
}

/* Writes a printable copy of text (at most SPF_MACRO_ERR_SAMPLE bytes of it) into
 * buf, so untrusted bytes never reach an error message raw. */
static void spf_macro_sample(char *buf, size_t buflen, const char *text, size_t len)
{
    size_t n = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < len && i < SPF_MACRO_ERR_SAMPLE; i++) {
        unsigned char c = (unsigned char)text[i];
        int w;

        if (c > 0x20 && c < 0x7f && c != '\'' && c != '\\')
            w = snprintf(buf + n, buflen - n, "%c", c);
        else
            w = snprintf(buf + n, buflen - n, "\\x%02x", c);
        if (w < 0 || (size_t)w >= buflen - n)
            return;
        n += (size_t)w;
    }
    if (len > SPF_MACRO_ERR_SAMPLE)
        snprintf(buf + n, buflen - n, "...");
}

/* Fails on the token at text[at]: quotes it (a whole "%{...}" when it is closed, else
 * the rest of the string) and says why. */
static int spf_macro_fail(char err[SPF_MACRO_ERR_LEN], const char *text, size_t len,
                          size_t at, size_t tok_len, const char *why)
{
    char sample[SPF_MACRO_ERR_SAMPLE * 4 + 4];

    if (tok_len == 0) {
        const char *close = memchr(text + at, '}', len - at);

        tok_len = close ? (size_t)(close - (text + at)) + 1 : len - at;
    }
    spf_macro_sample(sample, sizeof sample, text + at, tok_len);
    snprintf(err, SPF_MACRO_ERR_LEN, "'%s' at offset %zu: %s", sample, at, why);
    return -1;
}

/* Reads the token at text[*pos] and advances *pos past it. 0, or -1 with err. */
static int spf_macro_next(const char *text, size_t len, size_t *pos, int explanation,
                          spf_macro_tok_t *t, char err[SPF_MACRO_ERR_LEN])
{
    size_t at = *pos, i;
    unsigned char c = (unsigned char)text[at];
    char letter;

    memset(t, 0, sizeof *t);
    if (c != '%') {
        if (c == ' ' && !explanation)
            return spf_macro_fail(err, text, len, at, 1, "space outside an explanation");
        if (c < 0x20 || c > 0x7e) {
            char why[48];

            snprintf(why, sizeof why, "byte 0x%02x is not visible ASCII", c);
            return spf_macro_fail(err, text, len, at, 1, why);
        }
        t->kind = TOK_TEXT;
        t->text = text + at;
        t->text_len = 1;
        *pos = at + 1;
        return 0;
    }
    if (at + 1 >= len)
        return spf_macro_fail(err, text, len, at, 1, "'%' ends the string");
    t->kind = TOK_TEXT;
    t->text_len = 1;
    switch (text[at + 1]) {
    case '%':
        t->text = "%";
        *pos = at + 2;
        return 0;
    case '_':
        t->text = " ";
        *pos = at + 2;
        return 0;
    case '-':
        t->text = "%20";
        t->text_len = 3;
        *pos = at + 2;
        return 0;
    case '{':
        break;
    default:
        return spf_macro_fail(err, text, len, at, 2,
                              "'%' not followed by '{', '%', '_' or '-'");
    }
    t->kind = TOK_MACRO;
    i = at + 2;
    if (i >= len)
        return spf_macro_fail(err, text, len, at, 0, "macro not closed by '}'");
    letter = text[i];
    t->upper = letter >= 'A' && letter <= 'Z';
    if (t->upper)
        letter = (char)(letter - 'A' + 'a');
    if (!strchr("slodiphcrtv", letter) || letter == '\0')
        return spf_macro_fail(err, text, len, at, 0, "unknown macro letter");
    if (!explanation && strchr("crt", letter))
        return spf_macro_fail(err, text, len, at, 0,
                              "macro letters c, r and t are allowed only in explanations");
    t->letter = letter;
    i++;
    if (i < len && text[i] >= '0' && text[i] <= '9') {
        size_t keep = 0;

        /* Saturates: no value has SIZE_MAX parts, so it still means "all of them". */
        while (i < len && text[i] >= '0' && text[i] <= '9') {
            size_t d = (size_t)(text[i] - '0');

            keep = keep > (SIZE_MAX - d) / 10 ? SIZE_MAX : keep * 10 + d;
            i++;
        }
        if (keep == 0)
            return spf_macro_fail(err, text, len, at, 0, "digit transformer must not be 0");
        t->keep = keep;
    }
    if (i < len && (text[i] == 'r' || text[i] == 'R')) {
        t->reverse = 1;
        i++;
    }
    while (i < len && text[i] != '}') {
        const char *d = strchr(spf_macro_delims, text[i]);

        if (!d || text[i] == '\0')
            return spf_macro_fail(err, text, len, at, 0,
                                  "expected a delimiter (.-+,/_=) or '}' in macro");
        t->delims |= 1u << (d - spf_macro_delims);
        i++;
    }
    if (i >= len)
        return spf_macro_fail(err, text, len, at, 0, "macro not closed by '}'");
    *pos = i + 1;
    return 0;
}

int spf_macro_check(const char *text, size_t len, int explanation, char err[SPF_MACRO_ERR_LEN])
{
    spf_macro_tok_t t;
    size_t pos = 0;

    while (pos < len)
        if (spf_macro_next(text, len, &pos, explanation, &t, err) != 0)
            return -1;
    return 0;
}

unsigned spf_macro_uses(const char *text, size_t len)
{
    char err[SPF_MACRO_ERR_LEN];
    spf_macro_tok_t t;
    size_t pos = 0;
    unsigned uses = 0;

    while (pos < len && spf_macro_next(text, len, &pos, 1, &t, err) == 0) {
        if (t.kind != TOK_MACRO)
            continue;
        if (t.letter == 'l' || t.letter == 's')
            uses |= SPF_MACRO_USES_LOCALPART;
        else if (t.letter == 'h')
            uses |= SPF_MACRO_USES_HELO;
        else if (t.letter == 'p')
            uses |= SPF_MACRO_USES_PTR;
    }
    return uses;
}

/* Where expanded bytes go. Every byte gets a logical position; only those in
 * [from, to) are stored, so the same expansion can measure, look for a label
 * boundary, or write a window of the result. */
typedef struct spf_macro_sink {
    char *out;
    size_t outlen;
    size_t pos;           /* bytes produced so far */
    size_t from, to;      /* window stored in out */
    size_t n;             /* bytes stored */
    int overflow;         /* the window did not fit in out */
    char last;            /* last byte produced */
    size_t dot_from;      /* look for the first '.' at or after this position... */
    size_t dot_at;        /* ...and note it here (SIZE_MAX: none yet) */
} spf_macro_sink_t;

static void spf_macro_put(spf_macro_sink_t *s, char c)
{
    if (s->pos >= s->from && s->pos < s->to) {
        if (s->n + 1 < s->outlen)
            s->out[s->n++] = c;
        else
            s->overflow = 1;
    }
    if (c == '.' && s->dot_at == SIZE_MAX && s->pos >= s->dot_from)
        s->dot_at = s->pos;
    s->last = c;
    s->pos++;
}

/* RFC 3986 2.3 unreserved characters survive URL escaping. */
static int spf_macro_unreserved(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

static void spf_macro_put_value(spf_macro_sink_t *s, const char *v, size_t len, int escape)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];

        if (!escape || spf_macro_unreserved((char)c)) {
            spf_macro_put(s, (char)c);
        } else {
            spf_macro_put(s, '%');
            spf_macro_put(s, hex[c >> 4]);
            spf_macro_put(s, hex[c & 15]);
        }
    }
}

/* Emits value v split on the token's delimiters, reversed if asked, its right-most
 * t->keep parts kept, rejoined with "." (7.3). */
static void spf_macro_put_parts(spf_macro_sink_t *s, const char *v, size_t len,
                                const spf_macro_tok_t *t)
{
    size_t parts = 1, keep, i, start, end;

    for (i = 0; i < len; i++)
        parts += spf_macro_is_delim(t->delims, v[i]);
    keep = t->keep == 0 || t->keep > parts ? parts : t->keep;
    if (!t->reverse) {
        /* The last keep parts: skip the first parts - keep of them. */
        size_t skip = parts - keep;

        for (start = 0; skip > 0; start++)
            if (spf_macro_is_delim(t->delims, v[start]))
                skip--;
        for (i = start; i < len; i++) {
            if (spf_macro_is_delim(t->delims, v[i]))
                spf_macro_put(s, '.');
            else
                spf_macro_put_value(s, v + i, 1, t->upper);
        }
        return;
    }
    /* Reversed, the last keep parts are the first keep parts of v, last one first:
     * find where part keep - 1 ends and walk back to the start. */
    for (end = 0, i = keep; end < len; end++)
        if (spf_macro_is_delim(t->delims, v[end]) && --i == 0)
            break;
    for (;;) {
        start = end;
        while (start > 0 && !spf_macro_is_delim(t->delims, v[start - 1]))
            start--;
        spf_macro_put_value(s, v + start, end - start, t->upper);
        if (start == 0)
            break;
        spf_macro_put(s, '.');
        end = start - 1;
    }
}

/* ::ffff:0:0/96 (RFC 4291 2.5.5.2): such a client is an IPv4 client (RFC 7208 5). */
static int spf_macro_v4(const netaddr_t *ip, const uint8_t **a4)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (ip->family == AF_INET) {
        *a4 = ip->addr;
        return 1;
    }
    if (memcmp(ip->addr, mapped, sizeof mapped) == 0) {
        *a4 = ip->addr + sizeof mapped;
        return 1;
    }
    return 0;
}

/* RFC 5952 4: lower-case hex, no leading zeros, the longest run of two or more zero
 * groups (the first of equals) shortened to "::". */
static void spf_macro_format_v6(char *buf, size_t buflen, const uint8_t *a)
{
    unsigned g[8];
    int best = -1, best_len = 0, n = 0;

    for (int i = 0; i < 8; i++)
        g[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
    for (int i = 0; i < 8; i++) {
        int run = 0;

        while (i + run < 8 && g[i + run] == 0)
            run++;
        if (run >= 2 && run > best_len) {
            best = i;
            best_len = run;
        }
        if (run > 0)
            i += run - 1;
    }
    buf[0] = '\0';
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            n += snprintf(buf + n, buflen - (size_t)n, "::");
            i += best_len - 1;
            continue;
        }
        n += snprintf(buf + n, buflen - (size_t)n, "%s%x",
                      i > 0 && i != best + best_len ? ":" : "", g[i]);
    }
}

/* The value of a macro letter, or NULL with err when the context lacks it. buf holds
 * computed values. */
static const char *spf_macro_value(const spf_macro_tok_t *t, const spf_macro_ctx_t *ctx,
                                   int explanation, char *buf, size_t buflen,
                                   char err[SPF_MACRO_ERR_LEN])
{
    const uint8_t *a4;

    switch (t->letter) {
    case 's':
        return ctx->sender ? ctx->sender : "";
    case 'l':
        return ctx->local ? ctx->local : "";
    case 'o':
        return ctx->sender_domain ? ctx->sender_domain : "";
    case 'd':
        return ctx->domain ? ctx->domain : "";
    case 'h':
        return ctx->helo ? ctx->helo : "";
    case 'p':
        if (!ctx->ptr_name)
            snprintf(err, SPF_MACRO_ERR_LEN, "%%{p} needs the validated PTR name first");
        return ctx->ptr_name;
    case 'r':
        /* RFC 7208 7.3: "unknown" when the receiver has no name to give. */
        return ctx->receiver && ctx->receiver[0] ? ctx->receiver : "unknown";
    case 't':
        snprintf(buf, buflen, "%lld", ctx->now);
        return buf;
    default:
        break;
    }
    /* i, c and v describe the client address. */
    if (!ctx->ip) {
        snprintf(err, SPF_MACRO_ERR_LEN, "%%{%c} needs the client address", t->letter);
        return NULL;
    }
    if (t->letter == 'v')
        return spf_macro_v4(ctx->ip, &a4) ? "in-addr" : "ip6";
    if (spf_macro_v4(ctx->ip, &a4)) {
        snprintf(buf, buflen, "%u.%u.%u.%u", a4[0], a4[1], a4[2], a4[3]);
    } else if (t->letter == 'c') {
        spf_macro_format_v6(buf, buflen, ctx->ip->addr);
    } else {
        const char *hex = explanation ? "0123456789ABCDEF" : "0123456789abcdef";
        size_t n = 0;

        for (int i = 0; i < 16; i++) {
            buf[n++] = hex[ctx->ip->addr[i] >> 4];
            buf[n++] = '.';
            buf[n++] = hex[ctx->ip->addr[i] & 15];
            buf[n++] = i < 15 ? '.' : '\0';
        }
    }
    return buf;
}

/* One expansion of the whole string into s. 0, or -1 with err. */
static int spf_macro_run(const char *text, size_t len, const spf_macro_ctx_t *ctx,
                         int explanation, spf_macro_sink_t *s, char err[SPF_MACRO_ERR_LEN])
{
    char buf[SPF_MACRO_VALUE_MAX];
    spf_macro_tok_t t;
    size_t pos = 0;

    while (pos < len) {
        const char *v;

        if (spf_macro_next(text, len, &pos, explanation, &t, err) != 0)
            return -1;
        if (t.kind == TOK_TEXT) {
            spf_macro_put_value(s, t.text, t.text_len, 0);
            continue;
        }
        v = spf_macro_value(&t, ctx, explanation, buf, sizeof buf, err);
        if (!v)
            return -1;
        spf_macro_put_parts(s, v, strlen(v), &t);
    }
    return 0;
}

static void spf_macro_sink_init(spf_macro_sink_t *s, char *out, size_t outlen, size_t from,
                                size_t to)
{
    memset(s, 0, sizeof *s);
    s->out = out;
    s->outlen = outlen;
    s->from = from;
    s->to = to;
    s->dot_at = SIZE_MAX;
    s->dot_from = SIZE_MAX;
}

int spf_macro_expand(const char *text, size_t len, const spf_macro_ctx_t *ctx, int explanation,
                     int is_domain, char *out, size_t outlen, char err[SPF_MACRO_ERR_LEN])
{
    spf_macro_sink_t s;
    size_t from = 0, end;

    if (outlen == 0) {
        snprintf(err, SPF_MACRO_ERR_LEN, "no room for the expansion");
        return -1;
    }
    out[0] = '\0';
    /* Measure first: the length decides where a domain name starts. */
    spf_macro_sink_init(&s, out, outlen, 0, 0);
    if (spf_macro_run(text, len, ctx, explanation, &s, err) != 0)
        return -1;
    end = s.pos;
    if (is_domain && end > 0 && s.last == '.')
        end--;        /* "example.com." names example.com */
    if (is_domain && end > SPF_MACRO_DOMAIN_MAX) {
        /* Drop labels from the left: start after the first dot that leaves at most
         * SPF_MACRO_DOMAIN_MAX bytes. */
        spf_macro_sink_init(&s, out, outlen, 0, 0);
        s.dot_from = end - SPF_MACRO_DOMAIN_MAX - 1;
        if (spf_macro_run(text, len, ctx, explanation, &s, err) != 0)
            return -1;
        if (s.dot_at == SIZE_MAX || s.dot_at + 1 >= end) {
            snprintf(err, SPF_MACRO_ERR_LEN,
                     "expanded domain has a label that alone exceeds %d bytes",
                     SPF_MACRO_DOMAIN_MAX);
            return -1;
        }
        from = s.dot_at + 1;
    }
    spf_macro_sink_init(&s, out, outlen, from, end);
    if (spf_macro_run(text, len, ctx, explanation, &s, err) != 0)
        return -1;
    if (s.overflow) {
        snprintf(err, SPF_MACRO_ERR_LEN, "expansion of %zu bytes does not fit in %zu",
                 end - from, outlen - 1);
        out[0] = '\0';
        return -1;
    }
    out[s.n] = '\0';
    return 0;
}
