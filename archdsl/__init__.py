"""archdsl: a declarative language for neural network architectures.

One `.arch` spec compiles to a shape-validated networkx IR, a Graphviz diagram
and a PyTorch module. The front end (parse, IR, checks, summaries) never
imports torch; :func:`build` does.
"""

from archdsl.api import build, build_ir, load_program
from archdsl.diagnostics import ArchError
from archdsl.summary import summary_data, summary_table
from archdsl.syntax.parser import parse

__version__ = "0.1.0"

__all__ = ["ArchError", "__version__", "build", "build_ir", "import_module", "import_onnx", "load_program",
           "load_weights", "parse", "summary_data", "summary_table", "to_inference"]


def __getattr__(name: str):
    """`load_weights`, `to_inference` and the importers need torch (or onnx): imported on first use."""
    if name == "load_weights":
        from archdsl.weights import load_weights

        return load_weights
    if name in ("import_module", "import_onnx"):  # archdsl.importer imports torch or onnx only when called
        from archdsl import importer

        return getattr(importer, name)
    if name == "to_inference":
        from archdsl.backend.inference import to_inference

        return to_inference
    raise AttributeError(f"module 'archdsl' has no attribute '{name}'")
