"""Integration tests of the notify daemon: real redis-server, real
studyshare-notify processes and a real SMTP server on loopback
(smtp_catcher.py on Debian's aiosmtpd, run with /usr/bin/python3).

Settings are shortened for the tests (SMTP timeout 2 s, claim-idle 3 s,
retries after 0.2 .. 1 s) so the whole file runs in well under a minute.
"""
import asyncio
import base64
import email
import email.policy
import email.utils
import glob
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import mp
from stack import (Daemon, Redis, ROOT, BUILD, MAIL_KEY, free_port, mail_jobs, mail_push,
                   wait_for)

CATCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp_catcher.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # the one with Debian's aiosmtpd
SANITIZED = os.environ.get("SS_SANITIZED") == "1"
SLOW = 3 if SANITIZED else 1
FROM = "studyshare <noreply@studyshare.test>"
# A job's keys share the Redis Cluster slot of the stream notify:jobs.
JOB_KEY = "notify:{notify:jobs}:job:%s"  # the delivery sending it, then "sent"
TRIES_KEY = "notify:{notify:jobs}:tries:%s"

TEMPLATE_VARS = {
    "share.invitation": {"sharer_name": "Dr. Zoë Müller", "organisation": "St. Elsewhere",
                         "message": "Please review <urgent> & reply", "register_url":
                         "https://studyshare.test/register?t=abc&x=1",
                         "study_description": "CT head",
                         "expires_at": "29 December 2026, 10:00 UTC"},
    "share.notice": {"sharer_name": "Dr. Zoë Müller",
                     "message": "see \"series 3\"", "study_description": "MR knee",
                     "app_url": "https://studyshare.test"},
    "guestlink.recipient": {"sharer_name": "Dr. Bob", "url": "https://studyshare.test/g/tok",
                            "message": "line one\nline two", "expires_at": "1 December 2026, 12:00 UTC",
                            "sharer_org": "North Clinic", "max_uses": "7", "dob_password": "1"},
    "guestlink.viewed": {"link_id": "gl-42", "time": "29 November 2026, 10:00 UTC",
                         "addr": "203.0.113.9", "user_agent": "Mozilla/5.0 <x>",
                         "recipient": "gp@outside.example", "study_description": "CT HEAD",
                         "quiet_until": "29 November 2026, 11:00 UTC", "held": "17",
                         "held_since": "29 November 2026, 09:00 UTC"},
    "guestlink.locked": {"link_id": "gl-43", "time": "29 November 2026, 10:05 UTC",
                         "addr": "203.0.113.10", "attempts": "5",
                         "study_description": "MR KNEE"},
    "upload.locked": {"link_id": "ul-8", "time": "29 November 2026, 10:10 UTC",
                      "addr": "203.0.113.11", "attempts": "3"},
    "upload.received": {"link_id": "ul-7", "time": "29 November 2026, 11:00 UTC",
                        "studies": "2", "files": "314", "worklist_name": "CT suite"},
    "upload.request": {"sharer_name": "Dr. Bob", "url": "https://studyshare.test/u/tok",
                       "message": "the CT <from May>", "expires_at": "1 December 2026, 12:00 UTC",
                       "worklist_name": "CT suite", "sharer_org": "North Clinic"},
}
# Their subjects: a creator's names the study or the worklist (a section
# in the subject), not the link's id, when the job has it.
SUBJECTS = {
    "share.invitation": "Dr. Zoë Müller shared an imaging study with you",
    "share.notice": "Dr. Zoë Müller shared an imaging study with you",
    "guestlink.recipient": "Dr. Bob sent you a link to imaging studies",
    "guestlink.viewed": "Your guest link for CT HEAD was opened",
    "guestlink.locked": "Your guest link for MR KNEE was locked",
    "upload.locked": "Your upload link ul-8 was locked",
    "upload.received": "Studies received in CT suite",
    "upload.request": "Dr. Bob asks you to send imaging studies to CT suite",
}


# ---- a binary-safe RESP client -----------------------------------------------

class RedisClient:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.s.makefile("rb")

    def close(self):
        self.f.close()
        self.s.close()

    @staticmethod
    def _enc(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ValueError("bad RESP: %r" % line)

    def cmd(self, *args):
        self.s.sendall(self._enc(args))
        r = self._read()
        if isinstance(r, RuntimeError):
            raise r
        return r

    def pipeline(self, cmds):
        self.s.sendall(b"".join(self._enc(c) for c in cmds))
        return [self._read() for _ in cmds]


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def job(template, to, vars_, jid=None):
    """A mail as a producer makes it; mail_push() seals and queues it."""
    jid = jid or uuid.uuid4().hex
    return jid, {"id": jid, "template": template, "to": to, "vars": vars_,
                 "created_at": int(time.time())}


# ---- the SMTP catcher --------------------------------------------------------

class Catcher:
    """smtp_catcher.py as a child process; stoppable and restartable on the
    same port."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="ss-mail-")
        self.log = os.path.join(self.dir, ".log")
        self.proc = None

    def start(self, mode="accept", delay=0.0):
        ready = self._log().count("ready ") if os.path.exists(self.log) else 0
        self._out = open(self.log, "a")
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, CATCHER, "--port", str(self.port), "--dir", self.dir,
             "--mode", mode, "--delay", str(delay)],
            stdout=self._out, stderr=subprocess.STDOUT)
        wait_for(lambda: self._log().count("ready ") > ready, timeout=15,
                 what="smtp catcher")
        return self

    def _log(self):
        with open(self.log) as f:
            return f.read()

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
            self.proc = None
            self._out.close()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def sessions(self):
        return self._log().count("session\n")

    def refused(self, code):
        return self._log().count("refused %s\n" % code)

    def files(self):
        return sorted(glob.glob(os.path.join(self.dir, "*.eml")))

    def messages(self, to=None):
        out = []
        for path in self.files():
            with open(path, "rb") as f:
                msg = email.message_from_binary_file(f, policy=email.policy.default)
            if to is None or msg["To"] == to:
                out.append(msg)
        return out

    def message_ids(self):
        """Message-IDs of every mail, read fast (the 1,000-mail test)."""
        ids = []
        for path in self.files():
            with open(path, "rb") as f:
                m = re.search(rb"^Message-ID: <([0-9a-f]{32})@studyshare>\r?$",
                              f.read(4096), re.M)
            ids.append(m.group(1).decode() if m else None)
        return ids


def notify(redis, catcher, **settings):
    env = {
        "STUDYSHARE_SMTP_URL": "smtp://127.0.0.1:%d" % catcher.port,
        "STUDYSHARE_SMTP_STARTTLS": "none",
        "STUDYSHARE_FROM": FROM,
        "STUDYSHARE_SMTP_TIMEOUT": "2s",
        "STUDYSHARE_CLAIM_IDLE": "3s",
        "STUDYSHARE_RETRY_MIN": "200ms",
        "STUDYSHARE_RETRY_MAX": "1s",
        "STUDYSHARE_BLOCK": "500ms",
        "STUDYSHARE_LOG_LEVEL": "info",
    }
    for k, v in settings.items():
        env["STUDYSHARE_" + k.upper()] = str(v)
    return Daemon("notify", redis, env=env)


def metric(daemon, name):
    status, text = daemon.http("/metrics")
    assert status == 200
    m = re.search(r"^%s(?:\{\})? (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


class NotifyCase(unittest.TestCase):
    catcher_mode = "accept"

    @classmethod
    def setUpClass(cls):
        cls.redis = Redis().start()
        cls.r = RedisClient(cls.redis.port)
        cls.catcher = Catcher()
        if cls.catcher_mode:
            cls.catcher.start(cls.catcher_mode)
        cls.daemons = []

    @classmethod
    def tearDownClass(cls):
        rcs = [(d, d.stop()) for d in cls.daemons if d.alive()]
        for d in cls.daemons:
            d.close()
        cls.catcher.close()
        cls.r.close()
        cls.redis.close()
        for d, rc in rcs:
            assert rc == 0, "notify did not exit 0 on SIGTERM: %r" % rc

    @classmethod
    def start_notify(cls, **settings):
        d = notify(cls.redis, cls.catcher, **settings)
        cls.daemons.append(d)
        return d.start()

    def push(self, template, to, vars_, jid=None):
        jid, m = job(template, to, vars_, jid)
        mail_push(self.redis, [m])
        return jid

    def dead(self):
        """The dead-letter stream as a list of dicts (bytes values)."""
        out = []
        for _, fields in self.r.cmd("XRANGE", "notify:dead", "-", "+"):
            out.append({fields[i].decode(): fields[i + 1]
                        for i in range(0, len(fields), 2)})
        return out

    def pending(self):
        return self.r.cmd("XPENDING", "notify:jobs", "notify")[0]

    def wait_mails(self, to, n, timeout=15):
        wait_for(lambda: len(self.catcher.messages(to)) >= n,
                 timeout=timeout * SLOW, what="%d mail(s) to %s" % (n, to))
        return self.catcher.messages(to)

    def wait_dead(self, jid, timeout=15):
        def found():
            return [d for d in self.dead() if d["id"].decode() == jid]
        wait_for(lambda: found(), timeout=timeout * SLOW, what="dead letter " + jid)
        return found()[0]

    def wait_settled(self, timeout=15):
        """Nothing pending and nothing left in the stream."""
        wait_for(lambda: self.pending() == 0 and self.r.cmd("XLEN", "notify:jobs") == 0,
                 timeout=timeout * SLOW, what="queue drained")


# ---- sending -------------------------------------------------------------------

class Sending(NotifyCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Queued before any worker ever ran: the group starts at 0.
        cls.early = uuid.uuid4().hex
        _, m = job("upload.received", "early@example.org",
                   TEMPLATE_VARS["upload.received"], cls.early)
        mail_push(cls.redis, [m])
        cls.worker = cls.start_notify(concurrency=4)

    def test_every_template_sends_and_parses(self):
        self.assertEqual(set(SUBJECTS), set(TEMPLATE_VARS))
        sent = {}
        for tpl, vars_ in TEMPLATE_VARS.items():
            to = "%s@example.org" % tpl.replace(".", "-")
            sent[tpl] = (self.push(tpl, to, vars_), to)
        before = time.time()
        for tpl, (jid, to) in sent.items():
            vars_ = TEMPLATE_VARS[tpl]
            msgs = self.wait_mails(to, 1)
            self.assertEqual(len(msgs), 1)
            m = msgs[0]
            self.assertEqual(m["Message-ID"], "<%s@studyshare>" % jid)
            self.assertEqual(m["To"], to)
            self.assertEqual(m["Delivered-To"], to)
            self.assertEqual(m["From"], FROM)
            self.assertEqual(m["Return-Path"], "<noreply@studyshare.test>")
            self.assertEqual(m["MIME-Version"], "1.0")
            self.assertEqual(m["Auto-Submitted"], "auto-generated")
            date = email.utils.parsedate_to_datetime(m["Date"])
            self.assertLess(abs(date.timestamp() - before), 60)
            self.assertEqual(m.get_content_type(), "multipart/alternative")
            parts = list(m.iter_parts())
            self.assertEqual([p.get_content_type() for p in parts],
                             ["text/plain", "text/html"])
            for p in parts:
                self.assertEqual(p.get_content_charset(), "utf-8")
            text, html = parts[0].get_content(), parts[1].get_content()
            self.assertEqual(str(m["Subject"]), SUBJECTS[tpl])
            for k, v in vars_.items():
                self.assertIn(v, text, "%s: %s missing in text" % (tpl, k))
                esc = (v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                       .replace('"', "&quot;").replace("\n", "<br>\n"))
                self.assertIn(esc, html, "%s: %s missing in html" % (tpl, k))
            if tpl == "guestlink.recipient":
                # what the flags say, in both parts
                for part in (text, html.replace("\n", " ")):
                    self.assertIn("Dr. Bob</strong> (North Clinic)" if part is not text
                                  else "Dr. Bob (North Clinic)", part)
                    self.assertIn("opened 7 times", part.replace("\n", " "))
                    self.assertIn("the patient's date of birth", part.replace("\n", " "))
                    self.assertNotIn("gives it to you separately", part.replace("\n", " "))
        self.wait_settled()
        for jid, _ in sent.values():
            # The lock became the sent marker, kept for --sent-ttl (7 d).
            self.assertEqual(self.r.cmd("GET", JOB_KEY % jid), b"sent")
            self.assertGreater(self.r.cmd("PTTL", JOB_KEY % jid), 6 * 86400 * 1000)
            self.assertEqual(self.r.cmd("EXISTS", TRIES_KEY % jid), 0)

    def test_job_queued_before_the_first_worker(self):
        msgs = self.wait_mails("early@example.org", 1)
        self.assertEqual(msgs[0]["Message-ID"], "<%s@studyshare>" % self.early)

    def test_non_ascii_subject_is_rfc2047(self):
        jid = self.push("share.notice", "utf8@example.org",
                        {"sharer_name": "Zoë 東京 \U0001F600"})
        m = self.wait_mails("utf8@example.org", 1)[0]
        raw = [data for data in map(read_bytes, self.catcher.files()) if jid.encode() in data][0]
        self.assertIn(b"Subject: =?UTF-8?B?", raw)
        self.assertTrue(all(b < 0x80 for b in raw), "8-bit bytes on the wire")
        self.assertEqual(str(m["Subject"]), "Zoë 東京 \U0001F600 shared an imaging study with you")

    def test_refused_jobs_are_dead_lettered_never_sent(self):
        v = TEMPLATE_VARS["share.notice"]
        bad = {
            "to_crlf": self.push("share.notice", "a@example.org\r\nBcc: eve@evil.example", v),
            "to_lf": self.push("share.notice", "b@example.org\nBcc: eve@evil.example", v),
            "subject_crlf": self.push("share.notice", "c@example.org",
                                      dict(v, sharer_name="X\r\nBcc: eve@evil.example")),
            # in a section of the subject, too
            "subject_lf": self.push("guestlink.viewed", "d@example.org",
                                    dict(TEMPLATE_VARS["guestlink.viewed"],
                                         study_description="Y\nBcc: eve@evil.example")),
            "missing_var": self.push("share.notice", "e@example.org", {"message": "Z"}),
            "bad_to": self.push("share.notice", "not-an-address", v),
        }
        reasons = {k: self.wait_dead(jid)["error"].decode() for k, jid in bad.items()}
        self.assertIn("field 'to': contains CR or LF", reasons["to_crlf"])
        self.assertIn("field 'to': contains CR or LF", reasons["to_lf"])
        self.assertIn("var 'sharer_name': CR, LF", reasons["subject_crlf"])
        self.assertIn("var 'study_description': CR, LF", reasons["subject_lf"])
        self.assertIn("missing var 'sharer_name'", reasons["missing_var"])
        self.assertIn("field 'to': not a mail address", reasons["bad_to"])
        # Bytes that are no job at all, and an entry without a job field.
        self.r.cmd("XADD", "notify:jobs", "*", "job", b"\xc1garbage")
        self.r.cmd("XADD", "notify:jobs", "*", "other", "x")
        wait_for(lambda: any(d["error"].startswith(b"bad msgpack") for d in self.dead()),
                 timeout=10 * SLOW, what="garbage dead-lettered")
        wait_for(lambda: any(d["error"] == b"entry has no 'job' field" for d in self.dead()),
                 timeout=10 * SLOW, what="fieldless entry dead-lettered")
        garbage = [d for d in self.dead() if d["error"].startswith(b"bad msgpack")][0]
        self.assertEqual(garbage["job"], b"\xc1garbage")
        # Dead letters keep the job as it came, sealed: the header
        # injection attempt is not readable there, but opens with the key.
        d = self.wait_dead(bad["to_crlf"])
        self.assertNotIn(b"evil.example", d["job"])
        opened = [j for j in mail_jobs(self.redis, dead=True) if j["id"] == bad["to_crlf"]][0]
        self.assertEqual(opened["to"], "a@example.org\r\nBcc: eve@evil.example")
        self.assertIn("contains CR or LF", opened["error"])
        # A job pushed after them arrives; none of them ever did.
        self.push("share.notice", "after-bad@example.org", v)
        self.wait_mails("after-bad@example.org", 1)
        for m in self.catcher.messages():
            self.assertNotIn("evil", str(m["To"]) + str(m.get("Bcc", "")))
            self.assertNotIn(m["Message-ID"], ["<%s@studyshare>" % j for j in bad.values()])
        self.wait_settled()

    def test_duplicates_are_sent_once(self):
        v = TEMPLATE_VARS["guestlink.locked"]
        # The same job pushed twice (a producer that retried its XADD).
        jid, m = job("guestlink.locked", "twice@example.org", v)
        mail_push(self.redis, [m, m])
        # A job whose id is already marked sent.
        done, m2 = job("guestlink.locked", "already@example.org", v)
        self.r.cmd("SET", JOB_KEY % done, "sent", "EX", "60")
        mail_push(self.redis, [m2])
        self.wait_mails("twice@example.org", 1)
        self.wait_settled()
        self.push("guestlink.locked", "after-dup@example.org", v)
        self.wait_mails("after-dup@example.org", 1)
        self.assertEqual(len(self.catcher.messages("twice@example.org")), 1)
        self.assertEqual(self.catcher.messages("already@example.org"), [])
        wait_for(lambda: metric(self.worker, "studyshare_notify_duplicates_total") >= 2,
                 timeout=5, what="duplicates counted")

    def test_jobs_that_do_not_open_are_dead_lettered_never_sent(self):
        v = TEMPLATE_VARS["share.notice"]
        # Sealed under another key: a producer with a wrong --mail-key, or
        # anyone who can write to Redis but holds no key.
        forged = mail_push(self.redis, [job("share.notice", "forged@example.org", v)[1]],
                           key="another-mail-key-0123456789abcdef0123456")[0]
        # A job of the old, unsealed format.
        clear = uuid.uuid4().hex
        self.r.cmd("XADD", "notify:jobs", "*", "job", mp.pack(
            {"v": 1, "id": clear, "template": "share.notice", "to": "clear@example.org",
             "vars": v, "created_at": int(time.time())}))
        for jid, want in [(forged, "box does not open"), (clear, "not sealed")]:
            self.assertIn(want, self.wait_dead(jid)["error"].decode())
        # A box opens under its own id only.  A job refused for its content
        # (a missing var) keeps its sealed bytes in the dead letter...
        jid = self.push("share.notice", "moved@example.org", {"message": "Z"})
        raw = self.wait_dead(jid)["job"]
        self.assertNotIn(b"moved@example.org", raw)
        env = mp.unpack(raw)
        self.assertEqual(sorted(env), ["box", "id", "v"])
        self.assertEqual((env["v"], env["id"]), (2, jid))
        # ...which, under another id, does not open.
        env["id"] = uuid.uuid4().hex
        self.r.cmd("XADD", "notify:jobs", "*", "job", mp.pack(env))
        self.assertIn("box does not open", self.wait_dead(env["id"])["error"].decode())
        self.push("share.notice", "after-forged@example.org", v)
        self.wait_mails("after-forged@example.org", 1)
        for to in ["forged@example.org", "clear@example.org", "moved@example.org"]:
            self.assertEqual(self.catcher.messages(to), [])
        self.wait_settled()
        # `studyshare mail list --dead` says why each does not open.
        listed = {j["id"]: j for j in mail_jobs(self.redis, dead=True)}
        self.assertIn("box does not open", listed[forged]["open_error"])
        self.assertIn("not sealed", listed[clear]["open_error"])
        self.assertNotIn("to", listed[forged])
        self.assertEqual(listed[jid]["to"], "moved@example.org")
        # `studyshare mail push` checks a mail as producers do, unless told,
        # and refuses before queuing anything: the stream's last id (which
        # a worker taking the job at once would not undo) stays as it was.
        def last_id():
            info = self.r.cmd("XINFO", "STREAM", "notify:jobs")
            return dict(zip(info[::2], info[1::2]))[b"last-generated-id"]
        before = (last_id(), self.r.cmd("XLEN", "notify:jobs"),
                  self.r.cmd("XLEN", "notify:dead"))
        with self.assertRaises(RuntimeError):
            mail_push(self.redis, [job("share.notice", "x@y\r\nBcc: z@w", v)[1]],
                      unchecked=False)
        with self.assertRaises(RuntimeError):
            mail_push(self.redis, [job("share.unknown", "x@example.org", v)[1]],
                      unchecked=False)
        self.assertEqual((last_id(), self.r.cmd("XLEN", "notify:jobs"),
                          self.r.cmd("XLEN", "notify:dead")), before)
        with self.assertRaisesRegex(RuntimeError, "unknown field 'colour'"):
            mail_push(self.redis, [dict(job("share.notice", "x@example.org", v)[1],
                                        colour="red")], unchecked=False)
        with self.assertRaisesRegex(RuntimeError, "open_error"):
            mail_push(self.redis, [listed[forged]], unchecked=False)
        # The repair the notify README gives: a dead letter's line of `mail
        # list --dead`, edited (here: the missing var), pushed back as it is.
        line = dict(listed[jid], vars=v)
        self.assertTrue({"entry", "error", "tries"} <= set(line), line)
        self.assertEqual(mail_push(self.redis, [line], unchecked=False), [jid])
        self.wait_mails("moved@example.org", 1)

    def test_connections_are_reused(self):
        before = self.catcher.sessions()
        for i in range(20):
            self.push("guestlink.viewed", "reuse%d@example.org" % i,
                      TEMPLATE_VARS["guestlink.viewed"])
        for i in range(20):
            self.wait_mails("reuse%d@example.org" % i, 1)
        # At most one new SMTP session per slot, none per mail.
        self.assertLessEqual(self.catcher.sessions() - before, 4)

    def test_metrics_and_readiness(self):
        self.push("guestlink.locked", "metrics@example.org", TEMPLATE_VARS["guestlink.locked"])
        self.wait_mails("metrics@example.org", 1)
        wait_for(lambda: metric(self.worker, "studyshare_notify_sent_total") >= 1,
                 timeout=5, what="sent counted")
        status, text = self.worker.http("/metrics")
        for name in ["studyshare_notify_queue_length", "studyshare_notify_pending",
                     "studyshare_notify_sent_total", "studyshare_notify_retried_total",
                     "studyshare_notify_dead_total", "studyshare_notify_inflight",
                     "studyshare_notify_send_seconds_count",
                     'studyshare_notify_send_seconds_bucket{le="+Inf"}']:
            self.assertIn("\n" + name, text)
        self.assertGreaterEqual(metric(self.worker, "studyshare_notify_send_seconds_count"), 1)
        self.assertEqual(self.worker.http("/readyz"), (200, "ready\n"))


# ---- SMTP failures ---------------------------------------------------------------

class Failures(NotifyCase):
    catcher_mode = None  # each test starts it as it needs

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.worker = cls.start_notify(max_tries=30)

    def tearDown(self):
        self.catcher.stop()

    def test_smtp_down_jobs_wait_then_all_arrive(self):
        ids = [self.push("share.notice", "down%d@example.org" % i,
                         TEMPLATE_VARS["share.notice"]) for i in range(5)]
        # Every job is tried and scheduled for a retry while SMTP is down.
        wait_for(lambda: all(self.r.cmd("HGET", TRIES_KEY % j, "n")
                             for j in ids), timeout=10 * SLOW, what="first tries")
        err = self.r.cmd("HGET", TRIES_KEY % ids[0], "error").decode()
        self.assertRegex(err, "(?i)connect|refused")
        self.assertEqual(self.catcher.messages("down0@example.org"), [])
        self.assertEqual(self.pending(), 5)  # held, not lost
        self.catcher.start("accept")
        for i in range(5):
            self.wait_mails("down%d@example.org" % i, 1)
        self.wait_settled()
        for j in ids:
            self.assertEqual(self.r.cmd("EXISTS", TRIES_KEY % j), 0)
        self.assertEqual([d for d in self.dead() if d["id"].decode() in ids], [])
        self.assertGreaterEqual(metric(self.worker, "studyshare_notify_retried_total"), 5)

    def test_451_is_retried_until_accepted(self):
        self.catcher.start("451")
        jid = self.push("guestlink.viewed", "greylisted@example.org",
                        TEMPLATE_VARS["guestlink.viewed"])
        wait_for(lambda: self.catcher.refused("451") >= 2, timeout=10 * SLOW,
                 what="two 451 answers")
        self.assertEqual(self.catcher.messages("greylisted@example.org"), [])
        tries = int(self.r.cmd("HGET", TRIES_KEY % jid, "n"))
        self.assertGreaterEqual(tries, 2)
        self.assertIn("451", self.r.cmd("HGET", TRIES_KEY % jid, "error").decode())
        self.catcher.stop()
        self.catcher.start("accept")
        m = self.wait_mails("greylisted@example.org", 1)[0]
        self.assertEqual(m["Message-ID"], "<%s@studyshare>" % jid)
        self.wait_settled()

    def test_550_goes_to_dead_letters_with_the_error(self):
        self.catcher.start("550")
        jid, m = job("guestlink.recipient", "nobody@example.org",
                     TEMPLATE_VARS["guestlink.recipient"])
        mail_push(self.redis, [m])
        d = self.wait_dead(jid)
        self.assertIn("550", d["error"].decode())
        # The dead letter keeps the job sealed; the key opens it.
        self.assertNotIn(b"nobody@example.org", d["job"])
        self.assertNotIn(b"/g/tok", d["job"])
        opened = [j for j in mail_jobs(self.redis, dead=True) if j["id"] == jid]
        self.assertEqual(len(opened), 1)
        self.assertEqual((opened[0]["to"], opened[0]["vars"]), (m["to"], m["vars"]))
        self.assertEqual(d["tries"], b"1")
        self.assertEqual(self.catcher.refused("550"), 1)  # tried once, not retried
        self.assertEqual(self.catcher.messages("nobody@example.org"), [])
        self.wait_settled()
        self.assertGreaterEqual(metric(self.worker, "studyshare_notify_dead_total"), 1)


class GivingUp(NotifyCase):
    catcher_mode = "451"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.worker = cls.start_notify(max_tries=3)

    def test_too_many_temporary_failures_go_to_dead_letters(self):
        before = self.catcher.refused("451")  # other tests' in this class
        jid = self.push("upload.received", "never@example.org", TEMPLATE_VARS["upload.received"])
        d = self.wait_dead(jid)
        self.assertIn("gave up after 3 tries", d["error"].decode())
        self.assertIn("451", d["error"].decode())
        self.assertEqual(d["tries"], b"3")
        self.assertEqual(mp.unpack(d["job"])["id"], jid)
        self.assertNotIn(b"never@example.org", d["job"])
        self.assertEqual(self.catcher.refused("451") - before, 3)
        self.wait_settled()
        self.assertEqual(self.r.cmd("EXISTS", TRIES_KEY % jid), 0)

    def test_a_mail_given_up_after_its_tries_tells_its_sender_so(self):
        # Not "check the address": the server was not reached.  (The
        # notice meets the same 451s here and becomes a dead letter too,
        # where it can be read.)
        jid, m = job("share.invitation", "later@example.org", TEMPLATE_VARS["share.invitation"])
        m["bounce_to"] = "sharer@example.org"
        mail_push(self.redis, [m], unchecked=False)
        self.wait_dead(jid)
        notice = hashlib.blake2b(b"studyshare mail.undelivered:" + jid.encode(),
                                 digest_size=16).hexdigest()
        self.wait_dead(notice, timeout=30)
        n = [j for j in mail_jobs(self.redis, dead=True) if j["id"] == notice][0]
        self.assertEqual(n["to"], "sharer@example.org")
        self.assertNotIn("bounce_to", n)  # never a notice of a notice
        self.assertEqual(n["vars"]["refused"], "")
        self.assertEqual(n["vars"]["recipient"], "later@example.org")
        self.assertEqual(n["vars"]["what"], "the invitation to see the study you shared")
        self.assertIn("gave up after 3 tries", n["vars"]["reason"])
        self.assertEqual(n["vars"]["study_description"], "CT head")
        self.wait_settled()


class RedisOutage(NotifyCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.worker = cls.start_notify()

    def test_worker_survives_a_redis_restart(self):
        self.push("share.notice", "before@example.org", TEMPLATE_VARS["share.notice"])
        self.wait_mails("before@example.org", 1)
        self.r.close()
        self.redis.kill()
        wait_for(lambda: self.worker.http("/readyz")[0] == 503, timeout=10 * SLOW,
                 what="not ready without redis")
        self.assertTrue(self.worker.alive())
        # A Redis without persistence comes back empty: no stream, no group.
        self.redis.start()
        type(self).r = RedisClient(self.redis.port)
        wait_for(lambda: self.worker.http("/readyz")[0] == 200, timeout=15 * SLOW,
                 what="ready again")
        self.push("share.notice", "after@example.org", TEMPLATE_VARS["share.notice"])
        self.wait_mails("after@example.org", 1)
        self.wait_settled()


    def test_a_failing_check_does_not_pull_the_backlog(self):
        # CHECK (a script on the command connection) refused while reads
        # work: the worker must not read the whole queue into its own
        # pending list, where the other workers cannot take it before
        # --claim-idle.  Once Redis takes scripts again, every mail goes.
        n = 80
        self.r.cmd("ACL", "SETUSER", "default", "-eval", "-evalsha")
        try:
            mail_push(self.redis, [job("share.notice", "held%d@example.org" % i,
                                       TEMPLATE_VARS["share.notice"])[1] for i in range(n)])
            wait_for(lambda: self.pending() > 0, timeout=10 * SLOW, what="a read")
            # Reads of 4 × 3 tasks at 0, 0.5 and 1.5 s (the pause doubles
            # after each failed CHECK; the next read is at 3.5 s), not the
            # whole queue at once.
            time.sleep(2)
            self.assertLessEqual(self.pending(), 3 * 12)
            self.assertTrue(any(e["event"] == "notify.redis_failed"
                                for e in self.worker.log_events()))
        finally:
            self.r.cmd("ACL", "SETUSER", "default", "+eval", "+evalsha")
        def held():
            out = set()
            for path in self.catcher.files():
                with open(path, "rb") as f:
                    m = re.search(rb"^To: (held\d+@example\.org)\r?$", f.read(4096), re.M)
                if m:
                    out.add(m.group(1))
            return out
        wait_for(lambda: len(held()) == n, timeout=30 * SLOW, what="every held mail")
        self.wait_settled()


# ---- many workers, one killed ------------------------------------------------------

class ThreeWorkers(NotifyCase):
    N = 1000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.workers = [cls.start_notify(concurrency=4) for _ in range(3)]

    def test_sigkill_mid_batch_loses_nothing(self):
        mails = [job("guestlink.viewed", "many%d@example.org" % i,
                     TEMPLATE_VARS["guestlink.viewed"])[1] for i in range(self.N)]
        ids = [m["id"] for m in mails]
        t0 = time.monotonic()
        self.assertEqual(mail_push(self.redis, mails), ids)
        wait_for(lambda: len(self.catcher.files()) >= self.N // 4, timeout=30 * SLOW,
                 what="a quarter of the batch")
        victim = self.workers[0]
        consumer = [e["consumer"] for e in victim.log_events()
                    if e["event"] == "notify.consumer"][0]
        victim.proc.kill()
        victim.proc.wait()
        at_kill = len(self.catcher.files())
        held = dict((c.decode(), int(n)) for c, n in
                    self.r.cmd("XPENDING", "notify:jobs", "notify")[3])
        # It died holding jobs: those must come back through XAUTOCLAIM.
        self.assertGreater(held.get(consumer, 0), 0)
        wait_for(lambda: len(set(self.catcher.message_ids())) >= self.N, timeout=45 * SLOW,
                 what="all %d mails" % self.N)
        secs = time.monotonic() - t0
        got = self.catcher.message_ids()
        unique = set(got)
        self.assertEqual(unique, set(ids))
        twice = len(got) - len(unique)
        print("\n  %d jobs, 3 workers, one SIGKILLed after %d mails holding %d jobs: "
              "%d arrived, %d unique, %d twice (%.1f s)"
              % (self.N, at_kill, held[consumer], len(got), len(unique), twice, secs),
              file=sys.stderr)
        self.wait_settled()
        self.assertEqual(self.dead(), [])
        # The dead worker's consumer holds nothing any more.
        consumers = self.r.cmd("XINFO", "CONSUMERS", "notify:jobs", "notify")
        for c in consumers:
            f = {c[i].decode() if isinstance(c[i], bytes) else c[i]: c[i + 1]
                 for i in range(0, len(c), 2)}
            self.assertEqual(f["pending"], 0)


class WrongKey(NotifyCase):
    """A worker whose --mail-key is not the producers' (a rotation half
    done): it is not ready and takes no job, which it could not open and
    would dead-letter; the jobs wait for a worker with the right key."""

    def test_a_worker_with_another_key_takes_no_job(self):
        right = self.start_notify()
        self.assertEqual(self.r.cmd("EXISTS", "keycheck:{k}:mail"), 1)
        self.assertEqual(right.stop(), 0)
        wrong = notify(self.redis, self.catcher,
                       mail_key="another-mail-key-0123456789abcdef0123456")
        self.daemons.append(wrong)
        wrong.start(ready=False)
        wait_for(lambda: "key.mismatch" in [e["event"] for e in wrong.log_events()],
                 what="key.mismatch")
        ev = [e for e in wrong.log_events() if e["event"] == "key.mismatch"][0]
        self.assertEqual((ev["setting"], ev["record"]), ("mail-key", "keycheck:{k}:mail"))
        self.assertNotIn("another-mail-key", wrong.logs())
        status, text = wrong.http("/readyz")
        self.assertEqual(status, 503)
        self.assertIn("keys: --mail-key is not the key Redis's data was made with", text)
        self.push("guestlink.viewed", "waiting@example.org",
                  TEMPLATE_VARS["guestlink.viewed"])
        time.sleep(2 * SLOW)  # four of its reader's pauses
        self.assertEqual(self.dead(), [])
        self.assertEqual(self.pending(), 0)  # not even read
        self.assertEqual(self.catcher.messages("waiting@example.org"), [])
        # the right key again: the job goes out
        self.assertEqual(wrong.stop(), 0)
        self.start_notify()
        self.wait_mails("waiting@example.org", 1)
        self.assertEqual(self.dead(), [])


class DeadConsumers(NotifyCase):
    def consumers(self):
        """{consumer name: pending} of the group."""
        out = {}
        for c in self.r.cmd("XINFO", "CONSUMERS", "notify:jobs", "notify"):
            f = {c[i].decode() if isinstance(c[i], bytes) else c[i]: c[i + 1]
                 for i in range(0, len(c), 2)}
            out[f["name"].decode()] = f["pending"]
        return out

    def test_idle_consumers_that_hold_nothing_are_removed(self):
        # Two consumers of workers that are gone: one holds nothing, the
        # other still holds an entry (no claim comes within this test).
        self.r.cmd("XGROUP", "CREATE", "notify:jobs", "notify", "$", "MKSTREAM")
        self.r.cmd("XGROUP", "CREATECONSUMER", "notify:jobs", "notify", "gone-empty")
        self.r.cmd("XADD", "notify:jobs", "*", "job", "held by a dead worker")
        got = self.r.cmd("XREADGROUP", "GROUP", "notify", "gone-holding", "COUNT", "1",
                         "STREAMS", "notify:jobs", ">")
        self.assertEqual(len(got[0][1]), 1)
        self.assertEqual(self.consumers(), {"gone-empty": 0, "gone-holding": 1})

        w = self.start_notify(consumer_idle="1s", block="200ms", claim_idle="1h")

        def removals():
            return len([e for e in w.log_events() if e["event"] == "notify.consumers_removed"])
        wait_for(lambda: "gone-empty" not in self.consumers() and removals() == 1,
                 timeout=10 * SLOW, what="the idle consumer removed")
        # The live worker goes on taking jobs after a clean-up.
        to = "after-clean-up@example.org"
        self.push("guestlink.viewed", to, TEMPLATE_VARS["guestlink.viewed"])
        self.wait_mails(to, 1)
        # Another empty consumer left behind: a later clean-up removes it,
        # and that pass went over the one holding an entry too.
        self.r.cmd("XGROUP", "CREATECONSUMER", "notify:jobs", "notify", "gone-later")
        wait_for(lambda: "gone-later" not in self.consumers() and removals() == 2,
                 timeout=10 * SLOW, what="a second clean-up")
        # The one that holds an entry is never removed: that would drop
        # the entry from the pending list.
        self.assertEqual(self.consumers().get("gone-holding"), 1)
        self.assertEqual(self.pending(), 1)
        self.assertTrue(w.alive())


# ---- SMTP sessions: pipelining, TLS, AUTH, servers that drop sessions ---------------

class SmtpServer:
    """A small SMTP server for the session tests (stdlib asyncio, in a
    thread of the test): PIPELINING, STARTTLS or implicit TLS, AUTH PLAIN,
    refused recipients, and the ways a server ends sessions that notify
    must survive.  It counts what it saw."""

    def __init__(self, pipelining=True, tls=None, certs=None, auth=None,
                 refuse=(), refuse_data=(), idle_close=None, drop_second_mail=False,
                 greeting="220 test ESMTP", hang_up_after_refusal=False):
        self.pipelining, self.tls, self.auth = pipelining, tls, auth
        self.greeting = greeting  # read at each connection: may change
        self.hang_up_after_refusal = hang_up_after_refusal
        self.refuse, self.idle_close = set(refuse), idle_close
        self.refuse_data = set(refuse_data)
        self.drop_second_mail = drop_second_mail
        self.refuse_sender = None  # a reply to MAIL FROM; may change
        self.ctx = None
        if tls:
            self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ctx.load_cert_chain(*certs)
        self.mails, self.peers = [], []
        self.sessions = self.pipelined = self.rsets = self.tls_sessions = 0
        self.chained = 0  # MAIL FROMs that came with the message before
        self.logins = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self):
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(10)
        return self

    async def _listen(self):
        self.server = await self.loop.create_server(
            lambda: _SmtpSession(self), "127.0.0.1", 0,
            ssl=self.ctx if self.tls == "implicit" else None)
        return self.server.sockets[0].getsockname()[1]

    def close(self):
        async def stop():
            self.server.close()
            for p in self.peers:
                p.t.close()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def to(self, addr):
        return [m for m in self.mails if addr in m[1]]


class _SmtpSession(asyncio.Protocol):
    def __init__(self, srv):
        self.srv, self.buf, self.data, self.idle = srv, b"", None, None
        self.secure = srv.tls == "implicit"
        self.authed, self.mails_seen, self.want_auth = False, 0, False
        self.upgrading = None
        self.reset()

    def reset(self):
        self.sender, self.rcpts = None, []

    def connection_made(self, t):
        self.t = t
        self.srv.peers.append(self)
        self.srv.sessions += 1
        self.srv.tls_sessions += self.secure
        self.say(self.srv.greeting)
        if not self.srv.greeting.startswith("220"):
            self.t.close()

    def say(self, line):
        self.t.write(line.encode() + b"\r\n")

    def idle_after(self):
        if self.srv.idle_close is not None:
            self.idle = asyncio.get_running_loop().call_later(
                self.srv.idle_close, self.t.close)

    def data_received(self, chunk):
        if self.upgrading is not None:
            # TLS is up but start_tls() has not handed us its transport.
            self.upgrading += chunk
            return
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
        self.buf += chunk
        lines = []
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            lines.append(line.rstrip(b"\r"))
        ended = False
        for i, line in enumerate(lines):
            if self.data is not None:
                if line != b".":
                    self.data.append(line[1:] if line.startswith(b".") else line)
                elif self.srv.refuse_data & set(self.rcpts):
                    self.say("550 5.7.1 message refused")
                else:
                    self.srv.mails.append((self.sender, self.rcpts, b"\r\n".join(self.data)))
                    self.say("250 2.0.0 queued")
                if line == b".":
                    self.data = None
                    self.reset()
                    self.idle_after()
                    ended = True
                continue
            if ended and line[:4].upper() == b"MAIL":
                self.srv.chained += 1
            if not self.command(line.decode(), lines[i + 1:]):
                return

    def command(self, cmd, rest):
        srv, verb = self.srv, cmd[:4].upper()
        if self.want_auth:
            self.want_auth = False
            return self.login(cmd)
        if verb == "EHLO":
            exts = ["test"]
            if srv.pipelining:
                exts.append("PIPELINING")
            if srv.tls == "starttls" and not self.secure:
                exts.append("STARTTLS")
            if srv.auth:
                exts.append("AUTH PLAIN")
            exts.append("8BITMIME")
            for e in exts[:-1]:
                self.say("250-" + e)
            self.say("250 " + exts[-1])
        elif verb == "STAR" and srv.tls == "starttls" and not self.secure:
            # The client's TLS hello must not reach data_received().
            self.t.pause_reading()
            self.say("220 2.0.0 go ahead")
            asyncio.ensure_future(self.starttls())
            return False
        elif verb == "AUTH":
            parts = cmd.split()
            if len(parts) == 3:
                return self.login(parts[2])
            self.want_auth = True
            self.say("334 ")
        elif verb == "MAIL":
            self.mails_seen += 1
            if srv.drop_second_mail and self.mails_seen == 2:
                self.t.close()  # an idle timeout that raced the mail
                return False
            if srv.auth and not self.authed:
                self.say("530 5.7.0 authentication required")
                return True
            if srv.refuse_sender:
                self.say(srv.refuse_sender)
                return True
            srv.pipelined += any(r.upper().startswith(b"RCPT") for r in rest)
            self.sender = cmd[10:]
            self.say("250 2.1.0 ok")
        elif verb == "RCPT":
            addr = cmd[8:].strip("<>")
            if self.sender is None:
                self.say("503 5.5.1 MAIL first")
            elif addr in srv.refuse:
                # as Postfix does, quoting the address
                self.say("550 5.1.1 <%s>: no such user here" % addr)
                if srv.hang_up_after_refusal:
                    self.t.close()
                    return False
            else:
                self.rcpts.append(addr)
                self.say("250 2.1.5 ok")
        elif verb == "DATA":
            if not self.rcpts:
                self.say("554 5.5.1 no valid recipients")
            else:
                self.data = []
                self.say("354 go ahead")
        elif verb == "RSET":
            srv.rsets += 1
            self.reset()
            self.say("250 2.0.0 ok")
            self.idle_after()
        elif verb == "QUIT":
            self.say("221 2.0.0 bye")
            self.t.close()
            return False
        else:
            self.say("502 5.5.2 unknown command")
        return True

    def login(self, b64):
        user, password = base64.b64decode(b64).split(b"\0")[1:]
        if (user.decode(), password.decode()) == self.srv.auth:
            self.authed = True
            self.srv.logins += 1
            self.say("235 2.7.0 ok")
        else:
            self.say("535 5.7.8 bad credentials")
        return True

    async def starttls(self):
        self.upgrading, self.buf = b"", b""
        self.t = await asyncio.get_running_loop().start_tls(
            self.t, self, self.srv.ctx, server_side=True)
        self.secure = True
        self.srv.tls_sessions += 1
        self.reset()
        early, self.upgrading = self.upgrading, None
        if early:
            self.data_received(early)


def self_signed(d):
    """A certificate for 127.0.0.1 and its key, made with openssl(1)."""
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


class Sessions(NotifyCase):
    catcher_mode = None

    def setUp(self):
        self.srv = None
        self.w = None

    def tearDown(self):
        if self.w is not None:
            self.assertEqual(self.w.stop(), 0)
        if self.srv is not None:
            self.srv.close()

    def serve(self, **kw):
        self.srv = SmtpServer(**kw).start()
        return self.srv

    def worker(self, scheme="smtp", **settings):
        settings.setdefault("smtp_url", "%s://127.0.0.1:%d" % (scheme, self.srv.port))
        self.w = self.start_notify(**settings)
        return self.w

    def wait_to(self, addr, n=1):
        wait_for(lambda: len(self.srv.to(addr)) >= n, timeout=15 * SLOW,
                 what="%d mail(s) to %s" % (n, addr))
        return self.srv.to(addr)

    def test_pipelined_mails_and_a_refused_recipient(self):
        self.serve(refuse={"nobody@example.org"})
        self.worker(concurrency=1)
        v = TEMPLATE_VARS["guestlink.locked"]
        first = self.push("guestlink.locked", "pipe0@example.org", v)
        self.wait_to("pipe0@example.org")
        # Refused at RCPT TO: a dead letter with the server's words, the
        # session reset (RSET) and used for the next mail.
        bad = self.push("guestlink.locked", "nobody@example.org", v)
        d = self.wait_dead(bad)
        self.assertIn("smtp 550: 550 5.1.1 <address>: no such user here", d["error"].decode())
        for i in range(1, 4):
            self.push("guestlink.locked", "pipe%d@example.org" % i, v)
        for i in range(1, 4):
            m = self.wait_to("pipe%d@example.org" % i)
            self.assertEqual(len(m), 1)
            self.assertEqual(m[0][0], "<noreply@studyshare.test>")
        self.wait_settled()
        self.assertEqual(self.srv.sessions, 1)
        self.assertEqual(self.srv.rsets, 1)
        # MAIL FROM, RCPT TO and DATA went out together every time.
        self.assertEqual(self.srv.pipelined, 5)
        self.assertEqual(self.srv.to("nobody@example.org"), [])
        msg = email.message_from_bytes(self.srv.to("pipe0@example.org")[0][2],
                                       policy=email.policy.default)
        self.assertEqual(msg["Message-ID"], "<%s@studyshare>" % first)

    def test_a_mail_given_up_tells_its_sender_once(self):
        # A guest link's mail to a mistyped address: its creator (the
        # job's bounce_to) is told, once, even when the job is delivered
        # twice (its notice's id is derived from the job's).
        self.serve(refuse={"nobody@example.org", "gone@example.org"})
        self.worker(concurrency=1)
        jid, m = job("guestlink.recipient", "nobody@example.org",
                     dict(TEMPLATE_VARS["guestlink.recipient"], study_description="CT HEAD"))
        m["bounce_to"] = "creator@example.org"
        mail_push(self.redis, [m, dict(m)], unchecked=False)
        self.wait_dead(jid)
        got = self.wait_to("creator@example.org")
        wait_for(lambda: len([d for d in self.dead() if d["id"].decode() == jid]) == 2,
                 timeout=15 * SLOW, what="both deliveries given up")
        self.wait_settled()
        got = self.srv.to("creator@example.org")
        self.assertEqual(len(got), 1, "one notice for one failed mail")
        msg = email.message_from_bytes(got[0][2], policy=email.policy.default)
        notice = hashlib.blake2b(b"studyshare mail.undelivered:" + jid.encode(),
                                 digest_size=16).hexdigest()
        self.assertEqual(msg["Message-ID"], "<%s@studyshare>" % notice)
        self.assertEqual(str(msg["Subject"]),
                         "Your email to nobody@example.org could not be delivered")
        text = msg.get_body(("plain",)).get_content()
        self.assertIn("could not deliver the email with your guest link to nobody@example.org",
                      " ".join(text.split()))
        self.assertIn("Study: CT HEAD", text)
        self.assertIn("550 5.1.1", text)
        self.assertIn("refused it: please check the address", " ".join(text.split()))
        self.assertNotIn("/g/tok", text)  # the link itself stays out
        # A notice that fails is a dead letter, never another notice; a
        # job without bounce_to tells no one.
        jid2, m2 = job("upload.request", "nobody@example.org", TEMPLATE_VARS["upload.request"])
        m2["bounce_to"] = "gone@example.org"
        jid3, m3 = job("guestlink.locked", "nobody@example.org",
                       TEMPLATE_VARS["guestlink.locked"])
        # nor one given up for our own reasons (it does not render): its
        # sender could do nothing about that
        jid4, m4 = job("guestlink.recipient", "fine@example.org", {"sharer_name": "A"})
        m4["bounce_to"] = "creator@example.org"
        mail_push(self.redis, [m2, m3, m4], unchecked=False)
        notice2 = hashlib.blake2b(b"studyshare mail.undelivered:" + jid2.encode(),
                                  digest_size=16).hexdigest()
        self.wait_dead(jid2)
        self.wait_dead(jid3)
        self.assertIn("missing var", self.wait_dead(jid4)["error"].decode())
        self.wait_dead(notice2)
        time.sleep(1)
        self.wait_settled()
        ids = [d["id"].decode() for d in self.dead()]
        self.assertEqual(sorted(ids), sorted([jid, jid, jid2, jid3, jid4, notice2]))
        self.assertEqual(len(self.srv.to("creator@example.org")), 1)

    def test_a_server_refusing_us_at_the_greeting_is_retried_not_dead(self):
        # A 554 greeting (a blocklist, a relay rule) says nothing of the
        # mail, which was never offered: retried, and sent once the server
        # takes us again.
        self.serve(greeting="554 5.7.1 not now")
        self.worker(concurrency=1)
        jid = self.push("guestlink.locked", "later@example.org", TEMPLATE_VARS["guestlink.locked"])
        mine = lambda: [d for d in self.dead() if d["id"].decode() == jid]  # noqa: E731
        wait_for(lambda: self.srv.sessions >= 2, timeout=15 * SLOW, what="two refused sessions")
        self.assertEqual(mine(), [])
        self.srv.greeting = "220 test ESMTP"
        self.assertEqual(len(self.wait_to("later@example.org")), 1)
        self.wait_settled()
        self.assertEqual(mine(), [])
        self.assertTrue(any(e["event"] == "notify.retry" and e.get("request_id") == jid
                            for e in self.w.log_events()))

    def test_the_server_quoting_the_address_never_puts_it_in_logs_or_redis(self):
        self.serve(refuse={"patient.x@example.org"})
        self.worker(concurrency=1)
        bad = self.push("guestlink.locked", "patient.x@example.org",
                        TEMPLATE_VARS["guestlink.locked"])
        d = self.wait_dead(bad)
        self.assertIn("<address>", d["error"].decode())
        self.wait_settled()
        self.assertNotIn("patient.x", d["error"].decode())
        self.assertNotIn("patient.x", self.w.logs())

    def test_a_refused_sender_or_missing_login_is_retried_not_dead(self):
        # A 5xx to MAIL FROM (a relay that does not take our --from) and a
        # 530 (authentication required) are about our setup, the same for
        # every mail: retried, and the mail goes out once it is fixed.
        for refusal, fix in [("550 5.7.1 relay denied for this sender", "refuse_sender"),
                             (None, "auth")]:
            with self.subTest(refusal=refusal or "530"):
                self.serve(auth=("u", "p") if fix == "auth" else None)
                self.srv.refuse_sender = refusal
                self.worker(concurrency=1)
                try:
                    jid = self.push("guestlink.locked", "setup@example.org",
                                    TEMPLATE_VARS["guestlink.locked"])
                    mine = lambda: [d for d in self.dead()  # noqa: E731
                                    if d["id"].decode() == jid]
                    wait_for(lambda: any(e["event"] == "notify.retry"
                                         and e.get("request_id") == jid
                                         for e in self.w.log_events()),
                             timeout=15 * SLOW, what="a retry")
                    self.assertEqual(mine(), [])
                    setattr(self.srv, fix, None)
                    self.assertEqual(len(self.wait_to("setup@example.org")), 1)
                    self.wait_settled()
                    self.assertEqual(mine(), [])
                finally:
                    self.assertEqual(self.w.stop(), 0)
                    self.w = None
                    self.srv.close()
                    self.srv = None

    def test_a_refusal_then_a_hang_up_is_still_a_dead_letter(self):
        # 550 to RCPT TO, then the server closes: permanent, at once, with
        # the 550's words (not a dropped session to retry for an hour).
        self.serve(refuse={"gone@example.org"}, hang_up_after_refusal=True)
        self.worker(concurrency=1)
        v = TEMPLATE_VARS["guestlink.locked"]
        bad = self.push("guestlink.locked", "gone@example.org", v)
        d = self.wait_dead(bad)
        self.assertIn("smtp 550: 550 5.1.1 <address>: no such user here", d["error"].decode())
        self.assertEqual(d["tries"], b"1")
        self.push("guestlink.locked", "after@example.org", v)
        self.assertEqual(len(self.wait_to("after@example.org")), 1)
        self.wait_settled()

    def test_without_pipelining_one_command_at_a_time(self):
        self.serve(pipelining=False, refuse={"nobody@example.org"})
        self.worker(concurrency=1)
        v = TEMPLATE_VARS["guestlink.locked"]
        bad = self.push("guestlink.locked", "nobody@example.org", v)
        self.assertIn("smtp 550: 550 5.1.1", self.wait_dead(bad)["error"].decode())
        self.push("guestlink.locked", "plain@example.org", v)
        self.wait_to("plain@example.org")
        self.wait_settled()
        self.assertEqual((self.srv.pipelined, self.srv.rsets, self.srv.sessions), (0, 1, 1))

    def test_back_to_back_mails_survive_refusals_and_drops(self):
        # A slot sends the next mail's commands with the message before
        # it; a refusal at the end of one message leaves the next alone.
        v = TEMPLATE_VARS["share.notice"]
        self.serve(refuse_data={"refused@example.org"})
        burst = ["b2b0@example.org", "refused@example.org", "b2b1@example.org",
                 "b2b2@example.org"]
        jids = [job("share.notice", to, v) for to in burst]
        # Queued before the worker starts: its first read takes them
        # together (a blocked read could return with the first alone,
        # which then goes out with nothing behind it).
        mail_push(self.redis, [m for _, m in jids])
        self.worker(concurrency=1)
        d = self.wait_dead(jids[1][0])
        self.assertIn("smtp 550: 550 5.7.1 message refused", d["error"].decode())
        for to in burst[0:1] + burst[2:]:
            self.assertEqual(len(self.wait_to(to)), 1)
        self.wait_settled()
        self.assertEqual((self.srv.sessions, self.srv.rsets), (1, 0))
        self.assertGreaterEqual(self.srv.chained, 1)
        self.assertEqual(self.w.stop(), 0)
        self.srv.close()
        # A session lost with the next mail's commands sent and no reply
        # to them: that mail goes out on a new session, no retry needed.
        self.serve(drop_second_mail=True)
        self.worker(concurrency=1)
        mail_push(self.redis, [job("share.notice", "drop%d@example.org" % i, v)[1]
                               for i in range(4)])
        for i in range(4):
            self.assertEqual(len(self.wait_to("drop%d@example.org" % i)), 1)
        self.wait_settled()
        self.assertEqual(self.srv.sessions, 4)
        self.assertEqual(metric(self.w, "studyshare_notify_retried_total") or 0, 0)

    def test_sessions_closed_by_the_server_cost_no_retry(self):
        # The server ends a session idle for 0.2 s; another one it ends
        # just as the next mail begins (an idle timeout racing it).
        v = TEMPLATE_VARS["share.notice"]
        self.serve(idle_close=0.2)
        self.worker(concurrency=1)
        for i in range(3):
            self.push("share.notice", "idle%d@example.org" % i, v)
            self.wait_to("idle%d@example.org" % i)
            time.sleep(0.5)
        self.wait_settled()
        self.assertEqual(self.srv.sessions, 3)
        self.assertEqual(metric(self.w, "studyshare_notify_retried_total") or 0, 0)
        self.assertEqual(self.w.stop(), 0)
        self.srv.close()
        self.serve(drop_second_mail=True)
        self.worker(concurrency=1)
        for i in range(3):
            self.push("share.notice", "race%d@example.org" % i, v)
            self.wait_to("race%d@example.org" % i)
        self.wait_settled()
        # Each session loses its second mail, which goes out on a new one.
        self.assertEqual(self.srv.sessions, 3)
        self.assertEqual(metric(self.w, "studyshare_notify_retried_total") or 0, 0)

    def test_starttls_with_login_and_implicit_tls(self):
        d = tempfile.mkdtemp(prefix="ss-tls-")
        self.addCleanup(shutil.rmtree, d)
        certs = self_signed(d)
        v = TEMPLATE_VARS["upload.received"]
        self.serve(tls="starttls", certs=certs, auth=("mailer", "s3cret"))
        self.worker(concurrency=2, smtp_starttls="required", smtp_ca_file=certs[0],
                    smtp_user="mailer", smtp_password="s3cret")
        for i in range(3):
            self.push("upload.received", "tls%d@example.org" % i, v)
        for i in range(3):
            self.wait_to("tls%d@example.org" % i)
        self.wait_settled()
        self.assertGreaterEqual(self.srv.tls_sessions, 1)
        self.assertEqual(self.srv.tls_sessions, self.srv.sessions)
        self.assertEqual(self.srv.logins, self.srv.sessions, self.w.logs())
        self.assertNotIn("s3cret", self.w.logs())
        self.assertEqual(self.w.stop(), 0)
        self.srv.close()
        # smtps://: TLS from the first byte.
        self.serve(tls="implicit", certs=certs)
        self.worker(scheme="smtps", concurrency=2, smtp_ca_file=certs[0])
        for i in range(3):
            self.push("upload.received", "smtps%d@example.org" % i, v)
        for i in range(3):
            self.wait_to("smtps%d@example.org" % i)
        self.wait_settled()
        self.assertEqual(self.srv.tls_sessions, self.srv.sessions)

    def test_refused_login_is_retried_not_dead(self):
        self.serve(auth=("mailer", "right"))
        self.worker(concurrency=1, smtp_user="mailer", smtp_password="wrong")
        jid = self.push("upload.received", "login@example.org", TEMPLATE_VARS["upload.received"])
        wait_for(lambda: self.r.cmd("HGET", TRIES_KEY % jid, "n"), timeout=10 * SLOW,
                 what="a try")
        self.assertIn("535", self.r.cmd("HGET", TRIES_KEY % jid, "error").decode())
        self.assertEqual([d for d in self.dead() if d["id"].decode() == jid], [])
        self.assertEqual(self.pending(), 1)


# ---- a slow server: jobs that would finish too late are left for a claim ---------

class SlowServer(NotifyCase):
    catcher_mode = None

    def test_a_job_that_cannot_end_within_claim_idle_is_not_started(self):
        # Each mail takes 0.6 s; a job must start within claim-idle less
        # the SMTP timeout (0.5 s) of its delivery.  The one slot sends the
        # first job; the others would start too late: they are left
        # pending, claimed again after claim-idle and sent then, once each.
        self.catcher.start("accept", delay=0.6)
        w = self.start_notify(concurrency=1, smtp_timeout="1500ms", claim_idle="2s")
        v = TEMPLATE_VARS["guestlink.locked"]
        mail_push(self.redis, [job("guestlink.locked", "slow%d@example.org" % i, v)[1]
                               for i in range(3)])
        for i in range(3):
            self.wait_mails("slow%d@example.org" % i, 1, timeout=30)
        self.wait_settled()
        for i in range(3):
            self.assertEqual(len(self.catcher.messages("slow%d@example.org" % i)), 1)
        events = [e["event"] for e in w.log_events()]
        self.assertIn("notify.send_late", events)
        self.assertNotIn("notify.retry", events)
        self.assertEqual(self.dead(), [])


class FinishOutage(NotifyCase):
    catcher_mode = None

    def test_a_mail_sent_while_redis_is_away_is_finished_once_it_is_back(self):
        # The server took the mail, then Redis does not answer: the finish
        # (the "sent" mark and the ack) is retried every second, so the
        # job is acked when Redis is back and never claimed and sent again.
        self.catcher.start("accept", delay=0.5)
        w = self.start_notify(concurrency=1, redis_timeout="300ms")
        self.push("share.notice", "away@example.org", TEMPLATE_VARS["share.notice"])
        wait_for(lambda: metric(w, "studyshare_notify_inflight") == 1,
                 timeout=10 * SLOW, what="the mail in flight")
        self.redis.proc.send_signal(signal.SIGSTOP)
        try:
            self.wait_mails("away@example.org", 1)
            wait_for(lambda: [e for e in w.log_events() if e["event"] == "notify.redis_failed"
                              and e.get("reason") == "redis unavailable"],
                     timeout=10 * SLOW, what="a finish that failed")
        finally:
            self.redis.proc.send_signal(signal.SIGCONT)
        self.wait_settled()
        self.assertEqual(self.dead(), [])
        # Past --claim-idle (3 s): nothing was left to claim, one mail.
        time.sleep(4)
        self.assertEqual(len(self.catcher.messages("away@example.org")), 1)
        self.assertEqual(self.pending(), 0)
        events = [e["event"] for e in w.log_events()]
        self.assertNotIn("notify.finish_failed", events)
        self.assertTrue(w.alive())


# ---- SIGTERM ------------------------------------------------------------------------

class Shutdown(NotifyCase):
    catcher_mode = None

    def test_sigterm_finishes_mails_in_flight_and_claims_nothing_new(self):
        self.catcher.start("accept", delay=1.5)
        w = self.start_notify(concurrency=4, drain="9s")
        ids = [self.push("share.notice", "inflight%d@example.org" % i,
                         TEMPLATE_VARS["share.notice"]) for i in range(4)]
        wait_for(lambda: metric(w, "studyshare_notify_inflight") == 4,
                 timeout=10 * SLOW, what="4 mails in flight")
        w.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        late = [self.push("share.notice", "late%d@example.org" % i,
                          TEMPLATE_VARS["share.notice"]) for i in range(3)]
        rc = w.proc.wait(timeout=15 * SLOW)
        self.assertEqual(rc, 0)
        for i in range(4):
            self.assertEqual(len(self.catcher.messages("inflight%d@example.org" % i)), 1)
        # Acked before exit; the later jobs were left for other workers.
        self.assertEqual(self.pending(), 0)
        self.assertEqual(self.r.cmd("XLEN", "notify:jobs"), 3)
        info = self.r.cmd("XINFO", "GROUPS", "notify:jobs")[0]
        f = {info[i].decode(): info[i + 1] for i in range(0, len(info), 2)}
        self.assertEqual(f["consumers"], 0)  # it left the group on its way out
        events = [e["event"] for e in w.log_events()]
        self.assertIn("notify.stopping", events)
        self.assertNotIn("daemon.drain_expired", events)
        # A new worker sends what the first one left.
        self.catcher.stop()
        self.catcher.start("accept")
        self.start_notify()
        for i in range(3):
            self.wait_mails("late%d@example.org" % i, 1)
        self.wait_settled()
        # Each job mailed exactly once: the late ones by the new worker,
        # the ones that were in flight not again.
        for name, jids in [("late", late), ("inflight", ids)]:
            for i, jid in enumerate(jids):
                got = self.catcher.messages("%s%d@example.org" % (name, i))
                self.assertEqual([m["Message-ID"] for m in got], ["<%s@studyshare>" % jid])


# ---- configuration -------------------------------------------------------------------

class Config(unittest.TestCase):
    def run_notify(self, *args, mail_key=MAIL_KEY):
        env = dict(os.environ)
        env.pop("STUDYSHARE_SMTP_URL", None)
        env.pop("STUDYSHARE_MAIL_KEY_FILE", None)
        env["STUDYSHARE_MAIL_KEY"] = mail_key
        p = subprocess.run([os.path.join(BUILD, "studyshare-notify")] + list(args),
                           env=env, capture_output=True, text=True, timeout=30)
        return p.returncode, p.stderr

    def test_bad_settings_stop_start_up_naming_them(self):
        cases = [
            (["--smtp-url", "http://mail.example.org"], "--smtp-url"),
            (["--smtp-url", "smtp:/mail.example.org"], "--smtp-url"),
            (["--smtp-ca-file", "/nonexistent/ca.pem"], "--smtp-ca-file"),
            (["--smtp-starttls", "maybe"], "--smtp-starttls"),
            (["--from", "Name <not-an-address>"], "--from"),
            (["--smtp-timeout", "30s", "--claim-idle", "20s"], "--claim-idle"),
            (["--retry-min", "10s", "--retry-max", "1s"], "--retry-max"),
            (["--consumer-idle", "500ms"], "--consumer-idle"),
            (["--templates", "/nonexistent"], "--templates"),
            (["--concurrency", "0"], "--concurrency"),
            # a login that a stripped STARTTLS would send in clear
            (["--smtp-user", "mailer", "--smtp-starttls", "try"], "--smtp-user"),
        ]
        for args, name in cases:
            with self.subTest(args=args):
                rc, err = self.run_notify(*args)
                self.assertEqual(rc, 2, err)
                self.assertIn("studyshare-notify: " + name, err)
        # The mail key is required, and a real secret.
        for key in ["", "too-short"]:
            rc, err = self.run_notify(mail_key=key)
            self.assertEqual(rc, 2, err)
            self.assertRegex(err, "mail-key|MAIL_KEY")
            self.assertNotIn("too-short", err)

    def test_broken_template_names_file_and_line(self):
        d = tempfile.mkdtemp(prefix="ss-tpl-")
        try:
            src = os.path.join(ROOT, "services", "notify", "templates")
            for f in os.listdir(src):
                shutil.copy(os.path.join(src, f), d)
            with open(os.path.join(d, "share.notice.html"), "a") as f:
                f.write("\n{{#oops}}\n")
            rc, err = self.run_notify("--templates", d)
            self.assertEqual(rc, 2)
            self.assertIn("share.notice.html: line", err)
            self.assertIn("{{#oops}} is never closed", err)
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main()
