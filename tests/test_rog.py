"""ROG (Yue et al., USENIX Security 2023; paper §6): a low-resolution image matched to the update, then restored
by a learned post-processing network (giasok.attacks method="rog", giasok.restoration)."""
import re
import warnings

import pytest
import torch

import giasok.restoration as restoration
from giasok.attacks import ROG_RECIPE, AttackConfig, invert, upsample
from giasok.data import load_dataset, victim_batch
from giasok.fl import client_update
from giasok.metrics import psnr
from giasok.models import build_model
from giasok.restoration import (RestorerConfig, RestorerUnavailable, degrade, load_restorer, restorer_path,
                                train_restorer)

SIZE = 16  # patches at 16², ROG's factor 4: a 4×4 low-resolution image
TINY = dict(width=16, depth=4, iterations=300, batch_size=16)  # trains in ~2 s on one core
SMALL = dict(width=8, depth=3, iterations=30, batch_size=8)  # for the cache's plumbing only


@pytest.fixture(scope="module")
def tiny_restorer(tmp_path_factory):
    root = tmp_path_factory.mktemp("restorers")
    return train_restorer("patches", SIZE, downsample=4, root=root, progress=False, **TINY)


@pytest.fixture(scope="module")
def patches16():
    return load_dataset("patches", "test", image_size=SIZE)


def _victim(patches16, seed):
    images, labels = victim_batch(patches16, 1, seed=seed)
    model = build_model("convnet", 10, seed=0, width=8, image_size=SIZE)
    return images, labels, model, client_update(model, images, labels, lr=0.1)


def test_restorer_improves_degraded_held_out_images(tiny_restorer, patches16):
    # The restorer is trained to undo up(down(x) + σε) with σ ~ U[0, 0.15] (the noise of ROG's own low-resolution
    # solutions, restoration's docstring). On all 1000 held-out test patches at σ = 0.1 the tiny restorer measured
    # 19.67 → 20.88 dB (+1.21 dB on average) and improved 99 % of the images; we ask for half the gain and 90 %.
    x = torch.stack([patches16[i][0] for i in range(len(patches16))])
    degraded = degrade(x, 4, "bicubic", noise=0.1, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        restored = tiny_restorer(degraded).clamp(0, 1)
    before, after = psnr(degraded.clamp(0, 1), x), psnr(restored, x)
    print(f"σ=0.1: up(down(x)+noise) {before.mean():.2f} dB, restored {after.mean():.2f} dB")
    assert (after - before).mean() > 0.6
    assert (after > before).mean() >= 0.9
    assert tiny_restorer.config == RestorerConfig(image_size=SIZE, downsample=4, **TINY)


def test_restorer_training_is_cached_reproducible_and_healed(tmp_path, monkeypatch):
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    first = train_restorer("patches", SIZE, root=tmp_path / "a", progress=False, **SMALL)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's global RNG is left alone
    path = restorer_path(RestorerConfig(image_size=SIZE, **SMALL), tmp_path / "a")
    assert path.exists() and path.parent.name == "generators" and not list(path.parent.glob("*.tmp"))
    torch.rand(5)  # the caller drawing from the global RNG in between changes nothing
    second = train_restorer("patches", SIZE, root=tmp_path / "b", progress=False, **SMALL)  # trained again
    other = train_restorer("patches", SIZE, root=tmp_path / "c", progress=False, seed=1, **SMALL)
    a, b, c = (r.state_dict() for r in (first, second, other))
    assert all(torch.equal(a[k], b[k]) for k in a)  # one seed, one machine: bit-identical weights
    assert not all(torch.equal(a[k], c[k]) for k in a)

    with monkeypatch.context() as patch:  # the second call loads, it does not train
        patch.setattr(restoration, "_fit", lambda *args, **kwargs: pytest.fail("retrained instead of loading"))
        again = train_restorer("patches", SIZE, root=tmp_path / "a", progress=False, **SMALL)
    assert all(torch.equal(a[k], v) for k, v in again.state_dict().items())

    damaged = b"not a torch file" * 8
    path.write_bytes(damaged)
    with pytest.warns(RuntimeWarning, match=re.escape(str(path))):
        healed = train_restorer("patches", SIZE, root=tmp_path / "a", progress=False, **SMALL)
    assert all(torch.equal(a[k], v) for k, v in healed.state_dict().items())  # retrained: the same weights
    [aside] = path.parent.glob(f"{path.name}.damaged-*")
    assert aside.read_bytes() == damaged
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        train_restorer("patches", SIZE, root=tmp_path / "a", progress=False, **SMALL)  # healed: loads quietly

    mine = load_restorer(path)  # a file train_restorer wrote carries its architecture
    assert (mine.width, mine.depth) == (SMALL["width"], SMALL["depth"])
    assert all(torch.equal(a[k], v) for k, v in mine.state_dict().items())


def test_rog_reconstructs_a_patch_from_a_fedsgd_update(tiny_restorer, patches16):
    images, labels, model, update = _victim(patches16, seed=2)
    attack = ROG_RECIPE.with_(iterations=300)
    rec = invert(model, update, attack, labels=labels, restorer=tiny_restorer)
    plain = invert(model, update, attack, labels=labels)
    quality, unrestored = psnr(rec.images, images)[0], psnr(plain.images, images)[0]
    print(f"ROG {quality:.2f} dB, without its restorer {unrestored:.2f} dB")
    # Measured: 24.62 dB with the restorer, 23.65 dB without (the interpolation alone can hold 33.9 dB of this
    # patch). 20 dB leaves 4.6 dB for other CPUs and torch builds and is above the paper's leak line τ1 = 18 dB:
    # the attack recovers the image. The restorer must add to it, as it did for all six victims we measured.
    assert quality > 20.0 and quality > unrestored
    assert rec.images.shape == images.shape and 0 <= rec.images.min() and rec.images.max() <= 1
    # the optimised variable is the 4× smaller image
    assert rec.low_resolution.shape == (1, 3, SIZE // 4, SIZE // 4) and rec.config["low_resolution"] == [4, 4]
    assert rec.config["restored"] and rec.config["method"] == "rog" and rec.config["downsample"] == 4
    assert rec.loss_history[-1] < 0.5 * rec.loss_history[0] and len(rec.loss_history) == 300


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_rog_without_its_restorer_returns_the_interpolation_of_its_low_resolution_solution(
        tiny_restorer, patches16, interpolation):
    images, labels, model, update = _victim(patches16, seed=0)
    attack = ROG_RECIPE.with_(iterations=20, interpolation=interpolation)
    plain = invert(model, update, attack, labels=labels, seed=1)
    restored = invert(model, update, attack, labels=labels, seed=1, restorer=tiny_restorer)
    assert plain.config["restored"] is False and restored.config["restored"] is True
    assert torch.equal(plain.images, upsample(plain.low_resolution, 4, interpolation).clamp(0, 1))
    # the restorer post-processes; it does not change what was optimised
    assert torch.equal(plain.low_resolution, restored.low_resolution)
    with torch.no_grad():
        expected = tiny_restorer(upsample(plain.low_resolution, 4, interpolation)).clamp(0, 1)
    assert torch.allclose(restored.images, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(restored.images, plain.images, atol=1e-3)


def test_bad_rog_settings_are_clear_errors(patches16, tmp_path):
    images, labels, model, update = _victim(patches16, seed=0)
    with pytest.raises(ValueError, match="downsample must be an integer ≥ 1, got 0"):
        AttackConfig(method="rog", downsample=0)
    with pytest.raises(ValueError, match=r"downsample=3 times smaller.*16×16.*must divide"):
        invert(model, update, ROG_RECIPE.with_(downsample=3), labels=labels)
    with pytest.raises(ValueError, match="unknown interpolation 'nearest'.*bicubic"):
        ROG_RECIPE.with_(interpolation="nearest")
    with pytest.raises(ValueError, match="restorer_options must be a dict or"):
        AttackConfig(method="rog", restorer_options=("width", 8))
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['epochs'\]"):
        train_restorer("patches", SIZE, root=tmp_path, epochs=3)
    with pytest.raises(ValueError, match="downsample=3 must divide image_size=16"):
        train_restorer("patches", SIZE, downsample=3, root=tmp_path)
    # ROG's published USRNet weights (model_zoos/usrgan.pth) are another architecture: refused, with the way out
    usrnet_like = tmp_path / "usrgan.pth"
    torch.save({"p.m_head.weight": torch.zeros(64, 4, 3, 3), "h.mlp.0.weight": torch.zeros(64, 2, 1, 1)},
               usrnet_like)
    with pytest.raises(RestorerUnavailable, match=r"USRNet.*does not ship.*restorer=module"):
        load_restorer(usrnet_like)
    wrong = tmp_path / "wrong.pt"
    torch.save(restoration.Restorer(8, 3).state_dict(), wrong)
    with pytest.raises(RestorerUnavailable, match=r"Restorer\(width=32, depth=5\)"):
        load_restorer(wrong)
    assert load_restorer(wrong, width=8, depth=3).depth == 3


def test_rog_experiment_runs_end_to_end(tmp_path, monkeypatch):
    from giasok.runs import GiaExperiment, run

    monkeypatch.setenv("GIASOK_DATA", str(tmp_path / "data"))  # the restorer is trained there, not in ./data
    attack = ROG_RECIPE.with_(iterations=5, restorer_options=(("iterations", 10), ("width", 8), ("depth", 3)))
    config = GiaExperiment(image_size=SIZE, model_options=(("width", 4), ("image_size", SIZE)), attack=attack)
    first = run(config, root=tmp_path / "results")
    assert not first["cached"] and first["psnr"] > 0
    assert first["arrays"]["reconstruction"].shape == (1, 3, SIZE, SIZE)
    [trained] = (tmp_path / "data" / "generators").glob("restorer-patches-16px-x4-*.pt")
    assert config.restorer().config == RestorerConfig(image_size=SIZE, iterations=10, width=8, depth=3)
    assert run(config, root=tmp_path / "results")["cached"]
    weights = GiaExperiment(image_size=SIZE, model_options=(("width", 4), ("image_size", SIZE)),
                            attack=attack.with_(restorer_options=(("weights", str(trained)),)))
    assert run(weights, root=tmp_path / "results")["psnr"] == pytest.approx(first["psnr"])
