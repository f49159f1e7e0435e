"""The deployment files (deploy/, docker-compose.yml, docs/operations.md)
checked against each other and against the daemons themselves.

- docs/operations.md's settings reference is what the binaries print
  (scripts/gen-docs.sh regenerates it).
- docker-compose.yml passes `docker-compose config`; the manifests of
  deploy/k8s/ and the other YAML pass yamllint (deploy/yamllint.yaml) and
  the Kubernetes API schema (tests/deploy/check.mjs).
- Compose and Kubernetes give every daemon only settings it has, every
  setting it requires, secrets that exist, and addresses its peers listen
  on; selectors, probes and Service ports fit their pods.
- The image: its runtime packages provide every library the binaries
  link, its build stage installs the -dev packages of scripts/deps.sh, its
  COPY sources pass .dockerignore and make a layout the daemons start from
  (templates, web UI), and its entry point dispatches, makes secrets,
  imports the demo, and checks health against real daemons.
- The alert rules pass promtool and name only metrics the daemons serve.

A tool that is missing (docker-compose, yamllint, promtool, node/npm,
shellcheck) skips its test with the reason, except under CI (CI set),
where it fails: scripts/deps.sh installs them.  The static checks run in
the normal build's pass only (SS_SANITIZED skips them).
"""
import fnmatch
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import unittest

from stack import BUILD, ROOT, Daemon, Redis, cli, free_port, wait_for

DAEMONS = ["authz", "share", "notify", "guestlink", "gateway"]
ENTRYPOINT = os.path.join(ROOT, "deploy", "entrypoint.sh")
K8S = os.path.join(ROOT, "deploy", "k8s")
CHECK_JS = os.path.join(ROOT, "tests", "deploy", "check.mjs")
SANITIZED = bool(os.environ.get("SS_SANITIZED"))


def need(name, why):
    """The path of a command; the test is skipped without it (failed under CI)."""
    path = shutil.which(name)
    if path is None:
        msg = "%s is missing (%s); scripts/deps.sh installs it" % (name, why)
        if os.environ.get("CI"):
            raise AssertionError(msg)
        raise unittest.SkipTest(msg)
    return path


def static_only():
    if SANITIZED:
        raise unittest.SkipTest("static check: runs in the normal build's pass")


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 300)
    return subprocess.run(cmd, **kw)


_settings = {}


def settings(daemon):
    """{setting name: {"envs": [...], "required": bool}} from --help-markdown."""
    if daemon not in _settings:
        out = run([os.path.join(BUILD, "studyshare-" + daemon), "--help-markdown"],
                  check=True).stdout
        table = {}
        for line in out.splitlines():
            m = re.match(r"\| `--([a-z0-9-]+)` \| (.*?) \| (.*?) \| ", line)
            if m:
                table[m.group(1)] = {
                    "envs": re.findall(r"`(STUDYSHARE_[A-Z0-9_]+)`", m.group(2)),
                    "required": m.group(3) == "required",
                }
        _settings[daemon] = (out, table)
    return _settings[daemon]


def known_envs(daemon):
    return {e for s in settings(daemon)[1].values() for e in s["envs"]}


def missing_required(daemon, env_names):
    """Required settings of daemon that none of env_names gives."""
    return sorted(name for name, s in settings(daemon)[1].items()
                  if s["required"] and not set(s["envs"]) & set(env_names))


_node_ready = False


def node_docs(*files):
    """Every YAML document of files, read by tests/deploy/check.mjs (YAML 1.1
    with merge keys, as Compose and kubectl read them)."""
    global _node_ready
    node = need("node", "reads YAML and checks the k8s schema")
    if not _node_ready:
        here = os.path.dirname(CHECK_JS)
        mods = os.path.join(here, "node_modules")
        stamp = os.path.join(mods, ".package-lock.json")
        if (not os.path.isdir(os.path.join(mods, "kubernetes-models"))
                or not os.path.exists(stamp)
                or os.path.getmtime(os.path.join(here, "package-lock.json"))
                > os.path.getmtime(stamp)):
            npm = need("npm", "installs tests/deploy's packages")
            p = run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=here)
            if p.returncode != 0:
                raise AssertionError("npm ci in tests/deploy failed:\n" + p.stderr[-3000:])
        _node_ready = True
    p = run([node, CHECK_JS, "dump"] + list(files), cwd=ROOT, check=True)
    return json.loads(p.stdout)


def interpolate(value):
    """A Compose value with ${VAR:-default} taken at its default."""
    return re.sub(r"\$\{[A-Z0-9_]+:?-([^}]*)\}", r"\1", str(value))


def listen_port(addr):
    return int(addr.rsplit(":", 1)[1])


def host_port(url):
    m = re.match(r"^(?:[a-z+]+://)?([^:/]+):(\d+)$", url)
    return (m.group(1), int(m.group(2))) if m else (None, None)


# Which peer setting points at which daemon's listen setting.
PEER_URLS = {
    "STUDYSHARE_AUTHZ_URL": ("authz", "STUDYSHARE_LISTEN"),
    "STUDYSHARE_SHARE_URL": ("share", "STUDYSHARE_LISTEN"),
    "STUDYSHARE_GUESTLINK_URL": ("guestlink", "STUDYSHARE_LISTEN"),
    "STUDYSHARE_INGEST_URL": ("share", "STUDYSHARE_INGEST_LISTEN"),
}
LISTENS = ("STUDYSHARE_LISTEN", "STUDYSHARE_INGEST_LISTEN", "STUDYSHARE_PUB_LISTEN",
           "STUDYSHARE_ADMIN_ADDR")


def entrypoint_secret_names():
    with open(ENTRYPOINT) as f:
        m = re.search(r'^secret_names="([^"]*)"', f.read(), re.M)
    return m.group(1).split()


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def own_secrets():
    """deploy/entrypoint.sh's own_secrets: daemon -> the secrets it reads."""
    with open(ENTRYPOINT) as f:
        body = re.search(r"^own_secrets\(\) \{\n(.*?)^\}", f.read(), re.M | re.S).group(1)
    return {d: names.split() for d, names in re.findall(r'^\t(\w+)\) echo "([^"]*)" ;;', body, re.M)}


class OperationsDoc(unittest.TestCase):
    def test_settings_reference_matches_the_binaries(self):
        with open(os.path.join(ROOT, "docs", "operations.md")) as f:
            doc = f.read()
        for d in DAEMONS:
            with self.subTest(daemon=d):
                m = re.search(r"<!-- settings:%s:begin -->\n(.*?)<!-- settings:%s:end -->"
                              % (d, d), doc, re.S)
                self.assertIsNotNone(m, "docs/operations.md has no settings block for " + d)
                self.assertEqual(m.group(1), settings(d)[0],
                                 "docs/operations.md is out of date for %s: "
                                 "run scripts/gen-docs.sh" % d)

    def test_gen_docs_writes_the_blocks(self):
        """scripts/gen-docs.sh, run on a copy, fills emptied blocks with
        exactly what the binaries print and changes nothing else."""
        static_only()
        work = tempfile.mkdtemp(prefix="ss-gendocs-")
        try:
            for part in ("scripts", "services", "docs"):
                shutil.copytree(os.path.join(ROOT, part), os.path.join(work, part))
            ops = os.path.join(work, "docs", "operations.md")
            with open(ops) as f:
                doc = f.read()
            emptied = re.sub(r"(<!-- settings:([a-z]+):begin -->\n).*?(<!-- settings:\2:end -->)",
                             r"\1\3", doc, flags=re.S)
            with open(ops, "w") as f:
                f.write(emptied)
            p = run(["bash", os.path.join(work, "scripts", "gen-docs.sh")],
                    env=dict(os.environ, BUILD=BUILD))
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(ops) as f:
                regenerated = f.read()
            expect = doc
            for d in DAEMONS:
                expect = re.sub(r"(<!-- settings:%s:begin -->\n).*?(<!-- settings:%s:end -->)"
                                % (d, d), lambda m, d=d: m.group(1) + settings(d)[0] + m.group(2),
                                expect, flags=re.S)
            self.assertEqual(regenerated, expect)
        finally:
            shutil.rmtree(work, ignore_errors=True)


class Compose(unittest.TestCase):
    _doc = None

    @classmethod
    def setUpClass(cls):
        static_only()

    @property
    def doc(self):
        if Compose._doc is None:
            Compose._doc = node_docs("docker-compose.yml")[0]["doc"]
        return Compose._doc

    @property
    def services(self):
        return self.doc["services"]

    def env(self, name):
        return {k: interpolate(v) for k, v in (self.services[name].get("environment") or {}).items()}

    def test_docker_compose_config(self):
        exe = need("docker-compose", "Debian's docker-compose, v1")
        p = run([exe, "-f", "docker-compose.yml", "config", "-q"], cwd=ROOT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_every_daemon_is_there_and_notify_scales(self):
        for name, svc in self.services.items():
            self.assertNotIn("container_name", svc, name + ": a fixed name does not scale")
        for d in DAEMONS:
            self.assertIn(d, self.services)
            self.assertEqual(self.services[d]["command"], [d])
        self.assertNotIn("ports", self.services["notify"])
        self.assertEqual([interpolate(p) for p in self.services["gateway"]["ports"]],
                         ["127.0.0.1:8080:8080"])

    def test_health_restart_and_hardening(self):
        for name, svc in self.services.items():
            with self.subTest(service=name):
                self.assertIn("healthcheck", svc)
                self.assertIn("restart", svc)
                if name in DAEMONS:
                    self.assertEqual(svc["restart"], "unless-stopped")
                    self.assertEqual(svc["healthcheck"]["test"],
                                     ["CMD", "/usr/local/bin/studyshare-entrypoint", "healthcheck"])
                    self.assertTrue(svc["read_only"])
                    self.assertEqual(svc["cap_drop"], ["ALL"])
                    self.assertEqual(svc["build"]["dockerfile"], "deploy/Dockerfile")

    def test_redis_has_aof_on_a_volume(self):
        redis = self.services["redis"]
        self.assertTrue(redis["image"].startswith("redis:7"))
        cmd = [interpolate(c) for c in redis["command"]]
        self.assertEqual(cmd[cmd.index("--appendonly") + 1], "yes")
        self.assertEqual(cmd[cmd.index("--appendfsync") + 1], "everysec")
        self.assertIn("redis-data:/data", redis["volumes"])
        self.assertIn("redis-data", self.doc["volumes"])

    def test_redis_users_from_keygen(self):
        """Redis loads its users from the file keygen writes (the volume
        keygen writes it to, mounted where --aclfile points), after keygen
        ran; every daemon logs in as its own user with its own password."""
        redis, keygen = self.services["redis"], self.services["keygen"]
        cmd = [interpolate(c) for c in redis["command"]]
        aclfile = cmd[cmd.index("--aclfile") + 1]
        self.assertEqual(keygen["command"][:2], ["gen-secrets", "/run/secrets/studyshare"])
        acldir = keygen["command"][2]
        vol = [v.split(":")[0] for v in keygen["volumes"] if v.split(":")[1] == acldir]
        self.assertEqual(len(vol), 1, keygen["volumes"])
        self.assertIn("%s:%s:ro" % (vol[0], os.path.dirname(aclfile)), redis["volumes"])
        self.assertEqual(os.path.basename(aclfile), "users.acl")
        self.assertIn(vol[0], self.doc["volumes"])
        self.assertEqual(redis["depends_on"]["keygen"]["condition"],
                         "service_completed_successfully")
        # the health check needs no password: the default user may PING
        self.assertEqual(redis["healthcheck"]["test"], ["CMD", "redis-cli", "ping"])
        for d in DAEMONS:
            with self.subTest(daemon=d):
                env = self.env(d)
                self.assertEqual(env["STUDYSHARE_REDIS_USER"], d)
                self.assertEqual(env["STUDYSHARE_REDIS_PASSWORD_FILE"],
                                 "/run/secrets/studyshare/redis-" + d)

    def test_daemon_environment_matches_its_settings(self):
        own = own_secrets()
        for d in DAEMONS:
            with self.subTest(daemon=d):
                env = self.env(d)
                unknown = sorted(set(env) - known_envs(d))
                self.assertEqual(unknown, [], "%s: not settings of studyshare-%s" % (unknown, d))
                self.assertEqual(missing_required(d, env), [])
                # its own secrets' volume, and no other's
                mounts = self.services[d]["volumes"]
                self.assertIn("secrets-%s:/run/secrets/studyshare:ro" % d, mounts)
                self.assertEqual([m for m in mounts if m.startswith("secrets")],
                                 ["secrets-%s:/run/secrets/studyshare:ro" % d])
                secrets = set(own[d])
                for k, v in env.items():
                    if k.endswith("_FILE") and v == "":
                        # a secret only the operator has (empty: not set)
                        self.assertEqual(k, "STUDYSHARE_SMTP_PASSWORD_FILE")
                    elif k.endswith("_FILE"):
                        self.assertTrue(v.startswith("/run/secrets/studyshare/"), k)
                        self.assertIn(os.path.basename(v), secrets,
                                      "%s: keygen does not give %s %s" % (k, d, v))
        # keygen fills each daemon's volume
        keygen = self.services["keygen"]
        out = keygen["command"][3]
        for d in DAEMONS:
            self.assertIn("secrets-%s:%s/%s" % (d, out, d), keygen["volumes"])

    def test_addresses(self):
        """Daemons listen on every interface; each peer address is a
        service that listens on that port."""
        for d in DAEMONS:
            env = self.env(d)
            for k in LISTENS:
                if k in env:
                    self.assertRegex(env[k], r"^(tcp://)?0\.0\.0\.0:\d+$", "%s %s" % (d, k))
            for k, (peer, listen) in PEER_URLS.items():
                if k in env:
                    host, port = host_port(env[k])
                    self.assertEqual(host, peer, "%s %s" % (d, k))
                    self.assertEqual(port, listen_port(self.env(peer)[listen]), "%s %s" % (d, k))
            self.assertEqual(env["STUDYSHARE_REDIS_ADDR"], "redis:6379")
        smtp = self.env("notify")["STUDYSHARE_SMTP_URL"]
        self.assertEqual(smtp, "smtp://mailcatcher:2525")
        self.assertIn("2525", " ".join(self.services["mailcatcher"]["healthcheck"]["test"]))
        init = self.env("directory")
        self.assertEqual(host_port(init["STUDYSHARE_AUTHZ_URL"]), ("authz", 7101))
        self.assertEqual(host_port(init["STUDYSHARE_INGEST_URL"]), ("share", 7300))

    def test_every_path_it_names_exists(self):
        for name, svc in self.services.items():
            build = svc.get("build")
            if build:
                self.assertTrue(os.path.isfile(os.path.join(ROOT, build["dockerfile"])), name)
            for v in svc.get("volumes", []):
                src = interpolate(v).split(":")[0]
                if src.startswith("./"):
                    self.assertTrue(os.path.exists(os.path.join(ROOT, src)), "%s: %s" % (name, src))
                else:
                    self.assertIn(src, self.doc["volumes"], name)


class Yaml(unittest.TestCase):
    def test_yamllint(self):
        static_only()
        exe = need("yamllint", "lints the manifests and docker-compose.yml")
        files = (["docker-compose.yml", "deploy/yamllint.yaml", "deploy/prometheus/alerts.yml",
                  "tests/deploy/alerts_test.yml"]
                 + sorted(os.path.relpath(f, ROOT) for f in glob.glob(os.path.join(K8S, "*.yaml"))))
        p = run([exe, "--strict", "-f", "parsable", "-c", "deploy/yamllint.yaml"] + files, cwd=ROOT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_yamllint_finds_problems(self):
        """The config is live: a truthy 'yes', an implicit octal mode and a
        duplicate key are reported."""
        static_only()
        exe = need("yamllint", "lints the manifests and docker-compose.yml")
        bad = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        bad.write("a: yes\nmode: 0440\nb: 1\nb: 2\n")
        bad.close()
        try:
            p = run([exe, "-f", "parsable", "-c", "deploy/yamllint.yaml", bad.name], cwd=ROOT)
        finally:
            os.unlink(bad.name)
        self.assertNotEqual(p.returncode, 0)
        for rule in ("truthy", "octal-values", "key-duplicates"):
            self.assertIn(rule, p.stdout)


class Kubernetes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        static_only()
        cls.files = sorted(glob.glob(os.path.join(K8S, "*.yaml")))
        cls.docs = node_docs(*cls.files)
        cls.objs = [d["doc"] for d in cls.docs
                    if not d["doc"].get("apiVersion", "").startswith("kustomize.")]

    def of_kind(self, kind):
        return {o["metadata"]["name"]: o for o in self.objs if o["kind"] == kind}

    def test_schema(self):
        node = need("node", "checks the k8s schema")
        p = run([node, CHECK_JS, "k8s"] + self.files, cwd=ROOT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"k8s-schema: \d+ objects checked, 0 problems")

    def test_every_port_is_closed_but_to_whom_it_serves(self):
        pols = self.of_kind("NetworkPolicy")
        deny = pols["default-deny"]["spec"]
        self.assertEqual(deny["podSelector"]["matchLabels"],
                         {"app.kubernetes.io/part-of": "studyshare"})
        self.assertEqual(deny["policyTypes"], ["Ingress"])
        self.assertNotIn("ingress", deny)
        allowed = {}  # (pod name or "*", port) -> the rules' "from"
        for pol in pols.values():
            who = pol["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/name", "*")
            for rule in pol["spec"].get("ingress", []):
                for port in rule["ports"]:
                    allowed.setdefault((who, port["port"]), []).extend(rule["from"])
        for name, svc in self.of_kind("Service").items():
            pods = svc["spec"]["selector"]["app.kubernetes.io/name"]
            for port in svc["spec"]["ports"]:
                self.assertTrue((pods, port["port"]) in allowed or ("*", port["port"]) in allowed,
                                "no rule lets anyone reach %s:%s" % (name, port["port"]))
        # The NNG request ports take any message (a directory import on
        # authz's): studyshare's own daemons only, and only those that call.
        callers = {("authz", 7101): {"gateway", "share", "guestlink"},
                   ("share", 7201): {"gateway", "guestlink"},
                   ("guestlink", 7401): {"gateway"}}
        for key, want in callers.items():
            got = set()
            for f in allowed[key]:
                self.assertNotIn("namespaceSelector", f, key)
                self.assertNotIn("ipBlock", f, key)
                sel = f["podSelector"]
                self.assertEqual(sel["matchLabels"]["app.kubernetes.io/part-of"], "studyshare")
                got |= {sel["matchLabels"]["app.kubernetes.io/name"]} \
                    if "app.kubernetes.io/name" in sel["matchLabels"] \
                    else set(sel["matchExpressions"][0]["values"])
            self.assertEqual(got, want, key)
        # The gateway's HTTP port trusts X-Forwarded-For: the ingress only.
        self.assertEqual(allowed[("gateway", 8080)],
                         [{"namespaceSelector": {"matchLabels": {
                             "kubernetes.io/metadata.name": "ingress-nginx"}}}])

    def test_schema_check_finds_problems(self):
        """A misspelt field, a wrong type and an unknown kind are reported."""
        node = need("node", "checks the k8s schema")
        with open(os.path.join(K8S, "authz.yaml")) as f:
            text = f.read()
        bad = (text.replace("readinessProbe:", "readinesProbe:", 1)
               .replace("containerPort: 9100", 'containerPort: "9100"', 1)
               + "---\napiVersion: v1\nkind: Servise\nmetadata:\n  name: x\n")
        tmp = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        tmp.write(bad)
        tmp.close()
        try:
            p = run([node, CHECK_JS, "k8s", tmp.name], cwd=ROOT)
        finally:
            os.unlink(tmp.name)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("containerPort must be integer", p.stdout)
        self.assertIn("unknown apiVersion/kind v1 Servise", p.stdout)
        tmp = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        tmp.write(text.replace("readinessProbe:", "readinesProbe:", 1))
        tmp.close()
        try:
            p = run([node, CHECK_JS, "k8s", tmp.name], cwd=ROOT)
        finally:
            os.unlink(tmp.name)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("containers[0].readinesProbe", p.stdout)

    def test_kustomization(self):
        with open(os.path.join(K8S, "kustomization.yaml")) as f:
            kz = node_docs(f.name)[0]["doc"]
        listed = kz["resources"]
        for r in listed:
            self.assertTrue(os.path.isfile(os.path.join(K8S, r)), r)
        optional = {"kustomization.yaml", "secret.example.yaml", "notify-hpa.yaml"}
        on_disk = {os.path.basename(f) for f in self.files}
        self.assertEqual(sorted(on_disk - optional), sorted(listed))
        self.assertNotIn("secret.example.yaml", listed,
                         "applying the template would overwrite the real secrets")
        kubectl = shutil.which("kubectl")
        if kubectl:  # not a Debian package: checked where it is installed
            p = run([kubectl, "kustomize", K8S])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("image: %s:%s" % (kz["images"][0]["newName"], kz["images"][0]["newTag"]),
                          p.stdout)

    def test_every_daemon_has_deployment_service_and_budget(self):
        deps, svcs, pdbs = (self.of_kind(k) for k in
                            ("Deployment", "Service", "PodDisruptionBudget"))
        for d in DAEMONS:
            with self.subTest(daemon=d):
                self.assertIn(d, deps)
                self.assertIn(d, svcs)
                self.assertIn(d, pdbs)
                labels = deps[d]["spec"]["template"]["metadata"]["labels"]
                sel = pdbs[d]["spec"]["selector"]["matchLabels"]
                self.assertLessEqual(sel.items(), labels.items())
                self.assertGreaterEqual(deps[d]["spec"]["replicas"], 2)
                self.assertEqual(pdbs[d]["spec"].get("maxUnavailable"), 1)
        self.assertIn("redis", self.of_kind("StatefulSet"))
        hpa = self.of_kind("HorizontalPodAutoscaler")["notify"]
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], "notify")
        self.assertEqual(hpa["spec"]["metrics"][0]["external"]["metric"]["name"],
                         "studyshare_notify_backlog")

    def pods(self):
        for kind in ("Deployment", "StatefulSet"):
            for name, o in self.of_kind(kind).items():
                yield name, o

    def test_workloads(self):
        """Selectors match, probes use ports the pod has, resources are set,
        and nothing runs as root."""
        for name, o in self.pods():
            with self.subTest(workload=name):
                spec = o["spec"]
                labels = spec["template"]["metadata"]["labels"]
                self.assertLessEqual(spec["selector"]["matchLabels"].items(), labels.items())
                pod = spec["template"]["spec"]
                self.assertTrue(pod["securityContext"]["runAsNonRoot"])
                self.assertIs(pod["automountServiceAccountToken"], False)
                for c in pod["containers"]:
                    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
                    for probe in ("readinessProbe", "livenessProbe"):
                        self.assertIn(probe, c)
                        get = c[probe].get("httpGet") or c[probe].get("tcpSocket")
                        if get:
                            self.assertIn(get["port"], ports)
                    for what in ("requests", "limits"):
                        self.assertIn("memory", c["resources"][what])
                    self.assertIn("cpu", c["resources"]["requests"])
                    sc = c["securityContext"]
                    self.assertIs(sc["allowPrivilegeEscalation"], False)
                    self.assertIs(sc["readOnlyRootFilesystem"], True)
                    self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
                    if name in DAEMONS:
                        self.assertEqual(c["args"], [name])
                        self.assertEqual(ports["admin"], 9100)
                        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz")
                        self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz")

    def test_services_reach_their_pods(self):
        pods = dict(self.pods())
        for name, svc in self.of_kind("Service").items():
            with self.subTest(service=name):
                sel = svc["spec"]["selector"]
                matching = [p for p in pods.values()
                            if sel.items() <= p["spec"]["template"]["metadata"]["labels"].items()]
                self.assertEqual(len(matching), 1, "selector of %s" % name)
                ports = {p["name"] for c in matching[0]["spec"]["template"]["spec"]["containers"]
                         for p in c.get("ports", [])}
                for p in svc["spec"]["ports"]:
                    self.assertIn(p["targetPort"], ports)

    def test_daemon_settings_and_secrets(self):
        """Every STUDYSHARE_* a daemon gets (env and its ConfigMaps) is one
        of its settings, every required one is given, every secret file is
        mounted from a key of the Secret, and peer addresses name the
        Service and port of the daemon that listens there."""
        cms = self.of_kind("ConfigMap")
        secret = self.of_kind("Secret")["studyshare-secrets"]
        self.assertTrue(all(v == "" for v in secret["stringData"].values()),
                        "the Secret template must carry no values")
        svcs = self.of_kind("Service")
        deps = self.of_kind("Deployment")

        def env_of(d):
            c = deps[d]["spec"]["template"]["spec"]["containers"][0]
            env = {}
            for ref in c.get("envFrom", []):
                env.update(cms[ref["configMapRef"]["name"]]["data"])
            for e in c.get("env", []):
                env[e["name"]] = e["value"]
            return c, env

        for d in DAEMONS:
            with self.subTest(daemon=d):
                c, env = env_of(d)
                unknown = sorted(set(env) - known_envs(d))
                self.assertEqual(unknown, [], "%s: not settings of studyshare-%s" % (unknown, d))
                self.assertEqual(missing_required(d, env), [])
                vols = {v["name"]: v for v in deps[d]["spec"]["template"]["spec"]["volumes"]}
                mounted = {}
                for m in c["volumeMounts"]:
                    for item in vols[m["name"]].get("secret", {}).get("items", []):
                        self.assertIn(item["key"], secret["stringData"])
                        mounted[os.path.join(m["mountPath"], item["path"])] = item["key"]
                files = {v for k, v in env.items() if k.endswith("_FILE")}
                self.assertEqual(files, set(mounted), "secret files of " + d)
                # the same keys Compose gives it (smtp-password: the
                # operator's own, added by hand in Kubernetes)
                self.assertEqual(sorted(mounted.values()),
                                 sorted(set(own_secrets()[d]) - {"smtp-password"}), d)
                for k in LISTENS:
                    if k in env:
                        self.assertRegex(env[k], r"^(tcp://)?0\.0\.0\.0:\d+$", k)
                for k, (peer, listen) in PEER_URLS.items():
                    if k in env:
                        host, port = host_port(env[k])
                        self.assertEqual(host, peer, k)
                        self.assertIn(port, [p["port"] for p in svcs[peer]["spec"]["ports"]], k)
                        self.assertEqual(port, listen_port(env_of(peer)[1][listen]), k)
                self.assertEqual(env["STUDYSHARE_REDIS_ADDR"], "redis:6379")
                # its own Redis user, with its own password
                self.assertEqual(env["STUDYSHARE_REDIS_USER"], d)
                self.assertEqual(mounted[env["STUDYSHARE_REDIS_PASSWORD_FILE"]], "redis-" + d)
        for name, cm in cms.items():
            if name.startswith("studyshare-") and name != "studyshare-common":
                self.assertIn(name[len("studyshare-"):], DAEMONS, name)
        # the secrets the entry point makes for Compose are the Secret's
        # (the Secret also has the ACL file made of the Redis ones)
        self.assertEqual(set(entrypoint_secret_names()) | {"redis-users.acl"},
                         set(secret["stringData"]))

    def test_redis(self):
        redis = self.of_kind("StatefulSet")["redis"]
        conf = self.of_kind("ConfigMap")["redis-config"]["data"]["redis.conf"]
        lines = {l.split()[0]: l.split(None, 1)[1] for l in conf.splitlines()
                 if l.strip() and not l.startswith("#")}
        self.assertEqual(lines["appendonly"], "yes")
        self.assertEqual(lines["appendfsync"], "everysec")
        self.assertEqual(lines["maxmemory-policy"], "noeviction")
        self.assertEqual(redis["spec"]["replicas"], 1)
        claim = redis["spec"]["volumeClaimTemplates"][0]
        c = redis["spec"]["template"]["spec"]["containers"][0]
        mounts = c["volumeMounts"]
        self.assertIn({"name": claim["metadata"]["name"], "mountPath": lines["dir"]}, mounts)
        self.assertNotIn("requirepass", conf)
        # the users come from the Secret's ACL file
        self.assertNotIn("command", c)
        self.assertEqual(c["args"][:2], ["redis-server", "/etc/redis/redis.conf"])
        aclfile = c["args"][c["args"].index("--aclfile") + 1]
        vols = {v["name"]: v for v in redis["spec"]["template"]["spec"]["volumes"]}
        keys = {}
        for m in mounts:
            for item in vols.get(m["name"], {}).get("secret", {}).get("items", []):
                keys[os.path.join(m["mountPath"], item["path"])] = item["key"]
        self.assertEqual(keys[aclfile], "redis-users.acl")
        # the readiness probe needs no password: the default user may PING
        probe = " ".join(c["readinessProbe"]["exec"]["command"])
        self.assertIn("redis-cli ping", probe)
        self.assertNotIn("AUTH", probe)


def resp(port, *cmds):
    """Each command (a list) on one connection, in order; each reply as a
    str ("+OK", "-ERR ...", ":1", a bulk string's text) or a list."""
    out = b""
    for c in cmds:
        out += b"*%d\r\n" % len(c)
        for a in c:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)

    def reply(f):
        line = f.readline().decode().rstrip("\r\n")
        if line[:1] == "*":
            return [reply(f) for _ in range(max(0, int(line[1:])))]
        if line[:1] == "$" and line != "$-1":
            return f.read(int(line[1:]) + 2)[:-2].decode()
        return line

    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(out)
        f = s.makefile("rb")
        return [reply(f) for _ in cmds]


class RedisAclFile(unittest.TestCase):
    """deploy/redis/acl-file, the way Compose and Kubernetes load it: a
    real redis-server started with --aclfile.  Each daemon's user gets
    exactly what deploy/redis/acl-setup gives it on a running Redis (their
    ACL LIST lines compared), admin everything, the default user PING and
    nothing else; a bad password file is refused by name."""

    ACL_FILE = os.path.join(ROOT, "deploy", "redis", "acl-file")

    def setUp(self):
        static_only()
        self.tmp = tempfile.mkdtemp(prefix="ss-aclfile-")
        self.pw = {u: "pw-%s-%s" % (u, os.urandom(6).hex()) for u in DAEMONS + ["admin"]}
        self.servers = []

    def tearDown(self):
        for r in self.servers:
            r.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, data):
        with open(os.path.join(self.tmp, name), "w", newline="") as f:
            f.write(data)

    def acl_file(self):
        return run(["sh", self.ACL_FILE, self.tmp])

    def write_passwords(self):
        for u, pw in self.pw.items():
            # a line ending, even CRLF, is not part of a password
            end = "\r\n" if u == "share" else "\n"
            self.write("redis-password" if u == "admin" else "redis-" + u, pw + end)

    def redis(self, *args):
        r = Redis(args)
        self.servers.append(r)
        return r.start()

    def test_users_load_and_match_acl_setup(self):
        self.write_passwords()
        p = self.acl_file()
        self.assertEqual(p.returncode, 0, p.stderr)
        for pw in self.pw.values():
            self.assertNotIn(pw, p.stdout)
        self.write("users.acl", p.stdout)
        r = self.redis("--aclfile", os.path.join(self.tmp, "users.acl"))
        # the default user: PING (the probes), nothing else
        self.assertEqual(resp(r.port, ["PING"]), ["+PONG"])
        self.assertRegex(resp(r.port, ["GET", "authz:x"])[0], "^-NOPERM")
        self.assertRegex(resp(r.port, ["ACL", "LIST"])[0], "^-NOPERM")
        # admin: everything
        admin = ["AUTH", "admin", self.pw["admin"]]
        got = resp(r.port, admin, ["SET", "link:{x}", "1"], ["CONFIG", "GET", "maxmemory"],
                   ["ACL", "LIST"])
        self.assertEqual(got[:2], ["+OK", "+OK"])
        self.assertEqual(got[2], ["maxmemory", "0"])
        from_file = sorted(l for l in got[3] if l.split()[1] in DAEMONS)
        self.assertEqual(len(from_file), len(DAEMONS))
        # each daemon: its password, its keys, no dangerous command
        for u in DAEMONS:
            with self.subTest(user=u):
                prefix = {"guestlink": "link"}.get(u, u)
                got = resp(r.port, ["AUTH", u, self.pw[u]], ["SET", prefix + ":t", "1"],
                           ["GET", "link:{x}" if u != "guestlink" else "share:x"],
                           ["FLUSHALL"], ["SCAN", "0"])
                self.assertEqual(got[:2], ["+OK", "+OK"])
                for g in got[2:]:
                    self.assertRegex(g, "^-NOPERM")
                self.assertRegex(resp(r.port, ["AUTH", u, self.pw["admin"]])[0], "^-WRONGPASS")
        # acl-setup on a running Redis gives the same users
        setup = os.path.join(self.tmp, "by-setup")
        os.mkdir(setup)
        for u in DAEMONS:
            with open(os.path.join(setup, u), "w") as f:
                f.write(self.pw[u] + "\n")
        r2 = self.redis()
        p = run([os.path.join(ROOT, "deploy", "redis", "acl-setup"), setup, "-p", str(r2.port)])
        self.assertEqual(p.returncode, 0, p.stderr)
        by_setup = sorted(l for l in resp(r2.port, ["ACL", "LIST"])[0] if l.split()[1] in DAEMONS)

        def rules(line):
            # Redis lists single commands in no fixed order; categories
            # in the order they apply
            t = line.split()
            return sorted(t), [x for x in t if "@" in x]
        self.assertEqual([rules(l) for l in from_file], [rules(l) for l in by_setup])

    def test_bad_password_files_are_named(self):
        self.write_passwords()
        os.unlink(os.path.join(self.tmp, "redis-notify"))
        p = self.acl_file()
        self.assertEqual((p.returncode, p.stdout), (1, ""))
        self.assertIn("redis-notify: no such password file", p.stderr)
        self.write("redis-notify", "\r\n\n")
        p = self.acl_file()
        self.assertEqual((p.returncode, p.stdout), (1, ""))
        self.assertIn("redis-notify is empty", p.stderr)
        os.unlink(os.path.join(self.tmp, "redis-password"))
        p = self.acl_file()
        self.assertEqual(p.returncode, 1)
        self.assertIn("redis-password: no such password file", p.stderr)
        p = run(["sh", self.ACL_FILE])
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage", p.stderr)

    def test_acl_file_passes_shellcheck(self):
        exe = need("shellcheck", "checks the shell scripts")
        p = run([exe, "-s", "sh", self.ACL_FILE])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class Dockerfile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        static_only()
        with open(os.path.join(ROOT, "deploy", "Dockerfile")) as f:
            text = f.read()
        cls.stages = []
        for line in re.sub(r"\\\n", " ", text).splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            op, _, rest = line.partition(" ")
            if op == "FROM":
                cls.stages.append([])
            if cls.stages:
                cls.stages[-1].append((op, rest.strip()))

    def installs(self, stage):
        for op, rest in self.stages[stage]:
            if op == "RUN" and "apt-get install" in rest:
                after = rest.split("--no-install-recommends", 1)[1]
                return after.split("&&", 1)[0].split()
        return []

    def test_two_stages_on_debian_12_slim(self):
        self.assertEqual(len(self.stages), 2)
        with open(os.path.join(ROOT, "deploy", "Dockerfile")) as f:
            self.assertRegex(f.read(), r"(?m)^ARG DEBIAN=debian:12-slim$")
        self.assertEqual(self.stages[0][0], ("FROM", "${DEBIAN} AS build"))
        self.assertEqual(self.stages[1][0], ("FROM", "${DEBIAN}"))

    def test_build_stage_has_the_dev_packages_of_deps_sh(self):
        with open(os.path.join(ROOT, "scripts", "deps.sh")) as f:
            deps = re.search(r"pkgs=\((.*?)\)", f.read(), re.S).group(1).split()
        dev = {p for p in deps if p.startswith("lib") and p.endswith("-dev")
               and not p.startswith("libclang")}
        self.assertLessEqual(dev, set(self.installs(0)))
        self.assertLessEqual({"cmake", "pkg-config", "build-essential"}, set(self.installs(0)))

    def test_runtime_packages_provide_every_linked_library(self):
        """Every library a binary needs (NEEDED) comes from a package the
        final stage installs (or from libc6, which Debian always has)."""
        if SANITIZED:
            self.skipTest("the image has no sanitizer runtime")
        need("dpkg-query", "maps libraries to Debian packages")
        runtime = set(self.installs(1))
        for pkg in runtime:
            p = run(["dpkg-query", "-W", "-f=${Status}", pkg])
            if "install ok installed" not in p.stdout:
                self.assertEqual(run(["apt-cache", "show", pkg]).returncode, 0,
                                 pkg + " is no Debian package")
        bins = [os.path.join(BUILD, "studyshare")] + [
            os.path.join(BUILD, "studyshare-" + d) for d in DAEMONS]
        links = []  # (binary, soname, real path) of every direct dependency
        for b in bins:
            needed = set(re.findall(r"\(NEEDED\).*\[(.*)\]", run(["readelf", "-d", b]).stdout))
            self.assertTrue(needed, b)
            out = run(["ldd", b], check=True).stdout
            links += [(b, m.group(1), os.path.realpath(m.group(2)))
                      for m in re.finditer(r"^\s*(\S+) => (\S+)", out, re.M)
                      if m.group(1) in needed]
        # merged /usr: dpkg may know a library under /lib or /usr/lib
        paths = {p for _, _, p in links}
        alts = {p: p[4:] if p.startswith("/usr/") else "/usr" + p for p in paths}
        out = run(["dpkg-query", "-S"] + sorted(paths | set(alts.values()))).stdout
        known = {}
        for line in out.splitlines():
            pkgs, _, path = line.partition(": ")
            known[path] = pkgs.split(",")[0].split(":")[0].strip()
        owners = {p: known.get(p) or known.get(alts[p]) for p in paths}
        for b, soname, path in links:
            owner = owners[path]
            self.assertIsNotNone(owner, "%s: %s belongs to no package" % (b, path))
            if owner != "libc6":
                self.assertIn(owner, runtime, "%s needs %s (%s)" % (b, soname, owner))
        self.assertIn("libnng1", set(owners.values()))

    def test_user_health_and_paths(self):
        final = dict((op, rest) for op, rest in self.stages[1] if op != "COPY")
        self.assertEqual(final["USER"], "10001:10001")
        self.assertIn('"/usr/local/bin/studyshare-entrypoint", "healthcheck"', final["HEALTHCHECK"])
        self.assertEqual(final["ENTRYPOINT"], '["/usr/local/bin/studyshare-entrypoint"]')
        env = dict(re.findall(r"(STUDYSHARE_[A-Z_]+)=(\S+)", final["ENV"]))
        copies = {rest.split()[-1] for op, rest in self.stages[1] if op == "COPY"}
        self.assertIn(env["STUDYSHARE_TEMPLATES"], copies)
        self.assertIn(env["STUDYSHARE_WEB_ROOT"], copies)
        self.assertEqual(env["STUDYSHARE_ADMIN_ADDR"], "0.0.0.0:9100")

    def test_dockerignore_lets_through_what_is_copied_and_nothing_else(self):
        with open(os.path.join(ROOT, ".dockerignore")) as f:
            patterns = [l.strip() for l in f if l.strip() and not l.startswith("#")]

        def matches(pat, path):
            pat = pat.rstrip("/").split("/")
            parts = path.split("/")
            return len(parts) >= len(pat) and all(
                fnmatch.fnmatchcase(a, b) for a, b in zip(parts, pat))

        def included(path):
            keep = True
            for p in patterns:
                neg = p.startswith("!")
                if matches(p.lstrip("!"), path):
                    keep = neg
            return keep

        sources = []
        for df in ("Dockerfile", "mailcatcher.Dockerfile"):
            with open(os.path.join(ROOT, "deploy", df)) as f:
                for line in f:
                    m = re.match(r"COPY (?!--from)(\S+) ", line)
                    if m:
                        sources.append(m.group(1).rstrip("/"))
        self.assertIn("tests/integration/smtp_catcher.py", sources)
        for src in sources:
            full = os.path.join(ROOT, src)
            self.assertTrue(os.path.exists(full), src)
            files = [src] if os.path.isfile(full) else [
                os.path.relpath(os.path.join(dp, fn), ROOT)
                for dp, _, fns in os.walk(full) for fn in fns]
            for f in files:
                self.assertTrue(included(f), "%s is COPYed but .dockerignore drops it" % f)
        for f in ("var/secrets/pepper", "build/studyshare", ".git/HEAD",
                  "tests/browser/node_modules/x.js", "deploy/k8s/secret.example.yaml"):
            self.assertFalse(included(f), f + " would be sent to the build")

    def test_build_stage_configures_from_what_it_copies(self):
        """CMake configures from the build stage's COPYs alone."""
        sources = [rest.split()[0] for op, rest in self.stages[0] if op == "COPY"]
        work = tempfile.mkdtemp(prefix="ss-dockerbuild-")
        try:
            for s in sources:
                src = os.path.join(ROOT, s)
                dst = os.path.join(work, "src", s)
                if os.path.isdir(src):
                    shutil.copytree(src, dst)
                else:
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.copy(src, dst)
            p = run(["cmake", "-S", os.path.join(work, "src"), "-B", os.path.join(work, "b"),
                     "-DCMAKE_BUILD_TYPE=RelWithDebInfo"])
            self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
            targets = run(["cmake", "--build", os.path.join(work, "b"), "--target", "help"]).stdout
            for d in DAEMONS + [""]:
                self.assertIn("studyshare" + ("-" + d if d else ""), targets)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def test_entrypoint_passes_shellcheck(self):
        exe = need("shellcheck", "lints deploy/entrypoint.sh")
        p = run([exe, "-s", "sh", ENTRYPOINT])
        self.assertEqual(p.returncode, 0, p.stdout)
        p = run([exe, os.path.join(ROOT, "deploy/redis/acl-setup")])
        self.assertEqual(p.returncode, 0, p.stdout)


class Alerts(unittest.TestCase):
    def test_promtool(self):
        static_only()
        exe = need("promtool", "checks deploy/prometheus/alerts.yml")
        p = run([exe, "check", "rules", "deploy/prometheus/alerts.yml"], cwd=ROOT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = run([exe, "test", "rules", "tests/deploy/alerts_test.yml"], cwd=ROOT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


def image_layout(root):
    """Copies what the final stage of deploy/Dockerfile COPYs from the
    repository into root, at the same paths; returns root."""
    with open(os.path.join(ROOT, "deploy", "Dockerfile")) as f:
        final = f.read().split("\nFROM ")[-1]
    for m in re.finditer(r"^COPY (?!--from)(\S+) (\S+)$", final, re.M):
        src, dst = os.path.join(ROOT, m.group(1)), root + m.group(2)
        if os.path.isdir(src):
            shutil.copytree(src, dst)
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(src, dst)
    return root


class EntryPoint(unittest.TestCase):
    """deploy/entrypoint.sh without Docker: fake binaries show what it
    execs; the real ones show that it starts, checks and initialises."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ss-entry-")
        self.fake = os.path.join(self.tmp, "bin")
        os.makedirs(self.fake)
        for name in ["studyshare"] + ["studyshare-" + d for d in DAEMONS]:
            path = os.path.join(self.fake, name)
            with open(path, "w") as f:
                f.write('#!/bin/sh\necho "$0 $*"; env | grep "^STUDYSHARE_" | sort\n')
            os.chmod(path, 0o755)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def entry(self, *args, env=None, path=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("STUDYSHARE_")}
        e["PATH"] = (path or self.fake) + os.pathsep + e["PATH"]
        e.update(env or {})
        return run(["sh", ENTRYPOINT] + list(args), env=e, timeout=60)

    def test_dispatch_and_container_defaults(self):
        expect = {
            "authz": {"STUDYSHARE_LISTEN": "tcp://0.0.0.0:7101"},
            "share": {"STUDYSHARE_LISTEN": "tcp://0.0.0.0:7201",
                      "STUDYSHARE_INGEST_LISTEN": "tcp://0.0.0.0:7300",
                      "STUDYSHARE_PUB_LISTEN": "tcp://0.0.0.0:7202"},
            "notify": {},
            "guestlink": {"STUDYSHARE_LISTEN": "tcp://0.0.0.0:7401",
                          "STUDYSHARE_PUB_LISTEN": "tcp://0.0.0.0:7402"},
            "gateway": {"STUDYSHARE_LISTEN": "0.0.0.0:8080"},
        }
        for d, want in expect.items():
            with self.subTest(daemon=d):
                p = self.entry(d, "--log-level", "debug")
                self.assertEqual(p.returncode, 0, p.stderr)
                lines = p.stdout.splitlines()
                self.assertEqual(lines[0], "%s --log-level debug"
                                 % os.path.join(self.fake, "studyshare-" + d))
                env = dict(l.split("=", 1) for l in lines[1:])
                want = dict(want, STUDYSHARE_ADMIN_ADDR="0.0.0.0:9100")
                self.assertEqual(env, want)
                # each default binds a port the binary's own default uses
                for k, v in want.items():
                    self.assertIn(":%d`" % listen_port(v), settings(d)[0], k)
        p = self.entry("share", env={"STUDYSHARE_LISTEN": "tcp://10.0.0.1:1",
                                     "STUDYSHARE_ADMIN_ADDR": "127.0.0.1:9999"})
        env = dict(l.split("=", 1) for l in p.stdout.splitlines()[1:])
        self.assertEqual(env["STUDYSHARE_LISTEN"], "tcp://10.0.0.1:1")
        self.assertEqual(env["STUDYSHARE_ADMIN_ADDR"], "127.0.0.1:9999")
        p = self.entry("studyshare", "links", "list")
        self.assertEqual(p.stdout.splitlines()[0],
                         os.path.join(self.fake, "studyshare") + " links list")
        p = self.entry("nonsense")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command 'nonsense'", p.stderr)
        p = self.entry("help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("gen-secrets DIR", p.stdout)
        self.assertNotIn("set -eu", p.stdout)

    def test_gen_secrets(self):
        d = os.path.join(self.tmp, "secrets")
        p = self.entry("gen-secrets", d)
        self.assertEqual(p.returncode, 0, p.stderr)
        names = entrypoint_secret_names()
        self.assertEqual(sorted(os.listdir(d)), sorted(names))
        first = {}
        for n in names:
            path = os.path.join(d, n)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, n)
            with open(path) as f:
                first[n] = f.read()
            self.assertRegex(first[n], r"^[A-Za-z0-9+/]{43}$")
        self.assertEqual(len(set(first.values())), len(names))
        os.unlink(os.path.join(d, "pepper"))
        p = self.entry("gen-secrets", d)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "gen-secrets: made %s/pepper" % d)
        for n in names:
            with open(os.path.join(d, n)) as f:
                if n != "pepper":
                    self.assertEqual(f.read(), first[n], n + " was replaced")
        # every secret file the local stack uses is one the entry point
        # makes (its Redis users have passwords of their own: acl-setup)
        with open(os.path.join(ROOT, "deploy", "local", "stack")) as f:
            stack = set(re.findall(r"\$\(secret ([a-z-]+)\)", f.read()))
        self.assertEqual(stack, {n for n in names if not n.startswith("redis-")})

    def test_gen_secrets_writes_redis_users(self):
        """With ACLDIR, gen-secrets writes Redis's users (0644, hashes of
        the passwords it made) and rewrites them on every run."""
        share = image_layout(os.path.join(self.tmp, "image")) + "/usr/share/studyshare"
        d, acl = os.path.join(self.tmp, "secrets"), os.path.join(self.tmp, "acl")
        p = self.entry("gen-secrets", d, acl, env={"SS_SHARE_DIR": share})
        self.assertEqual(p.returncode, 0, p.stderr)
        path = os.path.join(acl, "users.acl")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o644)
        self.assertEqual(os.listdir(acl), ["users.acl"])

        def users():
            with open(path) as f:
                return {l.split()[1]: next(t for t in l.split() if t[0] == "#" or t == "nopass")
                        for l in f}

        first = users()
        for u in DAEMONS + ["admin"]:
            with open(os.path.join(d, "redis-" + ("password" if u == "admin" else u)), "rb") as f:
                pw = f.read()
            self.assertEqual(first[u], "#" + hashlib.sha256(pw).hexdigest(), u)
        self.assertEqual(first["default"], "nopass")
        os.unlink(os.path.join(d, "redis-share"))
        p = self.entry("gen-secrets", d, acl, env={"SS_SHARE_DIR": share})
        self.assertEqual(p.returncode, 0, p.stderr)
        again = users()
        self.assertNotEqual(again["share"], first["share"])
        self.assertEqual(again["authz"], first["authz"])
        # with OUTROOT: each daemon's own secrets in its folder, no other
        out = os.path.join(self.tmp, "out")
        with open(os.path.join(d, "smtp-password"), "w") as f:
            f.write("relay-password")
        p = self.entry("gen-secrets", d, acl, out, env={"SS_SHARE_DIR": share})
        self.assertEqual(p.returncode, 0, p.stderr)
        for daemon, names in own_secrets().items():
            self.assertEqual(sorted(os.listdir(os.path.join(out, daemon))), sorted(names), daemon)
            for n in names:
                path = os.path.join(out, daemon, n)
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, path)
                self.assertEqual(read_bytes(path), read_bytes(os.path.join(d, n)), path)
        self.assertEqual(sorted(os.listdir(out)), sorted(DAEMONS))
        p = self.entry("gen-secrets", d, acl, out, "extra")
        self.assertEqual(p.returncode, 2)


class LiveImage(unittest.TestCase):
    """The daemons started the way the image starts them: through the entry
    point, from the image's layout of templates and web UI, each as its own
    Redis user with the password gen-secrets made, on a Redis that loaded
    the users gen-secrets wrote (as docker-compose.yml runs them); its
    health check, its init, and the metrics the alert rules name."""

    @classmethod
    def setUpClass(cls):
        cls.root = image_layout(tempfile.mkdtemp(prefix="ss-image-"))
        cls.share_dir = cls.root + "/usr/share/studyshare"
        cls.secrets = os.path.join(cls.root, "run", "secrets", "studyshare")
        acl = os.path.join(cls.root, "run", "studyshare", "redis-acl")
        cls.own = os.path.join(cls.root, "run", "studyshare", "secrets")
        p = cls.entry("gen-secrets", cls.secrets, acl, cls.own)
        assert p.returncode == 0, p.stderr
        cls.redis = Redis(["--aclfile", os.path.join(acl, "users.acl")]).start()
        key = "k" * 40
        cls.procs = []
        try:
            cls.authz = cls.daemon("authz")
            cls.share = cls.daemon("share", {
                "STUDYSHARE_AUTHZ_URL": cls.authz.url,
                "STUDYSHARE_TOKEN_KEY": key,
                "STUDYSHARE_INGEST_LISTEN": "tcp://127.0.0.1:%d" % free_port(),
                "STUDYSHARE_PUB_LISTEN": "tcp://127.0.0.1:%d" % free_port()})
            cls.ingest = cls.share.env["STUDYSHARE_INGEST_LISTEN"]
            cls.notify = cls.daemon("notify", {
                "STUDYSHARE_SMTP_URL": "smtp://127.0.0.1:%d" % free_port(),
                "STUDYSHARE_TEMPLATES": cls.share_dir + "/templates"})
            cls.guestlink = cls.daemon("guestlink", {
                "STUDYSHARE_AUTHZ_URL": cls.authz.url, "STUDYSHARE_SHARE_URL": cls.share.url,
                "STUDYSHARE_TOKEN_KEY": key,
                "STUDYSHARE_PUB_LISTEN": "tcp://127.0.0.1:%d" % free_port()})
            cls.http_port = free_port()
            cls.gateway = cls.daemon("gateway", {
                "STUDYSHARE_AUTHZ_URL": cls.authz.url, "STUDYSHARE_SHARE_URL": cls.share.url,
                "STUDYSHARE_GUESTLINK_URL": cls.guestlink.url, "STUDYSHARE_INGEST_URL": cls.ingest,
                "STUDYSHARE_JWT_SECRET": key, "STUDYSHARE_WEB_ROOT": cls.share_dir + "/web",
                "STUDYSHARE_LISTEN": "127.0.0.1:%d" % cls.http_port})
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def daemon(cls, name, env=None):
        """A daemon started through the entry point, explicit addresses
        on loopback so that nothing binds the container defaults here."""
        env = dict(env or {}, STUDYSHARE_REDIS_USER=name,
                   STUDYSHARE_REDIS_PASSWORD_FILE=os.path.join(cls.own, name, "redis-" + name))
        d = EntryDaemon(name, cls.redis, env=env)
        cls.procs.append(d)
        d.start()
        d.url = "tcp://127.0.0.1:%d" % d.port
        return d

    @classmethod
    def tearDownClass(cls):
        """Stops them with SIGTERM, as Docker does: each must exit 0."""
        codes = {}
        for d in reversed(cls.procs):
            if d.alive():
                codes[d.name] = d.stop()
            d.close()
        cls.redis.close()
        shutil.rmtree(cls.root, ignore_errors=True)
        bad = {k: v for k, v in codes.items() if v != 0}
        if bad:
            raise AssertionError("exit codes after SIGTERM through the entry point: %s" % bad)

    @classmethod
    def entry(cls, *args, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("STUDYSHARE_")}
        e["PATH"] = BUILD + os.pathsep + e["PATH"]
        e["SS_SHARE_DIR"] = cls.share_dir
        e.update(env or {})
        return run(["sh", ENTRYPOINT] + list(args), env=e, timeout=120)

    def admin(self, *cmds):
        """Redis commands as the operators' user admin."""
        with open(os.path.join(self.secrets, "redis-password")) as f:
            return resp(self.redis.port, ["AUTH", "admin", f.read()], *cmds)[1:]

    def test_daemons_started_by_the_entry_point_from_the_image_layout(self):
        for d in self.procs:
            self.assertTrue(d.alive(), d.name)
            self.assertEqual(d.http("/readyz")[0], 200, d.name)
        # each is logged in to Redis as its own user, and none was denied
        clients = self.admin(["CLIENT", "LIST"])[0]
        users = set(re.findall(r" user=(\S+)", clients))
        self.assertTrue(set(DAEMONS) <= users, clients)
        self.assertEqual(self.admin(["ACL", "LOG"])[0], [])
        # the gateway serves the web UI from the image's copy
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/" % self.http_port, timeout=5) as r:
            body = r.read().decode()
        with open(os.path.join(ROOT, "web", "index.html")) as f:
            self.assertEqual(body, f.read())

    def test_healthcheck(self):
        p = self.entry("healthcheck", env={
            "STUDYSHARE_ADMIN_ADDR": "0.0.0.0:%d" % self.notify.admin_port})
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.entry("healthcheck", env={
            "STUDYSHARE_ADMIN_ADDR": "tcp://127.0.0.1:%d" % self.share.admin_port})
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.entry("healthcheck", env={"STUDYSHARE_ADMIN_ADDR": "0.0.0.0:%d" % free_port()})
        self.assertNotEqual(p.returncode, 0)

    def test_init_imports_the_demo(self):
        env = {"STUDYSHARE_AUTHZ_URL": self.authz.url, "STUDYSHARE_INGEST_URL": self.ingest}
        for attempt in range(2):  # and again: both steps are idempotent
            p = self.entry("init", env=env)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("init: published the demo studies", p.stdout)
        rc, out, err = cli("authz", "check", "alice", "studies.share", "location:ct",
                           env={"STUDYSHARE_AUTHZ_URL": self.authz.url})
        self.assertEqual(rc, 0, out + err)
        studies = sorted(glob.glob(os.path.join(self.share_dir, "demo", "studies", "*.json")))
        self.assertEqual(len(studies), 5)
        for s in studies:
            with open(s) as f:
                uid = json.load(f)["study_uid"]
            self.assertEqual(self.admin(["EXISTS", "share:{study:%s}" % uid]), [":1"], uid)
        # another directory: imported, no demo studies
        other = os.path.join(self.root, "other.json")
        with open(os.path.join(self.share_dir, "demo", "directory.json")) as f:
            doc = json.load(f)
        with open(other, "w") as f:
            json.dump(doc, f, indent=1)
        p = self.entry("init", env=dict(env, STUDYSHARE_DIRECTORY_FILE=other))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("demo studies", p.stdout)

    def test_alert_rules_name_metrics_the_daemons_serve(self):
        # an error reply and a share's counters appear once used
        rc, out, err = cli("publish-study", "--study-uid", "1.2.3.999", "--worklist",
                           "location:nowhere", env={"STUDYSHARE_INGEST_URL": self.ingest})
        self.assertNotEqual(rc, 0)
        served = set()
        for d in self.procs:
            code, body = d.http("/metrics")
            self.assertEqual(code, 200)
            served |= set(re.findall(r"^# TYPE (studyshare_[a-z_]+) ", body, re.M))
        with open(os.path.join(ROOT, "deploy", "prometheus", "alerts.yml")) as f:
            named = set(re.findall(r"\b(studyshare_[a-z_]+)", f.read()))
        named -= {"studyshare_notify_backlog"}  # prometheus-adapter's, not a daemon's
        named = {re.sub(r"_(bucket|sum|count)$", "", n) for n in named}
        self.assertEqual(sorted(named - served), [])
        with open(os.path.join(ROOT, "docs", "operations.md")) as f:
            documented = set(re.findall(r"`(studyshare_[a-z_]+)", f.read()))
        self.assertEqual(sorted(n for n in served - documented
                                if not n.startswith("studyshare_notify_")), [],
                         "metrics missing from docs/operations.md")


class LocalStack(unittest.TestCase):
    """deploy/local/stack, what `make run` starts: up, used, down."""

    def test_up_serves_the_demo_privately_and_down_stops_it(self):
        static_only()
        tmp = tempfile.mkdtemp(prefix="ss-stack-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chmod(tmp, 0o755)
        home = os.path.join(tmp, "home")
        port = free_port()
        env = dict(os.environ, STUDYSHARE_HOME=home, STUDYSHARE_HTTP_PORT=str(port),
                   STUDYSHARE_BUILD=BUILD)
        stack = os.path.join(ROOT, "deploy", "local", "stack")

        def stack_cmd(*args):
            return subprocess.run([stack] + list(args), env=env, capture_output=True,
                                  text=True, timeout=120)
        self.addCleanup(stack_cmd, "down")
        p = stack_cmd("up")
        logs = ""
        for f in sorted(glob.glob(os.path.join(home, "logs", "*.log"))):
            with open(f, errors="replace") as fh:
                logs += "\n== %s\n%s" % (f, fh.read()[-1500:])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr + logs)
        link = re.search(r"Demo guest link .*: (http://\S+)", p.stdout)
        self.assertIsNotNone(link, p.stdout)
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("POST", "/api/v1/sessions",
                  body=json.dumps({"user": "alice", "password": "alice-demo-password"}),
                  headers={"Content-Type": "application/json"})
        self.assertEqual(c.getresponse().status, 200)
        c.close()
        # Each daemon is its own Redis ACL user, denied nothing so far.
        with open(os.path.join(home, "stack.env")) as f:
            rport = re.search(r"^STUDYSHARE_REDIS_ADDR=127\.0\.0\.1:(\d+)$", f.read(), re.M).group(1)

        def rcli(*args):
            return subprocess.run(["redis-cli", "-p", rport] + list(args), capture_output=True,
                                  text=True, timeout=10).stdout
        clients = rcli("CLIENT", "LIST")
        for d in ("authz", "share", "guestlink", "notify", "gateway"):
            self.assertIn(" user=%s " % d, clients)
        self.assertEqual(rcli("ACL", "LOG").strip(), "")
        # Nothing it wrote is readable by another user: the mail folder
        # holds links and invitations, the logs and Redis the rest.
        open_to_others = []
        for top, dirs, files in os.walk(home):
            for n in dirs + files:
                path = os.path.join(top, n)
                if os.lstat(path).st_mode & 0o077:
                    open_to_others.append(os.path.relpath(path, home))
        self.assertEqual(open_to_others, [])
        self.assertEqual(os.stat(home).st_mode & 0o077, 0)
        self.assertTrue(os.listdir(os.path.join(home, "logs")))
        p = stack_cmd("down")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(glob.glob(os.path.join(home, "run", "*.pid")), [])

    def test_ctrl_c_stops_run_in_order(self):
        # A terminal's Ctrl-C goes to the whole foreground process group:
        # the daemons must not get it (they exited before the script's
        # trap, which took that for a crash and exited 1), the script
        # stops them and exits 0.
        static_only()
        tmp = tempfile.mkdtemp(prefix="ss-stack-")
        self.addCleanup(shutil.rmtree, tmp, True)
        home = os.path.join(tmp, "home")
        env = dict(os.environ, STUDYSHARE_HOME=home, STUDYSHARE_HTTP_PORT=str(free_port()),
                   STUDYSHARE_BUILD=BUILD)
        stack = os.path.join(ROOT, "deploy", "local", "stack")
        self.addCleanup(subprocess.run, [stack, "down"], env=env, capture_output=True,
                        timeout=120)
        out = open(os.path.join(tmp, "run.out"), "w+")
        self.addCleanup(out.close)
        p = subprocess.Popen([stack, "run"], env=env, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)

        def said():
            out.seek(0)
            return out.read()
        wait_for(lambda: "Press Ctrl-C" in said() or p.poll() is not None, timeout=120,
                 what="stack run up")
        self.assertIsNone(p.poll(), said())
        pids = []
        for f in glob.glob(os.path.join(home, "run", "*.pid")):
            with open(f) as fh:
                pids.append(int(fh.read()))
        self.assertTrue(pids)
        os.killpg(p.pid, signal.SIGINT)
        self.assertEqual(p.wait(timeout=60), 0, said())
        self.assertNotIn("a daemon exited", said())
        self.assertIn("studyshare is down", said())
        # each daemon was stopped by the script (SIGTERM), not by the key
        stops = []
        for f in sorted(glob.glob(os.path.join(home, "logs", "*.log"))):
            with open(f, errors="replace") as fh:
                stops += [(os.path.basename(f), line.strip()) for line in fh
                          if '"daemon.stopping"' in line]
        self.assertEqual(len(stops), 5, stops)
        for name, line in stops:
            self.assertIn("SIGTERM", line, name)
        for pid in pids:  # gone (an orphan is reaped by init a moment later)
            wait_for(lambda: not os.path.exists("/proc/%d" % pid), timeout=10,
                     what="process %d gone" % pid)


class EntryDaemon(Daemon):
    """stack.Daemon, started through deploy/entrypoint.sh."""

    def start(self, ready=True):
        self._logf = open(self.log, "ab")
        env = dict(self.env)
        env["PATH"] = BUILD + os.pathsep + env["PATH"]
        self.proc = subprocess.Popen(["sh", ENTRYPOINT, self.name] + self.args, env=env,
                                     stdout=self._logf, stderr=self._logf)
        if ready:
            wait_for(lambda: self.http("/readyz")[0] == 200, timeout=15,
                     what=self.name + " ready")
        return self


if __name__ == "__main__":
    unittest.main()
