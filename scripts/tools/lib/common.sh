# Shared by the scripts in scripts/tools (sourced, not executed). Expects `prog` and a `usage` function.
# shellcheck shell=bash
# `prog`, `usage` and `docker_cmd` are the caller's:
# shellcheck disable=SC2154

# shellcheck disable=SC2034  # EXIT_EXISTS is used by the scripts that source this file
readonly EXIT_FAILED=1 EXIT_USAGE=2 EXIT_EXISTS=3

die() { local code=$1; shift; printf '%s: error: %s\n' "$prog" "$*" >&2; exit "$code"; }

# -h/--help prints usage; any other leading option is an error. Call with "$@".
handle_options() {
  case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    -*) printf '%s: error: unknown option %s\n' "$prog" "$1" >&2; usage >&2; exit "$EXIT_USAGE" ;;
  esac
}

# check_arg_count EXPECTED_TEXT MIN MAX ACTUAL
check_arg_count() {
  if [ "$4" -lt "$2" ] || [ "$4" -gt "$3" ]; then
    printf '%s: error: expected %s, got %d argument(s)\n' "$prog" "$1" "$4" >&2
    usage >&2
    exit "$EXIT_USAGE"
  fi
}

# The running container CONTAINER through $docker_cmd, and the defaults it implies:
# sets `user` (PGUSER, else the container's POSTGRES_USER, else postgres), `database` (when empty: the
# container's POSTGRES_DB, else user) and `exec_env` (docker exec -e NAME for each connection variable
# that is set: docker copies the value from this process, so a password never appears in any argv).
connect_container() {
  local container=$1 running name
  running=$("$docker_cmd" inspect --type container --format '{{.State.Running}}' -- "$container" 2>/dev/null) \
    || die "$EXIT_USAGE" "no container named $container (see: $docker_cmd ps)"
  [ "$running" = "true" ] || die "$EXIT_FAILED" "container $container is not running"
  user=${PGUSER:-$(container_env "$container" POSTGRES_USER)}
  user=${user:-postgres}
  if [ -z "$database" ]; then
    database=$(container_env "$container" POSTGRES_DB)
    database=${database:-$user}
  fi
  exec_env=()
  for name in PGPASSWORD PGHOST PGPORT PGSSLMODE; do
    if [ -n "${!name:-}" ]; then
      export "${name?}"
      exec_env+=(-e "$name")
    fi
  done
}

# container_env CONTAINER NAME: the value of NAME in the container's configured environment (only that
# one line is kept).
container_env() {
  "$docker_cmd" inspect --type container --format '{{range .Config.Env}}{{println .}}{{end}}' -- "$1" \
    | sed -n "s/^$2=//p" | head -n 1
}
