#!/usr/bin/python3
"""pglens report --from A --from B: two real pglens instances (two replicas of one deployment)
with traffic of their own, and the merged report against each one's own answers: a statement's
calls, rows and total time are the sums, its p95 the greater, an N+1 finding's count the sum;
the comma-separated form gives the same report.
Environment: PGLENS_BIN, PGLENS_TEST_CLUSTER_DIR (ctest sets them).
"""
import atexit
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from pglens_test import (check, cluster_port, failures, free_port, stop,  # noqa: E402
                         wait_until_listening)

PGLENS = os.environ.get("PGLENS_BIN", "build/bin/pglens")
WORKLOAD = os.path.join(os.path.dirname(PGLENS), "pglens-demo-workload")
PGPORT = cluster_port()
DB = f"pglens_replicas_{os.getpid()}"
WORK = tempfile.mkdtemp(prefix="pglens-replicas-")
RUNNING = []


@atexit.register
def cleanup():
    stop(RUNNING)
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-p", PGPORT, "-U", "postgres", "--if-exists",
                    "--force", DB], capture_output=True)


def start(name):
    port, http = free_port(), free_port()
    config = os.path.join(WORK, name + ".toml")
    with open(config, "w") as f:
        f.write(f'[pglens]\nlisten = "127.0.0.1:{port}"\nupstream = "postgresql://127.0.0.1:{PGPORT}"\n'
                f'http = "127.0.0.1:{http}"\npool_size = 4\n')
    proc = subprocess.Popen([PGLENS, "--config", config], stdout=open(os.path.join(WORK, name + ".log"), "w"),
                            stderr=subprocess.STDOUT)
    RUNNING.append(proc)
    wait_until_listening(port)
    proc.dsn = f"host=127.0.0.1 port={port} user=postgres dbname={DB} application_name=app"
    proc.url = f"http://127.0.0.1:{http}"
    return proc


def get(url, path):
    with urllib.request.urlopen(url + path, timeout=5) as r:
        return json.load(r)


def report(*args):
    r = subprocess.run([PGLENS, "report", *args, "--format", "json"], capture_output=True, text=True)
    check(r.returncode == 0, f"pglens report {args}: {r.returncode} {r.stderr}")
    return json.loads(r.stdout) if r.returncode == 0 else {}


def n_plus_one_count(url):
    return sum(f["count"] for f in get(url, "/api/advice")["findings"] if f["rule"] == "n_plus_one")


subprocess.run(["createdb", "-h", "127.0.0.1", "-p", PGPORT, "-U", "postgres", DB], check=True)
subprocess.run([WORKLOAD, "--dsn", f"host=127.0.0.1 port={PGPORT} user=postgres dbname={DB}", "setup"],
               check=True)
a, b = start("a"), start("b")
# Different amounts on each: the lookups 30 and 50 times, the N+1 once and twice.
subprocess.run([WORKLOAD, "--dsn", a.dsn, "indexed_lookups", "--times", "30", "n_plus_one"], check=True)
subprocess.run([WORKLOAD, "--dsn", b.dsn, "indexed_lookups", "--times", "50", "n_plus_one", "n_plus_one"],
               check=True)

# The analyzer works off the forwarding path: wait until each has judged its N+1 runs.
deadline = time.time() + 20
while time.time() < deadline and (n_plus_one_count(a.url) < 1 or n_plus_one_count(b.url) < 2):
    time.sleep(0.25)
check(n_plus_one_count(a.url) >= 1 and n_plus_one_count(b.url) >= 2, "the N+1 findings did not appear")

own = {}
for proc in (a, b):
    own[proc] = {(s["fingerprint"], s["database"], s["user"], s["application_name"]): s
                 for s in get(proc.url, "/api/fingerprints?limit=1000")["fingerprints"]}
merged = report("--from", a.url, "--from", b.url)
check(merged.get("replicas") == [a.url, b.url], f"replicas: {merged.get('replicas')}")
rows = {(s["fingerprint"], s["database"], s["user"], s["application_name"]): s
        for s in merged.get("fingerprints", [])}
lookup = [k for k, s in rows.items() if s["calls"] == 80 and "WHERE" in s["query"]]
check(lookup, "no statement with 30 + 50 calls in the merged report: " +
      json.dumps([(s["query"], s["calls"]) for s in rows.values()]))
for key, s in rows.items():
    mine = [own[p][key] for p in (a, b) if key in own[p]]
    check(s["calls"] == sum(m["calls"] for m in mine), f"{s['query']}: calls {s['calls']}")
    check(s["rows"] == sum(m["rows"] for m in mine), f"{s['query']}: rows {s['rows']}")
    check(abs(s["total_ms"] - sum(m["total_ms"] for m in mine)) < 1e-6, f"{s['query']}: total_ms")
    check(s["p95_ms"] == max(m["p95_ms"] for m in mine), f"{s['query']}: p95 is not the greater")
nplus = [f for f in merged.get("findings", []) if f["rule"] == "n_plus_one"]
check(len(nplus) == 1 and nplus[0]["count"] == n_plus_one_count(a.url) + n_plus_one_count(b.url),
      f"merged N+1 findings: {json.dumps(nplus)[:500]}")
check(report("--from", f"{a.url},{b.url}") == merged, "the comma-separated --from gave another report")
text = subprocess.run([PGLENS, "report", "--from", f"{a.url},{b.url}"], capture_output=True, text=True).stdout
check("2 replicas merged" in text and "upper bound" in text, "the text report does not say it merged:\n" + text[:500])

if failures:
    sys.exit(1)
print(f"report of 2 replicas: {len(rows)} statements and {len(nplus)} N+1 finding merged")
