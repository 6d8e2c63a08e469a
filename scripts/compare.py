"""Spectral against validation-based early stopping on the same runs:
`python scripts/compare.py [--results results] [--out results/compare]`.

Reads the collected synthetic panels (results/<panel>: full training set), their
validation-split twins (results/<panel>_val: 90% of it, data.val_fraction=0.1) and, when
present, results/compare_real (LeNet on MNIST and CIFAR-10, both splits), applies every
stopping rule after the fact (htrain.compare) and writes:
  outcomes.csv   one row per run and rule
  summary.csv    per training set, panel and rule: the measures
  summary.md     per training set and rule, pooled over the panels run on both training
                 sets (the README's table)
  compare.png    accuracy lost against epochs saved, one point per run, colour per rule
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from htrain.compare import evaluate_runs, main_rules, summarise
from htrain.figures import compare_figure
from htrain.io import results_arguments, write_atomically, write_text
from htrain.report import PANELS, thresholds_in

SWEEPS = (*PANELS, *(f"{panel}_val" for panel in PANELS), "compare_real")
FULL, REDUCED = "full", "reduced (90%)"


def load(results: Path) -> tuple[pd.DataFrame, list[str]]:
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


def markdown(summary: pd.DataFrame) -> str:
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


def main() -> None:
    args = results_arguments(__doc__, "compare")
    out = args.out
    try:
        outcomes, main_names = load(args.results)
    except (FileNotFoundError, ValueError, KeyError) as error:
        sys.exit(f"error: {error}")
    by_panel = summarise(outcomes, ["training_set", "panel"])
    # pool only the settings (panel, parameters, seed) run on both training sets, so that
    # the two are comparable; panels with one set still appear in summary.csv
    both = outcomes.groupby(["panel", "setting"])["training_set"].transform("nunique") == 2
    paired = outcomes[both] if both.any() else outcomes
    matched = sorted(paired["panel"].unique())
    pooled = summarise(paired, ["training_set"])
    write_atomically(out / "outcomes.csv", lambda tmp: outcomes.to_csv(tmp, index=False))
    pooled_name = "+".join(matched)
    summary = pd.concat([pooled.assign(panel=pooled_name), by_panel], ignore_index=True)
    write_atomically(out / "summary.csv", lambda tmp: summary.to_csv(tmp, index=False))
    heading = (
        f"Pooled: the {len(paired[['panel', 'setting']].drop_duplicates())} settings x seeds of "
        f"{', '.join(matched)} "
        "that were run on both training sets.\n\n"
    )
    write_text(out / "summary.md", heading + markdown(pooled))
    figure = compare_figure(paired, main_names)
    write_atomically(out / "compare.png", lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    print(f"{outcomes['run'].nunique()} runs -> {out}: outcomes.csv, summary.csv/.md, compare.png")


if __name__ == "__main__":
    main()
