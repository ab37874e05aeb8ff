#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests (the relayer's store tests run on it when
# COCOON_TEST_PG_URL is set, and skip with a message otherwise).
#
# Sourced (from scripts/test):
#     source scripts/lib/postgres.sh
#     pg_test_start          # exports COCOON_TEST_PG_URL; stops and deletes the cluster on EXIT
# Run directly (by hand):
#     eval "$(scripts/lib/postgres.sh start)"   # prints export lines (URL and data dir)
#     scripts/lib/postgres.sh stop "$COCOON_TEST_PG_DIR"
#
# The cluster lives under a temp dir, listens on 127.0.0.1 on a free port, trusts local
# connections (user `cocoon`, no password) and runs with fsync off: it is for tests only.
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (or
# `nobody` when that user does not exist).

_pg_bindir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
    return
  fi
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
  return 1
}

_pg_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
    || echo $((20000 + RANDOM % 30000))
}

# _pg_as CMD...: runs CMD as an unprivileged user when we are root.
_pg_as() {
  if [ "$(id -u)" -eq 0 ]; then
    local user=postgres
    id -u "$user" >/dev/null 2>&1 || user=nobody
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

# pg_test_create: starts a cluster; sets COCOON_TEST_PG_URL and COCOON_TEST_PG_DIR.
pg_test_create() {
  local bindir
  if ! bindir="$(_pg_bindir)"; then
    if declare -F ensure_apt >/dev/null; then ensure_apt postgresql; fi
    bindir="$(_pg_bindir)" || { echo "postgres.sh: PostgreSQL is not installed (apt package postgresql)" >&2; return 1; }
  fi
  local dir port
  dir="$(mktemp -d "${TMPDIR:-/tmp}/cocoon-pg.XXXXXX")"
  chmod 755 "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    local user=postgres
    id -u "$user" >/dev/null 2>&1 || user=nobody
    chown "$user" "$dir"
  fi
  _pg_as "$bindir/initdb" -D "$dir/data" -U cocoon -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  local tries=0
  while :; do
    port="$(_pg_free_port)"
    if _pg_as "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null 2>&1; then
      break
    fi
    tries=$((tries + 1))
    if [ "$tries" -ge 3 ]; then cat "$dir/server.log" >&2; return 1; fi
  done
  export COCOON_TEST_PG_DIR="$dir"
  export COCOON_TEST_PG_BINDIR="$bindir"
  export COCOON_TEST_PG_URL="postgres://cocoon@127.0.0.1:$port/postgres"
}

# pg_test_stop [DIR]: stops the cluster and deletes its files.
pg_test_stop() {
  local dir="${1:-${COCOON_TEST_PG_DIR:-}}"
  [ -n "$dir" ] && [ -d "$dir/data" ] || return 0
  local bindir="${COCOON_TEST_PG_BINDIR:-$(_pg_bindir)}"
  _pg_as "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

# pg_test_start: pg_test_create, and pg_test_stop when the calling shell exits.
pg_test_start() {
  pg_test_create || return 1
  # shellcheck disable=SC2064 # expand the directory now, not at exit
  trap "pg_test_stop '$COCOON_TEST_PG_DIR'" EXIT
  echo "postgres.sh: test cluster at $COCOON_TEST_PG_URL" >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    start)
      pg_test_create
      printf 'export COCOON_TEST_PG_URL=%q\nexport COCOON_TEST_PG_DIR=%q\n' "$COCOON_TEST_PG_URL" "$COCOON_TEST_PG_DIR"
      ;;
    stop) pg_test_stop "${2:-}" ;;
    *) echo "usage: $0 start | stop DIR   (or source it and call pg_test_start)" >&2; exit 2 ;;
  esac
fi
