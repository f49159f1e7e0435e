"""Starting and stopping the real servers for integration tests.

Everything listens on free loopback ports and lives in a temporary
directory, so tests can run beside a local stack or another test run.
SS_BUILD names the build directory whose daemons are tested (default
"build"); the ASan run points it at "build-asan".
"""
import calendar
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("SS_BUILD", "build"))
PEPPER = "test-pepper-0123456789abcdef"
# Every daemon gets these unless a test sets its own: the mail key that
# seals email jobs (share, guestlink and notify must agree on it) and a
# seal key (share's stored studies; guestlink tests set their own).
MAIL_KEY = "test-mail-key-0123456789abcdef0123456789"
SEAL_KEY = "test-seal-key-0123456789abcdef0123456789"


def free_port():
    """A port free now: nothing holds it between this and the bind of the
    server it is given to, so Redis.start and Daemon.start pick another
    and start again when someone took it meanwhile (BIND_TRIES times)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BIND_TRIES = 5
# The log events of a daemon that could not bind one of its addresses
# (the field that names it); their "error" says "Address already in use"
# (NNG: "Address in use").
BIND_FAILED = {"admin.bind_failed": "addr", "http.bind_failed": "listen",
               "rep.listen_failed": "url", "pub.listen_failed": "url"}


def metric(text, series):
    """The value of one series (name and labels, as exposed) in a
    Prometheus text exposition; fails when it is not there."""
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    raise AssertionError("no %s in the metrics" % series)


def wait_for(pred, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return
        except (OSError, ConnectionError):
            pass
        time.sleep(0.05)
    raise TimeoutError("timed out waiting for " + what)


class Redis:
    """redis-server on a free loopback port; args are more of its options."""

    def __init__(self, args=()):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="ss-redis-")
        self.args = list(args)
        self.proc = None

    def start(self):
        for _ in range(BIND_TRIES):
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", self.dir] + self.args,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(lambda: self.proc.poll() is not None or self.ping(), what="redis")
            if self.proc.poll() is None:
                return self
            # It exited before answering: its port was taken meanwhile.
            self.proc = None
            self.port = free_port()
        raise RuntimeError("redis-server did not start in %d tries" % BIND_TRIES)

    def ping(self):
        return self.cmd("PING") == "+PONG"

    def cmd(self, *args):
        """One command over RESP; returns the first reply line."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            out = "*%d\r\n" % len(args)
            for a in args:
                a = str(a).encode()
                out += "$%d\r\n" % len(a) + a.decode("latin-1") + "\r\n"
            s.sendall(out.encode("latin-1"))
            return s.makefile("rb").readline().decode().rstrip("\r\n")

    def kill(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port


class Daemon:
    """One studyshare daemon with its own admin port and a log file."""

    def __init__(self, name, redis, env=None, args=()):
        self.name = name
        self.admin_port = free_port()
        self.port = free_port()
        self.logdir = tempfile.mkdtemp(prefix="ss-%s-" % name)
        self.log = os.path.join(self.logdir, "stderr.log")
        self.env = dict(os.environ)
        self.env.update({
            "STUDYSHARE_REDIS_ADDR": redis.addr,
            "STUDYSHARE_ADMIN_ADDR": "127.0.0.1:%d" % self.admin_port,
            "STUDYSHARE_LISTEN": "tcp://127.0.0.1:%d" % self.port,
            "STUDYSHARE_PEPPER": PEPPER,
            "STUDYSHARE_MAIL_KEY": MAIL_KEY,
            "STUDYSHARE_SEAL_KEY": SEAL_KEY,
            "STUDYSHARE_LOG_LEVEL": "debug",
        })
        self.env.update(env or {})
        self.args = list(args)
        self.proc = None

    def start(self, ready=True):
        """Starts the daemon; with ready, waits for /readyz.  A daemon
        that exits at start because one of its listening addresses (the
        admin address, STUDYSHARE_LISTEN or a STUDYSHARE_*_LISTEN) was
        taken since free_port() is started again on a new port (self.port
        and self.admin_port follow; a peer or URL already given the old
        one keeps it).  Without ready nothing is waited for or retried."""
        binary = os.path.join(BUILD, "studyshare-" + self.name)
        for _ in range(BIND_TRIES):
            self._logf = open(self.log, "ab")
            since = self._logf.tell()
            self.proc = subprocess.Popen([binary] + self.args, env=self.env,
                                         stdout=self._logf, stderr=self._logf)
            if not ready:
                return self
            wait_for(lambda: self.proc.poll() is not None or
                     self.http("/readyz")[0] == 200, timeout=60,
                     what=self.name + " ready")
            if self.proc.poll() is None:
                return self
            rc = self.proc.returncode
            self.proc = None
            self._logf.close()
            if not self._repick(self._bind_failure(since)):
                raise RuntimeError("%s exited at start (%d): %s"
                                   % (self.name, rc, self._log_from(since)[-2000:]))
        raise RuntimeError("%s: no free port in %d tries" % (self.name, BIND_TRIES))

    def _bind_failure(self, since):
        """The address a start that failed could not bind (from the log
        it wrote from offset since), or None."""
        for line in self._log_from(since).splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            field = BIND_FAILED.get(e.get("event"))
            if field and e.get(field) and "in use" in e.get("error", "in use"):
                return e[field]
        return None

    def _log_from(self, offset):
        with open(self.log, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def _repick(self, addr):
        """Gives the listening setting that holds addr a new port; False
        if no such setting (not a port taken from under us)."""
        if not addr:
            return False
        port = addr.rsplit(":", 1)[-1]
        for key, value in self.env.items():
            if not (key in ("STUDYSHARE_ADMIN_ADDR", "STUDYSHARE_LISTEN") or
                    (key.startswith("STUDYSHARE_") and key.endswith("_LISTEN"))):
                continue
            if value.rsplit(":", 1)[-1] != port:
                continue
            new = free_port()
            self.env[key] = value.rsplit(":", 1)[0] + ":%d" % new
            if key == "STUDYSHARE_ADMIN_ADDR":
                self.admin_port = new
            elif key == "STUDYSHARE_LISTEN":
                self.port = new
            return True
        return False

    def http(self, path):
        url = "http://127.0.0.1:%d%s" % (self.admin_port, path)
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except http.client.HTTPException:
            # Not HTTP: another process took the admin port first (an NNG
            # listener answers with its handshake); this daemon will exit
            # and start() picks another port.
            return 0, ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10):
        """SIGTERM; returns the exit code (None if it had to be killed)."""
        if not self.proc:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.proc = None
        self._logf.close()
        return rc

    def logs(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def log_events(self):
        out = []
        for line in self.logs().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def rss_bytes(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def close(self):
        if self.proc:
            self.stop()
        shutil.rmtree(self.logdir, ignore_errors=True)


def cli(*args, env=None, stdin=None):
    """Runs the studyshare CLI; returns (exit code, stdout, stderr)."""
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([os.path.join(BUILD, "studyshare")] + list(args),
                       env=e, input=stdin, capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr


MONTHS = ["January", "February", "March", "April", "May", "June", "July",
          "August", "September", "October", "November", "December"]


def mail_time(t):
    """A time as the mails show it (runtime/mailq.h ss_mail_time()), from
    unix seconds or an RFC 3339 "...Z" string: "7 December 2026, 16:29 UTC"."""
    if isinstance(t, str):
        t = calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ"))
    g = time.gmtime(t)
    return "%d %s %d, %02d:%02d UTC" % (g.tm_mday, MONTHS[g.tm_mon - 1], g.tm_year,
                                        g.tm_hour, g.tm_min)


def mail_jobs(redis, dead=False, key=MAIL_KEY):
    """The email jobs on notify:jobs (dead: the dead letters on
    notify:dead), opened with the mail key by `studyshare mail list`: a
    list of dicts {"entry", "id", "template", "to", "vars", "created_at"}
    ("error", "tries" for dead letters; "open_error" for a job that does
    not open).  Jobs are sealed in Redis: nothing else can read them."""
    args = ["mail", "list", "--redis", redis.addr] + (["--dead"] if dead else [])
    rc, out, err = cli(*args, env={"STUDYSHARE_MAIL_KEY": key,
                                   "STUDYSHARE_MAIL_KEY_FILE": ""})
    if rc != 0:
        raise RuntimeError("studyshare mail list: %d %s" % (rc, err))
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def mail_push(redis, jobs, unchecked=True, key=MAIL_KEY):
    """Seals and queues jobs (dicts: template, to, vars, id?, created_at?)
    with `studyshare mail push`, as a producer holding key would; returns
    their ids.  unchecked: as given, so tests can queue what notify must
    refuse."""
    args = ["mail", "push", "--redis", redis.addr] + (["--unchecked"] if unchecked else [])
    stdin = "".join(json.dumps(j) + "\n" for j in jobs)
    rc, out, err = cli(*args, env={"STUDYSHARE_MAIL_KEY": key,
                                   "STUDYSHARE_MAIL_KEY_FILE": ""}, stdin=stdin)
    if rc != 0:
        raise RuntimeError("studyshare mail push: %d %s" % (rc, err))
    return out.split()
