#!/usr/bin/env bash
# The test suite: install, then run every test (the shape, count, numerical and render tests).
set -euo pipefail
cd "$(dirname "$0")/.."
ARCHDSL_LATEX=1 bash scripts/install.sh   # the TikZ test compiles with pdflatex
exec .venv/bin/python -m pytest -q "$@"
