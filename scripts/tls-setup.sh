#!/bin/sh
# Makes throwaway TLS material for the test cluster in directory $1:
#   ca.crt / ca.key              a self-signed CA
#   server.crt / server.key      a server certificate for DNS:localhost, signed by it
#   other-ca.crt                 an unrelated CA (to show a wrong CA is refused)
# Used by spec/support/tls.lua; needs openssl. Certificates last two days.
set -eu
dir=${1:?usage: tls-setup.sh DIR}
mkdir -p "$dir"
cd "$dir"
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
# shellcheck disable=SC2086
openssl req -x509 $ec -days 2 -subj "/CN=coderunner-db test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout ca.key -out ca.crt 2>/dev/null
# shellcheck disable=SC2086
openssl req $ec -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.crt 2>/dev/null
# shellcheck disable=SC2086
openssl req -x509 $ec -days 2 -subj "/CN=some other CA" \
  -addext "basicConstraints=critical,CA:TRUE" -keyout other-ca.key -out other-ca.crt 2>/dev/null
chmod 600 server.key ca.key other-ca.key
rm -f server.csr server.ext
