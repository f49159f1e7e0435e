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
