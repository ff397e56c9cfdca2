"""PyTorch modules for ops that torch.nn lacks.

Each class here is self-contained (it uses only torch, nn, F and math) because
the code generator copies the source of the classes a network uses into the
standalone `.py` file it writes: a paper's code release needs no archdsl.
"""

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn


@contextlib.contextmanager
def kept_buffers(module: nn.Module):
    """On exit, put back the values ``module``'s buffers had on entry (BN running statistics)."""
    saved = [b.clone() for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(module.buffers(), saved):
                buffer.copy_(value)


def recompute_in_backward(fn, norm: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
    """``fn(*inputs)``, storing for backward only the inputs and the output when training:
    the steps inside ``fn`` are run again in backward (as in memory-efficient DenseNet). ``norm``
    is the BN that ``fn`` runs; the second run leaves its running statistics as the first one
    left them, so a memory-efficient step updates them once, like a plain step.
    """
    if not (norm.training and torch.is_grad_enabled()):
        return fn(*inputs)
    from torch.utils.checkpoint import checkpoint

    if torch.compiler.is_compiling():  # the compiled graph recomputes without updating BN state again
        return checkpoint(fn, *inputs, use_reentrant=False)
    return checkpoint(fn, *inputs, use_reentrant=False,
                      context_fn=lambda: (contextlib.nullcontext(), kept_buffers(norm)))


class CliqueLayer(nn.Module):
    """Layer X_i of a CliqueNet block: one weight tensor for all of its incoming edges.

    ``weight`` is laid out along its input axis as [W_0i | W_1i .. W_(i-1)i | W_(i+1)i .. W_Li]
    (c0 channels from the block input, then k per other layer). Stage I convolves
    concat(X_0, X_1..X_(i-1)) with the prefix ``weight[:, :stage1_in]``; stage II convolves
    concat(X_j, j != i) with ``weight[:, c0:]``: the forward-edge weights are the same
    parameters in both stages. Each stage (and each stage-II round) has its own BN.
    ``edge_weight(j)`` returns W_ji as a view. With ``memory_efficient`` the concatenation,
    BN-ReLU and convolution of each update are recomputed in backward instead of stored.
    """

    def __init__(self, c0: int, stage1_in: int, stage2_in: int, k: int, kernel_size: int = 3,
                 bottleneck: bool = False, rounds: int = 1, dropout: float = 0.0, memory_efficient: bool = False):
        super().__init__()
        edge_kernel = 1 if bottleneck else kernel_size
        backward = stage2_in - (stage1_in - c0) if stage2_in else 0
        self.c0, self.stage1_in, self.k = c0, stage1_in, k
        self.weight = nn.Parameter(torch.empty(k, stage1_in + backward, edge_kernel, edge_kernel))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default
        stages = 1 + (rounds if stage2_in else 0)
        self.norms = nn.ModuleList([nn.BatchNorm2d(stage1_in)] + [nn.BatchNorm2d(stage2_in) for _ in range(stages - 1)])
        self.bottleneck = bottleneck
        self.conv3x3 = nn.Conv2d(k, k, kernel_size, padding=kernel_size // 2, bias=False) if bottleneck \
            else nn.Identity()
        self.norms3x3 = nn.ModuleList([nn.BatchNorm2d(k) for _ in range(stages if bottleneck else 0)])
        self.padding = edge_kernel // 2
        self.dropout = dropout
        self.memory_efficient = memory_efficient

    def edge_weight(self, j: int) -> torch.Tensor:
        """W_ji: the filters from X_j (X_0 is the block input) into this layer."""
        if j == 0:
            return self.weight[:, :self.c0]
        start = self.c0 + (j - 1) * self.k
        if start >= self.stage1_in:  # a backward edge: X_i itself has no slot
            start -= self.k
        return self.weight[:, start:start + self.k]

    def _update(self, stage: int, inputs: list[torch.Tensor]) -> torch.Tensor:
        """One concatenation, the stage's BN-ReLU, one convolution with the stage's weight slice."""
        x = torch.cat(inputs, 1) if len(inputs) > 1 else inputs[0]
        for index, norm in enumerate(self.norms):
            if index == stage:
                x = norm(x)
        weight = self.weight[:, :self.stage1_in] if stage == 0 else self.weight[:, self.c0:]
        # BN's output is fresh and unused in backward: ReLU may overwrite it. The weight slice is a
        # strided view; convolution kernels want a dense filter bank (a tiny copy).
        return F.conv2d(torch.relu_(x), weight.contiguous(), padding=self.padding)

    @torch.jit.unused
    def _checkpointed(self, stage: int, inputs: list[torch.Tensor]) -> torch.Tensor:
        """The update recomputed in backward instead of storing the concatenation and BN-ReLU output."""
        return recompute_in_backward(lambda *xs: self._update(stage, list(xs)), self.norms[stage], *inputs)

    def forward(self, inputs: list[torch.Tensor], stage: int) -> torch.Tensor:
        if self.memory_efficient and self.training and torch.is_grad_enabled():
            x = self._checkpointed(stage, inputs)
        else:
            x = self._update(stage, inputs)
        if self.dropout > 0:
            x = F.dropout(x, self.dropout, self.training)
        if self.bottleneck:
            for index, norm in enumerate(self.norms3x3):
                if index == stage:
                    x = norm(x)
            x = self.conv3x3(torch.relu(x))
            if self.dropout > 0:
                x = F.dropout(x, self.dropout, self.training)
        return x


class TrainableSubsampling(nn.Module):
    """LeNet-5's sub-sampling layer (S2, S4): per map, the sum of each k x k window
    times a trainable coefficient plus a trainable bias. Initialised as in the paper
    (LeCun et al. 1998, appendix C): uniform in +-2.4 / fan-in, fan-in = window area.
    """

    def __init__(self, channels: int, kernel_size: tuple, stride: tuple | None = None):
        super().__init__()
        self.kernel_size, self.stride = tuple(kernel_size), tuple(stride or kernel_size)
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))
        bound = 2.4 / math.prod(self.kernel_size)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[x.dim() - 3]
        window_sum = pool(x, self.kernel_size, self.stride) * math.prod(self.kernel_size)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return window_sum * self.weight.view(shape) + self.bias.view(shape)


class PartialConv(nn.Module):
    """A convolution in which output map j sees only the input maps ``table[j]``
    (LeNet-5's C3, Table I). Only the connected kernels are parameters: ``weight``
    holds one kernel per link, scattered into a dense kernel at each call.
    Initialised as in the paper: uniform in +-2.4 / fan-in of the output map.
    """

    def __init__(self, in_channels: int, table: list, kernel_size: tuple, stride: tuple | int = 1,
                 padding: tuple | int = 0, bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, len(table)
        self.kernel_size, self.stride, self.padding = tuple(kernel_size), stride, padding
        rows = [j for j, inputs in enumerate(table) for _ in inputs]
        cols = [i for inputs in table for i in inputs]
        self.register_buffer("rows", torch.tensor(rows, dtype=torch.long), persistent=False)
        self.register_buffer("cols", torch.tensor(cols, dtype=torch.long), persistent=False)
        self.weight = nn.Parameter(torch.empty(len(rows), *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(len(table))) if bias else None
        area = math.prod(self.kernel_size)
        with torch.no_grad():
            for link, j in enumerate(rows):
                bound = 2.4 / (len(table[j]) * area)
                self.weight[link].uniform_(-bound, bound)
                if self.bias is not None:
                    self.bias[j].uniform_(-bound, bound)

    def dense_weight(self) -> torch.Tensor:
        """The full [out, in, *kernel] kernel, zero where the table has no link."""
        dense = self.weight.new_zeros(self.out_channels, self.in_channels, *self.kernel_size)
        return dense.index_put((self.rows, self.cols), self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = (F.conv1d, F.conv2d, F.conv3d)[x.dim() - 3]
        return conv(x, self.dense_weight(), self.bias, self.stride, self.padding)


class EuclideanRBF(nn.Module):
    """LeNet-5's output layer: y_i = sum_j (x_j - w_ij)^2. The paper fixes the centres
    by hand (+-1 codes drawn from 7x12 character bitmaps); here they are random +-1
    codes, kept as a buffer unless ``trainable``.
    """

    def __init__(self, in_features: int, out_features: int, trainable: bool = False):
        super().__init__()
        centres = torch.randint(0, 2, (out_features, in_features)).float() * 2 - 1
        if trainable:
            self.weight = nn.Parameter(centres)
        else:
            self.register_buffer("weight", centres)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.unsqueeze(1) - self.weight) ** 2).sum(-1)


class ChannelLayerNorm(nn.LayerNorm):
    """Layer normalisation over the channel axis of [N, C, ...] at every position (torchvision's
    LayerNorm2d in ConvNeXt): the channels are moved last, normalised, and moved back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.movedim(1, -1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.movedim(-1, 1)


class DropPath(nn.Module):
    """Stochastic depth per sample (torchvision's StochasticDepth, mode "row"): in training each
    sample is zeroed with probability ``p`` and otherwise scaled by 1/(1-p); the identity in eval."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        noise = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
        if keep > 0.0:
            noise.div_(keep)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LayerScale(nn.Module):
    """A learnable scale per channel, initialised to ``init``; ``weight`` has torchvision's shape
    [C, 1, ...] for an input with ``rank`` axes besides the batch."""

    def __init__(self, channels: int, init: float, rank: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,) + (1,) * (rank - 1), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


def in_chunks(forward, inputs: tuple, largest: int, budget: int = 16 << 20):
    """`forward(*inputs)` on a CPU batch in chunks of samples, the outputs concatenated: for an inference
    build, whose every op works on each sample alone. A chunk holds as many samples as keep the largest
    intermediate tensor (`largest` elements per sample) within `budget` bytes (16 MiB, measured:
    docs/backend.md), so that a layer's input and output stay in the caches and the allocator reuses
    their blocks instead of mapping fresh pages on every call. Elsewhere (a GPU, a batch within one
    chunk, tracing, compiling, exporting) it is `forward(*inputs)`."""
    x = inputs[0]
    chunk = max(1, budget // (largest * x.element_size()))
    exporting = getattr(torch.compiler, "is_exporting", bool)()  # (torch.compiler.is_exporting: torch >= 2.5)
    if x.device.type != "cpu" or torch.jit.is_tracing() or torch.compiler.is_compiling() or exporting \
            or x.shape[0] <= chunk:
        return forward(*inputs)
    parts = [forward(*part) for part in zip(*(t.split(chunk) for t in inputs))]
    if isinstance(parts[0], dict):
        return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}
    return torch.cat(parts)


def dense_features(x: torch.Tensor, channels: int) -> torch.Tensor:
    """A dense block's features in an inference build: one tensor of `channels` channels, otherwise shaped
    and laid out like the block's input `x`, which it holds first; each layer writes its output after
    the earlier ones."""
    layout = torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
        and not x.is_contiguous() else torch.contiguous_format
    size = list(x.shape)
    size[1] = channels
    features = torch.empty(size, dtype=x.dtype, device=x.device, memory_format=layout)
    features[:, :x.shape[1]] = x
    return features


class AffineBatchNorm2d(nn.BatchNorm2d):
    """Batch normalisation for inference builds, where a BN cannot be folded into the layer before it
    (pre-activation networks): in eval mode it is a per-channel affine map, y = x * scale + shift, run
    as one ``torch.addcmul``, which reads a strided input (a dense block's features, a view of one
    growing tensor) in place where BN's CPU kernel first copies it. The state dict is
    ``nn.BatchNorm2d``'s.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.rsqrt(self.running_var + self.eps)
        shift = -self.running_mean * scale
        if self.weight is not None and self.bias is not None:
            scale = scale * self.weight
            shift = shift * self.weight + self.bias
        return torch.addcmul(shift.view(1, -1, 1, 1), x, scale.view(1, -1, 1, 1))


class PackedConv2d(nn.Conv2d):
    """A 2-D convolution for inference builds, with the activation that follows it (`activation`, one of
    oneDNN's post-ops: relu, hardtanh with `scalars` (min, max), leaky_relu (slope), sigmoid, tanh,
    swish, hardswish, hardsigmoid, gelu with `algorithm` "none" or "tanh"; "none": no activation).
    ``nn.Conv2d`` on a CPU reorders its filters into oneDNN's blocked layout on every call; here the
    reordered filters are kept (for each input shape seen, up to eight, and as long as the weights are
    unchanged), which is most of a network's time at batch 1, and the activation runs in the same call.
    That path runs on a CPU with oneDNN for float32 when no gradient is needed; everywhere else (GPU,
    other dtypes, gradients, tracing, torch.compile) this is ``nn.Conv2d`` followed by the activation.
    The state dict is ``nn.Conv2d``'s.
    """

    scalars: list[float]

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None, *,
                 activation: str = "none", scalars: tuple = (), algorithm: str = "") -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         device, dtype)
        self.activation, self.scalars, self.algorithm = activation, [float(s) for s in scalars], algorithm

    def extra_repr(self) -> str:
        text = super().extra_repr()
        if self.activation != "none":
            text += f", activation={self.activation}" + "".join(f", {s}" for s in self.scalars)
        return text + (f", algorithm={self.algorithm}" if self.algorithm else "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting() or torch.compiler.is_compiling() or not self._packable(x):
            return self._activate(self._conv_forward(x, self.weight, self.bias))
        return self._packed_forward(x)

    def _activate(self, y: torch.Tensor) -> torch.Tensor:
        """oneDNN's post-op `activation` on the convolution's fresh output `y`, in place where torch can."""
        name = self.activation
        if name == "relu":
            return torch.relu_(y)
        if name == "hardtanh":
            return F.hardtanh(y, self.scalars[0], self.scalars[1], inplace=True)
        if name == "leaky_relu":
            return F.leaky_relu(y, self.scalars[0], inplace=True)
        if name == "sigmoid":
            return torch.sigmoid_(y)
        if name == "tanh":
            return torch.tanh_(y)
        if name == "swish":
            return F.silu(y, inplace=True)
        if name == "hardswish":
            return F.hardswish(y, inplace=True)
        if name == "hardsigmoid":
            return F.hardsigmoid(y, inplace=True)
        if name == "gelu":
            return F.gelu(y, approximate=self.algorithm)
        return y

    @torch.jit.unused
    def _packable(self, x: torch.Tensor) -> bool:
        return (x.device.type == "cpu" and x.dtype == torch.float32 == self.weight.dtype and x.dim() == 4
                and self.padding_mode == "zeros" and isinstance(self.padding, tuple)
                and torch.backends.mkldnn.enabled and torch.backends.mkldnn.is_available()
                and not (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad))
                and not torch.compiler.is_compiling() and not torch.jit.is_tracing())

    @torch.jit.unused
    def _packed_forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = (self.weight.data_ptr(), self.weight._version)
        geometry = (list(self.padding), list(self.stride), list(self.dilation), self.groups)
        cached = self.__dict__.get("_packed")
        if cached is None or cached[0] != weights or len(cached[1]) >= 8:  # new weights: pack anew
            cached = self.__dict__["_packed"] = (weights, {})
        filters = cached[1].get(x.shape)
        if filters is None:  # one packing per input shape (a batch's last chunk may be smaller)
            with torch.no_grad():
                filters = cached[1][x.shape] = torch._C._nn.mkldnn_reorder_conv2d_weight(
                    self.weight.detach().to_mkldnn(), *geometry, list(x.shape))
        return torch.ops.mkldnn._convolution_pointwise(x, filters, self.bias, *geometry, self.activation,
                                                       self.scalars, self.algorithm)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_packed", None)  # oneDNN tensors do not pickle; they are made again on the next call
        return state
