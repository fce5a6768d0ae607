#!/usr/bin/env bash
# The load generator's own ceiling beside wrk, against the mock backend on 127.0.0.1:
# wrk (closed loop, 2 threads, 64 connections), then each driver playing the ceiling
# ladder (scripts/bench/ceiling.toml: constant rates stepping up, 2 s each), then wrk
# again; prints each driver's highest held step as a ratio to wrk's mean.
#
#   scripts/ceiling.sh OUT_DIR
#
# Writes OUT_DIR/{wrk-before,wrk-after}.txt and OUT_DIR/{open,goose}/results.json (the
# layout `ratelab bench-report` reads under runs/ceiling). scripts/bench.sh calls it for
# its step 4. The backend, the drivers and wrk share the machine's cores: the report
# says where the machine, not the driver, is the limit.
#
# Environment: RATELAB (binary; default: target/release/ratelab), BACKEND (URL of a
# running `ratelab backend`; default: start one on a free port), DRIVERS (default
# "open goose"), WORKLOAD (default scripts/bench/ceiling.toml), WRK_SECONDS (5),
# THREADS (worker threads of the backend and of the load generator; default: one per
# CPU), GOOSE_USERS (goose users, i.e. connections; default 128: wrk needs 64 to reach
# the ceiling, and goose's per-user cost grows with their number), GOOSE_MINIMAL=1
# (also run goose's own minimal closed-loop test, loadgen's `goose_minimal` example, for
# WRK_SECONDS with GOOSE_USERS users: goose's ceiling without ratelab's pacing).
# For a quick pass: DRIVERS=open and a cheap profile (CARGO_PROFILE_RELEASE_LTO=false
# CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 cargo build --release -p ratelab).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:?usage: scripts/ceiling.sh OUT_DIR}
RATELAB=${RATELAB:-${CARGO_TARGET_DIR:-target}/release/ratelab}
DRIVERS=${DRIVERS:-"open goose"}
WORKLOAD=${WORKLOAD:-scripts/bench/ceiling.toml}
WRK_SECONDS=${WRK_SECONDS:-5}
GOOSE_USERS=${GOOSE_USERS:-128}
GOOSE_MINIMAL=${GOOSE_MINIMAL:-0}
threads=()
if [ -n "${THREADS:-}" ]; then threads=(--threads "$THREADS"); fi
mkdir -p "$OUT"

BACKEND_PID=
cleanup() { if [ -n "$BACKEND_PID" ]; then kill "$BACKEND_PID" 2>/dev/null || true; wait "$BACKEND_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT
if [ -z "${BACKEND:-}" ]; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$RATELAB" backend --listen "127.0.0.1:$port" --stats-listen 127.0.0.1:0 "${threads[@]}" \
        >"$OUT/backend.log" 2>&1 &
    BACKEND_PID=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
        sleep 0.05
    done
    BACKEND="http://127.0.0.1:$port"
fi

wrk_run() {
    wrk -t2 -c64 -d"${WRK_SECONDS}s" --latency "$BACKEND/api/orders" >"$OUT/$1.txt" 2>&1
}

wrk_run wrk-before
for driver in $DRIVERS; do
    rc=0
    users=()
    if [ "$driver" = goose ]; then users=(--users "$GOOSE_USERS"); fi
    "$RATELAB" load --target "$BACKEND" --no-gateway-check --workload "$WORKLOAD" --store none \
        --algorithm token-bucket --driver "$driver" "${threads[@]}" "${users[@]}" --out "$OUT/$driver" \
        >"$OUT/$driver.log" 2>&1 || rc=$?
    # 3: the run stopped early (the driver fell behind): its results are kept.
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
        echo "ceiling: ratelab load --driver $driver failed (exit $rc)" >&2
        tail -n 20 "$OUT/$driver.log" >&2
        exit 1
    fi
done
if [ "$GOOSE_MINIMAL" = 1 ]; then
    minimal=$(dirname "$RATELAB")/examples/goose_minimal
    if [ ! -x "$minimal" ]; then
        cargo build --release -q -p loadgen --features http --example goose_minimal
        minimal=${CARGO_TARGET_DIR:-target}/release/examples/goose_minimal
    fi
    "$minimal" --host "$BACKEND" --users "$GOOSE_USERS" --increase-rate "$GOOSE_USERS" \
        --run-time "${WRK_SECONDS}s" --no-reset-metrics >"$OUT/goose-minimal.txt" 2>&1
fi
wrk_run wrk-after

python3 - "$OUT" "$GOOSE_MINIMAL" $DRIVERS <<'EOF'
import json, re, sys
out, minimal, drivers = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]
def wrk(name):
    m = re.search(r"Requests/sec:\s*([\d.]+)", open(f"{out}/{name}.txt").read())
    return float(m.group(1)) if m else float("nan")
w = [wrk("wrk-before"), wrk("wrk-after")]
mean = sum(w) / len(w)
print(f"wrk: {w[0]:.0f} and {w[1]:.0f} req/s (mean {mean:.0f})")
for d in drivers:
    m = json.load(open(f"{out}/{d}/results.json"))["measurements"][0]
    held = [p["achieved_rate"] for p in m["phases"] if p["held"] and p["name"] != "start"]
    best = max(held, default=0.0)
    # A stopped run sends its backlog late, inside the last phase by send time: that
    # phase can show more sent than it planned, which is no rate the driver kept up.
    most = max((p["achieved_rate"] for p in m["phases"] if p["sent"] <= p["planned"]), default=0.0)
    print(f"{d}: held {best:.0f}/s = {best / mean:.2f}x wrk; most sent {most:.0f}/s = {most / mean:.2f}x wrk")
if minimal:
    # goose's metrics: the request row (GET /api/orders) of its "# reqs" table, req/s.
    text = open(f"{out}/goose-minimal.txt").read()
    m = re.search(r"GET /api/orders\s*\|\s*[\d,]+\s*\|\s*[\d,]+ \([^)]*\)\s*\|\s*([\d,.]+)", text)
    if m:
        rate = float(m.group(1).replace(",", ""))
        print(f"goose minimal (closed loop, no pacing): {rate:.0f}/s = {rate / mean:.2f}x wrk")
    else:
        print("goose minimal: no rate found in goose-minimal.txt")
EOF
