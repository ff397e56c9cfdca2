"""Targets and their figures: which network a name builds with which parameter values, and the
`expect` statements checked once it is built.
"""

from __future__ import annotations

from collections.abc import Callable

from archdsl.binding import _describe as describe
from archdsl.binding import bind_params
from archdsl.diagnostics import ArchError, Diagnostic, Span, UsageError, did_you_mean, error, source_lines
from archdsl.evaluate import Evaluator, format_value
from archdsl.ir import Graph, total_macs, total_params
from archdsl.loader import Namespace, Program
from archdsl.syntax import ast
from archdsl.values import Env


def resolve_target(program: Program, target: str, overrides: dict, scope_of: Callable[[Namespace], Env]):
    """The network a target names (a network, or a variant of one, maybe qualified: `rn.resnet`), its parameter
    values with the overrides, the variant's expectations and the namespace the network belongs to.
    `scope_of` gives a namespace's top-level scope (for defaults and variant arguments)."""
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
        evaluate = Evaluator(scope_of(program).lookup)
        given = bind_params(network, [evaluate(a) for a in variant.args],
                            {k: (evaluate(v), v.span) for k, v in variant.kwargs}, variant.span, scope_of(ns))
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
    values = bind_params(network, [], {}, network.span, scope_of(ns), given | overrides)
    if expects and overrides and values != bind_params(network, [], {}, network.span, scope_of(ns), given):
        expects = []  # a variant's figures belong to its own parameters, not to overridden ones
    return network, values, expects, ns


def run_expects(g: Graph, sources: dict[str, str], expects: list, default: Env) -> list[dict]:
    """Check `(expect statement, its scope)` pairs against the built graph (`params`, `macs`, `flops` and the
    names in scope; `default` for a variant's expects); returns their results or raises every failure."""
    params, macs = total_params(g), total_macs(g)
    results, failures = [], []
    for stmt, env in expects:
        scope = Env({"params": params, "macs": macs, "flops": 2 * macs}, parent=env or default)
        text = _source_text(sources, stmt.span)
        try:
            ok, detail = _check(stmt, scope)
        except ArchError as exc:
            failures.extend(exc.diagnostics)
            continue
        results.append({"expect": text, "ok": ok, "detail": detail, "span": stmt.span})
        if not ok:
            failures.append(Diagnostic(f"expectation failed: {text}: {detail}", stmt.span,
                                       "the network no longer matches the figure the spec states"))
    if failures:
        raise ArchError(failures, sources)
    return results

def _check(stmt: ast.Expect, env: Env) -> tuple[bool, str]:
    evaluate = Evaluator(env.lookup)
    test = stmt.test
    if isinstance(test, ast.BinOp) and test.op == "==":
        left, right = evaluate(test.left), evaluate(test.right)
        if stmt.tolerance is not None:
            tolerance = evaluate(stmt.tolerance)
            for value, part in ((left, test.left), (right, test.right), (tolerance, stmt.tolerance)):
                if not _is_number(value):
                    raise error(f"'within' compares numbers, found {describe(value)}", part.span)
            if tolerance < 0:
                raise error(f"a tolerance cannot be negative, found {_num(tolerance)}", stmt.tolerance.span)
            bound = abs(right) * tolerance / 100 if stmt.percent else tolerance
            ok = abs(left - right) <= bound
            return ok, f"got {_num(left)}, {'within' if ok else 'outside'} {_num(bound)} of {_num(right)}"
        return left == right, f"got {_num(left)}" + (f" (off by {_num(left - right)})" if _is_number(left)
                                                      and _is_number(right) and left != right else "")
    if stmt.tolerance is not None:
        raise error("'within' needs an '==' comparison", stmt.span)
    value = evaluate(test)
    return bool(value), "true" if value else "false"


def _num(x) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return format_value(x)
    return f"{x:,}" if isinstance(x, int) or float(x).is_integer() and abs(x) >= 1000 else f"{x:g}"


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _source_text(sources: dict, span: Span) -> str:
    lines = source_lines(sources.get(span.file, ""))
    if not 1 <= span.line <= len(lines):
        return "expect"
    text = lines[span.line - 1][span.col - 1:] if span.end_line != span.line else \
        lines[span.line - 1][span.col - 1:span.end_col - 1]
    return text.removeprefix("expect").strip()
