"""The Python API: load specs, build the IR with overrides, summarise, compile."""

from __future__ import annotations

from pathlib import Path

from archdsl import limits
from archdsl.elaborate import elaborate
from archdsl.ir import Graph
from archdsl.library import is_name, pick_network, resolve
from archdsl.loader import Program, load, load_text


def load_program(source: str | Path) -> Program:
    """A .arch file path, a network or variant name, or spec text.

    A path that does not exist and a name are looked for as archdsl.library describes: in the current
    directory, on ARCHDSL_PATH, then in the spec library. A program loaded by a name has that network
    as its default target.
    """
    return limits.run_deep(_program, source, None)[0]


def _program(source: str | Path | Program, network: str | None) -> tuple[Program, str | None]:
    if isinstance(source, Program):
        return source, network
    if isinstance(source, Path) or ("\n" not in source and (source.endswith(".arch") or is_name(source))):
        ref = resolve(source)
        program = load(ref.path)
        program.selected = ref.network
        return program, pick_network(ref, network)
    return load_text(source), network


def build_ir(source: str | Path | Program, network: str | None = None, **params) -> Graph:
    """The validated IR of `network` (default: the file's first variant or network, or the one `source` names).

    Keyword arguments override the network's parameters, like `-D name=value`.
    """
    program, network = limits.run_deep(_program, source, network)
    g = limits.run_deep(elaborate, program, network, params)  # deep specs need a deep stack
    g.graph["overrides"] = dict(params)  # named in the generated class (`CliquenetCifarK24T12`)
    return g


def build(source, network: str | None = None, *, device=None, dtype=None, seed: int | None = None,
          memory_efficient: bool = False, inference: bool = False, **params):
    """A torch.nn.Module for `network`; imports torch (the front end does not).

    `inference=True`: the eval-only inference build (docs/backend.md): the plain build's weights under
    `seed`, with BN folded into the layers before it, no dropout, channels-last where faster.
    """
    from archdsl.backend import compile_module

    if inference:
        from archdsl.backend.inference import compile_inference

        return compile_inference(build_ir(source, network, **params), device=device, dtype=dtype, seed=seed)
    return compile_module(build_ir(source, network, **params), device=device, dtype=dtype, seed=seed,
                          memory_efficient=memory_efficient)
