"""Several daemons, one real Redis: verdicts and DNS answers shared between hosts (a
check on A makes the same check on B a hit that sends no DNS query), temperrors shared
only for [redis] error_ttl, the reputation added up across hosts, refusing a failing
network before any DNS work, shown in Received-SPF (and still parsed by OpenDMARC),
printed by --reputation, and every key the daemons write carrying a TTL."""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import BUILD, Daemon, Dnsd, PolicyClient, Results, request, _tmpdir  # noqa: E402
from redisfix import RedisServer  # noqa: E402

ZONE = """
mail.shared.test  TXT 300 "v=spf1 ip4:198.51.100.0/24 a -all"
mail.shared.test  A   300 198.51.100.10
shared.test       TXT 300 "v=spf1 include:inc.shared.test -all"
inc.shared.test   TXT 300 "v=spf1 ip4:198.51.100.0/24 ~all"
dns.test          TXT 300 "v=spf1 include:inc.dns.test -all"
mail.dns.test     TXT 300 "v=spf1 ip4:198.51.100.0/24 -all"
inc.dns.test      TXT 300 "v=spf1 ip4:198.51.100.0/24 ~all"
local.test        TXT 300 "v=spf1 exists:%{l}.ok.local.test -all"
alice.ok.local.test A 300 127.0.0.2
fail.test         TXT 300 "v=spf1 -all"
tmp.test          TIMEOUT
dmarc.test        TXT 300 "v=spf1 ip4:203.0.113.0/24 ip4:198.51.100.0/24 -all"
helo.rep.test     TXT 300 "v=spf1 ip4:203.0.113.0/24 -all"
"""
# tmp.test once its DNS has recovered.
ZONE_RECOVERED = ZONE.replace('tmp.test          TIMEOUT',
                              'tmp.test          TXT 300 "v=spf1 ip4:198.51.100.0/24 -all"')

PREFIX = "it:"
ERROR_TTL = 2
WRAPPED = bool(os.environ.get("SPF_POLICYD_WRAPPER", "").strip())
# Generous under valgrind: a slow daemon must not see Redis as slow.
REDIS_TIMEOUT = "2" if WRAPPED else "0.5"
DEADLINE = 60.0 if WRAPPED else 15.0
POLL = 0.02
REPUTATION_RE = re.compile(r'; x-spf-reputation="[^"]*"')

r = Results("redis")
dns = Dnsd(ZONE)
redis = RedisServer()


def config(**sections):
    c = {
        "spf": {"check_helo": "yes", "request_timeout": "5"},
        "skip": {"clients": ""},
        "dns": {"timeout": "0.5", "tries": "1"},
        "redis": {"address": redis.address, "prefix": PREFIX, "timeout": REDIS_TIMEOUT,
                  "connect_timeout": "2", "retry_max": "0.5", "error_ttl": str(ERROR_TTL)},
        "reputation": {"flush_interval": "0.05", "refresh": "0.2"},
    }
    for sec, kv in sections.items():
        c.setdefault(sec, {}).update(kv)
    return c


def wait_for(what, fn, timeout=DEADLINE):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(POLL)
    raise AssertionError("timed out waiting for " + what)


def start(**sections):
    d = Daemon(config(**sections), dns=dns)
    wait_for("the daemon's Redis connection", lambda: "redis: connected to" in d.log())
    return d


def ask(d, **kw):
    with PolicyClient(port=d.port) as c:
        return c.ask(request(**kw))


def without_reputation(reply):
    return REPUTATION_RE.sub("", reply)


def forget_dns_answers():
    """Only a shared verdict can spare a DNS query now."""
    for k in redis.keys(PREFIX + "d:*"):
        redis.cmd("DEL", k)


def counts(key):
    """The stored decayed counts of a reputation key, as floats (none..permerror)."""
    v = redis.cmd("GET", key)
    return [float(x) for x in v.split()[1:]] if v else None


def shared_verdicts_and_answers():
    a, b = start(), start()
    req = dict(client_address="198.51.100.10", helo_name="mail.shared.test",
               sender="alice@shared.test")
    dns.reset_queries()
    ra = ask(a, **req)
    r.check("a cold check on A passes", ra.startswith("PREPEND Received-SPF: pass ("), ra)
    r.check("A asked the DNS server", len(dns.queries()) >= 2, dns.queries())
    wait_for("A's verdicts in Redis", lambda: redis.cmd("EXISTS", PREFIX + "v:198.51.100.10|shared.test")
             and redis.cmd("EXISTS", PREFIX + "v:198.51.100.10|mail.shared.test"))
    forget_dns_answers()
    dns.reset_queries()
    rb = ask(b, **req)
    r.check("the same check on B gives the same answer",
            without_reputation(rb) == without_reputation(ra), "%r\n%r" % (ra, rb))
    r.check("B sent no DNS query for it", dns.queries() == [], dns.queries())

    # Another client: no verdict to share, but every DNS answer is in Redis.
    ra = ask(a, client_address="198.51.100.10", helo_name="mail.dns.test",
             sender="alice@dns.test")
    wait_for("A's DNS answers in Redis", lambda: redis.cmd("EXISTS", PREFIX + "d:16:inc.dns.test"))
    dns.reset_queries()
    rb2 = ask(b, client_address="198.51.100.11", helo_name="mail.dns.test",
              sender="bob@dns.test")
    r.check("B checks another client from shared DNS answers",
            rb2.startswith("PREPEND Received-SPF: pass (") and "client-ip=198.51.100.11;" in rb2,
            rb2)
    r.check("B sent no DNS query for that either", dns.queries() == [], dns.queries())
    r.check("B's log says where the answers came from", "from the shared cache" in b.log(),
            b.log()[-2000:])

    # A verdict that depends on the local part: a marker under the short key, the
    # verdict under the long one, both fetched in the same round trip.
    ra = ask(a, client_address="198.51.100.10", helo_name="mail.shared.test",
             sender="alice@local.test")
    r.check("a local-part verdict on A", ra.startswith("PREPEND Received-SPF: pass ("), ra)
    wait_for("the local-part verdict in Redis",
             lambda: redis.cmd("EXISTS", PREFIX + "v:198.51.100.10|local.test|l=alice"))
    forget_dns_answers()
    dns.reset_queries()
    rb = ask(b, client_address="198.51.100.10", helo_name="mail.shared.test",
             sender="alice@local.test")
    r.check("B gets it from the marker and the long key", rb.startswith("PREPEND Received-SPF: pass (")
            and dns.queries() == [], "%r %r" % (rb, dns.queries()))
    rb = ask(b, client_address="198.51.100.10", helo_name="mail.shared.test",
             sender="carol@local.test")
    r.check("another local part is checked, with DNS",
            rb.startswith("550 5.7.23") and sorted(dns.queries()) ==
            [("carol.ok.local.test", "A"), ("local.test", "TXT")], "%r %r" % (rb, dns.queries()))
    a.stop()
    b.stop()


def temperror_not_shared_long():
    a, b = start(), start()
    req = dict(client_address="198.51.100.20", helo_name="mail.shared.test",
               sender="x@tmp.test")
    t0 = time.monotonic()
    ra = ask(a, **req)
    r.check("a DNS timeout on A is a temperror", ra.startswith("PREPEND Received-SPF: temperror"), ra)
    dns.reload(ZONE_RECOVERED)
    dns.reset_queries()
    rb = ask(b, **req)
    within = time.monotonic() - t0 < ERROR_TTL
    r.check("within error_ttl B gets A's temperror without asking DNS",
            not within or (rb.startswith("PREPEND Received-SPF: temperror") and
                           ("tmp.test", "TXT") not in dns.queries()),
            "%r %r" % (rb, dns.queries()))
    rb = wait_for("B's own verdict after error_ttl", lambda: (lambda x: x if "Received-SPF: pass" in x
                                                             else None)(ask(b, **req)))
    elapsed = time.monotonic() - t0
    # A keeps its own temperror for [dns] error_ttl (30 s); B is free of it after 2.
    r.check("B checks again after the short time (%.1f s), not after A's 30 s" % elapsed,
            elapsed < ERROR_TTL + (10 if WRAPPED else 3), rb)
    r.check("B asked the DNS server itself", ("tmp.test", "TXT") in dns.queries(), dns.queries())
    dns.reload(ZONE)
    a.stop()
    b.stop()


def reputation_across_hosts():
    a, b = start(), start()
    for i in range(3):
        x = ask(a, client_address="203.0.113.5", helo_name="helo.rep.test", sender="u%d@fail.test" % i)
        r.check("fail on A is rejected (%d)" % i, x.startswith("550 5.7.23"), x)
    for i in range(2):
        x = ask(b, client_address="203.0.113.6", helo_name="helo.rep.test", sender="v%d@fail.test" % i)
        r.check("fail on B is rejected (%d)" % i, x.startswith("550 5.7.23"), x)
    net = wait_for("both hosts' counts in Redis",
                   lambda: (lambda c: c if c and round(c[3], 3) == 5 else None)(
                       counts(PREFIX + "r:n:203.0.113.0/24")))
    r.check("the network's counts add up: 5 fail, nothing else", [round(x, 3) for x in net] ==
            [0, 0, 0, 5, 0, 0, 0], net)
    dom = counts(PREFIX + "r:d:fail.test")
    r.check("the domain's too", dom and round(dom[3], 3) == 5, dom)
    ip = counts(PREFIX + "r:i:203.0.113.5")
    r.check("and each IP its own", ip and round(ip[3], 3) == 3 and
            round(counts(PREFIX + "r:i:203.0.113.6")[3], 3) == 2, ip)

    out = subprocess.run([os.environ.get("SPF_POLICYD_BIN") or os.path.join(BUILD, "spf-policyd"),
                          "-c", a.config_path, "--reputation", "203.0.113.5"],
                         capture_output=True, text=True, timeout=30)
    r.check("--reputation prints the address and its network",
            out.returncode == 0 and out.stdout ==
            "ip 203.0.113.5: 3.0 checks, 3.0 failing: none 0.0, neutral 0.0, pass 0.0, fail 3.0, "
            "softfail 0.0, temperror 0.0, permerror 0.0\n"
            "net 203.0.113.0/24: 5.0 checks, 5.0 failing: none 0.0, neutral 0.0, pass 0.0, "
            "fail 5.0, softfail 0.0, temperror 0.0, permerror 0.0\n",
            "%d %r %r" % (out.returncode, out.stdout, out.stderr))
    out = subprocess.run([os.environ.get("SPF_POLICYD_BIN") or os.path.join(BUILD, "spf-policyd"),
                          "-c", a.config_path, "--reputation", "Fail.Test."],
                         capture_output=True, text=True, timeout=30)
    r.check("--reputation prints a domain", out.returncode == 0 and out.stdout.startswith(
        "domain fail.test: 5.0 checks, 5.0 failing: "), "%r %r" % (out.stdout, out.stderr))

    # The header shows it, and OpenDMARC still reads it. Each try is a message of its
    # own that counts a pass, and A may first show its own counts only (until its
    # copy of the network's reputation is refreshed): count the tries.
    tries = [0]

    def header_with_counts():
        tries[0] += 1
        x = ask(a, client_address="203.0.113.5", helo_name="helo.rep.test",
                sender="alice@dmarc.test")
        return x if re.search(r'; x-spf-reputation="net 5/\d+ ip 3/\d+ domain 0/\d+"; '
                              r'identity=mailfrom$', x) else None

    hdr = wait_for("the header with both hosts' counts", header_with_counts)
    r.check("the header carries the reputation", hdr.startswith("PREPEND Received-SPF: pass ("), hdr)
    opendmarc(hdr[len("PREPEND "):])
    total = 5 + tries[0]
    wait_for("A's passes in Redis", lambda: round(sum(counts(PREFIX + "r:n:203.0.113.0/24")), 3)
             == total)

    # A third host refuses the network before any DNS work. The share of failures is 5
    # of total: the threshold is set just under it, since a key's counts decay by the
    # second and the failures, counted first, may have decayed a little more.
    pct = str(500 // total - 1)
    c = start(reputation={"action": "reject", "min_checks": "5", "fail_percent": pct})
    dns.reset_queries()
    x = ask(c, client_address="203.0.113.77", helo_name="helo.rep.test", sender="w@dmarc.test")
    r.check("a failing network is refused with its own code and text",
            x == "550 5.7.1 mail from your network keeps failing SPF checks "
                 "(203.0.113.0/24: 5 of %d recent SPF checks failed)" % total, x)
    r.check("without a DNS query", dns.queries() == [], dns.queries())
    x = ask(c, client_address="198.51.100.30", helo_name="mail.shared.test", sender="w@dmarc.test")
    r.check("another network is checked as usual", x.startswith("PREPEND Received-SPF: pass ("), x)
    c.reload(config(reputation={"action": "defer", "min_checks": "5", "fail_percent": pct,
                                "defer_status": "4.7.26", "text": "try later"}))
    x = ask(c, client_address="203.0.113.78", helo_name="helo.rep.test", sender="w@dmarc.test")
    r.check("defer after a reload", x == "451 4.7.26 try later "
            "(203.0.113.0/24: 5 of %d recent SPF checks failed)" % total, x)
    c.reload(config(reputation={"action": "reject", "min_checks": "1000", "fail_percent": pct}))
    x = ask(c, client_address="203.0.113.79", helo_name="helo.rep.test", sender="w@dmarc.test")
    r.check("below min_checks nothing is refused", x.startswith("PREPEND Received-SPF: pass ("), x)
    c.reload(config(reputation={"action": "reject", "min_checks": "5",
                                "fail_percent": str(500 // total + 1)}))
    x = ask(c, client_address="203.0.113.80", helo_name="helo.rep.test", sender="w@dmarc.test")
    r.check("below fail_percent nothing is refused", x.startswith("PREPEND Received-SPF: pass ("), x)
    for d in (a, b, c):
        d.stop()


def helo_refusal_counts():
    """A message refused on its HELO before the sender's domain is checked (the HELO
    verdict was known) counts for its address and network, not for that domain."""
    a = start()
    x = ask(a, client_address="192.0.2.99", helo_name="fail.test", sender="z@dmarc.test")
    r.check("a HELO fail is rejected", x.startswith("550 5.7.23"), x)
    x = ask(a, client_address="192.0.2.99", helo_name="fail.test", sender="z@unchecked.test")
    r.check("again, from the HELO verdict in memory", x.startswith("550 5.7.23"), x)
    ip = wait_for("the address's counts", lambda: (lambda c: c if c and round(c[3], 3) == 2
                                                    else None)(counts(PREFIX + "r:i:192.0.2.99")))
    net = counts(PREFIX + "r:n:192.0.2.0/24")
    r.check("both count as fails for the address and the network",
            [round(v, 3) for v in ip] == [0, 0, 0, 2, 0, 0, 0] and net and round(net[3], 3) == 2,
            "%r %r" % (ip, net))
    r.check("the unchecked sender's domain has no reputation",
            counts(PREFIX + "r:d:unchecked.test") is None, counts(PREFIX + "r:d:unchecked.test"))
    a.stop()


def opendmarc(header):
    """Our Received-SPF, x-spf-reputation included, gives OpenDMARC its SPF pass (DMARC
    pass without DKIM); the same header saying identity=helo does not."""
    d = _tmpdir("opendmarc-")
    conf, dnsdata, msg = (os.path.join(d, n) for n in ("opendmarc.conf", "dns", "msg"))
    with open(dnsdata, "w") as f:
        f.write("_dmarc.dmarc.test v=DMARC1; p=reject\n")
    with open(conf, "w") as f:
        f.write("AuthservID mx.test\nTestDNSData %s\nSPFIgnoreResults false\n"
                "SPFSelfValidate false\nSyslog false\nPublicSuffixList /dev/null\n" % dnsdata)
    results = []
    for h in (header, header.replace("identity=mailfrom", "identity=helo")):
        with open(msg, "w") as f:
            f.write("%s\nFrom: alice@dmarc.test\nTo: bob@example.net\nSubject: t\n"
                    "Date: Tue, 22 Dec 2009 13:04:12 -0800\n\nbody\n" % h)
        out = subprocess.run(["opendmarc", "-c", conf, "-t", msg, "-vv"], capture_output=True,
                             text=True, timeout=30,
                             env=dict(os.environ, OPENDMARC_TEST_ENVFROM="<alice@dmarc.test>"))
        results.append(out.stdout + out.stderr)
    r.check("OpenDMARC reads our header: dmarc=pass", "dmarc=pass" in results[0], results[0])
    r.check("and a header for the HELO identity is no pass for it", "dmarc=fail" in results[1],
            results[1])


def every_key_expires():
    keys = redis.keys()
    r.check("the daemons wrote keys of each kind", all(any(k.startswith(PREFIX + kind) for k in keys)
                                                      for kind in ("d:", "v:", "r:")), keys)
    forever = [k for k in keys if redis.cmd("PTTL", k) < 0]
    r.check("every key has a TTL", keys and not forever, forever)
    r.check("every key carries the prefix", all(k.startswith(PREFIX) for k in keys),
            [k for k in keys if not k.startswith(PREFIX)])


r.run(shared_verdicts_and_answers)
r.run(temperror_not_shared_long)
r.run(reputation_across_hosts)
r.run(helo_refusal_counts)
r.run(every_key_expires)
redis.stop()
dns.stop()
r.finish()
