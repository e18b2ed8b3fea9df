#!/usr/bin/env bash
# Restore a backup made by backup-postgres.sh into a NEW database of a running aza-pg container.
#
#   restore-postgres.sh CONTAINER INPUT [DATABASE]
#
# The target database must not exist: it is created from template0, the dump is replayed in one
# transaction with ON_ERROR_STOP, and on any failure the half-made database is dropped again. An
# existing database is never touched. See usage() below.
set -euo pipefail

prog=$(basename "$0")
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
. "$(dirname -- "$0")/lib/common.sh"

usage() {
  cat <<USAGE
Usage: $prog CONTAINER INPUT [DATABASE]

Restore INPUT (a .sql.gz file written by backup-postgres.sh) into DATABASE of the running PostgreSQL
container CONTAINER. DATABASE must not exist yet: it is created from template0 and the dump is replayed
in a single transaction that stops at the first error; if anything fails the new database is dropped
again. To replace a database, drop it first (docker exec CONTAINER dropdb -U postgres NAME) or restore
under a new name and rename.

  CONTAINER  name or id of the container (e.g. postgres-primary)
  INPUT      gzip-compressed plain SQL dump on this host
  DATABASE   database to create; default: the container's POSTGRES_DB, else its POSTGRES_USER, else postgres

Roles are not part of a single-database dump: the roles that own objects in it must exist in the
target server (they do when restoring into the server the backup came from).

Environment (all optional): PGUSER, PGPASSWORD, PGHOST, PGPORT, DOCKER, as for backup-postgres.sh;
PGPASSWORD reaches the container through the environment, never a command line.

Exit status: 0 restored, 1 the restore failed (the new database was dropped), 2 bad usage or unreadable
INPUT, 3 DATABASE already exists (nothing was changed).
USAGE
}

handle_options "$@"
check_arg_count "CONTAINER INPUT [DATABASE]" 2 3 "$#"

container=$1 input=$2 database=${3:-}
[ -n "$container" ] || die "$EXIT_USAGE" "CONTAINER is empty"
if [ "$#" -eq 3 ] && [ -z "$database" ]; then die "$EXIT_USAGE" "DATABASE is empty"; fi
[ -f "$input" ] || die "$EXIT_USAGE" "$input is not a file"
[ -r "$input" ] || die "$EXIT_USAGE" "$input is not readable"
command -v gzip >/dev/null || die "$EXIT_FAILED" "gzip is not installed on this host"
gzip -t -- "$input" 2>/dev/null || die "$EXIT_USAGE" "$input is not a valid gzip file (gzip -t failed)"

docker_cmd=${DOCKER:-docker}
connect_container "$container"

# psql inside the container; SQL reads its values through psql variables (:'name' quotes a literal,
# :"name" an identifier), never by pasting them into the SQL text.
in_container() {
  "$docker_cmd" exec -i -u postgres "${exec_env[@]}" -- "$container" "$@"
}
psql_admin() {
  in_container psql -X -q -At --no-password -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres "$@"
}

exists=$(printf '%s\n' "SELECT count(*) FROM pg_database WHERE datname = :'target';" \
  | psql_admin -v target="$database") || die "$EXIT_FAILED" "cannot query container $container (see the message above)"
if [ "$exists" != "0" ]; then
  die "$EXIT_EXISTS" "database \"$database\" already exists in $container; nothing was changed (drop it first or give another DATABASE)"
fi

printf '%s: creating database "%s" in %s (from template0)\n' "$prog" "$database" "$container" >&2
printf '%s\n' "CREATE DATABASE :\"target\" TEMPLATE template0;" | psql_admin -v target="$database" \
  || die "$EXIT_FAILED" "could not create database \"$database\""

drop_new_database() {
  printf '%s\n' "DROP DATABASE IF EXISTS :\"target\";" | psql_admin -v target="$database" >/dev/null 2>&1 || true
}

printf '%s: restoring %s into "%s"\n' "$prog" "$input" "$database" >&2
if ! gzip -dc -- "$input" \
    | in_container psql -X -q --no-password -v ON_ERROR_STOP=1 --single-transaction \
        --username="$user" --dbname="$database" >/dev/null; then
  drop_new_database
  die "$EXIT_FAILED" "the restore failed (see the message above); database \"$database\" was dropped again"
fi
printf '%s: restored "%s" in %s\n' "$prog" "$database" "$container" >&2
