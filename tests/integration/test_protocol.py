"""The policy protocol against the real daemon: framing, connection reuse, bad input,
idle timeouts, the connection cap, many clients at once, unix and TCP listeners.

Clients in 192.0.2.0/24 and 2001:db8:1::/48 are in [skip] clients, so they are
answered without DNS; 198.51.100.7 and 2001:db8::7 are really checked against a
dnsd zone in which example.com allows only 192.0.2.0/24."""

import grp
import os
import pwd
import random
import re
import resource
import select
import shutil
import socket
import stat
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Daemon, Dnsd, PolicyClient, Results, free_port, request  # noqa: E402

ZONE = 'example.com TXT 300 "v=spf1 ip4:192.0.2.0/24 -all"\nhang.example TIMEOUT\n'
CONFIG = {
    "skip": {"clients": "192.0.2.0/24, 2001:db8:1::/48"},
    "spf": {"receiver": "policy.test"},
}
SKIPPED = ('PREPEND Received-SPF: none (policy.test: skipped: client is in [skip] clients) '
           'client-ip=%s; envelope-from="alice@example.com"; helo=mail.example.com; '
           'receiver=policy.test; identity=mailfrom')
SKIPPED_V4 = SKIPPED % "192.0.2.1"
FAIL_V4 = "550 5.7.23 198.51.100.7 is not one of example.com's designated mail servers"
# The daemon's caps (include/policy_proto.h).
LINE_MAX = 4096
REQUEST_MAX = 16384
DEADLINE = 10.0

r = Results("protocol")
dnsd = Dnsd(ZONE)
d = Daemon(config=CONFIG, dns=dnsd)


def block(attrs):
    return b"".join(k.encode() + b"=" + v.encode() + b"\n" for k, v in attrs.items()) + b"\n"


def peer(client):
    return "127.0.0.1:%d" % client.sock.getsockname()[1]


def wait_log(pattern, start=0):
    """The daemon log's lines after offset start matching pattern, polled until at
    least one appears or DEADLINE passes."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + DEADLINE
    while True:
        found = [l for l in d.log()[start:].splitlines() if rx.search(l)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def still_serving(name):
    with PolicyClient(port=d.port) as c:
        got = c.ask(request())
    r.check(name + "_still_serving", got == SKIPPED_V4, got)


def recv_exactly(sock, n, timeout=DEADLINE):
    sock.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def test_protocol_split_writes():
    """Each byte in its own write: the reply is the first thing that comes back, and
    the second request's reply follows it directly (TCP keeps order, so any byte sent
    early or between would show)."""
    with PolicyClient(port=d.port) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        data = block(request())
        for i in range(len(data)):
            c.send_raw(data[i:i + 1])
        c.send_raw(block(request(client_address="198.51.100.7")))
        want = ("action=%s\n\naction=%s\n\n" % (SKIPPED_V4, FAIL_V4)).encode()
        got = recv_exactly(c.sock, len(want))
        r.check("split_writes_exact_stream", got == want, repr(got))


def test_protocol_split_sizes():
    data = block(request())
    for size in (2, 3, 7, 64, len(data) - 1):
        with PolicyClient(port=d.port) as c:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(0, len(data), size):
                c.send_raw(data[i:i + size])
            got = c.read_reply()
            r.check("split_writes_%d" % size, got == "action=" + SKIPPED_V4, got)


def test_protocol_reuse_100():
    answers = []
    with PolicyClient(port=d.port) as c:
        for _ in range(100):
            answers.append(c.ask(request()))
    r.check("reuse_100_answers", answers == [SKIPPED_V4] * 100,
            [a for a in answers if a != SKIPPED_V4][:3])


def test_protocol_pipelined():
    """Two requests in one write: answered in order, one at a time."""
    with PolicyClient(port=d.port) as c:
        c.send_raw(block(request(client_address="198.51.100.7")) + block(request()))
        first, second = c.read_reply(), c.read_reply()
    r.check("pipelined_first", first == "action=" + FAIL_V4, first)
    r.check("pipelined_second", second == "action=" + SKIPPED_V4, second)


def expect_closed(name, data, warning):
    """data makes the daemon close the connection with one warning naming the peer."""
    start = len(d.log())
    with PolicyClient(port=d.port) as c:
        who = peer(c)
        try:
            c.send_raw(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        got = c.read_reply()
    r.check(name + "_closed", got is None, got)
    lines = wait_log(re.escape(who) + ": ", start)
    warns = [l for l in lines if ": warning: " in l]
    r.check(name + "_one_warning", len(warns) == 1, lines)
    r.check(name + "_warning_text", warns and warning in warns[0], warns)
    still_serving(name)


def test_protocol_line_too_long():
    # No newline ever comes: the daemon must not wait for one.
    expect_closed("line_too_long",
                  b"request=smtpd_access_policy\nsender=" + b"a" * (LINE_MAX + 100),
                  "request too long (a line over 4096 bytes or a request over 16384 bytes); "
                  "closing the connection; input: \"request=smtpd_access_policy?sender=aaaa")


def test_protocol_line_max_fits():
    sender = "a" * (LINE_MAX - len("sender=") - 12) + "@example.com"
    with PolicyClient(port=d.port) as c:
        got = c.ask(request(sender=sender))
    # How the header shows a 4 KB sender is the policy's business; it is answered.
    r.check("line_max_fits", got.startswith(SKIPPED_V4.split("envelope-from=")[0]), got[:200])


def test_protocol_request_too_long():
    line = b"x=" + b"a" * 4000 + b"\n"
    expect_closed("request_too_long",
                  b"request=smtpd_access_policy\n" + line * (REQUEST_MAX // len(line) + 1),
                  "request too long")


def test_protocol_request_max_fits():
    head = block(request())[:-1]
    filler = REQUEST_MAX - len(head) - 1
    lines = []
    while filler > 0:
        n = min(filler, 4000)
        if 0 < filler - n < 3:
            n -= 3
        lines.append(b"x=" + b"a" * (n - 3) + b"\n")
        filler -= n
    data = head + b"".join(lines) + b"\n"
    with PolicyClient(port=d.port) as c:
        c.send_raw(data)
        got = c.read_reply()
    r.check("request_max_fits_size", len(data) == REQUEST_MAX, len(data))
    r.check("request_max_fits", got == "action=" + SKIPPED_V4, got)


def test_protocol_malformed():
    expect_closed("no_equals", b"request=smtpd_access_policy\nhello world\n\n",
                  "line 2: no '=' in attribute; closing the connection; "
                  "input: \"request=smtpd_access_policy?hello world??\"")
    expect_closed("not_smtpd_access_policy", b"request=foo\x1b[31m\n\n",
                  "request=foo?[31m: not smtpd_access_policy; closing the connection")
    expect_closed("missing_request", block({"sender": "a@example.com"}),
                  "missing request= attribute")
    expect_closed("nul_byte", b"request=smtpd_access_policy\nsender=a\0b\n\n",
                  "NUL byte in line 2")
    expect_closed("http", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                  "line 1: no '=' in attribute")


def test_protocol_disconnect_mid_request():
    start = len(d.log())
    c = PolicyClient(port=d.port)
    who = peer(c)
    c.send_raw(b"request=smtpd_access_policy\nsender=a@exa")
    c.close()
    lines = wait_log(re.escape(who) + ": disconnected in the middle of a request", start)
    r.check("disconnect_mid_request_logged", len(lines) == 1, d.log()[start:])
    r.check("disconnect_mid_request_not_warned",
            not [l for l in d.log()[start:].splitlines() if who in l and "warning" in l])
    still_serving("disconnect_mid_request")


def test_protocol_disconnect_during_check():
    """The client leaves while its check waits for DNS (the name never answers): the
    daemon notices at once, drops the check and carries on."""
    start = len(d.log())
    dnsd.reset_queries()
    c = PolicyClient(port=d.port)
    who = peer(c)
    c.send_raw(block(request(client_address="198.51.100.7", sender="x@hang.example")))
    deadline = time.monotonic() + DEADLINE
    while ("hang.example", "TXT") not in dnsd.queries() and time.monotonic() < deadline:
        time.sleep(0.01)
    r.check("disconnect_during_check_queried", ("hang.example", "TXT") in dnsd.queries(),
            dnsd.queries())
    c.close()
    lines = wait_log(re.escape(who) + ": disconnected while its request was being checked",
                     start)
    r.check("disconnect_during_check_logged", len(lines) == 1, d.log()[start:])
    still_serving("disconnect_during_check")


def test_protocol_unix_socket():
    with PolicyClient(path=d.unix_path) as c:
        a = c.ask(request())
        b = c.ask(request(client_address="198.51.100.7"))
    r.check("unix_skipped", a == SKIPPED_V4, a)
    r.check("unix_checked", b == FAIL_V4, b)
    mode = os.stat(d.unix_path).st_mode & 0o777
    r.check("unix_socket_mode", mode == 0o666, oct(mode))


def test_protocol_ipv6():
    with PolicyClient(port=d.port) as c:
        a = c.ask(request(client_address="2001:db8:1::5"))
        b = c.ask(request(client_address="2001:db8::7"))
    r.check("ipv6_skipped", a == SKIPPED % "2001:db8:1::5", a)
    r.check("ipv6_checked",
            b == "550 5.7.23 2001:db8::7 is not one of example.com's designated mail servers", b)


def test_protocol_shuffled_and_unknown():
    rnd = random.Random(7208)
    for client, want in (("192.0.2.1", SKIPPED_V4), ("198.51.100.7", FAIL_V4)):
        for i in range(5):
            items = list(request(client_address=client).items())
            rnd.shuffle(items)
            with PolicyClient(port=d.port) as c:
                got = c.ask(dict(items))
            r.check("shuffled_%s_%d" % (client, i), got == want, got)
        extra = request(client_address=client)
        extra.update({"ccert_subject": "CN=x, O=y", "Sender": "upper@example.org",
                      "x-custom": "1", "mail_version": "3.7.11", "size": "abc",
                      "stress": "yes"})
        with PolicyClient(port=d.port) as c:
            got = c.ask(extra)
        r.check("unknown_ignored_%s" % client, got == want, got)


def test_protocol_crlf():
    with PolicyClient(port=d.port) as c:
        c.send_raw(block(request()).replace(b"\n", b"\r\n"))
        got = c.read_reply()
    r.check("crlf", got == "action=" + SKIPPED_V4, got)


def test_protocol_one_header_per_message():
    """Later requests of the same message on the same connection get DUNNO."""
    req = request()
    with PolicyClient(port=d.port) as c:
        first = c.ask(req)
        second = c.ask(dict(req, recipient="carol@example.net"))
    r.check("same_instance_first", first == SKIPPED_V4, first)
    r.check("same_instance_dunno", second == "DUNNO", second)


def test_protocol_concurrent_1000():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    clients = []
    try:
        for _ in range(1000):
            clients.append(PolicyClient(port=d.port))
        reqs = []
        for i, c in enumerate(clients):
            client = "198.51.100.7" if i % 10 == 0 else "192.0.2.1"
            reqs.append(FAIL_V4 if i % 10 == 0 else SKIPPED_V4)
            c.send_raw(block(request(client_address=client)))
        got = [c.read_reply() for c in clients]
        bad = [(i, g) for i, g in enumerate(got) if g != "action=" + reqs[i]]
        r.check("concurrent_1000_answered", not bad, bad[:3])
    finally:
        for c in clients:
            c.close()
    still_serving("concurrent_1000")


def test_protocol_idle_timeout():
    idle = Daemon(config=dict(CONFIG, server={"idle_timeout": 1}), dns=dnsd)
    start = time.monotonic()
    c = PolicyClient(port=idle.port)
    who = peer(c)
    # Still open half-way through the timeout: nothing to read, no EOF.
    ready, _, _ = select.select([c.sock], [], [], 0.5)
    r.check("idle_open_before_timeout", not ready)
    got = c.read_reply(timeout=DEADLINE)
    elapsed = time.monotonic() - start
    r.check("idle_closed_after_timeout", got is None, got)
    r.check("idle_closed_in_time", 0.9 <= elapsed < 5, elapsed)
    c.close()
    logged = [l for l in idle.log().splitlines() if who in l]
    r.check("idle_logged_debug", any("debug: %s: idle for 1 s" % who in l for l in logged),
            logged)
    r.check("idle_not_warned", not [l for l in logged if "warning" in l], logged)

    # Activity resets the timer; a partial request does not keep a connection forever.
    with PolicyClient(port=idle.port) as c:
        answers = []
        for i in range(3):
            ready, _, _ = select.select([c.sock], [], [], 0.6)
            r.check("idle_open_after_%d_requests" % i, not ready)
            answers.append(c.ask(request()))
        r.check("idle_reset_by_requests", answers == [SKIPPED_V4] * 3, answers)
        c.send_raw(b"request=smtpd_access_policy\n")
        r.check("idle_partial_closed", c.read_reply(timeout=DEADLINE) is None)
    r.check("idle_daemon_exit", idle.stop() == 0)


def test_protocol_max_connections():
    cap = Daemon(config=dict(CONFIG, server={"max_connections": 3}), dns=dnsd)
    # The harness's readiness probe may still hold a slot for a moment: the first
    # connections each get their answer before the next one is counted.
    first = [PolicyClient(port=cap.port) for _ in range(3)]
    ok = [c.ask(request()) for c in first]
    r.check("max_connections_first_served", ok == [SKIPPED_V4] * 3, ok)
    extra = PolicyClient(port=cap.port)
    extra.send_raw(block(request()))
    try:
        early = extra.read_reply(timeout=0.5)
    except TimeoutError:
        early = "timeout"
    r.check("max_connections_extra_waits", early == "timeout", early)
    first[0].close()
    late = extra.read_reply(timeout=DEADLINE)
    r.check("max_connections_extra_served_after_close", late == "action=" + SKIPPED_V4, late)
    for c in first[1:] + [extra]:
        c.close()
    r.check("max_connections_daemon_exit", cap.stop() == 0)


def test_protocol_drain():
    """SIGTERM: an idle connection is closed at once, a check in flight still gets
    its reply, and the daemon exits 0."""
    slow = Dnsd('slowdrain.example TXT 300 "v=spf1 -all"\n', latency_ms=300)
    dd = Daemon(config=CONFIG, dns=slow)
    idle = PolicyClient(port=dd.port)
    r.check("drain_idle_works", idle.ask(request()) == SKIPPED_V4)
    busy = PolicyClient(port=dd.port)
    busy.send_raw(block(request(client_address="198.51.100.7",
                                sender="bob@slowdrain.example")))
    deadline = time.monotonic() + DEADLINE
    while not slow.queries() and time.monotonic() < deadline:
        time.sleep(0.01)
    dd.send_signal(15)
    r.check("drain_idle_closed", idle.read_reply(timeout=DEADLINE) is None)
    got = busy.read_reply(timeout=DEADLINE)
    r.check("drain_busy_answered", got is not None and got.startswith("action=550 5.7.23 "),
            got)
    r.check("drain_busy_closed_after", busy.read_reply(timeout=DEADLINE) is None)
    # It exits on its own: a second SIGTERM (from stop()) could hit its teardown.
    try:
        dd.proc.wait(DEADLINE * 6)
    except Exception:
        pass
    r.check("drain_exited_by_itself", dd.proc.poll() is not None)
    r.check("drain_exit_code", dd.stop() == 0, dd.log()[-2000:])
    r.check("drain_socket_removed", not os.path.exists(dd.unix_path))
    idle.close()
    busy.close()
    slow.stop()


def start_failure(listen, server=None):
    """Starts a daemon that must refuse to start; returns (exit code, log)."""
    bad = Daemon(config=dict(CONFIG, server=dict(server or {}, listen=listen)), dns=dnsd,
                 wait=False)
    try:
        code = bad.proc.wait(DEADLINE * 6)
    except Exception:
        code = None
    bad.stop()
    bad.claim_problem()
    return code, bad.log()


def test_protocol_unix_socket_setup():
    """Missing directories are made, the mode and owner are applied, a stale socket
    file is replaced, and anything else at the path stops the daemon at start."""
    base = tempfile.mkdtemp(prefix="spf-policyd-sock-", dir="/tmp")
    # The unix socket is listed first: it exists before the TCP port the harness
    # polls for readiness accepts anything.
    try:
        path = os.path.join(base, "run", "spf", "policy.sock")
        tcp = "127.0.0.1:%d" % free_port()
        nobody = pwd.getpwnam("nobody")
        group = grp.getgrgid(nobody.pw_gid).gr_name
        ud = Daemon(config=dict(CONFIG, server={
            "listen": ["unix:" + path, tcp], "socket_mode": "0660",
            "socket_owner": "nobody", "socket_group": group}), dns=dnsd)
        st = os.stat(path)
        r.check("unix_setup_mode", stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode))
        r.check("unix_setup_owner", (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid),
                (st.st_uid, st.st_gid))
        dmode = stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)
        r.check("unix_setup_dir_mode", dmode == 0o755, oct(dmode))
        with PolicyClient(path=path) as c:
            got = c.ask(request())
        r.check("unix_setup_serves", got == SKIPPED_V4, got)

        code, log = start_failure(["unix:" + path])
        r.check("unix_live_socket_refused",
                code == 1 and "listen unix:%s: another process is listening on it" % path
                in log, (code, log[-500:]))
        r.check("unix_live_socket_kept", os.path.exists(path))
        r.check("unix_setup_exit", ud.stop() == 0)
        r.check("unix_socket_removed_at_exit", not os.path.exists(path))

        # A socket file nobody listens on (a crash leaves one) is replaced.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as leftover:
            leftover.bind(path)
        stale = Daemon(config=dict(CONFIG, server={"listen": ["unix:" + path, tcp]}),
                       dns=dnsd)
        with PolicyClient(path=path) as c:
            got = c.ask(request())
        r.check("unix_stale_replaced", got == SKIPPED_V4, got)
        r.check("unix_stale_exit", stale.stop() == 0)

        with open(path, "w") as f:
            f.write("not a socket\n")
        code, log = start_failure(["unix:" + path])
        r.check("unix_not_a_socket",
                code == 1 and "listen unix:%s: exists and is not a socket" % path in log,
                (code, log[-500:]))
        with open(path) as f:
            r.check("unix_not_a_socket_untouched", f.read() == "not a socket\n")
        os.unlink(path)

        code, log = start_failure(["unix:" + path], {"socket_owner": "no-such-user-x"})
        r.check("unix_unknown_owner",
                code == 1 and "socket_owner 'no-such-user-x': unknown user" in log,
                (code, log[-500:]))
        r.check("unix_unknown_owner_no_file", not os.path.exists(path))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_protocol_tcp_port_in_use():
    code, log = start_failure(["127.0.0.1:%d" % d.port])
    r.check("tcp_port_in_use",
            code == 1 and "listen 127.0.0.1:%d: bind: Address already in use" % d.port in log,
            (code, log[-500:]))
    still_serving("tcp_port_in_use")


def test_protocol_tcp_ipv6_listener():
    port = free_port("::1")
    v6 = Daemon(config=dict(CONFIG, server={"listen": "[::1]:%d" % port}), dns=dnsd)
    with PolicyClient(port=port, host="::1") as c:
        got = c.ask(request())
        who = "[::1]:%d" % c.sock.getsockname()[1]
        c.send_raw(b"junk\n\n")
        r.check("ipv6_listener_bad_closed", c.read_reply() is None)
    r.check("ipv6_listener_serves", got == SKIPPED_V4, got)
    r.check("ipv6_listener_peer_named",
            "%s: line 1: no '=' in attribute" % who in v6.log(), v6.log()[-500:])
    r.check("ipv6_listener_exit", v6.stop() == 0)


for fn in (test_protocol_split_writes, test_protocol_split_sizes, test_protocol_reuse_100,
           test_protocol_pipelined, test_protocol_line_too_long, test_protocol_line_max_fits,
           test_protocol_request_too_long, test_protocol_request_max_fits,
           test_protocol_malformed, test_protocol_disconnect_mid_request,
           test_protocol_disconnect_during_check, test_protocol_unix_socket,
           test_protocol_ipv6, test_protocol_shuffled_and_unknown, test_protocol_crlf,
           test_protocol_one_header_per_message, test_protocol_concurrent_1000,
           test_protocol_idle_timeout, test_protocol_max_connections, test_protocol_drain,
           test_protocol_unix_socket_setup, test_protocol_tcp_port_in_use,
           test_protocol_tcp_ipv6_listener):
    r.run(fn)
r.check("daemon_exit_code", d.stop() == 0, d.log()[-2000:])
dnsd.stop()
r.finish()
