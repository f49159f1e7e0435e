#!/usr/bin/env bash
# bench/run.sh - measures authz against this machine's floors, in one run.
#
# Builds nothing: `make bench` has built $BUILD (default build/) first.
# Starts its own redis-server, authz and echo server on free loopback
# ports in a temporary directory, imports the fixture directory, measures,
# prints a table and stops everything it started on exit.  About 45 s.
# See bench/README.md for what each row means.
#
#   BUILD=build-other bash bench/run.sh
#   BENCH_SECONDS=2 bash bench/run.sh      # shorter windows, noisier figures
set -eEuo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECS=${BENCH_SECONDS:-5}
INFLIGHT=64
PEPPER=bench-pepper-0123456789abcdef
FIXTURE=tests/integration/fixtures/directory.json
CHECK_BODY='{"user":"alice","permission":"studies.view","worklist":"location:ct"}'

# Goals (bench/README.md).
GOAL_RATIO=0.70 # authz.check throughput / echo floor, at least
GOAL_P99_MS=2   # authz.check p99 at half its peak rate, below
GOAL_RSS_MIB=10 # idle authz RSS, below

for b in bench_bus studyshare-authz studyshare; do
	if [ ! -x "$BUILD/$b" ]; then
		echo "bench: $BUILD/$b missing; run 'make bench' (or make build)" >&2
		exit 1
	fi
done
for t in redis-server redis-cli redis-benchmark curl python3; do
	command -v "$t" >/dev/null || { echo "bench: $t not found" >&2; exit 1; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ss-bench.XXXXXX")
PIDS=()
KEEP=0 # keep the logs when something failed

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [ "$KEEP" = 1 ]; then
		echo "bench: logs kept in $TMP" >&2
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

# wait_until WHAT CMD...: retries CMD for up to 15 s.
wait_until() {
	local what=$1 i
	shift
	for i in $(seq 150); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "bench: $what did not come up" >&2
	KEEP=1
	exit 1
}

# json_field JSON NAME: a number from bench_bus's one-line JSON.
json_field() {
	python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

# calc EXPR: floating-point arithmetic and comparisons (1/0).
calc() {
	python3 -c "print($1)"
}

# cpu_ticks: "busy total" jiffies of all CPUs, from /proc/stat.
cpu_ticks() {
	awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i;
		print t - $5 - $6, t }' /proc/stat
}

# cpu_of PID: user + system CPU time of a process so far, in clock ticks.
cpu_of() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
HZ=$(getconf CLK_TCK)

# us_per_req TICKS JSON: server CPU microseconds per request answered.
us_per_req() {
	calc "round($1 * 1e6 / $HZ / max(1, $(json_field "$2" answered)), 1)"
}

rss_mib() {
	awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

load() {
	"$BUILD/bench_bus" load "$@" --inflight "$INFLIGHT" --seconds "$SECS"
}

REDIS_PORT=$(free_port)
AUTHZ_PORT=$(free_port)
ADMIN_PORT=$(free_port)
ECHO_PORT=$(free_port)
AUTHZ_URL=tcp://127.0.0.1:$AUTHZ_PORT
ECHO_URL=tcp://127.0.0.1:$ECHO_PORT

echo "bench: $(nproc) cores, $(uname -r), build $BUILD, ${SECS}s windows" >&2

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" \
	--appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
wait_until redis redis-cli -p "$REDIS_PORT" ping

STUDYSHARE_REDIS_ADDR=127.0.0.1:$REDIS_PORT \
	STUDYSHARE_ADMIN_ADDR=127.0.0.1:$ADMIN_PORT \
	STUDYSHARE_LISTEN=$AUTHZ_URL \
	STUDYSHARE_PEPPER=$PEPPER \
	"$BUILD/studyshare-authz" 2>"$TMP/authz.log" &
AUTHZ_PID=$!
PIDS+=($AUTHZ_PID)
wait_until authz curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz"

"$BUILD/studyshare" --authz "$AUTHZ_URL" directory import "$FIXTURE" >/dev/null
answer=$("$BUILD/studyshare" --authz "$AUTHZ_URL" authz check alice \
	studies.view location:ct || true)
if [ "$answer" != allowed ]; then
	echo "bench: alice should be allowed studies.view on location:ct," \
		"authz says '$answer'" >&2
	KEEP=1
	exit 1
fi
# Our processes are idle now: whatever keeps the CPUs busy is someone else.
read -r busy0 total0 < <(cpu_ticks)
sleep 1
read -r busy1 total1 < <(cpu_ticks)
OTHERS=$(( 100 * (busy1 - busy0) / (total1 - total0 > 0 ? total1 - total0 : 1) ))
if [ "$OTHERS" -gt 10 ]; then
	echo "bench: WARNING: other processes use ${OTHERS}% of the CPUs;" \
		"figures (p99 above all) will be noisy" >&2
fi
RSS_IDLE=$(rss_mib "$AUTHZ_PID")

"$BUILD/bench_bus" echo "$ECHO_URL" 2>"$TMP/echo.log" &
ECHO_PID=$!
PIDS+=($ECHO_PID)

echo "bench: 1/5 floor A, NNG echo at $INFLIGHT in flight" >&2
c0=$(cpu_of "$ECHO_PID")
ECHO=$(load "$ECHO_URL" --type authz.check --body "$CHECK_BODY")
ECHO_CPU=$(us_per_req $(( $(cpu_of "$ECHO_PID") - c0 )) "$ECHO")

echo "bench: 2/5 floor B, Redis EVALSHA" >&2
SHA=$(redis-cli -p "$REDIS_PORT" SCRIPT LOAD 'return 1')
REDIS_RPS=$(redis-benchmark -p "$REDIS_PORT" -q -c 50 -n 200000 EVALSHA "$SHA" 0 |
	tr '\r' '\n' | sed -n 's/.*: \([0-9]*\)[0-9.]* requests per second.*/\1/p' | tail -1)

echo "bench: 3/5 authz.check at $INFLIGHT in flight" >&2
c0=$(cpu_of "$AUTHZ_PID")
AUTHZ=$(load "$AUTHZ_URL" --type authz.check --body "$CHECK_BODY")
AUTHZ_CPU=$(us_per_req $(( $(cpu_of "$AUTHZ_PID") - c0 )) "$AUTHZ")

HALF=$(calc "max(1, int($(json_field "$AUTHZ" rate) / 2))")
QUARTER=$(( HALF / 2 > 0 ? HALF / 2 : 1 ))
echo "bench: 4/5 authz.check and echo at $HALF and $QUARTER req/s" >&2
read -r busy0 total0 < <(cpu_ticks)
AUTHZ_HALF=$(load "$AUTHZ_URL" --type authz.check --body "$CHECK_BODY" --rate "$HALF")
read -r busy1 total1 < <(cpu_ticks)
ECHO_HALF=$(load "$ECHO_URL" --type authz.check --body "$CHECK_BODY" --rate "$HALF")
read -r busy2 total2 < <(cpu_ticks)
AUTHZ_QUARTER=$(load "$AUTHZ_URL" --type authz.check --body "$CHECK_BODY" --rate "$QUARTER")
read -r busy3 total3 < <(cpu_ticks)
ECHO_QUARTER=$(load "$ECHO_URL" --type authz.check --body "$CHECK_BODY" --rate "$QUARTER")
# How busy the whole machine was (client, server, kernel): near saturation
# the p99 measures the scheduler more than the server.
CPU_HALF=$(( 100 * (busy1 - busy0) / (total1 - total0 > 0 ? total1 - total0 : 1) ))
CPU_QUARTER=$(( 100 * (busy3 - busy2) / (total3 - total2 > 0 ? total3 - total2 : 1) ))

echo "bench: 5/5 idle RSS" >&2
sleep 1
RSS_AFTER=$(rss_mib "$AUTHZ_PID")
RSS_ECHO=$(rss_mib "$ECHO_PID")

for r in "$ECHO" "$AUTHZ" "$AUTHZ_HALF" "$ECHO_HALF" "$AUTHZ_QUARTER" "$ECHO_QUARTER"; do
	echo "bench: raw $r" >&2
done

# verdict True|False: PASS or MISS.
verdict() {
	if [ "$1" = True ]; then echo PASS; else echo MISS; fi
}

E_RATE=$(json_field "$ECHO" rate)
A_RATE=$(json_field "$AUTHZ" rate)
A_ERR=$(( $(json_field "$AUTHZ" errors) + $(json_field "$AUTHZ_HALF" errors) +
	$(json_field "$AUTHZ_QUARTER" errors) ))
E_P99H=$(json_field "$ECHO_HALF" p99_ms)
A_P99H=$(json_field "$AUTHZ_HALF" p99_ms)
RATIO=$(calc "round($A_RATE / $E_RATE, 2)")
P99_RATIO=$(calc "round($A_P99H / $E_P99H, 2) if $E_P99H > 0 else '-'")
E_P99Q=$(json_field "$ECHO_QUARTER" p99_ms)
A_P99Q=$(json_field "$AUTHZ_QUARTER" p99_ms)

row() {
	printf '%-34s %-18s %-12s %-6s %-10s %s\n' "$@"
}

echo
row measurement value floor ratio goal result
row "floor A: NNG echo, $INFLIGHT in flight" "$E_RATE/s" - - - -
row "  latency p50 / p99" "$(json_field "$ECHO" p50_ms) / $(json_field "$ECHO" p99_ms) ms" - - - -
row "floor B: Redis EVALSHA, 50 clients" "$REDIS_RPS/s" - - - -
row "authz.check, $INFLIGHT in flight" "$A_RATE/s" "$E_RATE/s" "$RATIO" ">= $GOAL_RATIO" \
	"$(verdict "$(calc "$RATIO >= $GOAL_RATIO")")"
row "  latency p50 / p99" "$(json_field "$AUTHZ" p50_ms) / $(json_field "$AUTHZ" p99_ms) ms" - - - -
row "  server CPU per request" "$AUTHZ_CPU us" "$ECHO_CPU us" \
	"$(calc "round($AUTHZ_CPU / $ECHO_CPU, 2) if $ECHO_CPU > 0 else '-'")" - -
row "authz.check p99 at $HALF/s" "$A_P99H ms" "$E_P99H ms" "$P99_RATIO" "< $GOAL_P99_MS ms" \
	"$(verdict "$(calc "$A_P99H < $GOAL_P99_MS")")"
row "  machine CPU busy meanwhile" "$CPU_HALF%" - - - -
row "authz.check p99 at $QUARTER/s" "$A_P99Q ms" "$E_P99Q ms" \
	"$(calc "round($A_P99Q / $E_P99Q, 2) if $E_P99Q > 0 else '-'")" - -
row "  machine CPU busy meanwhile" "$CPU_QUARTER%" - - - -
row "authz idle RSS, before load" "$RSS_IDLE MiB" "$RSS_ECHO MiB" \
	"$(calc "round($RSS_IDLE / $RSS_ECHO, 1)")" "< $GOAL_RSS_MIB MiB" \
	"$(verdict "$(calc "$RSS_IDLE < $GOAL_RSS_MIB")")"
row "authz idle RSS, after load" "$RSS_AFTER MiB" "$RSS_ECHO MiB" \
	"$(calc "round($RSS_AFTER / $RSS_ECHO, 1)")" "< $GOAL_RSS_MIB MiB" \
	"$(verdict "$(calc "$RSS_AFTER < $GOAL_RSS_MIB")")"
row "errors (authz runs)" "$A_ERR" - - "0" "$(verdict "$(calc "$A_ERR == 0")")"
echo "($(nproc) cores; other processes used ${OTHERS}% of the CPUs just before the run)"

# Guest-link redemptions against the same echo floor, with their own
# servers (bench/guestlink_bench.sh); ours are stopped first.
if [ -x "$BUILD/studyshare-guestlink" ] && [ -x "$BUILD/studyshare-share" ]; then
	cleanup
	PIDS=()
	echo
	BUILD=$BUILD BENCH_SECONDS=$SECS bash bench/guestlink_bench.sh
fi
