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
BENCH_NAME=guestlink-bench
ROW_WIDTH=36
GOAL_RATIO=0.60 # redemptions/s / echo floor, at least
UID_=2.25.4242.1
# shellcheck source=bench/lib.sh
. bench/lib.sh

need_bins "build first" bench_bus studyshare studyshare-authz studyshare-share \
	studyshare-guestlink
need_tools redis-server redis-cli curl python3
bench_begin

# calls_of NAME: the calls of one command since the last CONFIG RESETSTAT.
calls_of() {
	redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' |
		awk -F'[:=,]' -v c="cmdstat_$1" '$1 == c { n = $3 } END { print n + 0 }'
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

start_redis "$REDIS_PORT"

export_base
export STUDYSHARE_MAIL_KEY=bench-mail-key-0123456789abcdef0123456789

start_daemon authz "$(free_port)" "STUDYSHARE_LISTEN=$AUTHZ_URL"
import_fixture "$AUTHZ_URL"
start_daemon share "$(free_port)" "STUDYSHARE_LISTEN=$SHARE_URL" \
	"STUDYSHARE_INGEST_LISTEN=$INGEST_URL" \
	"STUDYSHARE_PUB_LISTEN=tcp://127.0.0.1:$(free_port)" \
	STUDYSHARE_TOKEN_KEY=bench-share-token-key-0123456789abcdef \
	STUDYSHARE_SEAL_KEY=bench-share-seal-key-0123456789abcdef0123
start_daemon guestlink "$GL_ADMIN" "STUDYSHARE_LISTEN=$GL_URL" \
	"STUDYSHARE_SHARE_URL=$SHARE_URL" \
	"STUDYSHARE_PUB_LISTEN=tcp://127.0.0.1:$(free_port)" \
	STUDYSHARE_TOKEN_KEY=bench-guestlink-token-key-0123456789abcdef \
	STUDYSHARE_SEAL_KEY=bench-guestlink-seal-key-0123456789abcdef \
	STUDYSHARE_LOG_LEVEL=warn
GL_PID=$DAEMON_PID

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

start_echo "$ECHO_URL"

echo "guestlink-bench: 1/2 floor: NNG echo at $INFLIGHT in flight" >&2
echo_floor guestlink.redeem "$BODY"

echo "guestlink-bench: 2/2 guestlink.redeem at $INFLIGHT in flight" >&2
USES0=$(redis-cli -p "$REDIS_PORT" HGET "link:{$LINK_ID}" uses)
redis-cli -p "$REDIS_PORT" CONFIG RESETSTAT >/dev/null
c0=$(cpu_of "$GL_PID")
GL=$(load "$GL_URL" --type guestlink.redeem --body "$BODY" --seconds "$SECS")
GL_CPU=$(us_per_req $(( $(cpu_of "$GL_PID") - c0 )) "$GL")
sleep 0.5 # the audit entries of the last replies
EVALSHA=$(calls_of evalsha)
EVAL=$(calls_of eval)
XADD=$(calls_of xadd)
# What the redeem script runs: commandstats counts those too.
SCRIPTED=0
for c in hmget hincrby set pttl; do
	SCRIPTED=$((SCRIPTED + $(calls_of "$c")))
done
USES1=$(redis-cli -p "$REDIS_PORT" HGET "link:{$LINK_ID}" uses)

print_raw "$ECHO" "$GL"

E_RATE=$(json_field "$ECHO" rate)
G_RATE=$(json_field "$GL" rate)
ANSWERED=$(json_field "$GL" answered)
ERRORS=$(json_field "$GL" errors)
USED=$((USES1 - USES0))
RATIO=$(calc "round($G_RATE / $E_RATE, 2)")
# per N: N per redemption answered, to two places.
per() {
	calc "'%.2f' % (($1) / max(1, $ANSWERED))"
}

table_head
row "floor: NNG echo, $INFLIGHT in flight" "$E_RATE/s" - - - -
row "guestlink.redeem, $INFLIGHT in flight" "$G_RATE/s" "$E_RATE/s" "$RATIO" ">= $GOAL_RATIO" \
	"$(verdict "$(calc "$RATIO >= $GOAL_RATIO")")"
lat_row "$GL"
cpu_row "  server CPU per request" "$GL_CPU" "$ECHO_CPU"
row "  uses counted / replies" "$USED / $ANSWERED" - - "equal" \
	"$(verdict "$(calc "$USED == $ANSWERED")")"
row "  EVALSHA per redemption (awaited)" "$(per "$EVALSHA + $EVAL")" - - "1.00" \
	"$(verdict "$(calc "$EVALSHA + $EVAL == $ANSWERED")")"
row "  XADD per redemption (audit, not)" "$(per "$XADD")" - - "1.00" \
	"$(verdict "$(calc "$XADD == $ANSWERED")")"
row "  commands inside the script" "$(per "$SCRIPTED")" - - - -
row "errors" "$ERRORS" - - "0" "$(verdict "$(calc "$ERRORS == 0")")"
echo "(one round trip: a reply waits for its EVALSHA only; the audit XADD is sent after it, unawaited, pipelined on the same connection)"
