"""Typing a spectrum: light tail (LT), bulk transition (BT), heavy tail (HT), rank collapse (RC).

The paper types spectra by eye (docs/paper.md section 1).  Our rule, in this order:

1. RC  if at least RC_SHARE of the eigenvalues are below ZERO_TOL times the mean eigenvalue
       (the mass piles up at zero; an all-zero matrix is RC).  An MP law puts under 1% of
       its mass there even at c = 1 (F(x) ~ 2 sqrt(x) / pi near 0), so 20% is far from noise.
2. LT  if the spectral criterion does not fire: the bulk, isolated spikes set aside, is MP.
3. HT  if it fires and the bulk runs far past the MP edge predicted by its body:
       tail_extent = lambda_max(bulk) / b_body >= TAIL_EXTENT_HT, "a long right tail that no
       MP fit covers".  Student-t and Pareto entries give 4 to 10^4, products of three
       Gaussian matrices about 2.
4. BT  otherwise: the bulk has left MP but has no long tail (a deformed bulk, edges that
       moved; generalised MP with a spread of variances gives a tail extent of 1.05-1.3).

The power-law exponent alpha (Clauset et al., KS-chosen xmin) is reported as evidence but
not used: on MP bulks it scatters between 3 and 20 at n of a few hundred, and products of
random matrices have no power-law tail at all, yet are heavy-tailed by any visual reading.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heavytail.distance import SpectralDistance, spectral_distance
from heavytail.fit import as_eigenvalues
from heavytail.powerlaw import fit_powerlaw

SPECTRUM_TYPES = ("LT", "BT", "HT", "RC")
ZERO_TOL = 1e-5
RC_SHARE = 0.2
TAIL_EXTENT_HT = 1.5


@dataclass(frozen=True, eq=False)
class SpectrumType:
    """A spectrum's type and the evidence for it.

    ``distance`` is None only for RC spectra with no spread (all eigenvalues equal, e.g.
    an all-zero matrix), where no MP law can be fitted.
    """

    type: str
    reason: str
    near_zero_share: float
    distance: SpectralDistance | None
    alpha: float
    xmin: float
    tail_extent: float

    @property
    def s_hat(self) -> float:
        return self.distance.s_hat if self.distance else float("nan")

    @property
    def threshold(self) -> float:
        return self.distance.threshold if self.distance else float("nan")

    @property
    def fires(self) -> bool:
        return bool(self.distance.fires) if self.distance else False

    @property
    def n_spikes(self) -> int:
        return self.distance.fit.n_spikes if self.distance else 0

    def fields(self) -> dict:
        """The per-layer fields every spectral table records, in its column order: the
        bulk's fitted MP scale sigma2, the spikes set aside, s_hat, the type, the tail's
        extent past the MP edge and the power-law exponent alpha."""
        return {
            "sigma2": self.distance.fit.sigma2 if self.distance else float("nan"),
            "n_spikes": self.n_spikes,
            "s_hat": self.s_hat,
            "type": self.type,
            "tail_extent": self.tail_extent,
            "alpha": self.alpha,
        }


def near_zero_share(values: np.ndarray) -> float:
    """Share of eigenvalues below ZERO_TOL times the mean eigenvalue (1 if all are zero)."""
    mean = values.mean()
    if mean <= 0.0:
        return 1.0
    return float(np.mean(values < ZERO_TOL * mean))


def classify(
    eigs,
    C: float = 0.4,
    threshold: str = "calibrated",
    ratio: float | None = None,
    max_spikes: int | None = None,
    n_classes: int | None = None,
) -> SpectrumType:
    """Type a spectrum LT / BT / HT / RC by the rule in this module's docstring.

    ``threshold`` defaults to "calibrated" because the paper's rule fires on pure noise
    when c >= 0.8, which would type random near-square layers as BT.  ``ratio`` (n/N of
    the layer), ``max_spikes`` and ``n_classes`` (K of the problem: at most K class spikes
    are set aside) are passed to ``spectral_distance``.
    """
    values = as_eigenvalues(eigs)
    share = near_zero_share(values)
    nan = float("nan")
    if share >= RC_SHARE:
        try:
            distance = spectral_distance(values, C, threshold, ratio, max_spikes, n_classes)
        except ValueError:  # no spread: nothing to fit
            distance = None
        tail = fit_powerlaw(distance.fit.bulk) if distance else None
        return SpectrumType(
            type="RC",
            reason=f"{share:.0%} of eigenvalues below {ZERO_TOL:g} x mean (>= {RC_SHARE:.0%})",
            near_zero_share=share,
            distance=distance,
            alpha=tail.alpha if tail else nan,
            xmin=tail.xmin if tail else nan,
            tail_extent=distance.fit.tail_extent if distance else nan,
        )
    distance = spectral_distance(values, C, threshold, ratio, max_spikes, n_classes)
    tail = fit_powerlaw(distance.fit.bulk)
    extent = distance.fit.tail_extent
    comparison = (
        f"s_hat {distance.s_hat:.4f} {'>' if distance.fires else '<='} s* {distance.threshold:.4f}"
    )
    if not distance.fires:
        kind, reason = "LT", f"{comparison}: MP bulk with {distance.fit.n_spikes} spikes"
    elif extent >= TAIL_EXTENT_HT:
        kind, reason = "HT", f"{comparison}, tail extent {extent:.2f} >= {TAIL_EXTENT_HT}"
    else:
        kind, reason = "BT", f"{comparison}, tail extent {extent:.2f} < {TAIL_EXTENT_HT}"
    return SpectrumType(
        type=kind,
        reason=reason,
        near_zero_share=share,
        distance=distance,
        alpha=tail.alpha,
        xmin=tail.xmin,
        tail_extent=extent,
    )
