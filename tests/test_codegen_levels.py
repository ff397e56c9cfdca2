"""Code generation terminates when one group name nests in itself through other blocks.

Instances of one group name share a class made in one round (codegen `_levels`); a group "g" that
holds a block whose group "s" has, in another block, a group "g" inside it cannot share one round:
before the fix this looped forever (found on imported EfficientNet-V2 specs, whose blocks and stages
both have groups named "group1")."""

from __future__ import annotations

import signal

import torch

import archdsl

SPEC = """\
block a() {
  input x
  group "s" {
    conv(8, 3) as conv
  }
}

block b() {
  input x
  group "s" {
    group "g" {
      conv(8, 3) as conv
    }
  }
}

network n() {
  input x: [8, 8, 8]
  group "g" {
    a() as a1
  }
  b() as b1
  expect params == 1_168
}
"""


def _timeout(signum, frame):
    raise TimeoutError("code generation did not terminate")


def test_a_group_name_nested_in_itself_through_other_blocks_compiles():
    old = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(60)
    try:
        model = archdsl.build(SPEC).eval()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert sum(p.numel() for p in model.parameters()) == 1_168
    assert [k for k in model.state_dict() if k.endswith("weight")] == ["g.a1.s.conv.weight", "b1.s.g.conv.weight"]
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        want = model.b1.s.g.conv(model.g.a1.s.conv(x))
        assert torch.equal(model(x), want)
