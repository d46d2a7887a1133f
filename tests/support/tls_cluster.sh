#!/usr/bin/env bash
# The TLS-only cluster the TLS tests share: tls_cluster.sh start DIR | stop DIR
#   start: test certificates in DIR/certs (make_certs.sh), then a cluster with ssl = on and
#          hostssl lines only in DIR/pg (pg_cluster.sh with PGLENS_PG_TLS_DIR).
#   stop:  stops it and removes DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command=${1:?usage: tls_cluster.sh start|stop DIR}
dir=${2:?usage: tls_cluster.sh start|stop DIR}
case "$command" in
  start)
    rm -rf "$dir"
    mkdir -p "$dir"
    "$here/make_certs.sh" "$dir/certs" >/dev/null
    PGLENS_PG_TLS_DIR="$dir/certs" "$here/pg_cluster.sh" start "$dir/pg"
    ;;
  stop)
    [ -d "$dir/pg" ] && "$here/pg_cluster.sh" stop "$dir/pg"
    rm -rf "$dir"
    ;;
  *) echo "usage: tls_cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
