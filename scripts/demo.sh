#!/usr/bin/env bash
# The main job: a throwaway PostgreSQL, pglens in front of it, a demo workload with an N+1 loop,
# a row-by-row insert loop, a query missing an index and a read a cache could serve, then pglens'
# report (with each statement's p95 graded against the database standards); then the suggested
# index is applied and the missing-index finding goes away. Everything started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh

cluster=$(mktemp -d /tmp/pglens-demo-XXXXXX)
log=$cluster.log
pglens_pid=
cleanup() {
  if [ -n "$pglens_pid" ]; then kill "$pglens_pid" 2>/dev/null || true; wait "$pglens_pid" 2>/dev/null || true; fi
  tests/support/pg_cluster.sh stop "$cluster"
  rm -f "$log"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tests/support/pg_cluster.sh start "$cluster"
source "$cluster/env"
port=$(free_port)
http=$(free_port)
build/bin/pglens --listen "127.0.0.1:$port" --upstream "postgresql://127.0.0.1:$PGLENS_PGPORT" \
  --pool-mode transaction --pool-size 8 --http "127.0.0.1:$http" >"$log" 2>&1 &
pglens_pid=$!
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done

direct="host=127.0.0.1 port=$PGLENS_PGPORT user=postgres dbname=pglens_test"
via="host=127.0.0.1 port=$port user=postgres dbname=pglens_test application_name=demo-app"
echo
echo "== pglens on 127.0.0.1:$port in front of postgres on $PGLENS_PGPORT; metrics and API on http://127.0.0.1:$http"
echo "== the demo schema (directly): customers, orders, an audit log, 60,000 events without an index on account_id"
build/bin/pglens-demo-workload --dsn "$direct" setup
echo "== the application, through pglens: an N+1 loop, a row-by-row insert loop, an unindexed lookup,"
echo "   the same five customers' profiles read again and again"
build/bin/pglens-demo-workload --dsn "$via" n_plus_one row_by_row_autocommit unindexed_lookups repeated_reads --times 40
echo "== and some ordinary traffic: pgbench select-only through pglens"
pgbench -i -s 1 -q -h 127.0.0.1 -p "$PGLENS_PGPORT" -U postgres pglens_test >/dev/null 2>&1
pgbench -n -S -c 4 -j 4 -T 2 -h 127.0.0.1 -p "$port" -U postgres pglens_test | grep -E "^tps"

sleep 3  # runs are judged when they go quiet; the index check runs on its own thread
echo
echo "== pglens report --from http://127.0.0.1:$http"
build/bin/pglens report --from "http://127.0.0.1:$http"

fix=$(curl -s "http://127.0.0.1:$http/api/advice" |
  /usr/bin/python3 -c 'import json,sys; print(next(f["fix"] for f in json.load(sys.stdin)["findings"] if f["rule"] == "missing_index"))')
echo "== applying the suggested index: $fix"
psql -X -q "$direct" -c "$fix"
for _ in $(seq 1 30); do
  build/bin/pglens-demo-workload --dsn "$via" unindexed_lookups --times 10
  resolved=$(curl -s "http://127.0.0.1:$http/api/advice" |
    /usr/bin/python3 -c 'import json,sys; print(any(f["resolved"] for f in json.load(sys.stdin)["findings"] if f["rule"] == "missing_index"))')
  [ "$resolved" = True ] && break
  sleep 1
done
echo "== the missing-index finding is now resolved: $resolved"
echo
echo "== Prometheus metrics (a few of them)"
curl -s "http://127.0.0.1:$http/metrics" | grep -E "^pglens_(queries_total|findings|server_connections|client_connections)" | head -12
