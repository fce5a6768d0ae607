#!/usr/bin/env bash
# Soak and fault drill (issue 14.9): steady open-loop load at a fixed rate through two
# ratelab gateways sharing one Redis, for DURATION seconds (default 600), with Redis
# killed and restarted once (at 30% of the run) and the backend stopped and restarted
# once (at 60%). Loopback only; everything it starts is stopped on exit.
#
# Checks (exit 1 when one fails, 2 when the set-up fails):
#   1. memory: each gateway's RSS and open file descriptors (/proc/PID/status VmRSS,
#      /proc/PID/fd), sampled every second and summarised per minute by their median
#      (in-flight connections come and go; the median is the steady level), grow by
#      less than GROWTH_PCT (5%) from the first minute after the warm-up (WARMUP s,
#      default 120) to the last minute;
#   2. ground truth: the requests the backend counted (both backend processes: the first
#      prints its count when it stops, the second answers /stats) equal the requests the
#      clients saw admitted (answered by the backend through a gateway);
#   3. no 5xx and no request without an answer outside the restart windows (from the
#      fault until RECOVERY s, default 10, after the restarted process answers), from
#      the load driver's per-second count of failed requests.
#
# Environment: DURATION, RATE (requests/s over both gateways, default 200), USERS
# (default 500), CONNECTIONS (client connections per gateway, fixed, default 16), WARMUP, SAMPLE_EVERY (s, default 60), GROWTH_PCT, RECOVERY, ON_ERROR (the gateways' Redis failure
# policy, default fail-open), OUT (file for the report), RATELAB (binary; default: a
# debug build of this checkout — this is a correctness run, not a speed figure).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-600}
RATE=${RATE:-200}
USERS=${USERS:-500}
WARMUP=${WARMUP:-120}
GROWTH_PCT=${GROWTH_PCT:-5}
RECOVERY=${RECOVERY:-10}
ON_ERROR=${ON_ERROR:-fail-open}
OUT=${OUT:-}
SAMPLE_EVERY=${SAMPLE_EVERY:-60}
CONNECTIONS=${CONNECTIONS:-16}

command -v redis-server >/dev/null || { echo "soak: needs redis-server" >&2; exit 2; }
command -v redis-cli >/dev/null || { echo "soak: needs redis-cli" >&2; exit 2; }
command -v python3 >/dev/null || { echo "soak: needs python3" >&2; exit 2; }
if [ -z "${RATELAB:-}" ]; then
    echo "soak: building ratelab (debug)" >&2
    cargo build --quiet -p ratelab
    RATELAB="${CARGO_TARGET_DIR:-target}/debug/ratelab"
fi

WORK=$(mktemp -d /tmp/ratelab-soak.XXXXXX)
declare -A PID
cleanup() {
    for name in "${!PID[@]}"; do
        kill "${PID[$name]}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then echo "soak: files kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "soak: nothing listens on port $1" >&2
    return 1
}
now() { date +%s.%N; }
log() { echo "soak: [$(date -u +%H:%M:%S)] $*" >&2; }

REDIS_PORT=$(free_port)
BACKEND_PORT=$(free_port)
STATS_PORT=$(free_port)
start_redis() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize no --logfile "$WORK/redis.log" --dir "$WORK" &
    PID[redis]=$!
    wait_port "$REDIS_PORT"
}
# start_backend N: the Nth backend process (its stdout ends with its count).
start_backend() {
    "$RATELAB" backend --listen "127.0.0.1:$BACKEND_PORT" --stats-listen "127.0.0.1:$STATS_PORT" \
        --threads 1 >"$WORK/backend-$1.out" 2>"$WORK/backend-$1.log" &
    PID[backend]=$!
    wait_port "$BACKEND_PORT"
    wait_port "$STATS_PORT"
}
start_redis
start_backend 1

# --- the workload: one phase at a fixed rate, open loop --------------------------------
cat >"$WORK/soak.toml" <<TOML
name = "soak"
description = "Steady load for the soak drill: $USERS users, $RATE requests/s"
[users]
count = $USERS
[arrivals]
process = "constant"
[[phase]]
name = "steady"
duration = "${DURATION}s"
rate = $RATE
[[endpoint]]
path = "GET /api/orders/{id}"
limit = 20
window = "60s"
burst = 10
TOML
"$RATELAB" load --workload "$WORK/soak.toml" --emit-routes token-bucket >"$WORK/routes.toml"

# Each gateway serves /metrics on an admin listener of its own.
declare -A GW_PORT ADMIN_PORT
for g in 1 2; do
    GW_PORT[$g]=$(free_port)
    ADMIN_PORT[$g]=$(free_port)
    {
        printf 'listen = "127.0.0.1:%s"\nbackend = "http://127.0.0.1:%s"\n' "${GW_PORT[$g]}" "$BACKEND_PORT"
        printf 'admin_listen = "127.0.0.1:%s"\n' "${ADMIN_PORT[$g]}"
        # The load generator is the clients' trusted proxy: its x-user-id is believed.
        printf '[identity]\ntrusted_proxies = ["127.0.0.1/32"]\n'
        printf '[store]\nkind = "redis"\nurl = "redis://127.0.0.1:%s"\ntimeout = "100ms"\non_error = "%s"\n' \
            "$REDIS_PORT" "$ON_ERROR"
        cat "$WORK/routes.toml"
    } >"$WORK/gateway-$g.toml"
    "$RATELAB" gateway --config "$WORK/gateway-$g.toml" --threads 1 >"$WORK/gateway-$g.log" 2>&1 &
    PID[gateway$g]=$!
    wait_port "${GW_PORT[$g]}"
done

# --- samples of each gateway's RSS and open fds, every second ------------------------
sample() { # T -> "t rss1_kb fds1 rss2_kb fds2"
    local row="$1" g p
    for g in 1 2; do
        p=${PID[gateway$g]}
        row="$row $(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status") $(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 | wc -l)"
    done
    echo "$row"
}

# --- the run -----------------------------------------------------------------------
log "load: $RATE req/s for ${DURATION}s over gateways on ports ${GW_PORT[1]}, ${GW_PORT[2]}; Redis $REDIS_PORT, backend $BACKEND_PORT"
T0=$(now)
# A fixed pool of client connections (CONNECTIONS per gateway, never grown): the
# gateways' RSS and descriptors then follow what they keep per request, not how many
# connections the driver opened after a stall of the machine (each one holds a
# descriptor and its buffers in the gateway for the rest of the run, which is what
# stepped both up in the second run of docs/fuzzing.md). A stall makes arrivals late
# instead, and the lag is reported.
"$RATELAB" load --driver open --workload "$WORK/soak.toml" --seed 1 \
    --connections "$CONNECTIONS" --max-in-flight $((CONNECTIONS * 2)) \
    --target "http://127.0.0.1:${GW_PORT[1]},http://127.0.0.1:${GW_PORT[2]}" \
    --admin "http://127.0.0.1:${ADMIN_PORT[1]},http://127.0.0.1:${ADMIN_PORT[2]}" \
    --backend "http://127.0.0.1:$STATS_PORT" --store redis --algorithm token-bucket \
    --out "$WORK/load" --threads 1 >"$WORK/load.out" 2>"$WORK/load.log" &
PID[load]=$!
LOAD_PID=${PID[load]}

sample 0 >"$WORK/samples"
cp "$WORK/samples" "$WORK/idle-before"
REDIS_AT=$((DURATION * 3 / 10))
BACKEND_AT=$((DURATION * 6 / 10))
windows=()
redis_done=0
backend_done=0
while kill -0 "$LOAD_PID" 2>/dev/null; do
    sleep 1
    t=$(awk -v a="$T0" -v b="$(now)" 'BEGIN { printf "%d", b - a }')
    if [ "$redis_done" = 0 ] && [ "$t" -ge "$REDIS_AT" ]; then
        redis_done=1
        from=$(awk -v a="$T0" -v b="$(now)" 'BEGIN { print b - a }')
        log "fault: Redis killed (SIGKILL), restarted in 5 s"
        kill -KILL "${PID[redis]}"
        wait "${PID[redis]}" 2>/dev/null || true
        sleep 5
        start_redis
        to=$(awk -v a="$T0" -v b="$(now)" 'BEGIN { print b - a }')
        windows+=("redis $from $to")
        log "fault: Redis answers again"
    fi
    if [ "$backend_done" = 0 ] && [ "$t" -ge "$BACKEND_AT" ]; then
        backend_done=1
        from=$(awk -v a="$T0" -v b="$(now)" 'BEGIN { print b - a }')
        log "fault: backend stopped (SIGTERM, drains in-flight requests), restarted in 5 s"
        kill -TERM "${PID[backend]}"
        wait "${PID[backend]}" 2>/dev/null || true
        sleep 5
        start_backend 2
        to=$(awk -v a="$T0" -v b="$(now)" 'BEGIN { print b - a }')
        windows+=("backend $from $to")
        log "fault: backend answers again"
    fi
    [ "$t" -lt "$DURATION" ] && sample "$t" >>"$WORK/samples"
done
load_status=0
wait "$LOAD_PID" || load_status=$?
unset 'PID[load]'
log "load finished (exit $load_status)"
sleep 5
sample "$DURATION" >"$WORK/idle-after"
if [ ! -f "$WORK/load/results.json" ]; then
    echo "soak: ratelab load wrote no results" >&2
    tail -20 "$WORK/load.log" >&2
    exit 2
fi

# The backend's count: the first process's, printed when it stopped, plus the second's.
first=$(sed -n 's/.*stopped: \([0-9]*\) requests counted.*/\1/p' "$WORK/backend-1.out" | tail -1)
second=$(curl -s "http://127.0.0.1:$STATS_PORT/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
if [ -z "$first" ]; then
    echo "soak: the first backend did not print its count when it stopped" >&2
    exit 2
fi

printf '%s\n' "${windows[@]}" >"$WORK/windows"
python3 - "$WORK" "$first" "$second" "$WARMUP" "$GROWTH_PCT" "$RECOVERY" "$SAMPLE_EVERY" \
    "$RATE" "$DURATION" "$ON_ERROR" <<'PY' | tee "$WORK/report.md"
import json, sys
work, first, second, warmup, growth_pct, recovery, every, rate, duration, on_error = sys.argv[1:]
first, second, warmup, recovery, every = int(first), int(second), int(warmup), float(recovery), int(every)
growth_pct = float(growth_pct)
r = json.load(open(f"{work}/load/results.json"))
m = r["measurements"][0]
failures = []

print(f"## Soak: {duration} s at {rate} req/s through 2 gateways on one Redis (on_error = {on_error})\n")
print("Loopback only; the machine (2 cores) was shared with other builds and tests during the run, "
      "so rates and latencies here are not performance figures: this is a correctness run.\n")
for p in m["phases"]:
    print(f"Load: {p['sent']} requests sent of {p['planned']} planned, offered {p['offered_rate']:.0f}/s, "
          f"achieved {p['achieved_rate']:.1f}/s, lag p99 {p['lag_ms_p99']:.1f} ms, held: {p['held']}.")
print(f"Responses: {', '.join(f'{k}: {v}' for k, v in sorted(m['statuses'].items()))}.\n")

# 1. memory and fds: per-second samples, each minute summarised by its median
import statistics
samples = [list(map(int, l.split())) for l in open(f"{work}/samples") if l.strip()]
minutes = {}
for row in samples:
    minutes.setdefault(row[0] // every, []).append(row)
rows = [[m] + [int(statistics.median(r[i] for r in rs)) for i in range(1, 5)]
        for m, rs in sorted(minutes.items())]
print(f"| minute (of {every} s) | gateway 1 RSS (MiB) | gateway 1 fds | gateway 2 RSS (MiB) | gateway 2 fds |")
print("|---:|---:|---:|---:|---:|")
for row in rows:
    print(f"| {row[0]} | {row[1]/1024:.1f} | {row[2]} | {row[3]/1024:.1f} | {row[4]} |")
print(f"\n(medians of the per-second samples in each minute)\n")
before = list(map(int, open(f"{work}/idle-before").read().split()))
after = list(map(int, open(f"{work}/idle-after").read().split()))
print(f"- idle, before the load: fds {before[2]} and {before[4]}, RSS {before[1]/1024:.1f} and {before[3]/1024:.1f} MiB; "
      f"5 s after it: fds {after[2]} and {after[4]}, RSS {after[1]/1024:.1f} and {after[3]/1024:.1f} MiB")
base = [row for row in rows if row[0] * every >= warmup]
if len(base) < 2:
    failures.append("too few minutes after the warm-up to judge growth")
else:
    b, last = base[0], base[-1]
    for g, (ri, fi) in enumerate([(1, 2), (3, 4)], start=1):
        for what, i, unit in (("RSS", ri, " KiB"), ("open fds", fi, "")):
            grow = (last[i] - b[i]) / b[i] * 100
            peak = max(row[i] for row in base)
            ok = grow < growth_pct
            print(f"- gateway {g} {what}: minute {b[0]} {b[i]}{unit} -> minute {last[0]} {last[i]}{unit} "
                  f"({grow:+.1f}%, highest minute {peak}{unit}): {'flat' if ok else 'GROWS'}")
            if not ok:
                failures.append(f"gateway {g} {what} grew {grow:.1f}% (limit {growth_pct}%)")

# 2. ground truth
gt = m.get("ground_truth") or {}
client = gt.get("client_admitted")
backend = first + second
ok = client == backend
print(f"- ground truth: backend counted {backend} ({first} before its restart + {second} after), "
      f"clients saw {client} admitted: {'equal' if ok else 'DIFFERENT'}")
if not ok:
    failures.append(f"backend counted {backend}, clients saw {client} admitted")

# 3. errors outside the restart windows
windows = [l.split() for l in open(f"{work}/windows") if l.strip()]
step = m["series"]["step_s"]
errors = m["series"]["errors"]
def in_window(i):
    a, b = i * step, (i + 1) * step
    return any(a < float(to) + recovery and b > float(frm) - 1 for _, frm, to in windows)
inside = sum(e for i, e in enumerate(errors) if in_window(i))
outside = [(i * step, e) for i, e in enumerate(errors) if e and not in_window(i)]
for name, frm, to in windows:
    print(f"- {name} restart: from {float(frm):.1f} s to {float(to):.1f} s after the start "
          f"(window counted to {float(to) + recovery:.1f} s)")
fivexx = sum(v for k, v in m["statuses"].items() if k.startswith("5"))
unanswered = sum(v for k, v in m["statuses"].items() if not k[0].isdigit())
print(f"- failed requests (5xx or no answer; the load driver counts both per second): {inside} inside the "
      f"restart windows, {sum(e for _, e in outside)} outside"
      + (f" (at {', '.join(f'{t:.0f} s: {e}' for t, e in outside[:10])})" if outside else "")
      + f"; over the whole run {fivexx} answers were 5xx and {unanswered} requests got no answer")
if outside:
    failures.append(f"{sum(e for _, e in outside)} requests failed (5xx or no answer) outside the restart windows")

print()
print("Result: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
sys.exit(1 if failures else 0)
PY
status=${PIPESTATUS[0]}
[ -z "$OUT" ] || cp "$WORK/report.md" "$OUT"
exit "$status"
