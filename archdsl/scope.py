"""Lexical scopes of compile-time values and tensors (shared by the elaborator and user functions)."""

from __future__ import annotations


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
