"""Class templates: the source of one module with its per-instance constants left open.

The generator writes each scope of a network as lines of code in which every literal that may differ
between instances (a channel count, a stride, a slice bound) is a `Slot`. Scopes whose lines agree
once the slots are masked share one class; the slots whose values differ between those instances
become the class's `__init__` parameters (named after the block's own arguments where the values
match them, else after what they set), and the rest stay literals. Module constructors are kept as
`Call`s bound to their signature, so that `stride=2` and an omitted `stride` are the same structure.
"""

from __future__ import annotations

import ast
import inspect
import io
import tokenize
from dataclasses import dataclass, field

_EMPTY = inspect.Parameter.empty


@dataclass(eq=False)
class Slot:
    """A literal of one instance: its value, its source text, and candidate parameter names."""

    value: object
    text: str
    hints: tuple[str, ...] = ()
    in_forward: bool = False  # read in forward, through an attribute
    param: str | None = None  # set when it differs between instances
    default: object = _EMPTY  # the parameter's default, where it has one (an optional child's flag)
    wild: bool = False  # its value does not matter here (an argument of an optional child this instance lacks)
    group: str | None = None  # slots of different groups never share a parameter (the flags of two pieces)

    def render(self) -> str:
        if self.param is None:
            return self.text
        return f"self.{self.param}" if self.in_forward else self.param


def slot(value, hints=(), in_forward: bool = False) -> Slot:
    return Slot(value, repr(value), tuple(hints), in_forward)


@dataclass(eq=False)
class Call:
    """A module constructor: the callable and every argument of its signature (positional first)."""

    func: str
    args: list[tuple[str, Slot, bool, object]]  # name, value, written positionally, default

    def render(self) -> str:
        return f"{self.func}({', '.join(self.parts())})"

    def parts(self) -> list[str]:
        """The arguments as written: positional ones, then keywords that differ from their defaults."""
        parts = []
        for name, value, positional, default in self.args:
            if positional:
                parts.append(value.render())
            elif value.param is not None or repr(value.value) != repr(default):
                parts.append(f"{name}={value.render()}")
        return parts


@dataclass(eq=False)
class Affine:
    """`a + b * i` inside a loop over a run of instances (`a` alone when b is 0 everywhere)."""

    a: Slot
    b: Slot

    def render(self) -> str:
        if self.b.param is None and self.b.value == 0:
            return self.a.render()
        if self.b.param is None and self.b.value == 1:
            return "i" if self.a.param is None and self.a.value == 0 else f"i + {self.a.render()}"
        term = f"{self.b.render()} * i"
        return term if self.a.param is None and self.a.value == 0 else f"{self.a.render()} + {term}"


Piece = str | Slot | Call | Affine
Line = list  # of pieces


def slots_of(line: Line):
    for piece in line:
        if isinstance(piece, Slot):
            yield piece
        elif isinstance(piece, Call):
            yield from (value for _, value, _, _ in piece.args)
        elif isinstance(piece, Affine):
            yield from (piece.a, piece.b)


def mask(line: Line) -> tuple:
    out = []
    for piece in line:
        if isinstance(piece, str):
            out.append(piece)
        elif isinstance(piece, Call):
            out.append(("call", piece.func, tuple((n, p, repr(d)) for n, _, p, d in piece.args)))
        else:
            out.append((type(piece).__name__,))
    return tuple(out)


def render(line: Line) -> str:
    return "".join(p if isinstance(p, str) else p.render() for p in line)


def literals(text: str, hints=(), in_forward: bool = False) -> Line:
    """Source text as pieces, each number literal a slot; hints name a literal by value."""
    numbers = _numbers(text)
    if numbers is None:
        return [text]
    pieces: Line = []
    done = 0
    for start, end, value, string in numbers:
        names = tuple(name for name, v in hints if type(v) is type(value) and v == value)
        pieces += [text[done:start], Slot(value, string, names, in_forward)]
        done = end
    pieces.append(text[done:])
    return [p for p in pieces if p != ""]


CACHED = 4096  # source texts whose parse is kept (a network repeats a few dozen)
_NUMBERS: dict[str, list | None] = {}  # source text -> its number literals


def _numbers(text: str) -> list[tuple[int, int, object, str]] | None:
    """(start, end, value, source text) of each number literal in `text`; None if it does not tokenize."""
    if text not in _NUMBERS:
        if len(_NUMBERS) > CACHED:
            _NUMBERS.clear()
        starts = [0]
        for line in text.splitlines(True) or [""]:
            starts.append(starts[-1] + len(line))
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        except (tokenize.TokenError, SyntaxError, IndentationError):
            tokens = None
        _NUMBERS[text] = None if tokens is None else [
            (starts[t.start[0] - 1] + t.start[1], starts[t.end[0] - 1] + t.end[1], ast.literal_eval(t.string), t.string)
            for t in tokens if t.type == tokenize.NUMBER]
    return _NUMBERS[text]


def constructor(text: str, attr: str, namespace: dict) -> Line:
    """A constructor expression as a `Call` bound to its signature (literals when it cannot be bound)."""
    bound = _bound(text, namespace)
    if bound is None:
        return literals(text)
    func, arguments = bound
    return [Call(func, [(name, Slot(value, text, (name, f"{attr}_{name}")), positional, default)
                        for name, value, text, positional, default in arguments])]


_BOUND: dict[str, tuple | None] = {}  # constructor source -> (callable, (name, value, text, positional, default)...)


def _bound(text: str, namespace: dict) -> tuple | None:
    """A constructor call's callable and every argument of its signature; None where it cannot be bound."""
    if text in _BOUND:
        return _BOUND[text]
    if len(_BOUND) > CACHED:
        _BOUND.clear()
    _BOUND[text] = None
    try:
        call = ast.parse(text, mode="eval").body
        func = ast.unparse(call.func)
        signature = _signature(func, namespace)
        positional = [ast.literal_eval(a) for a in call.args]
        keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        bound = signature.bind(*positional, **keywords)
    except (SyntaxError, ValueError, TypeError, NameError, AttributeError):
        return None
    arguments = []
    for index, (name, parameter) in enumerate(signature.parameters.items()):
        value = bound.arguments.get(name, parameter.default)
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD) or value is _EMPTY:
            return None
        arguments.append((name, value, repr(value), index < len(positional), parameter.default))
    _BOUND[text] = (func, tuple(arguments))
    return _BOUND[text]


_SIGNATURES: dict[str, inspect.Signature] = {}  # constructor name (`nn.Conv2d`) -> its signature


def _signature(func: str, namespace: dict) -> inspect.Signature:
    if func not in _SIGNATURES:
        _SIGNATURES[func] = inspect.signature(eval(func, dict(namespace)))  # an op's own constructor name
    return _SIGNATURES[func]


@dataclass
class Template:
    """One scope's class source with slots: `__init__` body, `forward` and methods."""

    base: str  # the class name it wants
    superclass: str
    doc: str
    init: list[Line]
    signature: str  # forward's parameters and return annotation: "(self, x: torch.Tensor) -> torch.Tensor"; "": none
    forward: list[Line]
    methods: list[list[Line]] = field(default_factory=list)  # each: def line first
    spec_args: dict = field(default_factory=dict)  # the block's own arguments (names for parameters)
    channels: tuple = (None, None)  # input and output channels (names for parameters)

    def key(self) -> tuple:
        return (self.base, self.superclass, self.signature, tuple(mask(x) for x in self.init),
                tuple(mask(x) for x in self.forward), tuple(tuple(mask(x) for x in m) for m in self.methods))

    def lines(self) -> list[Line]:
        return [*self.init, *self.forward, *(x for m in self.methods for x in m)]


@dataclass
class Parameter:
    """An `__init__` parameter of a class: its name, each instance's value and its default, if any."""

    name: str
    slots: list[Slot]  # each instance's (first) slot
    default: object = _EMPTY


def open_parameters(instances: list[Template]) -> list[Parameter]:
    """Name the slots that differ between instances; parameters with a default come last.

    A wild slot (an optional part's argument where the instance lacks that part) takes the value of a
    parameter that agrees with it wherever it is known, else that of a block argument or of the input or
    output width that does (an expansion conv's input width is the block's), else a parameter of its own
    defaulting to None."""
    per_instance = [[s for line in t.lines() for s in slots_of(line)] for t in instances]
    vectors: dict[tuple, list[int]] = {}
    wild: dict[tuple, list[int]] = {}
    for j in range(len(per_instance[0])):
        column = [slots[j] for slots in per_instance]
        texts = tuple(None if s.wild else s.text if s.group is None else f"{s.text} ({s.group})" for s in column)
        known = [s for s in column if not s.wild]
        if len({s.text for s in known}) > 1:
            (wild if None in texts else vectors).setdefault(texts, []).append(j)
        elif len(known) < len(column):
            _fill(column, [known[0]] * len(column))
    for texts, positions in wild.items():
        match = next((full for full in vectors if all(t in (None, f) for t, f in zip(texts, full))), None)
        known = _known(instances, [per_instance[k][positions[0]] for k in range(len(instances))])
        if match is None and known is not None:
            for j in positions:
                _fill([slots[j] for slots in per_instance], [slot(v) for v in known])
            vectors[tuple(repr(v) for v in known)] = positions
            continue
        for j in positions:
            column = [slots[j] for slots in per_instance]
            if match is None:
                _fill(column, [Slot(None, "None")] * len(column))
                for s in column:
                    s.default = None
            else:
                _fill(column, [slots[vectors[match][0]] for slots in per_instance])
        if match is None:
            vectors[tuple(per_instance[k][positions[0]].text for k in range(len(instances)))] = positions
        else:
            vectors[match] += positions
    used = {"self", "i"}
    strong: list[list[str]] = []  # per vector: names that say what it is (a block argument, a width)
    weak: list[list[str]] = []  # names of what it sets
    for positions in vectors.values():
        values = [per_instance[k][positions[0]].value for k in range(len(instances))]
        candidates = [name for name in instances[0].spec_args
                      if all(type(t.spec_args.get(name)) is type(v) and t.spec_args.get(name) == v
                             for t, v in zip(instances, values))]
        ins = [t.channels[0] for t in instances]
        outs = [t.channels[1] for t in instances]
        if values == ins and values == outs:
            candidates.append("channels")
        candidates += ["in_channels"] * (values == ins) + ["out_channels"] * (values == outs)
        strong.append([c for c in candidates if c.isidentifier()])
        weak.append([c for j in positions for c in per_instance[0][j].hints if c.isidentifier()])
    chosen: list[str | None] = []
    for names in strong:  # first the names that say what a value is, then the others
        chosen.append(next((c for c in names if c not in used), None))
        used.add(chosen[-1])
    params = []
    positions_of: dict[str, list[int]] = {}
    for index, positions in enumerate(vectors.values()):
        name = chosen[index] or next((c for c in weak[index] if c not in used), None)
        if name is None:
            name = next(f"arg{n}" for n in range(1, 10_000) if f"arg{n}" not in used)
        used.add(name)
        default = next((per_instance[0][j].default for j in positions if per_instance[0][j].default is not _EMPTY),
                       _EMPTY)
        positions_of[name] = positions
        params.append(Parameter(name, [slots[positions[0]] for slots in per_instance], default))
        for slots in per_instance:
            for j in positions:
                slots[j].param = name
    _lean_defaults(params, instances[0].spec_args)
    for param in params:
        for j in positions_of[param.name]:
            for slots in per_instance:
                slots[j].default = param.default
    return sorted(params, key=lambda p: p.default is not _EMPTY)


def _known(instances: list[Template], column: list[Slot]) -> list | None:
    """Every instance's value of a block argument, or of the input or output width, that agrees with
    the column wherever it is known (None if none does)."""
    candidates = [[t.spec_args.get(name) for t in instances] for name in instances[0].spec_args
                  if all(name in t.spec_args for t in instances)]
    candidates += [[t.channels[0] for t in instances], [t.channels[1] for t in instances]]
    for values in candidates:
        if all(type(v) in (int, float, str, bool) for v in values) and all(
                s.wild or type(s.value) is type(v) and s.value == v for s, v in zip(column, values)):
            return values
    return None


def _lean_defaults(params: list[Parameter], spec_args: dict) -> None:
    """A block argument that every instance without an optional child passes alike defaults to that value
    (`stride: int = 1` where only the blocks with a projection stride)."""
    lean = {k for p in params if p.default is False for k, s in enumerate(p.slots) if s.value is False}
    for param in params:
        values = [param.slots[k].value for k in lean]
        if len(lean) > 1 and param.default is _EMPTY and param.name in spec_args and type(values[0]) in (int, float, str) \
                and all(type(v) is type(values[0]) and v == values[0] for v in values):
            param.default = values[0]


def _fill(column: list[Slot], known: list[Slot]) -> None:
    """Give the wild slots of one position (one per instance) the value and source text of `known`'s."""
    for s, source in zip(column, known):
        if s.wild:
            s.value, s.text, s.wild = source.value, source.text, False


WIDTH = 100  # a signature longer than this continues on the next line, under its first parameter


def _wrapped(head: str, parts: list[str], tail: str) -> list[str]:
    """`head` + parts joined by commas + `tail`, broken between parts where a line would be too long."""
    lines = [head]
    for index, part in enumerate(parts):
        piece = part + (", " if index < len(parts) - 1 else tail)
        if len(lines[-1]) + len(piece.rstrip()) > WIDTH and lines[-1].strip() != head.strip():
            lines[-1] = lines[-1].rstrip()
            lines.append(" " * len(head) + piece)
        else:
            lines[-1] += piece
    return lines


def _fitted(indent: str, line: Line) -> list[str]:
    """The line, indented; one longer than WIDTH that ends in a module's constructor call continues after
    an argument, under the first (as a person wraps `Inception(192, 64, ..., pool_proj_c=32)`)."""
    text = indent + render(line)
    calls = [k for k, piece in enumerate(line) if isinstance(piece, Call)]
    if len(text) <= WIDTH or len(calls) != 1 or render(line[calls[0] + 1:]) not in ("", ")"):
        return [text]
    call = line[calls[0]]
    return _wrapped(indent + render(line[:calls[0]]) + f"{call.func}(", call.parts(), ")" + render(line[calls[0] + 1:]))


def render_class(name: str, template: Template, params: list[Parameter]) -> str:
    """The class source (with its first instance's constants), parameters hinted by value type."""
    def hint(values) -> str:
        kinds = {type(v.value) for v in values} - {type(None)}
        if len(kinds) != 1 or not kinds <= {int, float, bool, str, tuple, list}:
            return ""
        return f": {kinds.pop().__name__}{' | None' if any(v.value is None for v in values) else ''}"

    signature = ["self", *(f"{p.name}{hint(p.slots)}" + ("" if p.default is _EMPTY else f" = {p.default!r}")
                           for p in params)]
    in_forward = [p.name for p in params if any(s.in_forward and s.param == p.name for line in template.lines()
                                                 for s in slots_of(line))]
    out = [f"class {name}({template.superclass}):", f'    """{template.doc}"""', "",
           *_wrapped("    def __init__(", signature, ") -> None:"), "        super().__init__()"]
    out += [f"        self.{p} = {p}" for p in in_forward]
    out += [text for line in template.init for text in _fitted("        ", line)]
    if template.signature:  # else its superclass's forward
        out += ["", f"    def forward{template.signature}:"]
        out += [f"        {render(line)}" for line in template.forward]
    for method in template.methods:
        out += [""] + [f"    {render(line)}" for line in method]
    return "\n".join(out)
