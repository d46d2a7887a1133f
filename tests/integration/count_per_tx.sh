#!/usr/bin/env bash
# bench/count_per_tx.sh at its smallest: pglens (epoll) and PgBouncer, 8 clients on a pool of 4,
# pgbench -S -M extended, 20 transactions per client. Every figure must be there and sane:
# instructions and syscalls per transaction above zero (pglens forwards at least a send each
# way per transaction), PgBouncer's too; the JSON holds both rows. Its own Postgres.
source "$(dirname "$0")/../support/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
# epoll only: valgrind holds its global lock through a blocking io_uring_enter, so under it
# pglens-io_uring's resolver thread can starve and its first server connect never start
# (liburing issue #657); natively the io_uring: tests cover that backend.
"$root/bench/count_per_tx.sh" --pglens "$PGLENS_BIN" --cases 8:4 --modes extended \
  --analysis on --tx 20 --backends epoll --json "$work/counts.json" >"$work/table.md" \
  2>"$work/progress.log" || {
  cat "$work/progress.log" "$work/table.md"
  fail "count_per_tx.sh failed"
}
cat "$work/table.md"
/usr/bin/python3 - "$work/counts.json" <<'PY' || fail "figures missing or implausible"
import json, sys
rows = json.load(open(sys.argv[1]))
proxies = {r["proxy"] for r in rows}
assert {"pglens:epoll", "pgbouncer"} <= proxies, proxies
for r in rows:
    assert r["transactions"] == 160, r
    assert 1_000 < r["instructions"] < 1_000_000, r
    assert r["by_name"].get("sendto", 0) + r["by_name"].get("sendmsg", 0) >= 1.9, r
    # Allocations and switches are differences of two short runs: at this size the analyzer's
    # batching alone can move them by a few per transaction either way; only their presence counts.
    assert isinstance(r["allocations"], float) and isinstance(r["switches"], float), r
print("count_per_tx: " + ", ".join(f"{r['proxy']} {r['instructions']:,.0f} instructions/tx, "
                                    f"{r['syscalls']:.2f} syscalls/tx" for r in rows))
PY
