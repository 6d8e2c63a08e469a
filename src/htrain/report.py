"""Tables from collected results (results/NAME/runs.csv ...), beside the paper's numbers.

Pure functions: DataFrames in, DataFrames or Markdown text out.  The scripts that read and
write files are scripts/tables.py and scripts/figures.py.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

import heavytail as ht
from heavytail.columns import (
    FINAL_TYPE,
    STOP_EPOCH,
    THRESHOLD,
    acc_at_fire_column,
    final_type_column,
    fire_epoch_column,
    fired_column,
    stop_epoch_column,
)
from htrain.datasets import dataset_entry
from htrain.paper import PAPER_C, PAPER_K, PaperRow, format_fire, paper_rows

NOT_IN_PAPER = "not in the paper"

TYPES = ht.SPECTRUM_TYPES  # LT, BT, HT, RC: the library's order
PANELS = ("nn1_d1", "nn1_d2", "nn2_d1", "nn2_d2")
# a hard, a middle and an easy setting of each panel's paper table: the runs the ESD, s_hat
# and evolution figures show (K = 8, the first seed)
SHOWCASE = {
    "nn1_d1": (0.15, 0.6, 0.9),
    "nn1_d2": (0.24, 2.4, 4.8),
    "nn2_d1": (0.02, 0.13, 0.2),
    "nn2_d2": (1.2, 2.4, 4.8),
}


def panel_column(panel: str) -> str:
    """The config column a paper panel sweeps (nn1_d1 -> data.delta, nn2_d2 -> data.t): the
    mixtures' difficulty parameter, from the data-set registry."""
    return dataset_entry("gmm").difficulty({"kind": panel.rsplit("_", 1)[-1]})


def showcase_runs(runs: pd.DataFrame, panel: str) -> list[str]:
    """The runs of ``SHOWCASE[panel]`` (K = 8, lowest seed) that the table holds."""
    column = panel_column(panel)
    eights = runs[runs["data.K"].astype(int) == PAPER_K]
    eights = eights[eights["seed"] == eights["seed"].min()]
    chosen = []
    for value in SHOWCASE.get(panel, ()):
        chosen += eights.loc[_matches(eights[column], value), "run"].tolist()
    return chosen


def thresholds_in(table: pd.DataFrame) -> list[ht.Threshold]:
    """The rules a collected table holds, in the order they were recorded: from the
    stop_epoch_<rule> columns of runs.csv or the threshold_<rule> columns of spectral tables
    (``heavytail.Threshold`` names them)."""
    names = []
    for column in table.columns:
        for prefix in (STOP_EPOCH, THRESHOLD):
            if column.startswith(prefix) and column.removeprefix(prefix) not in names:
                names.append(column.removeprefix(prefix))
    if not names:
        raise ValueError("the table has no stop_epoch_<rule> or threshold_<rule> columns")
    return [ht.Threshold.from_name(name) for name in names]


def primary_threshold(thresholds: list[ht.Threshold]) -> ht.Threshold:
    """The paper's rule (C = 0.4) when recorded, else the first paper rule, else the first."""
    paper = [rule for rule in thresholds if rule.rule == "paper"]
    for rule in paper:
        if rule.C == PAPER_C:
            return rule
    return (paper or thresholds)[0]


def difficulty_column(runs: pd.DataFrame) -> str:
    """The swept difficulty parameter: delta for D1 mixtures, t for D2."""
    kinds = set(runs["data.kind"].dropna()) if "data.kind" in runs else set()
    if kinds == {"d1"}:
        return "data.delta"
    if kinds == {"d2"}:
        return "data.t"
    raise ValueError(f"runs table mixes or lacks mixture kinds ({sorted(kinds)}): one panel only")


def parameter_label(column: str) -> str:
    return {
        "data.delta": "delta",
        "data.t": "t",
        "data.K": "K",
        "train.batch_size": "batch size",
    }.get(column, column)


def layers_of(runs: pd.DataFrame) -> list[str]:
    """Monitored layers, in the order the runs list them (final_type_<layer> columns that
    some run fills: a table of several models has columns for all their layers)."""
    return [
        c.removeprefix(FINAL_TYPE)
        for c in runs.columns
        if c.startswith(FINAL_TYPE) and (runs[c].notna().any() or runs.empty)
    ]


def type_shares(runs: pd.DataFrame, by: list[str], layer: str) -> pd.DataFrame:
    """Share of runs of each final type of ``layer`` per group of ``by`` (seeds pooled)."""
    column = final_type_column(layer)
    counts = runs.groupby(by)[column].value_counts().unstack(fill_value=0)
    counts = counts.reindex(columns=list(TYPES), fill_value=0)
    totals = counts.sum(axis=1)
    shares = counts.div(totals, axis=0)
    shares["runs"] = totals
    return shares.reset_index()


def _matches(values: pd.Series, value: float) -> pd.Series:
    return np.isclose(values.astype(float), value, rtol=0, atol=1e-9)


def _fire_summary(group: pd.DataFrame, rule: str, layer: str) -> dict:
    """Over the seeds of one setting: how many fired, median fire epoch, mean accuracy then."""
    epochs = group[fire_epoch_column(rule, layer)]
    fired = epochs.notna()
    accs = group.loc[fired, acc_at_fire_column(rule, layer)].astype(float)
    return {
        "fired": int(fired.sum()),
        "seeds": len(group),
        "epoch_median": float(epochs[fired].median()) if fired.any() else math.nan,
        "acc_mean": float(100 * accs.mean()) if fired.any() else math.nan,
    }


def _fire_cell(summary: dict) -> str:
    share = f"({summary['fired']}/{summary['seeds']})"
    if not summary["fired"]:
        return f"- {share}"
    return f"{summary['epoch_median']:g} : {summary['acc_mean']:.2f}% {share}"


def _types_cell(group: pd.DataFrame, layers: list[str]) -> str:
    """Most common final type per layer, with its count when the seeds disagree."""
    cells = []
    for layer in layers:
        counts = group[final_type_column(layer)].value_counts()
        top = counts.index[0]
        cells.append(
            top if counts.iloc[0] == len(group) else f"{top} {counts.iloc[0]}/{len(group)}"
        )
    return ", ".join(cells)


def _table_rows(panel: str, eights: pd.DataFrame, column: str, extra_values: bool) -> list:
    """The paper's rows of ``panel``, with a row per other value run when ``extra_values``."""
    rows = paper_rows(panel)
    if extra_values and len(eights):
        reported = [row.value for row in rows]
        rows += [
            PaperRow(panel, float(value), None, None, ("",) * 2, math.nan, reported=False)
            for value in sorted(eights[column].astype(float).unique())
            if not np.isclose(value, reported, rtol=0, atol=1e-9).any()
        ]
        rows.sort(key=lambda row: row.value)
    return rows


def _layer_cells(group, rule: str, layer: str, tag: str, paper, paper_fire, with_paper) -> dict:
    """One monitored layer's cells: ours (fired, median epoch, mean accuracy) and the paper's."""
    record = {tag: layer}
    if len(group):
        summary = _fire_summary(group, rule, layer)
        record[f"{tag}_fired"] = summary["fired"]
        record[f"{tag}_epoch_median"] = summary["epoch_median"]
        record[f"{tag}_acc_mean"] = summary["acc_mean"]
        record[f"{tag}_ours"] = _fire_cell(summary)
    else:
        record[f"{tag}_ours"] = "not run"
    if with_paper:
        record[f"{tag}_paper"] = format_fire(paper_fire) if paper.reported else NOT_IN_PAPER
        record[f"{tag}_paper_epoch"] = paper_fire[0] if paper_fire else math.nan
        record[f"{tag}_paper_acc"] = paper_fire[1] if paper_fire else math.nan
    return record


def early_stopping_table(
    runs: pd.DataFrame,
    panel: str,
    rule: str,
    layers: list[str] | None = None,
    extra_values: bool = False,
) -> pd.DataFrame:
    """The paper's early-stopping table for one panel: its settings, K = 8, seeds pooled.

    Ours: "epoch : test accuracy (fired/seeds)" with the median fire epoch and the mean
    accuracy then over the seeds that fired; the most common final type per layer; the mean
    final accuracy.  The paper's cells sit beside ours when ``rule`` is its rule (C = 0.4).
    ``layers`` defaults to those the runs monitor; settings without runs read "not run".
    With ``extra_values``, settings that were run but are not in the paper's table get a row
    too, its paper cells "not in the paper".
    """
    column = panel_column(panel)
    layers = layers_of(runs) if layers is None else layers
    with_paper = rule == ht.Threshold("paper", PAPER_C).name
    eights = runs[runs["data.K"].astype(int) == PAPER_K]
    records = []
    for paper in _table_rows(panel, eights, column, extra_values):
        group = eights[_matches(eights[column], paper.value)]
        record = {"panel": panel, "parameter": parameter_label(column), "value": paper.value}
        record["seeds"] = len(group)
        fires = zip(layers, (paper.first, paper.second), strict=False)
        for position, (layer, paper_fire) in enumerate(fires):
            tag = f"layer{position + 1}"
            record.update(_layer_cells(group, rule, layer, tag, paper, paper_fire, with_paper))
        record["final_types_ours"] = _types_cell(group, layers) if len(group) else "not run"
        record["final_acc_ours"] = (
            float(100 * group["final_test_acc"].mean()) if len(group) else math.nan
        )
        record["final_types_paper"] = (
            ", ".join(paper.final_types) if paper.reported else NOT_IN_PAPER
        )
        record["final_acc_paper"] = paper.final_acc
        records.append(record)
    return pd.DataFrame(records)


def markdown_early_stopping(table: pd.DataFrame, rule: str) -> str:
    """The table in the paper's layout, ours and the paper's cells side by side."""
    with_paper = "layer1_paper" in table
    header = ["setting", "parameter", "layer 1 (ours)"]
    header += ["layer 1 (paper)"] if with_paper else []
    header += ["layer 2 (ours)"] + (["layer 2 (paper)"] if with_paper else [])
    header += ["final types (ours)", "final types (paper)", "final acc (ours)"]
    header += ["final acc (paper)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.itertuples():
        cells = [f"{row.panel} ({row.layer1}, {row.layer2})", f"{row.parameter} {row.value:g}"]
        cells.append(row.layer1_ours)
        cells += [row.layer1_paper] if with_paper else []
        cells.append(row.layer2_ours)
        cells += [row.layer2_paper] if with_paper else []
        acc = "not run" if math.isnan(row.final_acc_ours) else f"{row.final_acc_ours:.2f}%"
        paper_acc = (
            NOT_IN_PAPER if math.isnan(row.final_acc_paper) else f"{row.final_acc_paper:.2f}%"
        )
        cells += [row.final_types_ours, row.final_types_paper, acc, paper_acc]
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        f"Rule {rule}. Ours: median epoch : mean test accuracy then (seeds that fired / seeds), "
        f"K = {PAPER_K}."
    )
    if not with_paper:
        note += " The paper reports C = 0.4 only, so its fire columns are absent here."
    return "\n".join([note, "", *lines]) + "\n"


def trend_table(runs: pd.DataFrame, panel: str) -> pd.DataFrame:
    """Figure 2.13 as numbers: share of HT / BT-or-HT final types per difficulty and K."""
    column = difficulty_column(runs)
    records = []
    for (value, k), group in runs.groupby([column, "data.K"]):
        record = {"panel": panel, "parameter": parameter_label(column), "value": value, "K": k}
        for layer in layers_of(runs):
            types = group[final_type_column(layer)]
            record[f"{layer}_HT"] = float((types == "HT").mean())
            record[f"{layer}_BT_or_HT"] = float(types.isin(["BT", "HT"]).mean())
        record["final_acc"] = float(group["final_test_acc"].mean())
        record["runs"] = len(group)
        records.append(record)
    return pd.DataFrame(records)


ACCURACY_BANDS = (0.0, 0.5, 0.9, 0.99, 1.0)


def difficulty_bands(runs: pd.DataFrame, panel: str) -> pd.DataFrame:
    """Runs grouped by how hard they turned out (final test accuracy below 50%, 50-90%,
    90-99%, above 99%): share that each rule fired on, median stop epoch of the paper rule,
    and share whose final spectrum is not LT / is HT in some monitored layer.  The paper's
    claim in one table: harder problems should fire and end heavy-tailed more often."""
    layers = [final_type_column(layer) for layer in layers_of(runs)]
    rules = thresholds_in(runs)
    labels = ["<50%", "50-90%", "90-99%", ">99%"]
    edges = list(ACCURACY_BANDS)
    edges[-1] = 1.0 + 1e-9  # a perfect run belongs to the last band
    band = pd.cut(runs["final_test_acc"], edges, labels=labels, right=True, include_lowest=True)
    frame = pd.DataFrame(
        {
            "band": band,
            "not_LT": (runs[layers] != "LT").any(axis=1),
            "HT": (runs[layers] == "HT").any(axis=1),
            "stop_epoch": runs[stop_epoch_column(primary_threshold(rules).name)],
        }
    )
    for rule in rules:
        frame[fired_column(rule.name)] = runs[stop_epoch_column(rule.name)].notna()
    table = frame.groupby("band", observed=True).agg(
        runs=("not_LT", "size"),
        **{fired_column(rule.name): (fired_column(rule.name), "mean") for rule in rules},
        stop_epoch_median=("stop_epoch", "median"),
        final_not_LT=("not_LT", "mean"),
        final_HT=("HT", "mean"),
    )
    table = table.reset_index()
    table["stop_rule"] = primary_threshold(rules).name
    return table.assign(panel=panel)[["panel", *table.columns]]


def markdown_bands(table: pd.DataFrame) -> str:
    rules = [
        ht.Threshold.from_name(c.removeprefix("fired_")) for c in table if c.startswith("fired_")
    ]
    primary = ht.Threshold.from_name(table["stop_rule"].iloc[0])
    header = ["panel", "final test accuracy", "runs"]
    header += [f"fired {rule.label}" for rule in rules]
    header += [f"median stop epoch ({primary.label})", "final type not LT", "final type HT"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.to_dict("records"):
        stop = row["stop_epoch_median"]
        cells = [
            row["panel"],
            str(row["band"]),
            str(row["runs"]),
            *(f"{100 * row[fired_column(rule.name)]:.0f}%" for rule in rules),
            "-" if math.isnan(stop) else f"{stop:g}",
            f"{100 * row['final_not_LT']:.0f}%",
            f"{100 * row['final_HT']:.0f}%",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
