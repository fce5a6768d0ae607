#!/usr/bin/env bash
# Trace replay cost in instructions per log line (load-independent, valgrind's
# callgrind): a generated api-mix combined log of LINES lines (default 50000) and of
# 1,000 lines are replayed through all six algorithms and both references on one
# thread; the difference over the difference in lines is the cost of one line
# (reading, parsing, identity, route, reorder window and every decision), start-up
# and results excluded.
#
# Environment: LINES (default 50000), RATELAB (binary; default: a release build
# without LTO, which is what callgrind needs to attribute functions), ANNOTATE=1 to
# print the top functions of the long run.
set -euo pipefail
cd "$(dirname "$0")/.."

LINES=${LINES:-50000}
SHORT=1000
if [ -z "${RATELAB:-}" ]; then
    echo "callgrind-trace: building ratelab (release, no LTO)" >&2
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        cargo build --release --quiet -p ratelab
    RATELAB="${CARGO_TARGET_DIR:-target}/release/ratelab"
fi
command -v valgrind >/dev/null || { echo "callgrind-trace: valgrind is not installed" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$RATELAB" trace generate --workload api-mix --format combined | head -n "$LINES" >"$WORK/long.log" || true
head -n "$SHORT" "$WORK/long.log" >"$WORK/short.log"
"$RATELAB" load --emit-routes gcra --workload api-mix >"$WORK/gateway.toml"

# Total instructions (every thread) of one replay of "$1".
count() {
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$2" \
        "$RATELAB" simulate --trace "$1" --config "$WORK/gateway.toml" --threads 1 \
        --no-report --quiet -o "$WORK/out.$2" >/dev/null 2>"$WORK/valgrind.$2"
    local total=0 f
    for f in "$WORK"/cg."$2"*; do
        total=$((total + $(grep -m1 '^summary:\|^totals:' "$f" | awk '{print $2}')))
    done
    echo "$total"
}

long=$(count "$WORK/long.log" long)
short=$(count "$WORK/short.log" short)
per_line=$(echo "($long - $short) / ($LINES - $SHORT)" | bc -l)
printf 'trace replay, combined, api-mix, six algorithms + references, one thread: %.0f instructions per line (%d lines: %d; %d lines: %d)\n' \
    "$per_line" "$LINES" "$long" "$SHORT" "$short"
if [ "${ANNOTATE:-0}" = 1 ]; then
    callgrind_annotate --inclusive=no "$WORK"/cg.long* 2>/dev/null | sed -n '1,60p'
fi
