#!/usr/bin/env bash
# pgbench tpcb-like through pglens (transaction mode, --http), in each query mode, then:
#  - /api/fingerprints shows each of the seven tpcb-like statements with exactly N*C calls;
#  - /metrics passes `promtool check metrics`; every histogram series has cumulative buckets and
#    a +Inf bucket equal to its _count; pglens_query_duration_seconds_count over all labels, the
#    fingerprints' calls, pglens_queries_total and pglens_analyzer_events_total all equal the
#    number of statements run (the script's plus pgbench's own set-up queries);
#  - the pool metrics and /api/pools agree with what ran.
source "$(dirname "$0")/../support/lib.sh"
check=$(dirname "$0")/metrics_check.py
transactions=${PGLENS_METRICS_TRANSACTIONS:-50}  # per client
clients=${PGLENS_METRICS_CLIENTS:-4}
expected=$((transactions * clients))

http_get() {  # PATH [OUTFILE]
  curl -sS --fail-with-body --max-time 10 "http://127.0.0.1:$HTTP_PORT$1" -o "${2:-/dev/stdout}"
}

pgbench_database pglens_metrics 1

for mode in simple extended prepared; do
  HTTP_PORT=$(free_port)
  start_pglens --upstream "postgresql://127.0.0.1:$PG_DIRECT_PORT" --pool-mode transaction \
    --pool-size 4 --http "127.0.0.1:$HTTP_PORT"
  [ "$(http_get /healthz)" = ok ] || fail "/healthz did not say ok"

  # -n: no vacuum before the run, so the only statements besides the script's are pgbench's
  # own two set-up queries (the scale and partitioning look-ups).
  out=$(pgbench -n -p "$PGLENS_PORT" -c "$clients" -j "$clients" -t "$transactions" -M "$mode" \
    "$db" 2>&1) || {
    echo "$out"
    fail "pgbench -M $mode exited non-zero"
  }
  processed=$(grep -oP 'number of transactions actually processed: \K[0-9]+' <<<"$out")
  [ "$processed" = "$expected/$expected" ] || [ "$processed" = "$expected" ] ||
    fail "pgbench -M $mode processed $processed, expected $expected"

  # The analyzer is asynchronous: poll until every statement has its calls (at most 10 s).
  total=
  for _ in $(seq 1 100); do
    http_get "/api/fingerprints?sort=calls&limit=1000" "$work/fp.json"
    if total=$(/usr/bin/python3 "$check" pgbench "$work/fp.json" "$expected" 2>&1); then break; fi
    total=
    sleep 0.1
  done
  [ -n "$total" ] || {
    /usr/bin/python3 "$check" pgbench "$work/fp.json" "$expected" || true
    fail "-M $mode: /api/fingerprints does not show $expected calls of each statement"
  }
  setup=$((total - 7 * expected))
  [ "$setup" -ge 0 ] && [ "$setup" -le 4 ] ||
    fail "-M $mode: $total statements in /api/fingerprints, expected $((7 * expected)) + set-up"
  # Everything besides the script is pgbench's own set-up, one call each.
  /usr/bin/python3 - "$work/fp.json" <<'PY' || fail "-M $mode: unexpected fingerprints"
import json, sys
rows = json.load(open(sys.argv[1]))["fingerprints"]
tpcb = {"BEGIN", "END"}
for r in rows:
    q = r["query"]
    if r["calls"] > 1:
        assert "pgbench_" in q or q in tpcb, r
        continue
    assert "pgbench_branches" in q or "pg_catalog" in q, r
    assert r["application_name"] == "pgbench", r
for r in rows:
    for k in ("command", "database", "user", "errors", "rows", "total_ms", "min_ms", "max_ms",
              "mean_ms", "p50_ms", "p95_ms", "p99_ms", "first_seen", "last_seen"):
        assert k in r, (k, r)
    assert r["min_ms"] <= r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] <= r["max_ms"], r
    assert r["first_seen"].endswith("Z") and r["first_seen"] <= r["last_seen"], r
PY

  http_get /metrics "$work/metrics.txt"
  promtool check metrics <"$work/metrics.txt" >"$work/promtool.log" 2>&1 || {
    cat "$work/promtool.log"
    fail "-M $mode: promtool check metrics failed"
  }
  if [ -s "$work/promtool.log" ]; then
    echo "promtool warnings:"
    cat "$work/promtool.log"
    fail "-M $mode: promtool has warnings about pglens' metric names"
  fi
  /usr/bin/python3 "$check" histograms "$work/metrics.txt" >"$work/hist.txt" || {
    cat "$work/hist.txt"
    fail "-M $mode: inconsistent histogram buckets"
  }
  duration_count=$(awk '$1 == "pglens_query_duration_seconds" {print $2}' "$work/hist.txt")
  [ "$duration_count" = "$total" ] ||
    fail "-M $mode: pglens_query_duration_seconds_count is $duration_count, ran $total statements"
  fingerprint_count=$(awk '$1 == "pglens_fingerprint_duration_seconds" {print $2}' "$work/hist.txt")
  [ "$fingerprint_count" = "$total" ] ||
    fail "-M $mode: pglens_fingerprint_duration_seconds_count is $fingerprint_count, ran $total"
  value() { /usr/bin/python3 "$check" value "$work/metrics.txt" "$@"; }
  [ "$(value pglens_queries_total)" = "$total" ] || fail "-M $mode: pglens_queries_total"
  [ "$(value pglens_analyzer_events_total)" = "$total" ] ||
    fail "-M $mode: pglens_analyzer_events_total"
  [ "$(value pglens_analyzer_events_dropped_total)" = 0 ] || fail "-M $mode: events dropped"
  hits=$(value pglens_fingerprint_cache_hits_total)
  misses=$(value pglens_fingerprint_cache_misses_total)
  [ $((hits + misses)) = "$total" ] || fail "-M $mode: cache hits $hits + misses $misses != $total"
  # The cache is keyed by exact text: simple-protocol literals miss, $n parameters hit.
  [ "$mode" = simple ] || [ "$misses" -le 12 ] || fail "-M $mode: $misses cache misses"
  for state in active idle connecting pinging; do
    value pglens_server_connections "database=$db" user=postgres "state=$state" >/dev/null ||
      fail "-M $mode: no pglens_server_connections{state=$state}"
  done
  for state in login idle waiting active; do
    value pglens_client_connections "state=$state" >/dev/null ||
      fail "-M $mode: no pglens_client_connections{state=$state}"
  done
  for reason in recycle idle overflow_idle dirty ping_failed shrink broken; do
    value pglens_server_closes_total "database=$db" "reason=$reason" >/dev/null ||
      fail "-M $mode: no pglens_server_closes_total{reason=$reason}"
  done
  connects=$(value pglens_server_connects_total "database=$db")
  [ "$connects" -ge 1 ] && [ "$connects" -le 4 ] || fail "-M $mode: $connects server connects"
  [ "$(value pglens_pool_timeouts_total "database=$db")" = 0 ] || fail "-M $mode: pool timeouts"
  [ "$(value pglens_waiting_clients "database=$db")" = 0 ] || fail "-M $mode: waiting clients"
  # The pool counts a transaction each time a session gives its server connection back: a client
  # that sends its next BEGIN before that keeps the connection (two transactions count as one),
  # and -M prepared's PQprepare round trips count too. So: present, and counting.
  transactions_total=$(value pglens_transactions_total "database=$db")
  [ "$transactions_total" -ge 1 ] || fail "-M $mode: pglens_transactions_total $transactions_total"
  waits=$(awk '$1 == "pglens_pool_wait_seconds" {print $2}' "$work/hist.txt")
  [ "$waits" -ge "$clients" ] || fail "-M $mode: pglens_pool_wait_seconds_count $waits"

  http_get /api/pools "$work/pools.json"
  /usr/bin/python3 - "$work/pools.json" "$db" "$waits" <<'PY' || fail "-M $mode: /api/pools"
import json, sys
pools = [p for p in json.load(open(sys.argv[1]))["pools"] if p["database"] == sys.argv[2]]
assert len(pools) == 1, pools
p = pools[0]
assert p["user"] == "postgres" and p["pool_mode"] == "transaction", p
assert p["pool_size"] == 4 and p["waiting"] == 0 and p["active"] == 0, p
assert 1 <= p["idle"] <= 4 and p["server_connects"] == p["idle"], p
assert p["pool_timeouts"] == 0 and p["pre_ping_failures"] == 0, p
assert p["waits"] == int(sys.argv[3]), p
assert p["queries"] > 0 and p["transactions"] > 0 and p["avg_wait_ms"] >= 0, p
PY
  echo "pgbench -M $mode: $expected transactions, $total statements, $connects server connections," \
    "pglens_transactions_total $transactions_total, $waits pool waits; histograms consistent"
  stop_pglens
done
