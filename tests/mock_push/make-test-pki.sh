#!/usr/bin/env bash
# Makes throw-away keys and certificates for the push transport's tests and
# benchmarks, in DIR (created). Everything is valid for two days and never
# leaves the test's temp dir.
#
#   ca.pem ca.key              test CA
#   server.pem server.key      signed by the CA: DNS localhost, IP 127.0.0.1
#   other-ca.pem               an unrelated CA (a client trusting only it
#                              must reject server.pem)
#   client.pem client.key      client certificate signed by the CA (APNs
#                              certificate auth)
#   apns.p8 apns.pub.pem       APNs token key (PKCS#8 EC P-256) and its public half
#   fcm.key fcm.pub.pem        service-account RSA key (PKCS#8) and its public half
set -euo pipefail
dir="${1:?usage: make-test-pki.sh DIR}"
mkdir -p "$dir"
cd "$dir"
umask 077
ossl() { openssl "$@" 2>/dev/null; }

ossl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout ca.key -out ca.pem -days 2 -subj "/CN=leakscope test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
ossl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout other-ca.key -out other-ca.pem -days 2 -subj "/CN=unrelated CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout server.key -out server.csr -subj "/CN=localhost"
ossl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.pem

printf 'extendedKeyUsage=clientAuth\n' > client.ext
ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout client.key -out client.csr -subj "/UID=com.example.app/CN=Apple Push Services: com.example.app"
ossl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile client.ext -out client.pem

ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out apns.p8
ossl pkey -in apns.p8 -pubout -out apns.pub.pem
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out fcm.key
ossl pkey -in fcm.key -pubout -out fcm.pub.pem
rm -f ./*.csr ./*.ext ./*.srl
echo "pki=$PWD"
