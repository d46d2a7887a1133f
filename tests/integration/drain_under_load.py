#!/usr/bin/python3
"""Graceful drain on SIGTERM, under load: pgbench's TPC-B (BEGIN..END, 8 clients) through pglens,
SIGTERM in the middle, and one more client holding a transaction open across the signal.

Checked: /healthz answers 503 "draining" and new connections are refused from the signal on;
the open transaction still commits through pglens, and its client is then told 57P01; no
pgbench client is cut inside a transaction (an abort only ever at BEGIN, the first command of a
transaction, whose server pglens never asked for); every transaction pgbench counted is in the
database (pgbench_history) and the balances add up; pglens exits 0 by itself, before its
shutdown_timeout. Then: shutdown_timeout closes a transaction left open (rolled back), and a
second signal exits at once.
Environment: PGLENS_BIN, PGLENS_TEST_CLUSTER_DIR (ctest sets them).
"""
import atexit
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from pglens_test import (check, cluster_port, failures, free_port, stop,  # noqa: E402
                         wait_until_listening)

PGLENS = os.environ.get("PGLENS_BIN", "build/bin/pglens")
PGPORT = cluster_port()
DB = f"pglens_drain_{os.getpid()}"
WORK = tempfile.mkdtemp(prefix="pglens-drain-")
RUNNING = []


def direct(sql):
    with psycopg2.connect(host="127.0.0.1", port=PGPORT, user="postgres", dbname=DB) as c:
        c.autocommit = True
        cur = c.cursor()
        cur.execute(sql)
        return cur.fetchall() if cur.description else None


@atexit.register
def cleanup():
    stop(RUNNING, kill=True)
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-p", PGPORT, "-U", "postgres", "--if-exists",
                    "--force", DB], capture_output=True)


def start(name, shutdown_timeout):
    port, http = free_port(), free_port()
    config = os.path.join(WORK, name + ".toml")
    with open(config, "w") as f:
        f.write(f'[pglens]\nlisten = "127.0.0.1:{port}"\nupstream = "postgresql://127.0.0.1:{PGPORT}"\n'
                f'http = "127.0.0.1:{http}"\npool_mode = "transaction"\npool_size = 10\n'
                f'shutdown_timeout = {shutdown_timeout}\n')
    log_path = os.path.join(WORK, name + ".log")
    proc = subprocess.Popen([PGLENS, "--config", config], stdout=open(log_path, "w"),
                            stderr=subprocess.STDOUT)
    RUNNING.append(proc)
    wait_until_listening(port)
    proc.port, proc.http, proc.log_path = port, http, log_path
    return proc


def log_of(proc):
    return open(proc.log_path).read()


def healthz(proc):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{proc.http}/healthz", timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


def wait_for(predicate, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def connect(proc):
    return psycopg2.connect(host="127.0.0.1", port=proc.port, user="postgres", dbname=DB,
                            connect_timeout=3)


def refuses_new_clients(proc):
    try:
        connect(proc).close()
        return False
    except psycopg2.OperationalError:
        return True


def drain_signal(proc, sig=signal.SIGTERM):
    """Signals pglens and waits until it says it drains (/healthz 503)."""
    proc.send_signal(sig)
    drained = wait_for(lambda: healthz(proc)[0] == 503)
    return drained


subprocess.run(["createdb", "-h", "127.0.0.1", "-p", PGPORT, "-U", "postgres", DB], check=True)
subprocess.run(["pgbench", "-h", "127.0.0.1", "-p", PGPORT, "-U", "postgres", "-i", "-s", "1", "-q", DB],
               check=True, capture_output=True)
direct("CREATE TABLE held (id int)")

# ---- 1. SIGTERM during pgbench ----
pglens = start("load", shutdown_timeout=20)
check(healthz(pglens) == (200, "ok\n"), f"/healthz before the signal: {healthz(pglens)}")

holder = connect(pglens)
held = holder.cursor()
held.execute("BEGIN; INSERT INTO held VALUES (1)")  # a transaction open across the signal

bench = subprocess.Popen(["pgbench", "-h", "127.0.0.1", "-p", str(pglens.port), "-U", "postgres",
                          "-c", "8", "-j", "8", "-T", "60", "-b", "tpcb-like", DB],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
RUNNING.append(bench)
# Some transactions done first (counted directly, not through pglens).
wait_for(lambda: direct("SELECT count(*) FROM pgbench_history")[0][0] >= 200, timeout=30)

signalled_at = time.time()
check(drain_signal(pglens), "/healthz never answered 503 after SIGTERM")
status, body = healthz(pglens)
check(pglens.poll() is not None or (status, body) == (503, "draining\n"),
      f"/healthz while draining: {status} {body!r}")
check(refuses_new_clients(pglens), "a new client was accepted after SIGTERM")

# The held transaction finishes through the draining pglens, then its client is let go.
held.execute("INSERT INTO held VALUES (2)")
holder.commit()
told = ""
try:
    held.execute("SELECT 1")
except psycopg2.Error as e:
    told = str(e) + " ".join(holder.notices)
check("pglens is shutting down" in told, f"the holder was not told why it was closed: {told!r}")
check(direct("SELECT count(*) FROM held")[0][0] == 2, "the transaction held across SIGTERM did not commit")

out, _ = bench.communicate(timeout=60)
try:
    code = pglens.wait(timeout=30)
except subprocess.TimeoutExpired:
    code = None
elapsed = time.time() - signalled_at
check(code == 0, f"pglens exited with {code} after SIGTERM")
check(elapsed < 20, f"pglens took {elapsed:.1f} s, beyond its shutdown_timeout (20 s)")
log = log_of(pglens)
check("shutdown_timeout reached" not in log, "the drain timed out")
m = re.search(r"shutting down: no new clients; (\d+) client\(s\).*\((\d+) in a transaction now\)", log)
check(m and int(m.group(2)) >= 1, "pglens did not log the drain with a transaction in flight")

processed = re.search(r"number of transactions actually processed: (\d+)", out)
check(processed is not None, "pgbench printed no count:\n" + out)
processed = int(processed.group(1)) if processed else -1
aborts = re.findall(r"aborted in command (\d+)", out)
# tpcb-like: commands 0-3 are \set, 4 is BEGIN; 5-9 the statements, 10 END.
check(all(a == "4" for a in aborts), f"pgbench clients cut inside a transaction (commands {aborts}):\n{out}")
check(not re.search(r"number of failed transactions: [1-9]", out), "pgbench counted failed transactions:\n" + out)
history, = direct("SELECT count(*) FROM pgbench_history")[0]
check(history == processed, f"pgbench counted {processed} transactions, the database has {history}")
a, b, t, d = direct("SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(bbalance) FROM pgbench_branches),"
                    " (SELECT sum(tbalance) FROM pgbench_tellers), (SELECT coalesce(sum(delta), 0) FROM pgbench_history)")[0]
check(a == b == t == d, f"balances do not add up: accounts {a}, branches {b}, tellers {t}, history {d}")
print(f"SIGTERM under pgbench -c 8: {processed} transactions counted, {history} in pgbench_history, "
      f"{len(aborts)} clients closed at BEGIN, pglens exited {code} {elapsed:.2f} s after the signal")

# ---- 2. shutdown_timeout: a transaction left open is closed (and rolls back) ----
pglens = start("timeout", shutdown_timeout=1)
holder = connect(pglens)
holder.cursor().execute("BEGIN; INSERT INTO held VALUES (3)")
check(drain_signal(pglens), "/healthz never answered 503 after SIGTERM (timeout case)")
try:
    code = pglens.wait(timeout=20)
except subprocess.TimeoutExpired:
    code = None
check(code == 0, f"pglens exited with {code} at shutdown_timeout")
check("shutdown_timeout reached: closing 1 client(s), 1 of them in a transaction" in log_of(pglens),
      "no shutdown_timeout line:\n" + log_of(pglens))
wait_for(lambda: direct("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND state LIKE 'idle in transaction%'")[0][0] == 0)
check(direct("SELECT count(*) FROM held WHERE id = 3")[0][0] == 0, "the cut transaction committed")

# ---- 3. a second signal exits at once ----
pglens = start("twice", shutdown_timeout=60)
holder = connect(pglens)
holder.cursor().execute("BEGIN; SELECT 1")
check(drain_signal(pglens), "/healthz never answered 503 after SIGTERM (second-signal case)")
pglens.send_signal(signal.SIGINT)
try:
    code = pglens.wait(timeout=10)  # far below its 60 s shutdown_timeout
except subprocess.TimeoutExpired:
    code = None
check(code == 0, f"pglens exited with {code} on a second signal")
check("while draining: exiting at once" in log_of(pglens), "no second-signal line:\n" + log_of(pglens))

if failures:
    for name in ("load", "timeout", "twice"):
        path = os.path.join(WORK, name + ".log")
        if os.path.exists(path):
            print(f"---- {name} pglens log (last 30 lines) ----")
            print("".join(open(path).readlines()[-30:]))
    sys.exit(1)
print("drain under load ok")
