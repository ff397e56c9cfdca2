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
    problems: list[str] = []
    old = legacy_module(g, 0, memory_efficient, device)
    new = compile_module(g, seed=0, memory_efficient=memory_efficient, device=device)
    a, b = old.state_dict(), new.state_dict()
    if list(a) != list(b):
        only_old, only_new = [k for k in a if k not in b][:3], [k for k in b if k not in a][:3]
        return [f"state_dict keys differ: {only_old} / {only_new} (or their order)"]
    problems += [f"initial value of {k}" for k in a if not torch.equal(a[k], b[k])]
    generator = torch.Generator().manual_seed(1)
    inputs = [torch.randn(batch, *g.nodes[n]["shape"], generator=generator).to(device) for n in g.graph["inputs"]]
    close = {"rtol": tolerance, "atol": tolerance}
    with torch.no_grad():
        old.eval(), new.eval()
        for key, value in _outputs(old(*inputs)).items():
            if not torch.allclose(_outputs(new(*inputs))[key], value, **close):
                problems.append(f"eval output {key}")
    grads = []
    for model in (old, new):
        model.train()
        torch.manual_seed(2)  # the same dropout masks
        out = _outputs(model(*inputs))
        sum(v.float().square().mean() for v in out.values()).backward()
        grads.append(({n: p.grad for n, p in model.named_parameters()}, dict(model.named_buffers())))
    (grads0, buffers0), (grads1, buffers1) = grads
    for name, grad in grads0.items():
        other = grads1[name]
        if (grad is None) != (other is None) or grad is not None and not torch.allclose(other, grad, **close):
            problems.append(f"gradient of {name}")
    problems += [f"buffer {n}" for n, v in buffers0.items() if not torch.allclose(buffers1[n].float(), v.float(), **close)]
    return problems
