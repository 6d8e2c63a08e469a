import numpy as np
import pytest

from heavytail import fit_powerlaw


def reference_fit(values: np.ndarray, min_tail: int = 10) -> tuple[float, float]:
    """Clauset et al. (2009) written out plainly: MLE per xmin, keep the smallest KS."""
    values = np.sort(values)
    best = (np.inf, np.nan, np.nan)
    for k in range(values.size - min_tail + 1):
        tail = values[k:]
        alpha = 1.0 + tail.size / np.sum(np.log(tail / tail[0]))
        fitted = 1.0 - (tail / tail[0]) ** (1.0 - alpha)
        steps = np.arange(tail.size)
        ks = max(
            np.max(np.abs(steps / tail.size - fitted)),
            np.max(np.abs((steps + 1) / tail.size - fitted)),
        )
        if ks < best[0]:
            best = (ks, alpha, tail[0])
    return best[1], best[2]


def test_fit_matches_the_plain_clauset_procedure(rng):
    values = rng.lognormal(0.0, 1.0, 700)
    fit = fit_powerlaw(values)
    alpha, xmin = reference_fit(values)
    assert fit.alpha == pytest.approx(alpha, rel=1e-12)
    assert fit.xmin == xmin


def test_fit_recovers_a_planted_exponent(rng):
    # continuous power law, p(x) ~ x^-2.5 above 1, hidden under a uniform body below it
    tail = (1.0 - rng.random(4000)) ** (-1.0 / 1.5)
    body = rng.uniform(0.05, 1.0, 2000)
    fit = fit_powerlaw(np.concatenate([body, tail]))
    assert fit.alpha == pytest.approx(2.5, abs=0.1)
    assert fit.xmin == pytest.approx(1.0, rel=0.2)


def test_too_few_points_give_nan():
    fit = fit_powerlaw(np.array([1.0, 2.0, 3.0]))
    assert np.isnan(fit.alpha) and fit.n_tail == 0
