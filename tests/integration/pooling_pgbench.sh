#!/usr/bin/env bash
# pgbench tpcb-like through pglens in transaction mode: 64 clients over a pool of 8 server
# connections (no overflow), in each query mode (-M prepared needs named statements carried across
# server connections), with zero failed transactions and never more than 8 server connections.
#
# -j 64, one pgbench thread per client, is required: pgbench prepares its statements with a
# blocking PQprepare in the middle of a transaction, so a client sharing a thread with others
# stalls them all while it waits for the server connection that one of them holds: with a small
# pool that is a deadlock (it would be the same direct to Postgres with max_connections 8).
source "$(dirname "$0")/../support/lib.sh"
seconds=${PGLENS_POOLING_PGBENCH_SECONDS:-5}

pgbench_database pglens_pool_bench 4
start_pglens --upstream "postgresql://127.0.0.1:$PG_DIRECT_PORT" --pool-mode transaction \
  --pool-size 8 --max-overflow 0 --pool-timeout 60

# Samples the server connections pglens' pool holds to $db (the sampler itself is in pglens_test;
# pglens' own side connections, application_name pglens-..., are not the pool's).
sample_backends() {
  local max=0 n
  while [ ! -f "$work/stop" ]; do
    n=$(psql -X -p "$PG_DIRECT_PORT" -qAtc \
      "SELECT count(*) FROM pg_stat_activity WHERE datname = '$db'
         AND backend_type = 'client backend' AND application_name NOT LIKE 'pglens-%'" \
      2>/dev/null || echo 0)
    [ "$n" -gt "$max" ] && max=$n
    echo "$max" >"$work/max_backends"
    sleep 0.2
  done
}

for mode in simple extended prepared; do
  rm -f "$work/stop" "$work/max_backends"
  sample_backends &
  sampler=$!
  out=$(pgbench -p "$PGLENS_PORT" -c 64 -j 64 -T "$seconds" -M "$mode" "$db" 2>&1) || {
    touch "$work/stop"; wait "$sampler"
    echo "$out"
    fail "pgbench -M $mode exited non-zero"
  }
  touch "$work/stop"
  wait "$sampler"
  max_backends=$(cat "$work/max_backends" 2>/dev/null || echo "?")
  processed=$(grep -oP 'number of transactions actually processed: \K[0-9]+' <<<"$out" || true)
  failed=$(grep -oP 'number of failed transactions: \K[0-9]+' <<<"$out" || true)
  tps=$(grep -oP 'tps = \K[0-9.]+' <<<"$out" | head -1 || true)
  echo "pgbench -M $mode, 64 clients, pool of 8: $processed transactions, $failed failed, $tps tps, at most $max_backends server connections"
  [ "$failed" = 0 ] || { echo "$out"; fail "pgbench -M $mode had ${failed:-unknown} failed transactions"; }
  [ "${processed:-0}" -gt 0 ] || { echo "$out"; fail "pgbench -M $mode processed nothing"; }
  [ "$max_backends" -le 8 ] || fail "pgbench -M $mode: $max_backends server connections on a pool of 8"
  if grep -qi "error" <<<"$out"; then echo "$out"; fail "pgbench -M $mode reported errors"; fi
done
echo "pooling pgbench ok"
