#!/usr/bin/env bash
# make test-ha: authd on PostgreSQL's own HA engines, as local processes on
# 127.0.0.1 under a temporary folder, each ended by its pid.
#   1. a named subset of the integration suite through a real PgBouncer in
#      pool_mode = transaction (AUTHD_TEST_POOLER_URL, see internal/pgtest);
#   2. internal/ha: a streaming replica with paused replay, and a Patroni
#      pair on etcd with the primary's postmaster killed (AUTHD_TEST_HA=1).
# Needs the PostgreSQL of `make test` (AUTHD_TEST_DATABASE_URL) for step 1.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO="${GO:-go}"

need=()
command -v pgbouncer >/dev/null || need+=(pgbouncer)
command -v patroni >/dev/null || need+=(patroni)
command -v etcd >/dev/null || need+=(etcd-server)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test-ha: installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "test-ha: missing ${need[*]} (apt-get install ${need[*]}, as root)" >&2
    exit 1
  fi
fi

export AUTHD_TEST_DATABASE_URL="${AUTHD_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
server_host=$(sed -E 's#^[a-z]+://([^@/]*@)?([^:/?]+).*#\2#' <<<"$AUTHD_TEST_DATABASE_URL")
server_port=$(sed -nE 's#^[a-z]+://([^@/]*@)?[^:/?]+:([0-9]+).*#\2#p' <<<"$AUTHD_TEST_DATABASE_URL")
server_port="${server_port:-5432}"

tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# PgBouncer refuses to run as root; as root it is told to switch to postgres
# (-u), so the pid we hold is PgBouncer's own.
run_as=()
if [ "$(id -u)" = 0 ]; then chown postgres "$tmp"; run_as=(-u postgres); fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/pgbouncer.ini" <<INI
[databases]
; every database name goes to the test server: pgtest creates one per test
* = host=$server_host port=$server_port
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $tmp/userlist.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 4
server_idle_timeout = 5
ignore_startup_parameters = extra_float_digits
logfile = $tmp/pgbouncer.log
log_connections = 0
log_disconnections = 0
INI
echo '"postgres" ""' >"$tmp/userlist.txt"
[ ${#run_as[@]} -eq 0 ] || chown postgres "$tmp"/*
# Its log goes to logfile only (printed if the tests fail).
pgbouncer "${run_as[@]}" "$tmp/pgbouncer.ini" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
echo "test-ha: PgBouncer $(pgbouncer --version | head -n1 | awk '{print $2}') on 127.0.0.1:$port, pool_mode = transaction (pid $pid)"

# Every statement in internal/postgres is run by its own tests and again by
# the session, account, keyring and HTTP tests that drive it end to end.
if ! AUTHD_TEST_POOLER_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable" \
  "$GO" test -race -count=1 ./internal/postgres/ ./internal/session/ ./internal/account/ \
  ./internal/throttle/ ./internal/jobs/ ./internal/keyring/ ./internal/httpapi/; then
  echo "test-ha: failed through PgBouncer; the end of its log:" >&2
  grep -v 'closing because\|login attempt\|new connection\|not linked\|auto-database' "$tmp/pgbouncer.log" | tail -n 40 >&2
  exit 1
fi
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""

AUTHD_TEST_HA=1 "$GO" test -race -count=1 -v -run 'TestHA' ./internal/ha/
