"""Drawing a spectrum against its MP fit on a matplotlib Axes (no files, no global state)."""

from __future__ import annotations

import numpy as np

from heavytail.classify import SpectrumType
from heavytail.mp import mp_pdf


def plot_esd(ax, eigs, result: SpectrumType, title: str | None = None, bins: int = 60) -> None:
    """Histogram of the bulk, the fitted MP density over it, spikes as red ticks.

    The title gives the type and s_hat against the threshold, as in the paper's ESD figures.
    """
    values = np.sort(np.asarray(eigs, dtype=float))
    heading = f"{title}\n" if title else ""
    if result.distance is None:
        ax.hist(values, bins=bins, color="0.6")
        ax.set_title(f"{heading}{result.type}: {result.reason}", fontsize=8)
        return
    fit = result.distance.fit
    ax.hist(fit.bulk, bins=bins, density=True, color="0.65", label="bulk ESD")
    grid = np.linspace(fit.lower, fit.upper, 400)
    ax.plot(grid, mp_pdf(grid, fit.ratio, fit.sigma2), color="tab:blue", lw=1.5, label="MP fit")
    if fit.n_spikes:
        ax.plot(
            fit.spikes,
            np.zeros(fit.n_spikes),
            "|",
            color="tab:red",
            ms=14,
            mew=2,
            label=f"{fit.n_spikes} spikes",
        )
    ax.set_xlim(0.0, 1.05 * values[-1])
    ax.ticklabel_format(axis="both", style="sci", scilimits=(-2, 3))  # tiny eigenvalues
    ax.set_xlabel("eigenvalue of W W^T / N")
    ax.set_ylabel("density")
    verdict = ">" if result.fires else "<="
    ax.set_title(
        f"{heading}{result.type}: s_hat {result.s_hat:.3f} {verdict} {result.threshold:.3f}",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="upper right")
