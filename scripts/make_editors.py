"""Write the editor grammars in editors/ from the language's vocabulary (the grammar's
reserved words, the op registry, the evaluator's built-ins).

Run from the repository root after changing the grammar or adding an op:
    python scripts/make_editors.py
tests/test_editor_files.py fails while a committed file is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from archdsl.editor.textmate import FILES


def main() -> int:
    for name, make in FILES.items():
        path = ROOT / "editors" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make())
        print(f"wrote editors/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
