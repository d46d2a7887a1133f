#!/usr/bin/env bash
# Configures and builds pglens into build/ (binaries in build/bin/). Extra arguments go to cmake.
# With ccache installed (scripts/install-deps.sh installs it), compilations are cached across
# builds and checkouts of this tree (paths are taken relative to it).
set -euo pipefail
cd "$(dirname "$0")/.."
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" "$@" >/dev/null
cmake --build build -j"$(nproc)"
