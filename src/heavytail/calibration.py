"""The null statistic's Monte Carlo draws, from which the calibrated table is made
(``scripts/calibrate_null.py``).  Apart from ``heavytail.null`` so that the statistic
(``heavytail.distance``, which reads the table through ``null_quantile``) and the draws do
not import each other.
"""

from __future__ import annotations

import numpy as np

from heavytail.distance import spectral_distance
from heavytail.null import columns_for, wishart_eigenvalues

# the (n, c) grid of the shipped table (heavytail/_null_table.py); c near 1 is dense because
# the null quantile rises steeply there
N_GRID = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
RATIO_GRID = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95)
RATIO_GRID += (0.975, 0.99, 1.0)


def draws_for(n: int, quick: bool) -> int:
    """Draws per cell: 2000 up to n = 1024, 1000 above (each draw costs O(n^2)); 200 quick."""
    if quick:
        return 200
    return 2000 if n <= 1024 else 1000


def null_statistics(n: int, ratio: float, draws: int, seed: int = 0) -> np.ndarray:
    """Scaled statistic s_hat n^(1/3) / sqrt(ln n) on ``draws`` Wishart spectra, n x n/c."""
    rng = np.random.default_rng(seed)
    big_n = columns_for(n, ratio)
    return np.array(
        [spectral_distance(wishart_eigenvalues(n, big_n, rng)).scaled for _ in range(draws)]
    )
