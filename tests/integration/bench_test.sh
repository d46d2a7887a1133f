#!/usr/bin/env bash
# pglens-bench against the ctest cluster at small sizes: `inserts` and `nplus1` direct and through
# a pglens started here (verified row counts, the JSON shape, a well-formed SVG with one bar per
# method and target), bad arguments (non-zero exit, a message, nothing on stdout), and a short
# `proxy` run (direct, pglens with and without analysis, PgBouncer when installed).
source "$(dirname "$0")/../support/lib.sh"
bench=${PGLENS_BENCH_BIN:-$(dirname "$PGLENS_BIN")/pglens-bench}
[ -x "$bench" ] || fail "pglens-bench not built at $bench"
# A database of its own (dropped on exit): the proxy benchmark creates pgbench tables when absent.
SCRATCH_DB=pglens_bench_$$
db=$SCRATCH_DB
createdb -p "$PG_DIRECT_PORT" "$db"
start_pglens --upstream "postgresql://127.0.0.1:$PG_DIRECT_PORT" --pool-mode transaction \
  --pool-size 8
dsn="postgresql://postgres@127.0.0.1:$PG_DIRECT_PORT/$db"
via="postgresql://postgres@127.0.0.1:$PGLENS_PORT/$db"

# check_results KIND JSON SVG: the JSON shape, verified counts, and one SVG bar per result.
check_results() {
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
import xml.etree.ElementTree as ET

kind, json_path, svg_path, rows, methods = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5].split(",")
doc = json.load(open(json_path))
def need(cond, msg):
    if not cond:
        sys.exit(f"{kind}: {msg}\n{json.dumps(doc, indent=1)[:3000]}")

for key in ("benchmark", "schema_version", "rows", "repeat", "baseline", "machine", "server_version", "dsn", "via", "results"):
    need(key in doc, f"missing top-level key {key}")
need(doc["benchmark"] == kind, "benchmark name")
need(doc["rows"] == rows, f"rows {doc['rows']} != {rows}")
for key in ("nproc", "cpu_model", "os", "date_utc"):
    need(key in doc["machine"], f"machine.{key} missing")
res = doc["results"]
need(len(res) == 2 * len(methods), f"{len(res)} results, expected {2 * len(methods)}")
need([r["method"] for r in res if r["target"] == "direct"] == methods, "direct methods in order")
need([r["method"] for r in res if r["target"] == "via"] == methods, "via methods in order")
for r in res:
    where = f"{r['method']}/{r['target']}"
    for key in ("label", "median_s", "min_s", "max_s", "samples_s", "rows_per_s", "per_unit_s",
                "speedup_vs_baseline", "overhead_pct", "verified", "checksum"):
        need(key in r, f"{where}: missing {key}")
    need(r["verified"] is True, f"{where}: not verified")
    need(r["rows"] == rows, f"{where}: {r['rows']} verified rows, expected {rows}")
    need(0 < r["min_s"] <= r["median_s"] <= r["max_s"], f"{where}: min/median/max")
    need(len(r["samples_s"]) == doc["repeat"], f"{where}: samples")
    need(r["rows_per_s"] > 0, f"{where}: rows_per_s")
    need((r["overhead_pct"] is None) == (r["target"] == "direct"), f"{where}: overhead_pct")
need(len({r["checksum"] for r in res}) == 1, "every method stored/fetched the same content")

svg = ET.parse(svg_path).getroot()
ns = "{http://www.w3.org/2000/svg}"
need(svg.tag == ns + "svg", "SVG root element")
bars = [e for e in svg.iter(ns + "rect") if e.get("data-method")]
need(len(bars) == len(res), f"{len(bars)} bars in the SVG, expected {len(res)}")
for target in ("direct", "via"):
    got = [b.get("data-method") for b in bars if b.get("data-target") == target]
    need(got == methods, f"SVG bars for {target}: {got}")
need(any(t.text and "log scale" in t.text for t in svg.iter(ns + "text")), "axis label")
print(f"{kind}: {len(res)} verified results, {len(bars)} SVG bars")
PY
}

# ---- inserts: every method, direct and through pglens ----
methods=autocommit,transaction,prepared,pipeline,values,copy,unnest
"$bench" inserts --dsn "$dsn" --via "$via" --rows 2000 --repeat 1 --chunk-rows 300 \
  --json "$work/inserts.json" --svg "$work/inserts.svg" >"$work/inserts.txt" 2>"$work/inserts.err" ||
  { cat "$work/inserts.txt" "$work/inserts.err"; fail "pglens-bench inserts exited non-zero"; }
cat "$work/inserts.txt"
check_results inserts "$work/inserts.json" "$work/inserts.svg" 2000 "$methods" || fail "inserts results"
grep -q "COPY FROM STDIN" "$work/inserts.txt" || fail "no COPY row in the inserts table"
grep -q "proxy overhead" "$work/inserts.txt" || fail "no overhead column with --via"
# Wide rows: the VALUES chunk is capped so one statement has at most 65,535 parameters.
"$bench" inserts --dsn "$dsn" --rows 3000 --repeat 1 --columns 30 --chunk-rows 5000 \
  --methods values,unnest --json "$work/wide.json" >/dev/null 2>"$work/wide.err" ||
  { cat "$work/wide.err"; fail "inserts with 31 columns failed"; }
/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["values_chunk_rows"] * 31 <= 65535 and d["values_chunk_rows"] == 65535 // 31, d["values_chunk_rows"]
assert all(r["verified"] and r["rows"] == 3000 for r in d["results"])
' "$work/wide.json" || fail "VALUES chunk not capped at 65,535 parameters"

# ---- nplus1 ----
"$bench" nplus1 --dsn "$dsn" --via "$via" --parents 60 --children 4 --repeat 1 \
  --json "$work/nplus1.json" --svg "$work/nplus1.svg" >"$work/nplus1.txt" 2>"$work/nplus1.err" ||
  { cat "$work/nplus1.txt" "$work/nplus1.err"; fail "pglens-bench nplus1 exited non-zero"; }
cat "$work/nplus1.txt"
check_results nplus1 "$work/nplus1.json" "$work/nplus1.svg" 240 nplus1,join,any || fail "nplus1 results"
/usr/bin/python3 -c '
import json, sys
q = {(r["method"], r["target"]): r["queries"] for r in json.load(open(sys.argv[1]))["results"]}
assert q[("nplus1", "direct")] == 61 and q[("join", "via")] == 1 and q[("any", "direct")] == 2, q
' "$work/nplus1.json" || fail "nplus1 query counts"

# ---- bad arguments: a message on stderr, a non-zero exit, no table ----
expect_error() {
  local pattern=$1
  shift
  local status=0
  "$bench" "$@" >"$work/bad.out" 2>"$work/bad.err" || status=$?
  [ "$status" -ne 0 ] || fail "pglens-bench $* exited 0"
  [ ! -s "$work/bad.out" ] || { cat "$work/bad.out"; fail "pglens-bench $* printed a result"; }
  grep -qi -- "$pattern" "$work/bad.err" || { cat "$work/bad.err"; fail "pglens-bench $*: no '$pattern' message"; }
  echo "rejected: pglens-bench $* -> $(head -1 "$work/bad.err")"
}
expect_error "unknown method 'bogus'" inserts --dsn "$dsn" --methods copy,bogus
expect_error "--rows" inserts --dsn "$dsn" --rows 0
expect_error "cannot connect" inserts --dsn "postgresql://postgres@127.0.0.1:1/$db" --rows 10
expect_error "cannot connect" inserts --dsn "$dsn" --via "postgresql://postgres@127.0.0.1:1/$db" --rows 10
expect_error "--columns" inserts --dsn "$dsn" --columns int,blob
expect_error "--parents" nplus1 --dsn "$dsn" --parents 0
expect_error "unknown method" nplus1 --dsn "$dsn" --methods join,lazy
expect_error "does not reach" nplus1 --dsn "$dsn" --via "postgresql://postgres@127.0.0.1:$PGLENS_PORT/postgres" --parents 5
expect_error "unknown pgbench query mode" proxy --dsn "$dsn" --modes extended,turbo
expect_error "subcommand" frobnicate

# ---- proxy: a short run, end to end ----
"$bench" proxy --dsn "$dsn" --pglens "$PGLENS_BIN" --seconds 2 --clients 8 --scale 1 \
  --json "$work/proxy.json" --svg "$work/proxy.svg" >"$work/proxy.txt" 2>"$work/proxy.err" ||
  { cat "$work/proxy.txt" "$work/proxy.err"; fail "pglens-bench proxy exited non-zero"; }
cat "$work/proxy.txt"
have_pgbouncer=0
if command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ]; then have_pgbouncer=1; fi
/usr/bin/python3 - "$work/proxy.json" "$work/proxy.svg" "$have_pgbouncer" <<'PY' || fail "proxy results"
import json, sys
import xml.etree.ElementTree as ET
doc = json.load(open(sys.argv[1]))
want = ["direct"] + (["pgbouncer"] if sys.argv[3] == "1" else []) + ["pglens", "pglens-noanalysis"]
got = [t["target"] for t in doc["targets"]]
assert got == want, (got, want)
for key in ("pool_size", "seconds", "modes", "clients", "machine", "runs", "results", "summary"):
    assert key in doc, key
assert doc["pool_size"] == 8 and doc["modes"] == ["extended", "prepared"] and doc["clients"] == [8]
assert len(doc["results"]) == 2 * len(want), len(doc["results"])
for r in doc["results"]:
    where = f"{r['target']} -M {r['mode']}"
    if r["target"] != "pgbouncer":  # PgBouncer 1.18 may fail -M prepared: reported, not fatal
        assert r["ok"] and r["tps_median"] > 0 and r["transactions"] > 0, where
    if r["ok"] and r["target"] != "direct":
        assert r["cpu_us_per_txn"] > 0 and r["tps_vs_direct"] > 0, where
    if not r["ok"]:
        assert r["error"], where
assert any(r["ok"] for r in doc["results"] if r["target"] == "pgbouncer") or sys.argv[3] == "0"
# Analysis kept up: every SELECT run through the analyzing pglens (warm-up included) was counted
# under its fingerprint, none more.
check = doc["analysis_check"]
ran = sum(r["transactions"] for r in doc["runs"] if r["target"] == "pglens")
assert check["error"] is None, check
assert check["statements_analyzed"] == check["statements_run"] >= ran > 0, (check, ran)
assert any(s.startswith("analysis (pglens): ") for s in doc["summary"]), doc["summary"]
svg = ET.parse(sys.argv[2]).getroot()
bars = [e for e in svg.iter("{http://www.w3.org/2000/svg}rect") if e.get("data-target")]
assert len(bars) == len(doc["results"]), len(bars)
print(f"proxy: {len(doc['results'])} results, targets {got}")
PY
# ---- proxy --no-direct: only the analysis on/off pair, compared round by round ----
"$bench" proxy --dsn "$dsn" --pglens "$PGLENS_BIN" --seconds 1 --rounds 2 --clients 8 \
  --modes extended --pgbouncer none --no-direct --json "$work/onoff.json" \
  >"$work/onoff.txt" 2>"$work/onoff.err" ||
  { cat "$work/onoff.txt" "$work/onoff.err"; fail "pglens-bench proxy --no-direct exited non-zero"; }
cat "$work/onoff.txt"
grep -q "vs direct" "$work/onoff.txt" && fail "--no-direct still printed a vs-direct column"
/usr/bin/python3 - "$work/onoff.json" <<'PY' || fail "proxy --no-direct results"
import json, math, sys
doc = json.load(open(sys.argv[1]))
got = [t["target"] for t in doc["targets"]]
assert got == ["pglens", "pglens-noanalysis"] and doc["direct"] is False, got
assert not any(r["target"] == "direct" for r in doc["runs"])
[c] = [c for c in doc["comparisons"] if c["against"] == "pglens-noanalysis"]
ratios = c["per_round_ratios"]
assert len(ratios) == 2 and all(r > 0 for r in ratios), c
mean = math.exp(sum(map(math.log, ratios)) / 2)
assert abs(c["per_round_geometric_mean"] - mean) < 1e-9, c
low, high = c["per_round_geometric_mean_interval90"]
assert 0 < low <= mean <= high, c  # Student's t with one degree of freedom: wide
assert not any("tps_vs_direct" in r for r in doc["results"]), doc["results"]
assert any("geometric mean" in s for s in doc["summary"]), doc["summary"]
print(f"proxy --no-direct: ratios {ratios}, geometric mean {mean:.3f}")
PY
echo "pglens-bench ok"
