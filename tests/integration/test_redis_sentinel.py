"""Redis Sentinel: a master, a replica and three sentinels on loopback; two daemons
find the master through the sentinels and share through it; the master is stopped,
the sentinels promote the replica, and the daemons follow the new master while every
request is answered correctly. Then the old master comes back as a replica and a
manual failover (SENTINEL FAILOVER, the old master stays up and is demoted) moves the
daemons back to it."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Daemon, Dnsd, PolicyClient, Results, request  # noqa: E402
from redisfix import (SENTINEL_FAILOVER_TIMEOUT_MS, RedisError, RedisServer,  # noqa: E402
                      Sentinel)

ZONE = """
*.sentinel.test TXT 300 "v=spf1 ip4:198.51.100.0/24 -all"
"""
WRAPPED = bool(os.environ.get("SPF_POLICYD_WRAPPER", "").strip())
DEADLINE = 90.0 if WRAPPED else 30.0
POLL = 0.02
NAME = "mymaster"
PREFIX = "sen:"

r = Results("redis_sentinel")
dns = Dnsd(ZONE)


def wait_for(what, fn, timeout=DEADLINE):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(POLL)
    raise AssertionError("timed out waiting for " + what)


def ask(d, **kw):
    with PolicyClient(port=d.port) as c:
        return c.ask(request(**kw))


def shared(a, b, server, name):
    """A cold check on A lands in server; B then answers it without DNS."""
    req = dict(client_address="198.51.100.9", helo_name="mail.sentinel.test",
               sender="x@%s.sentinel.test" % name)
    ra = ask(a, **req)
    wait_for("A's verdict on the master",
             lambda: server.cmd("EXISTS", PREFIX + "v:198.51.100.9|%s.sentinel.test" % name))
    for k in server.keys(PREFIX + "d:*"):
        server.cmd("DEL", k)
    dns.reset_queries()
    rb = ask(b, **req)
    return (ra.startswith("PREPEND Received-SPF: pass") and
            rb.startswith("PREPEND Received-SPF: pass") and dns.queries() == [])


def failover():
    master = RedisServer()
    replica = RedisServer(replica_of=master)
    wait_for("the replica in sync",
             lambda: replica.info("replication").get("master_link_status") == "up")
    sentinels = [Sentinel(master, NAME) for _ in range(3)]
    wait_for("the sentinels to know the replica and each other", lambda: all(
        len(s.cmd("SENTINEL", "replicas", NAME)) == 1 and
        len(s.cmd("SENTINEL", "sentinels", NAME)) == 2 for s in sentinels))
    config = {
        "spf": {"check_helo": "yes"},
        "skip": {"clients": ""},
        "dns": {"timeout": "1", "tries": "1"},
        "redis": {"sentinels": ", ".join(s.address for s in sentinels), "master_name": NAME,
                  "prefix": PREFIX, "timeout": "1" if WRAPPED else "0.3",
                  "connect_timeout": "1", "retry_max": "0.3"},
    }
    a, b = Daemon(config, dns=dns), Daemon(config, dns=dns)
    on_master = "redis: connected to %s" % master.address
    wait_for("both daemons on the master", lambda: on_master in a.log() and on_master in b.log())
    r.check("the sentinels named the master and the daemons share through it",
            shared(a, b, master, "before"))

    stop = threading.Event()
    answers, wrong = [0], []

    def requests():
        k = 0
        try:
            with PolicyClient(port=a.port) as c:
                while not stop.is_set():
                    k += 1
                    x = c.ask(request(client_address="198.51.100.10", helo_name="mail.sentinel.test",
                                      sender="u@f%d.sentinel.test" % (k % 50)))
                    answers[0] += 1
                    if not x.startswith("PREPEND Received-SPF: pass ("):
                        wrong.append(x)
        except Exception as e:
            wrong.append(repr(e))

    t = threading.Thread(target=requests)
    t.start()
    try:
        master.stop()
        # An aborted failover is tried again by the sentinels after twice its timeout.
        wait_for("the sentinels to promote the replica",
                 lambda: all(s.master_address() == ["127.0.0.1", str(replica.port)]
                             for s in sentinels),
                 timeout=DEADLINE + 4 * SENTINEL_FAILOVER_TIMEOUT_MS / 1000.0)
        back = "redis: %s answers again" % replica.address
        wait_for("both daemons on the new master", lambda: back in a.log() and back in b.log())
        n = answers[0]
        wait_for("requests after the failover", lambda: answers[0] >= n + 50)
    finally:
        stop.set()
        t.join(DEADLINE)
    r.check("every request during the failover answered correctly (%d)" % answers[0],
            answers[0] > 0 and not wrong, wrong[:5])
    r.check("the promoted replica is a master", replica.info("replication").get("role") == "master")
    r.check("the daemons share through the new master", shared(a, b, replica, "after"))

    # The old master returns as a replica; a manual failover promotes it again while
    # the current master stays up (and is demoted by the sentinels).
    master.replica_of = replica
    master.start()
    wait_for("the old master in sync as a replica",
             lambda: master.info("replication").get("master_link_status") == "up")
    wait_for("the sentinels to know it as a replica", lambda: all(
        any(str(master.port) in x for x in s.cmd("SENTINEL", "replicas", NAME))
        for s in sentinels))
    # A sentinel aborts a failover whose promotion it does not see within
    # failover-timeout (a loaded machine), and keeps the current master: ask again then.
    retry_after = 2 * SENTINEL_FAILOVER_TIMEOUT_MS / 1000.0 + 1
    next_try = [0.0]

    def failed_over():
        if all(s.master_address() == ["127.0.0.1", str(master.port)] for s in sentinels):
            return True
        if time.monotonic() >= next_try[0]:
            try:
                if sentinels[0].cmd("SENTINEL", "FAILOVER", NAME) == "OK":
                    next_try[0] = time.monotonic() + retry_after
            except RedisError:   # e.g. NOGOODSLAVE until the sentinel trusts the replica
                pass
        return False

    try:
        wait_for("the sentinels to name the old master again", failed_over,
                 timeout=DEADLINE + 2 * retry_after)
    except AssertionError as e:
        raise AssertionError("%s; the first sentinel's log:\n%s" % (e, sentinels[0].log()[-3000:]))
    again = "redis: %s answers again" % master.address
    wait_for("both daemons back on the old master", lambda: again in a.log() and again in b.log())
    r.check("the daemons share through it after the manual failover",
            shared(a, b, master, "manual"))
    r.check("the demoted master is a replica",
            wait_for("the demotion", lambda: replica.info("replication").get("role") == "slave"))
    a.stop()
    b.stop()
    for s in sentinels:
        s.stop()
    replica.stop()
    master.stop()


r.run(failover)
dns.stop()
r.finish()
