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
BENCH_NAME=bench
ROW_WIDTH=34
CHECK_BODY='{"user":"alice","permission":"studies.view","worklist":"location:ct"}'
# shellcheck source=bench/lib.sh
. bench/lib.sh

# Goals (bench/README.md).
GOAL_RATIO=0.70 # authz.check throughput / echo floor, at least
GOAL_P99_MS=2   # authz.check p99 at half its peak rate, below
GOAL_RSS_MIB=10 # idle authz RSS, below

need_bins "run 'make bench' (or make build)" bench_bus studyshare-authz studyshare
need_tools redis-server redis-cli redis-benchmark curl python3
bench_begin

# rss_mib PID: a process's resident memory, in MiB.
rss_mib() {
	awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# check URL [ARGS...]: authz.check against URL for one $SECS window.
check() {
	load "$@" --type authz.check --body "$CHECK_BODY" --seconds "$SECS"
}

REDIS_PORT=$(free_port)
AUTHZ_PORT=$(free_port)
ADMIN_PORT=$(free_port)
ECHO_PORT=$(free_port)
AUTHZ_URL=tcp://127.0.0.1:$AUTHZ_PORT
ECHO_URL=tcp://127.0.0.1:$ECHO_PORT

echo "bench: $(nproc) cores, $(uname -r), build $BUILD, ${SECS}s windows" >&2

start_redis "$REDIS_PORT"
start_daemon authz "$ADMIN_PORT" "STUDYSHARE_REDIS_ADDR=127.0.0.1:$REDIS_PORT" \
	"STUDYSHARE_LISTEN=$AUTHZ_URL" "STUDYSHARE_PEPPER=$PEPPER"
AUTHZ_PID=$DAEMON_PID
import_fixture "$AUTHZ_URL"
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

start_echo "$ECHO_URL"

echo "bench: 1/5 floor A, NNG echo at $INFLIGHT in flight" >&2
echo_floor authz.check "$CHECK_BODY"

echo "bench: 2/5 floor B, Redis EVALSHA" >&2
SHA=$(redis-cli -p "$REDIS_PORT" SCRIPT LOAD 'return 1')
REDIS_RPS=$(redis-benchmark -p "$REDIS_PORT" -q -c 50 -n 200000 EVALSHA "$SHA" 0 |
	tr '\r' '\n' | sed -n 's/.*: \([0-9]*\)[0-9.]* requests per second.*/\1/p' | tail -1)

echo "bench: 3/5 authz.check at $INFLIGHT in flight" >&2
c0=$(cpu_of "$AUTHZ_PID")
AUTHZ=$(check "$AUTHZ_URL")
AUTHZ_CPU=$(us_per_req $(( $(cpu_of "$AUTHZ_PID") - c0 )) "$AUTHZ")

HALF=$(calc "max(1, int($(json_field "$AUTHZ" rate) / 2))")
QUARTER=$(( HALF / 2 > 0 ? HALF / 2 : 1 ))
echo "bench: 4/5 authz.check and echo at $HALF and $QUARTER req/s" >&2
read -r busy0 total0 < <(cpu_ticks)
AUTHZ_HALF=$(check "$AUTHZ_URL" --rate "$HALF")
read -r busy1 total1 < <(cpu_ticks)
ECHO_HALF=$(check "$ECHO_URL" --rate "$HALF")
read -r busy2 total2 < <(cpu_ticks)
AUTHZ_QUARTER=$(check "$AUTHZ_URL" --rate "$QUARTER")
read -r busy3 total3 < <(cpu_ticks)
ECHO_QUARTER=$(check "$ECHO_URL" --rate "$QUARTER")
# How busy the whole machine was (client, server, kernel): near saturation
# the p99 measures the scheduler more than the server.
CPU_HALF=$(( 100 * (busy1 - busy0) / (total1 - total0 > 0 ? total1 - total0 : 1) ))
CPU_QUARTER=$(( 100 * (busy3 - busy2) / (total3 - total2 > 0 ? total3 - total2 : 1) ))

echo "bench: 5/5 idle RSS" >&2
sleep 1
RSS_AFTER=$(rss_mib "$AUTHZ_PID")
RSS_ECHO=$(rss_mib "$ECHO_PID")

print_raw "$ECHO" "$AUTHZ" "$AUTHZ_HALF" "$ECHO_HALF" "$AUTHZ_QUARTER" "$ECHO_QUARTER"

E_RATE=$(json_field "$ECHO" rate)
A_RATE=$(json_field "$AUTHZ" rate)
A_ERR=$(( $(json_field "$AUTHZ" errors) + $(json_field "$AUTHZ_HALF" errors) +
	$(json_field "$AUTHZ_QUARTER" errors) ))
E_P99H=$(json_field "$ECHO_HALF" p99_ms)
A_P99H=$(json_field "$AUTHZ_HALF" p99_ms)
RATIO=$(calc "round($A_RATE / $E_RATE, 2)")
P99_RATIO=$(ratio "$A_P99H" "$E_P99H")
E_P99Q=$(json_field "$ECHO_QUARTER" p99_ms)
A_P99Q=$(json_field "$AUTHZ_QUARTER" p99_ms)

table_head
row "floor A: NNG echo, $INFLIGHT in flight" "$E_RATE/s" - - - -
lat_row "$ECHO"
row "floor B: Redis EVALSHA, 50 clients" "$REDIS_RPS/s" - - - -
row "authz.check, $INFLIGHT in flight" "$A_RATE/s" "$E_RATE/s" "$RATIO" ">= $GOAL_RATIO" \
	"$(verdict "$(calc "$RATIO >= $GOAL_RATIO")")"
lat_row "$AUTHZ"
cpu_row "  server CPU per request" "$AUTHZ_CPU" "$ECHO_CPU"
row "authz.check p99 at $HALF/s" "$A_P99H ms" "$E_P99H ms" "$P99_RATIO" "< $GOAL_P99_MS ms" \
	"$(verdict "$(calc "$A_P99H < $GOAL_P99_MS")")"
row "  machine CPU busy meanwhile" "$CPU_HALF%" - - - -
row "authz.check p99 at $QUARTER/s" "$A_P99Q ms" "$E_P99Q ms" \
	"$(ratio "$A_P99Q" "$E_P99Q")" - -
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
