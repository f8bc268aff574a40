"""Real redis-server and Sentinel processes for the integration tests, on loopback.

    from redisfix import RedisServer, Sentinel, resp_command

RedisServer(password=None, replica_of=None)
    Starts Debian's redis-server on a port free right now (127.0.0.1), with a unix
    socket, in a temporary directory, without persistence; waits (polling, with a
    deadline) until it answers PING. replica_of: a RedisServer to replicate.
    .port, .address ("127.0.0.1:PORT", as [redis] address takes it), .unix
    .cmd(*args)       one command, the decoded reply (str, int, list, None; an error
                      reply raises RedisError)
    .keys(pattern="*")  every key (SCAN), as str
    .stop()           SIGTERM and wait (SHUTDOWN NOSAVE semantics: no persistence)
    .start()          starts it again on the same port and socket
    .pause(), .resume()  SIGSTOP / SIGCONT: a Redis that accepts but never answers
    .info(section)    INFO section as a dict

Sentinel(master, name="mymaster", quorum=2)
    A sentinel (redis-server --sentinel) monitoring master, with short timeouts
    (down-after 500 ms, failover-timeout 5 s), so a failover completes in seconds.
    .port, .address, .cmd(*args), .master_address()  [host, port] or None, .stop()

resp_command(port, *args, password=None) is the client underneath: a few lines of the
RESP protocol over a socket, no library. Every process started here is killed at exit
through the harness's cleanup, also when the test dies of a signal.
"""

import os
import signal
import socket
import subprocess
import time

import harness

REDIS_SERVER = "redis-server"
READY_TIMEOUT = 10.0
POLL_INTERVAL = 0.01
IO_TIMEOUT = 5.0
SENTINEL_DOWN_AFTER_MS = 500
SENTINEL_FAILOVER_TIMEOUT_MS = 5000


class RedisError(Exception):
    pass


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode("utf-8")
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("redis closed the connection")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("latin-1")
        if kind == b"-":
            raise RedisError(rest.decode("latin-1"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.exact(n).decode("latin-1")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RedisError("unexpected reply %r" % line)


def resp_command(port, *args, password=None, timeout=IO_TIMEOUT):
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.settimeout(timeout)
        r = _Reader(s)
        if password:
            s.sendall(_encode(["AUTH", password]))
            r.reply()
        s.sendall(_encode(args))
        return r.reply()


class _Process:
    """A redis-server process with the harness's lifetime rules."""

    def _spawn(self, argv):
        self._log = open(os.path.join(self.dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        harness._live.append(self)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                self._close()
                raise RedisError("%s exited at start:\n%s" % (argv[0], self.log()))
            try:
                if self.cmd("PING") == "PONG":
                    return
            except (OSError, RedisError):
                pass
            if time.monotonic() > deadline:
                self._kill()
                raise RedisError("%s did not answer within %g s" % (argv[0], READY_TIMEOUT))
            time.sleep(POLL_INTERVAL)

    def log(self):
        with open(os.path.join(self.dir, "stdout.log"), encoding="utf-8",
                  errors="replace") as f:
            return f.read()

    def cmd(self, *args):
        return resp_command(self.port, *args, password=getattr(self, "password", None))

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(harness.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close()

    def _kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self):
        if self in harness._live:
            harness._live.remove(self)
        self._log.close()


class RedisServer(_Process):
    def __init__(self, password=None, replica_of=None):
        self.dir = harness._tmpdir("redis-")
        self.port = harness.free_port()
        self.unix = os.path.join(self.dir, "redis.sock")
        self.password = password
        self.replica_of = replica_of
        self.start()

    def start(self):
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--unixsocket", self.unix, "--dir", self.dir, "--save", "",
                "--appendonly", "no", "--loglevel", "warning"]
        if self.password:
            argv += ["--requirepass", self.password, "--masterauth", self.password]
        if self.replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(self.replica_of.port)]
        self._spawn(argv)

    def keys(self, pattern="*"):
        out, cursor = [], "0"
        while True:
            cursor, batch = self.cmd("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
            out += batch
            if cursor == "0":
                return out

    def info(self, section):
        text = self.cmd("INFO", section)
        out = {}
        for line in text.splitlines():
            if ":" in line and not line.startswith("#"):
                k, _, v = line.partition(":")
                out[k] = v
        return out


class Sentinel(_Process):
    def __init__(self, master, name="mymaster", quorum=2):
        self.dir = harness._tmpdir("sentinel-")
        self.port = harness.free_port()
        self.name = name
        conf = os.path.join(self.dir, "sentinel.conf")
        with open(conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndir %s\nlogfile \"\"\n"
                    "sentinel monitor %s 127.0.0.1 %d %d\n"
                    "sentinel down-after-milliseconds %s %d\n"
                    "sentinel failover-timeout %s %d\n"
                    "sentinel parallel-syncs %s 1\n"
                    % (self.port, self.dir, name, master.port, quorum,
                       name, SENTINEL_DOWN_AFTER_MS, name, SENTINEL_FAILOVER_TIMEOUT_MS,
                       name))
        self._spawn([REDIS_SERVER, conf, "--sentinel"])

    def master_address(self):
        try:
            return self.cmd("SENTINEL", "get-master-addr-by-name", self.name)
        except (OSError, RedisError):
            return None
