"""The corpus' schema, made afresh before each case: customers and their orders, indexed as an
ORM's migrations would index them, so only the access pattern can draw a finding."""
import psycopg2

CUSTOMERS = 20
ORDERS_PER_CUSTOMER = 3


DATABASE = "pglens_orm"  # its own, so no other test's tables share the names


def reset(dsn):
    """dsn: any database of the cluster; the corpus' own is made afresh from it."""
    c = psycopg2.connect(dsn)
    c.autocommit = True
    c.cursor().execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    c.cursor().execute(f"CREATE DATABASE {DATABASE}")
    c.close()
    c = psycopg2.connect(dsn.replace("dbname=pglens_test", "dbname=" + DATABASE))
    c.autocommit = True
    cur = c.cursor()
    cur.execute("""
        CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
        CREATE TABLE orders (id serial PRIMARY KEY,
                             customer_id integer NOT NULL REFERENCES customers(id),
                             total numeric(10, 2) NOT NULL);
        CREATE INDEX orders_customer_id ON orders (customer_id);
        CREATE TABLE events (id serial PRIMARY KEY, customer_id integer NOT NULL, kind text NOT NULL,
                             amount integer NOT NULL);
    """)
    cur.execute("INSERT INTO customers (name) SELECT 'customer ' || i FROM generate_series(1, %s) i",
                (CUSTOMERS,))
    cur.execute("""INSERT INTO orders (customer_id, total)
                   SELECT c.id, (c.id * 10 + k)::numeric FROM customers c, generate_series(1, %s) k
                   ORDER BY c.id, k""", (ORDERS_PER_CUSTOMER,))
    cur.execute("ANALYZE")
    c.close()
