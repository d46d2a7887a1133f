#!/usr/bin/env bash
# pgbench through pglens in session mode: tpcb-like, 16 clients, 10 s, in each query mode,
# with zero errors.
source "$(dirname "$0")/../support/lib.sh"
start_pglens --upstream "postgresql://127.0.0.1:$PG_DIRECT_PORT" --pool-mode session --pool-size 32
seconds=${PGLENS_PGBENCH_SECONDS:-10}
backend=$(grep -oP 'I/O backend: \K[a-z_]+' "$PGLENS_LOG" | tail -1)
echo "I/O backend: $backend"
case "${PGLENS_TEST_ARGS:-}" in
  *io_uring*) [ "$backend" = io_uring ] || fail "asked for io_uring, runs '$backend'" ;;
esac

pgbench_database modes 4
for mode in simple extended prepared; do
  out=$(pgbench -p "$PGLENS_PORT" -c 16 -j 2 -T "$seconds" -M "$mode" "$db" 2>&1) || {
    echo "$out"
    fail "pgbench -M $mode exited non-zero"
  }
  tps=$(grep -oP 'tps = \K[0-9.]+' <<<"$out" | head -1)
  processed=$(grep -oP 'number of transactions actually processed: \K[0-9]+' <<<"$out")
  failed=$(grep -oP 'number of failed transactions: \K[0-9]+' <<<"$out")
  echo "pgbench -M $mode: $processed transactions, $failed failed, $tps tps"
  [ "$failed" = 0 ] || fail "pgbench -M $mode had $failed failed transactions"
  [ "$processed" -gt 0 ] || fail "pgbench -M $mode processed nothing"
done
