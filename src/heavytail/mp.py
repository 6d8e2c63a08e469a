"""The Marchenko-Pastur (MP) law: edges, density, distribution function, quantiles.

Convention (docs/paper.md section 2; Marchenko & Pastur 1967): for an n x N matrix W with
i.i.d. entries of variance sigma2 and n <= N, the eigenvalues of W W^T / N follow, as
n, N -> infinity with n / N -> c in (0, 1], the law with edges

    a = sigma2 (1 - sqrt c)^2,   b = sigma2 (1 + sqrt c)^2

and density

    p(x) = sqrt((b - x)(x - a)) / (2 pi c sigma2 x)   on [a, b].

For c <= 1 there is no atom at zero, so ``mp_cdf`` is continuous.  At c = 1 the lower edge is
0 and the density blows up like 1 / (pi sigma sqrt x): integrable, which is why every
integral of ``p`` in this package goes through the closed-form ``mp_cdf`` and never through a
quadrature rule.
"""

from __future__ import annotations

import numpy as np


def _check_law(ratio: float, sigma2: float) -> tuple[float, float]:
    ratio = float(ratio)
    sigma2 = float(sigma2)
    if not (np.isfinite(ratio) and 0.0 < ratio <= 1.0):
        raise ValueError(f"MP ratio c = n/N must be in (0, 1], got {ratio!r}")
    if not (np.isfinite(sigma2) and sigma2 > 0.0):
        raise ValueError(f"MP scale sigma2 must be positive and finite, got {sigma2!r}")
    return ratio, sigma2


def mp_edges(ratio: float, sigma2: float = 1.0) -> tuple[float, float]:
    """Support [a, b] of the MP law: a = sigma2 (1 - sqrt c)^2, b = sigma2 (1 + sqrt c)^2."""
    ratio, sigma2 = _check_law(ratio, sigma2)
    root = np.sqrt(ratio)
    return sigma2 * (1.0 - root) ** 2, sigma2 * (1.0 + root) ** 2


def mp_pdf(x, ratio: float, sigma2: float = 1.0) -> np.ndarray:
    """MP density p(x) = sqrt((b - x)(x - a)) / (2 pi c sigma2 x) on (a, b), 0 elsewhere.

    At c = 1 the value at x = 0 is reported as 0 (the point is outside the open support;
    the density diverges there but integrates to a finite mass, see ``mp_cdf``).
    """
    ratio, sigma2 = _check_law(ratio, sigma2)
    a, b = mp_edges(ratio, sigma2)
    x = np.asarray(x, dtype=np.float64)
    inside = (x > a) & (x < b) & (x > 0.0)
    xs = np.where(inside, x, 0.5 * (a + b))
    density = np.sqrt((b - xs) * (xs - a)) / (2.0 * np.pi * ratio * sigma2 * xs)
    return np.where(inside, density, 0.0)


def _mass_from_lower_edge(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """H(x) = int_a^x sqrt((b - t)(t - a)) / t dt for x in [a, b], in closed form.

    With R = sqrt((b - x)(x - a)) and m = (a + b) / 2, splitting the integrand as
    R / t = -t / R + (a + b) / R - a b / (t R) and using standard integrals (Gradshteyn &
    Ryzhik 2.261, 2.266) gives

        H(x) = R + 2 m atan2(sqrt(x - a), sqrt(b - x))
                 - 2 sqrt(a b) atan2(sqrt(b (x - a)), sqrt(a (b - x))).

    The textbook form with arcsin((x - m) / r) loses half the digits near the edges (the
    arcsin is ill-conditioned next to +-1); the atan2 form keeps full precision there.
    H(b) = pi (sqrt b - sqrt a)^2 / 2 = 2 pi c sigma2: the law has mass 1.  When a = 0
    (c = 1) the last term vanishes.  ``a`` and ``b`` may be arrays that broadcast with x.
    """
    x = np.clip(x, a, b)
    above, below = x - a, b - x
    return (
        np.sqrt(above * below)
        + (a + b) * np.arctan2(np.sqrt(above), np.sqrt(below))
        - 2.0 * np.sqrt(a * b) * np.arctan2(np.sqrt(b * above), np.sqrt(a * below))
    )


def mp_cdf(x, ratio: float, sigma2: float = 1.0) -> np.ndarray:
    """MP distribution function F(x) = H(x) / (2 pi c sigma2), in closed form.

    H is ``_mass_from_lower_edge``; F is 0 below a and 1 above b.  Exact to rounding error,
    including the square-root singularity at a = 0 when c = 1.
    """
    ratio, sigma2 = _check_law(ratio, sigma2)
    a, b = mp_edges(ratio, sigma2)
    x = np.asarray(x, dtype=np.float64)
    mass = _mass_from_lower_edge(x, a, b) / (2.0 * np.pi * ratio * sigma2)
    return np.clip(np.where(x <= a, 0.0, np.where(x >= b, 1.0, mass)), 0.0, 1.0)


def mp_quantile(q, ratio, sigma2: float = 1.0) -> np.ndarray:
    """Inverse of ``mp_cdf``: the x with F(x) = q, for q in [0, 1], by vectorised bisection.

    ``q`` and ``ratio`` broadcast against each other, so one call tabulates quantiles over a
    grid of ratios.  F is continuous and strictly increasing on [a, b], so 64 halvings
    reach float64 resolution of the support.
    """
    ratios = np.asarray(ratio, dtype=np.float64)
    for value in np.ravel(ratios):
        _check_law(value, sigma2)
    q = np.asarray(q, dtype=np.float64)
    if np.any((q < 0.0) | (q > 1.0) | ~np.isfinite(q)):
        raise ValueError("quantile levels must lie in [0, 1]")
    q, ratios = np.broadcast_arrays(q, ratios)
    a = sigma2 * (1.0 - np.sqrt(ratios)) ** 2
    b = sigma2 * (1.0 + np.sqrt(ratios)) ** 2
    norm = 2.0 * np.pi * ratios * sigma2
    lo, hi = a.copy(), b.copy()
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        below = _mass_from_lower_edge(mid, a, b) / norm < q
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)
