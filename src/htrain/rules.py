"""Stopping rules judged after the fact: one type, one home.

A rule reads one run's log as it grew during training and returns a ``Decision``: the epoch
at which it stops (None: never, the run trains to its budget) and the epoch whose weights it
hands back.  ``decide`` returns None where the rule does not apply (no validation split, no
eigenvalues, no gradient statistics, a recipe it was not derived for).  Because each rule
decides from the epochs seen so far, a replay stops where a live run would.

The run a rule reads offers ``metrics`` (a DataFrame indexed by epoch, epoch 0 = the
initialisation) and ``budget`` (its last epoch); a rule that needs more reads it by name:
``ThresholdReplay`` the run's spectral rows (``htrain.compare.RunLog``), the benchmark's rules
the per-epoch columns of ``htrain.stopping.Trajectory``.  The comparisons of the quick panels
(``htrain.compare``, ``htrain.before_after``), the stopping benchmark (``htrain.stopping.RULES``)
and the real-data table (``htrain.paper_real``) all judge rules of this one type.

A new rule is one subclass of ``Rule`` here, with ``name``, ``label`` and ``decide``, listed
where it should be judged.  Pure functions and small objects over DataFrames; no files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import pandas as pd

import heavytail as ht
from heavytail import SpectralEarlyStopping
from heavytail.columns import fires_column, threshold_column
from heavytail.evidence import eb_stop
from heavytail.growth import DEFAULT_Z, bulk_growth_stop

# a run that ends above this test accuracy is easy: a rule should not cost it anything, and a
# fire on it is a false stop
EASY_ACCURACY = 0.99


@dataclass(frozen=True)
class Decision:
    stop_epoch: int | None  # None: never fired, trained to the budget
    reported_epoch: int  # the epoch whose weights the rule hands back


class Rule:
    """A stopping rule: ``decide(run)`` returns a ``Decision``, or None where it does not
    apply."""

    name = ""
    label = ""

    def decide(self, run) -> Decision | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _no_restore(stop: int | None, budget: int) -> Decision:
    """A rule that restores nothing hands back the weights it stopped with, or the last."""
    return Decision(stop, stop if stop is not None else budget)


class TrainToEnd(Rule):
    """No early stopping: the last epoch's weights."""

    def __init__(self, name: str = "end", label: str = "train to the end") -> None:
        self.name, self.label = name, label

    def decide(self, run):
        return Decision(None, run.budget)


# ------------------------------------------------------------------------------ validation


def validation_stop(
    metrics: pd.DataFrame, patience: int, monitor: str = "val_loss", min_delta: float = 0.0
) -> tuple[int | None, int]:
    """Keras ``EarlyStopping(monitor, patience, min_delta, restore_best_weights=True)``.

    Over epochs 1, 2, ...: an epoch improves when value < best - min_delta (then best and
    the weights to restore are its, and the wait resets), otherwise the wait grows; training
    stops at the epoch where wait reaches ``patience``.  Returns (stop epoch or None, the
    epoch whose weights the run ends with): the best epoch when it stopped, the last epoch
    otherwise, because Keras restores the best weights only when it stops training itself
    (keras-team/keras#12511, tensorflow/tensorflow#35634).
    """
    if monitor not in metrics:
        raise ValueError(f"no {monitor} column: run with data.val_fraction > 0")
    rows = metrics[metrics["epoch"] >= 1].sort_values("epoch")
    best, best_epoch, wait = math.inf, None, 0
    for epoch, value in zip(rows["epoch"], rows[monitor], strict=True):
        if value < best - min_delta:
            best, best_epoch, wait = value, int(epoch), 0
        else:
            wait += 1
            if wait >= patience:
                return int(epoch), best_epoch if best_epoch is not None else int(epoch)
    return None, int(rows["epoch"].iloc[-1])


class Validation(Rule):
    """Keras-style validation stopping on the run's own validation loss, best weights
    restored (``validation_stop``); does not apply to a run without a validation split.  The
    benchmark hands it a run's twin (trained on 90%)."""

    def __init__(self, patience: int, name: str | None = None, label: str | None = None):
        self.patience = patience
        self.name = name or f"validation_p{patience}"
        self.label = label or f"validation, patience {patience}"

    def decide(self, run):
        if "val_loss" not in run.metrics:
            return None
        stop, reported = validation_stop(run.metrics.reset_index(), self.patience)
        return Decision(stop, reported)


# ------------------------------------------------------------- a threshold rule, replayed


def widest_layer(spectral: pd.DataFrame) -> str:
    """The monitored layer with the most weights (n x N); ties go to the first listed."""
    sizes = spectral.groupby("layer", sort=False).apply(
        lambda rows: int(rows["n"].iloc[0]) * int(rows["N"].iloc[0]), include_groups=False
    )
    return str(sizes.idxmax())


def by_epoch(spectral: pd.DataFrame) -> list[tuple[int, dict[str, dict]]]:
    """One run's spectral rows as [(epoch, {layer: row})], epochs ascending (done once per
    run: replaying ten rules over a DataFrame each would dominate a comparison's time)."""
    epochs: dict[int, dict[str, dict]] = {}
    for row in spectral.to_dict("records"):
        epochs.setdefault(int(row["epoch"]), {})[row["layer"]] = row
    return sorted(epochs.items())


def spectral_stop(
    spectral: pd.DataFrame,
    threshold: str,
    patience: int = 1,
    combine: str = "any",
    start_from_epoch: int = 1,
) -> int | None:
    """The epoch at which the spectral rule stops one run, or None if it never does.

    ``spectral`` holds one run's rows (epoch, layer, n, N, s_hat, threshold_<rule>,
    fires_<rule>).  combine "widest" monitors only ``widest_layer``; "any" and "all" are the
    callback's.  Epoch 0 (the initialisation) never fires, as in the runner
    (start_from_epoch = 1).
    """
    widest = combine == "widest"
    stop = ht.StopSettings(patience, start_from_epoch, "any" if widest else combine)
    return replay_threshold(by_epoch(spectral), spectral, threshold, stop, widest)


def replay_threshold(
    rows_by_epoch: list[tuple[int, dict[str, dict]]],
    spectral: pd.DataFrame,
    threshold: str,
    stop: ht.StopSettings,
    widest_only: bool = False,
) -> int | None:
    """``spectral_stop`` on rows already grouped by ``by_epoch``, through the callback's own
    state machine (``SpectralEarlyStopping.observe``)."""
    fires, levels = fires_column(threshold), threshold_column(threshold)
    if fires not in spectral:
        raise ValueError(f"spectral table has no {fires} column: rule {threshold} not recorded")
    layers = list(dict.fromkeys(spectral["layer"]))
    if widest_only:
        layers = [widest_layer(spectral)]
    stopper = SpectralEarlyStopping(
        layers=layers, threshold=ht.Threshold.from_name(threshold).rule, **stop.stop_settings()
    )
    for epoch, rows in rows_by_epoch:
        results = {}
        for layer, row in rows.items():
            skipped = isinstance(row.get("skipped"), str) and row["skipped"] != ""
            results[layer] = (
                None
                if skipped or pd.isna(row["s_hat"])
                else SimpleNamespace(
                    fires=bool(row[fires]), s_hat=row["s_hat"], threshold=row[levels]
                )
            )
        if stopper.observe(epoch, results):
            return stopper.stop_epoch
    return None


class ThresholdReplay(Rule):
    """A recorded threshold rule (a ``heavytail.Threshold`` name such as paper_C0.4 or
    calibrated) stopped as ``stop`` says, replayed over the run's spectral rows
    (``run.spectral``, ``run.by_epoch``); ``widest_only``: only the layer with the most
    weights is monitored.  Hands back the weights it stopped with (the paper restores
    nothing)."""

    def __init__(
        self,
        name: str,
        threshold: str,
        stop: ht.StopSettings = ht.StopSettings(),
        widest_only: bool = False,
    ) -> None:
        self.name, self.label = name, name
        self.threshold, self.stop, self.widest_only = threshold, stop, widest_only

    def decide(self, run):
        spectral = getattr(run, "spectral", None)
        if spectral is None:
            return None
        stop = replay_threshold(run.by_epoch, spectral, self.threshold, self.stop, self.widest_only)
        return _no_restore(stop, run.budget)


# ------------------------------------------------ the benchmark's rules (htrain.stopping)


def _first_fire(fires: pd.DataFrame | None, start: int = 1) -> int | None:
    if fires is None:
        return None
    hits = fires[fires.index >= start].any(axis=1)
    return int(hits.idxmax()) if hits.any() else None


class PaperRule(Rule):
    """The paper's C = 0.4 rule, first fire of any monitored layer, with or without K (the
    trajectory's ``fires_with_k`` / ``fires_without_k`` columns)."""

    def __init__(self, with_k: bool) -> None:
        self.with_k = with_k
        self.name = "paper_C0.4" if with_k else "paper_C0.4_noK"
        self.label = "paper C=0.4, K known" if with_k else "paper C=0.4, K unknown"

    def decide(self, run):
        if not self.with_k and run.fires_without_k is None:
            return None
        return _no_restore(
            _first_fire(run.fires_with_k if self.with_k else run.fires_without_k), run.budget
        )


class BulkGrowth(Rule):
    """``heavytail.growth``: the class spikes are out, then the first layer's bulk grows;
    hands back the epoch before the growth.  Needs the first layer's body scale per epoch
    (from the eigenvalues)."""

    def __init__(self, z: float = DEFAULT_Z, name: str = "bulk_growth") -> None:
        self.z, self.name = z, name
        self.label = f"bulk growth (z={z:g})"

    def decide(self, run):
        if run.body_sigma2 is None:
            return None
        epochs = run.body_sigma2.index.to_numpy()
        spikes = run.spikes.reindex(epochs)
        result = bulk_growth_stop(
            epochs,
            {layer: list(spikes[layer]) for layer in run.layers},
            run.body_sigma2.to_numpy(),
            run.n_first,
            run.n_classes,
            self.z,
            n_train=run.n_train,
            fan_ins=run.fan_ins,
        )
        if result.stop_epoch is None:
            return Decision(None, run.budget)
        return Decision(result.stop_epoch, result.recommended_epoch)


class EvidenceBased(Rule):
    """Mahsereci et al. (2017), ``heavytail.evidence``: needs the logged gradient noise, and
    applies to plain SGD only (its derivation takes the step to be the mini-batch gradient;
    with momentum or Adam it is not, so those runs get no decision, though they log EB)."""

    name, label = "evidence", "evidence-based (Mahsereci 2017)"
    RECIPES = ("sgd", "batch256")

    def decide(self, run):
        if run.info["recipe"] not in self.RECIPES:
            return None
        if "eb_criterion" not in run.metrics or run.metrics["eb_criterion"].isna().all():
            return None
        trained = run.metrics[run.metrics.index >= 1]
        result = eb_stop(trained["eb_criterion"].to_numpy(), trained.index.to_numpy())
        return _no_restore(result.stop_epoch, run.budget)
