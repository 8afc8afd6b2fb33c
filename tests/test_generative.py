"""GIA-L (GIAS) and its generator, and the BatchNorm-statistics prior (paper §4.2.1, Appx B.I)."""
import pytest
import torch

from giasok.attacks import invert
from giasok.fl import client_update
from giasok.generative import GeneratorUnavailable, generator_path, load_biggan, train_dcgan, DCGANConfig
from giasok.models import build_model
from giasok.priors import PriorContext, batchnorm_input_statistics, bn_statistics_prior

TINY = dict(iterations=60, width=8, batch_size=16, latent_dim=16)


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory):
    root = tmp_path_factory.mktemp("generators")
    return train_dcgan("patches", 32, root=root, progress=False, **TINY), root


def test_trained_generator_is_cached_and_reused(tiny_generator, monkeypatch):
    generator, root = tiny_generator
    assert generator_path(DCGANConfig(**TINY), root).exists()
    import giasok.generative as generative

    monkeypatch.setattr(generative, "_fit", lambda *a, **k: pytest.fail("retrained instead of loading"))
    again = train_dcgan("patches", 32, root=root, progress=False, **TINY)
    for a, b in zip(generator.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    images = again(torch.randn(3, 16))
    assert images.shape == (3, 3, 32, 32) and images.min() >= 0 and images.max() <= 1


def test_generator_training_is_bit_reproducible_per_seed_and_leaves_the_global_rng_alone(tmp_path):
    # Same machine, same torch, same device and thread count (conftest fixes 2): the generative module's
    # docstring promises bit-identical weights, and a different seed must give another generator.
    small = dict(iterations=12, width=4, batch_size=8, latent_dim=8)
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    first = train_dcgan("patches", 16, root=tmp_path / "a", progress=False, **small)
    assert torch.equal(torch.get_rng_state(), rng_before)  # training forks the caller's global RNG
    torch.rand(7)  # a caller that drew from the global RNG in between must not change the result
    second = train_dcgan("patches", 16, root=tmp_path / "b", progress=False, **small)
    other = train_dcgan("patches", 16, root=tmp_path / "c", progress=False, seed=1, **small)
    assert generator_path(DCGANConfig("patches", 16, seed=1, **small), tmp_path / "c").exists()
    a, b, c = (g.state_dict() for g in (first, second, other))
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    trained = [k for k in a if a[k].is_floating_point()]
    assert all(not torch.equal(a[k], c[k]) for k in trained)
    rng_before = torch.get_rng_state()
    again = train_dcgan("patches", 16, root=tmp_path / "a", progress=False, **small)  # from the cache
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert all(torch.equal(a[k], v) for k, v in again.state_dict().items())


def test_bad_generator_requests_are_clear(tmp_path):
    with pytest.raises(ValueError, match="power of two"):
        train_dcgan("patches", 24, root=tmp_path, progress=False, iterations=1)
    with pytest.raises(ValueError, match="unknown option"):
        train_dcgan("patches", 32, root=tmp_path, epochs=3)
    with pytest.raises(GeneratorUnavailable, match="pytorch-pretrained-biggan"):
        load_biggan()


class LinearGenerator(torch.nn.Module):
    """Any module with ``latent_dim`` that maps latents to [0, 1] images can serve GIA-L."""

    latent_dim = 16

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(16, 3 * 32 * 32)

    def forward(self, z):
        return torch.sigmoid(self.fc(z)).view(-1, 3, 32, 32)


def test_gia_l_stages_each_reduce_the_matching_loss():
    torch.manual_seed(0)
    generator = LinearGenerator()
    with torch.no_grad():  # a client image the generator can express, so the inversion is well posed
        images = generator(torch.randn(1, 16, generator=torch.Generator().manual_seed(5)))
    labels = torch.tensor([3])
    model = build_model("lenet", 10, seed=0)
    update = client_update(model, images, labels, lr=0.1)
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    rec = invert(model, update, labels=labels, method="gia-l", generator=generator, iterations=40, lr=0.05,
                 generator_iterations=40, generator_lr=1e-3, restarts=2)
    latent_end, generator_end = rec.config["stage_ends"]
    history = rec.loss_history
    assert generator_end == len(history) == 80 and latent_end == 40 and len(rec.restart_losses) == 2
    assert rec.config["generator_copies"] == 1  # GIAS: one generator copy per image in stage 2
    assert max(history[latent_end - 5:latent_end]) < 0.5 * history[0]       # stage 1: latents
    assert max(history[-5:]) < 0.7 * history[latent_end]                    # stage 2: generator weights
    assert rec.images.shape == images.shape and 0 <= rec.images.min() and rec.images.max() <= 1
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())  # caller's copy untouched
    with pytest.raises(ValueError, match="needs a generator"):
        invert(model, update, method="gia-l")


def test_bn_statistics_shared_by_the_client_match_the_true_batch():
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(4, 3, 32, 32, generator=g), torch.randint(0, 10, (4,), generator=g)
    model = build_model("resnet18", 10, seed=0, width=0.125)
    update = client_update(model, images, labels, lr=0.1, share_bn_statistics=True)
    plain = client_update(model, images, labels, lr=0.1)
    assert plain.bn_statistics is None
    ours = batchnorm_input_statistics(model.train(), images)
    assert set(ours) == set(update.bn_statistics) and len(ours) == 20  # stem + 16 block BNs + 3 projections
    for name, (mean, var) in update.bn_statistics.items():
        assert torch.allclose(ours[name][0], mean, atol=1e-6) and torch.allclose(ours[name][1], var, atol=1e-6)
    model.train()
    context = PriorContext(model=model, params=dict(model.named_parameters()), buffers=dict(model.named_buffers()),
                           first_batch=torch.arange(4), bn_statistics=update.bn_statistics)
    assert bn_statistics_prior(images, context).item() < 1e-4
    assert bn_statistics_prior(torch.rand(4, 3, 32, 32, generator=g), context).item() > 0.1
    with pytest.raises(ValueError, match="share_bn_statistics=True"):
        invert(model, plain, priors={"bn": 1e-5})


def test_bn_prior_runs_inside_an_attack(one_patch):
    images, labels = one_patch
    model = build_model("resnet18", 10, seed=0, width=0.125)
    update = client_update(model, images, labels, lr=0.1, share_bn_statistics=True)
    rec = invert(model, update, labels=labels, priors={"tv": 1e-4, "bn": 1e-2}, iterations=5)
    assert rec.images.shape == images.shape and len(rec.loss_history) == 5


class _FakeBigGAN(torch.nn.Module):
    """BigGAN's call signature (noise, class vector, truncation) → [-1, 1] images at 64², for plumbing only."""

    def __init__(self):
        super().__init__()
        self.mix = torch.nn.Linear(128 + 1000, 3 * 64 * 64)

    def forward(self, noise, classes, truncation):
        assert torch.allclose(classes.sum(1), torch.ones(len(classes)))  # a distribution over the classes
        return torch.tanh(self.mix(torch.cat([noise * truncation, classes], 1))).view(-1, 3, 64, 64)


def test_biggan_prior_maps_noise_and_class_logits_to_images_at_the_requested_size():
    from giasok.generative import BigGANPrior

    prior = BigGANPrior(_FakeBigGAN(), resolution=32)
    z = torch.randn(2, prior.latent_dim, requires_grad=True)
    images = prior(z)
    assert prior.latent_dim == 1128 and images.shape == (2, 3, 32, 32)
    assert images.min() >= 0 and images.max() <= 1
    images.sum().backward()
    assert z.grad[:, 128:].abs().sum() > 0  # the class logits are searched too


def test_fig4a_imagenet_rungs_say_what_is_missing_without_biggan():
    from giasok.runs import GiaExperiment

    from giasok.attacks import AttackConfig

    experiment = GiaExperiment(dataset="imagenet", image_size=128,
                               attack=AttackConfig(method="gia-l", generator_options=(("biggan", "biggan-deep-256"),)))
    with pytest.raises(GeneratorUnavailable, match="pytorch-pretrained-biggan"):
        experiment.generator()


def test_generator_weights_do_not_depend_on_the_callers_thread_count(tmp_path):
    # a notebook cell (2 threads) and a worker (1 thread) must train the same generator from one configuration
    before = torch.get_num_threads()
    weights = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            g = train_dcgan("patches", 16, iterations=20, width=8, batch_size=16, root=tmp_path / str(threads),
                            progress=False)
            weights.append(g.state_dict())
            assert torch.get_num_threads() == threads  # the caller's setting is restored
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
