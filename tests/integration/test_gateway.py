"""Integration tests of the gateway: the HTTP API, the guest and
registration pages, the web UI's files, against the real stack (redis-server,
authz, share, guestlink and the gateway, on free loopback ports).

Every route of API.md is exercised over HTTP, with each error code it can
give.  FullStack is also used by tests/browser/ to run the browser tests.
"""
import base64
import copy
import hashlib
import hmac
import http.client
import json
import glob
import os
import re
import socket
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import mp  # noqa: E402
import sp  # noqa: E402
from stack import (BUILD, MAIL_KEY, ROOT, Daemon, Redis, cli, free_port, mail_jobs,  # noqa: E402
                   wait_for)

FIXTURE = os.path.join(HERE, "fixtures", "directory.json")
SYSTEM_PYTHON = "/usr/bin/python3"  # the one with Debian's aiosmtpd
CATCHER = os.path.join(HERE, "smtp_catcher.py")
SANITIZED = os.environ.get("SS_SANITIZED") == "1"

JWT_SECRET = "gateway-test-jwt-secret-0123456789abcdef"
OPERATOR_TOKEN = "gateway-test-operator-token-0123456789abcdef"
TOKEN_KEY = "gateway-test-token-key-0123456789abcdef"
SEAL_KEY = "gateway-test-seal-key-0123456789abcdefgh"


def make_doc():
    with open(FIXTURE) as f:
        doc = json.load(f)
    doc = copy.deepcopy(doc)
    # A member of location:ct who holds no permission at all.
    doc["users"].append({"id": "nadia", "organisation": "stelsewhere",
                         "email": "nadia@stelsewhere.example", "name": "Nadia Null",
                         "password": "nadia-password",
                         "memberships": [{"worklist": "location:ct", "role": "nothing"}]})
    return doc


DOC = make_doc()

_uids = iter(range(1, 10 ** 9))


def new_uid():
    return "2.25.9%d.%d" % (os.getpid(), next(_uids))


def fake_addr():
    """A client address of its own, for the rate-limit tests (the gateway
    under test trusts X-Forwarded-For)."""
    return "10.%d.%d.%d" % tuple(secrets.randbelow(250) + 1 for _ in range(3))


class Catcher:
    """smtp_catcher.py as a child process (Debian's aiosmtpd)."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="ss-gw-mail-")
        self.log = os.path.join(self.dir, ".log")
        self.proc = None

    def start(self):
        self._out = open(self.log, "a")
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, CATCHER, "--port", str(self.port), "--dir", self.dir],
            stdout=self._out, stderr=subprocess.STDOUT)
        def ready():
            with open(self.log) as f:
                return "ready " in f.read()
        wait_for(ready, timeout=15, what="smtp catcher")
        return self

    def messages(self):
        import email
        import email.policy
        out = []
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".eml"):
                with open(os.path.join(self.dir, name), "rb") as f:
                    out.append(email.message_from_binary_file(f, policy=email.policy.default))
        return out

    def close(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
            self.proc = None
            self._out.close()
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)


def read_all(sock):
    """Everything a socket sends until the peer closes it."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")


class FullStack:
    """redis, authz, share, guestlink and the gateway (and, with mail=True,
    notify and an SMTP catcher) on free loopback ports.  gateway_env and
    authz_env are settings of those two daemons (over the defaults here).
    With acl_users, each daemon is its own Redis ACL user, made by
    deploy/redis/acl-setup from deploy/redis/acl-rules."""

    def __init__(self, doc=DOC, mail=False, gateway_env=None, authz_env=None,
                 acl_users=False):
        self.redis = self.catcher = None
        self.gateway = self.guestlink = self.notify = self.share = self.authz = None
        self.acl_users = {}
        try:
            self._start(doc, mail, gateway_env, authz_env, acl_users)
        except BaseException:
            # A failed setUpClass runs no tearDownClass: stop what started.
            self.close()
            raise

    def _start(self, doc, mail, gateway_env, authz_env, acl_users):
        self.redis = Redis().start()
        if acl_users:
            self._acl_setup()

        def auth(name, env=None):
            out = dict(env or {})
            if name in self.acl_users:
                out["STUDYSHARE_REDIS_USER"] = name
                out["STUDYSHARE_REDIS_PASSWORD"] = self.acl_users[name]
            return out
        self.gateway = Daemon("gateway", self.redis, env=auth("gateway"))
        self.public_url = "http://127.0.0.1:%d" % self.gateway.port
        self.authz = Daemon("authz", self.redis, env=auth("authz", authz_env)).start()
        authz_url = "tcp://127.0.0.1:%d" % self.authz.port
        self.ingest_port = free_port()
        self.share = Daemon("share", self.redis, env=auth("share", {
            "STUDYSHARE_AUTHZ_URL": authz_url,
            "STUDYSHARE_INGEST_LISTEN": "tcp://127.0.0.1:%d" % self.ingest_port,
            "STUDYSHARE_PUB_LISTEN": "tcp://127.0.0.1:%d" % free_port(),
            "STUDYSHARE_TOKEN_KEY": TOKEN_KEY,
            "STUDYSHARE_PUBLIC_URL": self.public_url,
        })).start()
        # the start may have moved it (stack.Daemon.start)
        self.ingest_port = int(self.share.env["STUDYSHARE_INGEST_LISTEN"].rsplit(":", 1)[1])
        share_url = "tcp://127.0.0.1:%d" % self.share.port
        self.guestlink = Daemon("guestlink", self.redis, env=auth("guestlink", {
            "STUDYSHARE_AUTHZ_URL": authz_url,
            "STUDYSHARE_SHARE_URL": share_url,
            "STUDYSHARE_PUB_LISTEN": "tcp://127.0.0.1:%d" % free_port(),
            "STUDYSHARE_TOKEN_KEY": TOKEN_KEY,
            "STUDYSHARE_SEAL_KEY": SEAL_KEY,
            "STUDYSHARE_PUBLIC_URL": self.public_url,
        })).start()
        self.catcher = self.notify = None
        if mail:
            self.catcher = Catcher().start()
            self.notify = Daemon("notify", self.redis, env=auth("notify", {
                "STUDYSHARE_SMTP_URL": "smtp://127.0.0.1:%d" % self.catcher.port,
                "STUDYSHARE_SMTP_STARTTLS": "none",
                "STUDYSHARE_FROM": "studyshare <studyshare@test.example>",
                "STUDYSHARE_RETRY_MIN": "200ms",
                "STUDYSHARE_BLOCK": "200ms",
            })).start()
        env = {
            "STUDYSHARE_AUTHZ_URL": authz_url,
            "STUDYSHARE_SHARE_URL": share_url,
            "STUDYSHARE_GUESTLINK_URL": "tcp://127.0.0.1:%d" % self.guestlink.port,
            "STUDYSHARE_JWT_SECRET": JWT_SECRET,
            "STUDYSHARE_OPERATOR_TOKEN": OPERATOR_TOKEN,
            "STUDYSHARE_TRUST_PROXY": "true",
        }
        env.update(gateway_env or {})
        self.gateway.env.update(env)
        self.gateway.start()
        self.doc = doc
        r = sp.call(self.authz.port, "authz.directory.import", {"document": json.dumps(doc)})
        assert r["ok"], r

    def _acl_setup(self):
        """A password file per daemon, then deploy/redis/acl-setup."""
        pwdir = tempfile.mkdtemp(prefix="ss-acl-", dir=self.redis.dir)
        for name in ("authz", "share", "guestlink", "notify", "gateway"):
            self.acl_users[name] = "acl-%s-%s" % (name, secrets.token_hex(8))
            with open(os.path.join(pwdir, name), "w") as f:
                f.write(self.acl_users[name] + "\n")
        p = subprocess.run([os.path.join(ROOT, "deploy/redis/acl-setup"), pwdir,
                            "-p", str(self.redis.port)],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and "5 users set" in p.stdout, (p.stdout, p.stderr)
        assert all(pw not in p.stdout + p.stderr for pw in self.acl_users.values())

    # -- helpers -------------------------------------------------------------

    def request(self, method, path, body=None, token=None, headers=None, raw=None,
                port=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        c = http.client.HTTPConnection("127.0.0.1", port or self.gateway.port, timeout=30)
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()

    def login(self, user, password=None):
        r = self.request("POST", "/api/v1/sessions",
                         {"user": user, "password": password or user + "-password"})
        assert r.status == 200, (r.status, r.body)
        return r.json["token"]

    def arrive(self, uid=None, wl="location:ct", **kw):
        uid = uid or new_uid()
        body = {"study_uid": uid, "worklist": wl}
        body.update(kw)
        r = sp.call(self.ingest_port, "study.arrived", body)
        assert r["ok"], r
        return uid

    def mail_jobs(self):
        """The jobs on notify:jobs (when notify is not running), opened
        with the mail key: they are sealed in Redis."""
        return mail_jobs(self.redis)

    def close(self):
        rcs = {}
        for name in ("gateway", "guestlink", "notify", "share", "authz"):
            d = getattr(self, name)
            if d is not None:
                rcs[name] = d.stop()
                d.close()
        if self.catcher:
            self.catcher.close()
        if self.redis:
            self.redis.close()
        return rcs


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_jwt(claims, key=JWT_SECRET, alg="HS256", header=None):
    h = header if header is not None else {"alg": alg, "typ": "JWT"}
    head = b64url(json.dumps(h).encode()) + "." + b64url(json.dumps(claims).encode())
    if alg == "none":
        return head + "."
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    sig = hmac.new(key.encode(), head.encode(), digest).digest()
    return head + "." + b64url(sig)


def jwt_claims(tok):
    p = tok.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


def error_of(r):
    """(status, code, message) of an error answer, checking its shape."""
    j = r.json
    assert set(j) >= {"error"}, j
    assert set(j["error"]) == {"code", "message"}, j
    return r.status, j["error"]["code"], j["error"]["message"]


class GatewayCase(unittest.TestCase):
    stack = None
    gateway_env = authz_env = None  # a class's own settings of its stack
    stack_kw = {}  # and of FullStack

    @classmethod
    def setUpClass(cls):
        cls.stack = FullStack(gateway_env=cls.gateway_env, authz_env=cls.authz_env,
                              **cls.stack_kw)
        cls.alice = cls.stack.login("alice")
        cls.bob = cls.stack.login("bob")

    @classmethod
    def tearDownClass(cls):
        rcs = cls.stack.close()
        assert all(rc == 0 for rc in rcs.values()), rcs

    def req(self, *a, **kw):
        return self.stack.request(*a, **kw)

    def assertError(self, r, status, code, msg_re=None):
        st, c, m = error_of(r)
        self.assertEqual((st, c), (status, code), r.body)
        if msg_re:
            self.assertRegex(m, msg_re)
        return m

    def invite(self):
        """Shares a new study with a new address: (email, study uid,
        invitation token)."""
        email = "newbie-%d@example.org" % next(_uids)
        uid = self.stack.arrive(description="SHARED BY EMAIL")
        r = self.req("POST", "/api/v1/studies/%s/shares" % uid,
                     {"worklist": "location:ct", "targets": [{"kind": "email", "email": email}]},
                     token=self.alice)
        self.assertEqual(r.json["shares"][0]["status"], "invited")
        for job in reversed(self.stack.mail_jobs()):
            if job["to"] == email and job["template"] == "share.invitation":
                url = job["vars"]["register_url"]
                return email, uid, url.split("invite=", 1)[1]
        self.fail("no invitation mail for " + email)

    def assertSecurityHeaders(self, r):
        csp = r.header("Content-Security-Policy")
        self.assertIsNotNone(csp)
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertIn("script-src 'self'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(r.header("Referrer-Policy"), "no-referrer")
        self.assertIsNotNone(r.header("X-Request-Id"))


class Sessions(GatewayCase):
    def test_login_issues_a_jwt_whose_sub_is_the_user(self):
        r = self.req("POST", "/api/v1/sessions", {"user": "alice", "password": "alice-password"})
        self.assertEqual(r.status, 200)
        self.assertSecurityHeaders(r)
        self.assertEqual(r.header("Cache-Control"), "no-store")
        j = r.json
        self.assertTrue({"token", "expires_at"} <= set(j), j)
        self.assertRegex(j["expires_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        head = json.loads(base64.urlsafe_b64decode(j["token"].split(".")[0] + "=="))
        self.assertEqual(head["alg"], "HS256")
        c = jwt_claims(j["token"])
        self.assertEqual(c["sub"], "alice")
        self.assertGreater(c["exp"], time.time() + 3600)
        self.assertEqual(j["user"]["id"], "alice")

    def test_wrong_password_and_unknown_user_are_the_same_401(self):
        a = self.req("POST", "/api/v1/sessions", {"user": "alice", "password": "nope-nope"},
                     headers={"X-Forwarded-For": fake_addr()})
        b = self.req("POST", "/api/v1/sessions", {"user": "nobody-here", "password": "nope-nope"},
                     headers={"X-Forwarded-For": fake_addr()})
        self.assertError(a, 401, "unauthenticated")
        self.assertEqual((a.status, a.body), (b.status, b.body))
        c = self.req("POST", "/api/v1/sessions", {"user": "bad id!", "password": "x"})
        self.assertEqual((c.status, c.body), (a.status, a.body))

    def test_bodies_that_are_not_json_or_have_bad_fields_are_400_naming_the_field(self):
        cases = [
            (b"not json", "malformed JSON"),
            (b"", "empty body"),
            (b"[1,2]", "expected a JSON object"),
            (b'{"user":"alice","user":"bob","password":"x"}', "duplicate field 'user'"),
            (b'{"user":"alice","password":"x","extra":1}', "unknown field 'extra'"),
            (('{"%s\u00e9":1,"user":"alice","password":"x"}' % ("a" * 63)).encode(),
             "unknown field '%s?'" % ("a" * 63)),
            (b'{"user":"alice","password":5}', "field 'password': expected string"),
            (b'{"user":"alice"}', "missing field 'password'"),
            (b'{"user":"a\\u0000b","password":"x"}', "malformed JSON"),
        ]
        for raw, msg in cases:
            with self.subTest(raw=raw):
                r = self.req("POST", "/api/v1/sessions", raw=raw,
                             headers={"Content-Type": "application/json"})
                self.assertError(r, 400, "bad_request", re.escape(msg))

    def test_a_body_over_the_cap_is_413(self):
        raw = json.dumps({"user": "alice", "password": "x" * 70000}).encode()
        r = self.req("POST", "/api/v1/sessions", raw=raw)
        self.assertError(r, 413, "payload_too_large")

    def test_failed_logins_per_address_are_429_with_retry_after(self):
        addr = fake_addr()
        statuses = []
        for i in range(31):
            r = self.req("POST", "/api/v1/sessions",
                         {"user": "ghost%d" % i, "password": "wrong-password"},
                         headers={"X-Forwarded-For": addr})
            statuses.append(r.status)
        self.assertEqual(statuses[:30], [401] * 30)
        self.assertError(r, 429, "too_many_requests")
        self.assertRegex(r.header("Retry-After") or "", r"^[1-9]\d*$")
        # Another address is not affected.
        r = self.req("POST", "/api/v1/sessions", {"user": "alice", "password": "alice-password"},
                     headers={"X-Forwarded-For": fake_addr()})
        self.assertEqual(r.status, 200)

    def test_tokens_are_checked(self):
        now = int(time.time())
        good = {"sub": "alice", "iss": "studyshare", "iat": now, "exp": now + 600}
        self.assertEqual(self.req("GET", "/api/v1/worklists", token=make_jwt(good)).status, 200)
        bad = {
            "none": None,
            "garbage": "abc.def.ghi",
            "expired": make_jwt(dict(good, exp=now - 5)),
            "other key": make_jwt(good, key="another-secret-another-secret-xx"),
            "alg none": make_jwt(good, alg="none"),
            "alg HS512": make_jwt(good, alg="HS512"),
            "header lies": make_jwt(good, header={"alg": "HS256", "typ": "JWT", "kid": "x"}),
            "no exp": make_jwt({"sub": "alice", "iss": "studyshare"}),
            "other issuer": make_jwt(dict(good, iss="someone")),
            "bad sub": make_jwt(dict(good, sub="../alice")),
        }
        for name, tok in bad.items():
            with self.subTest(name):
                r = self.req("GET", "/api/v1/worklists", token=tok)
                self.assertError(r, 401, "unauthenticated")
                self.assertIn("Bearer", r.header("WWW-Authenticate") or "")
        r = self.req("GET", "/api/v1/worklists", headers={"Authorization": "Basic abc"})
        self.assertError(r, 401, "unauthenticated")

    def test_a_user_authz_does_not_know_is_unauthenticated(self):
        # A validly signed token whose user was removed from the directory
        # (or never was): sent back to log in, on every route, not told
        # 404 "no such user" or 403.
        rc, out, err = cli("token", "ghost", env={"STUDYSHARE_JWT_SECRET": JWT_SECRET})
        self.assertEqual(rc, 0, err)
        ghost = out.strip()
        uid = self.stack.arrive()
        link = self.req("POST", "/api/v1/studies/%s/guest-links" % uid,
                        {"worklist": "location:ct"}, token=self.alice).json
        for method, path, body in [
                ("GET", "/api/v1/worklists", None),
                ("GET", "/api/v1/worklists/location:ct", None),
                ("GET", "/api/v1/worklists/location:ct/studies", None),
                ("GET", "/api/v1/studies/%s/shares?worklist=location:ct" % uid, None),
                ("POST", "/api/v1/studies/%s/shares" % uid,
                 {"worklist": "location:ct", "targets": [{"kind": "user", "id": "bob"}]}),
                ("POST", "/api/v1/studies/%s/guest-links" % uid, {"worklist": "location:ct"}),
                ("DELETE", "/api/v1/guest-links/" + link["id"], None),
                ("GET", "/api/v1/worklists/location:ct/upload-links", None)]:
            with self.subTest(method=method, path=path):
                r = self.req(method, path, body, token=ghost)
                self.assertError(r, 401, "unauthenticated", "log in again")
                self.assertIn("Bearer", r.header("WWW-Authenticate") or "")
        # erin is in the directory but inactive: she can no longer log in
        erin = make_jwt({"sub": "erin", "iss": "studyshare", "iat": int(time.time()),
                         "exp": int(time.time()) + 600})
        self.assertError(self.req("GET", "/api/v1/worklists/location:ct/studies", token=erin),
                         401, "unauthenticated", "log in again")
        # a user authz knows keeps the refusal it was given
        self.assertError(self.req("GET", "/api/v1/worklists/location:nowhere", token=self.bob),
                         404, "not_found", "no such worklist")
        self.assertError(self.req("POST", "/api/v1/studies/%s/guest-links" % uid,
                                  {"worklist": "location:ct"}, token=self.bob),
                         403, "forbidden")

    def test_cli_token_is_accepted(self):
        rc, out, err = cli("token", "alice", env={"STUDYSHARE_JWT_SECRET": JWT_SECRET})
        self.assertEqual(rc, 0, err)
        tok = out.strip()
        self.assertEqual(jwt_claims(tok)["sub"], "alice")
        self.assertEqual(self.req("GET", "/api/v1/worklists", token=tok).status, 200)
        rc, out, err = cli("token", "alice", env={"STUDYSHARE_JWT_SECRET": ""})
        self.assertNotEqual(rc, 0)


class UntrustedForwardedFor(GatewayCase):
    """Without --trust-proxy (the default) the client's address is the TCP
    peer's: an X-Forwarded-For that any client can write changes nothing,
    and every request here is one client's (small limits keep it short)."""
    gateway_env = {"STUDYSHARE_TRUST_PROXY": "false", "STUDYSHARE_GUEST_PASSWORD_LIMIT": "5"}
    authz_env = {"STUDYSHARE_LOGIN_FAIL_ADDR": "5"}

    def test_failed_logins_are_counted_per_peer_whatever_it_claims(self):
        def fail(i):
            return self.req("POST", "/api/v1/sessions",
                            {"user": "ghost%d" % i, "password": "wrong-password"},
                            headers={"X-Forwarded-For": fake_addr()})
        self.assertEqual([fail(i).status for i in range(5)], [401] * 5)
        r = fail(5)
        self.assertError(r, 429, "too_many_requests")
        self.assertRegex(r.header("Retry-After") or "", r"^[1-9]\d*$")

    def test_guest_password_posts_are_counted_per_peer_whatever_it_claims(self):
        tok = secrets.token_urlsafe(32)[:43]

        def post():
            return self.req("POST", "/g/" + tok, raw=b"password=x",
                            headers={"Accept": "application/json",
                                     "Content-Type": "application/x-www-form-urlencoded",
                                     "X-Forwarded-For": fake_addr()})
        self.assertEqual([post().status for _ in range(5)], [404] * 5)
        r = post()
        self.assertError(r, 429, "too_many_requests")
        self.assertRegex(r.header("Retry-After") or "", r"^[1-9]\d*$")


class RedisAclUsers(GatewayCase):
    """Each daemon as its own Redis ACL user (deploy/redis/acl-rules): what
    the product does works, and Redis denies nothing (its ACL LOG stays
    empty).  A rule too narrow for a flow shows here as a NOPERM."""
    stack_kw = {"mail": True, "acl_users": True}

    def test_every_flow_under_its_own_user(self):
        st = self.stack
        r = subprocess.run(["redis-cli", "-p", str(st.redis.port), "ACL", "WHOAMI"],
                           capture_output=True, text=True)
        self.assertEqual(r.stdout.strip(), "default")
        alice = self.alice
        self.assertEqual(self.req("POST", "/api/v1/sessions",
                                  {"user": "alice", "password": "wrong-one"}).status, 401)
        uid = st.arrive(patient={"id": "ACL1", "name": "ACL^ANN", "birth_date": "19700101"},
                        description="CT ACL")
        # shares: a colleague, and an address without an account
        email = "acl-newbie@example.org"
        r = self.req("POST", "/api/v1/studies/%s/shares" % uid,
                     {"worklist": "location:ct", "targets": [
                         {"kind": "user", "id": "bob"}, {"kind": "email", "email": email}]},
                     token=alice)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual([x["status"] for x in r.json["shares"]], ["delivered", "invited"])
        r = self.req("GET", "/api/v1/worklists/user:bob/studies", token=self.bob)
        self.assertIn(uid, [x["study_uid"] for x in r.json["studies"]])
        # a guest link with a password, a recipient and view notices
        r = self.req("POST", "/api/v1/studies/%s/guest-links" % uid,
                     {"worklist": "location:ct", "password": "acl-secret-1",
                      "max_password_attempts": 3, "email": "guest@example.org",
                      "view_notification": True}, token=alice)
        self.assertEqual(r.status, 201, r.body)
        link = r.json
        path = "/g/" + link["url"].rsplit("/g/", 1)[1]
        form = {"Accept": "application/json",
                "Content-Type": "application/x-www-form-urlencoded"}
        self.assertEqual(self.req("POST", path, raw=b"password=wrong", headers=form).status, 401)
        r = self.req("POST", path, raw=b"password=acl-secret-1", headers=form)
        self.assertEqual(r.status, 200, r.body)
        cookie = r.header("Set-Cookie").split(";")[0]
        r = self.req("GET", path, headers={"Accept": "application/json", "Cookie": cookie})
        self.assertEqual(r.status, 200, r.body)
        r = self.req("GET", "/api/v1/studies/%s/guest-links?worklist=location:ct" % uid,
                     token=alice)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.req("DELETE", "/api/v1/guest-links/" + link["id"],
                                  token=alice).status, 204)
        # an upload link and its session
        r = self.req("POST", "/api/v1/worklists/location:ct/upload-links",
                     {"email": "gp@example.org"}, token=alice)
        self.assertEqual(r.status, 201, r.body)
        up = r.json["url"][r.json["url"].index("/u/"):]
        self.assertEqual(self.req("GET", up, headers={"Accept": "application/json"}).status, 200)
        # the invitation's registration
        deadline = time.time() + 15
        invite = None
        while invite is None and time.time() < deadline:
            for m in st.catcher.messages():
                if m["To"] == email:
                    invite = re.search(r"invite=([A-Za-z0-9_-]{43})",
                                       m.get_body(("plain",)).get_content()).group(1)
            time.sleep(0.1)
        self.assertIsNotNone(invite, "no invitation mail")
        r = self.req("POST", "/api/v1/registrations",
                     {"invite": invite, "user": "aclnewbie", "name": "Acl Newbie",
                      "password": "aclnewbie-password"})
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json["delivered"], [uid])
        # the directory, as an operator imports it (a dry run)
        r = self.req("PUT", "/api/v1/directory?dry_run=true", raw=json.dumps(st.doc).encode(),
                     token=OPERATOR_TOKEN)
        self.assertEqual(r.status, 200, r.body)
        # every mail went out: the invitation, the guest's link, the view
        # notice and the upload request
        want = {email, "guest@example.org", "alice@stelsewhere.example", "gp@example.org"}
        wait_for(lambda: want <= {m["To"] for m in st.catcher.messages()}, timeout=15,
                 what="the mails")
        # every daemon ready, and Redis denied none of them anything
        for name in ("authz", "share", "guestlink", "notify", "gateway"):
            d = getattr(st, name)
            self.assertEqual(d.http("/readyz")[0], 200, name)
            self.assertNotIn("NOPERM", d.logs(), name)
        r = subprocess.run(["redis-cli", "-p", str(st.redis.port), "ACL", "LOG"],
                           capture_output=True, text=True)
        self.assertEqual(r.stdout.strip(), "", r.stdout)
        users = subprocess.run(["redis-cli", "-p", str(st.redis.port), "CLIENT", "LIST"],
                               capture_output=True, text=True).stdout
        for name in ("authz", "share", "guestlink", "notify", "gateway"):
            self.assertIn(" user=%s " % name, users)
        # What a daemon taken over could try: list the keys, overwrite
        # another's key record (making it unready), flush the scripts.
        def as_gateway(*cmd):
            return subprocess.run(["redis-cli", "-p", str(st.redis.port), "--user", "gateway",
                                   "--pass", st.acl_users["gateway"], "--no-auth-warning"]
                                  + list(cmd), capture_output=True, text=True).stdout.strip()
        for cmd in (["SCAN", "0"], ["RANDOMKEY"], ["DBSIZE"], ["KEYS", "*"],
                    ["SET", "keycheck:{k}:mail", "x"], ["GET", "share:{study:x}"],
                    ["SCRIPT", "FLUSH"], ["FLUSHALL"], ["SELECT", "1"]):
            with self.subTest(cmd=cmd):
                self.assertIn("NOPERM", as_gateway(*cmd))
        self.assertNotEqual(as_gateway("GET", "keycheck:{k}:gateway.jwt"), "")
        # The operator's CLI as one of them: notify's user reads the dead
        # letters; the gateway's may not.
        for user, rc in [("notify", 0), ("gateway", 1)]:
            got, out, err = cli("mail", "list", "--dead", "--redis", st.redis.addr, env={
                "STUDYSHARE_REDIS_USER": user, "STUDYSHARE_REDIS_PASSWORD": st.acl_users[user],
                "STUDYSHARE_MAIL_KEY": MAIL_KEY, "STUDYSHARE_MAIL_KEY_FILE": ""})
            self.assertEqual(got, rc, (user, out, err))
            self.assertEqual("NOPERM" in err, rc != 0, err)
        # a user without its password is refused, as the daemons refuse it
        got, _, err = cli("mail", "list", "--redis", st.redis.addr, env={
            "STUDYSHARE_REDIS_USER": "notify", "STUDYSHARE_REDIS_PASSWORD": "",
            "STUDYSHARE_REDIS_PASSWORD_FILE": "", "STUDYSHARE_MAIL_KEY": MAIL_KEY,
            "STUDYSHARE_MAIL_KEY_FILE": ""})
        self.assertEqual(got, 2, err)
        self.assertIn("STUDYSHARE_REDIS_USER needs STUDYSHARE_REDIS_PASSWORD", err)


class Https(GatewayCase):
    """--https (the gateway behind a TLS proxy): every cookie is Secure and
    every answer carries Strict-Transport-Security.  (And --static-max-age,
    another setting for a deployment in front of a cache.)"""
    gateway_env = {"STUDYSHARE_HTTPS": "true", "STUDYSHARE_STATIC_MAX_AGE": "1h"}
    HSTS = "max-age=31536000"

    def test_cookies_are_secure_and_answers_pin_tls(self):
        r = self.req("POST", "/api/v1/sessions", {"user": "alice", "password": "alice-password"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.header("Strict-Transport-Security"), self.HSTS)
        uid = self.stack.arrive()
        r = self.req("POST", "/api/v1/studies/%s/guest-links" % uid,
                     {"worklist": "location:ct"}, token=self.alice)
        self.assertEqual(r.status, 201, r.body)
        tok = r.json["url"].rsplit("/g/", 1)[1]
        r = self.req("GET", "/g/" + tok, headers={"Accept": "application/json"})
        self.assertEqual(r.status, 200, r.body)
        self.assertRegex(r.header("Set-Cookie"),
                         r"^ss_guest=[A-Za-z0-9._-]+; Path=/g/%s; Max-Age=\d+; HttpOnly; "
                         r"SameSite=Lax; Secure$" % re.escape(tok))
        self.assertEqual(r.header("Strict-Transport-Security"), self.HSTS)
        r = self.req("POST", "/api/v1/worklists/location:ct/upload-links", {},
                     token=self.alice)
        self.assertEqual(r.status, 201, r.body)
        path = r.json["url"][r.json["url"].index("/u/"):]
        r = self.req("GET", path, headers={"Accept": "application/json"})
        self.assertEqual(r.status, 200, r.body)
        self.assertRegex(r.header("Set-Cookie"), r"^ss_upload=.*; HttpOnly; SameSite=Lax; Secure$")
        # the one 404 and the web UI's files too
        for p in ["/g/" + "x" * 43, "/", "/static/app.js"]:
            with self.subTest(path=p):
                self.assertEqual(self.req("GET", p).header("Strict-Transport-Security"),
                                 self.HSTS)

    def test_static_files_may_be_cached_for_static_max_age(self):
        r = self.req("GET", "/static/app.js")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Cache-Control"), "public, max-age=3600")
        r2 = self.req("GET", "/static/app.js", headers={"If-None-Match": r.header("ETag")})
        self.assertEqual(r2.status, 304)
        self.assertEqual(r2.header("Cache-Control"), "public, max-age=3600")


class Worklists(GatewayCase):
    def test_list_of_worklists_with_permissions(self):
        r = self.req("GET", "/api/v1/worklists", token=self.alice)
        self.assertEqual(r.status, 200)
        wls = {w["id"]: w for w in r.json["worklists"]}
        self.assertIn("location:ct", wls)
        self.assertIn("links.guest.create", wls["location:ct"]["permissions"])
        self.assertEqual(wls["group:neuro"]["permissions"], ["studies.view"])

    def test_get_worklist_has_exactly_the_fields_of_api_md(self):
        r = self.req("GET", "/api/v1/worklists/location:ct", token=self.alice)
        self.assertEqual(r.status, 200)
        self.assertEqual(set(r.json), {"id", "kind", "name", "share_code"})
        self.assertEqual(r.json["id"], "location:ct")
        self.assertRegex(r.json["share_code"], r"^[0-9A-Z]{8}$")
        # percent-encoded paths decode the same
        r2 = self.req("GET", "/api/v1/worklists/location%3Act", token=self.alice)
        self.assertEqual(r2.json, r.json)

    def test_non_member_is_404(self):
        r = self.req("GET", "/api/v1/worklists/location:north-ct", token=self.alice)
        self.assertError(r, 404, "not_found")

    def test_studies_of_a_worklist(self):
        uid = self.stack.arrive(patient={"id": "PW1", "name": "DOE^JANE"}, study_date="20260101",
                                modality="CT", description="CT HEAD")
        r = self.req("GET", "/api/v1/worklists/location:ct/studies?limit=500", token=self.alice)
        self.assertEqual(r.status, 200)
        studies = {s["study_uid"]: s for s in r.json["studies"]}
        self.assertIn(uid, studies)
        self.assertEqual(studies[uid]["patient"]["name"], "DOE^JANE")
        self.assertTrue({"study_uid", "patient", "study_date", "modality", "description",
                         "accession"} <= set(studies[uid]))
        r = self.req("GET", "/api/v1/worklists/location:ct/studies?limit=1", token=self.alice)
        self.assertEqual(len(r.json["studies"]), 1)
        self.assertIsNotNone(r.json["next_cursor"])
        r2 = self.req("GET", "/api/v1/worklists/location:ct/studies?limit=1&cursor=%s"
                      % r.json["next_cursor"], token=self.alice)
        self.assertEqual(r2.status, 200)
        self.assertNotEqual(r2.json["studies"], r.json["studies"])

    def test_studies_errors(self):
        for q, msg in [("?limit=0", "parameter 'limit'"), ("?limit=x", "parameter 'limit'"),
                       ("?sort=name", "unknown parameter 'sort'"),
                       ("?limit=1&limit=2", "duplicate parameter 'limit'"),
                       ("?cursor=%zz", "parameter 'cursor': malformed"),
                       # a long name is cut inside its last character: the
                       # message stays valid UTF-8 (the error is not lost)
                       ("?" + "a" * 63 + "%C3%A9=1", "unknown parameter '" + "a" * 63 + "?'")]:
            with self.subTest(q=q):
                r = self.req("GET", "/api/v1/worklists/location:ct/studies" + q, token=self.alice)
                self.assertError(r, 400, "bad_request", re.escape(msg))
        # a path parameter that does not decode, or is too long
        for wl in ("location%zz", "a" * 300):
            with self.subTest(wl=wl[:12]):
                r = self.req("GET", "/api/v1/worklists/%s/studies" % wl, token=self.alice)
                self.assertError(r, 400, "bad_request", "malformed path")
        nadia = self.stack.login("nadia")
        r = self.req("GET", "/api/v1/worklists/location:ct/studies", token=nadia)
        self.assertError(r, 403, "forbidden")
        r = self.req("GET", "/api/v1/worklists/location:ct/studies")
        self.assertError(r, 401, "unauthenticated")

    def test_one_study_with_priors(self):
        pid = "PP%d" % next(_uids)
        old = self.stack.arrive(patient={"id": pid}, study_date="20200101")
        new = self.stack.arrive(patient={"id": pid}, study_date="20250101")
        r = self.req("GET", "/api/v1/studies/%s?worklist=location:ct" % new, token=self.alice)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["study"]["study_uid"], new)
        self.assertEqual([p["study_uid"] for p in r.json["priors"]], [old])
        r = self.req("GET", "/api/v1/studies/%s" % new, token=self.alice)
        self.assertError(r, 400, "bad_request", "missing parameter 'worklist'")
        # alice holds no role in location:mri: she lacks studies.view there
        r = self.req("GET", "/api/v1/studies/%s?worklist=location:mri" % new, token=self.alice)
        self.assertError(r, 403, "forbidden", "studies.view")
        # bob views location:mri, which does not hold the study
        r = self.req("GET", "/api/v1/studies/%s?worklist=location:mri" % new, token=self.bob)
        self.assertError(r, 404, "not_found")


class Shares(GatewayCase):
    def share(self, uid, targets, token=None, **kw):
        body = {"worklist": "location:ct", "targets": targets}
        body.update(kw)
        return self.req("POST", "/api/v1/studies/%s/shares" % uid, body, token=token or self.alice)

    def test_share_to_a_colleague_lands_in_their_worklist(self):
        uid = self.stack.arrive()
        r = self.share(uid, [{"kind": "user", "id": "bob"}], message="please look")
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json["shares"][0]["worklist"], "user:bob")
        self.assertEqual(r.json["shares"][0]["status"], "delivered")
        r = self.req("GET", "/api/v1/worklists/user:bob/studies?limit=500", token=self.bob)
        self.assertIn(uid, [s["study_uid"] for s in r.json["studies"]])
        r = self.req("GET", "/api/v1/studies/%s/shares?worklist=location:ct" % uid, token=self.alice)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["shares"][0]["by"], "alice")

    def test_a_burst_of_shares_travels_batched_and_each_is_answered(self):
        # Shares that reach the gateway in one loop turn go to share as one
        # bus.batch, and share's authz questions to authz likewise: each
        # still gets its own answer (the ASan pass also checks that no
        # handler touches its request after answering it).
        uids = [self.stack.arrive() for _ in range(30)]
        bodies = [json.dumps({"worklist": "location:ct",
                              "targets": [{"kind": "user", "id": "bob"}]}).encode()
                  for _ in uids]

        def batches():
            _, text = self.stack.gateway.http("/metrics")
            m = re.search(r"^studyshare_rpc_batches_total (\d+)", text, re.M)
            return int(m.group(1)) if m else 0

        before, answers = batches(), {}
        for _ in range(5):  # a burst rarely spreads over turns; retry if so
            socks = []
            for uid, body in zip(uids, bodies):
                s = socket.create_connection(("127.0.0.1", self.stack.gateway.port), 30)
                head = ("POST /api/v1/studies/%s/shares HTTP/1.1\r\nHost: x\r\n"
                        "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\nConnection: close\r\n\r\n"
                        % (uid, self.alice, len(body))).encode()
                socks.append((uid, s, head + body))
            for _, s, req in socks:
                s.sendall(req)
            for uid, s, _ in socks:
                data = read_all(s)
                s.close()
                answers[uid] = (int(data.split(b" ", 2)[1]), data.split(b"\r\n\r\n", 1)[1])
            if batches() > before:
                break
        self.assertGreater(batches(), before)
        for uid, (status, body) in answers.items():
            self.assertEqual(status, 201, body)
            self.assertEqual(json.loads(body)["shares"][0]["worklist"], "user:bob")
        self.assertIsNone(self.stack.share.proc.poll(), "share is still running")
        r = self.req("GET", "/api/v1/worklists/user:bob/studies?limit=500", token=self.bob)
        self.assertTrue(set(uids) <= {s["study_uid"] for s in r.json["studies"]})

    def test_every_kind_of_target(self):
        uid = self.stack.arrive()
        code = self.req("GET", "/api/v1/worklists/location:north-ct",
                        token=self.stack.login("carol")).json["share_code"]
        r = self.share(uid, [{"kind": "organisation", "id": "northclinic"},
                             {"kind": "location", "id": "mri"},
                             {"kind": "group", "id": "neuro"},
                             {"kind": "user", "id": "bob"},
                             {"kind": "share_code", "code": code},
                             {"kind": "email", "email": "outsider-%d@example.org" % next(_uids)}])
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual([s["status"] for s in r.json["shares"]], ["delivered"] * 5 + ["invited"])

    def test_malformed_targets_are_400_naming_them(self):
        uid = self.stack.arrive()
        cases = [
            ([{"kind": "planet", "id": "x"}], "targets[0].kind"),
            ([{"kind": "user"}], "missing field 'targets[0].id'"),
            ([{"kind": "user", "id": "bob", "email": "x@y.z"}], "unknown field 'targets[0].email'"),
            ([{"kind": "user", "id": "bob"}, "bob"], "field 'targets[1]': expected object"),
            ([], "field 'targets': at least 1 item"),
        ]
        for targets, msg in cases:
            with self.subTest(msg):
                self.assertError(self.share(uid, targets), 400, "bad_request", re.escape(msg))
        r = self.share(uid, [{"kind": "user", "id": "bob"}], user="mallory")
        self.assertError(r, 400, "bad_request", re.escape("unknown field 'user'"))
        r = self.share(uid, [{"kind": "user", "id": "bob"}], message=5)
        self.assertError(r, 400, "bad_request", re.escape("field 'message': expected string"))

    def test_forbidden_and_unknown_targets(self):
        uid = self.stack.arrive()
        # bob is a viewer in location:ct
        self.assertError(self.share(uid, [{"kind": "user", "id": "alice"}], token=self.bob),
                         403, "forbidden")
        # another organisation's group
        self.assertError(self.share(uid, [{"kind": "group", "id": "south-msk"}]), 403, "forbidden",
                         "targets\\[0\\]")
        self.assertError(self.share(uid, [{"kind": "user", "id": "nobody"}]), 404, "not_found")
        # a study the worklist does not hold
        self.assertError(self.share("2.25.404", [{"kind": "user", "id": "bob"}]), 404, "not_found")

    def test_history_errors(self):
        uid = self.stack.arrive()
        r = self.req("GET", "/api/v1/studies/%s/shares" % uid, token=self.alice)
        self.assertError(r, 400, "bad_request", "missing parameter 'worklist'")
        r = self.req("GET", "/api/v1/studies/%s/shares?worklist=location:ct" % uid,
                     token=self.stack.login("nadia"))
        self.assertError(r, 403, "forbidden")


class GuestLinks(GatewayCase):
    def create(self, uid, token=None, **kw):
        body = {"worklist": "location:ct"}
        body.update(kw)
        return self.req("POST", "/api/v1/studies/%s/guest-links" % uid, body, token=token or self.alice)

    def listed_link(self, uid, link_id):
        r = self.req("GET", "/api/v1/studies/%s/guest-links?worklist=location:ct" % uid,
                     token=self.alice)
        self.assertEqual(r.status, 200, r.body)
        return [l for l in r.json["links"] if l["id"] == link_id][0]

    def redeem(self, token, method="GET", password=None, cookie=None, json_=True, addr=None):
        h = {}
        if json_:
            h["Accept"] = "application/json"
        if cookie:
            h["Cookie"] = cookie
        if addr:
            h["X-Forwarded-For"] = addr
        raw = None
        if password is not None:
            raw = ("password=" + password).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        return self.req(method, "/g/" + token, raw=raw, headers=h)

    def wrong_password_page(self, tok, says, hidden):
        """Posts a wrong password from the page: 401, saying says, with
        the password form shown or hidden."""
        r = self.redeem(tok, "POST", password="nope", json_=False)
        self.assertEqual(r.status, 401)
        self.assertIn(says, r.text)
        self.assertIn('<form method="post" id="password-form" autocomplete="off" %s>'
                      % ("hidden" if hidden else ""), r.text)

    @staticmethod
    def token_of(link):
        return link["url"].rsplit("/g/", 1)[1]

    def test_refusals_say_what_is_expected(self):
        uid = self.stack.arrive()
        rfc = "field 'expires_at': expected an RFC 3339 time (2026-12-31T00:00:00Z)"
        for bad in ["2026-12-31", "2026-12-31 00:00:00Z", "", "x" * 64]:
            with self.subTest(expires_at=bad):
                self.assertError(self.create(uid, expires_at=bad), 400, "bad_request",
                                 "^" + re.escape(rfc) + "$")
        # the same on an upload link's edit
        link = self.req("POST", "/api/v1/worklists/location:ct/upload-links", {},
                        token=self.alice).json
        r = self.req("PATCH", "/api/v1/upload-links/" + link["id"], {"expires_at": "2026-12-31"},
                     token=self.alice)
        self.assertError(r, 400, "bad_request", "^" + re.escape(rfc) + "$")
        # a length refusal says the bound
        self.assertError(self.create(uid, message="m" * 2001), 400, "bad_request",
                         "^" + re.escape("field 'message': at most 2000 bytes") + "$")
        self.assertError(self.create(uid, password="abc"), 400, "bad_request",
                         "^" + re.escape("field 'password': at least 4 bytes") + "$")
        self.assertError(self.create(uid, max_uses=0), 400, "bad_request",
                         "^" + re.escape("field 'max_uses': at least 1") + "$")
        # a duplicate key is named
        r = self.req("POST", "/api/v1/studies/%s/guest-links" % uid,
                     raw=b'{"worklist":"location:ct","message":"a","message":"b"}',
                     headers={"Content-Type": "application/json"}, token=self.alice)
        self.assertError(r, 400, "bad_request", "^duplicate field 'message'$")

    def test_create_list_and_delete(self):
        pid = "PG%d" % next(_uids)
        prior = self.stack.arrive(patient={"id": pid, "birth_date": "19800131"}, study_date="20200101")
        uid = self.stack.arrive(patient={"id": pid, "birth_date": "19800131"}, study_date="20250101")
        r = self.create(uid, max_uses=3, expires_in=3600, password="secret-pw",
                        max_password_attempts=4, email="patient@example.org", message="Your CT",
                        view_notification=True, include_priors=True)
        self.assertEqual(r.status, 201, r.body)
        link = r.json
        for k in ("id", "url", "study_uid", "worklist", "created_by", "created_at", "expires_at",
                  "max_uses", "uses", "max_password_attempts", "password_attempts", "has_password",
                  "password_is_dob", "email", "message", "view_notification", "include_priors",
                  "priors", "status"):
            self.assertIn(k, link)
        self.assertTrue(link["url"].startswith(self.stack.public_url + "/g/"))
        self.assertEqual(link["status"], "active")
        self.assertEqual(link["priors"], [prior])
        self.assertNotIn("secret-pw", r.text)
        r = self.req("GET", "/api/v1/studies/%s/guest-links?worklist=location:ct" % uid,
                     token=self.alice)
        self.assertEqual(r.status, 200)
        self.assertEqual([l["id"] for l in r.json["links"]], [link["id"]])
        self.assertTrue(r.json["links"][0]["can_delete"])
        self.assertEqual(r.json["links"][0]["url"], link["url"])
        self.assertEqual(r.json["links"][0]["priors"], [prior])
        r = self.req("DELETE", "/api/v1/guest-links/" + link["id"], token=self.alice)
        self.assertEqual(r.status, 204)
        self.assertEqual(r.body, b"")
        r = self.redeem(self.token_of(link))
        self.assertError(r, 404, "not_found")
        r = self.req("GET", "/api/v1/studies/%s/guest-links?worklist=location:ct" % uid,
                     token=self.alice)
        self.assertEqual(r.json["links"][0]["status"], "deleted")

    def test_create_errors(self):
        uid = self.stack.arrive()
        self.assertError(self.create(uid, max_uses="3"), 400, "bad_request", "field 'max_uses'")
        self.assertError(self.create(uid, include_priors="yes"), 400, "bad_request",
                         "field 'include_priors'")
        self.assertError(self.create(uid, user="bob"), 400, "bad_request", "unknown field 'user'")
        self.assertError(self.create(uid, token=self.bob), 403, "forbidden")
        self.assertError(self.create(uid, password_is_dob=True), 422, "unprocessable")
        self.assertError(self.create("2.25.405"), 404, "not_found")
        r = self.req("GET", "/api/v1/studies/%s/guest-links?worklist=location:ct" % uid,
                     token=self.stack.login("nadia"))
        self.assertError(r, 403, "forbidden")
        r = self.req("DELETE", "/api/v1/guest-links/0123456789abcdef0123", token=self.alice)
        self.assertError(r, 404, "not_found")
        link = self.create(uid).json
        r = self.req("DELETE", "/api/v1/guest-links/" + link["id"], token=self.bob)
        self.assertError(r, 403, "forbidden")
        r = self.req("POST", "/api/v1/guest-links/%s/unlock" % link["id"], token=self.bob)
        self.assertError(r, 403, "forbidden")
        r = self.req("POST", "/api/v1/guest-links/0123456789abcdef0123/unlock", token=self.alice)
        self.assertError(r, 404, "not_found")
        # carol is no member of location:ct: its link is as unknown to her
        # as an id that never was (the same body), so she cannot tell it
        # exists
        carol = self.stack.login("carol")
        for method, p in [("DELETE", "/api/v1/guest-links/%s"),
                          ("POST", "/api/v1/guest-links/%s/unlock")]:
            unknown = self.req(method, p % "0123456789abcdef0123", token=carol)
            r = self.req(method, p % link["id"], token=carol)
            self.assertError(r, 404, "not_found")
            self.assertEqual(r.body, unknown.body)
        # a link that has ended otherwise is not unlocked
        self.assertEqual(self.req("DELETE", "/api/v1/guest-links/" + link["id"],
                                  token=self.alice).status, 204)
        r = self.req("POST", "/api/v1/guest-links/%s/unlock" % link["id"], token=self.alice)
        self.assertError(r, 409, "conflict", "deleted")

    def test_redeem_without_password_json_and_session_cookie(self):
        uid = self.stack.arrive(patient={"id": "PJ1", "name": "DOE^JOHN"}, study_date="20250202")
        link = self.create(uid, max_uses=1).json
        tok = self.token_of(link)
        r = self.redeem(tok)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.json), {"study", "priors", "session", "expires_at"})
        self.assertEqual(r.json["study"]["study_uid"], uid)
        cookie = r.header("Set-Cookie")
        self.assertRegex(cookie, r"^ss_guest=[A-Za-z0-9._-]+; Path=/g/%s; Max-Age=\d+; HttpOnly; "
                         r"SameSite=Lax$" % re.escape(tok))
        self.assertIn(r.json["session"], cookie)
        self.assertSecurityHeaders(r)
        # plain HTTP (no --https): no HSTS, which would pin a host to TLS
        self.assertIsNone(r.header("Strict-Transport-Security"))
        # a reload with the cookie is not a use; without it the link is used up
        c = cookie.split(";")[0]
        r2 = self.redeem(tok, cookie=c)
        self.assertEqual(r2.status, 200)
        self.assertEqual(r2.json["study"], r.json["study"])
        r3 = self.redeem(tok)
        self.assertError(r3, 404, "not_found")

    def test_a_burst_of_redemptions_travels_batched_and_counts_every_use(self):
        # Requests that reach the gateway in one loop turn go to guestlink as
        # one bus.batch: each still gets its own answer, and the use limit
        # holds exactly.
        uid = self.stack.arrive(patient={"id": "PB%d" % next(_uids)}, study_date="20250303")
        link = self.create(uid, max_uses=5).json
        path = "/g/" + self.token_of(link)
        req = ("GET %s HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n"
               "Connection: close\r\n\r\n" % path).encode()

        def batches():
            _, text = self.stack.gateway.http("/metrics")
            m = re.search(r"^studyshare_rpc_batches_total (\d+)", text, re.M)
            return int(m.group(1)) if m else 0

        before, statuses = batches(), []
        for _ in range(5):  # a burst rarely spreads over turns; retry if so
            socks = [socket.create_connection(("127.0.0.1", self.stack.gateway.port), 30)
                     for _ in range(40)]
            for s in socks:
                s.sendall(req)
            for s in socks:
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                s.close()
                statuses.append(int(data.split(b" ", 2)[1]))
            if batches() > before:
                break
        self.assertGreater(batches(), before)
        self.assertEqual(statuses.count(200), 5, statuses)
        self.assertEqual(statuses.count(404), len(statuses) - 5, statuses)

    def test_password_flow_json(self):
        uid = self.stack.arrive()
        link = self.create(uid, password="open-sesame", max_password_attempts=3).json
        tok = self.token_of(link)
        r = self.redeem(tok)
        self.assertEqual((r.status, r.json), (200, {"password_required": True}))
        self.assertIsNone(r.header("Set-Cookie"))
        r = self.redeem(tok, "POST", password="wrong")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json, {"error": {"code": "unauthenticated", "message": "wrong password"},
                                  "attempts_left": 2})
        r = self.redeem(tok, "POST", password="open-sesame")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["study"]["study_uid"], uid)
        # a JSON body works too
        r = self.req("POST", "/g/" + tok, {"password": "open-sesame"},
                     headers={"Accept": "application/json"})
        self.assertEqual(r.status, 200)
        r = self.redeem(tok, "POST", password="")
        self.assertError(r, 400, "bad_request", "missing field 'password'")

    def test_lock_and_unlock(self):
        uid = self.stack.arrive()
        link = self.create(uid, password="right-one", max_password_attempts=2).json
        tok = self.token_of(link)
        self.assertEqual(self.redeem(tok, "POST", password="bad1").json["attempts_left"], 1)
        r = self.redeem(tok, "POST", password="bad2")
        self.assertEqual((r.status, r.json["attempts_left"]), (401, 0))
        self.assertError(self.redeem(tok, "POST", password="right-one"), 404, "not_found")
        r = self.req("POST", "/api/v1/guest-links/%s/unlock" % link["id"], token=self.alice)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["status"], "active")
        self.assertEqual(self.redeem(tok, "POST", password="right-one").status, 200)
        r = self.req("POST", "/api/v1/guest-links/%s/unlock" % link["id"], token=self.alice,
                     raw=b'{"x":1}', headers={"Content-Type": "application/json"})
        self.assertError(r, 400, "bad_request")

    def test_html_pages(self):
        pid = "PH%d" % next(_uids)
        self.stack.arrive(patient={"id": pid, "name": "ROE^RICHARD"}, study_date="20190303",
                          modality="MR", description="MR <KNEE>")
        uid = self.stack.arrive(patient={"id": pid, "name": "ROE^RICHARD", "birth_date": "19700707"},
                                study_date="20250505", modality="CT", description="CT & CHEST")
        link = self.create(uid, password="pw-1234", include_priors=True,
                           message="<b>For</b> the MDT\nFriday").json
        tok = self.token_of(link)
        r = self.redeem(tok, json_=False)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        self.assertNotIn("MDT", r.text)  # not before the password
        self.assertIn('<form method="post"', r.text)
        self.assertNotIn(tok, r.text)
        self.assertNotIn("<script>", r.text)
        self.assertSecurityHeaders(r)
        self.wrong_password_page(tok, "4 attempts left", hidden=False)
        # Post/Redirect/Get: the form's answer is a redirect with the
        # session, so Back or Reload never sends the password again
        r = self.redeem(tok, "POST", password="pw-1234", json_=False)
        self.assertEqual(r.status, 303)
        self.assertEqual(r.header("Location"), "/g/" + tok)
        self.assertEqual(r.body, b"")
        self.assertIn("HttpOnly", r.header("Set-Cookie"))
        uses = self.listed_link(uid, link["id"])["uses"]
        r = self.redeem(tok, json_=False, cookie=r.header("Set-Cookie").split(";")[0])
        self.assertEqual(r.status, 200)
        self.assertEqual(self.listed_link(uid, link["id"])["uses"], uses)
        self.assertIn("ROE, RICHARD", r.text)
        # the session's end as people read it, the exact time beside it
        self.assertRegex(r.text, r'until <time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">'
                                 r'\d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d UTC</time>')
        self.assertIn("CT &amp; CHEST", r.text)
        self.assertIn("MR &lt;KNEE&gt;", r.text)
        self.assertIn("2019-03-03", r.text)
        self.assertIn("HttpOnly", r.header("Set-Cookie"))
        # the creator's message with the study, escaped
        self.assertIn('<p class="link-message" id="link-message">&lt;b&gt;For&lt;/b&gt; the MDT'
                      '\nFriday</p>', r.text)

    def test_every_unusable_link_is_the_same_404(self):
        uid = self.stack.arrive()
        answers = {}
        used = self.create(uid, max_uses=1).json
        self.assertEqual(self.redeem(self.token_of(used)).status, 200)
        deleted = self.create(uid).json
        self.req("DELETE", "/api/v1/guest-links/" + deleted["id"], token=self.alice)
        locked = self.create(uid, password="pw-pw", max_password_attempts=1).json
        self.redeem(self.token_of(locked), "POST", password="wrong")
        expired = self.create(uid, expires_in=1).json
        # usable while it lives: the 404 below is its expiry's
        r = self.redeem(self.token_of(expired))
        self.assertEqual(r.status, 200, r.body)
        wait_for(lambda: self.listed_link(uid, expired["id"])["status"] == "expired",
                 timeout=5, what="the link to expire")
        toks = {"unknown": secrets.token_urlsafe(32)[:43], "malformed": "abc",
                "too_long": "A" * 1000, "undecodable": "%zz",
                "used_up": self.token_of(used), "deleted": self.token_of(deleted),
                "locked": self.token_of(locked), "expired": self.token_of(expired)}
        for json_ in (True, False):
            answers = {name: self.redeem(t, json_=json_) for name, t in toks.items()}
            bodies = {(r.status, r.body) for r in answers.values()}
            self.assertEqual(len(bodies), 1, {k: (v.status, v.body[:80]) for k, v in answers.items()})
            self.assertEqual(next(iter(bodies))[0], 404)
        post = self.redeem(toks["locked"], "POST", password="pw-pw")
        self.assertEqual(post.status, 404)

    def test_the_attempt_that_locks_shows_no_form(self):
        uid = self.stack.arrive()
        tok = self.token_of(self.create(uid, password="pw-lock-1", max_password_attempts=2).json)
        self.wrong_password_page(tok, "1 attempt left", hidden=False)
        # nothing left to try: the form is there but hidden
        self.wrong_password_page(tok, "the link is locked", hidden=True)

    def test_an_attempt_while_the_last_is_checked_gets_the_form_again(self):
        # A double-clicked last attempt: the second finds the first being
        # checked (a reservation, forged here) and is asked to wait.
        uid = self.stack.arrive()
        made = self.create(uid, password="pw-busy-1", max_password_attempts=1).json
        far = str(int(time.time() * 1000) + 60000)
        self.stack.redis.cmd("ZADD", "link:{%s}:res" % made["id"], far, "in-flight")
        tok = self.token_of(made)
        r = self.redeem(tok, "POST", password="pw-busy-1", json_=False)
        self.assertEqual(r.status, 429)
        self.assertEqual(r.header("Retry-After"), "1")
        self.assertIn("could not be checked just now", r.text)
        self.assertRegex(r.text, r'<form method="post" id="password-form" autocomplete="off" >')
        r = self.redeem(tok, "POST", password="pw-busy-1")
        self.assertError(r, 429, "too_many_requests")
        self.assertEqual(r.header("Retry-After"), "1")

    def test_error_pages_say_whether_trying_again_helps(self):
        # A malformed request or an oversized form is refused whenever it
        # is sent: its page does not ask the guest to try again.
        tok = secrets.token_urlsafe(32)[:43]
        big = b"password=" + b"x" * 70000
        for name, r in [
                ("malformed", self.req("GET", "/register?invite=%zz")),
                ("too large", self.req("POST", "/g/" + tok, raw=big, headers={
                    "Content-Type": "application/x-www-form-urlencoded"}))]:
            with self.subTest(name):
                self.assertIn(r.status, (400, 413))
                self.assertIn('id="error-advice"', r.text)
                self.assertIn("will not help", r.text)
                self.assertNotIn("try again", r.text)
        # (a limit's refusal of a link's password is its form again:
        # test_guest_password_posts_are_rate_limited_per_address)
        # every 404 page says what it means
        for path in ["/nothing-here", "/g/", "/static/nope.js"]:
            r = self.req("GET", path)
            self.assertEqual(r.status, 404, path)
            self.assertIn("There is nothing at this address.", r.text, path)

    def test_the_password_pages_example_is_no_demo_birth_date(self):
        # deploy/local/stack prints a demo guest link whose password is
        # the demo patient's birth date: the page must not show it.
        uid = self.stack.arrive()
        tok = self.token_of(self.create(uid, password="pw-example-1").json)
        r = self.redeem(tok, json_=False)
        self.assertEqual(r.status, 200)
        example = re.search(r"year first: (\d{8}) or (\d{4}-\d\d-\d\d) for", r.text)
        self.assertIsNotNone(example, r.text)
        self.assertEqual(example.group(1), example.group(2).replace("-", ""))
        demo = set()
        for d in (os.path.join(ROOT, "deploy"), os.path.join(ROOT, "tests")):
            for dirpath, dirs, files in os.walk(d):
                dirs[:] = [x for x in dirs if x != "node_modules"]
                for f in files:
                    if f.endswith((".json", ".py", ".mjs")) or f == "stack":
                        with open(os.path.join(dirpath, f), errors="replace") as fh:
                            demo.update(re.findall(r"birth.date\W+(\d{8})", fh.read()))
        self.assertIn("19800131", demo)  # the demo patient's, found
        self.assertNotIn(example.group(1), demo)

    def test_guest_password_posts_are_rate_limited_per_address(self):
        addr = fake_addr()
        tok = secrets.token_urlsafe(32)[:43]
        codes = [self.redeem(tok, "POST", password="x", addr=addr).status for _ in range(60)]
        self.assertEqual(set(codes), {404})
        r = self.redeem(tok, "POST", password="x", addr=addr)
        self.assertError(r, 429, "too_many_requests")
        self.assertRegex(r.header("Retry-After"), r"^[1-9]\d*$")
        # the password form's own post gets the form again, saying when
        # to try, not an error page the guest must go back from
        r = self.redeem(tok, "POST", password="x", addr=addr, json_=False)
        self.assertEqual(r.status, 429)
        self.assertTrue(r.header("Content-Type").startswith("text/html"), r.header("Content-Type"))
        secs = int(r.header("Retry-After"))
        self.assertGreaterEqual(secs, 1)
        self.assertIn("Please wait %d second%s, then try again." % (secs, "" if secs == 1 else "s"),
                      r.text)
        self.assertRegex(r.text, r'<form method="post" id="password-form" autocomplete="off" >')
        self.assertSecurityHeaders(r)
        r = self.redeem(tok, "POST", password="x", addr=fake_addr())
        self.assertEqual(r.status, 404)

    def test_ipv6_clients_are_limited_per_64(self):
        # Sixty posts from sixty addresses of one /64 are one client's;
        # the next /64 is another client.
        net = "2001:db8:%x:%x" % (next(_uids) & 0xffff, secrets.randbits(16))
        tok = secrets.token_urlsafe(32)[:43]
        codes = [self.redeem(tok, "POST", password="x", addr="%s::%x" % (net, i + 1)).status
                 for i in range(60)]
        self.assertEqual(set(codes), {404})
        r = self.redeem(tok, "POST", password="x", addr=net + ":ffff:ffff:ffff:ffff")
        self.assertError(r, 429, "too_many_requests")
        r = self.redeem(tok, "POST", password="x", addr="::ffff:" + fake_addr())
        self.assertEqual(r.status, 404)
        other = "2001:db8:%x:%x::1" % (next(_uids) & 0xffff, secrets.randbits(16))
        self.assertEqual(self.redeem(tok, "POST", password="x", addr=other).status, 404)

    def test_a_proxys_own_forwarded_for_line_counts_not_the_clients(self):
        # A proxy that adds its own X-Forwarded-For line after the one the
        # client wrote: the client's address is the last line's.
        proxy_saw = fake_addr()
        tok = secrets.token_urlsafe(32)[:43]

        def post():
            c = http.client.HTTPConnection("127.0.0.1", self.stack.gateway.port, timeout=30)
            try:
                c.putrequest("POST", "/g/" + tok)
                c.putheader("Accept", "application/json")
                c.putheader("Content-Type", "application/x-www-form-urlencoded")
                c.putheader("Content-Length", "10")
                c.putheader("X-Forwarded-For", fake_addr())
                c.putheader("X-Forwarded-For", proxy_saw)
                c.endheaders(b"password=x")
                return c.getresponse().status
            finally:
                c.close()
        self.assertEqual({post() for _ in range(60)}, {404})
        self.assertEqual(post(), 429)

    def test_no_secret_reaches_the_gateway_log(self):
        uid = self.stack.arrive()
        made = self.create(uid, password="log-secret-pw")
        self.assertEqual(made.status, 201, made.body)
        tok = self.token_of(made.json)
        r = self.redeem(tok, "POST", password="log-secret-pw")
        self.assertEqual(r.status, 200, r.body)
        done = {made.header("X-Request-Id"): ("links.create", "201"),
                r.header("X-Request-Id"): ("page.guest", "200")}

        def logged():
            return {e.get("request_id"): (e.get("route"), e.get("status"))
                    for e in self.stack.gateway.log_events() if e.get("event") == "http.request"}
        # both requests are logged (so the log checked below holds them)
        wait_for(lambda: set(done) <= set(logged()), what="the requests' log lines")
        self.assertEqual({k: v for k, v in logged().items() if k in done}, done)
        events = self.stack.gateway.log_events()
        self.assertGreater(len(events), 3)
        for e in events:
            self.assertTrue({"time", "level", "service", "event"} <= set(e), e)
        logs = self.stack.gateway.logs()
        for secret in (tok, "log-secret-pw", self.alice):
            self.assertNotIn(secret, logs)


class UploadLinks(GatewayCase):
    """The upload-link routes' refusals (uploads themselves: test_upload.py)."""

    def test_manage_errors(self):
        ul = "/api/v1/worklists/location:ct/upload-links"
        r = self.req("POST", ul, {"max_uses": 2, "message": "first"}, token=self.alice)
        self.assertEqual(r.status, 201, r.body)
        link = r.json
        path = "/api/v1/upload-links/" + link["id"]
        # bob is a viewer of location:ct, nadia holds nothing there: no
        # links.upload.manage
        for who in ("bob", "nadia"):
            tok = self.bob if who == "bob" else self.stack.login("nadia")
            for method, p, body in [("GET", ul, None), ("POST", ul, {}),
                                    ("PATCH", path, {"max_uses": 5}), ("DELETE", path, None)]:
                with self.subTest(who=who, method=method):
                    self.assertError(self.req(method, p, body, token=tok), 403, "forbidden",
                                     "links.upload.manage")
        for method, p, body in [("GET", ul, None), ("PATCH", path, {"max_uses": 5})]:
            self.assertError(self.req(method, p, body), 401, "unauthenticated")
        # carol is no member of location:ct: the link is as unknown to her
        # as an id that never was
        carol = self.stack.login("carol")
        for method, body in [("PATCH", {"max_uses": 5}), ("DELETE", None)]:
            self.assertError(self.req(method, path, body, token=carol), 404, "not_found",
                             "no such upload link")
        unknown = "/api/v1/upload-links/0123456789abcdef0123"
        self.assertError(self.req("PATCH", unknown, {"max_uses": 5}, token=self.alice),
                         404, "not_found", "no such upload link")
        self.assertError(self.req("DELETE", unknown, token=self.alice), 404, "not_found")
        for body, msg in [({"max_uses": "5"}, "field 'max_uses': expected integer"),
                          ({"notify_on_upload": "yes"}, "field 'notify_on_upload'"),
                          ({"expires_at": "tomorrow"}, "field 'expires_at'"),
                          ({"password": "nope1234"}, "unknown field 'password'"),
                          ({"worklist": "location:mri"}, "unknown field 'worklist'")]:
            with self.subTest(body=body):
                self.assertError(self.req("PATCH", path, body, token=self.alice),
                                 400, "bad_request", re.escape(msg))
        # none of the refused requests changed the link
        r = self.req("GET", ul, token=self.alice)
        self.assertEqual(r.status, 200, r.body)
        listed = [l for l in r.json["links"] if l["id"] == link["id"]]
        self.assertEqual(len(listed), 1, r.json)
        self.assertEqual((listed[0]["max_uses"], listed[0]["message"], listed[0]["status"]),
                         (2, "first", "active"))


class Registration(GatewayCase):
    def test_register_page_and_account(self):
        email, uid, invite = self.invite()
        r = self.req("GET", "/register?invite=" + invite)
        self.assertEqual(r.status, 200)
        self.assertIn(email, r.text)
        self.assertNotIn(invite, r.text)
        self.assertIn('src="/static/register.js"', r.text)
        # the invitation's end written for people, the exact time beside it
        # for the script (localtime.js) to show in the reader's time
        self.assertRegex(r.text, r'until <time id="invite-expires" datetime="\d{4}-\d\d-\d\dT'
                                 r'\d\d:\d\d:\d\dZ">\d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d UTC</time>')
        self.assertIn('src="/static/localtime.js"', r.text)
        # without the script, a submit must not put the password in an address
        self.assertRegex(r.text, r'<form id="register-form" method="post"')
        self.assertSecurityHeaders(r)
        r = self.req("GET", "/register?invite=" + invite, headers={"Accept": "application/json"})
        self.assertEqual(r.json["email"], email)
        # parameters a mail service appends to the link are ignored
        r = self.req("GET", "/register?utm_source=mail&invite=%s&utm_medium=x" % invite)
        self.assertEqual(r.status, 200, r.body)
        self.assertIn(email, r.text)
        user = "newbie%d" % next(_uids)
        body = {"invite": invite, "user": user, "name": "New Bie", "password": "newbie-password"}
        r = self.req("POST", "/api/v1/registrations", body)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json["user"]["id"], user)
        self.assertEqual(r.json["delivered"], [uid])
        tok = self.stack.login(user, "newbie-password")
        r = self.req("GET", "/api/v1/worklists/user:%s/studies" % user, token=tok)
        self.assertEqual([s["study_uid"] for s in r.json["studies"]], [uid])
        # the invitation is spent
        self.assertError(self.req("POST", "/api/v1/registrations", dict(body, user=user + "x")),
                         404, "not_found")
        self.assertEqual(self.req("GET", "/register?invite=" + invite).status, 404)

    def test_register_errors(self):
        _, _, invite = self.invite()
        body = {"invite": invite, "user": "alice", "name": "Not Alice", "password": "long-enough"}
        self.assertError(self.req("POST", "/api/v1/registrations", body), 409, "conflict")
        self.assertError(self.req("POST", "/api/v1/registrations", dict(body, password=8)),
                         400, "bad_request", "field 'password'")
        self.assertError(self.req("POST", "/api/v1/registrations", dict(body, role="admin")),
                         400, "bad_request", "unknown field 'role'")
        r = self.req("GET", "/register?invite=" + secrets.token_urlsafe(32)[:43])
        self.assertEqual(r.status, 404)
        self.assertIn("invitation", r.text)
        self.assertEqual(self.req("GET", "/register").status, 404)
        self.assertEqual(self.req("GET", "/register?invite=x&y=1").status, 404)

    def test_registrations_are_rate_limited_per_address(self):
        addr = fake_addr()
        body = {"invite": "x" * 43, "user": "someone", "name": "S", "password": "password-1"}
        codes = [self.req("POST", "/api/v1/registrations", body,
                          headers={"X-Forwarded-For": addr}).status for _ in range(10)]
        self.assertEqual(set(codes), {404})
        r = self.req("POST", "/api/v1/registrations", body, headers={"X-Forwarded-For": addr})
        self.assertError(r, 429, "too_many_requests")
        self.assertRegex(r.header("Retry-After"), r"^[1-9]\d*$")


class Directory(GatewayCase):
    def test_operator_token(self):
        doc = json.dumps(self.stack.doc).encode()
        r = self.req("PUT", "/api/v1/directory", raw=doc)
        self.assertError(r, 401, "unauthenticated")
        r = self.req("PUT", "/api/v1/directory", raw=doc, token=OPERATOR_TOKEN + "x")
        self.assertError(r, 401, "unauthenticated")
        r = self.req("PUT", "/api/v1/directory", raw=doc, token=self.alice)
        self.assertError(r, 401, "unauthenticated")
        r = self.req("PUT", "/api/v1/directory", raw=doc, token=OPERATOR_TOKEN)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["changed"], False)

    def test_dry_run(self):
        # A document without bob: the answer says so, and bob stays.
        doc = copy.deepcopy(self.stack.doc)
        doc["users"] = [u for u in doc["users"] if u["id"] != "bob"]
        r = self.req("PUT", "/api/v1/directory?dry_run=true", raw=json.dumps(doc).encode(),
                     token=OPERATOR_TOKEN)
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.json["dry_run"])
        self.assertEqual((r.json["removed_users"], r.json["users_removed"]), (["bob"], 1))
        self.assertEqual(self.req("GET", "/api/v1/worklists", token=self.stack.login("bob")).status,
                         200)
        r = self.req("PUT", "/api/v1/directory?dry_run=maybe", raw=json.dumps(doc).encode(),
                     token=OPERATOR_TOKEN)
        self.assertError(r, 400, "bad_request", "dry_run")
        r = self.req("PUT", "/api/v1/directory?dryrun=true", raw=json.dumps(doc).encode(),
                     token=OPERATOR_TOKEN)
        self.assertError(r, 400, "bad_request", "dryrun")

    def test_bad_documents(self):
        r = self.req("PUT", "/api/v1/directory", raw=b"{nope", token=OPERATOR_TOKEN)
        self.assertError(r, 400, "bad_request")
        bad = copy.deepcopy(self.stack.doc)
        bad["users"][0]["organisation"] = "atlantis"
        r = self.req("PUT", "/api/v1/directory", raw=json.dumps(bad).encode(), token=OPERATOR_TOKEN)
        self.assertError(r, 400, "bad_request", "users\\[0\\]")
        r = self.req("PUT", "/api/v1/directory", raw=b"{" + b" " * 1000000 + b"}",
                     token=OPERATOR_TOKEN)
        self.assertError(r, 413, "payload_too_large")

    def test_an_id_or_email_of_a_registered_account_is_409(self):
        email, _, invite = self.invite()
        user = "joiner%d" % next(_uids)
        r = self.req("POST", "/api/v1/registrations",
                     {"invite": invite, "user": user, "name": "Jo Iner",
                      "password": "joiner-password"})
        self.assertEqual(r.status, 201, r.body)
        n = len(self.stack.doc["users"])
        for what, entry in [("id", {"id": user, "email": "other-%d@example.org" % next(_uids)}),
                            ("email", {"id": "other%d" % next(_uids), "email": email})]:
            with self.subTest(what):
                doc = copy.deepcopy(self.stack.doc)
                doc["users"].append(dict(entry, organisation="stelsewhere", name="Clash",
                                         memberships=[]))
                r = self.req("PUT", "/api/v1/directory", raw=json.dumps(doc).encode(),
                             token=OPERATOR_TOKEN)
                self.assertError(r, 409, "conflict", r"users\[%d\]" % n)
        # refused whole: the document as it was is still the one imported
        r = self.req("PUT", "/api/v1/directory", raw=json.dumps(self.stack.doc).encode(),
                     token=OPERATOR_TOKEN)
        self.assertEqual((r.status, r.json["changed"]), (200, False), r.body)
        self.stack.login(user, "joiner-password")  # the account still logs in


class Http(GatewayCase):
    def test_a_query_on_a_route_that_takes_none_is_400(self):
        r = self.req("POST", "/api/v1/sessions?evil=1",
                     {"user": "alice", "password": "alice-password"})
        self.assertError(r, 400, "bad_request", "evil")
        r = self.req("DELETE", "/api/v1/guest-links/0123456789abcdef0123?x=1&x=2", token=self.alice)
        self.assertError(r, 400, "bad_request", "'x'")
        # the GET routes take theirs; pages ignore what mail services append
        r = self.req("GET", "/api/v1/worklists/location:ct/studies?limit=1", token=self.alice)
        self.assertEqual(r.status, 200, r.body)

    def test_unknown_paths_and_methods(self):
        r = self.req("GET", "/api/v1/nothing", token=self.alice)
        self.assertError(r, 404, "not_found")
        self.assertSecurityHeaders(r)
        r = self.req("DELETE", "/api/v1/sessions")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "POST")
        self.assertEqual(r.json["error"]["code"], "method_not_allowed")
        r = self.req("GET", "/nothing-here")
        self.assertEqual(r.status, 404)
        self.assertIn("text/html", r.header("Content-Type"))
        self.assertSecurityHeaders(r)
        r = self.req("GET", "/api/v1/worklists/a%00b", token=self.alice)
        self.assertError(r, 400, "bad_request")

    def test_static_files(self):
        r = self.req("GET", "/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        self.assertSecurityHeaders(r)
        self.assertNotRegex(r.text, r"<script>|<script [^>]*>[^<]|\son[a-z]+=")
        # every page names its icon (a browser asks for /favicon.ico,
        # a 404, without one)
        self.assertIn('<link rel="icon" href="/static/icon.svg" type="image/svg+xml">', r.text)
        for t in glob.glob(os.path.join(ROOT, "web", "templates", "*.html")):
            with open(t) as f:
                self.assertIn('rel="icon" href="/static/icon.svg"', f.read(), t)
        for name, ctype in [("app.css", "text/css; charset=utf-8"),
                            ("app.js", "text/javascript; charset=utf-8"),
                            ("icon.svg", "image/svg+xml")]:
            r = self.req("GET", "/static/" + name)
            self.assertEqual(r.status, 200, name)
            self.assertEqual(r.header("Content-Type"), ctype)
            etag = r.header("ETag")
            self.assertTrue(etag)
            self.assertEqual(r.header("Cache-Control"), "no-cache")
            r2 = self.req("GET", "/static/" + name, headers={"If-None-Match": etag})
            self.assertEqual(r2.status, 304)
            self.assertEqual(r2.body, b"")
            # the cache rule of the file, once: a 304 must not forbid caching
            self.assertEqual(r2.all("Cache-Control"), ["no-cache"])
        for bad in ("/static/../index.html", "/static/%2e%2e%2fCMakeLists.txt", "/static/.hidden.js",
                    "/static/nothing.js", "/static/app.exe", "/static/templates"):
            with self.subTest(bad):
                self.assertEqual(self.req("GET", bad).status, 404)
        r = self.req("HEAD", "/static/app.css")
        self.assertEqual((r.status, r.body), (200, b""))

    def test_head_answers_have_a_length_and_no_body(self):
        # Pipelined on one kept-alive connection: after each HEAD's headers
        # comes the next answer, not the body a GET would have had.
        css = self.req("GET", "/static/app.css").body
        probes = [("/static/app.css", 200, len(css)), ("/api/v1/sessions", 405, None),
                  ("/api/v1/nothing", 404, None)]
        wire = b"".join(b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % p.encode() for p, _, _ in probes)
        with socket.create_connection(("127.0.0.1", self.stack.gateway.port), timeout=10) as c:
            c.sendall(wire + b"GET /api/v1/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = read_all(c)
        answers = got.split(b"\r\n\r\n")
        for (path, status, length), head in zip(probes, answers):
            self.assertTrue(head.startswith(b"HTTP/1.1 %d " % status), (path, head[:200]))
            m = re.search(rb"(?im)^Content-Length: *(\d+)", head)
            self.assertIsNotNone(m, path)
            if length is not None:
                self.assertEqual(int(m.group(1)), length)
        # the GET's answer follows the three heads directly
        self.assertTrue(answers[3].startswith(b"HTTP/1.1 404 "), answers[3][:200])

    def test_pages_use_no_inline_script(self):
        for path in ("/",):
            r = self.req("GET", path)
            for m in re.finditer(r"<script([^>]*)>(.*?)</script>", r.text, re.S):
                self.assertIn("src=", m.group(1))
                self.assertEqual(m.group(2).strip(), "")

    def test_metrics(self):
        self.req("GET", "/api/v1/worklists", token=self.alice)
        status, text = self.stack.gateway.http("/metrics")
        self.assertEqual(status, 200)
        self.assertRegex(text, r'studyshare_http_requests_total\{route="worklists.list"\} [1-9]')
        self.assertNotIn("alice", text)


class StoppedPeer(GatewayCase):
    """A daemon of the stack stopped and started again: its routes are 503
    unavailable meanwhile (within --guestlink-timeout), the others serve,
    and once it is back its routes serve again."""
    gateway_env = {"STUDYSHARE_GUESTLINK_TIMEOUT": "1s"}

    def test_a_stopped_daemon_is_503_until_it_is_back(self):
        uid = self.stack.arrive()
        create = ("POST", "/api/v1/studies/%s/guest-links" % uid)
        r = self.req(*create, {"worklist": "location:ct"}, token=self.alice)
        self.assertEqual(r.status, 201, r.body)
        before = r.json["url"].rsplit("/g/", 1)[1]
        gl = self.stack.guestlink
        self.assertEqual(gl.stop(), 0)
        try:
            r = self.req(*create, {"worklist": "location:ct"}, token=self.alice)
            self.assertError(r, 503, "unavailable")
            r = self.req("GET", "/g/" + before, headers={"Accept": "application/json"})
            self.assertError(r, 503, "unavailable")
            # the page: this one is worth another try
            r = self.req("GET", "/g/" + before)
            self.assertEqual(r.status, 503)
            self.assertIn("Please try again in a moment.", r.text)
            r = self.req("GET", "/api/v1/worklists/location:ct/studies", token=self.alice)
            self.assertEqual(r.status, 200, r.body)
        finally:
            gl.start()
        wait_for(lambda: self.req(*create, {"worklist": "location:ct"},
                                  token=self.alice).status == 201,
                 timeout=20, what="guest links served again")
        r = self.req("GET", "/g/" + before, headers={"Accept": "application/json"})
        self.assertEqual(r.status, 200, r.body)


class Unavailable(unittest.TestCase):
    """A peer that is down is 503 unavailable; the gateway keeps serving."""

    def test_listens_on_an_ipv6_address(self):
        # --listen [v6]:port, as in an IPv6-only cluster ([::]:8080).
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback here")
        redis = Redis().start()
        port = free_port()
        dead = "tcp://127.0.0.1:%d" % free_port()
        gw = Daemon("gateway", redis, env={
            "STUDYSHARE_AUTHZ_URL": dead, "STUDYSHARE_SHARE_URL": dead,
            "STUDYSHARE_GUESTLINK_URL": dead, "STUDYSHARE_JWT_SECRET": JWT_SECRET,
            "STUDYSHARE_LISTEN": "[::1]:%d" % port}).start(ready=False)
        try:
            wait_for(lambda: gw.http("/healthz")[0] == 200, what="gateway alive")
            c = http.client.HTTPConnection("::1", port, timeout=10)
            c.request("GET", "/static/app.js")
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertIn(b"function", r.read())
            c.close()
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
        finally:
            self.assertEqual(gw.stop(), 0)
            gw.close()
            redis.close()

    def test_dead_peers_are_503(self):
        redis = Redis().start()
        dead = "tcp://127.0.0.1:%d" % free_port()
        gw = Daemon("gateway", redis, env={
            "STUDYSHARE_AUTHZ_URL": dead, "STUDYSHARE_SHARE_URL": dead,
            "STUDYSHARE_GUESTLINK_URL": dead, "STUDYSHARE_JWT_SECRET": JWT_SECRET,
            "STUDYSHARE_AUTHZ_TIMEOUT": "300ms"}).start(ready=False)
        try:
            wait_for(lambda: gw.http("/healthz")[0] == 200, what="gateway alive")
            status, text = gw.http("/readyz")
            self.assertEqual(status, 503)
            self.assertIn("peer tcp://127.0.0.1", text)
            now = int(time.time())
            tok = make_jwt({"sub": "alice", "iss": "studyshare", "iat": now, "exp": now + 60})

            def req(method, path, body=None):
                c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
                h = {"Authorization": "Bearer " + tok, "Accept": "application/json"}
                c.request(method, path, body=json.dumps(body) if body else None, headers=h)
                r = c.getresponse()
                out = r.status, json.loads(r.read()), r.getheader("Content-Security-Policy")
                c.close()
                return out
            for method, path, body in [
                    ("POST", "/api/v1/sessions", {"user": "alice", "password": "x"}),
                    ("GET", "/api/v1/worklists", None),
                    ("GET", "/api/v1/worklists/location:ct/studies", None),
                    ("POST", "/api/v1/studies/1.2/guest-links", {"worklist": "location:ct"}),
                    ("GET", "/g/" + "A" * 43, None)]:
                with self.subTest(path):
                    status, j, csp = req(method, path, body)
                    self.assertEqual(status, 503)
                    self.assertEqual(j["error"]["code"], "unavailable")
                    self.assertIsNotNone(csp)
            # the log says which daemon it could not reach
            failed = [e for e in gw.log_events() if e["event"] == "http.peer_failed"]
            self.assertTrue(failed)
            self.assertEqual({e["peer"] for e in failed}, {dead})
            redis.kill()  # the rate limiter's store is down too
            status, j, _ = req("POST", "/register-nothing", None)
            self.assertEqual(status, 404)
            c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
            c.request("POST", "/api/v1/registrations", body="{}",
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            self.assertEqual(r.status, 503)
            c.close()
        finally:
            self.assertEqual(gw.stop(), 0)
            gw.close()
            redis.close()

    def test_bad_settings_stop_the_start(self):
        for env, word in [({"STUDYSHARE_JWT_SECRET": "short"}, "jwt-secret"),
                          ({"STUDYSHARE_JWT_SECRET": JWT_SECRET,
                            "STUDYSHARE_OPERATOR_TOKEN": "short"}, "operator"),
                          ({"STUDYSHARE_JWT_SECRET": JWT_SECRET,
                            "STUDYSHARE_WEB_ROOT": "/nonexistent"}, "web-root"),
                          ({"STUDYSHARE_JWT_SECRET": JWT_SECRET,
                            "STUDYSHARE_STOW_URL": "notaurl"}, "stow-url"),
                          ({"STUDYSHARE_JWT_SECRET": JWT_SECRET,
                            "STUDYSHARE_STOW_URL": "http:///studies"}, "stow-url"),
                          ({"STUDYSHARE_JWT_SECRET": JWT_SECRET,
                            "STUDYSHARE_DIRECTORY_BODY_MAX": "60000000"},
                           "directory-body-max")]:
            with self.subTest(word):
                e = dict(os.environ)
                e.update(env)
                e["STUDYSHARE_ADMIN_ADDR"] = "127.0.0.1:%d" % free_port()
                e["STUDYSHARE_LISTEN"] = "127.0.0.1:%d" % free_port()
                p = subprocess.run([os.path.join(BUILD, "studyshare-gateway")], env=e,
                                   capture_output=True, text=True, timeout=20)
                # a bad setting: exit 2, one line that names it
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertRegex(p.stderr, r"^studyshare-gateway: ")
                self.assertTrue(word in p.stderr or
                                word.replace("-", "_").upper() in p.stderr, p.stderr)


if __name__ == "__main__":
    unittest.main()
