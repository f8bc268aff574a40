// unit-deps: spf_record spf_macro
#include "spf_record.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

/* A string literal and its length, NULs included. */
#define R(s) s, sizeof(s) - 1

static char err[SPF_RECORD_ERR_LEN];

/* Parses text; "ok", or the error text. The record is freed. */
static const char *verdict(const char *text, size_t len)
{
    spf_record_t *r = NULL;

    err[0] = '\0';
    if (spf_record_parse(text, len, &r, err) != 0) {
        if (r)
            return "error, but a record was returned";
        return err;
    }
    spf_record_free(r);
    return "ok";
}

static const char *verdict_str(const char *text)
{
    return verdict(text, strlen(text));
}

/* Every SPF record of the two conformance suites (rfc7208-tests.yml and
 * rfc4408-tests.yml), where it comes from, and the parse RFC 7208 asks for: NULL for a
 * valid record, else the exact error. */
static const struct {
    const char *text;
    size_t len;
    const char *err;
} suite_records[] = {
        {R("v=spf1 -all exp=exp.example.net"), /* 7208 example.net */
         NULL},
        {R("v=spf1 -all"), /* 7208 a1234567890123456789012345678901234 */
         NULL},
        {R("v=spf1 a:\xef\xbb\xbfgarbage.example.net -all"), /* 7208 hosed.example.com */
         "term 1 'a:\\xef\\xbb\\xbfgarbage.example.net': byte 0xef at offset 2 is not visible ASCII"},
        {R("v=spf1 \x80" "a:example.net -all"), /* 7208 hosed2.example.com */
         "term 1 '\\x80a:example.net': byte 0x80 at offset 0 is not visible ASCII"},
        {R("v=spf1 a:example.net \x96" "all"), /* 7208 hosed3.example.com */
         "term 2 '\\x96all': byte 0x96 at offset 0 is not visible ASCII"},
        {R("v=spf1 a:example.net -all"), /* 7208 nothosed.example.com */
         NULL},
        {R("v=spf1 a:ctrl.example.com\x0dptr -all"), /* 7208 ctrl.example.com */
         "term 1 'a:ctrl.example.com\\x0dptr': byte 0x0d at offset 18 is not visible ASCII"},
        {R("v=spf1 a  -all"), /* 7208 fine.example.com */
         NULL},
        {R("v=spf1 a -all "), /* 7208 trail.example.com */
         NULL},
        {R("v=spf1 ip4:192.0.2.5 -all"), /* 7208 null.example.com */
         NULL},
        {R("v=spf1 ip4:192.0.2.5\x0a include:spf.protection.outlook.com ~all"), /* 7208 badip.example.com */
         "term 1 'ip4:192.0.2.5\\x0a': byte 0x0a at offset 13 is not visible ASCII"},
        {R("v=spf10"), /* 7208 example3.com */
         "not an SPF record: it must start with \"v=spf1\" and a space or end there"},
        {R("v=spf1 mx"), /* 7208 example3.com */
         NULL},
        {R("v=spf1"), /* 7208 example1.com */
         NULL},
        {R("v=spf1mx"), /* 7208 example2.com */
         "not an SPF record: it must start with \"v=spf1\" and a space or end there"},
        {R("v=spf1 +all"), /* 7208 example4.com */
         NULL},
        {R("V=sPf1 +all"), /* 7208 example6.com */
         NULL},
        {R("V=spf1 -all"), /* 7208 example8.com */
         NULL},
        {R("v=SpF1 ~all"), /* 7208 example9.com */
         NULL},
        {R("v=spf1 ip4:1.2.3.4 -all moo"), /* 7208 t1.example.com */
         "term 3 'moo': unknown mechanism"},
        {R("v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all"), /* 7208 t2.example.com */
         NULL},
        {R("v=spf1 moo.cow/far_out=man:dog/cat ip4:1.2.3.4 -all"), /* 7208 t3.example.com */
         "term 1 'moo.cow/far_out=man:dog/cat': unknown mechanism"},
        {R("v=spf1 moo.cow:far_out=man:dog/cat ip4:1.2.3.4 -all"), /* 7208 t4.example.com */
         "term 1 'moo.cow:far_out=man:dog/cat': unknown mechanism"},
        {R("v=spf1 redirect=t5.example.com ~all"), /* 7208 t5.example.com */
         NULL},
        {R("v=spf1 ip4:1.2.3.4 redirect=t2.example.com"), /* 7208 t6.example.com */
         NULL},
        {R("v=spf1 ip4:1.2.3.4"), /* 7208 t7.example.com */
         NULL},
        {R("v=spf1 ip4:1.2.3.4 redirect:t2.example.com"), /* 7208 t8.example.com */
         "term 2 'redirect:t2.example.com': unknown mechanism"},
        {R("v=spf1 a:foo-bar -all"), /* 7208 t9.example.com */
         "term 1 'a:foo-bar': invalid domain-spec: it must end in a macro or in '.' and a top-level label"},
        {R("v=spf1 a:mail.example...com -all"), /* 7208 t10.example.com */
         NULL},
        {R("v=spf1 a:a123456789012345678901234567890123456789012345678901234567890123.example.com -all"), /* 7208 t11.example.com */
         NULL},
        {R("v=spf1 a:%{H}.bar -all"), /* 7208 t12.example.com */
         NULL},
        {R("v=spf1 -all."), /* 7208 e1.example.com */
         "term 1 '-all.': unknown mechanism"},
        {R("v=spf1 -all:foobar"), /* 7208 e2.example.com */
         "term 1 '-all:foobar': 'all' takes no argument"},
        {R("v=spf1 -all/8"), /* 7208 e3.example.com */
         "term 1 '-all/8': 'all' takes no argument"},
        {R("v=spf1 ?all"), /* 7208 e4.example.com */
         NULL},
        {R("v=spf1 all -all"), /* 7208 e5.example.com */
         NULL},
        {R("v=spf1 ptr/0 -all"), /* 7208 e1.example.com */
         "term 1 'ptr/0': 'ptr' takes no prefix length"},
        {R("v=spf1 ptr:example.com -all"), /* 7208 e2.example.com */
         NULL},
        {R("v=spf1 ptr -all"), /* 7208 e3.example.com */
         NULL},
        {R("v=spf1 ptr:"), /* 7208 e5.example.com */
         "term 1 'ptr:': empty domain-spec after ptr"},
        {R("v=spf1 ptr:example.Com -all"), /* 7208 e6.example.com */
         NULL},
        {R("v=spf1 ptr"), /* 7208 loop.example.com */
         NULL},
        {R("v=spf1 a/0 -all"), /* 7208 e1.example.com */
         NULL},
        {R("v=spf1 a//0 -all"), /* 7208 e2a.example.com */
         NULL},
        {R("v=spf1 a -all"), /* 7208 ipv6.example.com */
         NULL},
        {R("v=spf1 a:foo.example.com\x00"), /* 7208 e3.example.com */
         "term 1 'a:foo.example.com\\x00': byte 0x00 at offset 17 is not visible ASCII"},
        {R("v=spf1 a:111.222.33.44"), /* 7208 e4.example.com */
         "term 1 'a:111.222.33.44': invalid domain-spec: it must end in a macro or in '.' and a top-level label"},
        {R("v=spf1 a:abc.123"), /* 7208 e5.example.com */
         "term 1 'a:abc.123': invalid domain-spec: it must end in a macro or in '.' and a top-level label"},
        {R("v=spf1 a:museum"), /* 7208 e5a.example.com */
         "term 1 'a:museum': invalid domain-spec: it must end in a macro or in '.' and a top-level label"},
        {R("v=spf1 a:museum."), /* 7208 e5b.example.com */
         "term 1 'a:museum.': invalid domain-spec: it must end in a macro or in '.' and a top-level label"},
        {R("v=spf1 a//33 -all"), /* 7208 e6.example.com */
         NULL},
        {R("v=spf1 a/33 -all"), /* 7208 e6a.example.com */
         "term 1 'a/33': prefix length must be 0 to 32"},
        {R("v=spf1 a//129 -all"), /* 7208 e7.example.com */
         "term 1 'a//129': prefix length must be 0 to 128"},
        {R("v=spf1 a/24//64 -all"), /* 7208 e8.example.com */
         NULL},
        {R("v=spf1 a/24/64 -all"), /* 7208 e8e.example.com */
         "term 1 'a/24/64': prefix length must be 0 to 32"},
        {R("v=spf1 a/24 -all"), /* 7208 e8a.example.com */
         NULL},
        {R("v=spf1 a//64 -all"), /* 7208 e8b.example.com */
         NULL},
        {R("v=spf1 a:example.com:8080"), /* 7208 e9.example.com */
         "term 1 'a:example.com:8080': invalid domain-spec: it must end in a macro or in '.' and a top-level label"},
        {R("v=spf1 a:foo.example.com/24"), /* 7208 e10.example.com */
         NULL},
        {R("v=spf1 a:foo:bar/baz.example.com"), /* 7208 e11.example.com */
         NULL},
        {R("v=spf1 a:example.-com"), /* 7208 e12.example.com */
         "term 1 'a:example.-com': invalid domain-spec: it must end in a macro or in '.' and a top-level label"},
        {R("v=spf1 a:"), /* 7208 e13.example.com */
         "term 1 'a:': empty domain-spec after a"},
        {R("v=spf1 a:foo.example.xn--zckzah -all"), /* 7208 e14.example.com */
         NULL},
        {R("v=spf1 ip4:1.2.3.5 -all"), /* 7208 ip5.example.com */
         NULL},
        {R("v=spf1 ip4:1.2.3.6 ~all"), /* 7208 ip6.example.com */
         NULL},
        {R("v=spf1 ip4:1.2.3.7 ?all"), /* 7208 ip7.example.com */
         NULL},
        {R("v=spf1 include:ip5.example.com ~all"), /* 7208 e1.example.com */
         NULL},
        {R("v=spf1 include:ip6.example.com all"), /* 7208 e2.example.com */
         NULL},
        {R("v=spf1 include:ip7.example.com -all"), /* 7208 e3.example.com */
         NULL},
        {R("v=spf1 include:ip8.example.com -all"), /* 7208 e4.example.com */
         NULL},
        {R("v=spf1 include:e6.example.com -all"), /* 7208 e5.example.com */
         NULL},
        {R("v=spf1 include +all"), /* 7208 e6.example.com */
         "term 1 'include': 'include' needs ':' and a domain-spec"},
        {R("v=spf1 include:erehwon.example.com -all"), /* 7208 e7.example.com */
         NULL},
        {R("v=spf1 include: -all"), /* 7208 e8.example.com */
         "term 1 'include:': empty domain-spec after include"},
        {R("v=spf1 include:ip5.example.com/24 -all"), /* 7208 e9.example.com */
         "term 1 'include:ip5.example.com/24': invalid domain-spec: it must end in a macro or in '.' and a top-level label"},
        {R("v=spf1 mx/0 -all"), /* 7208 e1.example.com */
         NULL},
        {R("v=spf1 mx//0 -all"), /* 7208 e2a.example.com */
         NULL},
        {R("v=spf1 mx:foo.example.com\x00"), /* 7208 e3.example.com */
         "term 1 'mx:foo.example.com\\x00': byte 0x00 at offset 18 is not visible ASCII"},
        {R("v=spf1 mx:abc.123"), /* 7208 e5.example.com */
         "term 1 'mx:abc.123': invalid domain-spec: it must end in a macro or in '.' and a top-level label"},
        {R("v=spf1 mx//33 -all"), /* 7208 e6.example.com */
         NULL},
        {R("v=spf1 mx/33 -all"), /* 7208 e6a.example.com */
         "term 1 'mx/33': prefix length must be 0 to 32"},
        {R("v=spf1 mx//129 -all"), /* 7208 e7.example.com */
         "term 1 'mx//129': prefix length must be 0 to 128"},
        {R("v=spf1 mx:example.com:8080"), /* 7208 e9.example.com */
         "term 1 'mx:example.com:8080': invalid domain-spec: it must end in a macro or in '.' and a top-level label"},
        {R("v=spf1 mx:foo.example.com/24"), /* 7208 e10.example.com */
         NULL},
        {R("v=spf1 mx:foo:bar/baz.example.com"), /* 7208 e11.example.com */
         NULL},
        {R("v=spf1 mx:example.-com"), /* 7208 e12.example.com */
         "term 1 'mx:example.-com': invalid domain-spec: it must end in a macro or in '.' and a top-level label"},
        {R("v=spf1 mx: -all"), /* 7208 e13.example.com */
         "term 1 'mx:': empty domain-spec after mx"},
        {R("v=spf1 exists:"), /* 7208 e1.example.com */
         "term 1 'exists:': empty domain-spec after exists"},
        {R("v=spf1 exists"), /* 7208 e2.example.com */
         "term 1 'exists': 'exists' needs ':' and a domain-spec"},
        {R("v=spf1 exists:mail.example.com/24"), /* 7208 e3.example.com */
         "term 1 'exists:mail.example.com/24': invalid domain-spec: it must end in a macro or in '.' and a top-level label"},
        {R("v=spf1 exists:mail.example.com"), /* 7208 e4.example.com */
         NULL},
        {R("v=spf1 exists:mail6.example.com -all"), /* 7208 e5.example.com */
         NULL},
        {R("v=spf1 exists:err.example.com -all"), /* 7208 e6.example.com */
         NULL},
        {R("v=spf1 ip4:1.1.1.1/0 -all"), /* 7208 e1.example.com */
         NULL},
        {R("v=spf1 ip4:1.2.3.4/32 -all"), /* 7208 e2.example.com */
         NULL},
        {R("v=spf1 ip4:1.2.3.4/33 -all"), /* 7208 e3.example.com */
         "term 1 'ip4:1.2.3.4/33': prefix length must be 0 to 32"},
        {R("v=spf1 ip4:1.2.3.4/032 -all"), /* 7208 e4.example.com */
         "term 1 'ip4:1.2.3.4/032': prefix length with a leading zero"},
        {R("v=spf1 ip4"), /* 7208 e5.example.com */
         "term 1 'ip4': 'ip4' needs ':' and an address"},
        {R("v=spf1 ip4:1.2.3.4//32"), /* 7208 e6.example.com */
         "term 1 'ip4:1.2.3.4//32': invalid prefix length"},
        {R("v=spf1 -ip4:1.2.3.4 ip6:::FFFF:1.2.3.4"), /* 7208 e7.example.com */
         NULL},
        {R("v=spf1 ip4:1.2.3.4:8080"), /* 7208 e8.example.com */
         "term 1 'ip4:1.2.3.4:8080': invalid IPv4 address"},
        {R("v=spf1 ip4:1.2.3"), /* 7208 e9.example.com */
         "term 1 'ip4:1.2.3': invalid IPv4 address"},
        {R("v=spf1 -all ip6"), /* 7208 e1.example.com */
         "term 2 'ip6': 'ip6' needs ':' and an address"},
        {R("v=spf1 ip6:::1.1.1.1/0"), /* 7208 e2.example.com */
         NULL},
        {R("v=spf1 ip6:::1.1.1.1/129"), /* 7208 e3.example.com */
         "term 1 'ip6:::1.1.1.1/129': prefix length must be 0 to 128"},
        {R("v=spf1 ip6:::1.1.1.1//33"), /* 7208 e4.example.com */
         "term 1 'ip6:::1.1.1.1//33': invalid prefix length"},
        {R("v=spf1 ip6:Cafe:Babe:8000::/33"), /* 7208 e5.example.com */
         NULL},
        {R("v=spf1 ip6::CAFE::BABE"), /* 7208 e6.example.com */
         "term 1 'ip6::CAFE::BABE': invalid IPv6 address"},
        {R("v=spf1 exp=exp1.example.com redirect=e2.example.com"), /* 7208 e1.example.com */
         NULL},
        {R("v=spf1 exp=exp1.example.com redirect=e4.example.com"), /* 7208 e3.example.com */
         NULL},
        {R("v=spf1 -all exp=exp2.example.com"), /* 7208 e4.example.com */
         NULL},
        {R("v=spf1 1up=foo"), /* 7208 e5.example.com */
         "term 1 '1up=foo': invalid modifier name: it must start with a letter and hold only letters, digits, '-', '_' and '.'"},
        {R("v=spf1 =all"), /* 7208 e6.example.com */
         "term 1 '=all': modifier without a name"},
        {R("v=spf1 include:e3.example.com -all exp=exp3.example.com"), /* 7208 e7.example.com */
         NULL},
        {R("v=spf1 -all exp=exp4.example.com"), /* 7208 e8.example.com */
         NULL},
        {R("v=spf1 -all foo=%abc"), /* 7208 e9.example.com */
         "term 2 'foo=%abc': '%a' at offset 4: '%' not followed by '{', '%', '_' or '-'"},
        {R("v=spf1 redirect=erehwon.example.com"), /* 7208 e10.example.com */
         NULL},
        {R("v=spf1 -all exp=e11msg.example.com"), /* 7208 e11.example.com */
         NULL},
        {R("v=spf1 exp= -all"), /* 7208 e12.example.com */
         "term 1 'exp=': empty domain-spec after exp="},
        {R("v=spf1 exp=e13msg.example.com -all"), /* 7208 e13.example.com */
         NULL},
        {R("v=spf1 exp=e13msg.example.com -all exp=e11msg.example.com"), /* 7208 e14.example.com */
         "term 3 'exp=e11msg.example.com': duplicate exp= modifier"},
        {R("v=spf1 redirect=e12.example.com -all redirect=e12.example.com"), /* 7208 e15.example.com */
         "term 3 'redirect=e12.example.com': duplicate redirect= modifier"},
        {R("v=spf1 exp=-all"), /* 7208 e16.example.com */
         "term 1 'exp=-all': invalid domain-spec: it must end in a macro or in '.' and a top-level label"},
        {R("v=spf1 redirect=-all ?all"), /* 7208 e17.example.com */
         "term 1 'redirect=-all': invalid domain-spec: it must end in a macro or in '.' and a top-level label"},
        {R("v=spf1 ?all redirect="), /* 7208 e18.example.com */
         "term 2 'redirect=': empty domain-spec after redirect="},
        {R("v=spf1 default=pass"), /* 7208 e19.example.com */
         NULL},
        {R("v=spf1 default=+"), /* 7208 e20.example.com */
         NULL},
        {R("v=spf1 exp=e21msg.example.com -all"), /* 7208 e21.example.com */
         NULL},
        {R("v=spf1 exp=mail.example.com -all"), /* 7208 e22.example.com */
         NULL},
        {R("v=spf1 exp=badexp.example.com -all"), /* 7208 nonascii.example.com */
         NULL},
        {R("v=spf1 exp=twoexp.example.com -all"), /* 7208 tworecs.example.com */
         NULL},
        {R("v=spf1 a:erehwon.example.com a:foobar.com exp=nxdomain.com -all"), /* 7208 e23.example.com */
         NULL},
        {R("v=spf1 redirect=testimplicit.example.com"), /* 7208 e24.example.com */
         NULL},
        {R("v=spf1 redirect=a.spf.example.com"), /* 7208 example.com.d.spf.example.com */
         NULL},
        {R("v=spf1 include:o.spf.example.com. ~all"), /* 7208 a.spf.example.com */
         NULL},
        {R("v=spf1 ip4:192.168.218.40"), /* 7208 o.spf.example.com */
         NULL},
        {R("v=spf1 redirect=%{d}.d.spf.example.com."), /* 7208 example.com */
         NULL},
        {R("v=spf1 exp=msg.example.com. -all"), /* 7208 exp.example.com */
         NULL},
        {R("v=spf1 -exists:%(ir).sbl.example.com ?all"), /* 7208 e1.example.com */
         "term 1 '-exists:%(ir).sbl.example.com': '%(' at offset 8: '%' not followed by '{', '%', '_' or '-'"},
        {R("v=spf1 exists:foo%(ir).sbl.example.com ?all"), /* 7208 e1e.example.com */
         "term 1 'exists:foo%(ir).sbl.example.com': '%(' at offset 10: '%' not followed by '{', '%', '_' or '-'"},
        {R("v=spf1 exists:foo%.sbl.example.com ?all"), /* 7208 e1t.example.com */
         "term 1 'exists:foo%.sbl.example.com': '%.' at offset 10: '%' not followed by '{', '%', '_' or '-'"},
        {R("v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all"), /* 7208 e1a.example.com */
         NULL},
        {R("v=spf1 -all exp=%{r}.example.com"), /* 7208 e2.example.com */
         "term 2 'exp=%{r}.example.com': '%{r}' at offset 4: macro letters c, r and t are allowed only in explanations"},
        {R("v=spf1 -all exp=%{ir}.example.com"), /* 7208 e3.example.com */
         NULL},
        {R("v=spf1 -all exp=foobar.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.example.com"), /* 7208 somewhat.long.exp.example.com */
         NULL},
        {R("v=spf1 -all exp=e4msg.example.com"), /* 7208 e4.example.com */
         NULL},
        {R("v=spf1 a:%{a}.example.com -all"), /* 7208 e5.example.com */
         "term 1 'a:%{a}.example.com': '%{a}' at offset 2: unknown macro letter"},
        {R("v=spf1 -all exp=e6msg.example.com"), /* 7208 e6.example.com */
         NULL},
        {R("v=spf1 exists:%{p}.should.example.com ~exists:%{p}.ok.example.com"), /* 7208 e7.example.com */
         NULL},
        {R("v=spf1 -all exp=msg8.%{D2}"), /* 7208 e8.example.com */
         NULL},
        {R("v=spf1 a:%{H} -all"), /* 7208 e9.example.com */
         NULL},
        {R("v=spf1 -include:_spfh.%{d2} ip4:1.2.3.0/24 -all"), /* 7208 e10.example.com */
         NULL},
        {R("v=spf1 -a:%{h} +all"), /* 7208 _spfh.example.com */
         NULL},
        {R("v=spf1 exists:%{i}.%{l2r-}.user.%{d2}"), /* 7208 e11.example.com */
         NULL},
        {R("v=spf1 exists:%{l2r+-}.user.%{d2}"), /* 7208 e12.example.com */
         NULL},
        {R("v=spf1 ip4:1.1.1.1 redirect=e1.example.com"), /* 7208 e1.example.com */
         NULL},
        {R("v=spf1 include:e3.example.com"), /* 7208 e2.example.com */
         NULL},
        {R("v=spf1 include:e2.example.com"), /* 7208 e3.example.com */
         NULL},
        {R("v=spf1 a mx a mx a mx a mx a ptr ip4:1.2.3.4 -all"), /* 7208 e6.example.com */
         NULL},
        {R("v=spf1 a mx a mx a mx a mx a ptr a ip4:1.2.3.4 -all"), /* 7208 e7.example.com */
         NULL},
        {R("v=spf1 a include:inc.example.com ip4:1.2.3.4 mx -all"), /* 7208 e8.example.com */
         NULL},
        {R("v=spf1 a a a a a a a a"), /* 7208 inc.example.com */
         NULL},
        {R("v=spf1 a include:inc.example.com a ip4:1.2.3.4 -all"), /* 7208 e9.example.com */
         NULL},
        {R("v=spf1 a:err.example.com a:err1.example.com a:err2.example.com ?all"), /* 7208 e11.example.com */
         NULL},
        {R("v=spf1 a:err.example.com a:err1.example.com ?all"), /* 7208 e12.example.com */
         NULL},
        {R("v=spf1 mx redirect=_spf.example.com"), /* 7208 example.org */
         NULL},
        {R("v=spf1 ptr:fe.example.org ptr:sgp.example.com exp=_expspf.example.org -all"), /* 7208 _spf.example.com */
         NULL},
        {R("v=spf1 ip4:192.0.2.225 ?include:webmail.pair.com ?include:relay.pair.com -all"), /* 7208 a.example.org */
         NULL},
        {R("v=spf1 include:a.example.org include:b.example.org -all"), /* 7208 mail.example.org */
         NULL},
        {R("v=spf1 ip4:66.39.3.0/24 ip4:209.68.6.94/32"), /* 7208 webmail.pair.com */
         NULL},
        {R("v=spf1 ip4:209.68.5.9/32 ip4:209.68.5.15/32 a -all"), /* 7208 relay.pair.com */
         NULL},
        {R("v=spf1 ip6:CAFE:BABE:8000::/33"), /* 4408 e5.example.com */
         NULL},
};

static void test_spf_record_suite(void)
{
    for (size_t i = 0; i < sizeof suite_records / sizeof suite_records[0]; i++)
        CHECK_STR(verdict(suite_records[i].text, suite_records[i].len),
                  suite_records[i].err ? suite_records[i].err : "ok");
}

static void test_spf_record_is_spf(void)
{
    CHECK_INT(spf_record_is_spf(R("v=spf1")), 1);
    CHECK_INT(spf_record_is_spf(R("v=spf1 ")), 1);
    CHECK_INT(spf_record_is_spf(R("V=SPF1 -all")), 1);
    CHECK_INT(spf_record_is_spf(R("v=spf1  a")), 1);
    CHECK_INT(spf_record_is_spf(R("v=spf10")), 0);
    CHECK_INT(spf_record_is_spf(R("v=spf1mx")), 0);
    CHECK_INT(spf_record_is_spf(R("v=spf1\t-all")), 0);
    CHECK_INT(spf_record_is_spf(R("v=spf1\0")), 0);
    CHECK_INT(spf_record_is_spf(R(" v=spf1")), 0);
    CHECK_INT(spf_record_is_spf(R("v=spf")), 0);
    CHECK_INT(spf_record_is_spf(R("")), 0);
    CHECK_INT(spf_record_is_spf(R("spf2.0/pra ip4:192.0.2.1")), 0);
    /* Only len bytes count. */
    CHECK_INT(spf_record_is_spf("v=spf1 -all", 6), 1);
    CHECK_INT(spf_record_is_spf("v=spf1 -all", 5), 0);
}

static void test_spf_record_structure(void)
{
    spf_record_t *r;
    const spf_term_t *t;
    static const uint8_t v4[4] = {192, 0, 2, 0};
    static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

    CHECK_INT(spf_record_parse(R("v=spf1 a -mx:%{d}.example.com/24 ~ptr:Example.ORG "
                                 "?ip4:192.0.2.0/24 +ip6:2001:db8::1 include:_spf.example.com "
                                 "exists:%{ir}.x.example.com a:foo:bar/baz.example.com//64 "
                                 "unknown=%{d} Exp=why.example.com REDIRECT=_spf.example.net "
                                 "x-y_z.w= -all"),
                               &r, err), 0);
    if (!r)
        return;
    CHECK_INT(r->nterms, 9);
    CHECK_INT(r->nunknown, 2);
    CHECK_INT(r->dns_terms, 7);
    CHECK_STR(r->redirect, "_spf.example.net");
    CHECK_STR(r->exp, "why.example.com");
    t = r->terms;
    CHECK_INT(t[0].mech, SPF_MECH_A);
    CHECK_INT(t[0].qualifier, '+');
    CHECK(t[0].domain_spec == NULL);
    CHECK_INT(t[0].cidr4, 32);
    CHECK_INT(t[0].cidr6, 128);
    CHECK_STR(t[0].text, "a");
    CHECK_INT(t[1].mech, SPF_MECH_MX);
    CHECK_INT(t[1].qualifier, '-');
    CHECK_STR(t[1].domain_spec, "%{d}.example.com");
    CHECK_INT(t[1].cidr4, 24);
    CHECK_INT(t[1].cidr6, 128);
    CHECK_STR(t[1].text, "-mx:%{d}.example.com/24");
    CHECK_INT(t[2].mech, SPF_MECH_PTR);
    CHECK_INT(t[2].qualifier, '~');
    CHECK_STR(t[2].domain_spec, "Example.ORG");
    CHECK_INT(t[3].mech, SPF_MECH_IP4);
    CHECK_INT(t[3].qualifier, '?');
    CHECK(memcmp(t[3].addr, v4, 4) == 0);
    CHECK_INT(t[3].cidr4, 24);
    CHECK(t[3].domain_spec == NULL);
    CHECK_INT(t[4].mech, SPF_MECH_IP6);
    CHECK_INT(t[4].qualifier, '+');
    CHECK(memcmp(t[4].addr, v6, 16) == 0);
    CHECK_INT(t[4].cidr6, 128);
    CHECK_STR(t[4].text, "+ip6:2001:db8::1");
    CHECK_INT(t[5].mech, SPF_MECH_INCLUDE);
    CHECK_STR(t[5].domain_spec, "_spf.example.com");
    CHECK_INT(t[6].mech, SPF_MECH_EXISTS);
    CHECK_STR(t[6].domain_spec, "%{ir}.x.example.com");
    CHECK_INT(t[7].mech, SPF_MECH_A);
    CHECK_STR(t[7].domain_spec, "foo:bar/baz.example.com");
    CHECK_INT(t[7].cidr4, 32);
    CHECK_INT(t[7].cidr6, 64);
    CHECK_INT(t[8].mech, SPF_MECH_ALL);
    CHECK_INT(t[8].qualifier, '-');
    CHECK_STR(t[8].text, "-all");
    spf_record_free(r);

    /* Nothing but the version: no terms, no modifiers. */
    CHECK_INT(spf_record_parse(R("v=spf1   "), &r, err), 0);
    if (r) {
        CHECK_INT(r->nterms, 0);
        CHECK(r->redirect == NULL && r->exp == NULL);
        CHECK_INT(r->nunknown, 0);
        CHECK_INT(r->dns_terms, 0);
        spf_record_free(r);
    }
    /* Names are case-insensitive; the IPv4-mapped address stays as written. */
    CHECK_INT(spf_record_parse(R("v=spf1 A/0//0 MX//0 PTR IP4:0.0.0.0/0 "
                                 "Ip6:::ffff:192.0.2.1/0 INCLUDE:X.example exists:%{D} ALL"),
                               &r, err), 0);
    if (r) {
        static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
                                           192, 0, 2, 1};

        CHECK_INT(r->nterms, 8);
        CHECK_INT(r->dns_terms, 5);
        CHECK_INT(r->terms[0].cidr4, 0);
        CHECK_INT(r->terms[0].cidr6, 0);
        CHECK_INT(r->terms[1].cidr4, 32);
        CHECK_INT(r->terms[1].cidr6, 0);
        CHECK_INT(r->terms[3].cidr4, 0);
        CHECK(memcmp(r->terms[4].addr, mapped, 16) == 0);
        CHECK_INT(r->terms[4].cidr6, 0);
        CHECK_INT(r->terms[7].mech, SPF_MECH_ALL);
        spf_record_free(r);
    }
    spf_record_free(NULL);
}

static void test_spf_record_mech_names(void)
{
    CHECK_STR(spf_mech_name(SPF_MECH_ALL), "all");
    CHECK_STR(spf_mech_name(SPF_MECH_INCLUDE), "include");
    CHECK_STR(spf_mech_name(SPF_MECH_A), "a");
    CHECK_STR(spf_mech_name(SPF_MECH_MX), "mx");
    CHECK_STR(spf_mech_name(SPF_MECH_PTR), "ptr");
    CHECK_STR(spf_mech_name(SPF_MECH_IP4), "ip4");
    CHECK_STR(spf_mech_name(SPF_MECH_IP6), "ip6");
    CHECK_STR(spf_mech_name(SPF_MECH_EXISTS), "exists");
}

static void test_spf_record_domain_specs(void)
{
    static const char *const ok[] = {
        "v=spf1 a:foo.example.com", "v=spf1 a:foo.example.com.", "v=spf1 a:.com",
        "v=spf1 a:x.y", "v=spf1 a:x.Y1", "v=spf1 a:x.1y", "v=spf1 a:x.1-2", "v=spf1 a:x.a--b",
        "v=spf1 a:x.xn--zckzah", "v=spf1 a:%{d}", "v=spf1 a:%{d}.com", "v=spf1 a:foo%%",
        "v=spf1 a:foo%_", "v=spf1 a:foo.%-", "v=spf1 a:x.%{d}", "v=spf1 a:%{d}}.com",
        "v=spf1 a:{}.com", "v=spf1 a:!\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~.com",
        "v=spf1 a:foo.com/0", "v=spf1 a:%{d}/32//128", "v=spf1 a:x..y", "v=spf1 a:...com",
        "v=spf1 exists:%{ir}.%{l1r-}.%{d2}", "v=spf1 ptr:%{d}", "v=spf1 redirect=_spf.%{d}",
        "v=spf1 a:foo.com=x.org",
    };
    static const struct {
        const char *text, *err;
    } bad[] = {
        {"v=spf1 a:foo", "term 1 'a:foo': invalid domain-spec: it must end in a macro or in "
                         "'.' and a top-level label"},
        {"v=spf1 a:foo.", "term 1 'a:foo.': invalid domain-spec: it must end in a macro or in "
                          "'.' and a top-level label"},
        {"v=spf1 a:foo.com..", "term 1 'a:foo.com..': invalid domain-spec: it must end in a "
                               "macro or in '.' and a top-level label"},
        {"v=spf1 a:x.-1", "term 1 'a:x.-1': invalid domain-spec: it must end in a macro or in "
                          "'.' and a top-level label"},
        {"v=spf1 a:x.1-", "term 1 'a:x.1-': invalid domain-spec: it must end in a macro or in "
                          "'.' and a top-level label"},
        {"v=spf1 a:x.12", "term 1 'a:x.12': invalid domain-spec: it must end in a macro or in "
                          "'.' and a top-level label"},
        {"v=spf1 a:x.a_b", "term 1 'a:x.a_b': invalid domain-spec: it must end in a macro or "
                           "in '.' and a top-level label"},
        {"v=spf1 a:x.}", "term 1 'a:x.}': invalid domain-spec: it must end in a macro or in "
                         "'.' and a top-level label"},
        {"v=spf1 a:%{d}x", "term 1 'a:%{d}x': invalid domain-spec: it must end in a macro or "
                           "in '.' and a top-level label"},
        {"v=spf1 a:x.%{d}.", "term 1 'a:x.%{d}.': invalid domain-spec: it must end in a macro "
                             "or in '.' and a top-level label"},
        {"v=spf1 include:%{d}.", "term 1 'include:%{d}.': invalid domain-spec: it must end "
                                 "in a macro or in '.' and a top-level label"},
        {"v=spf1 a:foo.com/", "term 1 'a:foo.com/': invalid domain-spec: it must end in a macro "
                              "or in '.' and a top-level label"},
        {"v=spf1 a:/24", "term 1 'a:/24': empty domain-spec after a"},
        {"v=spf1 mx://0", "term 1 'mx://0': empty domain-spec after mx"},
        {"v=spf1 ptr:%{c}.com", "term 1 'ptr:%{c}.com': '%{c}' at offset 4: macro letters c, r "
                                "and t are allowed only in explanations"},
        {"v=spf1 include:%{d", "term 1 'include:%{d': '%{d' at offset 8: macro not closed by "
                               "'}'"},
        {"v=spf1 exists:%{d0}", "term 1 'exists:%{d0}': '%{d0}' at offset 7: digit transformer "
                                "must not be 0"},
        {"v=spf1 redirect=%", "term 1 'redirect=%': '%' at offset 9: '%' ends the string"},
        {"v=spf1 exp=%{t}.com", "term 1 'exp=%{t}.com': '%{t}' at offset 4: macro letters c, r "
                                "and t are allowed only in explanations"},
    };

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        CHECK_STR(verdict_str(ok[i]), "ok");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_STR(verdict_str(bad[i].text), bad[i].err);
}

static void test_spf_record_cidr_limits(void)
{
    CHECK_STR(verdict_str("v=spf1 ip4:192.0.2.0/0"), "ok");
    CHECK_STR(verdict_str("v=spf1 ip4:192.0.2.0/9"), "ok");
    CHECK_STR(verdict_str("v=spf1 ip4:192.0.2.0/32"), "ok");
    CHECK_STR(verdict_str("v=spf1 ip4:192.0.2.0/33"),
              "term 1 'ip4:192.0.2.0/33': prefix length must be 0 to 32");
    CHECK_STR(verdict_str("v=spf1 ip4:192.0.2.0/00"),
              "term 1 'ip4:192.0.2.0/00': prefix length with a leading zero");
    CHECK_STR(verdict_str("v=spf1 ip4:192.0.2.0/"),
              "term 1 'ip4:192.0.2.0/': '/' without a prefix length");
    CHECK_STR(verdict_str("v=spf1 ip4:192.0.2.0/2x"),
              "term 1 'ip4:192.0.2.0/2x': invalid prefix length");
    CHECK_STR(verdict_str("v=spf1 ip4:192.0.2.0/-1"),
              "term 1 'ip4:192.0.2.0/-1': invalid prefix length");
    CHECK_STR(verdict_str("v=spf1 ip6:2001:db8::/0"), "ok");
    CHECK_STR(verdict_str("v=spf1 ip6:2001:db8::/128"), "ok");
    CHECK_STR(verdict_str("v=spf1 ip6:2001:db8::/129"),
              "term 1 'ip6:2001:db8::/129': prefix length must be 0 to 128");
    CHECK_STR(verdict_str("v=spf1 ip6:2001:db8::/0128"),
              "term 1 'ip6:2001:db8::/0128': prefix length must be 0 to 128");
    CHECK_STR(verdict_str("v=spf1 ip6:2001:db8::/99999999999999999999"),
              "term 1 'ip6:2001:db8::/99999999999999999999': prefix length must be 0 to 128");
    CHECK_STR(verdict_str("v=spf1 ip6:2001:db8::/064"),
              "term 1 'ip6:2001:db8::/064': prefix length with a leading zero");
    CHECK_STR(verdict_str("v=spf1 a/32//128 mx/32//128"), "ok");
    CHECK_STR(verdict_str("v=spf1 a/0//0"), "ok");
    CHECK_STR(verdict_str("v=spf1 mx/33"), "term 1 'mx/33': prefix length must be 0 to 32");
    CHECK_STR(verdict_str("v=spf1 mx//129"), "term 1 'mx//129': prefix length must be 0 to 128");
    CHECK_STR(verdict_str("v=spf1 a/01"), "term 1 'a/01': prefix length with a leading zero");
    CHECK_STR(verdict_str("v=spf1 a//01"), "term 1 'a//01': prefix length with a leading zero");
    CHECK_STR(verdict_str("v=spf1 a//"), "term 1 'a//': invalid prefix length");
    CHECK_STR(verdict_str("v=spf1 a/"), "term 1 'a/': invalid prefix length");
    CHECK_STR(verdict_str("v=spf1 a/24//"), "term 1 'a/24//': invalid prefix length");
    CHECK_STR(verdict_str("v=spf1 a//64/24"), "term 1 'a//64/24': invalid prefix length");
    CHECK_STR(verdict_str("v=spf1 a///64"), "term 1 'a///64': invalid prefix length");
    CHECK_STR(verdict_str("v=spf1 a/x"), "term 1 'a/x': invalid prefix length");
    CHECK_STR(verdict_str("v=spf1 a:foo.com/24/64"),
              "term 1 'a:foo.com/24/64': prefix length must be 0 to 32");
}

static void test_spf_record_addresses(void)
{
    CHECK_STR(verdict_str("v=spf1 ip4:0.0.0.0 ip4:255.255.255.255 ip4:10.200.249.1"), "ok");
    CHECK_STR(verdict_str("v=spf1 ip4:256.0.0.0"), "term 1 'ip4:256.0.0.0': invalid IPv4 address");
    CHECK_STR(verdict_str("v=spf1 ip4:1.2.3.04"), "term 1 'ip4:1.2.3.04': invalid IPv4 address");
    CHECK_STR(verdict_str("v=spf1 ip4:1.2.3.4.5"), "term 1 'ip4:1.2.3.4.5': invalid IPv4 address");
    CHECK_STR(verdict_str("v=spf1 ip4:1.2.3."), "term 1 'ip4:1.2.3.': invalid IPv4 address");
    CHECK_STR(verdict_str("v=spf1 ip4:1..3.4"), "term 1 'ip4:1..3.4': invalid IPv4 address");
    CHECK_STR(verdict_str("v=spf1 ip4:1.2.3.1000"), "term 1 'ip4:1.2.3.1000': invalid IPv4 address");
    CHECK_STR(verdict_str("v=spf1 ip4:0x7f.0.0.1"), "term 1 'ip4:0x7f.0.0.1': invalid IPv4 address");
    CHECK_STR(verdict_str("v=spf1 ip4:::1"), "term 1 'ip4:::1': invalid IPv4 address");
    CHECK_STR(verdict_str("v=spf1 ip4:"), "term 1 'ip4:': missing IPv4 address");
    CHECK_STR(verdict_str("v=spf1 ip4:/24"), "term 1 'ip4:/24': missing IPv4 address");
    CHECK_STR(verdict_str("v=spf1 ip4/24"), "term 1 'ip4/24': 'ip4' needs ':' and an address");
    CHECK_STR(verdict_str("v=spf1 ip6:"), "term 1 'ip6:': missing IPv6 address");
    CHECK_STR(verdict_str("v=spf1 ip6:1.2.3.4"), "term 1 'ip6:1.2.3.4': invalid IPv6 address");
    CHECK_STR(verdict_str("v=spf1 ip6:2001:db8::1%eth0"),
              "term 1 'ip6:2001:db8::1%eth0': invalid IPv6 address");
    /* The longest IPv6 text there is (45 bytes) fits; one more byte cannot be one. */
    CHECK_STR(verdict_str("v=spf1 ip6:ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128"), "ok");
    CHECK_STR(verdict_str("v=spf1 ip6:0ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"),
              "term 1 'ip6:0ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2...': invalid IPv6 "
              "address");
    CHECK_STR(verdict_str("v=spf1 ip6:1:2:3:4:5:6:7:8 ip6:1:: ip6::: ip6:::1 ip6:A:b:C::d"), "ok");
}

static void test_spf_record_modifiers(void)
{
    spf_record_t *r;

    /* name "=" macro-string; names that are mechanisms are still just names. */
    CHECK_STR(verdict_str("v=spf1 foo= all=x include=y a=%{d} x.-_9=%%%_%-"), "ok");
    CHECK_STR(verdict_str("v=spf1 foo=%{c}"),
              "term 1 'foo=%{c}': '%{c}' at offset 4: macro letters c, r and t are allowed "
              "only in explanations");
    CHECK_STR(verdict_str("v=spf1 exp=a.com Exp=b.com"),
              "term 2 'Exp=b.com': duplicate exp= modifier");
    CHECK_STR(verdict_str("v=spf1 redirect=a.com REDIRECT=a.com"),
              "term 2 'REDIRECT=a.com': duplicate redirect= modifier");
    CHECK_STR(verdict_str("v=spf1 redirect=a.com exp=a.com"), "ok");
    CHECK_STR(verdict_str("v=spf1 -redirect=a.com"),
              "term 1 '-redirect=a.com': a modifier takes no qualifier");
    CHECK_STR(verdict_str("v=spf1 +exp=a.com"), "term 1 '+exp=a.com': a modifier takes no qualifier");
    CHECK_STR(verdict_str("v=spf1 ~foo=bar"), "term 1 '~foo=bar': a modifier takes no qualifier");
    CHECK_STR(verdict_str("v=spf1 _foo=bar"),
              "term 1 '_foo=bar': invalid modifier name: it must start with a letter and hold "
              "only letters, digits, '-', '_' and '.'");
    CHECK_STR(verdict_str("v=spf1 ?=bar"), "term 1 '?=bar': modifier without a name");
    CHECK_STR(verdict_str("v=spf1 exp"), "term 1 'exp': unknown mechanism");
    CHECK_STR(verdict_str("v=spf1 redirect"), "term 1 'redirect': unknown mechanism");
    /* exp= does not count against the lookup limit, redirect= does. */
    CHECK_INT(spf_record_parse(R("v=spf1 exp=a.com"), &r, err), 0);
    if (r) {
        CHECK_INT(r->dns_terms, 0);
        spf_record_free(r);
    }
    CHECK_INT(spf_record_parse(R("v=spf1 redirect=a.com"), &r, err), 0);
    if (r) {
        CHECK_INT(r->dns_terms, 1);
        spf_record_free(r);
    }
}

static void test_spf_record_mechanism_errors(void)
{
    CHECK_STR(verdict_str("v=spf1 -"), "term 1 '-': qualifier without a mechanism");
    CHECK_STR(verdict_str("v=spf1 +-all"), "term 1 '+-all': unknown mechanism");
    CHECK_STR(verdict_str("v=spf1 :foo.com"), "term 1 ':foo.com': missing mechanism name");
    CHECK_STR(verdict_str("v=spf1 -/24"), "term 1 '-/24': missing mechanism name");
    CHECK_STR(verdict_str("v=spf1 alll"), "term 1 'alll': unknown mechanism");
    CHECK_STR(verdict_str("v=spf1 ip"), "term 1 'ip': unknown mechanism");
    CHECK_STR(verdict_str("v=spf1 ptr:foo.com/24"),
              "term 1 'ptr:foo.com/24': invalid domain-spec: it must end in a macro or in '.' "
              "and a top-level label");
    CHECK_STR(verdict_str("v=spf1 include/24"), "term 1 'include/24': 'include' takes no prefix length");
    CHECK_STR(verdict_str("v=spf1 exists/24"), "term 1 'exists/24': 'exists' takes no prefix length");
    CHECK_STR(verdict_str("v=spf1 a:"), "term 1 'a:': empty domain-spec after a");
}

static void test_spf_record_bytes_and_spaces(void)
{
    CHECK_STR(verdict_str("v=spf1"), "ok");
    CHECK_STR(verdict_str("v=spf1 "), "ok");
    CHECK_STR(verdict_str("v=spf1     a     -all     "), "ok");
    CHECK_STR(verdict_str("v=spf1\t-all"),
              "not an SPF record: it must start with \"v=spf1\" and a space or end there");
    CHECK_STR(verdict_str("v=spf1 -all\t"), "term 1 '-all\\x09': byte 0x09 at offset 4 is not visible ASCII");
    CHECK_STR(verdict(R("v=spf1 -all\0")), "term 1 '-all\\x00': byte 0x00 at offset 4 is not visible ASCII");
    CHECK_STR(verdict(R("v=spf1 \0")), "term 1 '\\x00': byte 0x00 at offset 0 is not visible ASCII");
    CHECK_STR(verdict_str("v=spf1 a:b\x7f.com"),
              "term 1 'a:b\\x7f.com': byte 0x7f at offset 3 is not visible ASCII");
    CHECK_STR(verdict_str("v=spf1 a:b\xff.com"),
              "term 1 'a:b\\xff.com': byte 0xff at offset 3 is not visible ASCII");
    CHECK_STR(verdict_str("v=spf1 -all \r\n"), "term 2 '\\x0d\\x0a': byte 0x0d at offset 0 is not visible ASCII");
    CHECK_STR(verdict_str(""), "not an SPF record: it must start with \"v=spf1\" and a space or end there");
    CHECK_STR(verdict_str("spf1 -all"),
              "not an SPF record: it must start with \"v=spf1\" and a space or end there");
    /* A quote or backslash is shown escaped, so the quoted term stays unambiguous. */
    CHECK_STR(verdict_str("v=spf1 a:'\\"), "term 1 'a:\\x27\\x5c': invalid domain-spec: it must "
                                             "end in a macro or in '.' and a top-level label");
}

static void test_spf_record_long_terms(void)
{
    static char text[SPF_RECORD_MAX + 2];
    spf_record_t *r;
    size_t n;

    /* A long bad term is quoted in part. */
    CHECK_STR(verdict_str("v=spf1 a:0123456789012345678901234567890123456789012345678901234567890123.4"),
              "term 1 'a:0123456789012345678901234567890123456789012345...': invalid domain-spec: "
              "it must end in a macro or in '.' and a top-level label");
    CHECK_STR(verdict_str("v=spf1 a:\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e"),
              "term 1 'a:\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08\\x09\\x0a\\x0b...': byte "
              "0x01 at offset 2 is not visible ASCII");
    /* SPF_RECORD_MAX bytes are parsed; one more is refused before anything else. */
    memcpy(text, "v=spf1", 6);
    for (n = 6; n + 2 <= SPF_RECORD_MAX; n += 2)
        memcpy(text + n, " a", 2);
    if (n < SPF_RECORD_MAX)
        text[n++] = ' ';
    CHECK_INT(n, SPF_RECORD_MAX);
    CHECK_INT(spf_record_parse(text, n, &r, err), 0);
    if (r) {
        CHECK_INT(r->nterms, (SPF_RECORD_MAX - 6) / 2);
        CHECK_INT(r->dns_terms, (SPF_RECORD_MAX - 6) / 2);
        CHECK_STR(r->terms[r->nterms - 1].text, "a");
        spf_record_free(r);
    }
    text[n++] = 'a';
    CHECK_STR(verdict(text, n), "record of 65536 bytes is longer than 65535");
    /* The longest single term fills storage exactly as sized. */
    memcpy(text, "v=spf1 a:", 9);
    memset(text + 9, 'x', SPF_RECORD_MAX - 9);
    memcpy(text + SPF_RECORD_MAX - 10, ".com//128", 9);
    CHECK_INT(spf_record_parse(text, SPF_RECORD_MAX - 1, &r, err), 0);
    if (r) {
        CHECK_INT(strlen(r->terms[0].text), SPF_RECORD_MAX - 8);
        CHECK_INT(strlen(r->terms[0].domain_spec), SPF_RECORD_MAX - 8 - 2 - 5);
        CHECK_INT(r->terms[0].cidr6, 128);
        spf_record_free(r);
    }
}

int main(void)
{
    UNIT_RUN(test_spf_record_suite);
    UNIT_RUN(test_spf_record_is_spf);
    UNIT_RUN(test_spf_record_structure);
    UNIT_RUN(test_spf_record_mech_names);
    UNIT_RUN(test_spf_record_domain_specs);
    UNIT_RUN(test_spf_record_cidr_limits);
    UNIT_RUN(test_spf_record_addresses);
    UNIT_RUN(test_spf_record_modifiers);
    UNIT_RUN(test_spf_record_mechanism_errors);
    UNIT_RUN(test_spf_record_bytes_and_spaces);
    UNIT_RUN(test_spf_record_long_terms);
    return unit_report();
}
