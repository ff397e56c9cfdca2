"""The values an elaboration works with, below the interpreter and the constructs.

Scopes of compile-time values (:class:`Env`), hierarchical layer names (:class:`Naming`), block
instances and steps with several outputs (:class:`Instance`), the state of a body being run
(:class:`Frame`) and the value of an import alias (:class:`ModuleRef`). Nothing here builds graph
nodes or runs statements.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from archdsl import names
from archdsl.diagnostics import Span, did_you_mean, error
from archdsl.evaluate import POISON, TensorInfo, Unknown
from archdsl.loader import Namespace

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class Env:
    """A lexical scope of compile-time values and tensors."""

    def __init__(self, values: dict | None = None, parent: Env | None = None):
        self.values = dict(values or {})
        self.parent = parent

    def lookup(self, name: str):
        env = self
        while env is not None:
            if name in env.values:
                return env.values[name]
            env = env.parent
        raise KeyError(name)

    def names(self):
        env, seen = self, set()
        while env is not None:
            seen.update(env.values)
            env = env.parent
        return seen

    def child(self) -> Env:
        return Env(parent=self)


@dataclass
class Instance:
    """A block instance or construct with several named outputs (`inst.feature`)."""

    name: str
    outputs: dict[str, TensorInfo]

    def attribute(self, name: str, span: Span):
        """`inst.out` is an output; any other attribute is read from the main (first) output."""
        if name in self.outputs:
            return self.outputs[name]
        return next(iter(self.outputs.values())).attribute(name, span)


class Naming:
    """Hierarchical layer names: one level per block instance or labelled construct."""

    def __init__(self, path: tuple = ()):
        self.path = path
        self.counts: dict[str, int] = {}
        self.used: set[str] = set()

    def auto(self, base: str) -> str:
        n = self.counts.get(base, 0)
        while True:
            n += 1
            if f"{base}{n}" not in self.used:
                break
        self.counts[base] = n
        self.used.add(f"{base}{n}")
        return f"{base}{n}"

    def claim(self, label: str, span: Span) -> str:
        if not IDENTIFIER.match(label):
            raise error(f"'{label}' is not a valid layer name", span,
                        "names are letters, digits and '_', starting with a letter (they become PyTorch attributes)")
        problem = names.layer_name_problem(label)
        if problem is not None:
            raise error(f"{problem}; it cannot name a layer", span, "choose another name")
        if label in self.used:
            raise error(f"the name '{label}' is already used in {'.'.join(self.path) or 'this network'}", span,
                        "give each layer and block in one scope its own name")
        self.used.add(label)
        return label

    def fresh(self, base: str) -> str:
        """`base` if unused in this scope, else base2, base3..."""
        if base not in self.used:
            self.used.add(base)
            return base
        return self.auto(base)

    def full(self, local: str) -> str:
        return ".".join(self.path + (local,))


@dataclass
class Frame:
    """The state of one body being executed: scope, naming, the flowing tensor, results."""

    env: Env
    naming: Naming
    stream: object = None  # TensorInfo, list[TensorInfo] or None
    outputs: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)
    branches: list | None = None  # collects branch results inside concat/sum bodies
    expects: list = field(default_factory=list)
    kind: str = "network"
    ns: Namespace | None = None  # the namespace step names resolve in: the file of the running definition


@dataclass(eq=False)
class ModuleRef:
    """The value of an import alias in expressions: `rn.widths` reads the imported file's `let`s and `def`s."""

    alias: str
    namespace: Namespace
    globals_of: Callable[[Namespace], Env]  # a namespace's top-level scope

    def __str__(self) -> str:
        return f"the import '{self.alias}'"

    def attribute(self, name: str, span: Span):
        env = self.globals_of(self.namespace)
        if name in env.values:
            if env.values[name] is POISON:
                raise Unknown()
            return env.values[name]
        ns = self.namespace
        kind = "block" if name in ns.blocks else "network" if name in ns.networks else None
        if kind:
            raise error(f"'{self.alias}.{name}' is a {kind}, not a value", span,
                        f"use it as a step: {self.alias}.{name}(...)")
        known = set(env.values) | set(ns.blocks) | set(ns.networks)
        raise error(f"'{self.alias}' ({ns.file}) has no '{name}'", span,
                    did_you_mean(name, known) or "it defines: " + ", ".join(sorted(known)))
