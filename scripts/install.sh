#!/usr/bin/env bash
# Installs everything archdsl needs on a fresh Debian machine with Python 3.11:
# Graphviz's `dot` and python3-venv (apt), then a virtual environment in .venv
# with archdsl (editable) and its test dependencies. Safe to run again.
# ARCHDSL_TORCH="torch==X torchvision==Y" pre-installs that pair first (CI pins
# the builds that lie on its machine's disk). ARCHDSL_CPU=1 installs the CPU-only
# torch and torchvision (pip's default torch on Linux brings CUDA: gigabytes).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "archdsl: installing ${missing[*]} with apt-get" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ARCHDSL_LATEX=1 (scripts/test.sh sets it): pdflatex and TikZ, for the test that compiles
# `archdsl render -o net.tex` output (about 60 MB to download, 220 MB installed, 1-2 minutes).
if [ "${ARCHDSL_LATEX:-0}" = 1 ] && ! command -v pdflatex >/dev/null 2>&1; then
  echo "archdsl: installing texlive-latex-base texlive-pictures with apt-get" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    texlive-latex-base texlive-pictures >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
py=.venv/bin/python
$py -m pip install -q --upgrade pip >/dev/null
if [ "${ARCHDSL_CPU:-}" = 1 ] && [ -z "${ARCHDSL_TORCH:-}" ]; then
  $py -m pip install -q torch torchvision --index-url https://download.pytorch.org/whl/cpu
fi
if [ -n "${ARCHDSL_TORCH:-}" ]; then
  # shellcheck disable=SC2086
  $py -m pip install -q $ARCHDSL_TORCH
fi
# setuptools warns about editable installs on every run (folders named like the package): not for users
PYTHONWARNINGS="ignore::UserWarning" $py -m pip install -q -e ".[test]"
