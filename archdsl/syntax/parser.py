"""Parse .arch text into the AST (archdsl.syntax.ast).

Uses Lark's LALR parser with the contextual lexer and ``propagate_positions``
so that every AST node carries a :class:`~archdsl.diagnostics.Span`. Raw Lark
errors become :class:`~archdsl.diagnostics.ArchError` with a caret and a hint.
"""

from __future__ import annotations

import functools
import re

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from archdsl.diagnostics import ArchError, Diagnostic, Span
from archdsl.resources import grammar_file
from archdsl.syntax import ast
from archdsl.syntax.newlines import NewlinePostLex

GRAMMAR = grammar_file()


@functools.cache
def _parser() -> Lark:
    return Lark(
        GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="basic",
        postlex=NewlinePostLex(),
        propagate_positions=True,
        maybe_placeholders=True,
        start=["start", "expr"],
    )


def parse(text: str, file: str = "<string>") -> ast.Module:
    """Parse a whole .arch file."""
    tree = _parse_tree(text, file, "start")
    return ast.Module(file=file, items=tuple(_transform(tree, file, text)))


def parse_expr(text: str, file: str = "<string>") -> ast.Expr:
    """Parse one expression (used for `-D name=value` overrides)."""
    return _transform(_parse_tree(text, file, "expr"), file, text)


def _parse_tree(text: str, file: str, start: str):
    try:
        return _parser().parse(text, start=start)
    except UnexpectedInput as exc:
        raise ArchError(_syntax_diagnostic(exc, file, text), {file: text}) from None


def _transform(tree, file: str, text: str):
    try:
        return _ToAst(file, text).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ArchError):
            raise exc.orig_exc from None
        raise


_TOKEN_WORDS = {
    "NAME": "a name", "INT": "a number", "FLOAT": "a number", "STRING": "a string", "_NL": "a new line",
    "COMP_OP": "a comparison", "ADD_OP": "an operator", "MUL_OP": "an operator", "$END": "the end of the file",
}
_MAX_EXPECTED = 6  # longer lists of expected tokens are noise, not help


def _token_word(name: str) -> str:
    """How a terminal is named in a message: its literal text, or a word for a class of tokens."""
    if name in _TOKEN_WORDS:
        return _TOKEN_WORDS[name]
    for terminal in _parser().terminals:
        if terminal.name == name and terminal.pattern.type == "str":
            return f"'{terminal.pattern.value}'"
    return f"'{name.lower()}'"


def _syntax_diagnostic(exc: UnexpectedInput, file: str, text: str) -> Diagnostic:
    line, col = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        return Diagnostic(f"unexpected character {char!r}", Span(file, line, col, line, col + 1),
                          "remove it; names are letters, digits and '_', comments start with '#'")
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        lines = text.splitlines() or [""]
        end = Span(file, len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 2)
        return Diagnostic("unexpected end of file", end, _unclosed_hint(text) or "the last statement is unfinished")
    token: Token = exc.token
    width = max(1, len(str(token.value))) if token.type != "_NL" else 1
    found = "end of line" if token.type == "_NL" else f"'{token.value}'"
    expected = sorted({_token_word(t) for t in exc.expected})
    hint = None
    if 0 < len(expected) <= _MAX_EXPECTED:
        hint = "expected " + (", ".join(expected[:-1]) + " or " + expected[-1] if len(expected) > 1 else expected[0])
    if token.type == "_NL" and "')'" in expected:
        hint = "a ')' is missing before the end of the line"
    used_as_name = re.match(r"[ \t]*(=[^=]|->|\.|:|,)", text[token.end_pos:] if token.end_pos else "")
    if "NAME" in exc.expected and str(token.value).isalpha() and token.type != "NAME" and used_as_name:
        hint = f"'{token.value}' is a reserved word; it cannot name a tensor or a value"
    unclosed = _unclosed_bracket(text, (line, col))
    if unclosed and f"'{unclosed[0]}'" in expected and (unclosed[1] in "([" or token.value in (")", "]", "}")):
        hint = _unclosed_hint(text, (line, col))  # inside ( or [ a new line does not end the statement
    return Diagnostic(f"unexpected {found}", Span(file, line, col, line, col + width), hint)


def _unclosed_hint(text: str, stop: tuple[int, int] | None = None) -> str | None:
    """"expected ')' to close the '(' at 3:14" for the innermost bracket open before `stop` (or the end)."""
    unclosed = _unclosed_bracket(text, stop)
    if unclosed is None:
        return None
    closer, opener, number, col = unclosed
    return f"expected '{closer}' to close the '{opener}' at {number}:{col}"


def _unclosed_bracket(text: str, stop: tuple[int, int] | None) -> tuple[str, str, int, int] | None:
    """The innermost bracket still open before `stop`: (closer, opener, line, column)."""
    stack: list[tuple[str, int, int]] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for number, line in enumerate(text.splitlines(), 1):
        code = re.sub(r'"([^"\\]|\\.)*"|#.*', lambda m: " " * len(m.group()), line)
        for col, ch in enumerate(code, 1):
            if stop is not None and (number, col) >= stop:
                break
            if ch in "([{":
                stack.append((ch, number, col))
            elif ch in pairs and stack and stack[-1][0] == pairs[ch]:
                stack.pop()
    if not stack:
        return None
    ch, number, col = stack[-1]
    return {"(": ")", "[": "]", "{": "}"}[ch], ch, number, col


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


@v_args(meta=True, inline=True)
class _ToAst(Transformer):
    """Parse tree to AST; one method per grammar rule or alias."""

    def __init__(self, file: str, text: str):
        super().__init__()
        self.file = file
        self.text = text

    def _span(self, meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.file, 1, 1, 1, 1)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok_span(self, tok: Token) -> Span:
        return Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column)

    # top level
    def start(self, meta, *items):
        return [i for i in items if i is not None]

    def import_decl(self, meta, path):
        return ast.Import(self._span(meta), _unescape(str(path)[1:-1]))

    def block_def(self, meta, name, params, body):
        return ast.BlockDef(self._span(meta), str(name), params or (), body)

    def network_def(self, meta, name, params, body):
        return ast.NetworkDef(self._span(meta), str(name), params or (), body)

    def variant_def(self, meta, name, target, args, body):
        positional, keywords = args or ((), ())
        return ast.Variant(self._span(meta), str(name), str(target), positional, keywords, body or ())

    def params(self, meta, *params):
        return tuple(p for p in params if p is not None)

    def param(self, meta, name, default):
        return ast.Param(self._tok_span(name), str(name), default)

    def body(self, meta, *stmts):
        return tuple(s for s in stmts if s is not None)

    # statements
    def input_stmt(self, meta, *parts):
        decls = [ast.InputDecl(self._tok_span(parts[i]), str(parts[i]), parts[i + 1]) for i in range(0, len(parts), 2)]
        return ast.Input(self._span(meta), tuple(decls))

    def output_stmt(self, meta, name, chain):
        return ast.Output(self._tok_span(name), str(name), chain)

    def let_stmt(self, meta, name, value):
        return ast.Let(self._span(meta), str(name), value)

    def assign_stmt(self, meta, name, chain):
        return ast.Assign(self._tok_span(name), str(name), chain)

    def chain_stmt(self, meta, chain):
        return ast.ChainStmt(self._span(meta), chain)

    def for_stmt(self, meta, *parts):
        *names, iterable, body = parts
        return ast.For(self._span(meta), tuple(str(n) for n in names), iterable, body)

    def if_stmt(self, meta, cond, body, *rest):
        *elifs, orelse = rest
        return ast.If(self._span(meta), ((cond, body), *elifs), orelse)

    def elif_clause(self, meta, cond, body):
        return (cond, body)

    def repeat_stmt(self, meta, count, body):
        return ast.Repeat(self._span(meta), count, body)

    def group_stmt(self, meta, label, body):
        return ast.Group(self._span(meta), self._label(label), body)

    def branch_stmt(self, meta, label, body):
        return ast.Branch(self._span(meta), self._label(label), body)

    def expect_stmt(self, meta, test, within):
        tolerance, percent = within or (None, False)
        return ast.Expect(self._span(meta), test, tolerance, percent)

    def within(self, meta, tolerance, percent):
        return (tolerance, percent is not None)

    # chains
    def chain(self, meta, *parts):
        if parts and isinstance(parts[0], tuple):
            return ast.Chain(self._span(meta), parts[0], tuple(parts[1:]))
        return ast.Chain(self._span(meta), None, tuple(parts))

    def sources(self, meta, *refs):
        return tuple(r for r in refs if r is not None)

    def step(self, meta, *parts):
        if len(parts) == 1:  # ref_step
            return parts[0]
        name, args, label, body = parts
        called = args is not None or _has_parens(self.text, name)
        positional, keywords = args or ((), ())
        return ast.Step(self._span(meta), str(name), positional, keywords, self._label(label), body, called)

    def ref_step(self, meta, *names):
        return ast.Ref(self._span(meta), tuple(str(n) for n in names))

    def ref_name(self, meta, name):
        return ast.Ref(self._tok_span(name), (str(name),))

    def ref_path(self, meta, *names):
        return ast.Ref(self._span(meta), tuple(str(n) for n in names))

    def _label(self, label):
        if label is None or isinstance(label, ast.Expr):
            return label
        if label.type == "NAME":
            return ast.Str(self._tok_span(label), (str(label),))
        return self._string(label)

    def args(self, meta, *items):
        positional, keywords = [], []
        for item in items:
            if item is None:
                continue
            if isinstance(item, tuple):
                if item[0] in [k for k, _ in keywords]:
                    raise ArchError(Diagnostic(f"argument '{item[0]}' is given twice", item[0].span,
                                               "give each keyword argument once"), {self.file: self.text})
                keywords.append(item)
            else:
                if keywords:
                    raise ArchError(Diagnostic("positional argument after keyword argument", item.span,
                                               "put positional arguments first"), {self.file: self.text})
                positional.append(item)
        return tuple(positional), tuple(keywords)

    def kwarg(self, meta, name, value):
        return (ast.Keyword(str(name), self._tok_span(name)), value)

    # expressions
    def cond_expr(self, meta, test, then, other):
        return ast.Cond(self._span(meta), test, then, other)

    def or_op(self, meta, left, right):
        return ast.BinOp(self._span(meta), "or", left, right)

    def and_op(self, meta, left, right):
        return ast.BinOp(self._span(meta), "and", left, right)

    def not_op(self, meta, operand):
        return ast.Not(self._span(meta), operand)

    def compare(self, meta, left, op, right):
        return ast.BinOp(self._span(meta), str(op), left, right)

    def binop(self, meta, left, op, right):
        return ast.BinOp(self._span(meta), str(op), left, right)

    def unary_op(self, meta, op, operand):
        return ast.Neg(self._span(meta), operand) if op == "-" else operand

    def pow_op(self, meta, left, _op, right):
        return ast.BinOp(self._span(meta), "**", left, right)

    def call(self, meta, func, args):
        positional, keywords = args or ((), ())
        return ast.Call(self._span(meta), func, positional, keywords)

    def index(self, meta, obj, index):
        return ast.Index(self._span(meta), obj, index)

    def slice(self, meta, obj, start, stop, step=None):
        return ast.Slice(self._span(meta), obj, start, stop, step)

    def attr(self, meta, obj, name):
        return ast.Attr(self._span(meta), obj, str(name))

    def int_lit(self, meta, tok):
        return ast.Const(self._tok_span(tok), int(str(tok).replace("_", "")))

    def float_lit(self, meta, tok):
        return ast.Const(self._tok_span(tok), float(str(tok).replace("_", "")))

    def string_lit(self, meta, tok):
        return self._string(tok)

    def true_lit(self, meta):
        return ast.Const(self._span(meta), True)

    def false_lit(self, meta):
        return ast.Const(self._span(meta), False)

    def none_lit(self, meta):
        return ast.Const(self._span(meta), None)

    def name(self, meta, tok):
        return ast.Name(self._tok_span(tok), str(tok))

    def incoming(self, meta):
        return ast.Incoming(self._span(meta))

    def list_lit(self, meta, *items):
        return ast.ListExpr(self._span(meta), tuple(i for i in items if i is not None))

    def _string(self, tok: Token) -> ast.Str:
        """A string literal; `{expr}` inside it is interpolated."""
        span = self._tok_span(tok)
        body = str(tok)[1:-1]
        parts: list = []
        for piece in re.split(r"(\{[^{}]*\})", body):
            if piece.startswith("{") and piece.endswith("}"):
                parts.append(_relocate(parse_expr(piece[1:-1], self.file), span))
            elif piece:
                parts.append(_unescape(piece))
        return ast.Str(span, tuple(parts))


def _has_parens(text: str, tok: Token) -> bool:
    rest = text[tok.end_pos:] if tok.end_pos is not None else ""
    return rest.lstrip(" \t").startswith("(")


def _relocate(expr: ast.Expr, span: Span) -> ast.Expr:
    """Point an interpolated expression's diagnostics at its string literal."""
    import dataclasses

    fields = {}
    for f in dataclasses.fields(expr):
        value = getattr(expr, f.name)
        if isinstance(value, ast.Expr):
            value = _relocate(value, span)
        elif isinstance(value, tuple):
            value = tuple(_relocate(v, span) if isinstance(v, ast.Expr) else v for v in value)
        fields[f.name] = value
    fields["span"] = span
    return type(expr)(**fields)
