"""Weights for an imported spec: the source's tensors mapped onto the spec-built module, checked by running both."""

from __future__ import annotations

import torch

from archdsl.importer.model import ImportFailure


def spec_weights(source: torch.nn.Module, spec: str, shapes: list[list[int]], tolerance: float = 1e-5) -> dict:
    """A state_dict for `archdsl.build(spec)` holding `source`'s weights; both give the same eval outputs."""
    import archdsl

    built = archdsl.build(spec).eval()
    load_source_weights(built, source, shapes)
    check_same(source.eval(), built, shapes, tolerance)
    return built.state_dict()


def uncalled(source: torch.nn.Module, shapes: list[list[int]]) -> list[str]:
    """The modules that do not run in eval mode (GoogLeNet's auxiliary heads), found with forward hooks."""
    called = set()
    hooks = [m.register_forward_hook(lambda m, args, out: called.add(id(m))) for m in source.modules()]
    try:
        with torch.no_grad():
            source.eval()(*[torch.randn(1, *s) for s in shapes])
    finally:
        for hook in hooks:
            hook.remove()
    return [path for path, m in source.named_modules() if id(m) not in called]


def load_source_weights(built: torch.nn.Module, source: torch.nn.Module, shapes: list[list[int]]) -> None:
    """Load `source`'s weights into the spec-built module; the tensors of modules the source never calls in
    eval mode (left out of the spec) are the only ones allowed to stay unmatched."""
    from archdsl.weights import load_weights

    left_out = uncalled(source, shapes)
    if not left_out:
        load_weights(built, source)
        return
    report = load_weights(built, source, strict=False)
    stray = [k for k in report.unmatched_source if not any(k.startswith(p + ".") for p in left_out)]
    if report.unmatched_target or stray:
        raise ImportFailure("", f"the source's weights do not fit the imported spec (unmatched: "
                                f"{(report.unmatched_target + stray)[:3]})",
                            help="please report this model: the importer wrote a wrong spec")


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
