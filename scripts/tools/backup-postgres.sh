#!/usr/bin/env bash
# Logical backup of one database of a running aza-pg container: pg_dump inside the container, gzip on the
# host, verified with `gzip -t`, published under OUTPUT only when complete. An existing OUTPUT is never
# overwritten.
#
#   backup-postgres.sh CONTAINER OUTPUT [DATABASE]
#
# See usage() below for the environment it reads and the exit statuses.
set -euo pipefail

prog=$(basename "$0")
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
. "$(dirname -- "$0")/lib/common.sh"

usage() {
  cat <<USAGE
Usage: $prog CONTAINER OUTPUT [DATABASE]

Dump DATABASE of the running PostgreSQL container CONTAINER with pg_dump (plain SQL), compress it with
gzip into OUTPUT (e.g. backup.sql.gz), and check the archive with gzip -t. OUTPUT is written to a
temporary file next to it first and only appears when the dump is complete; if OUTPUT already exists
nothing is done.

  CONTAINER  name or id of the container (e.g. postgres-primary)
  OUTPUT     file to create on this host; must not exist yet
  DATABASE   database to dump; default: the container's POSTGRES_DB, else its POSTGRES_USER, else postgres

Environment (all optional):
  PGUSER      role to connect as; default: the container's POSTGRES_USER, else postgres
  PGPASSWORD  password, handed to docker exec through the environment (never on a command line);
              not needed for the default Unix-socket connection inside the container
  PGHOST, PGPORT  connect over TCP inside the container instead of the Unix socket
  DOCKER      docker command (default: docker)

Exit status: 0 done, 1 the dump failed (nothing left behind), 2 bad usage, 3 OUTPUT already exists.
Restore with: restore-postgres.sh CONTAINER OUTPUT [DATABASE]
USAGE
}

handle_options "$@"
check_arg_count "CONTAINER OUTPUT [DATABASE]" 2 3 "$#"

container=$1 output=$2 database=${3:-}
[ -n "$container" ] || die "$EXIT_USAGE" "CONTAINER is empty"
[ -n "$output" ] || die "$EXIT_USAGE" "OUTPUT is empty"
if [ "$#" -eq 3 ] && [ -z "$database" ]; then die "$EXIT_USAGE" "DATABASE is empty"; fi
if [ -e "$output" ] || [ -L "$output" ]; then
  die "$EXIT_EXISTS" "$output already exists; refusing to overwrite it (choose a new name or move the old backup away)"
fi
outdir=$(dirname -- "$output")
[ -d "$outdir" ] || die "$EXIT_USAGE" "directory $outdir does not exist"
[ -w "$outdir" ] || die "$EXIT_USAGE" "directory $outdir is not writable"
command -v gzip >/dev/null || die "$EXIT_FAILED" "gzip is not installed on this host"

docker_cmd=${DOCKER:-docker}
connect_container "$container"

umask 077
tmp=$(mktemp -- "$outdir/.$(basename -- "$output").partial.XXXXXX") || die "$EXIT_FAILED" "cannot create a file in $outdir"
cleanup() { rm -f -- "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

printf '%s: dumping database "%s" of container %s as role "%s"\n' "$prog" "$database" "$container" "$user" >&2
if ! "$docker_cmd" exec -u postgres "${exec_env[@]}" -- "$container" \
      pg_dump --no-password --format=plain --username="$user" --dbname="$database" \
    | gzip -c >"$tmp"; then
  die "$EXIT_FAILED" "pg_dump of database \"$database\" failed (see the message above); nothing was written"
fi
gzip -t -- "$tmp" || die "$EXIT_FAILED" "the compressed dump failed its integrity check (gzip -t); nothing was written"
# The last line of a complete plain dump is pg_dump's completion marker.
tail_lines=$(gzip -dc -- "$tmp" | tail -n 5)
if [[ $tail_lines != *"-- PostgreSQL database dump complete"* ]]; then
  die "$EXIT_FAILED" "the dump is incomplete (no completion marker); nothing was written"
fi

# ln refuses to replace an existing name, so a file that appeared meanwhile is never clobbered.
if ! ln -- "$tmp" "$output" 2>/dev/null; then
  if [ -e "$output" ] || [ -L "$output" ]; then
    die "$EXIT_EXISTS" "$output appeared while dumping; refusing to overwrite it"
  fi
  # File systems without hard links: mv -n never overwrites, then make sure it really moved.
  mv -n -- "$tmp" "$output"
  [ ! -e "$tmp" ] || die "$EXIT_EXISTS" "$output appeared while dumping; refusing to overwrite it"
fi
size=$(wc -c <"$output")
printf '%s: wrote %s (%s bytes, gzip verified)\n' "$prog" "$output" "${size// /}" >&2
