"""Random matrices whose spectra are known: ground truth for tests, demos and benchmarks.

Every generator takes (n, N, rng) and returns an n x N float64 matrix (n <= N).
"""

from __future__ import annotations

import numpy as np


def gaussian(n: int, N: int, rng: np.random.Generator) -> np.ndarray:
    """i.i.d. N(0, 1) entries: the ESD of W W^T / N is MP(n/N, 1) (light tailed, no spikes)."""
    return rng.standard_normal((n, N))


def bbp_threshold(ratio: float) -> float:
    """Strength theta above which a rank-one signal separates from the bulk: c^(1/4)."""
    return float(ratio**0.25)


def spike_location(theta: float, ratio: float) -> float:
    """Limit of the eigenvalue of W W^T / N created by a signal of strength theta > c^(1/4).

    Benaych-Georges & Nadakuditi (2012): for X with N(0, 1/N) entries and
    W = sqrt(N) (X + theta u v^T), u and v unit vectors, the top singular value of
    X + theta u v^T tends to sqrt((1 + theta^2)(c + theta^2)) / theta.
    """
    return (1.0 + theta**2) * (ratio + theta**2) / theta**2


def planted_spikes(n: int, N: int, strengths, rng: np.random.Generator) -> np.ndarray:
    """sqrt(N) (X + sum_i theta_i u_i v_i^T): a Gaussian bulk plus rank-one signals.

    Signals above ``bbp_threshold`` give isolated eigenvalues at ``spike_location``;
    weaker ones stick to the bulk edge (1 + sqrt c)^2.
    """
    matrix = rng.standard_normal((n, N)) / np.sqrt(N)
    for theta in strengths:
        u = rng.standard_normal(n)
        v = rng.standard_normal(N)
        matrix += theta * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))
    return matrix * np.sqrt(N)


def spiked_covariance_eigenvalues(n: int, N: int, spikes, rng: np.random.Generator) -> np.ndarray:
    """Eigenvalues of W W^T / N for W = Sigma^(1/2) Z, Z an n x N standard Gaussian matrix and
    Sigma = I + sum_i l_i e_i e_i^T (Johnstone's spiked covariance), ascending, in O(n^3)
    without forming W.

    Z Z^T / N = O D O^T with D the Wishart eigenvalues (``null.wishart_eigenvalues``) and O
    Haar-distributed, independent of D.  Sigma^(1/2) O D O^T Sigma^(1/2) has the eigenvalues
    of D^(1/2) O^T Sigma O D^(1/2) = D + sum_i l_i (D^(1/2) q_i)(D^(1/2) q_i)^T, where
    q_i = O^T e_i are k orthonormal Haar vectors.  Population spikes l_i > sqrt(c) (BBP)
    separate from the bulk, at (1 + l)(1 + c / l) (Baik & Silverstein 2006).
    """
    from heavytail.null import wishart_eigenvalues

    spikes = np.asarray(spikes, dtype=np.float64)
    diagonal = wishart_eigenvalues(n, N, rng)
    if spikes.size == 0:
        return diagonal
    q, _ = np.linalg.qr(rng.standard_normal((n, spikes.size)))
    scaled = np.sqrt(diagonal)[:, None] * q
    matrix = np.diag(diagonal) + (scaled * spikes) @ scaled.T
    return np.clip(np.linalg.eigvalsh(matrix), 0.0, None)


def bbp_spike_location(spike: float, ratio: float) -> float:
    """Limit of the sample eigenvalue of a population spike 1 + l > 1 + sqrt(c) (Baik &
    Silverstein 2006): (1 + l)(1 + c / l)."""
    return (1.0 + spike) * (1.0 + ratio / spike)


def deformed_bulk(n: int, N: int, rng: np.random.Generator) -> np.ndarray:
    """Rows with variances uniform on [0.5, 3]: a generalised MP law, not MP, without a tail."""
    return np.sqrt(rng.uniform(0.5, 3.0, n))[:, None] * rng.standard_normal((n, N))


def student_t2(n: int, N: int, rng: np.random.Generator) -> np.ndarray:
    """Student-t entries with 2 degrees of freedom (infinite variance): a power-law tail."""
    return rng.standard_t(2, (n, N))


def pareto(n: int, N: int, rng: np.random.Generator, tail: float = 1.5) -> np.ndarray:
    """Symmetric Pareto entries, P(|x| > t) ~ t^(-tail): Levy-type spectrum for tail < 2."""
    return rng.pareto(tail, (n, N)) * rng.choice([-1.0, 1.0], (n, N))


def product_of_3(n: int, N: int, rng: np.random.Generator) -> np.ndarray:
    """G1 G2 G3 with Gaussian factors (n x N, N x N, N x N): a Fuss-Catalan-type spectrum
    far wider than MP, heavy tailed without being a power law."""
    return rng.standard_normal((n, N)) @ rng.standard_normal((N, N)) @ rng.standard_normal((N, N))


def square_product_of_2(n: int, N: int, rng: np.random.Generator) -> np.ndarray:
    """G1 G2 with Gaussian factors (n x n, n x N)."""
    return rng.standard_normal((n, n)) @ rng.standard_normal((n, N))


HEAVY_TAILED = {
    "student_t2": student_t2,
    "pareto_1.5": pareto,
    "product_of_3": product_of_3,
    "square_product_of_2": square_product_of_2,
}


def benchmark_matrices(rng: np.random.Generator) -> list[tuple[str, np.ndarray, str]]:
    """(name, weight of shape (out, in), planted truth): the matrices ``scripts/bench_spectral.py``
    times against WeightWatcher: Gaussian noise of four shapes, planted rank-one spikes of
    known strength (``planted_spikes``, transposed where out > in), a Student-t(2) tail."""

    def planted(rows: int, cols: int, strengths) -> np.ndarray:
        matrix = planted_spikes(min(rows, cols), max(rows, cols), strengths, rng)
        return matrix.T if rows > cols else matrix

    return [
        ("gauss 1024x512", rng.standard_normal((1024, 512)), "0 spikes, LT"),
        ("gauss 4096x384", rng.standard_normal((4096, 384)), "0 spikes, LT"),
        ("gauss 2048x1024", rng.standard_normal((2048, 1024)), "0 spikes, LT"),
        ("gauss 1024x1024", rng.standard_normal((1024, 1024)), "0 spikes, LT"),
        ("spikes 1024x512", planted(1024, 512, [1.5, 2.0, 3.0, 4.0, 6.0]), "5 spikes, LT"),
        ("spikes 2048x1024", planted(2048, 1024, [2, 2.5, 3, 4, 5, 6, 8]), "7 spikes, LT"),
        ("spikes 1024x1024", planted(1024, 1024, [1.5, 2.0, 3.0]), "3 spikes, LT"),
        ("student-t(2) 1024x512", rng.standard_t(2, (1024, 512)), "heavy tail, 0 spikes, HT"),
    ]
