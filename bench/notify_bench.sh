#!/usr/bin/env bash
# bench/notify_bench.sh - mails/s of the notify workers against postfix's
# smtp-sink, as ratios to smtp-source -> smtp-sink measured in the same run;
# and one worker against a sink that does not offer PIPELINING, as the
# floor's smtp-source does not use it.
#
# Builds nothing: $BUILD (default build/) must hold studyshare-notify and
# studyshare (the CLI seals the jobs, as producers do, before the timing).
# Needs redis-server, python3, Debian's /usr/bin/python3 with aiosmtpd (for
# one sample mail) and postfix's smtp-sink and smtp-source: when those are
# missing the script installs Debian's postfix package (as root) and stops
# the mail server the package may have started, so nothing stays on port 25.
# Everything else runs on free loopback ports in a temporary directory and
# is stopped on exit.  See bench/README.md ("notify") for what each row
# means.  About 20 s.
#
#   BUILD=build-other bash bench/notify_bench.sh
#   BENCH_MAILS=20000 bash bench/notify_bench.sh    # longer runs, steadier
set -eEuo pipefail

cd "$(dirname "$0")/.."
BENCH_NAME=notify-bench
MAILS=${BENCH_MAILS:-10000}
SLOTS=4          # --concurrency of each worker, and smtp-source's sessions
GOAL_RATIO=0.50  # one worker / floor, at least
FROM=noreply@studyshare.test
# shellcheck source=bench/lib.sh
. bench/lib.sh

need_bins "build first" studyshare-notify studyshare
need_tools redis-server python3 curl
# Jobs are sealed under the mail key that producers and notify share.
export STUDYSHARE_MAIL_KEY=bench-mail-key-0123456789abcdef0123456789

# postfix's test tools; the package's own mail server must not stay up.
if ! command -v smtp-sink >/dev/null || ! command -v smtp-source >/dev/null; then
	PATH=$PATH:/usr/sbin
fi
if ! command -v smtp-sink >/dev/null || ! command -v smtp-source >/dev/null; then
	echo "notify-bench: installing postfix for smtp-sink and smtp-source" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null
	PATH=$PATH:/usr/sbin
fi
if command -v postfix >/dev/null && postfix status >/dev/null 2>&1; then
	echo "notify-bench: stopping the postfix mail server the package started" >&2
	postfix stop >/dev/null 2>&1 || true
fi

bench_begin

# The Python side: pushing jobs and timing the drain, stdlib only; the CLI
# seals the jobs (stage) before the timed run pushes their bytes.
cat >"$TMP/q.py" <<'PY'
import json, os, socket, subprocess, sys, time
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "integration"))
import mp

def enc(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)

class R:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")
    def read(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t in b"+-":
            return rest.decode()
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        n = int(rest)
        return None if n < 0 else [self.read() for _ in range(n)]
    def cmd(self, *a):
        self.s.sendall(enc(*a))
        return self.read()

VARS = {"sharer_name": "Dr. Zoë Müller", "url": "https://studyshare.example/g/"
        "Zm9vYmFyYmF6cXV1eDEyMzQ1Njc4OTA", "message": "Here are the images "
        "of the CT we discussed this morning.\nBest regards",
        "expires_at": "2026-12-01 12:00 UTC"}

def push(port, n):
    """Seals n jobs and XADDs them to notify:jobs (studyshare mail push)."""
    lines = "".join(json.dumps({"template": "guestlink.recipient",
                                "to": "recipient%d@example.org" % i, "vars": VARS}) + "\n"
                    for i in range(n))
    subprocess.run([os.environ["CLI"], "mail", "push", "--redis", "127.0.0.1:%d" % port],
                   input=lines.encode(), stdout=subprocess.DEVNULL, check=True)

cmd, port = sys.argv[1], int(sys.argv[2])
r = R(port)
if cmd == "ping":
    r.cmd("PING")
elif cmd == "flush":
    r.cmd("FLUSHALL")
elif cmd == "one":
    push(port, 1)
elif cmd == "stage":
    # With no worker running: seal the jobs, keep their bytes, empty the
    # stream again.
    push(port, int(sys.argv[3]))
    jobs = [f[1] for _id, f in r.cmd("XRANGE", "notify:jobs", "-", "+")]
    r.cmd("DEL", "notify:jobs")
    with open(sys.argv[4], "wb") as f:
        f.write(mp.pack(jobs))
elif cmd == "run":
    n = int(sys.argv[3])
    with open(sys.argv[4], "rb") as f:
        jobs = mp.unpack(f.read())
    assert len(jobs) == n
    data = b"".join(enc("XADD", "notify:jobs", "*", "job", j) for j in jobs)
    t0 = time.monotonic()
    r.s.sendall(data)
    for _ in range(n):
        r.read()
    while True:
        if r.cmd("XLEN", "notify:jobs") == 0 and \
                r.cmd("XPENDING", "notify:jobs", "notify")[0] == 0:
            break
        time.sleep(0.005)
    print("%.3f" % (time.monotonic() - t0))
PY

REDIS_PORT=$(free_port)
SINK_PORT=$(free_port)
PLAIN_PORT=$(free_port)
CATCH_PORT=$(free_port)

echo "notify-bench: $(nproc) cores, build $BUILD, $MAILS mails per run," \
	"$SLOTS slots per worker" >&2

PERSIST=$(redis_persistence)
echo "notify-bench: Redis AOF: $BENCH_REDIS_AOF" >&2
# shellcheck disable=SC2086 # options, split on purpose
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" $PERSIST \
	--dir "$TMP" >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
wait_until redis python3 "$TMP/q.py" ping "$REDIS_PORT"

export CLI=$BUILD/studyshare

# start_workers N SMTP_PORT: N notify processes; their pids in WPIDS.
start_workers() {
	local n=$1 port=$2 admin
	WPIDS=()
	WADMIN=()
	for _ in $(seq "$n"); do
		admin=$(free_port)
		STUDYSHARE_REDIS_ADDR=127.0.0.1:$REDIS_PORT \
			STUDYSHARE_ADMIN_ADDR=127.0.0.1:$admin \
			STUDYSHARE_SMTP_URL=smtp://127.0.0.1:$port \
			STUDYSHARE_SMTP_STARTTLS=none \
			STUDYSHARE_FROM="studyshare <$FROM>" \
			STUDYSHARE_CONCURRENCY=$SLOTS \
			STUDYSHARE_LOG_LEVEL=warn \
			"$BUILD/studyshare-notify" 2>>"$TMP/notify.log" &
		WPIDS+=($!)
		WADMIN+=("$admin")
		PIDS+=($!)
	done
	for admin in "${WADMIN[@]}"; do
		wait_until notify curl -fsS "http://127.0.0.1:$admin/readyz"
	done
}

# sum_metric NAME: the sum of a metric over the running workers.
sum_metric() {
	local admin total=0 v
	for admin in "${WADMIN[@]}"; do
		v=$(curl -fsS "http://127.0.0.1:$admin/metrics" |
			awk -v m="$1" '$1 == m { print $2 }')
		total=$(calc "$total + ${v:-0}")
	done
	echo "$total"
}

# 1. One real mail, rendered by notify, as smtp-source's message.
mkdir -p "$TMP/mail"
/usr/bin/python3 tests/integration/smtp_catcher.py --port "$CATCH_PORT" \
	--dir "$TMP/mail" >"$TMP/catcher.log" 2>&1 &
CATCHER=$!
PIDS+=("$CATCHER")
wait_until catcher grep -q ready "$TMP/catcher.log"
start_workers 1 "$CATCH_PORT"
python3 "$TMP/q.py" one "$REDIS_PORT"
wait_until "a sample mail" sh -c "ls '$TMP'/mail/*.eml"
stop_pids "${WPIDS[@]}" "$CATCHER"
# Without the catcher's delivery lines; smtp-source adds CRLF per line.
sed -e '1,2d' -e 's/\r$//' "$TMP"/mail/*.eml >"$TMP/sample.eml"
MSG_BYTES=$(wc -c <"$TMP"/mail/*.eml)

# 2. The sink, and the floor: smtp-source with as many sessions as one
#    worker has slots, reusing its connections (-d) as notify does.
smtp-sink -u nobody -m 1024 "127.0.0.1:$SINK_PORT" 1024 \
	>"$TMP/sink.log" 2>&1 &
PIDS+=($!)
wait_until smtp-sink python3 -c "import socket; socket.create_connection(('127.0.0.1', $SINK_PORT))"
# The same sink without PIPELINING (-p): one command per round trip, as
# smtp-source speaks (it has no pipelining).
smtp-sink -p -u nobody -m 1024 "127.0.0.1:$PLAIN_PORT" 1024 \
	>"$TMP/sink-plain.log" 2>&1 &
PIDS+=($!)
wait_until smtp-sink python3 -c "import socket; socket.create_connection(('127.0.0.1', $PLAIN_PORT))"
# floor_run: smtp-source's mails/s, once.
floor_run() {
	local t0 t1
	t0=$(date +%s.%N)
	smtp-source -s "$SLOTS" -d -m "$MAILS" -F "$TMP/sample.eml" -f "$FROM" \
		-t someone@example.org "127.0.0.1:$SINK_PORT"
	t1=$(date +%s.%N)
	calc "round($MAILS / ($t1 - $t0))"
}
FLOOR1=$(floor_run)

# 3. notify with 1, 2 and 4 workers, each run from a full queue to empty;
#    then 1 worker against the sink without PIPELINING ("1p").
declare -A RATE
for run in 1 2 4 1p; do
	n=${run%p}
	port=$SINK_PORT
	[ "$run" = 1p ] && port=$PLAIN_PORT
	python3 "$TMP/q.py" flush "$REDIS_PORT"
	python3 "$TMP/q.py" stage "$REDIS_PORT" "$MAILS" "$TMP/jobs.mp"
	start_workers "$n" "$port"
	secs=$(python3 "$TMP/q.py" run "$REDIS_PORT" "$MAILS" "$TMP/jobs.mp")
	sent=$(sum_metric studyshare_notify_sent_total)
	dead=$(sum_metric studyshare_notify_dead_total)
	stop_pids "${WPIDS[@]}"
	if [ "$(calc "int($sent)")" != "$MAILS" ] || [ "$(calc "int($dead)")" != 0 ]; then
		echo "notify-bench: $n worker(s) sent $sent and dead-lettered $dead of $MAILS" >&2
		KEEP=1
		exit 1
	fi
	RATE[$run]=$(calc "round($MAILS / $secs)")
	echo "notify-bench: $n worker(s), sink port $port: $MAILS mails in $secs s" >&2
done

# The floor again after the notify runs: the faster of the two is the
# floor (a busy moment of the machine must not lower it).
FLOOR2=$(floor_run)
FLOOR=$(calc "max($FLOOR1, $FLOOR2)")
echo "notify-bench: floor $FLOOR1 before, $FLOOR2 after the notify runs" >&2

row() {
	printf '%-42s %-9s %-9s %-6s %-8s %s\n' "$@"
}
verdict() {
	[ "$(calc "$1 >= $2")" = True ] && echo PASS || echo MISS
}
row measurement mails/s floor ratio goal result
row "floor: smtp-source -> smtp-sink, $SLOTS sess" "$FLOOR" - - - -
for n in 1 2 4; do
	ratio=$(calc "round(${RATE[$n]} / $FLOOR, 2)")
	if [ "$n" = 1 ]; then
		row "notify, 1 worker x $SLOTS slots" "${RATE[1]}" "$FLOOR" "$ratio" \
			">= $GOAL_RATIO" "$(verdict "$ratio" "$GOAL_RATIO")"
	else
		row "notify, $n workers x $SLOTS slots" "${RATE[$n]}" "$FLOOR" "$ratio" - -
	fi
done
row "notify, 1 worker, sink without PIPELINING" "${RATE[1p]}" "$FLOOR" \
	"$(calc "round(${RATE[1p]} / $FLOOR, 2)")" - -
echo "($(nproc) cores; one mail is $MSG_BYTES bytes, guestlink.recipient)"
