"""Argument binding: call arguments matched to the parameters of an op, construct, block or network.

Positional then keyword arguments, then defaults; each op argument is checked against its declared
kind (archdsl/ops/base.py `Arg`). Errors point at the argument that is wrong.
"""

from __future__ import annotations

from archdsl.diagnostics import Span, did_you_mean, error
from archdsl.evaluate import Evaluator, format_value
from archdsl.ops.base import REQUIRED
from archdsl.values import Env


def bind_params(definition, positional: list, keywords: dict, span: Span, scope: Env, preset: dict | None = None):
    """Parameter values of a block or network call: positional, keyword, then defaults (evaluated in `scope`,
    the definition's file scope, with the earlier parameters)."""
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
    env = Env(parent=scope)
    for param in params:
        if param.name not in values:
            if param.default is None:
                raise error(f"'{definition.name}' needs a value for '{param.name}'", span,
                            f"pass {param.name}=... (on the command line: -D {param.name}=...)")
            values[param.name] = Evaluator(env.lookup)(param.default)
        if callable(values[param.name]) and not hasattr(values[param.name], "invoke"):  # a builtin, not a def
            where = param.default.span if param.default is not None and param.name not in keywords else span
            raise error(f"parameter '{param.name}' of '{definition.name}' is a function, not a value", where,
                        "give a number, a string, true/false or a list (a builtin such as max is not a value)")
        env.values[param.name] = values[param.name]
    return {p.name: values[p.name] for p in params}


def bind_op_args(definition, positional: list, keywords: dict, span: Span) -> dict:
    """Match call arguments to an op's declared arguments, checking kinds."""
    spec = definition.args
    if len(positional) > len(spec):
        extra = positional[len(spec)]
        raise error(f"'{definition.name}' takes at most {len(spec)} arguments, found {len(positional)}",
                    extra[1] or span, signature(definition))
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
            raise error(f"'{definition.name}' needs the argument '{arg.name}'", span, signature(definition))
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
                        did_you_mean(key, names) or signature(definition))


def signature(definition) -> str:
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
    if callable(value) or (isinstance(value, list) and any(callable(v) for v in value)):
        raise error(f"'{op}' argument '{arg.name}' must be a number, a string, true/false or a list, "
                    f"found {_describe(value)}", span)
    if kind == "float":
        return float(value)
    return value


def arg_span(arg: str | None, definition, positional, keywords) -> Span | None:
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
