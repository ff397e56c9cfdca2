"""Turn generated source into a live module: same code path as the standalone file.

``compile_module`` executes the source that ``archdsl compile`` writes (never
spec text), instantiates the class under a fixed seed when asked, and moves it
to the requested device and dtype (refusing devices the machine lacks). A built
module pickles (``torch.save(model)``) with its generated source, so that it
loads in a process that never built it.
"""

from __future__ import annotations

import hashlib
import linecache
import sys
import types

import torch
from torch import nn

from archdsl import ir
from archdsl.backend.codegen import generate, model_class_name
from archdsl.diagnostics import Diagnostic, UsageError


def compile_source(g: ir.Graph, memory_efficient: bool = False) -> str:
    """The standalone Python source of the network (imports only torch). A memory-efficient build
    recomputes in backward, instead of storing, the concatenation, BN-ReLU and convolution of clique
    updates and dense layers and the BN-ReLU-conv (or -pool) that reads any concatenation."""
    return generate(g, memory_efficient)


def load_class(source: str, name: str, filename: str | None = None) -> type[nn.Module]:
    """Execute generated source as a module and return its class called `name`.

    Each distinct source gets its own module name and file name (a digest of the source), so that
    two builds of a network with other parameters keep their own classes and traceback lines. The
    class pickles its instances with the source (see :func:`rebuild`).
    """
    digest = hashlib.sha1(source.encode()).hexdigest()[:10]
    filename = filename or f"<archdsl:{name}:{digest}>"
    module = types.ModuleType(f"archdsl_generated_{name.lower()}_{digest}")
    module.__file__ = filename
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # tracebacks show the code
    sys.modules[module.__name__] = module  # TorchScript and pickle look classes up by module name
    exec(compile(source, filename, "exec", dont_inherit=True), module.__dict__)  # noqa: S102  (generated code, not spec text)
    cls = module.__dict__[name]
    cls.__archdsl_source__ = source

    def __reduce_ex__(self, protocol):
        if type(self) is not cls:  # a user's subclass pickles as usual
            return super(cls, self).__reduce_ex__(protocol)
        return rebuild, (source, name), self.__dict__.copy()

    cls.__reduce_ex__ = __reduce_ex__
    return cls


def rebuild(source: str, name: str) -> nn.Module:
    """An empty instance of the class `name` in generated `source` (unpickling a built module fills
    it in): the class already loaded in this process, else loaded now."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:10]
    module = sys.modules.get(f"archdsl_generated_{name.lower()}_{digest}")
    cls = getattr(module, name, None)
    if getattr(cls, "__archdsl_source__", None) != source:
        cls = load_class(source, name)
    return cls.__new__(cls)


def check_device(device) -> torch.device:
    """A torch.device, refusing devices this machine lacks instead of failing later or falling back."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(Diagnostic(f"device '{device}' was asked for but CUDA is not available here",
                                    help="use device 'cpu' (--device cpu), or install a CUDA build of torch "
                                         "on a GPU machine"))
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(Diagnostic(f"device '{device}' is not available", help="use device 'cpu' (--device cpu)"))
    return device


def compile_module(g: ir.Graph, device=None, dtype=None, seed: int | None = None,
                   memory_efficient: bool = False) -> nn.Module:
    """Build the network's module; `seed` makes the initial weights deterministic."""
    device = None if device is None else check_device(device)
    cls = load_class(compile_source(g, memory_efficient), model_class_name(g))
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
