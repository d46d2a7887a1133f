"""The Python drivers' own batch calls, and their one-row-at-a-time counterparts."""
import asyncio

ROWS = 250
ROW_VALUES = [(i % 20 + 1, "click", i) for i in range(ROWS)]
INSERT = "INSERT INTO events (customer_id, kind, amount) VALUES (%s, %s, %s)"


def psycopg2_conn(url):
    import psycopg2
    return psycopg2.connect(url)


def psycopg2_execute_per_row(url):
    c = psycopg2_conn(url)
    with c, c.cursor() as cur:
        for row in ROW_VALUES:
            cur.execute(INSERT, row)
    c.close()


def psycopg2_executemany(url):
    # psycopg2's executemany() runs one INSERT per row: a loop inside the driver.
    c = psycopg2_conn(url)
    with c, c.cursor() as cur:
        cur.executemany(INSERT, ROW_VALUES)
    c.close()


def psycopg2_execute_values(url):
    from psycopg2.extras import execute_values
    c = psycopg2_conn(url)
    with c, c.cursor() as cur:
        execute_values(cur, "INSERT INTO events (customer_id, kind, amount) VALUES %s", ROW_VALUES)
    c.close()


def psycopg2_execute_batch(url):
    from psycopg2.extras import execute_batch
    c = psycopg2_conn(url)
    with c, c.cursor() as cur:
        execute_batch(cur, INSERT, ROW_VALUES)
    c.close()


def psycopg3_executemany(url):
    import psycopg
    with psycopg.connect(url) as c:
        with c.cursor() as cur:
            cur.executemany(INSERT, ROW_VALUES)


def psycopg3_execute_per_row(url):
    import psycopg
    with psycopg.connect(url, autocommit=True) as c:
        for row in ROW_VALUES:
            c.execute(INSERT, row)


def asyncpg_run(url, body):
    import asyncpg

    async def main():
        c = await asyncpg.connect(url)
        try:
            await body(c)
        finally:
            await c.close()
    asyncio.run(main())


ASYNC_INSERT = "INSERT INTO events (customer_id, kind, amount) VALUES ($1, $2, $3)"


def asyncpg_executemany(url):
    async def body(c):
        await c.executemany(ASYNC_INSERT, ROW_VALUES)
    asyncpg_run(url, body)


def asyncpg_execute_per_row(url):
    async def body(c):
        for row in ROW_VALUES:
            await c.execute(ASYNC_INSERT, *row)
    asyncpg_run(url, body)


def asyncpg_copy_records(url):
    async def body(c):
        await c.copy_records_to_table("events", records=ROW_VALUES,
                                      columns=["customer_id", "kind", "amount"])
    asyncpg_run(url, body)


def asyncpg_fetch_per_parent(url):
    # A hand-written N+1 on asyncpg: binary parameters and binary results.
    async def body(c):
        for customer in await c.fetch("SELECT id, name FROM customers ORDER BY id"):
            await c.fetch("SELECT id, total FROM orders WHERE customer_id = $1", customer["id"])
    asyncpg_run(url, body)
