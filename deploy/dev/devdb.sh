#!/usr/bin/env bash
# devdb.sh DBNAME: find or start a PostgreSQL server for local development and
# tests, make sure database DBNAME exists on it (creating it if need be, with
# `go run ./internal/devdb/cmd`; no psql needed), and print its URL.
# Order: DATABASE_URL (printed as is); a server on 127.0.0.1:5432; a private
# cluster under .data/ made with the machine's initdb/pg_ctl; docker compose.
set -euo pipefail
name="${1:-authd}"
root="$(cd "$(dirname "$0")/../.." && pwd)"

if [ -n "${DATABASE_URL:-}" ]; then
  echo "$DATABASE_URL"
  exit 0
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ensure_db HOST PORT USER: create database $name unless it exists and print
# its URL. A small Go helper does it (internal/devdb), so neither psql nor
# any other client tool is needed: only the Go toolchain `make` uses anyway.
ensure_db() {
  (cd "$root" && "${GO:-go}" run ./internal/devdb/cmd "postgres://$3@$1:$2/postgres?sslmode=disable" "$name")
}

if port_open 5432; then
  ensure_db 127.0.0.1 5432 postgres
  exit 0
fi

bindir=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && bindir="$d"; done
command -v initdb >/dev/null 2>&1 && bindir="$(dirname "$(command -v initdb)")"
if [ -n "$bindir" ]; then
  data="$root/.data/pg"
  port=54329
  as=()
  if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi # initdb refuses root
  if [ ! -s "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown -R postgres "$root/.data"
    "${as[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust >/dev/null
  fi
  if ! port_open "$port"; then
    "${as[@]}" "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
      -o "-p $port -k $data -c listen_addresses=127.0.0.1" start >&2
  fi
  PATH="$bindir:$PATH" ensure_db 127.0.0.1 "$port" postgres
  exit 0
fi

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  (cd "$root" && docker compose up -d --wait postgres >&2)
  ensure_db 127.0.0.1 5432 postgres
  exit 0
fi

echo "devdb: no PostgreSQL found: set DATABASE_URL, run one on 127.0.0.1:5432, install the PostgreSQL server (initdb, pg_ctl), or Docker" >&2
exit 1
