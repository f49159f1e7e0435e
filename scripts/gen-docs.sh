#!/usr/bin/env bash
# Regenerates the settings tables of services/*/README.md from the daemons'
# own config tables (--help-markdown), so the docs cannot drift.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
for readme in services/*/README.md; do
  d=$(basename "$(dirname "$readme")")
  bin=$build/studyshare-$d
  [ -x "$bin" ] || { echo "gen-docs: $bin missing: build first" >&2; exit 1; }
  python3 - "$readme" "$("$bin" --help-markdown)" <<'PY'
import re, sys
path, table = sys.argv[1], sys.argv[2] + "\n"
text = open(path).read()
new = re.sub(r"(<!-- settings:begin -->\n).*?(<!-- settings:end -->)",
             lambda m: m.group(1) + table + m.group(2), text, flags=re.S)
open(path, "w").write(new)
PY
done
