#!/usr/bin/env bash
# The module boundaries the design rests on, checked on the source tree:
#   the sans-I/O modules (protocol, auth, pool, config, session) include no Asio;
#   analyzer and rules include nothing from proxy.
set -euo pipefail
cd "$(dirname "$0")/../.."
status=0
if hits=$(grep -rnE '#include.*(boost/asio|boost/beast|"proxy/)' protocol auth pool config session); then
  echo "sans-I/O modules include Asio or the proxy:"; echo "$hits"; status=1
fi
if hits=$(grep -rn '"proxy/' analyzer rules); then
  echo "analyzer/ or rules/ include proxy/:"; echo "$hits"; status=1
fi
[ "$status" -eq 0 ] && echo "layering: protocol, auth, pool, config, session free of Asio; analyzer, rules free of proxy"
exit "$status"
