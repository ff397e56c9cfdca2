"""The Python API: load specs, build the IR with overrides, summarise, compile."""

from __future__ import annotations

from pathlib import Path

from archdsl.elaborate import elaborate
from archdsl.ir import Graph
from archdsl.loader import Program, load, load_text


def load_program(source: str | Path) -> Program:
    """A .arch file path, or spec text."""
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and source.endswith(".arch")):
        return load(source)
    return load_text(source)


def build_ir(source: str | Path | Program, network: str | None = None, **params) -> Graph:
    """The validated IR of `network` (default: the file's first variant or network).

    Keyword arguments override the network's parameters, like `-D name=value`.
    """
    program = source if isinstance(source, Program) else load_program(source)
    g = elaborate(program, network, params)
    g.graph["overrides"] = dict(params)  # named in the generated class (`CliquenetCifarK24T12`)
    return g


def build(source, network: str | None = None, *, device=None, dtype=None, seed: int | None = None,
          memory_efficient: bool = False, **params):
    """A torch.nn.Module for `network`; imports torch (the front end does not)."""
    from archdsl.backend import compile_module

    return compile_module(build_ir(source, network, **params), device=device, dtype=dtype, seed=seed,
                          memory_efficient=memory_efficient)
