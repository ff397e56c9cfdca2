"""Files that ship beside the code: the grammar and the spec library.

An installed archdsl (wheel or sdist) carries them as package data, `archdsl/grammar/` and
`archdsl/specs/` (setup.py maps the repository's folders there at build time); run from a clone or
an editable install, they are the repository's own `grammar/` and `specs/`.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent if (_PACKAGE.parent / "setup.py").is_file() else None


def data_dir(name: str) -> Path:
    """The folder `name` ("grammar" or "specs"): packaged, else the checkout's."""
    packaged = _PACKAGE / name
    if packaged.is_dir() or _CHECKOUT is None:
        return packaged
    return _CHECKOUT / name


def grammar_file() -> Path:
    """The Lark grammar of the .arch language."""
    return data_dir("grammar") / "archdsl.lark"


def library_dir() -> Path:
    """The spec library: every `.arch` file of the repository's specs/."""
    return data_dir("specs")
