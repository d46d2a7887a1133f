#!/usr/bin/env bash
# asyncpg through pglens in transaction mode, more clients than server connections: 20 concurrent
# connections with asyncpg's statement cache (its named prepared statements) on a pool of 4,
# fetchval with parameters over and over, in and out of transactions, with zero errors. A second
# round uses a tiny statement cache, so asyncpg keeps closing statements and preparing new ones;
# a third runs executemany batches (pipelined, one Sync) with a failing row in the middle.
source "$(dirname "$0")/../support/lib.sh"
start_pglens --upstream "postgresql://127.0.0.1:$PG_DIRECT_PORT" --pool-mode transaction \
  --pool-size 4 --max-overflow 0 --pool-timeout 30

timeout 90 /usr/bin/python3 - "$PGLENS_PORT" <<'PY'
import asyncio
import os
import sys
import time

import asyncpg

port = int(sys.argv[1])
CLIENTS, ROUNDS = 20, 30


async def client(i, cache_size):
    # cache_size None: asyncpg's default statement cache (100 statements).
    options = {} if cache_size is None else {"statement_cache_size": cache_size}
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres",
                                 database="pglens_test", **options)
    done = 0
    try:
        for j in range(ROUNDS):
            assert await conn.fetchval("SELECT $1::int * 1000 + $2::int", j, i) == j * 1000 + i
            assert await conn.fetchval("SELECT $1::text || '-' || $2::text", "c", str(i)) == f"c-{i}"
            done += 2
            if j % 3 == 0:
                async with conn.transaction():
                    assert await conn.fetchval("SELECT $1::bigint + 1", j) == j + 1
                    assert await conn.fetchval("SELECT txid_current() = txid_current()") is True
                    await conn.execute("SELECT pg_sleep(0.005)")
                done += 3
            if j % 5 == 0:
                rows = await conn.fetch("SELECT g, g::text AS t FROM generate_series(1, $1::int) g",
                                        j + 3)
                assert [r["g"] for r in rows] == list(range(1, j + 4))
                assert rows[-1]["t"] == str(j + 3)
                done += 1
            if cache_size == 2:
                # More distinct statements than the cache holds: asyncpg closes the evicted ones.
                k = (i + j) % 6
                assert await conn.fetchval(f"SELECT $1::int + {k}", j) == j + k
                done += 1
        stmt = await conn.prepare("SELECT $1::int * 3")
        for j in range(5):
            assert await stmt.fetchval(j) == j * 3
        done += 5
        return done
    finally:
        await conn.close()


async def round_of(cache_size):
    started = time.monotonic()
    results = await asyncio.wait_for(
        asyncio.gather(*(client(i, cache_size) for i in range(CLIENTS)), return_exceptions=True),
        60)
    errors = [r for r in results if isinstance(r, BaseException)]
    queries = sum(r for r in results if not isinstance(r, BaseException))
    label = "default" if cache_size is None else str(cache_size)
    print(f"asyncpg, {CLIENTS} clients on a pool of 4, statement_cache_size {label}: "
          f"{queries} queries in {time.monotonic() - started:.1f} s, {len(errors)} errors")
    for e in errors[:5]:
        print(f"  {type(e).__name__}: {e!r}")
    return not errors


async def batches(k, table):
    # executemany pipelines its Bind/Execute pairs behind one Sync; a duplicate key in the middle
    # fails the whole batch, and the server connection must come back clean.
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres",
                                 database="pglens_test")
    try:
        for r in range(10):
            base = k * 100000 + r * 1000
            await conn.executemany(f"INSERT INTO {table} VALUES ($1)",
                                   [(base + i,) for i in range(50)])
            try:
                await conn.executemany(f"INSERT INTO {table} VALUES ($1)",
                                       [(base + 500 + i,) for i in range(10)] + [(base,)] +
                                       [(base + 600 + i,) for i in range(10)])
                raise AssertionError("a duplicate key went through")
            except asyncpg.UniqueViolationError:
                pass
            n = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE i >= $1 AND i < $2",
                                    base, base + 1000)
            assert n == 50, f"{n} rows in batch {base}, expected 50"
        return 20
    finally:
        await conn.close()


async def pipelined_batches():
    table = f"pooling_asyncpg_{os.getpid()}"
    setup = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres",
                                  database="pglens_test")
    await setup.execute(f"CREATE TABLE {table} (i int PRIMARY KEY)")
    try:
        started = time.monotonic()
        results = await asyncio.wait_for(
            asyncio.gather(*(batches(k, table) for k in range(8)), return_exceptions=True), 60)
        errors = [r for r in results if isinstance(r, BaseException)]
        print(f"asyncpg executemany, 8 clients on a pool of 4: "
              f"{sum(r for r in results if not isinstance(r, BaseException))} batches in "
              f"{time.monotonic() - started:.1f} s, {len(errors)} errors")
        for e in errors[:5]:
            print(f"  {type(e).__name__}: {e!r}")
        return not errors
    finally:
        await setup.execute(f"DROP TABLE {table}")
        await setup.close()


async def main():
    ok = await round_of(None)
    ok = await round_of(2) and ok
    ok = await pipelined_batches() and ok
    return ok


sys.exit(0 if asyncio.run(main()) else 1)
PY
echo "pooling asyncpg ok"
