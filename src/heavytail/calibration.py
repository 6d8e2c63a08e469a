"""The null statistic's Monte Carlo draws, from which the calibrated table is made
(``scripts/calibrate_null.py``).  Apart from ``heavytail.null`` so that the statistic
(``heavytail.distance``, which reads the table through ``null_quantile``) and the draws do
not import each other.
"""

from __future__ import annotations

import numpy as np

from heavytail.distance import spectral_distance
from heavytail.null import columns_for, wishart_eigenvalues


def null_statistics(n: int, ratio: float, draws: int, seed: int = 0) -> np.ndarray:
    """Scaled statistic s_hat n^(1/3) / sqrt(ln n) on ``draws`` Wishart spectra, n x n/c."""
    rng = np.random.default_rng(seed)
    big_n = columns_for(n, ratio)
    return np.array(
        [spectral_distance(wishart_eigenvalues(n, big_n, rng)).scaled for _ in range(draws)]
    )
