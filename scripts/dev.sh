#!/usr/bin/env bash
# Set everything up and start the platform on the demo market: Dagster webserver + daemon.
source "$(dirname "$0")/_env.sh"
python -m platform_pkg.cli symbols add --demo
exec dagster dev -w workspace.yaml -h "${HOST:-127.0.0.1}" -p "${PORT:-3000}"
