"""Render the diagram gallery: PNGs (and PDFs) of the specs in specs/, shown by README.md.

Run from the repository root: python examples/gallery/make_gallery.py [NAME ...]
(names draw only those pictures). A spec file or network that does not exist yet is skipped with a message.
"""

from __future__ import annotations

import sys
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
    ("efficientnet_b0", "efficientnet.arch", "efficientnet_b0", RenderOptions(),
     "EfficientNet-B0 at the automatic level of detail: MBConv blocks, repeats folded"),
    ("convnext_tiny", "convnext.arch", "convnext_tiny", RenderOptions(),
     "ConvNeXt-T at the automatic level of detail: each stage's blocks drawn once, open"),
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
    ("efficientnet_v2_s", "efficientnet.arch", "efficientnet_v2_s", "EfficientNetV2-S: Fused-MBConv, then MBConv"),
    ("mobilenet_v2", "mobilenet_v2.arch", "mobilenet_v2", "MobileNetV2: inverted residuals"),
    ("mobilenet_v3_large", "mobilenet_v3.arch", "mobilenet_v3_large", "MobileNetV3-Large"),
    ("mnasnet1_0", "mnasnet.arch", "mnasnet1_0", "MnasNet 1.0 (torchvision's B1)"),
]


def main(names: list[str] | None = None) -> int:
    drawn = 0
    gallery = [entry for entry in GALLERY if not names or entry[0] in names]
    families = [entry for entry in FAMILIES if not names or entry[0] in names]
    for name, file, network, options, caption in gallery:
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
        dg.attr(dpi="110")  # a plain graphviz.Digraph: sharper PNGs for the README
        write(dg, HERE / f"{name}.png")
        dg.attr(dpi="72")
        write(dg, HERE / f"{name}.pdf")
        print(f"wrote examples/gallery/{name}.png and .pdf: {view.note}")
        drawn += 1
    for name, file, network, caption in families:
        g = build_ir(ROOT / "specs" / file, network)
        view = build_view(g, RenderOptions())
        dg = to_digraph(view, RenderOptions())
        dg.attr(dpi="60")
        write(dg, HERE / "families" / f"{name}.png")
        print(f"wrote examples/gallery/families/{name}.png: {view.note}")
        drawn += 1
    print(f"{drawn} of {len(gallery) + len(families)} diagrams drawn")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
