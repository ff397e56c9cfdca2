"""Language v2 (issue 12): `def` functions, `in` / `not in`, qualified imports, destructuring and
`split`, `reuse`, sub-chain labels, a clique with a body, and the errors that go with them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from archdsl import build, build_ir, ir
from archdsl.diagnostics import ArchError
from archdsl.elaborate import elaborate
from archdsl.loader import load, load_text
from archdsl.render import RenderOptions
from archdsl.render import render as render_diagram


def render(text: str, target: str | None = None, file: str = "spec.arch") -> str:
    with pytest.raises(ArchError) as info:
        elaborate(load_text(text, file), target)
    return info.value.render()


def net(*lines: str, head: str = "", shape: str = "[32, 7, 7]") -> str:
    return head + "network n() {\n  input x: " + shape + "\n" + "".join(f"  {line}\n" for line in lines) + "}\n"


def out(g, name: str = "output"):
    return g.nodes[g.graph["outputs"][name]]["shape"]


# ---------------------------------------------------------------- def


def test_functions_with_defaults_in_any_order_and_recursion():
    text = net("conv(make_divisible(116 * 0.75), 1)", "conv(widen(3), 1)", "conv(fact(4), 1) as f",
               "conv(fib(10), 1) as g", "expect f.channels == 24 and g.channels == 55",
               head="def widen(c) = make_divisible(c * ratio, d = 4)\n"
                    "def make_divisible(v, d = 8) = max(d, int(v + d / 2) // d * d)\n"
                    "let ratio = 5\n"
                    "def fact(n) = n <= 1 ? 1 : n * fact(n - 1)\n"
                    "def fib(n) = n < 2 ? n : fib(n - 1) + fib(n - 2)\n")
    g = build_ir(text)
    assert [g.nodes[n]["shape"][0] for n in ir.layers(g)] == [88, 16, 24, 55]


def test_functions_take_lists_strings_and_other_functions():
    g = build_ir(net("conv(total(widths, double), 1)", "conv(len(tag(\"ab\")), 1)",
                     head="let widths = [1, 2, 3]\n"
                          "def double(x) = 2 * x\n"
                          "def total(xs, f) = len(xs) == 0 ? 0 : f(xs[0]) + total(xs[1:], f)\n"
                          "def tag(s, suffix = \"_x\") = s + suffix\n"))
    assert [g.nodes[n]["shape"][0] for n in ir.layers(g)] == [12, 4]


def test_recursion_deeper_than_the_limit_is_a_located_error_with_the_call_chain():
    limit = sys.getrecursionlimit()
    text = net("conv(deep(300), 1)", head="def deep(n) = n == 0 ? 1 : deep(n - 1)\n")
    assert render(text) == """\
spec.arch:1:28: error: function calls nested more than 200 deep: deep(300) -> deep(299) -> deep(298) -> ... \
-> deep(101) -> deep(100)
  |
1 | def deep(n) = n == 0 ? 1 : deep(n - 1)
  |                            ^^^^^^^^^^^
  = help: a recursive function needs a base case that every call reaches, e.g. def deep(n) = n <= 1 ? 1 : n * \
deep(n - 1)"""
    assert sys.getrecursionlimit() == limit
    assert build_ir(net("conv(deep(199), 1)", head="def deep(n) = n == 0 ? 1 : deep(n - 1)\n"))  # within the limit


def test_unbounded_recursion_is_the_same_error():
    text = net("conv(forever(1), 1)", head="def forever(n) = forever(n + 1)\n")
    assert render(text).splitlines()[0] == ("spec.arch:1:18: error: function calls nested more than 200 deep: "
                                            "forever(1) -> forever(2) -> forever(3) -> ... -> forever(200) -> "
                                            "forever(201)")


@pytest.mark.parametrize("call, message, col", [
    ("f(1, 2, 3)", "'f' takes 1 to 2 arguments, found 3", 8),
    ("f()", "'f' needs a value for 'a'", 8),
    ("f(1, c = 3)", "'f' has no parameter 'c'", 13),
    ("f(1, a = 3)", "parameter 'a' is given twice", 13),
])
def test_wrong_calls_of_a_function(call, message, col):
    text = net(f"conv({call}, 1)", head="def f(a, b = 2) = a + b\n")
    lines = render(text).splitlines()
    assert lines[0] == f"spec.arch:4:{col}: error: {message}"
    if "twice" not in message:
        assert lines[-1] == "  = help: def f(a, b = ...)"


def test_a_function_body_is_checked_where_it_is_written():
    text = net("conv(f(2), 1)", head="def f(a) = a + undefined_thing\n")
    assert render(text).splitlines()[0] == "spec.arch:1:16: error: unknown name 'undefined_thing'"
    text = net("conv(f(2), 1)", head="def f(a) = in.channels\n")
    assert render(text).splitlines()[0] == \
        "spec.arch:1:12: error: 'in' is only defined inside a step's arguments, where a tensor flows in"


def test_a_function_name_is_defined_once():
    text = net("relu", head="def f(a) = a\nlet f = 3\n")
    assert render(text).splitlines()[0] == "spec.arch:2:1: error: 'f' is defined twice; the first definition is at " \
                                           "spec.arch:1:1"


# ---------------------------------------------------------------- in / not in


@pytest.mark.parametrize("test, value", [
    ("3 in [1, 2, 3]", True), ("4 in [1, 2, 3]", False), ("4 not in [1, 2, 3]", True),
    ("\"b\" in \"abc\"", True), ("\"ab\" not in \"abc\"", False), ("[1, 2] in [[1, 2], [3]]", True),
    ("true in [1]", False), ("2 in [2.0]", True), ("not 3 in [3]", False), ("1 + 2 in [3] and true", True),
    ("in.channels in [32, 64]", True), ("in.channels not in [32, 64]", False),
])
def test_membership(test, value):
    g = build_ir(net(f"conv(({test}) ? 2 : 1, 1)"))
    assert out(g)[0] == (2 if value else 1)


def test_membership_needs_a_list_or_a_string():
    assert render(net("let q = 3 in 4")) == """\
spec.arch:3:16: error: 'in' needs a list or a string on the right, found int
  |
3 |   let q = 3 in 4
  |                ^"""
    assert render(net("let q = 3 in \"abc\"")).splitlines()[0] == \
        "spec.arch:3:11: error: 'in' a string needs a string on the left, found int"


# ---------------------------------------------------------------- qualified imports

RESNET = """\
let widths = [8, 16]
def twice(c) = 2 * c
block basic(c) { conv(c, 3) -> bn -> relu -> inner(c) }
block inner(c = 4) { conv(c, 1) }
network resnet(classes = 1000) {
  input image: [3, 16, 16]
  basic(widths[0])
  output logits = gap -> fc(classes)
}
"""


@pytest.fixture
def resnet_file(tmp_path):
    (tmp_path / "resnet.arch").write_text(RESNET)
    return tmp_path


def test_qualified_import_as_steps_bases_and_values(resnet_file):
    (resnet_file / "main.arch").write_text("""\
import "resnet.arch" as rn
block basic(c) { conv(c, 1) }
r18 = rn.resnet(classes = 10) { expect params == 8 * 27 + 8 + 16 + 64 + 8 + 8 * 10 + 10 }
network mine() {
  input x: [3, 8, 8]
  basic(rn.widths[1])
  rn.basic(rn.twice(4)) as theirs
  rn.basic(4)
  y = rn.inner
}
""")
    program = load(resnet_file / "main.arch")
    g = elaborate(program, "r18")
    assert out(g, "logits") == (10,)
    g = elaborate(program, "mine")
    assert ir.layers(g) == ["basic1.conv1", "theirs.conv1", "theirs.bn1", "theirs.relu1", "theirs.inner1.conv1",
                            "basic2.conv1", "basic2.bn1", "basic2.relu1", "basic2.inner1.conv1",
                            "inner1.conv1"]
    assert g.nodes["basic1.conv1"]["args"]["kernel"] == 1 and g.nodes["theirs.conv1"]["shape"] == (8, 8, 8)
    assert g.graph["scopes"]["theirs"]["definition"] == "rn.basic"
    assert g.graph["scopes"]["theirs.inner1"]["definition"] == "rn.inner"
    assert g.graph["scopes"]["basic1"]["definition"] == "basic"


def test_qualified_names_are_not_visible_unqualified(resnet_file):
    (resnet_file / "main.arch").write_text('import "resnet.arch" as rn\n' + net("inner(4)", "conv(widths[0], 1)"))
    lines = [line for line in render((resnet_file / "main.arch").read_text(), file=str(resnet_file / "main.arch"))
             .splitlines() if "error" in line]
    assert [line.split(": ", 1)[1] for line in lines] == ["error: unknown op 'inner'", "error: unknown name 'widths'"]


def test_qualified_import_errors(resnet_file):
    main = resnet_file / "main.arch"

    def first_error(*lines: str) -> str:
        main.write_text('import "resnet.arch" as rn\n' + net(*lines))
        return render(main.read_text(), file=str(main)).splitlines()[0].split(": ", 1)[1]

    assert first_error("rn.basc(4)") == "error: unknown block 'rn.basc'"
    assert first_error("zz.basic(4)") == "error: 'zz' is not an imported file"
    assert first_error("conv(rn.basic, 1)") == "error: 'rn.basic' is a block, not a value"
    assert first_error("conv(rn.width, 1)").startswith("error: 'rn' (") and \
        first_error("conv(rn.width, 1)").endswith("has no 'width'")


def test_plain_import_keeps_its_meaning(resnet_file):
    (resnet_file / "main.arch").write_text('import "resnet.arch"\n' + net("basic(widths[1])", "conv(twice(3), 1)"))
    g = build_ir(resnet_file / "main.arch")
    assert out(g) == (6, 7, 7) and g.graph["scopes"]["basic1"]["definition"] == "basic"


def test_absolute_import_path(resnet_file, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere") / "main.arch"
    other.write_text(f'import "{resnet_file / "resnet.arch"}" as rn\n' + net("rn.basic(4)"))
    assert out(build_ir(other)) == (4, 7, 7)


# ---------------------------------------------------------------- destructuring and split


def test_split_into_equal_chunks_and_sizes():
    g = build_ir(net("a, b = x -> split(2)", "p, q, r = x -> split([4, 20, 8])", "s = x -> split(4) as parts",
                     "[b, a, r, parts.part4] -> concat",
                     "expect a.shape == [16, 7, 7] and q.channels == 20 and parts.part2.channels == 8"))
    assert out(g) == (48, 7, 7)
    assert [n for n in ir.layers(g) if g.nodes[n]["op"] == "split"] == \
        ["split1_1", "split1_2", "split2_1", "split2_2", "split2_3", "parts_1", "parts_2", "parts_3", "parts_4"]
    assert g.nodes["split2_2"]["args"] == {"sizes": [4, 20, 8], "index": 1}
    module = build(net("p, q, r = x -> split([4, 20, 8])", "[r, p] -> concat"), seed=0)
    x = torch.randn(2, 32, 7, 7)
    a, _b, c = torch.split(x, [4, 20, 8], 1)
    assert torch.equal(module(x), torch.cat([c, a], 1))


def test_blocks_and_cliques_destructure_in_output_order():
    g = build_ir(net("m, aux = up(8)", "t, f = x -> clique(2, 4)", "[aux, f] -> concat",
                     "expect m.channels == 8 and aux.channels == 32 and t.channels == 8 and f.channels == 40",
                     head="block up(c) {\n  output main = conv(c, 1)\n  output aux = x -> relu\n  input x\n}\n"))
    assert out(g) == (72, 7, 7)


@pytest.mark.parametrize("line, message, col", [
    ("a, b = conv(8, 1)", "'conv' gives 1 output, but 2 names are given", 10),
    ("a, b = x -> split(4)", "'split' gives 4 outputs, but 2 names are given", 10),
    ("a, b = x -> split(3)", "split: 32 channels do not divide into 3 equal chunks", 21),
    ("a, b = x -> split([8, 16])", "split: the sizes [8, 16] add up to 24, but the input has 32 channels", 21),
    ("relu, b = x -> split(2)", "the tensor name 'relu' hides the op 'relu'", 3),
])
def test_destructuring_errors(line, message, col):
    assert render(net(line)).splitlines()[0] == f"spec.arch:3:{col}: error: {message}"


def test_a_failed_destructuring_reports_once():
    text = net("a, b = x -> split(3)", "[a, b] -> add -> conv(a.channels, 1)")
    assert render(text).count("error:") == 1


def test_loop_targets_destructure_nested_lists():
    g = build_ir(net("for i, [c, [k, s]] in enumerate([[8, [3, 1]], [16, [1, 2]]]) { conv(c, k, stride = s) "
                     "as \"c{i}\" }"))
    assert out(g) == (16, 4, 4)
    assert render(net("for i, [c, n] in enumerate([[1, 2, 3]]) { conv(c, n) }")) == """\
spec.arch:3:20: error: cannot unpack [1, 2, 3] into [c, n]
  |
3 |   for i, [c, n] in enumerate([[1, 2, 3]]) { conv(c, n) }
  |                    ^^^^^^^^^^^^^^^^^^^^^^"""


# ---------------------------------------------------------------- reuse


SIAMESE = """\
block encoder(c) {
  conv(c, 3, bias = false) -> bn -> relu -> maxpool(2)
  conv(2 * c, 3) -> relu -> gap
}
network siamese(c = 8) {
  input left: [1, 16, 16], right: [1, 16, 16]
  a = left -> encoder(c) as enc
  b = right -> reuse(enc) as twin
  c1 = a -> fc(4) as head
  c2 = b -> reuse(head)
  output score = [c1, c2] -> concat -> fc(1) -> sigmoid
}
"""


def test_reuse_counts_parameters_once_and_macs_per_pass():
    g = build_ir(SIAMESE)
    encoder = 8 * 9 + 16 + 16 * 8 * 9 + 16
    assert ir.total_params(g) == encoder + 16 * 4 + 4 + 9
    assert g.nodes["twin.conv1"]["params"] == 0 and g.nodes["twin.conv1"]["shares"] == "enc.conv1"
    assert g.nodes["twin.conv1"]["macs"] == g.nodes["enc.conv1"]["macs"] == 16 * 16 * 8 * 9
    assert g.nodes["twin.bn1"]["shares"] == "enc.bn1" and "shares" not in g.nodes["twin.relu1"]
    assert g.nodes["reuse1"]["shares"] == "head" and g.nodes["reuse1"]["op"] == "fc"
    assert ir.total_macs(g) == 2 * (16 * 16 * 72 + 8 * 8 * 16 * 72 + 64) + 8
    assert g.graph["scopes"]["twin"]["definition"] == "encoder"


def test_reused_layers_call_the_same_submodule():
    module = build(SIAMESE, seed=0).eval()
    assert not hasattr(module, "reuse1")  # the head is called again
    assert module.twin is module.enc and module.twin.conv1 is module.enc.conv1  # the encoder reused whole
    assert [name for name, _ in module.named_children()] == ["enc", "head", "fc1"]  # registered once
    assert not any(k.startswith("twin.") for k in module.state_dict())
    assert "        twin = self.enc(right); del right\n" in module.__archdsl_source__
    assert sum(p.numel() for p in module.parameters()) == ir.total_params(build_ir(SIAMESE))
    left, right = torch.randn(3, 1, 16, 16), torch.randn(3, 1, 16, 16)

    def embed(x):
        enc = module.enc
        y = torch.relu(enc.bn1(enc.conv1(x)))
        y = torch.relu(enc.conv2(torch.nn.functional.max_pool2d(y, 2))).mean((2, 3))
        return module.head(y)

    expected = torch.sigmoid(module.fc1(torch.cat([embed(left), embed(right)], 1)))
    assert torch.allclose(module(left, right), expected, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(module)(left, right), module(left, right))


def test_reuse_is_drawn_as_a_shared_link():
    dot = render_diagram(build_ir(SIAMESE), options=RenderOptions(detail="layers")).source
    shared = [line for line in dot.splitlines() if "shared" in line and "->" in line]
    assert shared and all("style=dashed" in line for line in shared)


@pytest.mark.parametrize("line, message, col", [
    ("y = x -> conv(16, 1) -> reuse(c1)", "reuse: 'c1' was defined on a [32, 7, 7] input; this input is [16, 7, 7]",
     27),
    ("y = x -> reuse(x)", "reuse: 'x' is an input, not a one-input layer", 18),
    ("y = x -> reuse(3)", "reuse needs a layer, found 3", 18),
    ("y = x -> reuse(nothing)", "unknown name 'nothing'", 18),
])
def test_reuse_errors(line, message, col):
    assert render(net("conv(8, 3) as c1", line)).splitlines()[0] == f"spec.arch:4:{col}: error: {message}"


CLIQUE_BY_HAND = """\
block hand_clique(layers = 3, k = 8) {
  input x0
  let n = layers + 1
  let xs = [x0]
  let w = [none] * (n * n)
  for i in range(1, n) {
    let terms = []
    for j in range(i) {
      let src = xs[j]
      t = src -> bn as "bn{j}_{i}" -> relu -> conv(k, 3, bias = false) as "w{j}_{i}"
      let w = w[:j * n + i] + [t] + w[j * n + i + 1:]
      let terms = terms + [t]
    }
    if len(terms) == 1 { let xi = terms[0] } else { xi = terms -> add }
    let xs = xs + [xi]
  }
  for i in range(1, n) {
    let terms = []
    for j in range(1, n) {
      if j != i {
        let src = xs[j]
        h = src -> bn as "bn{j}_{i}_ii" -> relu
        if j < i { t = h -> reuse(w[j * n + i]) } else { t = h -> conv(k, 3, bias = false) as "w{j}_{i}" }
        let terms = terms + [t]
      }
    }
    if len(terms) == 1 { let xi = terms[0] } else { xi = terms -> add }
    let xs = xs[:i] + [xi] + xs[i + 1:]
  }
  let layers_out = xs[1:]
  output transit = layers_out -> concat
  output feature = xs -> concat
}
network by_hand(layers = 3, k = 8) {
  input x: [16, 8, 8]
  b = hand_clique(layers, k) as b
  output transit = b
  output feature = b.feature
}
network built_in(layers = 3, k = 8) {
  input x: [16, 8, 8]
  b = clique(layers, k) as b
  output transit = b
  output feature = b.feature
}
network with_body(layers = 3, k = 8) {
  input x: [16, 8, 8]
  b = clique(layers, k) as b { }
  output transit = b
  output feature = b.feature
}
"""


def _copy_clique_weights(built_in, target, layers: int, k: int, c0: int, names) -> None:
    """Copy every weight of the built-in clique block `built_in.b` into the primitive one, `names(j, i, stage)`
    giving the (bn, conv) submodules of edge j -> i in a stage."""
    with torch.no_grad():
        for i in range(1, layers + 1):
            layer = getattr(built_in.b, f"x{i}")
            for stage, sources in ((0, range(i)), (1, [j for j in range(1, layers + 1) if j != i])):
                norm, start = layer.norms[stage], 0
                for j in sources:
                    width = c0 if j == 0 else k
                    bn, conv = names(target, j, i, stage)
                    whole = bn.weight.numel() == norm.weight.numel()  # one BN over the concatenation
                    for field in ("weight", "bias", "running_mean", "running_var"):
                        getattr(bn, field).copy_(getattr(norm, field) if whole else
                                                 getattr(norm, field)[start:start + width])
                    if conv is not None:
                        conv.weight.copy_(layer.edge_weight(j))
                    start += width


def _randomise(module) -> None:
    torch.manual_seed(3)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5 if "running_var" in name else torch.randn_like(tensor))


@pytest.mark.parametrize("layers, k", [(3, 8), (2, 4), (4, 6)])
def test_a_clique_block_by_hand_with_reuse_equals_the_construct(layers, k):
    ref = build(CLIQUE_BY_HAND, "built_in", layers=layers, k=k, seed=0, dtype=torch.float64).eval()
    hand = build(CLIQUE_BY_HAND, "by_hand", layers=layers, k=k, seed=1, dtype=torch.float64).eval()
    assert ir.total_params(build_ir(CLIQUE_BY_HAND, "by_hand", layers=layers, k=k)) == \
        ir.total_params(build_ir(CLIQUE_BY_HAND, "built_in", layers=layers, k=k))
    assert ir.total_macs(build_ir(CLIQUE_BY_HAND, "by_hand", layers=layers, k=k)) == \
        ir.total_macs(build_ir(CLIQUE_BY_HAND, "built_in", layers=layers, k=k))
    _randomise(ref)

    def names(target, j, i, stage):
        bn = getattr(target.b, f"bn{j}_{i}" + ("_ii" if stage else ""))
        return bn, getattr(target.b, f"w{j}_{i}") if stage == 0 or j > i else None

    _copy_clique_weights(ref, hand, layers, k, 16, names)
    x = torch.randn(2, 16, 8, 8, dtype=torch.float64)
    expected, got = ref(x), hand(x)
    for key in ("transit", "feature"):
        assert torch.allclose(got[key], expected[key], rtol=1e-9, atol=1e-9), key


def test_a_clique_with_an_empty_body_equals_the_construct():
    ref = build(CLIQUE_BY_HAND, "built_in", seed=0, dtype=torch.float64).eval()
    prim = build(CLIQUE_BY_HAND, "with_body", seed=1, dtype=torch.float64).eval()
    g = build_ir(CLIQUE_BY_HAND, "with_body")
    assert ir.total_params(g) == ir.total_params(build_ir(CLIQUE_BY_HAND, "built_in")) == 7_152
    assert ir.total_macs(g) == ir.total_macs(build_ir(CLIQUE_BY_HAND, "built_in"))
    assert g.nodes["b.x2_ii.w1"]["shares"] == "b.x2.w1" and g.nodes["b.x1_ii.w2"]["params"] == 8 * 8 * 9
    _randomise(ref)

    def names(target, j, i, stage):
        level = getattr(target.b, f"x{i}_ii" if stage else f"x{i}")
        return level.bn1, getattr(level, f"w{j}") if stage == 0 or j > i else None

    _copy_clique_weights(ref, prim, 3, 8, 16, names)
    x = torch.randn(2, 16, 8, 8, dtype=torch.float64)
    expected, got = ref(x), prim(x)
    for key in ("transit", "feature"):
        assert torch.allclose(got[key], expected[key], rtol=1e-9, atol=1e-9), key


def test_a_clique_body_is_each_layers_transformation_shared_between_stages():
    text = net("t = clique(3, 8, rounds = 2) as b { conv(8, 1, bias = false) -> bn -> relu }", shape="[16, 8, 8]")
    g = build_ir(text)
    assert g.nodes["b.x1.body.conv1"]["params"] == 64
    assert g.nodes["b.x1_r2.body.conv1"]["shares"] == "b.x1.body.conv1"
    assert g.nodes["b.x1_r2.body.bn1"]["shares"] == "b.x1.body.bn1"
    assert out(g) == (24, 8, 8)
    assert render(net("clique(3, 8, bottleneck = true) { relu }", shape="[16, 8, 8]")).splitlines()[0] == \
        "spec.arch:3:3: error: clique with a body: write the bottleneck or the dropout in the body"


# ---------------------------------------------------------------- labels and errors


def test_a_parenthesised_sub_chain_is_one_naming_level():
    g = build_ir(net("(conv(8, 3) -> bn -> relu) as stem -> maxpool(2)", "y = (stem -> conv(4, 1)) -> relu",
                     "conv(8, 3) -> bn -> relu as act", "expect stem.shape == [8, 7, 7]"))
    assert ir.layers(g)[:5] == ["stem.conv1", "stem.bn1", "stem.relu1", "maxpool1", "conv1"]
    assert g.graph["scopes"]["stem"]["kind"] == "group"
    assert "act" in g and "conv2" in g and "bn1" in g  # `as` after a chain labels only its last step


def test_one_mistake_one_error():
    text = net("let hidden = in.channels * 2", "conv(hidden, 1)", "fc(hidden + 1)", "let more = hidden * 3")
    assert render(text) == """\
spec.arch:3:16: error: 'in' is only defined inside a step's arguments, where a tensor flows in
  |
3 |   let hidden = in.channels * 2
  |                ^^"""
    text = "let bad = 1 / 0\n" + net("conv(bad, 1)")
    assert render(text).count("error:") == 1


def test_an_unknown_op_may_be_a_misspelt_tensor():
    assert render(net("mix1 = conv(8, 1)", "x -> mixl")) == """\
spec.arch:4:8: error: unknown op 'mixl'
  |
4 |   x -> mixl
  |        ^^^^
  = help: did you mean the tensor 'mix1'? A tensor starts a chain: mix1 -> ..."""
    assert render(net("mix1 = conv(8, 1)", "mixl -> relu")).splitlines()[-1] == "  = help: did you mean 'mix1'?"


def test_merge_errors_name_the_tensors():
    assert render(net("a = conv(32, 1)", "b = x -> conv(16, 1)", "[a, b] -> add")) == """\
spec.arch:5:13: error: add: 'b' is [16, 7, 7] but 'a' is [32, 7, 7]
  |
5 |   [a, b] -> add
  |             ^^^
  = help: shapes must match exactly; use a projection or padded shortcut (residual shortcut='B' or 'A')"""
    assert render(net("a = conv(8, 1)", "b = x -> conv(8, 1, stride = 2)", "[a, b] -> concat")).splitlines()[0] == \
        "spec.arch:5:13: error: concat: 'b' is [8, 4, 4] but 'a' is [8, 7, 7]"


def test_a_label_after_a_body_is_pointed_out():
    assert render(net('residual(shortcut = "B") {', "  conv(32, 3)", "} as res")) == """\
spec.arch:5:5: error: unexpected 'as'
  |
5 |   } as res
  |     ^^
  = help: a label goes before the body: residual(...) as res { ... }"""
    assert render(net("concat { branch { } } as mix")).splitlines()[-1] == \
        "  = help: a label goes before the body: concat as mix { ... }"


# ---------------------------------------------------------------- a network rewritten with v2

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "language_v2"


def test_mobilenet_v2_with_v2_features_is_torchvisions_and_the_old_spelling():
    torchvision = pytest.importorskip("torchvision")
    new, old = load(EXAMPLES / "mobilenet_v2.arch"), load(EXAMPLES / "mobilenet_v2_before.arch")
    a, b = elaborate(new, "mobilenet_v2", {"alpha": 1.4}), elaborate(old, "mobilenet_v2", {"alpha": 1.4})
    assert [(n, a.nodes[n]["shape"]) for n in ir.layers(a)] == [(n, b.nodes[n]["shape"]) for n in ir.layers(b)]
    assert ir.total_params(a) == 6_108_776  # torchvision's mobilenet_v2(width_mult=1.4)
    reference = torchvision.models.mobilenet_v2(weights=None, width_mult=0.35).eval()
    module = build(EXAMPLES / "mobilenet_v2.arch", "mobilenet_v2", alpha=0.35, size=64).eval()
    ours, theirs = module.state_dict(), reference.state_dict()
    assert [v.shape for v in ours.values()] == [v.shape for v in theirs.values()]
    module.load_state_dict(dict(zip(ours, theirs.values())))
    x = torch.randn(2, 3, 64, 64)
    assert torch.allclose(module(x), reference(x), atol=1e-5)


def test_a_recursion_that_branches_too_much_is_stopped():
    text = net("conv(fib(40), 1)", head="def fib(n) = n < 2 ? n : fib(n - 1) + fib(n - 2)\n")
    assert render(text).splitlines()[0].startswith(
        "spec.arch:1:26: error: more than 100,000 function calls in one expression (at fib(")
