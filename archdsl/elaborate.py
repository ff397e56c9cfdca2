"""Elaboration: a network of a loaded Program, with parameter values, to the IR.

The interpreter of a spec: runs its statements, evaluates compile-time expressions, unrolls
loops and conditionals, resolves step names (ops, blocks, qualified `rn.block`s, constructs),
instantiates blocks and destructures steps with several outputs, and records every independent
error with its location. It builds the graph through :class:`~archdsl.builder.GraphBuilder`
(which infers every shape as it goes, so a layer can read ``in.channels``). The layers below it:
archdsl/values.py (scopes, names, instances), archdsl/binding.py (arguments), archdsl/builder.py
(the graph), archdsl/constructs.py (residual, concat, dense, highway, groups, clique, reuse) and
archdsl/targets.py (which network a name builds, and its `expect`s).
"""

from __future__ import annotations

from archdsl import constructs, limits
from archdsl.binding import bind_op_args, bind_params, check_keywords
from archdsl.builder import GraphBuilder, plain
from archdsl.diagnostics import ArchError, Diagnostic, Span, UsageError, closest, did_you_mean, error
from archdsl.evaluate import POISON, Evaluator, TensorInfo, Unknown, format_value
from archdsl.functions import Function
from archdsl.ir import Graph
from archdsl.loader import Namespace, Program
from archdsl.ops import OPS
from archdsl.syntax import ast
from archdsl.targets import resolve_target, run_expects
from archdsl.values import Env, Frame, Instance, ModuleRef, Naming


class Elaborator(GraphBuilder):
    """Runs one network's statements into the IR; collects all independent errors."""

    def __init__(self, program: Program):
        super().__init__()
        self.program = program
        self.diagnostics: list[Diagnostic] = []
        self.depth = 0
        self.nesting = 0  # bodies being run inside one another
        self._globals_cache: dict[int, Env] = {}

    # ------------------------------------------------------------ entry point

    def build(self, target: str, overrides: dict | None = None) -> Graph:
        with limits.new_budget():
            try:
                return self._build(target, overrides)
            except limits.LimitExceeded as exc:  # the build stops at a limit; earlier errors still count
                raise ArchError(list(dict.fromkeys(self.diagnostics + exc.diagnostics)), self.program.sources) from None
            except Unknown:  # a value that depends on an error already reported
                raise ArchError(list(dict.fromkeys(self.diagnostics)) or [Diagnostic(
                    f"'{target}' could not be built", None)], self.program.sources) from None

    def _build(self, target: str, overrides: dict | None = None) -> Graph:
        network, values, expects, ns = resolve_target(self.program, target, overrides or {}, self.global_env_of)
        frame = Frame(env=Env(values, parent=self.global_env_of(ns)), naming=Naming(), ns=ns)
        self.g.graph.update(network=target, definition=network.name, file=self.program.main,
                            params=plain(values), inputs=[], outputs={})
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
        self.g.graph["checks"] = run_expects(self.g, self.program.sources, frame.expects + expects, frame.env)
        return self.g

    def global_env_of(self, ns: Namespace) -> Env:
        """A namespace's top-level scope: its import aliases, `def` functions and `let` constants (evaluated once)."""
        env = self._globals_cache.get(id(ns))
        if env is None:
            env = self._globals_cache[id(ns)] = Env()
            for alias, module in ns.modules.items():
                env.values[alias] = ModuleRef(alias, module, self.global_env_of)
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

    def _bind_params(self, definition, positional: list, keywords: dict, span: Span, preset: dict | None = None,
                     ns: Namespace | None = None):
        """Parameter values of a block or network call, defaults evaluated in its file's scope."""
        return bind_params(definition, positional, keywords, span, self.global_env_of(ns or self.program), preset)

    # ------------------------------------------------------------ statements

    def report(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)

    def run_body(self, body, frame: Frame) -> None:
        self.nesting += 1
        try:
            if body and self.nesting > limits.value("depth"):
                raise limits.exceeded("depth", body[0].span, "blocks and constructs nested deeper")
            for stmt in body:
                self._run_guarded(stmt, frame)
        finally:
            self.nesting -= 1

    def _run_guarded(self, stmt, frame: Frame) -> None:
        """Run one statement; its error is recorded and what it would have named is poisoned."""
        limits.budget().charge(1, stmt.span)
        try:
            self.run_stmt(stmt, frame)
        except limits.LimitExceeded:
            raise
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
            before = len(self.diagnostics)
            for _ in range(count):
                limits.budget().charge(1, stmt.span)
                self.run_body(stmt.body, frame)
                if len(self.diagnostics) > before:
                    break  # a body that failed once is reported once, not run to the end of a long loop
        elif kind is ast.Group:
            label = self.label(stmt.label, frame)
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
        before = len(self.diagnostics)
        for item in items:
            if len(self.diagnostics) > before:
                break  # as for repeat: the first failing iteration is reported
            limits.budget().charge(1, stmt.span)
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
            self._bind_label(self.label(step.label, frame), result, frame)
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
            label = self.label(step.label, frame)
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
            local = frame.naming.claim(self.label(step.label, frame), step.label.span)
            return self.make(step.name, values, inputs, step, frame.naming, local, claimed=True)
        return self.make(step.name, values, inputs, step, frame.naming)

    def step_args(self, step: ast.Step, frame: Frame, incoming: TensorInfo | None):
        positional = [(self.evaluate(a, frame, incoming), a.span) for a in step.args]
        keywords = {k: (self.evaluate(v, frame, incoming), v.span) for k, v in step.kwargs}
        return positional, keywords

    def label(self, label, frame: Frame) -> str:
        """The text of an `as` label or a `group` name (a string expression)."""
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
        local = self.label(step.label, frame) if step.label is not None else None
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
            frame.env.values[name] = self.several(".".join(naming.path), outputs)
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


def elaborate(program: Program, target: str | None = None, overrides: dict | None = None) -> Graph:
    """Build the IR of `target` (default: the file's first variant or network)."""
    target = target or program.default_target()
    if target is None:
        raise UsageError(Diagnostic(f"{program.main} defines no network",
                                   help="add 'network NAME(...) { ... }' to the file"))
    return Elaborator(program).build(target, overrides)
