#!/usr/bin/env bash
# shellcheck disable=SC2317  # the clean-up functions run from the EXIT trap
# Run the mall end to end on this machine and send it a burst of orders:
#   services up -> migrate -> `mall serve` + `mall writer` in the background -> bench.burst.
# On exit (also on failure or Ctrl-C) it stops serve and writer, and stops the services that
# it started itself (none, where they were already running).
#
#   scripts/demo.sh [BURST_ARGS...]        (or: make demo DEMO_ARGS="...")
#
# With DEMO_STAY=1 (make shop) it then adds demo accounts and sales, prints the storefront and
# back-office addresses, and keeps serving until Ctrl-C.
#
# Environment: MALL_DEMO_PORT (8080; another free port is taken when 8080 is busy),
# DEMO_ARGS (extra arguments for bench.burst), and the mall's own MALL_* settings
# (MALL_NAMESPACE defaults to demo, MALL_DATABASE_URL to the mall_demo database).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=.venv
RUN_DIR=.run
STATE=$RUN_DIR/started-services

say() { echo "demo: $*"; }
die() { echo "demo: error: $*" >&2; exit 1; }

[[ -x $VENV/bin/mall ]] || die "$VENV is not set up; run 'make demo' (or 'make install' first)"
mkdir -p "$RUN_DIR"

SERVE_PID=""
WRITER_PID=""
SHOW_LOGS=0
STATE_BEFORE=$(mktemp)
[[ -f $STATE ]] && cp "$STATE" "$STATE_BEFORE"

stop_process() { # NAME PID
    local name=$1 pid=$2 _
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    say "stopping $name"
    # Each runs in its own process group (see start_background): signal the whole group.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name did not stop within 10s; killing it"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

show_logs() {
    local f
    for f in "$RUN_DIR/serve.log" "$RUN_DIR/writer.log"; do
        [[ -s $f ]] || continue
        echo "--- last 30 lines of $f:" >&2
        tail -n 30 "$f" >&2
    done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    stop_process "mall serve" "$SERVE_PID"
    stop_process "mall writer" "$WRITER_PID"
    if [[ $SHOW_LOGS -eq 1 || $rc -ne 0 ]] && [[ -n $SERVE_PID$WRITER_PID ]]; then
        show_logs
    fi
    # Stop only the services this run started: the lines services.sh added to its record.
    if [[ -s $STATE ]]; then
        local started=()
        mapfile -t started < <(grep -vxF -f "$STATE_BEFORE" "$STATE" | cut -d' ' -f1 | sort -u)
        if [[ ${#started[@]} -gt 0 ]]; then
            bash scripts/services.sh down "${started[@]}"
        fi
    fi
    rm -f "$STATE_BEFORE"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_free() { # PORT
    "$VENV/bin/python" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind; TIME_WAIT is fine
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

any_free_port() {
    "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Start a command in the background in its own process group, output to a log file.
start_background() { # LOGFILE COMMAND...
    local log=$1
    shift
    set -m
    "$@" </dev/null >"$log" 2>&1 &
    set +m
}

# --- services and schema -----------------------------------------------------------------

bash scripts/services.sh up

export MALL_NAMESPACE=${MALL_NAMESPACE:-demo}
export MALL_DATABASE_URL=${MALL_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/mall_demo}
# The burst comes from one loopback address: a per-IP limit would refuse most of it.
export MALL_RATE_LIMIT_IP=${MALL_RATE_LIMIT_IP:-10000000}

say "migrating $MALL_DATABASE_URL"
"$VENV/bin/mall" migrate

# A catalog to browse, seeded once per demo database.
products=$("$VENV/bin/python" - <<'EOF'
import asyncio, os, asyncpg
async def count():
    conn = await asyncpg.connect(os.environ["MALL_DATABASE_URL"])
    try:
        print(await conn.fetchval("SELECT count(*) FROM products"))
    finally:
        await conn.close()
asyncio.run(count())
EOF
)
if ((products < 500)); then
    say "seeding a catalog of 1,000 products"
    "$VENV/bin/python" -m bench.catalog_seed --products 1000 --seed 7
fi

# --- ports -------------------------------------------------------------------------------

if [[ -n ${MALL_DEMO_PORT:-} ]]; then
    PORT=$MALL_DEMO_PORT
    port_free "$PORT" || die "port $PORT (MALL_DEMO_PORT) is in use"
else
    PORT=8080
    if ! port_free "$PORT"; then
        PORT=$(any_free_port)
        say "port 8080 is in use; using $PORT"
    fi
fi
# The writer serves its own metrics; move them off the default port when it is taken.
if [[ -z ${MALL_WRITER_METRICS_PORT:-} ]] && ! port_free 9101; then
    MALL_WRITER_METRICS_PORT=$(any_free_port)
    export MALL_WRITER_METRICS_PORT
    say "port 9101 is in use; the writer's metrics go to $MALL_WRITER_METRICS_PORT"
fi
URL=http://127.0.0.1:$PORT

# --- the mall ----------------------------------------------------------------------------

say "starting mall serve on $URL (log: $RUN_DIR/serve.log)"
start_background "$RUN_DIR/serve.log" "$VENV/bin/mall" serve --host 127.0.0.1 --port "$PORT"
SERVE_PID=$!
say "starting mall writer (log: $RUN_DIR/writer.log)"
start_background "$RUN_DIR/writer.log" "$VENV/bin/mall" writer
WRITER_PID=$!

say "waiting for $URL/readyz"
deadline=$((SECONDS + 30))
until "$VENV/bin/python" - "$URL/readyz" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
do
    kill -0 "$SERVE_PID" 2>/dev/null || die "mall serve exited before it was ready"
    kill -0 "$WRITER_PID" 2>/dev/null || die "mall writer exited"
    ((SECONDS < deadline)) || die "$URL/readyz did not answer 200 within 30s"
    sleep 0.5
done
kill -0 "$WRITER_PID" 2>/dev/null || die "mall writer exited"
say "the mall is ready on $URL"

# --- the burst ---------------------------------------------------------------------------

extra=()
if [[ -n ${DEMO_ARGS:-} ]]; then
    read -r -a extra <<<"$DEMO_ARGS"
fi
say "running bench.burst against $URL"
burst_rc=0
"$VENV/bin/python" -m bench.burst --url "$URL" "${extra[@]}" "$@" || burst_rc=$?
if [[ $burst_rc -ne 0 ]]; then
    echo "demo: error: the burst failed (exit $burst_rc)" >&2
    SHOW_LOGS=1
    exit "$burst_rc"
fi

# --- the pages (make shop) -----------------------------------------------------------------

if [[ ${DEMO_STAY:-0} == 1 ]]; then
    "$VENV/bin/python" -m bench.demo_shop --url "$URL"
    trap 'exit 0' INT TERM  # Ctrl-C is how a browsing session ends
    say "serving until Ctrl-C"
    while kill -0 "$SERVE_PID" 2>/dev/null && kill -0 "$WRITER_PID" 2>/dev/null; do
        sleep 1
    done
    die "mall serve or mall writer exited"
fi
say "done (to browse the storefront and the back office: make shop)"
