"""The paper's real-data tables beside ours: MNIST and CIFAR-10, LeNet, MiniAlexNet and VGG11,
batch sizes 16-256 (``sweep=real``, ``make results-real``).

Reads the collected runs (``results/paper_real``: runs.csv, epochs.csv, spectral.parquet,
esd.parquet) and the same runs collected without K (``results/gap_rule/paper_real``), and
writes one Markdown table: per data set, network and batch size, the paper's C = 0.4 fires on
FC1 / FC2 and final accuracy (``htrain.paper.REAL``; its per-network final accuracy and type,
``REAL_FINAL``, where the table has no row) beside ours: C = 0.4 with K and without, the
bulk-growth rule's stop, the final and the best accuracy, and the final types.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from heavytail.columns import acc_at_fire_column, final_type_column, fire_epoch_column
from htrain.paper import PAPER_LAYERS, REAL_FINAL, format_fire, real_row
from htrain.rules import BulkGrowth
from htrain.stopping import Source, load_source

RULE = "paper_C0.4"
LAYERS = ("fc1", "fc2")  # the layers the paper reports for LeNet and MiniAlexNet (VGG11: fc1)


def _fire(row: pd.Series, layer: str) -> str:
    epoch = row.get(fire_epoch_column(RULE, layer))
    if epoch is None or pd.isna(epoch):
        return "-" if fire_epoch_column(RULE, layer) in row else "n/a"
    return format_fire((int(epoch), 100 * float(row[acc_at_fire_column(RULE, layer)])))


def _pair(row: pd.Series | None, model: str) -> str:
    """FC1 / FC2 fires; a layer the network's run does not monitor (VGG11's fc2) is n/a."""
    if row is None:
        return "n/a"
    return " / ".join(
        _fire(row, layer) if layer in PAPER_LAYERS[model] else "n/a" for layer in LAYERS
    )


def _paper(data: str, model: str, batch: int) -> tuple[str, str, str]:
    """(fires FC1 / FC2, final accuracy, final types) as the paper reports them."""
    row = real_row(data, model, batch)
    final, types = REAL_FINAL[(data, model)]
    if row is None:
        return "not in its table", f"~{final:.0f}%", types
    fires = f"{format_fire(row.fc1)} / {format_fire(row.fc2)}"
    accuracy = "10% (exploded)" if row.final_acc is None else f"{row.final_acc:.2f}%"
    return fires, accuracy, types


def _growth_cell(trajectory, growth: BulkGrowth) -> str:
    """The bulk-growth rule's stop on one run: "epoch : accuracy", "-" (never), "n/a"."""
    if trajectory is None:
        return "n/a"
    decision = growth.decide(trajectory)
    if decision is None:
        return "n/a"
    if decision.stop_epoch is None:
        return "-"
    return f"{decision.stop_epoch} : {100 * trajectory.accuracy(decision.reported_epoch):.2f}%"


def _row(record, epochs: pd.DataFrame, gap, trajectory, growth: BulkGrowth) -> str:
    """One run's row of ``real_table``."""
    run = record["run"]
    data, model = record["data.name"], record["model.name"]
    batch = int(record["train.batch_size"])
    paper_fires, paper_final, paper_types = _paper(data, model, batch)
    metrics = epochs[(epochs["run"] == run) & (epochs["epoch"] >= 1)]
    best = metrics.loc[metrics["test_acc"].idxmax()]
    types = ", ".join(
        str(record.get(final_type_column(layer), "n/a"))
        for layer in LAYERS
        if final_type_column(layer) in record and pd.notna(record[final_type_column(layer)])
    )
    return (
        f"| {data} | {model} | {batch} | {paper_fires} | {_pair(record, model)} | "
        f"{_pair(gap.loc[run], model) if gap is not None and run in gap.index else 'n/a'} | "
        f"{_growth_cell(trajectory, growth)} | {paper_final} | "
        f"{100 * float(record['final_test_acc']):.2f}% | "
        f"{100 * float(best['test_acc']):.2f}% ({int(best['epoch'])}) | {paper_types} | "
        f"{types} |"
    )


def real_table(results: Path, format_test: bool = False) -> str:
    """The Markdown comparison (``format_test``: the runs are tiny files in the real formats,
    which the title says)."""
    folder = results / "paper_real"
    runs = pd.read_csv(folder / "runs.csv")
    gap_path = results / "gap_rule" / "paper_real" / "runs.csv"
    gap = pd.read_csv(gap_path).set_index("run") if gap_path.exists() else None
    epochs = pd.read_csv(folder / "epochs.csv")
    budget = int(runs["epochs_run"].max())
    trajectories = {
        t.run: t for t in load_source(results, Source("paper_real", "real", "large", budget))
    }
    lines = []
    if format_test:
        lines += [
            "**Format test, not a result**: these rows come from tiny files in the real MNIST and",
            "CIFAR-10 formats (tests/test_paper_real.py), run end to end through the same command.",
            "",
        ]
    lines += [
        "| data | network | batch | paper: C=0.4 FC1 / FC2 | ours, K known | ours, K unknown | "
        "ours, bulk growth | paper final | ours final | ours best (epoch) | paper types | "
        "ours types |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {"mnist": 0, "cifar10": 1}
    runs = runs.assign(_order=runs["data.name"].map(order)).sort_values(
        ["_order", "model.name", "train.batch_size"], kind="stable"
    )
    growth = BulkGrowth()
    for _, record in runs.iterrows():
        lines.append(_row(record, epochs, gap, trajectories.get(record["run"]), growth))
    return "\n".join(lines) + "\n"
