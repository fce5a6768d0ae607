#!/usr/bin/env bash
# HTTP benchmark of the ratelab gateway, all on 127.0.0.1, bounded in time:
#
#   1. wrk -> backend                               (direct, the ceiling)
#   2. wrk -> gateway, no limit      -> backend     (the proxy's own cost)
#   3. wrk -> gateway, memory store  -> backend
#   4. wrk -> gateway, memory store, [log] access to a file -> backend
#                                                    (the access log's cost, issue 17.5)
#   5. wrk -> gateway, Redis store   -> backend     (one Redis round trip per request)
#   6. wrk -> nginx + limit_req      -> backend     (the reference)
#
# Every request is admitted (limits far above the offered load, 1,000 users
# spread by a wrk Lua script), so every row measures the cost of checking, not
# the (cheaper) cost of refusing. Reports req/s, p50, p99 and ratios as a
# Markdown table on stdout (and in $OUT if set).
#
# CPU placement: the proxy under test (gateway or nginx) gets one worker on CPU 0;
# wrk (1 thread), the backend (1 thread) and redis-server share CPU 1. On a
# 2-core machine the load generator competes with the backend, so absolute
# numbers are low; the ratios, measured in one run, are the result.
#
# Environment: DURATION (s per run, default 10), WARMUP (s, default 2), ROUNDS
# (default 3; figures are medians over interleaved rounds), CONNECTIONS (default
# 64), OUT (file for the table), RATELAB (binary; default: a release build).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-}

need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx-light)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v taskset >/dev/null 2>&1 || need_apt+=(util-linux)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "bench-gateway: installing ${need_apt[*]} (Debian packages)" >&2
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ -z "${RATELAB:-}" ]; then
    echo "bench-gateway: building ratelab (release)" >&2
    cargo build --release --quiet -p ratelab
    RATELAB="${CARGO_TARGET_DIR:-target}/release/ratelab"
fi

WORK=$(mktemp -d /tmp/ratelab-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "bench-gateway: nothing listens on port $1" >&2
    return 1
}

# --- the backend, Redis -----------------------------------------------------------
BACKEND_PORT=$(free_port)
taskset -c 1 "$RATELAB" backend --listen "127.0.0.1:$BACKEND_PORT" --stats-listen 127.0.0.1:0 \
    --threads 1 >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
BACKEND_PID=$!
REDIS_PORT=$(free_port)
taskset -c 1 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize no --logfile "$WORK/redis.log" --dir "$WORK" &
PIDS+=($!)
wait_port "$BACKEND_PORT"
wait_port "$REDIS_PORT"

# --- gateway configs ----------------------------------------------------------------
limits='
[[route]]
path           = "/api/orders/{id}"
algorithm      = "token-bucket"
capacity       = 1000000
refill_per_sec = 1000000
'
# wrk on loopback names its users in x-user-id: trusted, so each user is its own key as
# in production behind a proxy.
identity='
[identity]
trusted_proxies = ["127.0.0.1"]
'
{ printf 'backend = "http://127.0.0.1:%s"\n' "$BACKEND_PORT"; echo "$identity"; } >"$WORK/nolimit.toml"
{ printf 'backend = "http://127.0.0.1:%s"\n' "$BACKEND_PORT"; echo "$identity"; echo "$limits"; } >"$WORK/memory.toml"
# The memory setup plus one JSON line per request appended to a file (it grows over the
# run, as in production).
{
    printf 'backend = "http://127.0.0.1:%s"\n' "$BACKEND_PORT"
    echo "$identity"
    printf '[log]\naccess = "%s"\n' "$WORK/access.jsonl"
    echo "$limits"
} >"$WORK/logged.toml"
{
    printf 'backend = "http://127.0.0.1:%s"\n' "$BACKEND_PORT"
    echo "$identity"
    printf '[store]\nkind = "redis"\nurl = "redis://127.0.0.1:%s"\ntimeout = "100ms"\non_error = "fail-open"\n' "$REDIS_PORT"
    echo "$limits"
} >"$WORK/redis.toml"

# --- nginx with limit_req -----------------------------------------------------------
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
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
        listen 127.0.0.1:$NGINX_PORT;
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

# --- wrk: 1,000 users, paths /api/orders/<n> -------------------------------------------
cat >"$WORK/users.lua" <<'LUA'
local n = 0
request = function()
    n = n + 1
    local user = n % 1000
    return wrk.format("GET", "/api/orders/" .. (n % 97), { ["x-user-id"] = "user-" .. user })
end
LUA

# CPU time (user + system, in clock ticks) a process has used so far, and its user part.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
user_ticks() { awk '{ print $14 }' "/proc/$1/stat"; }
TICKS=$(getconf CLK_TCK)

# measure NAME URL PID -> appends "name rps p50 p99 non2xx cpu_us user_us" (per request) to
# $WORK/runs, charging PID's CPU time during the run to the requests it served (robust
# to background load, unlike req/s).
measure() {
    local name=$1 url=$2 pid=$3 c0 c1 u0 u1
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -s "$WORK/users.lua" "$url" >/dev/null 2>&1 || true
    c0=$(cpu_ticks "$pid")
    u0=$(user_ticks "$pid")
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/users.lua" "$url" >"$WORK/$name.wrk" 2>&1
    c1=$(cpu_ticks "$pid")
    u1=$(user_ticks "$pid")
    awk -v name="$name" -v ticks=$((c1 - c0)) -v uticks=$((u1 - u0)) -v hz="$TICKS" '
        function ms(v) {
            if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
            if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
            if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
            return v + 0
        }
        /^ +50%/ { p50 = ms($2) }
        /^ +99%/ { p99 = ms($2) }
        /^Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses:/ { bad = $NF }
        / requests in / { n = $1 }
        END { printf "%s %s %s %s %d %.2f %.2f\n", name, rps, p50, p99, bad, (n > 0 ? ticks / hz * 1e6 / n : 0), (n > 0 ? uticks / hz * 1e6 / n : 0) }
    ' "$WORK/$name.wrk" >>"$WORK/runs"
    echo "bench-gateway: round $ROUND: $(tail -n1 "$WORK/runs")" >&2
}

# start_gateway NAME -> GW_PORT[NAME]; every gateway runs for the whole benchmark (idle
# ones cost nothing), so rounds can interleave the setups.
declare -A GW_PORT GW_PID
start_gateway() {
    local port
    port=$(free_port)
    taskset -c 0 "$RATELAB" gateway --config "$WORK/$1.toml" --listen "127.0.0.1:$port" \
        --admin-listen 127.0.0.1:0 --threads 1 \
        >"$WORK/gateway-$1.log" 2>&1 &
    PIDS+=($!)
    GW_PID[$1]=$!
    wait_port "$port"
    GW_PORT[$1]=$port
}
for kind in nolimit memory logged redis; do start_gateway "$kind"; done
taskset -c 0 "$NGINX" -c "$WORK/nginx.conf" -p "$WORK/nginx" >"$WORK/nginx/stdout.log" 2>&1 &
PIDS+=($!)
NGINX_MASTER=$!
wait_port "$NGINX_PORT"
NGINX_WORKER=$(pgrep -P "$NGINX_MASTER" | head -n1)

# Rounds interleave the setups, so a burst of background load hits every setup alike;
# each figure is the median over the rounds.
: >"$WORK/runs"
for ROUND in $(seq 1 "$ROUNDS"); do
    measure direct "http://127.0.0.1:$BACKEND_PORT" "$BACKEND_PID"
    for kind in nolimit memory logged redis; do
        measure "gateway-$kind" "http://127.0.0.1:${GW_PORT[$kind]}" "${GW_PID[$kind]}"
    done
    measure nginx-limit-req "http://127.0.0.1:$NGINX_PORT" "$NGINX_WORKER"
done
# Medians per setup, in first-seen order.
awk '
    { if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 }
      k = ++cnt[$1]; rps[$1, k] = $2; p50[$1, k] = $3; p99[$1, k] = $4; bad[$1] += $5; cpu[$1, k] = $6; usr[$1, k] = $7 }
    function median(arr, name, m,   i, j, t, v) {
        for (i = 1; i <= m; i++) v[i] = arr[name, i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
    }
    END { for (i = 1; i <= n; i++) { s = order[i]; m = cnt[s]
        printf "%s %s %s %s %d %s %s\n", s, median(rps, s, m), median(p50, s, m), median(p99, s, m), bad[s], median(cpu, s, m), median(usr, s, m) } }
' "$WORK/runs" >"$WORK/results"

# --- the table ----------------------------------------------------------------------
table=$(awk -v dur="$DURATION" -v conns="$CONNECTIONS" -v rounds="$ROUNDS" -v warm="$WARMUP" '
    { name[NR] = $1; rps[NR] = $2; p50[NR] = $3; p99[NR] = $4; bad[NR] = $5; cpu[NR] = $6; usr[NR] = $7; idx[$1] = NR }
    END {
        label["direct"] = "direct to backend"
        label["gateway-nolimit"] = "ratelab gateway, no limit"
        label["gateway-memory"] = "ratelab gateway, memory store"
        label["gateway-logged"] = "ratelab gateway, memory store + access log"
        label["gateway-redis"] = "ratelab gateway, Redis store"
        label["nginx-limit-req"] = "nginx + limit_req"
        base = rps[idx["gateway-nolimit"]]
        printf "| setup | req/s | p50 (ms) | p99 (ms) | req/s vs gateway no limit | CPU µs/request (server under test) | of which user | non-2xx |\n"
        printf "|---|---:|---:|---:|---:|---:|---:|---:|\n"
        for (i = 1; i <= NR; i++)
            printf "| %s | %.0f | %.2f | %.2f | %.2fx | %.1f | %.1f | %d |\n", label[name[i]], rps[i], p50[i], p99[i], (base > 0 ? rps[i] / base : 0), cpu[i], usr[i], bad[i]
        m = idx["gateway-memory"]; n = idx["nginx-limit-req"]
        printf "\nmemory store / no limit: **%.2fx** req/s (target >= 0.9x)  \n", rps[m] / base
        printf "memory store / nginx limit_req: **%.2fx** req/s (target >= 1.0x), p99 %.2f ms vs %.2f ms, CPU per request %.2fx  \n", rps[m] / rps[n], p99[m], p99[n], (cpu[n] > 0 ? cpu[m] / cpu[n] : 0)
        l = idx["gateway-logged"]
        if (l) printf "access log / memory store: **%.2fx** req/s (target >= 0.95x), CPU per request %.2fx, p99 %.2f ms vs %.2f ms  \n", rps[l] / rps[m], (cpu[m] > 0 ? cpu[l] / cpu[m] : 0), p99[l], p99[m]
        printf "\nMedians of %d interleaved rounds; wrk 1 thread, %d connections, %d s per run after a %d s warm-up; 1,000 users; every request admitted.  \n", rounds, conns, dur, warm
        printf "CPU µs/request: user + system time of the server under test (the backend for the direct row, the nginx worker) over the requests it served; *of which user*: its user-space part (the rest is the kernel'"'"'s TCP work).  \n"
        printf "Machine: 2 cores shared by everything: the proxy under test on CPU 0 (1 worker), wrk + backend + redis-server on CPU 1.\n"
    }' "$WORK/results")

echo "$table"
if [ -n "$OUT" ]; then echo "$table" >"$OUT"; fi
