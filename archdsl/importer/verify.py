"""Weights for an imported spec: the source's tensors mapped onto the spec-built module, checked by running both."""

from __future__ import annotations

import torch

from archdsl.importer.model import ImportFailure


def spec_weights(source: torch.nn.Module, spec: str, shapes: list[list[int]], tolerance: float = 1e-5) -> dict:
    """A state_dict for `archdsl.build(spec)` holding `source`'s weights; both give the same eval outputs."""
    import archdsl
    from archdsl.weights import load_weights

    built = archdsl.build(spec).eval()
    load_weights(built, source)
    check_same(source.eval(), built, shapes, tolerance)
    return built.state_dict()


def check_same(reference, built, shapes, tolerance: float = 1e-5) -> float:
    """The largest relative difference of the two models' outputs on random inputs; an error above tolerance."""
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(2, *s, generator=gen) for s in shapes]
    with torch.no_grad():
        want = reference(*xs)
        got = built(*xs)
    want = want if isinstance(want, torch.Tensor) else next(iter(want.values())) if isinstance(want, dict) else want[0]
    got = got if isinstance(got, torch.Tensor) else next(iter(got.values())) if isinstance(got, dict) else got[0]
    rel = ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item()
    if tuple(got.shape) != tuple(want.shape) or rel > tolerance:
        raise ImportFailure("", f"the imported spec does not compute the same function (relative difference "
                                f"{rel:.2e}, shapes {list(want.shape)} and {list(got.shape)})",
                            help="please report this model: the importer wrote a wrong spec")
    return rel
