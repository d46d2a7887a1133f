# Shared by the shell integration tests: the ctest cluster, and pglens on a free port.
# Usage: source it, then `start_pglens ARGS...`; pglens is stopped when the script exits.
set -euo pipefail

: "${PGLENS_TEST_CLUSTER_DIR:?run through ctest}"
: "${PGLENS_BIN:?run through ctest}"
# shellcheck disable=SC1091
source "$PGLENS_TEST_CLUSTER_DIR/env"
export PGHOST=127.0.0.1 PGUSER=postgres PGDATABASE=pglens_test PGCONNECT_TIMEOUT=10
PG_DIRECT_PORT=$PGLENS_PGPORT
PGLENS_PID=
PGLENS_LOG=$(mktemp /tmp/pglens-sh-log-XXXXXX)
SCRATCH_DB=
work=$(mktemp -d /tmp/pglens-sh-work-XXXXXX)  # the test's scratch files, removed on exit

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop_pglens() {
  if [ -n "$PGLENS_PID" ] && kill -0 "$PGLENS_PID" 2>/dev/null; then
    kill "$PGLENS_PID"
    wait "$PGLENS_PID" 2>/dev/null || true
  fi
  PGLENS_PID=
}

on_exit() {
  local status=$?
  stop_pglens
  if [ -n "$SCRATCH_DB" ]; then
    dropdb -p "$PG_DIRECT_PORT" --if-exists --force "$SCRATCH_DB" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  if [ "$status" -ne 0 ]; then
    echo "---- pglens log (last 50 lines) ----"
    tail -n 50 "$PGLENS_LOG"
  fi
  rm -f "$PGLENS_LOG"
}
trap on_exit EXIT

# start_pglens ARGS... : sets PGLENS_PORT; --listen is added here, and PGLENS_TEST_ARGS (words:
# "--io-backend io_uring" for the suite's io_uring run).
start_pglens() {
  PGLENS_PORT=$(free_port)
  # shellcheck disable=SC2086
  "$PGLENS_BIN" --listen "127.0.0.1:$PGLENS_PORT" "$@" ${PGLENS_TEST_ARGS:-} >>"$PGLENS_LOG" 2>&1 &
  PGLENS_PID=$!
  for _ in $(seq 1 200); do
    if (echo >"/dev/tcp/127.0.0.1/$PGLENS_PORT") 2>/dev/null; then return 0; fi
    kill -0 "$PGLENS_PID" 2>/dev/null || break
    sleep 0.025
  done
  echo "pglens did not start"; cat "$PGLENS_LOG"; return 1
}

# pgbench_database PREFIX SCALE: a database of the test's own, initialized by pgbench -i (other
# tests may pgbench -i in pglens_test at the same time); sets db; dropped on exit.
pgbench_database() {
  SCRATCH_DB="$1_$$"
  db=$SCRATCH_DB
  createdb -p "$PG_DIRECT_PORT" "$db"
  pgbench -p "$PG_DIRECT_PORT" -i -s "$2" -q "$db" >"$work/init.log" 2>&1 || {
    cat "$work/init.log"
    fail "pgbench -i failed"
  }
}

fail() {
  echo "FAIL: $*"
  exit 1
}
