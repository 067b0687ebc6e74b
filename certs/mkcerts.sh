#!/usr/bin/env bash
# Makes the lab PKI into DIR (default: certs/out): a lab CA and one server
# certificate per lab name, ECDSA P-256 by default and RSA-2048 where the
# name ends in -rsa. Idempotent: existing files are kept, missing ones made.
# Private keys stay in DIR and are never committed (.gitignore ignores *.key).
#
#   certs/mkcerts.sh [DIR]
#
# Files:  ca.crt ca.key                      the lab CA (clients trust ca.crt)
#         NAME.crt NAME.key                  server certificates signed by the CA
#         wrong.crt wrong.key                a CA-signed certificate for the wrong
#                                            name (bridge verification exercises)
set -euo pipefail

dir=${1:-$(dirname "$0")/out}
mkdir -p "$dir"
cd "$dir"
umask 077

days=825
# name -> subjectAltName entries
declare -A sans=(
    [web]="DNS:web.lab.test,DNS:*.lab.test,DNS:localhost,IP:127.0.0.1"
    [web2]="DNS:web.lab.test,DNS:*.lab.test,DNS:localhost,IP:127.0.0.1"
    [bank]="DNS:bank.lab.test,DNS:localhost,IP:127.0.0.1"
    [shop]="DNS:shop.lab.test,DNS:www.lab.test,DNS:localhost,IP:127.0.0.1"
    [shop-rsa]="DNS:shop.lab.test,DNS:www.lab.test,DNS:localhost,IP:127.0.0.1"
    [api]="DNS:api.lab.test,DNS:localhost,IP:127.0.0.1"
    [gateway]="DNS:*.lab.test,DNS:lab.test,DNS:localhost,IP:127.0.0.1"
    [wrong]="DNS:wrong.example,IP:192.0.2.1"
    [client]="DNS:client.lab.test"
)

if [ ! -s ca.key ] || [ ! -s ca.crt ]; then
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=tlsgate lab CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt
fi

for name in "${!sans[@]}"; do
    [ -s "$name.crt" ] && [ -s "$name.key" ] && continue
    if [[ $name == *-rsa ]]; then
        openssl genrsa -out "$name.key" 2048 2>/dev/null
    else
        openssl ecparam -name prime256v1 -genkey -noout -out "$name.key" 2>/dev/null
    fi
    usage="serverAuth"
    [ "$name" = client ] && usage="clientAuth"
    openssl req -new -key "$name.key" -subj "/CN=${name}.lab.test" -out "$name.csr"
    printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' \
        "${sans[$name]}" "$usage" >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
        -sha256 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
done
chmod 644 ./*.crt
echo "lab certificates in $(pwd)"
