#!/usr/bin/env bash
# Create a private certificate authority and a server certificate for aza-pg's PostgreSQL (and for
# clients / PgBouncer to verify it with sslmode=verify-full).
#
#   generate-ssl-certs.sh DIR [EXTRA_NAME...]
#
# See usage() below.
set -euo pipefail

prog=$(basename "$0")
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
. "$(dirname -- "$0")/lib/common.sh"
default_names=(postgres pgbouncer postgres-primary postgres-replica postgres-single pgbouncer-primary localhost
  127.0.0.1 ::1)

usage() {
  cat <<USAGE
Usage: $prog DIR [EXTRA_NAME...]

Write into DIR (created if missing):
  ca.crt, ca.key          a private CA (kept if both already exist, so the server certificate can be renewed)
  server.crt, server.key  the server certificate signed by that CA, and its key

The server certificate is valid for these names and addresses:
  ${default_names[*]}
plus every EXTRA_NAME (a DNS name such as db.example.internal, or an IPv4/IPv6 address).

Keys are created with mode 0600, certificates 0644. Existing server.crt / server.key are never
overwritten: move them away to renew. Mount DIR read-only at /etc/postgresql/certs and set
POSTGRES_SSL=on; clients verify the server with sslmode=verify-full sslrootcert=DIR/ca.crt.

Environment: CA_DAYS (default 3650), SERVER_DAYS (default 825), OPENSSL (default openssl).
Exit status: 0 done, 1 openssl failed, 2 bad usage, 3 a server certificate or key already exists.
USAGE
}

handle_options "$@"
check_arg_count "DIR [EXTRA_NAME...]" 1 1000 "$#"
dir=$1; shift
[ -n "$dir" ] || die "$EXIT_USAGE" "DIR is empty"

is_days() { [[ $1 =~ ^[1-9][0-9]{0,4}$ ]]; }
ca_days=${CA_DAYS:-3650} server_days=${SERVER_DAYS:-825}
is_days "$ca_days" || die "$EXIT_USAGE" "CA_DAYS=$ca_days is not a number of days (1..99999)"
is_days "$server_days" || die "$EXIT_USAGE" "SERVER_DAYS=$server_days is not a number of days (1..99999)"
openssl_cmd=${OPENSSL:-openssl}
command -v "$openssl_cmd" >/dev/null || die "$EXIT_FAILED" "$openssl_cmd is not installed"

# subjectAltName entries: an address becomes IP:..., anything else must be a DNS name.
san=""
for name in "${default_names[@]}" "$@"; do
  if [[ $name =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || [[ $name =~ ^[0-9A-Fa-f:]+$ && $name == *:* ]]; then
    entry="IP:$name"
  elif [[ $name =~ ^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$ ]]; then
    entry="DNS:$name"
  else
    die "$EXIT_USAGE" "extra name '$name' is neither a DNS name (letters, digits, '-', '.') nor an IP address"
  fi
  case ",$san," in *",$entry,"*) continue ;; esac
  san=${san:+$san,}$entry
done

for f in server.crt server.key; do
  if [ -e "$dir/$f" ] || [ -L "$dir/$f" ]; then
    die "$EXIT_EXISTS" "$dir/$f already exists; refusing to overwrite it (move the old files away to renew)"
  fi
done
if { [ -e "$dir/ca.crt" ] && [ ! -e "$dir/ca.key" ]; } || { [ ! -e "$dir/ca.crt" ] && [ -e "$dir/ca.key" ]; }; then
  die "$EXIT_EXISTS" "$dir has only one of ca.crt / ca.key; refusing to guess (move it away or restore the other)"
fi

# The directory stays traversable (0755) so a non-root PgBouncer or client can read ca.crt; the keys
# inside are 0600 from the moment they exist (umask 077 while openssl writes them).
if [ ! -d "$dir" ]; then
  mkdir -p -- "$(dirname -- "$dir")"
  mkdir -m 0755 -- "$dir"
fi
umask 077
work=$(mktemp -d -- "$dir/.generate-ssl-certs.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

run_openssl() {
  if ! "$openssl_cmd" "$@" 2>"$work/openssl.err"; then
    cat -- "$work/openssl.err" >&2
    die "$EXIT_FAILED" "openssl $1 failed"
  fi
}

if [ -e "$dir/ca.crt" ]; then
  printf '%s: reusing the CA in %s/ca.crt\n' "$prog" "$dir" >&2
  cp -p -- "$dir/ca.crt" "$work/ca.crt"
  cp -p -- "$dir/ca.key" "$work/ca.key"
  new_ca=0
else
  run_openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ca.key"
  run_openssl req -x509 -new -key "$work/ca.key" -sha256 -days "$ca_days" -subj "/CN=aza-pg local CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$work/ca.crt"
  new_ca=1
fi

run_openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/server.key"
run_openssl req -new -key "$work/server.key" -subj "/CN=postgres" -out "$work/server.csr"
cat >"$work/server.ext" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san
EXT
run_openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -set_serial "0x$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" \
  -days "$server_days" -sha256 -extfile "$work/server.ext" -out "$work/server.crt"
run_openssl verify -CAfile "$work/ca.crt" "$work/server.crt" >/dev/null

chmod 0600 -- "$work/server.key" "$work/ca.key"
chmod 0644 -- "$work/server.crt" "$work/ca.crt"
# Publish: never replace an existing file (ln fails when the name exists).
ln -- "$work/server.key" "$dir/server.key" || die "$EXIT_EXISTS" "$dir/server.key appeared meanwhile; not overwritten"
ln -- "$work/server.crt" "$dir/server.crt" || die "$EXIT_EXISTS" "$dir/server.crt appeared meanwhile; not overwritten"
if [ "$new_ca" = 1 ]; then
  ln -- "$work/ca.key" "$dir/ca.key"
  ln -- "$work/ca.crt" "$dir/ca.crt"
fi
printf '%s: wrote %s/{ca.crt,server.crt} (0644) and %s/{ca.key,server.key} (0600)\n' "$prog" "$dir" "$dir" >&2
printf '%s: server certificate names: %s\n' "$prog" "$san" >&2
printf '%s: keep ca.key out of the server: only ca.crt, server.crt and server.key need to be mounted\n' "$prog" >&2
