"""Integration tests of the guestlink daemon: real redis-server, authz, share
and guestlink over NNG (sp.py) on loopback.  The directory fixture is
imported and studies are published through share's ingest endpoint.

One stack serves every test of this file; the last class (ZZScan) then
scans every key and value in Redis and every daemon's log for the tokens,
sessions, passwords, birth dates and patient names the tests used."""
import base64
import calendar
import copy
import json
import os
import select
import socket
import struct
import subprocess
import threading
import time
import unittest

import mp
import sp
import stack
from stack import Daemon, Redis, cli, free_port, mail_jobs, metric, wait_for

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "directory.json")
with open(FIXTURE) as _f:
    FIXTURE_DOC = json.load(_f)

TOKEN_KEY = "guestlink-test-token-key-0123456789abcdef"
SEAL_KEY = "guestlink-test-seal-key-0123456789abcdef"
SHARE_TOKEN_KEY = "guestlink-test-share-key-0123456789abcdef"
PUBLIC_URL = "https://studyshare.example"
ALICE_EMAIL = "alice@stelsewhere.example"
GRACE_MS = 7 * 86400 * 1000

# Every secret the tests hand out or learn, for the final scan.
SECRETS = {"token": set(), "session": set(), "password": set(), "dob": set(),
           "name": set()}


def make_doc():
    doc = copy.deepcopy(FIXTURE_DOC)
    doc["roles"].append({"id": "linkviewer", "permissions": ["studies.view", "links.guest.view"]})
    doc["users"].append({"id": "lena", "organisation": "stelsewhere",
                         "email": "lena@stelsewhere.example", "name": "Lena Link",
                         "memberships": [{"worklist": "location:ct", "role": "linkviewer"}]})
    return doc


class Resp:
    """A small RESP2 client over one connection (stdlib only)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.s.makefile("rb")

    def close(self):
        self.f.close()
        self.s.close()

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))
        r = self.read()
        if isinstance(r, RuntimeError):
            raise r
        return r

    def read(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError("bad RESP: %r" % line)


class Stack:
    def __init__(self):
        self.redis = Redis().start()
        self.authz = Daemon("authz", self.redis).start()
        authz_url = "tcp://127.0.0.1:%d" % self.authz.port
        self.ingest_port = free_port()
        self.share = Daemon("share", self.redis, env={
            "STUDYSHARE_AUTHZ_URL": authz_url,
            "STUDYSHARE_INGEST_LISTEN": "tcp://127.0.0.1:%d" % self.ingest_port,
            "STUDYSHARE_PUB_LISTEN": "tcp://127.0.0.1:%d" % free_port(),
            "STUDYSHARE_TOKEN_KEY": SHARE_TOKEN_KEY,
        }).start()
        self.pub_port = free_port()
        self.guestlink = Daemon("guestlink", self.redis, env={
            "STUDYSHARE_AUTHZ_URL": authz_url,
            "STUDYSHARE_SHARE_URL": "tcp://127.0.0.1:%d" % self.share.port,
            "STUDYSHARE_PUB_LISTEN": "tcp://127.0.0.1:%d" % self.pub_port,
            "STUDYSHARE_TOKEN_KEY": TOKEN_KEY,
            "STUDYSHARE_SEAL_KEY": SEAL_KEY,
            "STUDYSHARE_PUBLIC_URL": PUBLIC_URL,
        }).start()
        ok(sp.call(self.authz.port, "authz.directory.import",
                   {"document": json.dumps(make_doc())}))

    def daemons(self):
        return [self.guestlink, self.share, self.authz]

    def close(self):
        rcs = [d.stop() for d in self.daemons()]
        for d in self.daemons():
            d.close()
        self.redis.close()
        return rcs


ST = None


def setUpModule():
    global ST
    ST = Stack()


def tearDownModule():
    rcs = ST.close()
    assert rcs == [0, 0, 0], "daemons did not exit 0 on SIGTERM: %r" % rcs


def ok(reply):
    assert reply["ok"], reply
    return reply["body"]


def err(reply):
    assert not reply["ok"], reply
    return reply["error"]["code"], reply["error"].get("message", "")


_uids = iter(range(1, 10 ** 9))


def new_uid():
    return "2.25.9.%d.%d" % (os.getpid(), next(_uids))


def random_token():
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def burst(port, mtype, bodies, conns=8):
    """Sends every body at once over several connections, each carrying
    many requests in flight; returns the replies in the bodies' order."""
    out = [None] * len(bodies)
    groups = [list(range(i, len(bodies), conns)) for i in range(conns)]
    errors = []

    def run(idx):
        try:
            c = sp.Conn("127.0.0.1", port, timeout=30)
            rids = {}
            for i in idx:
                env = {"v": 1, "type": mtype, "id": "burst-%d" % i, "body": bodies[i]}
                rids[c.send_raw(mp.pack(env))] = i
            for _ in idx:
                rid, reply = c.recv()
                out[rids.pop(rid)] = reply
            c.close()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(g,)) for g in groups if g]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return out


class Case(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.r = Resp(ST.redis.port)

    @classmethod
    def tearDownClass(cls):
        cls.r.close()

    def call(self, mtype, body):
        return sp.call(ST.guestlink.port, mtype, body)

    def publish(self, uid=None, wl="location:ct", **kw):
        uid = uid or new_uid()
        body = {"study_uid": uid, "worklist": wl}
        body.update(kw)
        p = kw.get("patient", {})
        if "birth_date" in p:
            SECRETS["dob"].add(p["birth_date"])
        if "name" in p:
            SECRETS["name"].add(p["name"])
        ok(sp.call(ST.ingest_port, "study.arrived", body))
        return uid

    def create(self, uid, user="alice", wl="location:ct", **kw):
        body = {"user": user, "worklist": wl, "study_uid": uid}
        body.update(kw)
        reply = self.call("guestlink.create", body)
        # refused ones are not stored (and short ones like "abc" would
        # turn up by chance in hashes)
        if reply["ok"]:
            SECRETS["token"].add(token_of(reply["body"]))
            if "password" in kw:
                SECRETS["password"].add(kw["password"])
        return reply

    def link(self, uid, **kw):
        return ok(self.create(uid, **kw))

    def redeem(self, token, password=None, session=None, addr="192.0.2.7",
               ua="TestAgent/1.0"):
        body = {"token": token, "addr": addr, "user_agent": ua}
        if password is not None:
            SECRETS["password"].add(password)
            body["password"] = password
        if session is not None:
            body["session"] = session
        reply = self.call("guestlink.redeem", body)
        if reply["ok"] and "session" in reply["body"]:
            SECRETS["session"].add(reply["body"]["session"])
        return reply

    def list(self, uid, user="alice", wl="location:ct"):
        return self.call("guestlink.list", {"user": user, "worklist": wl, "study_uid": uid})

    def listed(self, uid, link_id):
        links = ok(self.list(uid))["links"]
        return next(l for l in links if l["id"] == link_id)

    def wait_expired(self, uid, link_id, timeout=10):
        """Until the link's listing says expired: guestlink's own clock
        decides, the same comparison a redemption makes, so a redemption
        after this finds it expired without a sleep that guesses."""
        wait_for(lambda: self.listed(uid, link_id)["status"] == "expired",
                 timeout=timeout, what="link %s expired" % link_id)

    def jobs(self, template=None):
        """The jobs on notify:jobs, opened with the mail key (they are
        sealed in Redis)."""
        self.settled()
        out = []
        for j in mail_jobs(ST.redis):
            assert "open_error" not in j, j
            if template is None or j["template"] == template:
                out.append(j)
        return out

    def settled(self):
        """guestlink writes audit entries and notices after its answer,
        without awaiting them, on its one Redis connection: a call that
        awaits Redis on that connection is answered after they are
        stored."""
        ok(self.call("guestlink.upload.list", {"user": "alice", "worklist": "location:ct"}))

    def audit(self, link_id=None):
        self.settled()
        out = []
        for _id, fields in self.r.cmd("XRANGE", "audit", "-", "+"):
            e = {k.decode(): v.decode() for k, v in zip(fields[::2], fields[1::2])}
            if link_id is None or e["object"] == link_id:
                out.append(e)
        return out


def token_of(link):
    return link["url"].rsplit("/g/", 1)[1]


def upload_token(link):
    return link["url"].rsplit("/u/", 1)[1]


def next_event(sub, wait):
    """The next message on a SUB connection, or None when none came
    within wait seconds.  Waits for the first byte with select, so a
    message is never cut in half by a timeout."""
    if not select.select([sub.s], [], [], wait)[0]:
        return None
    n = struct.unpack(">Q", sub._read(8))[0]
    return sub._read(n)


class Create(Case):
    def test_fields(self):
        uid = self.publish(patient={"id": "PF1"}, study_date="20240105")
        prior = self.publish(patient={"id": "PF1"}, study_date="20230105")
        exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400 * 10))
        body = self.link(uid, max_uses=3, expires_at=exp, password="open-sesame-1",
                         max_password_attempts=4, email="patient@example.org",
                         message="Your CT images\nBest, A", view_notification=True,
                         include_priors=True, password_is_dob=False, addr="198.51.100.4")
        self.assertRegex(body["id"], r"^[0-9a-f]{20}$")
        self.assertRegex(body["url"], r"^https://studyshare\.example/g/[A-Za-z0-9_-]{43}$")
        expect = {"study_uid": uid, "worklist": "location:ct", "created_by": "alice",
                  "expires_at": exp, "max_uses": 3, "uses": 0, "max_password_attempts": 4,
                  "password_attempts": 0, "has_password": True, "password_is_dob": False,
                  "email": "patient@example.org", "message": "Your CT images\nBest, A",
                  "view_notification": True, "include_priors": True, "priors": [prior],
                  "status": "active", "email_queued": True}
        for k, v in expect.items():
            self.assertEqual(body[k], v, k)
        self.assertRegex(body["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        # the recipient's email: the URL and the message, never the password
        jobs = [j for j in self.jobs("guestlink.recipient") if j["vars"]["url"] == body["url"]]
        self.assertEqual(len(jobs), 1)
        j = jobs[0]
        self.assertEqual(j["to"], "patient@example.org")
        self.assertEqual(j["vars"]["message"], "Your CT images\nBest, A")
        self.assertEqual(j["vars"]["sharer_name"], "Alice Adams")
        self.assertEqual(j["vars"]["sharer_org"], "St Elsewhere")
        # should it not reach the address, the creator hears of it
        self.assertEqual(j["bounce_to"], "alice@stelsewhere.example")
        self.assertEqual(j["vars"]["expires_at"], stack.mail_time(exp))
        # how often it opens (a mail scanner's visit is a use too)
        self.assertEqual((j["vars"]["single_use"], j["vars"]["max_uses"]), ("", "3"))
        self.assertEqual(j["vars"]["dob_password"], "")
        self.assertNotIn("open-sesame-1", json.dumps(j))
        # one use, the birth date as the password: the mail says both
        dob = self.publish(patient={"id": "PF2", "birth_date": "19580322"})
        once = self.link(dob, max_uses=1, password_is_dob=True, email="once@example.org")
        j = [j for j in self.jobs("guestlink.recipient") if j["vars"]["url"] == once["url"]][0]
        self.assertEqual((j["vars"]["single_use"], j["vars"]["max_uses"]), ("1", ""))
        self.assertEqual(j["vars"]["dob_password"], "1")
        # audited, with the address the gateway passed
        a = self.audit(body["id"])
        self.assertEqual([e["action"] for e in a], ["guestlink.create"])
        self.assertEqual(a[0]["actor"], "alice")
        self.assertEqual(a[0]["service"], "guestlink")
        self.assertEqual(a[0]["worklist"], "location:ct")
        self.assertEqual(a[0]["addr"], "198.51.100.4")
        self.assertEqual(json.loads(a[0]["detail"])["study_uid"], uid)
        # listed as created
        listed = self.listed(uid, body["id"])
        for k, v in expect.items():
            if k != "email_queued":
                self.assertEqual(listed[k], v, k)
        self.assertEqual(listed["url"], body["url"])
        self.assertTrue(listed["can_delete"])

    def test_defaults(self):
        uid = self.publish()
        body = self.link(uid)
        self.assertIsNone(body["max_uses"])
        self.assertIsNone(body["max_password_attempts"])
        self.assertFalse(body["has_password"])
        self.assertIsNone(body["email"])
        self.assertNotIn("email_queued", body)
        self.assertEqual(body["priors"], [])
        # UTC timestamps: timegm, not mktime (local time, off by an hour
        # across a daylight-saving change)
        created = calendar.timegm(time.strptime(body["created_at"], "%Y-%m-%dT%H:%M:%SZ"))
        expires = calendar.timegm(time.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ"))
        self.assertEqual(expires - created, 30 * 86400)
        # a password alone: 5 attempts
        body = self.link(uid, password="just-a-password")
        self.assertEqual(body["max_password_attempts"], 5)
        # Redis holds the link until expiry + grace
        key = "link:{%s}" % body["id"]
        ttl = self.r.cmd("PTTL", key)
        self.assertAlmostEqual(ttl, 30 * 86400 * 1000 + GRACE_MS, delta=60000)

    def test_bad_fields_are_named(self):
        uid = self.publish()
        past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
        far = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 400 * 86400))
        cases = [
            ({"max_uses": 0}, "max_uses"),
            ({"max_uses": 10 ** 7}, "max_uses"),
            ({"max_uses": "3"}, "max_uses"),
            ({"expires_at": "tomorrow"}, "expires_at"),
            ({"expires_at": "2026-02-30T00:00:00Z"}, "expires_at"),
            ({"expires_at": past}, "expires_at"),
            ({"expires_at": far}, "expires_at"),
            ({"expires_in": 400 * 86400}, "expires_in"),
            ({"expires_in": 0}, "expires_in"),
            ({"expires_in": 60, "expires_at": far}, "expires_at"),
            ({"password": "abc"}, "password"),
            ({"password": "x" * 1025}, "password"),
            ({"max_password_attempts": 3}, "max_password_attempts"),
            ({"password": "long-enough", "max_password_attempts": 0}, "max_password_attempts"),
            ({"password": "long-enough", "max_password_attempts": 101}, "max_password_attempts"),
            ({"email": "not an address"}, "email"),
            ({"email": "a@b.example\r\nBcc: x@y.example"}, "email"),
            ({"message": "x" * 2001}, "message"),
            ({"message": "bell\x07"}, "message"),
            # no text people read: C1, a direction override, a separator
            ({"message": "next\u0085line"}, "message"),
            ({"message": "Dr \u202eevil"}, "message"),
            ({"message": "one\u2028two"}, "message"),
            ({"view_notification": "yes"}, "view_notification"),
            ({"include_priors": 1}, "include_priors"),
            ({"password_is_dob": None}, "password_is_dob"),
            ({"addr": "a b"}, "addr"),
            ({"colour": "blue"}, "colour"),
        ]
        for extra, field in cases:
            with self.subTest(field=field, extra=extra):
                code, msg = err(self.create(uid, **extra))
                self.assertEqual(code, "bad_request")
                self.assertIn(field, msg)
        for body, field in [({"user": "alice", "worklist": "ct", "study_uid": uid}, "worklist"),
                            ({"user": "alice", "worklist": "location:ct", "study_uid": "1..2"}, "study_uid"),
                            ({"worklist": "location:ct", "study_uid": uid}, "user")]:
            code, msg = err(self.call("guestlink.create", body))
            self.assertEqual(code, "bad_request")
            self.assertIn(field, msg)
        # nothing was made
        self.assertEqual(ok(self.list(uid))["links"], [])

    def test_permissions(self):
        uid = self.publish()
        self.assertEqual(err(self.create(uid, user="bob"))[0], "forbidden")
        self.assertEqual(err(self.create(uid, user="lena"))[0], "forbidden")
        self.assertEqual(err(self.create(uid, user="nobody"))[0], "forbidden")
        body = self.link(uid)
        # lena may view the links but not delete them; bob may not view
        links = ok(self.list(uid, user="lena"))["links"]
        self.assertEqual([l["id"] for l in links], [body["id"]])
        self.assertFalse(links[0]["can_delete"])
        self.assertEqual(err(self.list(uid, user="bob"))[0], "forbidden")
        self.assertEqual(err(self.call("guestlink.delete", {"user": "lena", "id": body["id"]}))[0],
                         "forbidden")
        self.assertEqual(err(self.call("guestlink.unlock", {"user": "bob", "id": body["id"]}))[0],
                         "forbidden")
        self.assertEqual(self.listed(uid, body["id"])["status"], "active")

    def test_links_of_worklists_the_caller_cannot_see_are_not_found(self):
        # carol (another organisation) and an unknown user are no members
        # of location:ct: the same answer as for an id that never was, so
        # they cannot tell that the link exists.  bob is a member (a
        # viewer) and is told what he lacks.
        body = self.link(self.publish())
        unknown = ("not_found", "no such guest link")
        for mtype in ("guestlink.delete", "guestlink.unlock"):
            self.assertEqual(err(self.call(mtype, {"user": "alice", "id": "0" * 20})), unknown)
            for user in ("carol", "nobody"):
                self.assertEqual(err(self.call(mtype, {"user": user, "id": body["id"]})),
                                 unknown, (mtype, user))
            self.assertEqual(err(self.call(mtype, {"user": "bob", "id": body["id"]}))[0],
                             "forbidden", mtype)
        self.assertEqual(self.listed(body["study_uid"], body["id"])["status"], "active")

    def test_study_not_in_worklist(self):
        uid = self.publish(wl="location:mri")
        code, msg = err(self.create(uid))
        self.assertEqual(code, "not_found")

    def test_links_of_other_worklists_are_not_listed(self):
        uid = self.publish()
        ok(sp.call(ST.ingest_port, "study.arrived", {"study_uid": uid, "worklist": "user:alice"}))
        a = self.link(uid)
        b = self.link(uid, wl="user:alice")
        self.assertEqual([l["id"] for l in ok(self.list(uid))["links"]], [a["id"]])
        self.assertEqual([l["id"] for l in ok(self.list(uid, wl="user:alice"))["links"]], [b["id"]])
        # newest first (by creation's ms: links made in the same ms have
        # no order between them)
        time.sleep(0.002)
        c = self.link(uid)
        self.assertEqual([l["id"] for l in ok(self.list(uid))["links"]], [c["id"], a["id"]])


class Redeem(Case):
    def test_a_session_ends_with_its_link(self):
        # --session-ttl is 30 min; the links expire in 2 min, and so do
        # their sessions (the cookie's end), with or without a password
        uid = self.publish()
        for pw in [None, "open-sesame-9"]:
            body = self.link(uid, expires_in=120, **({"password": pw} if pw else {}))
            got = ok(self.redeem(token_of(body), password=pw))
            exp = calendar.timegm(time.strptime(got["expires_at"], "%Y-%m-%dT%H:%M:%SZ"))
            self.assertLessEqual(exp, calendar.timegm(time.strptime(
                body["expires_at"], "%Y-%m-%dT%H:%M:%SZ")), (pw, got["expires_at"]))
            self.assertGreater(exp, time.time() + 60)
            sess = [k for k in self.r.cmd("KEYS", "link:{%s}:s:*" % body["id"])]
            self.assertEqual(len(sess), 1)
            self.assertLessEqual(self.r.cmd("PTTL", sess[0]), 120 * 1000)

    def test_use_and_session(self):
        prior = self.publish(patient={"id": "PR1"}, study_date="20200101")
        uid = self.publish(patient={"id": "PR1", "name": "REDEEM^PAT", "birth_date": "19610203"},
                           study_date="20240101", modality="MR")
        body = self.link(uid, max_uses=1, include_priors=True)
        tok = token_of(body)
        got = ok(self.redeem(tok))
        self.assertEqual(set(got), {"study", "priors", "session", "expires_at"})
        self.assertEqual(got["study"]["study_uid"], uid)
        self.assertEqual(got["study"]["modality"], "MR")
        self.assertEqual([p["study_uid"] for p in got["priors"]], [prior])
        self.assertTrue(got["session"].startswith(body["id"] + "."))
        # a reload with the session is not another use
        again = ok(self.redeem(tok, session=got["session"]))
        self.assertEqual(again["session"], got["session"])
        self.assertEqual(again["study"], got["study"])
        view = ok(self.call("guestlink.session", {"session": got["session"]}))
        self.assertEqual(view["study"], got["study"])
        self.assertEqual(view["priors"], got["priors"])
        self.assertEqual(self.listed(uid, body["id"])["uses"], 1)
        # without it, the one use is gone
        self.assertEqual(err(self.redeem(tok))[0], "not_found")
        self.assertEqual(self.listed(uid, body["id"])["status"], "used_up")
        # a session of another link does not open this one
        other = self.link(uid, max_uses=1)
        self.assertEqual(err(self.redeem(tok, session=ok(self.redeem(token_of(other)))["session"]))[0],
                         "not_found")
        # junk sessions are not found
        self.assertEqual(err(self.call("guestlink.session", {"session": "junk"}))[0], "not_found")
        # nor is an upload link's session: it opens no study
        up = ok(self.call("guestlink.upload.create", {"user": "alice", "worklist": "location:ct"}))
        up_sess = ok(self.call("guestlink.upload.redeem",
                               {"token": up["url"].rsplit("/u/", 1)[1], "addr": "192.0.2.7",
                                "user_agent": "TestAgent/1.0"}))["session"]
        SECRETS["session"].add(up_sess)
        self.assertEqual(err(self.call("guestlink.session", {"session": up_sess}))[0], "not_found")
        self.assertEqual(err(self.call("guestlink.session",
                                       {"session": body["id"] + "." + random_token()}))[0], "not_found")
        # the session key is a hash, with a TTL
        keys = self.scan("link:{%s}:s:*" % body["id"])
        self.assertEqual(len(keys), 1)
        self.assertRegex(keys[0], rb"^link:\{[0-9a-f]{20}\}:s:[0-9a-f]{64}$")
        self.assertGreater(self.r.cmd("PTTL", keys[0]), 0)

    def test_the_creators_message_comes_with_the_study(self):
        # With the study on every way to it: a use, a reload, the session,
        # a right password; a link without one has no "message" at all.
        uid = self.publish(study_date="20240102", description="CT MSG")
        note = "For the MDT on Friday.\nBest, A"
        tok = token_of(self.link(uid, message=note))
        got = ok(self.redeem(tok))
        self.assertEqual(set(got), {"study", "priors", "message", "session", "expires_at"})
        self.assertEqual(got["message"], note)
        self.assertEqual(got["study"]["study_uid"], uid)
        self.assertEqual(ok(self.redeem(tok, session=got["session"]))["message"], note)
        self.assertEqual(ok(self.call("guestlink.session", {"session": got["session"]}))["message"], note)
        pw = self.link(uid, message=note, password="msg-pw-1", view_notification=True)
        got = ok(self.redeem(token_of(pw), password="msg-pw-1"))
        self.assertEqual(got["message"], note)
        # the creator's viewed notice still names the study
        self.settled()
        viewed = [j for j in self.jobs("guestlink.viewed") if j["vars"]["link_id"] == pw["id"]]
        self.assertEqual([j["vars"].get("study_description") for j in viewed], ["CT MSG"])
        self.assertNotIn("message", ok(self.redeem(token_of(self.link(uid)))))

    def scan(self, pattern):
        out, cursor = [], b"0"
        while True:
            cursor, keys = self.r.cmd("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            out += keys
            if cursor == b"0":
                return out

    def test_200_concurrent_redemptions_of_7_uses(self):
        uid = self.publish()
        body = self.link(uid, max_uses=7)
        tok = token_of(body)
        replies = burst(ST.guestlink.port, "guestlink.redeem",
                        [{"token": tok, "addr": "192.0.2.%d" % (i % 250 + 1),
                          "user_agent": "burst"} for i in range(200)])
        good = [r for r in replies if r["ok"]]
        self.assertEqual(len(good), 7)
        for r in good:
            self.assertEqual(r["body"]["study"]["study_uid"], uid)
            SECRETS["session"].add(r["body"]["session"])
        self.assertEqual(len({r["body"]["session"] for r in good}), 7)
        self.assertEqual({(r["error"]["code"], r["error"]["message"]) for r in replies if not r["ok"]},
                         {("not_found", "no such guest link")})
        listed = self.listed(uid, body["id"])
        self.assertEqual(listed["uses"], 7)
        self.assertEqual(listed["status"], "used_up")
        uses = [e for e in self.audit(body["id"]) if e["action"] == "guestlink.use"]
        self.assertEqual(len(uses), 7)
        self.assertEqual(uses[0]["actor"], "-")
        self.assertRegex(uses[0]["addr"], r"^192\.0\.2\.\d+$")

    def test_50_concurrent_wrong_passwords_limit_5(self):
        uid = self.publish(description="CT HEAD lock test")
        body = self.link(uid, password="right-horse-battery", max_password_attempts=5)
        tok = token_of(body)
        SECRETS["password"].add("wrong-guess")
        replies = burst(ST.guestlink.port, "guestlink.redeem",
                        [{"token": tok, "password": "wrong-guess", "addr": "203.0.113.9",
                          "user_agent": "guesser"} for _ in range(50)])
        wrong = [r["body"] for r in replies if r["ok"]]
        self.assertEqual(len(wrong), 5)
        self.assertTrue(all(w["wrong_password"] for w in wrong))
        self.assertEqual(sorted(w["attempts_left"] for w in wrong), [0, 1, 2, 3, 4])
        # the others: told to wait while the five are checked, or (after
        # the lock) that the link is gone
        self.assertLessEqual({r["error"]["code"] for r in replies if not r["ok"]},
                             {"not_found", "too_many_requests"})
        listed = self.listed(uid, body["id"])
        self.assertEqual(listed["password_attempts"], 5)
        self.assertEqual(listed["status"], "locked")
        self.assertEqual(listed["uses"], 0)
        # locked for good: the right password is refused too
        self.assertEqual(err(self.redeem(tok, password="right-horse-battery"))[0], "not_found")
        self.assertEqual(err(self.redeem(tok))[0], "not_found")
        # the creator is told, once
        locks = [j for j in self.jobs("guestlink.locked") if j["vars"]["link_id"] == body["id"]]
        self.assertEqual(len(locks), 1)
        self.assertEqual(locks[0]["to"], ALICE_EMAIL)
        self.assertEqual(locks[0]["vars"]["attempts"], "5")
        self.assertEqual(locks[0]["vars"]["addr"], "203.0.113.9")
        # the study named, the link's being only an id
        self.assertEqual(locks[0]["vars"]["study_description"], "CT HEAD lock test")
        actions = [e["action"] for e in self.audit(body["id"])]
        self.assertEqual(actions.count("guestlink.password_failed"), 5)
        self.assertEqual(actions.count("guestlink.lock"), 1)
        self.assertEqual(actions.count("guestlink.use"), 0)
        # The notice is confirmed once the mail is queued ...
        key = "link:{%s}" % body["id"]
        wait_for(lambda: self.r.cmd("HEXISTS", key, "lockmail") == 0, timeout=5,
                 what="the lock's notice confirmed")
        # ... and had its answer been lost (a notice never confirmed, its
        # lease over), the next redemption sends it, once.
        self.r.cmd("HSET", key, "lockmail", "1")
        self.assertEqual(err(self.redeem(tok))[0], "not_found")
        wait_for(lambda: self.r.cmd("HEXISTS", key, "lockmail") == 0, timeout=5,
                 what="the late notice confirmed")
        self.assertEqual(err(self.redeem(tok))[0], "not_found")
        locks = [j for j in self.jobs("guestlink.locked") if j["vars"]["link_id"] == body["id"]]
        self.assertEqual(len(locks), 2)
        self.assertEqual(locks[1]["vars"]["attempts"], "5")
        self.assertEqual(locks[1]["vars"]["study_description"], "CT HEAD lock test")
        actions = [e["action"] for e in self.audit(body["id"])]
        self.assertEqual(actions.count("guestlink.lock"), 2)

    def test_password_flow(self):
        uid = self.publish()
        body = self.link(uid, password="tulip-lantern", max_password_attempts=3, max_uses=2)
        tok = token_of(body)
        self.assertEqual(ok(self.redeem(tok)), {"password_required": True})
        self.assertEqual(ok(self.redeem(tok, password="tulip")),
                         {"wrong_password": True, "attempts_left": 2})
        got = ok(self.redeem(tok, password="tulip-lantern"))
        self.assertEqual(got["study"]["study_uid"], uid)
        listed = self.listed(uid, body["id"])
        self.assertEqual((listed["uses"], listed["password_attempts"]), (1, 1))
        # with the session no password is asked and no use counted
        self.assertEqual(ok(self.redeem(tok, session=got["session"]))["session"], got["session"])
        self.assertEqual(self.listed(uid, body["id"])["uses"], 1)

    def test_abandoned_attempts_count_and_are_audited(self):
        # An attempt whose guestlink died between reserving and settling:
        # its reservation's lease has run out.
        uid = self.publish()
        body = self.link(uid, password="tulip-lantern", max_password_attempts=3)
        tok = token_of(body)
        self.r.cmd("ZADD", "link:{%s}:res" % body["id"], "1", "dead-attempt")
        got = ok(self.redeem(tok, password="tulip-lantern"))
        self.assertIn("session", got)
        self.assertEqual(self.listed(uid, body["id"])["password_attempts"], 1)
        failed = [e for e in self.audit(body["id"])
                  if e["action"] == "guestlink.password_failed"]
        self.assertEqual(len(failed), 1)
        detail = json.loads(failed[0]["detail"])
        self.assertEqual((detail["abandoned"], detail["attempts"]), (1, 1))
        self.assertEqual(detail["study_uid"], uid)

    def test_an_attempt_while_the_others_left_are_checked_is_told_to_wait(self):
        # The last attempt left is being checked (a reservation whose lease
        # runs): another (a double-click) is not told the link is gone.
        uid = self.publish()
        body = self.link(uid, password="tulip-lantern", max_password_attempts=1)
        key = "link:{%s}" % body["id"]
        far = str(int(time.time() * 1000) + 60000)
        self.r.cmd("ZADD", key + ":res", far, "in-flight")
        r = self.redeem(token_of(body), password="tulip-lantern")
        self.assertEqual(err(r), ("too_many_requests", "the link's password is being checked; "
                                                       "retry in a moment"))
        self.assertEqual(r["error"].get("retry_after"), 1)
        # nothing counted; once that attempt is settled, this one goes
        self.assertEqual(self.listed(uid, body["id"])["password_attempts"], 0)
        self.r.cmd("ZREM", key + ":res", "in-flight")
        self.assertIn("session", ok(self.redeem(token_of(body), password="tulip-lantern")))

    def test_abandoned_attempts_that_lock_are_audited(self):
        # Two reservations whose guestlink died: the next attempt counts
        # them, which reaches the limit and locks.  Each counted attempt
        # is in the audit stream, then the lock.
        uid = self.publish(description="CT HEAD lock test")
        body = self.link(uid, password="tulip-lantern", max_password_attempts=2)
        key = "link:{%s}" % body["id"]
        self.r.cmd("ZADD", key + ":res", "1000", "fakeA", "1000", "fakeB")
        self.assertEqual(err(self.redeem(token_of(body), password="any-guess"))[0], "not_found")
        self.assertEqual(self.r.cmd("HGET", key, "state"), b"locked")
        audited = [e for e in self.audit(body["id"])
                   if e["action"] in ("guestlink.password_failed", "guestlink.lock")]
        self.assertEqual([e["action"] for e in audited],
                         ["guestlink.password_failed", "guestlink.lock"])
        self.assertEqual(json.loads(audited[0]["detail"]),
                         {"study_uid": uid, "attempts": 2, "abandoned": 2})
        self.assertEqual(json.loads(audited[1]["detail"]), {"study_uid": uid, "attempts": 2})
        locks = [j for j in self.jobs("guestlink.locked") if j["vars"]["link_id"] == body["id"]]
        self.assertEqual(len(locks), 1)
        self.assertEqual(locks[0]["vars"]["study_description"], "CT HEAD lock test")

    def test_dob_password(self):
        uid = self.publish(patient={"id": "PD1", "name": "DOB^PAT", "birth_date": "19800131"})
        body = self.link(uid, password_is_dob=True)
        self.assertTrue(body["has_password"])
        self.assertTrue(body["password_is_dob"])
        self.assertEqual(body["max_password_attempts"], 5)
        tok = token_of(body)
        self.assertEqual(ok(self.redeem(tok)), {"password_required": True})
        # day or month first cannot be told apart: a wrong password
        self.assertEqual(ok(self.redeem(tok, password="31/01/1980"))["attempts_left"], 4)
        self.assertEqual(ok(self.redeem(tok, password="19800130"))["attempts_left"], 3)
        got = ok(self.redeem(tok, password="19800131"))
        self.assertEqual(got["study"]["patient"]["birth_date"], "19800131")
        # year first, as people write it, with stray spaces: the same date
        for typed in ("1980-01-31", " 1980/01/31 ", "1980.01.31"):
            self.assertIn("session", ok(self.redeem(tok, password=typed)), typed)
        self.assertEqual(self.listed(uid, body["id"])["uses"], 4)

    def test_typed_dates_are_only_joined_for_a_birth_date(self):
        uid = self.publish(patient={"id": "PD4", "birth_date": "19800131"})
        body = self.link(uid, password="19800131")
        tok = token_of(body)
        self.assertTrue(ok(self.redeem(tok, password="1980-01-31"))["wrong_password"])
        self.assertIn("session", ok(self.redeem(tok, password="19800131")))

    def test_explicit_password_overrides_dob(self):
        uid = self.publish(patient={"id": "PD2", "birth_date": "19750615"})
        body = self.link(uid, password_is_dob=True, password="override-pass")
        self.assertFalse(body["password_is_dob"])
        tok = token_of(body)
        self.assertTrue(ok(self.redeem(tok, password="19750615"))["wrong_password"])
        ok(self.redeem(tok, password="override-pass"))["session"]

    def test_dob_without_birth_date(self):
        uid = self.publish(patient={"id": "PD3"})
        code, msg = err(self.create(uid, password_is_dob=True))
        self.assertEqual(code, "unprocessable")
        self.assertIn("birth date", msg)
        uid2 = self.publish()
        self.assertEqual(err(self.create(uid2, password_is_dob=True))[0], "unprocessable")
        # with a password it is fine
        self.link(uid, password_is_dob=True, password="given-instead")

    def test_expiry(self):
        uid = self.publish()
        # 2 s, not 1: the redemption below must come before expiry even
        # on a slow (sanitized) run
        body = self.link(uid, expires_in=2)
        tok = token_of(body)
        ok(self.redeem(tok))
        self.assertEqual(self.listed(uid, body["id"])["status"], "active")
        self.wait_expired(uid, body["id"])
        self.assertEqual(err(self.redeem(tok))[0], "not_found")
        listed = self.listed(uid, body["id"])
        self.assertEqual(listed["status"], "expired")
        # the keys go a grace period after expiry
        ttl = self.r.cmd("PTTL", "link:{%s}" % body["id"])
        self.assertGreater(ttl, GRACE_MS - 60000)
        self.assertLessEqual(ttl, GRACE_MS)

    def test_delete(self):
        uid = self.publish()
        body = self.link(uid, password="delete-me-pass")
        tok = token_of(body)
        sess = ok(self.redeem(tok, password="delete-me-pass"))["session"]
        self.assertEqual(ok(self.call("guestlink.delete", {"user": "alice", "id": body["id"],
                                                           "addr": "198.51.100.9"})),
                         {"id": body["id"], "status": "deleted"})
        # at once: the link, its password and its sessions
        self.assertEqual(err(self.redeem(tok))[0], "not_found")
        self.assertEqual(err(self.redeem(tok, password="delete-me-pass"))[0], "not_found")
        self.assertEqual(err(self.redeem(tok, session=sess))[0], "not_found")
        self.assertEqual(err(self.call("guestlink.session", {"session": sess}))[0], "not_found")
        listed = self.listed(uid, body["id"])
        self.assertEqual(listed["status"], "deleted")
        self.assertIsNone(listed["url"])
        # its secrets are gone from Redis; what is left expires with grace
        rec = self.r.cmd("HGETALL", "link:{%s}" % body["id"])
        fields = set(rec[::2])
        self.assertFalse({b"tok", b"view", b"pw"} & fields)
        self.assertLessEqual(self.r.cmd("PTTL", "link:{%s}" % body["id"]), GRACE_MS)
        # deleting again changes nothing and is not audited again
        ok(self.call("guestlink.delete", {"user": "alice", "id": body["id"]}))
        dels = [e for e in self.audit(body["id"]) if e["action"] == "guestlink.delete"]
        self.assertEqual(len(dels), 1)
        self.assertEqual(dels[0]["addr"], "198.51.100.9")
        self.assertEqual(err(self.call("guestlink.delete", {"user": "alice", "id": "0" * 20}))[0],
                         "not_found")
        self.assertEqual(err(self.call("guestlink.delete", {"user": "alice", "id": "nope"}))[0],
                         "not_found")

    def test_malformed_ids_are_not_found(self):
        # Like an unknown id, and like a malformed upload link id: the
        # caller learns nothing from the shape of what it sent.
        for mtype in ("guestlink.delete", "guestlink.unlock"):
            for bad in ("nope", "0" * 19, "0" * 21, "A" * 20, "g" * 20):
                self.assertEqual(err(self.call(mtype, {"user": "alice", "id": bad})),
                                 ("not_found", "no such guest link"), (mtype, bad))
        for mtype, extra in (("guestlink.upload.delete", {}),
                             ("guestlink.upload.update", {"max_uses": 1})):
            for bad in ("nope", "0" * 21, "0" * 64):
                body = dict(extra, user="alice", id=bad)
                self.assertEqual(err(self.call(mtype, body)),
                                 ("not_found", "no such upload link"), (mtype, bad))
        # beyond any id's length: a field out of bounds, on both kinds
        for mtype in ("guestlink.delete", "guestlink.upload.delete"):
            self.assertEqual(err(self.call(mtype, {"user": "alice", "id": "0" * 65}))[0],
                             "bad_request")

    def test_unlock(self):
        uid = self.publish()
        body = self.link(uid, password="unlock-me-pass", max_password_attempts=2)
        tok = token_of(body)
        self.assertEqual(ok(self.redeem(tok, password="wrong-one"))["attempts_left"], 1)
        self.assertEqual(ok(self.redeem(tok, password="wrong-one"))["attempts_left"], 0)
        self.assertEqual(err(self.redeem(tok, password="unlock-me-pass"))[0], "not_found")
        # a notice still unconfirmed does not outlive the lock
        self.r.cmd("HSET", "link:{%s}" % body["id"], "lockmail", "1")
        got = ok(self.call("guestlink.unlock", {"user": "alice", "id": body["id"]}))
        self.assertEqual(self.r.cmd("HEXISTS", "link:{%s}" % body["id"], "lockmail"), 0)
        self.assertEqual(got["status"], "active")
        self.assertEqual(got["password_attempts"], 0)
        self.assertEqual(got["url"], body["url"])
        ok(self.redeem(tok, password="unlock-me-pass"))
        # unlocking an active link changes nothing
        self.assertEqual(ok(self.call("guestlink.unlock", {"user": "alice", "id": body["id"]}))["status"],
                         "active")
        self.assertEqual([e["action"] for e in self.audit(body["id"])].count("guestlink.unlock"), 1)
        # a link that has otherwise ended is not unlocked
        ok(self.call("guestlink.delete", {"user": "alice", "id": body["id"]}))
        code, msg = err(self.call("guestlink.unlock", {"user": "alice", "id": body["id"]}))
        self.assertEqual(code, "conflict")
        self.assertIn("deleted", msg)

    def test_frozen_priors(self):
        old = self.publish(patient={"id": "PP1"}, study_date="20200101")
        uid = self.publish(patient={"id": "PP1"}, study_date="20240101")
        with_priors = self.link(uid, include_priors=True)
        without = self.link(uid)
        # a prior that arrives after the link was made is not exposed
        later = self.publish(patient={"id": "PP1"}, study_date="20220101")
        got = ok(self.redeem(token_of(with_priors)))
        self.assertEqual([p["study_uid"] for p in got["priors"]], [old])
        self.assertEqual(self.listed(uid, with_priors["id"])["priors"], [old])
        self.assertEqual(ok(self.redeem(token_of(without)))["priors"], [])
        # share itself now knows both
        now = ok(sp.call(ST.share.port, "share.study.lookup", {"worklist": "location:ct", "study_uid": uid}))
        self.assertEqual([p["study_uid"] for p in now["priors"]], [later, old])
        # and a link made now freezes both
        fresh = self.link(uid, include_priors=True)
        self.assertEqual(fresh["priors"], [later, old])

    def test_view_notification(self):
        uid = self.publish(description="MR KNEE <left> é")
        body = self.link(uid, view_notification=True, email="viewer@example.org")
        quiet = self.link(uid)
        t0 = time.time()
        ok(self.redeem(token_of(body), addr="198.51.100.77",
                       ua="Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0\r\n"
                          "Flagged: confirm your password at https://phish.example"))
        t1 = time.time()
        ok(self.redeem(token_of(quiet)))
        jobs = [j for j in self.jobs("guestlink.viewed") if j["vars"]["link_id"] == body["id"]]
        self.assertEqual(len(jobs), 1)
        v = jobs[0]["vars"]
        self.assertEqual(jobs[0]["to"], ALICE_EMAIL)
        self.assertEqual(v["addr"], "198.51.100.77")
        # the browser named from a table: none of the guest's own words
        self.assertEqual(v["user_agent"], "Firefox on Linux")
        self.assertNotIn("phish", json.dumps(jobs))
        self.assertEqual(v["recipient"], "viewer@example.org")
        self.assertEqual(v["study_description"], "MR KNEE <left> é")
        # the use's time as people read it (the minute it fell in)
        self.assertIn(v["time"], {stack.mail_time(t0), stack.mail_time(t1)})
        self.assertEqual([j for j in self.jobs("guestlink.viewed") if j["vars"]["link_id"] == quiet["id"]], [])

    def test_accessed_event(self):
        uid = self.publish()
        c = sp.Conn("127.0.0.1", ST.pub_port, proto=sp.PROTO_SUB, timeout=5)
        # guestlink sends no event while no subscriber is attached (it
        # counts it as unheard), and our pipe attaches a moment after the
        # connection is up: redeem fresh links until an event comes,
        # within a bound.  Any of them may be the one heard.
        links, msg = {}, None
        try:
            end = time.monotonic() + 10
            while msg is None and time.monotonic() < end:
                body = self.link(uid)
                links[body["id"]] = body
                ok(self.redeem(token_of(body), addr="198.51.100.5"))
                msg = next_event(c, 0.2)
        finally:
            c.close()
        self.assertIsNotNone(msg, "no guestlink.accessed event after %d redemptions" % len(links))
        topic, env = msg.split(b"\x00", 1)
        self.assertEqual(topic, b"guestlink.accessed")
        ev = mp.unpack(env)
        self.assertEqual(ev["type"], "guestlink.accessed")
        self.assertIn(ev["body"]["link_id"], links)
        self.assertEqual(ev["body"]["study_uid"], uid)
        self.assertEqual(ev["body"]["worklist"], "location:ct")
        self.assertEqual(ev["body"]["addr"], "198.51.100.5")
        self.assertRegex(ev["body"]["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def test_bad_requests(self):
        for body, field in [({"addr": "1.2.3.4", "user_agent": ""}, "token"),
                            ({"token": "x", "user_agent": ""}, "addr"),
                            ({"token": "x", "addr": "1.2.3.4"}, "user_agent"),
                            ({"token": "x", "addr": "a b", "user_agent": ""}, "addr"),
                            ({"token": 5, "addr": "1.2.3.4", "user_agent": ""}, "token"),
                            ({"token": "x", "addr": "1.2.3.4", "user_agent": "", "extra": 1}, "extra")]:
            code, msg = err(self.call("guestlink.redeem", body))
            self.assertEqual(code, "bad_request")
            self.assertIn(field, msg)


class UploadLinks(Case):
    def upload_create(self, **kw):
        body = {"user": "alice", "worklist": "location:ct"}
        body.update(kw)
        link = ok(self.call("guestlink.upload.create", body))
        SECRETS["token"].add(upload_token(link))
        return link

    def upload_page(self, link):
        got = ok(self.call("guestlink.upload.redeem",
                           {"token": upload_token(link), "addr": "192.0.2.7",
                            "user_agent": "TestAgent/1.0"}))
        SECRETS["session"].add(got["session"])
        return got["upload"]

    def update(self, link, **kw):
        body = {"user": "alice", "id": link["id"]}
        body.update(kw)
        return ok(self.call("guestlink.upload.update", body))

    def test_the_upload_request_mail(self):
        link = self.upload_create(email="sender@example.org", message="the May CT")
        jobs = [j for j in self.jobs("upload.request") if j["to"] == "sender@example.org"]
        self.assertEqual(len(jobs), 1)
        v = jobs[0]["vars"]
        self.assertEqual((v["sharer_name"], v["sharer_org"], v["message"]),
                         ("Alice Adams", "St Elsewhere", "the May CT"))
        self.assertEqual(v["url"], link["url"])
        # should it not reach the address, the creator hears of it
        self.assertEqual(jobs[0]["bounce_to"], "alice@stelsewhere.example")

    def test_an_edited_message_reaches_the_upload_page(self):
        link = self.upload_create(message="first message")
        self.assertEqual(self.upload_page(link)["message"], "first message")
        self.assertEqual(self.update(link, message="SECOND message")["message"], "SECOND message")
        self.assertEqual(self.upload_page(link),
                         {"id": link["id"], "worklist": "location:ct", "message": "SECOND message"})
        # other edits leave the page as it is; an empty message is none
        self.update(link, notify_on_upload=True)
        self.assertEqual(self.upload_page(link)["message"], "SECOND message")
        self.assertIsNone(self.update(link, message="")["message"])
        self.assertIsNone(self.upload_page(link)["message"])

    def test_links_of_worklists_the_caller_cannot_see_are_not_found(self):
        link = self.upload_create()
        unknown = ("not_found", "no such upload link")
        for mtype, extra in (("guestlink.upload.delete", {}),
                             ("guestlink.upload.update", {"max_uses": 1})):
            self.assertEqual(err(self.call(mtype, dict(extra, user="alice", id="0" * 20))), unknown)
            for user in ("carol", "nobody"):
                self.assertEqual(err(self.call(mtype, dict(extra, user=user, id=link["id"]))),
                                 unknown, (mtype, user))
            self.assertEqual(err(self.call(mtype, dict(extra, user="bob", id=link["id"])))[0],
                             "forbidden", mtype)
        self.assertIsNone(self.upload_page(link)["message"])

    def test_upload_links_are_listed_newest_first(self):
        # The index is ordered by purge time: the older link purges later.
        older = self.upload_create(expires_in=3000)
        time.sleep(0.002)  # the list orders by creation's ms
        newer = self.upload_create(expires_in=700)
        links = ok(self.call("guestlink.upload.list",
                             {"user": "alice", "worklist": "location:ct"}))["links"]
        ids = [l["id"] for l in links]
        self.assertLess(ids.index(newer["id"]), ids.index(older["id"]))
        made = [l["created_at"] for l in links]
        self.assertEqual(made, sorted(made, reverse=True))


class OwnGuestlink(Case):
    """A second guestlink of its own settings (over the stack's addresses
    and keys), on the stack's Redis: self.own."""
    settings = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = {k: ST.guestlink.env[k] for k in (
            "STUDYSHARE_AUTHZ_URL", "STUDYSHARE_SHARE_URL", "STUDYSHARE_TOKEN_KEY",
            "STUDYSHARE_SEAL_KEY", "STUDYSHARE_MAIL_KEY", "STUDYSHARE_PUBLIC_URL")}
        env.update(cls.settings, STUDYSHARE_PUB_LISTEN="tcp://127.0.0.1:%d" % free_port())
        cls.own = Daemon("guestlink", ST.redis, env=env).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.own.stop()
        cls.own.close()
        super().tearDownClass()
        assert rc == 0, rc


class ViewNoticeBound(OwnGuestlink):
    """A guestlink with --view-notice-max 2 per 3 s: a link opened over
    and over mails its creator twice, the second saying it is the last
    until the window ends; the views after it are told by the first mail
    of the next window."""
    settings = {"STUDYSHARE_VIEW_NOTICE_MAX": "2", "STUDYSHARE_VIEW_NOTICE_WINDOW": "3s"}

    def open_link(self, token):
        reply = sp.call(self.own.port, "guestlink.redeem",
                        {"token": token, "addr": "192.0.2.9", "user_agent": "x"})
        SECRETS["session"].add(reply["body"]["session"])
        return ok(reply)

    def test_a_link_opened_over_and_over_mails_a_bounded_number(self):
        uid = self.publish()
        link = self.link(uid, view_notification=True)
        t0 = time.time()
        for _ in range(5):
            self.open_link(token_of(link))
        mails = [j["vars"] for j in self.jobs("guestlink.viewed")
                 if j["vars"]["link_id"] == link["id"]]
        self.assertEqual(len(mails), 2, "two mails for five views")
        self.assertEqual([m["quiet_until"] for m in mails][0], "")
        # the second says until when it is the last (the window: 3 s)
        self.assertIn(mails[1]["quiet_until"],
                      {stack.mail_time(t0 + 3), stack.mail_time(time.time() + 3)})
        self.assertEqual([m["held"] for m in mails], ["", ""])
        time.sleep(3.2)
        self.open_link(token_of(link))
        mails = [j["vars"] for j in self.jobs("guestlink.viewed")
                 if j["vars"]["link_id"] == link["id"]]
        self.assertEqual(len(mails), 3)
        # the three held back, since the window before began
        self.assertEqual(mails[2]["held"], "3")
        self.assertIn(mails[2]["held_since"], {stack.mail_time(t0), stack.mail_time(t0 + 1)})
        self.assertEqual(mails[2]["quiet_until"], "")
        # every view was a use, audited, whether mailed or not
        self.assertEqual(self.listed(uid, link["id"])["uses"], 6)
        self.assertEqual([e["action"] for e in self.audit(link["id"])].count("guestlink.use"), 6)


class Overload(OwnGuestlink):
    """A guestlink with one worker and --checks-max 2: password checks
    past the bound are refused before an attempt is reserved."""
    settings = {"STUDYSHARE_WORKERS": "1", "STUDYSHARE_CHECKS_MAX": "2"}

    def test_checks_past_the_bound_are_refused_uncounted(self):
        uid = self.publish()
        body = self.link(uid, password="plum-anchor-7", max_password_attempts=100)
        tok = token_of(body)
        SECRETS["password"].add("flood-guess")
        replies = burst(self.own.port, "guestlink.redeem",
                        [{"token": tok, "password": "flood-guess", "addr": "203.0.113.%d" % i,
                          "user_agent": "flood"} for i in range(40)])
        wrong = [r for r in replies if r["ok"]]
        busy = [r for r in replies if not r["ok"]]
        self.assertTrue(all(r["body"].get("wrong_password") for r in wrong), wrong)
        self.assertGreater(len(busy), 0)
        self.assertGreaterEqual(len(wrong), 1)
        for r in busy:
            self.assertEqual(r["error"]["code"], "too_many_requests", r)
            self.assertEqual(r["error"].get("retry_after"), 1, r)
        # only the checked ones count against the link
        self.assertEqual(self.listed(uid, body["id"])["password_attempts"], len(wrong))
        self.assertEqual(self.r.cmd("ZCARD", "link:{%s}:res" % body["id"]), 0)
        self.assertEqual(metric(self.own.http("/metrics")[1],
                                'studyshare_guestlink_redemptions_total{result="busy"}'),
                         len(busy))
        # once the flood is over the right password opens the link
        self.assertIn("study", ok(sp.call(self.own.port, "guestlink.redeem",
                                          {"token": tok, "password": "plum-anchor-7",
                                           "addr": "203.0.113.1", "user_agent": "ok"})))

    def test_links_with_a_password_past_the_bound_are_refused(self):
        # A new link's password is hashed on the same workers: past the
        # bound the link is not made (retry in 1 s); one without a
        # password is, whatever the load.
        uid = self.publish()
        SECRETS["password"].add("flood-link-pass")
        guest = {"user": "alice", "worklist": "location:ct", "study_uid": uid,
                 "password": "flood-link-pass"}
        upload = {"user": "alice", "worklist": "location:ct", "password": "flood-link-pass"}
        replies = (burst(self.own.port, "guestlink.create", [guest] * 20) +
                   burst(self.own.port, "guestlink.upload.create", [upload] * 20))
        for r in replies:
            if r["ok"]:  # /g/<token> or /u/<token>
                SECRETS["token"].add(r["body"]["url"].rsplit("/", 1)[1])
        for kind, got in (("guest", replies[:20]), ("upload", replies[20:])):
            made = [r for r in got if r["ok"]]
            busy = [r["error"] for r in got if not r["ok"]]
            self.assertGreaterEqual(len(made), 1, kind)
            self.assertGreater(len(busy), 0, kind)
            for e in busy:
                self.assertEqual((e["code"], e.get("retry_after")), ("too_many_requests", 1), e)
        # a refused link is not in the worklist's list
        ids = {r["body"]["id"] for r in replies[:20] if r["ok"]}
        listed = {l["id"] for l in ok(sp.call(self.own.port, "guestlink.list", {
            "user": "alice", "worklist": "location:ct", "study_uid": uid}))["links"]}
        self.assertEqual(listed, ids)
        # the flood over, the counter is back: a link with a password is made
        made = ok(sp.call(self.own.port, "guestlink.create", guest))
        SECRETS["token"].add(token_of(made))
        self.assertIn(made["id"], {l["id"] for l in ok(self.list(uid))["links"]})


class Unusable(Case):
    def raw(self, mtype, body):
        c = sp.Conn("127.0.0.1", ST.guestlink.port)
        try:
            env = {"v": 1, "type": mtype, "id": "same-id", "body": body}
            c.send_raw(mp.pack(env))
            n = struct.unpack(">Q", c._read(8))[0]
            return c._read(n)[4:]
        finally:
            c.close()

    def redeem_raw(self, token, **kw):
        body = {"token": token, "addr": "192.0.2.1", "user_agent": "x"}
        body.update(kw)
        return self.raw("guestlink.redeem", body)

    def test_every_unusable_link_answers_the_same_bytes(self):
        uid = self.publish()
        expiring = self.link(uid, expires_in=1)
        expired = token_of(expiring)
        deleted = self.link(uid)
        ok(self.call("guestlink.delete", {"user": "alice", "id": deleted["id"]}))
        used = token_of(self.link(uid, max_uses=1))
        ok(self.redeem(used))
        locked = token_of(self.link(uid, password="locked-pass", max_password_attempts=1))
        ok(self.redeem(locked, password="not-it"))
        self.wait_expired(uid, expiring["id"])
        answers = {
            "unknown": self.redeem_raw(random_token()),
            "malformed": self.redeem_raw("not-a-token"),
            "empty": self.redeem_raw(""),
            "expired": self.redeem_raw(expired),
            "deleted": self.redeem_raw(token_of(deleted)),
            "used_up": self.redeem_raw(used),
            "locked": self.redeem_raw(locked),
            "locked, right password": self.redeem_raw(locked, password="locked-pass"),
            "used_up, password": self.redeem_raw(used, password="whatever"),
            "session": self.raw("guestlink.session", {"session": "junk"}),
        }
        first = answers["unknown"]
        self.assertEqual(mp.unpack(first), {"v": 1, "id": "same-id", "ok": False,
                                            "error": {"code": "not_found",
                                                      "message": "no such guest link"}})
        for name, a in answers.items():
            self.assertEqual(a, first, name)


class Cli(Case):
    def test_links_list(self):
        uid = self.publish()
        body = self.link(uid)
        rc, out, errs = cli("--guestlink", "tcp://127.0.0.1:%d" % ST.guestlink.port,
                            "links", "list", uid, "--worklist", "location:ct", "--user", "alice")
        self.assertEqual(rc, 0, errs)
        self.assertEqual([l["id"] for l in json.loads(out)["links"]], [body["id"]])
        rc, out, errs = cli("--guestlink", "tcp://127.0.0.1:%d" % ST.guestlink.port,
                            "links", "list", uid, "--worklist", "location:ct", "--user", "bob")
        self.assertEqual(rc, 1)
        self.assertIn("forbidden", errs)
        rc, _, _ = cli("links", "list", uid)
        self.assertEqual(rc, 2)


class Metrics(Case):
    def test_metrics_pass_promtool(self):
        used = 'studyshare_guestlink_redemptions_total{result="used"}'
        created = "studyshare_guestlinks_created_total"
        status, text = ST.guestlink.http("/metrics")
        self.assertEqual(status, 200)
        before = {m: metric(text, m) for m in (used, created)}
        # the counters move with what they count, not just exist
        ok(self.redeem(token_of(self.link(self.publish()))))
        status, text = ST.guestlink.http("/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(metric(text, created), before[created] + 1)
        self.assertEqual(metric(text, used), before[used] + 1)
        p = subprocess.run(["promtool", "check", "metrics"], input=text,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class LostRecords(Case):
    def test_refused_audit_entries_and_mails_are_counted(self):
        # The use is done and answered before its audit entry and view
        # notice are written: when Redis refuses them, the loss is logged
        # and counted (an operator alerts on the counters).
        audit = "studyshare_guestlink_audit_failures_total"
        mails = "studyshare_guestlink_mails_not_queued_total"
        uid = self.publish()
        body = self.link(uid, view_notification=True)
        locking = self.link(uid, password="lost-pw-1", max_password_attempts=1)
        held = []
        for k in ("audit", "notify:jobs"):
            if self.r.cmd("EXISTS", k):
                self.r.cmd("RENAME", k, k + ":held")
                held.append(k)
            self.r.cmd("SET", k, "not a stream")

        def restore():
            self.r.cmd("DEL", "audit", "notify:jobs")
            for k in held:
                self.r.cmd("RENAME", k + ":held", k)
        self.addCleanup(restore)
        _, text = ST.guestlink.http("/metrics")
        before = {m: metric(text, m) for m in (audit, mails)}
        ok(self.redeem(token_of(body)))
        wait_for(lambda: metric(ST.guestlink.http("/metrics")[1], mails) > before[mails],
                 timeout=5, what="the refused mail counted")
        wait_for(lambda: metric(ST.guestlink.http("/metrics")[1], audit) > before[audit],
                 timeout=5, what="the refused audit entry counted")
        # The lock's mail to the creator, refused, is counted as well (and
        # stays unconfirmed, for the next redemption to send again).
        mid = metric(ST.guestlink.http("/metrics")[1], mails)
        r = self.redeem(token_of(locking), password="lost-guess-9")
        self.assertEqual(r.get("body"), {"wrong_password": True, "attempts_left": 0}, r)
        wait_for(lambda: metric(ST.guestlink.http("/metrics")[1], mails) > mid,
                 timeout=5, what="the refused lock mail counted")
        events = [e.get("event") for e in ST.guestlink.log_events()]
        self.assertIn("audit.failed", events)
        self.assertIn("mail.not_queued", events)


class Config(unittest.TestCase):
    def run_guestlink(self, env):
        r = Redis()
        d = Daemon("guestlink", r, env=env)
        for k, v in env.items():
            if v is None:
                d.env.pop(k, None)
        try:
            return subprocess.run([os.path.join(stack.BUILD, "studyshare-guestlink")],
                                  env=d.env, capture_output=True, text=True, timeout=10)
        finally:
            d.close()
            r.close()

    def test_bad_values_name_the_setting(self):
        base = {"STUDYSHARE_TOKEN_KEY": TOKEN_KEY, "STUDYSHARE_SEAL_KEY": SEAL_KEY}
        for change, name in [({"STUDYSHARE_SEAL_KEY": None}, "seal-key"),
                             ({"STUDYSHARE_TOKEN_KEY": "short"}, "token-key"),
                             ({"STUDYSHARE_SEAL_KEY": TOKEN_KEY}, "seal-key"),
                             ({"STUDYSHARE_MAIL_KEY": None}, "mail-key"),
                             ({"STUDYSHARE_MAIL_KEY": "short"}, "mail-key"),
                             ({"STUDYSHARE_MAIL_KEY": SEAL_KEY}, "mail-key"),
                             ({"STUDYSHARE_MAIL_KEY": TOKEN_KEY}, "mail-key"),
                             ({"STUDYSHARE_PUBLIC_URL": "ftp://x/"}, "public-url"),
                             ({"STUDYSHARE_DEFAULT_EXPIRY": "400d"}, "default-expiry"),
                             ({"STUDYSHARE_SESSION_TTL": "0s"}, "session-ttl")]:
            env = dict(base)
            env.update(change)
            with self.subTest(setting=name):
                p = self.run_guestlink(env)
                self.assertEqual(p.returncode, 2, p.stderr)
                env_name = "STUDYSHARE_" + name.upper().replace("-", "_")
                self.assertTrue(name in p.stderr or env_name in p.stderr, p.stderr)
                if name in ("token-key", "mail-key"):
                    self.assertNotIn("short", p.stderr)


class RedisOutage(unittest.TestCase):
    def test_unavailable_is_not_not_found(self):
        st = Stack()
        try:
            uid = new_uid()
            ok(sp.call(st.ingest_port, "study.arrived", {"study_uid": uid, "worklist": "location:ct"}))
            link = ok(sp.call(st.guestlink.port, "guestlink.create",
                              {"user": "alice", "worklist": "location:ct", "study_uid": uid}))
            tok = token_of(link)
            SECRETS["token"].add(tok)
            body = {"token": tok, "addr": "192.0.2.1", "user_agent": "x"}
            pid = st.guestlink.proc.pid
            st.redis.kill()
            # a link that cannot be looked up is not said to be gone
            wait_for(lambda: sp.call(st.guestlink.port, "guestlink.redeem", body)
                     .get("error", {}).get("code") == "unavailable", what="unavailable")
            self.assertEqual(err(sp.call(st.guestlink.port, "guestlink.redeem", body))[0], "unavailable")
            self.assertEqual(st.guestlink.http("/readyz")[0], 503)
            st.redis.start()
            # Redis comes back empty (no persistence in tests): the link
            # is gone, and guestlink answers so again without a restart
            wait_for(lambda: sp.call(st.guestlink.port, "guestlink.redeem", body)
                     .get("error", {}).get("code") == "not_found", timeout=15, what="back")
            self.assertEqual(st.guestlink.proc.pid, pid)
        finally:
            rcs = st.close()
        self.assertEqual(rcs, [0, 0, 0])


class ZZScan(Case):
    """Runs last: what the tests above left in Redis and in the logs."""

    def values(self, key):
        t = self.r.cmd("TYPE", key)
        if t == "string":
            return [self.r.cmd("GET", key)]
        if t == "hash":
            return self.r.cmd("HGETALL", key)
        if t == "list":
            return self.r.cmd("LRANGE", key, 0, -1)
        if t in ("zset", "set"):
            return self.r.cmd("ZRANGE", key, 0, -1) if t == "zset" else self.r.cmd("SMEMBERS", key)
        if t == "stream":
            return [x for _id, f in self.r.cmd("XRANGE", key, "-", "+") for x in f]
        return []

    def setUp(self):
        if len(SECRETS["token"]) < 20:
            self.skipTest("scans what the other tests left: run the whole file")

    def test_redis_holds_no_secret_in_clear_and_every_link_key_a_ttl(self):
        self.assertGreater(len(SECRETS["token"]), 20)
        self.assertGreater(len(SECRETS["session"]), 10)
        self.assertGreater(len(SECRETS["dob"]), 0)
        self.assertGreater(len(SECRETS["name"]), 0)
        # The email jobs the tests queued are there (no notify runs here),
        # sealed: the recipients' links are in them, not in clear.
        self.assertGreater(len(mail_jobs(ST.redis)), 0)
        secrets = {k: [s.encode() for s in v] for k, v in SECRETS.items()}
        found = []
        link_keys = 0
        cursor = b"0"
        while True:
            cursor, keys = self.r.cmd("SCAN", cursor, "COUNT", 1000)
            for k in keys:
                vals = self.values(k)
                if k.startswith(b"link:"):
                    link_keys += 1
                    ttl = self.r.cmd("PTTL", k)
                    if ttl < 0:
                        found.append((k, "no TTL"))
                # No exemption: share's studies and the email jobs are
                # sealed like everything else.
                for kind, items in secrets.items():
                    for s in items:
                        if s in k:
                            found.append((k, kind + " in key name"))
                        if any(s in v for v in vals):
                            found.append((k, kind, s))
            if cursor == b"0":
                break
        self.assertGreater(link_keys, 30)
        self.assertEqual(found, [])

    def test_logs_hold_no_secret(self):
        # A link with a password, a wrong guess and a use, just before
        # reading the logs: what they log must be there, and none of the
        # secrets the action handled (an empty log would pass the rest).
        body = self.link(self.publish(), password="log-check-password")
        tok = token_of(body)
        self.assertTrue(ok(self.redeem(tok, password="log-check-wrong"))["wrong_password"])
        ok(self.redeem(tok, password="log-check-password"))
        events = ST.guestlink.log_events()
        self.assertGreater(len(events), 10)
        for e in events:
            for k in ("time", "level", "service", "event"):
                self.assertIn(k, e)
        mine = [e["event"] for e in events if e.get("link") == body["id"]]
        for name in ("link.created", "link.wrong_password", "link.used"):
            self.assertIn(name, mine)
        logs = "".join(d.logs() for d in ST.daemons())
        for kind, items in SECRETS.items():
            for s in items:
                self.assertNotIn(s, logs, kind)
        for key in (TOKEN_KEY, SEAL_KEY, stack.PEPPER, stack.MAIL_KEY, stack.SEAL_KEY):
            self.assertNotIn(key, logs)
        for e in ST.guestlink.log_events():
            self.assertEqual(e["service"], "guestlink")


if __name__ == "__main__":
    unittest.main()
