# Sourced by the other scripts: a project virtualenv with everything installed, and the instance
# home under data/. Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
STAMP=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$STAMP" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev,postgres]'
  rm -f .venv/.installed-* && touch "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/data/dagster_home}"
mkdir -p "$DAGSTER_HOME"
# PLATFORM_INSTANCE=postgres: the instance on PostgreSQL (deploy/dagster.postgres.yaml, README).
case "${PLATFORM_INSTANCE:-sqlite}" in
  sqlite) INSTANCE_YAML="$ROOT/dagster.yaml" ;;
  postgres)
    INSTANCE_YAML="$ROOT/deploy/dagster.postgres.yaml"
    for var in DAGSTER_PG_HOST DAGSTER_PG_PORT DAGSTER_PG_USER DAGSTER_PG_PASSWORD DAGSTER_PG_DB; do
      if [ -z "${!var+set}" ]; then
        echo "PLATFORM_INSTANCE=postgres needs $var (README: PostgreSQL)" >&2
        return 1
      fi
    done ;;
  *) echo "PLATFORM_INSTANCE is sqlite or postgres, not '$PLATFORM_INSTANCE'" >&2; return 1 ;;
esac
ln -sf "$INSTANCE_YAML" "$DAGSTER_HOME/dagster.yaml"
