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
# This run's screenshots only: a step renumbered since would leave an old
# one beside them.
rm -f "$ROOT"/tests/artifacts/*.png
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

# Each test file prints "N passed, N failed" last; the sums are ours.
STACK_INFO="$info" ARTIFACTS="$ROOT/tests/artifacts" node "$HERE/ui.test.mjs" |
	tee "$work/ui.out"
rc_ui=$?
[ -s "$work/ui.out" ] || rc_ui=1
grep -q " 0 failed$" "$work/ui.out" || rc_ui=1
if [ $rc_ui -ne 0 ]; then
	echo "--- gateway log (tail) ---"
	tail -n 20 "$(sed -n 's/.*"gateway": "\([^"]*\)".*/\1/p' "$info")" 2>/dev/null
fi
# Every daemon ran as its own Redis ACL user (deploy/redis/acl-rules):
# whatever the pages did, Redis must have denied nothing.
acl=$(redis-cli -p "$(sed -n 's/.*"redis_port": \([0-9]*\).*/\1/p' "$info")" ACL LOG)
acl_failed=0
if [ -n "$acl" ]; then
	echo "not ok Redis denied a daemon something (ACL LOG):"
	echo "$acl" | head -n 20
	acl_failed=1
fi
# The upload test starts its own stack (uploads enabled).
ARTIFACTS="$ROOT/tests/artifacts" node "$HERE/upload.test.mjs" | tee "$work/upload.out"
rc_up=$?
grep -q " 0 failed$" "$work/upload.out" || rc_up=1

p=0
f=0
for out in "$work/ui.out" "$work/upload.out"; do
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
	if [ -z "$line" ]; then
		f=$((f + 1))
		continue
	fi
	p=$((p + ${line%% passed*}))
	line=${line#*, }
	f=$((f + ${line%% failed*}))
done
f=$((f + acl_failed))
echo "$p passed, $f failed"
[ $rc_ui -eq 0 ] && [ $rc_up -eq 0 ] && [ $f -eq 0 ]
