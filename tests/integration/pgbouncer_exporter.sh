#!/usr/bin/env bash
# Debian's prometheus-pgbouncer-exporter (Python, psycopg2) pointed at pglens' admin console:
# it runs SHOW LISTS/STATS/POOLS/DATABASES and reads columns by name, so every series it exports
# must appear with pglens' database in its labels.
source "$(dirname "$0")/../support/lib.sh"
exporter_bin=/usr/bin/prometheus-pgbouncer-exporter
[ -x "$exporter_bin" ] || fail "$exporter_bin missing: run scripts/install-deps.sh"

start_pglens --upstream "postgresql://127.0.0.1:$PG_DIRECT_PORT" --admin-users postgres
for i in $(seq 1 12); do psql -X -qAt -p "$PGLENS_PORT" -c "SELECT $i" >/dev/null; done

exporter_port=$(free_port)
exporter_log=$(mktemp /tmp/pglens-exporter-log-XXXXXX)
metrics=$(mktemp /tmp/pglens-exporter-metrics-XXXXXX)
# From /tmp: configargparse reads no config file unless told, and the cwd stays out of it.
(cd /tmp && exec "$exporter_bin" --host 127.0.0.1 --port "$exporter_port" \
  --pgbouncer-host 127.0.0.1 --pgbouncer-port "$PGLENS_PORT" --pgbouncer-user postgres) \
  >"$exporter_log" 2>&1 &
exporter_pid=$!
cleanup() {
  local status=$?
  kill "$exporter_pid" 2>/dev/null && wait "$exporter_pid" 2>/dev/null || true
  if [ "$status" -ne 0 ]; then
    echo "---- exporter log ----"
    cat "$exporter_log"
  fi
  rm -f "$exporter_log" "$metrics"
  on_exit
}
trap cleanup EXIT

scrape() {
  /usr/bin/python3 - "$exporter_port" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5) as r:
    sys.stdout.write(r.read().decode())
PY
}

for _ in $(seq 1 100); do
  kill -0 "$exporter_pid" 2>/dev/null || fail "the exporter exited"
  scrape >"$metrics" 2>/dev/null && break
  sleep 0.1
done
[ -s "$metrics" ] || fail "no /metrics from the exporter"
grep '^pgbouncer_' "$metrics"

# value NAME LABELS: the sample's value, or nothing. LABELS "" is a series without labels.
value() {
  local series="$1{$2} "
  [ -n "$2" ] || series="$1 "
  grep -F "$series" "$metrics" | grep -v '^#' | awk '{print $2}' || true
}
expect_at_least() {
  local v
  v=$(value "$1" "$2")
  [ -n "$v" ] || fail "no $1{$2}"
  /usr/bin/python3 -c "import sys; sys.exit(0 if float('$v') >= $3 else 1)" ||
    fail "$1{$2} = $v, expected >= $3"
}

expect_at_least pgbouncer_requests_total 'database="pglens_test"' 12
expect_at_least pgbouncer_received_bytes_total 'database="pglens_test"' 1
expect_at_least pgbouncer_sent_bytes_total 'database="pglens_test"' 1
expect_at_least pgbouncer_query_microseconds_total 'database="pglens_test"' 1
expect_at_least pgbouncer_active_clients 'database="pgbouncer",user="pgbouncer"' 1
expect_at_least pgbouncer_waiting_clients 'database="pglens_test",user="postgres"' 0
expect_at_least pgbouncer_pool_size 'database="pglens_test"' 20
expect_at_least pgbouncer_reserve_pool 'database="pglens_test"' 10
for gauge in databases users pools free_clients used_clients login_clients free_servers \
  used_servers dns_names dns_zones dns_queries dns_pending; do
  grep -q "^pgbouncer_$gauge " "$metrics" || fail "no pgbouncer_$gauge"
done
expect_at_least pgbouncer_pools '' 2
echo "prometheus-pgbouncer-exporter reads pglens ok"
