#!/usr/bin/env bash
# bench/http_bench.sh - the gateway over HTTP: guest-link redemptions/s
# (JSON, no password, keep-alive, 64 connections) and share requests/s,
# each as a ratio to an evhttp "hello" handler (bench/http_hello.c)
# measured in the same run with the same client (wrk, Debian's).
#
# Builds nothing: $BUILD (default build/) must hold http_hello, studyshare
# and the authz, share, guestlink and gateway daemons.  Starts its own
# redis-server, daemons and hello server on free loopback ports in a
# temporary directory, imports the fixture directory, publishes one study,
# logs alice in and makes one guest link without a password or use limit
# through the API, measures, prints a table and stops everything it
# started.  The floor and the redemptions alternate in three rounds and the
# median round's ratio counts.  About 40 s.  Exits 0 whether the goal is
# met or missed.
#
#   BUILD=build-other bash bench/http_bench.sh
#   BENCH_SECONDS=2 bash bench/http_bench.sh
#   HTTP_BENCH_ROUNDS=5 bash bench/http_bench.sh
#   HTTP_BENCH_PERF=/tmp/all.perf bash bench/http_bench.sh   (perf record of
#       the whole machine during the first redemption run, for
#       `perf report -i /tmp/all.perf --sort comm,dso`)
set -eEuo pipefail

cd "$(dirname "$0")/.."
BENCH_NAME=http-bench
CONNS=64
THREADS=2
ROUNDS=${HTTP_BENCH_ROUNDS:-3} # floor/redemption pairs; odd
GOAL_RATIO=0.40 # redemptions/s / hello floor, at least
UID_=2.25.4343.1
# shellcheck source=bench/lib.sh
. bench/lib.sh

need_bins "build first" http_hello studyshare studyshare-authz studyshare-share \
	studyshare-guestlink studyshare-gateway
need_tools redis-server redis-cli curl python3 wrk
bench_begin

# run_wrk NAME URL [wrk args...]: the wrk report in $TMP/NAME.wrk
run_wrk() {
	local name=$1 url=$2
	shift 2
	wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "$@" "$url" >"$TMP/$name.wrk"
}
rps_of() { awk '/^Requests\/sec:/ { print $2 }' "$TMP/$1.wrk"; }
non2xx_of() { awk '/Non-2xx or 3xx responses:/ { print $5 } END { }' "$TMP/$1.wrk" | tail -1; }
p99_of() { awk '$1 == "99%" { print $2 }' "$TMP/$1.wrk"; }
reqs_of() { awk '/ requests in / { print $1 }' "$TMP/$1.wrk"; }

# us_per_req TICKS NAME: a process's CPU microseconds per request of a
# wrk run (lib.sh's takes bench_bus's JSON instead)
us_per_req() {
	calc "round($1 * 1e6 / $HZ / max(1, $(reqs_of "$2")), 1)"
}

REDIS_PORT=$(free_port)
AUTHZ_URL=tcp://127.0.0.1:$(free_port)
SHARE_URL=tcp://127.0.0.1:$(free_port)
INGEST_URL=tcp://127.0.0.1:$(free_port)
GL_URL=tcp://127.0.0.1:$(free_port)
HTTP_PORT=$(free_port)
HELLO_PORT=$(free_port)
GW=http://127.0.0.1:$HTTP_PORT

echo "http-bench: $(nproc) cores, build $BUILD, ${SECS}s windows, $CONNS connections" >&2

start_redis "$REDIS_PORT"

export_base
export STUDYSHARE_MAIL_KEY=bench-mail-key-0123456789abcdef0123456789
export STUDYSHARE_SHARE_URL=$SHARE_URL
export STUDYSHARE_LOG_LEVEL=warn

# start NAME ENV...: a daemon with its own admin port, ready.
start() {
	start_daemon "$1" "$(free_port)" "${@:2}"
}

start authz STUDYSHARE_LISTEN="$AUTHZ_URL"
import_fixture "$AUTHZ_URL"
start share STUDYSHARE_LISTEN="$SHARE_URL" STUDYSHARE_INGEST_LISTEN="$INGEST_URL" \
	"STUDYSHARE_PUB_LISTEN=tcp://127.0.0.1:$(free_port)" \
	STUDYSHARE_TOKEN_KEY=bench-share-token-key-0123456789abcdef \
	STUDYSHARE_SEAL_KEY=bench-share-seal-key-0123456789abcdef0123 \
	STUDYSHARE_NOTICES=false
start guestlink STUDYSHARE_LISTEN="$GL_URL" \
	"STUDYSHARE_PUB_LISTEN=tcp://127.0.0.1:$(free_port)" \
	STUDYSHARE_TOKEN_KEY=bench-guestlink-token-key-0123456789abcdef \
	STUDYSHARE_SEAL_KEY=bench-guestlink-seal-key-0123456789abcdef \
	STUDYSHARE_PUBLIC_URL="$GW"
GW_ADMIN=$(free_port)
start_daemon gateway "$GW_ADMIN" STUDYSHARE_LISTEN="127.0.0.1:$HTTP_PORT" \
	STUDYSHARE_GUESTLINK_URL="$GL_URL" \
	STUDYSHARE_JWT_SECRET=bench-jwt-secret-0123456789abcdef0123
GW_PID=$DAEMON_PID
# gw_counter NAME: a counter of the gateway's /metrics (0 when absent)
gw_counter() {
	curl -fsS "http://127.0.0.1:$GW_ADMIN/metrics" |
		awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'
}
"$BUILD/http_hello" "$HELLO_PORT" &
HELLO_PID=$!
PIDS+=("$HELLO_PID")
wait_until hello curl -fsS "http://127.0.0.1:$HELLO_PORT/"

"$BUILD/studyshare" --ingest "$INGEST_URL" publish-study --study-uid "$UID_" \
	--worklist location:ct --patient-id BENCH1 --study-date 20240101 \
	--modality CT --description "CT HEAD" >/dev/null

JWT=$(curl -fsS -X POST "$GW/api/v1/sessions" -H 'Content-Type: application/json' \
	-d '{"user":"alice","password":"alice-password"}' |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
# One link: no password, no use limit, no notification.
LINK=$(curl -fsS -X POST "$GW/api/v1/studies/$UID_/guest-links" \
	-H "Authorization: Bearer $JWT" -H 'Content-Type: application/json' \
	-d '{"worklist":"location:ct"}' |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["url"])')
LINK=$GW/g/${LINK##*/g/}
curl -fsS -H 'Accept: application/json' "$LINK" >/dev/null

cat >"$TMP/share.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"worklist":"location:ct","targets":[{"kind":"user","id":"bob"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $JWT"
LUA

GL_PID=${PIDS[3]}
# The floor and the redemptions take turns, ROUNDS times: the machine's
# speed drifts (other tenants of the host), and a ratio is only fair
# between windows that ran side by side.  The median round's ratio is the
# result; every round's is printed.
c_gw=0 c_gl=0 c_rd=0 n_redeem=0 RATIOS=() HELLO_TICKS=0 n_hello=0
IDLE_H=0 ALL_H=0 IDLE_R=0 ALL_R=0
# cpu_idle: the machine's idle (and iowait) ticks, then all its ticks
cpu_idle() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print $5 + $6, t }' /proc/stat; }
b0=$(gw_counter studyshare_rpc_batches_total)
q0=$(gw_counter studyshare_rpc_batched_requests_total)
for round in $(seq 1 "$ROUNDS"); do
	echo "http-bench: round $round/$ROUNDS: evhttp hello, then GET /g/{token} (JSON, a use each)" >&2
	c0=$(cpu_of "$HELLO_PID")
	read -r i0 a0 < <(cpu_idle)
	run_wrk "hello$round" "http://127.0.0.1:$HELLO_PORT/g/x" -H 'Accept: application/json'
	HELLO_TICKS=$((HELLO_TICKS + $(cpu_of "$HELLO_PID") - c0))
	read -r i1 a1 < <(cpu_idle)
	IDLE_H=$((IDLE_H + i1 - i0)) ALL_H=$((ALL_H + a1 - a0))
	n_hello=$((n_hello + $(reqs_of "hello$round")))
	c0=$(cpu_of "$GW_PID")
	g0=$(cpu_of "$GL_PID")
	r0=$(cpu_of "$REDIS_PID")
	read -r i0 a0 < <(cpu_idle)
	if [ -n "${HTTP_BENCH_PERF:-}" ] && [ "$round" = 1 ]; then
		perf record -q ${HTTP_BENCH_PERF_ARGS:--g} -a -o "$HTTP_BENCH_PERF" -- sleep "$SECS" 2>/dev/null &
	fi
	run_wrk "redeem$round" "$LINK" -H 'Accept: application/json'
	c_gw=$((c_gw + $(cpu_of "$GW_PID") - c0))
	c_gl=$((c_gl + $(cpu_of "$GL_PID") - g0))
	c_rd=$((c_rd + $(cpu_of "$REDIS_PID") - r0))
	read -r i1 a1 < <(cpu_idle)
	IDLE_R=$((IDLE_R + i1 - i0)) ALL_R=$((ALL_R + a1 - a0))
	n_redeem=$((n_redeem + $(reqs_of "redeem$round")))
	RATIOS+=("$(calc "round($(rps_of "redeem$round") / $(rps_of "hello$round"), 3)") $round")
done
# The round whose ratio is the median (ROUNDS is odd).
MID=$(printf '%s\n' "${RATIOS[@]}" | sort -n | sed -n "$(((ROUNDS + 1) / 2))p" | cut -d' ' -f2)
cp "$TMP/hello$MID.wrk" "$TMP/hello.wrk"
cp "$TMP/redeem$MID.wrk" "$TMP/redeem.wrk"
per() { calc "round($1 * 1e6 / $HZ / max(1, $2), 1)"; }
HELLO_CPU=$(per "$HELLO_TICKS" "$n_hello")
REDEEM_CPU=$(per "$c_gw" "$n_redeem")
REDEEM_GL_CPU=$(per "$c_gl" "$n_redeem")
REDEEM_REDIS_CPU=$(per "$c_rd" "$n_redeem")
# bus messages to guestlink: each batch, plus each request that went alone
BATCHES=$(($(gw_counter studyshare_rpc_batches_total) - b0))
BATCHED=$(($(gw_counter studyshare_rpc_batched_requests_total) - q0))
PER_MSG=$(calc "round($n_redeem / max(1, $BATCHES + $n_redeem - $BATCHED), 1)")
echo "http-bench: last: POST /api/v1/studies/{uid}/shares" >&2
c0=$(cpu_of "$GW_PID")
run_wrk share "$GW/api/v1/studies/$UID_/shares" -s "$TMP/share.lua"
SHARE_CPU=$(us_per_req $(( $(cpu_of "$GW_PID") - c0 )) share)

HELLO=$(rps_of hello)
REDEEM=$(rps_of redeem)
SHARE=$(rps_of share)
R_RATIO=$(calc "round($REDEEM / $HELLO, 2)")
S_RATIO=$(calc "round($SHARE / $HELLO, 3)")
VERDICT=$(calc "'ok' if $R_RATIO >= $GOAL_RATIO else 'MISS'")
RSS=$(awk '/^VmRSS:/ { print $2 }' "/proc/$GW_PID/status")

printf '\n%-42s %10s %7s %9s %8s %11s\n' "http (wrk, $CONNS keep-alive connections)" "req/s" "ratio" "p99" "non-2xx" "us/req(srv)"
printf '%-42s %10s %7s %9s %8s %11s\n' "floor: evhttp hello" "$HELLO" "1.00" "$(p99_of hello)" "$(non2xx_of hello)" "$HELLO_CPU"
printf '%-42s %10s %7s %9s %8s %11s   goal >= %s: %s\n' "guest-link redemption, JSON, no password" \
	"$REDEEM" "$R_RATIO" "$(p99_of redeem)" "$(non2xx_of redeem)" "$REDEEM_CPU" "$GOAL_RATIO" "$VERDICT"
printf '%-42s %10s %7s %9s %8s %11s\n' "  guestlink's own CPU per redemption" "" "" "" "" "$REDEEM_GL_CPU"
printf '%-42s %10s %7s %9s %8s %11s\n' "  Redis's CPU per redemption" "" "" "" "" "$REDEEM_REDIS_CPU"
printf '%-42s %10s\n' "  redemptions per bus message (batching)" "$PER_MSG"
printf '%-42s %10s %7s\n' "  machine idle: hello, redemptions (%)" \
	"$(calc "round(100 * $IDLE_H / max(1, $ALL_H), 1)")" "$(calc "round(100 * $IDLE_R / max(1, $ALL_R), 1)")"
printf '%-42s %s\n' "  each round's ratio (median above)" "$(printf '%s\n' "${RATIOS[@]}" | cut -d' ' -f1 | paste -sd' ')"
printf '%-42s %10s %7s %9s %8s %11s\n' "share to a colleague (authz + share)" \
	"$SHARE" "$S_RATIO" "$(p99_of share)" "$(non2xx_of share)" "$SHARE_CPU"
printf '%-44s %12s\n' "gateway RSS after the runs (KiB)" "$RSS"
