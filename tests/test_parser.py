"""Text to AST: statements, chains, newline rules, literals, spans."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from archdsl.syntax import ast
from archdsl.syntax.parser import parse, parse_expr


def body(text: str) -> tuple:
    (network,) = parse("network n() {\n" + text + "\n}\n").items
    return network.body


def test_top_level_items():
    module = parse('import "a.arch"\nlet w = 3\nblock b(c, k = 3) { relu }\nnetwork n(x) { relu }\nv = n(1, x = 2) { expect params == 1 }\n')
    kinds = [type(i) for i in module.items]
    assert kinds == [ast.Import, ast.Let, ast.BlockDef, ast.NetworkDef, ast.Variant]
    imp, let, block, _network, variant = module.items
    assert imp.path == "a.arch" and let.name == "w"
    assert [(p.name, p.default) for p in block.params] == [("c", None), ("k", ast.Const(None, 3))]
    assert (variant.name, variant.target, len(variant.args), [k for k, _ in variant.kwargs]) == ("v", "n", 1, ["x"])
    assert isinstance(variant.body[0], ast.Expect)


def test_statements():
    stmts = body("input x: [3, 8, 8], y: [1]\nlet k = 2\nz = conv(4, k)\noutput o = z -> relu\nfor i, c in enumerate([1]) { relu }\n"
                 "if true { relu } elif false { tanh } else { bn }\nrepeat 2 { relu }\ngroup \"g\" { relu }\n"
                 "expect params == 3 within 5 percent")
    assert [type(s) for s in stmts] == [ast.Input, ast.Let, ast.Assign, ast.Output, ast.For, ast.If, ast.Repeat,
                                        ast.Group, ast.Expect]
    assert [d.name for d in stmts[0].decls] == ["x", "y"]
    assert stmts[4].names == ("i", "c")
    assert len(stmts[5].branches) == 2 and stmts[5].orelse is not None
    assert stmts[8].percent and stmts[8].tolerance == ast.Const(None, 5)


def test_chain_steps_labels_and_sources():
    (stmt,) = body("[a, b.out] -> concat -> conv(8, 3, stride = 2) as c1 -> residual { relu }")
    chain = stmt.chain
    assert [r.path for r in chain.sources] == [("a",), ("b", "out")]
    concat, conv, residual = chain.steps
    assert (concat.name, concat.called) == ("concat", False)
    assert conv.called and conv.label == ast.Str(None, ("c1",)) and [k for k, _ in conv.kwargs] == ["stride"]
    assert residual.body is not None and isinstance(residual.body[0], ast.ChainStmt)
    (stmt,) = body("inst.feature -> gap")
    assert stmt.chain.steps[0] == ast.Ref(None, ("inst", "feature"))


def test_newline_rules():
    stmts = body("conv(8,\n  3)\n  -> relu\nbn; relu\nsum { branch { } branch { relu } }\nx = conv(\n8, 1) ->\nrelu")
    assert len(stmts) == 5
    assert [s.name for s in stmts[0].chain.steps] == ["conv", "relu"]
    assert [s.name for s in stmts[4].chain.steps] == ["conv", "relu"]


def test_comments_are_ignored():
    stmts = body("# a comment\nrelu # after a statement\n# another\n  bn")
    assert [s.chain.steps[0].name for s in stmts] == ["relu", "bn"]


def test_literals():
    assert parse_expr("11_689_512") == ast.Const(None, 11689512)
    assert parse_expr("1e-5") == ast.Const(None, 1e-5) and parse_expr("0.5") == ast.Const(None, 0.5)
    assert parse_expr("true") == ast.Const(None, True) and parse_expr("none") == ast.Const(None, None)
    string = parse_expr('"layer{s + 1}x\\n"')
    assert string.parts[0] == "layer" and isinstance(string.parts[1], ast.BinOp) and string.parts[2] == "x\n"
    assert parse_expr("[1, [2, 3],]") == ast.ListExpr(None, (ast.Const(None, 1), ast.ListExpr(
        None, (ast.Const(None, 2), ast.Const(None, 3)))))


def test_precedence():
    e = parse_expr("1 + 2 * 3 ** 2")
    assert e.op == "+" and e.right.op == "*" and e.right.right.op == "**"
    e = parse_expr("not a and b or c ? 1 : 2")
    assert isinstance(e, ast.Cond) and e.test.op == "or" and e.test.left.op == "and"
    assert isinstance(e.test.left.left, ast.Not)
    e = parse_expr("-x.channels[0]")
    assert isinstance(e, ast.Neg) and isinstance(e.operand, ast.Index)


def test_spans_point_at_the_source():
    (stmt,) = body("  conv(16, 3, stride = 2)")
    step = stmt.chain.steps[0]
    assert (step.span.line, step.span.col, step.span.end_col) == (2, 3, 26)
    keyword, value = step.kwargs[0]
    assert isinstance(keyword, ast.Keyword) and keyword == "stride"
    assert (keyword.span.line, keyword.span.col, keyword.span.end_col) == (2, 15, 21)
    assert (value.span.col, value.span.end_col) == (24, 25)


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.integers(0, 50).map(str),
                    lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(
                        lambda t: f"({t[0]} {t[1]} {t[2]})"), max_leaves=12))
def test_integer_expressions_parse_and_evaluate_like_python(text):
    from archdsl.evaluate import Evaluator

    assert Evaluator({}.__getitem__)(parse_expr(text)) == eval(text)
