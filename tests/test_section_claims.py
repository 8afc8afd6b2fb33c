"""Every section's claim function meets hand-made numbers that agree with the paper (all PASS) and numbers
that contradict it (the contradicted claims FAIL). Three victims per grid point, as the cpu profile runs."""
import numpy as np
import pandas as pd

from giasok import data_dimension as dd
from giasok import training_setup as ts
from giasok import training_stage as st

VICTIMS = 3
JITTER = np.array([-0.5, 0.0, 0.6])  # the victims differ a little


def _by_claim(claims, text):
    matches = [c for c in claims if text in c.claim]
    assert matches, text
    return matches


# -- §4.1 ----------------------------------------------------------------------------------------------------

def _table1(psnr_at_u: dict, attacks=("GIA-O", "GIA-L")):
    rows = [dict(dataset="patches N=1", attack=a, U=u, seed=s, psnr=p + JITTER[s], ssim=0.5, lpips=None)
            for a in attacks for u, p in psnr_at_u.items() for s in range(VICTIMS)]
    return pd.DataFrame(rows)


def _table2(wst: dict, bst: dict, attacks=("GIA-O",)):
    rows = []
    for a in attacks:
        for s in range(VICTIMS):
            rows.append(dict(dataset="patches B=1", attack=a, minibatches=1, case="BST", seed=s, psnr=bst[1] + JITTER[s]))
            for k in (2, 4):
                rows.append(dict(dataset="patches B=1", attack=a, minibatches=k, case="WST", seed=s, psnr=wst[k] + JITTER[s]))
                rows.append(dict(dataset="patches B=1", attack=a, minibatches=k, case="BST", seed=s, psnr=bst[k] + JITTER[s]))
    return pd.DataFrame(rows).assign(ssim=0.5, lpips=None)


def test_41_claims_pass_on_numbers_that_agree_with_the_paper():
    claims = ts.insight_claims(_table1({1: 25, 2: 20, 4: 14, 8: 9}),
                               _table2(wst={2: 20, 4: 16}, bst={1: 24, 2: 17, 4: 12}))
    assert all(c.passed for c in claims), [c for c in claims if not c.passed]
    assert all(c.p_value is not None for c in claims if "falls" in c.claim)


def test_41_claims_fail_on_numbers_that_contradict_the_paper():
    claims = ts.insight_claims(_table1({1: 12, 2: 14, 4: 16, 8: 20}),                 # quality rises with U
                               _table2(wst={2: 14, 4: 12}, bst={1: 24, 2: 20, 4: 19}))  # BST beats WST
    assert not any(c.passed for c in _by_claim(claims, "falls as U grows"))
    assert not any(c.passed for c in _by_claim(claims, "at U = 1 the attack leaks"))  # 12 dB < τ1
    assert not _by_claim(claims, "WST reconstructs better")[0].passed


def test_41_paper_side_is_computed_per_data_set():
    claims = ts.insight_claims(_table1({1: 25, 2: 20, 4: 14, 8: 9}),
                               _table2(wst={2: 20, 4: 16}, bst={1: 24, 2: 17, 4: 12}))
    wst = _by_claim(claims, "WST reconstructs better")[0].paper
    assert "CIFAR10" in wst and "CIFAR100" in wst and "0.1009" in wst and "0.0977" in wst
    bst_trend = _by_claim(claims, "GIA-O, BST): quality falls")[0].paper
    assert "CIFAR100: LPIPS 0.0045" in bst_trend and "first ≥ 0.1 at 6" in bst_trend


# -- §4.2.1 --------------------------------------------------------------------------------------------------

def _fig4(x: str, tv: dict, gl: dict):
    rows = []
    for attack, values in (("G_O+TV", tv), ("G_L", gl), ("G_O", {k: v - 3 for k, v in tv.items()})):
        for value, p in values.items():
            for s in range(VICTIMS):
                rows.append({"attack": attack, "resolution": value if x == "resolution" else 32,
                             "batch": value if x == "batch" else 1, "seed": s, "psnr": p + JITTER[s]})
    return pd.DataFrame(rows)


def _table5(rows):
    return pd.DataFrame([dict(attack=a, batch=b, psnr=p, lpips=None, brr=brr, wsrr=wsrr) for a, b, p, brr, wsrr in rows])


GOOD_TABLE5 = _table5([("GIA-O", 1, 24, 90, 100), ("GIA-O", 4, 12, 0, 20), ("GIA-L", 1, 20, 60, 80), ("GIA-L", 4, 13, 2, 30)])


def test_421_claims_pass_on_numbers_that_agree_with_the_paper():
    claims = dd.insight_claims(_fig4("resolution", {16: 24, 32: 19, 64: 12}, {16: 20, 32: 17, 64: 14}),
                               _fig4("batch", {1: 22, 2: 17, 4: 12}, {1: 18, 2: 16, 4: 15}), GOOD_TABLE5)
    assert all(c.passed for c in claims), [c for c in claims if not c.passed]


def test_421_claims_fail_on_numbers_that_contradict_the_paper():
    claims = dd.insight_claims(_fig4("resolution", {16: 12, 32: 15, 64: 17}, {16: 20, 32: 17, 64: 14}),
                               _fig4("batch", {1: 22, 2: 17, 4: 12}, {1: 24, 2: 17, 4: 10}),  # GIA-L falls faster
                               _table5([("GIA-O", 1, 24, 90, 30), ("GIA-O", 4, 12, 40, 50)]))
    assert not _by_claim(claims, "easiest point of Fig. 4a")[0].passed
    assert not _by_claim(claims, "quality falls with resolution")[0].passed
    assert not _by_claim(claims, "degrades more gracefully")[0].passed
    assert not _by_claim(claims, "BRR ≈ 0")[0].passed       # a failing row with BRR 40 %
    assert not _by_claim(claims, "WSRR ≥ 50")[0].passed     # a leaking row with WSRR 30 %


def test_421_table5_statement_without_a_row_to_test_is_not_a_pass():
    claims = dd.table5_claims(_table5([("GIA-O", 1, 24, 90, 100), ("GIA-L", 1, 22, 70, 90)]))  # nothing fails
    brr = _by_claim(claims, "BRR ≈ 0")[0]
    assert not brr.passed and "not testable" in brr.ours
    assert "6 of 6" in brr.paper and "GIA-O B=20" in _by_claim(claims, "WSRR")[0].paper


# -- §5.1 ----------------------------------------------------------------------------------------------------

def _victims(psnr, igsa_noise_sign=+1, accuracy=None, rounds=8):
    """Rounds × victims; PSNR falls (or not) with the round; within a round IGSA follows PSNR when
    ``igsa_noise_sign`` is +1 and opposes it when −1."""
    rows = []
    accuracy = accuracy or list(np.linspace(0.1, 0.7, rounds))
    for t in range(rounds):
        for v in range(VICTIMS):
            p = psnr(t) + 2 * JITTER[v] + 0.3 * ((t * 7 + v * 3) % 5 - 2)
            rows.append(dict(model="m", round=t, victim=v, accuracy=accuracy[t], psnr=p,
                             igsa=np.exp(0.2 * p * igsa_noise_sign + 0.01 * t), igsa_exact=np.exp(0.2 * p)))
    return pd.DataFrame(rows)


def test_51_claims_pass_when_the_model_hardens_as_it_learns():
    claims = st.insight_claims(_victims(lambda t: 26 - 2 * t), window=2)
    assert all(c.passed for c in claims), [c for c in claims if not c.passed]


def test_51_claims_fail_when_the_model_softens_or_igsa_disagrees():
    claims = st.insight_claims(_victims(lambda t: 10 + 2 * t), window=2)
    assert not _by_claim(claims, "quality falls over the rounds")[0].passed
    assert not _by_claim(claims, "vulnerability falls as accuracy rises")[0].passed
    assert not _by_claim(claims, "the attack leaks")[0].passed
    opposed = st.insight_claims(_victims(lambda t: 26 - 2 * t, igsa_noise_sign=-1), window=2)
    assert not _by_claim(opposed, "IGSA and PSNR move together")[0].passed


# -- the generator gates (§4.1, §4.2.1) ----------------------------------------------------------------------

def _generators(means: dict, **columns):
    return pd.DataFrame([dict(generator_seed=g, seed=s, psnr=m + JITTER[s], **columns)
                         for g, m in means.items() for s in range(VICTIMS)])


def test_generator_gates_pass_only_when_every_generator_leaks():
    assert ts.generator_claim(_generators({0: 22, 1: 20, 2: 19}, U=1)).passed
    one_bad = ts.generator_claim(_generators({0: 22, 1: 12, 2: 19}, U=1))  # one GAN run that does not leak
    assert not one_bad.passed and "seed 1" in one_bad.ours and "10.0 dB" in one_bad.ours
    assert dd.generator_claim(_generators({0: 21, 1: 20}, batch=1)).passed
    assert not dd.generator_claim(_generators({0: 21, 1: 15}, batch=1)).passed


def test_generator_experiments_vary_only_the_generator_seed():
    from giasok.profiles import get_profile

    settings = get_profile("smoke", "training_setup", generator_seeds=[0, 3], seeds=2).training_setup
    grid = ts.generator_experiments(settings)
    seeds = [dict(e.attack.generator_options).get("seed", 0) for e in grid]
    assert seeds == [0, 0, 3, 3] and {e.attack.method for e in grid} == {"gia-l"}
    assert grid[0] in ts.table1_experiments(settings)  # seed 0 is the tables' own run: cached
    assert {e.seed for e in grid} == {0, 1}
