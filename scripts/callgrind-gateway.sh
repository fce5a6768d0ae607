#!/usr/bin/env bash
# Instructions per request of the ratelab gateway and of nginx + limit_req, under
# callgrind: load-independent, so it proves a hot-path change on a busy machine where
# req/s cannot (issue 14.10 / 13.6).
#
# The server under test runs under `valgrind --tool=callgrind` (one worker: the gateway
# with --threads 1, nginx with `master_process off`); the backend runs natively. A
# fixed number of requests (the bench's shape: /api/orders/<n>, 1,000 users in
# x-user-id, every request admitted) is sent over CONNECTIONS keep-alive connections
# by a small Python client; counting is zeroed after a warm-up and dumped after the
# measured requests, so start-up costs are not in the figure.
#
# Usage: scripts/callgrind-gateway.sh [SETUP...]   SETUP: nolimit memory logged nginx
# (default: all; logged = memory + `[log] access` to a file)
# Environment: RATELAB (binary; default: a release build without LTO, with line tables,
# in $CARGO_TARGET_DIR), REQUESTS (default 5000), WARMUP_REQUESTS (default 1000: every user seen once),
# CONNECTIONS (default 16), OUT_DIR (keeps callgrind.out.* for callgrind_annotate).
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-5000}
WARMUP_REQUESTS=${WARMUP_REQUESTS:-1000}
CONNECTIONS=${CONNECTIONS:-16}
SETUPS=("$@")
[ ${#SETUPS[@]} -gt 0 ] || SETUPS=(nolimit memory logged nginx)
for tool in valgrind callgrind_control python3; do
    command -v "$tool" >/dev/null || { echo "callgrind-gateway: needs $tool" >&2; exit 2; }
done
if [ -z "${RATELAB:-}" ]; then
    echo "callgrind-gateway: building ratelab (release, no LTO, line tables)" >&2
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        cargo build --release --quiet -p ratelab
    RATELAB="${CARGO_TARGET_DIR:-target}/release/ratelab"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

WORK=$(mktemp -d /tmp/ratelab-callgrind.XXXXXX)
OUT_DIR=${OUT_DIR:-$WORK}
mkdir -p "$OUT_DIR"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "$OUT_DIR" = "$WORK" ] && echo "callgrind-gateway: callgrind files in $WORK" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
    for _ in $(seq 1 600); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "callgrind-gateway: nothing listens on port $1" >&2
    return 1
}

# The client: N requests over C keep-alive connections, each answer read in full
# (Content-Length or chunked); exits 1 on anything but 200.
cat >"$WORK/drive.py" <<'PY'
import asyncio, sys
port, total, conns, start = (int(a) for a in sys.argv[1:5])
async def one(first, step, count):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    for k in range(count):
        n = start + first + k * step
        w.write(f"GET /api/orders/{n % 97} HTTP/1.1\r\nhost: bench\r\nx-user-id: user-{n % 1000}\r\n\r\n".encode())
        head = await r.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        if status != b"200":
            raise SystemExit(f"status {status!r}")
        length, chunked = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            while True:
                size = int((await r.readuntil(b"\r\n")).split(b";")[0], 16)
                await r.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await r.readexactly(length)
    w.close()
async def main():
    per, extra = divmod(total, conns)
    await asyncio.gather(*(one(c, conns, per + (c < extra)) for c in range(conns)))
asyncio.run(main())
PY

BACKEND_PORT=$(free_port)
"$RATELAB" backend --listen "127.0.0.1:$BACKEND_PORT" --stats-listen 127.0.0.1:0 --threads 1 \
    >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
wait_port "$BACKEND_PORT"

identity='[identity]
trusted_proxies = ["127.0.0.1"]'
limits='[[route]]
path           = "/api/orders/{id}"
algorithm      = "token-bucket"
capacity       = 1000000
refill_per_sec = 1000000'

# measure NAME PORT PID: warm-up, zero, REQUESTS, dump; prints instructions per request.
measure() {
    local name=$1 port=$2 pid=$3 file ir
    wait_port "$port"
    python3 "$WORK/drive.py" "$port" "$WARMUP_REQUESTS" "$CONNECTIONS" 0
    callgrind_control -z "$pid" >/dev/null
    python3 "$WORK/drive.py" "$port" "$REQUESTS" "$CONNECTIONS" "$WARMUP_REQUESTS"
    callgrind_control -d "measured" "$pid" >/dev/null
    sleep 1
    # The dump asked for is the process's first numbered part: callgrind.out.NAME.PID.1
    file="$OUT_DIR/callgrind.out.$name.$pid.1"
    [ -f "$file" ] || { echo "callgrind-gateway: no dump $file" >&2; exit 1; }
    ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$file")
    printf '%s: %s instructions over %s requests = %.0f per request (%s)\n' \
        "$name" "$ir" "$REQUESTS" "$(echo "$ir / $REQUESTS" | bc -l)" "$file"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

for setup in "${SETUPS[@]}"; do
    port=$(free_port)
    case $setup in
    nolimit | memory | logged)
        {
            printf 'backend = "http://127.0.0.1:%s"\n' "$BACKEND_PORT"
            echo "$identity"
            if [ "$setup" = logged ]; then printf '[log]\naccess = "%s"\n' "$WORK/access.jsonl"; fi
            if [ "$setup" != nolimit ]; then echo "$limits"; fi
        } >"$WORK/$setup.toml"
        valgrind --tool=callgrind --callgrind-out-file="$OUT_DIR/callgrind.out.$setup.%p" \
            "$RATELAB" gateway --config "$WORK/$setup.toml" --listen "127.0.0.1:$port" \
            --admin-listen 127.0.0.1:0 --threads 1 >"$WORK/$setup.log" 2>&1 &
        ;;
    nginx)
        mkdir -p "$WORK/nginx"
        cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
master_process off;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx;
    proxy_temp_path $WORK/nginx;
    fastcgi_temp_path $WORK/nginx;
    uwsgi_temp_path $WORK/nginx;
    scgi_temp_path $WORK/nginx;
    limit_req_zone \$http_x_user_id zone=per_user:10m rate=1000000r/s;
    upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 256; }
    server {
        listen 127.0.0.1:$port;
        location / {
            limit_req zone=per_user burst=1000000 nodelay;
            limit_req_status 429;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://backend;
        }
    }
}
CONF
        valgrind --tool=callgrind --callgrind-out-file="$OUT_DIR/callgrind.out.nginx.%p" \
            "$NGINX" -c "$WORK/nginx.conf" -p "$WORK/nginx" >"$WORK/nginx.log" 2>&1 &
        ;;
    *)
        echo "callgrind-gateway: unknown setup $setup (nolimit, memory, logged, nginx)" >&2
        exit 2
        ;;
    esac
    PIDS+=($!)
    measure "$setup" "$port" "$!"
done
