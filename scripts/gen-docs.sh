#!/usr/bin/env bash
# Regenerates the settings tables of the docs from the daemons' own config
# tables (--help-markdown), so the docs cannot drift:
#   services/<daemon>/README.md  between <!-- settings:begin --> and
#                                <!-- settings:end -->
#   docs/operations.md           between <!-- settings:<daemon>:begin -->
#                                and <!-- settings:<daemon>:end -->, one
#                                section per daemon
# BUILD names the build directory (default build).  tests/integration/
# test_docs.py and test_deploy.py fail when a table is out of date.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}

# replace FILE BEGIN END TEXT: the lines between the two markers become TEXT.
replace() {
  python3 - "$@" <<'PY'
import re, sys
path, begin, end, table = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] + "\n"
text = open(path).read()
pat = re.compile("(" + re.escape(begin) + "\n).*?(" + re.escape(end) + ")", re.S)
if not pat.search(text):
    sys.exit("gen-docs: %s has no %s ... %s block" % (path, begin, end))
open(path, "w").write(pat.sub(lambda m: m.group(1) + table + m.group(2), text))
PY
}

ops=docs/operations.md
for readme in services/*/README.md; do
  d=$(basename "$(dirname "$readme")")
  bin=$build/studyshare-$d
  [ -x "$bin" ] || { echo "gen-docs: $bin missing: build first" >&2; exit 1; }
  table=$("$bin" --help-markdown)
  replace "$readme" "<!-- settings:begin -->" "<!-- settings:end -->" "$table"
  if [ -f "$ops" ]; then
    replace "$ops" "<!-- settings:$d:begin -->" "<!-- settings:$d:end -->" "$table"
  fi
done
