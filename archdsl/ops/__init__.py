"""All op definitions, registered in :data:`OPS` on import."""

from archdsl.ops import classic, clique, conv, layers, merge, modern, pool, reshape  # noqa: F401  (registration)
from archdsl.ops.base import OPS, Arg, Op, OpError

__all__ = ["OPS", "Arg", "Op", "OpError"]
