"""The per-block code generator against the flat generator it replaced (tests/reference/legacy_codegen.py).

`compare(g)` builds one IR with both generators under the same seed and checks that the modules are
the same network: the same state_dict keys in the same order with equal initial values, equal eval
outputs, and after one training step equal gradients and BN buffers. It returns what differs (an
empty list when nothing does). Used by tests/test_codegen_classes.py and scripts/check_codegen.py.
"""

from __future__ import annotations

import torch

from archdsl import ir
from archdsl.backend.codegen import class_name
from archdsl.backend.compile import compile_module, load_class
from tests.reference import legacy_codegen


def legacy_module(g: ir.Graph, seed: int, memory_efficient: bool = False, device=None) -> torch.nn.Module:
    cls = load_class(legacy_codegen.generate(g, memory_efficient), class_name(g.graph["network"]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls()
    return model.to(device) if device is not None else model


def _outputs(result) -> dict[str, torch.Tensor]:
    return result if isinstance(result, dict) else {"output": result}


def compare(g: ir.Graph, memory_efficient: bool = False, batch: int = 2, device: str = "cpu",
            tolerance: float = 1e-5) -> list[str]:
    """What differs between the two builds of `g` (an empty list: nothing)."""
    return differences(g, memory_efficient, batch, device, tolerance)[0]


def _run(model: torch.nn.Module, inputs: list[torch.Tensor]) -> dict:
    """Eval outputs, then one training step's gradients and BN buffers, of one build."""
    with torch.no_grad():
        model.eval()
        outputs = {k: v.clone() for k, v in _outputs(model(*inputs)).items()}
    model.train()
    torch.manual_seed(2)  # the same dropout masks
    out = _outputs(model(*inputs))
    sum(v.float().square().mean() for v in out.values()).backward()
    return {"output": outputs, "gradient": {n: p.grad for n, p in model.named_parameters()},
            "buffer": {n: b.float() for n, b in model.named_buffers()}}


def differences(g: ir.Graph, memory_efficient: bool = False, batch: int = 2, device: str = "cpu",
                tolerance: float = 1e-5) -> tuple[list[str], float]:
    """What differs between the two builds of `g`, and the largest absolute difference of any output,
    gradient or buffer. The builds run one after the other (one in memory at a time)."""
    old = legacy_module(g, 0, memory_efficient, device)
    initial = {k: v.clone() for k, v in old.state_dict().items()}  # training updates the buffers in place
    generator = torch.Generator().manual_seed(1)
    inputs = [torch.randn(batch, *g.nodes[n]["shape"], generator=generator).to(device) for n in g.graph["inputs"]]
    before = _run(old, inputs)
    del old
    new = compile_module(g, seed=0, memory_efficient=memory_efficient, device=device)
    b = new.state_dict()
    if list(initial) != list(b):
        only_old, only_new = [k for k in initial if k not in b][:3], [k for k in b if k not in initial][:3]
        return [f"state_dict keys differ: {only_old} / {only_new} (or their order)"], float("inf")
    problems = [f"initial value of {k}" for k in initial if not torch.equal(initial[k], b[k])]
    del initial, b
    after = _run(new, inputs)
    largest = 0.0
    for kind, values in before.items():
        for name, value in values.items():
            other = after[kind].get(name)
            if (value is None) != (other is None) or value is not None and value.shape != other.shape:
                problems.append(f"{kind} {name}")
                continue
            if value is None:
                continue
            if value.numel():
                largest = max(largest, (other.float() - value.float()).abs().max().item())
            if not torch.allclose(other.float(), value.float(), rtol=tolerance, atol=tolerance):
                problems.append(f"{kind} {name}")
    return problems, largest
