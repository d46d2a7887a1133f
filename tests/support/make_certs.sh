#!/usr/bin/env bash
# Test certificates, made with the openssl CLI: make_certs.sh DIR
#   ca.crt/ca.key               the test CA
#   other_ca.crt                a CA that signed nothing here (a "wrong CA" for clients)
#   server.crt/server.key       Postgres' certificate: CN and SAN "localhost" only (no IP), so
#                               verify-full to 127.0.0.1 fails on the host name
#   pglens.crt/pglens.key       pglens' certificate for its clients: SAN localhost and 127.0.0.1
#   pglens2.crt/pglens2.key     another one for pglens (a reload swaps it in)
#   client.crt/client.key       client certificate, CN "postgres"
#   tls_user.crt/tls_user.key   client certificate, CN "tls_user"
# Keys are RSA 2048 (quick to make), certificates valid for a day, every key file mode 0600.
set -euo pipefail
dir=${1:?usage: make_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
quiet() { "$@" >/dev/null 2>&1 || { echo "make_certs: failed: $*" >&2; "$@"; exit 1; }; }

quiet openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=pglens test CA" \
  -keyout ca.key -out ca.crt
quiet openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=someone else's CA" \
  -keyout other_ca.key -out other_ca.crt

# sign NAME CN SAN: a key and a certificate signed by the test CA (SAN empty for a client).
sign() {
  local name=$1 cn=$2 san=$3
  quiet openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" -keyout "$name.key" -out "$name.csr"
  if [ -n "$san" ]; then
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >"$name.ext"
  else
    printf 'extendedKeyUsage=clientAuth\n' >"$name.ext"
  fi
  quiet openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
    -sha256 -extfile "$name.ext" -out "$name.crt"
  rm -f "$name.csr" "$name.ext"
}
sign server localhost "DNS:localhost"
sign pglens localhost "DNS:localhost,IP:127.0.0.1"
sign pglens2 localhost "DNS:localhost,IP:127.0.0.1"
sign client postgres ""
sign tls_user tls_user ""
chmod 600 ./*.key
chmod 644 ./*.crt
