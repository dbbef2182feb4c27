#!/usr/bin/env bash
# Sets up cardsync's central database on an existing PostgreSQL server (docs/deploy.md, "The
# bureau"). In order:
#   1. as a superuser (psql): the schema owner's role (LOGIN CREATEROLE) and the database
#      (create-central-database.sql);
#   2. as the owner (cardsync): `cardsync db migrate`, then `cardsync db roles`, which creates the
#      group roles cardsync_merge, cardsync_bureau and cardsync_agency and grants exactly what
#      each may do;
#   3. as a superuser (psql): the merge service's login, a member of cardsync_merge, and
#      optionally one member of staff's, a member of cardsync_bureau (create-login.sql);
#   4. checks the merge login for real (`cardsync merge` once), writes the merge service's
#      environment file if asked, and prints the pg_hba.conf lines and the settings to add.
# Safe to run again: what exists is kept, passwords are set to what the files hold.
#
# Passwords are read from files (first line) or prompted for, never taken as arguments. They
# leave this script only as SCRAM verifiers computed here (psql reads them from its environment
# with \getenv) and, for cardsync's own connections, through a temporary pgpass file: nothing
# secret is on a command line (`ps` shows those to every user) or in the server's log.
#
# Typical use, on the database server, as root:
#   umask 077; openssl rand -base64 24 > /root/cardsync-owner.password
#   openssl rand -base64 24 > /root/cardsync-merge.password
#   Deploy/bureau/setup-central.sh --psql-as postgres \
#       --owner-password-file /root/cardsync-owner.password \
#       --merge-password-file /root/cardsync-merge.password --merge-env /etc/cardsync/merge.env
#
# Needs psql 15 or later (the server may be older), python3 (for the SCRAM verifiers) and the
# cardsync binary.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

usage() {
    cat <<'EOF'
usage: setup-central.sh [options]

Superuser connection (psql):
  --psql-as USER              run psql as this OS user over the local socket (peer
                              authentication), e.g. postgres; needs root
  --admin CONNINFO            the superuser's libpq conninfo for psql (default: dbname=postgres
                              and the PG* environment); keep passwords out of it (~/.pgpass)
cardsync's connections (as the owner, and in the merge service's URI):
  --host HOST                 server host, or a socket directory (default: localhost)
  --port PORT                 (default: 5432)
  --sslmode MODE              libpq sslmode (default: prefer; verify-full across a network)
  --sslrootcert FILE          the server's CA certificate, for verify-ca/verify-full
  --merge-host HOST           host in the merge service's URI (default: --host)
Names and passwords:
  --database NAME             (default: cardsync)
  --owner ROLE                the schema owner (default: cardsync_owner)
  --owner-password-file FILE  first line is the owner's password (else prompted)
  --merge-login ROLE          the merge service's login (default: cardsync_merge_service)
  --merge-password-file FILE  (else prompted)
  --bureau-login ROLE         also a login for a member of staff, in cardsync_bureau
  --bureau-password-file FILE (else prompted)
Output:
  --merge-env FILE            write the merge service's environment file (mode 0600), e.g.
                              /etc/cardsync/merge.env for cardsync-merge.service
  --agency-network CIDR       agencies' addresses for the printed pg_hba.conf lines
                              (repeatable; default: 0.0.0.0/0 and ::/0)
  --bureau-network CIDR       where the merge service and staff connect from, beyond this
                              host (repeatable; default: none)
  --cardsync PATH             the cardsync binary (default: cardsync on PATH, else
                              /usr/local/bin/cardsync)
  -h, --help
EOF
}

die() { printf 'setup-central.sh: %s\n' "$*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }

psql_as="" admin="" host="localhost" port="5432" sslmode="prefer" sslrootcert="" merge_host=""
database="cardsync" owner="cardsync_owner" owner_password_file=""
merge_login="cardsync_merge_service" merge_password_file=""
bureau_login="" bureau_password_file="" merge_env="" cardsync=""
agency_networks=() bureau_networks=()

need_value() { if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value (see --help)"; fi; }
while [ $# -gt 0 ]; do
    case "$1" in
        --psql-as) need_value "$@"; psql_as=$2; shift 2 ;;
        --admin) need_value "$@"; admin=$2; shift 2 ;;
        --host) need_value "$@"; host=$2; shift 2 ;;
        --port) need_value "$@"; port=$2; shift 2 ;;
        --sslmode) need_value "$@"; sslmode=$2; shift 2 ;;
        --sslrootcert) need_value "$@"; sslrootcert=$2; shift 2 ;;
        --merge-host) need_value "$@"; merge_host=$2; shift 2 ;;
        --database) need_value "$@"; database=$2; shift 2 ;;
        --owner) need_value "$@"; owner=$2; shift 2 ;;
        --owner-password-file) need_value "$@"; owner_password_file=$2; shift 2 ;;
        --merge-login) need_value "$@"; merge_login=$2; shift 2 ;;
        --merge-password-file) need_value "$@"; merge_password_file=$2; shift 2 ;;
        --bureau-login) need_value "$@"; bureau_login=$2; shift 2 ;;
        --bureau-password-file) need_value "$@"; bureau_password_file=$2; shift 2 ;;
        --merge-env) need_value "$@"; merge_env=$2; shift 2 ;;
        --agency-network) need_value "$@"; agency_networks+=("$2"); shift 2 ;;
        --bureau-network) need_value "$@"; bureau_networks+=("$2"); shift 2 ;;
        --cardsync) need_value "$@"; cardsync=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
[ -n "$merge_host" ] || merge_host=$host
[ ${#agency_networks[@]} -gt 0 ] || agency_networks=(0.0.0.0/0 ::/0)
if [ -n "$bureau_password_file" ] && [ -z "$bureau_login" ]; then die "--bureau-password-file needs --bureau-login"; fi

# Plain lower-case identifiers only: they appear unquoted in pg_hba.conf, URIs and pgpass lines,
# and PostgreSQL folds unquoted names to lower case.
for name in "$database" "$owner" "$merge_login" ${bureau_login:+"$bureau_login"}; do
    [[ $name =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "\"$name\" is not a plain lower-case PostgreSQL name ([a-z_][a-z0-9_]*)"
done
for name in "$owner" "$merge_login" ${bureau_login:+"$bureau_login"}; do
    case "$name" in
        cardsync_merge|cardsync_bureau|cardsync_agency|cardsync_agency_*|postgres)
            die "\"$name\" is one of cardsync's group roles, an agency's role or the superuser: choose a name of its own" ;;
    esac
done
if [ "$owner" = "$merge_login" ] || [ "$owner" = "$bureau_login" ] || [ "$merge_login" = "$bureau_login" ]; then
    die "the owner, the merge login and the staff login must be three different roles"
fi
[[ $port =~ ^[0-9]{1,5}$ ]] || die "--port must be a number"
case "$sslmode" in disable|allow|prefer|require|verify-ca|verify-full) ;; *) die "--sslmode: unknown mode $sslmode" ;; esac
[ -z "$sslrootcert" ] || [ -r "$sslrootcert" ] || die "cannot read --sslrootcert $sslrootcert"

# --- tools -------------------------------------------------------------------------------------
command -v psql >/dev/null 2>&1 || die "psql is not installed (apt-get install postgresql-client)"
psql_major=$(psql --version | sed -n 's/^psql (PostgreSQL) \([0-9][0-9]*\).*/\1/p')
if [ -z "$psql_major" ] || [ "$psql_major" -lt 15 ]; then
    die "psql 15 or later is needed (it reads the verifiers with \\getenv); this is $(psql --version)"
fi
command -v python3 >/dev/null 2>&1 || die "python3 is needed to compute SCRAM verifiers (apt-get install python3)"
if [ -z "$cardsync" ]; then
    cardsync=$(command -v cardsync || true)
    [ -n "$cardsync" ] || cardsync=/usr/local/bin/cardsync
fi
[ -x "$cardsync" ] || die "cardsync binary not found or not executable: $cardsync (give it with --cardsync PATH)"
if [ -n "$psql_as" ]; then
    [ "$(id -u)" -eq 0 ] || die "--psql-as needs root (it runs psql with runuser)"
    id -u "$psql_as" >/dev/null 2>&1 || die "no such OS user: $psql_as"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Everything this script writes (pgpass, the merge environment file) is for its owner only.
umask 077

# --- passwords ---------------------------------------------------------------------------------
# read_password VAR FILE WHAT: the first line of FILE, or asked twice on the terminal.
read_password() {
    local __var=$1 file=$2 what=$3 value="" again=""
    if [ -n "$file" ]; then
        [ -r "$file" ] || die "cannot read the $what password file $file"
        if [ -n "$(find "$file" -maxdepth 0 -perm /077 2>/dev/null)" ]; then
            printf 'warning: %s is readable by others than its owner (chmod 600 it)\n' "$file" >&2
        fi
        IFS= read -r value <"$file" || [ -n "$value" ] || die "the $what password file $file is empty"
        value=${value%$'\r'}
    else
        [ -r /dev/tty ] || die "no --${what}-password-file and no terminal to ask on"
        IFS= read -r -s -p "Password for the $what role: " value </dev/tty; printf '\n' >/dev/tty
        IFS= read -r -s -p "Again: " again </dev/tty; printf '\n' >/dev/tty
        [ "$value" = "$again" ] || die "the two $what passwords differ"
    fi
    # Printable ASCII without spaces: it passes unchanged through SASLprep (so the verifier made
    # here matches what libpq sends), URIs, pgpass and environment files.
    [[ $value =~ ^[!-~]{16,}$ ]] ||
        die "the $what password must be at least 16 printable ASCII characters without spaces (openssl rand -base64 24)"
    printf -v "$__var" '%s' "$value"
}

# The SCRAM-SHA-256 verifier PostgreSQL stores, computed here from the password on stdin, in
# PostgreSQL's format (4096 iterations, 16-byte random salt), so the server never sees the password.
scram_verifier() {
    # shellcheck disable=SC2016 # Python, not shell: nothing in it is for the shell to expand.
    printf '%s' "$1" | python3 -c '
import base64, hashlib, hmac, os, sys
password = sys.stdin.buffer.read()
iterations, salt = 4096, os.urandom(16)
salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
client_key = hmac.new(salted, b"Client Key", "sha256").digest()
stored_key = hashlib.sha256(client_key).digest()
server_key = hmac.new(salted, b"Server Key", "sha256").digest()
b64 = lambda b: base64.b64encode(b).decode()
print(f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}")
'
}

# pgpass escapes ':' and '\'; URIs percent-encode everything but unreserved characters (and,
# with a second argument "/", slashes, which a path in a query value may keep).
pgpass_escape() { local s=${1//\\/\\\\}; printf '%s' "${s//:/\\:}"; }
uri_encode() {
    local LC_ALL=C s=$1 keep=${2:-} out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case "$c" in
            [A-Za-z0-9._~-]) out+=$c ;;
            /) if [ "$keep" = / ]; then out+=$c; else out+=%2F; fi ;;
            *) printf -v c '%%%02X' "'$c"; out+=$c ;;
        esac
    done
    printf '%s' "$out"
}

# uri ROLE PASSWORD HOST APPLICATION: a libpq URI (PASSWORD may be empty: then pgpass supplies it).
uri() {
    local user=$1 userinfo query="sslmode=$sslmode"
    userinfo=$user${2:+:$(uri_encode "$2")}
    [ -z "$sslrootcert" ] || query+="&sslrootcert=$(uri_encode "$(realpath "$sslrootcert")" /)"
    query+="&application_name=$4"
    case "$3" in
        /*) printf 'postgresql://%s@/%s?host=%s&port=%s&%s' "$userinfo" "$database" "$(uri_encode "$3")" "$port" "$query" ;;
        *:*) printf 'postgresql://%s@[%s]:%s/%s?%s' "$userinfo" "$3" "$port" "$database" "$query" ;;
        *) printf 'postgresql://%s@%s:%s/%s?%s' "$userinfo" "$3" "$port" "$database" "$query" ;;
    esac
}

owner_password="" merge_password="" bureau_password=""
read_password owner_password "$owner_password_file" owner
read_password merge_password "$merge_password_file" merge
[ -z "$bureau_login" ] || read_password bureau_password "$bureau_password_file" bureau

# A pgpass file per role, used by cardsync's own connections below (PGPASSFILE): the URI then
# carries no password. libpq requires mode 0600, which the umask above gives.
printf '*:*:%s:%s:%s\n' "$database" "$owner" "$(pgpass_escape "$owner_password")" >"$work/owner.pgpass"
printf '*:*:%s:%s:%s\n' "$database" "$merge_login" "$(pgpass_escape "$merge_password")" >"$work/merge.pgpass"

# run_psql SQLFILE [psql options]: the superuser's psql, fed the file on stdin so that the OS
# user of --psql-as need not be able to read this checkout. runuser keeps the environment
# (the verifiers); `cd /` spares psql a working directory it may not enter.
run_psql() {
    local sql=$1; shift
    local cmd=(psql -X -q -v ON_ERROR_STOP=1 -d "${admin:-dbname=postgres}" "$@" -f -)
    if [ -n "$psql_as" ]; then
        (cd / && runuser -u "$psql_as" -- "${cmd[@]}") <"$sql"
    else
        "${cmd[@]}" <"$sql"
    fi
}

# run_cardsync PGPASS [cardsync arguments]: cardsync with only the given pgpass file for a
# password, whatever the caller's environment says.
run_cardsync() {
    local pgpass=$1; shift
    env -u PGPASSWORD -u CARDSYNC_DATABASE_URL PGPASSFILE="$pgpass" "$cardsync" "$@"
}

# --- 1. owner and database ---------------------------------------------------------------------
step "Owner role $owner and database $database (as the superuser)"
CARDSYNC_OWNER_VERIFIER=$(scram_verifier "$owner_password") \
    run_psql "$here/create-central-database.sql" -v owner="$owner" -v database="$database"
echo "ok"

# --- 2. schema and group roles -----------------------------------------------------------------
owner_url=$(uri "$owner" "" "$host" cardsync-setup)
step "Schema: cardsync db migrate, then db roles (as $owner)"
if ! run_cardsync "$work/owner.pgpass" db migrate --database "$owner_url"; then
    die "cardsync could not connect as $owner to $host:$port. pg_hba.conf must let $owner log in with a password from here (see the lines printed at the end; on Debian the default 'host all all 127.0.0.1/32 scram-sha-256' does, 'local ... peer' does not): fix it, reload, run this again"
fi
# db roles exits 1 while any privilege differs from the model; here that stops the setup.
run_cardsync "$work/owner.pgpass" db roles --database "$owner_url" >"$work/roles.txt" ||
    { cat "$work/roles.txt"; die "cardsync db roles found privileges that differ from the model (above)"; }
echo "ok"

# --- 3. logins ---------------------------------------------------------------------------------
step "Merge service login $merge_login, member of cardsync_merge (as the superuser)"
# Three connections per merge (work, projection, LISTEN); the limit leaves room for a restart
# overlapping the old process, and stops a leaked password from opening hundreds.
CARDSYNC_LOGIN_VERIFIER=$(scram_verifier "$merge_password") \
    run_psql "$here/create-login.sql" -v login="$merge_login" -v group=cardsync_merge -v connection_limit=8
echo "ok"
if [ -n "$bureau_login" ]; then
    step "Staff login $bureau_login, member of cardsync_bureau (as the superuser)"
    CARDSYNC_LOGIN_VERIFIER=$(scram_verifier "$bureau_password") \
        run_psql "$here/create-login.sql" -v login="$bureau_login" -v group=cardsync_bureau
    echo "ok"
fi

# --- 4. check ----------------------------------------------------------------------------------
step "Roles and privileges (cardsync db roles)"
run_cardsync "$work/owner.pgpass" db roles --database "$owner_url" ||
    die "cardsync db roles found privileges that differ from the model (above)"

step "The merge login merges (cardsync merge, once, as $merge_login)"
# The real thing rather than a bare connection test: it proves the login, its membership, the
# schema version and pg_hba.conf together. It is what the service does, so running it is harmless.
merge_check_url=$(uri "$merge_login" "" "$merge_host" cardsync-setup)
run_cardsync "$work/merge.pgpass" merge --database "$merge_check_url" ||
    die "the merge login could not merge: see the message above (pg_hba.conf for $merge_login from $merge_host?)"

if [ -n "$merge_env" ]; then
    step "Merge service environment file $merge_env"
    mkdir -p "$(dirname "$merge_env")"
    # A new file renamed into place: a reader never sees it half-written or with wider modes.
    tmp=$(mktemp "$(dirname "$merge_env")/.merge.env.XXXXXX")
    {
        echo "# cardsync-merge.service: the central database as $merge_login. Written by"
        echo "# Deploy/bureau/setup-central.sh. Root only (0600): systemd reads it before it drops to"
        echo "# the service's user, and the password is in it."
        printf "CARDSYNC_DATABASE_URL='%s'\n" "$(uri "$merge_login" "$merge_password" "$merge_host" cardsync-merge)"
    } >"$tmp"
    chmod 600 "$tmp"
    mv -f "$tmp" "$merge_env"
    [ "$(id -u)" -eq 0 ] || printf 'warning: %s belongs to %s, not root: chown root:root it\n' "$merge_env" "$(id -un)" >&2
    echo "wrote $merge_env"
fi

# --- what the DBA adds by hand -----------------------------------------------------------------
step "pg_hba.conf: add these lines ABOVE the existing ones (the first matching line wins), then reload"
printf '%-8s %-10s %-32s %-18s %s\n' "# TYPE" DATABASE USER ADDRESS METHOD
printf '%-8s %-10s %-32s %-18s %s\n' local "$database" "$owner,+cardsync_merge" "" scram-sha-256
for address in 127.0.0.1/32 ::1/128; do
    printf '%-8s %-10s %-32s %-18s %s\n' host "$database" "$owner,+cardsync_merge" "$address" scram-sha-256
done
for address in ${bureau_networks[@]+"${bureau_networks[@]}"}; do
    printf '%-8s %-10s %-32s %-18s %s\n' hostssl "$database" "+cardsync_merge" "$address" scram-sha-256
done
for address in "${agency_networks[@]}"; do
    printf '%-8s %-10s %-32s %-18s %s\n' hostssl "$database" "+cardsync_agency" "$address" scram-sha-256
done
for address in 0.0.0.0/0 ::/0; do
    printf '%-8s %-10s %-32s %-18s %s\n' host "$database" all "$address" reject
done
cat <<EOF
# Owner: this host only. +cardsync_merge: the merge service and staff (members of cardsync_bureau
# are members of cardsync_merge). Agencies: TLS and SCRAM only, from their networks; for
# certificate login use "cert" instead of "scram-sha-256" for that agency's role. The "reject"
# lines keep any later, broader line from letting anyone else into $database.
EOF

step "Server settings"
cat <<EOF
Recommended settings, each with its reason: $here/postgresql.cardsync.conf
On Debian: cp it to /etc/postgresql/<version>/main/conf.d/cardsync.conf, set the WAL archive
command for your backups, then restart PostgreSQL (max_connections, shared_buffers, wal_level
and archive_mode need a restart).

Next: register the agencies and hand out their credentials (docs/deploy.md), e.g. as staff:
  cardsync agency add CS-FR-001 --name 芙蓉区社保卡服务网点 --district 芙蓉区
  cardsync agency credentials CS-FR-001 --host db.bureau.example --port $port --json > CS-FR-001.credentials.json
EOF
