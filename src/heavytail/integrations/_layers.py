"""What the framework callbacks share: which Linear layers to watch, and each one's spectrum
typed and judged (``heavytail.classify``) with its metrics as numbers a logger takes."""

from __future__ import annotations

import math

from heavytail.classify import SPECTRUM_TYPES, classify
from heavytail.esd import layer_spectrum

TYPE_CODES = {name: code for code, name in enumerate(SPECTRUM_TYPES)}


def linear_layers(module) -> list[str]:
    """Every Linear layer with at least 2 inputs and 2 outputs (a spectrum needs n >= 2)."""
    from torch import nn

    return [
        name
        for name, layer in module.named_modules()
        if isinstance(layer, nn.Linear) and min(layer.weight.shape) >= 2
    ]


def classify_layers(module, layers, C: float, threshold: str, n_classes: int | None) -> dict:
    """{layer: SpectrumType or None} for the layers' current weights (None: no spectrum,
    e.g. NaN weights after divergence or a layer collapsed to zeros)."""
    modules = dict(module.named_modules())
    results = {}
    for name in layers:
        try:
            spectrum = layer_spectrum(modules[name].weight)
            results[name] = classify(
                spectrum.eigenvalues, C, threshold, spectrum.ratio, n_classes=n_classes
            )
        except ValueError:
            results[name] = None
    return results


def layer_metrics(result) -> dict[str, float]:
    """The numbers logged per layer: s_hat, threshold, fires, n_spikes, type code."""
    if result is None:
        return dict.fromkeys(("s_hat", "threshold", "fires", "n_spikes", "type"), math.nan)
    return {
        "s_hat": result.s_hat,
        "threshold": result.threshold,
        "fires": float(result.fires),
        "n_spikes": float(result.n_spikes),
        "type": float(TYPE_CODES[result.type]),
    }
