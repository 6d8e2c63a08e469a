"""The spectral analysis of a run, from its weights (live) or its recorded eigenvalues (replay).

Training and analysis are separate: a run in record mode trains the same whatever the spike
rule, thresholds or stopping settings, and it stores every monitored layer's eigenvalues at
every epoch.  So any rule can be re-evaluated later without retraining: ``replay`` feeds the
recorded eigenvalues through the very code the live run uses (``analyse_epoch`` and
``heavytail.SpectralEarlyStopping.observe``), and gives the same s_hat, fires and stop epochs
as a live run with that analysis (tests/test_collect.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import heavytail as ht
from heavytail.columns import fires_column, threshold_column
from heavytail.esd import matrix_shape


@dataclass(frozen=True)
class Analysis:
    """What a run's spectral tables depend on besides the weights.

    ``C_values``: the rules that take a C (the paper's) are recorded for each, the others once;
    ``n_classes``: the classification problem's K, given to the spike rule (None: unknown);
    ``stop``: the stopping settings of every rule.
    """

    layers: tuple[str, ...]
    C_values: tuple[float, ...] = (0.4, 0.6)
    n_classes: int | None = None
    stop: ht.StopSettings = ht.StopSettings()

    @property
    def thresholds(self) -> list[ht.Threshold]:
        """Every rule recorded: each registered threshold rule (``heavytail.THRESHOLD_KINDS``),
        once per C for those that take one (the paper rule)."""
        return ht.Threshold.recorded(self.C_values)

    def identity(self) -> dict:
        """Stored with a run: a resumed run whose analysis differs recomputes its history."""
        return {
            "spike_rule": ht.SPIKE_RULE,
            "layers": list(self.layers),
            "C_values": list(self.C_values),
            "n_classes": self.n_classes,
            **self.stop.stop_settings(),
        }

    def stoppers(self) -> dict[str, ht.SpectralEarlyStopping]:
        """One ``SpectralEarlyStopping`` per recorded rule, keyed by the rule's name."""
        return {
            rule.name: ht.SpectralEarlyStopping(
                layers=self.layers,
                C=rule.C,
                threshold=rule.rule,
                **self.stop.stop_settings(),
            )
            for rule in self.thresholds
        }


def analyse_epoch(
    sources: dict, shapes: dict[str, tuple[int, ...]], analysis: Analysis, epoch: int
) -> tuple[list[dict], dict[str, np.ndarray], dict[str, dict]]:
    """One epoch of spectral.csv rows, the eigenvalues and, per rule name, each layer's
    judged ``SpectralDistance`` (None when the spectrum is undefined: NaN weights...).

    ``sources[layer]`` is the layer's weight (a tensor: its ESD is computed) or its recorded
    eigenvalues (a numpy array); ``shapes[layer]`` is the weight's shape.
    """
    rows, eigenvalues, per_rule = [], {}, {}
    for layer in analysis.layers:
        n, big_n = matrix_shape(tuple(shapes[layer]))
        row = {"epoch": epoch, "layer": layer, "n": n, "N": big_n, "ratio": n / big_n}
        source = sources.get(layer)
        try:
            if source is None:
                raise ValueError("no eigenvalues recorded")
            eigs = source if isinstance(source, np.ndarray) else ht.esd(source)
            result = ht.classify(
                eigs, threshold="calibrated", ratio=n / big_n, n_classes=analysis.n_classes
            )
        except ValueError as error:  # NaN weights after divergence, degenerate spectra
            row["skipped"] = str(error)
            rows.append(row)
            for rule in analysis.thresholds:
                per_rule.setdefault(rule.name, {})[layer] = None
            continue
        eigenvalues[layer] = np.asarray(eigs, dtype=np.float64)
        distance = result.distance
        row.update(**result.fields(), skipped="")
        for rule in analysis.thresholds:
            judged = rule.judge(distance) if distance is not None else None
            row[threshold_column(rule.name)] = judged.threshold if judged else math.nan
            row[fires_column(rule.name)] = bool(judged.fires) if judged else False
            per_rule.setdefault(rule.name, {})[layer] = judged
        rows.append(row)
    return rows, eigenvalues, per_rule


def replay(
    eigenvalues: dict[int, dict[str, np.ndarray]],
    shapes: dict[str, tuple[int, ...]],
    analysis: Analysis,
    epochs: list[int] | None = None,
) -> tuple[list[dict], dict[str, ht.SpectralEarlyStopping]]:
    """The spectral rows and the stopping rules' final state of a run under ``analysis``,
    from its recorded ``eigenvalues[epoch][layer]``.

    ``epochs`` are the epochs the run measured (default: those with eigenvalues); an epoch
    whose layer has no eigenvalues (the run's spectrum was undefined) is recorded as skipped.
    """
    stoppers = analysis.stoppers()
    rows: list[dict] = []
    for epoch in sorted(eigenvalues if epochs is None else epochs):
        epoch_rows, _, per_rule = analyse_epoch(eigenvalues.get(epoch, {}), shapes, analysis, epoch)
        rows.extend(epoch_rows)
        for name, stopper in stoppers.items():
            stopper.observe(epoch, per_rule[name])
    return rows, stoppers


def read_eigenvalues(path) -> dict[int, dict[str, np.ndarray]]:
    """A run's eigenvalues.npz as {epoch: {layer: eigenvalues}} (no pickles allowed)."""
    by_epoch: dict[int, dict[str, np.ndarray]] = {}
    # our own handle: np.load leaves its file open when the archive is corrupt
    with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as stored:
        for key in stored.files:
            layer, epoch = key.rsplit("/", 1)
            by_epoch.setdefault(int(epoch), {})[layer] = stored[key]
    return by_epoch
