"""Elaboration: networks, blocks, loops, naming, variants, overrides, imports and expectations."""

from __future__ import annotations

from pathlib import Path

import pytest

from archdsl import ir
from archdsl.api import build_ir, load_program
from archdsl.diagnostics import ArchError, UsageError


def names(g) -> list[str]:
    return ir.layers(g)


@pytest.mark.parametrize("shape, step, out", [
    ("[1, 100]", "conv(4, 5, stride = 5)", (4, 20)),
    ("[3, 32, 32]", "conv(4, 3, stride = 2)", (4, 16, 16)),
    ("[1, 8, 16, 16]", "conv(4, 3, stride = [1, 2, 2])", (4, 8, 8, 8)),
    ("[20]", "fc(5)", (5,)),
])
def test_inputs_of_every_rank(shape, step, out):
    g = build_ir(f"network n() {{\n  input x: {shape}\n  {step}\n}}\n")
    assert g.nodes[g.graph["outputs"]["output"]]["shape"] == out
    assert g.nodes["x"]["shape"] == tuple(int(v) for v in shape.strip("[]").split(","))


def test_parameters_defaults_and_overrides():
    text = "network n(c = 8, k = 3, extra = none) {\n  input x: [3, 16, 16]\n  conv(c, k)\n}\n"
    g = build_ir(text)
    assert g.graph["params"] == {"c": 8, "k": 3, "extra": None}
    g = build_ir(text, c=4, k=1)
    assert g.nodes["conv1"]["args"]["out"] == 4 and g.nodes["conv1"]["args"]["kernel"] == 1
    with pytest.raises(UsageError, match="network 'n' has no parameter 'kk'"):
        build_ir(text, kk=1)


def test_defaults_may_use_earlier_parameters_and_constants():
    g = build_ir("let base = 4\nnetwork n(c = base, d = c * 2) {\n  input x: [3, 8, 8]\n  conv(d, 1)\n}\n")
    assert g.graph["params"] == {"c": 4, "d": 8}


def test_hierarchical_names():
    text = """block inner(c) { conv(c, 1) -> relu }
block outer(c) { inner(c) -> inner(c) as second -> bn }
network n() {
  input x: [3, 8, 8]
  conv(4, 3) -> conv(4, 3)
  outer(4)
  outer(4) as named
  group "stage{1 + 1}" { outer(4) }
  relu as head
}
"""
    assert names(build_ir(text)) == [
        "conv1", "conv2", "outer1.inner1.conv1", "outer1.inner1.relu1", "outer1.second.conv1", "outer1.second.relu1",
        "outer1.bn1", "named.inner1.conv1", "named.inner1.relu1", "named.second.conv1", "named.second.relu1",
        "named.bn1", "stage2.outer1.inner1.conv1", "stage2.outer1.inner1.relu1", "stage2.outer1.second.conv1",
        "stage2.outer1.second.relu1", "stage2.outer1.bn1", "head"]
    scopes = build_ir(text).graph["scopes"]
    assert scopes["named"]["kind"] == "block" and scopes["named"]["args"] == {"c": 4}
    assert scopes["stage2"]["kind"] == "group"


def test_automatic_names_skip_labels_in_use():
    g = build_ir("network n() {\n  input x: [3, 8, 8]\n  relu as relu2\n  relu\n  relu\n}\n")
    assert names(g) == ["relu2", "relu1", "relu3"]


def test_blocks_with_several_inputs_and_outputs():
    text = """block mix(c) {
  input a, b
  s = [a, b] -> add
  output main = s -> conv(c, 1)
  output side = s -> relu
}
network n() {
  input x: [4, 8, 8]
  y = conv(4, 3)
  [x, y] -> mix(2) as m
  z = m.side -> conv(3, 1)
  output first = m
  output second = z
}
"""
    g = build_ir(text)
    assert ir.data_inputs(g, "m.add1") == ["x", "conv1"]
    assert g.graph["outputs"] == {"first": "m.conv1", "second": "conv2"}
    assert ir.data_inputs(g, "conv2") == ["m.relu1"]


def test_block_input_count_is_checked():
    text = "block mix() {\n  input a, b\n  [a, b] -> add\n}\nnetwork n() {\n  input x: [4, 8, 8]\n  mix\n}\n"
    with pytest.raises(ArchError) as info:
        build_ir(text)
    assert info.value.first.message == "block 'mix' takes 2 inputs (a, b), found 1"
    assert info.value.first.help == "write [a, b] -> mix(...)"


def test_sequencing_named_tensors_and_in():
    text = """network n() {
  input x: [3, 32, 32]
  a = conv(8, 3)
  relu
  b = a -> conv(in.channels * 2, 3, stride = 2)
  conv(a.channels + b.channels, 1) as c
  d = c -> conv(c.channels, [1, in.width])
}
"""
    g = build_ir(text)
    assert ir.data_inputs(g, "relu1") == ["conv1"]
    assert ir.data_inputs(g, "conv2") == ["conv1"] and g.nodes["conv2"]["shape"] == (16, 16, 16)
    assert g.nodes["c"]["shape"] == (24, 16, 16)
    assert g.nodes["conv3"]["args"]["kernel"] == [1, 16] and g.nodes["conv3"]["shape"] == (24, 16, 15)


def test_loops_and_conditionals_unroll():
    text = """network n(depth = 3, mode = "b") {
  input x: [3, 8, 8]
  repeat depth { relu }
  for i in range(2) { conv(4 + i, 1) }
  for i, w in enumerate([6, 7]) { conv(w, 1) as "c{i}" }
  for a, b in zip([1], [2]) { conv(a + b, 1) }
  if mode == "a" { tanh } elif mode == "b" { sigmoid } else { bn }
  repeat 0 { bn }
}
"""
    assert names(build_ir(text)) == ["relu1", "relu2", "relu3", "conv1", "conv2", "c0", "c1", "conv3", "sigmoid1"]
    assert names(build_ir(text, mode="z", depth=0))[-1] == "bn1"


def test_variants_and_their_expectations():
    text = """network n(c = 8) {
  input x: [3, 8, 8]
  conv(c, 1)
}
small = n(c = 2) { expect params == 8 }
big = n(16) { expect params == 64 within 1 percent }
"""
    program = load_program(text)
    assert program.targets() == ["n", "small", "big"] and program.default_target() == "small"
    g = build_ir(program)
    assert g.graph["network"] == "small" and g.graph["definition"] == "n"
    assert g.graph["checks"][0]["detail"] == "got 8"
    assert build_ir(program, "big").graph["checks"][0]["detail"] == "got 64, within 0.64 of 64"
    assert build_ir(program, "small", c=3).graph["checks"] == []  # overridden: the figure no longer applies


def test_expectations_in_blocks_run_per_instance():
    text = "block b(c) {\n  conv(c, 1)\n  expect c % 2 == 0\n}\nnetwork n() {\n  input x: [3, 4, 4]\n  b(2)\n  b(3)\n}\n"
    with pytest.raises(ArchError) as info:
        build_ir(text)
    assert [d.message for d in info.value.diagnostics] == ["expectation failed: c % 2 == 0: got 1 (off by 1)"]


def test_labels_name_results_and_multi_output_instances_keep_outputs():
    text = """network n() {
  input x: [8, 8, 8]
  conv(4, 1) as squeeze
  y = squeeze -> relu
  concat as merged { branch { conv(2, 1) } branch { conv(2, 3) } }
  clique(2, 2) as b1
  expect squeeze.shape == [4, 8, 8] and merged.channels == 4 and b1.feature.channels == 8 and b1.channels == 4
}
"""
    g = build_ir(text)
    assert ir.data_inputs(g, "relu1") == ["squeeze"]
    assert g.graph["checks"][0]["ok"]


def test_imports_diamond_and_relative_paths(tmp_path: Path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "base.arch").write_text("let width = 4\nblock unit() { conv(width, 1) }\n")
    (tmp_path / "lib" / "left.arch").write_text('import "base.arch"\nblock left() { unit -> relu }\n')
    (tmp_path / "right.arch").write_text('import "lib/base.arch"\nblock right() { unit -> tanh }\n')
    (tmp_path / "main.arch").write_text('import "lib/left.arch"\nimport "right.arch"\n'
                                        "network n() {\n  input x: [3, 4, 4]\n  left -> right\n}\n")
    g = build_ir(tmp_path / "main.arch")
    assert names(g) == ["left1.unit1.conv1", "left1.relu1", "right1.unit1.conv1", "right1.tanh1"]
    assert load_program(tmp_path / "main.arch").targets() == ["n"]  # imported networks are not targets


def test_python_api_accepts_text_paths_and_programs(tmp_path: Path):
    text = "network n(c = 2) {\n  input x: [3, 4, 4]\n  conv(c, 1)\n}\n"
    path = tmp_path / "n.arch"
    path.write_text(text)
    for source in (text, path, str(path), load_program(path)):
        assert ir.total_params(build_ir(source, "n", c=5)) == 20
    with pytest.raises(UsageError, match="no network or variant named 'm'"):
        build_ir(text, "m")
    with pytest.raises(UsageError, match="defines no network"):
        build_ir("block b() { relu }\n")


def test_the_resnet_1202_class_spec_builds_linearly():
    text = Path(__file__).resolve().parents[1].joinpath("benchmarks", "frontend.py").read_text()
    spec = text.split('SPEC = """')[1].split('"""')[0]
    g = build_ir(spec, "cifar_resnet", n=3)
    assert ir.total_params(g) == 269_722  # ResNet-20 (He et al. 2016, table 6: 0.27M)
    g = build_ir(spec, "cifar_resnet", n=200)
    assert ir.total_params(g) == 19_421_274 and g.number_of_nodes() == 4210  # ResNet-1202: 19.4M
