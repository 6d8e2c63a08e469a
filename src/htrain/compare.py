"""Stopping rules applied after the fact to record-mode runs, and how they compare.

Record mode trains every run to its last epoch and logs, each epoch, the test (and, with a
validation split, validation) loss and accuracy, and per monitored layer s_hat and every
rule's threshold.  A rule that decides from the epochs seen so far stops at the same epoch
whether it runs live or over the log, and the model it reports is one whose test accuracy
the log holds; so all rules are evaluated on the very same trajectories.  The spectral rules
are replayed through ``heavytail.SpectralEarlyStopping.observe`` itself, and the tests check
the replay against live runs with ``early_stop.action=stop``.

Pure functions over the collected tables (epochs.csv, spectral.parquet); no files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

import heavytail as ht
from heavytail import SpectralEarlyStopping
from heavytail.columns import fires_column, threshold_column
from htrain.report import PANELS, primary_threshold, thresholds_in

EASY_ACCURACY = 0.99  # final test accuracy above which a setting counts as easy


@dataclass(frozen=True)
class Rule:
    """A stopping rule.  kind: "spectral" (threshold = a ``heavytail.Threshold`` name such as
    paper_C0.4 or calibrated, stopped by ``stop``; ``widest_only``: only the layer with the
    most weights is monitored), "validation" (Keras EarlyStopping on val_loss with
    restore_best_weights, ``stop.patience``) or "none" (train to the end)."""

    name: str
    kind: str
    threshold: str = ""
    stop: ht.StopSettings = ht.StopSettings()
    widest_only: bool = False


def main_rules(thresholds: list[ht.Threshold]) -> tuple[Rule, ...]:
    """Each recorded spectral rule as the paper uses it (first fire of any layer), Keras'
    validation stopping with patience 5 and 10, and training to the end."""
    spectral = tuple(Rule(f"spectral {rule.short}", "spectral", rule.name) for rule in thresholds)
    return (
        *spectral,
        Rule("validation p=5", "validation", stop=ht.StopSettings(patience=5)),
        Rule("validation p=10", "validation", stop=ht.StopSettings(patience=10)),
        Rule("no early stopping", "none"),
    )


def variant_rules(thresholds: list[ht.Threshold]) -> tuple[Rule, ...]:
    """All layers, the widest layer only, patience 3: for the paper's rule and each rule
    without a C (the calibrated)."""
    chosen = [primary_threshold(thresholds)]
    chosen += [rule for rule in thresholds if not rule.kind.uses_C and rule not in chosen]
    variants = (
        ("all layers", ht.StopSettings(combine="all"), False),
        ("widest layer", ht.StopSettings(), True),
        ("patience 3", ht.StopSettings(patience=3), False),
    )
    return tuple(
        Rule(f"spectral {rule.short} {variant}", "spectral", rule.name, stop, widest)
        for rule in chosen
        for variant, stop, widest in variants
    )


def rules_for(spectral: pd.DataFrame) -> tuple[Rule, ...]:
    """Every rule compared on a collected spectral table: main rules, then variants."""
    thresholds = thresholds_in(spectral)
    return main_rules(thresholds) + variant_rules(thresholds)


def widest_layer(spectral: pd.DataFrame) -> str:
    """The monitored layer with the most weights (n x N); ties go to the first listed."""
    sizes = spectral.groupby("layer", sort=False).apply(
        lambda rows: int(rows["n"].iloc[0]) * int(rows["N"].iloc[0]), include_groups=False
    )
    return str(sizes.idxmax())


def _by_epoch(spectral: pd.DataFrame) -> list[tuple[int, dict[str, dict]]]:
    """One run's spectral rows as [(epoch, {layer: row})], epochs ascending (done once per
    run: replaying ten rules over a DataFrame each would dominate the comparison's time)."""
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
    return _replay(_by_epoch(spectral), spectral, threshold, stop, widest)


def _replay(
    by_epoch: list[tuple[int, dict[str, dict]]],
    spectral: pd.DataFrame,
    threshold: str,
    stop: ht.StopSettings,
    widest_only: bool = False,
) -> int | None:
    """``spectral_stop`` on rows already grouped by ``_by_epoch``."""
    fires, levels = fires_column(threshold), threshold_column(threshold)
    if fires not in spectral:
        raise ValueError(f"spectral table has no {fires} column: rule {threshold} not recorded")
    layers = list(dict.fromkeys(spectral["layer"]))
    if widest_only:
        layers = [widest_layer(spectral)]
    stopper = SpectralEarlyStopping(
        layers=layers, threshold=ht.Threshold.from_name(threshold).rule, **stop.stop_settings()
    )
    for epoch, rows in by_epoch:
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


def evaluate_run(metrics: pd.DataFrame, spectral: pd.DataFrame, rules=None) -> list[dict]:
    """One record per rule for one run: when it stops, what it reports, and against what.

    lost_vs_best = best test accuracy in hindsight - reported; lost_vs_last = last-epoch
    accuracy - reported (negative: the rule gained); epochs_saved = last epoch - stop epoch.
    A false stop is a fire on an easy run (final test accuracy above EASY_ACCURACY).
    Validation rules are skipped on runs without a validation split.  ``rules`` defaults to
    ``rules_for(spectral)``.
    """
    rules = rules_for(spectral) if rules is None else rules
    metrics = metrics.sort_values("epoch").set_index("epoch")
    trained = metrics.loc[metrics.index >= 1, "test_acc"]
    last_epoch = int(metrics.index.max())
    last_acc, best_acc = float(metrics.loc[last_epoch, "test_acc"]), float(trained.max())
    records = []
    prepared = _by_epoch(spectral)
    for rule in rules:
        if rule.kind == "spectral":
            stop = _replay(prepared, spectral, rule.threshold, rule.stop, rule.widest_only)
            reported = stop if stop is not None else last_epoch
        elif rule.kind == "validation":
            if "val_loss" not in metrics:
                continue
            stop, reported = validation_stop(metrics.reset_index(), rule.stop.patience)
        elif rule.kind == "none":
            stop, reported = None, last_epoch
        else:
            raise ValueError(f"unknown rule kind {rule.kind!r}")
        accuracy = float(metrics.loc[reported, "test_acc"])
        fired = stop is not None
        records.append(
            {
                "rule": rule.name,
                "fired": fired,
                "stop_epoch": stop if fired else last_epoch,
                "reported_epoch": reported,
                "test_acc": accuracy,
                "best_acc": best_acc,
                "last_acc": last_acc,
                "lost_vs_best": best_acc - accuracy,
                "lost_vs_last": last_acc - accuracy,
                "epochs_saved": last_epoch - (stop if fired else last_epoch),
                "easy": last_acc > EASY_ACCURACY,
                "false_stop": fired and last_acc > EASY_ACCURACY,
            }
        )
    return records


def evaluate_runs(epochs: pd.DataFrame, spectral: pd.DataFrame, rules=None) -> pd.DataFrame:
    """``evaluate_run`` over every run of the collected tables (column "run")."""
    rules = rules_for(spectral) if rules is None else rules
    records = []
    by_run = dict(tuple(spectral.groupby("run", sort=False)))
    for run, metrics in epochs.groupby("run", sort=False):
        if run not in by_run:
            raise ValueError(f"run {run} has epochs but no spectral rows")
        for record in evaluate_run(metrics, by_run[run], rules):
            records.append({"run": run, **record})
    return pd.DataFrame(records)


def summarise(outcomes: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per rule (and ``by``): runs, share fired, median stop epoch, mean accuracy, mean loss
    against the best epoch and the last, mean epochs saved, false stops, never fired."""
    grouped = outcomes.groupby([*by, "rule"], sort=False)
    table = grouped.agg(
        runs=("run", "size"),
        fired=("fired", "sum"),
        stop_epoch_median=("stop_epoch", "median"),
        test_acc_mean=("test_acc", "mean"),
        lost_vs_best_mean=("lost_vs_best", "mean"),
        lost_vs_best_max=("lost_vs_best", "max"),
        lost_vs_last_mean=("lost_vs_last", "mean"),
        epochs_saved_mean=("epochs_saved", "mean"),
        easy_runs=("easy", "sum"),
        false_stops=("false_stop", "sum"),
    ).reset_index()
    table["never_fired"] = table["runs"] - table["fired"]
    return table


# ------------------------------------------------ the comparison of scripts/compare.py

SWEEPS = (*PANELS, *(f"{panel}_val" for panel in PANELS), "compare_real")
FULL, REDUCED = "full", "reduced (90%)"


def load_outcomes(results: Path) -> tuple[pd.DataFrame, list[str]]:
    """Outcomes of every rule on every run (a run with validation losses trained on the
    reduced set, the others on the full one), and the names of the main rules."""
    frames, main_names = [], []
    for name in SWEEPS:
        folder = results / name
        if not (folder / "epochs.csv").exists():
            continue
        epochs = pd.read_csv(folder / "epochs.csv")
        spectral = pd.read_parquet(folder / "spectral.parquet")
        outcomes = evaluate_runs(epochs, spectral)
        for rule in main_rules(thresholds_in(spectral)):
            if rule.name not in main_names:
                main_names.append(rule.name)
        with_split = (
            set(epochs.loc[epochs["val_loss"].notna(), "run"]) if "val_loss" in epochs else set()
        )
        outcomes["training_set"] = (
            outcomes["run"].isin(with_split).map({True: REDUCED, False: FULL})
        )
        # what identifies a setting across the two training sets (the run hashes differ)
        keys = [c for c in ("data.name", "data.delta", "data.t", "data.K", "seed") if c in epochs]
        first = epochs.groupby("run")[keys].first()
        settings = first.apply(lambda row: " ".join(str(v) for v in row), axis=1)
        outcomes["setting"] = outcomes["run"].map(settings)
        panel = name.removesuffix("_val")
        if name == "compare_real":  # one panel per data set
            data = epochs.groupby("run")["data.name"].first()
            outcomes["panel"] = outcomes["run"].map(data) + "_lenet"
        else:
            outcomes["panel"] = panel
        frames.append(outcomes)
    if not frames:
        raise FileNotFoundError(f"no collected panels under {results} ({', '.join(SWEEPS)})")
    return pd.concat(frames, ignore_index=True), main_names


def summary_markdown(summary: pd.DataFrame) -> str:
    """summary.md's tables: per training set, one row per rule with its measures."""
    columns = [
        ("rule", "rule", str),
        ("runs", "runs", str),
        ("fired", "fired", str),
        ("stop_epoch_median", "median stop epoch", lambda v: f"{v:g}"),
        ("test_acc_mean", "test acc", lambda v: f"{100 * v:.2f}%"),
        ("lost_vs_best_mean", "lost vs best", lambda v: f"{100 * v:.2f}"),
        ("lost_vs_best_max", "worst loss vs best", lambda v: f"{100 * v:.2f}"),
        ("lost_vs_last_mean", "lost vs last", lambda v: f"{100 * v:+.2f}"),
        ("epochs_saved_mean", "epochs saved", lambda v: f"{v:.1f}"),
        ("false_stops", "false stops", str),
        ("easy_runs", "easy runs", str),
    ]
    parts = []
    for training_set, block in summary.groupby("training_set", sort=False):
        parts.append(f"Training set: {training_set}\n")
        parts.append("| " + " | ".join(title for _, title, _ in columns) + " |")
        parts.append("|" + "---|" * len(columns))
        for row in block.to_dict("records"):
            parts.append("| " + " | ".join(fmt(row[key]) for key, _, fmt in columns) + " |")
        parts.append("")
    parts.append(
        "Accuracies in points of test accuracy (means over runs); lost vs last < 0 means the "
        "rule gained on training to the end; a false stop is a fire on a run whose final test "
        "accuracy is above 99%."
    )
    return "\n".join(parts) + "\n"
