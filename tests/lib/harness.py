"""Shared harness of the integration tests: a real DNS server (build/dnsd), the real
daemon (build/spf-policyd), a policy protocol client and the result printer.

    import os, sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
    from harness import Dnsd, Daemon, PolicyClient, Results, request, BUILD

BUILD
    Absolute path of the repository's build/ directory.
DNSD
    The dnsd binary: env DNSD_BIN, else BUILD/dnsd.

Dnsd(zone_text, latency_ms=0, neg_ttl=None, address="127.0.0.1")
    Starts build/dnsd on a port free for both UDP and TCP, serving zone_text (grammar
    in tests/dnsd/zone.h; bytes, or str written as latin-1 when every character fits,
    else UTF-8). A bad zone raises DnsdError with dnsd's "FILE:LINE: reason".
    .port             its port
    .address          its address
    .server           "127.0.0.1:PORT", as [dns] servers wants it
    .queries()        list of (name, type) received so far, in order; names as they
                      arrived on the wire (case kept), without the trailing dot
    .reset_queries()  forgets the queries received so far
    .reload(zone_text)  replaces the zone (SIGHUP) and waits until dnsd has read it;
                      a bad zone raises DnsdError and dnsd keeps the old one
    .stderr()         what dnsd printed on stderr so far
    .stop()           SIGTERM, wait; returns the exit code

Daemon(config=None, dns=None, args=(), env=None, wait=True)
    Writes an INI config and starts build/spf-policyd -f -c FILE (env SPF_POLICYD_BIN
    replaces the binary, env SPF_POLICYD_WRAPPER, e.g. "valgrind -q", is put in
    front), then waits until its TCP port accepts connections (10 s, 60 s with a
    wrapper) unless wait is False. Harness defaults, which config overrides key by key:
        [server] listen = 127.0.0.1:<free port>, unix:<tmpdir>/policy.sock
        [dns]    servers = 127.0.0.1:<dns.port>      (only when dns is given)
        [log]    destination = stderr, level = debug
    config is {"section": {"key": value}} (written as UTF-8); a list value writes the
    key once per item,
    True/False write yes/no, None leaves the key out (removing a harness default).
    If config sets [server] listen, .port and .unix_path come from it.
    .port, .unix_path, .config_path, .dir
    .log()            the daemon's stderr (and stdout) so far
    .reload(config)   rewrites the file from the defaults and config, sends SIGHUP and
                      waits for a new log line containing "reloaded"; raises DaemonError
                      when a reload failure is logged first or nothing comes in time
    .stop()           SIGTERM, waits up to 30 s (then SIGKILL) and returns the exit code.
                      A non-zero code, or "ERROR: AddressSanitizer", "runtime error:"
                      (UBSan) or a valgrind "ERROR SUMMARY: <non-zero>" in its output is
                      recorded as a problem: .problem holds the text, and the next
                      Results.finish() reports it as a failed check.
    .claim_problem()  returns .problem and takes it off Results.finish()'s list, for a
                      caller that reports it itself
    .send_signal(sig), .pid

PolicyClient(port=None, path=None, host="127.0.0.1", timeout=10)
    One connection to the daemon's TCP port or unix socket.
    .ask(attrs)       sends one request block, returns the reply's action text without
                      "action=" (ProtocolError on a malformed reply, ConnectionError when
                      the connection closes first, TimeoutError after timeout)
    .send_raw(data)   sends bytes as they are
    .read_reply(timeout=None)  the next reply block without its empty line (str), or
                      None when the connection closed first; TimeoutError after timeout
    .close()

request(**overrides)
    A complete smtpd_access_policy request dict (protocol_state RCPT, client 192.0.2.1,
    helo mail.example.com, sender alice@example.com, recipient bob@example.net, a new
    instance each call), with overrides applied.

Results(suite)
    .check(name, condition, detail="")  prints "ok name" or "FAIL name: detail"; returns
                      bool(condition)
    .report(word, name, passed, detail="")  prints "word name: detail" and counts it
                      as passed or failed (e.g. "xfail" lines that count as passed)
    .run(fn, name=None)  calls fn(); an exception becomes "FAIL name: traceback"
    .finish()         stops every Daemon still running, reports every recorded daemon
                      problem as a failure, prints "N passed, M failed" and exits 1 if
                      anything failed, else 0

DNS client (stdlib only, for checking dnsd and zones)
    udp_query(port, name, qtype, timeout=2.0, qid=None, flags=FLAG_RD, qclass=CLASS_IN,
              edns=False) -> DnsReply, or None when no answer came in time
    tcp_query(port, name, qtype, ...) -> DnsReply
    DnsReply: .id .flags .rcode .question [(name, type, class, raw)] .answer
              .authority .additional [(owner, type, class, ttl, data)]; .data(type=None)
              the answer data: A/AAAA text, MX (pref, name), PTR/CNAME name, TXT/SPF
              list of bytes strings, SOA (mname, rname, serial, refresh, retry,
              expire, minimum)
    build_query, encode_name, udp_exchange, tcp_read; constants T_A..., FLAG_...,
    rcodes NOERROR..., CLASS_IN. Names are str (latin-1 bytes) joined by '.'.

Everything runs in a temporary directory under /tmp, removed at exit; every process
started is killed at exit (also when the test raises, or gets SIGTERM/SIGHUP/SIGINT).
Readiness and reloads are awaited by polling with deadlines, never by sleeping blind.
"""

import atexit
import itertools
import os
import random
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

BUILD = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                      "..", "..", "build"))
DNSD = os.environ.get("DNSD_BIN") or os.path.join(BUILD, "dnsd")

POLL_INTERVAL = 0.01            # seconds between readiness polls
READY_TIMEOUT = 10.0            # daemon and dnsd start-up
READY_TIMEOUT_WRAPPED = 60.0    # valgrind starts slowly
RELOAD_TIMEOUT = 10.0
RELOAD_TIMEOUT_WRAPPED = 60.0
STOP_TIMEOUT = 30.0
REPLY_TIMEOUT = 10.0
READ_CHUNK = 65536

VALGRIND_ERRORS = re.compile(r"== ERROR SUMMARY: [1-9]")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

_live = []          # Dnsd and Daemon objects not stopped yet
_tmpdirs = []
_problems = []      # daemon problems not yet reported by a Results
_instance_ids = itertools.count(1)


class DnsdError(Exception):
    pass


class DaemonError(Exception):
    pass


class ProtocolError(Exception):
    pass


def _cleanup():
    for obj in list(_live):
        try:
            obj._kill()
        except Exception:
            pass
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def _exit_on_signal(signum, frame):
    # SystemExit runs atexit, so children die with us.
    sys.exit(128 + signum)


for _sig in (signal.SIGTERM, signal.SIGHUP):
    if signal.getsignal(_sig) is signal.SIG_DFL:
        signal.signal(_sig, _exit_on_signal)


def _tmpdir(prefix):
    d = tempfile.mkdtemp(prefix="spf-policyd-" + prefix, dir="/tmp")
    _tmpdirs.append(d)
    return d


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now (the kernel's pick for port 0)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wrapped():
    return bool(os.environ.get("SPF_POLICYD_WRAPPER", "").strip())


def _write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def _zone_bytes(zone):
    """Zone text as dnsd reads it: bytes as given; a str whose characters are all
    below 256 byte for byte (latin-1), any other str as UTF-8."""
    if isinstance(zone, bytes):
        return zone
    try:
        return zone.encode("latin-1")
    except UnicodeEncodeError:
        return zone.encode("utf-8")


def _decode_name(text):
    """Undoes dnsd's \\DDD escapes; bytes map to str one to one (latin-1)."""
    out = bytearray()
    i = 0
    raw = text.encode("latin-1")
    while i < len(raw):
        digits = raw[i + 1:i + 4]
        if raw[i] == 0x5C and len(digits) == 3 and digits.isdigit():
            out.append(int(raw[i + 1:i + 4]))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode("latin-1")


def _stop_process(proc, timeout):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
    return proc.returncode


class Dnsd:
    def __init__(self, zone_text, latency_ms=0, neg_ttl=None, address="127.0.0.1"):
        self.dir = _tmpdir("dnsd-")
        self.address = address
        self.zone_path = os.path.join(self.dir, "zone")
        self.query_log = os.path.join(self.dir, "queries.log")
        self._stderr_path = os.path.join(self.dir, "stderr.log")
        _write_atomic(self.zone_path, _zone_bytes(zone_text))
        open(self.query_log, "w").close()
        args = [DNSD, "-p", "0", "-a", address,
                "-z", self.zone_path, "-q", self.query_log]
        if latency_ms:
            args += ["-l", str(int(latency_ms))]
        if neg_ttl is not None:
            args += ["-n", str(int(neg_ttl))]
        self._lines = []
        self._cond = threading.Condition()
        self._stderr = open(self._stderr_path, "w")
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL)
        _live.append(self)
        self._reader.start()
        line = self._wait_line(0, ("dnsd ready ",), READY_TIMEOUT)
        if line is None:
            err = self.stderr().strip()
            self._kill()
            raise DnsdError(err or "dnsd did not start")
        self.port = int(line.split()[2])
        self.server = ("[%s]:%d" if ":" in address else "%s:%d") % (address, self.port)

    def _read_stdout(self):
        for raw in self.proc.stdout:
            with self._cond:
                self._lines.append(raw.decode("latin-1").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._lines.append(None)
            self._cond.notify_all()

    def _wait_line(self, start, prefixes, timeout):
        """First stdout line from index start beginning with one of prefixes; None
        when dnsd exits or timeout passes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            i = start
            while True:
                while i < len(self._lines):
                    line = self._lines[i]
                    if line is None:
                        return None
                    if line.startswith(prefixes):
                        return line
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def stderr(self):
        with open(self._stderr_path, encoding="latin-1") as f:
            return f.read()

    def queries(self):
        out = []
        with open(self.query_log, encoding="latin-1") as f:
            for line in f:
                name, _, qtype = line.rstrip("\n").rpartition(" ")
                out.append((_decode_name(name), qtype))
        return out

    def reset_queries(self):
        open(self.query_log, "w").close()

    def reload(self, zone_text):
        with self._cond:
            start = len(self._lines)
        _write_atomic(self.zone_path, _zone_bytes(zone_text))
        self.proc.send_signal(signal.SIGHUP)
        line = self._wait_line(start, ("dnsd reloaded", "dnsd reload failed"),
                               RELOAD_TIMEOUT)
        if line is None:
            raise DnsdError("dnsd did not confirm the reload")
        if line != "dnsd reloaded":
            lines = self.stderr().strip().splitlines()
            raise DnsdError(lines[-1] if lines else "reload failed")

    def stop(self):
        code = _stop_process(self.proc, STOP_TIMEOUT)
        self._close()
        return code

    def _kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self):
        if self in _live:
            _live.remove(self)
        self._stderr.close()
        self._reader.join(STOP_TIMEOUT)
        self.proc.stdout.close()


def _ini_value(v):
    if v is True:
        return "yes"
    if v is False:
        return "no"
    return str(v)


def _parse_listen(values):
    """(tcp host, tcp port, unix path) from [server] listen values."""
    host = port = path = None
    for v in values:
        for item in str(v).split(","):
            item = item.strip()
            if item.startswith("unix:"):
                path = path or item[5:]
            elif item and port is None:
                h, _, p = item.rpartition(":")
                host, port = h.strip("[]") or "127.0.0.1", int(p)
    return host, port, path


class Daemon:
    def __init__(self, config=None, dns=None, args=(), env=None, wait=True):
        self.dir = _tmpdir("daemon-")
        self.config_path = os.path.join(self.dir, "policy.ini")
        self._log_path = os.path.join(self.dir, "daemon.log")
        self._default_port = free_port()
        self._default_unix = os.path.join(self.dir, "policy.sock")
        self._dns = dns
        self.problem = None
        self._write_config(config)
        binary = os.environ.get("SPF_POLICYD_BIN") or os.path.join(BUILD, "spf-policyd")
        wrapper = shlex.split(os.environ.get("SPF_POLICYD_WRAPPER", ""))
        cmd = wrapper + [binary, "-f", "-c", self.config_path] + list(args)
        full_env = dict(os.environ)
        full_env.update(env or {})
        self._log = open(self._log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=full_env)
        self.pid = self.proc.pid
        _live.append(self)
        if wait:
            self._wait_ready()

    def _sections(self, config):
        sections = {
            "server": {"listen": ["127.0.0.1:%d" % self._default_port,
                                  "unix:" + self._default_unix]},
            "log": {"destination": "stderr", "level": "debug"},
        }
        if self._dns is not None:
            sections["dns"] = {"servers": self._dns.server}
        for section, keys in (config or {}).items():
            sections.setdefault(section, {}).update(keys)
        return sections

    def _write_config(self, config):
        sections = self._sections(config)
        lines = []
        for section, keys in sections.items():
            lines.append("[%s]" % section)
            for key, value in keys.items():
                if value is None:
                    continue
                for item in value if isinstance(value, (list, tuple)) else [value]:
                    lines.append("%s = %s" % (key, _ini_value(item)))
            lines.append("")
        _write_atomic(self.config_path, "\n".join(lines).encode("utf-8"))
        listen = sections.get("server", {}).get("listen") or []
        if not isinstance(listen, (list, tuple)):
            listen = [listen]
        self.host, self.port, self.unix_path = _parse_listen(listen)

    def _wait_ready(self):
        timeout = READY_TIMEOUT_WRAPPED if _wrapped() else READY_TIMEOUT
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self._close()
                raise DaemonError("spf-policyd exited with %s before accepting "
                                  "connections:\n%s" % (code, self.log()))
            if self._accepts():
                return
            if time.monotonic() > deadline:
                self._kill()
                raise DaemonError("spf-policyd accepted no connection within %g s:\n%s"
                                  % (timeout, self.log()))
            time.sleep(POLL_INTERVAL)

    def _accepts(self):
        if self.port is not None:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            addr = (self.host, self.port)
        else:
            family, addr = socket.AF_UNIX, self.unix_path
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.connect(addr)
                return True
            except OSError:
                return False

    def log(self):
        with open(self._log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, config):
        start = len(self.log())
        self._write_config(config)
        self.proc.send_signal(signal.SIGHUP)
        timeout = RELOAD_TIMEOUT_WRAPPED if _wrapped() else RELOAD_TIMEOUT
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log()[start:].splitlines():
                low = line.lower()
                if "reloaded" in low:
                    return
                if "reload" in low and "fail" in low:
                    raise DaemonError("reload failed: " + line)
            if self.proc.poll() is not None:
                raise DaemonError("spf-policyd exited with %s on reload:\n%s"
                                  % (self.proc.returncode, self.log()[start:]))
            time.sleep(POLL_INTERVAL)
        raise DaemonError("no \"reloaded\" log line within %g s:\n%s"
                          % (timeout, self.log()[start:]))

    def stop(self):
        if self not in _live:
            return self.proc.returncode
        code = _stop_process(self.proc, STOP_TIMEOUT)
        self._close()
        self._judge(code)
        return code

    def _judge(self, code):
        text = self.log()
        reasons = []
        if code is None:
            reasons.append("did not exit within %g s of SIGTERM" % STOP_TIMEOUT)
        elif code != 0:
            reasons.append("exit code %d" % code)
        for marker in SANITIZER_MARKERS:
            if marker in text:
                reasons.append("'%s' in its output" % marker)
        for line in text.splitlines():
            if VALGRIND_ERRORS.search(line):
                reasons.append("valgrind: " + line.strip())
        if reasons:
            report = [l for l in text.splitlines()
                      if any(m in l for m in SANITIZER_MARKERS) or l.startswith("==")]
            self.problem = "spf-policyd (%s): %s%s" % (
                self.config_path, "; ".join(reasons),
                ("\n" + "\n".join(report[:40])) if report else "")
            _problems.append(self.problem)

    def claim_problem(self):
        """The problem stop() recorded (or None), which the caller now reports
        itself: Results.finish() will not report it again."""
        if self.problem in _problems:
            _problems.remove(self.problem)
        return self.problem

    def _kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self):
        if self in _live:
            _live.remove(self)
        self._log.close()


class PolicyClient:
    def __init__(self, port=None, path=None, host="127.0.0.1", timeout=REPLY_TIMEOUT):
        if (port is None) == (path is None):
            raise ValueError("PolicyClient needs exactly one of port and path")
        if path is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(path)
        else:
            self.sock = socket.create_connection((host, port), timeout)
        self.timeout = timeout
        self.buf = b""

    def send_raw(self, data):
        self.sock.sendall(data)

    def ask(self, attrs):
        block = []
        for k, v in attrs.items():
            v = v if isinstance(v, bytes) else str(v).encode("utf-8")
            if b"\n" in v or "\n" in k or "=" in k:
                raise ValueError("attribute %r cannot be sent in one line" % k)
            block.append(k.encode("utf-8") + b"=" + v + b"\n")
        self.send_raw(b"".join(block) + b"\n")
        reply = self.read_reply()
        if reply is None:
            raise ConnectionError("connection closed before a reply")
        lines = reply.split("\n")
        if len(lines) != 1 or not lines[0].startswith("action="):
            raise ProtocolError("malformed reply %r" % reply)
        return lines[0][len("action="):]

    def read_reply(self, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while b"\n\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply within %g s (have %r)" % (timeout, self.buf))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(READ_CHUNK)
            except socket.timeout:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                return None
            self.buf += data
        reply, self.buf = self.buf.split(b"\n\n", 1)
        return reply.decode("utf-8", errors="replace")

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def request(**overrides):
    attrs = {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "client_address": "192.0.2.1",
        "client_name": "unknown",
        "helo_name": "mail.example.com",
        "sender": "alice@example.com",
        "recipient": "bob@example.net",
        "queue_id": "",
        "instance": "%x.%x.%d" % (os.getpid(), int(time.time()), next(_instance_ids)),
    }
    attrs.update(overrides)
    return attrs


class Results:
    def __init__(self, suite):
        self.suite = suite
        self.passed = 0
        self.failed = 0

    def check(self, name, condition, detail=""):
        if condition:
            return self.report("ok", name, True)
        return self.report("FAIL", name, False, detail)

    def report(self, word, name, passed, detail=""):
        detail = str(detail)
        if passed:
            self.passed += 1
        else:
            self.failed += 1
        print("%s %s%s" % (word, name, (": " + detail) if detail else ""), flush=True)
        return bool(passed)

    def run(self, fn, name=None):
        name = name or fn.__name__
        try:
            fn()
        except Exception:
            self.check(name, False, traceback.format_exc())

    def finish(self):
        for obj in list(_live):
            if isinstance(obj, Daemon):
                obj.stop()
        while _problems:
            self.check("daemon_clean", False, _problems.pop(0))
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed else 0)


# ---- a small DNS client (stdlib only, shares no code with dnsd) ----

T_A, T_NS, T_CNAME, T_SOA, T_PTR, T_MX, T_TXT, T_AAAA, T_OPT, T_SPF = \
    1, 2, 5, 6, 12, 15, 16, 28, 41, 99
FLAG_QR, FLAG_AA, FLAG_TC, FLAG_RD = 0x8000, 0x0400, 0x0200, 0x0100
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
CLASS_IN, CLASS_CH = 1, 3


def encode_name(name):
    if isinstance(name, str):
        name = name.encode("latin-1")
    if name in (b"", b"."):
        return b"\0"
    return b"".join(bytes([len(l)]) + l for l in name.rstrip(b".").split(b".")) + b"\0"


def build_query(name, qtype, qid=None, flags=FLAG_RD, qclass=CLASS_IN, edns=False):
    qid = random.randrange(65536) if qid is None else qid
    arcount = 1 if edns else 0
    m = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, arcount)
    m += encode_name(name) + struct.pack(">HH", qtype, qclass)
    if edns:
        m += b"\0" + struct.pack(">HHIH", T_OPT, 4096, 0, 0)
    return qid, m


def read_name(m, off):
    """(name as str with '.' between labels, offset after the name in place)."""
    labels, end, jumps = [], None, 0
    while True:
        n = m[off]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | m[off + 1]
            jumps += 1
            if jumps > 64:
                raise ValueError("compression loop")
            continue
        if n == 0:
            off += 1
            break
        labels.append(m[off + 1:off + 1 + n].decode("latin-1"))
        off += 1 + n
    return ".".join(labels) or ".", end if end is not None else off


def parse_rdata(m, rtype, off, rdlen):
    rd = m[off:off + rdlen]
    if rtype == T_A:
        return socket.inet_ntop(socket.AF_INET, rd)
    if rtype == T_AAAA:
        return socket.inet_ntop(socket.AF_INET6, rd)
    if rtype == T_MX:
        return (struct.unpack(">H", rd[:2])[0], read_name(m, off + 2)[0])
    if rtype in (T_PTR, T_CNAME, T_NS):
        return read_name(m, off)[0]
    if rtype in (T_TXT, T_SPF):
        strings, i = [], 0
        while i < len(rd):
            strings.append(rd[i + 1:i + 1 + rd[i]])
            i += 1 + rd[i]
        if i != len(rd):
            raise ValueError("TXT character-strings overrun rdata")
        return strings
    if rtype == T_SOA:
        mname, o = read_name(m, off)
        rname, o = read_name(m, o)
        return (mname, rname) + struct.unpack(">IIIII", m[o:o + 20])
    return rd


class DnsReply:
    def __init__(self, m):
        self.raw = m
        (self.id, self.flags, qd, an, ns, ar) = struct.unpack(">HHHHHH", m[:12])
        self.rcode = self.flags & 0xF
        off = 12
        self.question = []
        for _ in range(qd):
            start = off
            name, off = read_name(m, off)
            qtype, qclass = struct.unpack(">HH", m[off:off + 4])
            off += 4
            self.question.append((name, qtype, qclass, m[start:off - 4]))
        self.answer, self.authority, self.additional = [], [], []
        for section, count in ((self.answer, an), (self.authority, ns),
                               (self.additional, ar)):
            for _ in range(count):
                name, off = read_name(m, off)
                rtype, rclass, ttl, rdlen = struct.unpack(">HHIH", m[off:off + 10])
                off += 10
                section.append((name, rtype, rclass, ttl, parse_rdata(m, rtype, off, rdlen)))
                off += rdlen
        if off != len(m):
            raise ValueError("%d bytes after the last record" % (len(m) - off))

    def data(self, rtype=None):
        return [r[4] for r in self.answer if rtype is None or r[1] == rtype]


def udp_exchange(port, msg, timeout=2.0):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(msg, ("127.0.0.1", port))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None


def udp_query(port, name, qtype, timeout=2.0, **kw):
    qid, msg = build_query(name, qtype, **kw)
    raw = udp_exchange(port, msg, timeout)
    if raw is None:
        return None
    r = DnsReply(raw)
    if r.id != qid:
        raise ValueError("reply id %d, query id %d" % (r.id, qid))
    return r


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def tcp_read(s):
    n = struct.unpack(">H", recv_exact(s, 2))[0]
    return DnsReply(recv_exact(s, n))


def tcp_query(port, name, qtype, **kw):
    qid, msg = build_query(name, qtype, **kw)
    with socket.create_connection(("127.0.0.1", port), 2) as s:
        s.sendall(struct.pack(">H", len(msg)) + msg)
        r = tcp_read(s)
    if r.id != qid:
        raise ValueError("reply id %d, query id %d" % (r.id, qid))
    return r
