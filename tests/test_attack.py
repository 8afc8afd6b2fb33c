"""GIA-O: the acceptance checks of the core issue (the two slow ones run a full 1500-iteration attack)."""
import pytest
import torch

from giasok.attacks import infer_labels, invert, simulated_update
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
    with pytest.raises(ValueError, match="iterations ≥ 1"):
        invert(model, update, iterations=0)
    with pytest.raises(ValueError, match="2 labels for an update of N=1"):
        invert(model, update, labels=torch.tensor([0, 1]))
