#!/usr/bin/env bash
# A real Prometheus server (Debian's /usr/bin/prometheus) scrapes pglens' /metrics every second;
# its query API then returns pglens_queries_total with the number of statements run, and a
# histogram_quantile over pglens_query_duration_seconds_bucket. Everything lives in a temporary
# directory on free loopback ports; Prometheus is stopped at the end.
source "$(dirname "$0")/../support/lib.sh"
PROMETHEUS=${PGLENS_PROMETHEUS_BIN:-/usr/bin/prometheus}
[ -x "$PROMETHEUS" ] || fail "$PROMETHEUS not found (scripts/install-deps.sh installs prometheus)"
PROM_PID=
cleanup() {
  local status=$?
  if [ -n "$PROM_PID" ] && kill -0 "$PROM_PID" 2>/dev/null; then
    kill "$PROM_PID"
    wait "$PROM_PID" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$work/prometheus.log" ]; then
    echo "---- prometheus log (last 30 lines) ----"
    tail -n 30 "$work/prometheus.log"
  fi
  stop_pglens
  (exit "$status")
  on_exit
}
trap cleanup EXIT

pgbench_database pglens_prom 1
HTTP_PORT=$(free_port)
start_pglens --upstream "postgresql://127.0.0.1:$PG_DIRECT_PORT" --pool-mode transaction \
  --pool-size 4 --http "127.0.0.1:$HTTP_PORT"

PROM_PORT=$(free_port)
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pglens
    static_configs:
      - targets: ["127.0.0.1:$HTTP_PORT"]
YAML
promtool check config "$work/prometheus.yml" >/dev/null || fail "promtool check config failed"
"$PROMETHEUS" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$work/prometheus.log" 2>&1 &
PROM_PID=$!

# 20 transactions × 2 clients of tpcb-like (7 statements each) plus pgbench's 2 set-up queries.
pgbench -n -p "$PGLENS_PORT" -c 2 -j 2 -t 20 -M extended "$db" >"$work/pgbench.log" 2>&1 || {
  cat "$work/pgbench.log"
  fail "pgbench failed"
}
statements=$((20 * 2 * 7 + 2))

# GET /api/v1/query?query=Q; prints the first result's value, fails while there is none.
prom_query() {
  curl -sS --fail --max-time 5 -G "http://127.0.0.1:$PROM_PORT/api/v1/query" \
    --data-urlencode "query=$1" -o "$work/answer.json" 2>/dev/null || return 1
  /usr/bin/python3 - "$work/answer.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["status"] == "success", doc
result = doc["data"]["result"]
if not result:
    sys.exit(1)
print(result[0]["value"][1])
PY
}

queries=
quantile=
deadline=$((SECONDS + 30))
while [ "$SECONDS" -lt "$deadline" ]; do
  kill -0 "$PROM_PID" 2>/dev/null || fail "prometheus exited"
  queries=$(prom_query 'pglens_queries_total' || true)
  if [ "$queries" = "$statements" ]; then
    quantile=$(prom_query \
      'histogram_quantile(0.99, sum by (le) (pglens_query_duration_seconds_bucket))' || true)
    [ -n "$quantile" ] && break
  fi
  sleep 0.5
done
[ "$queries" = "$statements" ] ||
  fail "Prometheus did not report pglens_queries_total $statements within 30 s (got '$queries')"
[ -n "$quantile" ] || fail "Prometheus returned no histogram_quantile over the query histogram"
/usr/bin/python3 -c "import sys; q = float(sys.argv[1]); assert 0 < q <= 10, q" "$quantile" ||
  fail "p99 from Prometheus is $quantile s"

up=$(prom_query 'up{job="pglens"}') || fail "no up series for pglens"
[ "$up" = 1 ] || fail "up{job=\"pglens\"} is $up"
# The proxy's own families arrive too, with their labels.
idle=$(prom_query "sum(pglens_server_connections{database=\"$db\",state=\"idle\"})") ||
  fail "no pglens_server_connections series in Prometheus"
[ "$idle" -ge 1 ] || fail "Prometheus sees $idle idle server connections"
prom_query 'histogram_quantile(0.5, sum by (le) (pglens_pool_wait_seconds_bucket))' >/dev/null ||
  fail "no pglens_pool_wait_seconds histogram in Prometheus"
echo "Prometheus scraped pglens: pglens_queries_total $queries, p99 ${quantile}s," \
  "$idle idle server connections"
