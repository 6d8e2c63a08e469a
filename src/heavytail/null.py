"""The criterion under the null: Wishart spectra, the null statistic and its calibrated quantile.

Under the null hypothesis a layer is an n x N matrix of i.i.d. Gaussian entries; its ESD is
then a real Wishart (Laguerre, beta = 1) spectrum.  The calibrated threshold is the
(1 - NULL_LEVEL) quantile of the scaled statistic T = s_hat n^(1/3) / sqrt(ln n) of the full
pipeline (spike rule, edge fit, exact L1 integral) on such spectra, for each (n, c),
estimated as mean + z(n) sd from Monte Carlo draws, with the tail factor z(n) pooled over
all ratios at that n (``scripts/calibrate_null.py`` says why).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigvalsh_tridiagonal

NULL_LEVEL = 1e-3  # false-fire probability of the calibrated rule per layer and epoch


def wishart_eigenvalues(n: int, N: int, rng: np.random.Generator) -> np.ndarray:
    """Eigenvalues of Z Z^T / N for Z an n x N standard Gaussian matrix, n <= N, in O(n^2).

    Dumitriu & Edelman (2002), beta = 1: Z Z^T has the same eigenvalues as B B^T where B is
    lower bidiagonal with diagonal chi_{N}, chi_{N-1}, ..., chi_{N-n+1} and subdiagonal
    chi_{n-1}, ..., chi_1, all independent.  B B^T is tridiagonal, so the spectrum costs a
    tridiagonal eigensolve instead of an n^2 N product and a dense one.
    """
    if not 2 <= n <= N:
        raise ValueError(f"need 2 <= n <= N, got n={n}, N={N}")
    diagonal = np.sqrt(rng.chisquare(N - np.arange(n)))
    sub = np.sqrt(rng.chisquare(np.arange(n - 1, 0, -1)))
    main = diagonal**2
    main[1:] += sub**2
    # sterf (Pal-Walker-Kahan QR, eigenvalues only): 3-4x faster than the default stemr
    eigenvalues = eigvalsh_tridiagonal(main, diagonal[:-1] * sub, lapack_driver="sterf")
    return np.clip(eigenvalues, 0.0, None) / N


def columns_for(n: int, ratio: float) -> int:
    """N = round(n / c), the number of columns of an n x N matrix with aspect ratio c."""
    return max(n, round(n / ratio))


def null_quantile(n: int, ratio: float) -> float:
    """Calibrated (1 - NULL_LEVEL) quantile of the scaled null statistic at (n, c).

    Read from the table that ``scripts/calibrate_null.py`` writes into
    ``heavytail._null_table``, bilinearly interpolated in (log n, c).  Below the smallest
    tabulated n the smallest row is used (the statistic is barely meaningful there: M = 4
    bins); above the largest n the table is extended linearly in log n from its last two
    rows, because at c near 1 the scaled statistic keeps growing slowly with n (the
    singular lower edge makes the histogram bias decay like M^(-1/2), not 1/M).
    """
    # imported here, not at the top: scripts/calibrate_null.py regenerates the table and
    # must run whatever state the table is in
    from heavytail._null_table import N_GRID, Q_TABLE, RATIO_GRID

    if n < 2:
        raise ValueError(f"need n >= 2 eigenvalues, got {n}")
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio must be in (0, 1], got {ratio!r}")
    log_grid = np.log(N_GRID)
    by_n = np.array([np.interp(ratio, RATIO_GRID, row) for row in Q_TABLE])
    log_n = np.log(n)
    if log_n <= log_grid[-1]:
        return float(np.interp(log_n, log_grid, by_n))
    slope = (by_n[-1] - by_n[-2]) / (log_grid[-1] - log_grid[-2])
    return float(by_n[-1] + max(slope, 0.0) * (log_n - log_grid[-1]))
