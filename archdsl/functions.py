"""User functions: `def NAME(params) = expr`, pure compile-time functions of a file.

A function is a value in its file's global scope, so it can be called from any expression
(arguments, `let`, conditions, other functions) whatever the order of definition. Its body sees
its parameters and its file's top-level names, never tensors or layers. Recursion is allowed
(a ternary gives the base case); calls nest at most :data:`MAX_DEPTH` deep, and going deeper is a
located error that shows the call chain, never Python's RecursionError; one expression makes at
most :data:`MAX_CALLS` calls (a recursion that branches, such as a naive Fibonacci, grows fast).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from archdsl.diagnostics import did_you_mean, error
from archdsl.evaluate import Evaluator, format_value
from archdsl.syntax import ast
from archdsl.values import Env

MAX_DEPTH = 200  # nested user-function calls
MAX_CALLS = 100_000  # user-function calls made while evaluating one expression
_FRAMES_PER_CALL = 60  # Python frames one nested call may take (a generous bound for deep expressions)


@dataclass(frozen=True)
class _Calls:
    """The calls being evaluated (outermost first), and how many one expression has made so far."""

    chain: tuple
    made: list  # [count], shared from the outermost call down


@dataclass(frozen=True, eq=False)
class Function:
    """A `def` bound to the global scope of the file that defines it."""

    definition: ast.FunctionDef
    scope: Env

    def __str__(self) -> str:
        return f"function {self.name}"

    @property
    def name(self) -> str:
        return self.definition.name

    def invoke(self, caller: Evaluator, args: list, kwargs: dict, call: ast.Call):
        """Evaluate the body for one call written at `call`."""
        values = self._bind(args, kwargs, call)
        outer = caller.calls if isinstance(caller.calls, _Calls) else _Calls((), [0])
        calls = _Calls(outer.chain + (f"{self.name}({', '.join(_short(v) for v in values.values())})",), outer.made)
        if len(calls.chain) > MAX_DEPTH:
            shown = calls.chain if len(calls.chain) <= 6 else (*calls.chain[:3], "...", *calls.chain[-2:])
            raise error(f"function calls nested more than {MAX_DEPTH} deep: " + " -> ".join(shown), call.span,
                        "a recursive function needs a base case that every call reaches, "
                        f"e.g. def {self.name}(n) = n <= 1 ? 1 : n * {self.name}(n - 1)")
        calls.made[0] += 1
        if calls.made[0] > MAX_CALLS:
            raise error(f"more than {MAX_CALLS:,} function calls in one expression (at {calls.chain[-1]})", call.span,
                        "a recursion that calls itself twice per step doubles its work per level; "
                        "pass the partial results along instead")
        body = Evaluator(Env(values, parent=self.scope).lookup, None, calls)
        if outer.chain:
            return body(self.definition.body)
        limit = sys.getrecursionlimit()  # the outermost call makes room for MAX_DEPTH nested ones
        sys.setrecursionlimit(max(limit, _FRAMES_PER_CALL * MAX_DEPTH + 1000))
        try:
            return body(self.definition.body)
        finally:
            sys.setrecursionlimit(limit)

    def signature(self) -> str:
        """`def f(a, b = ...)`, for help lines."""
        params = ", ".join(p.name if p.default is None else f"{p.name} = ..." for p in self.definition.params)
        return f"def {self.name}({params})"

    def _bind(self, args: list, kwargs: dict, call: ast.Call) -> dict:
        params = self.definition.params
        names = [p.name for p in params]
        if len(args) > len(params):
            raise error(f"'{self.name}' takes {_count(params)}, found {len(args)}", call.span,
                        self.signature())
        values = dict(zip(names, args))
        for key, value in kwargs.items():
            span = getattr(key, "span", None) or call.span
            if key not in names:
                raise error(f"'{self.name}' has no parameter '{key}'", span,
                            did_you_mean(key, names) or self.signature())
            if key in values:
                raise error(f"parameter '{key}' is given twice", span)
            values[key] = value
        for param in params:
            if param.name not in values:
                if param.default is None:
                    raise error(f"'{self.name}' needs a value for '{param.name}'", call.span,
                                self.signature())
                values[param.name] = Evaluator(Env(values, parent=self.scope).lookup)(param.default)
        return {name: values[name] for name in names}


def _count(params: tuple) -> str:
    low = sum(1 for p in params if p.default is None)
    n = len(params)
    words = "argument" if n == 1 else "arguments"
    return f"{n} {words}" if low == n else f"{low} to {n} {words}"


def _short(value) -> str:
    text = format_value(value)
    return text if len(text) <= 20 else text[:17] + "..."
