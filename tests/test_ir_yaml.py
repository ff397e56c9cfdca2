"""The IR as data: YAML round trip, equality, topological order with clique feedback edges, re-inference."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from archdsl import ir
from archdsl.api import build_ir

DOCS = Path(__file__).resolve().parents[1] / "docs"

NETWORKS = {
    "plain": "network n() {\n  input x: [3, 16, 16]\n  conv(8, 3) -> bn -> relu -> maxpool(2)\n  gap -> fc(10)\n}\n",
    "residual": ("network n() {\n  input x: [16, 8, 8]\n  residual { conv(32, 3, stride = 2) -> bn }\n"
                 "  residual(shortcut = \"A\") { conv(64, 3, stride = 2) }\n}\n"),
    "branches": ("network n() {\n  input x: [8, 8, 8]\n  concat { branch { conv(4, 1) } branch b { maxpool(3, stride = 1,"
                 " pad = 1) } }\n  dense(2) { conv(4, 3) }\n  highway { relu }\n  groups(2) { conv(4, 1) }\n}\n"),
    "clique": ("network n() {\n  input x: [8, 8, 8]\n  clique(4, 4, bottleneck = true, rounds = 2, partial = 3) as b1\n"
               "  output head = b1.feature -> gap\n  expect params > 0\n}\n"),
    "outputs": ("network n() {\n  input a: [4, 10], b: [2, 3, 4, 4]\n  output o1 = a -> conv(4, 3)\n"
                "  output o2 = b -> conv(2, 3) -> gap\n}\n"),
}


@pytest.mark.parametrize("name", NETWORKS)
def test_yaml_round_trip_gives_an_equal_graph(name):
    g = build_ir(NETWORKS[name])
    back = ir.from_yaml(ir.to_yaml(g))
    assert ir.equal(g, back)
    assert ir.to_yaml(back) == ir.to_yaml(g)
    assert all(isinstance(d["shape"], tuple) for _, d in back.nodes(data=True))
    assert ir.topological_order(back) == ir.topological_order(g)


def test_equal_sees_every_difference():
    g = build_ir(NETWORKS["plain"])
    for change in (lambda h: h.nodes["conv1"].update(params=1), lambda h: h.graph.update(network="m"),
                   lambda h: h.remove_edge("conv1", "bn1"), lambda h: h.edges["bn1", "relu1", 0].update(port=1)):
        other = ir.from_yaml(ir.to_yaml(g))
        change(other)
        assert not ir.equal(g, other)


def test_clique_feedback_edges_and_order():
    g = build_ir(NETWORKS["clique"])
    feedback = sorted((u, v) for u, v, d in g.edges(data=True) if d["kind"] == "feedback")
    # partial = 3: layers 1..3 are updated in stage II from every later layer
    assert feedback == [("b1.x2", "b1.x1"), ("b1.x3", "b1.x1"), ("b1.x3", "b1.x2"), ("b1.x4", "b1.x1"),
                        ("b1.x4", "b1.x2"), ("b1.x4", "b1.x3")]
    assert g.edges["b1.x4", "b1.x1", 4]["weight"] == "W_4_1"
    assert g.edges["b1.x1", "b1.x3", 1] == {"port": 1, "kind": "data", "weight": "W_1_3", "shared": True}
    assert g.edges["x", "b1.x2", 0]["shared"] is False
    order = ir.topological_order(g)
    assert order.index("b1.x1") < order.index("b1.x2") < order.index("b1.x3") < order.index("b1.x4")
    assert ir.data_inputs(g, "b1.x3") == ["x", "b1.x1", "b1.x2"]
    assert [u for u, _ in ir.all_inputs(g, "b1.x2")] == ["x", "b1.x1", "b1.x3", "b1.x4"]
    assert ir.layers(g)[-1] == "gap1"


def test_graph_attributes():
    g = build_ir(NETWORKS["outputs"])
    assert g.graph["inputs"] == ["a", "b"]
    assert g.graph["outputs"] == {"o1": "conv1", "o2": "gap1"}
    assert g.graph["network"] == g.graph["definition"] == "n"
    g = build_ir(NETWORKS["clique"])
    assert g.graph["scopes"]["b1"]["kind"] == "clique"
    assert g.graph["checks"][0]["expect"] == "params > 0" and g.graph["checks"][0]["ok"]


def test_infer_recomputes_the_same_facts():
    g = build_ir(NETWORKS["branches"])
    before = {n: (d["shape"], d["params"], d["macs"]) for n, d in g.nodes(data=True)}
    assert ir.infer(g) == []
    assert {n: (d["shape"], d["params"], d["macs"]) for n, d in g.nodes(data=True)} == before


def test_infer_reports_an_edited_graph_that_no_longer_fits():
    g = build_ir(NETWORKS["plain"])
    g.nodes["x"]["shape"] = (3, 1, 1)
    failures = ir.infer(g)
    assert [(name, exc.message) for name, exc in failures] == [
        ("maxpool1", "a 2x2 window does not fit the [8, 1, 1] input")]
    assert g.nodes["fc1"]["shape"] is None


def test_the_yaml_shown_in_the_docs_is_part_of_the_real_yaml():
    page = (DOCS / "ir.md").read_text(encoding="utf-8")
    spec = re.search(r"```arch\n(.*?)```", page, re.DOTALL).group(1)
    shown = yaml.safe_load(re.search(r"```yaml\n(.*?)```", page, re.DOTALL).group(1))
    real = yaml.safe_load(ir.to_yaml(build_ir(spec)))
    assert shown["graph"] == real["graph"]
    for node in shown["nodes"]:
        assert node in real["nodes"]
    for edge in shown["edges"]:
        assert edge in real["edges"]


def test_totals():
    g = build_ir(NETWORKS["plain"])
    assert ir.total_params(g) == (8 * 27 + 8) + 16 + (80 + 10)
    assert ir.total_macs(g) == 16 * 16 * 8 * 27 + 80
