"""§4.2.2 data content: the client's canary and OOD images, the detail read-back stored with each result, and
Insight 4.2.2's claims — which pass on agreeing numbers and FAIL on contradicting ones."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from giasok import canaries
from giasok import data_content as dc
from giasok.profiles import PROFILES
from giasok.runs import run

VICTIMS = 5  # enough for a paired permutation test to reach p < 0.05 (2⁻⁵ = 0.03)
SETTINGS = dataclasses.replace(PROFILES["smoke"].data_content, canary_victims=VICTIMS, victims=VICTIMS,
                               canary_kinds=("clock", "digits", "words"), generator_seeds=(0, 1))


def _content(content, seed=0, **changes):
    return dc.ContentExperiment(dataset="patches", image_size=32, model="convnet",
                                model_options=(("width", 4), ("batch_norm", True)), bn_mode="eval", seed=seed,
                                content=content, **changes)


def test_the_client_holds_the_canary_it_names():
    images, labels = _content("rendered:clock", seed=3).client_data()
    expected, minutes = canaries.canaries("clock", 1, 32, seed=3)
    assert torch.equal(images, expected) and labels.tolist() == [3 % 10]
    photo, _ = _content("photo:text").client_data()
    assert photo.shape == (1, 3, 32, 32) and 0 <= photo.min() and photo.max() <= 1
    a, b, c = (_content("crop:brick", seed=s).client_data()[0] for s in (0, 0, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)  # a crop position is drawn with the victim's seed
    plain, _ = _content("").client_data()
    assert torch.equal(plain, dataclasses.replace(_content(""), content="").client_data()[0])


@pytest.mark.parametrize("content, match", [("rendered:ruler", "rendered canaries"), ("photo:moon", "photograph"),
                                            ("clock", "content must be"), ("data:", "content must be")])
def test_unknown_content_is_refused(content, match):
    with pytest.raises(ValueError, match=match):
        _content(content)


def test_a_canary_result_carries_the_detail_read_back(tmp_path):
    attack = PROFILES["smoke"].data_content.gia_o
    result = run(_content("rendered:digits", seed=1, attack=attack, share_bn_statistics=True), root=tmp_path)
    _, contents = canaries.canaries("digits", 1, 32, seed=1)
    assert result["content"] == contents[0]
    assert result["detail_truth"] == 1.0  # the ground truth reads back whole
    assert 0.0 <= result["detail"] <= 1.0 and result["detail_chance"] == canaries.CHANCE["digits"]
    again = run(_content("rendered:digits", seed=1, attack=attack, share_bn_statistics=True), root=tmp_path)
    assert again["cached"] and again["detail"] == result["detail"]


@pytest.fixture(scope="module")
def rows():
    return (dc.detail_experiments(SETTINGS) + dc.ood_experiments(SETTINGS) + dc.generator_experiments(SETTINGS))


def _frame(rows, psnr, detail):
    """A synthetic run_content frame: ``psnr(row)`` and ``detail(row)`` give a cell's values (detail: (read back from
    the reconstruction, from the truth)); victims scatter ±0.4 dB around the PSNR, the same way in every cell."""
    scatter = np.linspace(-0.4, 0.4, VICTIMS)
    out = []
    for r in rows:
        rendered = r["study"] == "details" and r["source"] in canaries.KINDS
        read, truth = detail(r) if rendered else (np.nan, np.nan)
        out.append(dict({k: v for k, v in r.items() if k != "experiment"}, psnr=psnr(r) + scatter[r["victim"]],
                        psnr_lowpass=psnr(r) + 3 + scatter[r["victim"]],
                        ssim=0.5, lpips=np.nan, detail=read + 0.01 * r["victim"] if rendered else np.nan,
                        detail_truth=truth, detail_chance=canaries.CHANCE.get(r["source"], np.nan),
                        content="123", seconds=1.0, hash="x"))
    return pd.DataFrame(out)


def agreeing_psnr(row):
    if row["study"] == "ood":
        return {("ID", "GIA-L"): 24.0, ("ID", "GIA-O"): 22.0}.get((row["source"], row["attack"]),
                                                                    14.0 if row["attack"] == "GIA-L" else 21.5)
    return 25.0


def lost_details(row):
    return (170.0, 0.0) if row["source"] == "clock" else (canaries.CHANCE[row["source"]], 1.0)


def test_insight_4_2_2_passes_on_agreeing_numbers(rows):
    claims = dc.insight_claims(_frame(rows, agreeing_psnr, lost_details), SETTINGS)
    assert len(claims) == 9
    assert all(c.passed for c in claims), [(c.claim, c.ours) for c in claims if not c.passed]


def test_insight_4_2_2_fails_on_contradicting_numbers(rows):
    def psnr(row):
        if row["study"] == "ood":  # GIA-L better out of distribution; nothing leaks in it
            return {("ID", "GIA-L"): 12.0, ("ID", "GIA-O"): 10.0}.get((row["source"], row["attack"]),
                                                                        24.0 if row["attack"] == "GIA-L" else 10.5)
        return 10.0 if row["study"] == "generators" else 12.0  # no generator leaks; canaries not recovered
                                                                # (not even blurred: 12 + 3 < 18)

    def kept_details(row):  # reconstructions read back as well as the truth
        return (0.0, 5.0) if row["source"] == "clock" else (1.0, 1.0)

    claims = dc.insight_claims(_frame(rows, psnr, kept_details), SETTINGS)
    assert len(claims) == 9
    assert not any(c.passed for c in claims), [(c.claim, c.ours) for c in claims if c.passed]


def test_tables_and_explorer_frame_describe_every_cell(rows):
    frame = _frame(rows, agreeing_psnr, lost_details)
    table = dc.detail_table(frame)
    assert set(table.index.get_level_values("source")) == {"clock", "digits", "words", "photographs"}
    assert table.loc[("clock", "GIA-O"), "detail_truth"] == 0.0 and table.loc[("digits", "GIA-L"), "chance"] == 0.1
    ood = dc.ood_table(frame)
    assert list(ood.index) == ["ID", *SETTINGS.ood_sources] and ood.loc["ID", "GIA-L − GIA-O"] == 2.0
    shown, _ = dc.explorer_frame(frame, list(range(len(frame))))
    assert "generators" not in set(shown.study) and shown.read.str.contains("truth 123").any()


def test_paper_and_cpu_profiles():
    paper, cpu = PROFILES["paper"].data_content, PROFILES["cpu"].data_content
    assert set(paper.ood_sources) == {"data:dtd", "data:places365", "data:lfw", "data:pacs"}
    assert any(p == "bn" for p, _ in paper.gia_o.priors) and any(p == "tv" for p, _ in paper.gia_o.priors)
    assert cpu.canary_victims >= 3 and cpu.victims >= 3 and len(cpu.generator_seeds) >= 2
    assert set(cpu.canary_kinds) == set(canaries.KINDS)


def test_lowpass_psnr_ignores_fine_detail_but_not_colour():
    images, _ = canaries.canaries("digits", 2, 32, seed=0)
    other, _ = canaries.canaries("digits", 2, 32, seed=5)
    sigma = 32 * dc.LOWPASS
    assert np.isinf(dc.lowpass_psnr(images, images, sigma=sigma)).all()
    # other digits on other colours: blurred, the two still differ (colour is global appearance) ...
    assert (dc.lowpass_psnr(other, images, sigma=sigma) < 30).all()
    # ... while the same colours with the glyphs wiped out come close once blurred, and far unblurred
    from giasok.metrics import psnr
    flat = images.mean(dim=(2, 3), keepdim=True).expand_as(images)
    assert (dc.lowpass_psnr(flat, images, sigma=sigma) > psnr(flat, images) + 3).all()
