#!/usr/bin/env bash
# PostgreSQL's server for the tests that start one (platform_tests/postgres.py): installs Debian's
# postgresql when initdb is nowhere to be found and apt can be used (root, or passwordless sudo).
# Quiet when it is there; never fails the caller: without it those tests skip and say why.
set -uo pipefail
have_server() {
  [ -n "${PLATFORM_PG_BIN:-}" ] && [ -x "$PLATFORM_PG_BIN/initdb" ] && return 0
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
have_server && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "PostgreSQL is not installed and there is no apt-get: the PostgreSQL tests will skip." >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "PostgreSQL is not installed and apt-get needs root: the PostgreSQL tests will skip" \
    "(sudo apt-get install postgresql installs it)." >&2
  exit 0
fi
echo "Installing PostgreSQL for the PostgreSQL tests (apt-get install postgresql)..." >&2
log="$(mktemp)"
install() {
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends postgresql >>"$log" 2>&1
}
# A fresh machine has no package lists (or stale ones): update only when the install needs it.
if ! install && ! { "${as_root[@]}" apt-get update -qq >>"$log" 2>&1 && install; }; then
  echo "Could not install PostgreSQL: the PostgreSQL tests will skip. apt-get said:" >&2
  tail -n 15 "$log" >&2
fi
rm -f "$log"
exit 0
