"""PyTorch modules for ops that torch.nn lacks.

Each class here is self-contained (it uses only torch, nn, F and math) because
the code generator copies the source of the classes a network uses into the
standalone `.py` file it writes: a paper's code release needs no archdsl.
"""

from __future__ import annotations

import math  # noqa: F401  (available to the classes below and to generated code)

import torch
import torch.nn.functional as F  # noqa: F401
from torch import nn
