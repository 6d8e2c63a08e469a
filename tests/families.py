"""Random-matrix families with known spectral ground truth."""

from __future__ import annotations

import numpy as np


def gaussian(n: int, N: int, rng: np.random.Generator, sigma: float = 1.0) -> np.ndarray:
    return sigma * rng.standard_normal((n, N))


def planted(n: int, N: int, strengths, rng: np.random.Generator) -> np.ndarray:
    """sqrt(N) (X + sum_i theta_i u_i v_i^T), X with N(0, 1/N) entries, u, v random unit.

    Benaych-Georges & Nadakuditi (2012): a strength theta > c^(1/4) (c = n/N) gives an
    eigenvalue of W W^T / N at (1 + theta^2)(c + theta^2) / theta^2; weaker ones stick to
    the bulk edge (1 + sqrt c)^2.
    """
    matrix = rng.standard_normal((n, N)) / np.sqrt(N)
    for theta in strengths:
        u = rng.standard_normal(n)
        v = rng.standard_normal(N)
        matrix += theta * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))
    return matrix * np.sqrt(N)


def spike_location(theta: float, ratio: float) -> float:
    return (1 + theta**2) * (ratio + theta**2) / theta**2


HEAVY_TAILED = {
    # infinite-variance entries: Levy-type spectra with a power-law tail
    "student_t_df2": lambda n, N, rng: rng.standard_t(2, (n, N)),
    "pareto_1.5": lambda n, N, rng: rng.pareto(1.5, (n, N)) * rng.choice([-1.0, 1.0], (n, N)),
    # products of Gaussian matrices: Fuss-Catalan-type spectra, far wider than MP
    "product_of_3": lambda n, N, rng: (
        rng.standard_normal((n, N)) @ rng.standard_normal((N, N)) @ rng.standard_normal((N, N))
    ),
    "square_product_of_2": lambda n, N, rng: (
        rng.standard_normal((n, n)) @ rng.standard_normal((n, N))
    ),
}
