#!/usr/bin/env bash
# The main job: a throwaway PostgreSQL, pglens in front of it, a few queries through it, and
# what pglens saw. Everything it starts is stopped and removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh

cluster=$(mktemp -d /tmp/pglens-demo-XXXXXX)
log=$cluster.log
pglens_pid=
cleanup() {
  [ -n "$pglens_pid" ] && kill "$pglens_pid" 2>/dev/null && wait "$pglens_pid" 2>/dev/null
  tests/support/pg_cluster.sh stop "$cluster"
  rm -f "$log"
}
trap cleanup EXIT

tests/support/pg_cluster.sh start "$cluster"
source "$cluster/env"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
build/bin/pglens --listen "127.0.0.1:$port" --upstream "postgresql://:scram-secret@127.0.0.1:$PGLENS_PGPORT" >"$log" 2>&1 &
pglens_pid=$!
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done

echo
echo "== queries through pglens (127.0.0.1:$port → postgres on $PGLENS_PGPORT)"
export PGHOST=127.0.0.1 PGPORT=$port PGDATABASE=pglens_test
set -x
psql -X -U pglens_scram -c "SELECT current_user, version()"
psql -X -U pglens_scram -c "CREATE TABLE demo_orders (id serial PRIMARY KEY, customer int, total numeric)" \
  -c "INSERT INTO demo_orders (customer, total) SELECT i % 10, i * 1.5 FROM generate_series(1, 1000) i" \
  -c "SELECT customer, count(*), sum(total) FROM demo_orders GROUP BY customer ORDER BY customer LIMIT 3"
psql -X -U postgres -c "BEGIN" -c "SELECT 1/0" -c "ROLLBACK"  || true
pgbench -n -U postgres -c 4 -T 2 -f <(echo "SELECT count(*) FROM demo_orders WHERE customer = 3;") pglens_test | grep -E "tps|processed"
set +x

echo
echo "== what pglens saw"
kill "$pglens_pid"; wait "$pglens_pid" 2>/dev/null || true; pglens_pid=
grep -E "listening|login|disconnect" "$log" | head -20
echo "... $(grep -c login "$log") client sessions in all"
