"""Spike rule and spectrum types against families with known ground truth."""

import zlib

import numpy as np
import pytest

from heavytail import classify, esd, fit_mp, spectral_distance
from heavytail.families import HEAVY_TAILED, bbp_threshold, deformed_bulk, spike_location
from heavytail.families import planted_spikes as planted
from heavytail.fit import default_max_spikes


@pytest.mark.parametrize(
    ("n", "N", "strengths"),
    [
        (300, 600, [1.5, 2.0, 3.0]),
        (500, 1000, [1.3, 2.5, 4.0, 6.0]),
        (400, 400, [1.6, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),  # K - 1 = 7 class-like spikes, c = 1
        (200, 1000, [2.0]),
    ],
)
def test_planted_spikes_above_bbp_are_found_exactly_and_typed_lt(n, N, strengths, rng):
    ratio = n / N
    assert min(strengths) > 1.5 * bbp_threshold(ratio)  # clearly above the BBP threshold
    eigenvalues = esd(planted(n, N, strengths, rng))
    fit = fit_mp(eigenvalues)
    assert fit.n_spikes == len(strengths)
    predicted = np.sort([spike_location(theta, ratio) for theta in strengths])
    # spike eigenvalues fluctuate by O(n^(-1/2)) around the limit, more near the threshold
    np.testing.assert_allclose(fit.spikes, predicted, rtol=0.1)
    result = classify(eigenvalues, ratio=ratio)
    assert result.type == "LT" and not result.fires
    if ratio <= 0.5:  # where the paper's rule is valid, it must not fire either
        assert not spectral_distance(eigenvalues, C=0.4, threshold="paper").fires


def test_without_the_spike_rule_the_spikes_make_the_criterion_fire(rng):
    eigenvalues = esd(planted(300, 600, [2.0, 3.0, 4.0], rng))
    assert spectral_distance(eigenvalues, max_spikes=0).fires
    assert not spectral_distance(eigenvalues).fires


@pytest.mark.parametrize(("n", "N"), [(300, 600), (400, 400)])
def test_spikes_well_below_bbp_are_not_spikes(n, N, rng):
    weak = 0.5 * bbp_threshold(n / N)
    fit = fit_mp(esd(planted(n, N, [weak] * 3, rng)))
    assert fit.n_spikes == 0


@pytest.mark.parametrize("family", sorted(HEAVY_TAILED))
@pytest.mark.parametrize(("n", "N"), [(300, 600), (500, 500)])
def test_heavy_tails_are_typed_ht_fire_and_stay_in_the_bulk(family, n, N):
    rng = np.random.default_rng(zlib.crc32(f"{family}-{n}".encode()))
    draws, kept = 20, 0
    for _ in range(draws):
        eigenvalues = esd(HEAVY_TAILED[family](n, N, rng))
        result = classify(eigenvalues, ratio=n / N)
        assert result.fires
        assert spectral_distance(eigenvalues, C=0.4, threshold="paper").fires
        # the spike rule leaves the tail in the bulk, and the tail makes it HT
        if result.type == "HT" and result.distance.fit.upper == eigenvalues[-1]:
            kept += 1
    # Over 100 draws we measured 98% for Student-t(2) at 300 x 600 (the top of a tail
    # sometimes ends in a gap and looks like ~15 spikes) and 100% elsewhere.
    assert kept >= draws - 1


def test_heavy_tails_have_a_small_power_law_exponent(rng):
    result = classify(esd(HEAVY_TAILED["pareto_1.5"](400, 800, rng)))
    assert 1.3 < result.alpha < 2.5


def test_a_deformed_bulk_without_a_long_tail_is_bt(rng):
    # generalised MP: rows with variances spread over [0.5, 3]: no tail, but not MP
    weight = deformed_bulk(500, 1000, rng)
    result = classify(esd(weight), ratio=0.5)
    assert result.type == "BT", result.reason
    assert result.fires and result.n_spikes == 0
    assert 1.0 < result.tail_extent < 1.5


@pytest.mark.parametrize(("n", "N"), [(300, 600), (500, 500), (100, 1000)])
def test_gaussian_noise_is_lt(n, N, rng):
    result = classify(esd(rng.standard_normal((n, N))), ratio=n / N)
    assert result.type == "LT" and not result.fires and result.n_spikes == 0
    assert 0.9 < result.tail_extent < 1.1


def test_all_zero_matrix_is_rank_collapse():
    result = classify(esd(np.zeros((20, 40))))
    assert result.type == "RC"
    assert result.near_zero_share == 1.0
    assert result.distance is None and np.isnan(result.s_hat) and not result.fires


def test_low_rank_matrix_is_rank_collapse(rng):
    weight = rng.standard_normal((200, 50)) @ rng.standard_normal((50, 400))
    result = classify(esd(weight))
    assert result.type == "RC"
    assert result.near_zero_share == pytest.approx(0.75, abs=0.01)


def test_max_spikes_default_allows_class_spikes_but_not_a_tail():
    assert default_max_spikes(192) == 14
    assert default_max_spikes(40) == 10
    assert default_max_spikes(12) == 3
    assert default_max_spikes(4096) == 64


def test_classify_rejects_unknown_threshold_rule(rng):
    with pytest.raises(ValueError, match="threshold must be one of"):
        classify(esd(rng.standard_normal((30, 60))), threshold="loose")


def test_the_benchmark_matrices_are_what_their_truth_says():
    # heavytail.families.benchmark_matrices, which scripts/bench_spectral.py times against
    # WeightWatcher: our analysis finds the planted spike count and the type each one states
    from heavytail.families import benchmark_matrices

    for name, weight, truth in benchmark_matrices(np.random.default_rng(0)):
        n, big_n = min(weight.shape), max(weight.shape)
        result = classify(esd(weight), ratio=n / big_n)
        spikes = int(truth.split(" spikes")[0].split()[-1])
        assert (result.n_spikes, result.type) == (spikes, truth.split()[-1]), name
