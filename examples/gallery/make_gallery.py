"""Render the diagram gallery: PNGs (and PDFs) of the specs in specs/, shown by README.md.

Run from the repository root: python examples/gallery/make_gallery.py
A spec file or network that does not exist yet is skipped with a message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from archdsl.api import build_ir
from archdsl.diagnostics import ArchError
from archdsl.render import RenderOptions, build_view, to_digraph, write

HERE = Path(__file__).resolve().parent

# (output name, spec file, network, options, caption)
GALLERY = [
    ("lenet5", "lenet.arch", "lenet5", RenderOptions(shapes=True), "LeNet-5, every layer, tensor shapes on edges"),
    ("resnet50_collapsed", "resnet.arch", "resnet50", RenderOptions(fold=True, params=True),
     "ResNet-50, one node per block, repeated blocks folded, parameter counts"),
    ("resnet50_expanded", "resnet.arch", "resnet50", RenderOptions(detail="layers", fold=True),
     "ResNet-50, every layer, each distinct block drawn once (x N)"),
    ("resnet50_gray_lr", "resnet.arch", "resnet50", RenderOptions(detail="blocks", fold=True, direction="LR", theme="gray"),
     "ResNet-50, blocks folded, left to right, grayscale theme"),
    ("densenet121", "densenet.arch", "densenet121", RenderOptions(), "DenseNet-121 at the automatic level of detail"),
    ("densenet121_block1", "densenet.arch", "densenet121", RenderOptions(detail="blocks", expand=("denseblock1",)),
     "DenseNet-121 with its first dense block opened"),
    ("inception_3a", "googlenet.arch", "inception_3a", RenderOptions(shapes=True),
     "GoogLeNet's inception (3a) module, branches side by side"),
    ("highway", "highway.arch", None, RenderOptions(fold=True),
     "A highway network: transform (H), gate (T) and carry paths; the 9 identical layers folded"),
    ("shufflenet_units", "shufflenet.arch", "shufflenet_units", RenderOptions(),
     "ShuffleNet units: grouped 1x1 convolutions, channel shuffle, concat and sum units"),
    ("cliquenet_block", "cliquenet.arch", "cliquenet_k36_t12",
     RenderOptions(collapse=("transition*", "head*")), "CliqueNet: clique blocks with forward and feedback links"),
    ("cliquenet_unrolled", "cliquenet.arch", "cliquenet_k36_t12",
     RenderOptions(detail=0, expand=("block1",), unroll=True),
     "CliqueNet: the first clique block unrolled into stage I and stage II"),
]

# Every other family of specs/, at the automatic level of detail (PNG only).
FAMILIES = [
    ("alexnet", "alexnet.arch", "alexnet", "AlexNet: the two towers and their cross-connections"),
    ("zfnet", "zfnet.arch", "zfnet", "ZFNet"),
    ("vgg16", "vgg.arch", "vgg16", "VGG-16 (configuration D)"),
    ("nin", "nin.arch", "nin", "Network in Network (CIFAR-10)"),
    ("googlenet_aux", "googlenet.arch", "googlenet_aux", "GoogLeNet with its two auxiliary classifiers"),
    ("bn_inception", "bn_inception.arch", "bn_inception", "BN-Inception"),
    ("inception_v3", "inception_v3.arch", "inception_v3", "Inception-v3"),
    ("inception_v4", "inception_v4.arch", "inception_v4", "Inception-v4"),
    ("inception_resnet_v2", "inception_v4.arch", "inception_resnet_v2", "Inception-ResNet-v2"),
    ("resnext50", "resnext.arch", "resnext50_32x4d", "ResNeXt-50 (32x4d)"),
    ("dpn92", "dpn.arch", "dpn92", "DPN-92: residual and dense paths"),
    ("mobilenet", "mobilenet.arch", "mobilenet_1_0_224", "MobileNet v1 1.0-224"),
    ("xception", "xception.arch", "xception", "Xception"),
    ("shufflenet_g3", "shufflenet.arch", "shufflenet_g3", "ShuffleNet v1, g = 3, 1x"),
    ("context_basic", "dilated.arch", "context_basic", "Dilated convolutions: the basic context module"),
    ("fcn8s", "fcn.arch", "fcn8s", "FCN-8s: skips from pool3 and pool4"),
    ("unet", "unet.arch", "unet_572", "U-Net: crop-and-concat skips across scales"),
    ("yolo_v1", "yolo.arch", "yolo_v1", "YOLO v1"),
    ("deep_supervision", "deep_supervision.arch", "c1_deepsup", "Segmentation head with an auxiliary branch"),
    ("seed002_example", "seed002_example.arch", "example", "Seed 002's 338,460-parameter example"),
]


def main() -> int:
    drawn = 0
    for name, file, network, options, caption in GALLERY:
        path = ROOT / "specs" / file
        if not path.exists():
            print(f"skip {name}: specs/{file} does not exist yet")
            continue
        try:
            g = build_ir(path, network)
        except ArchError as exc:
            print(f"skip {name}: {exc.first.message}")
            continue
        view = build_view(g, options)
        dg = to_digraph(view, options)
        write(dg, HERE / f"{name}.png", dpi=110)
        write(dg, HERE / f"{name}.pdf")
        print(f"wrote examples/gallery/{name}.png and .pdf: {view.note}")
        drawn += 1
    drawn += tikz()
    for name, file, network, caption in FAMILIES:
        g = build_ir(ROOT / "specs" / file, network)
        view = build_view(g, RenderOptions())
        dg = to_digraph(view, RenderOptions())
        write(dg, HERE / "families" / f"{name}.png", dpi=60)
        print(f"wrote examples/gallery/families/{name}.png: {view.note}")
        drawn += 1
    print(f"{drawn} of {len(GALLERY) + len(FAMILIES) + 1} diagrams drawn")
    return 0


def tikz() -> int:
    """ResNet-50 as a TikZ picture for LaTeX, and compiled alone with pdflatex when it is installed."""
    options = RenderOptions(fold=True, params=True)
    dg = to_digraph(build_view(build_ir(ROOT / "specs" / "resnet.arch", "resnet50"), options), options)
    write(dg, HERE / "resnet50.tex")
    if shutil.which("pdflatex") is None:
        print("wrote examples/gallery/resnet50.tex (install pdflatex to compile resnet50_tikz.pdf)")
        return 1
    with tempfile.TemporaryDirectory() as folder:
        write(dg, Path(folder) / "resnet50_tikz.tex", standalone=True)
        fixed_date = {**os.environ, "SOURCE_DATE_EPOCH": "946684800", "FORCE_SOURCE_DATE": "1"}  # same bytes each run
        subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "resnet50_tikz.tex"], cwd=folder,
                       check=True, capture_output=True, env=fixed_date)
        shutil.copyfile(Path(folder) / "resnet50_tikz.pdf", HERE / "resnet50_tikz.pdf")
    print("wrote examples/gallery/resnet50.tex and resnet50_tikz.pdf (pdflatex)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
