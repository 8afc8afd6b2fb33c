"""§5.2's architecture variants: Ju et al.'s connection-reduced DenseNets (Fig. 10), the pre-activation ResNet-18
(after Valadi et al.'s pre- vs post-activation comparison) and the net-in-net blocks of Table 3."""
import hashlib
import operator

import pytest
import torch
import torch.fx
from torch import nn

from giasok.models import (PreActBlock, build_model, inception_blocks, model_options, parameter_names,
                           parameter_share, skip_connections)

DENSENETS = {"densenet43": (8, 10, 12, 8), "densenet53": (10, 12, 16, 8)}
CONNECTIONS = ("dense", "shortnet1", "shortnet2")
VARIANTS = [(name, connections) for name in DENSENETS for connections in CONNECTIONS]

# S_k, the layers concatenated into c_k, written out by hand from Ju et al.'s code for k ≤ 16 (the longest block)
SOURCES = {
    "dense": {k: list(range(1, k + 1)) for k in range(1, 17)},
    "shortnet1": {
        1: [1], 2: [1, 2], 3: [1, 2, 3], 4: [1, 3, 4], 5: [1, 2, 4, 5], 6: [1, 3, 5, 6], 7: [1, 2, 4, 6, 7],
        8: [1, 3, 5, 7, 8], 9: [1, 2, 4, 6, 8, 9], 10: [1, 3, 5, 7, 9, 10], 11: [1, 2, 4, 6, 8, 10, 11],
        12: [1, 3, 5, 7, 9, 11, 12], 13: [1, 2, 4, 6, 8, 10, 12, 13], 14: [1, 3, 5, 7, 9, 11, 13, 14],
        15: [1, 2, 4, 6, 8, 10, 12, 14, 15], 16: [1, 3, 5, 7, 9, 11, 13, 15, 16]},
    "shortnet2": {
        1: [1], 2: [1, 2], 3: [2, 3], 4: [1, 3, 4], 5: [4, 5], 6: [3, 5, 6], 7: [6, 7], 8: [1, 5, 7, 8], 9: [8, 9],
        10: [3, 7, 9, 10], 11: [10, 11], 12: [5, 9, 11, 12], 13: [12, 13], 14: [7, 11, 13, 14], 15: [14, 15],
        16: [1, 9, 13, 15, 16]},
}
# transition output channels in Ju et al.'s code (width 1), and their README's #Params (M)
JU_TRANSITIONS = {
    ("densenet43", "dense"): [128, 160, 192, 128], ("densenet43", "shortnet1"): [80, 96, 112, 128],
    ("densenet43", "shortnet2"): [64, 64, 64, 64], ("densenet53", "dense"): [160, 192, 256, 128],
    ("densenet53", "shortnet1"): [96, 112, 144, 128], ("densenet53", "shortnet2"): [64, 64, 80, 64],
}
JU_PARAMS_M = {("densenet43", "dense"): 2.17, ("densenet43", "shortnet1"): 1.59, ("densenet43", "shortnet2"): 0.97,
               ("densenet53", "dense"): 3.15, ("densenet53", "shortnet1"): 2.16, ("densenet53", "shortnet2"): 1.20}


def _forward_backward(model, size, first_conv, batch=2):
    x = torch.rand(batch, 3, size, size)
    out = model(x)
    assert out.shape == (batch, 10) and torch.isfinite(out).all()
    nn.functional.cross_entropy(out, torch.arange(batch) % 10).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert first_conv.grad.abs().sum() > 0  # the gradient reaches the first convolution


# ---------------------------------------------------------------- DenseNet-43 / -53 with connection reduction

@pytest.mark.parametrize("name,connections", VARIANTS)
def test_densenet_variants_map_images_to_logits_and_backpropagate(name, connections):
    model = build_model(name, 10, seed=0, connections=connections, width=0.25)
    _forward_backward(model, 32, model.stem[1].weight)
    small = build_model(name, 10, seed=0, connections=connections, width=0.25, image_size=16)
    _forward_backward(small.eval(), 16, small.stem[1].weight)  # 16 / 2⁴: 1×1 maps before the head
    small.zero_grad()
    _forward_backward(small.train(), 16, small.stem[1].weight, batch=3)


def test_densenet_at_16px_needs_three_images_in_train_mode():
    # the head's BatchNorm normalises 1×1 maps over the batch alone: one image is refused, two come out as v, −v
    model = build_model("densenet43", 10, seed=0, width=0.25, image_size=16)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        model(torch.rand(1, 3, 16, 16))
    normed = model.norm(model.features(model.stem(torch.rand(2, 3, 16, 16)))).flatten(1)
    assert normed.shape == (2, 32) and torch.allclose(normed[0], -normed[1]) and normed.abs().max() <= 1
    normed = model.norm(model.features(model.stem(torch.rand(3, 3, 16, 16)))).flatten(1)
    assert not torch.allclose(normed[0], -normed[1])


def _layer(node) -> int:
    """j for a node relu(conv_j(…)) of a traced dense block."""
    assert node.op == "call_function" and node.target is torch.relu, node
    conv = node.args[0]
    assert conv.op == "call_module" and conv.target.startswith("conv"), conv
    return int(conv.target[len("conv"):])


def _concatenated(node) -> list[int]:
    """The layers whose outputs make up c_k: conv_1's output itself for c_1, else the arguments of torch.cat."""
    if node.op == "call_function" and node.target is torch.cat:
        assert node.args[1] == 1 or node.kwargs.get("dim") == 1
        return [_layer(arg) for arg in node.args[0]]
    return [_layer(node)]


@pytest.mark.parametrize("name,connections", VARIANTS)
def test_densenet_wiring_follows_ju_et_als_connection_rules(name, connections):
    model = build_model(name, 10, seed=0, connections=connections)  # width 1: Ju et al.'s channel counts
    growth, sources = 32, SOURCES[connections]
    channels = model.stem[1].out_channels
    assert (channels, model.stem[1].kernel_size, model.stem[1].stride) == (64, (7, 7), (1, 1))
    transitions = []
    for i, layers in enumerate(DENSENETS[name], start=1):
        block = getattr(model.features, f"block{i}")
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        assert len(convs) == layers
        assert convs[0].in_channels == channels == block.norm.num_features
        for k in range(2, layers + 1):  # conv k reads c_{k−1}: g·|S_{k−1}| channels
            assert getattr(block, f"conv{k}").in_channels == growth * len(sources[k - 1]), (i, k)
        assert all(c.out_channels == growth and c.kernel_size == (3, 3) and c.bias is not None for c in convs)
        # the traced graph: which conv outputs are concatenated, and where each concatenation goes
        graph = torch.fx.symbolic_trace(block).graph
        conv_nodes = {int(n.target[len("conv"):]): n for n in graph.nodes if n.op == "call_module"
                      and n.target.startswith("conv")}
        assert list(conv_nodes) == list(range(1, layers + 1))
        assert conv_nodes[1].args[0].op == "call_module" and conv_nodes[1].args[0].target == "norm"
        for k in range(2, layers + 1):
            assert _concatenated(conv_nodes[k].args[0]) == sources[k - 1], (i, k)
        output = next(n for n in graph.nodes if n.op == "output").args[0]
        assert _concatenated(output) == sources[layers], i
        transition = getattr(model.features, f"transition{i}")
        assert [type(m) for m in transition] == [nn.Conv2d, nn.ReLU, nn.BatchNorm2d, nn.AvgPool2d]
        assert transition[0].in_channels == growth * len(sources[layers]) and transition[0].kernel_size == (1, 1)
        channels = transition[0].out_channels
        transitions.append(channels)
    assert transitions == JU_TRANSITIONS[name, connections]
    assert model.norm.num_features == channels
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(channels * 2 * 2, 512), (512, 10)]
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    assert round(millions, 2) == JU_PARAMS_M[name, connections], f"{name} {connections}: {millions:.3f} M"


def test_skip_connections_count_every_non_sequential_edge():
    counts = {}
    for name, connections in VARIANTS:
        model = build_model(name, 10, seed=0, connections=connections, width=0.125)
        counts[name, connections] = skip_connections(model)
        # by hand: S_m holds m and |S_m| − 1 earlier layers, whose edges go to conv_{m+1} or to the output
        expected = sum(len(SOURCES[connections][m]) - 1 for layers in DENSENETS[name] for m in range(1, layers + 1))
        assert counts[name, connections] == expected, (name, connections)
    for name, blocks in DENSENETS.items():
        # dense: conv_k (k ≥ 2) reads the k − 2 non-adjacent earlier layers, the output the L − 1 before it
        closed = sum((L - 1) * (L - 2) // 2 + (L - 1) for L in blocks)
        assert counts[name, "dense"] == closed == sum(sum(k - 2 for k in range(2, L + 1)) + L - 1 for L in blocks)
        assert counts[name, "shortnet2"] < counts[name, "shortnet1"] < counts[name, "dense"]
    assert counts == {("densenet43", "dense"): 167, ("densenet43", "shortnet1"): 108,
                      ("densenet43", "shortnet2"): 56, ("densenet53", "dense"): 259,
                      ("densenet53", "shortnet1"): 160, ("densenet53", "shortnet2"): 73}
    with pytest.raises(ValueError, match="skip_connections: CifarResNet has no dense blocks"):
        skip_connections(build_model("resnet18", 10, seed=0, width=0.125))


@pytest.mark.parametrize("name", DENSENETS)
def test_densenet_options_are_validated(name):
    assert model_options(name) == ["connections", "width", "image_size"]
    with pytest.raises(ValueError, match=rf"{name}: connections must be one of \('dense', 'shortnet1', "
                                         r"'shortnet2'\), got 'sparse'"):
        build_model(name, 10, seed=0, connections="sparse")
    for width in (0, -0.5, True, "1"):
        with pytest.raises(ValueError, match=rf"{name}: width must be a number > 0"):
            build_model(name, 10, seed=0, width=width)
    for width in (0.01, 1 / 64):  # round(0.5) is 0
        with pytest.raises(ValueError, match=rf"{name}: width={width} leaves round\(32·width\) = 0 growth channels"):
            build_model(name, 10, seed=0, width=width)
    for size in (24, 8, 0, 32.0):
        with pytest.raises(ValueError, match=rf"{name}: image_size must be a positive multiple of 16"):
            build_model(name, 10, seed=0, image_size=size)
    model = build_model(name, 10, seed=0, width=0.02, image_size=48)  # growth 1, 3×3 maps before the head
    assert model.features.block1.conv1.out_channels == 1 and model.stem[1].out_channels == 1
    assert model.pre_classifier.in_features == model.norm.num_features * 3 * 3
    assert model(torch.rand(2, 3, 48, 48)).shape == (2, 10)


# ---------------------------------------------------------------- pre-activation ResNet-18

def _additions(module):
    graph = torch.fx.symbolic_trace(module).graph
    return sum(node.op == "call_function" and node.target in (operator.add, torch.add) for node in graph.nodes)


@pytest.mark.parametrize("cut_skips", [(), (2,)])
def test_preact_resnet18_maps_images_to_logits_and_backpropagates(cut_skips):
    model = build_model("preact_resnet18", 10, seed=0, width=0.25, cut_skips=cut_skips)
    _forward_backward(model, 32, model.stem[1].weight)


def test_preact_resnet18_is_pre_activation_with_resnet18s_blocks_and_cut_skips():
    assert model_options("preact_resnet18") == model_options("resnet18") == ["width", "in_channels", "cut_skips"]
    full = build_model("preact_resnet18", 10, seed=0, width=0.125)
    cut = build_model("preact_resnet18", 10, seed=0, width=0.125, cut_skips=[0, 2, 7])
    assert [type(m) for m in full.stem][1:] == [nn.Conv2d]  # no BN-ReLU after the stem convolution …
    assert [type(m) for m in full.final] == [nn.BatchNorm2d, nn.ReLU]  # … but before the pool
    assert all(isinstance(b, PreActBlock) for b in full.blocks()) and len(full.blocks()) == 8
    assert _additions(full) == 8 and _additions(cut) == 5
    assert [b.skip for b in cut.blocks()] == [i not in (0, 2, 7) for i in range(8)]
    for i in (0, 2, 7):  # a cut block's own graph has no addition left, and no projection
        assert _additions(cut.blocks()[i]) == 0 and cut.blocks()[i].shortcut is None
    # block 2 opens stage 2: out = F(x) + proj(relu(bn1(x))), no ReLU after the sum; cut, out = F(x)
    full_block, cut_block = full.blocks()[2].eval(), cut.blocks()[2].eval()
    x = torch.randn(1, full_block.conv1.in_channels, 8, 8)
    pre = torch.relu(full_block.bn1(x))
    residual = full_block.conv2(torch.relu(full_block.bn2(full_block.conv1(pre))))
    assert isinstance(full_block.shortcut, nn.Conv2d) and full_block.shortcut.stride == (2, 2)
    assert torch.allclose(full_block(x), residual + full_block.shortcut(pre))
    cut_pre = torch.relu(cut_block.bn1(x))
    assert torch.allclose(cut_block(x), cut_block.conv2(torch.relu(cut_block.bn2(cut_block.conv1(cut_pre)))))
    assert (full_block(x) < 0).any()  # no ReLU after the addition
    with pytest.raises(ValueError, match=r"preact_resnet: cut_skips must be block ids in 0..7, got \[8\]"):
        build_model("preact_resnet18", 10, seed=0, cut_skips=[8])
    with pytest.raises(ValueError, match="preact_resnet: width must be > 0"):
        build_model("preact_resnet18", 10, seed=0, width=0)


def _digest(model) -> str:
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


# resnet18's state_dict (names and shapes, in order) and digests of its values, generated from models.py before the
# pre-activation variant was added: cached results depend on them.
RESNET18_STATE = [
    ("stem.1.weight", (64, 3, 3, 3)), ("stem.2.weight", (64,)), ("stem.2.bias", (64,)),
    ("stem.2.running_mean", (64,)), ("stem.2.running_var", (64,)), ("stem.2.num_batches_tracked", ()),
    ("layers.0.0.conv1.weight", (64, 64, 3, 3)), ("layers.0.0.bn1.weight", (64,)), ("layers.0.0.bn1.bias", (64,)),
    ("layers.0.0.bn1.running_mean", (64,)), ("layers.0.0.bn1.running_var", (64,)),
    ("layers.0.0.bn1.num_batches_tracked", ()), ("layers.0.0.conv2.weight", (64, 64, 3, 3)),
    ("layers.0.0.bn2.weight", (64,)), ("layers.0.0.bn2.bias", (64,)), ("layers.0.0.bn2.running_mean", (64,)),
    ("layers.0.0.bn2.running_var", (64,)), ("layers.0.0.bn2.num_batches_tracked", ()),
    ("layers.0.1.conv1.weight", (64, 64, 3, 3)), ("layers.0.1.bn1.weight", (64,)), ("layers.0.1.bn1.bias", (64,)),
    ("layers.0.1.bn1.running_mean", (64,)), ("layers.0.1.bn1.running_var", (64,)),
    ("layers.0.1.bn1.num_batches_tracked", ()), ("layers.0.1.conv2.weight", (64, 64, 3, 3)),
    ("layers.0.1.bn2.weight", (64,)), ("layers.0.1.bn2.bias", (64,)), ("layers.0.1.bn2.running_mean", (64,)),
    ("layers.0.1.bn2.running_var", (64,)), ("layers.0.1.bn2.num_batches_tracked", ()),
    ("layers.1.0.conv1.weight", (128, 64, 3, 3)), ("layers.1.0.bn1.weight", (128,)), ("layers.1.0.bn1.bias", (128,)),
    ("layers.1.0.bn1.running_mean", (128,)), ("layers.1.0.bn1.running_var", (128,)),
    ("layers.1.0.bn1.num_batches_tracked", ()), ("layers.1.0.conv2.weight", (128, 128, 3, 3)),
    ("layers.1.0.bn2.weight", (128,)), ("layers.1.0.bn2.bias", (128,)), ("layers.1.0.bn2.running_mean", (128,)),
    ("layers.1.0.bn2.running_var", (128,)), ("layers.1.0.bn2.num_batches_tracked", ()),
    ("layers.1.0.shortcut.0.weight", (128, 64, 1, 1)), ("layers.1.0.shortcut.1.weight", (128,)),
    ("layers.1.0.shortcut.1.bias", (128,)), ("layers.1.0.shortcut.1.running_mean", (128,)),
    ("layers.1.0.shortcut.1.running_var", (128,)), ("layers.1.0.shortcut.1.num_batches_tracked", ()),
    ("layers.1.1.conv1.weight", (128, 128, 3, 3)), ("layers.1.1.bn1.weight", (128,)), ("layers.1.1.bn1.bias", (128,)),
    ("layers.1.1.bn1.running_mean", (128,)), ("layers.1.1.bn1.running_var", (128,)),
    ("layers.1.1.bn1.num_batches_tracked", ()), ("layers.1.1.conv2.weight", (128, 128, 3, 3)),
    ("layers.1.1.bn2.weight", (128,)), ("layers.1.1.bn2.bias", (128,)), ("layers.1.1.bn2.running_mean", (128,)),
    ("layers.1.1.bn2.running_var", (128,)), ("layers.1.1.bn2.num_batches_tracked", ()),
    ("layers.2.0.conv1.weight", (256, 128, 3, 3)), ("layers.2.0.bn1.weight", (256,)), ("layers.2.0.bn1.bias", (256,)),
    ("layers.2.0.bn1.running_mean", (256,)), ("layers.2.0.bn1.running_var", (256,)),
    ("layers.2.0.bn1.num_batches_tracked", ()), ("layers.2.0.conv2.weight", (256, 256, 3, 3)),
    ("layers.2.0.bn2.weight", (256,)), ("layers.2.0.bn2.bias", (256,)), ("layers.2.0.bn2.running_mean", (256,)),
    ("layers.2.0.bn2.running_var", (256,)), ("layers.2.0.bn2.num_batches_tracked", ()),
    ("layers.2.0.shortcut.0.weight", (256, 128, 1, 1)), ("layers.2.0.shortcut.1.weight", (256,)),
    ("layers.2.0.shortcut.1.bias", (256,)), ("layers.2.0.shortcut.1.running_mean", (256,)),
    ("layers.2.0.shortcut.1.running_var", (256,)), ("layers.2.0.shortcut.1.num_batches_tracked", ()),
    ("layers.2.1.conv1.weight", (256, 256, 3, 3)), ("layers.2.1.bn1.weight", (256,)), ("layers.2.1.bn1.bias", (256,)),
    ("layers.2.1.bn1.running_mean", (256,)), ("layers.2.1.bn1.running_var", (256,)),
    ("layers.2.1.bn1.num_batches_tracked", ()), ("layers.2.1.conv2.weight", (256, 256, 3, 3)),
    ("layers.2.1.bn2.weight", (256,)), ("layers.2.1.bn2.bias", (256,)), ("layers.2.1.bn2.running_mean", (256,)),
    ("layers.2.1.bn2.running_var", (256,)), ("layers.2.1.bn2.num_batches_tracked", ()),
    ("layers.3.0.conv1.weight", (512, 256, 3, 3)), ("layers.3.0.bn1.weight", (512,)), ("layers.3.0.bn1.bias", (512,)),
    ("layers.3.0.bn1.running_mean", (512,)), ("layers.3.0.bn1.running_var", (512,)),
    ("layers.3.0.bn1.num_batches_tracked", ()), ("layers.3.0.conv2.weight", (512, 512, 3, 3)),
    ("layers.3.0.bn2.weight", (512,)), ("layers.3.0.bn2.bias", (512,)), ("layers.3.0.bn2.running_mean", (512,)),
    ("layers.3.0.bn2.running_var", (512,)), ("layers.3.0.bn2.num_batches_tracked", ()),
    ("layers.3.0.shortcut.0.weight", (512, 256, 1, 1)), ("layers.3.0.shortcut.1.weight", (512,)),
    ("layers.3.0.shortcut.1.bias", (512,)), ("layers.3.0.shortcut.1.running_mean", (512,)),
    ("layers.3.0.shortcut.1.running_var", (512,)), ("layers.3.0.shortcut.1.num_batches_tracked", ()),
    ("layers.3.1.conv1.weight", (512, 512, 3, 3)), ("layers.3.1.bn1.weight", (512,)), ("layers.3.1.bn1.bias", (512,)),
    ("layers.3.1.bn1.running_mean", (512,)), ("layers.3.1.bn1.running_var", (512,)),
    ("layers.3.1.bn1.num_batches_tracked", ()), ("layers.3.1.conv2.weight", (512, 512, 3, 3)),
    ("layers.3.1.bn2.weight", (512,)), ("layers.3.1.bn2.bias", (512,)), ("layers.3.1.bn2.running_mean", (512,)),
    ("layers.3.1.bn2.running_var", (512,)), ("layers.3.1.bn2.num_batches_tracked", ()),
    ("classifier.weight", (10, 512)), ("classifier.bias", (10,)),
]


def test_adding_preact_leaves_post_activation_resnets_unchanged():
    model = build_model("resnet18", 10, seed=0)
    assert [(key, tuple(value.shape)) for key, value in model.state_dict().items()] == RESNET18_STATE
    assert model.final is None and [type(m) for m in model.stem][1:] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert _digest(model) == "60fb5570de159c00d09e108da152ebf684e46c007e109ab570e9c2cd5f9bbefc"
    assert _digest(build_model("resnet18", 10, seed=0, width=0.25, cut_skips=[2, 5])) == (
        "114a39ef86f44e243e19ec2dbf6e33b41454a4303f0b752347c381264bab0756")
    assert _digest(build_model("resnet34", 10, seed=1, width=0.125)) == (
        "73d6996b2e81f4a898070c6f2b71eea39f6584c512dfd420f28b6ca416add37a")


# ---------------------------------------------------------------- net-in-net blocks (Table 3)

NIN = {
    "googlenet": ["net.inception3a", "net.inception3b", "net.inception4a", "net.inception4b", "net.inception4c",
                  "net.inception4d", "net.inception4e", "net.inception5a", "net.inception5b"],
    "inception_v3": ["net.Mixed_5b", "net.Mixed_5c", "net.Mixed_5d", "net.Mixed_6a", "net.Mixed_6b", "net.Mixed_6c",
                     "net.Mixed_6d", "net.Mixed_6e", "net.Mixed_7a", "net.Mixed_7b", "net.Mixed_7c"],
}
# blocks #1–#4 as % of the parameters at width 1, 10 classes, 32×32 adaptation: ours, and the paper's Table 3
OURS_PERCENT = {"googlenet": [2.78, 6.07, 6.51, 7.59], "inception_v3": [1.17, 1.27, 1.31, 5.29]}
PAPER_PERCENT = {"googlenet": [2.72, 11.68, 6.58, 9.25], "inception_v3": [1.14, 1.56, 1.76, 5.26]}


@pytest.mark.parametrize("name", NIN)
def test_inception_blocks_and_their_parameter_shares(name):
    model = build_model(name, 10, seed=0)
    blocks = inception_blocks(model)
    assert blocks == NIN[name]
    modules = dict(model.named_modules())
    total = sum(p.numel() for p in model.parameters())
    seen, percents = set(), []
    for prefix in blocks[:4]:
        names = parameter_names(model, prefix)
        assert names == [f"{prefix}.{key}" for key, _ in modules[prefix].named_parameters()]
        assert names and not seen & set(names)  # the four blocks' parameters are disjoint
        seen |= set(names)
        share = parameter_share(model, prefix)
        assert 0 < share < 1
        assert share == pytest.approx(sum(p.numel() for p in modules[prefix].parameters()) / total)
        percents.append(round(100 * share, 2))
    assert percents == OURS_PERCENT[name], (
        f"{name} blocks #1–#4: ours {percents} % of parameters, paper's Table 3 {PAPER_PERCENT[name]} %")
    with pytest.raises(ValueError, match=r"parameter_names: _Normalized has no module 'net.inception9z'"):
        parameter_names(model, "net.inception9z")


def test_inception_blocks_needs_inception_modules():
    with pytest.raises(ValueError, match="inception_blocks: CifarResNet has no Inception blocks"):
        inception_blocks(build_model("resnet18", 10, seed=0, width=0.125))


def test_convnet_initial_weights_do_not_depend_on_the_dropout_rate():
    # the flattened size is measured with a dummy forward pass; in train mode dropout would draw from the RNG there
    # and shift every draw after it (Table 4's "remove dropout" would then change the classifier's weights too)
    with_dropout = build_model("convnet", 10, seed=0, width=4, image_size=16, dropout=0.5).state_dict()
    without = build_model("convnet", 10, seed=0, width=4, image_size=16, dropout=0.0).state_dict()
    assert with_dropout.keys() == without.keys()
    assert all(torch.equal(with_dropout[k], without[k]) for k in without)
    assert build_model("convnet", 10, seed=0, width=4, image_size=16, dropout=0.5).training
