#!/usr/bin/env bash
# psql through pglens: \copy in and out of 100k rows, LISTEN/NOTIFY, an error mid-transaction.
source "$(dirname "$0")/../support/lib.sh"
start_pglens --upstream "postgresql://127.0.0.1:$PG_DIRECT_PORT" --pool-mode session
via=(psql -X -v ON_ERROR_STOP=1 -p "$PGLENS_PORT")
direct=(psql -X -v ON_ERROR_STOP=1 -p "$PG_DIRECT_PORT")

echo "== \\copy 100k rows in and out"
"${direct[@]}" -qc "DROP TABLE IF EXISTS copy_rt; CREATE TABLE copy_rt (id int, name text, score float8)"
"${direct[@]}" -qAtc "COPY (SELECT i, 'name ' || i || repeat('x', i % 50), (i * 0.5)::float8 FROM generate_series(1, 100000) i) TO STDOUT" >"$work/in.tsv"
"${via[@]}" -qc "\\copy copy_rt FROM '$work/in.tsv'"
rows=$("${direct[@]}" -qAtc "SELECT count(*) FROM copy_rt")
[ "$rows" = 100000 ] || fail "expected 100000 rows after \\copy in, got $rows"
"${via[@]}" -qc "\\copy (SELECT * FROM copy_rt ORDER BY id) TO '$work/out.tsv'"
in_sum=$(sha256sum <"$work/in.tsv" | cut -d' ' -f1)
out_sum=$(sha256sum <"$work/out.tsv" | cut -d' ' -f1)
[ "$in_sum" = "$out_sum" ] || fail "checksums differ: in $in_sum, out $out_sum"
echo "copy round trip ok: 100000 rows, sha256 $in_sum"

echo "== LISTEN/NOTIFY"
"${via[@]}" -c "LISTEN pglens_ch" -c "SELECT pg_sleep(1.5)" >"$work/listen.out" 2>&1 &
listener=$!
sleep 0.5
"${via[@]}" -qc "NOTIFY pglens_ch, 'payload-42'"
wait "$listener"
grep -q 'Asynchronous notification "pglens_ch" with payload "payload-42"' "$work/listen.out" ||
  { cat "$work/listen.out"; fail "notification not delivered"; }
echo "notification ok"

echo "== error mid-transaction, then ROLLBACK"
out=$(psql -X -p "$PGLENS_PORT" 2>&1 <<'SQL'
BEGIN;
SELECT 1/0;
SELECT 'ignored';
ROLLBACK;
SELECT 'after' || ' rollback';
SQL
)
echo "$out"
grep -q "division by zero" <<<"$out" || fail "no division-by-zero error"
grep -q "current transaction is aborted" <<<"$out" || fail "transaction was not aborted"
grep -q "after rollback" <<<"$out" || fail "session unusable after ROLLBACK"
echo "psql clients ok"
