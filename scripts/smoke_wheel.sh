#!/usr/bin/env bash
# The installed package, as a pip user gets it: builds the sdist and, from it, the wheel; installs the
# wheel with its dependencies into a fresh virtual environment outside the checkout and runs it from an
# empty directory: --version, python -m archdsl, list --library (every spec of specs/), check library
# specs by file name and a user spec that imports one, summary by name, render, compile and run the
# generated module on the CPU, archdsl.build by name. A file missing from the wheel fails here.
# Needs scripts/install.sh's .venv (for `build`). ARCHDSL_SMOKE_TORCH="torch==X" installs that torch
# first (CI: the CPU build on its machine's disk); otherwise pip picks one for torch>=2.3.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/archdsl-smoke.XXXXXX")"
trap 'rm -rf "$work"' EXIT
start=$SECONDS
step() { echo "smoke_wheel: $* ($((SECONDS - start)) s)"; }

"$root/.venv/bin/python" "$root/scripts/build_dist.py" "$work/dist" >/dev/null
wheel=$(ls "$work"/dist/archdsl-*.whl)
step "built $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB) from $(basename "$work"/dist/archdsl-*.tar.gz)"

python3 -m venv --without-pip "$work/venv"
pip=("$root/.venv/bin/python" -m pip --python "$work/venv/bin/python" install -q --no-compile)
if [ -n "${ARCHDSL_SMOKE_TORCH:-}" ]; then
  # shellcheck disable=SC2086
  "${pip[@]}" $ARCHDSL_SMOKE_TORCH
fi
"${pip[@]}" "$wheel"
step "installed into a fresh virtual environment"

mkdir "$work/run" && cd "$work/run"  # no spec here, nothing of the checkout on sys.path
export PATH="$work/venv/bin:$PATH"
unset ARCHDSL_PATH PYTHONPATH
version=$(python -c "import archdsl; print(archdsl.__version__)")
python - "$work/venv" <<'EOF'
import sys
from pathlib import Path

import archdsl
from archdsl.resources import grammar_file, library_dir

venv = Path(sys.argv[1]).resolve()
for path in (Path(archdsl.__file__), grammar_file(), library_dir()):
    assert venv in path.resolve().parents, f"{path} is not in the installed package"
EOF
test "$(archdsl --version)" = "archdsl $version"
test "$(python -m archdsl --version)" = "archdsl $version"

expected=$(cd "$root/specs" && ls ./*.arch | wc -l)
listed=$(archdsl list --library | grep -c '\.arch:$')
test "$listed" = "$expected" || { echo "list --library shows $listed spec files, specs/ has $expected"; exit 1; }
archdsl check deep_supervision.arch lenet.arch >/dev/null  # library files by name; the first imports another

printf 'import "resnet.arch"\ntiny = resnet(blocks = [1, 1, 1, 1], classes = 10) { expect params == 4_910_922 }\n' >user.arch
archdsl check user.arch >/dev/null
archdsl summary resnet50 | grep -q "total params: 25,557,032 "
archdsl render cliquenet_k36_t12 -o net.svg >/dev/null
grep -q "<svg" net.svg
archdsl compile cliquenet_k36_t12 -o net.py >/dev/null
python - <<'EOF'
import torch

import archdsl
import net

modules = [m for m in vars(net).values() if isinstance(m, type) and issubclass(m, torch.nn.Module)
           and m.__module__ == "net"]  # the network class is the last one written
model = modules[-1]().eval()
assert sum(p.numel() for p in model.parameters()) == 935_994
assert tuple(model(torch.randn(2, 3, 32, 32)).shape) == (2, 10)
assert sum(p.numel() for p in archdsl.build("resnet50").parameters()) == 25_557_032
EOF
step "user spec importing the library, summary and render and compile by name, archdsl.build: ok"
echo "smoke_wheel: ok in $((SECONDS - start)) s"
