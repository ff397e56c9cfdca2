"""Spec text from the importer's tree: block definitions with parameters, groups, loops, names."""

from __future__ import annotations

import itertools
import re
import textwrap
from dataclasses import dataclass

from archdsl.importer.blocks import INDENT, Call, Definition, Hole, ident, literal, snake
from archdsl.importer.model import ImportFailure, Optional, Region, Step, Trace
from archdsl.importer.optional import find_optional
from archdsl.importer.structure import Dense, find_dense, fuse_gap, fuse_shuffle, hoist, produced, used


@dataclass
class Args:
    """An argument list; a keyword argument whose text equals its default is left out."""

    items: list  # (keyword or None, Hole | str, default value or None)


# (op, keyword) -> its default given the other arguments: written only where an instance differs
DEFAULTED = {("conv", "stride"): lambda args: 1, ("conv", "groups"): lambda args: 1,
             ("maxpool", "stride"): lambda args: args[0][1], ("avgpool", "stride"): lambda args: args[0][1]}


class Emitter:
    def __init__(self, trace: Trace, network: str):
        self.trace, self.network = trace, network
        self.defs: dict[tuple, Definition] = {}
        self.names: set[str] = set()
        self.consumers: dict[int, int] = {}
        self.class_names = {snake(r.cls) for r in _walk(trace.root) if isinstance(r, Region)}

    def count_uses(self, items: list) -> None:
        for item in items:
            if isinstance(item, Step):
                for v in item.inputs:
                    self.consumers[v] = self.consumers.get(v, 0) + 1
            elif isinstance(item, Dense):
                self.consumers[item.input] = self.consumers.get(item.input, 0) + 1
            else:
                self.count_uses([item.item] if isinstance(item, Optional) else item.items)

    # --- bodies -------------------------------------------------------------------------------------
    def body(self, region: Region, inputs: list[int], outputs: list[int], top: bool):
        """Lines of a body as parts (str | Hole | Call), and the hole values and hints."""
        out = _Body(self, inputs, outputs, top)
        out.run(region.items, 1)
        return out

    def definition(self, region: Region) -> tuple[Definition, list, list[str]]:
        ins = used(region)
        outs = [v for v in produced(region) if self._used_outside(v, region)]
        body = self.body(region, ins, outs, False)
        header = f"input {', '.join(body.names[v] for v in ins)}"
        parts = [INDENT + header + "\n"] + body.parts
        key = (region.cls, len(ins), tuple(_key(p) for p in parts))
        d = self.defs.get(key)
        if d is None:
            base = snake(region.cls)
            if base in _op_names():
                base += "_block"
            name, n = base, 2
            while name in self.names:
                name, n = f"{base}_{n}", n + 1
            self.names.add(name)
            d = self.defs[key] = Definition(name, len(ins), parts, body.hints)
        if not region.stand_in:  # a stand-in's numbers are the caller's to fill in (blocks.py)
            d.instances.append(body.values)
        return d, body.values, body.hints

    def _used_outside(self, v: int, region: Region) -> bool:
        inside = 0
        for item in _walk(region):
            if isinstance(item, Step):
                inside += item.inputs.count(v)
            elif isinstance(item, Dense):
                inside += item.input == v
        return self.consumers.get(v, 0) > inside

    # --- text ---------------------------------------------------------------------------------------
    def run(self) -> str:
        fuse_gap(self.trace.root, self.trace.outputs)
        fuse_shuffle(self.trace.root, {i: shape for i, _, shape in self.trace.inputs})
        hoist(self.trace.root)
        find_dense(self.trace.root)
        find_optional(self.trace.root, self.trace.outputs, itertools.count(max(_ids(self.trace)) + 1))
        self.count_uses(self.trace.root.items)
        for v in self.trace.outputs:
            self.consumers[v] = self.consumers.get(v, 0) + 1
        t = self.trace
        body = self.body(t.root, [i for i, _, _ in t.inputs], t.outputs, True)
        for d in self.defs.values():
            d.analyse()
        lines = [f"# Imported by `archdsl import` from {t.source}.",
                 "# Blocks are the source's module classes; layer names follow its attribute names."]
        lines += [f"# {line}" for n in t.notes for line in textwrap.wrap(n, WIDTH - 2, break_on_hyphens=False)]
        lines.append("")
        self._rename()
        for d in self._ordered_defs():
            params = d.header()
            text = self.render(d.parts, lambda i, d=d: d.text_of[i])
            lines += wrap_call(f"block {d.name}(", params, ") {")
            lines += wrap(fold_loops(text.rstrip("\n").split("\n")))
            lines += ["}", ""]
        ins = ", ".join(f"{body.names[i]}: {literal(shape)}" for i, _, shape in t.inputs)
        lines.append(f"network {self.network}() {{")
        lines.append(f"{INDENT}input {ins}")
        text = self.render(body.parts, lambda i: literal(body.values[i]))
        lines += wrap(fold_loops(text.rstrip("\n").split("\n")))
        if len(t.outputs) > 1:
            names = t.output_names or [f"out{i + 1}" for i in range(len(t.outputs))]
            lines += [f"{INDENT}output {ident(n, 'out')} = {body.names[v]}" for n, v in zip(names, t.outputs)]
        lines.append(f"{INDENT}expect params == {t.params:_}")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _rename(self) -> None:
        """Per class, the definition used most keeps the plain name; the others say what they add."""
        by_base: dict[str, list[Definition]] = {}
        for d in self.defs.values():
            by_base.setdefault(re.sub(r"_\d+$", "", d.name), []).append(d)
        for base, defs in by_base.items():
            if len(defs) < 2:
                continue
            defs.sort(key=lambda d: -len(d.instances))
            main_groups = set(GROUP.findall("".join(p for p in defs[0].parts if isinstance(p, str))))
            used_names = {base}
            defs[0].name = base
            for n, d in enumerate(defs[1:], 2):
                extra = [g for g in GROUP.findall("".join(p for p in d.parts if isinstance(p, str)))
                         if g not in main_groups]
                name = f"{base}_{extra[0]}" if extra else f"{base}_{n}"
                while name in used_names:
                    name += "_"
                used_names.add(name)
                d.name = name

    def _ordered_defs(self) -> list[Definition]:
        order: list[Definition] = []

        def visit(d: Definition) -> None:
            if d in order:
                return
            for p in d.parts:
                if isinstance(p, Call):
                    visit(p.definition)
            order.append(d)

        for d in self.defs.values():
            visit(d)
        return order

    def render(self, parts, hole_text) -> str:
        out = []
        for p in parts:
            if isinstance(p, str):
                out.append(p)
            elif isinstance(p, Hole):
                out.append(hole_text(p.index))
            elif isinstance(p, Args):
                texts = []
                for kw, v, default in p.items:
                    t = hole_text(v.index) if isinstance(v, Hole) else v
                    if default is not None and t == literal(default):
                        continue
                    texts.append(f"{kw} = {t}" if kw else t)
                out.append(f"({', '.join(texts)})" if texts else "")
            else:
                d = p.definition
                out.append(f"{d.name}({d.call_args(lambda i, p=p: hole_text(p.holes[i]))})")
        return "".join(out)


def _key(p):
    if isinstance(p, str):
        return p
    if isinstance(p, Hole):
        return p.index
    if isinstance(p, Args):
        return tuple((kw, _key(v), default is not None) for kw, v, default in p.items)  # a default: DEFAULTED's rule
    return id(p.definition), tuple(p.holes)


def _ids(trace: Trace) -> list[int]:
    return [i for i, _, _ in trace.inputs] + [item.id for item in _walk(trace.root) if isinstance(item, Step)]


def _walk(region):
    for item in region.items:
        yield item
        if isinstance(item, Optional):
            yield item.item
            if isinstance(item.item, Region):
                yield from _walk(item.item)
        elif isinstance(item, Region):
            yield from _walk(item)
        elif isinstance(item, Dense):
            for layer in item.layers:
                yield from _walk(layer)


_OPS: set[str] = set()


def _op_names() -> set[str]:
    if not _OPS:
        from archdsl.ops import OPS

        _OPS.update(OPS)
        _OPS.update({"residual", "dense", "concat", "sum", "branch", "highway", "groups", "clique", "reuse"})
    return _OPS


class _Body:
    """Writes one body: chains joined by `->`, names only for tensors used elsewhere than the next step."""

    def __init__(self, emitter: Emitter, inputs: list[int], outputs: list[int], top: bool):
        self.e, self.top = emitter, top
        self.parts: list = []
        self.values: list = []
        self.hints: list[str] = []
        self.names: dict[int, str] = {}
        self.scopes: list[set[str]] = [set()]
        self.owners: dict[str, str] = {}
        self.outputs = outputs
        taken = set()
        for n, v in enumerate(inputs):
            name = "x" if n == 0 else f"x{n + 1}"
            if top:
                name = ident(next(nm for i, nm, _ in emitter.trace.inputs if i == v), "x")
            self.names[v] = name
            taken.add(name)
        self.taken = taken
        self.flags: set[str] = set()  # the flags of optional parts (run() finds them)
        self.flow = inputs[0] if inputs else None
        self.line: list | None = None  # parts of the open chain line
        self.line_end: int | None = None
        self.forced: set[int] = set()  # values named whatever their use: the outputs of optional parts

    def hole(self, value, hint: str):
        self.values.append(value)
        self.hints.append(hint)
        return Hole(len(self.values) - 1)

    def run(self, items: list, depth: int) -> None:
        flat = list(self._events(items, depth))
        self.flags = {item.flag for kind, item, _ in flat if kind == "optional"}  # parameters: no tensor hides one
        self.count: dict[int, int] = {}
        for kind, item, _ in flat:
            if kind == "step":
                for v in _inputs(item):
                    self.count[v] = self.count.get(v, 0) + 1
            elif kind == "optional":  # `name = input` reads it too
                self.count[item.input] = self.count.get(item.input, 0) + 1
        for v in self.outputs:
            self.count[v] = self.count.get(v, 0) + 1
        for n, (kind, item, d) in enumerate(flat):
            if kind == "open":
                self._close()
                self.scopes[-1].add(item)
                self.scopes.append(set())
                self.parts.append(f"{INDENT * d}group {literal(item)} {{\n")
            elif kind == "close":
                self._close()
                self.scopes.pop()
                self.parts.append(f"{INDENT * d}}}\n")
            elif kind == "optional":
                self._optional(item, d, flat)
            elif kind == "end_optional":
                self._close()
                self.parts.append(f"{INDENT * d}}}\n")
                self.flow = None  # what follows names what it reads
            else:
                nxt = next((e for e in flat[n + 1:] if e[0] == "step"), None)
                self._step(item, d, nxt[1] if nxt else None)
        self._close()
        if flat and flat[-1][0] == "end_optional" and flat[-1][1].id in self.outputs and not self.top:
            self.parts.append(f"{INDENT * depth}{self.names[flat[-1][1].id]}\n")  # the output: whichever ran

    def _optional(self, item: Optional, depth: int, flat: list) -> None:
        """`name = input` and `if flag {`: the part runs when the flag is true; `name` is its output either way."""
        self._close()
        residual = any(kind == "step" and isinstance(s, Step) and s.op == "add" and item.id in s.inputs
                       for kind, s, _ in flat)
        name = self._tensor_name(item.item, "shortcut" if residual else None)
        self.names[item.id] = name
        self.forced.add(item.id)
        self.parts += [f"{INDENT * depth}{name} = {self.names[item.input]}\n", f"{INDENT * depth}if ",
                       self.hole(item.present, item.flag), " {\n"]
        self.flow = None  # the part names what it reads

    def _events(self, items, depth):
        for item in items:
            if isinstance(item, Optional):
                yield "optional", item, depth
                yield from self._events([item.item], depth + 1)
                yield "end_optional", item, depth
            elif isinstance(item, Region) and len(item.items) == 1 and isinstance(item.items[0], Dense):
                item.items[0].label = item.label  # a module that is only DenseNet wiring: `dense(n) as label`
                yield "step", item.items[0], depth
            elif isinstance(item, Region) and (item.kind == "group" or self._several_outputs(item)):
                label = ident(item.label, "group")
                yield "open", label, depth
                yield from self._events(item.items, depth + 1)
                yield "close", label, depth
            else:
                yield "step", item, depth

    def _several_outputs(self, region: Region) -> bool:
        outs = [v for v in produced(region) if self.e._used_outside(v, region)]
        return len(outs) > 1

    def _label(self, text: str | None, prefix: str) -> str | None:
        if not text:
            return None
        base = ident(text, prefix)
        name, n = base, 2
        while name in self.scopes[-1]:
            name, n = f"{base}_{n}", n + 1
        self.scopes[-1].add(name)
        return name

    def _step(self, item, depth: int, nxt) -> None:
        ins = used(item) if not isinstance(item, Step) else item.inputs
        out = _output(item)
        text = self._text(item)
        atomic = not isinstance(item, Step)  # a block or dense instance: a line of its own (loops fold lines)
        if atomic:
            self._close()
        chained = (self.line is not None and ins == [self.line_end] and self.flow == self.line_end)
        if chained:
            self.line += [" -> "] + text
        else:
            self._close()
            if ins == [self.flow] and self.flow is not None and self.parts_have_flow():
                start = []
            elif len(ins) == 1:
                start = [f"{self.names[ins[0]]} -> "]
            else:
                start = ["[" + ", ".join(self.names[v] for v in ins) + "] -> "]
            self.line = [INDENT * depth, None] + start + text
        self.line_end = out
        self.flow = out
        needs_name = self.count.get(out, 0) > (1 if (nxt is not None and _inputs(nxt) == [out]) else 0) or (
            out in self.forced)
        if (out in self.outputs and nxt is None and self.count.get(out, 0) == 1 and len(self.outputs) == 1
                and out not in self.forced):
            needs_name = False
        if needs_name:
            name = self.names.get(out) or self._tensor_name(item)
            self.names[out] = name
            self.line[1] = f"{name} = "
            self._close()
        if atomic:
            self._close()

    def parts_have_flow(self) -> bool:
        return True

    def _tensor_name(self, item, base: str | None = None) -> str:
        if base is None:
            base = ident(item.label, "t") if isinstance(item, Step) and item.label or isinstance(item, Region) else "t"
        if base in _op_names() or base in self.e.class_names or base in self.flags:
            base += "_out"  # a tensor may not hide an op or a block
        name, n = base, 2
        while name in self.taken:
            name, n = f"{base}_{n}", n + 1
        self.taken.add(name)
        return name

    def _close(self) -> None:
        if self.line:
            self.parts += [p for p in self.line if p is not None] + ["\n"]
        self.line = None
        self.line_end = None

    def _text(self, item) -> list:
        if isinstance(item, Step):
            return self._step_text(item)
        if isinstance(item, Dense):
            first = item.layers[0]
            d, values, hints = self.e.definition(first)
            for layer in item.layers[1:]:
                d2, v2, _ = self.e.definition(layer)
                if d2 is not d or v2 != values:
                    raise ImportFailure(layer.path, "dense layers of one block differ; not expressible as dense(n)")
            label = self._label(item.label, "dense")
            n = self.hole(len(item.layers), "layers")
            holes = [self.hole(v, h).index for v, h in zip(values, hints)]
            return ["dense(", n, ")" + (f" as {label}" if label else "") + " { ", Call(d, holes), " }"]
        if item.path in self.owners:
            return [f"reuse({self.owners[item.path]})"]
        d, values, hints = self.e.definition(item)
        holes = [self.hole(v, h).index for v, h in zip(values, hints)]
        label = self._label(item.label, "block")
        self.owners[item.path] = label
        return [Call(d, holes), f" as {label}"]

    def _step_text(self, step: Step) -> list:
        if step.owner and step.owner in self.owners:
            return [f"reuse({self.owners[step.owner]})"]
        if step.owner and step.owner in _seen_owners(self.e):
            raise ImportFailure(step.where, f"op '{step.op}': its weights are shared with a layer outside this "
                                            "block, which a spec cannot express",
                                help="share whole blocks, or apply the layer twice within one module")
        parts: list = [step.op]
        args = list(step.args)
        defaults = {kw: default(args) for (op, kw), default in DEFAULTED.items() if op == step.op}
        for kw, default in defaults.items():  # always a hole, so instances with and without it agree
            if not any(k == kw for k, _ in args):
                at = next((n for n, (k, _) in enumerate(args) if k == "bias"), len(args)) if kw == "groups" else (
                    2 if step.op == "conv" else 1)
                args.insert(at, (kw, default))
        if args:
            items = []
            for n, (kw, v) in enumerate(args):
                if isinstance(v, (bool, str)):
                    items.append((kw, literal(v), None))
                else:
                    hint = kw or ("out" if n == 0 and step.op in ("conv", "fc") else "kernel" if n == 1 else "size")
                    items.append((kw, self.hole(v, hint), defaults.get(kw)))
            parts.append(Args(items))
        label = self._label(step.label, step.op) if step.label else None
        if step.owner:
            self.owners[step.owner] = label
            _seen_owners(self.e).add(step.owner)
        if label:
            parts.append(f" as {label}")
        return parts


def _seen_owners(e: Emitter) -> set:
    if not hasattr(e, "_owners"):
        e._owners = set()
    return e._owners


def _inputs(item) -> list[int]:
    return item.inputs if isinstance(item, Step) else used(item)


def _output(item) -> int:
    if isinstance(item, (Step, Dense, Optional)):
        return item.id
    return _output(item.items[-1])


GROUP = re.compile(r'group "(\w+)"')
WIDTH = 100


def wrap(lines: list[str]) -> list[str]:
    """Long chains go on over lines that start with `->`."""
    out = []
    for line in lines:
        if len(line) <= WIDTH or " -> " not in line:
            out.append(line)
            continue
        indent = line[:len(line) - len(line.lstrip())]
        pieces = line.strip().split(" -> ")
        current = indent + pieces[0]
        for piece in pieces[1:]:
            if len(current) + 4 + len(piece) > WIDTH:
                out.append(current)
                current = indent + "  -> " + piece
            else:
                current += " -> " + piece
        out.append(current)
    return out


def wrap_call(head: str, args: str, tail: str) -> list[str]:
    """`head` + args + `tail` on one line, else the arguments go on over lines aligned after `head`."""
    if len(head) + len(args) + len(tail) <= WIDTH:
        return [head + args + tail]
    out, current = [], head
    pieces = args.split(", ")
    for n, arg in enumerate(pieces):
        piece = arg + ("," if n < len(pieces) - 1 else tail)
        if current != head and len(current) + 1 + len(piece) > WIDTH:
            out.append(current)
            current = " " * len(head) + piece
        else:
            current += ("" if current == head else " ") + piece
    return [*out, current]


LOOP_LINE = re.compile(r"^(\s*)(\w+ = )?(.*) as ([A-Za-z_]\w*?)(\d+)$")


def fold_loops(lines: list[str]) -> list[str]:
    """Runs of lines equal but for a label counter (`... as block1`, `... as block2`) become a `for` loop."""
    out, i = [], 0
    while i < len(lines):
        m = LOOP_LINE.match(lines[i])
        j = i + 1
        if m and not m.group(2) and "reuse(" not in m.group(3):
            start = int(m.group(5))
            while j < len(lines):
                m2 = LOOP_LINE.match(lines[j])
                if not (m2 and m2.group(1) == m.group(1) and m2.group(3) == m.group(3)
                        and m2.group(4) == m.group(4) and int(m2.group(5)) == start + (j - i)
                        and not m2.group(5).startswith("0")):
                    break
                j += 1
                if m2.group(2):
                    break
        if m and j - i >= 2:
            last = LOOP_LINE.match(lines[j - 1])
            assign = last.group(2) or ""
            ind = m.group(1)
            bounds = f"{start}, {start + j - i}" if start else f"{j - i}"
            out.append(f'{ind}for i in range({bounds}) {{ {assign}{m.group(3)} as '
                       f'"{m.group(4)}{{i}}" }}')
            i = j
        else:
            out.append(lines[i])
            i += 1
    return out
