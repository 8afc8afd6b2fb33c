import inspect
import math
import operator

import pytest
import torch
import torch.fx
import torchvision
from torch import nn

from giasok.models import MODELS, ZOO, CifarResNet, build_model, model_options

# the smallest channel step of each torchvision-based zoo model: widths must be multiples of 1/step
STEPS = {"vgg11": 64, "vgg16": 64, "vgg19": 64, "resnet50": 64, "resnet152": 64, "densenet121": 32,
         "googlenet": 8, "inception_v3": 16}
TORCHVISION_ZOO = [name for name in ZOO if name != "resnet18"]


def _small(name):
    if name in ("resnet18", "resnet34", "swin_t"):
        return {"width": 0.25}
    return {"width": 0.125} if name in ZOO else {}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_maps_32px_images_to_logits_and_backpropagates(name):
    model = build_model(name, 10, seed=0, **_small(name))
    x = torch.rand(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_the_zoo_is_the_nine_models_of_section_5_1():
    assert ZOO == ("vgg11", "vgg16", "vgg19", "resnet18", "resnet50", "resnet152", "densenet121", "googlenet",
                   "inception_v3")
    assert set(ZOO) <= set(MODELS)
    assert all("width" in model_options(name) for name in ZOO)
    assert model_options("vgg16") == ["width", "init"]


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_gives_plain_logits_in_eval_mode_from_its_last_linear(name):
    model = build_model(name, 10, seed=0, width=0.125).eval()
    last_linear = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    seen = []
    last_linear.register_forward_hook(lambda module, inputs, output: seen.append(output))
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32))
    assert type(out) is torch.Tensor and out.shape == (2, 10)
    assert last_linear.out_features == 10 and torch.equal(seen[0], out)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_rejects_unknown_options_and_impossible_widths(name):
    with pytest.raises(ValueError, match=rf"{name}: unknown option\(s\) \['depth'\]; available: .*width"):
        build_model(name, 10, seed=0, depth=3)
    with pytest.raises(ValueError, match="width must be"):
        build_model(name, 10, seed=0, width=0)
    if name in STEPS:
        step = STEPS[name]
        with pytest.raises(ValueError, match=rf"{name}: width=0.3 gives non-integer .* multiples of 1/{step}"):
            build_model(name, 10, seed=0, width=0.3)


@pytest.mark.parametrize("name", TORCHVISION_ZOO)
def test_zoo_widths_are_exactly_the_multiples_of_one_over_the_step(name):
    step = STEPS[name]
    model = build_model(name, 10, seed=0, width=1 / step)  # every layer down to a few channels
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match=f"1/{step}"):
        build_model(name, 10, seed=0, width=1 / (2 * step))


@pytest.mark.parametrize("name", ZOO)
def test_zoo_initialisation_is_decided_by_the_seed(name):
    state = torch.random.get_rng_state()
    a = build_model(name, 10, seed=3, width=0.125)
    assert torch.equal(state, torch.random.get_rng_state())
    b = build_model(name, 10, seed=3, width=0.125)
    c = build_model(name, 10, seed=4, width=0.125)
    for (key, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), key
        if pa.dim() > 1:  # every conv / linear weight; BatchNorm's start at 1 and 0 whatever the seed
            assert not torch.equal(pa, pc), key


@pytest.mark.parametrize("name", TORCHVISION_ZOO)
def test_torchvision_zoo_models_can_take_pytorch_default_init(name):
    # PyTorch's default conv / linear init is uniform in ±1/sqrt(fan_in); torchvision's Kaiming-normal (ResNet,
    # DenseNet) and truncated normals would overshoot that bound.
    model = build_model(name, 10, seed=0, width=0.125, init="pytorch")
    for key, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            bound = 1 / math.sqrt(module.weight[0].numel())
            assert module.weight.abs().max() <= bound, key
            assert module.weight.abs().max() > 0.9 * bound, key
        if isinstance(module, nn.BatchNorm2d):
            assert torch.equal(module.weight, torch.ones_like(module.weight)), key


def test_pre_zoo_models_keep_their_constructor_initialisation():
    torch.manual_seed(5)
    direct = CifarResNet((2, 2, 2, 2), 10, width=0.125)
    built = build_model("resnet18", 10, seed=5, width=0.125)
    for pa, pb in zip(direct.parameters(), built.parameters()):
        assert torch.equal(pa, pb)


def test_resnet18_is_torchvisions_resnet18_with_a_cifar_stem():
    ours = build_model("resnet18", 10, seed=0)
    theirs = torchvision.models.resnet18(num_classes=10)
    assert theirs.conv1.kernel_size == (7, 7) and theirs.conv1.stride == (2, 2)
    theirs.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    assert [tuple(v.shape) for v in ours.state_dict().values()] == [tuple(v.shape) for v in
                                                                       theirs.state_dict().values()]


def test_vgg_classifier_and_stems_are_adapted_to_32px():
    vgg = build_model("vgg11", 10, seed=0)  # width 1: torchvision's channel counts
    linears = [m for m in vgg.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 4096), (4096, 4096), (4096, 10)]
    assert [m.out_channels for m in vgg.modules() if isinstance(m, nn.Conv2d)] == [64, 128, 256, 256, 512, 512,
                                                                                   512, 512]
    googlenet = build_model("googlenet", 10, seed=0, width=0.125).net
    assert googlenet.conv1.conv.kernel_size == (3, 3) and googlenet.conv1.conv.stride == (1, 1)
    assert isinstance(googlenet.maxpool1, nn.Identity) and isinstance(googlenet.maxpool2, nn.Identity)
    resnet = build_model("resnet50", 10, seed=0, width=0.125).net
    assert resnet.conv1.kernel_size == (3, 3) and resnet.conv1.stride == (1, 1)
    assert isinstance(resnet.maxpool, nn.Identity)
    densenet = build_model("densenet121", 10, seed=0, width=0.125).net
    assert densenet.features.conv0.kernel_size == (3, 3) and isinstance(densenet.features.pool0, nn.Identity)


@pytest.mark.parametrize("name,stages", [
    ("vgg16", {"features": 1}),
    ("resnet50", {"layer1": 32, "layer4": 4}),
    ("densenet121", {"denseblock1": 32, "norm5": 4}),
    ("googlenet", {"inception3b": 32, "inception4e": 16, "inception5b": 8}),
    ("inception_v3", {"Mixed_5d": 32, "Mixed_6a": 15, "Mixed_7c": 7}),
])
def test_feature_maps_at_32px(name, stages):
    model = build_model(name, 10, seed=0, width=0.125)
    sizes = {}

    def record(short):
        def hook(module, inputs, output):
            sizes[short] = output.shape[-1]
        return hook

    for key, module in model.named_modules():
        short = key.rsplit(".", 1)[-1]
        if short in stages:
            module.register_forward_hook(record(short))
    model(torch.rand(1, 3, 32, 32))
    assert sizes == stages


def test_same_seed_same_weights_and_global_rng_untouched():
    state = torch.random.get_rng_state()
    a = build_model("convnet", 10, seed=3, width=8)
    assert torch.equal(state, torch.random.get_rng_state())
    b = build_model("convnet", 10, seed=3, width=8)
    c = build_model("convnet", 10, seed=4, width=8)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_unknown_model_and_option_are_named_with_alternatives():
    with pytest.raises(ValueError, match="unknown model 'vgg99'.*convnet.*resnet18"):
        build_model("vgg99", 10, seed=0)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['depth'\].*width"):
        build_model("convnet", 10, seed=0, depth=3)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("lenet", 1, seed=0)
    with pytest.raises(ValueError, match="cut_skips must be block ids in 0..7"):
        build_model("resnet18", 10, seed=0, cut_skips=[8])
    with pytest.raises(ValueError, match="too small"):
        build_model("convnet", 10, seed=0, image_size=8)
    assert "cut_skips" in model_options("resnet34")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_builder_declares_its_options_keyword_only_after_num_classes(name):
    # as torchvision's builders do: no **options, no side table, so the signature is the documentation
    params = list(inspect.signature(MODELS[name]).parameters.values())
    assert params[0].name == "num_classes" and params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert params[1:] and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])
    assert all(p.default is not inspect.Parameter.empty for p in params[1:])  # every option has a default
    assert model_options(name) == [p.name for p in params[1:]]
    assert model_options("resnet18") == model_options("resnet34") == ["width", "in_channels", "cut_skips"]


def _additions(model):
    graph = torch.fx.symbolic_trace(model).graph
    return sum(node.op == "call_function" and node.target in (operator.add, torch.add) for node in graph.nodes)


@pytest.mark.parametrize("name,blocks,opener", [("resnet18", 8, 2), ("resnet34", 16, 3)])
def test_cut_skips_removes_exactly_the_chosen_shortcut_additions(name, blocks, opener):
    full = build_model(name, 10, seed=0, width=0.125)
    cut = build_model(name, 10, seed=0, width=0.125, cut_skips=[0, opener, blocks - 1])
    assert _additions(full) == blocks
    assert _additions(cut) == blocks - 3
    assert [b.skip for b in cut.blocks()] == [i not in (0, opener, blocks - 1) for i in range(blocks)]
    # a cut block computes relu(F(x)) with no identity term, and a cut projection shortcut has no parameters
    block = cut.blocks()[0].eval()
    x = torch.rand(1, block.conv1.in_channels, 8, 8)
    residual = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x)))))
    assert torch.allclose(block(x), torch.relu(residual))
    assert not torch.allclose(full.blocks()[0].eval()(x), torch.relu(residual))
    n_full = sum(p.numel() for p in full.parameters())
    n_cut = sum(p.numel() for p in cut.parameters())
    assert n_cut < n_full  # block `opener` opens a stage: cutting it drops its 1×1 projection too


def test_zoo_models_take_torchvisions_initialisation_by_default():
    import math

    vgg = build_model("vgg11", 10, seed=0, width=0.25)
    convs = [m for m in vgg.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:  # Kaiming normal, fan_out mode
        fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.15)
        assert torch.count_nonzero(conv.bias) == 0
    linears = [m for m in vgg.modules() if isinstance(m, nn.Linear)]
    assert all(m.weight.std().item() == pytest.approx(0.01, rel=0.15) for m in linears)
    googlenet = build_model("googlenet", 10, seed=0, width=0.25)
    weights = torch.cat([m.weight.flatten() for m in googlenet.modules() if isinstance(m, nn.Conv2d)])
    assert weights.std().item() == pytest.approx(0.01, rel=0.05)
    with pytest.raises(ValueError, match="init must be one of"):
        build_model("vgg11", 10, seed=0, width=0.25, init="xavier")


def test_swin_is_torchvisions_swin_t_adapted_to_32px_and_can_be_attacked():
    from torchvision.models.swin_transformer import SwinTransformer

    from giasok.attacks import invert
    from giasok.fl import client_update

    model = build_model("swin_t", 10, seed=0, width=0.25)
    net = model.net
    assert isinstance(net, SwinTransformer)
    patch = net.features[0][0]
    assert patch.kernel_size == (2, 2) and patch.out_channels == 24  # 2×2 patches, 96·¼ channels
    assert net.features[0](torch.rand(1, 3, 32, 32)).shape[1:3] == (16, 16)  # a 16×16 token grid: 4×4 windows
    linears = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, nn.Linear)])
    assert linears.std().item() == pytest.approx(0.02, rel=0.1)  # torchvision's truncated normal, std 0.02
    with pytest.raises(ValueError, match="multiples of 1/32"):
        build_model("swin_t", 10, seed=0, width=0.3)
    images, labels = torch.rand(1, 3, 32, 32), torch.tensor([3])
    update = client_update(model, images, labels, lr=0.1)
    rec = invert(model, update, labels=labels, iterations=3)  # the attack differentiates through attention twice
    assert rec.images.shape == images.shape and all(map(math.isfinite, rec.loss_history))
