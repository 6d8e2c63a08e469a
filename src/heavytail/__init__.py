"""heavytail: weight-matrix spectra against the Marchenko-Pastur law (Meng & Yao, JMLR 2023).

Pure functions, arrays in and frozen dataclasses out; torch tensors are accepted as input
but torch is never imported by the math.
"""

from heavytail.analyze import analyze
from heavytail.callback import SpectralEarlyStopping, StopSettings
from heavytail.classify import SPECTRUM_TYPES, SpectrumType, classify
from heavytail.distance import (
    THRESHOLD_KINDS,
    SpectralDistance,
    Threshold,
    ThresholdKind,
    n_bins,
    paper_threshold,
    register_threshold,
    spectral_distance,
    threshold_for,
)
from heavytail.esd import esd
from heavytail.fit import SPIKE_RULE, MPFit, fit_mp
from heavytail.mp import mp_cdf, mp_edges, mp_pdf, mp_quantile
from heavytail.null import null_quantile, wishart_eigenvalues
from heavytail.powerlaw import PowerLawFit, fit_powerlaw

__all__ = [
    "SPECTRUM_TYPES",
    "SPIKE_RULE",
    "THRESHOLD_KINDS",
    "MPFit",
    "PowerLawFit",
    "SpectralDistance",
    "SpectralEarlyStopping",
    "SpectrumType",
    "StopSettings",
    "Threshold",
    "ThresholdKind",
    "analyze",
    "classify",
    "esd",
    "fit_mp",
    "fit_powerlaw",
    "mp_cdf",
    "mp_edges",
    "mp_pdf",
    "mp_quantile",
    "n_bins",
    "null_quantile",
    "paper_threshold",
    "register_threshold",
    "spectral_distance",
    "threshold_for",
    "wishart_eigenvalues",
]
__version__ = "0.1.0"
