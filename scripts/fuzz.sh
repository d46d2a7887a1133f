#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/) and runs each for a bounded time on the
# seed corpus (tests/fuzz/corpus: real exchanges, recorded by tests/fuzz/capture.py) and on
# every input that once crashed one (tests/fuzz/regressions). Seconds per target: $1, default 20.
# A crash stops with the input saved in build-fuzz/crashes/ and a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPGLENS_FUZZ=ON "${launcher[@]}" >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_decoder fuzz_login fuzz_session >/dev/null
mkdir -p build-fuzz/crashes
for target in fuzz_decoder fuzz_login fuzz_session; do
  # The regressions first, each once; then new inputs, in a scratch corpus seeded from the repo's.
  if compgen -G "tests/fuzz/regressions/*" >/dev/null; then
    build-fuzz/bin/$target -runs=0 tests/fuzz/regressions >/dev/null 2>&1 ||
      { echo "$target: a regression input fails again"; build-fuzz/bin/$target tests/fuzz/regressions/*; exit 1; }
  fi
  work=$(mktemp -d /tmp/pglens-fuzz-XXXXXX)
  if ! build-fuzz/bin/$target -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix=build-fuzz/crashes/$target- -print_final_stats=1 "$work" tests/fuzz/corpus \
      >"$work.log" 2>&1; then
    tail -40 "$work.log"
    echo "$target found a crash: build-fuzz/crashes/ (add it to tests/fuzz/regressions with the fix)"
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$work.log" | grep -o '[0-9]*$')
  echo "$target: $runs inputs in ${seconds} s, no crash"
  rm -rf "$work" "$work.log"
done
