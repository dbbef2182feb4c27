#!/usr/bin/env bash
# compose.yaml's init service, before PostgreSQL first starts: makes what a real bureau already
# has, into the bootstrap volume (/bootstrap), once:
#   postgres_password   the superuser's password (POSTGRES_PASSWORD_FILE of the db service)
#   tls/ca.crt          a CA for this trial, and the server certificate it signs for host "db"
#   tls/server.crt, tls/server.key
# Run again, it keeps what exists. Runs as root in the tools image; the files the db service
# reads belong to uid 999, the postgres user of the postgres image.
set -euo pipefail
dir=${1:-/bootstrap}
postgres_uid=999
install -d -m 0755 "$dir/tls"
if [ ! -s "$dir/postgres_password" ]; then
    (umask 077 && openssl rand -base64 24 >"$dir/postgres_password")
    echo "made the superuser's password"
fi
chown "$postgres_uid:$postgres_uid" "$dir/postgres_password"
chmod 0400 "$dir/postgres_password"
if [ ! -s "$dir/tls/server.crt" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    openssl req -x509 -new -newkey rsa:3072 -nodes -days 825 -subj "/CN=cardsync trial CA" \
        -keyout "$work/ca.key" -out "$dir/tls/ca.crt" 2>/dev/null
    openssl req -new -newkey rsa:3072 -nodes -subj "/CN=db" -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:db,DNS:localhost\n' >"$work/san.ext"
    openssl x509 -req -in "$work/server.csr" -CA "$dir/tls/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
        -days 825 -extfile "$work/san.ext" -out "$dir/tls/server.crt" 2>/dev/null
    install -m 0600 "$work/server.key" "$dir/tls/server.key"
    # The CA's key is not kept: nothing else is ever signed with it.
    echo "made a CA and a server certificate for host db"
fi
chmod 0644 "$dir/tls/ca.crt" "$dir/tls/server.crt"
chown "$postgres_uid:$postgres_uid" "$dir/tls/server.key"
chmod 0600 "$dir/tls/server.key"
