// pglens-demo-workload: the access patterns pglens' rules look for, and their fixes, run against
// any PostgreSQL (usually through pglens). Used by the demo and by the rules' integration tests.
#include <libpq-fe.h>
#include <CLI/CLI.hpp>

#include <iostream>
#include <map>
#include <pqxx/pqxx>
#include <pqxx/stream_to>
#include <random>
#include <string>

namespace {

void setup(pqxx::connection& c) {
  pqxx::work w(c);
  w.exec(R"sql(
    DROP TABLE IF EXISTS demo_orders, demo_customers, demo_audit, demo_events, demo_small_events;
    CREATE TABLE demo_customers (id int PRIMARY KEY, name text NOT NULL, email text UNIQUE NOT NULL);
    CREATE TABLE demo_orders (id serial PRIMARY KEY, customer_id int NOT NULL, total numeric NOT NULL);
    CREATE TABLE demo_audit (id serial PRIMARY KEY, customer_id int NOT NULL, action text NOT NULL);
    CREATE TABLE demo_events (id bigserial PRIMARY KEY, account_id int NOT NULL, kind int NOT NULL, payload text);
    CREATE TABLE demo_small_events (id serial PRIMARY KEY, account_id int NOT NULL, kind int NOT NULL);
    INSERT INTO demo_customers SELECT i, 'customer ' || i, 'c' || i || '@example.com' FROM generate_series(1, 200) i;
    INSERT INTO demo_orders (customer_id, total) SELECT 1 + i % 200, (i % 97) * 1.25 FROM generate_series(1, 2000) i;
    INSERT INTO demo_events (account_id, kind, payload)
      SELECT i % 5000, i % 7, repeat('x', 40) FROM generate_series(1, 60000) i;
    INSERT INTO demo_small_events (account_id, kind) SELECT i % 50, i % 7 FROM generate_series(1, 100) i;
    ANALYZE demo_customers, demo_orders, demo_events, demo_small_events;
  )sql");
  w.commit();
}

// The lazy-loading loop an ORM writes: the customers, then their orders one customer at a time.
void n_plus_one(pqxx::connection& c) {
  pqxx::nontransaction tx(c);
  auto customers = tx.exec("SELECT id, name FROM demo_customers ORDER BY id LIMIT 20");
  for (const auto& row : customers)
    tx.exec_params("SELECT id, total FROM demo_orders WHERE customer_id = $1", row[0].as<int>());
}

void n_plus_one_join(pqxx::connection& c) {
  pqxx::nontransaction tx(c);
  tx.exec(
      "SELECT c.id, c.name, o.id, o.total FROM demo_customers c JOIN demo_orders o ON "
      "o.customer_id = c.id "
      "WHERE c.id <= 20 ORDER BY c.id");
}

void n_plus_one_any(pqxx::connection& c) {
  pqxx::nontransaction tx(c);
  auto customers = tx.exec("SELECT id, name FROM demo_customers ORDER BY id LIMIT 20");
  std::string ids = "{";
  for (const auto& row : customers) ids += (ids.size() > 1 ? "," : "") + row[0].as<std::string>();
  tx.exec_params(
      "SELECT id, customer_id, total FROM demo_orders WHERE customer_id = ANY($1::int[])",
      ids + "}");
}

// Point lookups that do not come from a previous result: pgbench-like, never an N+1.
void random_lookups(pqxx::connection& c) {
  pqxx::nontransaction tx(c);
  std::mt19937 rng(3);
  tx.exec("SELECT id, name FROM demo_customers ORDER BY id LIMIT 20");
  for (int i = 0; i < 20; ++i)
    tx.exec_params("SELECT id, total FROM demo_orders WHERE customer_id = $1", 100 + rng() % 100);
}

void row_by_row_autocommit(pqxx::connection& c, int rows) {
  pqxx::nontransaction tx(c);
  for (int i = 0; i < rows; ++i)
    tx.exec_params("INSERT INTO demo_audit (customer_id, action) VALUES ($1, $2)", i % 200,
                   "login");
}

void row_by_row_transaction(pqxx::connection& c, int rows) {
  pqxx::work tx(c);
  for (int i = 0; i < rows; ++i)
    tx.exec_params("INSERT INTO demo_audit (customer_id, action) VALUES ($1, $2)", i % 200,
                   "logout");
  tx.commit();
}

void multi_row(pqxx::connection& c, int rows) {
  std::string sql = "INSERT INTO demo_audit (customer_id, action) VALUES ";
  for (int i = 0; i < rows; ++i) sql += (i ? ", (" : "(") + std::to_string(i % 200) + ", 'bulk')";
  pqxx::nontransaction tx(c);
  tx.exec(sql);
}

void copy_rows(pqxx::connection& c, int rows) {
  pqxx::work tx(c);
  pqxx::stream_to stream(tx, "demo_audit", std::vector<std::string>{"customer_id", "action"});
  for (int i = 0; i < rows; ++i) stream << std::make_tuple(i % 200, std::string("copied"));
  stream.complete();
  tx.commit();
}

// libpq pipeline mode: many Executes, one Sync.
int pipelined(const std::string& dsn, int rows) {
  PGconn* conn = PQconnectdb(dsn.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::cerr << PQerrorMessage(conn);
    PQfinish(conn);
    return 1;
  }
  PQenterPipelineMode(conn);
  for (int i = 0; i < rows; ++i) {
    auto id = std::to_string(i % 200);
    const char* values[] = {id.c_str(), "pipelined"};
    PQsendQueryParams(conn, "INSERT INTO demo_audit (customer_id, action) VALUES ($1, $2)", 2,
                      nullptr, values, nullptr, nullptr, 0);
  }
  PQpipelineSync(conn);
  int failures = 0, results = 0;
  while (results < rows + 1) {
    PGresult* r = PQgetResult(conn);
    if (r == nullptr) continue;  // end of one query's results
    auto status = PQresultStatus(r);
    if (status == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      break;
    }
    if (status != PGRES_COMMAND_OK) ++failures;
    ++results;
    PQclear(r);
  }
  PQexitPipelineMode(conn);
  PQfinish(conn);
  return failures == 0 ? 0 : 1;
}

void lookups(pqxx::connection& c, const std::string& sql, int times) {
  pqxx::nontransaction tx(c);
  for (int i = 0; i < times; ++i) tx.exec_params(sql, 1 + (i * 37) % 4000);
}

// A page that reads the same few customers' profiles on every request: the rows never change
// between calls, so a cache-aside layer would answer most of them. Keyed by e-mail, a value no
// result before it holds (else the N+1 rule would take the lookups for a loop's children).
void repeated_reads(pqxx::connection& c, int times) {
  pqxx::nontransaction tx(c);
  for (int i = 0; i < times; ++i)
    tx.exec_params("SELECT id, name FROM demo_customers WHERE email = $1",
                   "c" + std::to_string(1 + i % 5) + "@example.com");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pglens-demo-workload: N+1 queries, row-by-row inserts, a missing index and a cacheable "
      "read, and their fixes"};
  std::string dsn;
  std::vector<std::string> scenarios = {"all"};
  int rows = 50, times = 30;
  app.add_option("--dsn", dsn, "libpq connection string or URL")->required();
  app.add_option(
      "scenarios", scenarios,
      "setup, n_plus_one, n_plus_one_join, n_plus_one_any, random_lookups, row_by_row_autocommit, "
      "row_by_row_transaction, row_by_row_pipelined, multi_row, copy, unindexed_lookups, "
      "indexed_lookups, small_table_lookups, repeated_reads, or all (setup and the four "
      "problems)");
  app.add_option("--rows", rows, "rows per insert scenario")->check(CLI::PositiveNumber);
  app.add_option("--times", times, "repetitions of the lookup scenarios")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  try {
    pqxx::connection c(dsn);
    for (const auto& s : scenarios) {
      if (s == "all") {
        setup(c);
        n_plus_one(c);
        row_by_row_autocommit(c, rows);
        lookups(c, "SELECT id, kind FROM demo_events WHERE account_id = $1", times);
        repeated_reads(c, times);
      } else if (s == "setup")
        setup(c);
      else if (s == "n_plus_one")
        n_plus_one(c);
      else if (s == "n_plus_one_join")
        n_plus_one_join(c);
      else if (s == "n_plus_one_any")
        n_plus_one_any(c);
      else if (s == "random_lookups")
        random_lookups(c);
      else if (s == "row_by_row_autocommit")
        row_by_row_autocommit(c, rows);
      else if (s == "row_by_row_transaction")
        row_by_row_transaction(c, rows);
      else if (s == "row_by_row_pipelined") {
        if (pipelined(dsn, rows) != 0) return 1;
      } else if (s == "multi_row")
        multi_row(c, rows);
      else if (s == "copy")
        copy_rows(c, rows);
      else if (s == "unindexed_lookups")
        lookups(c, "SELECT id, kind FROM demo_events WHERE account_id = $1", times);
      else if (s == "indexed_lookups")
        lookups(c, "SELECT id, kind FROM demo_events WHERE id = $1", times);
      else if (s == "small_table_lookups")
        lookups(c, "SELECT id, kind FROM demo_small_events WHERE account_id = $1", times);
      else if (s == "repeated_reads")
        repeated_reads(c, times);
      else {
        std::cerr << "pglens-demo-workload: unknown scenario \"" << s << "\"\n";
        return 2;
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "pglens-demo-workload: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
