#!/usr/bin/python3
"""The rules end to end: real workloads through pglens against the real Postgres, positive and
negative, checking the exact findings /api/advice reports (rule, table, columns, parent column)."""
import atexit
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from pglens_test import cluster_port, free_port, wait_until_listening  # noqa: E402

BIN = os.path.dirname(os.environ.get("PGLENS_BIN", "build/bin/pglens"))
PGLENS = os.path.join(BIN, "pglens")
WORKLOAD = os.path.join(BIN, "pglens-demo-workload")
PGPORT = cluster_port()
DIRECT = f"host=127.0.0.1 port={PGPORT} user=postgres dbname=pglens_test"


RUNNING = []


@atexit.register
def stop_all():
    # Whatever fails, no pglens outlives the test.
    for p in RUNNING:
        p.stop()


class Pglens:
    def __init__(self, extra_config=""):
        RUNNING.append(self)
        self.port, self.http = free_port(), free_port()
        self.dir = tempfile.mkdtemp(prefix="pglens-rules-")
        config = os.path.join(self.dir, "pglens.toml")
        with open(config, "w") as f:
            f.write(f'[pglens]\nlisten = "127.0.0.1:{self.port}"\nupstream = "postgresql://127.0.0.1:{PGPORT}"\n'
                    f'http = "127.0.0.1:{self.http}"\npool_size = 4\nindex_min_total_ms = 5\n'
                    f'admin_users = ["postgres"]\n{extra_config}\n')
        self.log = open(os.path.join(self.dir, "pglens.log"), "w")
        self.proc = subprocess.Popen([PGLENS, "--config", config], stdout=self.log, stderr=subprocess.STDOUT)
        wait_until_listening(self.port)

    def dsn(self, app):
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=pglens_test application_name={app}"

    def advice(self, rule=None):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/api/advice", timeout=5) as r:
            findings = json.load(r)["findings"]
        return [f for f in findings if rule is None or f["rule"] == rule]

    def wait_for(self, predicate, what, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.25)
        self.fail(f"timed out waiting for {what}; findings: {json.dumps(self.advice(), indent=1)}")

    def quiet(self, rule, seconds=2.5):
        """No finding of this rule appears within a few seconds (runs are judged after 1 s)."""
        time.sleep(seconds)
        found = self.advice(rule)
        if found:
            self.fail(f"unexpected {rule} finding: {json.dumps(found, indent=1)}")

    def fail(self, message):
        self.stop()
        print("---- pglens log ----")
        print(open(os.path.join(self.dir, "pglens.log")).read()[-4000:])
        raise SystemExit("FAIL: " + message)

    def stop(self):
        if getattr(self, "proc", None) is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def workload(dsn, *scenarios, times=None, rows=None):
    cmd = [WORKLOAD, "--dsn", dsn, *scenarios]
    if times:
        cmd += ["--times", str(times)]
    if rows:
        cmd += ["--rows", str(rows)]
    subprocess.run(cmd, check=True)


def psql(sql):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", DIRECT, "-c", sql], check=True)


checks = 0


def check(condition, message):
    global checks
    checks += 1
    if not condition:
        raise SystemExit("FAIL: " + message)


workload(DIRECT, "setup")  # directly: the setup itself is no advice

# ---- N+1 ----
p = Pglens()
workload(p.dsn("join"), "n_plus_one_join")
workload(p.dsn("any"), "n_plus_one_any")
workload(p.dsn("random"), "random_lookups")
p.quiet("n_plus_one")
print("n_plus_one: JOIN, = ANY and random point lookups draw no finding")
workload(p.dsn("lazy"), "n_plus_one")
[f] = p.wait_for(lambda: p.advice("n_plus_one"), "the N+1 finding")
check(f["query"] == "SELECT id, total FROM demo_orders WHERE customer_id = $1", f["query"])
check(f["parent_query"] == "SELECT id, name FROM demo_customers ORDER BY id LIMIT $1", f["parent_query"])
check(f["parent_column"] == "id", f["parent_column"])
check(f["executions_per_occurrence"] == 20, str(f["executions_per_occurrence"]))
check(f["application_name"] == "lazy", f["application_name"])
check("customer_id = ANY($1)" in f["fix"], f["fix"])
print("n_plus_one: lazy loading found:", f["advice"][:100], "...")

# ---- row by row ----
workload(p.dsn("bulk"), "multi_row", "copy", rows=50)
p.quiet("row_by_row_insert")
print("row_by_row_insert: multi-row VALUES and COPY draw no finding")
workload(p.dsn("loop"), "row_by_row_autocommit", rows=30)
[f] = p.wait_for(lambda: p.advice("row_by_row_insert"), "the row-by-row finding")
check(f["table"] == "demo_audit" and f["rows"] == 30 and f["transactions"] == 30, json.dumps(f))
check(f["severity"] == "high", f["severity"])
check("COPY demo_audit FROM STDIN" in f["fix"], f["fix"])
workload(p.dsn("loop"), "row_by_row_transaction", rows=30)
[f] = p.wait_for(lambda: [f for f in p.advice("row_by_row_insert") if f["count"] == 2], "the second occurrence")
check(f["severity"] == "medium" and f["transactions"] == 1, json.dumps(f))
# A pipeline of 30 rows in one round trip is the driver's batch call: no new occurrence.
workload(p.dsn("loop"), "row_by_row_pipelined", rows=30)
time.sleep(2.5)
[f] = p.advice("row_by_row_insert")
check(f["count"] == 2, json.dumps(f))
print("row_by_row_insert: autocommit high, one transaction medium, a pipeline none")

# ---- missing index ----
workload(p.dsn("pk"), "indexed_lookups", times=40)
workload(p.dsn("small"), "small_table_lookups", times=40)
p.quiet("missing_index", 3)
print("missing_index: primary-key lookups and a small table draw no finding")
workload(p.dsn("scan"), "unindexed_lookups", times=40)
[f] = p.wait_for(lambda: p.advice("missing_index"), "the missing-index finding")
check(f["table"] == "public.demo_events" and f["columns"] == ["account_id"], json.dumps(f))
check(f["fix"] == 'CREATE INDEX CONCURRENTLY ON "public"."demo_events" ("account_id");', f["fix"])
check(f["hypopg"] and f["cost_after"] <= f["cost_before"] / 2, json.dumps(f))
print(f"missing_index: found with hypopg, cost {f['cost_before']:.1f} -> {f['cost_after']:.1f}")

# ---- the same findings in the admin console and the report ----
console = subprocess.run(["psql", "-X", "-At", "-F", "|", f"host=127.0.0.1 port={p.port} user=postgres dbname=pglens",
                          "-c", "SHOW ADVICE"], check=True, capture_output=True, text=True).stdout
# A fix spans several lines; each row starts with its rule.
rules_in_console = sorted(line.split("|")[0] for line in console.splitlines()
                          if line.split("|")[0] in ("missing_index", "n_plus_one", "row_by_row_insert"))
check(rules_in_console == ["missing_index", "n_plus_one", "row_by_row_insert"], console)
fingerprints = subprocess.run(["psql", "-X", "-At", f"host=127.0.0.1 port={p.port} user=postgres dbname=pglens",
                               "-c", "SHOW FINGERPRINTS"], check=True, capture_output=True, text=True).stdout
check("SELECT id, total FROM demo_orders WHERE customer_id = $1" in fingerprints, fingerprints[:500])
for fmt, needle in (("text", "Fix:"), ("markdown", "```sql"), ("json", '"findings"')):
    report = subprocess.run([PGLENS, "report", "--from", f"http://127.0.0.1:{p.http}", "--format", fmt],
                            check=True, capture_output=True, text=True).stdout
    check(needle in report and "CREATE INDEX CONCURRENTLY" in report and "n_plus_one" in report, report[:800])
print("SHOW ADVICE, SHOW FINGERPRINTS and pglens report (text, markdown, json) agree")
p.stop()

q = Pglens("index_use_hypopg = false")
workload(q.dsn("scan"), "unindexed_lookups", times=40)
[f] = q.wait_for(lambda: q.advice("missing_index"), "the finding without hypopg")
check(not f["hypopg"] and "cost_after" not in f and f["columns"] == ["account_id"], json.dumps(f))
print("missing_index: found from EXPLAIN alone without hypopg")
psql("CREATE INDEX CONCURRENTLY demo_events_account_id ON demo_events (account_id)")
deadline = time.time() + 30
while time.time() < deadline and not q.advice("missing_index")[0]["resolved"]:
    workload(q.dsn("scan"), "unindexed_lookups", times=20)
    time.sleep(1)
check(q.advice("missing_index")[0]["resolved"], "the finding was not resolved after CREATE INDEX")
print("missing_index: resolved once the index exists")
q.stop()
psql("DROP INDEX demo_events_account_id")

# ---- pgbench draws nothing ----
subprocess.run(["pgbench", "-i", "-s", "2", "-q", "-h", "127.0.0.1", "-p", PGPORT, "-U", "postgres", "pglens_test"],
               check=True, capture_output=True)
b = Pglens()
for script in ([], ["-S"]):
    for mode in ("simple", "extended", "prepared"):
        subprocess.run(["pgbench", "-n", *script, "-M", mode, "-c", "4", "-j", "4", "-T", "2", "-h", "127.0.0.1",
                        "-p", str(b.port), "-U", "postgres", "pglens_test"], check=True, capture_output=True)
b.quiet(None, 3)
check(b.advice() == [], "pgbench drew findings")
print("pgbench tpcb-like and -S, every query mode: no finding")
b.stop()
print(f"{checks} passed, 0 failed")
