"""Fit of the Marchenko-Pastur law to a spectrum, after setting isolated spikes aside."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from heavytail.mp import mp_edges, mp_quantile

# Names the spike rules that recorded tables were made with (n_classes unknown: the gap rule;
# known: the class rule); changes whenever either rule's results change.
SPIKE_RULE = "gap-1+class-1"
# Spike rule constants (see ``find_spikes`` for the reasoning behind each).
TW_MARGIN = 4.0  # Tracy-Widom scale units above the body's MP edge; TW1's 99.9% point is ~3.3
EDGE_SLACK = 0.05  # relative slack on that edge: trained bulks are only approximately MP
GAP_FACTOR = 4.0  # an isolated spike sits this many local spacings above the next eigenvalue
GAP_WINDOW = 5  # eigenvalues below a candidate over which the local spacing is averaged
BODY_LEVELS = (0.25, 0.5, 0.75)  # quantile levels of the body fit
CLASS_TW_MARGIN = 2.0  # the class rule's cut, in Tracy-Widom scales above the body's MP edge


def default_max_spikes(n: int) -> int:
    """At most max(10, ceil(sqrt n)) spikes, and never more than n // 4.

    "A few" outliers: enough for the K - 1 class spikes of a K <= 11 class problem at any
    width (and more for wide layers), while a heavy tail usually puts far more than sqrt(n)
    eigenvalues beyond the body's MP edge, so it is not mistaken for spikes.
    """
    return int(min(max(10, np.ceil(np.sqrt(n))), n // 4))


def as_eigenvalues(eigs) -> np.ndarray:
    """Validated ascending float64 copy of a 1-D spectrum (non-negative, finite, n >= 2).

    Rounding can leave eigenvalues of a positive semi-definite matrix slightly negative: a
    symmetric eigensolver's error is O(n eps ||A||) with eps the precision of the dtype it
    ran in (Golub & Van Loan, sec. 8.1), so values down to -max(1e-9, n eps) lambda_max are
    clipped to 0 (float32: eps = 1.2e-7), anything more negative is an error.
    """
    values = np.asarray(eigs)
    precision = np.finfo(values.dtype).eps if np.issubdtype(values.dtype, np.floating) else 0.0
    if values.ndim != 1:
        raise ValueError(f"eigenvalues must be a 1-D array, got shape {values.shape}")
    if not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise ValueError(f"eigenvalues must be real numbers, got dtype {values.dtype}")
    values = np.sort(values.astype(np.float64))
    if values.size < 2:
        raise ValueError(f"need at least 2 eigenvalues, got {values.size}")
    if not np.all(np.isfinite(values)):
        raise ValueError("eigenvalues contain NaN or inf")
    tolerance = max(1e-9, values.size * precision) * max(values[-1], 0.0)
    if values[0] < -tolerance or values[-1] < 0.0:
        raise ValueError(
            f"eigenvalues of W W^T are non-negative, got minimum {values[0]:.3g}: pass the "
            "eigenvalues of W W^T / N, not of W"
        )
    return np.clip(values, 0.0, None)


@lru_cache(maxsize=1)
def _body_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MP(c, 1) quantiles at BODY_LEVELS on a grid of c; q75/q25 increases with c."""
    ratios = np.concatenate([np.geomspace(1e-4, 0.05, 40), np.linspace(0.05, 1.0, 300)[1:]])
    quantiles = mp_quantile(np.asarray(BODY_LEVELS)[None, :], ratios[:, None])
    spread = quantiles[:, 2] / quantiles[:, 0]
    return ratios, spread, quantiles[:, 1]


def fit_body(eigs: np.ndarray) -> tuple[float, float]:
    """(ratio, sigma2) of the MP law whose quartiles match the spectrum's.

    c solves q75/q25 = F_c^{-1}(0.75) / F_c^{-1}(0.25) (the ratio is scale free and
    increases with c); sigma2 = median / F_c^{-1}(0.5).  Quartiles move by at most a few
    ranks when a few outliers are present, so this estimate of where the MP bulk should end
    is not dragged by the spikes it is used to find (unlike the extreme-value fit).
    A spread beyond that of c = 1 (mass piled at zero, or a heavy tail) gives c = 1.
    """
    ratios, spread, median_unit = _body_table()
    q25, q50, q75 = np.quantile(eigs, BODY_LEVELS)
    if q25 <= 0.0 or q50 <= 0.0:
        return 1.0, float(max(q50, eigs.mean()) / median_unit[-1])
    ratio = float(np.interp(q75 / q25, spread, ratios))
    return ratio, float(q50 / np.interp(ratio, ratios, median_unit))


def tracy_widom_scale(ratio: float, sigma2: float, n: int) -> float:
    """Scale of the largest-eigenvalue fluctuations of an n x N Wishart ESD, N = n / ratio.

    Johnstone (2001): (lambda_max - sigma2 (1 + sqrt c)^2) / s -> TW1 with
    s = sigma2 (1 + sqrt c) (1 + 1 / sqrt c)^(1/3) N^(-2/3) in the W W^T / N scaling.
    """
    big_n = n / ratio
    root = np.sqrt(ratio)
    return float(sigma2 * (1.0 + root) * (1.0 + 1.0 / root) ** (1.0 / 3.0) * big_n ** (-2.0 / 3.0))


def find_spikes(eigs: np.ndarray, body: tuple[float, float], max_spikes: int | None = None) -> int:
    """Number of isolated outliers at the right end of an ascending spectrum.

    The paper fits MP to the bulk only but does not say how outliers are set aside; this is
    our rule.  An eigenvalue is a spike when all of these hold:

    1. It lies above the body edge  cut = (1 + EDGE_SLACK) b_body + TW_MARGIN s_TW, where
       b_body = sigma2 (1 + sqrt c)^2 comes from ``body`` = ``fit_body(eigs)`` (quartiles,
       not extremes) and s_TW is ``tracy_widom_scale``.  On Gaussian matrices we measured
       spikes in 0 of 6,000 draws at n = 200 and 800 (c = 0.1, 0.5, 1), and in 4 of 6,000
       at n = 50.  A spike above the BBP threshold sits at a fixed distance beyond b,
       which grows large against s_TW ~ n^(-2/3); spikes closer than about 5% to the
       edge stay in the bulk, where they barely move the statistic.
    2. At most ``max_spikes`` eigenvalues lie above the cut.  A heavy tail puts a
       continuum of eigenvalues there, far more than "a few": then nothing is set aside and
       the whole tail stays in the bulk, where the statistic sees it.
    3. Together they are isolated: with m* eigenvalues above the cut, the gap
       lambda_(m*) - lambda_(m*+1) between the lowest of them and the rest is at least
       GAP_FACTOR times the mean spacing of the GAP_WINDOW eigenvalues below it (and at
       least GAP_FACTOR s_TW).  Spikes stand apart from the bulk edge; a bulk that has
       started to deform, or a tail, runs past the edge without such a gap.  Then nothing
       is set aside (all or none): the deformation must stay in the bulk, because it is
       what the criterion is meant to detect, and the paper counts "spikes drift away,
       the bulk deforms" as bulk transition, not as light tail.
    """
    n = eigs.size
    if max_spikes is None:
        max_spikes = default_max_spikes(n)
    if max_spikes <= 0 or n < 2 * GAP_WINDOW + 2:
        return 0
    ratio, sigma2 = body
    s_tw = tracy_widom_scale(ratio, sigma2, n)
    cut = (1.0 + EDGE_SLACK) * mp_edges(ratio, sigma2)[1] + TW_MARGIN * s_tw
    descending = eigs[::-1]
    n_above = int(np.count_nonzero(descending > cut))
    if n_above == 0 or n_above > max_spikes:
        return 0
    gap = descending[n_above - 1] - descending[n_above]
    spacing = (descending[n_above] - descending[n_above + GAP_WINDOW]) / GAP_WINDOW
    if gap >= GAP_FACTOR * max(spacing, s_tw):
        return n_above
    return 0


def find_class_spikes(eigs: np.ndarray, body: tuple[float, float], n_classes: int) -> int:
    """Number of class spikes at the right end of an ascending spectrum, for a K-class problem.

    What a network learns of K class means is a perturbation of rank at most K of its weight
    matrices (K - 1 when the means are centred): random-matrix theory (BBP; Benaych-Georges &
    Nadakuditi 2012) gives it at most K eigenvalues outside the bulk.  So with K known:

        m = min(K, #{lambda_i > cut}),  cut = b_body + CLASS_TW_MARGIN s_TW,

    and the top m eigenvalues are set aside; b_body = sigma2 (1 + sqrt c)^2 is the upper MP
    edge of the body fit (``fit_body``: quartiles, not dragged by the spikes) and s_TW the
    Tracy-Widom scale of the largest eigenvalue (``tracy_widom_scale``).

    Why no gap test and no 5% slack, unlike ``find_spikes``: K spikes in transit sit close
    together just past the edge, with no gap below them, and the gap rule then keeps them
    all in the bulk, where they stretch the fitted edge and fire the criterion on problems
    that are being learnt, not deforming.  Measured on spiked covariance matrices (1-8
    population spikes at 1.2-3 x the BBP threshold sqrt(c), 60 draws per shape at
    384 x 512, 512 x 1024, 500 x 2450), typed LT: 56-58 of 60 with a cut at edge + 4 s_TW
    (spikes of 1.3-1.6 x BBP sit right there), 59-60 with edge + 2 s_TW, 60 with 1 s_TW;
    the gap rule's 5% slack on top gave 17-23% calibrated fires.  The cap K is what makes a
    low cut safe: a heavy tail or a deformed bulk puts far more than K eigenvalues past the
    edge, and all but K of them stay in the bulk for the statistic to see.  On Gaussian
    noise the top eigenvalue passes edge + 2 s_TW in about 2.5% of draws (TW1) and is then
    set aside; the calibrated rule's false fires were unchanged (2 and 1 in 1,000 draws at
    n = 400, c = 0.5 and 1, with and without K), so its table needs no recalibration.
    """
    if n_classes < 1:
        raise ValueError(f"n_classes must be a positive number of classes, got {n_classes!r}")
    ratio, sigma2 = body
    s_tw = tracy_widom_scale(ratio, sigma2, eigs.size)
    cut = mp_edges(ratio, sigma2)[1] + CLASS_TW_MARGIN * s_tw
    above = int(np.count_nonzero(eigs > cut))
    # keep at least half the spectrum as bulk: a spectrum that small is not a bulk with spikes
    return min(int(n_classes), above, eigs.size // 2)


def _frozen(values: np.ndarray) -> np.ndarray:
    values = np.array(values, dtype=np.float64)
    values.setflags(write=False)
    return values


@dataclass(frozen=True, eq=False)
class MPFit:
    """MP law fitted to the bulk of a spectrum.

    ``lower``/``upper`` are the smallest and largest bulk eigenvalues (a_hat, b_hat);
    ``sigma2`` and ``ratio`` are the MP parameters whose edges are exactly those.
    ``body_ratio``/``body_sigma2`` are the quartile fit (``fit_body``) used to find the
    spikes, and ``body_edge`` its upper edge: where an MP bulk with this body would end.
    """

    sigma2: float
    ratio: float
    lower: float
    upper: float
    bulk: np.ndarray = field(repr=False)
    spikes: np.ndarray = field(repr=False)
    n_spikes: int
    body_ratio: float
    body_sigma2: float

    @property
    def body_edge(self) -> float:
        return mp_edges(self.body_ratio, self.body_sigma2)[1]

    @property
    def tail_extent(self) -> float:
        """Largest bulk eigenvalue over the body's MP edge: about 1 for an MP bulk."""
        return self.upper / self.body_edge


def fit_mp(eigs, max_spikes: int | None = None, n_classes: int | None = None) -> MPFit:
    """Fit MP to the bulk from its extreme order statistics (docs/paper.md section 2).

    Spikes are set aside first: with ``n_classes`` = K known, at most K of them
    (``find_class_spikes``); without, isolated outliers by the gap rule (``find_spikes``).
    With a_hat = min(bulk), b_hat = max(bulk):

        sigma_hat = (sqrt b_hat + sqrt a_hat) / 2,
        sqrt c_hat = (sqrt b_hat - sqrt a_hat) / (sqrt b_hat + sqrt a_hat),

    which inverts a = sigma2 (1 - sqrt c)^2, b = sigma2 (1 + sqrt c)^2, so the fitted law's
    support is exactly [a_hat, b_hat].  ``max_spikes=0`` switches the spike rules off (the
    raw statistic); otherwise it caps the number of spikes.  Raises ValueError when the bulk
    has no spread (all eigenvalues equal, for example an all-zero or an orthogonal matrix):
    no MP law has a point support.
    """
    values = as_eigenvalues(eigs)
    body = fit_body(values)
    if max_spikes == 0:
        n_spikes = 0
    elif n_classes is not None:
        n_spikes = find_class_spikes(values, body, n_classes)
        if max_spikes is not None:
            n_spikes = min(n_spikes, max_spikes)
    else:
        n_spikes = find_spikes(values, body, max_spikes)
    bulk = values[: values.size - n_spikes]
    lower, upper = float(bulk[0]), float(bulk[-1])
    if not upper - lower > 1e-12 * upper:
        raise ValueError(
            f"bulk eigenvalues span [{lower:.6g}, {upper:.6g}]: no spread, so no MP law fits "
            "(all-zero or orthogonal-like matrix)"
        )
    root_a, root_b = np.sqrt(lower), np.sqrt(upper)
    sigma = 0.5 * (root_a + root_b)
    root_c = (root_b - root_a) / (root_b + root_a)
    return MPFit(
        sigma2=float(sigma**2),
        ratio=float(root_c**2),
        lower=lower,
        upper=upper,
        bulk=_frozen(bulk),
        spikes=_frozen(values[values.size - n_spikes :]),
        n_spikes=n_spikes,
        body_ratio=body[0],
        body_sigma2=body[1],
    )
