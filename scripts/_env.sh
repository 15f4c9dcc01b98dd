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
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  rm -f .venv/.installed-* && touch "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/data/dagster_home}"
mkdir -p "$DAGSTER_HOME"
ln -sf "$ROOT/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"
