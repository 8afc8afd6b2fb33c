"""The book's one significance rule (giasok.claims): each test meets numbers that agree and numbers that
contradict, and must PASS the one and FAIL the other."""
import json
import math

import numpy as np
import pytest

from giasok import claims
from giasok.claims import Claim, at_least, difference, partial_trend, trend


def test_a_clear_falling_trend_over_victims_and_grid_points_passes():
    u = np.repeat([1, 2, 4, 8], 3)                      # 4 grid points × 3 victims
    psnr = np.array([25, 24, 26, 20, 21, 19, 15, 16, 14, 10, 11, 9.0])
    evidence = trend(u, psnr, "decreasing")
    assert evidence.holds and evidence.statistic < -0.9 and evidence.p_value < claims.ALPHA


def test_a_trend_against_the_claim_fails():
    u = np.repeat([1, 2, 4, 8], 3)
    psnr = np.array([10, 11, 9, 15, 16, 14, 20, 21, 19, 25, 24, 26.0])  # rises: contradicts "falls"
    evidence = trend(u, psnr, "decreasing")
    assert not evidence.holds and evidence.statistic > 0 and evidence.p_value > 0.5


def test_no_trend_fails_even_with_the_right_sign():
    u = np.repeat([1, 2, 4, 8], 3)
    psnr = np.array([20, 10, 16, 12, 19, 15, 17, 11, 18, 14, 13, 16.5])
    evidence = trend(u, psnr, "decreasing")
    assert not evidence.holds and evidence.p_value > claims.ALPHA


def test_three_points_can_never_pass_the_exact_test():
    # a perfect ρ = −1 over 3 points: the exact one-sided p is 1/3! = 1/6, above α
    evidence = trend([1, 2, 3], [30, 20, 10], "decreasing")
    assert evidence.statistic == pytest.approx(-1.0)
    assert evidence.p_value == pytest.approx(1 / 6)
    assert not evidence.holds


def test_exact_p_value_for_a_perfect_ranking_of_five_points():
    evidence = trend([1, 2, 3, 4, 5], [1, 3, 4, 8, 9], "increasing")
    assert evidence.p_value == pytest.approx(1 / math.factorial(5)) and evidence.holds


def test_constant_columns_and_too_few_points_are_not_testable_and_fail():
    assert not trend([1, 2, 3, 4], [5, 5, 5, 5], "increasing").holds
    assert "not testable" in trend([1, 1, 1], [1, 2, 3], "increasing").text
    assert not trend([1, 2], [1, 2], "increasing").holds


def test_the_p_value_is_a_function_of_the_numbers():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=40), rng.normal(size=40)  # 40 points: sampled permutations, seeded
    assert trend(x, y, "increasing").p_value == trend(x, y, "increasing").p_value


def test_bad_direction_is_refused():
    with pytest.raises(ValueError, match="direction"):
        trend([1, 2, 3], [1, 2, 3], "up")


def test_partial_trend_removes_a_common_dependence_on_the_control():
    # both variables rise with the round, but within that drift they are anti-related: the plain trend
    # says "together", the partial one must not
    rounds = np.repeat(np.arange(8), 3).astype(float)
    noise = np.tile([-1.0, 0.0, 1.0], 8)
    igsa, psnr = rounds + noise, rounds - noise
    assert trend(igsa, psnr, "increasing").holds
    assert not partial_trend(igsa, psnr, rounds, "increasing").holds
    assert partial_trend(igsa, psnr, rounds, "decreasing").holds


def test_partial_trend_finds_a_relation_that_the_control_does_not_explain():
    rng = np.random.default_rng(1)
    rounds = np.repeat(np.arange(10), 3).astype(float)
    signal = rng.normal(size=30)
    igsa, psnr = signal + 0.1 * rng.normal(size=30), signal + 0.1 * rng.normal(size=30)
    assert partial_trend(igsa, psnr, rounds, "increasing").holds
    assert not partial_trend(igsa, -psnr, rounds, "increasing").holds


def test_paired_difference_passes_when_one_condition_is_consistently_better():
    wst = np.array([20.0, 18.5, 22.1, 19.0, 21.2, 17.9])
    bst = wst - np.array([2.0, 1.5, 2.5, 1.0, 3.0, 2.2])
    assert difference(wst, bst, paired=True).holds
    assert not difference(bst, wst, paired=True).holds  # the contradicting direction


def test_paired_difference_with_three_pairs_cannot_reach_alpha():
    # 2³ = 8 sign patterns: the smallest exact p is 1/8
    evidence = difference([3.0, 4.0, 5.0], [1.0, 1.0, 1.0], paired=True)
    assert evidence.p_value == pytest.approx(1 / 8) and not evidence.holds


def test_unpaired_difference():
    early, late = [25.0, 24.0, 23.5, 26.0, 22.0], [10.0, 11.5, 9.0, 12.0, 10.5]
    assert difference(early, late, paired=False).holds
    assert not difference(late, early, paired=False).holds


def test_threshold_claim():
    assert at_least([19.0, 18.5, 20.0], 18).holds
    evidence = at_least([25.0, 9.0, 10.0], 18)  # one victim leaks, the mean does not reach τ1
    assert not evidence.holds and evidence.statistic == pytest.approx(44 / 3)


def test_claims_record_their_evidence_and_the_scorecard_shows_rule_and_overrides(tmp_path):
    evidence = trend([1, 2, 3, 4, 5], [9, 8, 6, 3, 1], "decreasing")
    claim = Claim.of("4.1", "quality falls", evidence, paper="paper side")
    assert claim.passed and claim.p_value == pytest.approx(1 / 120) and claim.statistic == pytest.approx(-1)
    failing = Claim.of("4.1", "quality rises", trend([1, 2, 3, 4, 5], [9, 8, 6, 3, 1], "increasing"), paper="p")
    claims.record_claims("4.1", "smoke", [claim, failing], overrides={"local_updates": [1, 2], "seed": None},
                         root=tmp_path)
    stored = json.loads((tmp_path / "smoke" / "4.1.json").read_text())
    assert stored["overrides"] == {"local_updates": "[1, 2]"} and stored["rule"] == claims.RULE
    assert [c["passed"] for c in stored["claims"]] == [True, False]
    card = claims.scorecard_markdown("smoke", root=tmp_path)
    assert "**FAIL**" in card and "`local_updates=[1, 2]`" in card and "α = 0.05" in card
    assert "quality rises" in claims.reading([claim, failing], "smoke")


def test_below_is_the_converse_of_at_least_and_fails_on_a_leak():
    from giasok.claims import below

    assert below([12.0, 14.0, 15.0], 18.0).holds          # every victim well below τ1: the defence stops it
    assert not below([20.0, 25.0, 22.0], 18.0).holds      # the attack still leaks: contradicting numbers FAIL
    assert not below([18.0, 18.0], 18.0).holds            # the threshold itself is a leak (mean ≥ τ1)
    assert not below([], 18.0).holds


def test_most_needs_more_than_half():
    from giasok.claims import at_least, most

    leak, no_leak = at_least([20.0], 18.0), at_least([10.0], 18.0)
    assert most({"a": leak, "b": leak, "c": no_leak}).holds
    assert not most({"a": leak, "b": no_leak}).holds      # half is not most
    assert not most({"a": no_leak, "b": no_leak, "c": leak}).holds
    assert not most({}).holds
