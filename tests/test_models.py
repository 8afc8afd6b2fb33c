import operator

import pytest
import torch
import torch.fx

from giasok.models import MODELS, build_model, model_options


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_maps_32px_images_to_logits_and_backpropagates(name):
    options = {"width": 0.25} if name.startswith("resnet") else {}
    model = build_model(name, 10, seed=0, **options)
    x = torch.rand(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


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
