"""The compile-time expression evaluator.

Spec expressions are evaluated here, by walking the AST: no Python ``eval`` or
``exec`` of spec text, ever. Values are ints, floats, bools, strings, lists,
``none`` and :class:`TensorInfo` (a tensor's shape, read through ``x.channels``).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from archdsl import limits
from archdsl.diagnostics import Span, did_you_mean, error
from archdsl.syntax import ast


@dataclass(frozen=True)
class TensorInfo:
    """What a spec may know about a tensor at compile time: its shape (no batch)."""

    node: str
    shape: tuple | None

    _AXES: ClassVar[dict[str, int]] = {"channels": 0}

    def attribute(self, name: str, span: Span):
        shape = self.shape
        if shape is None:
            raise _Unknown()
        spatial = shape[1:]
        named = {
            "shape": list(shape),
            "channels": shape[0],
            "rank": len(shape),
            "spatial": list(spatial),
            "features": shape[0] if len(shape) == 1 else None,
            "length": spatial[-1] if len(spatial) == 1 else None,
            "height": spatial[-2] if len(spatial) >= 2 else None,
            "width": spatial[-1] if len(spatial) >= 2 else None,
            "depth": spatial[0] if len(spatial) == 3 else None,
        }
        if name not in named:
            raise error(f"a tensor has no attribute '{name}'", span,
                        "tensor attributes: " + ", ".join(named))
        if named[name] is None:
            raise error(f"a tensor of shape {format_shape(shape)} has no '{name}'", span)
        return named[name]


class _Unknown(Exception):
    """Raised when a value depends on a shape that failed to infer (already reported)."""


Unknown = _Unknown

POISON = TensorInfo("<error>", None)  # what a failed statement would have named; its uses stay quiet


def format_shape(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]" if shape is not None else "[?]"


def type_name(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if value is None:
        return "none"
    if isinstance(value, TensorInfo):
        return "tensor"
    return {int: "int", float: "float", str: "string", list: "list"}.get(type(value), type(value).__name__)


def _count(span):
    def check(n):
        if isinstance(n, bool) or not isinstance(n, int):
            raise error(f"expected an int, found {type_name(n)} {n!r}", span)
        return n
    return check


def _builtins(span: Span) -> dict[str, Callable]:
    as_int = _count(span)

    def rng(*a):
        if not 1 <= len(a) <= 3:
            raise error(f"range takes 1 to 3 arguments, found {len(a)}", span)
        bounds = [as_int(x) for x in a]
        if len(bounds) == 3 and bounds[2] == 0:
            raise error("range() step cannot be 0", span)
        items = range(*bounds)
        try:
            size = len(items)
        except OverflowError:
            size = limits.value("list_items") + 1
        limits.check("list_items", size, span, f"range of {size:,} items" if size <= 10 ** 18 else "a larger range")
        return list(items)

    def seq(name):
        def check(x):
            if not isinstance(x, list):
                raise error(f"{name} expects a list, found {type_name(x)}", span)
            return x
        return check

    def minmax(f):
        def apply(*a):
            items = a[0] if len(a) == 1 and isinstance(a[0], list) else list(a)
            if not items:
                raise error(f"{f.__name__}() of nothing", span)
            return f(items)
        return apply

    return {
        "min": minmax(min), "max": minmax(max),
        "floor": lambda x: math.floor(_number(x, span)),
        "ceil": lambda x: math.ceil(_number(x, span)),
        "round": lambda x, n=None: round(_number(x, span)) if n is None else round(_number(x, span), as_int(n)),
        "abs": lambda x: abs(_number(x, span)),
        "sqrt": lambda x: math.sqrt(_number(x, span)),
        "log": lambda x, base=None: _log(x, base, span),
        "len": lambda x: len(seq("len")(x)) if not isinstance(x, str) else len(x),
        "range": rng,
        "int": lambda x: int(_number(x, span)),
        "float": lambda x: float(_number(x, span)),
        "str": lambda x: format_value(x),
        "sum": lambda x: sum(seq("sum")(x)),
        "prod": lambda x: math.prod(_product_fits(seq("prod")(x), span)),
        "enumerate": lambda x: [[i, v] for i, v in enumerate(seq("enumerate")(x))],
        "zip": lambda *xs: [list(t) for t in zip(*[seq("zip")(x) for x in xs])],
        "reversed": lambda x: list(reversed(seq("reversed")(x))),
    }


BUILTIN_NAMES = tuple(_builtins(Span("", 1, 1, 1, 1)))


def _product_fits(items: list, span: Span) -> list:
    """Refuse a product of ints whose result would be over the `int_digits` limit, before computing it."""
    bits = sum(abs(v).bit_length() for v in items if isinstance(v, int) and not isinstance(v, bool))
    if bits > _max_bits() + 64 and all(isinstance(v, int) for v in items) and 0 not in items:
        raise limits.exceeded("int_digits", span, "a product of about " + f"{int(bits * 0.30103):,} digits")
    return items


def _max_bits() -> int:
    return int(limits.value("int_digits") * 3.3219280948873626) + 1


def checked(value, span: Span):
    """A value that is within the limits: ints under `int_digits` digits, finite floats, lists and
    strings under `list_items` items (nested lists counted whole, nesting under `depth`)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if value.bit_length() > _max_bits() - 5 and abs(value) >= 10 ** limits.value("int_digits"):
            raise limits.exceeded("int_digits", span, f"an integer of about {int(value.bit_length() * 0.30103):,} digits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise error(f"the result is {'not a number' if math.isnan(value) else 'infinite'} ({value})", span,
                        "keep numbers finite: a float holds up to about 1.8e308")
        return value
    if isinstance(value, complex):
        raise error("the result is a complex number", span, "a negative number has no real fractional power")
    if isinstance(value, str):
        limits.check("list_items", len(value), span, f"a string of {len(value):,} characters")
        limits.budget().charge(len(value) // 16, span)
        return value
    if isinstance(value, list):
        items, _depth = _measure(value, span)
        limits.budget().charge(items, span)
    return value


def _measure(value: list, span: Span) -> tuple[int, int]:
    """Items in a list counting nested lists whole, and its nesting; refuses either over its limit."""
    cap, deepest = limits.value("list_items"), limits.value("depth")
    items, depth = 0, 0
    stack = [(value, 1)]
    while stack:
        current, level = stack.pop()
        depth = max(depth, level)
        if level > deepest:
            raise limits.exceeded("depth", span, "a list nested deeper")
        for item in current:
            items += 1
            if isinstance(item, list):
                stack.append((item, level + 1))
            elif isinstance(item, str):
                items += len(item) // 16
            if items > cap:
                raise limits.exceeded("list_items", span, "a list of more items, counting nested lists")
    return items, depth


def _log(x, base, span) -> float:
    """Natural logarithm, or the logarithm to `base` (RegNet's width rule needs it)."""
    x = _number(x, span)
    if x <= 0:
        raise error(f"log of {format_value(x)}: the argument must be positive", span)
    if base is None:
        return math.log(x)
    base = _number(base, span)
    if base <= 0 or base == 1:
        raise error(f"log to base {format_value(base)}: the base must be positive and not 1", span)
    return math.log(x, base)


def _number(x, span):
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise error(f"expected a number, found {type_name(x)} {format_value(x)}", span)
    return x


def format_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, TensorInfo):
        return f"tensor {format_shape(value.shape)}"
    return str(value)


_ARITH = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow,
}
_COMPARE = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


class Evaluator:
    """Evaluates expressions against a lookup function for names."""

    def __init__(self, lookup: Callable[[str], object], incoming: TensorInfo | None = None, calls=()):
        self.lookup = lookup
        self.incoming = incoming
        self.calls = calls  # the user-function calls being evaluated (archdsl/functions.py)

    def __call__(self, expr: ast.Expr):
        method = getattr(self, "_" + type(expr).__name__.lower())
        return method(expr)

    def _const(self, e: ast.Const):
        return e.value

    def _str(self, e: ast.Str):
        if all(isinstance(p, str) for p in e.parts):
            return "".join(e.parts)
        return checked("".join(p if isinstance(p, str) else _formatted(self(p), p.span) for p in e.parts), e.span)

    def _name(self, e: ast.Name):
        try:
            value = self.lookup(e.id)
        except KeyError:
            builtins = _builtins(e.span)
            if e.id in builtins:
                return builtins[e.id]
            raise error(f"unknown name '{e.id}'", e.span, did_you_mean(e.id, self._known()) or
                        "define it with 'let', as a parameter, or as a tensor") from None
        if value is POISON:
            raise Unknown()  # left undefined by an error already reported
        return value

    def _known(self):
        try:
            return list(self.lookup.__self__.names()) + list(BUILTIN_NAMES)  # type: ignore[attr-defined]
        except AttributeError:
            return list(BUILTIN_NAMES)

    def _incoming(self, e: ast.Incoming):
        if self.incoming is None:
            raise error("'in' is only defined inside a step's arguments, where a tensor flows in", e.span)
        return self.incoming

    def _listexpr(self, e: ast.ListExpr):
        return checked([self(i) for i in e.items], e.span)

    def _binop(self, e: ast.BinOp):
        if e.op == "and":
            return self(e.left) and self(e.right)
        if e.op == "or":
            return self(e.left) or self(e.right)
        left, right = self(e.left), self(e.right)
        if e.op in ("in", "not in"):
            return _member(left, right, e) == (e.op == "in")
        if e.op in _COMPARE:
            if e.op in ("==", "!=") or (_is_num(left) and _is_num(right)) or type(left) is type(right):
                try:
                    return _COMPARE[e.op](left, right)
                except TypeError:
                    pass
            raise error(f"cannot compare {type_name(left)} {e.op} {type_name(right)}", e.span)
        ok = (_is_num(left) and _is_num(right)) or (e.op == "+" and type(left) is type(right) and isinstance(left, (str, list))) \
            or (e.op == "*" and isinstance(left, (list, str)) and isinstance(right, int) and not isinstance(right, bool))
        if not ok:
            raise error(f"unsupported operands for '{e.op}': {type_name(left)} and {type_name(right)}", e.span)
        if e.op in ("/", "//", "%") and right == 0:
            raise error("division by zero", e.span)
        if e.op == "*" and isinstance(left, (list, str)):
            limits.check("list_items", len(left) * max(right, 0), e.span,
                         f"{len(left):,} items repeated {right:,} times")
        if e.op == "**":
            _power_fits(left, right, e.span)
        try:
            return checked(_ARITH[e.op](left, right), e.span)
        except (OverflowError, ValueError, ZeroDivisionError) as exc:
            raise error(f"cannot compute {_brief(left)} {e.op} {_brief(right)}: {_reason(exc)}", e.span) from None

    def _not(self, e: ast.Not):
        return not self(e.operand)

    def _neg(self, e: ast.Neg):
        return checked(-_number(self(e.operand), e.span), e.span)

    def _cond(self, e: ast.Cond):
        return self(e.then) if self(e.test) else self(e.other)

    def _call(self, e: ast.Call):
        func = self(e.func)
        user = hasattr(func, "invoke")  # a user function (archdsl/functions.py)
        if not callable(func) and not user:
            raise error(f"'{format_value(func)}' is not a function", e.func.span)
        args = [self(a) for a in e.args]
        kwargs = {k: self(v) for k, v in e.kwargs}
        limits.budget().charge(1, e.span)
        if user:
            return func.invoke(self, args, kwargs, e)
        try:
            return checked(func(*args, **kwargs), e.span)
        except TypeError as exc:
            raise error(f"bad arguments: {exc}", e.span) from None
        except (OverflowError, ValueError, ZeroDivisionError) as exc:
            shown = ", ".join(_brief(a) for a in args)
            raise error(f"cannot compute {_callee(e.func)}({shown}): {_reason(exc)}", e.span) from None

    def _index(self, e: ast.Index):
        obj, idx = self(e.obj), self(e.index)
        if not isinstance(obj, (list, str)):
            raise error(f"cannot index a {type_name(obj)}", e.obj.span)
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise error(f"an index must be an int, found {type_name(idx)}", e.index.span)
        if not -len(obj) <= idx < len(obj):
            raise error(f"index {idx} is out of range for a list of length {len(obj)}", e.index.span)
        return obj[idx]

    def _slice(self, e: ast.Slice):
        obj = self(e.obj)
        if not isinstance(obj, (list, str)):
            raise error(f"cannot slice a {type_name(obj)}", e.obj.span)
        bounds = []
        for part in (e.start, e.stop, e.step):
            value = None if part is None else self(part)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise error(f"a slice bound must be an int, found {type_name(value)}", part.span)
            bounds.append(value)
        if bounds[2] == 0:
            raise error("a slice step cannot be 0", e.step.span)
        return obj[slice(*bounds)]

    def _attr(self, e: ast.Attr):
        obj = self(e.obj)
        if hasattr(obj, "attribute"):  # a tensor, or an instance with several outputs
            return obj.attribute(e.name, e.span)
        raise error(f"a {type_name(obj)} has no attribute '{e.name}'", e.span)


def _power_fits(left, right, span: Span) -> None:
    """Refuse `a ** b` before computing it when the result would be over the `int_digits` limit."""
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1 \
            and (abs(left).bit_length() - 1) * right > _max_bits():
        raise limits.exceeded("int_digits", span, f"a power of about {int(math.log10(abs(left)) * right):,} digits"
                                  if right < 10 ** 15 else "a larger power")
    if _is_num(left) and _is_num(right) and left == 0 and right < 0:
        raise error("0 cannot be raised to a negative power", span)


def _brief(value) -> str:
    text = format_value(value) if not isinstance(value, list) or len(value) < 8 else "a list"
    return text if len(text) <= 40 else text[:37] + "..."


def _reason(exc: Exception) -> str:
    text = str(exc)
    return {"math domain error": "the argument is outside the function's domain"}.get(text, text)


def _callee(func: ast.Expr) -> str:
    return func.id if isinstance(func, ast.Name) else "the function"


def _formatted(value, span: Span) -> str:
    """An interpolated value as text, within the `list_items` limit."""
    if isinstance(value, list):
        _measure(value, span)
    return format_value(value)


def _member(item, container, e: ast.BinOp) -> bool:
    """`item in container` for a list (an equal element) or a string (a substring)."""
    if isinstance(container, list):
        return any(item == x and type(item) is type(x) or _is_num(item) and _is_num(x) and item == x
                   for x in container)
    if isinstance(container, str):
        if not isinstance(item, str):
            raise error(f"'{e.op}' a string needs a string on the left, found {type_name(item)}", e.left.span)
        return item in container
    raise error(f"'{e.op}' needs a list or a string on the right, found {type_name(container)}", e.right.span)


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)
