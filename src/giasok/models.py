"""Victim models (paper §4–§5, Appx B).

Every model here takes images in [0, 1] and normalises them in its first layer, so an attack optimises
plain pixels in a [0, 1] box whatever the architecture.

* ``convnet`` — the configurable ConvNet of Geiping et al. ("Inverting Gradients", 2020): eight 3×3
  convolutions with ReLU, two max-pools, flatten and one linear layer. Its switches are the micro designs
  of the paper's Table 4 (§5.2): ``bias``, ``activation``, ``dropout``, ``max_pool``, ``kernel_size``,
  ``padding``; ``batch_norm=True`` adds Geiping's BatchNorm after each convolution. It is off by default
  because Table 4's standard ConvNet lists no normalisation, and because a client in train mode normalises
  a one-image batch by its own statistics, which on our measurement (width 32, one ``patches`` image,
  1500 iterations) took GIA-O from 25.6 dB to 10.4 dB PSNR — BatchNorm is studied as a factor of its own.
* ``lenet`` — the sigmoid LeNet of DLG (Zhu et al., 2019).
* ``resnet18`` / ``resnet34`` — ResNets with the CIFAR stem (3×3 stride-1 first convolution, no stem
  max-pool), a ``width`` factor, and ``cut_skips=[ids]`` that removes the shortcut of the chosen residual
  blocks (§5.2, Eq. 11–12). Blocks are numbered from 0 in forward order (ResNet-18: #0–#7, ResNet-34:
  #0–#15).
* ``preact_resnet18`` — pre-activation ResNet-18 (He et al., "Identity Mappings in Deep Residual Networks",
  2016), for the pre- vs post-activation comparison of Valadi et al.'s feasibility study (§5.2): the same stages,
  ``width``, ``cut_skips`` and block numbering as ``resnet18``, but each block computes
  conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut(x), with no ReLU after the addition, where a shape-changing
  shortcut is a 1×1 strided convolution (no BN) of relu(bn1(x)), as in the usual CIFAR PreActResNet (kuangliu's
  pytorch-cifar); the stem is Normalize + a bare 3×3 convolution, and BN-ReLU follows the last block, before
  the average pool and the linear classifier (He et al.'s full pre-activation; kuangliu's omits it).
* ``densenet43`` / ``densenet53`` — the DenseNets with connection reduction of Ju and Chiang ("Connection
  Reduction of DenseNet for Image Recognition", ISPACS 2022; code github.com/RuiyangJu/Connection_Reduction,
  MIT), which the paper's Fig. 10 (§5.2) attacks. ``connections`` picks their Baseline (``"dense"``, the
  paper's "baseline"), ShortNet1 (``"shortnet1"``, "variant-1") or ShortNet2 (``"shortnet2"``, "variant-2").
  Stem: a 7×7 convolution (64 channels, stride 1, no bias) and ReLU. Four dense blocks of (8, 10, 12, 8)
  (DenseNet-43) or (10, 12, 16, 8) (DenseNet-53) 3×3 convolutions with bias and growth g = 32: BatchNorm on the
  block's input, conv_1 = relu(Conv(bn(x))), conv_k = relu(Conv(c_{k−1})), where c_1 = conv_1 and c_k
  concatenates conv_j for j ∈ S_k, so conv_k has g·|S_{k−1}| input channels; the block outputs c_L (the block's
  input is never concatenated). The rules: dense S_k = 1…k; shortnet1 S_k = 1, the j in 2…k−1 with
  j ≡ k − 1 (mod 2), and k; shortnet2 S_k = (k − 1, k) for odd k ≥ 3 and, for even k, the k − (2ⁿ − 1) ≥ 1
  (n = 1, 2, …: k − 1, k − 3, k − 7, k − 15, …) and k. After each block a transition Conv1×1 (with bias) →
  ReLU → BatchNorm → 2×2 average pool: the first three halve the block's output channels and the fourth outputs
  128 (shortnet2: it halves too, 128 → 64), which reproduces every count of Ju et al.'s code (DenseNet-43
  dense 128/160/192/128, shortnet1 80/96/112/128, shortnet2 64/64/64/64; DenseNet-53 dense 160/192/256/128,
  shortnet1 96/112/144/128, shortnet2 64/64/80/64). Head: BatchNorm, flatten, Linear(→ 512), Linear(512 →
  classes), no activation between (as in their code). At width 1 the parameter counts are 2.17 / 1.59 / 0.97 M
  (DenseNet-43) and 3.15 / 2.16 / 1.20 M (DenseNet-53), the #Params of Ju et al.'s README. ``width`` (> 0)
  scales the growth to round(32·width) (at least 1), the stem to round(64·width) and each transition's output
  likewise; ``image_size`` (a multiple of 16, default 32) sizes the first linear layer, as four pools divide
  the side by 16. ``skip_connections(model)`` counts the non-sequential connections of the dense blocks.
  At ``image_size=16`` the head's BatchNorm sees 1×1 maps, so in train mode it normalises each channel over the
  batch alone: one image raises PyTorch's "Expected more than 1 value per channel", and two come out as v and
  −v with |v| ≤ 1 (±1 unless the two values nearly coincide, up to BatchNorm's eps), so the classifier sees
  little more than the sign of their difference per channel; train-mode clients want 3+ images there, or 32×32 inputs.

``resnet18`` is torchvision's ResNet-18 layout (same parameters, in the same order, once torchvision's 7×7
stride-2 stem convolution is a 3×3 stride-1 one), written out here so that ``cut_skips`` can reach each block.

The nine-model zoo of §5.1 (``ZOO``): VGG-11/16/19, ResNet-18/50/152, DenseNet-121, GoogLeNet and
Inception-v3. Apart from ``resnet18`` above they are torchvision's definitions, wrapped so that they first
apply ``Normalize`` (the last ``nn.Linear`` in ``named_modules()`` order is the classifier), each with a
keyword-only ``width`` (> 0, default 1) that scales every channel count. The channel counts of each net are
multiples of a step (VGG and ResNet-50/152: 64, DenseNet-121: 32, Inception-v3: 16, GoogLeNet: 8), so a
width works iff it is a multiple of 1/step (0.125, 0.25, 0.5, 1 work for all); other widths raise ValueError.
The image's 3 input channels are never scaled. They return plain logits in train and eval mode (no
auxiliary heads, no ``transform_input``). Their adaptations to 32×32 inputs:

* ``vgg11`` / ``vgg16`` / ``vgg19`` — ``CifarVGG``: torchvision's ``make_layers`` features for configs
  A / D / E (no BatchNorm); the 7×7 adaptive average pool becomes a 1×1 one (five max-pools leave 32×32
  at 1×1), so the classifier, still Linear-ReLU-Dropout-Linear-ReLU-Dropout-Linear, maps 512·w → 4096·w →
  4096·w → classes instead of 25088 → 4096 → 4096 → classes.
* ``resnet50`` / ``resnet152`` — torchvision's ``ResNet`` with ``Bottleneck`` blocks [3, 4, 6, 3] /
  [3, 8, 36, 3]; CIFAR stem: conv1 is 3×3 stride 1 (no bias) and the stem max-pool is dropped (Identity).
  Stages are built by torchvision's own ``_make_layer`` from the scaled base width 64·w.
* ``densenet121`` — torchvision's ``DenseNet`` with growth rate 32·w, blocks (6, 12, 24, 16) and 64·w
  initial features; stem conv0 is 3×3 stride 1, pool0 is dropped (the three transitions take 32 → 4).
* ``googlenet`` — torchvision's ``GoogLeNet`` (no aux heads) built with width-scaled conv blocks; conv1 is
  3×3 stride 1 with 64·w outputs, maxpool1 and maxpool2 are dropped, so maxpool3/4 take 32 → 16 → 8;
  fc is 1024·w → classes.
* ``inception_v3`` — torchvision's ``Inception3`` (no aux head) built with width-scaled conv blocks;
  Conv2d_1a_3x3 is stride 1 with padding 1, Conv2d_2a_3x3 and Conv2d_4a_3x3 get padding 1, maxpool1 and
  maxpool2 are dropped, so Mixed_6a and Mixed_7a take 32 → 15 → 7; fc is 2048·w → classes.

Initialisation. ``convnet``, ``lenet``, ``resnet18``, ``resnet34``, ``preact_resnet18``, ``densenet43`` and
``densenet53`` keep the initialisation their constructors draw (PyTorch's defaults; Ju et al.'s code sets no
other). The other zoo models take ``init``:

* ``"torchvision"`` (default) — as ``torchvision.models.<name>()`` initialises the architecture without
  pretrained weights: its own rule (VGG: Kaiming-normal convolutions, N(0, 0.01) linears; ResNet and
  DenseNet: Kaiming-normal convolutions; GoogLeNet and Inception-v3: truncated normals), applied after the
  32×32 adaptation so replaced layers get it too. Parameters the rule leaves alone keep PyTorch's default.
* ``"pytorch"`` — PyTorch's default module initialisation alone (``reset_parameters()`` everywhere).

Why ``"torchvision"`` by default, although "PyTorch defaults" is the other natural reading: the paper's
models come from torchvision's constructors (as in the GIA code it builds on), and those apply the rules
above; ``init="pytorch"`` gives the literal module defaults for comparison. Neither rescues VGG at the
``cpu`` budget: without BatchNorm, VGG-11 at width 1/8 stayed at chance (0.10 test accuracy) through 20
FedAvg rounds at lr 0.01 (5 clients × 100 ``patches``, 8 local steps a round) under either rule, which is
why the ``cpu`` profile of §5.1 uses the other three families.

``build_model(name, num_classes, seed=…, **options)`` is the one entry point; ``MODELS`` lists the names
and ``model_options(name)`` the options each accepts.

Architecture analysis (§5.2): ``skip_connections(model)`` (above); ``inception_blocks(model)`` names the
Inception ("net-in-net", NIN) blocks of a ``googlenet`` / ``inception_v3`` in forward order (Table 3's #1–#4
are the first four); ``parameter_names(model, prefix)`` and ``parameter_share(model, prefix)`` give the
parameters inside a module and their fraction of the model's.
"""
from __future__ import annotations

import functools
import inspect
from collections import OrderedDict

import torch
from torch import nn

# torchvision is imported where a zoo model is built: importing it costs about a second

__all__ = ["MODELS", "ZOO", "build_model", "model_options", "Normalize", "ConvNet", "LeNet", "CifarResNet",
           "CifarVGG", "PreActBlock", "ReducedDenseNet", "skip_connections", "inception_blocks", "parameter_names",
           "parameter_share", "CONVNET_MODIFICATIONS"]

# The nine architectures of §5.1, in the paper's order.
ZOO = ("vgg11", "vgg16", "vgg19", "resnet18", "resnet50", "resnet152", "densenet121", "googlenet", "inception_v3")

# CIFAR-10 channel statistics; a model's first layer maps [0, 1] pixels with them.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


class Normalize(nn.Module):
    """(x − mean) / std per channel, as the model's first layer (no parameters, so no gradient leaks)."""

    def __init__(self, mean=CIFAR_MEAN, std=CIFAR_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std


class ConvNet(nn.Module):
    """Geiping et al.'s ConvNet with the micro-design switches of Table 4.

    Layout: conv(w) conv(2w) conv(2w) conv(4w) conv(4w) conv(4w) [maxpool 3] conv(4w) conv(4w) [maxpool 3]
    [dropout] flatten linear. Each conv is followed by [BatchNorm] and, if ``activation``, ReLU.
    """

    def __init__(self, num_classes: int, *, width: int = 32, in_channels: int = 3, image_size: int = 32,
                 bias: bool = True, activation: bool = True, dropout: float = 0.0, max_pool: bool = True,
                 kernel_size: int = 3, padding: int = 1, batch_norm: bool = False):
        super().__init__()
        if width < 1 or kernel_size < 1 or padding < 0 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"convnet: need width ≥ 1, kernel_size ≥ 1, padding ≥ 0, 0 ≤ dropout < 1; "
                             f"got width={width}, kernel_size={kernel_size}, padding={padding}, dropout={dropout}")
        widths = [width, 2 * width, 2 * width, 4 * width, 4 * width, 4 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = [Normalize()]
        channels = in_channels
        for i, out in enumerate(widths):
            layers.append(nn.Conv2d(channels, out, kernel_size, padding=padding, bias=bias))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            if activation:
                layers.append(nn.ReLU())
            if max_pool and i in (5, 7):
                layers.append(nn.MaxPool2d(3))
            channels = out
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        # the flattened size depends on kernel, padding and pooling; in eval mode, so that dropout draws nothing
        # from the RNG and the classifier's initial weights do not depend on the dropout rate
        with torch.no_grad():
            try:
                n_features = self.features.eval()(torch.zeros(2, in_channels, image_size, image_size)).shape[1]
            except RuntimeError as error:
                raise ValueError(f"convnet: image_size={image_size} is too small for kernel_size={kernel_size}, "
                                 f"padding={padding}, max_pool={max_pool}") from error
        self.features.train()
        self.classifier = nn.Linear(n_features, num_classes, bias=bias)

    def forward(self, x):
        return self.classifier(self.features(x))


# Table 4 (§5.2): the ConvNet's micro-design modifications, as ``convnet`` options replacing the standard's (bias,
# ReLU, two max-pools, one dropout layer, 3×3 kernels, padding 1); "none" is the standard ConvNet itself.
CONVNET_MODIFICATIONS = {
    "none": (),
    "remove ReLU": (("activation", False),),
    "remove dropout": (("dropout", 0.0),),
    "remove max-pool": (("max_pool", False),),
    "kernel 4": (("kernel_size", 4),),
    "remove bias": (("bias", False),),
    "kernel 2": (("kernel_size", 2),),
    "kernel 1": (("kernel_size", 1),),
    "padding 2": (("padding", 2),),
    "padding 3": (("padding", 3),),
}

class LeNet(nn.Module):
    """The LeNet of DLG (Zhu et al., 2019): three strided 5×5 convolutions with sigmoids, then linear."""

    def __init__(self, num_classes: int, *, in_channels: int = 3, image_size: int = 32):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"lenet: image_size must be a multiple of 4, got {image_size}")
        self.features = nn.Sequential(
            Normalize(),
            nn.Conv2d(in_channels, 12, 5, padding=2, stride=2), nn.Sigmoid(),
            nn.Conv2d(12, 12, 5, padding=2, stride=2), nn.Sigmoid(),
            nn.Conv2d(12, 12, 5, padding=2, stride=1), nn.Sigmoid(),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(12 * (image_size // 4) ** 2, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """ResNet basic block; with ``skip=False`` the shortcut (and its projection) is gone: out = relu(F(x))."""

    preactivation = False  # CifarResNet: BN-ReLU in the stem, none before the pool

    def __init__(self, in_planes: int, planes: int, stride: int, skip: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.skip = skip
        self.shortcut = None
        if skip and (stride != 1 or in_planes != planes):
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        if self.skip:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        return torch.relu(out)


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al., "Identity Mappings in Deep Residual Networks", 2016).

    out = conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut, where the shortcut is x, or — when the shape
    changes — a 1×1 strided convolution (no BN) of relu(bn1(x)), as in the usual CIFAR PreActResNet. No ReLU
    follows the addition. With ``skip=False`` the shortcut (and its projection) is gone: out = F(x).
    """

    preactivation = True  # CifarResNet: a bare stem convolution, BN-ReLU before the pool

    def __init__(self, in_planes: int, planes: int, stride: int, skip: bool):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.skip = skip
        self.shortcut = None
        if skip and (stride != 1 or in_planes != planes):
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x):
        pre = torch.relu(self.bn1(x))
        out = self.conv2(torch.relu(self.bn2(self.conv1(pre))))
        if self.skip:
            out = out + (x if self.shortcut is None else self.shortcut(pre))
        return out


class CifarResNet(nn.Module):
    """ResNet with the CIFAR stem; ``blocks`` per stage, stage widths (w, 2w, 4w, 8w) with w = 64·width.

    ``block`` is ``BasicBlock`` (post-activation: stem conv-BN-ReLU) or ``PreActBlock`` (pre-activation: a bare
    stem conv, and BN-ReLU after the last block, before the pool).
    """

    def __init__(self, blocks: tuple[int, ...], num_classes: int, *, width: float = 1.0, in_channels: int = 3,
                 cut_skips=(), block: type = BasicBlock):
        super().__init__()
        name = "preact_resnet" if block.preactivation else "resnet"
        n_blocks = sum(blocks)
        cut = set(int(i) for i in cut_skips)
        if width <= 0:
            raise ValueError(f"{name}: width must be > 0, got {width}")
        if not cut <= set(range(n_blocks)):
            raise ValueError(f"{name}: cut_skips must be block ids in 0..{n_blocks - 1}, got {sorted(cut)}")
        base = max(1, round(64 * width))
        stem = [Normalize(), nn.Conv2d(in_channels, base, 3, padding=1, bias=False)]
        if not block.preactivation:
            stem += [nn.BatchNorm2d(base), nn.ReLU()]
        self.stem = nn.Sequential(*stem)
        stages, in_planes, block_id = [], base, 0
        for stage, count in enumerate(blocks):
            planes = base * 2 ** stage
            layer = []
            for j in range(count):
                layer.append(block(in_planes, planes, stride=2 if (stage > 0 and j == 0) else 1,
                                   skip=block_id not in cut))
                in_planes, block_id = planes, block_id + 1
            stages.append(nn.Sequential(*layer))
        self.layers = nn.Sequential(*stages)
        # registered for pre-activation only, so that the post-activation nets keep their modules and state_dict
        self.final = nn.Sequential(nn.BatchNorm2d(in_planes), nn.ReLU()) if block.preactivation else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_planes, num_classes)

    def blocks(self) -> list[nn.Module]:
        """The residual blocks in forward order (index = the id used by ``cut_skips``)."""
        return [b for stage in self.layers for b in stage]

    def forward(self, x):
        out = self.layers(self.stem(x))
        if self.final is not None:
            out = self.final(out)
        return self.classifier(torch.flatten(self.pool(out), 1))


def _resnet18(num_classes: int, *, width: float = 1.0, in_channels: int = 3, cut_skips=()):
    return CifarResNet((2, 2, 2, 2), num_classes, width=width, in_channels=in_channels, cut_skips=cut_skips)


def _resnet34(num_classes: int, *, width: float = 1.0, in_channels: int = 3, cut_skips=()):
    return CifarResNet((3, 4, 6, 3), num_classes, width=width, in_channels=in_channels, cut_skips=cut_skips)


def _preact_resnet18(num_classes: int, *, width: float = 1.0, in_channels: int = 3, cut_skips=()):
    return CifarResNet((2, 2, 2, 2), num_classes, width=width, in_channels=in_channels, cut_skips=cut_skips,
                       block=PreActBlock)


# every channel count of the architecture is a multiple of this (see _check_width)
_STEPS = {"vgg": 64, "resnet": 64, "densenet": 32, "googlenet": 8, "inception_v3": 16,
          "swin": 32}  # Swin: each head is 32·width wide (96·width channels over 3 heads)


def _check_width(name: str, width, step: int):
    """``name``'s channel counts are multiples of ``step``: scaled, they are integers iff width·step is."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"{name}: width must be a number > 0, got {width!r}")
    if abs(width * step - round(width * step)) > 1e-9:
        raise ValueError(f"{name}: width={width} gives non-integer channel counts (they are multiples of "
                         f"{step}, and {step}·{width} = {step * width:g}); widths that work are the positive "
                         f"multiples of 1/{step} = {1 / step:g}, e.g. 0.125, 0.25, 0.5, 1")


def _scale(channels: int, width: float) -> int:
    """``channels``·``width`` as an int, after ``_check_width`` made it integral."""
    scaled = channels * width
    if abs(scaled - round(scaled)) > 1e-9 or round(scaled) < 1:  # a step in _STEPS would be wrong
        raise ValueError(f"width={width} scales {channels} channels to {scaled:g}, not a positive integer")
    return int(round(scaled))


def _scaled_conv_block(block, width: float):
    """A conv-block factory for torchvision's GoogLeNet / Inception3 whose channel counts are scaled by ``width``.

    Only the image's 3 input channels stay as they are (no inner layer of these nets has 3 channels).
    """
    def conv_block(in_channels: int, out_channels: int, **kwargs) -> nn.Module:
        in_scaled = in_channels if in_channels == 3 else _scale(in_channels, width)
        return block(in_scaled, _scale(out_channels, width), **kwargs)
    return conv_block


class _Normalized(nn.Module):
    """``net(normalize(x))``: a torchvision net fed [0, 1] images."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.normalize = Normalize()
        self.net = net

    def forward(self, x):
        return self.net(self.normalize(x))


def _default_init(model: nn.Module) -> nn.Module:
    """PyTorch's default initialisation: ``reset_parameters()`` on every submodule that has it."""
    for module in model.modules():
        if callable(getattr(module, "reset_parameters", None)):
            module.reset_parameters()
    return model


def _torchvision_rule(family: str, module: nn.Module):
    """torchvision's initialisation of one module of a ``family`` network (its constructors' init loops)."""
    init = nn.init
    if isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
        init.ones_(module.weight)
        init.zeros_(module.bias)
    elif family in ("vgg", "resnet") and isinstance(module, nn.Conv2d):
        init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None and family == "vgg":
            init.zeros_(module.bias)
    elif family == "vgg" and isinstance(module, nn.Linear):
        init.normal_(module.weight, 0, 0.01)
        init.zeros_(module.bias)
    elif family == "densenet" and isinstance(module, nn.Conv2d):
        init.kaiming_normal_(module.weight)
    elif family == "densenet" and isinstance(module, nn.Linear):
        init.zeros_(module.bias)
    elif family == "swin" and isinstance(module, nn.Linear):
        init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif family in ("googlenet", "inception_v3") and isinstance(module, (nn.Conv2d, nn.Linear)):
        std = 0.01 if family == "googlenet" else float(getattr(module, "stddev", 0.1))
        init.trunc_normal_(module.weight, mean=0.0, std=std, a=-2, b=2)


INITS = ("torchvision", "pytorch")


def _zoo_model(net: nn.Module, family: str, init: str) -> nn.Module:
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    model = _default_init(_Normalized(net))
    if init == "torchvision":
        for module in model.modules():
            _torchvision_rule(family, module)
    return model


class CifarVGG(nn.Module):
    """torchvision's VGG (no BatchNorm) for 32×32 inputs: a 1×1 average pool and a classifier from 512·w.

    ``cfg`` is one of ``torchvision.models.vgg.cfgs`` (unscaled); ``width`` must make every count an integer.
    """

    def __init__(self, cfg, num_classes: int, *, width: float = 1.0, dropout: float = 0.5):
        super().__init__()
        from torchvision.models.vgg import make_layers

        _check_width("vgg", width, _STEPS["vgg"])
        self.features = make_layers([v if v == "M" else _scale(v, width) for v in cfg], batch_norm=False)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # five max-pools leave 32×32 inputs at 1×1
        hidden = _scale(4096, width)
        self.classifier = nn.Sequential(
            nn.Linear(_scale(512, width), hidden), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _vgg(name: str, cfg: str, num_classes: int, width: float, init: str) -> nn.Module:
    from torchvision.models.vgg import cfgs

    _check_width(name, width, _STEPS["vgg"])
    return _zoo_model(CifarVGG(cfgs[cfg], num_classes, width=width), "vgg", init)


def _vgg11(num_classes: int, *, width: float = 1.0, init: str = "torchvision"):
    return _vgg("vgg11", "A", num_classes, width, init)


def _vgg16(num_classes: int, *, width: float = 1.0, init: str = "torchvision"):
    return _vgg("vgg16", "D", num_classes, width, init)


def _vgg19(num_classes: int, *, width: float = 1.0, init: str = "torchvision"):
    return _vgg("vgg19", "E", num_classes, width, init)


def _bottleneck_resnet(name: str, layers: list[int], num_classes: int, width: float, init: str) -> nn.Module:
    """torchvision's Bottleneck ResNet with the CIFAR stem and stage widths (1, 2, 4, 8)·64·width."""
    from torchvision.models.resnet import Bottleneck, ResNet

    _check_width(name, width, _STEPS["resnet"])
    block, base = Bottleneck, _scale(64, width)
    net = ResNet(block, [1, 1, 1, 1], num_classes=num_classes)  # cheap; the stages are rebuilt below
    net.conv1 = nn.Conv2d(3, base, kernel_size=3, stride=1, padding=1, bias=False)
    net.bn1 = net._norm_layer(base)
    net.maxpool = nn.Identity()
    net.inplanes = base
    net.layer1 = net._make_layer(block, base, layers[0])
    net.layer2 = net._make_layer(block, 2 * base, layers[1], stride=2)
    net.layer3 = net._make_layer(block, 4 * base, layers[2], stride=2)
    net.layer4 = net._make_layer(block, 8 * base, layers[3], stride=2)
    net.fc = nn.Linear(8 * base * block.expansion, num_classes)
    return _zoo_model(net, "resnet", init)


def _resnet50(num_classes: int, *, width: float = 1.0, init: str = "torchvision"):
    return _bottleneck_resnet("resnet50", [3, 4, 6, 3], num_classes, width, init)


def _resnet152(num_classes: int, *, width: float = 1.0, init: str = "torchvision"):
    return _bottleneck_resnet("resnet152", [3, 8, 36, 3], num_classes, width, init)


def _densenet121(num_classes: int, *, width: float = 1.0, init: str = "torchvision"):
    from torchvision.models.densenet import DenseNet

    _check_width("densenet121", width, _STEPS["densenet"])
    stem = _scale(64, width)
    net = DenseNet(growth_rate=_scale(32, width), block_config=(6, 12, 24, 16), num_init_features=stem,
                   num_classes=num_classes)
    net.features.conv0 = nn.Conv2d(3, stem, kernel_size=3, stride=1, padding=1, bias=False)
    net.features.pool0 = nn.Identity()
    return _zoo_model(net, "densenet", init)


# Ju et al.'s connection rules (§5.2, Fig. 10): the ids of the earlier layers whose outputs make up c_k
DENSENET_CONNECTIONS = ("dense", "shortnet1", "shortnet2")


def _sources(connections: str, k: int) -> tuple[int, ...]:
    """S_k: the layers (1-based, increasing, ending with k) whose outputs are concatenated into c_k."""
    if k == 1:
        return (1,)
    if connections == "dense":  # Baseline: every earlier layer
        return tuple(range(1, k + 1))
    if connections == "shortnet1":  # the first layer and every other layer counted back from k − 1
        return (1,) + tuple(j for j in range(2, k) if (k - 1 - j) % 2 == 0) + (k,)
    # ShortNet2: odd k keep only k − 1; even k reach back 1, 3, 7, 15, … (2^n − 1) layers
    if k % 2:
        return (k - 1, k)
    back = [k - (2 ** n - 1) for n in range(1, k.bit_length() + 1) if k - (2 ** n - 1) >= 1]
    return tuple(sorted(back)) + (k,)


class ReducedDenseBlock(nn.Module):
    """One dense block of Ju et al.: ``layers`` 3×3 convolutions (with bias) of ``growth`` channels each.

    conv_1 = relu(Conv(bn(x))), conv_k = relu(Conv(c_{k−1})) for k ≥ 2, with c_1 = conv_1 and c_k the
    concatenation of conv_j for j ∈ S_k (``sources[k − 1]``); the block returns c_L. The block's input is not
    concatenated. Ju et al. also apply a ReLU to each concatenation; its inputs are ReLU outputs already, so that
    ReLU is the identity (in value and gradient) and is left out. Modules: ``norm``, ``conv1`` … ``conv<L>``.
    """

    def __init__(self, in_channels: int, layers: int, growth: int, connections: str):
        super().__init__()
        self.sources = [_sources(connections, k) for k in range(1, layers + 1)]
        self.norm = nn.BatchNorm2d(in_channels)
        for k in range(1, layers + 1):
            channels = in_channels if k == 1 else growth * len(self.sources[k - 2])
            self.add_module(f"conv{k}", nn.Conv2d(channels, growth, 3, padding=1))
        self.out_channels = growth * len(self.sources[-1])

    def forward(self, x):
        outs, c = [], self.norm(x)
        for k, sources in enumerate(self.sources, start=1):
            outs.append(torch.relu(getattr(self, f"conv{k}")(c)))
            c = outs[0] if k == 1 else torch.cat([outs[j - 1] for j in sources], 1)
        return c

    def skip_connections(self) -> int:
        """The edges conv_j → conv_k (j ∈ S_{k−1}, j ≠ k − 1) and conv_j → output (j ∈ S_L, j ≠ L)."""
        return sum(len(sources) - 1 for sources in self.sources)


class ReducedDenseNet(nn.Module):
    """DenseNet-43 / DenseNet-53 with connection reduction (Ju and Chiang, "Connection Reduction of DenseNet for
    Image Recognition", ISPACS 2022; the paper's Fig. 10, §5.2). See the module docstring for the layout, and for
    why 16×16 inputs want three or more images per batch in train mode."""

    def __init__(self, layers: tuple[int, ...], num_classes: int, *, connections: str = "dense",
                 width: float = 1.0, image_size: int = 32, name: str = "densenet"):
        super().__init__()
        if connections not in DENSENET_CONNECTIONS:
            raise ValueError(f"{name}: connections must be one of {DENSENET_CONNECTIONS}, got {connections!r}")
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise ValueError(f"{name}: width must be a number > 0, got {width!r}")
        growth, stem = round(32 * width), round(64 * width)
        if growth < 1:
            raise ValueError(f"{name}: width={width} leaves round(32·width) = {growth} growth channels; "
                             f"need width > 1/64 (about 0.016)")
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 16 or image_size % 16:
            raise ValueError(f"{name}: image_size must be a positive multiple of 16 (four 2×2 pools), "
                             f"got {image_size!r}")
        self.stem = nn.Sequential(Normalize(), nn.Conv2d(3, stem, 7, padding=3, bias=False), nn.ReLU())
        features, channels = [], stem
        for i, count in enumerate(layers, start=1):
            block = ReducedDenseBlock(channels, count, growth, connections)
            # at width 1: halve the block's output, except the last transition of dense / shortnet1 (128)
            full = 32 * len(block.sources[-1])
            out = 128 if (i == len(layers) and connections != "shortnet2") else full // 2
            channels = max(1, round(out * width))
            transition = nn.Sequential(nn.Conv2d(block.out_channels, channels, 1), nn.ReLU(),
                                       nn.BatchNorm2d(channels), nn.AvgPool2d(2))
            features += [(f"block{i}", block), (f"transition{i}", transition)]
        self.features = nn.Sequential(OrderedDict(features))
        self.norm = nn.BatchNorm2d(channels)
        # each transition halves the side: channels × (image_size / 2^4)² features
        self.pre_classifier = nn.Linear(channels * (image_size // 2 ** len(layers)) ** 2, 512)
        self.classifier = nn.Linear(512, num_classes)  # no activation in between, as in Ju et al.'s code

    def forward(self, x):
        out = torch.flatten(self.norm(self.features(self.stem(x))), 1)
        return self.classifier(self.pre_classifier(out))


def _densenet43(num_classes: int, *, connections: str = "dense", width: float = 1.0, image_size: int = 32):
    return ReducedDenseNet((8, 10, 12, 8), num_classes, connections=connections, width=width,
                           image_size=image_size, name="densenet43")


def _densenet53(num_classes: int, *, connections: str = "dense", width: float = 1.0, image_size: int = 32):
    return ReducedDenseNet((10, 12, 16, 8), num_classes, connections=connections, width=width,
                           image_size=image_size, name="densenet53")


def _googlenet(num_classes: int, *, width: float = 1.0, init: str = "torchvision"):
    from torchvision.models.googlenet import BasicConv2d, GoogLeNet, Inception, InceptionAux

    _check_width("googlenet", width, _STEPS["googlenet"])
    conv = _scaled_conv_block(BasicConv2d, width)
    net = GoogLeNet(num_classes=num_classes, aux_logits=False, transform_input=False, init_weights=False,
                    blocks=[conv, functools.partial(Inception, conv_block=conv),
                            functools.partial(InceptionAux, conv_block=conv)])
    net.conv1 = conv(3, 64, kernel_size=3, stride=1, padding=1)
    net.maxpool1 = nn.Identity()
    net.maxpool2 = nn.Identity()
    net.fc = nn.Linear(_scale(1024, width), num_classes)
    return _zoo_model(net, "googlenet", init)


def _inception_v3(num_classes: int, *, width: float = 1.0, init: str = "torchvision"):
    from torchvision.models import inception as tv

    _check_width("inception_v3", width, _STEPS["inception_v3"])
    conv = _scaled_conv_block(tv.BasicConv2d, width)
    inception_blocks = (tv.InceptionA, tv.InceptionB, tv.InceptionC, tv.InceptionD, tv.InceptionE, tv.InceptionAux)
    blocks = [conv] + [functools.partial(block, conv_block=conv) for block in inception_blocks]
    net = tv.Inception3(num_classes=num_classes, aux_logits=False, transform_input=False, init_weights=False,
                        inception_blocks=blocks)
    net.Conv2d_1a_3x3 = conv(3, 32, kernel_size=3, stride=1, padding=1)
    net.Conv2d_2a_3x3 = conv(32, 32, kernel_size=3, padding=1)
    net.Conv2d_4a_3x3 = conv(80, 192, kernel_size=3, padding=1)
    net.maxpool1 = nn.Identity()
    net.maxpool2 = nn.Identity()
    net.fc = nn.Linear(_scale(2048, width), num_classes)
    return _zoo_model(net, "inception_v3", init)


def _swin_t(num_classes: int, *, width: float = 1.0, init: str = "torchvision"):
    """torchvision's Swin-T (§6's second model) for 32×32 inputs: 2×2 patches instead of 4×4 and 4×4 windows
    instead of 7×7, so that the 16×16 token grid splits into whole windows (the usual CIFAR adaptation); stage
    widths (96, 192, 384, 768)·width, heads (3, 6, 12, 24), depths (2, 2, 6, 2), no stochastic depth (it would
    make the client's update random for the attacker)."""
    from torchvision.models.swin_transformer import SwinTransformer

    _check_width("swin_t", width, _STEPS["swin"])
    net = SwinTransformer(patch_size=[2, 2], embed_dim=_scale(96, width), depths=[2, 2, 6, 2],
                          num_heads=[3, 6, 12, 24], window_size=[4, 4], stochastic_depth_prob=0.0,
                          num_classes=num_classes)
    return _zoo_model(net, "swin", init)


# name -> builder(num_classes, *, option=default, …): every option is keyword-only and declared in the builder's
# own signature (as torchvision's builders do), which is where ``model_options`` reads it. The zoo grows here.
MODELS = {
    "convnet": ConvNet,
    "lenet": LeNet,
    "resnet18": _resnet18,
    "resnet34": _resnet34,
    "preact_resnet18": _preact_resnet18,
    "vgg11": _vgg11,
    "vgg16": _vgg16,
    "vgg19": _vgg19,
    "resnet50": _resnet50,
    "resnet152": _resnet152,
    "densenet121": _densenet121,
    "densenet43": _densenet43,
    "densenet53": _densenet53,
    "googlenet": _googlenet,
    "inception_v3": _inception_v3,
    "swin_t": _swin_t,
}


def model_options(name: str) -> list[str]:
    """The keyword options ``build_model(name, …)`` accepts: the keyword-only parameters of its builder."""
    _check_name(name)
    params = inspect.signature(MODELS[name]).parameters  # a class's signature is its __init__'s, less self
    return [p.name for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]


def _check_name(name: str):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")


def build_model(name: str, num_classes: int, *, seed: int, **options) -> nn.Module:
    """Build model ``name`` for ``num_classes`` classes, its initial weights drawn from ``seed``.

    ``options`` are the builder's keyword-only options (``model_options(name)``). The initialisation depends on
    the family (module docstring): ``convnet``, ``lenet``, ``resnet18``, ``resnet34``, ``preact_resnet18``,
    ``densenet43`` and ``densenet53`` get what their constructors draw, PyTorch's default module initialisation;
    the other zoo models default to ``init="torchvision"``, the rule of ``torchvision.models.<name>()``, and take
    ``init="pytorch"`` for PyTorch's defaults alone. The global RNG is left as it was.

    >>> model = build_model("convnet", 10, seed=0, width=16)
    >>> model(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """
    _check_name(name)
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer ≥ 2, got {num_classes!r}")
    unknown = set(options) - set(model_options(name))
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {sorted(unknown)}; available: {model_options(name)}")
    # A private generator would not reach torch.nn.init's draws, so seed the global one and restore it.
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return MODELS[name](num_classes, **options)
    finally:
        torch.random.set_rng_state(state)


# Architecture analysis for §5.2: dense connections (Fig. 10) and net-in-net blocks (Table 3).

def skip_connections(model: nn.Module) -> int:
    """The number of non-sequential connections in the dense blocks of ``model`` (a ``densenet43`` / ``densenet53``).

    In a block of L layers, conv_k (k ≥ 2) reads c_{k−1} = cat[conv_j for j ∈ S_{k−1}] and the block outputs
    c_L; each j in those sets is an edge conv_j → conv_k (or → output). The plain sequential edges
    conv_{k−1} → conv_k and conv_L → output are not counted; every other edge is, so a block adds
    Σ_{m=1}^{L} (|S_m| − 1). A fully dense block (S_m = 1…m) has (L − 1)(L − 2)/2 + (L − 1) = L(L − 1)/2.
    """
    blocks = [m for m in model.modules() if isinstance(m, ReducedDenseBlock)]
    if not blocks:
        raise ValueError(f"skip_connections: {type(model).__name__} has no dense blocks (build densenet43 or "
                         f"densenet53)")
    return sum(block.skip_connections() for block in blocks)


def inception_blocks(model: nn.Module) -> list[str]:
    """The qualified names (as in ``model.named_modules()``) of the Inception ("net-in-net", NIN) blocks of a built
    ``googlenet`` or ``inception_v3``, in forward order; the paper's Table 3 blocks #1–#4 are the first four.

    Blocks are found by type: torchvision's ``googlenet.Inception`` (``net.inception3a`` … ``net.inception5b``)
    and ``inception.InceptionA`` … ``InceptionE`` (``net.Mixed_5b`` … ``net.Mixed_7c``).
    """
    from torchvision.models.googlenet import Inception
    from torchvision.models.inception import InceptionA, InceptionB, InceptionC, InceptionD, InceptionE

    kinds = (Inception, InceptionA, InceptionB, InceptionC, InceptionD, InceptionE)
    names = [name for name, module in model.named_modules() if isinstance(module, kinds)]
    if not names:
        raise ValueError(f"inception_blocks: {type(model).__name__} has no Inception blocks (build googlenet or "
                         f"inception_v3)")
    return names


def parameter_names(model: nn.Module, prefix: str) -> list[str]:
    """The names (as ``model.named_parameters()`` spells them) of the parameters inside module ``prefix``."""
    if prefix not in dict(model.named_modules()):
        raise ValueError(f"parameter_names: {type(model).__name__} has no module {prefix!r}")
    inside = prefix + "." if prefix else ""  # "" is the model itself
    return [name for name, _ in model.named_parameters() if name.startswith(inside)]


def parameter_share(model: nn.Module, prefix: str) -> float:
    """The parameters inside module ``prefix`` as a fraction of all of ``model``'s (counted in scalars)."""
    inside = set(parameter_names(model, prefix))
    sizes = {name: p.numel() for name, p in model.named_parameters()}
    return sum(sizes[name] for name in inside) / sum(sizes.values())
