#!/usr/bin/env bash
# The main job: install, compile the CliqueNet spec to a standalone PyTorch file, draw it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
mkdir -p out
.venv/bin/archdsl compile specs/cliquenet.arch -o out/cliquenet.py
.venv/bin/archdsl render specs/cliquenet.arch -o out/cliquenet.svg
.venv/bin/archdsl render specs/cliquenet.arch -o out/cliquenet.pdf
echo "wrote out/cliquenet.py, out/cliquenet.svg and out/cliquenet.pdf"
