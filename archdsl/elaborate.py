"""Elaboration: a network of a loaded Program, with parameter values, to the IR.

Runs the spec's statements: evaluates compile-time expressions, unrolls loops
and conditionals, instantiates blocks and connection constructs, names every
layer hierarchically, infers every tensor's shape as it goes (so a layer can
read ``in.channels``), and records every independent error with its location.
Connection constructs (residual, concat, dense, highway, groups, clique) live
in archdsl/constructs.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from archdsl import constructs
from archdsl.diagnostics import ArchError, Diagnostic, Span, UsageError, closest, did_you_mean, error
from archdsl.evaluate import POISON, Evaluator, TensorInfo, Unknown, format_shape, format_value
from archdsl.functions import Function
from archdsl.ir import Graph, node_facts, total_macs, total_params
from archdsl.loader import Namespace, Program
from archdsl.ops import OPS, OpError
from archdsl.ops.base import REQUIRED
from archdsl.scope import Env
from archdsl.syntax import ast

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass
class Instance:
    """A block instance or construct with several named outputs (`inst.feature`)."""

    name: str
    outputs: dict[str, TensorInfo]

    def attribute(self, name: str, span: Span):
        """`inst.out` is an output; any other attribute is read from the main (first) output."""
        if name in self.outputs:
            return self.outputs[name]
        return next(iter(self.outputs.values())).attribute(name, span)


class Naming:
    """Hierarchical layer names: one level per block instance or labelled construct."""

    def __init__(self, path: tuple = ()):
        self.path = path
        self.counts: dict[str, int] = {}
        self.used: set[str] = set()

    def auto(self, base: str) -> str:
        n = self.counts.get(base, 0)
        while True:
            n += 1
            if f"{base}{n}" not in self.used:
                break
        self.counts[base] = n
        self.used.add(f"{base}{n}")
        return f"{base}{n}"

    def claim(self, label: str, span: Span) -> str:
        if not IDENTIFIER.match(label):
            raise error(f"'{label}' is not a valid layer name", span,
                        "names are letters, digits and '_', starting with a letter (they become PyTorch attributes)")
        if label in self.used:
            raise error(f"the name '{label}' is already used in {'.'.join(self.path) or 'this network'}", span,
                        "give each layer and block in one scope its own name")
        self.used.add(label)
        return label

    def full(self, local: str) -> str:
        return ".".join(self.path + (local,))


@dataclass
class Frame:
    """The state of one body being executed: scope, naming, the flowing tensor, results."""

    env: Env
    naming: Naming
    stream: object = None  # TensorInfo, list[TensorInfo] or None
    outputs: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)
    branches: list | None = None  # collects branch results inside concat/sum bodies
    expects: list = field(default_factory=list)
    kind: str = "network"
    ns: Namespace | None = None  # the namespace step names resolve in: the file of the running definition


@dataclass(eq=False)
class ModuleRef:
    """The value of an import alias in expressions: `rn.widths` reads the imported file's `let`s and `def`s."""

    alias: str
    namespace: Namespace
    elab: Elaborator

    def __str__(self) -> str:
        return f"the import '{self.alias}'"

    def attribute(self, name: str, span: Span):
        env = self.elab.global_env_of(self.namespace)
        if name in env.values:
            if env.values[name] is POISON:
                raise Unknown()
            return env.values[name]
        ns = self.namespace
        kind = "block" if name in ns.blocks else "network" if name in ns.networks else None
        if kind:
            raise error(f"'{self.alias}.{name}' is a {kind}, not a value", span,
                        f"use it as a step: {self.alias}.{name}(...)")
        known = set(env.values) | set(ns.blocks) | set(ns.networks)
        raise error(f"'{self.alias}' ({ns.file}) has no '{name}'", span,
                    did_you_mean(name, known) or "it defines: " + ", ".join(sorted(known)))


class Elaborator:
    """Builds the IR of one network; collects all independent errors."""

    def __init__(self, program: Program):
        self.program = program
        self.g = Graph()
        self.diagnostics: list[Diagnostic] = []
        self.order = 0
        self.scopes: dict[str, dict] = {}
        self.depth = 0
        self._globals_cache: dict[int, Env] = {}
        self.source_names: dict[str, str] = {}  # tensor node -> the name it was written as, in `[a, b] -> op`
        self.instances: dict[str, Instance] = {}  # main output node -> multi-output instance

    # ------------------------------------------------------------ entry point

    def build(self, target: str, overrides: dict | None = None) -> Graph:
        network, values, expects, ns = self._resolve_target(target, overrides or {})
        frame = Frame(env=Env(values, parent=self.global_env_of(ns)), naming=Naming(), ns=ns)
        self.g.graph.update(network=target, definition=network.name, file=self.program.main,
                            params=_plain(values), inputs=[], outputs={})
        self.run_body(network.body, frame)
        if not frame.outputs and isinstance(frame.stream, TensorInfo) and frame.stream is not POISON:
            frame.outputs["output"] = frame.stream
        if not frame.outputs and not self.diagnostics:
            self.report(Diagnostic(f"network '{network.name}' has no output", network.span,
                                   "end the network with a chain, or declare 'output NAME = ...'"))
        self.g.graph["inputs"] = [t.node for t in frame.inputs]
        self.g.graph["outputs"] = {k: t.node for k, t in frame.outputs.items() if t is not POISON}
        self.g.graph["scopes"] = self.scopes
        if self.diagnostics:  # one report per mistake, though a block with it may be used many times
            raise ArchError(list(dict.fromkeys(self.diagnostics)), self.program.sources)
        self.g.graph["checks"] = self._run_expects(frame, frame.expects + expects)
        return self.g

    def global_env_of(self, ns: Namespace) -> Env:
        """A namespace's top-level scope: its import aliases, `def` functions and `let` constants (evaluated once)."""
        env = self._globals_cache.get(id(ns))
        if env is None:
            env = self._globals_cache[id(ns)] = Env()
            for alias, module in ns.modules.items():
                env.values[alias] = ModuleRef(alias, module, self)
            for name, definition in ns.functions.items():
                env.values[name] = Function(definition, env)
            for name, let in ns.constants.items():
                try:
                    env.values[name] = Evaluator(env.lookup)(let.value)
                except ArchError as exc:
                    self.diagnostics.extend(exc.diagnostics)
                    env.values[name] = POISON
                except Unknown:
                    env.values[name] = POISON
        return env

    def _resolve_target(self, target: str, overrides: dict):
        program = self.program
        expects: list = []
        given: dict = {}
        ns: Namespace = program
        if target in program.variants:
            variant = program.variants[target]
            found = program.resolve(variant.target)
            network = found[0].networks.get(found[1]) if found else None
            if network is None:
                known = list(program.networks) + [f"{a}.{n}" for a, m in program.modules.items() for n in m.networks]
                raise ArchError(Diagnostic(f"variant '{target}' refers to unknown network '{variant.target}'",
                                           variant.span, did_you_mean(variant.target, known)),
                                program.sources)
            ns = found[0]
            evaluate = Evaluator(self.global_env.lookup)
            given = self._bind_params(network, [evaluate(a) for a in variant.args],
                                      {k: (evaluate(v), v.span) for k, v in variant.kwargs}, variant.span, ns=ns)
            for stmt in variant.body:
                if not isinstance(stmt, ast.Expect):
                    raise ArchError(Diagnostic("a variant body may only hold 'expect' statements", stmt.span),
                                    program.sources)
                expects.append((stmt, None))
        elif target in program.networks:
            network = program.networks[target]
        else:
            known = list(program.networks) + list(program.variants)
            raise UsageError(Diagnostic(f"no network or variant named '{target}' in {program.main}",
                                       help=did_you_mean(target, known) or "known: " + ", ".join(known)))
        unknown = [k for k in overrides if k not in {p.name for p in network.params}]
        if unknown:
            names = [p.name for p in network.params]
            raise UsageError(Diagnostic(f"network '{network.name}' has no parameter '{unknown[0]}'",
                                       help=did_you_mean(unknown[0], names) or "parameters: " + ", ".join(names)))
        missing = [p.name for p in network.params if p.default is None and p.name not in given | overrides]
        if missing and target not in program.variants:
            raise UsageError(Diagnostic(f"network '{network.name}' needs a value for '{missing[0]}'", network.span,
                                        f"pass -D {missing[0]}=... (in Python: build_ir(..., {missing[0]}=...))"),
                             program.sources)
        values = self._bind_params(network, [], {}, network.span, given | overrides, ns=ns)
        if expects and overrides and values != self._bind_params(network, [], {}, network.span, given, ns=ns):
            expects = []  # a variant's figures belong to its own parameters, not to overridden ones
        return network, values, expects, ns

    def _bind_params(self, definition, positional: list, keywords: dict, span: Span, preset: dict | None = None,
                     ns: Namespace | None = None):
        """Parameter values of a block or network call: positional, keyword, then defaults."""
        params = definition.params
        if len(positional) > len(params):
            raise error(f"'{definition.name}' takes {len(params)} arguments, found {len(positional)}", span)
        values = dict(preset or {})
        for param, value in zip(params, positional):
            values[param.name] = value
        names = {p.name for p in params}
        for key, (value, kspan) in keywords.items():
            kspan = getattr(key, "span", None) or kspan
            if key not in names:
                raise error(f"'{definition.name}' has no parameter '{key}'", kspan,
                            did_you_mean(key, names) or "parameters: " + ", ".join(p.name for p in params))
            if key in values and key not in (preset or {}):
                raise error(f"parameter '{key}' is given twice", kspan)
            values[key] = value
        env = Env(parent=self.global_env_of(ns or self.program))
        for param in params:
            if param.name not in values:
                if param.default is None:
                    raise error(f"'{definition.name}' needs a value for '{param.name}'", span,
                                f"pass {param.name}=... (on the command line: -D {param.name}=...)")
                values[param.name] = Evaluator(env.lookup)(param.default)
            env.values[param.name] = values[param.name]
        return {p.name: values[p.name] for p in params}

    # ------------------------------------------------------------ statements

    def report(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)

    def run_body(self, body, frame: Frame) -> None:
        for stmt in body:
            try:
                self.run_stmt(stmt, frame)
            except ArchError as exc:
                self.diagnostics.extend(exc.diagnostics)
                self._poison(stmt, frame)
            except Unknown:
                self._poison(stmt, frame)

    def _poison(self, stmt, frame: Frame) -> None:
        """After a failed statement, mark what it would have named so that later uses stay quiet."""
        frame.stream = POISON
        if isinstance(stmt, (ast.Assign, ast.Output, ast.Let)):
            frame.env.values[stmt.name] = POISON
        if isinstance(stmt, ast.Unpack):
            frame.env.values.update(dict.fromkeys(stmt.names, POISON))
        chain = getattr(stmt, "chain", None)
        for step in (chain.steps if chain else ()):
            label = getattr(step, "label", None)
            if isinstance(label, ast.Str) and len(label.parts) == 1 and isinstance(label.parts[0], str):
                frame.env.values.setdefault(label.parts[0], POISON)

    def evaluate(self, expr, frame: Frame, incoming: TensorInfo | None = None):
        value = Evaluator(frame.env.lookup, incoming)(expr)
        if value is POISON:
            raise Unknown()
        return value

    def run_stmt(self, stmt, frame: Frame) -> None:
        kind = type(stmt)
        if kind is ast.ChainStmt:
            frame.stream = self.run_chain(stmt.chain, frame)
        elif kind is ast.Assign:
            frame.stream = self.run_chain(stmt.chain, frame)
            # a step with several outputs binds the instance: `b = clique(...)`, then `b.feature`
            value = self.instances.get(frame.stream.node, frame.stream) if isinstance(frame.stream, TensorInfo) \
                else frame.stream
            self._bind(frame, stmt.name, value, stmt.span)
        elif kind is ast.Unpack:
            self._unpack(stmt, frame)
        elif kind is ast.Let:
            frame.env.values[stmt.name] = self.evaluate(stmt.value, frame)
        elif kind is ast.Input:
            self._inputs(stmt, frame)
        elif kind is ast.Output:
            result = self.run_chain(stmt.chain, frame) if stmt.chain else frame.stream
            if not isinstance(result, TensorInfo):
                raise error(f"output '{stmt.name}' has no tensor", stmt.span, "write 'output NAME = chain'")
            if stmt.name in frame.outputs:
                raise error(f"output '{stmt.name}' is declared twice", stmt.span)
            frame.outputs[stmt.name] = result
            frame.stream = result
            self._bind(frame, stmt.name, result, stmt.span)
        elif kind is ast.For:
            self._for(stmt, frame)
        elif kind is ast.If:
            for cond, body in stmt.branches:
                if self.evaluate(cond, frame):
                    self.run_body(body, frame)
                    break
            else:
                if stmt.orelse:
                    self.run_body(stmt.orelse, frame)
        elif kind is ast.Repeat:
            count = self.evaluate(stmt.count, frame)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise error(f"repeat needs a count >= 0, found {format_value(count)}", stmt.count.span)
            for _ in range(count):
                self.run_body(stmt.body, frame)
        elif kind is ast.Group:
            label = self._label(stmt.label, frame)
            inner = Naming(frame.naming.path + (frame.naming.claim(label, stmt.label.span),))
            self.record_scope(inner.path, "group", label, {}, stmt.span)
            saved = frame.naming
            frame.naming = inner
            try:
                self.run_body(stmt.body, frame)
            finally:
                frame.naming = saved
        elif kind is ast.Branch:
            if frame.branches is None:
                raise error("'branch' is only allowed directly inside concat { } or sum { }", stmt.span)
            frame.branches.append(constructs.run_branch(self, stmt, frame))
        elif kind is ast.Expect:
            frame.expects.append((stmt, frame.env))

    def _unpack(self, stmt: ast.Unpack, frame: Frame) -> None:
        """`a, b = chain`: bind the outputs of the chain's last step, in order."""
        result = self.run_chain(stmt.chain, frame)
        instance = self.instances.get(result.node) if isinstance(result, TensorInfo) else None
        outputs = list(instance.outputs.values()) if instance else [result]
        if len(outputs) != len(stmt.names):
            last = stmt.chain.steps[-1] if stmt.chain.steps else None
            what = f"'{last.name}'" if isinstance(last, ast.Step) else "the chain"
            raise error(f"{what} gives {len(outputs)} output{'s' if len(outputs) != 1 else ''}, "
                        f"but {len(stmt.names)} names are given", stmt.chain.span,
                        "split(n) or a block with several 'output's gives several tensors; write one name per output")
        frame.stream = outputs[0]
        for name, tensor in zip(stmt.names, outputs):
            self._bind(frame, name, tensor, stmt.span)

    def _bind(self, frame: Frame, name: str, value, span: Span | None = None) -> None:
        if span is not None and (name in OPS or name in frame.ns.blocks or name in constructs.CONSTRUCTS):
            raise error(f"the tensor name '{name}' hides the {'op' if name in OPS else 'block'} '{name}'", span,
                        "choose another name for the tensor")
        frame.env.values[name] = value

    def _inputs(self, stmt: ast.Input, frame: Frame) -> None:
        for decl in stmt.decls:
            if frame.kind == "block":
                if decl.shape is not None:
                    raise error("block inputs take their shapes from the caller", decl.shape.span,
                                "write 'input NAME' without a shape")
                frame.inputs.append(decl)
                continue
            if decl.shape is None:
                raise error(f"network input '{decl.name}' needs a shape", decl.span,
                            f"write 'input {decl.name}: [C, H, W]'")
            shape = self.evaluate(decl.shape, frame)
            if (not isinstance(shape, list) or not 1 <= len(shape) <= 4
                    or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
                raise error(f"an input shape is a list of 1 to 4 positive ints, found {format_value(shape)}",
                            decl.shape.span, "e.g. [3, 224, 224] for an image; the batch axis is implicit")
            name = frame.naming.claim(decl.name, decl.span)
            tensor = self.add_node(name, "input", {}, [], decl.span, tuple(shape), 0, 0)
            frame.inputs.append(tensor)
            self._bind(frame, decl.name, tensor, decl.span)
            frame.stream = tensor

    def _for(self, stmt: ast.For, frame: Frame) -> None:
        items = self.evaluate(stmt.iterable, frame)
        if not isinstance(items, list):
            raise error(f"for needs a list or range, found {format_value(items)}", stmt.iterable.span)
        for item in items:
            if len(stmt.names) == 1:
                _unpack_value(stmt.names[0], item, frame.env, stmt.iterable.span)
            else:
                if not isinstance(item, list) or len(item) != len(stmt.names):
                    raise error(f"cannot unpack {format_value(item)} into {len(stmt.names)} names",
                                stmt.iterable.span)
                for target, value in zip(stmt.names, item):
                    _unpack_value(target, value, frame.env, stmt.iterable.span)
            self.run_body(stmt.body, frame)

    # ------------------------------------------------------------ chains and steps

    def run_chain(self, chain: ast.Chain, frame: Frame):
        steps = [self._qualified(s, frame) for s in chain.steps]
        if chain.sources is not None:
            stream = [self.resolve_ref(r, frame) for r in chain.sources]
            self.source_names = {t.node: ".".join(r.path) for t, r in zip(stream, chain.sources)}
        elif steps and isinstance(steps[0], ast.Ref):
            stream = self.resolve_ref(steps.pop(0), frame)
        elif steps and self._is_tensor_name(steps[0], frame):
            first = steps.pop(0)
            value = frame.env.lookup(first.name)
            if isinstance(value, list):  # `let feats = [a, b]` then `feats -> concat`
                if POISON in value:
                    raise Unknown()
                stream = list(value)
            else:
                stream = self.resolve_ref(ast.Ref(first.span, (first.name,)), frame)
        else:
            stream = frame.stream
            if len(steps) > 1 and self._is_unknown_name(steps[0], frame):
                raise self._unknown_tensor(steps[0].name, steps[0].span, frame)
        try:
            for index, step in enumerate(steps):
                stream = self.apply(step, stream, frame)
                if index == 0:
                    self.source_names = {}
        finally:
            self.source_names = {}
        return stream

    def _qualified(self, step, frame: Frame):
        """`rn.basic` without arguments parses as a tensor path; when `rn` is an import it is a block step."""
        if isinstance(step, ast.Ref) and step.path[0] in frame.ns.modules:
            return ast.Step(step.span, ".".join(step.path))
        return step

    def _is_unknown_name(self, step, frame: Frame) -> bool:
        """A bare word that names no op, block or construct, nor resembles one (`y -> relu`, y undefined)."""
        if not isinstance(step, ast.Step) or step.called or step.body is not None or step.label is not None:
            return False
        known = self._step_names(frame)
        if step.name in known:
            return False
        return closest(step.name, known) is None or closest(step.name, known | self._tensor_names(frame)) not in known

    def _step_names(self, frame: Frame) -> set[str]:
        ns = frame.ns
        qualified = {f"{alias}.{name}" for alias, module in ns.modules.items() for name in module.blocks}
        return set(OPS) | set(ns.blocks) | set(constructs.CONSTRUCTS) | qualified

    def _tensor_names(self, frame: Frame) -> set[str]:
        return {n for n in frame.env.names() if isinstance(frame.env.lookup(n), (TensorInfo, Instance))}

    def _unknown_tensor(self, name: str, span: Span, frame: Frame) -> ArchError:
        return error(f"unknown tensor '{name}'", span, did_you_mean(name, self._tensor_names(frame))
                     or f"name a tensor with '{name} = ...' or 'input {name}' before using it")

    def find_block(self, name: str, frame: Frame) -> tuple[ast.BlockDef, Namespace] | None:
        """The block a step name (`basic`, `rn.basic`) refers to in the frame's namespace, with its own namespace."""
        found = frame.ns.resolve(name)
        if found is None or found[1] not in found[0].blocks:
            return None
        return found[0].blocks[found[1]], found[0]

    def _is_tensor_name(self, step, frame: Frame) -> bool:
        if not isinstance(step, ast.Step) or step.called or step.body is not None or step.label is not None:
            return False
        try:
            value = frame.env.lookup(step.name)
        except KeyError:
            return False
        if isinstance(value, list):
            return bool(value) and all(isinstance(v, TensorInfo) for v in value)
        return isinstance(value, (TensorInfo, Instance))

    def resolve_ref(self, ref: ast.Ref, frame: Frame) -> TensorInfo:
        head, *rest = ref.path
        try:
            value = frame.env.lookup(head)
        except KeyError:
            raise self._unknown_tensor(head, ref.span, frame) from None
        if value is POISON:
            raise Unknown()
        for part in rest:
            if not isinstance(value, Instance):
                raise error(f"'{head}' has no outputs to select", ref.span)
            if part not in value.outputs:
                raise error(f"'{value.name}' has no output '{part}'", ref.span,
                            did_you_mean(part, value.outputs) or "outputs: " + ", ".join(value.outputs))
            value = value.outputs[part]
        if isinstance(value, Instance):
            value = next(iter(value.outputs.values()))
        if not isinstance(value, TensorInfo):
            raise error(f"'{'.'.join(ref.path)}' is a {format_value(value)}, not a tensor", ref.span)
        if value is POISON:
            raise Unknown()
        return value

    def apply(self, step, stream, frame: Frame):
        """Apply one step (op, block instance or construct) to the flowing tensor(s)."""
        if isinstance(step, ast.Ref):
            raise error(f"'{'.'.join(step.path)}' is a tensor; it can only start a chain", step.span,
                        "to merge tensors write [a, b] -> op")
        if isinstance(step, ast.SubChain):
            return self._sub_chain(step, stream, frame)
        construct = constructs.CONSTRUCTS.get(step.name)
        if construct is not None and step.body is None and construct.op:
            construct = None  # `[a, b] -> concat`: the op, not the construct
        if construct is None and self.find_block(step.name, frame) is None and step.name not in OPS:
            raise self._unknown_step(step, frame)
        result = self._apply_known(step, stream, frame, construct)
        if step.label is not None and isinstance(result, TensorInfo):
            self._bind_label(self._label(step.label, frame), result, frame)
        return result

    def _unknown_step(self, step: ast.Step, frame: Frame) -> ArchError:
        if self._is_tensor_name(step, frame):
            return error(f"'{step.name}' is a tensor; it can only start a chain", step.span,
                         f"write '{step.name} -> ...' as a new chain, or [a, {step.name}] -> op to merge")
        if "." in step.name:
            head = step.name.split(".")[0]
            if frame.ns.resolve(step.name) is None:
                return error(f"'{head}' is not an imported file", step.span,
                             f"import one as '{head}': import \"FILE.arch\" as {head}")
            return error(f"unknown block '{step.name}'", step.span,
                         did_you_mean(step.name, self._step_names(frame)) or f"'{head}' defines no such block")
        known = self._step_names(frame)
        guess = closest(step.name, known | self._tensor_names(frame))
        hint = f"did you mean '{guess}'?" if guess in known else \
            f"did you mean the tensor '{guess}'? A tensor starts a chain: {guess} -> ..." if guess else None
        return error(f"unknown op '{step.name}'", step.span,
                     hint or "see docs/language.md for the ops; or define a block")

    def _sub_chain(self, step: ast.SubChain, stream, frame: Frame):
        """`(a -> b -> c) as name`: the chain's layers in one naming level `name`; the label names its result."""
        saved = frame.naming
        label = None
        if step.label is not None:
            label = self._label(step.label, frame)
            frame.naming = Naming(saved.path + (saved.claim(label, step.label.span),))
            self.record_scope(frame.naming.path, "group", label, {}, step.span)
        frame.stream = stream
        try:
            result = self.run_chain(step.chain, frame)
        finally:
            frame.naming = saved
        if label is not None and isinstance(result, TensorInfo):
            self._bind_label(label, result, frame)
        return result

    def _bind_label(self, label: str, tensor: TensorInfo, frame: Frame) -> None:
        """`step as name` also names the step's result, unless that would hide an op or block."""
        if label in self._step_names(frame) or isinstance(frame.env.values.get(label), Instance):
            return  # a multi-output instance keeps its outputs under its label
        frame.env.values[label] = self.instances.get(tensor.node, tensor)

    def _apply_known(self, step: ast.Step, stream, frame: Frame, construct):
        if stream is POISON or (isinstance(stream, list) and POISON in stream):
            if construct is None and step.name in OPS and step.body is None:  # argument mistakes are independent
                check_keywords(OPS[step.name], [k for k, _ in step.kwargs], step.span)
                positional, keywords = self.step_args(step, frame, POISON)
                bind_op_args(OPS[step.name], positional, keywords, step.span)
            raise Unknown()
        if stream is None:
            raise error(f"'{step.name}' has no input", step.span,
                        "declare 'input NAME: [C, H, W]' first, or start the chain from a named tensor")
        if construct is not None:
            return construct.run(self, step, stream, frame)
        if step.body is not None:
            raise error(f"'{step.name}' does not take a body", step.span,
                        "bodies belong to constructs: " + ", ".join(c for c in constructs.CONSTRUCTS))
        found = self.find_block(step.name, frame)
        if found is not None:
            return self.instantiate(found[0], step, stream, frame, found[1])
        return self.op_step(step, stream, frame)

    def op_step(self, step: ast.Step, stream, frame: Frame) -> TensorInfo:
        inputs = stream if isinstance(stream, list) else [stream]
        incoming = inputs[0]
        values = self.step_args(step, frame, incoming)
        if step.label is not None:
            local = frame.naming.claim(self._label(step.label, frame), step.label.span)
            return self.make(step.name, values, inputs, step, frame.naming, local, claimed=True)
        return self.make(step.name, values, inputs, step, frame.naming)

    def step_args(self, step: ast.Step, frame: Frame, incoming: TensorInfo | None):
        positional = [(self.evaluate(a, frame, incoming), a.span) for a in step.args]
        keywords = {k: (self.evaluate(v, frame, incoming), v.span) for k, v in step.kwargs}
        return positional, keywords

    def make(self, op: str, values, inputs: list[TensorInfo], step, naming: Naming, local: str | None = None,
             claimed: bool = False) -> TensorInfo:
        """Create one op node: bind and check its arguments, infer its shape, count it.

        `values` is (positional, keywords) from a step, or a dict from a construct; `local` is the
        layer's name (already claimed when `claimed`), else the op name numbered in its scope.
        """
        definition = OPS[op]
        positional, keywords = values if isinstance(values, tuple) else ([], {k: (v, None) for k, v in values.items()})
        args = bind_op_args(definition, positional, keywords, step.span)
        low, high = definition.arity
        if not low <= len(inputs) <= (high if high is not None else len(inputs)):
            want = f"{low}" if low == high else f"{low} or more" if high is None else f"{low} to {high}"
            raise error(f"'{op}' takes {want} inputs, found {len(inputs)}", step.span,
                        f"merge tensors with [a, b] -> {op}" if low > 1 else "use a single tensor")
        shapes = [t.shape for t in inputs]
        if any(s is None for s in shapes):
            raise Unknown()
        try:
            several = definition.outputs(args, shapes)
            if several is None:
                shape, params, macs = node_facts(op, args, shapes)
        except OpError as exc:
            span = _arg_span(exc.arg, definition, positional, keywords) or step.span
            raise ArchError(Diagnostic(self._named_mismatch(op, exc, inputs), span, exc.help)) from None
        if local is None:
            name = naming.auto(op)
        else:
            name = local if claimed else constructs.fresh(naming, local)
        if several is not None:
            return self._several_outputs(op, args, inputs, step, naming, name, len(several))
        return self.add_node(naming.full(name), op, args, inputs, step.span, shape, params, macs)

    def _several_outputs(self, op: str, args: dict, inputs: list, step, naming: Naming, name: str, count: int):
        """An op with several outputs: one node per output (`NAME_1`, `NAME_2`, ...), bound together as an
        instance whose outputs are `part1`, `part2`, ...; returns the first."""
        outputs = {}
        for index in range(count):
            local = constructs.fresh(naming, f"{name}_{index + 1}")
            shape, params, macs = node_facts(op, {**args, "index": index}, [t.shape for t in inputs])
            outputs[f"part{index + 1}"] = self.add_node(naming.full(local), op, {**args, "index": index}, inputs,
                                                        step.span, shape, params, macs)
        first = next(iter(outputs.values()))
        self.instances[first.node] = Instance(naming.full(name), outputs)
        return first

    def _named_mismatch(self, op: str, exc: OpError, inputs: list[TensorInfo]) -> str:
        """`add: 'b' is [16, 7, 7] but 'a' is [32, 7, 7]` when the disagreeing inputs were written by name."""
        if exc.inputs is None:
            return exc.message
        names = [self.source_names.get(t.node) for t in inputs]
        i, j = exc.inputs
        if not (names[i] and names[j]) or names[i] == names[j]:
            return exc.message
        return f"{op}: '{names[i]}' is {format_shape(inputs[i].shape)} but '{names[j]}' is {format_shape(inputs[j].shape)}"

    def add_node(self, name, op, args, inputs, span, shape, params, macs, kinds=None) -> TensorInfo:
        self.order += 1
        self.g.add_node(name, op=op, args=_plain(args), span=span, shape=shape, params=params, macs=macs,
                        order=self.order)
        for port, tensor in enumerate(inputs):
            self.g.add_edge(tensor.node, name, key=port, port=port, kind="data")
        return TensorInfo(name, shape)

    def record_scope(self, path: tuple, kind: str, definition: str, args: dict, span: Span) -> None:
        self.scopes[".".join(path)] = {"kind": kind, "definition": definition, "args": _plain(args), "span": span}

    def _label(self, label, frame: Frame) -> str:
        value = self.evaluate(label, frame)
        if not isinstance(value, str):
            raise error(f"a name must be a string, found {format_value(value)}", label.span)
        return value

    # ------------------------------------------------------------ blocks

    def instantiate(self, block: ast.BlockDef, step: ast.Step, stream, frame: Frame, ns: Namespace):
        """Run a block's body (in the namespace `ns` of its file) in a new scope and naming level; returns its
        main output."""
        inputs = stream if isinstance(stream, list) else [stream]
        positional, keywords = self.step_args(step, frame, inputs[0])
        values = self._bind_params(block, [v for v, _ in positional], dict(keywords), step.span, ns=ns)
        local = self._label(step.label, frame) if step.label is not None else None
        name = frame.naming.claim(local, step.label.span) if local else frame.naming.auto(block.name)
        naming = Naming(frame.naming.path + (name,))
        self.record_scope(naming.path, "block", ns.qualify(block.name), values, step.span)
        inner = Frame(env=Env(values, parent=self.global_env_of(ns)), naming=naming, stream=inputs[0], kind="block",
                      ns=ns)
        self.depth += 1
        if self.depth > 64:
            raise error(f"block '{block.name}' is nested more than 64 deep", step.span,
                        "a block probably instantiates itself")
        try:
            self._bind_block_inputs(block, inner, inputs, step)
            self.run_body(block.body, inner)
        finally:
            self.depth -= 1
        outputs = inner.outputs or ({"output": inner.stream} if isinstance(inner.stream, TensorInfo) else {})
        for stmt_expect in inner.expects:
            frame.expects.append(stmt_expect)
        if not outputs:
            raise error(f"block '{block.name}' produced no tensor", step.span)
        main = next(iter(outputs.values()))
        self.scopes[".".join(naming.path)]["outputs"] = {k: t.node for k, t in outputs.items() if t is not POISON}
        if len(outputs) > 1:
            frame.env.values[name] = self.instances[main.node] = Instance(".".join(naming.path), outputs)
        if main is POISON:
            raise Unknown()
        return main

    @property
    def global_env(self) -> Env:
        """The main file's top-level scope."""
        return self.global_env_of(self.program)

    def _bind_block_inputs(self, block, inner: Frame, inputs: list, step) -> None:
        declared = [d for s in block.body if isinstance(s, ast.Input) for d in s.decls]
        if declared:
            if len(declared) != len(inputs):
                names = ", ".join(d.name for d in declared)
                raise error(f"block '{block.name}' takes {len(declared)} inputs ({names}), found {len(inputs)}",
                            step.span, f"write [{names}] -> {block.name}(...)")
            for decl, tensor in zip(declared, inputs):
                inner.env.values[decl.name] = tensor
        elif len(inputs) != 1:
            raise error(f"block '{block.name}' takes one input, found {len(inputs)}", step.span,
                        "declare its inputs inside the block: 'input a, b'")

    # ------------------------------------------------------------ expectations

    def _run_expects(self, frame: Frame, expects: list) -> list[dict]:
        params, macs = total_params(self.g), total_macs(self.g)
        results, failures = [], []
        for stmt, env in expects:
            scope = Env({"params": params, "macs": macs, "flops": 2 * macs}, parent=env or frame.env)
            text = _source_text(self.program.sources, stmt.span)
            try:
                ok, detail = self._check(stmt, scope)
            except ArchError as exc:
                failures.extend(exc.diagnostics)
                continue
            results.append({"expect": text, "ok": ok, "detail": detail, "span": stmt.span})
            if not ok:
                failures.append(Diagnostic(f"expectation failed: {text}: {detail}", stmt.span,
                                           "the network no longer matches the figure the spec states"))
        if failures:
            raise ArchError(failures, self.program.sources)
        return results

    def _check(self, stmt: ast.Expect, env: Env) -> tuple[bool, str]:
        evaluate = Evaluator(env.lookup)
        test = stmt.test
        if isinstance(test, ast.BinOp) and test.op == "==":
            left, right = evaluate(test.left), evaluate(test.right)
            if stmt.tolerance is not None:
                tolerance = evaluate(stmt.tolerance)
                bound = abs(right) * tolerance / 100 if stmt.percent else tolerance
                ok = abs(left - right) <= bound
                return ok, f"got {_num(left)}, {'within' if ok else 'outside'} {_num(bound)} of {_num(right)}"
            return left == right, f"got {_num(left)}" + (f" (off by {_num(left - right)})" if _is_number(left)
                                                          and _is_number(right) and left != right else "")
        if stmt.tolerance is not None:
            raise error("'within' needs an '==' comparison", stmt.span)
        value = evaluate(test)
        return bool(value), "true" if value else "false"


def _unpack_value(target, value, env: Env, span: Span) -> None:
    """Bind a loop target: a name, or a nested list of names (`[c, n]`) matched against a list."""
    if isinstance(target, str):
        env.values[target] = value
        return
    if not isinstance(value, list) or len(value) != len(target):
        raise error(f"cannot unpack {format_value(value)} into {_target_text(target)}", span)
    for part, item in zip(target, value):
        _unpack_value(part, item, env, span)


def _target_text(target) -> str:
    return target if isinstance(target, str) else "[" + ", ".join(_target_text(t) for t in target) + "]"


# ---------------------------------------------------------------- argument binding


def bind_op_args(definition, positional: list, keywords: dict, span: Span) -> dict:
    """Match call arguments to an op's declared arguments, checking kinds."""
    spec = definition.args
    if len(positional) > len(spec):
        extra = positional[len(spec)]
        raise error(f"'{definition.name}' takes at most {len(spec)} arguments, found {len(positional)}",
                    extra[1] or span, _signature(definition))
    values: dict = {}
    for arg, (value, vspan) in zip(spec, positional):
        values[arg.name] = (value, vspan)
    check_keywords(definition, keywords, span)
    for key, (value, vspan) in keywords.items():
        if key in values:
            raise error(f"argument '{key}' is given twice", getattr(key, "span", None) or vspan or span)
        values[key] = (value, vspan)
    result: dict = {}
    for arg in spec:
        if arg.name in values:
            value, vspan = values[arg.name]
            result[arg.name] = _check_kind(definition.name, arg, value, vspan or span)
        elif arg.default is REQUIRED:
            raise error(f"'{definition.name}' needs the argument '{arg.name}'", span, _signature(definition))
        elif isinstance(arg.default, str) and arg.default.startswith("="):
            result[arg.name] = result[arg.default[1:]]
        else:
            result[arg.name] = arg.default
    return result


def check_keywords(definition, keywords, span: Span) -> None:
    """Every keyword argument names an argument of the op or construct."""
    names = {a.name for a in definition.args}
    for key in keywords:
        if key not in names:
            raise error(f"'{definition.name}' has no argument '{key}'", getattr(key, "span", None) or span,
                        did_you_mean(key, names) or _signature(definition))


def _signature(definition) -> str:
    """`conv(out, kernel, stride=1, ...)`: the op's arguments, for help lines."""
    return f"{definition.name}(" + ", ".join(a.name if a.default is REQUIRED else f"{a.name}={_default(a)}"
                                             for a in definition.args) + ")"


def _default(arg) -> str:
    if isinstance(arg.default, str):
        return arg.default[1:] if arg.default.startswith("=") else f'"{arg.default}"'
    return format_value(arg.default)


def _check_kind(op: str, arg, value, span: Span):
    kind = arg.kind
    is_int = isinstance(value, int) and not isinstance(value, bool)
    ok = {
        "int": is_int,
        "float": (is_int or isinstance(value, float)),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
        "ints": is_int or (isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool)
                                                                      for v in value)),
        "pad": is_int or isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, int) for v in value)),
        "any": True,
    }[kind]
    if not ok:
        wanted = {"int": "an int", "float": "a number", "bool": "true or false", "str": "a string",
                  "ints": "an int or a list of ints", "pad": "an int, a list of ints, 'same' or 'valid'"}[kind]
        raise error(f"'{op}' argument '{arg.name}' must be {wanted}, found {_describe(value)}", span)
    if kind == "float":
        return float(value)
    return value


def _arg_span(arg: str | None, definition, positional, keywords) -> Span | None:
    if arg is None:
        return None
    if arg in keywords:
        return keywords[arg][1]
    names = [a.name for a in definition.args]
    if arg in names and names.index(arg) < len(positional):
        return positional[names.index(arg)][1]
    return None


def _describe(value) -> str:
    """A value with its type, as in an error message: `the string "a"`, `the list [1, 2]`, `true`."""
    if isinstance(value, str):
        return f'the string "{value}"'
    if isinstance(value, list):
        return f"the list {format_value(value)}"
    if isinstance(value, float):
        return f"the float {format_value(value)}"
    return format_value(value)


def _plain(value):
    """Spec values in IR-friendly form (tuples of args become lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _num(x) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return format_value(x)
    return f"{x:,}" if isinstance(x, int) or float(x).is_integer() and abs(x) >= 1000 else f"{x:g}"


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _source_text(sources: dict, span: Span) -> str:
    lines = sources.get(span.file, "").splitlines()
    if not 1 <= span.line <= len(lines):
        return "expect"
    text = lines[span.line - 1][span.col - 1:] if span.end_line != span.line else \
        lines[span.line - 1][span.col - 1:span.end_col - 1]
    return text.removeprefix("expect").strip()


def elaborate(program: Program, target: str | None = None, overrides: dict | None = None) -> Graph:
    """Build the IR of `target` (default: the file's first variant or network)."""
    target = target or program.default_target()
    if target is None:
        raise UsageError(Diagnostic(f"{program.main} defines no network",
                                   help="add 'network NAME(...) { ... }' to the file"))
    return Elaborator(program).build(target, overrides)
