#!/usr/bin/env bash
# Real drivers over TLS to pglens, pglens over TLS (verify-full) to a Postgres that only accepts
# TLS (hostssl lines only, test certificates from make_certs.sh): psql with sslmode=verify-full,
# psycopg2 with verify-full, asyncpg with an ssl.SSLContext, pgJDBC with sslmode=verify-full, and
# node-postgres with ssl: {ca}. Each runs parameterized queries (prepared statements for asyncpg
# and pgJDBC) in transaction mode and checks it is encrypted; a plaintext psql is refused.
source "$(dirname "$0")/../support/lib.sh"
here=$(cd "$(dirname "$0")/.." && pwd)

certs=$work/certs
"$here/support/make_certs.sh" "$certs"
cluster=$(mktemp -d /tmp/pglens-tls-pg-XXXXXX)  # outside $work: the postgres user must reach it
cleanup() {
  local status=$?
  "$here/support/pg_cluster.sh" stop "$cluster" >/dev/null 2>&1 || true
  (exit "$status")
  on_exit
}
trap cleanup EXIT
PGLENS_PG_TLS_DIR=$certs "$here/support/pg_cluster.sh" start "$cluster" >/dev/null
tls_pg_port=$(sed -n 's/^PGLENS_PGPORT=//p' "$cluster/env")

start_pglens --upstream "postgresql://localhost:$tls_pg_port" --pool-mode transaction \
  --pool-size 4 --server-tls-sslmode verify-full --server-tls-ca-file "$certs/ca.crt" \
  --client-tls-sslmode require --client-tls-key-file "$certs/pglens.key" \
  --client-tls-cert-file "$certs/pglens.crt" --admin-users postgres
ca=$certs/ca.crt

# ---- psql ----
out=$(psql "host=localhost port=$PGLENS_PORT user=postgres dbname=pglens_test sslmode=verify-full sslrootcert=$ca" \
  -Atc "SELECT 'psql ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") || fail "psql verify-full failed"
[ "$out" = "psql true" ] || fail "psql: server side not over TLS ($out)"
if psql "host=localhost port=$PGLENS_PORT user=postgres dbname=pglens_test sslmode=disable" \
  -Atc "SELECT 1" >"$work/plain.log" 2>&1; then
  fail "a plaintext psql was let in"
fi
grep -q "TLS is required" "$work/plain.log" || fail "plaintext refusal unclear: $(cat "$work/plain.log")"
echo "psql: verify-full works, plaintext refused"

# ---- psycopg2 ----
timeout 60 /usr/bin/python3 - "$PGLENS_PORT" "$ca" <<'PY' || fail "psycopg2 over TLS failed"
import sys
import psycopg2
port, ca = int(sys.argv[1]), sys.argv[2]
conn = psycopg2.connect(host="localhost", port=port, user="postgres", dbname="pglens_test",
                        sslmode="verify-full", sslrootcert=ca)
assert conn.info.ssl_in_use, "psycopg2: not over TLS"
with conn.cursor() as cur:
    for i in range(20):
        cur.execute("SELECT %s::int * 2", (i,))
        assert cur.fetchone()[0] == i * 2
    cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert cur.fetchone()[0] is True
conn.commit()
print("psycopg2: verify-full,", conn.info.ssl_attribute("protocol"))
PY

# ---- asyncpg ----
timeout 60 /usr/bin/python3 - "$PGLENS_PORT" "$ca" <<'PY' || fail "asyncpg over TLS failed"
import asyncio
import ssl
import sys
import asyncpg
port, ca = int(sys.argv[1]), sys.argv[2]

async def main():
    ctx = ssl.create_default_context(cafile=ca)  # verifies the chain and the host name
    conns = [await asyncpg.connect(host="localhost", port=port, user="postgres",
                                   database="pglens_test", ssl=ctx) for _ in range(6)]
    for c in conns:
        assert c._transport.get_extra_info("ssl_object") is not None, "asyncpg: not over TLS"
    async def work(c, i):
        for j in range(25):  # asyncpg prepares each statement: named statements, pool of 4
            assert await c.fetchval("SELECT $1::int + $2::int", i, j) == i + j
            async with c.transaction():
                assert await c.fetchval("SELECT $1::text", str(j)) == str(j)
    await asyncio.gather(*(work(c, i) for i, c in enumerate(conns)))
    for c in conns:
        await c.close()
    print("asyncpg: ssl.SSLContext, 6 clients on 4 server connections")

asyncio.run(main())
PY

# ---- pgJDBC ----
jar=/usr/share/java/postgresql.jar
[ -f "$jar" ] || fail "$jar not found (scripts/install-deps.sh installs libpostgresql-jdbc-java)"
cat >"$work/TlsJdbc.java" <<'JAVA'
import java.sql.*;

public class TlsJdbc {
  public static void main(String[] args) throws Exception {
    String url = "jdbc:postgresql://localhost:" + args[0] + "/pglens_test?user=postgres"
        + "&sslmode=verify-full&sslrootcert=" + args[1];
    try (Connection c = DriverManager.getConnection(url)) {
      // prepareThreshold 5 (the default): from the fifth run on, a named server-side statement.
      try (PreparedStatement p = c.prepareStatement("SELECT ?::int * 3")) {
        for (int i = 0; i < 12; i++) {
          p.setInt(1, i);
          try (ResultSet r = p.executeQuery()) {
            r.next();
            if (r.getInt(1) != i * 3) throw new IllegalStateException("wrong answer");
          }
        }
      }
      try (Statement s = c.createStatement();
           ResultSet r = s.executeQuery("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")) {
        r.next();
        if (!r.getBoolean(1)) throw new IllegalStateException("server side not over TLS");
      }
    }
    System.out.println("pgJDBC: sslmode=verify-full");
  }
}
JAVA
timeout 120 java -cp "$jar" "$work/TlsJdbc.java" "$PGLENS_PORT" "$ca" || fail "pgJDBC over TLS failed"

# ---- node-postgres ----
command -v node >/dev/null || fail "node not found (scripts/install-deps.sh installs nodejs)"
modules=${PGLENS_NODE_MODULES:-$HOME/.cache/pglens-node}
if [ ! -d "$modules/node_modules/pg" ]; then
  mkdir -p "$modules"
  timeout 300 npm install --prefix "$modules" --no-audit --no-fund --silent pg@8 ||
    fail "npm install pg failed (the npm registry must be reachable)"
fi
cat >"$work/tls.js" <<'JS'
const fs = require('fs');
const { Client } = require('pg');
const [port, ca] = process.argv.slice(2);
(async () => {
  const c = new Client({ host: 'localhost', port: Number(port), user: 'postgres',
                         database: 'pglens_test', ssl: { ca: fs.readFileSync(ca) } });
  await c.connect();
  if (!c.connection.stream.encrypted) throw new Error('node-postgres: not over TLS');
  for (let i = 0; i < 20; i++) {
    const r = await c.query({ name: 'twice', text: 'SELECT $1::int * 2 AS v', values: [i] });
    if (r.rows[0].v !== i * 2) throw new Error('wrong answer');
  }
  const s = await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
  if (s.rows[0].ssl !== true) throw new Error('server side not over TLS');
  await c.end();
  console.log('node-postgres: ssl {ca}, named statements');
})().catch((e) => { console.error(e); process.exit(1); });
JS
NODE_PATH="$modules/node_modules" timeout 60 node "$work/tls.js" "$PGLENS_PORT" "$ca" ||
  fail "node-postgres over TLS failed"

# Every client above showed up as TLS in the console while connected; the log has no failure.
grep -q "TLS handshake with" "$PGLENS_LOG" && fail "a TLS handshake failed: $(grep "TLS handshake" "$PGLENS_LOG")"
echo "tls_clients: psql, psycopg2, asyncpg, pgJDBC and node-postgres over TLS on both sides"
