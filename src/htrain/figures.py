"""Figures from collected tables: DataFrames in, matplotlib Figures out (no pyplot).

Each function draws one of the paper's figures, or one this repository adds, from the tidy
tables that scripts/collect.py writes.  The last section (``panel_figures``, ``save``) reads
a collection's tables and writes its figures, for scripts/figures.py and the paper tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import heavytail as ht
from heavytail.columns import FINAL_TYPE, threshold_column
from heavytail.viz import plot_esd
from htrain.datasets import n_classes_of_row
from htrain.io import write_atomically
from htrain.report import (
    SHOWCASE,
    TYPES,
    difficulty_column,
    layers_of,
    parameter_label,
    showcase_runs,
    thresholds_in,
    type_shares,
)

TYPE_COLOURS = {"LT": "tab:green", "BT": "tab:orange", "HT": "tab:red", "RC": "0.4"}
PAPER_RULE_STYLES = (":", "-.", (0, (1, 3)), (0, (5, 1, 1, 1)))


def rule_styles(thresholds: list[ht.Threshold]) -> dict[str, object]:
    """A line style per rule: the registry's (dashed for the calibrated rule), else the
    next of PAPER_RULE_STYLES (the paper's rules, one per C)."""
    styles, paper = {}, iter(PAPER_RULE_STYLES * 4)
    for rule in thresholds:
        styles[rule.name] = rule.kind.line_style or next(paper)
    return styles


def describe_styles(styles: dict[str, object]) -> str:
    words = {":": "dotted", "-.": "dash-dot", "--": "dashed"}
    return ", ".join(
        f"{words.get(style, 'fine')} {ht.Threshold.from_name(name).label}"
        for name, style in styles.items()
        if isinstance(style, str)
    )


def run_label(runs: pd.DataFrame, run: str) -> str:
    """ "delta 0.15, K 8, seed 0" for a run of a panel (the keys that identify it)."""
    row = runs.set_index("run").loc[run]
    parts = []
    for column in ("data.delta", "data.t", "data.K", "train.batch_size", "seed"):
        if column in row and pd.notna(row[column]):
            name = {"data.K": "K", "train.batch_size": "B"}.get(column, parameter_label(column))
            parts.append(f"{name} {row[column]:g}")
    return ", ".join(parts)


def types_figure(runs: pd.DataFrame, x: str, facet: str, title: str) -> Figure:
    """Share of final spectrum types against the difficulty ``x``, one column per value of
    ``facet`` (K: the paper's Figure 2.13; batch size: its Figure 2.14), one row per layer.
    Bars stack the share of seeds of each type, so 1/3 steps mean one seed of three."""
    layers = layers_of(runs)
    facets = sorted(runs[facet].dropna().unique())
    figure = Figure(figsize=(3.6 * len(facets), 2.6 * len(layers)), layout="constrained")
    axes = figure.subplots(len(layers), len(facets), squeeze=False, sharex=True, sharey=True)
    values = sorted(runs[x].dropna().astype(float).unique())
    positions = {value: index for index, value in enumerate(values)}
    for row, layer in enumerate(layers):
        shares = type_shares(runs, [facet, x], layer)
        for col, facet_value in enumerate(facets):
            ax = axes[row, col]
            part = shares[shares[facet] == facet_value]
            where = part[x].astype(float).map(positions).to_numpy()
            bottom = np.zeros(len(part))
            for kind in TYPES:
                height = part[kind].to_numpy()
                if height.any():
                    ax.bar(where, height, bottom=bottom, color=TYPE_COLOURS[kind], label=kind)
                bottom += height
            ax.set_title(f"{layer}, {parameter_label(facet)} = {facet_value:g}", fontsize=9)
            ax.set_xticks(range(len(values)), [f"{v:g}" for v in values], fontsize=7)
            ax.set_ylim(0, 1)
            if col == 0:
                ax.set_ylabel("share of runs")
            if row == len(layers) - 1:
                ax.set_xlabel(parameter_label(x) + " (larger = easier)")
    handles = [
        _patch(TYPE_COLOURS[kind], kind)
        for kind in TYPES
        if kind in set(runs.filter(like=FINAL_TYPE).stack())
    ]
    figure.legend(handles=handles, loc="outside right upper", fontsize=8)
    figure.suptitle(title, fontsize=10)
    return figure


def _patch(colour: str, label: str):
    from matplotlib.patches import Patch

    return Patch(color=colour, label=label)


def null_figure(null: pd.DataFrame) -> Figure:
    """The paper's Figure 3.1, extended: the scaled statistic s_hat n^(1/3)/sqrt(ln n) on
    pure-noise spectra per (c, n), against the paper rule's constant thresholds C = 0.4 and
    0.6 and the calibrated threshold (99.9% null quantile, per n) in the same units."""
    ratios = sorted(null["c"].unique())
    figure = Figure(figsize=(3.2 * len(ratios), 3.2), layout="constrained")
    axes = figure.subplots(1, len(ratios), squeeze=False, sharey=True)[0]
    for ax, ratio in zip(axes, ratios, strict=True):
        part = null[null["c"] == ratio]
        sizes = sorted(part["n"].unique())
        ax.boxplot(
            [part.loc[part["n"] == n, "scaled"].to_numpy() for n in sizes],
            tick_labels=[str(n) for n in sizes],
            widths=0.5,
        )
        for C, style in ((0.4, ":"), (0.6, "-.")):
            ax.axhline(C, color="tab:red", ls=style, lw=1, label=f"paper C = {C}")
        calibrated = part.groupby("n")["calibrated_scaled"].first().reindex(sizes)
        ax.plot(
            range(1, len(sizes) + 1),
            calibrated.to_numpy(),
            "s--",
            color="tab:blue",
            ms=4,
            lw=1,
            label="calibrated (99.9%)",
        )
        ax.set_title(f"c = {ratio:g}", fontsize=9)
        ax.set_xlabel("n")
        ax.tick_params(axis="x", labelsize=7)
    axes[0].set_ylabel("s_hat n^(1/3) / sqrt(ln n)")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, fontsize=7, loc="outside right upper")
    draws = int(null.groupby(["c", "n"]).size().min())
    figure.suptitle(f"Statistic on Gaussian (MP) spectra, {draws} draws per cell", fontsize=10)
    return figure


def _spectra(esd: pd.DataFrame, run: str, layer: str) -> dict[int, np.ndarray]:
    part = esd[(esd["run"] == run) & (esd["layer"] == layer)]
    return {
        int(epoch): group["eigenvalue"].to_numpy(dtype=np.float64)
        for epoch, group in part.groupby("epoch")
    }


def n_classes_of(runs: pd.DataFrame, run: str) -> int | None:
    """K of a run's problem, as the spike rule was given it (``htrain.datasets``: data.K of
    a mixture)."""
    return n_classes_of_row(runs.set_index("run").loc[run])


def esd_panels(
    esd: pd.DataFrame,
    spectral: pd.DataFrame,
    runs: pd.DataFrame,
    layer: str,
    epochs: list[int] | dict[str, list[int]],
) -> Figure:
    """Histogram of the eigenvalues, the MP fit over the bulk, the spikes, and the type with
    s_hat against the calibrated threshold: one row per run in ``esd``, one column per epoch
    (the style of the paper's Figures 2.1-2.12).  ``epochs`` is one list for every run or a
    list per run; epochs a run did not reach are left blank."""
    chosen = sorted(esd["run"].unique(), key=lambda r: _difficulty_key(runs, r))
    per_run = epochs if isinstance(epochs, dict) else dict.fromkeys(chosen, epochs)
    columns = max(len(per_run.get(run, [])) for run in chosen)
    figure = Figure(figsize=(3.4 * columns, 2.8 * len(chosen)), layout="constrained")
    axes = figure.subplots(len(chosen), columns, squeeze=False)
    for row, run in enumerate(chosen):
        spectra = _spectra(esd, run, layer)
        ratio = spectral.loc[(spectral["run"] == run) & (spectral["layer"] == layer), "ratio"].iloc[
            0
        ]
        wanted = list(per_run.get(run, []))
        for col in range(columns):
            ax = axes[row, col]
            epoch = wanted[col] if col < len(wanted) else None
            if epoch not in spectra:
                ax.set_axis_off()
                continue
            result = ht.classify(
                spectra[epoch],
                threshold="calibrated",
                ratio=float(ratio),
                n_classes=n_classes_of(runs, run),
            )
            plot_esd(ax, spectra[epoch], result, title=f"{run_label(runs, run)}\nepoch {epoch}")
            ax.title.set_fontsize(7)
            ax.xaxis.label.set_fontsize(7)
            ax.tick_params(labelsize=6)
    figure.suptitle(f"ESD of {layer} against its MP fit", fontsize=10)
    return figure


def _difficulty_key(runs: pd.DataFrame, run: str) -> tuple:
    row = runs.set_index("run").loc[run]
    return tuple(
        float(row[c])
        for c in ("data.delta", "data.t", "data.K", "seed")
        if c in row and pd.notna(row[c])
    )


def shat_figure(
    spectral: pd.DataFrame, epochs: pd.DataFrame, runs: pd.DataFrame, chosen: list[str]
) -> Figure:
    """s_hat per layer over the epochs against the three thresholds, test accuracy on a
    second axis: one panel per chosen run (beyond the paper, which shows only end points)."""
    chosen = sorted(chosen, key=lambda r: _difficulty_key(runs, r))
    figure = Figure(figsize=(4.2 * len(chosen), 3.2), layout="constrained")
    axes = figure.subplots(1, len(chosen), squeeze=False)[0]
    colours = ("tab:blue", "tab:purple", "tab:brown")
    styles = rule_styles(thresholds_in(spectral))
    for ax, run in zip(axes, chosen, strict=True):
        part = spectral[spectral["run"] == run]
        for colour, (layer, rows) in zip(colours, part.groupby("layer", sort=False), strict=False):
            ax.plot(rows["epoch"], rows["s_hat"], color=colour, lw=1.5, label=f"{layer} s_hat")
            for rule, style in styles.items():
                column = threshold_column(rule)
                if column in rows:
                    ax.plot(rows["epoch"], rows[column], color=colour, ls=style, lw=0.9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("s_hat and thresholds")
        ax.set_title(run_label(runs, run), fontsize=9)
        accuracy = epochs[epochs["run"] == run]
        twin = ax.twinx()
        twin.plot(accuracy["epoch"], accuracy["test_acc"], color="0.3", lw=1, alpha=0.7)
        twin.set_ylim(0, 1)
        twin.set_ylabel("test accuracy (grey)")
    axes[0].legend(fontsize=6, loc="upper left")
    figure.suptitle(
        f"Spectral statistic over training ({describe_styles(styles)})",
        fontsize=9,
    )
    return figure


def evolution_figure(esd: pd.DataFrame, runs: pd.DataFrame, layer: str, bins: int = 60) -> Figure:
    """The ESD over epochs as a heatmap: log10 of the eigenvalue over that epoch's median
    (scale-free, so the shape, not the growth of the weights, shows), density in colour."""
    chosen = sorted(esd["run"].unique(), key=lambda r: _difficulty_key(runs, r))
    figure = Figure(figsize=(4.0 * len(chosen), 3.2), layout="constrained")
    axes = figure.subplots(1, len(chosen), squeeze=False, sharey=True)[0]
    spectra = {run: _spectra(esd, run, layer) for run in chosen}
    logs = {
        run: {e: np.log10(np.maximum(v, 1e-300) / np.median(v)) for e, v in by_epoch.items()}
        for run, by_epoch in spectra.items()
    }
    low = min(np.percentile(v, 2) for by in logs.values() for v in by.values())
    high = max(v.max() for by in logs.values() for v in by.values())
    edges = np.linspace(low, high, bins + 1)
    image = None
    for ax, run in zip(axes, chosen, strict=True):
        ordered = sorted(logs[run])
        density = np.stack(
            [np.histogram(logs[run][e], bins=edges, density=True)[0] for e in ordered]
        )
        image = ax.imshow(
            np.log10(density.T + 1e-3),
            origin="lower",
            aspect="auto",
            extent=(ordered[0] - 0.5, ordered[-1] + 0.5, edges[0], edges[-1]),
            cmap="viridis",
        )
        ax.set_title(run_label(runs, run), fontsize=9)
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("log10(eigenvalue / median)")
    if image is not None:
        figure.colorbar(image, ax=axes[-1], label="log10 density")
    figure.suptitle(f"ESD of {layer} over training", fontsize=10)
    return figure


def compare_figure(outcomes: pd.DataFrame, rules: list[str]) -> Figure:
    """Accuracy lost against the best epoch in hindsight versus epochs saved, one point per
    run and rule, one panel per training set (issue: spectral against validation stopping)."""
    sets = list(dict.fromkeys(outcomes["training_set"]))
    figure = Figure(figsize=(5.0 * len(sets), 4.0), layout="constrained")
    axes = figure.subplots(1, len(sets), squeeze=False, sharey=True)[0]
    colours = dict(
        zip(
            rules,
            (
                "tab:blue",
                "tab:cyan",
                "tab:purple",
                "tab:orange",
                "tab:red",
                "0.3",
                "tab:green",
                "tab:olive",
            ),
            strict=False,
        )
    )
    rng = np.random.default_rng(0)  # jitter only, so overlapping runs stay visible
    for ax, training_set in zip(axes, sets, strict=True):
        part = outcomes[outcomes["training_set"] == training_set]
        for rule in rules:
            points = part[part["rule"] == rule]
            if points.empty:
                continue
            jitter = rng.uniform(-0.3, 0.3, len(points))
            ax.scatter(
                points["epochs_saved"] + jitter,
                100 * points["lost_vs_best"],
                s=9,
                alpha=0.55,
                color=colours[rule],
                label=f"{rule} ({len(points)})",
            )
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xlabel("epochs saved (last epoch - stop epoch)")
        ax.set_title(f"training set: {training_set}", fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    axes[0].set_ylabel("test accuracy lost vs best epoch (points)")
    figure.suptitle("Stopping rules on the same runs: cost against savings", fontsize=10)
    return figure


def sensitivity_figure(table: pd.DataFrame) -> Figure:
    """The bulk-growth rule's z against mean lost (points) and mean saved, one line per part
    and regime (``htrain.stopping.sensitivity``'s table)."""
    figure = Figure(figsize=(9, 3.6), layout="tight")
    lost_ax, saved_ax = figure.subplots(1, 2)
    for (part, regime), rows in table.groupby(["part", "regime"], sort=False):
        style = "-" if part == "dev" else "--"
        label = f"{part}, {regime} data ({int(rows['runs'].max())} runs)"
        lost_ax.plot(rows["z"], rows["lost_mean"], style, marker="o", label=label)
        saved_ax.plot(rows["z"], 100 * rows["saved_mean"], style, marker="o", label=label)
    for ax, ylabel in ((lost_ax, "mean lost vs best (points)"), (saved_ax, "epochs saved (%)")):
        ax.set_xscale("symlog", linthresh=0.25)
        ax.set_xlabel("z (growth threshold z / n)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    lost_ax.legend(fontsize=7)
    return figure


# ------------------------------------------------ files: the figures of scripts/figures.py


def save(figure, path: Path, dpi: int = 100) -> None:
    """Write ``figure`` as a PNG atomically and say so."""
    write_atomically(path, lambda tmp: figure.savefig(tmp, dpi=dpi, format="png"))
    print(f"wrote {path}")


def read_runs(folder: Path) -> pd.DataFrame:
    """A collection's runs.csv, with the columns the figures need (ValueError otherwise)."""
    runs = pd.read_csv(folder / "runs.csv")
    needed = {"run", "data.kind", "data.K", "final_test_acc"}
    missing = needed - set(runs.columns)
    if missing:
        raise ValueError(
            f"{folder / 'runs.csv'} lacks {sorted(missing)}: re-run scripts/collect.py"
        )
    return runs


def panel_figures(
    name: str, folder: Path, out: Path, wanted: set[str], esd_epochs: list[int] | None = None
) -> None:
    """The ``wanted`` figures of one collected panel (scripts/figures.py), written to ``out``."""
    runs = read_runs(folder)
    if "types" in wanted:
        title = f"{name}: final spectrum type per layer ({len(runs)} runs, seeds pooled)"
        save(
            types_figure(runs, difficulty_column(runs), "data.K", title),
            out / f"types_{name}.png",
        )
    showcase = {"esd", "shat", "evolution"} & wanted
    if not showcase:
        return
    if not (folder / "esd.parquet").exists():
        print(f"skip {name}: no esd.parquet (collect with --esd to keep eigenvalues)")
        return
    esd = pd.read_parquet(folder / "esd.parquet")
    chosen = showcase_runs(runs, name)
    esd = esd[esd["run"].isin(chosen)]
    if esd.empty:
        print(f"skip {name}: esd.parquet holds none of the showcase runs {SHOWCASE.get(name)}")
        return
    spectral = pd.read_parquet(folder / "spectral.parquet")
    layers = list(dict.fromkeys(esd["layer"]))
    if "esd" in wanted:
        last = int(esd["epoch"].max())
        epochs = esd_epochs or sorted({0, min(5, last), min(20, last), last})
        for layer in layers:
            save(esd_panels(esd, spectral, runs, layer, epochs), out / f"esd_{name}_{layer}.png")
    if "shat" in wanted:
        epochs_table = pd.read_csv(folder / "epochs.csv")
        save(shat_figure(spectral, epochs_table, runs, chosen), out / f"shat_{name}.png")
    if "evolution" in wanted:
        for layer in layers:
            save(evolution_figure(esd, runs, layer), out / f"evolution_{name}_{layer}.png")
