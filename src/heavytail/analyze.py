"""Per-layer spectral analysis of a model: one tidy row per weight layer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from heavytail.classify import classify
from heavytail.esd import layer_spectrum, matrix_shape

COLUMNS = (
    "name",
    "kind",
    "shape",
    "n",
    "N",
    "ratio",
    "sigma2",
    "n_spikes",
    "s_hat",
    "threshold",
    "fires",
    "type",
    "tail_extent",
    "near_zero_share",
    "lambda_max",
    "stable_rank",
    "alpha",
    "xmin",
    "log_spectral_norm",
    "skipped",
)


def weight_layers(model) -> dict[str, tuple[str, object]]:
    """{name: (kind, weight)} for every layer with a weight of 2 or more dimensions.

    ``model`` is a torch ``nn.Module`` (kinds "Linear", "Conv2d" or the module's class name
    for other layers, which ``analyze`` lists as skipped) or a mapping name -> array
    (kind "matrix" for 2-D, "conv" for 4-D, "array" otherwise).
    """
    if isinstance(model, Mapping):
        kinds = {2: "matrix", 4: "conv"}
        return {
            str(name): (kinds.get(np.ndim(weight), "array"), weight)
            for name, weight in model.items()
        }
    if not hasattr(model, "named_modules"):
        raise ValueError(
            "analyze needs a torch nn.Module or a mapping name -> weight, "
            f"got {type(model).__name__}"
        )
    from torch import nn

    layers = {}
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, nn.Parameter) or weight.dim() < 2:
            continue
        if isinstance(module, nn.Linear):
            kind = "Linear"
        elif isinstance(module, nn.Conv2d):
            kind = "Conv2d"
        else:
            kind = type(module).__name__
        layers[name] = (kind, weight)
    return layers


def _row(
    name: str, kind: str, weight, conv: str, C: float, threshold: str, n_classes: int | None
) -> dict:
    shape = tuple(int(s) for s in weight.shape)
    row = dict.fromkeys(COLUMNS, np.nan)
    row.update(name=name, kind=kind, shape=shape, fires=False, type=None, skipped=None)
    if kind not in ("Linear", "Conv2d", "matrix", "conv"):
        row["skipped"] = f"{kind} layers are not analysed (only Linear and Conv2d)"
        return row
    try:
        n, big_n = matrix_shape(shape, conv)
        row.update(n=n, N=big_n, ratio=n / big_n)
        spectrum = layer_spectrum(weight, conv)
        eigs = spectrum.eigenvalues
        result = classify(eigs, C=C, threshold=threshold, ratio=spectrum.ratio, n_classes=n_classes)
    except ValueError as error:
        row["skipped"] = str(error)
        return row
    # WeightWatcher reports eigenvalues of W W^T without the 1/N: same scale here
    lambda_max = float(eigs[-1] * big_n)
    row.update(
        **result.fields(),
        threshold=result.threshold,
        fires=result.fires,
        near_zero_share=result.near_zero_share,
        lambda_max=lambda_max,
        stable_rank=float(eigs.sum() * big_n / lambda_max) if lambda_max > 0 else np.nan,
        xmin=result.xmin * big_n,
        log_spectral_norm=float(np.log10(lambda_max)) if lambda_max > 0 else np.nan,
    )
    return row


def analyze(
    model,
    layers: Iterable[str] | None = None,
    conv: str = "flatten",
    C: float = 0.4,
    threshold: str = "calibrated",
    n_classes: int | None = None,
) -> pd.DataFrame:
    """One row per weight layer: its MP fit, spectral statistic, type and WW-style metrics.

    Columns (``COLUMNS``):
      * name, kind, shape; n, N, ratio = n/N of the analysed matrix (``esd``, ``conv``);
      * sigma2 (fitted MP scale, W W^T / N units), n_spikes, s_hat, threshold, fires, type,
        tail_extent, near_zero_share: from ``classify`` with this ``C`` and ``threshold``
        (the layer's n/N picks the calibrated threshold);
      * WeightWatcher-compatible columns, on WeightWatcher's scale (eigenvalues of W W^T,
        not divided by N): lambda_max, stable_rank = sum(lambda) / lambda_max, alpha and
        xmin (power law of the bulk's tail: unlike WeightWatcher, isolated spikes are set
        aside first, as its ``fix_fingers`` option intends), log_spectral_norm =
        log10(lambda_max);
      * skipped: None, or why the layer has no numbers (NaN/inf weights, min(shape) < 2,
        an unsupported layer type, an all-equal spectrum).  No layer is dropped silently.

    ``layers`` restricts the table to these names; an unknown name is a ValueError listing
    the available ones.  ``n_classes``: the number of classes K the model was trained on,
    when known (at most K class spikes are set aside per layer: ``heavytail.fit``).
    """
    available = weight_layers(model)
    if layers is not None:
        layers = list(layers)
        unknown = [name for name in layers if name not in available]
        if unknown:
            raise ValueError(
                f"unknown layer(s) {unknown}; available weight layers: {list(available)}"
            )
        available = {name: available[name] for name in layers}
    rows = [
        _row(name, kind, weight, conv, C, threshold, n_classes)
        for name, (kind, weight) in available.items()
    ]
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return table.astype({"n": "Int64", "N": "Int64", "n_spikes": "Int64"})
