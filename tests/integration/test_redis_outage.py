"""Redis trouble under load: two daemons sharing one Redis answer every request of a
load run correctly while Redis is stopped in the middle of it and started again, and
while it hangs (SIGSTOP); each outage is logged once per daemon; once Redis is back,
sharing resumes without restarting the daemons."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Daemon, Dnsd, PolicyClient, Results, request  # noqa: E402
from redisfix import RedisServer  # noqa: E402

ZONE = """
*.load.test   TXT 300 "v=spf1 ip4:198.51.100.0/24 -all"
fresh.test    TXT 300 "v=spf1 include:inc.fresh.test -all"
inc.fresh.test TXT 300 "v=spf1 ip4:198.51.100.0/24 -all"
"""
WRAPPED = bool(os.environ.get("SPF_POLICYD_WRAPPER", "").strip())
REDIS_TIMEOUT = 1.0 if WRAPPED else 0.2
CONNECT_TIMEOUT = 1.0
THREADS = 6
DEADLINE = 60.0 if WRAPPED else 20.0
POLL = 0.02
OUTAGE_LINE = "answering from memory and DNS until it is back"
BACK_LINE = "sharing resumes"

r = Results("redis_outage")
dns = Dnsd(ZONE)
redis = RedisServer()


def config():
    return {
        "spf": {"check_helo": "yes", "request_timeout": "5"},
        "skip": {"clients": ""},
        "dns": {"timeout": "1", "tries": "1"},
        "redis": {"address": redis.address, "prefix": "out:", "timeout": str(REDIS_TIMEOUT),
                  "connect_timeout": str(CONNECT_TIMEOUT), "retry_max": "0.3"},
        "reputation": {"flush_interval": "0.05"},
    }


def wait_for(what, fn, timeout=DEADLINE):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(POLL)
    raise AssertionError("timed out waiting for " + what)


class Load:
    """THREADS connections, half to each daemon, each asking in a loop until stopped:
    mostly senders seen before (memory hits), every third a new domain (a cold check:
    Redis, then DNS), and every other client outside the SPF record (a fail, 550).
    Every reply is checked against what it must be."""

    def __init__(self, daemons, tag):
        self.daemons = daemons
        self.tag = tag
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answered = 0
        self.wrong = []
        self.errors = []
        self.max_latency = 0.0
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(THREADS)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(DEADLINE)

    def run(self, n):
        d = self.daemons[n % len(self.daemons)]
        k = 0
        try:
            with PolicyClient(port=d.port) as c:
                while not self.stop.is_set():
                    k += 1
                    domain = "%s-%d-%d.load.test" % (self.tag, n, k if k % 3 == 0 else k % 5)
                    good = k % 2 == 0
                    ip = "198.51.100.%d" % (n + 1) if good else "192.0.2.%d" % (n + 1)
                    t0 = time.monotonic()
                    reply = c.ask(request(client_address=ip, helo_name="mail.load.test",
                                          sender="u@" + domain))
                    dt = time.monotonic() - t0
                    ok = reply.startswith("PREPEND Received-SPF: pass (") if good \
                        else reply.startswith("550 5.7.23 ")
                    with self.lock:
                        self.answered += 1
                        self.max_latency = max(self.max_latency, dt)
                        if not ok:
                            self.wrong.append((ip, domain, reply))
        except Exception as e:  # a failed request is what this test is about
            with self.lock:
                self.errors.append(repr(e))

    def report(self, what):
        r.check("%s: requests were answered (%d)" % (what, self.answered), self.answered > 0)
        r.check("%s: no failed request" % what, not self.errors, self.errors[:5])
        r.check("%s: no wrong answer" % what, not self.wrong, self.wrong[:5])


def connected(d):
    return "redis: connected to" in d.log()


def sharing_works(a, b, name):
    """A cold check on A, then the same check on B answered without DNS."""
    req = dict(client_address="198.51.100.50", helo_name="mail.load.test",
               sender="x@%s.load.test" % name)
    with PolicyClient(port=a.port) as c:
        ra = c.ask(request(**req))
    wait_for("A's verdict in Redis",
             lambda: redis.cmd("EXISTS", "out:v:198.51.100.50|%s.load.test" % name))
    for k in redis.keys("out:d:*"):
        redis.cmd("DEL", k)
    dns.reset_queries()
    with PolicyClient(port=b.port) as c:
        rb = c.ask(request(**req))
    return ra.startswith("PREPEND Received-SPF: pass") and rb.startswith(
        "PREPEND Received-SPF: pass") and dns.queries() == []


def stopped_and_restarted():
    a, b = Daemon(config(), dns=dns), Daemon(config(), dns=dns)
    wait_for("both daemons connected", lambda: connected(a) and connected(b))
    r.check("sharing works before the outage", sharing_works(a, b, "before"))

    load = Load([a, b], "stop")
    load.start()
    wait_for("some load", lambda: load.answered >= 200)
    redis.stop()
    wait_for("both daemons to notice", lambda: OUTAGE_LINE in a.log() and OUTAGE_LINE in b.log())
    n = load.answered
    wait_for("load without Redis", lambda: load.answered >= n + 300)
    redis.start()
    wait_for("both daemons back on Redis", lambda: BACK_LINE in a.log() and BACK_LINE in b.log())
    n = load.answered
    wait_for("load with Redis again", lambda: load.answered >= n + 200)
    load.finish()
    load.report("Redis stopped and started during the load")
    for d, name in ((a, "A"), (b, "B")):
        log = d.log()
        r.check("%s logged the outage once, and its end once" % name,
                log.count(OUTAGE_LINE) == 1 and log.count(BACK_LINE) == 1,
                [l for l in log.splitlines() if "redis:" in l])
    r.check("sharing resumes without restarting the daemons", sharing_works(a, b, "after"))
    a.stop()
    b.stop()


def hung():
    a, b = Daemon(config(), dns=dns), Daemon(config(), dns=dns)
    wait_for("both daemons connected", lambda: connected(a) and connected(b))
    load = Load([a, b], "hang")
    load.start()
    wait_for("some load", lambda: load.answered >= 200)
    limit = 3 * REDIS_TIMEOUT + (5.0 if WRAPPED else 1.0)
    redis.pause()
    t0 = time.monotonic()
    # Hung for longer than connect_timeout past a deadline: the daemons give the
    # connection up, and keep trying while it does not answer.
    try:
        wait_for("both daemons to give up the hung Redis",
                 lambda: OUTAGE_LINE in a.log() and OUTAGE_LINE in b.log())
        n = load.answered
        # Reconnection attempts into the hung Redis time out too, meanwhile.
        wait_for("load while Redis hangs", lambda: load.answered >= n + 300 and
                 time.monotonic() - t0 > 2 * limit)
        hung_for = time.monotonic() - t0
    finally:
        redis.resume()
    wait_for("both daemons back on Redis", lambda: BACK_LINE in a.log() and BACK_LINE in b.log())
    load.finish()
    load.report("Redis hung during the load")
    # A request waits for Redis at most timeout per command, and makes at most three
    # (its MGET, then the HELO's and the sender's TXT): far below a hang of seconds.
    r.check("no request waited for the hung Redis (slowest %.3f s, Redis hung %.1f s)"
            % (load.max_latency, hung_for), load.max_latency < limit and hung_for > limit,
            load.max_latency)
    a.stop()
    b.stop()


def down_at_start():
    """Daemons started while Redis is down answer at once, and start sharing when it
    comes up."""
    redis.stop()
    a, b = Daemon(config(), dns=dns), Daemon(config(), dns=dns)
    with PolicyClient(port=a.port) as c:
        x = c.ask(request(client_address="198.51.100.60", helo_name="mail.load.test",
                          sender="y@down.load.test"))
    r.check("answered without Redis", x.startswith("PREPEND Received-SPF: pass ("), x)
    wait_for("the outage logged", lambda: OUTAGE_LINE in a.log() and OUTAGE_LINE in b.log())
    redis.start()
    wait_for("both daemons connected at last", lambda: "sharing starts" in a.log() and
             "sharing starts" in b.log())
    r.check("the outage was logged once", a.log().count(OUTAGE_LINE) == 1, a.log()[-2000:])
    r.check("they share once Redis is up", sharing_works(a, b, "late"))
    a.stop()
    b.stop()


r.run(down_at_start)
r.run(stopped_and_restarted)
r.run(hung)
redis.stop()
dns.stop()
r.finish()
