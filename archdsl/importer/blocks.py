"""Block definitions of an imported spec: one per module class and structure, parameters for what differs.

Each instance of a definition gives a value to every hole of the body template (a width, a stride, whether
an optional part is there); `Definition.analyse` turns the holes that differ into parameters (one per
distinct pattern, `4 * c` for a multiple of another), with a default where most instances agree, and fills
in the numbers of stand-in copies (optional.py's `Wild`) from the instances that have the part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

RESERVED = {"import", "def", "block", "network", "let", "input", "output", "for", "in", "if", "elif", "else", "repeat", "group", "branch", "expect", "within", "as", "and", "or", "not", "true", "false", "none", "percent"}
INDENT = "  "


def ident(text: str, prefix: str) -> str:
    """A valid, non-reserved name from a source name (`0` under prefix `block` -> `block0`)."""
    text = re.sub(r"\W", "_", text)
    if not text or text[0].isdigit():
        text = f"{prefix}{text}"
    return f"{text}_" if text in RESERVED else text


def snake(cls: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", cls.strip("_")).lower()
    return ident(s or "module", "m")


def literal(v) -> str:
    if isinstance(v, Wild):
        return literal(v.value)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("{", "\\{") + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(literal(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    return str(v)


@dataclass
class Hole:
    index: int


@dataclass
class Call:
    definition: Definition
    holes: list[int]


@dataclass
class Definition:
    """One `block` definition: the body template and every instance's hole values."""

    name: str
    inputs: int
    parts: list
    hints: list[str]
    instances: list[list] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    varying: list[int] = field(default_factory=list)
    text_of: dict[int, str] = field(default_factory=dict)  # hole -> literal or parameter expression

    defaults: dict[str, str] = field(default_factory=dict)  # parameter -> the literal most instances pass

    def analyse(self) -> None:
        cols = [list(col) for col in zip(*self.instances)] if self.instances and self.instances[0] else []
        by_vector: dict[tuple, str] = {}
        # columns with stand-in numbers last: they take a parameter found on the other columns where they can
        for i in sorted(range(len(cols)), key=lambda i: any(_wild(c) for c in cols[i])):
            col = cols[i]
            real = [c for c in col if not _wild(c)] or [col[0].hint]
            if all(_hashable(c) == _hashable(real[0]) for c in real):
                _fill(col, [real[0]] * len(col))
                self.text_of[i] = literal(_value(real[0]))
                continue
            self.varying.append(i)
            found = self._match(col, by_vector)
            if found:
                self.text_of[i] = found
                continue
            _fill(col, [real[0]] * len(col))
            hint = {"out": "c"}.get(self.hints[i], self.hints[i])
            name, n = hint, 2
            while name in self.params or name in RESERVED:
                name, n = f"{hint}{n}", n + 1
            self.params.append(name)
            by_vector[tuple(_hashable(c) for c in col)] = name
            self.text_of[i] = name
        self.param_holes = {}
        for i in self.varying:
            col = tuple(_hashable(c) for c in cols[i])
            if by_vector.get(col) == self.text_of[i] and self.text_of[i] not in self.param_holes:
                self.param_holes[self.text_of[i]] = i
        self._defaults(cols)

    @staticmethod
    def _match(col, by_vector) -> str | None:
        """The parameter (or `k * parameter`) whose values equal the column's where these are known."""
        for base, name in by_vector.items():
            if all(_wild(c) or _hashable(c) == b for c, b in zip(col, base)):
                _fill(col, list(base))
                return name
        if not all(_wild(c) or isinstance(c, int) and not isinstance(c, bool) for c in col):
            return None
        for base, name in by_vector.items():
            if not all(isinstance(b, int) and not isinstance(b, bool) and b for b in base):
                continue
            n0 = next(n for n, c in enumerate(col) if not _wild(c))
            k = col[n0] // base[n0]
            if k > 1 and all(_wild(c) or c == k * b for c, b in zip(col, base)):
                _fill(col, [k * b for b in base])
                return f"{k} * {name}"
        return None

    def _defaults(self, cols) -> None:
        """Parameters that most of three or more instances give one value get it as a default, and go last."""
        n = len(self.instances)
        for p in self.params:
            values = [literal(_value(v)) for v in cols[self.param_holes[p]]]
            top = max(set(values), key=values.count)
            if n >= 3 and values.count(top) * 2 > n:
                self.defaults[p] = top
        self.params.sort(key=lambda p: p in self.defaults)

    def header(self) -> str:
        return ", ".join(f"{p} = {self.defaults[p]}" if p in self.defaults else p for p in self.params)

    def call_args(self, hole_text) -> str:
        """The arguments of a call, given the text of each of this definition's holes at the call site:
        positional, then `name = value` for a defaulted parameter given another value."""
        out = []
        for p in self.params:
            text = hole_text(self.param_holes[p])
            if p not in self.defaults:
                out.append(text)
            elif text != self.defaults[p]:
                out.append(f"{p} = {text}")
        return ", ".join(out)


class Wild:
    """A number of a stand-in copy (optional.py): any value does; `Definition.analyse` fills it in."""

    def __init__(self, hint=None) -> None:
        self.value = None
        self.hint = hint  # the value copied, for a definition none of whose instances has the part

    def __repr__(self) -> str:
        return f"Wild({self.value!r})"


def _wild(v) -> bool:
    return isinstance(v, Wild) and v.value is None


def _value(v):
    return _value(v.value) if isinstance(v, Wild) else v


def _fill(col: list, values: list) -> None:
    for c, v in zip(col, values):
        if _wild(c):
            c.value = _value(v)


def _hashable(v):
    """A hole's value as a dictionary key (a non-square kernel is a list)."""
    v = _value(v)
    return tuple(_hashable(x) for x in v) if isinstance(v, list) else v


