# shellcheck shell=bash disable=SC2034 # globals the sourcing scripts read
# bench/lib.sh - what the bench scripts share; sourced, never run.
#
# The script cds to the repository root, sets BENCH_NAME (the prefix of
# its messages and of its temporary directory) and ROW_WIDTH (its table's
# first column) and sources this file.  bench_begin then makes $TMP and
# the traps; every process started with these functions is in PIDS and is
# stopped on exit.

BUILD=${BUILD:-build}
SECS=${BENCH_SECONDS:-5} # one measurement window
INFLIGHT=64              # bench_bus's requests in flight
FIXTURE=tests/integration/fixtures/directory.json
PEPPER=bench-pepper-0123456789abcdef
HZ=$(getconf CLK_TCK)
# Redis persists as deployed (DESIGN.md, deploy/k8s/redis.yaml): AOF on,
# fsync every second.  "no" runs it without (bench/README.md's figures
# were measured so unless they say AOF); "always" fsyncs each write.
BENCH_REDIS_AOF=${BENCH_REDIS_AOF:-everysec}

# need_bins HINT NAME...: exits unless every $BUILD/NAME is executable.
need_bins() {
	local hint=$1 b
	shift
	for b in "$@"; do
		if [ ! -x "$BUILD/$b" ]; then
			echo "$BENCH_NAME: $BUILD/$b missing; $hint" >&2
			exit 1
		fi
	done
}

# need_tools NAME...: exits unless every NAME is on the PATH.
need_tools() {
	local t
	for t in "$@"; do
		if ! command -v "$t" >/dev/null; then
			echo "$BENCH_NAME: $t not found" >&2
			exit 1
		fi
	done
}

# bench_begin: the temporary directory, PIDS, KEEP and the traps.
bench_begin() {
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/ss-$BENCH_NAME.XXXXXX")
	PIDS=()
	KEEP=0 # keep the logs when something failed
	trap cleanup EXIT
	trap 'KEEP=1' ERR
	trap 'exit 130' INT TERM
}

# stop_pids PID...: SIGTERM to each, then waits for each.
stop_pids() {
	local p
	for p in "$@"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "$@"; do
		wait "$p" 2>/dev/null || true
	done
}

# cleanup: stops what we started, then removes $TMP unless KEEP=1.
cleanup() {
	stop_pids "${PIDS[@]}"
	if [ "$KEEP" = 1 ]; then
		echo "$BENCH_NAME: logs kept in $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}

# free_port: a loopback TCP port nobody listens on right now.
free_port() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_until WHAT CMD...: retries CMD for up to 15 s, else keeps the logs
# and exits.
wait_until() {
	local what=$1
	shift
	for _ in $(seq 150); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "$BENCH_NAME: $what did not come up" >&2
	KEEP=1
	exit 1
}

# redis_persistence: the redis-server options of $BENCH_REDIS_AOF.
redis_persistence() {
	case $BENCH_REDIS_AOF in
	no) echo --appendonly no ;;
	everysec | always) echo --appendonly yes --appendfsync "$BENCH_REDIS_AOF" ;;
	*)
		echo "$BENCH_NAME: BENCH_REDIS_AOF is no, everysec or always" >&2
		return 2
		;;
	esac
}

# start_redis PORT: a throwaway redis-server in $TMP; sets REDIS_PID.
start_redis() {
	local persist
	persist=$(redis_persistence)
	echo "$BENCH_NAME: Redis AOF: $BENCH_REDIS_AOF" >&2
	# shellcheck disable=SC2086 # options, split on purpose
	redis-server --port "$1" --bind 127.0.0.1 --save "" $persist \
		--dir "$TMP" >"$TMP/redis.log" 2>&1 &
	REDIS_PID=$!
	PIDS+=("$REDIS_PID")
	wait_until redis redis-cli -p "$1" ping
}

# export_base: exports what every daemon takes: Redis, the pepper, authz.
export_base() {
	export STUDYSHARE_REDIS_ADDR=127.0.0.1:$REDIS_PORT
	export STUDYSHARE_PEPPER=$PEPPER
	export STUDYSHARE_AUTHZ_URL=$AUTHZ_URL
}

# start_daemon NAME ADMIN_PORT [VAR=VALUE...]: studyshare-NAME with that
# environment, once its /readyz answers; sets DAEMON_PID.
start_daemon() {
	local name=$1 admin=$2
	shift 2
	env "STUDYSHARE_ADMIN_ADDR=127.0.0.1:$admin" "$@" \
		"$BUILD/studyshare-$name" 2>"$TMP/$name.log" &
	DAEMON_PID=$!
	PIDS+=("$DAEMON_PID")
	wait_until "$name" curl -fsS "http://127.0.0.1:$admin/readyz"
}

# import_fixture AUTHZ_URL: the fixture directory (users, groups, grants).
import_fixture() {
	"$BUILD/studyshare" --authz "$1" --timeout 15000 directory import \
		"$FIXTURE" >/dev/null
}

# start_echo URL: bench_bus's NNG echo server, the floor; sets ECHO_PID.
start_echo() {
	"$BUILD/bench_bus" echo "$1" 2>"$TMP/echo.log" &
	ECHO_PID=$!
	PIDS+=("$ECHO_PID")
}

# load URL ARGS...: a bench_bus load run at $INFLIGHT in flight; its JSON.
load() {
	"$BUILD/bench_bus" load "$@" --inflight "$INFLIGHT"
}

# echo_floor TYPE BODY: one $SECS window against the echo server; sets
# ECHO (the JSON line) and ECHO_CPU (its CPU microseconds per request).
echo_floor() {
	local c0
	c0=$(cpu_of "$ECHO_PID")
	ECHO=$(load "$ECHO_URL" --type "$1" --body "$2" --seconds "$SECS")
	ECHO_CPU=$(us_per_req $(( $(cpu_of "$ECHO_PID") - c0 )) "$ECHO")
}

# json_field JSON NAME: a number from bench_bus's one-line JSON.
json_field() {
	python3 -c 'import json, sys
print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

# calc EXPR: floating-point arithmetic and comparisons (True/False).
calc() {
	python3 -c "print($1)"
}

# ratio A B: A / B to two places, "-" when B is 0.
ratio() {
	calc "round($1 / $2, 2) if $2 > 0 else '-'"
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

# us_per_req TICKS JSON: server CPU microseconds per request answered.
us_per_req() {
	calc "round($1 * 1e6 / $HZ / max(1, $(json_field "$2" answered)), 1)"
}

# lat JSON: "p50 / p99 ms" of a bench_bus run.
lat() {
	echo "$(json_field "$1" p50_ms) / $(json_field "$1" p99_ms) ms"
}

# lat_row JSON: the row of a bench_bus run's latencies.
lat_row() {
	row "  latency p50 / p99" "$(lat "$1")" - - - -
}

# cpu_row LABEL US FLOOR_US: CPU microseconds per request against a floor.
cpu_row() {
	row "$1" "$2 us" "$3 us" "$(ratio "$2" "$3")" - -
}

# print_raw JSON...: bench_bus's lines as they came, on stderr.
print_raw() {
	local r
	for r in "$@"; do
		echo "$BENCH_NAME: raw $r" >&2
	done
}

# verdict True|False: PASS or MISS.
verdict() {
	if [ "$1" = True ]; then echo PASS; else echo MISS; fi
}

# row MEASUREMENT VALUE FLOOR RATIO GOAL RESULT: one table line, the first
# column $ROW_WIDTH wide.
row() {
	printf '%-*s %-18s %-12s %-6s %-10s %s\n' "$ROW_WIDTH" "$@"
}

# table_head: a blank line and the table's column names.
table_head() {
	echo
	row measurement value floor ratio goal result
}
