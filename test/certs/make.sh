#!/usr/bin/env bash
# Regenerates the test CA and the server certificate it signs (EC P-256, valid ~100 years).
# Deno's rustls rejects a self-signed certificate used as the end entity (CaUsedAsEndEntity),
# hence a CA plus a leaf. Run from anywhere: bash test/certs/make.sh
set -euo pipefail
cd "$(dirname "$0")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/ca-key.pem"
openssl req -x509 -new -key "$tmp/ca-key.pem" -sha256 -days 36500 -subj "/CN=sluice test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash" \
  -out ca.pem

openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/server-key.pem"
openssl pkcs8 -topk8 -nocrypt -in "$tmp/server-key.pem" -out server-key.pem
openssl req -new -key server-key.pem -subj "/CN=localhost" -out "$tmp/server.csr"
cat > "$tmp/leaf.ext" <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
EXT
openssl x509 -req -in "$tmp/server.csr" -CA ca.pem -CAkey "$tmp/ca-key.pem" -CAcreateserial \
  -CAserial "$tmp/ca.srl" -sha256 -days 36500 -extfile "$tmp/leaf.ext" -out server.pem

openssl verify -CAfile ca.pem server.pem
