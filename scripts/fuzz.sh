#!/usr/bin/env bash
# The fuzz campaign (cargo-fuzz, libFuzzer): every target in fuzz/fuzz_targets, one at
# a time, each for SECONDS of wall time (default 600), starting from the committed
# corpus in fuzz/corpus/TARGET. Stops at the first crash (its input lands in
# fuzz/artifacts/TARGET/) and exits non-zero; prints executions, coverage and crashes
# per target as a Markdown table (and writes it to $OUT if set).
#
#   scripts/fuzz.sh                      # all targets, 10 minutes each
#   SECONDS_PER_TARGET=60 scripts/fuzz.sh config codec
#   MINIMISE=1 scripts/fuzz.sh           # afterwards, minimise the corpus in place
#
# Installs the nightly toolchain and cargo-fuzz when missing. Builds in
# $CARGO_TARGET_DIR (default fuzz/target), never in the workspace's. The lua_args
# target needs a Redis server: this script starts one on a free loopback port and
# stops it on exit. Runs under `nice -n 19` so that it yields to everything else.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_PER_TARGET=${SECONDS_PER_TARGET:-600}
MAX_LEN=${MAX_LEN:-4096}
OUT=${OUT:-}
MINIMISE=${MINIMISE:-0}

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: installing the nightly toolchain" >&2
    rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    nice -n 19 cargo install cargo-fuzz --locked
fi
command -v redis-server >/dev/null || { echo "fuzz: needs redis-server (apt-get install redis-server)" >&2; exit 1; }

# The workspace's dependency versions, plus the fuzzer's own.
cp ../Cargo.lock Cargo.lock

TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || mapfile -t TARGETS < <(cargo +nightly fuzz list)

WORK=$(mktemp -d /tmp/ratelab-fuzz.XXXXXX)
REDIS_PID=
cleanup() {
    [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize no --logfile "$WORK/redis.log" --dir "$WORK" &
REDIS_PID=$!
for _ in $(seq 1 100); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done
export RATELAB_FUZZ_REDIS="redis://127.0.0.1:$REDIS_PORT/"

echo "fuzz: building ${TARGETS[*]}" >&2
for t in "${TARGETS[@]}"; do
    nice -n 19 cargo +nightly fuzz build -O "$t" >&2
done

table="| target | duration (s) | executions | exec/s | coverage (edges) | features | corpus files | crashes |
|---|---:|---:|---:|---:|---:|---:|---:|"
status=0
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="$WORK/$t.log"
    echo "fuzz: $t for ${SECONDS_PER_TARGET}s" >&2
    start=$(date +%s)
    crashes=0
    nice -n 19 cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -max_len="$MAX_LEN" -timeout=30 \
        -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1 || { crashes=1; status=1; }
    took=$(( $(date +%s) - start ))
    execs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log" | tail -1)
    rate=$(awk '/stat::average_exec_per_sec/ { print $2 }' "$log" | tail -1)
    # The last status line: "#N  DONE  cov: C ft: F corp: K/..."
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{ print $2 }')
    ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | awk '{ print $2 }')
    files=$(find "corpus/$t" -type f | wc -l)
    table="$table
| $t | $took | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | $files | $crashes |"
    if [ "$crashes" -ne 0 ]; then
        echo "fuzz: $t FAILED; its log follows, the input is in fuzz/artifacts/$t/" >&2
        tail -60 "$log" >&2
        break
    fi
    if [ "$MINIMISE" = 1 ]; then
        echo "fuzz: minimising corpus/$t" >&2
        mkdir -p "$WORK/min-$t"
        nice -n 19 cargo +nightly fuzz cmin -O "$t" "corpus/$t" -- -max_len="$MAX_LEN" >"$WORK/cmin-$t.log" 2>&1
    fi
done

echo "$table"
[ -z "$OUT" ] || echo "$table" >"$OUT"
exit "$status"
