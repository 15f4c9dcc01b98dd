#!/usr/bin/env bash
# Set everything up and run the linters and the whole test suite.
source "$(dirname "$0")/_env.sh"
ruff check platform_pkg platform_tests bench
ruff format --check platform_pkg platform_tests bench
# The PostgreSQL tests start a real server: install Debian's when it is missing and apt can.
bash scripts/install_postgres.sh
exec python -m pytest "$@"
