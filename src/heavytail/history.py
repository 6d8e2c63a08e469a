"""Stopping rules replayed over a run folder's recorded history: `heavytail analyze RUN_FOLDER`.

A run folder (``htrain``'s, or any folder with metrics.csv and eigenvalues.npz holding
"<layer>/<epoch>" spectra of W W^T / N) keeps every monitored layer's eigenvalues at every
epoch, so each rule can be asked where it would have stopped, epoch by epoch, through the
same ``SpectralEarlyStopping`` object a live loop uses: the paper's threshold rule (C = 0.4),
the calibrated one and the bulk-growth rule (``heavytail.growth``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from heavytail.callback import SpectralEarlyStopping
from heavytail.distance import spectral_distance


def read_history(path) -> dict[str, dict[int, np.ndarray]]:
    """A run folder's eigenvalues.npz as {layer: {epoch: ascending eigenvalues}} (no pickles;
    {} when the file is not there)."""
    by_layer: dict[str, dict[int, np.ndarray]] = {}
    if not Path(path).is_file():
        return by_layer
    with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as stored:
        for key in stored.files:
            layer, epoch = key.rsplit("/", 1)
            by_layer.setdefault(layer, {})[int(epoch)] = np.sort(stored[key].astype(float))
    return by_layer


RULES = {
    "paper_C0.4": {"rule": "threshold", "threshold": "paper", "C": 0.4},
    "calibrated": {"rule": "threshold", "threshold": "calibrated"},
    "bulk_growth": {"rule": "bulk_growth"},
}


@dataclass(frozen=True)
class RuleOutcome:
    rule: str
    stop_epoch: int | None
    recommended_epoch: int | None
    test_acc: float | None  # at the recommended epoch (the last one when it never stopped)


def replay_history(
    eigenvalues: dict[str, dict[int, np.ndarray]],
    shapes: dict[str, tuple[int, int]],
    metrics: pd.DataFrame,
    n_classes: int | None,
    n_train: int | None = None,
) -> tuple[list[RuleOutcome], int | None]:
    """Each rule of ``RULES`` over the history (``eigenvalues[layer][epoch]``, ``shapes[layer]``
    = (n, N)), and the best test epoch; the bulk-growth rule only with ``n_classes``."""
    layers = list(eigenvalues)
    epochs = sorted(set.intersection(*(set(e) for e in eigenvalues.values())))
    by_epoch = metrics.set_index("epoch") if "epoch" in metrics else None
    outcomes = []
    for name, options in RULES.items():
        if options["rule"] == "bulk_growth" and n_classes is None:
            continue
        stopper = SpectralEarlyStopping(
            layers=layers, start_from_epoch=1, n_classes=n_classes, n_train=n_train, **options
        )
        for epoch in epochs:
            results = {}
            for layer in layers:
                n, big_n = shapes[layer]
                try:
                    results[layer] = spectral_distance(
                        eigenvalues[layer][epoch],
                        C=stopper.C,
                        threshold=stopper.threshold,
                        ratio=n / big_n,
                        n_classes=n_classes,
                    )
                except ValueError:
                    results[layer] = None
            if stopper.observe(epoch, results):
                break
        chosen = stopper.recommended_epoch if stopper.should_stop else epochs[-1]
        accuracy = None
        if by_epoch is not None and chosen in by_epoch.index and "test_acc" in by_epoch:
            accuracy = float(by_epoch.loc[chosen, "test_acc"])
        outcomes.append(RuleOutcome(name, stopper.stop_epoch, stopper.recommended_epoch, accuracy))
    best = None
    if by_epoch is not None and "test_acc" in by_epoch:
        trained = by_epoch.loc[by_epoch.index >= 1, "test_acc"]
        best = int(trained.idxmax()) if len(trained) else None
    return outcomes, best
