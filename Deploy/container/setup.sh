#!/usr/bin/env bash
# compose.yaml's setup service, once PostgreSQL is up: what the bureau's DBA and staff do on a
# real server (docs/deploy.md), inside the trial:
#   - Deploy/bureau/setup-central.sh as the superuser, with passwords kept in the env volume
#     (/run/cardsync): owner, database, schema, roles, the merge login (merge.env for the merge
#     service) and a staff login;
#   - one agency: a generated queue with a few months of applications, registered by the staff
#     login, its credentials written to agency.env for the agency service;
# everything owned by uid 10001, the runtime image's user. Run again (every `compose up`), it
# changes nothing that exists: no password is rotated.
set -euo pipefail
# The paths are the containers'; the variables let check.sh-style tests run it elsewhere.
bootstrap=${BOOTSTRAP_DIR:-/bootstrap} env_dir=${ENV_DIR:-/run/cardsync}
queue=${QUEUE_DIR:-/var/lib/cardsync/queues/demo} deploy=${DEPLOY_DIR:-/opt/cardsync/Deploy}
db_host=${DB_HOST:-db} db_port=${DB_PORT:-5432} cardsync=${CARDSYNC:-/usr/local/bin/cardsync}
app_uid=${APP_UID:-10001}
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

install -d -m 0750 "$env_dir"
install -m 0644 "$bootstrap/tls/ca.crt" "$env_dir/ca.crt"
for role in owner merge clerk; do
    [ -s "$env_dir/$role.password" ] || openssl rand -base64 24 >"$env_dir/$role.password"
done

# The superuser's password reaches psql through a pgpass file, never an argument.
printf '%s:%s:*:postgres:%s\n' "$db_host" "$db_port" "$(sed 's/[\\:]/\\&/g' "$bootstrap/postgres_password")" >"$work/admin.pgpass"
export PGPASSFILE=$work/admin.pgpass
tls="sslmode=verify-full sslrootcert=$env_dir/ca.crt"
"$deploy/bureau/setup-central.sh" \
    --admin "host=$db_host port=$db_port user=postgres dbname=postgres $tls" \
    --host "$db_host" --port "$db_port" --sslmode verify-full --sslrootcert "$env_dir/ca.crt" \
    --owner-password-file "$env_dir/owner.password" \
    --merge-password-file "$env_dir/merge.password" --merge-env "$env_dir/merge.env" \
    --bureau-login cardsync_clerk --bureau-password-file "$env_dir/clerk.password" \
    --agency-network samenet --cardsync "$cardsync"

# Staff's connection: the clerk's password in a pgpass file, the URI without it.
printf '*:*:cardsync:cardsync_clerk:%s\n' "$(sed 's/[\\:]/\\&/g' "$env_dir/clerk.password")" >"$work/clerk.pgpass"
clerk_url="postgresql://cardsync_clerk@$db_host:$db_port/cardsync?sslmode=verify-full&sslrootcert=$env_dir/ca.crt"
as_clerk() { PGPASSFILE=$work/clerk.pgpass "$cardsync" "$@" --database "$clerk_url"; }

if [ ! -e "$queue/agency.json" ]; then
    # One agency of a generated city, with its events, as if its counter had been busy.
    "$cardsync" generate "$work/city" --agencies 1 --applications 200 --months 3 --seed 11 >/dev/null
    generated=$(dirname "$(find "$work/city" -name agency.json | head -n 1)")
    install -d -m 0750 "$queue"
    cp "$generated/agency.json" "$generated/outbox.jsonl" "$queue/"
fi
code=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["agency"]["code"])' "$queue/agency.json")
name=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["agency"]["name"])' "$queue/agency.json")
as_clerk agency add "$code" --name "$name"
if [ ! -s "$env_dir/agency.env" ]; then
    as_clerk agency credentials "$code" --host "$db_host" --port "$db_port" --json >"$work/credentials.json"
    uri=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["uri"])' "$work/credentials.json")
    printf "CARDSYNC_DATABASE_URL='%s&sslrootcert=%s&application_name=cardsync-%s'\n" "$uri" "$env_dir/ca.crt" "$code" >"$env_dir/agency.env"
    echo "agency $code: credentials in $env_dir/agency.env"
fi
chown -R "$app_uid:$app_uid" "$env_dir" "$(dirname "$queue")"
echo "setup done: agency $code syncs $queue"
