#!/usr/bin/env bash
# bench/share_list_bench.sh - what the first page of a worklist's listing
# (share.studies.list, 10 studies) costs with 100,000 studies stored,
# against the same page of a worklist of 10, as a ratio.
#
# Builds nothing: $BUILD (default build/) must hold bench_bus, studyshare
# and the authz and share daemons.  Starts its own redis-server, authz and
# share on free loopback ports in a temporary directory, imports the
# fixture directory, puts the studies in through share's ingest endpoint
# (each request a new study, "{n}"), measures, prints a table and stops
# everything it started on exit.  `make bench` runs it after
# bench/share_bench.sh; see bench/README.md ("share listing").  About 50 s.
#
#   BUILD=build-other bash bench/share_list_bench.sh
#   BENCH_SECONDS=2 bash bench/share_list_bench.sh        # shorter windows
#   BENCH_LIST_STUDIES=1000000 bash bench/share_list_bench.sh
set -eEuo pipefail

cd "$(dirname "$0")/.."
BENCH_NAME=share-list-bench
BIG=${BENCH_LIST_STUDIES:-100000} # studies in the large worklist
SMALL=10                          # studies in the small one
ROUNDS=${BENCH_LIST_ROUNDS:-3}    # small and large windows, alternated
PAGE=10
ROW_WIDTH=40
# shellcheck source=bench/lib.sh
. bench/lib.sh

# Goal (bench/README.md, "share listing"; services/share/README.md, "Redis
# keys": a page is O(log N + page), so the first page of 100,000 studies
# costs what the first page of 10 does).
GOAL_RATIO=1.20 # page time with $BIG stored / with $SMALL, at most

need_bins "build first" bench_bus studyshare studyshare-authz studyshare-share
need_tools redis-server redis-cli curl python3
bench_begin

REDIS_PORT=$(free_port)
AUTHZ_URL=tcp://127.0.0.1:$(free_port)
SHARE_URL=tcp://127.0.0.1:$(free_port)
INGEST_URL=tcp://127.0.0.1:$(free_port)
SHARE_ADMIN=$(free_port)

# alice may view both: the same user, so the authz side is the same.
BIG_WL=location:ct
SMALL_WL=group:neuro

echo "share-list-bench: $(nproc) cores, build $BUILD, ${SECS}s windows," \
	"$ROUNDS rounds, $BIG and $SMALL studies" >&2

start_redis "$REDIS_PORT"
export_base
start_daemon authz "$(free_port)" "STUDYSHARE_LISTEN=$AUTHZ_URL"
import_fixture "$AUTHZ_URL"
start_daemon share "$SHARE_ADMIN" "STUDYSHARE_LISTEN=$SHARE_URL" \
	"STUDYSHARE_INGEST_LISTEN=$INGEST_URL" \
	"STUDYSHARE_PUB_LISTEN=tcp://127.0.0.1:$(free_port)" \
	STUDYSHARE_TOKEN_KEY=bench-share-token-key-0123456789abcdef \
	STUDYSHARE_SEAL_KEY=bench-share-seal-key-0123456789abcdef \
	STUDYSHARE_MAIL_KEY=bench-share-mail-key-0123456789abcdef

# The studies a worklist holds (its listing index: one member each).
held() {
	redis-cli -p "$REDIS_PORT" ZCARD "share:{wl:$1}:index"
}

# fill WORKLIST N PHASE: N new studies into WORKLIST through ingest, with
# full fields (sealed blobs of a real size); PHASE keeps the uids apart.
fill() {
	local body out
	body=$(printf '{"study_uid":"2.25.998.%s.{n}","worklist":"%s",' "$3" "$1"
		printf '"patient":{"id":"P%s{n}","name":"DOE^JANE","birth_date":"19800131"},' "$3"
		printf '"study_date":"20261101","accession":"A{n}","modality":"CT",'
		printf '"description":"CT HEAD"}')
	out=$(load "$INGEST_URL" --type study.arrived --body "$body" \
		--count "$2" --seconds 3600)
	if [ "$(held "$1")" != "$2" ]; then
		echo "share-list-bench: $1 holds $(held "$1") studies, not $2: $out" >&2
		KEEP=1
		exit 1
	fi
}

# page WORKLIST: the first page of WORKLIST, one request at a time (its
# latency is the page's time), for one window; sets PAGE_RUN (the JSON
# line) and PAGE_RCPU (Redis's CPU microseconds per page).
page() {
	local r0
	r0=$(cpu_of "$REDIS_PID")
	PAGE_RUN=$("$BUILD/bench_bus" load "$SHARE_URL" --type share.studies.list \
		--body "{\"user\":\"alice\",\"worklist\":\"$1\",\"limit\":$PAGE}" \
		--inflight 1 --seconds "$SECS")
	PAGE_RCPU=$(us_per_req $(( $(cpu_of "$REDIS_PID") - r0 )) "$PAGE_RUN")
}

echo "share-list-bench: 1/3 $SMALL studies into $SMALL_WL" >&2
fill "$SMALL_WL" "$SMALL" 1
echo "share-list-bench: 2/3 $BIG studies into $BIG_WL" >&2
t0=$(date +%s.%N)
fill "$BIG_WL" "$BIG" 2
t1=$(date +%s.%N)

echo "share-list-bench: 3/3 first pages of $PAGE, one at a time," \
	"$ROUNDS rounds" >&2
RUNS=()
RATIOS=()
ERRORS=0
for _ in $(seq "$ROUNDS"); do
	page "$SMALL_WL"
	S_RUN=$PAGE_RUN S_RCPU=$PAGE_RCPU
	page "$BIG_WL"
	B_RUN=$PAGE_RUN B_RCPU=$PAGE_RCPU
	RUNS+=("$S_RUN" "$B_RUN")
	ERRORS=$((ERRORS + $(json_field "$S_RUN" errors) + $(json_field "$B_RUN" errors)))
	r=$(ratio "$(json_field "$B_RUN" p50_ms)" "$(json_field "$S_RUN" p50_ms)")
	RATIOS+=("$r")
	echo "$r|$S_RUN|$B_RUN|$S_RCPU|$B_RCPU" >>"$TMP/rounds"
done
print_raw "${RUNS[@]}"
# The round with the median ratio is the one shown: on a busy machine a
# ratio is fair only between windows that ran side by side.
IFS='|' read -r RATIO S_RUN B_RUN S_RCPU B_RCPU < <(sort -t'|' -k1,1 -g "$TMP/rounds" |
	sed -n "$(( (ROUNDS + 1) / 2 ))p")

S_P50=$(json_field "$S_RUN" p50_ms)
B_P50=$(json_field "$B_RUN" p50_ms)

table_head
row "first page of $PAGE, $SMALL stored" "$S_P50 ms" - - - -
lat_row "$S_RUN"
row "  Redis CPU per page" "$S_RCPU us" - - - -
row "first page of $PAGE, $(calc "format($BIG, ',')") stored" "$B_P50 ms" "$S_P50 ms" \
	"$RATIO" "<= $GOAL_RATIO" "$(verdict "$(calc "$RATIO <= $GOAL_RATIO")")"
lat_row "$B_RUN"
cpu_row "  Redis CPU per page" "$B_RCPU" "$S_RCPU"
row "  p50 ratio of each round" "${RATIOS[*]}" - - - -
row "load through ingest" "$(calc "round($t1 - $t0, 1)") s" - - - -
row "errors" "$ERRORS" - - 0 "$(verdict "$(calc "$ERRORS == 0")")"
echo "($(nproc) cores; one request in flight; the round with the median ratio of $ROUNDS)"
