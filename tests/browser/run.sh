#!/bin/sh
# tests/browser/run.sh - the browser tests of the web UI and pages.
#
# Installs playwright-core from package-lock.json when needed (npm ci),
# starts the whole stack on free loopback ports (stack_up.py), runs
# ui.test.mjs in Debian's headless Chromium (/usr/bin/chromium), stops the
# stack, and exits non-zero on any failure.  The last line is
# "N passed, N failed".  Screenshots of every step go to tests/artifacts/.
#
# SS_BUILD selects the build directory of the daemons (default build).
# Needs: chromium, nodejs, npm, redis-server and python3-aiosmtpd (Debian).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$HERE"

if [ ! -x /usr/bin/chromium ]; then
	echo "browser tests: /usr/bin/chromium is missing (apt-get install chromium)"
	echo "0 passed, 1 failed"
	exit 1
fi
if [ ! -d node_modules/playwright-core ] ||
   [ package-lock.json -nt node_modules/.package-lock.json ]; then
	npm ci --no-audit --no-fund --loglevel=error >/dev/null || {
		echo "browser tests: npm ci failed"
		echo "0 passed, 1 failed"
		exit 1
	}
fi

mkdir -p "$ROOT/tests/artifacts"
work=$(mktemp -d /tmp/ss-browser-XXXXXX)
info="$work/stack.json"
/usr/bin/python3 "$HERE/stack_up.py" "$info" >"$work/stack.log" 2>&1 &
stack=$!

cleanup() {
	kill -TERM "$stack" 2>/dev/null
	wait "$stack" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

n=0
while [ ! -f "$info" ]; do
	if ! kill -0 "$stack" 2>/dev/null || [ $n -ge 600 ]; then
		echo "browser tests: the stack did not start:"
		tail -n 40 "$work/stack.log"
		echo "0 passed, 1 failed"
		exit 1
	fi
	n=$((n + 1))
	sleep 0.1
done

STACK_INFO="$info" ARTIFACTS="$ROOT/tests/artifacts" node "$HERE/ui.test.mjs"
rc=$?
if [ $rc -ne 0 ]; then
	echo "--- gateway log (tail) ---"
	tail -n 20 "$(sed -n 's/.*"gateway": "\([^"]*\)".*/\1/p' "$info")" 2>/dev/null
fi
exit $rc
