"""Power-law fit of a spectrum's right tail (Clauset, Shalizi & Newman 2009)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_TAIL = 10  # fewer points than this and the exponent is noise
BLOCK = 32  # candidates per vectorised block


@dataclass(frozen=True)
class PowerLawFit:
    """Tail p(x) ~ x^(-alpha) for x >= xmin, fitted to ``n_tail`` points; ``ks`` is the
    Kolmogorov-Smirnov distance of the tail to the fitted law."""

    alpha: float
    xmin: float
    n_tail: int
    ks: float


def fit_powerlaw(eigs, min_tail: int = MIN_TAIL) -> PowerLawFit:
    """Continuous power law above a KS-chosen xmin (Clauset et al. 2009, sections 3.1-3.3).

    For each candidate xmin (each eigenvalue leaving at least ``min_tail`` points above
    it) the maximum-likelihood exponent is

        alpha = 1 + m / sum_{x_i >= xmin} ln(x_i / xmin),

    and xmin is the candidate whose tail has the smallest KS distance to
    F(x) = 1 - (x / xmin)^(1 - alpha).  This is the ``alpha`` / ``xmin`` WeightWatcher reports.
    A spectrum with fewer than ``min_tail`` positive eigenvalues gives NaN values.
    """
    values = np.sort(np.asarray(eigs, dtype=np.float64))
    values = values[values > 0.0]
    n = values.size
    if n < min_tail:
        return PowerLawFit(alpha=float("nan"), xmin=float("nan"), n_tail=0, ks=float("nan"))
    logs = np.log(values)
    tail_log_sums = np.cumsum(logs[::-1])[::-1]  # sum of logs from index k to the end
    candidates = np.arange(n - min_tail + 1)
    sizes = n - candidates
    spreads = tail_log_sums[candidates] - sizes * logs[candidates]
    candidates, sizes, spreads = (
        arr[spreads > 0.0] for arr in (candidates, sizes, spreads)
    )  # a tail of tied values has no exponent
    if candidates.size == 0:
        return PowerLawFit(alpha=float("nan"), xmin=float("nan"), n_tail=0, ks=float("nan"))
    alphas = 1.0 + sizes / spreads
    ks = np.empty(candidates.size)
    # Blocks of BLOCK candidates: one (block x tail) array instead of a Python loop per
    # xmin; each block only spans the columns from its first candidate on.
    for start in range(0, candidates.size, BLOCK):
        k = candidates[start : start + BLOCK, None]
        first = int(k[0, 0])
        m = sizes[start : start + BLOCK, None]
        alpha = alphas[start : start + BLOCK, None]
        rank = np.arange(first, n)[None, :] - k  # position within the tail, < 0 outside
        fitted = 1.0 - np.exp((1.0 - alpha) * (logs[None, first:] - logs[k]))
        gap = np.maximum(np.abs(rank / m - fitted), np.abs((rank + 1) / m - fitted))
        ks[start : start + BLOCK] = np.max(np.where(rank >= 0, gap, 0.0), axis=1)
    best = int(np.argmin(ks))
    return PowerLawFit(
        alpha=float(alphas[best]),
        xmin=float(values[candidates[best]]),
        n_tail=int(sizes[best]),
        ks=float(ks[best]),
    )
