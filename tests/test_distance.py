import itertools

import numpy as np
import pytest
from scipy import integrate, optimize

from heavytail import esd, fit_mp, mp_pdf, n_bins, paper_threshold, spectral_distance
from heavytail.distance import l1_histogram_distance, scale_factor
from heavytail.families import planted_spikes as planted
from heavytail.null import wishart_eigenvalues


def reference_l1(bulk: np.ndarray, ratio: float, sigma2: float, lower: float, upper: float):
    """Adaptive quadrature of |p_hat - p| bin by bin, split where the two cross."""
    bins = n_bins(bulk.size)
    counts, edges = np.histogram(bulk, bins=bins, range=(lower, upper))
    heights = counts / (bulk.size * (upper - lower) / bins)
    total = 0.0
    for h, u, v in zip(heights, edges[:-1], edges[1:], strict=True):
        grid = np.linspace(u, v, 401)
        gap = mp_pdf(grid, ratio, sigma2) - h
        points = [u]
        for x0, x1, g0, g1 in zip(grid[:-1], grid[1:], gap[:-1], gap[1:], strict=True):
            if g0 * g1 < 0:
                points.append(
                    optimize.brentq(lambda x, h=h: mp_pdf(x, ratio, sigma2) - h, x0, x1, xtol=1e-15)
                )
        points.append(v)
        for left, right in itertools.pairwise(points):
            value, _ = integrate.quad(
                lambda x, h=h: abs(h - mp_pdf(x, ratio, sigma2)),
                left,
                right,
                limit=500,
                epsabs=1e-13,
                epsrel=1e-13,
            )
            total += value
    return total


@pytest.mark.parametrize(("n", "N"), [(100, 1000), (300, 600), (200, 220), (256, 256), (60, 60)])
def test_s_hat_is_the_exact_l1_integral(n, N, rng):
    fit = fit_mp(esd(rng.standard_normal((n, N))))
    s_hat, bins = l1_histogram_distance(fit.bulk, fit)
    assert bins == n_bins(fit.bulk.size)
    reference = reference_l1(fit.bulk, fit.ratio, fit.sigma2, fit.lower, fit.upper)
    assert abs(s_hat - reference) < 1e-6


def test_s_hat_is_exact_on_a_spiked_and_a_heavy_tailed_spectrum(rng):
    for weight in (planted(200, 400, [2.0, 3.0], rng), rng.standard_t(2, (150, 300))):
        fit = fit_mp(esd(weight))
        s_hat, _ = l1_histogram_distance(fit.bulk, fit)
        assert (
            abs(s_hat - reference_l1(fit.bulk, fit.ratio, fit.sigma2, fit.lower, fit.upper)) < 1e-6
        )


def test_bins_and_paper_threshold_follow_the_paper():
    assert [n_bins(n) for n in (7, 8, 26, 27, 999, 1000, 1001)] == [2, 4, 4, 6, 18, 20, 20]
    assert paper_threshold(1000, 0.4) == pytest.approx(0.4 * np.sqrt(np.log(1000)) / 10.0)
    assert scale_factor(512) == pytest.approx(np.sqrt(np.log(512)) / 8.0)


def test_s_hat_is_scale_invariant(rng):
    eigenvalues = esd(rng.standard_normal((120, 300)))
    first = spectral_distance(eigenvalues)
    second = spectral_distance(7.5 * eigenvalues)
    assert second.s_hat == pytest.approx(first.s_hat, rel=1e-9)
    assert second.fit.sigma2 == pytest.approx(7.5 * first.fit.sigma2, rel=1e-12)


def test_fit_recovers_the_edges_from_the_extreme_bulk_eigenvalues(rng):
    eigenvalues = esd(rng.standard_normal((400, 800)) * 1.5)
    fit = fit_mp(eigenvalues)
    assert (fit.lower, fit.upper) == (eigenvalues[0], eigenvalues[-1])
    assert fit.sigma2 == pytest.approx(2.25, rel=0.03)
    assert fit.ratio == pytest.approx(0.5, rel=0.05)
    assert fit.n_spikes == 0 and fit.spikes.size == 0
    with pytest.raises(ValueError):
        fit.bulk[0] = 1.0  # results are frozen, arrays included


# The paper's Figure 3.1 grid for c <= 0.5: its scaled statistic lies in 0.15-0.25, with
# worst cases about 0.33-0.35 at small n.
PAPER_GRID = [
    (0.2, 100),
    (0.2, 500),
    (0.2, 900),
    (0.2, 1300),
    (0.5, 250),
    (0.5, 1500),
    (0.5, 2750),
    (0.5, 4000),
]


@pytest.mark.slow
def test_paper_rule_reproduces_the_paper_null_range_for_small_ratios():
    rng = np.random.default_rng(31)
    means, worst = [], 0.0
    for ratio, n in PAPER_GRID:
        scaled = [
            spectral_distance(wishart_eigenvalues(n, round(n / ratio), rng)).scaled
            for _ in range(25)
        ]
        means.append(np.mean(scaled))
        worst = max(worst, np.max(scaled))
    assert 0.14 <= min(means) and max(means) <= 0.26, means
    assert worst <= 0.37
    # so C = 0.4 never fires on this noise, as the paper reports
    assert worst < 0.4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": "strict"}, "threshold must be one of"),
        ({"C": -1.0}, "C must be a positive number"),
        ({"ratio": 1.5}, "ratio = n/N must be in"),
    ],
)
def test_spectral_distance_rejects_bad_options(kwargs, message, rng):
    with pytest.raises(ValueError, match=message):
        spectral_distance(esd(rng.standard_normal((30, 60))), **kwargs)


@pytest.mark.parametrize(
    ("eigs", "message"),
    [
        (np.array([1.0]), "at least 2"),
        (np.array([1.0, np.nan, 2.0]), "NaN or inf"),
        (np.array([-1.0, 2.0, 3.0]), "non-negative"),
        (np.ones((3, 3)), "1-D"),
        (np.full(10, 2.0), "no spread"),
    ],
)
def test_spectral_distance_rejects_bad_spectra(eigs, message):
    with pytest.raises(ValueError, match=message):
        spectral_distance(eigs)
