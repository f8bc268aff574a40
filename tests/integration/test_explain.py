"""spf-policyd --explain against a real DNS server: the exact tree, summary and
warnings for a known zone, and the exit codes (0 done, 1 error, 2 usage)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import BUILD, Dnsd, Results  # noqa: E402

BIN = os.environ.get("SPF_POLICYD_BIN") or os.path.join(BUILD, "spf-policyd")
WRAPPER = os.environ.get("SPF_POLICYD_WRAPPER", "").split()
# A check ends within request_timeout (5 s); valgrind is slow to start.
RUN_TIMEOUT = 120

LONG = "v=spf1 " + " ".join("ip4:203.0.113.%d" % i for i in range(1, 31)) + " -all"

ZONE = """
example.test        TXT 300 "v=spf1 a mx include:inc.example.test ip4:203.0.113.0/24 -all exp=why.example.test"
example.test        A   300 192.0.2.10
example.test        MX  300 10 mx1.example.test
mx1.example.test    A   300 192.0.2.11
inc.example.test    TXT 600 "v=spf1 ip4:198.51.100.0/24 a:gone.example.test ~all"
why.example.test    TXT 300 "%{c} may not send for %{d} as %{l}"
voids.test          TXT 300 "v=spf1 ptr a:n1.voids.test a:n2.voids.test -all"
two.test            TXT 300 "v=spf1 +all"
two.test            TXT 300 "v=spf1 -all"
open.test           TXT 300 "v=spf1 ip4:192.0.2.0/24 +all"
long.test           TXT 300 "@LONG@"
big.test            TXT 300 "v=spf1 include:provider.test -all"
provider.test       TXT 300 "v=spf1 a:p1.provider.test a:p2.provider.test a:p3.provider.test a:p4.provider.test a:p5.provider.test ?all"
p1.provider.test    A   300 198.51.100.1
p2.provider.test    A   300 198.51.100.2
p3.provider.test    A   300 198.51.100.3
p4.provider.test    A   300 198.51.100.4
p5.provider.test    A   300 198.51.100.5
many.test           TXT 300 "v=spf1 redirect=provider.test"
eleven.test         TXT 300 "v=spf1 include:provider.test a:p1.provider.test a:p2.provider.test a:p3.provider.test a:p4.provider.test a:p5.provider.test -all"
helo.test           TXT 300 "v=spf1 a -all"
helo.test           A   300 192.0.2.77
""".replace("@LONG@", LONG)

r = Results("explain")
dns = Dnsd(ZONE)
config = os.path.join(dns.dir, "explain.ini")
with open(config, "w") as f:
    f.write("[dns]\nservers = %s\ntimeout = 1\ntries = 1\n[spf]\nrequest_timeout = 5\n"
            % dns.server)


def explain(*args, cfg=True):
    cmd = WRAPPER + [BIN] + (["-c", config] if cfg else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def check_tree(name, args, want):
    p = explain("--explain", *args)
    got = p.stdout
    want = want.lstrip("\n")
    if got != want:
        diff = "\n".join("  got  %r\n  want %r" % (g, w) for g, w in
                         zip(got.splitlines() + [""] * 50, want.splitlines())
                         if g != w)
        r.check(name, False, "rc %d, stderr %r\n%s" % (p.returncode, p.stderr[-500:], diff))
        return
    r.check(name, p.returncode == 0, "rc %d, stderr %r" % (p.returncode, p.stderr))


check_tree("fail through a, mx and an include, with exp= expanded",
           ["--ip", "192.0.2.99", "--sender", "bob@example.test", "--helo", "mail.test"], """
SPF check of bob@example.test from 192.0.2.99, HELO mail.test, identity mailfrom
example.test: "v=spf1 a mx include:inc.example.test ip4:203.0.113.0/24 -all exp=why.example.test" (TTL 300)
  a: no match [lookup 1/10] (A example.test: 192.0.2.10)
  mx: no match [lookup 2/10] (MX example.test: mx1.example.test; A mx1.example.test: 192.0.2.11)
  include:inc.example.test [lookup 3/10]
    inc.example.test: "v=spf1 ip4:198.51.100.0/24 a:gone.example.test ~all" (TTL 600)
      ip4:198.51.100.0/24: no match
      a:gone.example.test: no match [lookup 4/10] [void 1/2] (A gone.example.test: nxdomain)
      ~all: match -> softfail
    inc.example.test -> softfail
  include:inc.example.test: no match (softfail of the included record)
  ip4:203.0.113.0/24: no match
  -all: match -> fail
  exp=why.example.test: 192.0.2.99 may not send for example.test as bob
result: fail (mechanism all)
why: 192.0.2.99 matched -all in example.test
explanation: 192.0.2.99 may not send for example.test as bob
DNS lookups: 4 of 10, void lookups: 1 of 2
warnings: none
""")

check_tree("pass through the mx exchange",
           ["--ip", "192.0.2.11", "--sender", "example.test"], """
SPF check of postmaster@example.test from 192.0.2.11, HELO (none), identity mailfrom
example.test: "v=spf1 a mx include:inc.example.test ip4:203.0.113.0/24 -all exp=why.example.test" (TTL 300)
  a: no match [lookup 1/10] (A example.test: 192.0.2.10)
  mx: match -> pass [lookup 2/10] (MX example.test: mx1.example.test; A mx1.example.test: 192.0.2.11)
result: pass (mechanism mx)
why: 192.0.2.11 matched mx in example.test
DNS lookups: 2 of 10, void lookups: 0 of 2
warnings: none
""")

check_tree("void lookups over the limit, and ptr",
           ["--ip", "192.0.2.1", "--sender", "x@voids.test"], """
SPF check of x@voids.test from 192.0.2.1, HELO (none), identity mailfrom
voids.test: "v=spf1 ptr a:n1.voids.test a:n2.voids.test -all" (TTL 300)
  ptr: no match [lookup 1/10] [void 1/2] (PTR 1.2.0.192.in-addr.arpa: nxdomain)
  a:n1.voids.test: no match [lookup 2/10] [void 2/2] (A n1.voids.test: nxdomain)
  a:n2.voids.test: error -> permerror [lookup 3/10] (more than 2 void DNS lookups (A n2.voids.test: nxdomain))
result: permerror
why: more than 2 void DNS lookups (A n2.voids.test: nxdomain)
DNS lookups: 3 of 10, void lookups: 3 of 2
warnings:
  voids.test uses ptr: slow, unreliable, and RFC 7208 5.5 says not to use it
  the check makes more than 2 lookups that find nothing: a permerror (RFC 7208 4.6.4); remove the terms naming names that do not exist
""")

check_tree("several SPF records",
           ["--ip", "192.0.2.1", "--sender", "x@two.test"], """
SPF check of x@two.test from 192.0.2.1, HELO (none), identity mailfrom
two.test: 2 SPF records at two.test -> permerror
result: permerror
why: 2 SPF records at two.test
DNS lookups: 0 of 10, void lookups: 0 of 2
warnings:
  two.test publishes 2 SPF records: one is allowed, so every check of it is a permerror (RFC 7208 4.5)
""")

check_tree("+all is a warning even when an earlier term matched",
           ["--ip", "192.0.2.1", "--sender", "x@open.test"], """
SPF check of x@open.test from 192.0.2.1, HELO (none), identity mailfrom
open.test: "v=spf1 ip4:192.0.2.0/24 +all" (TTL 300)
  ip4:192.0.2.0/24: match -> pass
result: pass (mechanism ip4:192.0.2.0/24)
why: 192.0.2.1 matched ip4:192.0.2.0/24 in open.test
DNS lookups: 0 of 10, void lookups: 0 of 2
warnings:
  open.test uses +all: it authorises every host on the Internet
""")

check_tree("record over 450 bytes",
           ["--ip", "203.0.113.2", "--sender", "x@long.test"], """
SPF check of x@long.test from 203.0.113.2, HELO (none), identity mailfrom
long.test: "%s" (TTL 300)
  ip4:203.0.113.1: no match
  ip4:203.0.113.2: match -> pass
result: pass (mechanism ip4:203.0.113.2)
why: 203.0.113.2 matched ip4:203.0.113.2 in long.test
DNS lookups: 0 of 10, void lookups: 0 of 2
warnings:
  the SPF record of long.test is %d bytes: keep it under 450 so the DNS answer fits in 512 bytes (RFC 7208 3.4)
""" % (LONG, len(LONG)))

check_tree("an include that costs 6 lookups",
           ["--ip", "198.51.100.5", "--sender", "x@big.test"], """
SPF check of x@big.test from 198.51.100.5, HELO (none), identity mailfrom
big.test: "v=spf1 include:provider.test -all" (TTL 300)
  include:provider.test [lookup 1/10]
    provider.test: "v=spf1 a:p1.provider.test a:p2.provider.test a:p3.provider.test a:p4.provider.test a:p5.provider.test ?all" (TTL 300)
      a:p1.provider.test: no match [lookup 2/10] (A p1.provider.test: 198.51.100.1)
      a:p2.provider.test: no match [lookup 3/10] (A p2.provider.test: 198.51.100.2)
      a:p3.provider.test: no match [lookup 4/10] (A p3.provider.test: 198.51.100.3)
      a:p4.provider.test: no match [lookup 5/10] (A p4.provider.test: 198.51.100.4)
      a:p5.provider.test: match -> pass [lookup 6/10] (A p5.provider.test: 198.51.100.5)
    provider.test -> pass
  include:provider.test: match -> pass (pass of the included record)
result: pass (mechanism include:provider.test)
why: 198.51.100.5 matched a:p5.provider.test in provider.test via include:provider.test
DNS lookups: 6 of 10, void lookups: 0 of 2
warnings:
  include:provider.test alone costs 6 of the 10 DNS lookups: include only the part of a provider's record your mail comes from
""")

check_tree("redirect= replaces the record",
           ["--ip", "198.51.100.9", "--sender", "x@many.test"], """
SPF check of x@many.test from 198.51.100.9, HELO (none), identity mailfrom
many.test: "v=spf1 redirect=provider.test" (TTL 300)
  redirect=provider.test: continue with the record of provider.test [lookup 1/10]
provider.test: "v=spf1 a:p1.provider.test a:p2.provider.test a:p3.provider.test a:p4.provider.test a:p5.provider.test ?all" (TTL 300)
  a:p1.provider.test: no match [lookup 2/10] (A p1.provider.test: 198.51.100.1)
  a:p2.provider.test: no match [lookup 3/10] (A p2.provider.test: 198.51.100.2)
  a:p3.provider.test: no match [lookup 4/10] (A p3.provider.test: 198.51.100.3)
  a:p4.provider.test: no match [lookup 5/10] (A p4.provider.test: 198.51.100.4)
  a:p5.provider.test: no match [lookup 6/10] (A p5.provider.test: 198.51.100.5)
  ?all: match -> neutral
result: neutral (mechanism all)
why: 198.51.100.9 matched ?all in provider.test
DNS lookups: 6 of 10, void lookups: 0 of 2
warnings: none
""")

check_tree("more than 10 lookups",
           ["--ip", "198.51.100.9", "--sender", "x@eleven.test"], """
SPF check of x@eleven.test from 198.51.100.9, HELO (none), identity mailfrom
eleven.test: "v=spf1 include:provider.test a:p1.provider.test a:p2.provider.test a:p3.provider.test a:p4.provider.test a:p5.provider.test -all" (TTL 300)
  include:provider.test [lookup 1/10]
    provider.test: "v=spf1 a:p1.provider.test a:p2.provider.test a:p3.provider.test a:p4.provider.test a:p5.provider.test ?all" (TTL 300)
      a:p1.provider.test: no match [lookup 2/10] (A p1.provider.test: 198.51.100.1)
      a:p2.provider.test: no match [lookup 3/10] (A p2.provider.test: 198.51.100.2)
      a:p3.provider.test: no match [lookup 4/10] (A p3.provider.test: 198.51.100.3)
      a:p4.provider.test: no match [lookup 5/10] (A p4.provider.test: 198.51.100.4)
      a:p5.provider.test: no match [lookup 6/10] (A p5.provider.test: 198.51.100.5)
      ?all: match -> neutral
    provider.test -> neutral
  include:provider.test: no match (neutral of the included record)
  a:p1.provider.test: no match [lookup 7/10] (A p1.provider.test: 198.51.100.1)
  a:p2.provider.test: no match [lookup 8/10] (A p2.provider.test: 198.51.100.2)
  a:p3.provider.test: no match [lookup 9/10] (A p3.provider.test: 198.51.100.3)
  a:p4.provider.test: no match [lookup 10/10] (A p4.provider.test: 198.51.100.4)
  a:p5.provider.test: error -> permerror [lookup 11/10] (more than 10 DNS-querying terms)
result: permerror
why: more than 10 DNS-querying terms
DNS lookups: 11 of 10, void lookups: 0 of 2
warnings:
  include:provider.test alone costs 6 of the 10 DNS lookups: include only the part of a provider's record your mail comes from
  the check needs more than 10 DNS lookups: a permerror for every receiver that counts them (RFC 7208 4.6.4)
""")

check_tree("the HELO identity with an empty sender",
           ["--ip", "192.0.2.77", "--sender", "", "--helo", "helo.test"], """
SPF check of postmaster@helo.test from 192.0.2.77, HELO helo.test, identity helo
helo.test: "v=spf1 a -all" (TTL 300)
  a: match -> pass [lookup 1/10] (A helo.test: 192.0.2.77)
result: pass (mechanism a)
why: 192.0.2.77 matched a in helo.test
DNS lookups: 1 of 10, void lookups: 0 of 2
warnings: none
""")

check_tree("no record", ["--ip", "192.0.2.1", "--sender", "x@nothing.test"], """
SPF check of x@nothing.test from 192.0.2.1, HELO (none), identity mailfrom
nothing.test: no SPF record at nothing.test -> none
result: none
why: no SPF record at nothing.test
DNS lookups: 0 of 10, void lookups: 0 of 2
warnings: none
""")

p = explain("--explain", "--ip", "not-an-ip", "--sender", "x@example.test")
r.check("a bad --ip is a usage error (2)", p.returncode == 2 and "not an IP address" in p.stderr
        and p.stdout == "", "rc %d %r" % (p.returncode, p.stderr))
p = explain("--explain", "--ip", "192.0.2.1")
r.check("--explain without --sender is a usage error (2)",
        p.returncode == 2 and "usage:" in p.stderr, "rc %d %r" % (p.returncode, p.stderr))
p = explain("--ip", "192.0.2.1", "--sender", "x@example.test")
r.check("--ip without --explain is a usage error (2)", p.returncode == 2,
        "rc %d %r" % (p.returncode, p.stderr))
p = explain("--explain", "--ip", "192.0.2.1", "--sender", "", cfg=False)
r.check("an empty --sender without --helo is a usage error (2)", p.returncode == 2,
        "rc %d %r" % (p.returncode, p.stderr))
p = subprocess.run(WRAPPER + [BIN, "-c", "/nonexistent/policy.ini", "--explain", "--ip",
                              "192.0.2.1", "--sender", "x@example.test"],
                   capture_output=True, text=True, timeout=RUN_TIMEOUT)
r.check("an unreadable config is an error (1)",
        p.returncode == 1 and "/nonexistent/policy.ini" in p.stderr,
        "rc %d %r" % (p.returncode, p.stderr))
p = explain("-h", cfg=False)
r.check("-h documents --explain and the exit codes", p.returncode == 0 and "--explain" in p.stdout
        and "0 done" in p.stdout and "2 usage" in p.stdout, p.stdout)

dns.stop()
r.finish()
