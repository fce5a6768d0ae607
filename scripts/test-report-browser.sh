#!/usr/bin/env bash
# Opens a report.html in headless Chromium and checks it as a reader's browser sees it:
# the page's script ran (it marks <html data-ready="1">), no console error was logged,
# and at a phone's width (390 px) the page does not scroll sideways. Saves screenshots.
#
#   scripts/test-report-browser.sh REPORT.html [SCREENSHOT.png]
#
# Installs Debian's `chromium` when missing (as root, or with sudo). Exits non-zero,
# saying why, when a check fails.
set -euo pipefail

html=${1:?usage: scripts/test-report-browser.sh REPORT.html [SCREENSHOT.png]}
shot=${2:-}
[ -f "$html" ] || { echo "test-report-browser: no such file: $html" >&2; exit 2; }

browser=""
for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
    echo "test-report-browser: installing chromium (Debian package)" >&2
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
    browser=chromium
fi

url="file://$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
work=$(mktemp -d /tmp/ratelab-browser.XXXXXX)
trap 'rm -rf "$work"' EXIT

# One profile per run, no network, no first-run UI; logging to stderr shows the page's
# console messages (":CONSOLE" lines), which the checks below read.
run() { # window-size, extra args...
    local size=$1
    shift
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-background-networking --disable-extensions --disable-sync \
        --user-data-dir="$work/profile" --enable-logging=stderr --v=0 \
        --window-size="$size" --virtual-time-budget=5000 "$@" "$url"
}

fail=0
check() { # name, dom file, log file
    local name=$1 dom=$2 log=$3
    if ! grep -q 'data-ready="1"' "$dom"; then
        echo "test-report-browser: $name: the page's script did not run to its end" >&2
        fail=1
    fi
    # Chromium logs every console message and uncaught exception as a ":CONSOLE" line,
    # whatever its level; the report's script logs nothing, so any such line is an error.
    if grep -qE ':CONSOLE|Uncaught' "$log"; then
        echo "test-report-browser: $name: console messages:" >&2
        grep -E ':CONSOLE|Uncaught' "$log" >&2
        fail=1
    fi
}

run 1280,2000 --dump-dom >"$work/desktop.html" 2>"$work/desktop.log" || true
check desktop "$work/desktop.html" "$work/desktop.log"

run 390,844 --dump-dom >"$work/phone.html" 2>"$work/phone.log" || true
check phone "$work/phone.html" "$work/phone.log"
if ! grep -q 'data-fits="true"' "$work/phone.html"; then
    echo "test-report-browser: phone: the page is wider than a 390 px window" >&2
    fail=1
fi

if [ -n "$shot" ]; then
    mkdir -p "$(dirname "$shot")"
    shot_abs="$(cd "$(dirname "$shot")" && pwd)/$(basename "$shot")"
    run 1280,1800 --hide-scrollbars --screenshot="$shot_abs" >/dev/null 2>"$work/shot.log" || true
    if [ ! -s "$shot_abs" ]; then
        echo "test-report-browser: no screenshot written to $shot" >&2
        tail -n 20 "$work/shot.log" >&2
        fail=1
    fi
fi

if [ "$fail" -ne 0 ]; then
    echo "test-report-browser: FAILED on $html" >&2
    exit 1
fi
echo "test-report-browser: $html opens in $browser without console errors${shot:+; screenshot $shot}"
