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

``build_model(name, num_classes, seed=…, **options)`` is the one entry point; ``MODELS`` lists the names
and ``model_options(name)`` the options each accepts.
"""
from __future__ import annotations

import inspect

import torch
from torch import nn

__all__ = ["MODELS", "build_model", "model_options", "Normalize", "ConvNet", "LeNet", "CifarResNet"]

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


def _resnet18(num_classes, **options):
    return CifarResNet((2, 2, 2, 2), num_classes, **options)


def _resnet34(num_classes, **options):
    return CifarResNet((3, 4, 6, 3), num_classes, **options)


# name -> constructor(num_classes, **options). Issue-by-issue the zoo grows here.
MODELS = {
    "convnet": ConvNet,
    "lenet": LeNet,
    "resnet18": _resnet18,
    "resnet34": _resnet34,
}
_OPTIONS = {
    "convnet": ConvNet,
    "lenet": LeNet,
    "resnet18": CifarResNet,
    "resnet34": CifarResNet,
}


def model_options(name: str) -> list[str]:
    """The keyword options ``build_model(name, …)`` accepts."""
    _check_name(name)
    params = inspect.signature(_OPTIONS[name].__init__).parameters
    return [p.name for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]


def _check_name(name: str):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")


def build_model(name: str, num_classes: int, *, seed: int, **options) -> nn.Module:
    """Build model ``name`` with PyTorch's default initialisation drawn from ``seed``.

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
