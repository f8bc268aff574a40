#!/usr/bin/python3
"""Tests of the test DNS server build/dnsd, with the DNS client of harness.py (written
from the stdlib, socket + struct), so that dnsd is checked against RFC 1035 rather than
against the resolver it serves."""

import os
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from harness import (  # noqa: E402
    CLASS_CH, CLASS_IN, DNSD, FLAG_AA, FLAG_QR, FLAG_RD, FLAG_TC, FORMERR, NOERROR,
    NOTIMP, NXDOMAIN, REFUSED, SERVFAIL, T_A, T_AAAA, T_CNAME, T_MX, T_PTR, T_SOA,
    T_SPF, T_TXT, DnsReply, Dnsd, DnsdError, Results, build_query, encode_name,
    tcp_query, tcp_read, udp_exchange, udp_query)

NO_ANSWER_WAIT = 0.5    # how long "no answer at all" is given to prove itself

ZONE = r"""
# comments and blank lines are ignored

example.com        A     300 192.0.2.1
example.com        A     300 192.0.2.2   # two addresses, in file order
example.com        AAAA  300 2001:db8::1
example.com        MX    300 10 mx.example.com
example.com        TXT   300 "v=spf1 " "ip4:192.0.2.0/24 -all"
mx.example.com     A     60  192.0.2.25
1.2.0.192.in-addr.arpa PTR 300 mail.example.com
nullmx.example.com MX    300 0 .
alias.example.com  CNAME 300 example.com
dangling.example.com CNAME 300 nowhere.example.com
loop1.example.com  CNAME 300 loop2.example.com
loop2.example.com  CNAME 300 loop1.example.com
a.b.c.deep.example A    300 192.0.2.7
*.wild.example     A     120 192.0.2.99
*.wild.example     TXT   120 "wild"
host.wild.example  TXT   120 "not wild"
to.example         A     300 192.0.2.50
to.example         TIMEOUT
sf.example         A     300 192.0.2.51
sf.example         SERVFAIL
dead.example       TIMEOUT
x\032y.example     A     300 192.0.2.60
quote.example      TXT   300 "say \"hi\" \\ \065\066\067" ""
"""


# ---- tests ----

def check_header(r, name, reply, qname, qtype, rcode=NOERROR):
    ok = (reply is not None and reply.flags & FLAG_QR and reply.flags & FLAG_AA
          and reply.flags & FLAG_RD and not reply.flags & FLAG_TC
          and reply.rcode == rcode and len(reply.question) == 1
          and reply.question[0][:3] == (qname, qtype, CLASS_IN))
    return r.check(name, ok, reply and "flags %04x rcode %d question %r" % (
        reply.flags, reply.rcode, reply.question))


def test_dnsd_answers(r, d):
    a = udp_query(d.port, "example.com", T_A)
    check_header(r, "test_dnsd_a_header", a, "example.com", T_A)
    r.check("test_dnsd_a_records", a.data() == ["192.0.2.1", "192.0.2.2"], a.data())
    r.check("test_dnsd_a_owner_ttl_class",
            [x[:4] for x in a.answer] == [("example.com", T_A, CLASS_IN, 300)] * 2,
            a.answer)
    r.check("test_dnsd_a_compressed_owner", a.raw[29:31] == b"\xc0\x0c", a.raw[29:31])
    aaaa = udp_query(d.port, "example.com", T_AAAA)
    r.check("test_dnsd_aaaa", aaaa.data() == ["2001:db8::1"], aaaa.data())
    mx = udp_query(d.port, "example.com", T_MX)
    r.check("test_dnsd_mx", mx.data() == [(10, "mx.example.com")], mx.data())
    nullmx = udp_query(d.port, "nullmx.example.com", T_MX)
    r.check("test_dnsd_mx_null_exchange", nullmx.data() == [(0, ".")], nullmx.data())
    txt = udp_query(d.port, "example.com", T_TXT)
    r.check("test_dnsd_txt_multi_string",
            txt.data() == [[b"v=spf1 ", b"ip4:192.0.2.0/24 -all"]], txt.data())
    q = udp_query(d.port, "quote.example", T_TXT)
    r.check("test_dnsd_txt_escapes", q.data() == [[b'say "hi" \\ ABC', b""]], q.data())
    ptr = udp_query(d.port, "1.2.0.192.in-addr.arpa", T_PTR)
    r.check("test_dnsd_ptr", ptr.data() == ["mail.example.com"], ptr.data())
    sp = udp_query(d.port, "x y.example", T_A)
    r.check("test_dnsd_escaped_name", sp is not None and sp.data() == ["192.0.2.60"],
            sp and sp.data())
    edns = udp_query(d.port, "example.com", T_A, edns=True)
    r.check("test_dnsd_edns0_query_answered_without_opt",
            edns.data() == ["192.0.2.1", "192.0.2.2"] and edns.additional == [],
            (edns.data(), edns.additional))
    norec = udp_query(d.port, "example.com", T_A, flags=0)
    r.check("test_dnsd_rd_copied", not norec.flags & FLAG_RD and norec.flags & FLAG_AA,
            "%04x" % norec.flags)


def test_dnsd_case(r, d):
    a = udp_query(d.port, "ExAmPlE.CoM", T_MX)
    r.check("test_dnsd_case_insensitive", a.data() == [(10, "mx.example.com")], a.data())
    r.check("test_dnsd_case_question_echoed", a.question[0][0] == "ExAmPlE.CoM",
            a.question)
    r.check("test_dnsd_case_owner_as_asked", a.answer[0][0] == "ExAmPlE.CoM", a.answer)


def soa_ok(reply, neg):
    return (len(reply.authority) == 1 and reply.answer == []
            and reply.authority[0][:4] == (".", T_SOA, CLASS_IN, neg)
            and reply.authority[0][4][-1] == neg)


def test_dnsd_negative(r, d):
    nx = udp_query(d.port, "nothing.example.com", T_A)
    check_header(r, "test_dnsd_nxdomain_rcode", nx, "nothing.example.com", T_A, NXDOMAIN)
    r.check("test_dnsd_nxdomain_soa", soa_ok(nx, 300), nx.authority)
    nodata = udp_query(d.port, "mx.example.com", T_TXT)
    check_header(r, "test_dnsd_nodata_rcode", nodata, "mx.example.com", T_TXT, NOERROR)
    r.check("test_dnsd_nodata_soa", soa_ok(nodata, 300), nodata.authority)
    ent = udp_query(d.port, "c.deep.example", T_A)
    r.check("test_dnsd_nodata_empty_non_terminal", ent.rcode == NOERROR and soa_ok(ent, 300),
            (ent.rcode, ent.authority))
    below = udp_query(d.port, "x.a.b.c.deep.example", T_A)
    r.check("test_dnsd_nxdomain_below_leaf", below.rcode == NXDOMAIN, below.rcode)
    other = Dnsd("n.example A 5 192.0.2.1\n", neg_ttl=42)
    try:
        nx = udp_query(other.port, "o.example", T_A)
        r.check("test_dnsd_negative_ttl_option", nx.rcode == NXDOMAIN and soa_ok(nx, 42),
                nx.authority)
    finally:
        other.stop()


def test_dnsd_cname(r, d):
    c = udp_query(d.port, "alias.example.com", T_A)
    r.check("test_dnsd_cname_followed",
            [(x[0], x[1], x[4]) for x in c.answer] ==
            [("alias.example.com", T_CNAME, "example.com"),
             ("example.com", T_A, "192.0.2.1"), ("example.com", T_A, "192.0.2.2")],
            c.answer)
    c = udp_query(d.port, "alias.example.com", T_CNAME)
    r.check("test_dnsd_cname_asked_for", c.data() == ["example.com"], c.answer)
    c = udp_query(d.port, "dangling.example.com", T_A)
    r.check("test_dnsd_cname_to_nxdomain",
            c.rcode == NXDOMAIN and c.data(T_CNAME) == ["nowhere.example.com"]
            and len(c.authority) == 1, (c.rcode, c.answer, c.authority))
    c = udp_query(d.port, "loop1.example.com", T_A)
    r.check("test_dnsd_cname_loop_servfail", c.rcode == SERVFAIL and c.answer == [],
            (c.rcode, c.answer))


def test_dnsd_wildcard(r, d):
    w = udp_query(d.port, "anything.wild.example", T_A)
    r.check("test_dnsd_wildcard_match",
            w.rcode == NOERROR and [(x[0], x[3], x[4]) for x in w.answer] ==
            [("anything.wild.example", 120, "192.0.2.99")], w.answer)
    w = udp_query(d.port, "two.levels.wild.example", T_TXT)
    r.check("test_dnsd_wildcard_deeper", w.data() == [[b"wild"]], w.answer)
    w = udp_query(d.port, "host.wild.example", T_A)
    r.check("test_dnsd_wildcard_not_for_existing_name",
            w.rcode == NOERROR and w.answer == [] and len(w.authority) == 1,
            (w.rcode, w.answer))
    w = udp_query(d.port, "x.host.wild.example", T_A)
    r.check("test_dnsd_wildcard_blocked_by_closer_encloser", w.rcode == NXDOMAIN,
            (w.rcode, w.answer))
    w = udp_query(d.port, "wild.example", T_A)
    r.check("test_dnsd_wildcard_parent_nodata", w.rcode == NOERROR and w.answer == [],
            (w.rcode, w.answer))


def test_dnsd_timeout_servfail(r, d):
    t = udp_query(d.port, "dead.example", T_TXT, timeout=NO_ANSWER_WAIT)
    r.check("test_dnsd_timeout_no_answer", t is None, t and t.answer)
    t = udp_query(d.port, "to.example", T_TXT, timeout=NO_ANSWER_WAIT)
    r.check("test_dnsd_timeout_other_type_no_answer", t is None, t and t.answer)
    a = udp_query(d.port, "to.example", T_A)
    r.check("test_dnsd_timeout_known_type_answered",
            a is not None and a.data() == ["192.0.2.50"], a and a.answer)
    with socket.create_connection(("127.0.0.1", d.port), 2) as s:
        qid1, m1 = build_query("dead.example", T_A)
        qid2, m2 = build_query("example.com", T_AAAA)
        s.sendall(struct.pack(">H", len(m1)) + m1 + struct.pack(">H", len(m2)) + m2)
        rep = tcp_read(s)
        r.check("test_dnsd_timeout_tcp_connection_goes_on",
                rep.id == qid2 and rep.data() == ["2001:db8::1"], (rep.id, rep.answer))
    f = udp_query(d.port, "sf.example", T_MX)
    check_header(r, "test_dnsd_servfail_rcode", f, "sf.example", T_MX, SERVFAIL)
    r.check("test_dnsd_servfail_empty", f.answer == [] and f.authority == [],
            (f.answer, f.authority))
    a = udp_query(d.port, "sf.example", T_A)
    r.check("test_dnsd_servfail_known_type_answered", a.data() == ["192.0.2.51"],
            a.answer)


def reply_size_for_txt(name, n):
    """Size of the reply to "name TXT" with one n-byte string in the zone: header,
    question, compressed owner, RR header, and the string cut into 255-byte pieces,
    each with its length byte."""
    pieces = max(1, (n + 254) // 255)
    return 12 + len(encode_name(name)) + 4 + 2 + 10 + pieces + n


def test_dnsd_truncation(r):
    name = "fit.example"
    fits = max(n for n in range(512) if reply_size_for_txt(name, n) <= 512)
    big = "B" * 1000
    # Same length as name, so one more byte of data makes the reply one byte longer.
    zone = ('fit.example TXT 60 "%s"\novr.example TXT 60 "%s"\nbig.example TXT 60 "%s"\n'
            % ("f" * fits, "o" * (fits + 1), big))
    d = Dnsd(zone)
    try:
        f = udp_query(d.port, name, T_TXT)
        r.check("test_dnsd_udp_512_fits",
                len(f.raw) == 512 and not f.flags & FLAG_TC
                and b"".join(f.data()[0]) == b"f" * fits,
                (len(f.raw), "%04x" % f.flags))
        o = udp_query(d.port, "ovr.example", T_TXT)
        r.check("test_dnsd_udp_513_truncated",
                o.flags & FLAG_TC and o.answer == [] and len(o.question) == 1
                and len(o.raw) == 12 + len(encode_name("ovr.example")) + 4,
                (len(o.raw), "%04x" % o.flags, o.answer))
        t = tcp_query(d.port, "ovr.example", T_TXT)
        r.check("test_dnsd_tcp_513_whole", not t.flags & FLAG_TC and len(t.raw) == 513
                and b"".join(t.data()[0]) == b"o" * (fits + 1), (len(t.raw), "%04x" % t.flags))
        u = udp_query(d.port, "big.example", T_TXT, edns=True)
        r.check("test_dnsd_udp_big_truncated_even_with_edns", u.flags & FLAG_TC and
                u.answer == [], "%04x" % u.flags)
        t = tcp_query(d.port, "big.example", T_TXT)
        r.check("test_dnsd_tcp_big_split_255",
                t.data() == [[b"B" * 255, b"B" * 255, b"B" * 255, b"B" * 235]],
                [[len(s) for s in x] for x in t.data()])
    finally:
        d.stop()


def test_dnsd_string_split_limits(r):
    zone = ('s255.example TXT 60 "%s"\ns256.example TXT 60 "%s"\n'
            's0.example TXT 60 ""\n' % ("a" * 255, "b" * 256))
    d = Dnsd(zone)
    try:
        t = tcp_query(d.port, "s255.example", T_TXT)
        r.check("test_dnsd_txt_255_one_string", t.data() == [[b"a" * 255]],
                [[len(s) for s in x] for x in t.data()])
        t = tcp_query(d.port, "s256.example", T_TXT)
        r.check("test_dnsd_txt_256_two_strings", t.data() == [[b"b" * 255, b"b"]],
                [[len(s) for s in x] for x in t.data()])
        t = tcp_query(d.port, "s0.example", T_TXT)
        r.check("test_dnsd_txt_empty_string", t.data() == [[b""]], t.data())
    finally:
        d.stop()


def test_dnsd_tcp(r, d):
    with socket.create_connection(("127.0.0.1", d.port), 2) as s:
        ids = {}
        blob = b""
        for name, qtype in (("example.com", T_A), ("example.com", T_MX),
                            ("nothing.example", T_TXT)):
            qid, m = build_query(name, qtype)
            ids[qid] = (name, qtype)
            blob += struct.pack(">H", len(m)) + m
        s.sendall(blob)
        got = {}
        for _ in ids:
            rep = tcp_read(s)
            got[rep.id] = rep
        r.check("test_dnsd_tcp_pipelined", set(got) == set(ids)
                and all(got[i].question[0][:2] == ids[i] for i in ids), sorted(got))
        qid, m = build_query("mx.example.com", T_A)
        frame = struct.pack(">H", len(m)) + m
        for i in range(len(frame)):
            s.sendall(frame[i:i + 1])
        rep = tcp_read(s)
        r.check("test_dnsd_tcp_byte_by_byte", rep.id == qid
                and rep.data() == ["192.0.2.25"], rep.answer)
    with socket.create_connection(("127.0.0.1", d.port), 2) as s:
        qid, m = build_query("example.com", T_AAAA)
        s.sendall(struct.pack(">H", len(m)) + m)
        s.shutdown(socket.SHUT_WR)
        rep = tcp_read(s)
        s.settimeout(2)
        r.check("test_dnsd_tcp_half_close_answered_then_closed",
                rep.id == qid and s.recv(1) == b"", rep.answer)


def test_dnsd_garbage(r, d):
    r.check("test_dnsd_short_packet_ignored",
            udp_exchange(d.port, b"\x12\x34\x01", NO_ANSWER_WAIT) is None)
    qid, m = build_query("example.com", T_A, flags=FLAG_QR)
    r.check("test_dnsd_response_ignored", udp_exchange(d.port, m, NO_ANSWER_WAIT) is None)
    qid, m = build_query("example.com", T_A)
    bad = m[:12] + b"\x07exam"
    rep = udp_exchange(d.port, bad)
    rep = rep and DnsReply(rep)
    r.check("test_dnsd_cut_question_formerr", rep is not None and rep.id == qid
            and rep.rcode == FORMERR and rep.question == [], rep and rep.rcode)
    ptr = m[:12] + b"\xc0\x0c" + m[-4:]
    rep = DnsReply(udp_exchange(d.port, ptr))
    r.check("test_dnsd_pointer_in_question_formerr", rep.rcode == FORMERR, rep.rcode)
    two = m[:4] + b"\x00\x02" + m[6:]
    rep = DnsReply(udp_exchange(d.port, two))
    r.check("test_dnsd_two_questions_formerr", rep.rcode == FORMERR, rep.rcode)
    qid, m = build_query("example.com", T_A, flags=FLAG_RD | (2 << 11))
    rep = DnsReply(udp_exchange(d.port, m))
    r.check("test_dnsd_opcode_status_notimp", rep.rcode == NOTIMP and rep.id == qid
            and rep.question[0][:2] == ("example.com", T_A), rep.rcode)
    rep = udp_query(d.port, "example.com", T_A, qclass=CLASS_CH)
    r.check("test_dnsd_class_chaos_refused", rep.rcode == REFUSED and rep.answer == [],
            rep.rcode)
    with socket.create_connection(("127.0.0.1", d.port), 2) as s:
        s.sendall(b"\x00\x03abc")
        qid, m = build_query("example.com", T_AAAA)
        s.sendall(struct.pack(">H", len(m)) + m)
        rep = tcp_read(s)
        r.check("test_dnsd_tcp_garbage_frame_skipped", rep.id == qid
                and rep.data() == ["2001:db8::1"], rep.answer)
    a = udp_query(d.port, "example.com", T_A)
    r.check("test_dnsd_alive_after_garbage", a is not None and len(a.answer) == 2)


def test_dnsd_latency(r):
    d = Dnsd("slow.example A 60 192.0.2.1\n", latency_ms=200)
    try:
        t0 = time.monotonic()
        a = udp_query(d.port, "slow.example", T_A)
        took = time.monotonic() - t0
        r.check("test_dnsd_latency_udp_delayed", a is not None and took >= 0.2,
                "%.3f s" % took)
        t0 = time.monotonic()
        t = tcp_query(d.port, "slow.example", T_A)
        took = time.monotonic() - t0
        r.check("test_dnsd_latency_tcp_delayed", t.data() == ["192.0.2.1"] and took >= 0.2,
                "%.3f s" % took)
        sel = selectors.DefaultSelector()
        socks = {}
        t0 = time.monotonic()
        for i in range(50):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setblocking(False)
            qid, m = build_query("slow.example", T_A)
            s.sendto(m, ("127.0.0.1", d.port))
            socks[s] = qid
            sel.register(s, selectors.EVENT_READ)
        answered = 0
        deadline = t0 + 5
        while answered < 50 and time.monotonic() < deadline:
            for key, _ in sel.select(deadline - time.monotonic()):
                rep = DnsReply(key.fileobj.recv(65535))
                if rep.id == socks[key.fileobj] and rep.data() == ["192.0.2.1"]:
                    answered += 1
                sel.unregister(key.fileobj)
        took = time.monotonic() - t0
        for s in socks:
            s.close()
        r.check("test_dnsd_latency_50_parallel", answered == 50 and 0.2 <= took < 2.0,
                "%d answered in %.3f s" % (answered, took))
    finally:
        d.stop()


def test_dnsd_query_log(r):
    d = Dnsd('a.example A 60 192.0.2.1\nt.example TIMEOUT\n')
    try:
        udp_query(d.port, "A.Example", T_A)
        udp_query(d.port, "nx.example", T_TXT)
        udp_query(d.port, "t.example", T_SPF, timeout=NO_ANSWER_WAIT)
        udp_query(d.port, "odd y\\.example", 1234)
        tcp_query(d.port, "a.example", T_AAAA)
        want = [("A.Example", "A"), ("nx.example", "TXT"), ("t.example", "SPF"),
                ("odd y\\.example", "TYPE1234"), ("a.example", "AAAA")]
        r.check("test_dnsd_query_log", d.queries() == want, d.queries())
        with open(d.query_log) as f:
            raw = f.read()
        r.check("test_dnsd_query_log_escapes", "odd\\032y\\092.example TYPE1234\n" in raw,
                raw)
        d.reset_queries()
        udp_exchange(d.port, b"junk", NO_ANSWER_WAIT)
        udp_query(d.port, "a.example", T_MX)
        r.check("test_dnsd_query_log_reset", d.queries() == [("a.example", "MX")],
                d.queries())
    finally:
        d.stop()


def test_dnsd_reload(r):
    d = Dnsd('r.example A 60 192.0.2.1\n')
    try:
        d.reload('r.example A 60 192.0.2.2\nnew.example TXT 60 "new"\n')
        a = udp_query(d.port, "r.example", T_A)
        n = udp_query(d.port, "new.example", T_TXT)
        r.check("test_dnsd_reload_new_zone",
                a.data() == ["192.0.2.2"] and n.data() == [[b"new"]], (a.data(), n.data()))
        err = None
        try:
            d.reload('r.example A 60 192.0.2.3\nr.example A 60 300.1.1.1\n')
        except DnsdError as e:
            err = str(e)
        r.check("test_dnsd_reload_bad_zone_error",
                err == "%s:2: bad IPv4 address '300.1.1.1'" % d.zone_path, err)
        a = udp_query(d.port, "r.example", T_A)
        r.check("test_dnsd_reload_bad_zone_keeps_old", a.data() == ["192.0.2.2"], a.data())
    finally:
        r.check("test_dnsd_stop_exit_0", d.stop() == 0)


BAD_ZONES = [
    ('x.example FOO 60 1.2.3.4', "unknown type 'FOO'"),
    ('x.example', "missing type"),
    ('x.example A', "missing TTL"),
    ('x.example A -1 1.2.3.4', "bad TTL '-1'"),
    ('x.example A 2147483648 1.2.3.4', "bad TTL '2147483648'"),
    ('x.example A 60', "missing data"),
    ('x.example A 60 1.2.3', "bad IPv4 address '1.2.3'"),
    ('x.example AAAA 60 1.2.3.4', "bad IPv6 address '1.2.3.4'"),
    ('x.example A 60 1.2.3.4 5.6.7.8', "trailing data"),
    ('x.example MX 60 65536 mx.example', "bad MX preference '65536'"),
    ('x.example MX 60 10', "missing MX exchange"),
    ('x.example TXT 60 unquoted', 'TXT data must be "quoted" strings'),
    ('x.example TXT 60 "open', "unterminated string"),
    ('x.example TXT 60 "a\\x"', "bad escape in string (use \\\" \\\\ or \\DDD)"),
    ('x.example TXT 60 "a\\256"', "bad escape in string (use \\\" \\\\ or \\DDD)"),
    ('x.example TXT 60 "a"b', "junk after closing quote"),
    ('x.example TXT 60', "missing data"),
    ('x..example A 60 1.2.3.4', "empty label in name 'x..example'"),
    ('.x.example A 60 1.2.3.4', "empty label in name '.x.example'"),
    ('%s.example A 60 1.2.3.4' % ("l" * 64),
     "label longer than 63 bytes in name '%s...'" % ("l" * 60)),
    ('x.example TIMEOUT 60', "trailing data after TIMEOUT"),
    ('x.example CNAME 60 y.example\nx.example A 60 1.2.3.4', "CNAME and other data at one name"),
    ('x.example A 60 1.2.3.4\nx.example CNAME 60 y.example', "CNAME and other data at one name"),
    ('x.example TIMEOUT\nx.example SERVFAIL', "TIMEOUT and SERVFAIL at one name"),
]


def run_dnsd(zone_text):
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        path = os.path.join(tmp, "zone")
        with open(path, "w") as f:
            f.write(zone_text)
        p = subprocess.run([DNSD, "-p", "0", "-z", path],
                           capture_output=True, text=True, timeout=10)
        return p.returncode, p.stderr.replace(path, "ZONE"), p.stdout


def test_dnsd_bad_zone_at_start(r):
    for text, reason in BAD_ZONES:
        lines = ["ok.example A 60 192.0.2.1", "# comment"] + text.split("\n")
        code, err, out = run_dnsd("\n".join(lines) + "\n")
        want = "ZONE:%d: %s\n" % (len(lines), reason)
        r.check("test_dnsd_bad_zone %s" % reason, code == 1 and err == want and out == "",
                "exit %d, stderr %r, want %r" % (code, err, want))
    empty = Dnsd("# nothing\n")
    try:
        nx = udp_query(empty.port, "example.com", T_A)
        r.check("test_dnsd_empty_zone_nxdomain", nx.rcode == NXDOMAIN and soa_ok(nx, 300),
                (nx.rcode, nx.authority))
    finally:
        empty.stop()
    p = subprocess.run([DNSD, "-p", "0", "-z", "/nonexistent/zone"],
                       capture_output=True, text=True, timeout=10)
    r.check("test_dnsd_zone_file_missing", p.returncode == 1 and
            p.stderr == "/nonexistent/zone: No such file or directory\n", p.stderr)
    p = subprocess.run([DNSD, "-z", "/dev/null"],
                       capture_output=True, text=True, timeout=10)
    r.check("test_dnsd_usage_without_port", p.returncode == 2 and
            p.stderr.startswith("usage: dnsd -p PORT"), p.stderr)


def test_dnsd_name_limits(r):
    label63 = "m" * 63
    # 4 labels of 63 + 1 of 1: 4*64 + 2 + 1 = 259 > 255; 3 of 63 + one of 61 fits 255.
    fits = ".".join([label63] * 3 + ["n" * 61])
    over = ".".join([label63] * 3 + ["n" * 62])
    d = Dnsd("%s.example A 60 192.0.2.1\n%s A 60 192.0.2.2\n" % (label63, fits))
    try:
        a = udp_query(d.port, label63 + ".example", T_A)
        r.check("test_dnsd_label_63_fits", a.data() == ["192.0.2.1"], a.answer)
        a = udp_query(d.port, fits, T_A)
        r.check("test_dnsd_name_255_fits", len(encode_name(fits)) == 255
                and a.data() == ["192.0.2.2"], a.answer)
    finally:
        d.stop()
    code, err, _ = run_dnsd("%s A 60 192.0.2.2\n" % over)
    r.check("test_dnsd_name_256_rejected", code == 1 and
            err.startswith("ZONE:1: name '") and err.endswith("' longer than 255 bytes\n"),
            err)


def main():
    r = Results("dnsd")
    if not os.path.exists(DNSD):
        r.check("dnsd_built", False, "run make build/dnsd first")
        r.finish()
    d = Dnsd(ZONE)
    try:
        for test in (test_dnsd_answers, test_dnsd_case, test_dnsd_negative, test_dnsd_cname,
                     test_dnsd_wildcard, test_dnsd_timeout_servfail, test_dnsd_tcp,
                     test_dnsd_garbage):
            r.run(lambda: test(r, d), test.__name__)
        for test in (test_dnsd_truncation, test_dnsd_string_split_limits,
                     test_dnsd_latency, test_dnsd_query_log, test_dnsd_reload,
                     test_dnsd_bad_zone_at_start, test_dnsd_name_limits):
            r.run(lambda: test(r), test.__name__)
        r.check("test_dnsd_stderr_clean", d.stderr() == "", d.stderr())
    finally:
        r.check("test_dnsd_main_exit_0", d.stop() == 0)
    r.finish()


if __name__ == "__main__":
    main()
