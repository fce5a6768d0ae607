#!/usr/bin/env bash
# The end-to-end benchmark: regenerates bench/README.md from real HTTP load.
#
# On 127.0.0.1 only, it starts the mock backend, one redis-server, a 3-master Redis
# Cluster, and for every run 1 (memory store) or 3 (Redis, Redis Cluster) gateway
# processes; then:
#
#   1. plays the `seed` and `api-mix` workloads, time-scaled, through every algorithm
#      on every store with `ratelab load` (goose), checking each run against the
#      backend's own count;
#   2. replays the same workloads (as played: DIR/workload.toml) in the simulator,
#      for simulated vs measured side by side;
#   3. the failure drill: Redis stopped for 5 s in the middle of a steady phase and
#      restarted, once per on_error policy (fail-open, fail-closed, local);
#   4. the load generator's own ceiling (the open-loop driver and goose, stepping up
#      to 128,000/s against the backend directly) beside wrk on the same target
#      (scripts/ceiling.sh);
#   5. renders bench/README.md and its plots with `ratelab bench-report`.
#
# Everything it starts is stopped on exit. The machine has 2 cores, shared by the
# load generator, the gateways, Redis and the backend: absolute numbers are this
# machine's, and the report says where the load generator, not the gateway, was the
# limit. About 7 minutes on 2 cores.
#
# Environment: OUT (default bench), RATELAB (binary; default: a release build),
# SEED_TIME_SCALE (0.04), MIX_TIME_SCALE (0.04), MIX_RATE_SCALE (0.005),
# ALGORITHMS, STORES, WORKLOADS, DRILL_POLICIES (space-separated subsets), QUICK=1
# (a smoke test: one algorithm, short workloads, one drill).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-bench}
SEED_TIME_SCALE=${SEED_TIME_SCALE:-0.04}
MIX_TIME_SCALE=${MIX_TIME_SCALE:-0.04}
MIX_RATE_SCALE=${MIX_RATE_SCALE:-0.005}
ALGORITHMS=${ALGORITHMS-"fixed-window sliding-log sliding-window token-bucket gcra"}
STORES=${STORES-"memory redis redis-cluster"}
WORKLOADS=${WORKLOADS-"seed api-mix"}
DRILL_POLICIES=${DRILL_POLICIES-"fail-open fail-closed local"}
if [ "${QUICK:-0}" = 1 ]; then
    ALGORITHMS=${QUICK_ALGORITHMS:-"token-bucket"}
    SEED_TIME_SCALE=0.03
    MIX_TIME_SCALE=0.02
    MIX_RATE_SCALE=0.001
    DRILL_POLICIES=${QUICK_DRILL_POLICIES:-"fail-open"}
fi

log() { printf 'bench: %s\n' "$*" >&2; }

# Progress: `step WHAT` counts run k of STEPS_TOTAL and says about how long is left,
# from the mean time of the steps done so far (they are of similar length).
STEP=0
STEPS_TOTAL=0
STEPS_STARTED=$(date +%s)
step() {
    local now elapsed left=""
    STEP=$((STEP + 1))
    now=$(date +%s)
    elapsed=$((now - STEPS_STARTED))
    if [ "$STEP" -gt 1 ]; then
        left=$(( elapsed * (STEPS_TOTAL - STEP + 1) / (STEP - 1) ))
        left=$(printf ', about %dm%02ds left' $((left / 60)) $((left % 60)))
    fi
    log "[$STEP/$STEPS_TOTAL, $((elapsed / 60))m$(printf '%02d' $((elapsed % 60)))s$left] $*"
}
count_words() { set -- $1; echo $#; }

# --- what the benchmark needs, from Debian's packages -------------------------------
need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]} (Debian packages)"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # The package may start a server on 6379; the benchmark never uses it.
    if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop redis-server >/dev/null 2>&1 || true; fi
fi

if [ -z "${RATELAB:-}" ]; then
    log "building ratelab (release)"
    cargo build --release --quiet -p ratelab
    RATELAB="${CARGO_TARGET_DIR:-target}/release/ratelab"
fi

WORK=$(mktemp -d /tmp/ratelab-bench.XXXXXX)
PIDS=()
GATEWAYS=()
cleanup() {
    local pid
    for pid in "${GATEWAYS[@]}" "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # Redis servers started by start_redis are not this shell's children (they come from
    # a command substitution), so `wait` does not wait for them: give each up to 5 s to
    # finish writing its shutdown log, or removing $WORK races it.
    for pid in "${GATEWAYS[@]}" "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    rm -rf "$WORK" 2>/dev/null || { sleep 0.5; rm -rf "$WORK"; }
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A port below 55535 whose cluster bus port (+10000) is free too.
free_cluster_port() {
    python3 - <<'EOF'
import random, socket
for _ in range(200):
    p = random.randint(20000, 50000)
    ok = True
    for q in (p, p + 10000):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", q))
        except OSError:
            ok = False
        finally:
            s.close()
    if ok:
        print(p)
        break
EOF
}

wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    log "nothing listens on port $1"
    return 1
}

start_redis() { # port [extra args...]; prints the pid
    local port=$1
    shift
    # Its output goes to a file: the caller reads the pid through a pipe.
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
        --logfile "$WORK/redis-$port.log" --dir "$WORK" "$@" >>"$WORK/redis-$port.out" 2>&1 &
    echo $!
}

# --- backend, Redis, Redis Cluster --------------------------------------------------
BACKEND_PORT=$(free_port)
BACKEND_STATS_PORT=$(free_port)
"$RATELAB" backend --listen "127.0.0.1:$BACKEND_PORT" --stats-listen "127.0.0.1:$BACKEND_STATS_PORT" \
    --threads 1 >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
BACKEND="http://127.0.0.1:$BACKEND_PORT"
# Its /stats (the ground truth) is on a listener of its own, not on the data port.
BACKEND_STATS="http://127.0.0.1:$BACKEND_STATS_PORT"

REDIS_PORT=$(free_port)
REDIS_PID=$(start_redis "$REDIS_PORT")
PIDS+=("$REDIS_PID")

CLUSTER_PORTS=()
for _ in 1 2 3; do
    port=$(free_cluster_port)
    mkdir -p "$WORK/cluster-$port"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
        --cluster-enabled yes --cluster-config-file "$WORK/cluster-$port/nodes.conf" \
        --cluster-node-timeout 2000 --logfile "$WORK/cluster-$port.log" --dir "$WORK/cluster-$port" &
    PIDS+=($!)
    CLUSTER_PORTS+=("$port")
done
wait_port "$BACKEND_PORT"
wait_port "$REDIS_PORT"
for port in "${CLUSTER_PORTS[@]}"; do wait_port "$port"; done
redis-cli --cluster create "${CLUSTER_PORTS[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >"$WORK/cluster-create.log" 2>&1
for _ in $(seq 1 100); do
    if redis-cli -p "${CLUSTER_PORTS[0]}" cluster info | grep -q 'cluster_state:ok'; then break; fi
    sleep 0.1
done
CLUSTER_URLS=$(printf '"redis://127.0.0.1:%s", ' "${CLUSTER_PORTS[@]}")
CLUSTER_URLS="[${CLUSTER_URLS%, }]"
log "backend $BACKEND, redis :$REDIS_PORT, cluster :${CLUSTER_PORTS[*]}"

# --- gateways -----------------------------------------------------------------------
# The benchmark runs give Redis 200 ms per call (the 2 cores are shared with the load
# generator, so a 50 ms timeout measures CPU contention, not the algorithms); the
# drill uses 50 ms, the gateway's default, because there the timeout is the subject.
store_section() { # store key_prefix on_error timeout_ms
    case $1 in
        memory) printf '[store]\nkind = "memory"\n' ;;
        redis) printf '[store]\nkind = "redis"\nurl = "redis://127.0.0.1:%s"\ntimeout = "%sms"\non_error = "%s"\nkey_prefix = "%s"\n' "$REDIS_PORT" "$4" "$3" "$2" ;;
        redis-cluster) printf '[store]\nkind = "redis-cluster"\nurls = %s\ntimeout = "%sms"\non_error = "%s"\nkey_prefix = "%s"\n' "$CLUSTER_URLS" "$4" "$3" "$2" ;;
    esac
}

TARGETS=""
ADMINS=""
start_gateways() { # config count
    local config=$1 count=$2 port admin urls=() admins=()
    GATEWAYS=()
    for _ in $(seq 1 "$count"); do
        port=$(free_port)
        admin=$(free_port)
        "$RATELAB" gateway --config "$config" --listen "127.0.0.1:$port" \
            --admin-listen "127.0.0.1:$admin" --threads 1 >>"$WORK/gateway.log" 2>&1 &
        GATEWAYS+=($!)
        urls+=("http://127.0.0.1:$port")
        admins+=("http://127.0.0.1:$admin")
        wait_port "$port"
    done
    TARGETS=$(IFS=,; echo "${urls[*]}")
    ADMINS=$(IFS=,; echo "${admins[*]}")
}

# The load generator is on loopback and names each simulated user in x-user-id: it is
# the gateways' trusted proxy (without this, every user would share 127.0.0.1's quota).
identity_section() {
    printf '[identity]\ntrusted_proxies = ["127.0.0.1", "::1"]\n'
}

stop_gateways() {
    for pid in "${GATEWAYS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${GATEWAYS[@]}"; do wait "$pid" 2>/dev/null || true; done
    GATEWAYS=()
}

scales() { # workload -> "--time-scale T --rate-scale R"
    case $1 in
        seed) echo "--time-scale $SEED_TIME_SCALE" ;;
        api-mix) echo "--time-scale $MIX_TIME_SCALE --rate-scale $MIX_RATE_SCALE" ;;
        *) echo "" ;;
    esac
}

# Runs `ratelab load`; a run that ends incomplete (exit 3) is kept: its results say why.
load() {
    local rc=0
    "$RATELAB" load "$@" >>"$WORK/load.log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
        log "ratelab load $* failed (exit $rc):"
        tail -n 20 "$WORK/load.log" >&2
        return 1
    fi
}

RUNS="$OUT/runs"
rm -rf "$RUNS" "$OUT/sim"
mkdir -p "$RUNS"
STARTED=$(date +%s)
# Steps: every (workload, store, algorithm) run, one simulation per workload, one drill
# per policy, the ceiling (scripts/ceiling.sh) and the report.
n_workloads=$(count_words "$WORKLOADS")
STEPS_TOTAL=$(( n_workloads * ($(count_words "$STORES") * $(count_words "$ALGORITHMS") + 1) \
    + $(count_words "$DRILL_POLICIES") + 1 + 1 ))
STEPS_STARTED=$STARTED

# --- 1. every algorithm on every store, seed and api-mix -----------------------------
for workload in $WORKLOADS; do
    # shellcheck disable=SC2046
    for store in $STORES; do
        count=3
        [ "$store" = memory ] && count=1
        for alg in $ALGORITHMS; do
            dir="$RUNS/$workload/$store/$alg"
            mkdir -p "$dir"
            config="$WORK/gw-$workload-$store-$alg.toml"
            {
                printf 'backend = "%s"\n\n' "$BACKEND"
                identity_section
                store_section "$store" "bench:$workload:$alg:$STARTED" fail-open 200
                printf '\n'
                # shellcheck disable=SC2046
                "$RATELAB" load --workload "$workload" $(scales "$workload") --emit-routes "$alg"
            } >"$config"
            start_gateways "$config" "$count"
            step "$workload: $alg on $store ($count gateway(s))"
            # shellcheck disable=SC2046
            load --target "$TARGETS" --admin "$ADMINS" --backend "$BACKEND_STATS" --workload "$workload" $(scales "$workload") \
                --store "$store" --algorithm "$alg" --out "$dir"
            stop_gateways
        done
    done
    # --- 2. the same arrivals in the simulator ---------------------------------------
    played=$(find "$RUNS/$workload" -name workload.toml | head -n 1)
    if [ -n "$played" ]; then
        step "$workload: simulating the workload as played"
        "$RATELAB" simulate --workload "$played" --algorithms all --out "$OUT/sim/$workload" >"$WORK/sim-$workload.log"
    fi
done

# --- 3. the Redis failure drill ------------------------------------------------------
if [ -n "$DRILL_POLICIES" ]; then
    for policy in $DRILL_POLICIES; do
        dir="$RUNS/drill/$policy"
        mkdir -p "$dir"
        config="$WORK/gw-drill-$policy.toml"
        {
            printf 'backend = "%s"\n\n' "$BACKEND"
            identity_section
            store_section redis "bench:drill:$policy:$STARTED" "$policy" 50
            printf '\n'
            "$RATELAB" load --workload scripts/bench/drill.toml --emit-routes token-bucket
        } >"$config"
        start_gateways "$config" 1
        step "drill: token-bucket on Redis, on_error = $policy; Redis down from 8 s to 13 s"
        drill_log="$WORK/drill-$policy.log"
        "$RATELAB" load --target "$TARGETS" --admin "$ADMINS" --backend "$BACKEND_STATS" --workload scripts/bench/drill.toml \
            --store redis --algorithm token-bucket --out "$dir" >"$drill_log" 2>&1 &
        LOAD_PID=$!
        # Time the outage against the schedule's own start, which `ratelab load` prints.
        t0=""
        for _ in $(seq 1 200); do
            t0=$(sed -n 's/.*schedule starts at unix \([0-9.]*\).*/\1/p' "$drill_log")
            [ -n "$t0" ] && break
            sleep 0.05
        done
        [ -n "$t0" ] || { log "drill: ratelab load did not start"; cat "$drill_log" >&2; exit 1; }
        sleep "$(python3 -c 'import sys, time; print(max(0.0, float(sys.argv[1]) + 8 - time.time()))' "$t0")"
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
        down=$(date +%s.%N)
        sleep "$(python3 -c 'import sys, time; print(max(0.0, float(sys.argv[1]) + 13 - time.time()))' "$t0")"
        REDIS_PID=$(start_redis "$REDIS_PORT")
        PIDS+=("$REDIS_PID")
        wait_port "$REDIS_PORT"
        up=$(date +%s.%N)
        rc=0
        wait "$LOAD_PID" || rc=$?
        cat "$drill_log" >>"$WORK/load.log"
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
            log "drill ($policy): ratelab load failed (exit $rc)"
            tail -n 20 "$drill_log" >&2
            exit 1
        fi
        python3 -c "import sys; t0,d,u=map(float,sys.argv[1:]); print(f'{d-t0:.2f} {u-t0:.2f}')" "$t0" "$down" "$up" >"$dir/outage.txt"
        stop_gateways
    done
fi

# --- 4. the load generator's ceiling, beside wrk --------------------------------------
step "ceiling: wrk, the open-loop driver, goose, wrk again, against the backend directly"
BACKEND="$BACKEND" RATELAB="$RATELAB" scripts/ceiling.sh "$RUNS/ceiling" >&2

# --- 5. the report -------------------------------------------------------------------
# Per-run and simulated plots and reports are regenerable from each results.json
# (`ratelab report --in DIR`); the committed report keeps results.json (and the
# workload as played) per run, and the merged plots the README embeds.
mkdir -p "$OUT/sim"
find "$RUNS" "$OUT/sim" \( -name '*.png' -o -name '*.svg' -o -name report.md -o -name report.html \) -delete
step "rendering $OUT/README.md"
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
"$RATELAB" bench-report --dir "$OUT" --elapsed "$(( $(date +%s) - STARTED ))" --commit "$COMMIT"
log "done in $(( $(date +%s) - STARTED )) s: $OUT/README.md"
