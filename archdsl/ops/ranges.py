"""Value ranges of op and construct arguments, by argument name: what PyTorch would reject.

One table for every op (and the constructs, which share argument names): sizes, kernels,
strides and counts are positive, paddings and offsets are not negative, probabilities lie in
[0, 1), epsilons are positive. The elaborator checks each argument against it as it binds a call,
so that `check` refuses what `compile` could not build.
"""

from __future__ import annotations

POSITIVE = frozenset({"out", "kernel", "stride", "dilation", "size", "scale", "multiplier", "k"})
AT_LEAST_ONE = frozenset({"groups", "n", "rounds"})  # (a construct's `layers` has its own, larger minimum)
NOT_NEGATIVE = frozenset({"pad", "output_pad", "offset", "start"})
PROBABILITY = frozenset({("dropout", "p"), ("clique", "dropout"), ("clique_layer", "dropout")})  # others say their own
POSITIVE_FLOAT = frozenset({"eps"})
ODD_KERNEL = frozenset({"clique", "clique_layer"})  # 'same' padding of kernel // 2 needs an odd kernel
LARGEST = 2**31 - 1  # torch takes sizes as C++ integers; no layer needs one this large


def _ints(value) -> list:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
    return []


def problem(op: str, name: str, value) -> str | None:
    """Why `value` is out of range for argument `name` of `op`, or None when it is fine."""
    if any(abs(v) > LARGEST for v in _ints(value)):
        return f"{name} is too large for a layer (at most {LARGEST:,}), found {_show(value)}"
    if name in POSITIVE and any(v < 1 for v in _ints(value)):
        return f"{name} must be positive, found {_show(value)}"
    if name in AT_LEAST_ONE and any(v < 1 for v in _ints(value)):
        return f"{name} must be at least 1, found {_show(value)}"
    if name in NOT_NEGATIVE and any(v < 0 for v in _ints(value)):
        return f"{name} must not be negative, found {_show(value)}"
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if (op, name) in PROBABILITY and number and not 0 <= value < 1:
        return f"dropout probability must be in [0, 1), found {_show(value)}"
    if name in POSITIVE_FLOAT and number and not value > 0:
        return f"{name} must be positive, found {_show(value)}"
    if op in ODD_KERNEL and name == "kernel" and any(v % 2 == 0 for v in _ints(value)):
        return f"a clique kernel must be odd (the layer keeps its size), found {_show(value)}"
    return None


def _show(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)
