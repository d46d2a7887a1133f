#!/usr/bin/env bash
# pglens --no-analysis with --http: queries still work, /api/fingerprints says analysis is off,
# /metrics is still valid and still has the pool and connection metrics (and no analyzer ones).
source "$(dirname "$0")/../support/lib.sh"
check=$(dirname "$0")/metrics_check.py
HTTP_PORT=$(free_port)
start_pglens --upstream "postgresql://127.0.0.1:$PG_DIRECT_PORT" --pool-mode transaction \
  --no-analysis --http "127.0.0.1:$HTTP_PORT"
http_get() {
  curl -sS --fail-with-body --max-time 10 "http://127.0.0.1:$HTTP_PORT$1" -o "${2:-/dev/stdout}"
}

for i in 1 2 3; do
  v=$(psql -X -p "$PGLENS_PORT" -qAtc "SELECT $i * 14") || fail "query $i through pglens failed"
  [ "$v" = $((i * 14)) ] || fail "SELECT $i * 14 returned '$v'"
done
v=$(psql -X -p "$PGLENS_PORT" -qAt -c "BEGIN" -c "SELECT 'in a transaction'" -c "COMMIT" | head -1)
[ "$v" = "in a transaction" ] || fail "transaction through pglens returned '$v'"

[ "$(http_get /api/fingerprints)" = '{"analysis":false,"fingerprints":[]}' ] ||
  fail "/api/fingerprints with analysis off: $(http_get /api/fingerprints)"

http_get /metrics "$work/metrics.txt"
promtool check metrics <"$work/metrics.txt" || fail "promtool check metrics failed"
/usr/bin/python3 "$check" histograms "$work/metrics.txt" >"$work/hist.txt" || {
  cat "$work/hist.txt"
  fail "inconsistent histogram buckets"
}
value() { /usr/bin/python3 "$check" value "$work/metrics.txt" "$@"; }
connects=$(value pglens_server_connects_total database=pglens_test user=postgres) ||
  fail "no pglens_server_connects_total"
[ "$connects" -ge 1 ] || fail "pglens_server_connects_total is $connects"
value pglens_server_connections database=pglens_test state=idle >/dev/null ||
  fail "no pglens_server_connections"
value pglens_client_connections state=idle >/dev/null || fail "no pglens_client_connections"
value pglens_transactions_total database=pglens_test >/dev/null || fail "no transactions counter"
waits=$(awk '$1 == "pglens_pool_wait_seconds" {print $2}' "$work/hist.txt")
[ "${waits:-0}" -ge 4 ] || fail "pglens_pool_wait_seconds_count is '$waits' after 4 transactions"
for analyzer_metric in pglens_queries_total pglens_query_duration_seconds_count \
  pglens_analyzer_events_total pglens_fingerprint_cache_hits_total; do
  if grep -q "^$analyzer_metric" "$work/metrics.txt"; then
    fail "$analyzer_metric exposed with analysis off"
  fi
done
http_get /api/pools | /usr/bin/python3 -c '
import json, sys
pools = json.load(sys.stdin)["pools"]
assert any(p["database"] == "pglens_test" and p["server_connects"] >= 1 for p in pools), pools
' || fail "/api/pools"
echo "analysis off: queries work, /api/fingerprints says so, pool metrics present"
