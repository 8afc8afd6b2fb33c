import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from giasok import metrics


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    truth = torch.rand(3, 3, 32, 32, generator=g)
    noisy = (truth + 0.05 * torch.randn(3, 3, 32, 32, generator=g)).clamp(0, 1)
    return noisy, truth


def test_psnr_and_ssim_equal_scikit_image_reference(pair):
    noisy, truth = pair
    for i in range(3):
        t, r = truth[i].permute(1, 2, 0).double().numpy(), noisy[i].permute(1, 2, 0).double().numpy()
        assert metrics.psnr(noisy, truth)[i] == pytest.approx(peak_signal_noise_ratio(t, r, data_range=1.0))
        assert metrics.ssim(noisy, truth)[i] == pytest.approx(
            structural_similarity(t, r, channel_axis=2, data_range=1.0))
    mse = ((noisy - truth) ** 2).flatten(1).mean(1).double().numpy()
    assert np.allclose(metrics.psnr(noisy, truth), -10 * np.log10(mse))
    assert np.all(metrics.ssim(truth, truth) == 1.0)


def test_shape_mismatch_is_an_error(pair):
    noisy, truth = pair
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.psnr(noisy[:2], truth)


def test_match_restores_a_shuffled_batch(pair):
    noisy, truth = pair
    perm = torch.tensor([2, 0, 1])
    matched, order = metrics.match(noisy[perm], truth)
    assert torch.allclose(matched, noisy)
    assert list(perm[order]) == [0, 1, 2]


def test_lpips_missing_weights_raise_naming_the_file(tmp_path, monkeypatch, pair):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    metrics._LPIPS_MODELS.clear()
    assert not metrics.lpips_available()
    with pytest.raises(metrics.MetricUnavailable, match="alexnet-owt-7be5be79.pth") as info:
        metrics.lpips_alex(*pair)
    assert str(tmp_path / "checkpoints") in str(info.value)


def test_lpips_plumbing_with_an_explicitly_random_backbone(pair):
    # NOT LPIPS: a random AlexNet under LPIPS's trained heads, only to exercise the code path offline.
    noisy, truth = pair
    same = metrics.lpips_alex(truth, truth, random_backbone_for_testing=True)
    diff = metrics.lpips_alex(noisy, truth, random_backbone_for_testing=True)
    assert same.shape == (3,) and np.allclose(same, 0, atol=1e-6)
    assert np.all(diff > 1e-4)


def test_brr_counts_samples_passing_both_thresholds():
    psnr = np.array([25.0, 19.0, 30.0, 10.0])
    lpips = np.array([0.05, 0.20, 0.01, 0.01])
    rate = metrics.brr(psnr, lpips)
    assert rate.value == 0.5 and "LPIPS < 0.1" in rate.criterion
    psnr_only = metrics.brr(psnr)
    assert psnr_only.value == 0.75 and "PSNR > 18 dB only" in psnr_only.criterion
    assert float(metrics.brr(psnr, lpips, tau_psnr=26)) == 0.25


def test_wsrr_is_the_recovery_rate_of_the_most_vulnerable_sample():
    # 4 attack initialisations × 3 samples; sample 1 is recovered in 3 of 4 runs, the others less often
    psnr = np.array([[10, 20, 19], [10, 25, 10], [30, 22, 10], [10, 10, 10]], dtype=float)
    lpips = np.full_like(psnr, 0.05)
    assert metrics.wsrr(psnr, lpips).value == 0.75
    lpips[1, 1] = 0.5  # run 1 no longer recovers sample 1 by LPIPS
    assert metrics.wsrr(psnr, lpips).value == 0.5
    assert metrics.brr(psnr, lpips).value == pytest.approx(4 / 12)
    with pytest.raises(ValueError, match="R×B"):
        metrics.wsrr(np.array([20.0, 10.0]))
