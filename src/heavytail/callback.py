"""Spectral early stopping as a framework-neutral callback (no torch import, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from heavytail.distance import SpectralDistance, spectral_distance, threshold_kind
from heavytail.esd import layer_spectrum, matrix_shape
from heavytail.growth import DEFAULT_Z, BulkGrowthStopping

COMBINE_RULES = ("any", "all")
STOP_RULES = ("threshold", "bulk_growth")


def _whole(value, name: str, low: int) -> int:
    """``value`` as an int (2.0 -> 2), or a one-line error naming ``name``."""
    try:
        whole = int(value)
    except (TypeError, ValueError):
        whole = None
    if isinstance(value, bool) or whole is None or whole != value:
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if whole < low:
        raise ValueError(f"{name} must be at least {low}, got {value!r}")
    return whole


@dataclass(frozen=True)
class StopSettings:
    """How per-layer fires become a stop, the one record of these settings for every place
    that stops or replays a stop (``SpectralEarlyStopping``, the Lightning and Hugging Face
    callbacks, the runner's ``early_stop`` config, replay, compare): a layer fires once its
    criterion has held for ``patience`` consecutive epochs (1: the paper's first epoch over
    the threshold); epochs before ``start_from_epoch`` are recorded but never fire (1 by
    default: epoch 0 is the initialisation, before any training, as in the runner's
    metrics); training stops when ``combine`` of the monitored layers have fired ("any": the
    first, the paper's reading; "all").  Checked on construction."""

    patience: int = 1
    start_from_epoch: int = 1
    combine: str = "any"

    def __post_init__(self) -> None:
        for name, low in (("patience", 1), ("start_from_epoch", 0)):
            object.__setattr__(self, name, _whole(getattr(self, name), name, low))
        if self.combine not in COMBINE_RULES:
            raise ValueError(f"combine must be one of {COMBINE_RULES}, got {self.combine!r}")

    def stop_settings(self) -> dict:
        """The three settings alone (also of a subclass that adds its own), in this order."""
        return {
            "patience": self.patience,
            "start_from_epoch": self.start_from_epoch,
            "combine": self.combine,
        }


def snapshot_of(model) -> dict:
    """A copy of a torch module's state (or of a mapping of arrays), kept off the graph."""
    state = model.state_dict() if hasattr(model, "state_dict") else model
    return {
        name: value.detach().clone() if hasattr(value, "detach") else np.array(value, copy=True)
        for name, value in state.items()
    }


class SpectralEarlyStopping:
    """Stop training when the spectrum of the monitored layers leaves the MP law.

    Each epoch, for each monitored layer, the paper's statistic s_hat is compared with its
    threshold (``heavytail.spectral_distance``); a layer *fires* once its criterion has held
    for ``patience`` consecutive epochs (patience=1, the default, is the paper's "first
    epoch over the threshold").  Training should stop when ``combine`` of the layers have
    fired: "any" (the first layer to fire, the paper's reading) or "all".  No validation data
    is used.

    Parameters mirror Keras' and Lightning's ``EarlyStopping`` where they apply:
    ``patience``, ``start_from_epoch`` (epochs before it are recorded but never fire; 1 by
    default, epoch 0 being the initialisation) and ``verbose`` (``StopSettings`` checks and
    documents ``patience``, ``start_from_epoch`` and ``combine``); plus ``C`` and
    ``threshold`` ("paper" or "calibrated") for the criterion,
    ``layers`` (names; None = every Linear / Conv2d layer seen at the first step),
    ``conv`` (how conv kernels are turned into matrices, see ``heavytail.esd``) and
    ``n_classes``, the number of classes K of the problem: pass it, so that the K class
    spikes a network grows as it learns are set aside rather than read as a heavy tail.

    ``rule`` chooses what stops training: "threshold" (the paper's: a layer's s_hat over its
    threshold, as above) or "bulk_growth" (``heavytail.growth``: the K class spikes are out,
    then the first monitored layer's bulk grows by z / n; needs ``n_classes``, stands down when
    ``n_train`` training samples are fewer than twice a monitored layer's fan-in).  The
    statistic, thresholds and fires are recorded in ``history`` whichever rule stops.

    ``keep_weights=True`` keeps, as ``step`` goes, the weights the rule recommends, as
    validation stopping restores its best epoch: ``recommended_epoch`` (the stop epoch for
    "threshold", the epoch before it for "bulk_growth") and ``recommended_state``, a copy of
    the model's ``state_dict()`` then (of the mapping, when ``step`` is given one), which
    ``restore(model)`` loads back.  At most two copies are held, in the weights' own memory.

    Use from any loop::

        stopper = SpectralEarlyStopping(layers=["fc2", "fc3"])
        for epoch in range(1, epochs + 1):
            train_one_epoch(model)
            if stopper.step(model, epoch):
                break
        stopper.stop_epoch, stopper.stopped_by, stopper.history

    ``step`` takes a torch module or a mapping name -> weight (numpy or torch, any device).
    A runner that computes the spectra itself can feed results with ``observe`` instead.
    """

    def __init__(
        self,
        layers: Iterable[str] | None = None,
        C: float = 0.4,
        threshold: str = "paper",
        patience: int = 1,
        start_from_epoch: int = StopSettings.start_from_epoch,
        combine: str = "any",
        conv: str = "flatten",
        verbose: bool = False,
        n_classes: int | None = None,
        rule: str = "threshold",
        z: float = DEFAULT_Z,
        n_train: int | None = None,
        keep_weights: bool = False,
    ) -> None:
        threshold_kind(threshold)
        self.settings = StopSettings(patience, start_from_epoch, combine)
        if not C > 0:
            raise ValueError(f"C must be a positive number, got {C!r}")
        if n_classes is not None and (
            isinstance(n_classes, bool) or int(n_classes) != n_classes or int(n_classes) < 1
        ):
            raise ValueError(f"n_classes must be a positive whole number, got {n_classes!r}")
        if rule not in STOP_RULES:
            raise ValueError(f"rule must be one of {STOP_RULES}, got {rule!r}")
        if rule == "bulk_growth" and n_classes is None:
            raise ValueError("rule='bulk_growth' needs n_classes, the problem's number of classes")
        self.layers = None if layers is None else list(layers)
        self.C = float(C)
        self.threshold = threshold
        self.conv = conv
        self.verbose = verbose
        self.n_classes = None if n_classes is None else int(n_classes)
        self.rule = rule
        self.z = float(z)
        self.n_train = n_train
        self.keep_weights = bool(keep_weights)
        self.growth: BulkGrowthStopping | None = None
        if rule == "bulk_growth":
            BulkGrowthStopping(self.n_classes, self.z)  # validates K and z before training
        self.recommended_state: dict | None = None
        self._last_state: tuple[int, dict] | None = None
        self.history: list[dict] = []
        self.fire_epoch: dict[str, int] = {}  # layer -> epoch at which it fired
        self.stop_epoch: int | None = None
        self.stopped_by: list[str] = []
        self._streak: dict[str, int] = {}

    @property
    def patience(self) -> int:
        return self.settings.patience

    @property
    def start_from_epoch(self) -> int:
        return self.settings.start_from_epoch

    @property
    def combine(self) -> str:
        return self.settings.combine

    @property
    def should_stop(self) -> bool:
        return self.stop_epoch is not None

    def state_dict(self) -> dict:
        """What a resumed run needs to continue exactly: plain lists, dicts and numbers
        (JSON-serialisable, so checkpoints need no pickled objects)."""
        return {
            "layers": None if self.layers is None else list(self.layers),
            "history": [dict(row) for row in self.history],
            "fire_epoch": dict(self.fire_epoch),
            "stop_epoch": self.stop_epoch,
            "stopped_by": list(self.stopped_by),
            "streak": dict(self._streak),
            "growth": None if self.growth is None else self.growth.state_dict(),
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Continue from ``state_dict()``: the patience streaks, fire epochs and history."""
        self.layers = None if state["layers"] is None else list(state["layers"])
        self.history = [dict(row) for row in state["history"]]
        self.fire_epoch = {name: int(epoch) for name, epoch in state["fire_epoch"].items()}
        self.stop_epoch = None if state["stop_epoch"] is None else int(state["stop_epoch"])
        self.stopped_by = list(state["stopped_by"])
        self._streak = {name: int(count) for name, count in state["streak"].items()}
        growth = state.get("growth")  # absent in states saved before the bulk-growth rule
        if self.rule == "bulk_growth" and growth is not None:
            self.growth = BulkGrowthStopping(self.n_classes, self.z)
            self.growth.load_state_dict(growth)

    @property
    def recommended_epoch(self) -> int | None:
        """The epoch whose weights the rule recommends (None until it stops)."""
        if self.growth is not None:
            return self.growth.recommended_epoch
        return self.stop_epoch

    def restore(self, model) -> None:
        """Load the recommended weights (``keep_weights=True``) back into a torch module."""
        if self.recommended_state is None:
            raise ValueError(
                "no recommended weights: pass keep_weights=True and call step until it stops"
            )
        model.load_state_dict(self.recommended_state)

    def step(self, model, epoch: int) -> bool:
        """Compute each monitored layer's statistic from ``model`` at ``epoch``; True to stop."""
        from heavytail.analyze import weight_layers

        available = weight_layers(model)
        if self.layers is None:
            # a layer with a single row or column (a 1-output head) has no spectrum to fit
            self.layers = [
                name
                for name, (kind, weight) in available.items()
                if kind in ("Linear", "Conv2d", "matrix", "conv")
                and min(matrix_shape(tuple(weight.shape), self.conv)) >= 2
            ]
        missing = [name for name in self.layers if name not in available]
        if missing:
            raise ValueError(f"monitored layer(s) {missing} not in the model: {list(available)}")
        results = {}
        snapshot = snapshot_of(model) if self.keep_weights else None
        for name in self.layers:
            try:
                spectrum = layer_spectrum(available[name][1], self.conv)
                results[name] = spectral_distance(
                    spectrum.eigenvalues,
                    C=self.C,
                    threshold=self.threshold,
                    ratio=spectrum.ratio,
                    n_classes=self.n_classes,
                )
            except ValueError:
                # NaN weights, a collapsed (all-zero) layer: no spectrum, recorded as not
                # firing (``observe``), as a NaN one is
                results[name] = None
        stopped_before = self.should_stop
        stop = self.observe(epoch, results)
        if snapshot is not None:
            self.keep(epoch, snapshot, stopped_before)
        return stop

    def keep(self, epoch: int, snapshot: dict, stopped_before: bool) -> None:
        """Hold ``snapshot`` (the weights after ``epoch``'s step) as a candidate for the
        recommended weights; at the stop, keep the recommended epoch's copy and drop the
        other.  ``step`` calls it; a runner that feeds ``observe`` itself can too."""
        if stopped_before:
            return
        if self.should_stop:
            last = self._last_state
            recommended = self.recommended_epoch
            self.recommended_state = (
                last[1] if last is not None and last[0] == recommended else snapshot
            )
            self._last_state = None
        else:
            self._last_state = (epoch, snapshot)

    def _observe_growth(self, epoch: int, results: Mapping[str, SpectralDistance | None]) -> None:
        """The bulk-growth rule's epoch: spike counts of every layer, the first layer's body
        scale; the layers' sizes from the results (n = bulk + spikes, N = n / ratio)."""
        first = results.get(self.layers[0])
        if self.growth is None:
            fan_ins = [
                round((r.n + r.fit.n_spikes) / r.ratio) for r in results.values() if r is not None
            ]
            self.growth = BulkGrowthStopping(
                self.n_classes, self.z, self.start_from_epoch, self.n_train, fan_ins
            )
        counts = {
            name: None if results.get(name) is None else results[name].fit.n_spikes
            for name in self.layers
        }
        body = None if first is None else first.fit.body_sigma2
        n_first = 1 if first is None else first.n + first.fit.n_spikes
        if self.stop_epoch is None and self.growth.observe(epoch, counts, body, n_first):
            self.stop_epoch = epoch
            self.stopped_by = [self.layers[0]]
            if self.verbose:
                print(
                    f"SpectralEarlyStopping: the bulk of {self.layers[0]} grew after the class "
                    f"spikes came out (epoch {self.growth.spikes_out_epoch}): stop at epoch "
                    f"{epoch}, recommended weights of epoch {self.growth.recommended_epoch}"
                )

    def observe(self, epoch: int, results: Mapping[str, SpectralDistance | None]) -> bool:
        """Record one epoch of per-layer results; True once training should stop.

        A result of None (a layer whose spectrum could not be computed, e.g. NaN weights)
        is recorded as not firing and breaks the layer's streak.
        """
        if self.layers is None:
            self.layers = list(results)
        for name in self.layers:
            result = results.get(name)
            over = result is not None and result.fires and epoch >= self.start_from_epoch
            self._streak[name] = self._streak.get(name, 0) + 1 if over else 0
            if self._streak[name] >= self.patience and name not in self.fire_epoch:
                self.fire_epoch[name] = epoch
                if self.verbose:
                    print(
                        f"SpectralEarlyStopping: {name} fired at epoch {epoch} "
                        f"(s_hat {result.s_hat:.4f} > {result.threshold:.4f})"
                    )
            self.history.append(
                {
                    "epoch": epoch,
                    "layer": name,
                    "s_hat": result.s_hat if result else float("nan"),
                    "threshold": result.threshold if result else float("nan"),
                    "over": over,
                    "streak": self._streak[name],
                    "fired": name in self.fire_epoch,
                }
            )
        if self.rule == "bulk_growth":
            self._observe_growth(epoch, results)
        elif self.stop_epoch is None:
            fired_now = [name for name in self.layers if self.fire_epoch.get(name) == epoch]
            fired = [name for name in self.layers if name in self.fire_epoch]
            done = bool(fired) if self.combine == "any" else len(fired) == len(self.layers)
            if done:
                self.stop_epoch = epoch
                self.stopped_by = fired_now if self.combine == "any" else fired
                if self.verbose:
                    layers = ", ".join(self.stopped_by)
                    print(f"SpectralEarlyStopping: stop at epoch {epoch} ({layers})")
        return self.should_stop
