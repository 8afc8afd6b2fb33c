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

Initialisation. ``convnet``, ``lenet``, ``resnet18`` and ``resnet34`` keep the initialisation their
constructors draw. The other zoo models take ``init``:

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
"""
from __future__ import annotations

import functools
import inspect

import torch
from torch import nn

# torchvision is imported where a zoo model is built: importing it costs about a second

__all__ = ["MODELS", "ZOO", "build_model", "model_options", "Normalize", "ConvNet", "LeNet", "CifarResNet",
           "CifarVGG"]

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
        with torch.no_grad():  # the flattened size depends on kernel, padding and pooling
            try:
                n_features = self.features(torch.zeros(2, in_channels, image_size, image_size)).shape[1]
            except RuntimeError as error:
                raise ValueError(f"convnet: image_size={image_size} is too small for kernel_size={kernel_size}, "
                                 f"padding={padding}, max_pool={max_pool}") from error
        self.classifier = nn.Linear(n_features, num_classes, bias=bias)

    def forward(self, x):
        return self.classifier(self.features(x))


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


class CifarResNet(nn.Module):
    """ResNet with the CIFAR stem; ``blocks`` per stage, stage widths (w, 2w, 4w, 8w) with w = 64·width."""

    def __init__(self, blocks: tuple[int, ...], num_classes: int, *, width: float = 1.0, in_channels: int = 3,
                 cut_skips=()):
        super().__init__()
        n_blocks = sum(blocks)
        cut = set(int(i) for i in cut_skips)
        if width <= 0:
            raise ValueError(f"resnet: width must be > 0, got {width}")
        if not cut <= set(range(n_blocks)):
            raise ValueError(f"resnet: cut_skips must be block ids in 0..{n_blocks - 1}, got {sorted(cut)}")
        base = max(1, round(64 * width))
        self.stem = nn.Sequential(Normalize(), nn.Conv2d(in_channels, base, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(base), nn.ReLU())
        stages, in_planes, block_id = [], base, 0
        for stage, count in enumerate(blocks):
            planes = base * 2 ** stage
            layer = []
            for j in range(count):
                layer.append(BasicBlock(in_planes, planes, stride=2 if (stage > 0 and j == 0) else 1,
                                        skip=block_id not in cut))
                in_planes, block_id = planes, block_id + 1
            stages.append(nn.Sequential(*layer))
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_planes, num_classes)

    def blocks(self) -> list[BasicBlock]:
        """The residual blocks in forward order (index = the id used by ``cut_skips``)."""
        return [b for stage in self.layers for b in stage]

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def _resnet18(num_classes: int, *, width: float = 1.0, in_channels: int = 3, cut_skips=()):
    return CifarResNet((2, 2, 2, 2), num_classes, width=width, in_channels=in_channels, cut_skips=cut_skips)


def _resnet34(num_classes: int, *, width: float = 1.0, in_channels: int = 3, cut_skips=()):
    return CifarResNet((3, 4, 6, 3), num_classes, width=width, in_channels=in_channels, cut_skips=cut_skips)


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
    "vgg11": _vgg11,
    "vgg16": _vgg16,
    "vgg19": _vgg19,
    "resnet50": _resnet50,
    "resnet152": _resnet152,
    "densenet121": _densenet121,
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
    the family (module docstring): ``convnet``, ``lenet``, ``resnet18`` and ``resnet34`` get what their
    constructors draw, PyTorch's default module initialisation; the other zoo models default to
    ``init="torchvision"``, the rule of ``torchvision.models.<name>()``, and take ``init="pytorch"`` for PyTorch's
    defaults alone. The global RNG is left as it was.

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
