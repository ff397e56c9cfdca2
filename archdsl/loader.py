"""Load a .arch file with its imports into a :class:`Program`.

Imports are paths relative to the importing file, else to a directory of
ARCHDSL_PATH or the spec library (archdsl.library); every top-level name of an
imported file becomes visible. Import cycles and duplicate names are errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from archdsl.diagnostics import ArchError, Diagnostic, Span, UsageError
from archdsl.library import find_file
from archdsl.syntax import ast
from archdsl.syntax.parser import parse


@dataclass
class Program:
    """Every definition visible from the main file, and the texts they came from."""

    main: str
    blocks: dict[str, ast.BlockDef] = field(default_factory=dict)
    networks: dict[str, ast.NetworkDef] = field(default_factory=dict)
    variants: dict[str, ast.Variant] = field(default_factory=dict)
    constants: dict[str, ast.Let] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # networks and variants of the main file, in order
    selected: str | None = None  # the network or variant the program was loaded by (archdsl.library)

    def definition(self, name: str):
        for table in (self.blocks, self.networks, self.variants, self.constants):
            if name in table:
                return table[name]
        return None

    def targets(self) -> list[str]:
        """Networks and variants of the main file, in the order written."""
        return list(self.order)

    def default_target(self) -> str | None:
        """The network it was loaded by, else the first variant of the main file, else its first network."""
        if self.selected:
            return self.selected
        variants = [n for n in self.order if n in self.variants]
        return (variants or self.order or [None])[0]


def load(path: str | Path) -> Program:
    """Parse a file and everything it imports."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(Diagnostic(f"cannot read {path}: {exc.strerror}",
                                    help="check the path; spec files end in .arch")) from None
    return load_text(text, str(path))


def load_text(text: str, file: str = "<string>") -> Program:
    """Parse spec text (its imports are resolved relative to `file`)."""
    program = Program(main=file)
    _Loader(program).add(file, text, stack=())
    return program


class _Loader:
    def __init__(self, program: Program):
        self.program = program
        self.diagnostics: list[Diagnostic] = []
        self.origin: dict[str, Span] = {}

    def add(self, file: str, text: str, stack: tuple, import_span: Span | None = None) -> None:
        key = _key(file)
        self.program.sources[file] = text
        module = parse(text, file)
        for item in module.items:
            if isinstance(item, ast.Import):
                self.import_(file, item, stack + (key,))
            else:
                self.define(item, main=not stack)
        if self.diagnostics and not stack:
            raise ArchError(self.diagnostics, self.program.sources)

    def import_(self, file: str, item: ast.Import, stack: tuple) -> None:
        base = Path(file).parent if not file.startswith("<") else Path.cwd()
        target = find_file(item.path, base) or base / item.path  # beside the file, ARCHDSL_PATH, the library
        key = _key(str(target))
        if key in stack:
            chain = " -> ".join(Path(s).name for s in stack[stack.index(key):]) + f" -> {target.name}"
            self.diagnostics.append(Diagnostic(f"import cycle: {chain}", item.span,
                                               "move the shared definitions into a file that both import"))
            return
        if any(_key(f) == key for f in self.program.sources):
            return  # already loaded (a diamond, not a cycle)
        try:
            text = target.read_text(encoding="utf-8")
        except OSError:
            self.diagnostics.append(Diagnostic(f"cannot import '{item.path}': no such file {target}", item.span,
                                               "import paths are relative to the importing file, then to "
                                               "ARCHDSL_PATH's directories, then to the spec library"))
            return
        try:
            self.add(str(target), text, stack, item.span)
        except ArchError as exc:
            self.diagnostics.extend(exc.diagnostics)

    def define(self, item, main: bool) -> None:
        name = item.name
        if name in self.origin:
            self.diagnostics.append(Diagnostic(f"'{name}' is defined twice; the first definition is at {self.origin[name]}",
                                               item.span, "rename one of them"))
            return
        self.origin[name] = item.span
        table = {ast.NetworkDef: self.program.networks, ast.BlockDef: self.program.blocks,
                 ast.Variant: self.program.variants, ast.Let: self.program.constants}[type(item)]
        table[name] = item
        if main and isinstance(item, (ast.NetworkDef, ast.Variant)):
            self.program.order.append(name)


def _key(file: str) -> str:
    return file if file.startswith("<") else str(Path(file).resolve())
