"""Pretrained weights in: map another model's or checkpoint's tensors onto a spec-built module.

``load_weights(model, source)`` copies every parameter and persistent buffer of ``source`` (a
state_dict, an ``nn.Module``, or a ``.pt``/``.pth``/``.safetensors`` file) into ``model``. A tensor
is matched by name where the source has a layer of the same name and shapes; every other layer
(the tensors one module owns directly) is matched by structure: both sides' layers are listed in
the order they run (a torch.fx trace; a forward pass with hooks where tracing fails; a
checkpoint's own key order) and aligned on their shapes, then each pair is checked by layer kind
(a conv never receives a BN's weights). Everything is validated before anything is copied; the
returned :class:`WeightsReport` lists every tensor and how it was matched. Shared tensors are
matched once; a BN's ``num_batches_tracked`` counter follows its layer (kept where the source has
none). Re-factorings of the same weights (a grouped conv against split-apply-concat convs, fused
or split layers) are not converted.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.fx
from torch import nn

from archdsl.diagnostics import Diagnostic, UsageError

COUNTER = "num_batches_tracked"  # a BN's step counter: carried along, never decides a match
STATS = ("running_mean", "running_var")
ROLES = ("weight", "bias", *STATS)  # torch.nn's order of a layer's tensors
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "params")
SHOWN = 3  # unmatched keys named per side in an error


class WeightsError(UsageError):
    """Weights that cannot be loaded: the reason, and what to do."""

    def __init__(self, message: str, help: str | None = None):
        super().__init__(Diagnostic(message, help=help))


@dataclass
class Layer:
    """The tensors one module (or one state_dict key prefix) owns directly, in registration order."""

    path: str
    tensors: dict[str, torch.Tensor]
    kind: str | None = None  # the torch.nn class it is (`Conv`, `BatchNorm`, `Linear`), None if custom or unknown
    module: nn.Module | None = None

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def weights(self) -> list[tuple[str, torch.Tensor]]:
        """The tensors but the BN counter, in torch.nn's order (a safetensors file sorts its keys)."""
        return sorted(((n, t) for n, t in self.tensors.items() if n != COUNTER),
                      key=lambda item: ROLES.index(item[0]) if item[0] in ROLES else len(ROLES))

    def signature(self) -> tuple:
        """What structural matching compares: normalisation statistics or not, and the shapes in order
        up to trailing 1s (a 1x1 conv's [o, i, 1, 1] is a linear layer's [o, i], a layer scale's
        [c, 1, 1] is [c]; a 7x1 kernel stays apart from a 1x7 one)."""
        return any(n in STATS for n in self.tensors), tuple(_stripped(t.shape) for _, t in self.weights())

    def describe(self) -> str:
        shapes = ", ".join(f"{n} {list(t.shape)}" for n, t in self.weights())
        return f"'{self.path or '<root>'}' ({self.kind or 'layer'}: {shapes})"


def _stripped(shape) -> tuple[int, ...]:
    shape = tuple(shape)
    while len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


@dataclass(frozen=True)
class TensorMatch:
    """One target tensor and where its value came from."""

    target: str | None
    source: str | None
    how: str  # "name", "structure", "shared" (same tensor as `source`, a target key), "kept", "dropped"
    reshaped: tuple | None = None  # (source shape, target shape) where they differ by trailing 1s


@dataclass
class WeightsReport:
    """What :func:`load_weights` did, tensor by tensor; ``str(report)`` is a readable table."""

    source: str
    order: dict[str, str]  # side -> how its layer order was found
    matches: list[TensorMatch] = field(default_factory=list)
    unmatched_target: list[str] = field(default_factory=list)
    unmatched_source: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, how: str) -> int:
        return sum(m.how == how for m in self.matches)

    @property
    def complete(self) -> bool:
        return not (self.unmatched_target or self.unmatched_source)

    def summary(self) -> str:
        parts = [f"{self.count('name')} by name", f"{self.count('structure')} by structure"]
        parts += [f"{self.count(how)} {how}" for how in ("shared", "kept", "dropped") if self.count(how)]
        left = f"; unmatched: {len(self.unmatched_target)} target, {len(self.unmatched_source)} source" \
            if not self.complete else ""
        return f"loaded weights from {self.source}: {', '.join(parts)}{left}"

    def __str__(self) -> str:
        width = max([len(m.source or "-") for m in self.matches] + [6])
        lines = [self.summary(), *(f"note: {n}" for n in self.notes)]
        lines += [f"{m.source or '-':<{width}}  ->  {m.target or '-'}  ({m.how}"
                  + (f", reshaped {list(m.reshaped[0])} -> {list(m.reshaped[1])})" if m.reshaped else ")")
                  for m in self.matches]
        lines += [f"unmatched target: {k}" for k in self.unmatched_target]
        lines += [f"unmatched source: {k}" for k in self.unmatched_source]
        return "\n".join(lines)


def load_weights(model: nn.Module, source, *, strict: bool = True, example_inputs=None) -> WeightsReport:
    """Copy `source`'s weights into `model` and report how each tensor was matched.

    `source`: a state_dict, an ``nn.Module``, or a checkpoint path (``.pt``/``.pth`` read with
    ``torch.load(weights_only=True)``, ``.safetensors`` with the safetensors package). With
    `strict` (the default) every tensor on both sides must be matched, else nothing is copied and a
    :class:`WeightsError` names the first unmatched keys on both sides; with ``strict=False`` what
    matches is loaded and the rest is listed in the report. `example_inputs` (a tensor or tuple)
    is only needed when a module cannot be traced with torch.fx and was not built by archdsl.
    """
    if not isinstance(model, nn.Module):
        raise WeightsError(f"weights are loaded into an nn.Module, not a {type(model).__name__}",
                           help="build the module first: archdsl.build(spec, network)")
    notes: list[str] = []
    if isinstance(source, nn.Module):
        name = type(source).__name__
        inputs = example_inputs if example_inputs is not None else _inputs_of(model)
        source_layers, source_order = module_layers(source, inputs)
    else:
        state, name = _read_state(source, notes)
        source_layers, source_order = state_layers(state), "checkpoint key order"
    target_layers, target_order = module_layers(model, example_inputs if example_inputs is not None
                                                 else _inputs_of(model))
    report = WeightsReport(name, {"target": target_order, "source": source_order}, notes=notes)
    pairs = _match(target_layers, source_layers, report)
    copies = _tensor_pairs(pairs, report)
    _add_aliases(model_aliases(target_layers, model), report)
    report.unmatched_target = [layer.key(n) for layer in target_layers if layer.path not in pairs
                               for n, _ in layer.weights()]
    paired_sources = {id(s) for _, s, _ in pairs.values()}
    report.unmatched_source = [layer.key(n) for layer in source_layers if id(layer) not in paired_sources
                               for n, _ in layer.weights()]
    if strict and not report.complete:
        raise _leftover_error(target_layers, source_layers, pairs, paired_sources)
    with torch.no_grad():
        for target, value in copies:
            target.copy_(value.detach().reshape(target.shape))
    return report


# ---------------------------------------------------------------- layers of a module or a state_dict


def module_layers(module: nn.Module, example_inputs=None) -> tuple[list[Layer], str]:
    """The module's layers in the order they run, and how that order was found."""
    modules = dict(module.named_modules())
    owned = {path: _own_tensors(m) for path, m in modules.items()}
    order, how = _traced_order(module, modules)
    if order is None and example_inputs is not None:
        order, how = _hooked_order(module, modules, example_inputs, how)
    if order is None:
        order, how = [], "registration order (" + how + ")"
    ranked = list(dict.fromkeys([*order, *modules]))  # layers that never ran follow in registration order
    seen: set[int] = set()
    layers = []
    for path in ranked:
        tensors = {n: t for n, t in owned[path].items() if id(t) not in seen}
        seen.update(id(t) for t in tensors.values())
        if tensors:
            layers.append(Layer(path, tensors, _kind(modules[path]), modules[path]))
    return layers, how


def model_aliases(layers: list[Layer], module: nn.Module) -> dict[str, str]:
    """Target state_dict keys whose tensor is owned by another key's layer (shared weights): key -> owner key."""
    owner = {id(t): layer.key(n) for layer in layers for n, t in layer.tensors.items()}
    aliases = {}
    for path, m in module.named_modules(remove_duplicate=False):
        for name, t in _own_tensors(m).items():
            key = f"{path}.{name}" if path else name
            if id(t) in owner and owner[id(t)] != key:
                aliases[key] = owner[id(t)]
    return aliases


def state_layers(state: Mapping[str, torch.Tensor]) -> list[Layer]:
    """A state_dict's layers (keys grouped by prefix) in key order; tensors sharing storage count once."""
    layers: dict[str, Layer] = {}
    seen: set[tuple] = set()
    for key, tensor in state.items():
        identity = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
                    tensor.stride()) if tensor.numel() else None
        if identity is not None and identity in seen:
            continue
        seen.add(identity)
        path, _, name = key.rpartition(".")
        layers.setdefault(path, Layer(path, {})).tensors[name] = tensor
    return list(layers.values())


def _own_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and persistent buffers the module holds itself (what its state_dict keys name)."""
    tensors = {n: p for n, p in module._parameters.items() if p is not None}
    tensors.update((n, b) for n, b in module._buffers.items()
                   if b is not None and n not in module._non_persistent_buffers_set)
    return tensors


def _kind(module: nn.Module) -> str | None:
    """The torch.nn layer class a module is (or derives from), without its dimension: `Conv`, `BatchNorm`."""
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn.modules.") and cls is not nn.Module:
            name = re.sub(r"^(Lazy|Sync)|[123]d$", "", cls.__name__.lstrip("_"))
            return "BatchNorm" if name in ("BatchNorm", "NormBase") else name
    return None


class _LayerTracer(torch.fx.Tracer):
    """torch.nn layers and modules without children are leaves; everything else is traced through."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return super().is_leaf_module(m, qualname) or next(m.children(), None) is None


def _traced_order(module: nn.Module, modules: dict[str, nn.Module]) -> tuple[list[str] | None, str]:
    """Module paths in the order a torch.fx trace calls them, in training mode (auxiliary heads run)
    and else in eval mode; a leaf's submodules follow it in registration order."""
    modes = {m: m.training for m in modules.values()}
    problem = "not traceable"
    try:
        for training in (True, False):
            module.train(training)
            try:
                graph = _LayerTracer().trace(module)
            except Exception as exc:  # noqa: BLE001  (any tracing failure: fall back to another order)
                problem = f"torch.fx could not trace {type(module).__name__}: {type(exc).__name__}"
                continue
            # A tensor a module reads itself (ConvNeXt's layer scale, `self.layer_scale * self.block(x)`)
            # counts where it is first used, not where Python fetched it.
            position = {node: i for i, node in enumerate(graph.nodes)}
            runs = []
            for node in graph.nodes:
                if node.op == "call_module":
                    prefix = node.target + "."
                    runs += [(position[node], p) for p in [node.target, *(p for p in modules if p.startswith(prefix))]]
                elif node.op == "get_attr":
                    used = min((position[user] for user in node.users), default=position[node])
                    runs.append((used - 0.5, node.target.rpartition(".")[0]))
            order = [p for _, p in sorted(runs, key=lambda run: run[0])]
            return [p for p in order if p in modules], "torch.fx trace" + ("" if training else " (eval mode)")
        return None, problem
    finally:
        for m, training in modes.items():
            m.training = training


def _hooked_order(module: nn.Module, modules: dict[str, nn.Module], example_inputs,
                  problem: str) -> tuple[list[str] | None, str]:
    """Module paths in the order an eval-mode forward pass calls them (None if it fails)."""
    order: list[str] = []
    handles = [m.register_forward_pre_hook(lambda _m, _a, path=path: order.append(path))
               for path, m in modules.items()]
    modes = {m: m.training for m in modules.values()}
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    device = next((t.device for t in module.parameters()), torch.device("cpu"))
    try:
        module.eval()
        with torch.no_grad():
            module(*(x.to(device) for x in inputs))
    except Exception as exc:  # noqa: BLE001  (the source cannot run on the target's inputs)
        return None, f"{problem}; a forward pass failed: {type(exc).__name__}"
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes.items():
            m.training = training
    return order, "forward hooks"


def _inputs_of(model: nn.Module):
    """Example inputs (batch 1) for a module archdsl built; None for any other module."""
    shapes = getattr(type(model), "__archdsl_inputs__", None)
    return None if shapes is None else tuple(torch.randn(1, *shape) for shape in shapes)


# ---------------------------------------------------------------- reading checkpoints


def _read_state(source, notes: list[str]) -> tuple[dict[str, torch.Tensor], str]:
    """A state_dict (tensors only) from a mapping or a checkpoint file, and a name for the report."""
    if isinstance(source, Mapping):
        return _tensors_only(source, "the state_dict", notes), "a state_dict"
    if not isinstance(source, str | Path):
        raise WeightsError(f"cannot load weights from a {type(source).__name__}",
                           help="pass an nn.Module, a state_dict, or the path of a .pt, .pth or .safetensors file")
    path = Path(source)
    if not path.is_file():
        raise WeightsError(f"weights file '{path}' does not exist" if not path.exists()
                           else f"'{path}' is not a file", help="pass the path of a .pt, .pth or .safetensors file")
    if path.suffix == ".safetensors":
        state = _read_safetensors(path)
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001  (pickle, zip and torch errors alike)
            raise WeightsError(f"cannot read '{path}' as a PyTorch checkpoint: {str(exc).splitlines()[0]}",
                               help="save weights with torch.save(model.state_dict(), path); whole pickled "
                                    "modules cannot be read with weights_only=True") from None
    if not isinstance(state, Mapping):
        raise WeightsError(f"'{path}' holds a {type(state).__name__}, not a state_dict",
                           help="save weights with torch.save(model.state_dict(), path)")
    if not any(isinstance(v, torch.Tensor) for v in state.values()):
        nested = next((k for k in CHECKPOINT_KEYS if isinstance(state.get(k), Mapping)), None)
        if nested is None:
            raise WeightsError(f"'{path}' holds no tensors (keys: {', '.join(map(str, list(state)[:8]))})",
                               help=f"a training checkpoint's weights are looked for under {CHECKPOINT_KEYS}")
        notes.append(f"weights read from the checkpoint's '{nested}' entry")
        state = state[nested]
    return _tensors_only(state, f"'{path}'", notes), f"'{path}'"


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise WeightsError("reading .safetensors files needs the safetensors package",
                           help="pip install 'archdsl[safetensors]'") from None
    try:
        return load_file(str(path))
    except Exception as exc:  # noqa: BLE001  (the safetensors reader's errors)
        raise WeightsError(f"cannot read '{path}' as safetensors: {exc}") from None


def _tensors_only(state: Mapping, what: str, notes: list[str]) -> dict[str, torch.Tensor]:
    others = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if others:
        notes.append(f"{what}: entries that are not tensors ignored: {', '.join(others)}")
    return {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}


# ---------------------------------------------------------------- matching


def _compatible(target: Layer, source: Layer) -> bool:
    """Same shapes in order and, where both are torch.nn layers, the same kind of layer (a 1x1
    convolution and a linear layer count as one kind: the same weights, in other shapes)."""
    if target.signature() != source.signature():
        return False
    if target.kind and source.kind and target.kind != source.kind and {target.kind, source.kind} != {"Conv", "Linear"}:
        return False
    return all(t.is_floating_point() == s.is_floating_point()
               for (_, t), (_, s) in zip(target.weights(), source.weights(), strict=True))


def _match(targets: list[Layer], sources: list[Layer], report: WeightsReport) -> dict[str, tuple]:
    """Target layer path -> (target layer, source layer, how): first by equal names, then by
    aligning the remaining layers in running order on their shapes, repeated on what is left (a
    branch that runs earlier on one side than on the other, like an auxiliary head)."""
    pairs: dict[str, tuple] = {}
    by_path = {s.path: s for s in sources}
    for t in targets:
        s = by_path.get(t.path)
        if s is not None and {n for n, _ in t.weights()} == {n for n, _ in s.weights()} and _compatible(t, s):
            pairs[t.path] = (t, s, "name")
    used = {id(s) for _, s, _ in pairs.values()}
    left_t = [t for t in targets if t.path not in pairs]
    left_s = [s for s in sources if id(s) not in used]
    while left_t and left_s:
        matcher = difflib.SequenceMatcher(None, [t.signature() for t in left_t], [s.signature() for s in left_s],
                                          autojunk=False)
        found = False
        for i, j, size in matcher.get_matching_blocks():
            for t, s in zip(left_t[i:i + size], left_s[j:j + size], strict=True):
                if _compatible(t, s):
                    pairs[t.path] = (t, s, "structure")
                    found = True
        if not found:
            break
        used = {id(s) for _, s, _ in pairs.values()}
        left_t = [t for t in left_t if t.path not in pairs]
        left_s = [s for s in left_s if id(s) not in used]
    order = {t.path: i for i, t in enumerate(targets)}
    pairs = dict(sorted(pairs.items(), key=lambda item: order[item[0]]))
    for t, s, _ in pairs.values():
        report.notes.extend(_config_differences(t, s))
    return pairs


def _config_differences(target: Layer, source: Layer) -> list[str]:
    """Settings that make two layers with the same weights compute different things (a stride)."""
    notes = []
    for setting in ("stride", "dilation", "groups", "padding", "eps"):
        a, b = getattr(target.module, setting, None), getattr(source.module, setting, None)
        if a is not None and b is not None and a != b and not (setting == "padding" and "same" in (a, b)):
            notes.append(f"{target.path} has {setting} {a}, its source {source.path} has {b}")
    return notes


def _tensor_pairs(pairs: dict[str, tuple], report: WeightsReport) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Target tensor -> source tensor for each matched layer (by name within the layer, else in order)."""
    copies = []
    for t, s, how in pairs.values():
        t_weights, s_weights = t.weights(), s.weights()
        if {n for n, _ in t_weights} == {n for n, _ in s_weights}:
            s_weights = [(n, s.tensors[n]) for n, _ in t_weights]
        for (tn, tt), (sn, st) in zip(t_weights, s_weights, strict=True):
            copies.append((tt, st))
            reshaped = (tuple(st.shape), tuple(tt.shape)) if st.shape != tt.shape else None
            report.matches.append(TensorMatch(t.key(tn), s.key(sn), how, reshaped))
        if COUNTER in t.tensors and COUNTER in s.tensors:
            copies.append((t.tensors[COUNTER], s.tensors[COUNTER]))
            report.matches.append(TensorMatch(t.key(COUNTER), s.key(COUNTER), how))
        elif COUNTER in t.tensors:
            report.matches.append(TensorMatch(t.key(COUNTER), None, "kept"))
        elif COUNTER in s.tensors:
            report.matches.append(TensorMatch(None, s.key(COUNTER), "dropped"))
    return copies


def _add_aliases(aliases: dict[str, str], report: WeightsReport) -> None:
    report.matches.extend(TensorMatch(key, owner, "shared") for key, owner in aliases.items())


def _leftover_error(targets: list[Layer], sources: list[Layer], pairs: dict, paired: set[int]) -> WeightsError:
    """Name the first unmatched layers on both sides, with their shapes, and where the match stopped."""
    lost_t = [t for t in targets if t.path not in pairs]
    lost_s = [s for s in sources if id(s) not in paired]
    parts = []
    if lost_t:
        parts.append(f"{sum(len(t.weights()) for t in lost_t)} target tensors unmatched, first "
                     + "; ".join(_keys(t) for t in lost_t[:SHOWN]))
    if lost_s:
        parts.append(f"{sum(len(s.weights()) for s in lost_s)} source tensors unmatched, first "
                     + "; ".join(_keys(s) for s in lost_s[:SHOWN]))
    before = [path for path in pairs if lost_t and targets.index(pairs[path][0]) < targets.index(lost_t[0])]
    where = f" (the last match before the first unmatched target layer: '{before[-1]}' <- " \
            f"'{pairs[before[-1]][1].path}')" if before else ""
    return WeightsError(
        "the weights do not fit this network: " + "; ".join(parts) + where + "; nothing was loaded",
        help="check that the spec variant and its parameters (-D) describe the source network: layers are "
             "matched by name, else in running order by shape and layer kind. Re-factorings of the same "
             "weights (a grouped conv against split-apply-concat convs, as in ResNeXt's split form; fused "
             "or split layers) are not converted. strict=False loads what matches and lists the rest")


def _keys(layer: Layer) -> str:
    return ", ".join(f"{layer.key(n)} {list(t.shape)}" for n, t in layer.weights())
