#!/usr/bin/python3
"""Real ORM and driver traffic through pglens against the real Postgres: SQLAlchemy 1.4 (psycopg2
and asyncpg), Django 3.2, psycopg2, psycopg 3, asyncpg, pgJDBC and node-postgres. Each case runs
on a fresh schema through a fresh pglens and asserts the exact findings /api/advice draws (rule,
fingerprint, statement, counts, the library the advice speaks to) and that there is no other.

    orm_corpus.py [CASE-SUBSTRING ...]     (PGLENS_BIN, PGLENS_TEST_CLUSTER_DIR as for ctest)
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "orm"))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
import django_cases  # noqa: E402
import driver_cases  # noqa: E402
import schema  # noqa: E402
import sqlalchemy_cases as sa  # noqa: E402
from pglens_test import cluster_port, free_port, wait_until_listening  # noqa: E402

PGLENS = os.path.join(os.path.dirname(os.environ.get("PGLENS_BIN", "build/bin/pglens")), "pglens")
PGPORT = cluster_port()
DIRECT = f"host=127.0.0.1 port={PGPORT} user=postgres dbname=pglens_test"
JDBC_JAR = "/usr/share/java/postgresql.jar"
NODE_MODULES = os.environ.get("PGLENS_NODE_MODULES", os.path.expanduser("~/.cache/pglens-node"))


class Pglens:
    def __init__(self):
        self.port, self.http = free_port(), free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="pglens-orm-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [PGLENS, "--listen", f"127.0.0.1:{self.port}", "--upstream", f"postgresql://127.0.0.1:{PGPORT}",
             "--http", f"127.0.0.1:{self.http}", "--pool-size", "4"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_until_listening(self.port)

    def url(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{schema.DATABASE}"

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=5) as r:
            return json.load(r)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        os.unlink(self.log.name)


def jdbc(case):
    def run(url):
        port = url.split(":")[2].split("/")[0]
        subprocess.run(["java", "-cp", JDBC_JAR, os.path.join(HERE, "orm", "JdbcCases.java"), port, case],
                       check=True, timeout=120)
    return run


def node(case):
    def run(url):
        port = url.split(":")[2].split("/")[0]
        subprocess.run(["node", os.path.join(HERE, "orm", "node_cases.js"), port, case], check=True, timeout=60,
                       env=dict(os.environ, NODE_PATH=os.path.join(NODE_MODULES, "node_modules")))
    return run


def n_plus_one(query, executions, parent, parent_rows, parent_column, direction, client, words):
    return dict(rule="n_plus_one", query=query, executions_per_occurrence=executions, parent_query=parent,
                parent_rows=parent_rows, parent_column=parent_column, direction=direction, client=client,
                words=words)


def row_by_row(query, rows, transactions, client, words):
    return dict(rule="row_by_row_insert", query=query, rows=rows, transactions=transactions, round_trips=rows,
                table="events", client=client, words=words)


C, O = schema.CUSTOMERS, schema.CUSTOMERS * schema.ORDERS_PER_CUSTOMER
SA_ORDERS = r"^SELECT orders\.id AS orders_id, .* FROM orders WHERE \$1 = orders\.customer_id$"
SA_CUSTOMER = r"^SELECT customers\.id AS customers_id, customers\.name AS customers_name FROM customers WHERE customers\.id = \$1(::INTEGER)?$"
SA_ALL_CUSTOMERS = r"^SELECT customers\.id AS customers_id, customers\.name AS customers_name FROM customers$"
SA_ALL_ORDERS = r"^SELECT orders\.id(?: AS orders_id)?, orders\.customer_id(?: AS orders_customer_id)?, orders\.total(?: AS orders_total)? FROM orders ORDER BY orders\.id$"
SA_INSERT = r"^INSERT INTO events \(customer_id, kind, amount\) VALUES \(\$1(::INTEGER)?, \$2(::VARCHAR)?, \$3(::INTEGER)?\) RETURNING events\.id$"
DJ_CUSTOMER = r'^SELECT "customers"\."id", "customers"\."name" FROM "customers" WHERE "customers"\."id" = \$1 LIMIT \$2$'
DJ_ORDERS = r'^SELECT "orders"\."id", "orders"\."customer_id", "orders"\."total" FROM "orders" WHERE "orders"\."customer_id" = \$1$'
PLAIN_INSERT = r"^INSERT INTO events \(customer_id, kind, amount\) VALUES \(\$1, \$2, \$3\)$"
R = driver_cases.ROWS
SELECTIN = ["selectinload(<Parent>.orders)"]
JOINED = ["joinedload(<Parent>.customer)"]
SA_ROWS = ["session.add_all()", "bulk_insert_mappings"]
PSYCOPG2 = ["psycopg2.extras.execute_values"]
DRIVER = ["asyncpg executemany()", "copy_records_to_table", "psycopg 3 executemany()"]

# name, workload, expected findings (none: the traffic is already what the advice would say)
CASES = [
    ("sqlalchemy lazy one-to-many", sa.lazy_one_to_many,
     [n_plus_one(SA_ORDERS, C, SA_ALL_CUSTOMERS, C, "customers_id", "one-to-many", "sqlalchemy", SELECTIN)]),
    ("sqlalchemy lazy one-to-many over 60 parents", sa.lazy_one_to_many_long_list,
     [n_plus_one(SA_ORDERS, 3 * C, SA_ALL_CUSTOMERS, 3 * C, "customers_id", "one-to-many", "sqlalchemy",
                 SELECTIN)]),
    # The identity map loads each customer once: 20 lookups for 60 orders.
    ("sqlalchemy lazy many-to-one", sa.lazy_many_to_one,
     [n_plus_one(SA_CUSTOMER, C, SA_ALL_ORDERS, O, "orders_customer_id", "many-to-one", "sqlalchemy", JOINED)]),
    ("sqlalchemy joinedload", sa.eager(sa.joinedload), []),
    ("sqlalchemy selectinload", sa.eager(sa.selectinload), []),
    ("sqlalchemy subqueryload", sa.eager(sa.subqueryload), []),
    ("sqlalchemy commit per row", sa.commit_per_row,
     [row_by_row(SA_INSERT, sa.ROWS, sa.ROWS, "sqlalchemy", SA_ROWS)]),
    ("sqlalchemy commit per row, reading each new id", sa.commit_per_row_reading_ids,
     [row_by_row(SA_INSERT, sa.ROWS, sa.ROWS, "sqlalchemy", SA_ROWS)]),
    # 1.4 on psycopg2 sends the flush as INSERT ... VALUES (...), ... RETURNING (execute_values).
    ("sqlalchemy add_all, one commit", sa.add_all_one_commit, []),
    ("sqlalchemy bulk_insert_mappings", sa.bulk_insert_mappings, []),
    ("sqlalchemy bulk_save_objects", sa.bulk_save_objects, []),
    ("sqlalchemy core execute(insert(), [rows])", sa.core_executemany, []),
    ("sqlalchemy core insert().values([rows])", sa.core_multi_values, []),
    # Expunged each time, as a fresh session per request would: one lookup per order.
    ("sqlalchemy asyncpg many-to-one in a loop", sa.asyncpg_lazy_many_to_one,
     [n_plus_one(SA_CUSTOMER, O, SA_ALL_ORDERS, O, "customer_id", "many-to-one", "sqlalchemy", JOINED)]),
    ("sqlalchemy asyncpg commit per row", sa.asyncpg_commit_per_row,
     [row_by_row(SA_INSERT, sa.ROWS, sa.ROWS, "sqlalchemy", SA_ROWS)]),
    ("django fk in a loop", django_cases.django_fk_in_loop,
     [n_plus_one(DJ_CUSTOMER, O, r'^SELECT "orders"\."id", "orders"\."customer_id", "orders"\."total" FROM "orders"$',
                 O, "customer_id", "many-to-one", "django", ['select_related("customer")'])]),
    ("django reverse relation in a loop", django_cases.django_reverse_in_loop,
     [n_plus_one(DJ_ORDERS, C, r'^SELECT "customers"\."id", "customers"\."name" FROM "customers"$', C, "id",
                 "one-to-many", "django", ['prefetch_related("orders")'])]),
    ("django select_related", django_cases.django_select_related, []),
    ("django prefetch_related", django_cases.django_prefetch_related, []),
    ("django save per row", django_cases.django_save_per_row,
     [row_by_row(r'^INSERT INTO "events" \("customer_id", "kind", "amount"\) VALUES \(\$1, \$2, \$3\) RETURNING "events"\."id"$',
                 django_cases.ROWS, django_cases.ROWS, "django", ["bulk_create"])]),
    ("django bulk_create", django_cases.django_bulk_create, []),
    ("psycopg2 execute per row", driver_cases.psycopg2_execute_per_row,
     [row_by_row(PLAIN_INSERT, R, 1, "simple-protocol driver", PSYCOPG2)]),
    ("psycopg2 executemany", driver_cases.psycopg2_executemany,
     [row_by_row(PLAIN_INSERT, R, 1, "simple-protocol driver", PSYCOPG2)]),
    ("psycopg2 execute_values", driver_cases.psycopg2_execute_values, []),
    ("psycopg2 execute_batch", driver_cases.psycopg2_execute_batch, []),
    ("psycopg 3 executemany (pipeline)", driver_cases.psycopg3_executemany, []),
    ("psycopg 3 execute per row", driver_cases.psycopg3_execute_per_row,
     [row_by_row(PLAIN_INSERT, R, R, "extended-protocol driver", DRIVER)]),
    ("asyncpg executemany", driver_cases.asyncpg_executemany, []),
    ("asyncpg execute per row", driver_cases.asyncpg_execute_per_row,
     [row_by_row(PLAIN_INSERT, R, R, "extended-protocol driver", DRIVER)]),
    ("asyncpg copy_records_to_table", driver_cases.asyncpg_copy_records, []),
    ("asyncpg fetch per parent", driver_cases.asyncpg_fetch_per_parent,
     [n_plus_one(r"^SELECT id, total FROM orders WHERE customer_id = \$1$", C,
                 r"^SELECT id, name FROM customers ORDER BY id$", C, "id", "one-to-many", "extended-protocol driver",
                 ["selectinload()"])]),
    ("pgjdbc executeUpdate per row", jdbc("jdbc_execute_per_row"),
     [row_by_row(PLAIN_INSERT, R, R, "jdbc", ["addBatch()", "reWriteBatchedInserts=true"])]),
    ("pgjdbc addBatch/executeBatch", jdbc("jdbc_batch"), []),
    ("pgjdbc addBatch/executeBatch, reWriteBatchedInserts", jdbc("jdbc_batch_rewrite"), []),
    ("node-postgres insert per row", node("node_insert_per_row"),
     [row_by_row(PLAIN_INSERT, R, R, "extended-protocol driver", DRIVER)]),
    ("node-postgres one multi-row insert", node("node_multi_row_insert"), []),
]


def settled(p, expected_count):
    """The findings once the rules judged the runs (a run is judged after 1 s of quiet)."""
    deadline = time.time() + (10 if expected_count else 2.5)
    while True:
        found = p.get("/api/advice")["findings"]
        if time.time() >= deadline or (expected_count and len(found) >= expected_count):
            # One more look: nothing else may still come in.
            time.sleep(1.2)
            return p.get("/api/advice")["findings"]
        time.sleep(0.2)


def mismatch(expect, f, fingerprints):
    problems = []
    if f["rule"] != expect["rule"]:
        return ["rule"]
    if not re.search(expect["query"], " ".join(f["query"].split()), re.I):
        problems.append(f"query {f['query']!r}")
    d = f  # the API puts the evidence beside the rule
    for key in ("executions_per_occurrence", "parent_rows", "parent_column", "direction", "client", "rows",
                "transactions", "round_trips", "table"):
        if key in expect and d.get(key) != expect[key]:
            problems.append(f"{key} {d.get(key)!r} (expected {expect[key]!r})")
    if "parent_query" in expect and not re.search(expect["parent_query"], " ".join(d["parent_query"].split()),
                                                  re.I):
        problems.append(f"parent {d['parent_query']!r}")
    for w in expect["words"]:
        if w not in f["advice"]:
            problems.append(f"advice lacks {w!r}: {f['advice']}")
    # The fingerprint is the one the statistics keep for that statement.
    stats = [s for s in fingerprints if s["fingerprint"] == f["fingerprint"]]
    if not stats or stats[0]["query"] != f["query"]:
        problems.append(f"fingerprint {f['fingerprint']} is not the statement's")
    return problems


def node_modules():
    # node-postgres from the npm registry, once per machine (tls_clients.sh shares the cache).
    if not os.path.isdir(os.path.join(NODE_MODULES, "node_modules", "pg")):
        os.makedirs(NODE_MODULES, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", NODE_MODULES, "--no-audit", "--no-fund", "--silent", "pg@8"],
                       check=True, timeout=300)


def main():
    wanted = sys.argv[1:]
    node_modules()
    failures, table = [], []
    for name, workload, expected in CASES:
        if wanted and not any(w in name for w in wanted):
            continue
        schema.reset(DIRECT)
        p = Pglens()
        try:
            started = time.time()
            workload(p.url())
            found = settled(p, len(expected))
            fingerprints = p.get("/api/fingerprints")["fingerprints"]
        finally:
            p.stop()
        problems, left = [], list(found)
        for e in expected:
            match = next((f for f in left if not mismatch(e, f, fingerprints)), None)
            if match is None:
                same_rule = [f for f in left if f["rule"] == e["rule"]]
                detail = mismatch(e, same_rule[0], fingerprints) if same_rule else ["not found"]
                problems.append(f"expected {e['rule']}: " + "; ".join(detail))
            else:
                left.remove(match)
        for f in left:
            problems.append(f"unexpected {f['rule']} on {f['query']!r}")
        got = ", ".join(f"{f['rule']} ×{f.get('executions_per_occurrence') or f.get('rows')}"
                        for f in found) or "none"
        want = ", ".join(f"{e['rule']} ×{e.get('executions_per_occurrence') or e.get('rows')}"
                         for e in expected) or "none"
        table.append((name, want, got, "ok" if not problems else "FAIL"))
        print(f"{'ok  ' if not problems else 'FAIL'} {name}: expected {want}; found {got} "
              f"({time.time() - started:.1f} s)", flush=True)
        for pr in problems:
            print("       " + pr, flush=True)
        if problems:
            failures.append(name)
    print("\n| case | expected | found | |\n|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")
    if failures:
        sys.exit(f"orm_corpus: {len(failures)} case(s) failed: {', '.join(failures)}")
    print(f"orm_corpus: {len(table)} cases, every finding as expected and no other")


if __name__ == "__main__":
    main()
