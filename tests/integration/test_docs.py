"""The settings tables in the daemons' READMEs are generated from the config
tables (`--help-markdown`); this fails when one is out of date.  Regenerate
with scripts/gen-docs.sh."""
import os
import re
import subprocess
import unittest

from stack import BUILD, ROOT

DAEMONS = ["authz", "share", "notify", "guestlink", "gateway"]


class SettingsDocs(unittest.TestCase):
    def test_readme_tables_match_the_binaries(self):
        for d in DAEMONS:
            with self.subTest(daemon=d):
                out = subprocess.run([os.path.join(BUILD, "studyshare-" + d), "--help-markdown"],
                                     capture_output=True, text=True, check=True).stdout
                with open(os.path.join(ROOT, "services", d, "README.md")) as f:
                    readme = f.read()
                m = re.search(r"<!-- settings:begin -->\n(.*?)<!-- settings:end -->", readme, re.S)
                self.assertIsNotNone(m, "no settings block in services/%s/README.md" % d)
                self.assertEqual(m.group(1), out,
                                 "services/%s/README.md is out of date: run scripts/gen-docs.sh" % d)


def env_names(daemon):
    """Every STUDYSHARE_ variable the daemon reads (a secret's _FILE too)."""
    out = subprocess.run([os.path.join(BUILD, "studyshare-" + daemon), "--help-markdown"],
                         capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"`(STUDYSHARE_[A-Z0-9_]+)`", out))


def one_edit(a, b):
    """a and b differ by one letter changed, added or removed, or two
    neighbours swapped (what runtime/config.c refuses as a typo)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


class SettingsNames(unittest.TestCase):
    def test_no_daemon_takes_another_daemons_variable_for_a_typo(self):
        # One environment for every daemon (a shared ConfigMap, the local
        # stack) must start them all: a daemon refuses a variable one edit
        # from its own, so none may be one edit from another daemon's.
        names = {d: env_names(d) for d in DAEMONS}
        for d in DAEMONS:
            for other in DAEMONS:
                for theirs in names[other] - names[d]:
                    for mine in names[d]:
                        self.assertFalse(one_edit(theirs, mine),
                                         "%s's %s is one edit from %s's %s"
                                         % (other, theirs, d, mine))
        # and the unit of the check itself
        self.assertTrue(one_edit("STUDYSHARE_SMTP_STARTLS", "STUDYSHARE_SMTP_STARTTLS"))
        self.assertTrue(one_edit("STUDYSHARE_SMPT_URL", "STUDYSHARE_SMTP_URL"))
        self.assertFalse(one_edit("STUDYSHARE_HTTP_TIMEOUT", "STUDYSHARE_SMTP_TIMEOUT"))

    def test_a_misspelt_variable_stops_the_start(self):
        env = dict(os.environ, STUDYSHARE_SMTP_STARTLS="required",
                   STUDYSHARE_MAIL_KEY="a-mail-key-0123456789abcdef0123456789")
        p = subprocess.run([os.path.join(BUILD, "studyshare-notify")], env=env,
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(p.stderr, "studyshare-notify: STUDYSHARE_SMTP_STARTLS: not a setting "
                                   "of notify; did you mean STUDYSHARE_SMTP_STARTTLS?\n")


class LogEvents(unittest.TestCase):
    # ss_warn("x.y", ...), ss_error(...), and the level-taking helpers
    # (SS_LOG_WARN, "x.y"): what an operator may meet at warn or above.
    CALL = re.compile(r'(?:ss_(?:warn|error)\(\s*|SS_LOG_(?:WARN|ERROR),\s*)"([a-z_]+\.[a-z_]+)"', re.S)

    def code_events(self):
        found = set()
        for top in ("services", "runtime", "tools"):
            for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
                for name in files:
                    if name.endswith(".c"):
                        with open(os.path.join(dirpath, name)) as f:
                            found |= set(self.CALL.findall(f.read()))
        return found

    def test_every_warning_and_error_is_explained(self):
        with open(os.path.join(ROOT, "docs", "operations.md")) as f:
            doc = f.read()
        m = re.search(r"### Warnings and errors\n(.*?)\n#", doc, re.S)
        self.assertIsNotNone(m, "no 'Warnings and errors' section in docs/operations.md")
        rows = [l for l in m.group(1).splitlines() if l.startswith("| `")]
        documented = set()
        for row in rows:
            documented |= set(re.findall(r"`([a-z_]+\.[a-z_]+)`", row.split("|")[1]))
        code = self.code_events()
        self.assertGreater(len(code), 40)  # the pattern still finds them
        self.assertEqual(sorted(code - documented), [], "logged, not in the table")
        self.assertEqual(sorted(documented - code), [], "in the table, never logged")


if __name__ == "__main__":
    unittest.main()
