-- One statement (or multi-statement string) per line; the golden file beside this one holds
-- what analyze_query() makes of each. Regenerate with PGLENS_UPDATE_GOLDEN=1 and review the diff.
SELECT * FROM users WHERE id = 42
SELECT * FROM users WHERE id = $1
SELECT * FROM users WHERE id IN (1, 2, 3)
SELECT * FROM users WHERE id = ANY($1)
SELECT * FROM users WHERE id = ANY(ARRAY[1, 2, 3, 4])
SELECT * FROM orders o WHERE o.user_id = $1
SELECT * FROM orders WHERE user_id = 42
INSERT INTO t (a, b) VALUES (1, 'x')
INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')
INSERT INTO t (b, a) VALUES ('x', 1)
INSERT INTO public.t (a, b) VALUES ($1, $2)
INSERT INTO t (a) SELECT g FROM generate_series(1, 10) g
UPDATE pgbench_accounts SET abalance = abalance + 5 WHERE aid = 17
DELETE FROM sessions WHERE expires_at < now() - interval '1 day'
SELECT /* a comment */ 1
SELECT 1 -- trailing comment
SELECT '42'::int, CAST('7' AS bigint)
BEGIN
COMMIT
ROLLBACK
SAVEPOINT s1
SET application_name = 'demo'
SHOW search_path
COPY t (a, b) FROM STDIN
CREATE INDEX CONCURRENTLY ON orders (user_id)
BEGIN; UPDATE t SET a = 1 WHERE b = 2; COMMIT
SELECT 1; SELECT 2
SELEC broken FROM
SELECT * FROM t WHERE a IN (SELECT b FROM u WHERE c = 5)
