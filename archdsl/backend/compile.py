"""Turn generated source into a live module: same code path as the standalone file.

``compile_module`` executes the source that ``archdsl compile`` writes (never
spec text), instantiates the class under a fixed seed when asked, and moves it
to the requested device and dtype.
"""

from __future__ import annotations

import hashlib
import linecache
import sys
import types

import torch
from torch import nn

from archdsl import ir
from archdsl.backend.codegen import class_name, generate


def compile_source(g: ir.Graph, memory_efficient: bool = False) -> str:
    """The standalone Python source of the network (imports only torch). A memory-efficient build
    recomputes in backward, instead of storing, the concatenation, BN-ReLU and convolution of clique
    updates and dense layers and the BN-ReLU-conv (or -pool) that reads any concatenation."""
    return generate(g, memory_efficient)


def load_class(source: str, network: str, filename: str | None = None) -> type[nn.Module]:
    """Execute generated source as a module and return its network class.

    Each distinct source gets its own module name and file name (a digest of the source), so that
    two builds of a network with other parameters keep their own classes and traceback lines.
    """
    digest = hashlib.sha1(source.encode()).hexdigest()[:10]
    filename = filename or f"<archdsl:{network}:{digest}>"
    module = types.ModuleType(f"archdsl_generated_{class_name(network).lower()}_{digest}")
    module.__file__ = filename
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # tracebacks show the code
    sys.modules[module.__name__] = module  # TorchScript and pickle look classes up by module name
    exec(compile(source, filename, "exec", dont_inherit=True), module.__dict__)  # noqa: S102  (generated code, not spec text)
    cls = module.__dict__[class_name(network)]
    cls.__archdsl_source__ = source
    return cls


def compile_module(g: ir.Graph, device=None, dtype=None, seed: int | None = None,
                   memory_efficient: bool = False) -> nn.Module:
    """Build the network's module; `seed` makes the initial weights deterministic."""
    cls = load_class(compile_source(g, memory_efficient), g.graph["network"])
    cls.__archdsl_inputs__ = tuple(tuple(g.nodes[n]["shape"]) for n in g.graph["inputs"])  # for load_weights
    cls.__archdsl_graph__ = g  # for backend.inference.to_inference
    if seed is None:
        model = cls()
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls()
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model

