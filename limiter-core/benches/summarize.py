#!/usr/bin/env python3
"""Tables of the `memory` bench's results: ns per check and the ratio to governor.

Usage: python3 limiter-core/benches/summarize.py [--stat fastest|median] [CRITERION_DIR]
CRITERION_DIR defaults to $CARGO_TARGET_DIR/criterion, else target/criterion.

Each cell is a time per check and, in parentheses, that time divided by governor's for
the same keys, key count, threads and scenario, measured in the same run. `fastest`
(the default) is the fastest of criterion's samples, per check: on a machine shared
with other work, interference only ever adds time, and two-thread samples split into
"both threads had a core" and "they took turns"; `median` is criterion's median.
"""

import json
import os
import sys

ALGORITHMS = ["fixed-window", "sliding-log", "sliding-window", "token-bucket", "gcra", "bucketed-window", "governor"]
KEY_COUNTS = ["1", "10000", "1000000"]
KEY_LABELS = {"1": "1 key", "10000": "10k keys", "1000000": "1M keys"}
THREADS = ["1t", "2t"]


STAT = "fastest"


def ns_per_check(root, key_kind, n, scenario, algorithm, threads):
    base = os.path.join(root, f"keyed_{key_kind}_{n}_{scenario}", f"{algorithm}_{threads}", "new")
    try:
        if STAT == "median":
            with open(os.path.join(base, "estimates.json")) as f:
                return json.load(f)["median"]["point_estimate"]
        with open(os.path.join(base, "sample.json")) as f:
            sample = json.load(f)
        return min(t / i for i, t in zip(sample["iters"], sample["times"]))
    except FileNotFoundError:
        return None


def fmt(ns):
    return f"{ns:.0f}" if ns >= 100 else f"{ns:.1f}"


def table(root, key_kind, scenario):
    head = ["algorithm"] + [f"{KEY_LABELS[n]}, {t[0]} thr" for n in KEY_COUNTS for t in THREADS]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for algorithm in ALGORITHMS:
        cells = [algorithm]
        for n in KEY_COUNTS:
            for t in THREADS:
                ns = ns_per_check(root, key_kind, n, scenario, algorithm, t)
                gov = ns_per_check(root, key_kind, n, scenario, "governor", t)
                if ns is None:
                    cells.append("—")
                elif algorithm == "governor" or gov is None:
                    cells.append(fmt(ns))
                else:
                    cells.append(f"{fmt(ns)} ({ns / gov:.2f})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    global STAT
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--stat":
        STAT = args[1]
        args = args[2:]
    if args:
        root = args[0]
    else:
        root = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")
    for key_kind, label in [("u64", "`u64` keys"), ("str", "string keys")]:
        for scenario in ["allowed", "denied"]:
            print(f"**{label}, {scenario}** — ns per check, {STAT} (ratio to governor)\n")
            print(table(root, key_kind, scenario))
            print()
    clock = []
    for name in ["monotonic-clock", "governor-quanta-clock", "std-instant"]:
        path = os.path.join(root, "clock", name, "new", "estimates.json")
        if os.path.exists(path):
            with open(path) as f:
                clock.append(f"{name} {json.load(f)['median']['point_estimate']:.1f} ns")
    if clock:
        print("Clock read: " + ", ".join(clock))


if __name__ == "__main__":
    main()
