"""SPF decisions of the real daemon against a real DNS server: results, replies,
limits, caches, the per-message memo, skip rules, whitelists, headers and reloads.
Everything runs once per engine (native, the default, and libspf2); check names
carry the engine."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import BUILD, Daemon, Dnsd, PolicyClient, Results, request  # noqa: E402

CVE_RECORD = "v=spf1 a:" + "%{d}" * 127 + "x" * 4000

ZONE = """
pass.test       TXT 300 "v=spf1 ip4:192.0.2.0/24 -all"
fail.test       TXT 300 "v=spf1 -all"
softfail.test   TXT 300 "v=spf1 ~all"
neutral.test    TXT 300 "v=spf1 ?all"
exp.test        TXT 300 "v=spf1 -all exp=why.exp.test"
why.exp.test    TXT 300 "%{i} may not send for %{d}"
perm.test       TXT 300 "v=spf1 ip4:192.0.2.0/24 -all"
perm.test       TXT 300 "v=spf1 -all"
slow.test       TIMEOUT
local.test      TXT 300 "v=spf1 exists:%{l}.allow.local.test -all"
alice.allow.local.test A 300 127.0.0.2
helo.test       TXT 300 "v=spf1 a -all"
helo.test       A 300 192.0.2.77
badhelo.test    TXT 300 "v=spf1 -all"
six.test        TXT 300 "v=spf1 ip6:2001:db8::/32 -all"
cve.test        TXT 300 "@CVE@"
voids.test      TXT 300 "v=spf1 a:n1.voids.test a:n2.voids.test a:n3.voids.test -all"
many.test       TXT 300 "v=spf1 include:i1.many.test include:i2.many.test include:i3.many.test include:i4.many.test include:i5.many.test include:i6.many.test -all"
i1.many.test    TXT 300 "v=spf1 a:h.many.test a:h.many.test ?all"
i2.many.test    TXT 300 "v=spf1 a:h.many.test ?all"
i3.many.test    TXT 300 "v=spf1 a:h.many.test ?all"
i4.many.test    TXT 300 "v=spf1 a:h.many.test ?all"
i5.many.test    TXT 300 "v=spf1 a:h.many.test ?all"
i6.many.test    TXT 300 "v=spf1 ip4:203.0.113.0/24 ?all"
h.many.test     A 300 198.51.100.1
mx.test         TXT 300 "v=spf1 mx -all"
@MX@
nest.test       TXT 300 "v=spf1 include:a.nest.test -all"
a.nest.test     TXT 300 "v=spf1 include:b.nest.test ?all"
b.nest.test     TXT 300 "v=spf1 mx:m.nest.test ?all"
m.nest.test     MX 300 10 x1.nest.test
x1.nest.test    A 300 198.51.100.50
white.test      TXT 300 "v=spf1 -all"
fc.test         A 300 198.51.100.60
60.100.51.198.in-addr.arpa PTR 300 relay.partner.test
relay.partner.test A 300 198.51.100.60
61.100.51.198.in-addr.arpa PTR 300 relay.partner.test
""".replace("@CVE@", CVE_RECORD).replace(
    "@MX@", "\n".join("mx.test MX 300 %d mx%d.mx.test" % (i, i) for i in range(11)))

BASE = {
    "spf": {"check_helo": "no", "request_timeout": "3"},
    "skip": {"clients": None},
    "dns": {"timeout": "1", "tries": "1"},
}


def merged(extra):
    out = {k: dict(v) for k, v in BASE.items()}
    for sec, kv in extra.items():
        out.setdefault(sec, {}).update(kv)
    return out


ENGINES = ("native", "libspf2")
results = Results("spf")


class EngineResults:
    """Results whose check names say which engine ran."""

    def __init__(self, engine):
        self.engine = engine

    def check(self, name, condition, detail=""):
        return results.check("[%s] %s" % (self.engine, name), condition, detail)

    def run(self, fn):
        results.run(fn, "[%s] %s" % (self.engine, fn.__name__))


r = None
dns = Dnsd(ZONE)
# [skip] clients = (empty) must be written, not left out: None removes a harness key.
BASE["skip"] = {"clients": ""}


def ask(d, **kw):
    with PolicyClient(port=d.port) as c:
        return c.ask(request(**kw))


def results_and_replies():
    d = Daemon(merged({"action": {"mailfrom_permerror": "reject", "mailfrom_temperror": "defer"}}),
               dns=dns)
    a = ask(d, client_address="192.0.2.9", sender="a@pass.test")
    r.check("pass prepends Received-SPF pass",
            a.startswith("PREPEND Received-SPF: pass (") and "identity=mailfrom" in a
            and 'envelope-from="a@pass.test"' in a and "client-ip=192.0.2.9;" in a, a)
    a = ask(d, client_address="198.51.100.9", sender="bob@fail.test")
    r.check("fail rejects with 550 5.7.23 and the default explanation",
            a == "550 5.7.23 198.51.100.9 is not one of fail.test's designated mail servers", a)
    a = ask(d, client_address="198.51.100.9", sender="bob@exp.test")
    r.check("fail with exp= uses the domain's explanation, spaces and macros intact",
            a == "550 5.7.23 198.51.100.9 may not send for exp.test", a)
    a = ask(d, client_address="198.51.100.9", sender="bob@softfail.test")
    r.check("softfail prepends", a.startswith("PREPEND Received-SPF: softfail ("), a)
    a = ask(d, client_address="198.51.100.9", sender="bob@neutral.test")
    r.check("neutral prepends", a.startswith("PREPEND Received-SPF: neutral ("), a)
    a = ask(d, client_address="198.51.100.9", sender="bob@nothing.test")
    r.check("no record is none", a.startswith("PREPEND Received-SPF: none ("), a)
    a = ask(d, client_address="198.51.100.9", sender="bob@perm.test")
    r.check("two records: permerror rejected with 550 5.7.24", a.startswith("550 5.7.24 SPF permerror for perm.test"), a)
    a = ask(d, client_address="198.51.100.9", sender="bob@slow.test")
    r.check("DNS timeout: temperror deferred with 451 4.7.24", a.startswith("451 4.7.24 SPF temperror for slow.test"), a)
    a = ask(d, client_address="2001:db8::25", sender="bob@six.test")
    r.check("IPv6 client matches ip6:", a.startswith("PREPEND Received-SPF: pass") and "client-ip=2001:db8::25;" in a, a)
    a = ask(d, client_address="::ffff:198.51.100.9", sender="bob@six.test")
    r.check("IPv4-mapped client does not match ip6:", a.startswith("550 5.7.23"), a)
    a = ask(d, client_address="198.51.100.9", sender="bob@invalid")
    r.check("single-label sender domain is none", a.startswith("PREPEND Received-SPF: none ("), a)
    d.stop()


def limits():
    d = Daemon(merged({}), dns=dns)
    a = ask(d, client_address="198.51.100.9", sender="x@cve.test")
    # libspf2 itself must never see it (our guard says "refused"); the native engine
    # just finds the record invalid.
    r.check("CVE-2023-42118 record is a permerror",
            a.startswith("PREPEND Received-SPF: permerror (") and
            (r.engine == "native" or "refused" in a), a[:200])
    a = ask(d, client_address="192.0.2.9", sender="x@pass.test")
    r.check("daemon still answers after the CVE record", a.startswith("PREPEND Received-SPF: pass"), a)
    a = ask(d, client_address="198.51.100.9", sender="x@voids.test")
    r.check("three void lookups: permerror", a.startswith("PREPEND Received-SPF: permerror") and "void" in a, a)
    a = ask(d, client_address="203.0.113.5", sender="x@many.test")
    r.check("11 DNS terms across includes: permerror", a.startswith("PREPEND Received-SPF: permerror") and "more than 10" in a, a)
    a = ask(d, client_address="198.51.100.9", sender="x@mx.test")
    r.check("more than 10 MX names: permerror", a.startswith("PREPEND Received-SPF: permerror") and "MX" in a, a)
    a = ask(d, client_address="198.51.100.50", sender="x@nest.test")
    r.check("include -> include -> mx: pass", a.startswith("PREPEND Received-SPF: pass"), a)
    d.stop()


def caches_and_memo():
    d = Daemon(merged({}), dns=dns)
    dns.reset_queries()
    ask(d, client_address="192.0.2.9", sender="a@pass.test")
    first = len(dns.queries())
    ask(d, client_address="192.0.2.9", sender="b@pass.test")
    r.check("a repeated check is answered from the verdict cache, no DNS query",
            first >= 1 and len(dns.queries()) == first, "%d then %d" % (first, len(dns.queries())))
    a1 = ask(d, client_address="198.51.100.9", sender="alice@local.test")
    a2 = ask(d, client_address="198.51.100.9", sender="bob@local.test")
    r.check("%{l} records are cached per local part",
            a1.startswith("PREPEND Received-SPF: pass") and a2.startswith("550 5.7.23"), a1 + " / " + a2)
    with PolicyClient(port=d.port) as c:
        req = request(client_address="192.0.2.9", sender="a@pass.test")
        a1 = c.ask(req)
        req2 = dict(req, recipient="carol@example.net")
        a2 = c.ask(req2)
        r.check("second recipient of the same message: DUNNO",
                a1.startswith("PREPEND Received-SPF:") and a2 == "DUNNO", a2)
        req = request(client_address="198.51.100.9", sender="bob@fail.test")
        a1 = c.ask(req)
        a2 = c.ask(dict(req, recipient="carol@example.net"))
        r.check("second recipient of a rejected message: rejected again", a1 == a2 and a1.startswith("550"), a2)
        a3 = c.ask(request(client_address="192.0.2.9", sender="a@pass.test"))
        r.check("next message on the connection gets its own header", a3.startswith("PREPEND"), a3)
    d.stop()


def helo_identity():
    d = Daemon(merged({"spf": {"check_helo": "yes"}}), dns=dns)
    a = ask(d, client_address="192.0.2.77", helo_name="helo.test", sender="")
    r.check("null sender with passing HELO: pass header for postmaster@helo",
            a.startswith("PREPEND Received-SPF: pass") and 'envelope-from="postmaster@helo.test"' in a, a)
    a = ask(d, client_address="192.0.2.78", helo_name="helo.test", sender="")
    r.check("null sender with failing HELO: rejected", a.startswith("550 5.7.23"), a)
    dns.reset_queries()
    a = ask(d, client_address="192.0.2.9", helo_name="badhelo.test", sender="a@unasked.test")
    asked = [n for n, _ in dns.queries() if n.lower() == "unasked.test"]
    r.check("failing HELO rejects before MAIL FROM, whose domain is never looked up",
            a.startswith("550 5.7.23") and not asked, "%s; queries %s" % (a, dns.queries()))
    a = ask(d, client_address="192.0.2.9", helo_name="badhelo.test", sender="", protocol_state="EHLO")
    r.check("EHLO stage: HELO fail is rejected already", a.startswith("550 5.7.23"), a)
    a = ask(d, client_address="192.0.2.77", helo_name="helo.test", sender="", protocol_state="EHLO")
    r.check("EHLO stage: nothing to add yet", a == "DUNNO", a)
    a = ask(d, client_address="192.0.2.9", helo_name="[192.0.2.9]", sender="a@pass.test")
    r.check("address-literal HELO is not checked", a.startswith("PREPEND Received-SPF: pass"), a)
    d.stop()


def skips_and_whitelists():
    d = Daemon(merged({
        "skip": {"clients": "10.0.0.0/8", "sasl": "yes", "server_ports": "587"},
        "whitelist": {"clients": "203.0.113.0/24", "senders": "white.test",
                      "helo": "fc.test", "ptr": "partner.test"},
    }), dns=dns)
    a = ask(d, client_address="10.1.2.3", sender="bob@fail.test")
    r.check("skip by client CIDR still prepends our header",
            a.startswith("PREPEND Received-SPF: none (") and "skipped" in a, a)
    a = ask(d, client_address="198.51.100.9", sender="bob@fail.test", sasl_username="bob")
    r.check("skip SASL-authenticated", "skipped: client authenticated" in a, a)
    a = ask(d, client_address="198.51.100.9", sender="bob@fail.test", server_port="587")
    r.check("skip by server_port", "skipped: server_port" in a, a)
    a = ask(d, client_address="203.0.113.9", sender="bob@fail.test")
    r.check("whitelist by client CIDR", "whitelisted: client is in" in a, a)
    a = ask(d, client_address="198.51.100.9", sender="bob@mail.white.test")
    r.check("whitelist by sender domain, subdomain at a dot boundary", "whitelisted: sender domain" in a, a)
    a = ask(d, client_address="198.51.100.9", sender="bob@badwhite.test")
    r.check("no whitelist match for a bare suffix", "whitelisted" not in a, a)
    a = ask(d, client_address="198.51.100.60", helo_name="fc.test", sender="bob@fail.test")
    r.check("whitelist by forward-confirmed HELO", "whitelisted" in a, a)
    a = ask(d, client_address="198.51.100.61", helo_name="nope.test", sender="bob@fail.test")
    r.check("PTR name that does not resolve back is not whitelisted", a.startswith("550 5.7.23"), a)
    a = ask(d, client_address="198.51.100.60", helo_name="nope.test", sender="bob@fail.test")
    r.check("whitelist by forward-confirmed PTR", "whitelisted: client's forward-confirmed PTR" in a, a)
    d.stop()


def headers_and_reload():
    d = Daemon(merged({"header": {"style": "both", "authserv_id": "mx.test"}}), dns=dns)
    with PolicyClient(port=d.port) as c:
        req = request(client_address="192.0.2.9", sender="a@pass.test")
        a1 = c.ask(req)
        a2 = c.ask(dict(req, protocol_state="DATA", recipient=""))
        a3 = c.ask(dict(req, protocol_state="END-OF-MESSAGE", recipient=""))
    r.check("style both: Received-SPF first", a1.startswith("PREPEND Received-SPF: pass"), a1)
    r.check("style both: Authentication-Results on the next request",
            a2 == "PREPEND Authentication-Results: mx.test; spf=pass smtp.mailfrom=pass.test", a2)
    r.check("style both: then DUNNO", a3 == "DUNNO", a3)
    d.reload(merged({"header": {"style": "authentication-results", "authserv_id": "mx.test"},
                     "action": {"mailfrom_fail": "hold"}}))
    a = ask(d, client_address="198.51.100.9", sender="bob@fail.test")
    r.check("reload applies the new action mapping", a.startswith("HOLD "), a)
    with open(d.config_path, "a") as f:
        f.write("\n[action]\nmailfrom_fail = explode\n")
    d.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "reload failed" not in d.log() and time.time() < deadline:
        time.sleep(0.05)
    r.check("a bad reload is logged with file, line and key",
            "reload failed" in d.log() and "mailfrom_fail" in d.log(), d.log()[-500:])
    a = ask(d, client_address="198.51.100.9", sender="bob@fail.test")
    r.check("a bad reload keeps the running configuration", a.startswith("HOLD "), a)
    d.stop()


def config_check():
    bad = os.path.join(BUILD, "test_spf_bad.ini")
    with open(bad, "w") as f:
        f.write("[spf]\nrequest_timeout = 0\n")
    p = subprocess.run([os.path.join(BUILD, "spf-policyd"), "-t", "-c", bad],
                       capture_output=True, text=True)
    os.unlink(bad)
    r.check("-t rejects a bad config naming file, line and key",
            p.returncode == 1 and bad + ":2:" in p.stderr and "request_timeout" in p.stderr, p.stderr)
    p = subprocess.run([os.path.join(BUILD, "spf-policyd"), "-t"], capture_output=True, text=True)
    r.check("-t accepts the built-in defaults", p.returncode == 0, p.stdout + p.stderr)


for engine in ENGINES:
    r = EngineResults(engine)
    BASE["spf"]["engine"] = engine
    for fn in (results_and_replies, limits, caches_and_memo, helo_identity,
               skips_and_whitelists, headers_and_reload):
        r.run(fn)
r = EngineResults("any")
r.run(config_check)
results.finish()
