"""The compile-time evaluator: operators, builtins, interpolation, tensor attributes and its errors."""

from __future__ import annotations

import pytest

from archdsl.diagnostics import ArchError
from archdsl.evaluate import Evaluator, TensorInfo
from archdsl.syntax.parser import parse_expr


def ev(text: str, **names):
    return Evaluator(names.__getitem__, names.pop("incoming", None))(parse_expr(text))


def error(text: str, **names) -> str:
    with pytest.raises(ArchError) as info:
        ev(text, **names)
    return info.value.first.message


@pytest.mark.parametrize("text, value", [
    ("7 // 2", 3), ("7 / 2", 3.5), ("-7 % 3", 2), ("2 ** 10", 1024), ("1 + 2 * 3", 7), ("-(2 + 3)", -5),
    ("[1, 2] + [3]", [1, 2, 3]), ("[0] * 3", [0, 0, 0]), ('"a" + "b"', "ab"), ("3 > 2 and 2 > 3", False),
    ("not false or false", True), ("1 < 2 ? 10 : 20", 10), ("[1, 2] == [1, 2]", True), ("[4, 5, 6][-1]", 6),
    ("min(3, 1, 2)", 1), ("max([4, 9])", 9), ("floor(2.7)", 2), ("ceil(2.1)", 3), ("round(2.5)", 2),
    ("round(3.14159, 2)", 3.14), ("abs(-4)", 4), ("sqrt(16)", 4.0), ("len([1, 2, 3])", 3), ("len(\"abc\")", 3),
    ("range(3)", [0, 1, 2]), ("range(1, 7, 2)", [1, 3, 5]), ("int(3.9)", 3), ("float(2)", 2.0), ("str(12)", "12"),
    ("sum([1, 2, 3])", 6), ("prod([2, 3, 4])", 24), ("enumerate([7, 8])", [[0, 7], [1, 8]]),
    ("zip([1, 2], [3, 4])", [[1, 3], [2, 4]]), ("reversed([1, 2])", [2, 1]), ('"s{1 + 1}_{true}"', "s2_true"),
    ("none == none", True), ("2 == 2.0", True), ("log(1)", 0.0), ("log(8, 2)", 3.0), ("round(log(1000, 10))", 3),
    ("[1, 2, 3, 4][1:]", [2, 3, 4]), ("[1, 2, 3, 4][:-1]", [1, 2, 3]), ("[1, 2, 3, 4][1:3]", [2, 3]),
    ("[1, 2, 3, 4][::2]", [1, 3]), ("[1, 2, 3, 4][::-1]", [4, 3, 2, 1]), ("[1, 2, 3][5:]", []),
    ('"abcd"[1:3]', "bc"), ("[1, 2, 3][:]", [1, 2, 3]), ("range(10)[2:8:3]", [2, 5]),
])
def test_values(text, value):
    assert ev(text) == value


def test_names_and_tensor_attributes():
    t = TensorInfo("t", (64, 28, 14))
    assert ev("w * 2", w=21) == 42
    assert ev("t.channels + t.height + t.width", t=t) == 106
    assert ev("t.shape", t=t) == [64, 28, 14] and ev("t.spatial", t=t) == [28, 14] and ev("t.rank", t=t) == 3
    assert ev("in.channels", incoming=t) == 64
    assert ev("v.depth", v=TensorInfo("v", (1, 4, 5, 6))) == 4
    assert ev("s.length", s=TensorInfo("s", (1, 100))) == 100
    assert ev("f.features", f=TensorInfo("f", (10,))) == 10


@pytest.mark.parametrize("text, message", [
    ("1 / 0", "division by zero"),
    ("wdith", "unknown name 'wdith'"),
    ("[1, 2][2]", "index 2 is out of range for a list of length 2"),
    ("[1][true]", "an index must be an int, found bool"),
    ("3[0]", "cannot index a int"),
    ("3[1:]", "cannot slice a int"),
    ("[1, 2][0.5:]", "a slice bound must be an int, found float"),
    ("[1, 2][::0]", "a slice step cannot be 0"),
    ('1 + "a"', "unsupported operands for '+': int and string"),
    ('1 < "a"', "cannot compare int < string"),
    ("-true", "expected a number, found bool true"),
    ("range(1.5)", "expected an int, found float 1.5"),
    ("range()", "range takes 1 to 3 arguments, found 0"),
    ("len(3)", "len expects a list, found int"),
    ("min([])", "min() of nothing"),
    ("log(0)", "log of 0: the argument must be positive"),
    ("log(-2.5)", "log of -2.5: the argument must be positive"),
    ("log(4, 1)", "log to base 1: the base must be positive and not 1"),
    ('log("e")', 'expected a number, found string e'),
    ("3(1)", "'3' is not a function"),
    ("in", "'in' is only defined inside a step's arguments, where a tensor flows in"),
    ("t.colour", "a tensor has no attribute 'colour'"),
    ("t.width", "a tensor of shape [10] has no 'width'"),
    ("(1).x", "a int has no attribute 'x'"),
])
def test_errors(text, message):
    assert error(text, t=TensorInfo("t", (10,)), width=3) == message


def test_did_you_mean_for_names():
    with pytest.raises(ArchError) as info:
        Evaluator({"width": 3}.__getitem__)(parse_expr("wdith"))
    assert info.value.first.help == "define it with 'let', as a parameter, or as a tensor"
