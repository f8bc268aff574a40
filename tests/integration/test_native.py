"""The native engine's behaviour beyond the RFC 7208 suite, through the real daemon and
a real DNS server: the time budget, parallel lookups (from dnsd's query log order,
with latency, never from wall-clock time), the limits at and one over, %{p}, IPv6 and
IPv4-mapped clients, exp= with macros, the verdict's lifetime and its cache key."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Daemon, Dnsd, PolicyClient, Results, request  # noqa: E402

# dnsd answers the parallel-lookup zone after this delay, so every query the engine
# sends in one go is logged before any answer can cause the next.
LATENCY_MS = 150
# Polling for a TTL of 1 s to run out.
EXPIRY_DEADLINE = 15.0
POLL = 0.05
RESULT = re.compile(r"PREPEND Received-SPF: (\w+) ")
PROBLEM = re.compile(r'problem="([^"]*)"')


def a_terms(n):
    """n a: terms, each an A lookup that finds an address outside the clients'."""
    return " ".join(["a:h.test"] * n)


ZONE = """
# limits: 10 DNS-querying terms across include and redirect
ten.test        TXT 300 "v=spf1 include:t4.test redirect=t4b.test"
t4.test         TXT 300 "v=spf1 @A4@ ?all"
t4b.test        TXT 300 "v=spf1 @A4@ ip4:192.0.2.0/24 -all"
eleven.test     TXT 300 "v=spf1 include:t4.test a:h.test redirect=t4b.test"
h.test          A   300 198.51.100.1
# void lookups: 2 allowed, the third a permerror
void2.test      TXT 300 "v=spf1 a:v1.test mx:v2.test ip4:192.0.2.0/24 -all"
void3.test      TXT 300 "v=spf1 a:v1.test mx:v2.test exists:v3.test ip4:192.0.2.0/24 -all"
# MX: 10 names allowed (the 10th matches), 11 a permerror
mx10.test       TXT 300 "v=spf1 mx -all"
mx11.test       TXT 300 "v=spf1 mx -all"
@MX@
# PTR: only the first 10 names count
ptr.test        TXT 300 "v=spf1 ptr:ptr.test -all"
@PTR@
# %{p}
pm.test         TXT 300 "v=spf1 -all exp=pm-exp.test"
pm-exp.test     TXT 300 "p=%{p}"
5.2.0.192.in-addr.arpa  PTR 300 other.example
5.2.0.192.in-addr.arpa  PTR 300 mail.pm.test
other.example   A   300 192.0.2.5
mail.pm.test    A   300 192.0.2.5
6.2.0.192.in-addr.arpa  PTR 300 liar.pm.test
liar.pm.test    A   300 192.0.2.99
7.2.0.192.in-addr.arpa  PTR 300 other.example
4.2.0.192.in-addr.arpa  PTR 300 far.example
far.example     A   300 192.0.2.4
# IPv6 and IPv4-mapped clients
six.test        TXT 300 "v=spf1 a/24//64 -all"
six.test        A   300 192.0.2.1
six.test        AAAA 300 2001:db8:1::1
mapped.test     TXT 300 "v=spf1 ip6:::ffff:0:0/96 ip4:192.0.2.0/24 -all"
mapped6.test    TXT 300 "v=spf1 ip6:::ffff:0:0/96 -all"
# exp= with macros; an include's exp= is not used, a redirect target's is
exp.test        TXT 300 "v=spf1 include:expinc.test -all exp=explain.exp.test"
explain.exp.test TXT 300 "%{s} %{l} %{o} %{d} %{i} %{c} %{h} %{r} %{v} %{ir} %{d2} %{l-} %{L} %{o1r} %% %_ %-"
expinc.test     TXT 300 "v=spf1 -all exp=incexp.test"
incexp.test     TXT 300 "from the include"
expred.test     TXT 300 "v=spf1 redirect=expredt.test exp=outer.test"
outer.test      TXT 300 "from the redirecting record"
expredt.test    TXT 300 "v=spf1 -all exp=inner.test"
inner.test      TXT 300 "from the redirect target, %{d}"
expmulti.test   TXT 300 "v=spf1 -all exp=multi.test"
multi.test      TXT 300 "one"
multi.test      TXT 300 "two"
expnx.test      TXT 300 "v=spf1 -all exp=nothing.test"
expbin.test     TXT 300 "v=spf1 -all exp=bin.test"
bin.test        TXT 300 "caf\\233"
expbad.test     TXT 300 "v=spf1 -all exp=badmacro.test"
badmacro.test   TXT 300 "bad %{x} macro"
# the verdict lives as long as the shortest TTL behind it
short.test      TXT 300 "v=spf1 include:shortinc.test -all"
shortinc.test   TXT 1   "v=spf1 ip4:192.0.2.0/24 -all"
# the local part is part of the cache key only when a record uses it
local.test      TXT 300 "v=spf1 exists:%{l}.ok.local.test -all"
alice.ok.local.test A 300 127.0.0.2
plain.test      TXT 300 "v=spf1 ip4:192.0.2.0/24 -all"
""".replace("@MX@", "\n".join(
    ["mx10.test MX 300 %d m%d.mx10.test" % (i, i) for i in range(10)] +
    ["m%d.mx10.test A 300 198.51.100.%d" % (i, 10 + i) for i in range(10)] +
    ["mx11.test MX 300 %d m%d.mx11.test" % (i, i) for i in range(11)] +
    ["m%d.mx11.test A 300 198.51.100.%d" % (i, 10 + i) for i in range(11)])).replace(
    "@PTR@", "\n".join(
        # 203.0.113.10 has 11 names, only the 11th is in ptr.test and validates;
        # 203.0.113.11 has the same names but the 10th validates.
        ["10.113.0.203.in-addr.arpa PTR 300 n%d.nowhere.test" % i for i in range(10)] +
        ["10.113.0.203.in-addr.arpa PTR 300 good.ptr.test",
         "good.ptr.test A 300 203.0.113.10"] +
        ["11.113.0.203.in-addr.arpa PTR 300 n%d.nowhere.test" % i for i in range(9)] +
        ["11.113.0.203.in-addr.arpa PTR 300 good11.ptr.test",
         "11.113.0.203.in-addr.arpa PTR 300 n9.nowhere.test",
         "good11.ptr.test A 300 203.0.113.11"]))
ZONE = ZONE.replace("@A4@", a_terms(4))

# Parallel lookups, served with latency.
FAN = """
fan.test        TXT 300 "v=spf1 include:i1.fan.test include:i2.fan.test include:i3.fan.test include:i4.fan.test include:i5.fan.test -all"
i1.fan.test     TXT 300 "v=spf1 a:h1.fan.test -all"
i2.fan.test     TXT 300 "v=spf1 a:h2.fan.test -all"
i3.fan.test     TXT 300 "v=spf1 a:h3.fan.test -all"
i4.fan.test     TXT 300 "v=spf1 a:h4.fan.test -all"
i5.fan.test     TXT 300 "v=spf1 a:h5.fan.test ip4:192.0.2.0/24 -all"
h1.fan.test     A   300 198.51.100.1
h2.fan.test     A   300 198.51.100.2
h3.fan.test     A   300 198.51.100.3
h4.fan.test     A   300 198.51.100.4
h5.fan.test     A   300 198.51.100.5
mxfan.test      TXT 300 "v=spf1 mx -all"
@MXFAN@
slow.test       TXT 300 "v=spf1 ip4:192.0.2.0/24 -all"
""".replace("@MXFAN@", "\n".join(
    # The first exchange never answers: only if its four peers were asked for at the
    # same time do their queries reach dnsd before the check gives up.
    ["mxfan.test MX 300 %d x%d.mxfan.test" % (i, i) for i in range(5)] +
    ["x0.mxfan.test TIMEOUT"] +
    ["x%d.mxfan.test A 300 198.51.100.%d" % (i, 20 + i) for i in range(1, 5)]))

r = Results("native")
dns = Dnsd(ZONE)
BASE = {
    "spf": {"engine": "native", "check_helo": "no", "request_timeout": "5",
            "receiver": "mx.receiver.test"},
    "skip": {"clients": ""},
    "dns": {"timeout": "1", "tries": "1"},
    "action": {"mailfrom_fail": "reject"},
}


def ask(d, **kw):
    with PolicyClient(port=d.port) as c:
        return c.ask(request(**kw))


def result_of(reply):
    if reply.startswith("550 5.7.23 "):
        return "fail"
    m = RESULT.match(reply)
    return m.group(1) if m else None


def problem_of(reply):
    m = PROBLEM.search(reply)
    return m.group(1) if m else ""


def expect(d, name, client, sender, want, problem=None, **kw):
    a = ask(d, client_address=client, sender=sender, **kw)
    ok = result_of(a) == want and (problem is None or problem in problem_of(a))
    return r.check(name, ok, a)


def limits():
    d = Daemon(BASE, dns=dns)
    expect(d, "10 terms across include and redirect: evaluated to the end", "192.0.2.9",
           "x@ten.test", "pass")
    expect(d, "11 terms across include and redirect: permerror", "192.0.2.9",
           "x@eleven.test", "permerror", "more than 10 DNS-querying terms")
    expect(d, "2 void lookups: evaluation goes on", "192.0.2.9", "x@void2.test", "pass")
    expect(d, "3 void lookups: permerror", "192.0.2.9", "x@void3.test", "permerror",
           "more than 2 void DNS lookups")
    expect(d, "10 MX names: the 10th exchange matches", "198.51.100.19", "x@mx10.test", "pass")
    expect(d, "11 MX names: permerror", "198.51.100.19", "x@mx11.test", "permerror",
           "more than 10 MX names")
    expect(d, "11 PTR names: the 11th is ignored", "203.0.113.10", "x@ptr.test", "fail")
    expect(d, "11 PTR names: the 10th counts", "203.0.113.11", "x@ptr.test", "pass")
    d.stop()


def ptr_macro():
    d = Daemon(BASE, dns=dns)
    a = ask(d, client_address="192.0.2.5", sender="x@pm.test")
    r.check("%{p}: a validated name within the domain is preferred",
            a == "550 5.7.23 p=mail.pm.test", a)
    a = ask(d, client_address="192.0.2.6", sender="x@pm.test")
    r.check("%{p}: a name that does not resolve back is unknown", a == "550 5.7.23 p=unknown", a)
    a = ask(d, client_address="192.0.2.7", sender="x@pm.test")
    r.check("%{p}: a name whose address is another client's is unknown",
            a == "550 5.7.23 p=unknown", a)
    a = ask(d, client_address="192.0.2.4", sender="x@pm.test")
    r.check("%{p}: a validated name outside the domain, when it is the only one",
            a == "550 5.7.23 p=far.example", a)
    a = ask(d, client_address="192.0.2.8", sender="x@pm.test")
    r.check("%{p}: no PTR record is unknown", a == "550 5.7.23 p=unknown", a)
    d.stop()


def ipv6():
    d = Daemon(BASE, dns=dns)
    dns.reset_queries()
    expect(d, "a for an IPv6 client matches AAAA with the /64", "2001:db8:1::99",
           "x@six.test", "pass")
    r.check("a for an IPv6 client asks AAAA, not A",
            ("six.test", "AAAA") in dns.queries() and ("six.test", "A") not in dns.queries(),
            dns.queries())
    expect(d, "a for an IPv6 client outside the /64 fails", "2001:db8:2::1", "y@six.test",
           "fail")
    dns.reset_queries()
    expect(d, "a for an IPv4 client matches A with the /24", "192.0.2.200", "x@six.test", "pass")
    r.check("a for an IPv4 client asks A", ("six.test", "A") in dns.queries(), dns.queries())
    expect(d, "IPv4-mapped client is IPv4: a asks A and matches", "::ffff:192.0.2.201",
           "z@six.test", "pass")
    expect(d, "IPv4-mapped client matches ip4:", "::ffff:192.0.2.9", "x@mapped.test", "pass")
    expect(d, "IPv4-mapped client does not match ip6:::ffff:0:0/96", "::ffff:192.0.2.9",
           "x@mapped6.test", "fail")
    d.stop()


def explanations():
    d = Daemon(BASE, dns=dns)
    a = ask(d, client_address="192.0.2.9", sender="John.Doe-x@exp.test", helo_name="helo.client.test")
    r.check("exp= expands every macro exactly, and the include's own exp= is not used",
            a == "550 5.7.23 John.Doe-x@exp.test John.Doe-x exp.test exp.test 192.0.2.9 "
                 "192.0.2.9 helo.client.test mx.receiver.test in-addr 9.2.0.192 exp.test "
                 "John.Doe.x John.Doe-x exp %   %20", a)
    a = ask(d, client_address="192.0.2.9", sender="x@expred.test")
    r.check("redirect: the target's exp= is used, with the target as %{d}",
            a == "550 5.7.23 from the redirect target, expredt.test", a)
    default = "192.0.2.9 is not one of %s's designated mail servers"
    for dom, why in (("expmulti.test", "several TXT records"), ("expnx.test", "no TXT record"),
                     ("expbin.test", "text that is not ASCII"),
                     ("expbad.test", "an invalid macro")):
        a = ask(d, client_address="192.0.2.9", sender="x@" + dom)
        r.check("exp= with %s: the default explanation" % why,
                a == "550 5.7.23 " + default % dom, a)
    d.stop()


def verdict_lifetime_and_key():
    d = Daemon(BASE, dns=dns)
    dns.reset_queries()
    expect(d, "short TTL: pass", "192.0.2.9", "x@short.test", "pass")
    first = dns.queries().count(("shortinc.test", "TXT"))
    deadline = time.monotonic() + EXPIRY_DEADLINE
    again = first
    while again == first and time.monotonic() < deadline:
        ask(d, client_address="192.0.2.9", sender="x@short.test")
        again = dns.queries().count(("shortinc.test", "TXT"))
        if again == first:
            time.sleep(POLL)
    r.check("the verdict expires with the 1 s TTL of an included record, not the 300 s one",
            first == 1 and again == 2, "queries %d then %d" % (first, again))
    expect(d, "%{l}: alice passes", "192.0.2.9", "alice@local.test", "pass")
    expect(d, "%{l}: bob is checked on his own and fails", "192.0.2.9", "bob@local.test", "fail")
    dns.reset_queries()
    expect(d, "no macro: a first sender passes", "192.0.2.9", "a@plain.test", "pass")
    expect(d, "no macro: another local part comes from the verdict cache", "192.0.2.9",
           "b@plain.test", "pass")
    r.check("no macro: one TXT query for both", dns.queries().count(("plain.test", "TXT")) == 1,
            dns.queries())
    d.stop()


def index_of(queries, item):
    return queries.index(item) if item in queries else -1


def parallel_lookups():
    fan = Dnsd(FAN, latency_ms=LATENCY_MS)
    d = Daemon(BASE, dns=fan)
    fan.reset_queries()
    expect(d, "five includes: pass through the fifth", "192.0.2.9", "x@fan.test", "pass")
    q = fan.queries()
    includes = [("i%d.fan.test" % i, "TXT") for i in range(1, 6)]
    targets = [("h%d.fan.test" % i, "A") for i in range(1, 6)]
    pos_inc = [index_of(q, x) for x in includes]
    pos_tgt = [index_of(q, x) for x in targets]
    r.check("all five include TXT queries go out before any of them is answered",
            min(pos_inc) > 0 and max(pos_inc) < min(pos_tgt) and min(pos_tgt) >= 0, q)
    r.check("one query per name: 1 + 5 TXT + 5 A", len(q) == 11 and len(set(q)) == 11, q)
    fan.reset_queries()
    expect(d, "MX whose first exchange times out: temperror", "198.51.100.24", "x@mxfan.test",
           "temperror", "A x0.mxfan.test")
    q = fan.queries()
    addrs = [index_of(q, ("x%d.mxfan.test" % i, "A")) for i in range(5)]
    r.check("the five exchange addresses are asked for together, right after the MX",
            q[:2] == [("mxfan.test", "TXT"), ("mxfan.test", "MX")] and
            sorted(addrs) == list(range(2, 7)), q)
    d.stop()
    fan.stop()
    slow = Dnsd(FAN, latency_ms=3000)
    d = Daemon(dict(BASE, spf=dict(BASE["spf"], request_timeout="1"),
                    dns={"timeout": "10", "tries": "1"}), dns=slow)
    a = ask(d, client_address="192.0.2.9", sender="x@slow.test")
    r.check("time budget: a check still waiting for DNS after 1 s is a temperror",
            result_of(a) == "temperror" and "time budget" in problem_of(a), a)
    expect(d, "the daemon answers the next request after a budget ran out", "192.0.2.9",
           "y@nothing-here.test", "temperror", "time budget")
    d.stop()
    slow.stop()


for fn in (limits, ptr_macro, ipv6, explanations, verdict_lifetime_and_key, parallel_lookups):
    r.run(fn)
r.finish()
