"""A private Postfix instance for the end-to-end test.

Everything lives in one temporary directory: etc/ (main.cf, master.cf), queue/, data/,
mail/ (maildirs written by virtual(8)) and maillog (postlogd, so nothing depends on a
syslog daemon). The instance listens on 127.0.0.1:<free port> only, delivers nothing
but mail for one local domain, and needs no DNS.

No file under /etc/postfix is read or written beyond what every Postfix command reads
anyway (dynamicmaps.cf, postfix-files from meta_directory): `postfix -c DIR` run by
root accepts a non-default config directory without it being listed in
alternate_config_directories of the default main.cf (that list only guards set-gid
programs such as postdrop and postqueue, which the test never runs), and Debian's
"No configuration" install has no default main.cf at all.
"""

import atexit
import os
import pwd
import grp
import shutil
import socket
import subprocess
import tempfile
import time

POSTFIX = "/usr/sbin/postfix"
DOMAIN = "e2e.test"
# virtual(8) refuses uids below virtual_minimum_uid (100); nobody is the one account
# every Debian system has that owns nothing else.
DELIVERY_USER = "nobody"
DELIVERY_GROUP = "nogroup"
# How long a started instance may take to answer on its port, and a message to reach
# its maildir: generous for a loaded 2-core machine, only ever waited out on failure.
START_TIMEOUT = 20.0
DELIVERY_TIMEOUT = 30.0
POLL_INTERVAL = 0.05


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# chroot is "n" everywhere: a chrooted smtpd would need copies of /etc files inside
# the temporary queue directory. No smtp/relay/local/lmtp client is defined; the
# main.cf transports that could name them point at error(8) instead.
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
mail_owner = postfix
myhostname = mx.{domain}
mydomain = {domain}
myorigin = $myhostname
append_dot_mydomain = no
biff = no

# Loopback only, and no name service: the SMTP client's identity comes from XCLIENT.
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtpd_authorized_xclient_hosts = 127.0.0.1

# Nothing leaves and nothing is delivered locally: only the virtual domain exists.
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
local_transport = error:5.1.1 local delivery is off in the e2e instance
default_transport = error:5.7.1 no relaying from the e2e instance
relay_transport = error:5.7.1 no relaying from the e2e instance
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {dir}/mail
virtual_mailbox_maps = inline:{{ {mailboxes} }}
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}

# No client is trusted by address: every RCPT goes through the policy service.
mynetworks =
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = {restrictions}
"""


class PostfixError(Exception):
    pass


class PostfixInstance:
    """Starts at construction, stops on stop() or at interpreter exit.

    mailboxes: local parts of DOMAIN that exist (each gets a maildir).
    policy_service: when given, RCPT TO is checked by check_policy_service on it,
    "inet:127.0.0.1:PORT" or "unix:private/NAME" (relative to queue_dir, where
    smtpd connects as the postfix user)."""

    def __init__(self, mailboxes, policy_service=None):
        self.dir = tempfile.mkdtemp(prefix="spf-e2e-postfix-")
        # Postfix daemons and virtual(8) run as other users and use absolute paths
        # below this directory, so it must be searchable by them.
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.mailboxes = list(mailboxes)
        self.running = False
        uid = pwd.getpwnam(DELIVERY_USER).pw_uid
        gid = grp.getgrnam(DELIVERY_GROUP).gr_gid
        etc = os.path.join(self.dir, "etc")
        mail = os.path.join(self.dir, "mail")
        for d in (etc, os.path.join(self.dir, "queue"), os.path.join(self.dir, "data"),
                  mail):
            os.mkdir(d)
        os.chown(os.path.join(self.dir, "data"), pwd.getpwnam("postfix").pw_uid, -1)
        os.chown(mail, uid, gid)
        restrictions = "reject_unauth_destination"
        if policy_service is not None:
            restrictions += ", check_policy_service " + policy_service
        # The trailing "/" asks virtual(8) for maildir delivery: one file per message.
        boxes = ", ".join("%s@%s=%s/" % (m, DOMAIN, m) for m in self.mailboxes)
        with open(os.path.join(etc, "main.cf"), "w") as f:
            f.write(MAIN_CF.format(dir=self.dir, domain=DOMAIN, mailboxes=boxes,
                                   uid=uid, gid=gid, restrictions=restrictions))
        with open(os.path.join(etc, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(port=self.port))
        self.etc = etc
        self.queue_dir = os.path.join(self.dir, "queue")
        atexit.register(self.stop)
        self._postfix("start")
        self.running = True
        self._wait_listening()

    def _postfix(self, command):
        p = subprocess.run([POSTFIX, "-c", self.etc, command], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            raise PostfixError("postfix %s failed (exit %d): %s\n%s"
                               % (command, p.returncode, p.stdout.strip(), self.log()))
        return p.stdout

    def _wait_listening(self):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError as e:
                if time.monotonic() > deadline:
                    raise PostfixError("smtpd not listening on port %d: %s\n%s"
                                       % (self.port, e, self.log()))
            time.sleep(POLL_INTERVAL)

    def log(self):
        """The instance's maillog so far ("" before postlogd wrote anything)."""
        try:
            with open(os.path.join(self.dir, "maillog"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def messages(self, mailbox):
        """The raw messages delivered to mailbox so far, oldest first."""
        new = os.path.join(self.dir, "mail", mailbox, "new")
        try:
            names = os.listdir(new)
        except FileNotFoundError:
            return []
        paths = [os.path.join(new, n) for n in names]
        # Maildir names start with the delivery time in seconds, not fine enough to
        # order two deliveries of one second; the file's mtime is.
        paths.sort(key=lambda p: (os.stat(p).st_mtime_ns, p))
        out = []
        for p in paths:
            with open(p, "rb") as f:
                out.append(f.read())
        return out

    def wait_message(self, mailbox, marker):
        """Polls until a message containing marker (bytes) is in mailbox; returns all
        such messages, or raises PostfixError with the maillog when DELIVERY_TIMEOUT
        passes first."""
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while True:
            found = [m for m in self.messages(mailbox) if marker in m]
            if found:
                return found
            if time.monotonic() > deadline:
                raise PostfixError("%s: no message with %r after %.0f s\n%s"
                                   % (mailbox, marker, DELIVERY_TIMEOUT, self.log()))
            time.sleep(POLL_INTERVAL)

    def stop(self, keep=False):
        """Stops the instance (postfix stop waits for the master to exit) and removes
        its directory unless keep is true."""
        if self.running:
            self.running = False
            self._postfix("stop")
        if not keep and os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)
