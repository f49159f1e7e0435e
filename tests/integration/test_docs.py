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


if __name__ == "__main__":
    unittest.main()
