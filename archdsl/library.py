"""Where specs are found: beside the spec, on ARCHDSL_PATH, then in the spec library.

The search path of a spec is its own directory (the current directory for a name given on the
command line or to the Python API), then each directory of the environment variable ARCHDSL_PATH
(separated by the platform's path separator, ``:`` on Linux and macOS), then the spec library that
ships with archdsl (`archdsl list --library`).

- A file (`import "resnet.arch"`, `archdsl check resnet.arch`) is the first match in that order; an
  existing path needs no search.
- A name (`archdsl summary resnet50`, `archdsl.build("resnet50")`) is the network or variant that a
  `.arch` file defines under that name, in the first directory of the search path where one does.
  Two files of that directory defining it make the name ambiguous: an error that lists them.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from archdsl.diagnostics import ArchError, Diagnostic, UsageError
from archdsl.resources import library_dir
from archdsl.syntax import ast
from archdsl.syntax.parser import parse

ENV = "ARCHDSL_PATH"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HELP = f"a spec is looked for in the current directory, then in {ENV}, then in the spec library"


@dataclass(frozen=True)
class SpecRef:
    """A spec file and, when it was named by one of its networks or variants, that name."""

    path: Path
    network: str | None = None
    searched: bool = False  # found on the search path rather than at the path given


def path_dirs() -> list[Path]:
    """The directories of ARCHDSL_PATH, in order (empty entries skipped)."""
    return [Path(entry) for entry in os.environ.get(ENV, "").split(os.pathsep) if entry]


def search_dirs(base: str | Path | None = None) -> list[Path]:
    """`base` (default: the current directory), ARCHDSL_PATH's directories, the library; each once."""
    dirs, seen = [], set()
    for folder in [Path(base) if base is not None else Path.cwd(), *path_dirs(), library_dir()]:
        key = folder.resolve()
        if key not in seen and folder.is_dir():
            seen.add(key)
            dirs.append(folder)
    return dirs


def library_files() -> list[Path]:
    """Every spec of the library, by file name."""
    return sorted(library_dir().glob("*.arch"))


def find_file(path: str | Path, base: str | Path | None = None) -> Path | None:
    """The first `DIR/path` that is a file, DIR running over :func:`search_dirs` (`base` first)."""
    if Path(path).is_absolute():
        return Path(path) if Path(path).is_file() else None
    for folder in search_dirs(base):
        if (folder / path).is_file():
            return folder / path
    return None


def is_name(text: str) -> bool:
    """Whether `text` reads as a network or variant name rather than a file."""
    return bool(_NAME.fullmatch(text))


def resolve(ref: str | Path) -> SpecRef:
    """The spec file that `ref` means: an existing path, a file on the search path, or a name."""
    path = Path(ref)
    if path.is_file():
        return SpecRef(path)
    if isinstance(ref, str) and is_name(ref):
        return _find_name(ref)
    found = find_file(path)
    if found is None:
        if path.is_absolute() or path.exists():
            return SpecRef(path)  # the loader reports what is wrong with it
        raise UsageError(Diagnostic(f"cannot find {ref}: no such file here, in {ENV} or in the spec library",
                                    help=f"{_HELP}; `archdsl list --library` lists the library"))
    return SpecRef(found, searched=True)


def pick_network(ref: SpecRef, network: str | None) -> str | None:
    """The network to build: the one `ref` names, or `network`; a name and a different --network clash."""
    if ref.network and network and network != ref.network:
        raise UsageError(Diagnostic(f"'{ref.network}' ({ref.path}) and --network {network} name different "
                                    "networks", help=f"pass the file instead: {ref.path} --network {network}"))
    return network or ref.network


def defined_names(path: Path) -> list[str]:
    """The networks and variants that the file itself defines (not those it imports)."""
    module = parse(path.read_text(encoding="utf-8"), str(path))
    return [item.name for item in module.items if isinstance(item, (ast.NetworkDef, ast.Variant))]


def _find_name(name: str) -> SpecRef:
    word = re.compile(rf"\b{name}\b")
    for folder in search_dirs():
        hits = [path for path in sorted(folder.glob("*.arch")) if _defines(path, name, word)]
        if len(hits) > 1:
            raise UsageError(Diagnostic(f"'{name}' is ambiguous: it is defined in {_listing(hits)}",
                                        help=f"pass the file and the network: {hits[0]} --network {name}"))
        if hits:
            return SpecRef(hits[0], name, searched=True)
    raise UsageError(Diagnostic(f"no spec file or network named '{name}'", help=_suggestion(name)))


def _defines(path: Path, name: str, word: re.Pattern) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
        return word.search(text) is not None and name in defined_names(path)
    except (OSError, UnicodeDecodeError, ArchError):
        return False  # an unreadable or broken file defines nothing; naming it as a file reports why


def _listing(paths: list[Path]) -> str:
    return ", ".join(str(p) for p in paths[:-1]) + f" and {paths[-1]}"


def _suggestion(name: str) -> str:
    names: dict[str, Path] = {}
    for folder in search_dirs():
        for path in sorted(folder.glob("*.arch")):
            if path.stem == name:
                return f"{path} defines {', '.join(_safe_names(path)) or 'no network'}: name one of them"
            for known in _safe_names(path):
                names.setdefault(known, path)
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        return "did you mean " + " or ".join(f"'{c}' ({names[c].name})" for c in close) + "?"
    return f"{_HELP}; `archdsl list --library` lists the library"


def _safe_names(path: Path) -> list[str]:
    try:
        return defined_names(path)
    except (OSError, UnicodeDecodeError, ArchError):
        return []
