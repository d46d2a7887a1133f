"""A small application's traffic for the tests that look at what pglens shows (the page, the
Grafana dashboard's queries): pglens started on free ports against the test cluster, a database
of the test's own, and a psycopg2 workload with an N+1 loop, a join, an aggregate, updates, a slow
statement and failing ones. STATEMENTS says how many times each normalized statement runs."""
import os
import subprocess
import tempfile
import time

import psycopg2

from pglens_test import cluster_port, free_port, wait_until_listening

PGLENS = os.environ.get("PGLENS_BIN", "build/bin/pglens")

AUTHORS = 20
# Normalized text (as libpg_query writes it) → calls made by run().
STATEMENTS = {
    "SELECT id, name FROM page_authors ORDER BY id LIMIT $1": 1,
    "SELECT id, title FROM page_books WHERE author_id = $1": AUTHORS,
    "SELECT count(*), avg(pages) FROM page_books": 6,
    "UPDATE page_books SET pages = pages + $1 WHERE id = $2": 12,
    "SELECT b.title, a.name FROM page_books b JOIN page_authors a ON a.id = b.author_id "
    "WHERE b.pages > $1": 8,
    "SELECT pg_sleep($1)": 10,
    "SELECT $1 / (pages - pages) FROM page_books LIMIT $2": 3,
}


class App:
    """pglens in front of a database of this test's own; stop() ends both."""

    def __init__(self, prefix, extra_args=()):
        self.pgport = cluster_port()
        self.db = f"{prefix}_{os.getpid()}"
        self.dir = tempfile.mkdtemp(prefix=f"pglens-{prefix}-")
        self.proc = None
        self._admin(f"DROP DATABASE IF EXISTS {self.db}", f"CREATE DATABASE {self.db}")
        self._setup()
        self.port, self.http = free_port(), free_port()
        self.log_path = os.path.join(self.dir, "pglens.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [PGLENS, "--listen", f"127.0.0.1:{self.port}",
             "--upstream", f"postgresql://127.0.0.1:{self.pgport}", "--pool-mode", "transaction",
             "--pool-size", "4", "--http", f"127.0.0.1:{self.http}", *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_until_listening(self.port)

    def direct_dsn(self, db="postgres"):
        return f"host=127.0.0.1 port={self.pgport} user=postgres dbname={db}"

    def dsn(self, app="bookshop"):
        return (f"host=127.0.0.1 port={self.port} user=postgres dbname={self.db} "
                f"application_name={app}")

    def _admin(self, *statements):
        conn = psycopg2.connect(self.direct_dsn())
        conn.autocommit = True
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
        conn.close()

    def _setup(self):
        # Directly, not through pglens: the schema is no part of what the page should show.
        conn = psycopg2.connect(self.direct_dsn(self.db))
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE page_authors (id int PRIMARY KEY, name text NOT NULL)")
            cur.execute("CREATE TABLE page_books (id int PRIMARY KEY, author_id int NOT NULL "
                        "REFERENCES page_authors, title text NOT NULL, pages int NOT NULL)")
            cur.execute("INSERT INTO page_authors SELECT g, 'author ' || g "
                        "FROM generate_series(1, %s) g", (AUTHORS,))
            cur.execute("INSERT INTO page_books SELECT g, 1 + g %% %s, 'book ' || g, 100 + g "
                        "FROM generate_series(1, 200) g", (AUTHORS,))
        conn.close()

    def run(self):
        """The workload through pglens: every statement of STATEMENTS, as many times as it says."""
        conn = psycopg2.connect(self.dsn())
        conn.autocommit = True
        cur = conn.cursor()
        # The N+1: the authors, then each author's books, one query per author.
        cur.execute("SELECT id, name FROM page_authors ORDER BY id LIMIT 20")
        for author_id, _ in cur.fetchall():
            cur.execute("SELECT id, title FROM page_books WHERE author_id = %s", (author_id,))
            cur.fetchall()
        for _ in range(6):
            cur.execute("SELECT count(*), avg(pages) FROM page_books")
        for i in range(12):
            cur.execute("UPDATE page_books SET pages = pages + 1 WHERE id = %s", (i + 1,))
        for i in range(8):
            cur.execute("SELECT b.title, a.name FROM page_books b "
                        "JOIN page_authors a ON a.id = b.author_id WHERE b.pages > %s", (150 + i,))
        for i in range(10):
            cur.execute("SELECT pg_sleep(%s)", (0.005 * (i + 1),))
        for _ in range(3):
            try:
                cur.execute("SELECT 1 / (pages - pages) FROM page_books LIMIT 1")
            except psycopg2.errors.DivisionByZero:
                pass
        conn.close()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            self._admin(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
        except psycopg2.Error:
            pass

    def log_tail(self, chars=4000):
        return open(self.log_path, errors="replace").read()[-chars:]


def wait_for(predicate, what, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise SystemExit(f"FAIL: timed out waiting for {what}")
        time.sleep(0.2)
