"""Stopping rules (``htrain.rules``) applied after the fact to record-mode runs, and how they
compare.

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

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

import heavytail as ht
from htrain.report import PANELS, primary_threshold, thresholds_in
from htrain.rules import (
    EASY_ACCURACY,
    Rule,
    ThresholdReplay,
    TrainToEnd,
    Validation,
    by_epoch,
)


def main_rules(thresholds: list[ht.Threshold]) -> tuple[Rule, ...]:
    """Each recorded spectral rule as the paper uses it (first fire of any layer), Keras'
    validation stopping with patience 5 and 10, and training to the end."""
    spectral = tuple(ThresholdReplay(f"spectral {rule.short}", rule.name) for rule in thresholds)
    return (
        *spectral,
        Validation(5, name="validation p=5"),
        Validation(10, name="validation p=10"),
        TrainToEnd(name="no early stopping"),
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
        ThresholdReplay(f"spectral {rule.short} {variant}", rule.name, stop, widest)
        for rule in chosen
        for variant, stop, widest in variants
    )


def rules_for(spectral: pd.DataFrame) -> tuple[Rule, ...]:
    """Every rule compared on a collected spectral table: main rules, then variants."""
    thresholds = thresholds_in(spectral)
    return main_rules(thresholds) + variant_rules(thresholds)


@dataclass
class RunLog:
    """One run as the rules of ``htrain.rules`` read it: its metrics (indexed by epoch) and
    its spectral rows, grouped by epoch once."""

    metrics: pd.DataFrame
    spectral: pd.DataFrame
    by_epoch: list = field(init=False)

    def __post_init__(self) -> None:
        self.by_epoch = by_epoch(self.spectral)

    @property
    def budget(self) -> int:
        return int(self.metrics.index.max())


def evaluate_run(metrics: pd.DataFrame, spectral: pd.DataFrame, rules=None) -> list[dict]:
    """One record per rule for one run: when it stops, what it reports, and against what.

    lost_vs_best = best test accuracy in hindsight - reported; lost_vs_last = last-epoch
    accuracy - reported (negative: the rule gained); epochs_saved = last epoch - stop epoch.
    A false stop is a fire on an easy run (final test accuracy above EASY_ACCURACY).
    A rule that does not apply (validation on a run without a validation split) is skipped.
    ``rules`` (``htrain.rules.Rule``) defaults to ``rules_for(spectral)``.
    """
    rules = rules_for(spectral) if rules is None else rules
    metrics = metrics.sort_values("epoch").set_index("epoch")
    trained = metrics.loc[metrics.index >= 1, "test_acc"]
    run = RunLog(metrics, spectral)
    last_epoch = run.budget
    last_acc, best_acc = float(metrics.loc[last_epoch, "test_acc"]), float(trained.max())
    records = []
    for rule in rules:
        decision = rule.decide(run)
        if decision is None:
            continue
        stop, reported = decision.stop_epoch, decision.reported_epoch
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
