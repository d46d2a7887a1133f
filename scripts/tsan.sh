#!/usr/bin/env bash
# The integration suite once more, with pglens built with ThreadSanitizer and run on two I/O
# threads (--threads 2): every test's pglens writes what TSan finds to a report; any report
# fails the run. Needs ./scripts/build.sh first (it runs the test binary of build/). Arguments go
# to the test binary (e.g. --gtest_filter=Faults.*).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGLENS_TSAN=ON \
  -DPGLENS_BUILD_TESTS=OFF >/dev/null
cmake --build build-tsan -j"$(nproc)" --target pglens >/dev/null
cluster=$(mktemp -d /tmp/pglens-tsan-pg-XXXXXX)
reports=$(mktemp -d /tmp/pglens-tsan-reports-XXXXXX)
trap 'tests/support/pg_cluster.sh stop "$cluster"' EXIT
tests/support/pg_cluster.sh start "$cluster" >/dev/null
status=0
PGLENS_TEST_CLUSTER_DIR=$cluster PGLENS_BIN=$PWD/build-tsan/bin/pglens \
  PGLENS_TEST_ARGS="--threads 2" TSAN_OPTIONS="log_path=$reports/pglens second_deadlock_stack=1" \
  build/bin/pglens_integration_tests --gtest_brief=1 "$@" || status=$?
if compgen -G "$reports/pglens*" >/dev/null; then
  echo "ThreadSanitizer reports ($(ls "$reports" | wc -l) processes):"
  head -60 "$reports"/pglens* 
  exit 1
fi
echo "ThreadSanitizer: no report from any pglens (--threads 2)"
exit "$status"
