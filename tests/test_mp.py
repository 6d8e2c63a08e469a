import numpy as np
import pytest
from scipy import integrate, stats

from heavytail import esd, mp_cdf, mp_edges, mp_pdf, mp_quantile


@pytest.mark.parametrize("ratio", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("sigma2", [1.0, 0.37])
def test_mp_pdf_integrates_to_one(ratio, sigma2):
    a, b = mp_edges(ratio, sigma2)
    mass, _error = integrate.quad(mp_pdf, a, b, args=(ratio, sigma2), limit=200)
    assert mass == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.9, 1.0])
def test_mp_cdf_is_the_integral_of_the_pdf(ratio):
    a, b = mp_edges(ratio, 2.0)
    for x in np.linspace(a, b, 9)[1:-1]:
        mass, _ = integrate.quad(mp_pdf, a, x, args=(ratio, 2.0), limit=200, epsabs=1e-12)
        assert mp_cdf(x, ratio, 2.0) == pytest.approx(mass, abs=1e-9)
    assert mp_cdf(a - 1.0, ratio, 2.0) == 0.0
    assert mp_cdf(b + 1.0, ratio, 2.0) == 1.0


def test_mp_edges_and_quantiles():
    a, b = mp_edges(0.25, 4.0)
    assert (a, b) == pytest.approx((4.0 * 0.25, 4.0 * 2.25))
    levels = np.array([0.01, 0.3, 0.5, 0.99])
    np.testing.assert_allclose(
        mp_cdf(mp_quantile(levels, 0.25, 4.0), 0.25, 4.0), levels, atol=1e-12
    )


@pytest.mark.parametrize("ratio", [0.1, 0.5, 1.0])
def test_mp_law_matches_wishart_eigenvalues(ratio, rng):
    n = 400
    eigenvalues = esd(rng.standard_normal((n, round(n / ratio))) * np.sqrt(2.0))
    distance = stats.kstest(eigenvalues, lambda x: mp_cdf(x, ratio, 2.0)).statistic
    assert distance < 0.02


@pytest.mark.parametrize(("ratio", "sigma2"), [(0.0, 1.0), (1.5, 1.0), (0.5, 0.0), (np.nan, 1.0)])
def test_mp_rejects_invalid_parameters(ratio, sigma2):
    with pytest.raises(ValueError, match="must be"):
        mp_pdf(1.0, ratio, sigma2)
