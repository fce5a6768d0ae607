#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need
# (redis-server and redis-cli, from Debian's packages), then runs every test of
# every crate. Redis tests start and stop their own servers on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "scripts/test.sh: installing ${need_apt[*]} (Debian packages)" >&2
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # The package starts a server on 6379; the tests never use it, so stop it.
    if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop redis-server >/dev/null 2>&1 || true; fi
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "scripts/test.sh: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi

cargo test --workspace --all-features --locked "$@"
