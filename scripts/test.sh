#!/usr/bin/env bash
# Set everything up and run the linters and the whole test suite.
source "$(dirname "$0")/_env.sh"
ruff check platform_pkg platform_tests bench
ruff format --check platform_pkg platform_tests bench
exec python -m pytest "$@"
