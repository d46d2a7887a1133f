#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for tests: pg_cluster.sh start DIR | stop DIR
#
# start: initdb into DIR/data, pick a free port, start on 127.0.0.1 and write DIR/env with
#   PGLENS_PGHOST, PGLENS_PGPORT, PGLENS_PGDATA. Roles:
#     postgres      superuser, trust
#     pglens_scram  password 'scram-secret', scram-sha-256 (password_encryption = scram-sha-256)
#     pglens_md5    password 'md5-secret', stored and checked as md5
#     pglens_plain  password 'plain-secret', cleartext password auth
#   Database pglens_test (owner postgres).
#   With PGLENS_PG_TLS_DIR set (certificates from make_certs.sh): ssl = on with its server.crt,
#   server.key and ca.crt, and a pg_hba.conf of hostssl lines only, as managed Postgres
#   services have it (plaintext TCP is refused; roles as above, tls_user added, trust).
# stop: stop the server and remove DIR.
# Postgres refuses to run as root, so as root the server runs as the postgres OS user.
set -euo pipefail

bindir=${PGLENS_PG_BINDIR:-/usr/lib/postgresql/15/bin}
cmd=${1:?usage: pg_cluster.sh start|stop DIR}
dir=${2:?usage: pg_cluster.sh start|stop DIR}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  /usr/bin/python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

stop() {
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

start() {
  [ -d "$dir" ] && stop
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
  local port
  port=$(free_port)
  as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log"; exit 1; }
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 700
shared_buffers = 128MB
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
CONF
  local host=host
  if [ -n "${PGLENS_PG_TLS_DIR:-}" ]; then
    host=hostssl
    cp "$PGLENS_PG_TLS_DIR/server.crt" "$PGLENS_PG_TLS_DIR/server.key" "$PGLENS_PG_TLS_DIR/ca.crt" \
      "$dir/data/"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir/data/server.crt" "$dir/data/server.key" \
      "$dir/data/ca.crt"
    chmod 600 "$dir/data/server.key"
    cat >>"$dir/data/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_ca_file = 'ca.crt'
CONF
  fi
  cat >"$dir/data/pg_hba.conf" <<HBA
local all all trust
$host all pglens_scram 127.0.0.1/32 scram-sha-256
$host all pglens_md5 127.0.0.1/32 md5
$host all pglens_plain 127.0.0.1/32 password
$host all all 127.0.0.1/32 trust
HBA
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
    { cat "$dir/server.log"; exit 1; }
  as_owner psql -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q <<'SQL'
CREATE ROLE pglens_scram LOGIN PASSWORD 'scram-secret';
SET password_encryption = 'md5';
CREATE ROLE pglens_md5 LOGIN PASSWORD 'md5-secret';
RESET password_encryption;
CREATE ROLE pglens_plain LOGIN PASSWORD 'plain-secret';
CREATE ROLE tls_user LOGIN;
CREATE DATABASE pglens_test;
GRANT ALL ON DATABASE pglens_test TO pglens_scram, pglens_md5, pglens_plain, tls_user;
\c pglens_test
GRANT ALL ON SCHEMA public TO pglens_scram, pglens_md5, pglens_plain, tls_user;
SQL
  cat >"$dir/env" <<ENV
PGLENS_PGHOST=127.0.0.1
PGLENS_PGPORT=$port
PGLENS_PGDATA=$dir/data
ENV
  echo "postgres started on 127.0.0.1:$port ($dir)"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: pg_cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
