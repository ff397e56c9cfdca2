"""Hand-written PyTorch reference networks for checking archdsl-compiled modules.

Everything here is plain ``torch`` (no archdsl imports), written directly from the
papers' formulas.  The references are used by tests (numerical equality after a
weight copy, parameter counts, output shapes) and by benchmarks.

Contents
--------
* ResNet: :class:`BasicBlock`, :class:`Bottleneck`, :func:`resnet50`.
* DenseNet: :class:`DenseLayer`, :class:`DenseBlock`, :class:`Transition`, :func:`densenet121`.
* Misc modules: :class:`InceptionModule`, :class:`HighwayConv`, :class:`ShuffleUnit`,
  :func:`channel_shuffle`, :class:`TwoTowerConv`.
* CliqueNet (Yang et al., CVPR 2018): :class:`CliqueBlockRef` (explicit per-edge convs),
  :class:`CliqueBlockNaive` (authors' TF style: concat chains of features and weights),
  :class:`CliqueNetRef`, :func:`cliquenet_cifar`, :func:`cliquenet_imagenet`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CLIQUENET_IMAGENET_CONFIGS",
    "BasicBlock",
    "Bottleneck",
    "CliqueBlockNaive",
    "CliqueBlockRef",
    "CliqueNetRef",
    "CliqueTransition",
    "DenseBlock",
    "DenseLayer",
    "DenseNet",
    "HighwayConv",
    "InceptionModule",
    "ResNet",
    "SEGate",
    "ShuffleUnit",
    "Transition",
    "TwoTowerConv",
    "channel_shuffle",
    "cliquenet_cifar",
    "cliquenet_imagenet",
    "count_params",
    "densenet121",
    "resnet50",
]


def count_params(module: nn.Module) -> int:
    """Number of scalar parameters (trainable or not) of ``module``."""
    return sum(p.numel() for p in module.parameters())


def _bn_relu(c: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(c), nn.ReLU(inplace=False)]


# --------------------------------------------------------------------------- ResNet


class _ShortcutA(nn.Module):
    """Parameter-free shortcut (ResNet option A): stride-2 subsample + zero channel padding."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        if cout < cin:
            raise ValueError("option A shortcut cannot reduce channels")
        if stride not in (1, 2):
            raise ValueError("option A shortcut supports stride 1 or 2")
        self.extra = cout - cin
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 2:
            x = x[:, :, ::2, ::2]
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra))  # zero channels appended at the end
        return x


def _make_shortcut(kind: str, cin: int, cout: int, stride: int) -> nn.Module:
    if kind == "identity":
        if cin != cout or stride != 1:
            raise ValueError("identity shortcut needs cin == cout and stride 1")
        return nn.Identity()
    if kind == "projection":
        return nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
        )
    if kind == "A":
        return _ShortcutA(cin, cout, stride)
    raise ValueError(f"unknown shortcut {kind!r}")


class BasicBlock(nn.Module):
    """ResNet basic block: conv3x3(s)-BN-ReLU-conv3x3-BN, + shortcut, ReLU.

    ``shortcut``: ``'identity'``, ``'projection'`` (conv1x1 stride s + BN, always applied)
    or ``'A'`` (``x[:, :, ::2, ::2]`` when s == 2, channels zero-padded at the end).
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, shortcut: str = "identity") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = _make_shortcut(shortcut, cin, cout, stride)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class Bottleneck(nn.Module):
    """ResNet bottleneck: 1x1(mid)-BN-ReLU-3x3(mid)-BN-ReLU-1x1(cout)-BN, + shortcut, ReLU.

    The stride sits on the first 1x1 (paper, "v1") unless ``stride_on_3x3`` (torchvision "v1.5").
    """

    def __init__(
        self,
        cin: int,
        mid: int,
        cout: int,
        stride: int = 1,
        shortcut: str = "identity",
        stride_on_3x3: bool = False,
    ) -> None:
        super().__init__()
        s1, s3 = (1, stride) if stride_on_3x3 else (stride, 1)
        self.conv1 = nn.Conv2d(cin, mid, 1, stride=s1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=s3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = _make_shortcut(shortcut, cin, cout, stride)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + self.shortcut(x))


class ResNet(nn.Module):
    """ImageNet ResNet with bottleneck blocks and option-B shortcuts."""

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 6, 3),
        classes: int = 1000,
        stride_on_3x3: bool = False,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages: list[nn.Module] = []
        cin = 64
        for i, n in enumerate(layers):
            mid = 64 * 2**i
            cout = 4 * mid
            blocks: list[nn.Module] = []
            for b in range(n):
                stride = 2 if (b == 0 and i > 0) else 1
                # option B: project only where the shape changes
                kind = "projection" if (stride != 1 or cin != cout) else "identity"
                blocks.append(Bottleneck(cin, mid, cout, stride, kind, stride_on_3x3))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def resnet50(stride_on_3x3: bool = False, classes: int = 1000) -> ResNet:
    """ResNet-50 (25,557,032 parameters for 1000 classes, either stride placement)."""
    return ResNet((3, 4, 6, 3), classes, stride_on_3x3)


# --------------------------------------------------------------------------- DenseNet


class DenseLayer(nn.Module):
    """DenseNet layer: [BN-ReLU-conv1x1(4k)] - BN-ReLU-conv3x3(k); returns the k new maps."""

    def __init__(self, cin: int, k: int, bottleneck: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = cin
        if bottleneck:
            layers += [*_bn_relu(c), nn.Conv2d(c, 4 * k, 1, bias=False)]
            c = 4 * k
        layers += [*_bn_relu(c), nn.Conv2d(c, k, 3, padding=1, bias=False)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class DenseBlock(nn.Module):
    """Dense block: layer l sees concat(x, y_1..y_{l-1}); output has c0 + n_layers*k channels."""

    def __init__(self, c0: int, n_layers: int, k: int, bottleneck: bool = True) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(c0 + i * k, k, bottleneck) for i in range(n_layers)
        )
        self.out_channels = c0 + n_layers * k

    def forward(self, x: Tensor) -> Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, 1)))
        return torch.cat(feats, 1)


class Transition(nn.Module):
    """DenseNet transition: BN-ReLU-conv1x1(cout)-avgpool2x2."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_bn_relu(cin), nn.Conv2d(cin, cout, 1, bias=False), nn.AvgPool2d(2, 2)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class DenseNet(nn.Module):
    """ImageNet DenseNet-BC (bottleneck 4k, compression ``theta``)."""

    def __init__(
        self,
        blocks: Sequence[int] = (6, 12, 24, 16),
        k: int = 32,
        c0: int = 64,
        theta: float = 0.5,
        classes: int = 1000,
    ) -> None:
        super().__init__()
        feats: list[nn.Module] = [
            nn.Conv2d(3, c0, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(c0),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        ]
        c = c0
        for i, n in enumerate(blocks):
            block = DenseBlock(c, n, k, bottleneck=True)
            feats.append(block)
            c = block.out_channels
            if i != len(blocks) - 1:
                cout = int(c * theta)
                feats.append(Transition(c, cout))
                c = cout
        feats += _bn_relu(c)
        self.features = nn.Sequential(*feats)
        self.fc = nn.Linear(c, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def densenet121(classes: int = 1000) -> DenseNet:
    """DenseNet-BC-121, k=32 (7,978,856 parameters for 1000 classes)."""
    return DenseNet((6, 12, 24, 16), 32, 64, 0.5, classes)


# --------------------------------------------------------------------------- misc modules


class InceptionModule(nn.Module):
    """GoogLeNet (v1) inception module; every conv has a bias and is followed by ReLU.

    Branches: 1x1(c1) | 1x1(c3r)->3x3(c3) | 1x1(c5r)->5x5(c5) | maxpool3x3/1->1x1(pool_proj).
    """

    def __init__(
        self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int
    ) -> None:
        super().__init__()

        def conv(a: int, b: int, k: int) -> list[nn.Module]:
            return [nn.Conv2d(a, b, k, padding=k // 2), nn.ReLU()]

        self.b1 = nn.Sequential(*conv(cin, c1, 1))
        self.b3 = nn.Sequential(*conv(cin, c3r, 1), *conv(c3r, c3, 3))
        self.b5 = nn.Sequential(*conv(cin, c5r, 1), *conv(c5r, c5, 5))
        self.bp = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), *conv(cin, pool_proj, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


class HighwayConv(nn.Module):
    """Convolutional highway layer: y = H(x) * T(x) + x * (1 - T(x)).

    H = ReLU(conv(x)), T = sigmoid(conv(x)); both convs have biases and 'same' padding;
    the gate bias is initialised to ``gate_bias`` (negative => carry behaviour at init).
    """

    def __init__(self, channels: int, kernel: int = 3, gate_bias: float = -1.0) -> None:
        super().__init__()
        self.h = nn.Conv2d(channels, channels, kernel, padding="same")
        self.t = nn.Conv2d(channels, channels, kernel, padding="same")
        nn.init.constant_(self.t.bias, gate_bias)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.h(x))
        t = torch.sigmoid(self.t(x))
        return h * t + x * (1.0 - t)


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """ShuffleNet channel shuffle: (g, c/g) -> transpose -> flatten.

    For channels 0..5 and g=3 the output order is [0, 2, 4, 1, 3, 5].
    """
    n, c = x.shape[:2]
    if c % groups:
        raise ValueError("channels must be divisible by groups")
    rest = x.shape[2:]
    return x.reshape(n, groups, c // groups, *rest).transpose(1, 2).reshape(n, c, *rest)


class ShuffleUnit(nn.Module):
    """ShuffleNet v1 unit.

    Branch: gconv1x1(cin->mid, g)-BN-ReLU, shuffle, dwconv3x3(stride s)-BN, gconv1x1(mid->cb, g)-BN.
    stride 1: out = ReLU(x + branch), cb = cout (needs cin == cout).
    stride 2: out = ReLU(concat(avgpool3x3/2 pad1(x), branch)), cb = cout - cin.
    ``mid`` defaults to cout // 4 (the unit's total output / 4).
    """

    def __init__(
        self, cin: int, cout: int, groups: int = 3, stride: int = 1, mid: int | None = None
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError("stride must be 1 or 2")
        if stride == 1 and cin != cout:
            raise ValueError("stride-1 ShuffleUnit needs cin == cout")
        mid = cout // 4 if mid is None else mid
        cb = cout if stride == 1 else cout - cin
        self.groups = groups
        self.stride = stride
        self.conv1 = nn.Conv2d(cin, mid, 1, groups=groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.dw = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, cb, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(cb)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = channel_shuffle(y, self.groups)
        y = self.bn2(self.dw(y))
        y = self.bn3(self.conv2(y))
        if self.stride == 1:
            return F.relu(x + y)
        return F.relu(torch.cat([F.avg_pool2d(x, 3, stride=2, padding=1), y], 1))


class TwoTowerConv(nn.Module):
    """AlexNet-style split conv: input channels split into ``groups`` towers, one conv each
    (cin/g -> cout/g, with bias), outputs concatenated (equivalent to a grouped conv)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        groups: int = 2,
        stride: int = 1,
        padding: int | None = None,
    ) -> None:
        super().__init__()
        if cin % groups or cout % groups:
            raise ValueError("cin and cout must be divisible by groups")
        pad = kernel // 2 if padding is None else padding
        self.groups = groups
        self.towers = nn.ModuleList(
            nn.Conv2d(cin // groups, cout // groups, kernel, stride=stride, padding=pad)
            for _ in range(groups)
        )

    def forward(self, x: Tensor) -> Tensor:
        parts = torch.chunk(x, self.groups, dim=1)
        return torch.cat([t(p) for t, p in zip(self.towers, parts)], 1)


# --------------------------------------------------------------------------- CliqueNet

_MODES = ("II+II", "I+II", "I+I")


class _CliqueBase(nn.Module):
    """Parameter-independent bookkeeping shared by both CliqueNet block implementations.

    Norm layout (identical module names in both subclasses so state dicts line up):
      ``bn_I[i-1]``           BN over concat(X_0..X_{i-1})           (stage I, layer i)
      ``bnb_I[i-1]``          BN(k) before the 3x3 bottleneck conv    (stage I, bottleneck only)
      ``bn_II[r][i-1]``       BN over concat(X_j, j != i)             (stage II round r, layer i<=n)
      ``bnb_II[r][i-1]``      BN(k) before the 3x3 conv               (stage II round r, bottleneck)
      ``conv3[i-1]``          3x3 k->k conv of layer i, shared by all stages (bottleneck only)
    """

    def __init__(
        self,
        c0: int,
        L: int,
        k: int,
        bottleneck: bool,
        rounds: int = 1,
        mode: str = "II+II",
        partial: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}")
        if L < 1:
            raise ValueError("L must be >= 1")
        if mode == "I+I" and partial is not None:
            raise ValueError("partial is meaningless in mode 'I+I' (no stage II)")
        if partial is not None and not 0 <= partial <= L:
            raise ValueError("partial must be in [0, L]")
        self.c0, self.L, self.k = c0, L, k
        self.bottleneck = bottleneck
        self.mode = mode
        self.has_stage2 = mode != "I+I"
        self.rounds = rounds if self.has_stage2 else 0
        self.n_updated = (L if partial is None else partial) if self.has_stage2 else 0
        self.ksize = 1 if bottleneck else 3
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

        self.bn_I = nn.ModuleList(nn.BatchNorm2d(c0 + (i - 1) * k) for i in range(1, L + 1))
        self.bn_II = nn.ModuleList(
            nn.ModuleList(nn.BatchNorm2d((L - 1) * k) for _ in range(self.n_updated))
            for _ in range(self.rounds)
        )
        if bottleneck:
            self.bnb_I = nn.ModuleList(nn.BatchNorm2d(k) for _ in range(L))
            self.bnb_II = nn.ModuleList(
                nn.ModuleList(nn.BatchNorm2d(k) for _ in range(self.n_updated))
                for _ in range(self.rounds)
            )
            self.conv3 = nn.ModuleList(nn.Conv2d(k, k, 3, padding=1, bias=False) for _ in range(L))

    # ------------------------------------------------------------------ helpers
    def edge_list(self) -> list[tuple[int, int]]:
        """Directed edges (src, dst) that own a filter bank, in creation order."""
        edges = [(0, i) for i in range(1, self.L + 1)]
        edges += [(j, i) for i in range(1, self.L + 1) for j in range(1, i)]  # forward
        edges += [
            (j, i) for i in range(1, self.n_updated + 1) for j in range(i + 1, self.L + 1)
        ]  # backward, stage II only
        return edges

    def edge_in_channels(self, src: int) -> int:
        return self.c0 if src == 0 else self.k

    def _finish_layer(self, y: Tensor, i: int, bnb: nn.Module | None) -> Tensor:
        """Dropout after the edge conv, then (bottleneck) BN-ReLU-conv3x3-dropout."""
        y = self.drop(y)
        if self.bottleneck:
            assert bnb is not None
            y = self.drop(self.conv3[i - 1](F.relu(bnb(y))))
        return y

    def _layer(self, inputs: list[tuple[int, Tensor]], i: int, bn: nn.Module) -> Tensor:
        raise NotImplementedError

    def forward(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        L = self.L
        X: dict[int, Tensor] = {}
        # Stage I: X_i from X_0, X_1..X_{i-1}
        for i in range(1, L + 1):
            inputs = [(j, x0 if j == 0 else X[j]) for j in range(i)]
            y = self._layer(inputs, i, self.bn_I[i - 1])
            X[i] = self._finish_layer(y, i, self.bnb_I[i - 1] if self.bottleneck else None)
        stage1 = [X[i] for i in range(1, L + 1)]
        # Stage II: recurrent refinement, in place (X_j' for j < i, old X_j for j > i)
        for r in range(self.rounds):
            for i in range(1, self.n_updated + 1):
                inputs = [(j, X[j]) for j in range(1, L + 1) if j != i]
                y = self._layer(inputs, i, self.bn_II[r][i - 1])
                X[i] = self._finish_layer(
                    y, i, self.bnb_II[r][i - 1] if self.bottleneck else None
                )
        stage2 = [X[i] for i in range(1, L + 1)]
        transit = torch.cat(stage2, 1)
        block_layers = stage1 if self.mode == "I+II" else stage2
        block = torch.cat([x0, *block_layers], 1)
        return block, transit

    @property
    def block_channels(self) -> int:
        return self.c0 + self.L * self.k

    @property
    def transit_channels(self) -> int:
        return self.L * self.k


class CliqueBlockRef(_CliqueBase):
    """CliqueNet block with one explicit ``nn.Conv2d`` (bias=False) per directed edge.

    Layer update (both stages): X_i = sum_j conv_{W_ji}( slice_j( ReLU(BN(concat(inputs))) ) ),
    i.e. one BN over the concatenated inputs, then per-edge convs on the matching channel
    slices, summed.  Edge convs live in ``self.edges["{src}_{dst}"]``.

    Returns ``(block_feature, transit_feature)``; see module docs for ``mode``/``partial``.
    """

    def __init__(
        self,
        c0: int,
        L: int,
        k: int,
        bottleneck: bool,
        rounds: int = 1,
        mode: str = "II+II",
        partial: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(c0, L, k, bottleneck, rounds, mode, partial, dropout)
        p = self.ksize // 2
        self.edges = nn.ModuleDict(
            {
                f"{j}_{i}": nn.Conv2d(self.edge_in_channels(j), k, self.ksize, padding=p, bias=False)
                for j, i in self.edge_list()
            }
        )

    def _layer(self, inputs: list[tuple[int, Tensor]], i: int, bn: nn.Module) -> Tensor:
        z = F.relu(bn(torch.cat([t for _, t in inputs], 1)))
        slices = torch.split(z, [t.shape[1] for _, t in inputs], dim=1)
        out = None
        for (j, _), s in zip(inputs, slices):
            y = self.edges[f"{j}_{i}"](s)
            out = y if out is None else out + y
        assert out is not None
        return out


class CliqueBlockNaive(_CliqueBase):
    """CliqueNet block written like the authors' TF code (for benchmarks).

    Per layer: the input is built by a chain of pairwise ``torch.cat`` of feature maps and
    the weight by a chain of pairwise ``torch.cat`` of the per-edge filter banks (dim 1 =
    input channels); then BN-ReLU and a single ``F.conv2d``.  Edge weights live in
    ``self.edge_weights["{src}_{dst}"]``; parameters/semantics match :class:`CliqueBlockRef`.
    """

    def __init__(
        self,
        c0: int,
        L: int,
        k: int,
        bottleneck: bool,
        rounds: int = 1,
        mode: str = "II+II",
        partial: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(c0, L, k, bottleneck, rounds, mode, partial, dropout)
        self.edge_weights = nn.ParameterDict()
        for j, i in self.edge_list():
            conv = nn.Conv2d(self.edge_in_channels(j), k, self.ksize, bias=False)  # for init only
            self.edge_weights[f"{j}_{i}"] = nn.Parameter(conv.weight.detach().clone())

    def _layer(self, inputs: list[tuple[int, Tensor]], i: int, bn: nn.Module) -> Tensor:
        j0, blob = inputs[0]
        weight = self.edge_weights[f"{j0}_{i}"]
        for j, t in inputs[1:]:
            blob = torch.cat((blob, t), 1)
            weight = torch.cat((weight, self.edge_weights[f"{j}_{i}"]), 1)
        z = F.relu(bn(blob))
        return F.conv2d(z, weight, padding=self.ksize // 2)

    @torch.no_grad()
    def load_from(self, ref: CliqueBlockRef) -> CliqueBlockNaive:
        """Copy all weights and BN buffers from a structurally equal :class:`CliqueBlockRef`."""
        sd = {}
        for key, val in ref.state_dict().items():
            if key.startswith("edges.") and key.endswith(".weight"):
                key = "edge_weights." + key[len("edges.") : -len(".weight")]
            sd[key] = val
        self.load_state_dict(sd, strict=True)
        return self

    @torch.no_grad()
    def copy_to(self, ref: CliqueBlockRef) -> CliqueBlockRef:
        """Inverse of :meth:`load_from`: copy this block's weights into ``ref``."""
        sd = {}
        for key, val in self.state_dict().items():
            if key.startswith("edge_weights."):
                key = "edges." + key[len("edge_weights.") :] + ".weight"
            sd[key] = val
        ref.load_state_dict(sd, strict=True)
        return ref


class SEGate(nn.Module):
    """Attentional transition gate: GAP -> FC(C, C//2)+ReLU -> FC(C//2, C)+sigmoid -> x * s."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(c, c // 2)
        self.fc2 = nn.Linear(c // 2, c)

    def forward(self, x: Tensor) -> Tensor:
        s = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s[:, :, None, None]


class CliqueTransition(nn.Module):
    """CliqueNet transition: BN-ReLU-conv1x1(C->C) [dropout] [SE gate] avgpool2x2."""

    def __init__(self, c: int, attention: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c)
        self.conv = nn.Conv2d(c, c, 1, bias=False)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.gate = SEGate(c) if attention else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = self.drop(self.conv(F.relu(self.bn(x))))
        return F.avg_pool2d(self.gate(y), 2)


class _BlockHead(nn.Module):
    """Per-block output head: [BN-ReLU-conv1x1(C -> C//2) dropout] -> BN -> ReLU -> GAP."""

    def __init__(self, c: int, compress: bool, dropout: float) -> None:
        super().__init__()
        if compress:
            self.compress: nn.Module = nn.Sequential(
                *_bn_relu(c),
                nn.Conv2d(c, c // 2, 1, bias=False),
                nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            )
            c = c // 2
        else:
            self.compress = nn.Identity()
        self.bn = nn.BatchNorm2d(c)
        self.out_channels = c

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn(self.compress(x)))
        return torch.flatten(F.adaptive_avg_pool2d(y, 1), 1)


class CliqueNetRef(nn.Module):
    """Full CliqueNet: stem, clique blocks with transitions, multi-scale pooled head, FC.

    ``stem='cifar'``: conv3x3 3->64 stride 1 (no BN).  ``stem='imagenet'``: conv7x7/2 ->
    BN -> ReLU -> maxpool3x3/2.  Block b's input width is the previous transit width
    (L_{b-1} * k_{b-1}); transitions keep the width.  Every block feature goes through
    a head (:class:`_BlockHead`) and the pooled vectors are concatenated into the FC.
    ``naive=True`` uses :class:`CliqueBlockNaive` blocks (same parameter count).
    """

    def __init__(
        self,
        ks: Sequence[int],
        Ls: Sequence[int],
        stem: str = "cifar",
        bottleneck: bool = False,
        attention: bool = False,
        compression: bool = False,
        classes: int = 10,
        dropout: float = 0.0,
        stem_channels: int = 64,
        mode: str = "II+II",
        rounds: int = 1,
        naive: bool = False,
    ) -> None:
        super().__init__()
        if len(ks) != len(Ls):
            raise ValueError("ks and Ls must have equal length")
        c = stem_channels
        if stem == "cifar":
            self.stem: nn.Module = nn.Conv2d(3, c, 3, padding=1, bias=False)
        elif stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(3, c, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        else:
            raise ValueError("stem must be 'cifar' or 'imagenet'")
        block_cls = CliqueBlockNaive if naive else CliqueBlockRef
        self.blocks = nn.ModuleList()
        self.transitions = nn.ModuleList()
        self.heads = nn.ModuleList()
        for b, (k, L) in enumerate(zip(ks, Ls)):
            block = block_cls(c, L, k, bottleneck, rounds=rounds, mode=mode, dropout=dropout)
            self.blocks.append(block)
            self.heads.append(_BlockHead(block.block_channels, compression, dropout))
            c = block.transit_channels
            if b != len(ks) - 1:
                self.transitions.append(CliqueTransition(c, attention, dropout))
        self.feature_channels = sum(h.out_channels for h in self.heads)
        self.fc = nn.Linear(self.feature_channels, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        pooled = []
        for b, (block, head) in enumerate(zip(self.blocks, self.heads)):
            block_feat, transit = block(x)
            pooled.append(head(block_feat))
            if b < len(self.transitions):
                x = self.transitions[b](transit)
        return self.fc(torch.cat(pooled, 1))


def cliquenet_cifar(
    k: int = 36,
    T: int = 12,
    A: bool = False,
    B: bool = False,
    C: bool = False,
    classes: int = 10,
    dropout: float = 0.2,
    mode: str = "II+II",
    rounds: int = 1,
    naive: bool = False,
) -> CliqueNetRef:
    """CIFAR CliqueNet: 3 blocks of T/3 layers (T/6 with bottleneck B) at 32/16/8.

    (k=36, T=12) has 935,994 parameters; with A and C 1,079,338.
    """
    L = T // 6 if B else T // 3
    return CliqueNetRef(
        (k, k, k),
        (L, L, L),
        stem="cifar",
        bottleneck=B,
        attention=A,
        compression=C,
        classes=classes,
        dropout=dropout,
        mode=mode,
        rounds=rounds,
        naive=naive,
    )


CLIQUENET_IMAGENET_CONFIGS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "S0": ((36, 64, 100, 80), (5, 6, 6, 6)),
    "S1": ((36, 80, 120, 100), (5, 6, 6, 6)),
    "S2": ((36, 80, 150, 120), (5, 5, 6, 6)),
    "S3": ((40, 80, 160, 160), (6, 6, 6, 6)),
}


def cliquenet_imagenet(
    ks: Sequence[int] = (40, 80, 160, 160),
    Ls: Sequence[int] = (6, 6, 6, 6),
    A: bool = True,
    classes: int = 1000,
    naive: bool = False,
) -> CliqueNetRef:
    """ImageNet CliqueNet: bottleneck blocks at 56/28/14/7, compression on, no dropout.

    S3 (default ks/Ls) has 14,383,024 parameters with attention, 13,170,904 without.
    """
    return CliqueNetRef(
        ks,
        Ls,
        stem="imagenet",
        bottleneck=True,
        attention=A,
        compression=True,
        classes=classes,
        dropout=0.0,
        naive=naive,
    )
