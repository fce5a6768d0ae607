#!/usr/bin/env bash
# Trace replay throughput: a generated 1,000,000-line combined access log (api-mix:
# 10,000 Zipf users, five routes), timed four ways on the same file:
#
#   1. wc -l                                   (reading the bytes: the floor)
#   2. zcat of the gzipped log > /dev/null     (decompressing it)
#   3. GoAccess --log-format=COMBINED          (the log analyser people already use)
#   4. ratelab simulate --trace, all six algorithms and both exact references,
#      pinned to one core (lines/s per core), on all cores, and from the .gz
#
#   5. the README's sweep picture from the same log: every algorithm at limits
#      10..200/10 and bursts 1x,2x,4x, drawn to docs/img/trace-sweep.png (+ .svg),
#      the full report in bench/trace-sweep/
#
# Reports seconds and lines/s as a Markdown table on stdout and in $OUT.
# Environment: LINES (default 1000000), ROUNDS (default 3; the fastest round counts),
# OUT (file for the table; default bench/trace.md), SWEEP (default 1; 0 skips step 5),
# RATELAB (binary; default: a release build).
set -euo pipefail
cd "$(dirname "$0")/.."

LINES=${LINES:-1000000}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-bench/trace.md}
SWEEP=${SWEEP:-1}
mkdir -p "$(dirname "$OUT")"

if ! command -v goaccess >/dev/null 2>&1; then
    echo "bench-trace: installing goaccess (Debian package)" >&2
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends goaccess >/dev/null
fi
if [ -z "${RATELAB:-}" ]; then
    echo "bench-trace: building ratelab (release)" >&2
    cargo build --release --quiet -p ratelab
    RATELAB="${CARGO_TARGET_DIR:-target}/release/ratelab"
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$RATELAB" trace generate --workload api-mix --format combined | head -n "$LINES" >"$WORK/access.log" || true
got=$(wc -l <"$WORK/access.log")
[ "$got" -eq "$LINES" ] || { echo "bench-trace: generated $got lines, wanted $LINES" >&2; exit 1; }
gzip -k -1 "$WORK/access.log"
"$RATELAB" load --emit-routes gcra --workload api-mix >"$WORK/gateway.toml"
bytes=$(stat -c %s "$WORK/access.log")
threads=$(nproc)

# Fastest of $ROUNDS wall-clock runs of "$@", in seconds.
best() {
    local best=""
    for _ in $(seq "$ROUNDS"); do
        local t0 t1 s
        t0=$(date +%s.%N)
        "$@" >/dev/null 2>&1
        t1=$(date +%s.%N)
        s=$(echo "$t1 - $t0" | bc -l)
        if [ -z "$best" ] || [ "$(echo "$s < $best" | bc -l)" -eq 1 ]; then best=$s; fi
    done
    printf '%.3f' "$best"
}

row() {
    local name=$1 secs=$2
    printf '| %s | %s | %s |\n' "$name" "$secs" "$(echo "$LINES / $secs" | bc -l | xargs printf '%.0f')"
}

{
    echo "Trace replay: $LINES combined lines ($((bytes / 1000000)) MB), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
    echo
    echo "| what | seconds | lines/s |"
    echo "|---|---:|---:|"
    row "wc -l" "$(best wc -l "$WORK/access.log")"
    row "zcat (gzip -1)" "$(best sh -c "zcat '$WORK/access.log.gz' >/dev/null")"
    row "GoAccess $(goaccess --version | head -n1 | awk '{print $3}' | sed 's/\.$//')" \
        "$(best goaccess "$WORK/access.log" --log-format=COMBINED --no-progress -o "$WORK/goaccess.json")"
    row "ratelab simulate --trace, one core (taskset -c 0)" \
        "$(best taskset -c 0 "$RATELAB" simulate --trace "$WORK/access.log" --config "$WORK/gateway.toml" --threads 1 --no-report -o "$WORK/out")"
    row "ratelab simulate --trace, $threads threads" \
        "$(best "$RATELAB" simulate --trace "$WORK/access.log" --config "$WORK/gateway.toml" --threads "$threads" --no-report -o "$WORK/out")"
    row "ratelab simulate --trace, .gz, $threads threads" \
        "$(best "$RATELAB" simulate --trace "$WORK/access.log.gz" --config "$WORK/gateway.toml" --threads "$threads" --no-report -o "$WORK/out")"
} | tee "$OUT"

if [ "$SWEEP" = 1 ]; then
    echo "bench-trace: sweep (limit=10..200/10, burst=1x,2x,4x) into bench/trace-sweep" >&2
    rm -rf bench/trace-sweep
    "$RATELAB" simulate --trace "$WORK/access.log" --config "$WORK/gateway.toml" \
        --sweep "limit=10..200/10" --sweep "burst=1x,2x,4x" --quiet -o bench/trace-sweep
    mkdir -p docs/img
    cp bench/trace-sweep/sweep.png docs/img/trace-sweep.png
    if [ -f bench/trace-sweep/sweep.svg ]; then cp bench/trace-sweep/sweep.svg docs/img/trace-sweep.svg; fi
    echo "bench-trace: wrote docs/img/trace-sweep.png and bench/trace-sweep/report.md" >&2
fi
