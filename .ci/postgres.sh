#!/usr/bin/env bash
# A throw-away PostgreSQL server on a free loopback port, for the tests that share one Optuna study
# between several workers (tests/pipeline/test_tune_storage*.py). Never touches a system cluster.
#
#   eval "$(.ci/postgres.sh start)"   # prints `export AIOTRADE_TEST_PG_URL=... AIOTRADE_TEST_PG_DIR=...`
#   .ci/postgres.sh stop              # stops the server named by $AIOTRADE_TEST_PG_DIR and removes it
#   .ci/postgres.sh install           # apt-get install postgresql + pip install psycopg, when missing
#
# `start` never fails the caller: without PostgreSQL binaries (and without `install` having run) it prints
# a comment saying why and exports nothing, so the tests that need the server skip with that reason.
# PostgreSQL refuses to run as root; as root the server runs as the `postgres` user (created by the Debian
# package) or `nobody`, in a temp folder that user owns.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
venv_py="${here}/.venv/bin/python"

pg_bindir() {
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir; return
    fi
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/initdb" ] && { echo "$d"; return; }
    done
    command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

cmd_install() {
    if [ -z "$(pg_bindir || true)" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "installing Debian's postgresql package" >&2
            (apt-get install -y -q postgresql >/dev/null 2>&1 \
                || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q postgresql >/dev/null 2>&1; }) \
                || echo "could not install postgresql with apt-get; the PostgreSQL tests will skip" >&2
        else
            echo "postgresql is not installed and apt-get is not usable here; the PostgreSQL tests will skip" >&2
        fi
    fi
    if [ -x "$venv_py" ] && ! "$venv_py" -c 'import psycopg' 2>/dev/null; then
        "$venv_py" -m pip install --quiet 'psycopg[binary]>=3.2' >&2 \
            || echo "could not pip install psycopg; the PostgreSQL tests will skip" >&2
    fi
}

cmd_start() {
    local bindir; bindir="$(pg_bindir || true)"
    if [ -z "$bindir" ]; then
        echo "# postgres.sh: no PostgreSQL binaries (run '.ci/postgres.sh install'); PostgreSQL tests will skip"
        return 0
    fi
    local dir port run_as=()
    dir="$(mktemp -d /tmp/aiotrade-pg.XXXXXX)"
    port="$(free_port)"
    if [ "$(id -u)" = 0 ]; then
        local user=postgres
        id "$user" >/dev/null 2>&1 || user=nobody
        chown "$user" "$dir"
        chmod 700 "$dir"
        run_as=(runuser -u "$user" --)
    fi
    if ! "${run_as[@]}" "$bindir/initdb" -D "$dir/data" -U aiotrade -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1; then
        echo "# postgres.sh: initdb failed (see $dir/initdb.log); PostgreSQL tests will skip"
        return 0
    fi
    # fsync off: a test server, thrown away afterwards. Unix socket in the temp dir, TCP on loopback only.
    if ! "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50" start >/dev/null 2>&1; then
        echo "# postgres.sh: pg_ctl start failed (see $dir/server.log); PostgreSQL tests will skip"
        return 0
    fi
    if ! "${run_as[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U aiotrade aiotrade_test >/dev/null 2>&1; then
        echo "# postgres.sh: createdb failed; PostgreSQL tests will skip"
        cmd_stop "$dir"
        return 0
    fi
    echo "$port" >"$dir/port"
    echo "export AIOTRADE_TEST_PG_URL=postgresql://aiotrade@127.0.0.1:${port}/aiotrade_test"
    echo "export AIOTRADE_TEST_PG_DIR=${dir}"
}

cmd_stop() {
    local dir="${1:-${AIOTRADE_TEST_PG_DIR:-}}"
    [ -n "$dir" ] && [ -d "$dir/data" ] || return 0
    local bindir run_as=()
    bindir="$(pg_bindir || true)"
    if [ "$(id -u)" = 0 ]; then
        run_as=(runuser -u "$(stat -c %U "$dir")" --)
    fi
    [ -n "$bindir" ] && "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    case "$dir" in /tmp/aiotrade-pg.*) rm -rf "$dir" ;; esac
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop "${2:-}" ;;
    install) cmd_install ;;
    *) echo "usage: $0 start|stop [DIR]|install" >&2; exit 2 ;;
esac
