#!/usr/bin/python3
"""The grading against the database standards, the pool wait per fingerprint and the cache rule,
end to end: real traffic with psycopg2 through pglens (a pool of 2 and 8 concurrent clients, so
statements wait for a server connection), then /api/fingerprints, /api/advice, /metrics, SHOW
FINGERPRINTS and pglens report."""
import atexit
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from pglens_test import cluster_port, free_port, wait_until_listening  # noqa: E402

PGLENS = os.environ.get("PGLENS_BIN", "build/bin/pglens")
PGPORT = cluster_port()
DIRECT = f"host=127.0.0.1 port={PGPORT} user=postgres dbname=pglens_test"

PK_LOOKUP = "SELECT name FROM grading_users WHERE id = $1"
SEQ_SCAN = "SELECT id FROM grading_big WHERE account_id = $1"
SETTINGS = "SELECT value FROM grading_settings WHERE key = $1"
COUNTER = "SELECT n FROM grading_counter WHERE id = $1"
BUMP = "UPDATE grading_counter SET n = n + $1 WHERE id = $2"
TOUCH = "UPDATE grading_settings SET value = value WHERE key = $1"
LOG = "INSERT INTO grading_log (note) VALUES ($1)"

checks = 0
proc = None
workdir = tempfile.mkdtemp(prefix="pglens-grading-")


def check(condition, message):
    global checks
    checks += 1
    if not condition:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
            print("---- pglens log ----")
            print(open(os.path.join(workdir, "pglens.log")).read()[-4000:])
        raise SystemExit("FAIL: " + message)


@atexit.register
def stop():
    if proc is not None and proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=10)


def run(dsn, statements):
    """Runs (sql, params) pairs on one autocommit connection."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        for sql, params in statements:
            cur.execute(sql, params)
            if cur.description is not None:
                cur.fetchall()
    conn.close()


def concurrently(dsn, jobs):
    """Each job (a list of statements) on a client of its own, all at once."""
    errors = []

    def one(statements):
        try:
            run(dsn, statements)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    check(not errors, f"client errors: {errors}")


run(DIRECT, [("""
    DROP TABLE IF EXISTS grading_users, grading_big, grading_settings, grading_counter, grading_log;
    CREATE TABLE grading_users (id int PRIMARY KEY, name text NOT NULL);
    INSERT INTO grading_users SELECT i, 'user ' || i FROM generate_series(1, 2000) i;
    CREATE TABLE grading_big (id bigserial PRIMARY KEY, account_id int NOT NULL, payload text);
    INSERT INTO grading_big (account_id, payload)
      SELECT i % 5000, repeat('x', 40) FROM generate_series(1, 60000) i;
    CREATE TABLE grading_settings (key text PRIMARY KEY, value text NOT NULL);
    INSERT INTO grading_settings VALUES ('currency', 'EUR'), ('locale', 'fr_FR'), ('theme', 'dark');
    CREATE TABLE grading_counter (id int PRIMARY KEY, n int NOT NULL);
    INSERT INTO grading_counter VALUES (1, 0);
    CREATE TABLE grading_log (id serial PRIMARY KEY, note text);
    ANALYZE grading_users, grading_big, grading_settings, grading_counter;
""", None)])

port, http = free_port(), free_port()
config = os.path.join(workdir, "pglens.toml")
with open(config, "w") as f:
    f.write(f'[pglens]\nlisten = "127.0.0.1:{port}"\nupstream = "postgresql://127.0.0.1:{PGPORT}"\n'
            f'http = "127.0.0.1:{http}"\npool_mode = "transaction"\npool_size = 2\nmax_overflow = 0\n'
            f'index_min_total_ms = 5\nadmin_users = ["postgres"]\n')
log = open(os.path.join(workdir, "pglens.log"), "w")
proc = subprocess.Popen([PGLENS, "--config", config], stdout=log, stderr=subprocess.STDOUT)
wait_until_listening(port)


def dsn(app):
    return f"host=127.0.0.1 port={port} user=postgres dbname=pglens_test application_name={app}"


def get(path):
    with urllib.request.urlopen(f"http://127.0.0.1:{http}{path}", timeout=5) as r:
        body = r.read().decode()
    return json.loads(body) if path.startswith("/api/") else body


def pg(sql):  # psycopg2 interpolates client-side: %s where the statement has $1
    return sql.replace("$1", "%s").replace("$2", "%s")


# Primary-key lookups (each id once: no repeat a cache could serve) and a scan of a 60,000-row
# table on an unindexed column, by 8 clients at once through a pool of 2.
jobs = [[(pg(PK_LOOKUP), (c * 100 + i + 1,)) for i in range(100)] +
        [(pg(SEQ_SCAN), (c * 5 + i,)) for i in range(5)] for c in range(8)]
concurrently(dsn("grading"), jobs)
# The same settings read again and again, always the same rows: a cache opportunity. Writes that
# leave the rows as they were are still writes.
concurrently(dsn("settings"), [[(pg(SETTINGS), (k,)) for _ in range(10) for k in ("currency", "locale", "theme")]
                               for _ in range(2)])
run(dsn("writes"), [(pg(TOUCH), ("currency",)) for _ in range(30)] + [(pg(LOG), ("same",)) for _ in range(30)])
# A read whose result changes every time: bumped before each read.
run(dsn("counter"), [s for i in range(30) for s in ((pg(BUMP), (1, 1)), (pg(COUNTER), (1,)))])


def rows_by_query():
    return {r["query"]: r for r in get("/api/fingerprints?limit=1000")["fingerprints"]}


# The scan is graded once the missing-index rule's worker has EXPLAINed it (after its 10th call).
deadline = time.time() + 60
while time.time() < deadline:
    rows = rows_by_query()
    planned = [q for q in (PK_LOOKUP, SEQ_SCAN) if rows.get(q, {}).get("standard", {}).get("basis") == "plan"]
    if len(planned) == 2:
        break
    time.sleep(0.5)
rows = rows_by_query()
for q in (PK_LOOKUP, SEQ_SCAN, SETTINGS, COUNTER, BUMP, TOUCH, LOG):
    check(q in rows, f"no fingerprint row for {q}: {list(rows)}")

pk, scan = rows[PK_LOOKUP], rows[SEQ_SCAN]
check(pk["standard"]["class"] == "primary_key_lookup" and pk["standard"]["limit_ms"] == 1, json.dumps(pk["standard"]))
check(pk["standard"]["basis"] == "plan", f"the primary-key lookup was not graded on its plan: {pk['standard']}")
check(abs(pk["standard"]["over_by"] - pk["p95_ms"] / 1.0) < 1e-9, json.dumps(pk))
check(pk["standard"]["grade"] == ("over" if pk["p95_ms"] > 1 else "ok"), json.dumps(pk["standard"]))
check(scan["standard"] == {"class": "full_scan", "limit_ms": None, "grade": "avoid", "over_by": None,
                           "basis": "plan"}, json.dumps(scan["standard"]))
# `key = $1` is no `id = $1`: an indexed read by its shape (a 3-row table is scanned whole, and a
# scan of a small table leaves the shape's class standing).
check(rows[SETTINGS]["standard"]["class"] == "indexed", json.dumps(rows[SETTINGS]["standard"]))
for q in (BUMP, TOUCH, LOG):
    check(rows[q]["standard"]["class"] == "write" and rows[q]["standard"]["grade"] == "n/a",
          json.dumps(rows[q]["standard"]))
print(f"grading: {PK_LOOKUP} p95 {pk['p95_ms']:.3f} ms -> {pk['standard']['grade']} "
      f"({pk['standard']['over_by']:.2f} of 1 ms, plan); the 60,000-row scan -> avoid (full_scan, plan)")

# Pool wait: 8 clients on 2 connections waited; every call's wait is counted, zero or not.
waited = 0.0
for r in rows.values():
    w = r["pool_wait"]
    check(set(w) == {"total_ms", "mean_ms", "p95_ms", "max_ms"}, json.dumps(w))
    check(0 <= w["p95_ms"] <= w["max_ms"] * 1.13 + 1e-9 and w["max_ms"] <= w["total_ms"] + 1e-9, json.dumps(w))
    check(abs(w["mean_ms"] - w["total_ms"] / r["calls"]) < 1e-6, json.dumps(r))
    waited += w["total_ms"]
check(pk["pool_wait"]["total_ms"] > 0 and pk["pool_wait"]["max_ms"] > 0,
      f"the lookups of 8 clients on 2 connections never waited: {pk['pool_wait']}")
print(f"pool wait: the lookups waited {pk['pool_wait']['total_ms']:.1f} ms in all "
      f"(max {pk['pool_wait']['max_ms']:.2f} ms); {waited:.1f} ms over every fingerprint")

# The latency histogram: upper bounds rising, one count per call.
for r in rows.values():
    h = r["histogram"]
    check(len(h["le_ms"]) == len(h["counts"]) and sum(h["counts"]) == r["calls"], json.dumps(h))
    check(all(a < b for a, b in zip(h["le_ms"], h["le_ms"][1:])), json.dumps(h))
    check(h["le_ms"][-1] >= r["max_ms"], f"{h['le_ms'][-1]} < max {r['max_ms']}")
print(f"histogram: {len(pk['histogram']['counts'])} buckets for {pk['calls']} lookups")

# The cache rule: the settings read only (60 calls, 3 keys: 57 would have been cache hits).
deadline = time.time() + 20
cache = []
while time.time() < deadline:
    cache = [f for f in get("/api/advice")["findings"] if f["rule"] == "cache_opportunity"]
    if cache and cache[0]["calls"] == 60:
        break
    time.sleep(0.25)
time.sleep(2.5)  # anything else the rule would say has been said by now
cache = [f for f in get("/api/advice")["findings"] if f["rule"] == "cache_opportunity"]
check(len(cache) == 1, f"expected one cache finding: {json.dumps(cache, indent=1)}")
f = cache[0]
check(f["query"] == SETTINGS and f["application_name"] == "settings", json.dumps(f))
check(f["calls"] == 60 and f["distinct_keys"] == 3 and f["hits"] == 57, json.dumps(f))
check(abs(f["hit_rate"] - 0.95) < 1e-9 and f["suggested_ttl_s"] >= 1 and f["saved_ms"] > 0, json.dumps(f))
check(f["estimated_savings_ms"] == f["saved_ms"] and not f["resolved"], json.dumps(f))
print(f"cache_opportunity: {f['advice']}")
print("cache_opportunity: none for the primary-key lookups, the scan, the changing counter or the writes")

# /metrics: the grade and the pool wait of the top fingerprints.
fp = {q: rows[q]["fingerprint"] for q in rows}
deadline = time.time() + 10
while time.time() < deadline:
    metrics = get("/metrics")
    if f'pglens_fingerprint_over_standard{{fingerprint="{fp[PK_LOOKUP]}",standard="primary_key_lookup"}}' in metrics:
        break
    time.sleep(0.25)
gauges = {}
for line in metrics.splitlines():
    if line.startswith("pglens_fingerprint_over_standard{"):
        labels, value = line.rsplit(" ", 1)
        gauges[labels] = float(value)
key = f'pglens_fingerprint_over_standard{{fingerprint="{fp[PK_LOOKUP]}",standard="primary_key_lookup"}}'
check(key in gauges, f"no {key} in {gauges}")
check(gauges[key] > 0, str(gauges))
check(not any(fp[SEQ_SCAN] in k or fp[LOG] in k for k in gauges), f"a scan or a write has a limit: {gauges}")
wait_sum = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("pglens_fingerprint_pool_wait_seconds_sum{"))
check(wait_sum > 0, "pglens_fingerprint_pool_wait_seconds_sum is zero everywhere")
check(f'pglens_fingerprint_pool_wait_seconds_count{{fingerprint="{fp[PK_LOOKUP]}"}}' in metrics,
      "no pool wait series for the lookups")
check('pglens_findings{rule="cache_opportunity",severity="' in metrics, "no pglens_findings for the cache rule")
print(f"metrics: {key} {gauges[key]:.3f}; pool wait {wait_sum * 1000:.1f} ms in "
      "pglens_fingerprint_pool_wait_seconds_sum")

# SHOW FINGERPRINTS: the same grade and pool wait, by column name.
out = subprocess.run(["psql", "-X", "-A", "-F", "\t", f"host=127.0.0.1 port={port} user=postgres dbname=pglens",
                      "-c", "SHOW FINGERPRINTS"], check=True, capture_output=True, text=True).stdout.splitlines()
header = out[0].split("\t")
table = [dict(zip(header, line.split("\t"))) for line in out[1:] if line.count("\t") == len(header) - 1]
by_query = {r["query"]: r for r in table}
for column in ("standard", "standard_limit_ms", "grade", "over_by", "basis", "pool_wait_total_ms",
               "pool_wait_mean_ms", "pool_wait_p95_ms", "pool_wait_max_ms"):
    check(column in header, f"SHOW FINGERPRINTS lacks {column}: {header}")
s = by_query.get(SEQ_SCAN)
check(s is not None and s["standard"] == "full_scan" and s["grade"] == "avoid" and s["basis"] == "plan"
      and s["standard_limit_ms"] == "", json.dumps(s))
s = by_query.get(PK_LOOKUP)
check(s is not None and s["standard"] == "primary_key_lookup" and s["standard_limit_ms"] == "1.000"
      and float(s["pool_wait_total_ms"]) > 0, json.dumps(s))
check(s["grade"] == "ok" or s["grade"].startswith("over "), s["grade"])
print(f"SHOW FINGERPRINTS: lookups {s['grade']}, pool wait {float(s['pool_wait_total_ms']):.1f} ms")

# pglens report, in each format.
for fmt, needles in (("text", ["avoid (full_scan, plan)", "pool wait p95", "cache_opportunity", "hit_rate=0.95"]),
                     ("markdown", ["| standard (p95) |", "avoid (full_scan, plan)", "cache_opportunity"]),
                     ("json", ['"standard"', '"pool_wait"', '"cache_opportunity"'])):
    report = subprocess.run([PGLENS, "report", "--from", f"http://127.0.0.1:{http}", "--format", fmt],
                            check=True, capture_output=True, text=True).stdout
    for needle in needles:
        check(needle in report, f"report --format {fmt} lacks {needle!r}:\n{report[:3000]}")
print("pglens report: grades, pool wait and the cache finding in text, markdown and json")

proc.terminate()
proc.wait(timeout=10)
run(DIRECT, [("DROP TABLE grading_users, grading_big, grading_settings, grading_counter, grading_log", None)])
print(f"{checks} passed, 0 failed")
