#!/usr/bin/python3
"""The openspf SPF test suites (RFC 7208 and RFC 4408 editions), run through the
policy protocol against the real daemon and a real DNS server, with each engine.

    conformance.py [--suite rfc7208|rfc4408|all] [--engine native|libspf2|both]
                   [--only NAME[,NAME...]]

Defaults: every suite with both engines (env SPF_ENGINE, when set, picks the one
engine). Per scenario dnsd serves the scenario's zone and a fresh daemon starts (no
cached answer crosses scenarios), with a short DNS timeout so TIMEOUT names give
temperror quickly, the HELO check off, "DEFAULT" as default explanation, reject for
a MAIL FROM fail and prepend for every other result. Each case is one request; the
result is read from the reply:

    550 5.7.23 <explanation>                      fail (explanation compared exactly)
    PREPEND Received-SPF: <result> (...) ...      <result>

A case passes when its result is one of the listed ones and, for fail, the
explanation is the expected one when the case gives one.

What counts:
- native engine: every case of both suites must pass. RFC 4408 cases that contradict
  RFC 7208 would be listed in RFC4408_CONTRADICTIONS with the RFC 7208 text that
  says so; none does (every RFC 4408 case accepts the result its RFC 7208 twin
  wants), and the run checks that this stays true.
- libspf2 engine, RFC 7208: EXPECTED_FAILURES lists the cases that fail because of
  libspf2 itself; they print "xfail" and count as passed; one that passes prints
  "XPASS" and fails the run (time to drop it from the table). Any other failure
  fails the run. RFC 4408 with libspf2 is a report only: its count is printed, and
  its cases ("ok" or "differs" lines) are not counted.
Each run prints "SUITE (ENGINE): P of N pass"; the last line is "N passed, M failed".
"""

import argparse
import os
import re
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import spfsuite  # noqa: E402
from harness import Daemon, DaemonError, Dnsd, PolicyClient, Results, request  # noqa: E402

ENGINES = ("native", "libspf2")
RESULTS = ("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror")
REPLY_TIMEOUT = 15      # above request_timeout (5 s), so the daemon's budget decides
FAIL_REPLY = re.compile(r"550 5\.7\.23 (.*)\Z", re.S)
PREPEND_REPLY = re.compile(r"PREPEND Received-SPF: (\w+)[ ;]")
# In a cause, ": <result>[ (note)] instead of <right result>" names the wrong result.
WRONG_RESULT = re.compile(r": (\w+(?:/\w+)*)(?: \([^)]*\))? instead of")

# Cases that fail with engine libspf2 because of libspf2 1.2.10 itself. Each was
# checked two ways: the daemon's reply, and plain libspf2 (SPF_server_new with its own
# resolver, SPF_request_query_mailfrom) against dnsd serving the same zone, which
# gives the same wrong result; "instead of" names the suite's expected result.
# Syntax errors libspf2 only warns about (bad domain-specs, empty a:/mx:/ptr:/exists:,
# duplicate or empty redirect=/exp=, bad macros, non-ASCII, NUL bytes, cidr4-032) are
# not here: our parser guards libspf2 and makes those records a permerror first.
_CIDR0 = "libspf2 refuses a CIDR length of 0 (%s) as invalid: permerror instead of %s"
EXPECTED_FAILURES = {
    # RFC 7208 4.6: valid syntax libspf2 refuses.
    "modifier-charset-good": "libspf2 refuses '.' in a modifier name "
                             "(moo.cow-far_out=man:dog/cat), which RFC 7208 allows: "
                             "permerror instead of pass",
    "redirect-after-mechanisms2": "the redirect= target t2.example.com has a modifier name "
                                  "libspf2 refuses (see modifier-charset-good): permerror "
                                  "instead of fail",
    "redirect-after-mechanisms1": "libspf2 evaluates redirect= where it stands instead of "
                                  "after the mechanisms; redirecting to its own domain "
                                  "before ~all is then unlimited recursion: permerror "
                                  "instead of softfail",
    # CIDR lengths of 0 (RFC 7208 5.6 allows them).
    "a-nxdomain": _CIDR0 % ("a/0", "fail"),
    "a-cidr4-0": _CIDR0 % ("a/0", "pass"),
    "a-cidr4-0-ip6": _CIDR0 % ("a/0", "fail"),
    "a-cidr6-0-ip4": _CIDR0 % ("a//0", "fail"),
    "a-cidr6-0-ip4mapped": _CIDR0 % ("a//0", "fail"),
    "a-cidr6-0-ip6": _CIDR0 % ("a//0", "pass"),
    "a-cidr6-0-nxdomain": _CIDR0 % ("a//0", "fail"),
    "mx-nxdomain": _CIDR0 % ("mx/0", "fail"),
    "mx-cidr4-0": _CIDR0 % ("mx/0", "pass"),
    "mx-cidr4-0-ip6": _CIDR0 % ("mx/0", "fail"),
    "mx-cidr6-0-ip4": _CIDR0 % ("mx//0", "fail"),
    "mx-cidr6-0-ip4mapped": _CIDR0 % ("mx//0", "fail"),
    "mx-cidr6-0-ip6": _CIDR0 % ("mx//0", "pass"),
    "mx-cidr6-0-nxdomain": _CIDR0 % ("mx//0", "fail"),
    "cidr4-0": _CIDR0 % ("ip4:1.1.1.1/0", "pass"),
    "cidr6-0-ip4": _CIDR0 % ("ip6:::1.1.1.1/0", "neutral"),
    "cidr6-ip4": _CIDR0 % ("ip6:::1.1.1.1/0", "neutral"),
    "cidr6-0": _CIDR0 % ("ip6:::1.1.1.1/0", "pass"),
    # Evaluation.
    "ptr-cname-loop": "libspf2 makes a DNS error (SERVFAIL, the CNAME loop) on the A "
                      "lookup of a PTR name a temperror; RFC 7208 5.5 skips that name: "
                      "temperror instead of neutral",
    "ptr-limit": "libspf2 gives permerror (SPF_E_BIG_DNS) when a PTR answer has more than "
                 "10 names, instead of checking the first 10: permerror instead of "
                 "neutral/pass",
    # Macro expansion in explanations.
    "domain-name-truncation": "libspf2 fails to expand the 258-byte exp= name (no "
                              "truncation from the left to 253, RFC 7208 7.3) and falls "
                              "back to the default explanation without a lookup",
    "v-macro-ip6": "libspf2 writes the nibbles of an IPv6 %{ir} in lower case "
                   "(...e.b.a.b.e.f.a.c.ip6.arpa); the suite follows RFC 7208 7.4's "
                   "upper-case example",
    "upper-macro": "libspf2 URL-escapes %{L} with lower-case hex (%3d); the suite expects "
                   "%3D (RFC 3986 2.1)",
}

# RFC 4408 cases whose accepted results RFC 7208 forbids: name -> the RFC 7208 text
# that says so. Such a case is not run. Empty: the RFC 4408 edition widened the
# accepted results where RFC 4408 was vague (SPF type 99 records, mx-limit,
# exists-dnserr, ...), and each case also accepts what RFC 7208 wants, which
# check_rfc4408_table() verifies against the RFC 7208 edition on every run.
RFC4408_CONTRADICTIONS = {}


def daemon_config(dnsd, engine):
    actions = {"mailfrom_" + r: "prepend" for r in RESULTS}
    actions.update({"helo_" + r: "prepend" for r in RESULTS})
    actions["mailfrom_fail"] = "reject"
    return {
        "dns": {"servers": dnsd.server, "timeout": 1, "tries": 1},
        "spf": {"engine": engine, "check_helo": "no", "default_explanation": "DEFAULT",
                "request_timeout": 5},
        "action": actions,
        "header": {"style": "received-spf"},
        "skip": {"clients": ""},
    }


def outcome(reply):
    """(result, explanation or None) from an action text; (None, None) if neither
    form."""
    m = FAIL_REPLY.match(reply)
    if m:
        return "fail", m.group(1)
    m = PREPEND_REPLY.match(reply)
    if m and m.group(1).lower() in RESULTS:
        return m.group(1).lower(), None
    return None, None


def judge(case, reply):
    """(passed, result or None, detail)."""
    result, explanation = outcome(reply)
    want = "/".join(case.results)
    if result is None:
        return False, None, "unexpected reply %r, want %s" % (reply, want)
    if result not in case.results:
        return False, result, "got %s, want %s (reply %r)" % (result, want, reply)
    if result == "fail" and case.explanation is not None and \
            explanation != case.explanation:
        return False, result, "explanation %r, want %r" % (explanation, case.explanation)
    return True, result, result


def expected_wrong_results(case, cause):
    """The results an expected failure must still give: the one its cause names
    ("X instead of"), else (a wrong explanation) the right ones."""
    found = WRONG_RESULT.findall(cause)
    return found[-1].split("/") if found else case.results


def describe(case):
    return "client_address=%s helo_name=%s sender=%s" % (case.host, case.helo,
                                                         case.sender or "<>")


def run_scenario(dnsd, scenario, engine):
    """[(case, passed, result, detail)] for every case of the scenario, and
    (None, False, None, detail) when the daemon did not exit cleanly."""
    out = []
    dnsd.reload(scenario.zone)
    try:
        daemon = Daemon(config=daemon_config(dnsd, engine), dns=dnsd)
    except DaemonError as e:
        return [(c, False, None, "daemon did not start: %s" % e) for c in scenario.cases]
    try:
        for case in scenario.cases:
            try:
                with PolicyClient(port=daemon.port, timeout=REPLY_TIMEOUT) as c:
                    reply = c.ask(request(client_address=case.host, helo_name=case.helo,
                                          sender=case.sender))
                passed, result, detail = judge(case, reply)
            except Exception as e:
                passed, result, detail = False, None, "%s: %s" % (type(e).__name__, e)
            out.append((case, passed, result, detail + "; " + describe(case)))
    finally:
        code = daemon.stop()
        problem = daemon.claim_problem()
        if problem:
            out.append((None, False, None, "daemon exit %r: %s" % (code, problem)))
    return out


def check_rfc4408_table(r):
    """Every RFC 4408 case accepts a result its RFC 7208 twin accepts, unless it is in
    RFC4408_CONTRADICTIONS; and every name in that table is a case of the suite."""
    new = {c.name: c for s in spfsuite.load(spfsuite.SUITES["rfc7208"]) for c in s.cases}
    old = {c.name: c for s in spfsuite.load(spfsuite.SUITES["rfc4408"]) for c in s.cases}
    odd = sorted(n for n, c in old.items()
                 if n in new and not set(c.results) & set(new[n].results)
                 and n not in RFC4408_CONTRADICTIONS)
    r.check("rfc4408 cases agree with rfc7208 or are listed", not odd,
            "not in RFC4408_CONTRADICTIONS: %s" % ", ".join(odd))
    stale = sorted(set(RFC4408_CONTRADICTIONS) - set(old))
    r.check("RFC4408_CONTRADICTIONS names rfc4408 cases", not stale, ", ".join(stale))


def run_suite(r, dnsd, suite, engine, only):
    """Runs one suite with one engine; returns (passed, total)."""
    report_only = suite == "rfc4408" and engine == "libspf2"
    expected = EXPECTED_FAILURES if engine == "libspf2" else {}
    skipped = RFC4408_CONTRADICTIONS if suite == "rfc4408" else {}
    scenarios = spfsuite.load(spfsuite.SUITES[suite])
    all_names = {c.name for s in scenarios for c in s.cases}
    for scenario in scenarios:
        scenario.cases = [c for c in scenario.cases
                          if (not only or c.name in only) and c.name not in skipped]
    scenarios = [s for s in scenarios if s.cases]
    total = sum(len(s.cases) for s in scenarios)
    good = 0
    tag = "%s/%s" % (suite, engine)
    for scenario in scenarios:
        try:
            outcomes = run_scenario(dnsd, scenario, engine)
        except Exception:
            outcomes = [(c, False, None, traceback.format_exc()) for c in scenario.cases]
        for case, passed, result, detail in outcomes:
            if case is None:
                r.report("FAIL", "%s daemon-exit[%s]" % (tag, scenario.description),
                         False, detail)
                continue
            good += passed
            name = "%s %s" % (tag, case.name)
            if report_only:
                print("%s %s%s" % ("ok" if passed else "differs", name,
                                   "" if passed else ": " + detail), flush=True)
            elif case.name in expected and suite == "rfc7208":
                wrong = expected_wrong_results(case, expected[case.name])
                if passed:
                    r.report("XPASS", name, False, "listed in EXPECTED_FAILURES (%s)"
                             % expected[case.name])
                elif result in wrong:
                    r.report("xfail", name, True, "%s [%s]" % (expected[case.name], detail))
                else:
                    r.report("FAIL", name, False, "fails otherwise than EXPECTED_FAILURES "
                             "says (%s): %s" % (expected[case.name], detail))
            elif passed:
                r.report("ok", name, True)
            else:
                r.report("FAIL", name, False, detail)
    if suite == "rfc7208" and engine == "libspf2" and not only:
        for name in sorted(set(expected) - all_names):
            r.report("FAIL", name, False, "in EXPECTED_FAILURES but not a case of the suite")
    return good, total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", choices=sorted(spfsuite.SUITES) + ["all"], default="all")
    ap.add_argument("--engine", choices=ENGINES + ("both",),
                    default=os.environ.get("SPF_ENGINE") or "both")
    ap.add_argument("--only", help="comma-separated case names to run")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else None
    suites = ("rfc7208", "rfc4408") if args.suite == "all" else (args.suite,)
    engines = ENGINES if args.engine == "both" else (args.engine,)
    r = Results("conformance")
    counts = []
    if "rfc4408" in suites:
        check_rfc4408_table(r)
    dnsd = Dnsd("")
    try:
        for suite in suites:
            for engine in engines:
                good, total = run_suite(r, dnsd, suite, engine, only)
                counts.append("%s (%s): %d of %d pass%s" % (
                    suite, engine, good, total,
                    " (report only)" if suite == "rfc4408" and engine == "libspf2" else ""))
    finally:
        dnsd.stop()
    for line in counts:
        print(line, flush=True)
    r.finish()


if __name__ == "__main__":
    main()
