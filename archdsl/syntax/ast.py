"""The abstract syntax tree of a .arch file: frozen dataclasses with spans.

The parser produces these; the elaborator consumes them. Nothing here knows
about shapes, ops or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from archdsl.diagnostics import Span

# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Expr:
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class Const(Expr):
    value: object = None


@dataclass(frozen=True)
class Str(Expr):
    parts: tuple = ()  # str pieces and interpolated Expr pieces


@dataclass(frozen=True)
class Name(Expr):
    id: str = ""


@dataclass(frozen=True)
class Incoming(Expr):
    """`in`: the tensor flowing into the current step."""


@dataclass(frozen=True)
class ListExpr(Expr):
    items: tuple = ()


@dataclass(frozen=True)
class BinOp(Expr):
    op: str = ""
    left: Expr | None = None
    right: Expr | None = None


@dataclass(frozen=True)
class Not(Expr):
    operand: Expr | None = None


@dataclass(frozen=True)
class Neg(Expr):
    operand: Expr | None = None


@dataclass(frozen=True)
class Cond(Expr):
    test: Expr | None = None
    then: Expr | None = None
    other: Expr | None = None


@dataclass(frozen=True)
class Call(Expr):
    func: Expr | None = None
    args: tuple = ()
    kwargs: tuple = ()  # ((Keyword, Expr), ...)


@dataclass(frozen=True)
class Index(Expr):
    obj: Expr | None = None
    index: Expr | None = None


@dataclass(frozen=True)
class Slice(Expr):
    """`obj[start:stop:step]`; absent bounds are None."""

    obj: Expr | None = None
    start: Expr | None = None
    stop: Expr | None = None
    step: Expr | None = None


@dataclass(frozen=True)
class Attr(Expr):
    obj: Expr | None = None
    name: str = ""


class Keyword(str):
    """The name of a keyword argument (`stride` in `stride = 2`): a str that knows where it was written."""

    span: Span | None

    def __new__(cls, name: str, span: Span | None = None) -> Self:
        keyword = super().__new__(cls, name)
        keyword.span = span
        return keyword


# ---------------------------------------------------------------- chains


@dataclass(frozen=True)
class Step:
    """`name(args) as label { body }`: an op, a block instance or a construct."""

    span: Span = field(repr=False, compare=False)
    name: str = ""
    args: tuple = ()
    kwargs: tuple = ()
    label: Expr | None = None
    body: tuple | None = None
    called: bool = False  # written with parentheses


@dataclass(frozen=True)
class Ref:
    """A reference to a named tensor: `x` or `inst.output`."""

    span: Span = field(repr=False, compare=False)
    path: tuple = ()


@dataclass(frozen=True)
class SubChain:
    """`(conv -> bn -> relu) as stem`: a parenthesised chain; with a label, one naming level."""

    span: Span = field(repr=False, compare=False)
    chain: Chain | None = None
    label: Expr | None = None


@dataclass(frozen=True)
class Chain:
    span: Span = field(repr=False, compare=False)
    sources: tuple | None = None  # tuple[Ref] when written `[a, b] -> ...`
    steps: tuple = ()  # Step | SubChain | Ref (a Ref only first)


# ---------------------------------------------------------------- statements


@dataclass(frozen=True)
class Stmt:
    span: Span = field(repr=False, compare=False)


@dataclass(frozen=True)
class InputDecl:
    span: Span = field(repr=False, compare=False)
    name: str = ""
    shape: Expr | None = None


@dataclass(frozen=True)
class Input(Stmt):
    decls: tuple = ()


@dataclass(frozen=True)
class Output(Stmt):
    name: str = ""
    chain: Chain | None = None


@dataclass(frozen=True)
class Let(Stmt):
    name: str = ""
    value: Expr | None = None


@dataclass(frozen=True)
class Assign(Stmt):
    name: str = ""
    chain: Chain | None = None


@dataclass(frozen=True)
class Unpack(Stmt):
    """`a, b = chain`: the outputs of a step with several outputs, in order."""

    names: tuple = ()
    chain: Chain | None = None


@dataclass(frozen=True)
class ChainStmt(Stmt):
    chain: Chain | None = None


@dataclass(frozen=True)
class For(Stmt):
    names: tuple = ()  # each a str, or a tuple of targets for a nested list (`[c, n]`)
    iterable: Expr | None = None
    body: tuple = ()


@dataclass(frozen=True)
class If(Stmt):
    branches: tuple = ()  # ((cond, body), ...)
    orelse: tuple | None = None


@dataclass(frozen=True)
class Repeat(Stmt):
    count: Expr | None = None
    body: tuple = ()


@dataclass(frozen=True)
class Group(Stmt):
    label: Expr | None = None
    body: tuple = ()


@dataclass(frozen=True)
class Branch(Stmt):
    label: Expr | None = None
    body: tuple = ()


@dataclass(frozen=True)
class Expect(Stmt):
    test: Expr | None = None
    tolerance: Expr | None = None
    percent: bool = False


# ---------------------------------------------------------------- definitions


@dataclass(frozen=True)
class Param:
    span: Span = field(repr=False, compare=False)
    name: str = ""
    default: Expr | None = None


@dataclass(frozen=True)
class Import:
    span: Span = field(repr=False, compare=False)
    path: str = ""
    alias: str | None = None  # `import "x.arch" as x`: names reachable only as x.NAME


@dataclass(frozen=True)
class FunctionDef:
    """`def NAME(params) = expr`: a pure compile-time function."""

    span: Span = field(repr=False, compare=False)
    name: str = ""
    params: tuple = ()
    body: Expr | None = None


@dataclass(frozen=True)
class BlockDef:
    span: Span = field(repr=False, compare=False)
    name: str = ""
    params: tuple = ()
    body: tuple = ()


@dataclass(frozen=True)
class NetworkDef(BlockDef):
    pass


@dataclass(frozen=True)
class Variant:
    """`resnet50 = resnet(depth = 50) { expect ... }`: a named parameter set."""

    span: Span = field(repr=False, compare=False)
    name: str = ""
    target: str = ""
    args: tuple = ()
    kwargs: tuple = ()
    body: tuple = ()


@dataclass(frozen=True)
class Module:
    file: str
    items: tuple = ()
