"""The openspf SPF test suite (YAML, ../shared/testdata beside the repository) as dnsd zones and cases.

    from spfsuite import load, SUITES
    for scenario in load(SUITES["rfc7208"]):
        scenario.description, scenario.zone   # zone: text for harness.Dnsd
        for case in scenario.cases:
            case.name, case.host, case.mailfrom, case.helo
            case.results       # list of acceptable results, preferred first
            case.explanation   # exact expected explanation, "DEFAULT", or None
            case.sender        # mailfrom as the policy protocol's sender= (may be "")

Conventions of the suite (testdata/README.md) and how they map to dnsd:
- Each scenario's zonedata is a whole zone; load one scenario at a time.
- SPF records are also served as TXT unless the name has a TXT entry; "TXT: NONE"
  means no TXT record and no copying.
- A bare TIMEOUT makes queries for the name time out except for the types listed
  before it (pyspf's driver): records before it are written, the line
  "name TIMEOUT" makes dnsd drop queries of every other type, and records after it
  are left out (pyspf never returns them).
- SPF/TXT values are a string or a list of strings (character-strings, glued
  without separator by SPF); an empty list, a TXT record with no strings at all,
  cannot be written in a zone or sent by most servers, and becomes one empty
  string, which reads the same after gluing. Values are text whose code points are
  bytes (the YAML's "\\xEF" is the byte 0xEF), written as \\DDD escapes.
- MX is [preference, exchange]; an empty exchange is the root (null MX, RFC 7505).
- Names may hold any byte (one has spaces); odd bytes become \\DDD escapes.

Run as a program it checks itself: both files load with the expected numbers of
scenarios and cases, every zone loads in dnsd, and every record comes back from
dnsd as the YAML states it.
"""

import ipaddress
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
# The project's shared/ sits beside the repository (as CI checks it out).
TESTDATA = os.environ.get(
    "SPF_TESTDATA", os.path.join(HERE, "..", "..", "..", "shared", "testdata"))
SUITES = {
    "rfc7208": os.path.join(TESTDATA, "rfc7208-tests.yml"),
    "rfc4408": os.path.join(TESTDATA, "rfc4408-tests.yml"),
}
EXPECTED_COUNTS = {"rfc7208": (16, 203), "rfc4408": (15, 191)}
ZONE_TTL = 300
RECORD_TYPES = ("SPF", "TXT", "A", "AAAA", "MX", "PTR", "CNAME")


class Case:
    def __init__(self, name, scenario, data):
        self.name = name
        self.scenario = scenario
        self.host = data["host"]
        self.mailfrom = data["mailfrom"]
        self.helo = data["helo"]
        result = data["result"]
        self.results = list(result) if isinstance(result, list) else [result]
        self.explanation = data.get("explanation")
        self.spec = data.get("spec")
        self.description = data.get("description")
        self.sender = self.mailfrom

    def __repr__(self):
        return "Case(%s: %s from %r helo %r -> %s)" % (
            self.name, self.host, self.mailfrom, self.helo, "/".join(self.results))


class Scenario:
    def __init__(self, doc, ttl=ZONE_TTL):
        self.description = doc.get("description", "")
        self.zonedata = doc.get("zonedata") or {}
        self.records = records(self.zonedata)
        self.zone = zone_text(self.records, ttl)
        self.cases = [Case(name, self, data) for name, data in doc["tests"].items()]

    def __repr__(self):
        return "Scenario(%r, %d cases)" % (self.description, len(self.cases))


def load(path, ttl=ZONE_TTL):
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    return [Scenario(d, ttl) for d in docs]


def _bytes(text):
    return text.encode("latin-1") if isinstance(text, str) else bytes(text)


def _strings(value):
    """An SPF/TXT value as a list of byte strings (at least one)."""
    items = value if isinstance(value, list) else [value]
    return [_bytes(str(v)) for v in items] or [b""]


def records(zonedata):
    """{name: (list of (type, value), timeout)}: what dnsd must serve per name,
    after the suite's conventions. value: list of bytes for SPF/TXT, (pref, name)
    for MX, str otherwise."""
    out = {}
    for name, entries in zonedata.items():
        entries = entries or []
        has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        recs, timeout = [], False
        for entry in entries:
            if entry == "TIMEOUT":
                timeout = True
                break
            if not isinstance(entry, dict) or len(entry) != 1:
                raise ValueError("%s: unknown zone entry %r" % (name, entry))
            (rtype, value), = entry.items()
            if rtype not in RECORD_TYPES:
                raise ValueError("%s: unknown record type %r" % (name, rtype))
            if rtype == "TXT" and value == "NONE":
                continue
            if rtype in ("SPF", "TXT"):
                recs.append((rtype, _strings(value)))
                if rtype == "SPF" and not has_txt:
                    recs.append(("TXT", _strings(value)))
            elif rtype == "MX":
                pref, exchange = value
                recs.append(("MX", (int(pref), str(exchange) or ".")))
            else:
                recs.append((rtype, str(value)))
        out[str(name)] = (recs, timeout)
    return out


def zone_name(name):
    """A name in zone file form: bytes outside '!'..'~', and '\\', '"' and '#', as
    \\DDD (dots stay separators)."""
    out = []
    for b in _bytes(name):
        if 0x21 <= b <= 0x7E and b not in b'\\"#':
            out.append(chr(b))
        else:
            out.append("\\%03d" % b)
    return "".join(out) or "."


def zone_string(data):
    out = ['"']
    for b in data:
        if 0x20 <= b <= 0x7E and b not in b'\\"':
            out.append(chr(b))
        else:
            out.append("\\%03d" % b)
    out.append('"')
    return "".join(out)


def zone_text(recs, ttl=ZONE_TTL):
    lines = []
    for name, (rrs, timeout) in recs.items():
        owner = zone_name(name)
        for rtype, value in rrs:
            if rtype in ("SPF", "TXT"):
                data = " ".join(zone_string(s) for s in value)
            elif rtype == "MX":
                data = "%d %s" % (value[0], zone_name(value[1]))
            elif rtype in ("PTR", "CNAME"):
                data = zone_name(value)
            else:
                data = value
            lines.append("%s %s %d %s" % (owner, rtype, ttl, data))
        if timeout:
            lines.append("%s TIMEOUT" % owner)
    return "\n".join(lines) + "\n"


# ---- self-check ----

NO_ANSWER_WAIT = 0.3


def _expected_answer(rtype, values):
    if rtype in ("SPF", "TXT"):
        return sorted(b"".join(v) for v in values)
    if rtype in ("PTR", "CNAME"):
        return sorted(v.lower().rstrip(".") or "." for v in values)
    if rtype == "MX":
        return sorted((p, n.lower().rstrip(".") or ".") for p, n in values)
    return sorted(str(ipaddress.ip_address(v)) for v in values)


def _got_answer(rtype, reply, harness):
    code = getattr(harness, "T_" + rtype)
    data = reply.data(code)
    if rtype in ("SPF", "TXT"):
        return sorted(b"".join(v) for v in data)
    if rtype in ("PTR", "CNAME"):
        return sorted(v.lower() for v in data)
    if rtype == "MX":
        return sorted((p, n.lower()) for p, n in data)
    return sorted(str(ipaddress.ip_address(v)) for v in data)


def _check_scenario(r, harness, dnsd, suite, index, scenario):
    label = "%s[%d] %s" % (suite, index, scenario.description)
    try:
        dnsd.reload(scenario.zone)
    except harness.DnsdError as e:
        r.check("zone loads: " + label, False, str(e))
        return
    r.check("zone loads: " + label, True)
    problems = []
    for name, (rrs, timeout) in scenario.records.items():
        qname = name.rstrip(".")
        for rtype in RECORD_TYPES:
            values = [v for t, v in rrs if t == rtype]
            if not values and not (timeout and rtype == "TXT"):
                continue
            code = getattr(harness, "T_" + rtype)
            if not values:
                reply = harness.udp_query(dnsd.port, qname, code, timeout=NO_ANSWER_WAIT)
                if reply is not None:
                    problems.append("%s %s: answered though TIMEOUT" % (name, rtype))
                continue
            reply = harness.tcp_query(dnsd.port, qname, code)
            want = _expected_answer(rtype, values)
            got = _got_answer(rtype, reply, harness)
            if got != want:
                problems.append("%r %s: got %r, want %r" % (name, rtype, got, want))
    r.check("records round-trip: " + label, not problems, "; ".join(problems))


def self_check():
    sys.path.insert(0, HERE)
    import harness
    r = harness.Results("spfsuite")
    dnsd = harness.Dnsd("")
    try:
        for suite, path in sorted(SUITES.items()):
            scenarios = load(path)
            counts = (len(scenarios), sum(len(s.cases) for s in scenarios))
            print("%s: %d scenarios, %d cases" % ((suite,) + counts), flush=True)
            r.check("counts: " + suite, counts == EXPECTED_COUNTS[suite],
                    "%r, want %r" % (counts, EXPECTED_COUNTS[suite]))
            names = [c.name for s in scenarios for c in s.cases]
            r.check("unique case names: " + suite, len(set(names)) == len(names))
            r.check("every case has host, helo and results: " + suite,
                    all(c.host and c.helo is not None and c.results
                        for s in scenarios for c in s.cases))
            for i, scenario in enumerate(scenarios):
                _check_scenario(r, harness, dnsd, suite, i, scenario)
    finally:
        dnsd.stop()
    r.finish()


if __name__ == "__main__":
    self_check()
