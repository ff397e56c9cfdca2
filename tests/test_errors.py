"""Every kind of spec error: its exact message, location (file:line:col), caret and help line.

Independent mistakes are all reported in one run; consequences of an earlier error are not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from archdsl.diagnostics import ArchError
from archdsl.elaborate import elaborate
from archdsl.loader import load, load_text


def render(text: str, target: str | None = None, **overrides) -> str:
    """The full error text for spec `text` saved as spec.arch."""
    with pytest.raises(ArchError) as info:
        elaborate(load_text(text, "spec.arch"), target, overrides)
    return info.value.render()


def net(*lines: str, shape: str = "[3, 32, 32]") -> str:
    return "network n() {\n  input x: " + shape + "\n" + "".join(f"  {line}\n" for line in lines) + "}\n"


def test_unknown_op_with_did_you_mean():
    assert render(net("conv(16, 3) -> rleu")) == """\
spec.arch:3:18: error: unknown op 'rleu'
  |
3 |   conv(16, 3) -> rleu
  |                  ^^^^
  = help: did you mean 'relu'?"""


def test_unknown_op_without_a_close_name():
    assert render(net("zzz(3)")) == """\
spec.arch:3:3: error: unknown op 'zzz'
  |
3 |   zzz(3)
  |   ^^^^^^
  = help: see docs/language.md for the ops; or define a block"""


def test_concat_spatial_mismatch():
    text = net("a = conv(16, 3)", "b = x -> conv(16, 3, stride = 2)", "[a, b] -> concat")
    assert render(text) == """\
spec.arch:5:13: error: concat: 'b' is [16, 16, 16] but 'a' is [16, 32, 32]
  |
5 |   [a, b] -> concat
  |             ^^^^^^
  = help: concat joins channels; resample or crop the inputs to one size first"""


def test_add_shape_mismatch_in_a_sum_construct():
    assert render(net("sum { branch { } branch { conv(8, 3) } }")).splitlines()[0] == \
        "spec.arch:3:3: error: add: input 2 is [8, 32, 32], input 1 is [3, 32, 32]"


@pytest.mark.parametrize("step, col, width, message", [
    ('conv("a", 3)', 8, 3, """'conv' argument 'out' must be an int, found the string "a\""""),
    ("conv(16, 3.5)", 12, 3, "'conv' argument 'kernel' must be an int or a list of ints, found the float 3.5"),
    ("conv(16, 3, bias = 1)", 22, 1, "'conv' argument 'bias' must be true or false, found 1"),
    ("conv(16, [3, true])", 12, 9, "'conv' argument 'kernel' must be an int or a list of ints, found the list [3, true]"),
    ("dropout(p = [1])", 15, 3, "'dropout' argument 'p' must be a number, found the list [1]"),
    ("residual(shortcut = 1) { relu }", 23, 1, "'residual' argument 'shortcut' must be a string, found 1"),
])
def test_wrong_argument_type(step, col, width, message):
    lines = render(net(step)).splitlines()
    assert lines[0] == f"spec.arch:3:{col}: error: {message}"
    assert lines[3] == "  | " + " " * (col - 1) + "^" * width


def test_missing_argument_shows_the_signature():
    assert render(net("conv(16)")) == """\
spec.arch:3:3: error: 'conv' needs the argument 'kernel'
  |
3 |   conv(16)
  |   ^^^^^^^^
  = help: conv(out, kernel, stride=1, pad="half", dilation=1, groups=1, bias=true, bias_init=none, init="default")"""


def test_unknown_keyword_points_at_the_keyword():
    assert render(net("conv(16, 3, strde = 2)")) == """\
spec.arch:3:15: error: 'conv' has no argument 'strde'
  |
3 |   conv(16, 3, strde = 2)
  |               ^^^^^
  = help: did you mean 'stride'?"""


def test_too_many_and_repeated_arguments():
    assert render(net("maxpool(2, 2, 0, false, 1)")).splitlines()[0] == \
        "spec.arch:3:27: error: 'maxpool' takes at most 4 arguments, found 5"
    assert render(net("conv(16, 3, stride = 2, stride = 1)")).splitlines()[0] == \
        "spec.arch:3:27: error: argument 'stride' is given twice"
    assert render(net("conv(16, 3, out = 4)")).splitlines()[0] == \
        "spec.arch:3:15: error: argument 'out' is given twice"


def test_block_parameter_errors():
    text = "block b(c, k = 3) { conv(c, k) }\n" + net("b(8, kk = 1)")
    assert render(text).splitlines()[0] == "spec.arch:4:8: error: 'b' has no parameter 'kk'"
    text = "block b(c, k = 3) { conv(c, k) }\n" + net("b(k = 1)")
    assert render(text) == """\
spec.arch:4:3: error: 'b' needs a value for 'c'
  |
4 |   b(k = 1)
  |   ^^^^^^^^
  = help: pass c=... (on the command line: -D c=...)"""
    assert render("block b(c) { conv(c, 1) }\n" + net("b(1, 2)")).splitlines()[0] == \
        "spec.arch:4:3: error: 'b' takes 1 arguments, found 2"


def test_unknown_tensor():
    assert render(net("y -> relu")) == """\
spec.arch:3:3: error: unknown tensor 'y'
  |
3 |   y -> relu
  |   ^
  = help: name a tensor with 'y = ...' or 'input y' before using it"""
    assert render(net("left = conv(8, 1)", "[left, rigth] -> add")) == """\
spec.arch:4:10: error: unknown tensor 'rigth'
  |
4 |   [left, rigth] -> add
  |          ^^^^^
  = help: name a tensor with 'rigth = ...' or 'input rigth' before using it"""
    assert render(net("stem = conv(8, 1)", "[stem, stme] -> add")).splitlines()[-1] == \
        "  = help: did you mean 'stem'?"


def test_unknown_output_of_an_instance():
    text = net("clique(2, 4) as b1", "b1.features -> relu")
    assert render(text) == """\
spec.arch:4:3: error: 'b1' has no output 'features'
  |
4 |   b1.features -> relu
  |   ^^^^^^^^^^^
  = help: did you mean 'feature'?"""


def test_a_tensor_in_the_middle_of_a_chain():
    assert render(net("y = conv(8, 1)", "relu -> y")).splitlines()[0] == \
        "spec.arch:4:11: error: 'y' is a tensor; it can only start a chain"


def test_duplicate_layer_name():
    assert render(net("conv(16, 3) as stem", "conv(16, 3) as stem")) == """\
spec.arch:4:18: error: the name 'stem' is already used in this network
  |
4 |   conv(16, 3) as stem
  |                  ^^^^
  = help: give each layer and block in one scope its own name"""


def test_duplicate_name_inside_a_group_names_the_scope():
    text = net('group "stage1" { relu as a; relu as a }')
    assert render(text).splitlines()[0] == "spec.arch:3:39: error: the name 'a' is already used in stage1"


def test_invalid_layer_name_and_tensor_hiding_an_op():
    assert render(net('relu as "bad name"')).splitlines()[0] == \
        "spec.arch:3:11: error: 'bad name' is not a valid layer name"
    assert render(net("conv = relu")).splitlines()[0] == \
        "spec.arch:3:3: error: the tensor name 'conv' hides the op 'conv'"


def test_duplicate_definition():
    text = "block b() { relu }\nblock b() { tanh }\n" + net("b")
    assert render(text) == """\
spec.arch:2:1: error: 'b' is defined twice; the first definition is at spec.arch:1:1
  |
2 | block b() { tanh }
  | ^^^^^^^^^^^^^^^^^^
  = help: rename one of them"""


def test_import_cycle(tmp_path: Path):
    (tmp_path / "a.arch").write_text('import "b.arch"\nblock a() { relu }\n')
    (tmp_path / "b.arch").write_text('# b needs a\nimport "a.arch"\nblock b() { relu }\n')
    (tmp_path / "main.arch").write_text('import "a.arch"\n' + net("a -> b"))
    with pytest.raises(ArchError) as info:
        load(tmp_path / "main.arch")
    assert info.value.render() == f"""\
{tmp_path / "b.arch"}:2:1: error: import cycle: a.arch -> b.arch -> a.arch
  |
2 | import "a.arch"
  | ^^^^^^^^^^^^^^^
  = help: move the shared definitions into a file that both import"""


def test_missing_import(tmp_path: Path):
    (tmp_path / "main.arch").write_text('import "nope.arch"\n' + net("relu"))
    with pytest.raises(ArchError) as info:
        load(tmp_path / "main.arch")
    assert info.value.render().splitlines()[0] == \
        f"{tmp_path / 'main.arch'}:1:1: error: cannot import 'nope.arch': no such file {tmp_path / 'nope.arch'}"


# ---------------------------------------------------------------- syntax errors


def test_unclosed_parenthesis_names_the_opening_one():
    assert render(net("conv(16, 3", "relu")) == """\
spec.arch:3:7: error: this '(' at 3:7 is never closed
  |
3 |   conv(16, 3
  |       ^
  = help: add the matching ')' (the parser reached 'relu' at 4:3 without finding it)"""


def test_unclosed_bracket_and_brace_at_the_end_of_the_file():
    text = "network n() {\n  input x: [3, 32, 32\n  relu\n}\n"
    assert render(text).splitlines()[0] == "spec.arch:2:12: error: this '[' at 2:12 is never closed"
    text = "network n() {\n  input x: [3, 32, 32]\n  relu\n"
    assert render(text) == """\
spec.arch:1:13: error: this '{' at 1:13 is never closed
  |
1 | network n() {
  |             ^
  = help: add the matching '}' (the parser reached the end of the file without finding it)"""


def test_an_unclosed_brace_before_the_next_definition():
    text = "network a() {\n  input x: [3, 8, 8]\n  relu\nnetwork b() {\n  input x: [3, 8, 8]\n}\n"
    assert render(text) == """\
spec.arch:1:13: error: this '{' at 1:13 is never closed
  |
1 | network a() {
  |             ^
  = help: add the matching '}' (the parser reached 'network' at 4:1 without finding it)"""


def test_a_wrong_closing_bracket():
    assert render(net("conv(16, 3]")).splitlines()[0] == "spec.arch:3:13: error: unexpected ']'"
    assert render(net("conv(16, 3]")).splitlines()[-1] == "  = help: expected ')' to close the '(' at 3:7"


def test_unexpected_character_and_reserved_word():
    assert render(net("conv(16, 3) $ relu")) == """\
spec.arch:3:15: error: unexpected character '$'
  |
3 |   conv(16, 3) $ relu
  |               ^
  = help: remove it; names are letters, digits and '_', comments start with '#'"""
    assert render(net("let in = 3")).splitlines()[-1] == \
        "  = help: 'in' is a reserved word; it cannot name a tensor or a value"


def test_expected_tokens_are_listed_in_words():
    assert render(net("conv(16, 3) +")).splitlines()[-1] == "  = help: expected '->', 'as', '{', '}' or a new line"


def test_positional_after_keyword():
    assert render(net("conv(out = 16, 3)")).splitlines()[0] == \
        "spec.arch:3:18: error: positional argument after keyword argument"


# ---------------------------------------------------------------- shape errors of the ops


@pytest.mark.parametrize("step, shape, message", [
    ("conv(8, 7, pad = 0)", "[3, 4, 4]", "a 7x7 window does not fit the [3, 4, 4] input"),
    ("conv(8, 4, pad = \"same\")", "[3, 8, 8]", "pad='same' needs an odd kernel"),
    ("conv(8, 3, pad = \"full\")", "[3, 8, 8]", "unknown padding 'full'"),
    ("conv(8, [3, 3, 3])", "[3, 8, 8]", "kernel has 3 values but the input has 2 spatial dimensions"),
    ("conv(8, 3)", "[10]", "conv needs a [C, L] or [C, H, W] or [C, D, H, W] input, found [10]"),
    ("conv(8, 3, stride = 0)", "[3, 8, 8]", "stride must be positive, found 0"),
    ("conv(8, 3, groups = 2)", "[3, 8, 8]", "3 input channels are not divisible by groups=2"),
    ("maxpool(3, pad = 2)", "[3, 8, 8]", "pad 2 is more than half the kernel 3"),
    ("maxpool(9)", "[3, 8, 8]", "a 9x9 window does not fit the [3, 8, 8] input"),
    ("deconv(4, 2, stride = 2, output_pad = 2)", "[3, 8, 8]", "output_pad 2 must be smaller than stride or dilation"),
    ("fc(10)", "[3, 8, 8]", "fc needs a flat [F] input, found [3, 8, 8]"),
    ("gap", "[3]", "gap needs a [C, L] or [C, H, W] or [C, D, H, W] input, found [3]"),
    ("shuffle(2)", "[3, 8, 8]", "shuffle: 3 channels are not divisible by groups=2"),
    ("dropout(1.5)", "[3, 8, 8]", "dropout probability must be in [0, 1), found 1.5"),
    ("upsample(mode = \"cubic\")", "[3, 8, 8]", "unknown upsample mode 'cubic'"),
    ("crop(9)", "[3, 8, 8]", "cannot crop [3, 8, 8] to a larger size [9, 9]"),
    ("groups(2) { relu }", "[3, 8, 8]", "groups: 3 channels are not divisible by 2"),
    ("highway { conv(4, 3) }", "[3, 8, 8]", "highway: H gives [4, 8, 8] but the input is [3, 8, 8]"),
    ("residual(shortcut = \"identity\") { conv(4, 3) }", "[3, 8, 8]",
     "residual: the body gives [4, 8, 8] but the input is [3, 8, 8]"),
    ("residual(shortcut = \"A\") { conv(2, 3) }", "[3, 8, 8]", "residual: option A cannot reduce channels"),
    ("residual(shortcut = \"D\") { relu }", "[3, 8, 8]", "unknown shortcut 'D'"),
    ("clique(1, 4)", "[3, 8, 8]", "a clique block needs at least 2 layers, found 1"),
    ("clique(3, 4, mode = \"II\")", "[3, 8, 8]", "unknown clique mode 'II'"),
    ("clique(3, 4, partial = 4)", "[3, 8, 8]", "partial must be a layer count from 1 to 3, found 4"),
    ("dense(0) { relu }", "[3, 8, 8]", "dense needs at least 1 layer, found 0"),
    ("concat { }", "[3, 8, 8]", "'concat' needs at least one 'branch { ... }'"),
    ("residual", "[3, 8, 8]", "'residual' needs a body: residual(...) { ... }"),
    ("relu { tanh }", "[3, 8, 8]", "'relu' does not take a body"),
    ("add", "[3, 8, 8]", "'add' takes 2 or more inputs, found 1"),
])
def test_shape_and_argument_errors_of_each_op(step, shape, message):
    assert render(net(step, shape=shape)).splitlines()[0].split(" error: ", 1)[1] == message


def test_errors_without_input_and_without_output():
    assert render("network n() {\n  relu\n}\n").splitlines()[0] == "spec.arch:2:3: error: 'relu' has no input"
    assert render("network n() {\n  input x: [3, 0, 4]\n}\n").splitlines()[0] == \
        "spec.arch:2:12: error: an input shape is a list of 1 to 4 positive ints, found [3, 0, 4]"
    assert render("block b() { input x: [3] }\n" + net("b")).splitlines()[0] == \
        "spec.arch:1:22: error: block inputs take their shapes from the caller"


def test_several_independent_errors_in_one_run():
    text = net(
        "conv(16, 3, groups = 5)",      # 3: shape error
        "conv(in.channels, 3, strde = 2)",  # 4: unknown keyword, though the input is unknown now
        "fc(10)",                        # 5: a consequence of line 3: quiet
        "cnov(3)",                       # 6: unknown op
        "z -> relu",                     # 7: unknown tensor
        "let k = [1, 2][5]",             # 8: evaluation error
    )
    heads = [line for line in render(text).splitlines() if " error: " in line]
    assert heads == [
        "spec.arch:3:24: error: 3 input channels are not divisible by groups=5",
        "spec.arch:4:24: error: 'conv' has no argument 'strde'",
        "spec.arch:6:3: error: unknown op 'cnov'",
        "spec.arch:7:3: error: unknown tensor 'z'",
        "spec.arch:8:18: error: index 5 is out of range for a list of length 2",
    ]


def test_a_failed_named_tensor_keeps_later_uses_quiet():
    text = net("y = conv(8, 3, groups = 2)", "y -> relu", "[y, x] -> concat", "conv(8, 1) as z", "z -> bn")
    assert [line for line in render(text).splitlines() if " error: " in line] == [
        "spec.arch:3:27: error: 3 input channels are not divisible by groups=2"]


def test_errors_in_several_blocks_and_failed_expectations_together():
    text = ("block b(c) { conv(c, 3, groups = 2) }\n"
            "network n() {\n  input x: [3, 8, 8]\n  b(4)\n  x -> b(6) as second\n  x -> b(5)\n  bn(eps = [1])\n}\n")
    heads = [line for line in render(text).splitlines() if " error: " in line]
    assert heads == ["spec.arch:1:34: error: 3 input channels are not divisible by groups=2",  # reported once
                     "spec.arch:7:12: error: 'bn' argument 'eps' must be a number, found the list [1]"]
    assert render("network n() {\n  input x: [4]\n  fc(2)\n  expect params == 9\n  expect macs == 8\n}\n")\
        .count("error: expectation failed") == 1


def test_expectation_failure_shows_the_numbers():
    text = "network n() {\n  input x: [4]\n  fc(2)\n  expect params == 12 within 10 percent\n}\n"
    assert render(text).splitlines()[0] == \
        "spec.arch:4:3: error: expectation failed: params == 12 within 10 percent: got 10, outside 1.2 of 12"
