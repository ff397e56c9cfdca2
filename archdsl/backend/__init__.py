"""PyTorch backend: compile the IR to an ``nn.Module`` (generated code, not an interpreter)."""

from archdsl.backend.compile import compile_module, compile_source, load_class

__all__ = ["compile_module", "compile_source", "load_class"]
