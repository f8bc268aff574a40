#!/usr/bin/python3
"""End to end: a real Postfix 3.7 asks spf-policyd at RCPT TO, and what it decides
shows up as SMTP replies and in the delivered maildir files.

    dnsd (test zones) <- spf-policyd <- check_policy_service <- Postfix smtpd <- smtplib

The SMTP client claims its address and HELO name with XCLIENT, so the test needs no
network beyond loopback. Every scenario runs twice: with Postfix reaching the daemon
over TCP, and over a unix socket set up as systemd/spf-policyd.service tells a Debian
site to. Must run as root (Postfix's master and that daemon start as root).
"""

import email
import email.policy
import os
import pwd
import re
import smtplib
import stat
import sys
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)

from harness import Dnsd, Daemon, Results  # noqa: E402
from postfix_instance import DOMAIN, PostfixInstance  # noqa: E402

CLIENT_IP = "192.0.2.10"
CLIENT_NAME = "out.pass.example"
HELO_PASS = "mail.pass.example"
HELO_FAIL = "mail.fail.example"
RECEIVER = "mx." + DOMAIN
# What the unix socket run drops privileges to, as [server] user does in production.
UNPRIVILEGED_USER = "nobody"
SMTP_TIMEOUT = 30

# fail.example has an exp= whose macros the daemon must expand; the HELO name
# mail.fail.example has none, so its rejection carries [spf] default_explanation.
ZONE = """\
pass.example          TXT 300 "v=spf1 ip4:192.0.2.10 -all"
mail.pass.example     TXT 300 "v=spf1 ip4:192.0.2.10 -all"
fail.example          TXT 300 "v=spf1 ip4:198.51.100.1 exp=exp.fail.example -all"
exp.fail.example      TXT 300 "%{i} may not send mail for %{d}"
mail.fail.example     TXT 300 "v=spf1 -all"
"""

# Postfix puts its own context before the text of a policy reject.
REJECT_PREFIX = "5.7.23 <bob@%s>: Recipient address rejected: " % DOMAIN
FAIL_EXPLANATION = "192.0.2.10 may not send mail for fail.example"
HELO_EXPLANATION = ("192.0.2.10 is not one of mail.fail.example's designated "
                    "mail servers")
FORGED = ("pass (forged by the client) client-ip=203.0.113.66; "
          "envelope-from=\"alice@pass.example\"; helo=forged.example; "
          "receiver=forged.example; identity=mailfrom")


def received_spf_re(ip, sender, helo):
    """The header value RFC 7208 9.1 and header.h prescribe for a mailfrom pass; the
    comment is the engine's free text."""
    return re.compile(r"^pass \([^\r\n]*\) client-ip=%s; envelope-from=\"%s\"; "
                      r"helo=%s; receiver=%s; identity=mailfrom$"
                      % (re.escape(ip), re.escape(sender), re.escape(helo),
                         re.escape(RECEIVER)))


class Session:
    """One SMTP session whose client address and HELO name are set by XCLIENT."""

    def __init__(self, port, helo, ip=CLIENT_IP, name=CLIENT_NAME):
        self.smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="localhost",
                                 timeout=SMTP_TIMEOUT)
        code, text = self.smtp.ehlo()
        if code != 250 or not self.smtp.has_extn("xclient"):
            raise AssertionError("EHLO: %d %r, no XCLIENT offered" % (code, text))
        code, text = self.smtp.docmd("XCLIENT", "ADDR=%s NAME=%s HELO=%s"
                                     % (ip, name, helo))
        # XCLIENT restarts the session: a new greeting, and EHLO must follow.
        if code != 220:
            raise AssertionError("XCLIENT: %d %r" % (code, text))
        code, text = self.smtp.ehlo(helo)
        if code != 250:
            raise AssertionError("EHLO after XCLIENT: %d %r" % (code, text))

    def mail(self, sender):
        code, text = self.smtp.mail(sender)
        if code != 250:
            raise AssertionError("MAIL FROM:<%s>: %d %r" % (sender, code, text))

    def rcpt(self, rcpt):
        code, text = self.smtp.rcpt(rcpt)
        return code, text.decode("utf-8", "replace")

    def data(self, message):
        code, text = self.smtp.data(message)
        if code != 250:
            raise AssertionError("DATA: %d %r" % (code, text))

    def close(self):
        try:
            self.smtp.quit()
        except smtplib.SMTPException:
            self.smtp.close()


def new_message(sender, rcpts, extra_headers=""):
    """A message whose Message-ID is a unique marker to find the delivered copy."""
    marker = "<%s@e2e.client>" % uuid.uuid4().hex
    text = ("%sFrom: %s\r\nTo: %s\r\nSubject: e2e\r\nMessage-ID: %s\r\n\r\nbody\r\n"
            % (extra_headers, sender, ", ".join(rcpts), marker))
    return text.encode(), marker.encode()


def headers(raw):
    """(name, value) of every header of a delivered message, top first."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [(k.lower(), " ".join(v.split())) for k, v in msg.items()]


def spf_headers(raw):
    return [(i, v) for i, (k, v) in enumerate(headers(raw)) if k == "received-spf"]


def first_header(raw, name):
    """Index of the first header called name (lower case), -1 if there is none. Our
    client's first header is From:; Postfix's own Received: comes above it."""
    for i, (k, _) in enumerate(headers(raw)):
        if k == name:
            return i
    return -1


def check_on_top(r, name, raw, idx):
    """The Received-SPF at header idx was added by this hop: above the Received:
    that Postfix's smtpd writes, and so above everything the client sent."""
    rcvd, client = first_header(raw, "received"), first_header(raw, "from")
    r.check(name + "_above_received", 0 <= idx < rcvd,
            "Received-SPF at header %d, Received: at %d" % (idx, rcvd))
    r.check(name + "_above_message", 0 <= idx < client,
            "Received-SPF at header %d, client's From: at %d" % (idx, client))


def rcpt_reject(r, name, port, helo, sender, explanation):
    s = Session(port, helo)
    try:
        s.mail(sender)
        code, text = s.rcpt("bob@" + DOMAIN)
    finally:
        s.close()
    r.check(name + "_code", code == 550, "got %d %s" % (code, text))
    r.check(name + "_text", text == REJECT_PREFIX + explanation,
            "got %r, want %r" % (text, REJECT_PREFIX + explanation))


def deliver(pf, helo, sender, rcpts, extra_headers=""):
    """Sends one message; returns ({rcpt: SMTP reply}, {mailbox: [copies]}), the
    copies only when every RCPT was accepted."""
    raw, marker = new_message(sender or "mailer-daemon@pass.example", rcpts,
                              extra_headers)
    s = Session(pf.port, helo)
    try:
        s.mail(sender)
        replies = {rc: s.rcpt(rc) for rc in rcpts}
        if any(code != 250 for code, _ in replies.values()):
            return replies, {}
        s.data(raw)
    finally:
        s.close()
    copies = {rc: pf.wait_message(rc.split("@")[0], marker) for rc in rcpts}
    return replies, copies


def check_accepted(r, name, replies):
    bad = {rc: v for rc, v in replies.items() if v[0] != 250}
    r.check(name + "_rcpt_accepted", not bad, "rejected: %r" % bad)
    return not bad


def scenario_fail_rejected(r, pf):
    """(a) MAIL FROM fails SPF for the client: 550 5.7.23 with the exp= text."""
    rcpt_reject(r, "mailfrom_fail_rejected", pf.port, HELO_PASS, "alice@fail.example",
                FAIL_EXPLANATION)


def scenario_pass_delivered(r, pf):
    """(b) MAIL FROM passes: delivered with exactly one Received-SPF, ours, on top."""
    name = "mailfrom_pass_delivered"
    replies, copies = deliver(pf, HELO_PASS, "alice@pass.example", ["bob@" + DOMAIN])
    if not check_accepted(r, name, replies):
        return
    (raw,) = copies["bob@" + DOMAIN]
    spf = spf_headers(raw)
    r.check(name + "_one_header", len(spf) == 1, "Received-SPF headers: %r" % spf)
    if not spf:
        return
    idx, value = spf[0]
    want = received_spf_re(CLIENT_IP, "alice@pass.example", HELO_PASS)
    r.check(name + "_header_text", want.match(value) is not None,
            "got %r, want %s" % (value, want.pattern))
    check_on_top(r, name + "_header", raw, idx)


def scenario_two_recipients(r, pf):
    """(c) One message, two recipients: one evaluation, one header in each copy."""
    name = "two_rcpts"
    rcpts = ["bob@" + DOMAIN, "carol@" + DOMAIN]
    replies, copies = deliver(pf, HELO_PASS, "alice@pass.example", rcpts)
    if not check_accepted(r, name, replies):
        return
    want = received_spf_re(CLIENT_IP, "alice@pass.example", HELO_PASS)
    for rc in rcpts:
        box = rc.split("@")[0]
        r.check("%s_%s_one_copy" % (name, box), len(copies[rc]) == 1,
                "%d copies" % len(copies[rc]))
        spf = spf_headers(copies[rc][0])
        r.check("%s_%s_one_header" % (name, box), len(spf) == 1,
                "Received-SPF headers: %r" % spf)
        r.check("%s_%s_header_text" % (name, box),
                len(spf) == 1 and want.match(spf[0][1]) is not None,
                "got %r" % spf)


def scenario_null_sender(r, pf):
    """(d) MAIL FROM:<> is judged on the HELO name alone (RFC 7208 2.4)."""
    rcpt_reject(r, "null_sender_helo_fail_rejected", pf.port, HELO_FAIL, "",
                HELO_EXPLANATION)
    name = "null_sender_helo_pass_delivered"
    replies, copies = deliver(pf, HELO_PASS, "", ["bob@" + DOMAIN])
    if not check_accepted(r, name, replies):
        return
    (raw,) = copies["bob@" + DOMAIN]
    spf = spf_headers(raw)
    r.check(name + "_one_header", len(spf) == 1, "Received-SPF headers: %r" % spf)
    # RFC 7208 2.4: with a null reverse-path the MAIL FROM identity is
    # postmaster@<HELO name>.
    value = spf[0][1] if spf else ""
    want = received_spf_re(CLIENT_IP, "postmaster@" + HELO_PASS, HELO_PASS)
    r.check(name + "_header_text", want.match(value) is not None,
            "got %r, want %s" % (value, want.pattern))


def scenario_forged_header(r, pf):
    """(e) A client's own "Received-SPF: pass" stays below ours."""
    name = "forged_header"
    replies, copies = deliver(pf, HELO_PASS, "alice@pass.example", ["bob@" + DOMAIN],
                              extra_headers="Received-SPF: %s\r\n" % FORGED)
    if not check_accepted(r, name, replies):
        return
    (raw,) = copies["bob@" + DOMAIN]
    spf = spf_headers(raw)
    values = [v for _, v in spf]
    want = received_spf_re(CLIENT_IP, "alice@pass.example", HELO_PASS)
    r.check(name + "_two_headers", len(spf) == 2, "Received-SPF headers: %r" % spf)
    r.check(name + "_ours_first", len(spf) == 2 and want.match(values[0]) is not None
            and values[1] == FORGED, "got %r" % values)
    if spf:
        check_on_top(r, name + "_ours", raw, spf[0][0])


SCENARIOS = [scenario_fail_rejected, scenario_pass_delivered, scenario_two_recipients,
             scenario_null_sender, scenario_forged_header]


class Tally:
    """Results that also remember whether anything failed, to decide whether the
    Postfix and daemon logs are worth printing; prefix tells the two policy
    transports apart in the check names."""

    def __init__(self, suite):
        self.results = Results(suite)
        self.failed = 0
        self.prefix = ""

    def check(self, name, condition, detail=""):
        if not condition:
            self.failed += 1
        self.results.check(self.prefix + name, condition, detail)

    def finish(self):
        self.results.finish()


def run_scenarios(r, pf):
    """Runs every scenario through pf; records everything in r."""
    for scenario in SCENARIOS:
        try:
            scenario(r, pf)
        except Exception:
            r.check(scenario.__name__, False, traceback.format_exc())
    log = pf.log()
    r.check("postfix_policy_conversations_clean",
            "problem talking to server" not in log and "malformed response" not in log,
            "\n".join(line for line in log.splitlines() if "warning" in line))


def check_unix_recipe(r, daemon, path):
    """What systemd/spf-policyd.service tells a Debian site to configure: the socket
    handed to postfix with mode 0660, and the daemon no longer root."""
    st = os.stat(path)
    owner, mode = pwd.getpwuid(st.st_uid).pw_name, stat.S_IMODE(st.st_mode)
    r.check("socket_owner_mode", owner == "postfix" and mode == 0o660,
            "owner %s, mode %o" % (owner, mode))
    want = str(pwd.getpwnam(UNPRIVILEGED_USER).pw_uid)
    # The socket accepts from listen() on, a moment before the daemon drops to the
    # user: poll for the change with a deadline.
    deadline = time.monotonic() + 10
    while True:
        with open("/proc/%d/status" % daemon.pid) as f:
            uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        if uids == [want] * 4 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    r.check("daemon_dropped_to_user", uids == [want] * 4,
            "real, effective, saved, fs uid: %s, want %s" % (uids, want))


class Run:
    """One daemon and one Postfix instance, stopped (with their logs printed if
    anything failed meanwhile) whatever happens."""

    def __init__(self, r):
        self.r = r
        self.failed = r.failed
        self.daemon = self.pf = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        r = self.r
        if exc[0] is not None:
            r.check("setup", False, "".join(traceback.format_exception(*exc)))
        if self.pf is not None:
            if r.failed > self.failed:
                sys.stdout.write("--- postfix maillog ---\n%s" % self.pf.log())
            try:
                self.pf.stop()
            except Exception:
                r.check("postfix_stop", False, traceback.format_exc())
        if self.daemon is not None:
            if r.failed > self.failed:
                sys.stdout.write("--- spf-policyd log ---\n%s" % self.daemon.log())
            code = self.daemon.stop()
            r.check("daemon_clean_exit", code == 0, "exit code %r" % code)
        return True


def main():
    r = Tally("e2e-postfix")
    if os.geteuid() != 0:
        r.check("running_as_root", False, "Postfix's master must be started by root")
        r.finish()
        return
    dnsd = None
    # [skip] clients is emptied so that no address is exempt; receiver is fixed so the
    # header can be compared exactly.
    config = {"skip": {"clients": ""}, "spf": {"receiver": RECEIVER}}
    try:
        dnsd = Dnsd(ZONE)

        r.prefix = "inet_"
        with Run(r) as run:
            run.daemon = Daemon(config=config, dns=dnsd)
            service = "inet:127.0.0.1:%d" % run.daemon.port
            run.pf = PostfixInstance(["bob", "carol"], policy_service=service)
            run_scenarios(r, run.pf)

        # The unix socket as a chrooted Debian smtpd needs it: inside the queue
        # directory, in private/ (postfix's, mode 0700), bound by a daemon started as
        # root that then drops to an unprivileged user.
        r.prefix = "unix_"
        with Run(r) as run:
            run.pf = PostfixInstance(["bob", "carol"],
                                     policy_service="unix:private/spf-policyd")
            path = os.path.join(run.pf.queue_dir, "private", "spf-policyd")
            unix = {"server": {"listen": "unix:" + path, "socket_owner": "postfix",
                               "socket_mode": "0660", "user": UNPRIVILEGED_USER}}
            run.daemon = Daemon(config=dict(config, **unix), dns=dnsd)
            check_unix_recipe(r, run.daemon, path)
            run_scenarios(r, run.pf)
    except Exception:
        r.check("setup", False, traceback.format_exc())
    finally:
        r.prefix = ""
        if dnsd is not None:
            dnsd.stop()
    r.finish()


if __name__ == "__main__":
    main()
