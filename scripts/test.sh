#!/usr/bin/env bash
# The test suite: install, then run every test (the shape, count, numerical and render tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m pytest -q "$@"
