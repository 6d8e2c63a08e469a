"""The paper's spectral criterion: L1 distance between the bulk histogram and its MP fit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from heavytail.fit import MPFit, fit_mp
from heavytail.mp import mp_cdf, mp_edges
from heavytail.null import null_quantile

# Added to the body's estimate of c when the layer's n/N is not given: the quartile estimate
# is unbiased with a spread of about 0.01 at n = 100-400, and the null quantile rises steeply
# with c near 1, so an estimate a little low would lower the threshold.
UNKNOWN_RATIO_MARGIN = 0.02


def n_bins(n: int) -> int:
    """M = 2 floor(n^(1/3)) histogram bins (docs/paper.md section 2).

    The cube root is taken with a small guard so that exact cubes (n = 1000) give 10, not 9.
    """
    return 2 * int(np.floor(np.cbrt(n) + 1e-9))


def scale_factor(n: int) -> float:
    """sqrt(ln n) / n^(1/3): the paper's rate, s_hat = O_P(this), natural log."""
    return float(np.sqrt(np.log(n)) / np.cbrt(n))


def paper_threshold(n: int, C: float = 0.4) -> float:
    """s* = C sqrt(ln n) / n^(1/3), the paper's threshold (C in [0.4, 0.6] in the paper)."""
    if not (np.isfinite(C) and C > 0):
        raise ValueError(f"C must be a positive number, got {C!r}")
    return float(C * scale_factor(n))


def l1_histogram_distance(bulk: np.ndarray, fit: MPFit) -> tuple[float, int]:
    """s_hat = integral over [a_hat, b_hat] of |p_hat(x) - p_fit(x)| dx, exactly.

    p_hat is the histogram estimator with M equal bins on [a_hat, b_hat],
    p_hat = M / (n (b_hat - a_hat)) * (count in the bin).  On a bin [u, v] with height h,

        int_u^v |h - p| = h (v - u) - (F(v) - F(u)) + 2 int_{[u,v] & {p > h}} (p - h),

    and {p > h} is one interval (x1, x2): p(x) = h squares to the quadratic
    (1 + k^2) x^2 - (a + b) x + a b = 0 with k = 2 pi c sigma2 h, whose two roots are the
    crossing points (the MP density is unimodal).  With F the closed-form ``mp_cdf`` every
    term is exact, including the integrable singularity at a = 0 when c = 1, so the error
    is rounding error (far below 1e-6), where a midpoint rule would be off by O(1/M) or
    worse near a singular edge.
    """
    n = bulk.size
    bins = n_bins(n)
    lower, upper = fit.lower, fit.upper
    counts, edges = np.histogram(bulk, bins=bins, range=(lower, upper))
    heights = counts / (n * (upper - lower) / bins)
    a, b = mp_edges(fit.ratio, fit.sigma2)
    cdf_at_edges = mp_cdf(edges, fit.ratio, fit.sigma2)
    k2 = (2.0 * np.pi * fit.ratio * fit.sigma2 * heights) ** 2
    disc = (a + b) ** 2 - 4.0 * (1.0 + k2) * a * b
    root = np.sqrt(np.maximum(disc, 0.0))
    x2 = ((a + b) + root) / (2.0 * (1.0 + k2))
    x1 = a * b / ((1.0 + k2) * x2)  # product of the roots: no cancellation when a << b
    left = np.clip(x1, edges[:-1], edges[1:])
    right = np.clip(x2, edges[:-1], edges[1:])
    right = np.where(disc > 0.0, right, left)
    mass_above = mp_cdf(right, fit.ratio, fit.sigma2) - mp_cdf(left, fit.ratio, fit.sigma2)
    width = edges[1:] - edges[:-1]
    per_bin = (
        heights * width - np.diff(cdf_at_edges) + 2.0 * (mass_above - heights * (right - left))
    )
    # the fitted law's mass outside [lower, upper]: zero up to rounding of the edges
    outside = cdf_at_edges[0] + (1.0 - cdf_at_edges[-1])
    return float(np.sum(per_bin) + outside), bins


@dataclass(frozen=True, eq=False)
class SpectralDistance:
    """Result of the spectral criterion on one spectrum.

    ``n`` is the number of bulk eigenvalues the histogram uses (spikes set aside), ``bins``
    is M, ``threshold`` is the rule's s*, ``fires`` is s_hat > threshold.
    """

    s_hat: float
    threshold: float
    n: int
    bins: int
    fit: MPFit
    fires: bool
    ratio: float

    @property
    def scaled(self) -> float:
        """s_hat n^(1/3) / sqrt(ln n), the statistic on the scale of the paper's Figure 3.1."""
        return self.s_hat / scale_factor(self.n)


@dataclass(frozen=True)
class ThresholdKind:
    """One entry of the threshold-rule registry: everything the code knows about a rule.

    ``level(n, ratio, C)`` is the rule's s* for n bulk eigenvalues at aspect ratio n/N;
    ``uses_C`` says whether the rule takes the paper's constant C (its name then carries
    it: ``paper_C0.4``); ``label`` (figure legends) and ``short`` (table rows) may hold
    ``{C:g}``; ``line_style`` is its matplotlib style in figures (None: the next of the
    figures' styles for rules with a C).  A new rule is one ``register_threshold`` call:
    runs record it, replay, collect, compare and the figures find it here.
    """

    kind: str
    level: Callable[[int, float, float], float]
    label: str
    short: str
    uses_C: bool = False
    line_style: object = None


THRESHOLD_KINDS: dict[str, ThresholdKind] = {}


def register_threshold(kind: ThresholdKind) -> ThresholdKind:
    """Add ``kind`` to the registry (in order: runs record the rules in this order)."""
    if not kind.kind.isidentifier() or "_C" in kind.kind:
        raise ValueError(
            f"a threshold rule's kind must be an identifier without '_C', got {kind.kind!r}"
        )
    THRESHOLD_KINDS[kind.kind] = kind
    return kind


def threshold_kind(rule: str) -> ThresholdKind:
    """The registry entry of ``rule``, or the one-line error that lists the known rules."""
    try:
        return THRESHOLD_KINDS[rule]
    except (KeyError, TypeError):
        raise ValueError(
            f"threshold must be one of {tuple(THRESHOLD_KINDS)}, got {rule!r}"
        ) from None


def _calibrated_level(n: int, ratio: float, C: float) -> float:
    return float(null_quantile(n, ratio) * scale_factor(n))


# The paper's rule: C sqrt(ln n) / n^(1/3), calibrated by the paper for c <= 0.8 only; on
# pure noise it fires often for c >= 0.8 (see ``heavytail.null``).
register_threshold(
    ThresholdKind(
        "paper", lambda n, ratio, C: paper_threshold(n, C), "paper C = {C:g}", "C={C:g}", True
    )
)
# The 99.9% quantile of the null statistic for this (n, c), estimated by Monte Carlo on
# Gaussian (Wishart) matrices and shipped as a table (``heavytail.null.null_quantile``): a
# false-fire rate of 0.1% per layer and epoch on noise, for every c in (0, 1].
register_threshold(
    ThresholdKind(
        "calibrated", _calibrated_level, "calibrated (0.1% on noise)", "calibrated", False, "--"
    )
)


def threshold_for(n: int, ratio: float, rule: str = "paper", C: float = 0.4) -> float:
    """The stopping threshold s* of the registered ``rule`` for n bulk eigenvalues and
    aspect ratio c (``THRESHOLD_KINDS``).

    * ``"paper"``: C sqrt(ln n) / n^(1/3).  Calibrated by the paper for c <= 0.8 only; on
      pure noise it fires often for c >= 0.8 (see ``heavytail.null``).
    * ``"calibrated"``: the 99.9% quantile of the null statistic for this (n, c), estimated
      by Monte Carlo on Gaussian (Wishart) matrices and shipped as a table
      (``heavytail.null.null_quantile``): a false-fire rate of 0.1% per layer and epoch
      on noise, for every c in (0, 1].  C is not used.
    """
    return threshold_kind(rule).level(n, ratio, C)


@dataclass(frozen=True)
class Threshold:
    """A stopping threshold: a registered rule (``THRESHOLD_KINDS``) with its C if it takes one.

    The one place where a rule gets its name (``paper_C0.4``, ``calibrated``: the column
    suffixes of spectral.csv and the keys of summary.json), its labels, and decides whether
    a spectrum fires (``judge``).  ``C`` is ignored by rules without one.
    """

    rule: str = "paper"
    C: float = 0.4

    def __post_init__(self) -> None:
        if threshold_kind(self.rule).uses_C and not (np.isfinite(self.C) and self.C > 0):
            raise ValueError(f"C must be a positive number, got {self.C!r}")

    @property
    def kind(self) -> ThresholdKind:
        return threshold_kind(self.rule)

    @property
    def name(self) -> str:
        return f"{self.rule}_C{self.C:g}" if self.kind.uses_C else self.rule

    @property
    def label(self) -> str:
        return self.kind.label.format(C=self.C)

    @property
    def short(self) -> str:
        return self.kind.short.format(C=self.C)

    @classmethod
    def from_name(cls, name: str) -> Threshold:
        """Inverse of ``name``: ``"paper_C0.4"`` -> Threshold("paper", 0.4)."""
        kind = THRESHOLD_KINDS.get(name)
        if kind is not None and not kind.uses_C:
            return cls(name)
        rule, _, C = name.rpartition("_C")
        if rule in THRESHOLD_KINDS and THRESHOLD_KINDS[rule].uses_C:
            try:
                return cls(rule, float(C))
            except ValueError:
                pass
        raise ValueError(
            f"not a threshold rule name: {name!r} (one of {tuple(THRESHOLD_KINDS)}, with "
            "_C<number> for rules that take C)"
        )

    @classmethod
    def recorded(cls, C_values) -> list[Threshold]:
        """Every registered rule, in registry order, once per C for the rules that take one."""
        return [
            cls(kind.kind, C)
            for kind in THRESHOLD_KINDS.values()
            for C in (C_values if kind.uses_C else (0.4,))
        ]

    def value(self, n: int, ratio: float) -> float:
        return self.kind.level(n, ratio, self.C)

    def judge(self, distance: SpectralDistance) -> SpectralDistance:
        """``distance`` with this rule's threshold at its (n, ratio) and its decision."""
        level = self.value(distance.n, distance.ratio)
        return replace(distance, threshold=level, fires=bool(distance.s_hat > level))


def spectral_distance(
    eigs,
    C: float = 0.4,
    threshold: str = "paper",
    ratio: float | None = None,
    max_spikes: int | None = None,
    n_classes: int | None = None,
) -> SpectralDistance:
    """The paper's statistic s_hat and its stopping decision for one spectrum.

    ``eigs`` are the eigenvalues of W W^T / N (``heavytail.esd``).  The MP law is fitted to
    the bulk (``fit_mp``: isolated spikes set aside, edges at the extreme bulk eigenvalues),
    the histogram of the bulk with M = 2 floor(n^(1/3)) bins is compared with the fitted
    density in L1 (``l1_histogram_distance``), and the criterion fires when s_hat > s*
    (``threshold_for``).  ``ratio`` is the layer's aspect ratio n/N, used only to look up
    the calibrated threshold.  Without it the ratio is estimated from the body's quartiles
    (``fit.body_ratio``, not the edge fit's c_hat, which is biased low by about 0.01) plus
    UNKNOWN_RATIO_MARGIN; pass it whenever the matrix shape is known.  ``n_classes`` is the
    number of classes K of the problem the network learns: at most K spikes are then set
    aside (``heavytail.fit.find_class_spikes``); pass it whenever it is known.
    """
    threshold_kind(threshold)
    if ratio is not None and not (np.isfinite(ratio) and 0.0 < ratio <= 1.0):
        raise ValueError(f"ratio = n/N must be in (0, 1], got {ratio!r}")
    fit = fit_mp(eigs, max_spikes=max_spikes, n_classes=n_classes)
    s_hat, bins = l1_histogram_distance(fit.bulk, fit)
    n = fit.bulk.size
    if ratio is None:
        lookup_ratio = min(1.0, fit.body_ratio + UNKNOWN_RATIO_MARGIN)
    else:
        lookup_ratio = float(ratio)
    s_star = threshold_for(n, lookup_ratio, threshold, C)
    return SpectralDistance(
        s_hat=s_hat,
        threshold=s_star,
        n=n,
        bins=bins,
        fit=fit,
        fires=bool(s_hat > s_star),
        ratio=lookup_ratio,
    )
