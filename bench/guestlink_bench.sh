#!/usr/bin/env bash
# bench/guestlink_bench.sh - guest-link redemptions without a password, as
# a ratio to the NNG echo floor measured in the same run, and what each
# redemption costs Redis (INFO commandstats).
#
# Builds nothing: $BUILD (default build/) must hold bench_bus, studyshare
# and the authz, share and guestlink daemons.  Starts its own redis-server,
# authz, share, guestlink and echo server on free loopback ports in a
# temporary directory, imports the fixture directory, publishes one study,
# makes one guest link without a password or use limit, measures, prints a
# table and stops everything it started on exit.  bench/run.sh runs it
# after its own table; see bench/README.md ("guestlink").  About 20 s.
#
#   BUILD=build-other bash bench/guestlink_bench.sh
#   BENCH_SECONDS=2 bash bench/guestlink_bench.sh
set -eEuo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECS=${BENCH_SECONDS:-5}
INFLIGHT=64
FIXTURE=tests/integration/fixtures/directory.json
GOAL_RATIO=0.60 # redemptions/s / echo floor, at least
UID_=2.25.4242.1

for b in bench_bus studyshare studyshare-authz studyshare-share studyshare-guestlink; do
	if [ ! -x "$BUILD/$b" ]; then
		echo "guestlink-bench: $BUILD/$b missing; build first" >&2
		exit 1
	fi
done
for t in redis-server redis-cli curl python3; do
	command -v "$t" >/dev/null || { echo "guestlink-bench: $t not found" >&2; exit 1; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ss-guestlink-bench.XXXXXX")
PIDS=()
KEEP=0

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [ "$KEEP" = 1 ]; then
		echo "guestlink-bench: logs kept in $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'KEEP=1' ERR
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_until() {
	local what=$1 i
	shift
	for i in $(seq 150); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "guestlink-bench: $what did not come up" >&2
	KEEP=1
	exit 1
}

json_field() {
	python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

calc() {
	python3 -c "print($1)"
}

cpu_of() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
HZ=$(getconf CLK_TCK)

us_per_req() {
	calc "round($1 * 1e6 / $HZ / max(1, $(json_field "$2" answered)), 1)"
}

# calls_of NAME: the calls of one command since the last CONFIG RESETSTAT.
calls_of() {
	redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' |
		awk -F'[:=,]' -v c="cmdstat_$1" '$1 == c { n = $3 } END { print n + 0 }'
}

# total_calls: every command since the reset, but INFO and CONFIG.
total_calls() {
	redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' |
		awk -F'[:=,]' '/^cmdstat_/ && $1 !~ /cmdstat_(info|config)/ { n += $3 } END { print n + 0 }'
}

REDIS_PORT=$(free_port)
AUTHZ_URL=tcp://127.0.0.1:$(free_port)
SHARE_URL=tcp://127.0.0.1:$(free_port)
INGEST_URL=tcp://127.0.0.1:$(free_port)
GL_PORT=$(free_port)
GL_URL=tcp://127.0.0.1:$GL_PORT
GL_ADMIN=$(free_port)
ECHO_URL=tcp://127.0.0.1:$(free_port)

echo "guestlink-bench: $(nproc) cores, build $BUILD, ${SECS}s windows" >&2

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" \
	--appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
wait_until redis redis-cli -p "$REDIS_PORT" ping

export STUDYSHARE_REDIS_ADDR=127.0.0.1:$REDIS_PORT
export STUDYSHARE_PEPPER=bench-pepper-0123456789abcdef
export STUDYSHARE_MAIL_KEY=bench-mail-key-0123456789abcdef0123456789
export STUDYSHARE_AUTHZ_URL=$AUTHZ_URL

AUTHZ_ADMIN=$(free_port)
STUDYSHARE_ADMIN_ADDR=127.0.0.1:$AUTHZ_ADMIN STUDYSHARE_LISTEN=$AUTHZ_URL \
	"$BUILD/studyshare-authz" 2>"$TMP/authz.log" &
PIDS+=($!)
wait_until authz curl -fsS "http://127.0.0.1:$AUTHZ_ADMIN/readyz"
"$BUILD/studyshare" --authz "$AUTHZ_URL" --timeout 15000 directory import \
	"$FIXTURE" >/dev/null

SHARE_ADMIN=$(free_port)
STUDYSHARE_ADMIN_ADDR=127.0.0.1:$SHARE_ADMIN STUDYSHARE_LISTEN=$SHARE_URL \
	STUDYSHARE_INGEST_LISTEN=$INGEST_URL \
	STUDYSHARE_PUB_LISTEN=tcp://127.0.0.1:$(free_port) \
	STUDYSHARE_TOKEN_KEY=bench-share-token-key-0123456789abcdef \
	STUDYSHARE_SEAL_KEY=bench-share-seal-key-0123456789abcdef0123 \
	"$BUILD/studyshare-share" 2>"$TMP/share.log" &
PIDS+=($!)
wait_until share curl -fsS "http://127.0.0.1:$SHARE_ADMIN/readyz"

STUDYSHARE_ADMIN_ADDR=127.0.0.1:$GL_ADMIN STUDYSHARE_LISTEN=$GL_URL \
	STUDYSHARE_SHARE_URL=$SHARE_URL \
	STUDYSHARE_PUB_LISTEN=tcp://127.0.0.1:$(free_port) \
	STUDYSHARE_TOKEN_KEY=bench-guestlink-token-key-0123456789abcdef \
	STUDYSHARE_SEAL_KEY=bench-guestlink-seal-key-0123456789abcdef \
	STUDYSHARE_LOG_LEVEL=warn \
	"$BUILD/studyshare-guestlink" 2>"$TMP/guestlink.log" &
GL_PID=$!
PIDS+=($GL_PID)
wait_until guestlink curl -fsS "http://127.0.0.1:$GL_ADMIN/readyz"

"$BUILD/studyshare" --ingest "$INGEST_URL" publish-study --study-uid "$UID_" \
	--worklist location:ct --patient-id BENCH1 --study-date 20240101 \
	--modality CT --description "CT HEAD" >/dev/null

# One link: no password, no use limit, no notification (a use then costs
# exactly what the design says: the script and the audit entry).
TOKEN=$(python3 - "$GL_PORT" "$UID_" <<'PY'
import sys
sys.path.insert(0, "tests/integration")
import sp
r = sp.call(int(sys.argv[1]), "guestlink.create",
            {"user": "alice", "worklist": "location:ct", "study_uid": sys.argv[2]})
assert r["ok"], r
print(r["body"]["url"].rsplit("/g/", 1)[1])
PY
)
LINK_ID=$(python3 - "$GL_PORT" "$TOKEN" <<'PY'
import sys
sys.path.insert(0, "tests/integration")
import sp
r = sp.call(int(sys.argv[1]), "guestlink.redeem",
            {"token": sys.argv[2], "addr": "127.0.0.1", "user_agent": "bench"})
assert r["ok"] and "study" in r["body"], r
print(r["body"]["session"].split(".")[0])
PY
)
BODY="{\"token\":\"$TOKEN\",\"addr\":\"127.0.0.1\",\"user_agent\":\"bench\"}"

"$BUILD/bench_bus" echo "$ECHO_URL" 2>"$TMP/echo.log" &
ECHO_PID=$!
PIDS+=($ECHO_PID)

echo "guestlink-bench: 1/2 floor: NNG echo at $INFLIGHT in flight" >&2
c0=$(cpu_of "$ECHO_PID")
ECHO=$("$BUILD/bench_bus" load "$ECHO_URL" --type guestlink.redeem --body "$BODY" \
	--inflight "$INFLIGHT" --seconds "$SECS")
ECHO_CPU=$(us_per_req $(( $(cpu_of "$ECHO_PID") - c0 )) "$ECHO")

echo "guestlink-bench: 2/2 guestlink.redeem at $INFLIGHT in flight" >&2
USES0=$(redis-cli -p "$REDIS_PORT" HGET "link:{$LINK_ID}" uses)
redis-cli -p "$REDIS_PORT" CONFIG RESETSTAT >/dev/null
c0=$(cpu_of "$GL_PID")
GL=$("$BUILD/bench_bus" load "$GL_URL" --type guestlink.redeem --body "$BODY" \
	--inflight "$INFLIGHT" --seconds "$SECS")
GL_CPU=$(us_per_req $(( $(cpu_of "$GL_PID") - c0 )) "$GL")
sleep 0.5 # the audit entries of the last replies
EVALSHA=$(calls_of evalsha)
EVAL=$(calls_of eval)
XADD=$(calls_of xadd)
TOTAL=$(total_calls)
# What the redeem script runs: commandstats counts those too.
SCRIPTED=0
for c in hmget hincrby set pttl; do
	SCRIPTED=$((SCRIPTED + $(calls_of "$c")))
done
USES1=$(redis-cli -p "$REDIS_PORT" HGET "link:{$LINK_ID}" uses)

for r in "$ECHO" "$GL"; do
	echo "guestlink-bench: raw $r" >&2
done

E_RATE=$(json_field "$ECHO" rate)
G_RATE=$(json_field "$GL" rate)
ANSWERED=$(json_field "$GL" answered)
ERRORS=$(json_field "$GL" errors)
USED=$((USES1 - USES0))
RATIO=$(calc "round($G_RATE / $E_RATE, 2)")
per() {
	calc "'%.2f' % (($1) / max(1, $ANSWERED))"
}
verdict() {
	if [ "$1" = True ]; then echo PASS; else echo MISS; fi
}
row() {
	printf '%-36s %-18s %-12s %-6s %-10s %s\n' "$@"
}

echo
row measurement value floor ratio goal result
row "floor: NNG echo, $INFLIGHT in flight" "$E_RATE/s" - - - -
row "guestlink.redeem, $INFLIGHT in flight" "$G_RATE/s" "$E_RATE/s" "$RATIO" ">= $GOAL_RATIO" \
	"$(verdict "$(calc "$RATIO >= $GOAL_RATIO")")"
row "  latency p50 / p99" "$(json_field "$GL" p50_ms) / $(json_field "$GL" p99_ms) ms" - - - -
row "  server CPU per request" "$GL_CPU us" "$ECHO_CPU us" \
	"$(calc "round($GL_CPU / $ECHO_CPU, 2) if $ECHO_CPU > 0 else '-'")" - -
row "  uses counted / replies" "$USED / $ANSWERED" - - "equal" \
	"$(verdict "$(calc "$USED == $ANSWERED")")"
row "  EVALSHA per redemption (awaited)" "$(per "$EVALSHA + $EVAL")" - - "1.00" \
	"$(verdict "$(calc "$EVALSHA + $EVAL == $ANSWERED")")"
row "  XADD per redemption (audit, not)" "$(per "$XADD")" - - "1.00" \
	"$(verdict "$(calc "$XADD == $ANSWERED")")"
row "  commands inside the script" "$(per "$SCRIPTED")" - - - -
row "errors" "$ERRORS" - - "0" "$(verdict "$(calc "$ERRORS == 0")")"
echo "(one round trip: a reply waits for its EVALSHA only; the audit XADD is sent after it, unawaited, pipelined on the same connection)"
