"""Load a .arch file with its imports into a :class:`Program`.

Imports are paths relative to the importing file, else to a directory of
ARCHDSL_PATH or the spec library (archdsl.library); an absolute path is used as
it is. A plain `import "x.arch"` makes every top-level name of x visible in the
importer's namespace; `import "x.arch" as x` loads x into a namespace of its
own, reachable only as `x.NAME`. Import cycles and duplicate names are errors.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

from archdsl.diagnostics import ArchError, Diagnostic, Span, UsageError
from archdsl.files import ReadError, decode_spec, read_bytes
from archdsl.library import find_file
from archdsl.syntax import ast
from archdsl.syntax.parser import parse


@dataclass(eq=False)
class Namespace:
    """The definitions one name can reach: a file's own and those of its plain imports.

    `modules` holds the namespaces of qualified imports (`import "x.arch" as x`) by alias.
    """

    file: str = ""
    blocks: dict[str, ast.BlockDef] = field(default_factory=dict)
    networks: dict[str, ast.NetworkDef] = field(default_factory=dict)
    variants: dict[str, ast.Variant] = field(default_factory=dict)
    constants: dict[str, ast.Let] = field(default_factory=dict)
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)
    modules: dict[str, Namespace] = field(default_factory=dict)
    qualifier: str = ""  # the aliases that reach it from the main file (`rn`), empty for the main namespace

    def qualify(self, name: str) -> str:
        """A definition's name as the main file writes it: `basic`, `rn.basic`."""
        return f"{self.qualifier}.{name}" if self.qualifier else name

    def resolve(self, dotted: str) -> tuple[Namespace, str] | None:
        """`rn.basic` -> (the namespace `rn`, "basic"); None when a qualifier names no import."""
        *path, name = dotted.split(".")
        namespace = self
        for alias in path:
            namespace = namespace.modules.get(alias)
            if namespace is None:
                return None
        return namespace, name


@dataclass(eq=False)
class Program(Namespace):
    """Every definition visible from the main file, and the texts they came from."""

    main: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # networks and variants of the main file, in order
    selected: str | None = None  # the network or variant the program was loaded by (archdsl.library)

    def __post_init__(self) -> None:
        self.file = self.file or self.main

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
        data = read_bytes(path)
    except ReadError as exc:
        raise UsageError(Diagnostic(f"cannot read {path}: {exc.reason}",
                                    help="check the path; spec files end in .arch")) from None
    return load_text(decode_spec(data, str(path)), str(path))


def load_text(text: str, file: str = "<string>") -> Program:
    """Parse spec text (its imports are resolved relative to `file`)."""
    program = Program(main=file)
    _Loader(program).add(file, text, stack=(), namespace=program)
    return program


class _Loader:
    def __init__(self, program: Program):
        self.program = program
        self.diagnostics: list[Diagnostic] = []
        self.origin: dict[int, dict[str, Span]] = {}  # per namespace: name -> where it was defined
        self.loaded: dict[int, set[str]] = {}  # per namespace: the files already read into it
        self.modules: dict[str, ast.Module] = {}

    def add(self, file: str, text: str, stack: tuple, namespace: Namespace) -> None:
        key = _key(file)
        self.program.sources[file] = text
        self.loaded.setdefault(id(namespace), set()).add(key)
        module = self.modules.get(key) or parse(text, file)
        self.modules[key] = module
        for item in module.items:
            if isinstance(item, ast.Import):
                self.import_(file, item, stack + (key,), namespace)
            else:
                self.define(item, namespace, main=not stack)
        if self.diagnostics and not stack:
            raise ArchError(self.diagnostics, self.program.sources)

    def import_(self, file: str, item: ast.Import, stack: tuple, namespace: Namespace) -> None:
        base = Path(file).parent if not file.startswith("<") else Path.cwd()
        target = find_file(item.path, base) or base / item.path  # beside the file, ARCHDSL_PATH, the library
        key = _key(str(target))
        if key in stack:
            chain = " -> ".join(Path(s).name for s in stack[stack.index(key):]) + f" -> {target.name}"
            self.diagnostics.append(Diagnostic(f"import cycle: {chain}", item.span,
                                               "move the shared definitions into a file that both import"))
            return
        if item.alias is not None:
            if not self._claim(item.alias, item.span, namespace):
                return
            qualifier = namespace.qualify(item.alias)
            namespace.modules[item.alias] = namespace = Namespace(file=str(target), qualifier=qualifier)
        if key in self.loaded.get(id(namespace), set()):
            return  # already loaded (a diamond, not a cycle)
        if target.suffix != ".arch":  # never read (nor echo in errors) a file that is not a spec
            self.diagnostics.append(Diagnostic(f"cannot import '{item.path}': only .arch spec files can be imported",
                                               item.span, "import paths name .arch files, relative to the importing file"))
            return
        try:
            text = decode_spec(read_bytes(target), str(target))
        except ReadError as exc:
            reason = f"no such file {target}" if exc.reason == os.strerror(errno.ENOENT) else exc.reason
            self.diagnostics.append(Diagnostic(f"cannot import '{item.path}': {reason}", item.span,
                                               "import paths are relative to the importing file, then to "
                                               "ARCHDSL_PATH's directories, then to the spec library"))
            return
        except ArchError as exc:
            self.diagnostics.extend(exc.diagnostics)
            self.program.sources.update(exc.sources)
            return
        try:
            self.add(str(target), text, stack, namespace)
        except ArchError as exc:
            self.diagnostics.extend(exc.diagnostics)

    def _claim(self, name: str, span: Span, namespace: Namespace) -> bool:
        origin = self.origin.setdefault(id(namespace), {})
        if name in origin:
            self.diagnostics.append(Diagnostic(f"'{name}' is defined twice; the first definition is at {origin[name]}",
                                               span, "rename one of them"))
            return False
        origin[name] = span
        return True

    def define(self, item, namespace: Namespace, main: bool) -> None:
        name = item.name
        if not self._claim(name, item.span, namespace):
            return
        table = {ast.NetworkDef: namespace.networks, ast.BlockDef: namespace.blocks,
                 ast.Variant: namespace.variants, ast.Let: namespace.constants,
                 ast.FunctionDef: namespace.functions}[type(item)]
        table[name] = item
        if main and isinstance(item, (ast.NetworkDef, ast.Variant)):
            self.program.order.append(name)


def _key(file: str) -> str:
    if file.startswith("<"):
        return file
    try:
        return str(Path(file).resolve())
    except (OSError, RuntimeError, ValueError):  # a symbolic link loop, a NUL character
        return str(Path(file).absolute())
