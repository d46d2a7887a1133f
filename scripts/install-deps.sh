#!/usr/bin/env bash
# Installs exactly what pglens needs to build and test, from Debian 12 packages.
# Idempotent: packages already present are skipped; apt-get update runs only when
# something is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang-format clang-14 libclang-rt-14-dev
  libboost1.81-dev libpq-dev libpqxx-dev libpg-query-dev
  libspdlog-dev prometheus-cpp-dev libssl-dev
  libtomlplusplus-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  postgresql-15 postgresql-client-15 postgresql-15-hypopg pgbouncer
  python3-asyncpg python3-psycopg2 prometheus-pgbouncer-exporter
  python3-psycopg python3-sqlalchemy python3-django
  prometheus curl python3-yaml iproute2 chromium
  libpostgresql-jdbc-java liburing-dev strace valgrind ccache
)
# Drivers the TLS tests run: a Java runtime for pgJDBC, node and npm for node-postgres (npm
# fetches `pg` from its registry). Whatever provides the command already is kept.
command -v java >/dev/null || packages+=(default-jre-headless)
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
