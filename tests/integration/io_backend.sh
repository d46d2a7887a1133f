#!/usr/bin/env bash
# Both socket backends, chosen at start-up: pglens with io_backend = auto hands over to
# pglens-io_uring where the kernel allows io_uring (same PID, so supervisors see no change), and
# stays on epoll with io_backend = epoll. Each says which in its log and in SHOW CONFIG, and
# pools pgbench in every query mode (transaction pooling, 16 clients on 4 connections).
source "$(dirname "$0")/../support/lib.sh"
seconds=${PGLENS_PGBENCH_SECONDS:-3}

kernel_has_io_uring() {
  /usr/bin/python3 - <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
params = (ctypes.c_char * 120)()
fd = libc.syscall(425, 4, params)  # io_uring_setup
if fd >= 0:
    os.close(fd)
sys.exit(0 if fd >= 0 else 1)
PY
}

pgbench_database iobackend 1
expected_auto=epoll
kernel_has_io_uring && expected_auto=io_uring
echo "kernel: io_uring $([ $expected_auto = io_uring ] && echo allowed || echo refused)"

for setting in auto epoll io_uring; do
  expected=$setting
  [ "$setting" = auto ] && expected=$expected_auto
  if [ "$setting" = io_uring ] && [ "$expected_auto" = epoll ]; then
    # Demanded but refused: pglens must not start, and must say why.
    if "$PGLENS_BIN" --listen "127.0.0.1:$(free_port)" --upstream "postgresql://127.0.0.1:$PG_DIRECT_PORT" \
      --io-backend io_uring >"$work/refused.log" 2>&1; then
      fail "io_backend = io_uring started on a kernel that refuses io_uring"
    fi
    grep -q "refuses" "$work/refused.log" || fail "no reason given: $(cat "$work/refused.log")"
    continue
  fi
  : >"$PGLENS_LOG"
  start_pglens --upstream "postgresql://127.0.0.1:$PG_DIRECT_PORT" --pool-mode transaction \
    --pool-size 4 --io-backend "$setting" --admin-users postgres
  program=$(basename "$(readlink "/proc/$PGLENS_PID/exe")")
  want_program=pglens
  [ "$expected" = io_uring ] && want_program=pglens-io_uring
  [ "$program" = "$want_program" ] || fail "io_backend = $setting runs $program, expected $want_program"
  grep -q "I/O backend: $expected" "$PGLENS_LOG" || fail "log does not say 'I/O backend: $expected'"
  shown=$(psql -p "$PGLENS_PORT" -d pglens -Atc "SHOW CONFIG" | awk -F'|' '$1 == "io_backend" {print $2}')
  [ "$shown" = "$expected" ] || fail "SHOW CONFIG io_backend = '$shown', expected $expected"
  for mode in simple extended prepared; do
    out=$(pgbench -n -p "$PGLENS_PORT" -c 16 -j 2 -T "$seconds" -M "$mode" "$db" 2>&1) || {
      echo "$out"
      fail "pgbench -M $mode through $program exited non-zero"
    }
    processed=$(grep -oP 'number of transactions actually processed: \K[0-9]+' <<<"$out")
    failed=$(grep -oP 'number of failed transactions: \K[0-9]+' <<<"$out")
    echo "io_backend = $setting ($program): pgbench -M $mode $processed transactions, $failed failed"
    [ "$failed" = 0 ] && [ "$processed" -gt 0 ] || fail "pgbench -M $mode through $program failed"
  done
  stop_pglens
done
echo "io_backend: both backends pass"
