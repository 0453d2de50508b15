#!/usr/bin/env bash
# shellcheck disable=SC2016  # protocol checks: bash -c '...' HOST PORT expands $0 $1 itself
# Make sure the services the mall talks to are running on this machine:
#   PostgreSQL 127.0.0.1:5432 (user postgres, trust auth), Redis 127.0.0.1:6379,
#   RabbitMQ 127.0.0.1:5672 (guest/guest).
#
#   scripts/services.sh up            start whatever is not reachable (installing it with
#                                     apt-get when missing, as root); leave the rest alone
#   scripts/services.sh down [NAME..] stop the services that `up` itself started (all, or
#                                     only those named); never one it did not start
#   scripts/services.sh status        show which are reachable; exit 1 if any is not
#
# Services are started without systemd, so this also works in containers. What `up` started
# is recorded in .run/started-services, one service a line ("NAME DETAIL").
#
# Internal knobs, for exercising this script itself (not settings of the mall):
#   SERVICES_PG_PORT, SERVICES_REDIS_PORT, SERVICES_AMQP_PORT   ports to check/start
#   SERVICES_REDIS_DIR, SERVICES_REDIS_LOG                      where a started Redis writes
#   SERVICES_WAIT_S (60), SERVICES_AMQP_WAIT_S (120)            readiness time limits
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin # rabbitmq-server, rabbitmqctl

HOST=127.0.0.1
PG_PORT=${SERVICES_PG_PORT:-5432}
REDIS_PORT=${SERVICES_REDIS_PORT:-6379}
AMQP_PORT=${SERVICES_AMQP_PORT:-5672}
WAIT_S=${SERVICES_WAIT_S:-60}
AMQP_WAIT_S=${SERVICES_AMQP_WAIT_S:-120}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=$ROOT/.run
STATE=$RUN_DIR/started-services

if [[ $(id -u) -eq 0 ]]; then
    IS_ROOT=1
    REDIS_DIR=${SERVICES_REDIS_DIR:-/var/lib/redis}
    REDIS_LOG=${SERVICES_REDIS_LOG:-/var/log/redis/mall.log}
else
    IS_ROOT=0
    REDIS_DIR=${SERVICES_REDIS_DIR:-$RUN_DIR/redis}
    REDIS_LOG=${SERVICES_REDIS_LOG:-$RUN_DIR/redis.log}
fi

usage() {
    cat >&2 <<'EOF'
usage: scripts/services.sh up|down [NAME...]|status

  up      start PostgreSQL, Redis and RabbitMQ where they are not already reachable
  down    stop the services that `up` started (all, or only the NAMEs given:
          postgres, redis, rabbitmq); services it did not start are never touched
  status  show whether each service is reachable (exit 1 if one is not)
EOF
    exit 2
}

say() { echo "services: $*"; }
die() { echo "services: error: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------------------
# Reachability checks speak each service's protocol: with its client where installed
# (pg_isready, redis-cli), else with a few bytes over bash's /dev/tcp.

tcp_open() { # HOST PORT
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

pg_ready() {
    if have pg_isready; then
        pg_isready -q -h "$HOST" -p "$PG_PORT" -t 3
    else
        # SSLRequest (length 8, code 80877103): a PostgreSQL server answers S or N.
        timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "\x00\x00\x00\x08\x04\xd2\x16\x2f" >&3 &&
            IFS= read -r -n 1 -d "" b <&3 && [[ $b == [SN] ]]' "$HOST" "$PG_PORT" 2>/dev/null
    fi
}

redis_ready() {
    if have redis-cli; then
        [[ $(timeout 5 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
    else
        # RESP inline command: PING -> +PONG
        timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "PING\r\n" >&3 &&
            IFS= read -r line <&3 && [[ $line == +PONG* ]]' "$HOST" "$REDIS_PORT" 2>/dev/null
    fi
}

amqp_ready() {
    # Send the AMQP 0-9-1 protocol header; a broker answers with a method frame (type 1).
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "AMQP\x00\x00\x09\x01" >&3 &&
        IFS= read -r -n 1 -d "" b <&3 && [[ $b == $'"'"'\x01'"'"' ]]' "$HOST" "$AMQP_PORT" \
        2>/dev/null
}

ready() { # NAME
    case $1 in
        postgres) pg_ready ;;
        redis) redis_ready ;;
        rabbitmq) amqp_ready ;;
    esac
}

port_of() { # NAME
    case $1 in
        postgres) echo "$PG_PORT" ;;
        redis) echo "$REDIS_PORT" ;;
        rabbitmq) echo "$AMQP_PORT" ;;
    esac
}

# ---------------------------------------------------------------------------------------
# Installing

APT_UPDATED=0
POLICY_RC=/usr/sbin/policy-rc.d

apt_install() { # PACKAGE...
    if [[ $IS_ROOT -ne 1 ]]; then
        die "$* is not installed and this is not root; install it first:
    sudo apt-get install $*
or run this as root (it installs it itself)"
    fi
    have apt-get || die "$* is not installed and there is no apt-get here; install $* first"
    export DEBIAN_FRONTEND=noninteractive
    if [[ $APT_UPDATED -eq 0 ]]; then
        say "apt-get update"
        apt-get update -q 9>&-
        APT_UPDATED=1
    fi
    # Keep the packages' own init scripts from starting anything during the install: this
    # script starts the service itself, the same way whether it had to install it or not.
    local own_policy=0
    if [[ ! -e $POLICY_RC ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
        chmod 755 "$POLICY_RC"
        own_policy=1
    fi
    say "apt-get install $*"
    local rc=0
    apt-get install -y -q --no-install-recommends "$@" 9>&- || rc=$?
    if [[ $own_policy -eq 1 ]]; then rm -f "$POLICY_RC"; fi
    [[ $rc -eq 0 ]] || die "apt-get install $* failed (exit $rc)"
}

need_root_to_start() { # NAME HOW
    [[ $IS_ROOT -eq 1 ]] && return 0
    die "$1 is installed but not running on $HOST:$(port_of "$1"), and only root can start it here; start it with:
    sudo $2"
}

# Run a command that leaves a daemon behind, with none of our descriptors (a caller's pipe,
# the lock) handed down to it; its own output goes to .run/NAME-start.log.
spawn() { # NAME COMMAND...
    local name=$1
    shift
    mkdir -p "$RUN_DIR"
    "$@" </dev/null >"$RUN_DIR/$name-start.log" 2>&1 9>&-
}

record_started() { # NAME DETAIL
    mkdir -p "$RUN_DIR"
    echo "$1 $2" >>"$STATE"
}

show_log() { # FILE...
    local f
    for f in "$@"; do
        [[ -f $f && -r $f ]] || continue
        echo "--- last lines of $f:" >&2
        tail -n 30 "$f" >&2 || true
    done
}

wait_ready() { # NAME SECONDS LOGFILE...
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    until ready "$name"; do
        if ((SECONDS - start >= limit)); then
            echo "services: error: $name did not become reachable on $HOST:$(port_of "$name") within ${limit}s" >&2
            show_log "$@"
            exit 1
        fi
        sleep 1
    done
    say "$name is up on $HOST:$(port_of "$name") ($((SECONDS - start))s)"
}

# ---------------------------------------------------------------------------------------
# PostgreSQL

pg_version() {
    # shellcheck disable=SC2012
    ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1
}

pg_server_version() { # newest PostgreSQL whose server (not only client) is installed
    local bin
    for bin in /usr/lib/postgresql/*/bin/postgres; do
        if [[ -x $bin ]]; then basename "$(dirname "$(dirname "$bin")")"; fi
    done | sort -V | tail -n 1
}

pg_log() { echo "/var/log/postgresql/postgresql-$1-main.log"; }

pg_psql_ok() {
    PGCONNECT_TIMEOUT=3 psql -X -w -q -h "$HOST" -p "$PG_PORT" -U postgres -d postgres \
        -Atc 'SELECT 1' >/dev/null 2>&1
}

pg_has_trust_rule() { # HBA_FILE
    awk '!/^[[:space:]]*#/ && $1 ~ /^host/ && ($3 == "all" || $3 == "postgres") \
         && $4 == "127.0.0.1/32" && $5 == "trust" { found = 1 } END { exit !found }' "$1"
}

# The mall connects as postgres over TCP without a password: a cluster this script started
# gets trust rules for the loopback addresses, ahead of the package's default rules.
pg_ensure_trust() { # VERSION
    local ver=$1 hba=/etc/postgresql/$1/main/pg_hba.conf
    if have psql; then
        pg_psql_ok && return 0
    elif pg_has_trust_rule "$hba"; then
        return 0
    fi
    if ! grep -q '^# mall: local development access' "$hba"; then
        say "adding trust rules for 127.0.0.1 and ::1 to $hba"
        local tmp
        tmp=$(mktemp)
        awk '
            !done && !/^[[:space:]]*(#|$)/ {
                print "# mall: local development access without a password (scripts/services.sh)"
                print "local   all             postgres                                trust"
                print "host    all             all             127.0.0.1/32            trust"
                print "host    all             all             ::1/128                 trust"
                print ""
                done = 1
            }
            { print }
            END {
                if (!done) {
                    print "# mall: local development access without a password (scripts/services.sh)"
                    print "local   all             postgres                                trust"
                    print "host    all             all             127.0.0.1/32            trust"
                    print "host    all             all             ::1/128                 trust"
                }
            }' "$hba" >"$tmp"
        cat "$tmp" >"$hba" # keep the file's owner and mode
        rm -f "$tmp"
    fi
    spawn postgres-reload pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
    if have psql; then
        local _
        for _ in $(seq 1 10); do
            pg_psql_ok && return 0
            sleep 1
        done
        echo "services: error: PostgreSQL is up but user postgres cannot log in over TCP without a password; see $hba" >&2
        show_log "$(pg_log "$ver")"
        exit 1
    fi
}

start_postgres() {
    if ! have pg_ctlcluster || [[ -z $(pg_server_version) ]]; then
        apt_install postgresql
    fi
    local ver
    ver=$(pg_version)
    if [[ -z $ver ]]; then
        # The server package is there but no cluster was made: make the usual one.
        [[ $IS_ROOT -eq 1 ]] || die "PostgreSQL has no cluster; create one as root: sudo pg_createcluster --start <version> main"
        ver=$(pg_server_version)
        say "creating PostgreSQL cluster $ver/main"
        pg_createcluster "$ver" main
    fi
    [[ -d /etc/postgresql/$ver/main ]] || die "no PostgreSQL cluster $ver/main in /etc/postgresql/$ver"
    local port
    port=$(pg_lsclusters -h 2>/dev/null | awk -v v="$ver" '$1 == v && $2 == "main" { print $3 }')
    if [[ -n $port && $port != "$PG_PORT" ]]; then
        die "PostgreSQL cluster $ver/main is set to port $port, not $PG_PORT; set port = $PG_PORT in /etc/postgresql/$ver/main/postgresql.conf"
    fi
    if pg_ctlcluster --skip-systemctl-redirect "$ver" main status >/dev/null 2>&1; then
        say "PostgreSQL $ver/main is running but not answering yet; waiting"
        wait_ready postgres "$WAIT_S" "$(pg_log "$ver")"
        return 0
    fi
    need_root_to_start postgres "pg_ctlcluster --skip-systemctl-redirect $ver main start"
    say "starting PostgreSQL $ver/main"
    if ! spawn postgres pg_ctlcluster --skip-systemctl-redirect "$ver" main start; then
        echo "services: error: PostgreSQL $ver/main did not start" >&2
        show_log "$RUN_DIR/postgres-start.log" "$(pg_log "$ver")"
        exit 1
    fi
    record_started postgres "$ver"
    wait_ready postgres "$WAIT_S" "$RUN_DIR/postgres-start.log" "$(pg_log "$ver")"
    pg_ensure_trust "$ver"
}

stop_postgres() { # VERSION
    local ver=$1
    if have pg_ctlcluster && pg_ctlcluster --skip-systemctl-redirect "$ver" main status >/dev/null 2>&1; then
        say "stopping PostgreSQL $ver/main"
        pg_ctlcluster --skip-systemctl-redirect "$ver" main stop
    else
        say "PostgreSQL $ver/main is not running"
    fi
}

# ---------------------------------------------------------------------------------------
# Redis

start_redis() {
    have redis-server || apt_install redis-server
    mkdir -p "$REDIS_DIR" "$(dirname "$REDIS_LOG")" "$RUN_DIR"
    say "starting Redis on $HOST:$REDIS_PORT"
    if ! spawn redis redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
        --save "" --appendonly no --dir "$REDIS_DIR" --logfile "$REDIS_LOG" \
        --pidfile "$RUN_DIR/redis-$REDIS_PORT.pid"; then
        echo "services: error: Redis did not start" >&2
        show_log "$RUN_DIR/redis-start.log" "$REDIS_LOG"
        exit 1
    fi
    record_started redis "$REDIS_PORT"
    wait_ready redis "$WAIT_S" "$RUN_DIR/redis-start.log" "$REDIS_LOG"
}

stop_redis() { # PORT
    local port=$1
    say "stopping Redis on $HOST:$port"
    if have redis-cli; then
        redis-cli -h "$HOST" -p "$port" shutdown nosave >/dev/null 2>&1 || true
    else
        timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "SHUTDOWN NOSAVE\r\n" >&3 &&
            cat <&3 >/dev/null' "$HOST" "$port" 2>/dev/null || true
    fi
    local _
    for _ in $(seq 1 20); do
        tcp_open "$HOST" "$port" || return 0
        sleep 0.5
    done
    say "warning: Redis on $HOST:$port still answers after shutdown"
}

# ---------------------------------------------------------------------------------------
# RabbitMQ

rabbit_logs() {
    local f newest=""
    for f in /var/log/rabbitmq/*.log; do
        [[ -f $f && $f != *_upgrade.log ]] || continue
        if [[ -z $newest || $f -nt $newest ]]; then newest=$f; fi
    done
    echo "$newest" /var/log/rabbitmq/startup_log /var/log/rabbitmq/startup_err
}

# The broker's node is named after this host; where the host name does not resolve (some
# containers), name it rabbit@localhost instead, as RabbitMQ could not start otherwise.
rabbit_fix_nodename() {
    local conf=/etc/rabbitmq/rabbitmq-env.conf
    getent hosts "$(hostname -s 2>/dev/null || hostname)" >/dev/null 2>&1 && return 0
    [[ -f $conf ]] && grep -q '^[[:space:]]*NODENAME=' "$conf" && return 0
    say "host name does not resolve: naming the RabbitMQ node rabbit@localhost in $conf"
    mkdir -p "$(dirname "$conf")"
    echo "NODENAME=rabbit@localhost" >>"$conf"
}

start_rabbitmq() {
    have rabbitmq-server || apt_install rabbitmq-server
    need_root_to_start rabbitmq "rabbitmq-server -detached"
    rabbit_fix_nodename
    # Any rabbitmqctl call, like starting the broker, starts Erlang's port mapper (epmd) when it
    # is not running: note that first, so `down` stops it too and leaves the machine as it was.
    local epmd_note=""
    if have epmd && ! epmd -names >/dev/null 2>&1; then epmd_note=" epmd"; fi
    if timeout 30 rabbitmqctl -q ping >/dev/null 2>&1; then
        say "RabbitMQ's node is running but not answering on $HOST:$AMQP_PORT yet; waiting"
        # shellcheck disable=SC2046
        wait_ready rabbitmq "$AMQP_WAIT_S" $(rabbit_logs)
        return 0
    fi
    say "starting RabbitMQ"
    if ! spawn rabbitmq rabbitmq-server -detached; then
        echo "services: error: RabbitMQ did not start" >&2
        # shellcheck disable=SC2046
        show_log "$RUN_DIR/rabbitmq-start.log" $(rabbit_logs)
        exit 1
    fi
    record_started rabbitmq "$AMQP_PORT$epmd_note"
    # await_startup needs the node to exist first; give it the same overall time limit.
    local start=$SECONDS
    until timeout "$AMQP_WAIT_S" rabbitmqctl -q await_startup </dev/null >/dev/null 2>&1 9>&-; do
        if ((SECONDS - start >= AMQP_WAIT_S)); then
            echo "services: error: RabbitMQ did not finish starting within ${AMQP_WAIT_S}s" >&2
            # shellcheck disable=SC2046
            show_log "$RUN_DIR/rabbitmq-start.log" $(rabbit_logs)
            exit 1
        fi
        sleep 2
    done
    local left=$((AMQP_WAIT_S - (SECONDS - start)))
    ((left >= 10)) || left=10
    # shellcheck disable=SC2046
    wait_ready rabbitmq "$left" "$RUN_DIR/rabbitmq-start.log" $(rabbit_logs)
}

stop_rabbitmq() { # DETAIL ("PORT" or "PORT epmd")
    local detail=${1:-}
    if ! have rabbitmqctl; then
        say "rabbitmqctl not found; cannot stop RabbitMQ"
        return 0
    fi
    say "stopping RabbitMQ"
    # Given the node's pid file, `rabbitmqctl stop` waits until the process has exited.
    local f pidfile=""
    for f in /var/lib/rabbitmq/mnesia/*.pid; do
        [[ -f $f ]] || continue
        if [[ -z $pidfile || $f -nt $pidfile ]]; then pidfile=$f; fi
    done
    timeout 120 rabbitmqctl -q stop ${pidfile:+"$pidfile"} >/dev/null 2>&1 ||
        say "warning: rabbitmqctl stop failed (already stopped?)"
    if [[ $detail == *epmd* ]] && have epmd; then
        # Refused by epmd while any Erlang node is still registered with it.
        epmd -kill >/dev/null 2>&1 || true
    fi
}

# ---------------------------------------------------------------------------------------
# Commands

lock() {
    mkdir -p "$RUN_DIR"
    if have flock; then
        exec 9>"$RUN_DIR/services.lock"
        flock -w 900 9 || die "another scripts/services.sh is still running"
    fi
}

cmd_up() {
    lock
    local name
    for name in postgres redis rabbitmq; do
        if ready "$name"; then
            say "$name is already running on $HOST:$(port_of "$name"); leaving it alone"
            continue
        fi
        if tcp_open "$HOST" "$(port_of "$name")"; then
            # Something listens but does not answer yet (still starting, or another program).
            say "$HOST:$(port_of "$name") is open but $name does not answer yet; waiting"
            if [[ $name == rabbitmq ]]; then
                # shellcheck disable=SC2046
                wait_ready "$name" "$AMQP_WAIT_S" $(rabbit_logs)
            else
                wait_ready "$name" "$WAIT_S"
            fi
            continue
        fi
        "start_$name"
    done
}

cmd_down() {
    local n
    for n in "$@"; do
        case $n in postgres | redis | rabbitmq) ;; *) usage ;; esac
    done
    lock
    if [[ ! -s $STATE ]]; then
        say "nothing to stop: no service was started by scripts/services.sh"
        rm -f "$STATE"
        return 0
    fi
    local name detail keep=() wanted stopped=0
    # The list is read on fd 3: stop commands (rabbitmqctl) would otherwise eat it from stdin.
    while read -r name detail <&3; do
        [[ -n $name ]] || continue
        wanted=1
        if [[ $# -gt 0 ]]; then
            wanted=0
            for n in "$@"; do [[ $n == "$name" ]] && wanted=1; done
        fi
        if [[ $wanted -eq 0 ]]; then
            keep+=("$name $detail")
            continue
        fi
        case $name in
            postgres) stop_postgres "$detail" </dev/null ;;
            redis) stop_redis "$detail" </dev/null ;;
            rabbitmq) stop_rabbitmq "$detail" </dev/null ;;
            *) say "warning: unknown entry '$name' in $STATE; ignored" ;;
        esac
        stopped=$((stopped + 1))
    done 3< <(tac "$STATE") # stop in the reverse order of starting
    if [[ ${#keep[@]} -gt 0 ]]; then
        printf '%s\n' "${keep[@]}" | tac >"$STATE"
    else
        rm -f "$STATE"
    fi
    [[ $stopped -gt 0 ]] || say "nothing to stop: none of $* was started by scripts/services.sh"
}

cmd_status() {
    local name ok=0 note
    for name in postgres redis rabbitmq; do
        note=""
        if [[ -s $STATE ]] && grep -q "^$name " "$STATE"; then note=" (started by scripts/services.sh)"; fi
        if ready "$name"; then
            echo "$name: up on $HOST:$(port_of "$name")$note"
        else
            echo "$name: DOWN on $HOST:$(port_of "$name")$note"
            ok=1
        fi
    done
    return $ok
}

main() {
    [[ $# -ge 1 ]] || usage
    local command=$1
    shift
    case $command in
        up) [[ $# -eq 0 ]] || usage; cmd_up ;;
        down) cmd_down "$@" ;;
        status) [[ $# -eq 0 ]] || usage; cmd_status ;;
        *) usage ;;
    esac
}

# Sourcing the file (to try one function) defines everything and runs nothing.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
