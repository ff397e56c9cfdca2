"""What the language server knows about one .arch document, without any LSP types.

`analyse(text, path)` loads the text (imports resolved next to `path`) and checks it as
`archdsl check` does (archdsl.checking), keeping the elaborated graphs. Queries take
1-based lines and 1-based character columns, as spans do:

- `hover`: the output shape, parameters and MACs of the layer, block instance or named
  tensor under the cursor (in every instance when the text is inside a block definition);
- `definition`: where a block, network, variant, constant, named tensor or import is;
- `completions`: op, construct and block names with their argument signatures.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from archdsl.checking import CheckResult, check_program
from archdsl.diagnostics import ArchError, Diagnostic, Span, UsageError
from archdsl.editor import vocabulary
from archdsl.evaluate import format_shape
from archdsl.ir import Graph
from archdsl.loader import Program, load_text
from archdsl.syntax import ast

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SHOWN = 8  # instances listed in a hover before "and N more"


@dataclass
class Analysis:
    """One version of a document: its program (None when it does not parse) and diagnostics."""

    path: str
    text: str
    program: Program | None = None
    result: CheckResult | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    others: tuple = ()  # analyses of documents importing this one (their graphs measure its blocks)


@dataclass(frozen=True)
class Location:
    """A region of a file: 1-based line and column, end exclusive."""

    path: str
    line: int
    col: int
    end_line: int
    end_col: int


def analyse(text: str, path: str) -> Analysis:
    """Load and check `text` as the file `path`; every error becomes a diagnostic."""
    analysis = Analysis(path, text)
    try:
        analysis.program = load_text(text, path)
    except (ArchError, UsageError) as exc:
        analysis.diagnostics = list(exc.diagnostics)
        return analysis
    analysis.result = check_program(analysis.program)
    analysis.diagnostics = analysis.result.errors
    return analysis


# ---------------------------------------------------------------- positions


def word_at(text: str, line: int, col: int) -> tuple[str, int, int] | None:
    """The identifier at (line, col) or just before it, with its start and end columns."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return None
    for match in WORD.finditer(lines[line - 1]):
        if match.start() + 1 <= col <= match.end() + 1:
            return match.group(), match.start() + 1, match.end() + 1
    return None


def _contains(span: Span, line: int, col: int) -> bool:
    return (span.line, span.col) <= (line, col) < (span.end_line, span.end_col)


def _size(span: Span) -> tuple[int, int]:
    return span.end_line - span.line, span.end_col - span.col if span.end_line == span.line else span.end_col


def _same_file(a: str, b: str) -> bool:
    return a == b or (not a.startswith("<") and not b.startswith("<") and Path(a).resolve() == Path(b).resolve())


def _statements(node) -> list:
    """Every statement and step nested anywhere inside an AST node."""
    found = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, (tuple, list)):
            stack.extend(reversed(item))
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            if isinstance(item, (ast.Stmt, ast.Step, ast.InputDecl)):
                found.append(item)
            stack.extend(reversed([getattr(item, f.name) for f in dataclasses.fields(item)]))
    return found


TABLES = ("blocks", "networks", "variants", "constants", "functions")


def _definitions(program: Program) -> list:
    """Every top-level definition the program reaches, those of qualified imports included."""
    found, seen, stack = [], set(), [program]
    while stack:
        namespace = stack.pop()
        if id(namespace) in seen:
            continue
        seen.add(id(namespace))
        found += [d for table in TABLES for d in getattr(namespace, table, {}).values()]
        stack += list(getattr(namespace, "modules", {}).values())
    return found


def _lookup(program: Program, dotted: str):
    """The definition a (possibly qualified: `rn.basic`) name refers to, or None."""
    namespace, name = program, dotted
    if "." in dotted and hasattr(program, "resolve"):
        resolved = program.resolve(dotted)
        if resolved is None:
            return None
        namespace, name = resolved
    for table in TABLES:
        item = getattr(namespace, table, {}).get(name)
        if item is not None:
            return item
    return None


def dotted_at(text: str, line: int, col: int) -> str | None:
    """The dotted name (`rn.basic`) at (line, col), up to the end of the part under the cursor."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return None
    for match in re.finditer(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", lines[line - 1]):
        if match.start() + 1 <= col <= match.end() + 1:
            end = lines[line - 1].find(".", col - 1)
            return match.group() if end < 0 or end >= match.end() else lines[line - 1][match.start():end]
    return None


def _enclosing(analysis: Analysis, line: int, col: int):
    """The top-level definition of this document that contains the position."""
    for definition in _definitions(analysis.program):
        if _same_file(definition.span.file, analysis.path) and _contains(definition.span, line, col):
            return definition
    return None


TENSORS = (ast.Assign, ast.Output, ast.InputDecl)


def _named(definition, name: str, line: int, kinds: tuple = TENSORS):
    """The statement in `definition` that names `name` (the nearest one before `line`, else the first)."""
    named = [s for s in _statements(definition.body if hasattr(definition, "body") else ())
             if (isinstance(s, kinds) and s.name == name)]
    before = [s for s in named if s.span.line <= line]
    return (before or named or [None])[-1 if before else 0]


# ---------------------------------------------------------------- hover


def hover(analysis: Analysis, line: int, col: int, others: tuple[Analysis, ...] = ()) -> tuple[str, Location] | None:
    """Markdown about the thing at (line, col), and the region it describes. A file of blocks
    alone has no network to measure them in: the networks of the `others` (open documents
    that import it) are used then."""
    if analysis.program is None or analysis.result is None:
        return None
    analysis = dataclasses.replace(analysis, others=tuple(o for o in others if o.result is not None and o is not analysis
                                                          and any(_same_file(f, analysis.path)
                                                                  for f in o.program.sources)))
    found = word_at(analysis.text, line, col)
    definition = _enclosing(analysis, line, col)
    if found and definition is not None:
        word, start, end = found
        statement = _named(definition, word, line)
        if statement is not None and _is_name_use(analysis.text, line, start, end):
            text = _tensor_hover(analysis, definition, statement, word)
            if text:
                return text, Location(analysis.path, line, start, line, end)
    # the network that has the innermost thing written here (a branch another network does not take)
    hits = [hit for g in _graphs_for(analysis, definition) if (hit := _things_at(g, analysis.path, line, col))]
    if hits:
        span, text = min(hits, key=lambda hit: _size(hit[0]))  # min keeps the first of equals
        return text, Location(analysis.path, span.line, span.col, span.end_line, span.end_col)
    if found:
        word, start, end = found
        about = _about_name(analysis.program, word)
        if about:
            return about, Location(analysis.path, line, start, line, end)
    return None


def _is_name_use(text: str, line: int, start: int, end: int) -> bool:
    """A bare name, not an op call or keyword argument (`conv(` or `k =` inside a call)."""
    rest = text.splitlines()[line - 1][end - 1:].lstrip()
    before = text.splitlines()[line - 1][:start - 1].rstrip()
    return not rest.startswith("(") and not before.endswith(".")


def _graphs_for(analysis: Analysis, definition) -> list[tuple[str, Graph]]:
    """Elaborated graphs to look in: those of the enclosing network first, then the default target."""
    graphs = analysis.result.graphs
    order = [t for t, g in graphs.items() if definition is not None and g.graph["definition"] == definition.name]
    default = analysis.program.default_target()
    order += [t for t in [default, *graphs] if t in graphs and t not in order]
    found = [(t, graphs[t]) for t in order]
    for other in analysis.others:
        found += [(t, g) for t, g in other.result.graphs.items()]
    return found


def _things_at(named_graph: tuple[str, Graph], path: str, line: int, col: int) -> tuple[Span, str] | None:
    """The innermost layers or block instances written at (line, col), described."""
    target, g = named_graph
    spans = [(d["span"], "node", n) for n, d in g.nodes(data=True) if d.get("span") is not None]
    spans += [(s["span"], "scope", name) for name, s in g.graph["scopes"].items() if s.get("span") is not None]
    here = [(span, kind, name) for span, kind, name in spans
            if _same_file(span.file, path) and _contains(span, line, col)]
    if not here:
        return None
    smallest = min(_size(span) for span, _, _ in here)
    here = [h for h in here if _size(h[0]) == smallest]
    span = here[0][0]
    scopes = [name for _, kind, name in here if kind == "scope"]
    if scopes:
        return span, _describe_scopes(target, g, scopes)
    return span, _describe_nodes(target, g, [name for _, _, name in here])


def _figures(params: int, macs: int) -> str:
    return f"{params:,} params · {macs:,} MACs"


def _describe_nodes(target: str, g: Graph, names: list[str], title: str | None = None) -> str:
    names = sorted(names, key=lambda n: g.nodes[n]["order"])
    op = g.nodes[names[0]]["op"]
    head = title or f"**{op}**"
    if len(names) == 1:
        d = g.nodes[names[0]]
        return (f"{head} `{names[0]}` → `{format_shape(d['shape'])}`\n\n{_figures(d['params'], d['macs'])}"
                f"\n\n_in {target}_")
    params = sum(g.nodes[n]["params"] for n in names)
    macs = sum(g.nodes[n]["macs"] for n in names)
    rows = [f"- `{n}` → `{format_shape(g.nodes[n]['shape'])}`, {_figures(g.nodes[n]['params'], g.nodes[n]['macs'])}"
            for n in names[:SHOWN]]
    if len(names) > SHOWN:
        rows.append(f"- and {len(names) - SHOWN} more")
    what = "instances" if title else "layers"
    return f"{head}: {len(names)} {what} in {target}, {_figures(params, macs)} in all\n\n" + "\n".join(rows)


def _scope_facts(g: Graph, scope: str) -> tuple[list[tuple[str, tuple]], int, int]:
    """A block instance's outputs (nodes read from outside it, or network outputs), params and MACs."""
    inside = [n for n in g.nodes if n.startswith(scope + ".")]
    members = set(inside)
    outputs = set(g.graph["outputs"].values())
    exits = [n for n in inside if n in outputs or any(v not in members for _, v in g.out_edges(n))]
    if not exits and inside:
        exits = [max(inside, key=lambda n: g.nodes[n]["order"])]
    exits.sort(key=lambda n: g.nodes[n]["order"])
    return ([(n, g.nodes[n]["shape"]) for n in exits], sum(g.nodes[n]["params"] for n in inside),
            sum(g.nodes[n]["macs"] for n in inside))


def _describe_scopes(target: str, g: Graph, scopes: list[str], title: str | None = None) -> str:
    info = g.graph["scopes"][scopes[0]]
    kind = f"**{info['definition']}** ({info['kind']})" if info["kind"] != info["definition"] else f"**{info['kind']}**"
    title = f"{title}: {kind}" if title else kind
    rows = []
    total_params = total_macs = 0
    for scope in scopes:
        exits, params, macs = _scope_facts(g, scope)
        total_params, total_macs = total_params + params, total_macs + macs
        shapes = ", ".join(f"`{format_shape(s)}`" if len(exits) == 1 else f"{n.rsplit('.', 1)[-1]} `{format_shape(s)}`"
                           for n, s in exits)
        rows.append((scope, shapes, params, macs))
    if len(rows) == 1:
        scope, shapes, params, macs = rows[0]
        return f"{title} `{scope}` → {shapes}\n\n{_figures(params, macs)}\n\n_in {target}_"
    lines = [f"- `{scope}` → {shapes}, {_figures(params, macs)}" for scope, shapes, params, macs in rows[:SHOWN]]
    if len(rows) > SHOWN:
        lines.append(f"- and {len(rows) - SHOWN} more")
    return f"{title}: {len(rows)} instances in {target}, {_figures(total_params, total_macs)} in all\n\n" + \
        "\n".join(lines)


def _tensor_hover(analysis: Analysis, definition, statement, word: str) -> str | None:
    """A named tensor: what its statement's last step produced, in each instance."""
    for target, g in _graphs_for(analysis, definition):
        if isinstance(statement, ast.InputDecl) or (isinstance(statement, ast.Output) and statement.chain is None):
            if isinstance(definition, ast.NetworkDef) and g.graph["definition"] == definition.name:
                node = g.graph["outputs"].get(word) if isinstance(statement, ast.Output) else word
                if node in g.nodes:
                    return _describe_nodes(target, g, [node], f"tensor **{word}**")
            continue
        last = statement.chain.steps[-1] if statement.chain and statement.chain.steps else None
        if last is None:
            continue
        nodes = [n for n, d in g.nodes(data=True) if d.get("span") == last.span]
        scopes = [s for s, info in g.graph["scopes"].items() if info.get("span") == last.span]
        if scopes:
            return _describe_scopes(target, g, scopes, f"tensor **{word}**")
        if nodes:
            # one tensor per instance: the last node the step made in each enclosing scope
            last_nodes: dict[str, str] = {}
            for n in sorted(nodes, key=lambda n: g.nodes[n]["order"]):
                last_nodes[n.rsplit(".", 1)[0] if "." in n else ""] = n
            return _describe_nodes(target, g, list(last_nodes.values()), f"tensor **{word}**")
    return None


def _about_name(program: Program, word: str) -> str | None:
    if word in vocabulary.op_names():
        doc = vocabulary.documentation(word)
        return f"```arch\n{vocabulary.signature(word)}\n```" + (f"\n\n{doc}" if doc else "")
    definition = _lookup(program, word)
    if isinstance(definition, ast.BlockDef):  # a network is a BlockDef too
        kind = "network" if isinstance(definition, ast.NetworkDef) else "block"
        return f"```arch\n{kind} {_def_signature(program, definition)}\n```"
    return None


def _def_signature(program: Program, definition) -> str:
    source = program.sources.get(definition.span.file, "")
    first = source.splitlines()[definition.span.line - 1] if source else ""
    match = re.search(rf"\b{re.escape(definition.name)}\s*\(.*?\)\s*(?=\{{|$)", first)
    return match.group().strip() if match else definition.name


# ---------------------------------------------------------------- go to definition


def definition(analysis: Analysis, line: int, col: int) -> Location | None:
    """Where the name (or import path) at (line, col) is defined."""
    if analysis.program is None:
        return None
    target = _import_at(analysis, line, col)
    if target is not None:
        return Location(target, 1, 1, 1, 1)
    found = word_at(analysis.text, line, col)
    if not found:
        return None
    word = found[0]
    enclosing = _enclosing(analysis, line, col)
    if enclosing is not None and hasattr(enclosing, "body"):
        statement = _named(enclosing, word, line, (*TENSORS, ast.Let))
        if statement is None:  # a parameter of the block or network
            statement = next((p for p in getattr(enclosing, "params", ()) if p.name == word), None)
        if statement is not None and _is_name_use(analysis.text, line, found[1], found[2]):
            return _name_location(analysis.program, statement.span, word)
    item = _lookup(analysis.program, dotted_at(analysis.text, line, col) or word)
    if item is not None:
        return _name_location(analysis.program, item.span, word)
    return None


def _import_at(analysis: Analysis, line: int, col: int) -> str | None:
    text = analysis.text.splitlines()[line - 1] if 1 <= line <= len(analysis.text.splitlines()) else ""
    match = re.match(r'\s*import\s+"([^"]*)"', text)
    if match is None or not match.start(1) <= col <= match.end(1) + 1:
        return None
    base = Path(analysis.path).parent
    target = base / match.group(1)
    return str(target.resolve()) if target.exists() else None


def _name_location(program: Program, span: Span, word: str) -> Location:
    """The name `word` where `span` starts (its first occurrence from there on), else the span's start."""
    lines = program.sources.get(span.file, "").splitlines()
    for number in range(span.line, min(span.end_line, len(lines)) + 1):
        text = lines[number - 1]
        start = span.col - 1 if number == span.line else 0
        match = re.compile(rf"\b{re.escape(word)}\b").search(text, start)
        if match:
            return Location(span.file, number, match.start() + 1, number, match.end() + 1)
    return Location(span.file, span.line, span.col, span.line, span.col)


# ---------------------------------------------------------------- completion


@dataclass(frozen=True)
class Completion:
    label: str
    kind: str  # op, construct, block, function, keyword
    detail: str = ""
    documentation: str = ""


def completions(analysis: Analysis | None) -> list[Completion]:
    """Ops and constructs with their signatures, the document's blocks, built-ins and keywords."""
    from archdsl.constructs import CONSTRUCTS

    items = [Completion(name, "construct" if name in CONSTRUCTS else "op", vocabulary.signature(name),
                        vocabulary.documentation(name)) for name in vocabulary.op_names()]
    program = analysis.program if analysis else None
    if program is not None:
        items += [Completion(label, "block", _def_signature(program, block)) for label, block in _blocks(program)]
    items += [Completion(name, "function") for name in vocabulary.builtin_functions()
              if name not in vocabulary.op_names()]
    items += [Completion(word, "keyword") for word in vocabulary.reserved_words()]
    return items


def _blocks(program: Program) -> list[tuple[str, ast.BlockDef]]:
    """Blocks the main file can call, by the name it calls them (`basic`, `rn.basic` for a qualified import)."""
    found, stack, seen = [], [program], set()
    while stack:
        namespace = stack.pop(0)
        if id(namespace) in seen:
            continue
        seen.add(id(namespace))
        qualify = getattr(namespace, "qualify", lambda name: name)
        found += [(qualify(name), block) for name, block in namespace.blocks.items()]
        stack += list(getattr(namespace, "modules", {}).values())
    return found
