// node-postgres: a loop of single inserts, and one multi-row insert. Usage: node node_cases.js PORT CASE
const { Client } = require('pg');
const ROWS = 250;

(async () => {
  const [port, kase] = process.argv.slice(2);
  const c = new Client({ host: '127.0.0.1', port: Number(port), user: 'postgres', database: 'pglens_orm' });
  await c.connect();
  if (kase === 'node_insert_per_row') {
    for (let i = 0; i < ROWS; ++i)
      await c.query('INSERT INTO events (customer_id, kind, amount) VALUES ($1, $2, $3)', [i % 20 + 1, 'click', i]);
  } else {
    const values = [], params = [];
    for (let i = 0; i < ROWS; ++i) {
      values.push(`($${3 * i + 1}, $${3 * i + 2}, $${3 * i + 3})`);
      params.push(i % 20 + 1, 'click', i);
    }
    await c.query(`INSERT INTO events (customer_id, kind, amount) VALUES ${values.join(', ')}`, params);
  }
  await c.end();
})().catch((e) => { console.error(e); process.exit(1); });
