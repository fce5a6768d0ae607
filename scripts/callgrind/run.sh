#!/usr/bin/env bash
# Instructions per keyed in-memory check (callgrind), every algorithm beside governor:
# u64 and string keys, allowed and denied, one thread, KEYS distinct keys (default
# 10,000). Counts do not depend on the machine's load, so this runs on a busy host where
# benches/memory.rs's timings cannot. Prints a Markdown table (and the raw counts in
# out/). Needs valgrind. Environment: KEYS, ITERS (checks counted per run, default
# 200,000), ALGORITHMS (default: all six and governor), CARGO_TARGET_DIR.
#
# `run.sh limits`: several limits on one request in memory against one limit
# (benches/limits.rs's cases, 10,000 string keys, every check admitted): instructions
# per check and the ratio to `one/gcra` (issue 15.8: two limits at most 2.5×).
set -euo pipefail
cd "$(dirname "$0")"
KEYS=${KEYS:-10000}
ITERS=${ITERS:-200000}
ALGORITHMS=${ALGORITHMS:-"fixed-window sliding-log sliding-window token-bucket gcra bucketed-window governor"}
command -v valgrind >/dev/null || { echo "callgrind: needs valgrind (apt-get install valgrind)" >&2; exit 1; }

cp ../../Cargo.lock Cargo.lock
cargo build --release --quiet
BIN="${CARGO_TARGET_DIR:-target}/release/callgrind-memory"
mkdir -p out

count() { # ARGS... (before KEYS ITERS) -> instructions per check, one decimal
    local name f
    name=$(printf '%s.' "$@" | tr '/+' '__')$KEYS
    f="out/$name.cg"
    valgrind --tool=callgrind --toggle-collect='*timed_*' --callgrind-out-file="$f" \
        "$BIN" "$@" "$KEYS" "$ITERS" >/dev/null 2>"out/$name.log"
    awk -v n="$ITERS" '/^totals:/ { printf "%.1f", $2 / n }' "$f"
}

if [ "${1:-}" = limits ]; then
    CASES="one/gcra set1/gcra set2/gcra+sliding-window set2/token-bucket+fixed-window set3/gcra+sliding-window+fixed-window"
    echo "Instructions per admitted check, several limits in memory, $KEYS string keys (ratio to one/gcra):"
    echo
    echo "| case | instructions | ratio |"
    echo "|---|---:|---:|"
    one=
    for c in $CASES; do
        v=$(count limits "$c")
        one=${one:-$v}
        echo "| $c | $v | $(awk -v v="$v" -v o="$one" 'BEGIN { printf "%.2f", v / o }') |"
    done
    exit 0
fi

declare -A ir
for a in $ALGORITHMS; do
    for k in u64 str; do
        for s in allowed denied; do
            ir[$a.$k.$s]=$(count "$a" "$k" "$s")
        done
    done
done

echo "Instructions per check, $KEYS keys, 1 thread (ratio to governor):"
echo
echo "| algorithm | u64 allowed | u64 denied | string allowed | string denied |"
echo "|---|---:|---:|---:|---:|"
for a in $ALGORITHMS; do
    row="| $a"
    for c in u64.allowed u64.denied str.allowed str.denied; do
        v=${ir[$a.$c]}
        g=${ir[governor.$c]:-}
        if [ "$a" = governor ] || [ -z "$g" ]; then row="$row | $v"
        else row="$row | $v ($(awk -v v="$v" -v g="$g" 'BEGIN { printf "%.2f", v / g }'))"; fi
    done
    echo "$row |"
done
