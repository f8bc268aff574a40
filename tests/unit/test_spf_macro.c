// unit-deps: spf_macro netaddr
#include "spf_macro.h"
#include "unit.h"

#include <string.h>
#include <sys/socket.h>

/* The context of RFC 7208 7.4's examples. */
static netaddr_t ip4_example, ip6_example;
static spf_macro_ctx_t rfc_ctx;

static void setup(void)
{
    netaddr_parse(&ip4_example, "192.0.2.3");
    netaddr_parse(&ip6_example, "2001:db8::cb01");
    memset(&rfc_ctx, 0, sizeof rfc_ctx);
    rfc_ctx.sender = "strong-bad@email.example.com";
    rfc_ctx.local = "strong-bad";
    rfc_ctx.sender_domain = "email.example.com";
    rfc_ctx.domain = "email.example.com";
    rfc_ctx.ip = &ip4_example;
    rfc_ctx.helo = "mx.example.org";
    rfc_ctx.receiver = "mx.example.net";
    rfc_ctx.ptr_name = "mx.example.org";
    rfc_ctx.now = 1700000000;
}

static char out[SPF_MACRO_OUT_MAX];
static char err[SPF_MACRO_ERR_LEN];

/* The expansion of text, or "ERR: <error>". */
static const char *expand_as(const char *text, const spf_macro_ctx_t *ctx, int explanation,
                             int is_domain)
{
    static char buf[SPF_MACRO_OUT_MAX + SPF_MACRO_ERR_LEN];

    err[0] = '\0';
    if (spf_macro_expand(text, strlen(text), ctx, explanation, is_domain, out, sizeof out,
                         err) != 0) {
        snprintf(buf, sizeof buf, "ERR: %s", err);
        return buf;
    }
    return out;
}

static const char *domain(const char *text, const spf_macro_ctx_t *ctx)
{
    return expand_as(text, ctx, 0, 1);
}

static const char *explain(const char *text, const spf_macro_ctx_t *ctx)
{
    return expand_as(text, ctx, 1, 0);
}

/* spf_macro_check's verdict as "ok" or its error text. */
static const char *check(const char *text, int explanation)
{
    err[0] = '\0';
    if (spf_macro_check(text, strlen(text), explanation, err) == 0)
        return "ok";
    return err;
}

static void test_spf_macro_rfc_examples(void)
{
    static const struct {
        const char *macro, *want;
    } cases[] = {
        {"%{s}", "strong-bad@email.example.com"},
        {"%{o}", "email.example.com"},
        {"%{d}", "email.example.com"},
        {"%{d4}", "email.example.com"},
        {"%{d3}", "email.example.com"},
        {"%{d2}", "example.com"},
        {"%{d1}", "com"},
        {"%{dr}", "com.example.email"},
        {"%{d2r}", "example.email"},
        {"%{l}", "strong-bad"},
        {"%{l-}", "strong.bad"},
        {"%{lr}", "strong-bad"},
        {"%{lr-}", "bad.strong"},
        {"%{l1r-}", "strong"},
        {"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
        {"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
        {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
        {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
        {"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
    };
    spf_macro_ctx_t v6 = rfc_ctx;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_STR(domain(cases[i].macro, &rfc_ctx), cases[i].want);
    v6.ip = &ip6_example;
    CHECK_STR(domain("%{ir}.%{v}._spf.%{d2}", &v6),
              "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
}

static void test_spf_macro_escapes(void)
{
    CHECK_STR(domain("a%%b%_c%-d.example.com", &rfc_ctx), "a%b c%20d.example.com");
    /* The suite's macro-mania-in-domain. */
    CHECK_STR(domain("macro%%percent%_%_space%-url-space.example.com", &rfc_ctx),
              "macro%percent  space%20url-space.example.com");
    CHECK_STR(explain("%%%_%-", &rfc_ctx), "% %20");
}

static void test_spf_macro_letters(void)
{
    spf_macro_ctx_t v6 = rfc_ctx;

    CHECK_STR(domain("%{h}", &rfc_ctx), "mx.example.org");
    CHECK_STR(domain("%{p}", &rfc_ctx), "mx.example.org");
    CHECK_STR(domain("%{i}", &rfc_ctx), "192.0.2.3");
    CHECK_STR(domain("%{v}", &rfc_ctx), "in-addr");
    CHECK_STR(explain("%{c}", &rfc_ctx), "192.0.2.3");
    CHECK_STR(explain("%{r}", &rfc_ctx), "mx.example.net");
    CHECK_STR(explain("%{t}", &rfc_ctx), "1700000000");
    v6.ip = &ip6_example;
    CHECK_STR(domain("%{v}", &v6), "ip6");
    CHECK_STR(domain("%{i}", &v6),
              "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1");
    CHECK_STR(explain("%{c}", &v6), "2001:db8::cb01");
    /* Explanations are read by people: upper-case nibbles, as the suite expects. */
    CHECK_STR(explain("%{c} is queried as %{ir}.%{v}.arpa", &v6),
              "2001:db8::cb01 is queried as "
              "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6.arpa");
}

static void test_spf_macro_rfc5952(void)
{
    static const struct {
        const char *addr, *want;
    } cases[] = {
        {"::1", "::1"},
        {"::", "::"},
        {"1::", "1::"},
        {"cafe:babe::1", "cafe:babe::1"},
        {"CAFE:BABE:0:0:1:0:0:0", "cafe:babe:0:0:1::"},
        {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},
        {"2001:0:0:1:0:0:0:1", "2001:0:0:1::1"},
        {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},
        {"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"},
        {"::1.1.1.1", "::101:101"},
    };
    spf_macro_ctx_t ctx = rfc_ctx;
    netaddr_t a;

    ctx.ip = &a;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_INT(netaddr_parse(&a, cases[i].addr), 0);
        CHECK_STR(explain("%{c}", &ctx), cases[i].want);
    }
}

static void test_spf_macro_ip4_mapped(void)
{
    spf_macro_ctx_t ctx = rfc_ctx;
    netaddr_t a;

    /* Built by hand, bypassing netaddr's unmapping: still an IPv4 client. */
    memset(&a, 0, sizeof a);
    a.family = AF_INET6;
    a.addr[10] = a.addr[11] = 0xff;
    a.addr[12] = 192;
    a.addr[15] = 7;
    ctx.ip = &a;
    CHECK_STR(domain("%{ir}.%{v}.arpa", &ctx), "7.0.0.192.in-addr.arpa");
    CHECK_STR(explain("%{c}", &ctx), "192.0.0.7");
}

static void test_spf_macro_transformers(void)
{
    spf_macro_ctx_t ctx = rfc_ctx;

    /* The suite's macro-reverse-split-on-dash and macro-multiple-delimiters. */
    ctx.local = "philip-gladstone-test";
    CHECK_STR(domain("%{i}.%{l2r-}.user.%{d2}", &ctx),
              "192.0.2.3.gladstone.philip.user.example.com");
    ctx.local = "foo-bar+zip+quux";
    CHECK_STR(domain("%{l2r+-}.user.%{d2}", &ctx), "bar.foo.user.example.com");
    ctx.domain = "a.b.c.d";
    CHECK_STR(domain("%{d}", &ctx), "a.b.c.d");
    CHECK_STR(domain("%{d1}", &ctx), "d");
    CHECK_STR(domain("%{d3}", &ctx), "b.c.d");
    CHECK_STR(domain("%{d4}", &ctx), "a.b.c.d");
    CHECK_STR(domain("%{d5}", &ctx), "a.b.c.d");
    CHECK_STR(domain("%{d99999999999999999999999}", &ctx), "a.b.c.d");
    CHECK_STR(domain("%{d02}", &ctx), "c.d");
    CHECK_STR(domain("%{dR}", &ctx), "d.c.b.a");
    CHECK_STR(domain("%{d1r}", &ctx), "a");
    CHECK_STR(domain("%{d3r}", &ctx), "c.b.a");
    /* Every delimiter splits; parts are rejoined with dots; empty parts stay. */
    ctx.local = "a.b-c+d,e/f_g=h";
    CHECK_STR(domain("%{l.-+,/_=}", &ctx), "a.b.c.d.e.f.g.h");
    CHECK_STR(domain("%{lr.-+,/_=}", &ctx), "h.g.f.e.d.c.b.a");
    CHECK_STR(domain("%{l2_=}", &ctx), "g.h");
    CHECK_STR(domain("%{l-}", &ctx), "a.b.c+d,e/f_g=h");
    ctx.local = "-x--y-";
    CHECK_STR(explain("%{lr-}", &ctx), ".y..x.");
    CHECK_STR(explain("%{l2-}", &ctx), "y.");
    CHECK_STR(explain("%{l9r-}", &ctx), ".y..x.");
    ctx.local = "";
    CHECK_STR(explain("[%{l}][%{lr}][%{l1-}]", &ctx), "[][][]");
}

static void test_spf_macro_url_escape(void)
{
    spf_macro_ctx_t ctx = rfc_ctx;

    /* The suite's upper-macro: RFC 3986 unreserved kept, the rest %XX upper hex. */
    ctx.local = "~jack&jill=up-a_b3.c";
    CHECK_STR(explain("http://example.com/why.html?l=%{L}", &ctx),
              "http://example.com/why.html?l=~jack%26jill%3Dup-a_b3.c");
    CHECK_STR(explain("%{S}", &rfc_ctx), "strong-bad%40email.example.com");
    CHECK_STR(explain("%{C}", &rfc_ctx), "192.0.2.3");
    ctx.local = "a b/c%d\x7f";
    CHECK_STR(explain("%{L}", &ctx), "a%20b%2Fc%25d%7F");
    CHECK_STR(explain("%{L/}", &ctx), "a%20b.c%25d%7F");
    CHECK_STR(domain("%{D2}", &rfc_ctx), "example.com");
    ctx.local = "\xc3\xa9";
    CHECK_STR(explain("%{L}", &ctx), "%C3%A9");
    /* Without the upper case, values are copied as they are. */
    CHECK_STR(explain("%{l}", &ctx), "\xc3\xa9");
}

static void test_spf_macro_truncation(void)
{
    spf_macro_ctx_t ctx = rfc_ctx;
    char want[300], d253[254], l254[255];
    const char *got;

    /* The suite's domain-name-truncation: 258 bytes lose "foobar." and fit. */
    ctx.sender_domain = "somewhat.long.exp.example.com";
    got = domain("foobar.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.example.com", &ctx);
    snprintf(want, sizeof want, "%s.%s.%s.%s.%s.%s.%s.%s.example.com",
             ctx.sender_domain, ctx.sender_domain, ctx.sender_domain, ctx.sender_domain,
             ctx.sender_domain, ctx.sender_domain, ctx.sender_domain, ctx.sender_domain);
    CHECK_STR(got, want);
    CHECK_INT(strlen(got), 251);
    /* Limits: 253 bytes stay, 254 lose their first label. d253 is four labels of 63,
     * 63, 63 and 61 bytes. */
    memset(d253, 'a', 253);
    d253[63] = d253[127] = d253[191] = '.';
    d253[253] = '\0';
    ctx.domain = d253;
    CHECK_STR(domain("%{d}", &ctx), d253);
    CHECK_STR(domain("%{d}.", &ctx), d253);
    CHECK_STR(domain("x.%{d}", &ctx), d253);
    CHECK_STR(domain("x%{d}", &ctx), d253 + 64);
    snprintf(want, sizeof want, "%s.e", d253 + 64);
    CHECK_STR(domain("%{d}.e", &ctx), want);
    /* Empty labels are labels too. */
    CHECK_STR(domain("...%{d}", &ctx), d253);
    CHECK_STR(domain("..%{d}", &ctx), d253);
    CHECK_STR(domain(".%{d}", &ctx), d253);
    /* The trailing dot is not counted, and dropped from names only. */
    CHECK_STR(domain("example.com.", &ctx), "example.com");
    CHECK_STR(explain("example.com.", &ctx), "example.com.");
    CHECK_STR(domain(".", &ctx), "");
    CHECK_STR(domain("..", &ctx), ".");
    /* Explanations are never cut. */
    CHECK_INT(strlen(explain("x%{d}", &ctx)), 254);
    /* One label longer than 253 bytes cannot be cut to fit; 253 can. */
    memset(l254, 'l', 254);
    l254[254] = '\0';
    ctx.local = l254;
    CHECK_STR(domain("%{l}", &ctx),
              "ERR: expanded domain has a label that alone exceeds 253 bytes");
    CHECK_STR(domain("%{l}.", &ctx),
              "ERR: expanded domain has a label that alone exceeds 253 bytes");
    CHECK_STR(domain("x.%{l}", &ctx),
              "ERR: expanded domain has a label that alone exceeds 253 bytes");
    CHECK_STR(domain("%{l}.com", &ctx), "com");
    l254[253] = '\0';
    CHECK_STR(domain("%{l}", &ctx), l254);
    CHECK_STR(domain("x.%{l}.", &ctx), l254);
}

static void test_spf_macro_buffer_limits(void)
{
    spf_macro_ctx_t ctx = rfc_ctx;
    char small[12], big[SPF_MACRO_OUT_MAX * 2];

    /* 11 bytes and the NUL just fit; 12 do not. */
    CHECK_INT(spf_macro_expand("example.com", 11, &ctx, 1, 0, small, sizeof small, err), 0);
    CHECK_STR(small, "example.com");
    CHECK_INT(spf_macro_expand("example.comm", 12, &ctx, 1, 0, small, sizeof small, err), -1);
    CHECK_STR(err, "expansion of 12 bytes does not fit in 11");
    CHECK_STR(small, "");
    CHECK_INT(spf_macro_expand("%{d}", 4, &ctx, 0, 1, small, 0, err), -1);
    CHECK_STR(err, "no room for the expansion");
    /* An explanation as long as the buffer allows, and one byte over. */
    memset(big, 'x', sizeof big);
    CHECK_INT(spf_macro_expand(big, SPF_MACRO_OUT_MAX - 1, &ctx, 1, 0, out, sizeof out, err), 0);
    CHECK_INT(strlen(out), SPF_MACRO_OUT_MAX - 1);
    CHECK_INT(spf_macro_expand(big, SPF_MACRO_OUT_MAX, &ctx, 1, 0, out, sizeof out, err), -1);
    CHECK_STR(err, "expansion of 1024 bytes does not fit in 1023");
    /* A domain expansion far longer than the buffer is measured, not stored. */
    for (size_t i = 0; i + 1 < sizeof big; i++)
        big[i] = i % 8 == 7 ? '.' : 'x';
    CHECK_INT(spf_macro_expand(big, sizeof big - 1, &ctx, 0, 1, out, sizeof out, err), 0);
    CHECK_INT(strlen(out), 247);
}

static void test_spf_macro_missing_context(void)
{
    spf_macro_ctx_t ctx = rfc_ctx;

    ctx.ptr_name = NULL;
    CHECK_STR(domain("%{p}.example.com", &ctx),
              "ERR: %{p} needs the validated PTR name first");
    ctx.ip = NULL;
    CHECK_STR(domain("%{i}.example.com", &ctx), "ERR: %{i} needs the client address");
    CHECK_STR(explain("%{c}", &ctx), "ERR: %{c} needs the client address");
    CHECK_STR(domain("%{v}.example.com", &ctx), "ERR: %{v} needs the client address");
    ctx.receiver = NULL;
    CHECK_STR(explain("%{r}", &ctx), "unknown");
    ctx.receiver = "";
    CHECK_STR(explain("%{r}", &ctx), "unknown");
    ctx.sender = ctx.local = ctx.sender_domain = ctx.domain = ctx.helo = NULL;
    CHECK_STR(explain("[%{s}%{l}%{o}%{d}%{h}]", &ctx), "[]");
}

static void test_spf_macro_check_valid(void)
{
    static const char *const ok[] = {
        "", "example.com", "%{s}", "%{l}", "%{o}", "%{d}", "%{i}", "%{p}", "%{h}", "%{v}",
        "%{S}%{L}%{O}%{D}%{I}%{P}%{H}%{V}", "%{ir}", "%{iR}", "%{d2}", "%{l-}", "%{l2r+-}",
        "%{d10r.-+,/_=}", "%{d02}", "%%", "%_", "%-", "%%%%", "a%%b", "!\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~",
        "}", "{", "%{d}}", "foo:bar/baz.example.com",
    };

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        CHECK_STR(check(ok[i], 0), "ok");
        CHECK_STR(check(ok[i], 1), "ok");
    }
    CHECK_STR(check("%{c}%{r}%{t}%{C}%{R}%{T}", 1), "ok");
    CHECK_STR(check("Connections from %{c} not authorized.", 1), "ok");
    CHECK_STR(check("  spaces  ", 1), "ok");
}

static void test_spf_macro_check_errors(void)
{
    CHECK_STR(check("%", 0), "'%' at offset 0: '%' ends the string");
    CHECK_STR(check("abc%", 1), "'%' at offset 3: '%' ends the string");
    CHECK_STR(check("%x", 0), "'%x' at offset 0: '%' not followed by '{', '%', '_' or '-'");
    CHECK_STR(check("foo%(ir).sbl.example.com", 0),
              "'%(' at offset 3: '%' not followed by '{', '%', '_' or '-'");
    CHECK_STR(check("foo%.sbl.example.com", 0),
              "'%.' at offset 3: '%' not followed by '{', '%', '_' or '-'");
    CHECK_STR(check("%{", 0), "'%{' at offset 0: macro not closed by '}'");
    CHECK_STR(check("%{d", 0), "'%{d' at offset 0: macro not closed by '}'");
    CHECK_STR(check("%{d2", 0), "'%{d2' at offset 0: macro not closed by '}'");
    CHECK_STR(check("%{dr", 0), "'%{dr' at offset 0: macro not closed by '}'");
    CHECK_STR(check("%{d.", 0), "'%{d.' at offset 0: macro not closed by '}'");
    CHECK_STR(check("%{}", 0), "'%{}' at offset 0: unknown macro letter");
    CHECK_STR(check("x%{a}.example.com", 0), "'%{a}' at offset 1: unknown macro letter");
    CHECK_STR(check("%{x}", 1), "'%{x}' at offset 0: unknown macro letter");
    CHECK_STR(check("%{c}", 0),
              "'%{c}' at offset 0: macro letters c, r and t are allowed only in explanations");
    CHECK_STR(check("%{R}", 0),
              "'%{R}' at offset 0: macro letters c, r and t are allowed only in explanations");
    CHECK_STR(check("%{t}", 0),
              "'%{t}' at offset 0: macro letters c, r and t are allowed only in explanations");
    CHECK_STR(check("%{d0}", 0), "'%{d0}' at offset 0: digit transformer must not be 0");
    CHECK_STR(check("%{d00r}", 0), "'%{d00r}' at offset 0: digit transformer must not be 0");
    CHECK_STR(check("%{d2x}", 0),
              "'%{d2x}' at offset 0: expected a delimiter (.-+,/_=) or '}' in macro");
    CHECK_STR(check("%{dr2}", 0),
              "'%{dr2}' at offset 0: expected a delimiter (.-+,/_=) or '}' in macro");
    CHECK_STR(check("%{d-2}", 0),
              "'%{d-2}' at offset 0: expected a delimiter (.-+,/_=) or '}' in macro");
    CHECK_STR(check("%{drr}", 0),
              "'%{drr}' at offset 0: expected a delimiter (.-+,/_=) or '}' in macro");
    CHECK_STR(check("a b", 0), "'\\x20' at offset 1: space outside an explanation");
    CHECK_STR(check("a\tb", 1), "'\\x09' at offset 1: byte 0x09 is not visible ASCII");
    CHECK_STR(check("\xef\xbb\xbf" "Explanation", 1),
              "'\\xef' at offset 0: byte 0xef is not visible ASCII");
    CHECK_STR(check("a\x7f", 1), "'\\x7f' at offset 1: byte 0x7f is not visible ASCII");
    CHECK_INT(spf_macro_check("a\0b", 3, 1, err), -1);
    CHECK_STR(err, "'\\x00' at offset 1: byte 0x00 is not visible ASCII");
    CHECK_INT(spf_macro_check("%{d\0}", 5, 1, err), -1);
    CHECK_STR(err, "'%{d\\x00}' at offset 0: expected a delimiter (.-+,/_=) or '}' in macro");
    CHECK_INT(spf_macro_check("%{\0}", 4, 1, err), -1);
    CHECK_STR(err, "'%{\\x00}' at offset 0: unknown macro letter");
    /* A long bad macro is quoted in part. */
    CHECK_STR(check("%{d.......................................", 0),
              "'%{d........................' at offset 0: macro not closed by '}'");
    /* Expansion refuses what checking refuses, with the same words. */
    CHECK_STR(domain("%{c}", &rfc_ctx),
              "ERR: '%{c}' at offset 0: macro letters c, r and t are allowed only in explanations");
    CHECK_STR(explain("The %{x}-files.", &rfc_ctx), "ERR: '%{x}' at offset 4: unknown macro letter");
}

static void test_spf_macro_uses(void)
{
    CHECK_INT(spf_macro_uses("example.com", 11), 0);
    CHECK_INT(spf_macro_uses("%{d}.%{i}.%{o}.%{v}", 19), 0);
    CHECK_INT(spf_macro_uses("%{l}", 4), SPF_MACRO_USES_LOCALPART);
    CHECK_INT(spf_macro_uses("%{S}", 4), SPF_MACRO_USES_LOCALPART);
    CHECK_INT(spf_macro_uses("%{H}", 4), SPF_MACRO_USES_HELO);
    CHECK_INT(spf_macro_uses("%{p}", 4), SPF_MACRO_USES_PTR);
    CHECK_INT(spf_macro_uses("%{l}%{h}%{p} %{c}", 17),
              SPF_MACRO_USES_LOCALPART | SPF_MACRO_USES_HELO | SPF_MACRO_USES_PTR);
    CHECK_INT(spf_macro_uses("%%{l}", 5), 0);
}

int main(void)
{
    setup();
    UNIT_RUN(test_spf_macro_rfc_examples);
    UNIT_RUN(test_spf_macro_escapes);
    UNIT_RUN(test_spf_macro_letters);
    UNIT_RUN(test_spf_macro_rfc5952);
    UNIT_RUN(test_spf_macro_ip4_mapped);
    UNIT_RUN(test_spf_macro_transformers);
    UNIT_RUN(test_spf_macro_url_escape);
    UNIT_RUN(test_spf_macro_truncation);
    UNIT_RUN(test_spf_macro_buffer_limits);
    UNIT_RUN(test_spf_macro_missing_context);
    UNIT_RUN(test_spf_macro_check_valid);
    UNIT_RUN(test_spf_macro_check_errors);
    UNIT_RUN(test_spf_macro_uses);
    return unit_report();
}
