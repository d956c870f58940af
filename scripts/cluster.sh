#!/usr/bin/env bash
# A private PostgreSQL 15 cluster in a directory: its own port, socket directory and log, with
# flowgres preloaded. As root the server runs as the `postgres` system user (initdb and
# postgres refuse root); otherwise as the calling user.
#
#   cluster.sh up DIR PORT     create (once) and start; idempotent. A cluster made on another
#                              port moves to PORT (restarted if it runs): nothing else keeps it
#   cluster.sh down DIR        stop (fast shutdown); idempotent
#   cluster.sh restart DIR     restart with the same settings
#   cluster.sh crash DIR       stop without a shutdown checkpoint (immediate): the next start
#                              recovers from the WAL, as after a power cut
#   cluster.sh pool DIR PORT   create (once) and start a pool server for workspace databases,
#                              set up as the README asks ("A pool server"): the administrator
#                              over the socket, tenants over TCP with SCRAM into their own
#                              database only; flowgres is not loaded there. Its port is kept
#                              in the control plane's server pool, so another PORT is refused
# FLOWGRES_CLUSTER_SETTINGS (lines of postgresql.conf) is appended when the cluster is made.
set -euo pipefail

bin=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
[ -x "$bin/initdb" ] || bin=/usr/lib/postgresql/15/bin

command=${1:?usage: cluster.sh up|down|restart|crash|pool DIR [PORT]}
dir=$(realpath -m "${2:?cluster directory}")

as_server_user() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The data, socket and log directories, owned by the server's user.
make_directories() {
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        install -d -o postgres -g postgres "$dir/pgdata" "$dir/sock" "$dir/log"
    else
        mkdir -p "$dir/pgdata" "$dir/sock" "$dir/log"
    fi
}

# The port postgresql.conf sets last (the one the server takes).
configured_port() {
    sed -n 's/^port = \([0-9]*\).*/\1/p' "$dir/pgdata/postgresql.conf" | tail -n 1
}

start_unless_running() {
    if ! as_server_user "$bin/pg_ctl" -D "$dir/pgdata" status >/dev/null 2>&1; then
        as_server_user "$bin/pg_ctl" -D "$dir/pgdata" -l "$dir/log/postgresql.log" -w -t 60 start >/dev/null
    fi
}

case "$command" in
up)
    port=${3:?port}
    if [ ! -f "$dir/pgdata/PG_VERSION" ]; then
        make_directories
        as_server_user "$bin/initdb" -D "$dir/pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/log/initdb.log"
        cat >>"$dir/pgdata/postgresql.conf" <<CONF
# flowgres
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
shared_preload_libraries = 'flowgres'
max_connections = 200
${FLOWGRES_CLUSTER_SETTINGS:-}
CONF
    fi
    if [ "$(configured_port)" != "$port" ]; then
        echo "cluster $dir: moving from port $(configured_port) to $port" >&2
        echo "port = $port" | as_server_user tee -a "$dir/pgdata/postgresql.conf" >/dev/null
        if as_server_user "$bin/pg_ctl" -D "$dir/pgdata" status >/dev/null 2>&1; then
            as_server_user "$bin/pg_ctl" -D "$dir/pgdata" -l "$dir/log/postgresql.log" -m fast -w -t 60 restart >/dev/null
        fi
    fi
    start_unless_running
    ;;
down)
    if [ -f "$dir/pgdata/PG_VERSION" ] && as_server_user "$bin/pg_ctl" -D "$dir/pgdata" status >/dev/null 2>&1; then
        as_server_user "$bin/pg_ctl" -D "$dir/pgdata" -m fast -w -t 60 stop >/dev/null
    fi
    ;;
pool)
    port=${3:?port}
    if [ ! -f "$dir/pgdata/PG_VERSION" ]; then
        make_directories
        as_server_user "$bin/initdb" -D "$dir/pgdata" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 \
            --locale=C.UTF-8 >"$dir/log/initdb.log"
        cat >>"$dir/pgdata/postgresql.conf" <<CONF
# flowgres pool server
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
max_connections = 200
CONF
        cat >"$dir/pgdata/pg_hba.conf" <<HBA
local all postgres trust
local all all reject
host samerole +flowgres_tenants 127.0.0.1/32 scram-sha-256
host all +flowgres_tenants 127.0.0.1/32 reject
host all all 127.0.0.1/32 scram-sha-256
HBA
    fi
    if [ "$(configured_port)" != "$port" ]; then
        echo "cluster.sh: the pool server in $dir was made on port $(configured_port), and the control plane" \
             "knows its workspace databases there. Use that port again (FLOWGRES_POOL_PORT=$(configured_port))," \
             "or stop everything and remove $dir to start over." >&2
        exit 1
    fi
    start_unless_running
    ;;
crash)
    as_server_user "$bin/pg_ctl" -D "$dir/pgdata" -m immediate -w -t 60 stop >/dev/null
    ;;
restart)
    as_server_user "$bin/pg_ctl" -D "$dir/pgdata" -l "$dir/log/postgresql.log" -m fast -w -t 60 restart >/dev/null
    ;;
*)
    echo "usage: cluster.sh up|down|restart|crash|pool DIR [PORT]" >&2
    exit 2
    ;;
esac
