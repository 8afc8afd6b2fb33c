"""GIA-O: the acceptance checks of the core issue (the two slow ones run a full 1500-iteration attack)."""
import pytest
import torch

from giasok.attacks import infer_labels, invert, per_image_generators, simulated_update
from giasok.data import victim_batch
from giasok.fl import client_update
from giasok.metrics import psnr
from giasok.models import build_model

# The reference victim: Geiping et al.'s ConvNet, width 32, flatten + linear head.
REFERENCE = dict(width=32)


@pytest.mark.slow
def test_gia_o_recovers_one_patch_from_a_fedsgd_update(one_patch):
    images, labels = one_patch
    model = build_model("convnet", 10, seed=0, **REFERENCE)
    update = client_update(model, images, labels, lr=0.1)
    rec = invert(model, update, labels=labels, priors={"tv": 1e-4}, iterations=1500, seed=0)
    quality = psnr(rec.images, images)[0]
    print(f"U=1 PSNR {quality:.2f} dB")
    assert quality >= 22.0
    assert rec.loss_history[-1] < 0.5 * rec.loss_history[0]


@pytest.mark.slow
def test_more_local_updates_hide_the_data_from_an_adversary_without_the_config(one_patch):
    images, labels = one_patch
    model = build_model("convnet", 10, seed=0, **REFERENCE)
    update = client_update(model, images, labels, lr=0.1, epochs=8)
    assert update.local_updates == 8
    rec = invert(model, update, labels=labels, priors={"tv": 1e-4}, iterations=1500, seed=0)
    quality = psnr(rec.images, images)[0]
    print(f"U=8 PSNR {quality:.2f} dB")
    assert quality < 15.0  # U = 1 reaches ≥ 22 dB in the test above


@pytest.mark.parametrize("name,options", [("convnet", dict(width=4, batch_norm=True)),
                                          ("resnet18", dict(width=0.125))])
def test_known_config_simulation_reproduces_the_clients_update_exactly(name, options):
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(6, 3, 32, 32, generator=g), torch.randint(0, 10, (6,), generator=g)
    model = build_model(name, 10, seed=0, **options)  # with BatchNorm in train mode
    update = client_update(model, images, labels, lr=0.05, epochs=2, batch_size=4, seed=1)
    assert update.local_updates == 4
    model.train()
    params = {k: p.detach() for k, p in model.named_parameters()}
    buffers = {k: b.detach() for k, b in model.named_buffers()}
    simulated = simulated_update(model, params, buffers, images, labels, update.batches, update.lr)
    for k in params:
        assert torch.allclose(simulated[k], update.delta[k], atol=1e-6, rtol=1e-4), k
    # and a different schedule does not
    wrong = simulated_update(model, params, buffers, images, labels, (torch.arange(6),), update.lr)
    assert not torch.allclose(wrong["classifier.weight"], update.delta["classifier.weight"], atol=1e-4)


@pytest.mark.parametrize("name,options", [("convnet", dict(width=8)), ("lenet", {}),
                                          ("resnet18", dict(width=0.125))])
@pytest.mark.parametrize("epochs", [1, 3])
def test_label_inference_is_exact_for_single_samples(patches_test, name, options, epochs):
    for seed in range(12):
        images, labels = victim_batch(patches_test, 1, seed=seed)
        model = build_model(name, 10, seed=seed, **options)
        update = client_update(model, images, labels, lr=0.1, epochs=epochs)
        assert torch.equal(infer_labels(model, update), labels), (seed, labels)


def test_label_counts_are_recovered_for_a_batch(patches_test):
    exact = 0
    for seed in range(10):
        images, labels = victim_batch(patches_test, 4, seed=seed)
        model = build_model("convnet", 10, seed=seed, width=8)
        update = client_update(model, images, labels, lr=0.1)
        inferred = infer_labels(model, update)
        assert len(inferred) == 4
        exact += torch.equal(inferred, labels.sort().values)
    assert exact >= 8, f"label counts exact for {exact}/10 batches"


def test_same_seed_same_reconstruction_and_other_seed_differs(one_patch):
    images, labels = one_patch
    model = build_model("convnet", 10, seed=0, width=4)
    update = client_update(model, images, labels, lr=0.1, epochs=2)
    kwargs = dict(labels=labels, known_training_config=True, iterations=15, priors={"tv": 1e-4})
    a = invert(model, update, seed=1, **kwargs)
    b = invert(model, update, seed=1, **kwargs)
    c = invert(model, update, seed=2, **kwargs)
    assert torch.equal(a.images, b.images) and a.loss_history == b.loss_history
    assert not torch.equal(a.images, c.images)
    assert a.images.min() >= 0 and a.images.max() <= 1  # the [0, 1] box


def test_restarts_keep_the_lowest_final_loss(one_patch):
    images, labels = one_patch
    model = build_model("convnet", 10, seed=0, width=4)
    update = client_update(model, images, labels, lr=0.1)
    rec = invert(model, update, labels=labels, iterations=10, restarts=3, objective="l2")
    assert len(rec.restart_losses) == 3


def test_bad_attack_arguments_are_clear_errors(one_patch):
    images, labels = one_patch
    model = build_model("convnet", 10, seed=0, width=4)
    update = client_update(model, images, labels, lr=0.1)
    with pytest.raises(ValueError, match="unknown attack method 'gia-x'.*gia-o"):
        invert(model, update, method="gia-x")
    with pytest.raises(ValueError, match="unknown objective 'l1'.*cosine"):
        invert(model, update, objective="l1")
    with pytest.raises(ValueError, match=r"unknown prior\(s\) \['bm'\].*tv"):
        invert(model, update, priors={"bm": 1.0})
    with pytest.raises(ValueError, match="iterations must be an integer ≥ 1"):
        invert(model, update, iterations=0)
    with pytest.raises(ValueError, match="2 labels for an update of N=1"):
        invert(model, update, labels=torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="unknown attack setting.*'iteration'"):
        invert(model, update, iteration=5)


def test_the_keyword_form_and_the_config_form_are_one_attack(one_patch):
    from giasok.attacks import AttackConfig

    images, labels = one_patch
    model = build_model("convnet", 10, seed=0, width=4)
    update = client_update(model, images, labels, lr=0.1)
    config = AttackConfig(priors=(("tv", 1e-4),), iterations=8, objective="l2")
    by_config = invert(model, update, config, labels=labels, seed=3)
    by_keywords = invert(model, update, labels=labels, seed=3, priors={"tv": 1e-4}, iterations=8, objective="l2")
    assert torch.equal(by_config.images, by_keywords.images)  # same config, same seed: bit for bit
    assert by_config.config == by_keywords.config and by_config.config["iterations"] == 8
    changed = invert(model, update, config, labels=labels, seed=3, iterations=4)  # a keyword replaces a field
    assert changed.config["iterations"] == 4 and len(changed.loss_history) == 4


# --- GIA-L stage 2: one generator copy per image, as GIAS's code does (Jeon et al., 2021) ---------------

def _tiny_generator(resolution=16, seed=0):
    """A tiny DCGAN generator with non-trivial BatchNorm running statistics (as a trained one has)."""
    from giasok.generative import DCGANGenerator

    torch.manual_seed(seed)
    generator = DCGANGenerator(resolution, latent_dim=8, width=4)
    with torch.no_grad():
        for module in generator.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return generator.eval()


def test_each_image_depends_on_its_own_generator_copy_only():
    from torch.func import jacrev

    generator = _tiny_generator()
    params, _, render = per_image_generators(generator, 2)
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(1))
    # ∂ image 0 / ∂ θ: for every parameter tensor, one Jacobian block per copy
    jacobian = jacrev(lambda p: render(p, z)[0])(params)
    for name, block in jacobian.items():
        assert block.shape == (3, 16, 16, *params[name].shape)
        assert torch.count_nonzero(block[:, :, :, 1]) == 0, name  # copy 1 does not touch image 0 at all
        assert torch.count_nonzero(block[:, :, :, 0]) > 0, name   # copy 0 is what makes it
    # and symmetrically through an ordinary backward pass of image 1
    render(params, z)[1].sum().backward()
    for name, p in params.items():
        assert torch.count_nonzero(p.grad[0]) == 0 and torch.count_nonzero(p.grad[1]) > 0, name


@pytest.mark.parametrize("vectorize", [True, False])
@pytest.mark.parametrize("n", [1, 3])
def test_generator_copies_start_as_the_trained_generator(vectorize, n):
    generator = _tiny_generator()
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    params, buffers, render = per_image_generators(generator, n, vectorize=vectorize)
    for name, value in generator.state_dict().items():
        stacked = params.get(name, buffers.get(name))
        assert stacked.shape == (n, *value.shape) and all(torch.equal(copy, value) for copy in stacked), name
    z = torch.randn(n, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours, theirs = render(params, z), generator(z)
    # Same weights, but vmap runs the n copies as one grouped convolution (and the loop as n batches of one),
    # so the float32 sums inside each convolution may be added in another order than in generator(z).
    # Images are (tanh(a) + 1) / 2: tanh' ≤ 1 does not amplify a few-ulp difference in a, and t + 1 ≤ 2 is
    # rounded to float32 spacing ≤ 2⁻²³ (≤ 2⁻²⁴ once halved), so one rounding flip moves a pixel by 2⁻²⁴.
    # We allow 2·eps(float32) = 2⁻²² = 4 such steps; observed: at most one (2⁻²⁴) over 30 seeds × N ∈ {1, 2, 5}.
    assert torch.allclose(ours, theirs, rtol=0, atol=2 * torch.finfo(torch.float32).eps)
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())


class _BranchingGenerator(torch.nn.Module):
    """A generator vmap cannot run: Python control flow on a tensor's value."""

    latent_dim = 8

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 3 * 16 * 16)

    def forward(self, z):
        scale = 2.0 if z.sum() > 0 else 0.5
        return torch.sigmoid(scale * self.fc(z)).view(-1, 3, 16, 16)


def test_per_image_generators_fall_back_to_a_loop_when_vmap_cannot_run_the_generator():
    torch.manual_seed(0)
    generator = _BranchingGenerator()
    params, _, render = per_image_generators(generator, 3)
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(3))
    with pytest.warns(RuntimeWarning, match="one image at a time") as caught:
        images = render(params, z)
        again = render(params, z)
    assert len(caught) == 1  # said once, not at every step
    expected = torch.cat([generator(z[i:i + 1]) for i in range(3)])
    assert torch.equal(images, again) and torch.allclose(images, expected, rtol=0, atol=1e-6)


def test_gia_l_fine_tunes_one_generator_copy_per_image(monkeypatch, patches_test):
    import giasok.attacks as attacks

    images, labels = victim_batch(patches_test, 2, seed=0)
    model = build_model("convnet", 10, seed=0, width=4)
    update = client_update(model, images, labels, lr=0.1)
    generator = _tiny_generator(32)
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    made, latents = [], []

    def spy(*args, **kwargs):  # the real per_image_generators, keeping its copies and latents for inspection
        params, buffers, render = per_image_generators(*args, **kwargs)
        made.append((params, render))
        return params, buffers, lambda p, z: render(p, latents.append(z) or z)

    monkeypatch.setattr(attacks, "per_image_generators", spy)
    rec = invert(model, update, labels=labels, method="gia-l", generator=generator, iterations=5, lr=0.05,
                 generator_iterations=6, generator_lr=1e-2)
    assert rec.config["generator_copies"] == 2 and rec.config["stage_ends"] == [5, 11]
    assert rec.images.shape == images.shape
    ((copies, render),) = made
    trained = {k: v for k, v in generator.state_dict().items() if k in copies}
    for name, stacked in copies.items():
        # each image had its own generator: the copies moved away from the trained weights, and apart
        assert not torch.equal(stacked[0], stacked[1]), name
        assert not torch.equal(stacked[0], trained[name]) and not torch.equal(stacked[1], trained[name]), name
    z = latents[-1]
    assert all(torch.equal(z, other) for other in latents)  # stage 2 keeps the latents fixed
    with torch.no_grad():  # the images returned are the fine-tuned copies' G(z_i; θ_i), not G(z_i; θ)
        assert torch.equal(rec.images, render(copies, z))
        assert not torch.allclose(rec.images, generator(z), atol=1e-4)
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())  # caller's copy untouched
