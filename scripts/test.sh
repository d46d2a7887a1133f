#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: unit tests, then integration
# tests against a throwaway PostgreSQL that ctest starts and removes. Then the unit tests once
# more under AddressSanitizer and UndefinedBehaviorSanitizer, and the fuzzers for a bounded
# time.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
ctest --test-dir build --output-on-failure --no-tests=error

echo "== unit tests under ASan/UBSan"
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPGLENS_SANITIZE=ON -DPGLENS_IO_URING=OFF \
  "${launcher[@]}" >/dev/null
cmake --build build-asan -j"$(nproc)" --target pglens_unit_tests
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  build-asan/bin/pglens_unit_tests --gtest_brief=1

echo "== fuzzers (20 s each)"
./scripts/fuzz.sh 20
