#!/usr/bin/env bash
# Exact per-transaction costs of pglens and PgBouncer, side by side: counts that do not drift
# with the machine's load, where tps does (±25% here).
#
#   bench/count_per_tx.sh [--pglens PATH] [--cases "8:20 64:8"] [--modes "simple extended prepared"]
#                         [--analysis "on off"] [--backends "io_uring epoll|default"] [--tx N]
#                         [--no-pgbouncer] [--json FILE]
#                         [--keep-profiles DIR] [--pglens-arg ARG]...
#
# For each case (clients:pool_size), pgbench mode and analysis setting, each proxy runs pgbench -S
# (transaction pooling, the same pool size) against one throwaway Postgres (scale 1) and is
# measured three times, each after a warm-up of 10 transactions per client:
#   syscalls      strace -f -c attached to every thread of the proxy, during pgbench -t N
#   instructions  user-space instructions of all threads (valgrind --tool=callgrind, counters
#                 zeroed after the warm-up and dumped after pgbench -t N)
#   allocations   calls to malloc/calloc/realloc/memalign in that same callgrind profile
#   switches      voluntary + involuntary context switches of all threads (/proc/PID/task/*/status)
#                 during pgbench -t N without strace or valgrind
# Each is divided by clients × N. Instructions and allocations repeat to within a few tenths
# of a percent; syscalls within ~2% (how many reads end in EAGAIN depends on timing a little).
# Printed as a table; --json writes the figures too. A run of the whole matrix takes ~10 min.
# Known: valgrind holds its global lock through a blocking io_uring_enter, so pglens-io_uring's
# resolver thread can starve under it and the io_uring leg stall (liburing issue #657); then run
# with --backends epoll.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

pglens=$root/build/bin/pglens
cases="64:8 8:20"
modes="extended simple prepared"
analysis_settings="on off"
backends="io_uring epoll"
tx=100
with_pgbouncer=1
json_out=
keep_profiles=
pglens_extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --pglens) pglens=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --analysis) analysis_settings=$2; shift 2 ;;
    --backends) backends=$2; shift 2 ;;
    --tx) tx=$2; shift 2 ;;
    --no-pgbouncer) with_pgbouncer=0; shift ;;
    --json) json_out=$2; shift 2 ;;
    --keep-profiles) keep_profiles=$2; mkdir -p "$2"; shift 2 ;;
    --pglens-arg) pglens_extra+=("$2"); shift 2 ;;
    -h|--help) sed -n 2,21p "$0"; exit 0 ;;
    *) echo "count_per_tx: unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in strace valgrind callgrind_control pgbench; do
  command -v "$tool" >/dev/null || { echo "count_per_tx: $tool not found (apt-get install strace valgrind postgresql-client-15)" >&2; exit 2; }
done
[ -x "$pglens" ] || { echo "count_per_tx: $pglens not built" >&2; exit 2; }
pgbouncer=$(command -v pgbouncer || true)
[ -n "$pgbouncer" ] || with_pgbouncer=0

work=$(mktemp -d /tmp/pglens-count.XXXXXX)
chmod 755 "$work"
cluster=$work/pg
proxy_pid=
cleanup() {
  [ -n "$proxy_pid" ] && kill -9 "$proxy_pid" 2>/dev/null || true
  "$root/tests/support/pg_cluster.sh" stop "$cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$root/tests/support/pg_cluster.sh" start "$cluster" >/dev/null
# shellcheck disable=SC1091
source "$cluster/env"
pgport=$PGLENS_PGPORT
psql -qAt -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -c "CREATE DATABASE bench" >/dev/null
pgbench -q -i -s 1 -h 127.0.0.1 -p "$pgport" -U postgres bench >/dev/null 2>&1

as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

free_port() { /usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

wait_listening() {  # port, timeout seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    psql -qAt -h 127.0.0.1 -p "$1" -U postgres -d bench -c 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "count_per_tx: proxy on port $1 did not answer" >&2
  return 1
}

# The proxy's command line, for one case: proxy clients pool analysis port
proxy_command() {
  local proxy=$1 clients=$2 pool=$3 analysis=$4 port=$5
  if [ "$proxy" = pgbouncer ]; then
    cat >"$work/pgbouncer.ini" <<INI
[databases]
bench = host=127.0.0.1 port=$pgport dbname=bench user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $work/userlist.txt
pool_mode = transaction
default_pool_size = $pool
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = $((clients * 2 + 100))
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
INI
    echo '"postgres" ""' >"$work/userlist.txt"
    chmod 644 "$work/pgbouncer.ini" "$work/userlist.txt"
    echo "$pgbouncer $work/pgbouncer.ini"
  else
    local a=()
    [ "$analysis" = off ] && a=(--no-analysis)
    # The program of that backend itself, not a hand-over by exec (valgrind would lose it).
    local program=$pglens
    [ "${proxy#pglens:}" = io_uring ] && program=$(dirname "$pglens")/pglens-io_uring
    # "default": no --io-backend at all (a build from before the flag, for --pglens OLD).
    local backend_flag="--io-backend ${proxy#pglens:}"
    [ "${proxy#pglens:}" = default ] && backend_flag=
    echo "$program --listen 127.0.0.1:$port --upstream postgresql://postgres@127.0.0.1:$pgport" \
      "$backend_flag --pool-mode transaction --pool-size $pool --max-overflow 0 --log-level warn ${a[*]} ${pglens_extra[*]}"
  fi
}

# Starts the proxy (as postgres for PgBouncer, which refuses root), optionally under a wrapper.
start_proxy() {  # proxy wrapper... -- command
  local proxy=$1
  shift
  if [ "$proxy" = pgbouncer ]; then
    as_postgres "$@" >"$work/proxy.log" 2>&1 &
  else
    "$@" >"$work/proxy.log" 2>&1 &
  fi
  proxy_pid=$!
}

# The PID of the proxy process itself: for PgBouncer, a subshell and runuser stay in between
# (valgrind execs its tool in place), so it is the one process of the postgres user on its ini.
proxy_process() {  # proxy
  local pid
  [ "$1" = pgbouncer ] || { echo "$proxy_pid"; return; }
  for _ in $(seq 100); do
    pid=$(pgrep -n -u postgres -f "$work/pgbouncer.ini" || true)
    [ -n "$pid" ] && { echo "$pid"; return; }
    sleep 0.1
  done
  return 1
}

run_pgbench() {  # port mode clients tx
  pgbench -n -S -h 127.0.0.1 -p "$1" -U postgres -M "$2" -c "$3" -j 2 -t "$4" bench >"$work/pgbench.log" 2>&1 || {
    cat "$work/pgbench.log" >&2
    return 1
  }
  grep -q "number of failed transactions: 0" "$work/pgbench.log" || ! grep -q "failed transactions" "$work/pgbench.log" || {
    cat "$work/pgbench.log" >&2
    return 1
  }
}

stop_proxy() {  # pid: SIGTERM (PgBouncer's immediate shutdown), SIGINT for pglens
  [ -z "$proxy_pid" ] && return
  if [ "$1" != "$proxy_pid" ]; then kill -TERM "$1" 2>/dev/null || true; else kill -INT "$1" 2>/dev/null || true; fi
  for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$proxy_pid" 2>/dev/null || true
  proxy_pid=
}

switches_of() {  # pid: voluntary+involuntary over all threads
  cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s + 0}'
}

# Sums the calls to the allocator in a callgrind profile (cfn= names may be compressed to ids).
allocations_of() {
  /usr/bin/python3 - "$1" <<'PY'
import re, sys
names, current, total = {}, None, 0
alloc = {"malloc", "calloc", "realloc", "memalign", "aligned_alloc", "posix_memalign"}
for line in open(sys.argv[1], errors="replace"):
    if line.startswith("cfn="):
        m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line.strip())
        if m:
            if m.group(2): names[m.group(1)] = m.group(2)
            current = names.get(m.group(1), "")
        else:
            current = line[4:].strip()
    elif line.startswith("calls=") and current is not None:
        if current.split("'")[0] in alloc:
            total += int(line[6:].split()[0])
        current = None
print(total)
PY
}

results=()
# Every count is taken over a short run (-t $short) and a long one (-t $short+tx) and the
# difference divided by clients × tx: pgbench's connects and disconnects cancel out.
short=10
measure() {  # proxy clients pool mode analysis
  local proxy=$1 clients=$2 pool=$3 mode=$4 analysis=$5 port cmd pid n=$(($2 * tx))
  local long=$((short + tx))
  port=$(free_port)
  cmd=$(proxy_command "$proxy" "$clients" "$pool" "$analysis" "$port")

  # 1. context switches, then syscalls: the proxy as it runs in production.
  # shellcheck disable=SC2086
  start_proxy "$proxy" $cmd
  wait_listening "$port" 20
  pid=$(proxy_process "$proxy")
  run_pgbench "$port" "$mode" "$clients" "$short"
  local s0 s1 s2
  s0=$(switches_of "$pid")
  run_pgbench "$port" "$mode" "$clients" "$short"
  s1=$(switches_of "$pid")
  run_pgbench "$port" "$mode" "$clients" "$long"
  s2=$(switches_of "$pid")
  local switches=$(((s2 - s1) - (s1 - s0)))
  local t
  for t in $short $long; do
    strace -f -c -q -p "$pid" -o "$work/strace.$t" &
    local strace_pid=$!
    sleep 1
    run_pgbench "$port" "$mode" "$clients" "$t"
    kill -INT "$strace_pid"
    wait "$strace_pid" 2>/dev/null || true
  done
  stop_proxy "$pid"

  # 2. instructions and allocations: the same under callgrind, counters zeroed after warm-up and
  # dumped after each run (a dump holds what ran since the one before).
  port=$(free_port)
  cmd=$(proxy_command "$proxy" "$clients" "$pool" "$analysis" "$port")
  local out=$work/cg/callgrind.out
  rm -rf "$work/cg" && mkdir -p "$work/cg"
  [ "$(id -u)" -eq 0 ] && chown postgres "$work/cg"
  # shellcheck disable=SC2086
  start_proxy "$proxy" valgrind --tool=callgrind --callgrind-out-file="$out" --compress-strings=no $cmd
  wait_listening "$port" 120
  pid=$(proxy_process "$proxy")
  run_pgbench "$port" "$mode" "$clients" "$short"
  control "$proxy" -z "$pid"
  run_pgbench "$port" "$mode" "$clients" "$short"
  control "$proxy" -d "$pid"
  run_pgbench "$port" "$mode" "$clients" "$long"
  control "$proxy" -d "$pid"
  stop_proxy "$pid"
  [ -f "$out.1" ] && [ -f "$out.2" ] || { echo "count_per_tx: no callgrind dumps for $proxy" >&2; return 1; }
  [ -n "$keep_profiles" ] && cp "$out.2" "$keep_profiles/callgrind.${proxy/:/-}.$clients.$pool.$mode.${analysis/\//}"
  local instructions allocations
  instructions=$(($(awk '/^summary:/ {print $2}' "$out.2") - $(awk '/^summary:/ {print $2}' "$out.1")))
  allocations=$(($(allocations_of "$out.2") - $(allocations_of "$out.1")))

  /usr/bin/python3 - "$work/strace.$short" "$work/strace.$long" "$proxy" "$clients" "$pool" "$mode" \
    "$analysis" "$n" "$instructions" "$allocations" "$switches" >>"$work/results.jsonl" <<'PY'
import json, sys
short, long_, proxy, clients, pool, mode, analysis, n, ins, allocs, switches = sys.argv[1:]
n = int(n)
def counts(path):
    calls, errors = {}, {}
    for line in open(path):
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            calls[parts[-1]] = int(parts[3])
            errors[parts[-1]] = int(parts[4]) if len(parts) == 6 else 0
    return calls, errors
(c1, e1), (c2, e2) = counts(short), counts(long_)
calls = {k: c2.get(k, 0) - c1.get(k, 0) for k in set(c1) | set(c2)}
calls = {k: v for k, v in calls.items() if v > 0}
errors = {k: e2.get(k, 0) - e1.get(k, 0) for k in set(e1) | set(e2)}
print(json.dumps({
    "proxy": proxy, "clients": int(clients), "pool": int(pool), "mode": mode,
    "analysis": analysis, "transactions": n,
    "syscalls": sum(calls.values()) / n,
    "by_name": {k: round(v / n, 3) for k, v in sorted(calls.items(), key=lambda kv: -kv[1])},
    "errors": {k: round(v / n, 3) for k, v in errors.items() if v > 0},
    "instructions": int(ins) / n, "allocations": int(allocs) / n,
    "switches": int(switches) / n}))
PY
  echo "  $proxy c=$clients pool=$pool -M $mode analysis=$analysis: done" >&2
}

# callgrind_control exits 0 whatever happened: its "OK." says the command was carried out.
control() {  # proxy flag pid
  as_postgres_if_bouncer "$1" callgrind_control "$2" "$3" >"$work/control.log" 2>&1 || true
  grep -q "OK\." "$work/control.log" || {
    cat "$work/control.log" >&2
    return 1
  }
}

as_postgres_if_bouncer() {
  local proxy=$1
  shift
  if [ "$proxy" = pgbouncer ]; then as_postgres "$@"; else "$@"; fi
}

echo "count_per_tx: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), pgbench -S -t $tx per client, $(nproc) cores" >&2
for c in $cases; do
  clients=${c%%:*}
  pool=${c##*:}
  for mode in $modes; do
    for backend in $backends; do
      for analysis in $analysis_settings; do
        measure "pglens:$backend" "$clients" "$pool" "$mode" "$analysis"
      done
    done
    # PgBouncer 1.18 cannot pool pgbench -M prepared in transaction mode (named statements).
    if [ "$with_pgbouncer" = 1 ] && [ "$mode" != prepared ]; then
      measure pgbouncer "$clients" "$pool" "$mode" n/a
    fi
  done
done

/usr/bin/python3 - "$work/results.jsonl" "$json_out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
if sys.argv[2]:
    json.dump(rows, open(sys.argv[2], "w"), indent=1)
def top(r):
    return ", ".join(f"{k} {v:g}" for k, v in list(r["by_name"].items())[:5])
print("| clients:pool | mode | proxy | analysis | syscalls/tx | instructions/tx | allocations/tx | switches/tx | syscalls by name (per tx) |")
print("|---|---|---|---|---:|---:|---:|---:|---|")
for r in rows:
    errs = "".join(f" ({k} errors {v:g})" for k, v in r["errors"].items())
    print(f"| {r['clients']}:{r['pool']} | {r['mode']} | {r['proxy']} | {r['analysis']} | "
          f"{r['syscalls']:.2f} | {r['instructions']:,.0f} | {r['allocations']:.2f} | "
          f"{r['switches']:.2f} | {top(r)}{errs} |")
PY
