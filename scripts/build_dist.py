"""Build the sdist and, from it, the wheel into OUTDIR, from a clean copy of the checkout.

    python scripts/build_dist.py OUTDIR

A copy, because setuptools takes an archdsl.egg-info/SOURCES.txt that an editable install or an
earlier build left in the checkout as part of the sdist's file list: a file that the packaging rules
(setup.py) no longer include would still ship, and a test of the wheel would not notice. Runs
`python -m build --no-isolation` with this interpreter (it needs `build` and setuptools>=77, both in
the test extra). Used by tests/test_packaging.py and scripts/smoke_wheel.sh.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEFT_OUT = shutil.ignore_patterns(".git", ".venv", "build", "dist", "out", "*.egg-info", "__pycache__", "*.pyc",
                                  ".pytest_cache", ".ruff_cache", ".hypothesis")


def _check_tools() -> None:
    """`build` and setuptools>=77 (for `license = "MIT"`), or a message saying how to get them."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ok = version("build") and int(version("setuptools").split(".")[0]) >= 77
    except PackageNotFoundError:
        ok = False
    if not ok:
        sys.exit("scripts/build_dist.py needs build and setuptools>=77 (the test extra): run bash scripts/install.sh, "
                 "or python -m pip install 'build>=1' 'setuptools>=77'")


def build(outdir: Path) -> list[Path]:
    """The sdist and the wheel, written to `outdir`."""
    _check_tools()
    outdir = outdir.resolve()
    with tempfile.TemporaryDirectory(prefix="archdsl-build-") as tmp:
        source = Path(tmp) / "archdsl"
        shutil.copytree(ROOT, source, ignore=LEFT_OUT)
        result = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(outdir),
                                 str(source)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.exit(f"build failed:\n{result.stdout[-4000:]}{result.stderr[-4000:]}")
    return sorted(outdir.glob("archdsl-*"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for path in build(Path(sys.argv[1])):
        print(f"{path} ({path.stat().st_size:,} bytes)")
