"""Front-end speed: parse + IR build + shape validation of deep CIFAR ResNets, and CLI start-to-finish.

Builds the CIFAR ResNet of He et al. (2016, section 4.2; option A shortcuts) with n = 25, 50, 100 and
200 blocks per stage (ResNet-152 ... ResNet-1202 by depth 6n + 2), timing each stage separately, then
times `archdsl check` and `archdsl summary` as fresh processes and checks that neither imports torch.

    python benchmarks/frontend.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archdsl import ir
from archdsl.elaborate import elaborate
from archdsl.loader import load_text

SPEC = """# CIFAR ResNet (He et al. 2016, section 4.2): depth 6n + 2, option A shortcuts.
block basic(c, stride = 1) {
  residual(shortcut = "A") {
    conv(c, 3, stride = stride, bias = false) -> bn -> relu
    conv(c, 3, bias = false) -> bn
  }
  relu
}
network cifar_resnet(n = 3, classes = 10) {
  input image: [3, 32, 32]
  conv(16, 3, bias = false) -> bn -> relu
  for s, c in enumerate([16, 32, 64]) {
    group "stage{s + 1}" {
      for i in range(n) { basic(c, stride = (s > 0 and i == 0) ? 2 : 1) as "block{i}" }
    }
  }
  output logits = gap -> fc(classes)
}
resnet20 = cifar_resnet(n = 3) { expect params == 269_722 }
resnet1202 = cifar_resnet(n = 200) { expect params == 19_421_274 }
"""

PROBE = """import sys, time
start = time.perf_counter()
from archdsl.cli import main
code = main(sys.argv[1:])
assert "torch" not in sys.modules, "the front end imported torch"
sys.exit(code)
"""


def best(f, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def build_times(n: int, repeat: int) -> tuple[float, float, float, int]:
    """Seconds for parse, elaborate (build + shape inference + checks) and re-validation; node count."""
    parse = best(lambda: load_text(SPEC, "resnet.arch"), repeat)
    program = load_text(SPEC, "resnet.arch")
    build = best(lambda: elaborate(program, "cifar_resnet", {"n": n}), repeat)
    g = elaborate(program, "cifar_resnet", {"n": n})
    validate = best(lambda: ir.infer(g), repeat)
    assert ir.infer(g) == []
    return parse, build, validate, g.number_of_nodes()


def process_time(args: list[str], repeat: int) -> float:
    def run():
        result = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True,
                                check=False)
        assert result.returncode == 0, result.stderr
    return best(run, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (the best is reported)")
    args = parser.parse_args()

    print(f"{'blocks/stage':>12} {'depth':>6} {'nodes':>6} {'parse ms':>9} {'build ms':>9} {'revalidate ms':>14} "
          f"{'total ms':>9} {'us/node':>8}")
    rows = []
    for n in (25, 50, 100, 200):
        parse, build, validate, nodes = build_times(n, args.repeat)
        total = parse + build + validate
        rows.append((nodes, total))
        print(f"{n:>12} {6 * n + 2:>6} {nodes:>6} {parse * 1e3:>9.1f} {build * 1e3:>9.1f} {validate * 1e3:>14.1f} "
              f"{total * 1e3:>9.1f} {total / nodes * 1e6:>8.1f}")
    per_node = [t / nodes for nodes, t in rows]
    print(f"growth: time per node varies {max(per_node) / min(per_node):.2f}x from n=25 to n=200 (1.0 = linear)")

    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "resnet.arch"
        spec.write_text(SPEC)
        for label, cli in (("archdsl check (both variants)", ["check", str(spec)]),
                           ("archdsl summary -n resnet1202", ["summary", str(spec), "-n", "resnet1202"]),
                           ("python -c 'import archdsl.cli'", None)):
            if cli is None:
                seconds = best(lambda: subprocess.run([sys.executable, "-c", "import archdsl.cli"], cwd=ROOT,
                                                      check=True), args.repeat)
            else:
                seconds = process_time(cli, args.repeat)
            print(f"{label:<32} {seconds * 1e3:>8.0f} ms (process start to finish, torch not imported)")


if __name__ == "__main__":
    main()
