#!/usr/bin/env bash
# Helpers (sourced, not run) that read the Debian archive URIs this host is already configured with, so
# that other suites (trixie) are fetched from the same place the system uses. No host name is written
# into the repository: the answer always comes from /etc/apt/sources.list{,.d/*} at run time.
#
#   debian_uri [SUFFIX]   print the URI of the first enabled `deb` source whose suites contain
#                         "<host codename><SUFFIX>" (SUFFIX "" for the main archive, "-security" for
#                         security updates); non-zero status when none is configured.

_debian_host_codename() {
  # shellcheck disable=SC1091
  (. /etc/os-release && printf '%s\n' "${VERSION_CODENAME:-}")
}

# Print "URI SUITE" pairs for every enabled `deb` entry, from both one-line and deb822 files.
_debian_source_pairs() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    # deb [options] URI SUITE COMPONENT...
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && NF >= 3 { print $2, $3 }'
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk '
      function flush() {
        if (enabled && types ~ /(^| )deb( |$)/) {
          n = split(uris, u, " "); m = split(suites, s, " ")
          for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print u[i], s[j]
        }
        types = ""; uris = ""; suites = ""; enabled = 1
      }
      BEGIN { enabled = 1 }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      {
        line = $0; key = line; sub(/:.*/, "", key); val = line; sub(/^[^:]*:[ \t]*/, "", val)
        k = tolower(key)
        if (k == "types") types = val
        else if (k == "uris") uris = val
        else if (k == "suites") suites = val
        else if (k == "enabled" && tolower(val) == "no") enabled = 0
      }
      END { flush() }
    ' "$f"
  done
}

debian_uri() {
  local suffix="${1:-}" codename
  codename="$(_debian_host_codename)"
  [ -n "$codename" ] || return 1
  _debian_source_pairs | awk -v want="${codename}${suffix}" '$2 == want { print $1; found = 1; exit } END { exit !found }'
}
