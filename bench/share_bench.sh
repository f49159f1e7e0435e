#!/usr/bin/env bash
# bench/share_bench.sh - share's ingest (study.arrived) and single-target
# shares (share.create) as ratios to the NNG echo floor measured in the same
# run, ingest with 1,000,000 studies stored against ingest with 1,000, and
# Redis memory per study.
#
# Builds nothing: $BUILD (default build/) must hold bench_bus, studyshare
# and the authz and share daemons.  Starts its own redis-server, authz,
# share and echo server on free loopback ports in a temporary directory,
# imports the fixture directory, measures, prints a table and stops
# everything it started on exit.  Every study goes in through share's
# ingest endpoint, each request a new study (bench_bus numbers them, "{n}").
# See bench/README.md ("share").  About 2 minutes, most of it the bulk load.
#
#   BUILD=build-other bash bench/share_bench.sh
#   BENCH_SECONDS=2 bash bench/share_bench.sh     # shorter windows, noisier
#   BENCH_STUDIES=200000 bash bench/share_bench.sh  # a smaller bulk load
set -eEuo pipefail

cd "$(dirname "$0")/.."
BENCH_NAME=share-bench
STUDIES=${BENCH_STUDIES:-1000000} # stored before the second ingest run
SEED=1000                         # stored before the first one
ROW_WIDTH=42
# shellcheck source=bench/lib.sh
. bench/lib.sh

# Goals (bench/README.md, issue 3).
GOAL_INGEST=0.50 # study.arrived/s / echo floor, at least
GOAL_SCALE=0.80  # study.arrived/s at $STUDIES stored / at $SEED, at least

need_bins "build first" bench_bus studyshare studyshare-authz studyshare-share
need_tools redis-server redis-cli curl python3
bench_begin

# CHILD_TICKS: CPU time of this script's finished children (bench_bus,
# redis-cli, ...), in clock ticks.  `times` must run in this shell, never
# in a $(...) subshell, which would count only its own children.
children_ticks() {
	times >"$TMP/times"
	CHILD_TICKS=$(awk -v hz="$HZ" 'NR == 2 { split($1, u, /[ms]/);
		split($2, s, /[ms]/);
		printf "%d\n", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * hz }' "$TMP/times")
}

# mark: notes the machine's CPU ticks and ours (the servers' and the
# client's) in M_BUSY, M_TOTAL, M_OURS; others_since sets OTHERS_PCT to how
# much of the machine's CPU other processes used since the mark, in percent.
# Neither may run in a subshell (see children_ticks).
mark() {
	local p
	read -r M_BUSY M_TOTAL < <(cpu_ticks)
	children_ticks
	M_OURS=$CHILD_TICKS
	for p in "${PIDS[@]}"; do
		M_OURS=$((M_OURS + $(cpu_of "$p")))
	done
}
others_since() {
	local busy0=$M_BUSY total0=$M_TOTAL ours0=$M_OURS
	mark
	OTHERS_PCT=$(( (100 * ((M_BUSY - busy0) - (M_OURS - ours0))) /
		(M_TOTAL - total0 > 0 ? M_TOTAL - total0 : 1) ))
	if [ "$OTHERS_PCT" -lt 0 ]; then
		OTHERS_PCT=0 # tick rounding
	fi
}

# authz_counts FILE: the requests authz has received so far, by type.
authz_counts() {
	curl -fsS "http://127.0.0.1:$AUTHZ_ADMIN/metrics" |
		sed -n 's/^studyshare_requests_total{type="\([^"]*\)"} \([0-9]*\).*/\1 \2/p' >"$1"
}

# authz_per BEFORE AFTER N: authz requests per request of ours between the
# two counts, in all, then by type: "3.00 resolve 1.00, user.get 2.00".
authz_per() {
	python3 - "$@" <<'PY'
import sys
def counts(path):
    with open(path) as f:
        return {t: int(n) for t, n in (line.split() for line in f)}
a, b, n = counts(sys.argv[1]), counts(sys.argv[2]), max(1, int(sys.argv[3]))
d = {t.removeprefix("authz."): b[t] - a.get(t, 0) for t in b if b[t] > a.get(t, 0)}
parts = ", ".join("%s %.2f" % (t, d[t] / n) for t in sorted(d))
print("%.2f" % (sum(d.values()) / n), parts or "none")
PY
}

rcli() {
	redis-cli -p "$REDIS_PORT" "$@"
}

used_memory() {
	rcli INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }'
}

# The studies a worklist holds (its listing index: one member each).
held() {
	rcli ZCARD "share:{wl:$1}:index"
}

# ingest_body PHASE: a full study.arrived body whose study_uid, patient id
# and accession are new in every request; PHASE keeps the runs' uids apart.
ingest_body() {
	printf '{"study_uid":"2.25.999.%s.{n}","worklist":"location:ct",' "$1"
	printf '"patient":{"id":"P{n}","name":"DOE^JANE","birth_date":"19800131"},'
	printf '"study_date":"20261101","accession":"A{n}","modality":"CT",'
	printf '"description":"CT HEAD"}'
}

REDIS_PORT=$(free_port)
AUTHZ_URL=tcp://127.0.0.1:$(free_port)
AUTHZ_ADMIN=$(free_port)
SHARE_URL=tcp://127.0.0.1:$(free_port)
INGEST_URL=tcp://127.0.0.1:$(free_port)
SHARE_ADMIN=$(free_port)
SHARE_PUB_URL=tcp://127.0.0.1:$(free_port)
ECHO_URL=tcp://127.0.0.1:$(free_port)

echo "share-bench: $(nproc) cores, build $BUILD, ${SECS}s windows," \
	"$STUDIES studies for the bulk load" >&2

start_redis "$REDIS_PORT"

export_base

start_daemon authz "$AUTHZ_ADMIN" "STUDYSHARE_LISTEN=$AUTHZ_URL"
import_fixture "$AUTHZ_URL"

# ---------------------------------------------------------------------
# share's settings: the one place they are set.  Required settings and
# keys of share go here, as STUDYSHARE_* variables (the keys must differ
# from one another); nothing below passes share anything else.  A daemon
# ignores variables of settings it does not have.
SHARE_ENV=(
	"STUDYSHARE_ADMIN_ADDR=127.0.0.1:$SHARE_ADMIN"
	"STUDYSHARE_LISTEN=$SHARE_URL"
	"STUDYSHARE_INGEST_LISTEN=$INGEST_URL"
	"STUDYSHARE_PUB_LISTEN=$SHARE_PUB_URL"
	STUDYSHARE_TOKEN_KEY=bench-share-token-key-0123456789abcdef
	STUDYSHARE_SEAL_KEY=bench-share-seal-key-0123456789abcdef
	STUDYSHARE_MAIL_KEY=bench-share-mail-key-0123456789abcdef
)
# ---------------------------------------------------------------------
start_daemon share "$SHARE_ADMIN" "${SHARE_ENV[@]}"
SHARE_PID=$DAEMON_PID

start_echo "$ECHO_URL"

# echo_run: the floor for one window; sets ECHO, ECHO_CPU, ECHO_OTHERS.
echo_run() {
	local body
	body=$(ingest_body 0)
	mark
	echo_floor study.arrived "$body"
	others_since
	ECHO_OTHERS=$OTHERS_PCT
}

# ingest_run PHASE: study.arrived of new studies for one window; sets
# INGEST (the JSON line), share's and Redis's CPU per request, and
# INGEST_OTHERS.
ingest_run() {
	local s0 r0 body
	body=$(ingest_body "$1")
	s0=$(cpu_of "$SHARE_PID")
	r0=$(cpu_of "$REDIS_PID")
	authz_counts "$TMP/authz0"
	mark
	INGEST=$(load "$INGEST_URL" --type study.arrived --body "$body" --seconds "$SECS")
	others_since
	INGEST_OTHERS=$OTHERS_PCT
	authz_counts "$TMP/authz1"
	INGEST_AUTHZ=$(authz_per "$TMP/authz0" "$TMP/authz1" \
		"$(json_field "$INGEST" answered)")
	INGEST_CPU=$(us_per_req $(( $(cpu_of "$SHARE_PID") - s0 )) "$INGEST")
	INGEST_RCPU=$(us_per_req $(( $(cpu_of "$REDIS_PID") - r0 )) "$INGEST")
}

# Our processes are idle now: whatever keeps the CPUs busy is someone else.
mark
sleep 1
others_since
OTHERS=$OTHERS_PCT
if [ "$OTHERS" -gt 10 ]; then
	echo "share-bench: WARNING: other processes use ${OTHERS}% of the CPUs;" \
		"figures will be noisy" >&2
fi

echo "share-bench: 1/7 floor: NNG echo at $INFLIGHT in flight" >&2
echo_run
ECHO1=$ECHO ECHO1_CPU=$ECHO_CPU ECHO1_OTHERS=$ECHO_OTHERS

echo "share-bench: 2/7 seeding $SEED studies" >&2
SEEDED=$(load "$INGEST_URL" --type study.arrived --body "$(ingest_body 1)" \
	--count "$SEED" --seconds 60)
if [ "$(held location:ct)" != "$SEED" ]; then
	echo "share-bench: seeding stored $(held location:ct) studies, not $SEED:" \
		"$SEEDED" >&2
	KEEP=1
	exit 1
fi

echo "share-bench: 3/7 study.arrived at $INFLIGHT in flight, $SEED stored" >&2
HELD_SMALL=$(held location:ct)
ingest_run 2
SMALL=$INGEST SMALL_CPU=$INGEST_CPU SMALL_RCPU=$INGEST_RCPU SMALL_OTHERS=$INGEST_OTHERS
SMALL_AUTHZ=$INGEST_AUTHZ
HELD_SMALL_END=$(held location:ct)
# Phase 2's studies are numbered 0 .. n-1: share those, never more.
SHAREABLE=$((HELD_SMALL_END - HELD_SMALL))

echo "share-bench: 4/7 share.create to one user at $INFLIGHT in flight" >&2
SHARE_BODY='{"user":"alice","worklist":"location:ct","study_uid":"2.25.999.2.{n}","targets":[{"kind":"user","id":"bob"}]}'
s0=$(cpu_of "$SHARE_PID")
r0=$(cpu_of "$REDIS_PID")
authz_counts "$TMP/authz0"
mark
SHARES=$(load "$SHARE_URL" --type share.create --body "$SHARE_BODY" \
	--seconds "$SECS" --count "$SHAREABLE")
others_since
SHARE_OTHERS=$OTHERS_PCT
authz_counts "$TMP/authz1"
SHARE_AUTHZ=$(authz_per "$TMP/authz0" "$TMP/authz1" "$(json_field "$SHARES" answered)")
SHARE_CPU=$(us_per_req $(( $(cpu_of "$SHARE_PID") - s0 )) "$SHARES")
SHARE_RCPU=$(us_per_req $(( $(cpu_of "$REDIS_PID") - r0 )) "$SHARES")
DELIVERED=$(held user:bob)

BULK=$((STUDIES - $(held location:ct)))
if [ "$BULK" -lt 1 ]; then
	echo "share-bench: BENCH_STUDIES=$STUDIES: already $(held location:ct)" \
		"stored; ask for more" >&2
	exit 1
fi
echo "share-bench: 5/7 bulk load: $BULK studies through ingest" >&2
MEM0=$(used_memory)
HELD0=$(held location:ct)
body=$(ingest_body 3)
t0=$(date +%s.%N)
mark
BULKED=$(load "$INGEST_URL" --type study.arrived --body "$body" \
	--count "$BULK" --seconds 3600)
others_since
BULK_OTHERS=$OTHERS_PCT
t1=$(date +%s.%N)
HELD1=$(held location:ct)
MEM1=$(used_memory)
BULK_S=$(calc "round($t1 - $t0, 1)")
BULK_RATE=$(calc "int(($HELD1 - $HELD0) / ($t1 - $t0))")
PER_STUDY=$(calc "int(($MEM1 - $MEM0) / max(1, $HELD1 - $HELD0))")

# The floor again: the machine may be busier or quieter than a minute ago.
echo "share-bench: 6/7 floor again: NNG echo at $INFLIGHT in flight" >&2
echo_run
echo "share-bench: 7/7 study.arrived at $INFLIGHT in flight, $HELD1 stored" >&2
ingest_run 4
LARGE=$INGEST LARGE_CPU=$INGEST_CPU LARGE_RCPU=$INGEST_RCPU LARGE_OTHERS=$INGEST_OTHERS

ECHO2=$ECHO ECHO2_OTHERS=$ECHO_OTHERS

print_raw "$ECHO1" "$SEEDED" "$SMALL" "$SHARES" "$BULKED" "$ECHO2" "$LARGE"

# thousands N: N with thousands separators.
thousands() {
	calc "format($1, ',')"
}
# others PCT: the row of other processes' CPU during the run above.
others() {
	row "  other processes' CPU meanwhile" "$1%" - - - -
}

E1=$(json_field "$ECHO1" rate)
E2=$(json_field "$ECHO2" rate)
I1=$(json_field "$SMALL" rate)
I2=$(json_field "$LARGE" rate)
S_RATE=$(json_field "$SHARES" rate)
S_OK=$(json_field "$SHARES" answered)
ERRORS=$(( $(json_field "$SMALL" errors) + $(json_field "$SHARES" errors) +
	$(json_field "$BULKED" errors) + $(json_field "$LARGE" errors) ))
R_INGEST=$(ratio "$I1" "$E1")
R_SCALE=$(ratio "$I2" "$I1")
# The same comparison with each ingest rate divided by the floor measured
# just before it: what is left when the machine's load changed between.
F_SMALL=$(ratio "$I1" "$E1")
F_LARGE=$(ratio "$I2" "$E2")

table_head
row "floor: NNG echo, $INFLIGHT in flight" "$E1/s" - - - -
lat_row "$ECHO1"
others "$ECHO1_OTHERS"
row "study.arrived, new studies, $INFLIGHT in flight" "$I1/s" "$E1/s" "$R_INGEST" \
	">= $GOAL_INGEST" "$(verdict "$(calc "$R_INGEST >= $GOAL_INGEST")")"
row "  studies stored: start / end of run" \
	"$(thousands "$HELD_SMALL") / $(thousands "$HELD_SMALL_END")" - - - -
lat_row "$SMALL"
cpu_row "  share CPU per request" "$SMALL_CPU" "$ECHO1_CPU"
row "  Redis CPU per request" "$SMALL_RCPU us" - - - -
row "  authz requests per request" "${SMALL_AUTHZ%% *}" - - - -
others "$SMALL_OTHERS"
row "share.create, 1 user target, $INFLIGHT in flight" "$S_RATE/s" "$E1/s" \
	"$(ratio "$S_RATE" "$E1")" - -
lat_row "$SHARES"
cpu_row "  share CPU per request" "$SHARE_CPU" "$ECHO1_CPU"
row "  Redis CPU per request" "$SHARE_RCPU us" - - - -
row "  authz requests per request" "${SHARE_AUTHZ%% *}" - - - -
row "  studies delivered / replies" "$DELIVERED / $S_OK" - - equal \
	"$(verdict "$(calc "$DELIVERED == $S_OK")")"
others "$SHARE_OTHERS"
row "bulk load through ingest" "$(thousands $((HELD1 - HELD0))) studies" - - - -
row "  time, rate" "$BULK_S s, $BULK_RATE/s" - - - -
row "  Redis used_memory per study" "$PER_STUDY B" - - - -
row "  Redis used_memory, all" "$(calc "round($MEM1 / 2**20)") MiB" - - - -
others "$BULK_OTHERS"
row "floor again: NNG echo, $INFLIGHT in flight" "$E2/s" "$E1/s" "$(ratio "$E2" "$E1")" - -
others "$ECHO2_OTHERS"
row "study.arrived, $(thousands "$HELD1") stored" "$I2/s" "$I1/s" "$R_SCALE" \
	">= $GOAL_SCALE" "$(verdict "$(calc "$R_SCALE >= $GOAL_SCALE")")"
lat_row "$LARGE"
row "  ratio to the floor just before" "$F_LARGE" "$F_SMALL" "$(ratio "$F_LARGE" "$F_SMALL")" - -
cpu_row "  share CPU per request" "$LARGE_CPU" "$SMALL_CPU"
cpu_row "  Redis CPU per request" "$LARGE_RCPU" "$SMALL_RCPU"
others "$LARGE_OTHERS"
row "errors" "$ERRORS" - - 0 "$(verdict "$(calc "$ERRORS == 0")")"
echo "(authz requests by type: study.arrived ${SMALL_AUTHZ#* }; share.create ${SHARE_AUTHZ#* })"
echo "($(nproc) cores; other processes used ${OTHERS}% of the CPUs just before the run;" \
	"every study in one worklist, location:ct)"
