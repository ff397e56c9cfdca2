"""Documented resource limits: what no spec may exceed, so that every input ends quickly.

Like CPython's ``sys.set_int_max_str_digits`` and recursion limit, each limit has a name, a default,
an error that names it, and two ways to raise it: the environment variable ``ARCHDSL_LIMIT_<NAME>``
(``ARCHDSL_LIMIT_NODES=500000``) or the command-line option ``--limit NAME=VALUE``. The defaults are
far above every network in specs/ and keep `check`, `summary`, `render` and `compile` of any file
under 1 MB within seconds and under 2 GB of memory. docs/language.md ("Limits") lists them.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
from dataclasses import dataclass

from archdsl.diagnostics import ArchError, Diagnostic, Span, UsageError, hints_left


@dataclass(frozen=True)
class Limit:
    """One limit: its name (as in `--limit NAME=VALUE`), default value and what it bounds."""

    name: str
    default: int
    what: str

    @property
    def variable(self) -> str:
        return f"ARCHDSL_LIMIT_{self.name.upper()}"


LIMITS: dict[str, Limit] = {limit.name: limit for limit in (
    Limit("file_bytes", 1_000_000, "the size of one spec file, in bytes"),
    Limit("tokens", 50_000, "tokens in one spec file"),
    Limit("depth", 200, "nesting of brackets, operators, blocks and constructs inside one another"),
    Limit("int_digits", 100, "decimal digits of an integer"),
    Limit("list_items", 100_000, "items of a list or characters of a string"),
    Limit("steps", 1_000_000, "statements, loop iterations and function calls run to build one network"),
    Limit("nodes", 20_000, "layers (IR nodes) of one network"),
    Limit("edges", 200_000, "connections (IR edges) of one network"),
    Limit("tensor_elements", 64_000_000, "elements of one tensor (one sample)"),
    Limit("activations", 2_000_000_000, "elements of all tensors of one network, summed (one sample)"),
    Limit("params", 1_000_000_000, "parameters of one network"),
    Limit("macs", 300_000_000_000, "multiply-accumulates of one forward pass of one sample"),
    Limit("errors", 50, "errors printed per file (the rest are counted)"),
)}

_overrides: dict[str, int] = {}


class LimitExceeded(ArchError):
    """A spec went over a limit: the build stops (the error is still located and reported)."""


def value(name: str) -> int:
    """The limit in force: `--limit`, else the environment variable, else the default."""
    if name in _overrides:
        return _overrides[name]
    limit = LIMITS[name]
    raw = os.environ.get(limit.variable)
    if raw is not None:
        try:
            return _parse(raw)
        except ValueError:
            raise UsageError(Diagnostic(f"{limit.variable}={raw!r} is not a positive integer",
                                        help=f"unset it or give a count, e.g. {limit.variable}={limit.default}")) from None
    return limit.default


def _parse(raw: str) -> int:
    number = int(raw.strip().replace("_", ""))
    if number < 1:
        raise ValueError(raw)
    return number


def set_limit(text: str) -> None:
    """`--limit NAME=VALUE`: raise (or lower) one limit for this run."""
    name, _, raw = text.partition("=")
    name = name.strip().lower().replace("-", "_")
    if name not in LIMITS:
        raise UsageError(Diagnostic(f"--limit: unknown limit '{name}'", help="limits: " + ", ".join(LIMITS)))
    try:
        _overrides[name] = _parse(raw)
    except ValueError:
        raise UsageError(Diagnostic(f"--limit {name}: '{raw}' is not a positive integer",
                                    help=f"e.g. --limit {name}={LIMITS[name].default * 10}")) from None


def reset() -> None:
    """Forget `--limit` overrides (tests)."""
    _overrides.clear()


def how_to_raise(name: str) -> str:
    limit = LIMITS[name]
    return f"raise it with --limit {name}=N or the environment variable {limit.variable}=N"


def exceeded(name: str, span: Span | None, found: str | None = None) -> LimitExceeded:
    """The located error for a spec that goes over limit `name`."""
    limit = LIMITS[name]
    detail = f" (found {found})" if found else ""
    return LimitExceeded(Diagnostic(f"over the limit on {limit.what}: {value(name):,}{detail}", span,
                                f"limit '{name}'; {how_to_raise(name)}"))


def check(name: str, amount: int, span: Span | None, found: str | None = None) -> None:
    """Raise `exceeded` when `amount` is over limit `name`."""
    if amount > value(name):
        raise exceeded(name, span, found)


class Budget:
    """The `steps` budget of one build: statements, loop iterations, calls and list items made."""

    def __init__(self) -> None:
        self.used = 0
        self.cap = value("steps")

    def charge(self, amount: int, span: Span | None) -> None:
        self.used += amount
        if self.used > self.cap:
            raise exceeded("steps", span)


_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("archdsl_budget", default=None)


def budget() -> Budget:
    """The budget of the build in progress (a fresh one outside a build)."""
    current = _budget.get()
    if current is None:
        current = Budget()
        _budget.set(current)
    return current


@contextlib.contextmanager
def new_budget():
    """Run one build with its own `steps` budget."""
    token = _budget.set(Budget())
    hints = hints_left.set([max(200, 4 * value("errors"))])
    try:
        yield
    finally:
        hints_left.reset(hints)
        _budget.reset(token)


_STACK_BYTES = 256 << 20
_RECURSION = 60_000
_deep = threading.local()


def run_deep(function, *args, **kwargs):
    """Call `function` in a thread with a 256 MB stack and a high recursion limit, so that nesting up
    to the `depth` limit never meets Python's own recursion limit; exceptions pass through."""
    if getattr(_deep, "active", False):
        return function(*args, **kwargs)
    outcome: dict = {}

    def target() -> None:
        _deep.active = True
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread)
            outcome["error"] = exc

    if sys.getrecursionlimit() < _RECURSION:
        sys.setrecursionlimit(_RECURSION)
    previous = threading.stack_size(_STACK_BYTES)
    try:
        worker = threading.Thread(target=target, name="archdsl", daemon=True)
        worker.start()
    finally:
        threading.stack_size(previous)
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
