"""The paper's early-stopping tables at its scale, ours beside its numbers, from collected runs.

``write_paper_tables(results)`` reads results/paper_tables/ (collected from
`sweep=paper_tables profile=paper`: 7,500 samples per class, 250 epochs, K = 8) and, where
they exist, results/paper_tables_k/ (NN1 at K = 2 and 5), results/paper_tables_gpu/ (seeds 0-2
trained on a GPU) and results/gap_rule/ (the same runs replayed without K).  What it writes
is listed in scripts/paper_tables.py, its command.  Trains nothing.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pandas as pd

from heavytail.columns import final_type_column, fire_epoch_column
from htrain import figures as fig
from htrain.io import write_atomically, write_text
from htrain.paper import PAPER_K, PAPER_LAYERS, SYNTHETIC, paper_rows
from htrain.report import (
    PANELS,
    early_stopping_table,
    markdown_early_stopping,
    panel_column,
    primary_threshold,
    thresholds_in,
)

RULE = "paper_C0.4"  # the paper's rule, with its C: the one its tables report
PAPER_WINDOW = 32  # the paper's latest fire in its synthetic tables (NN1 + D1 delta 0.6, fc3)
HEAVINESS = {"LT": 0, "BT": 1, "HT": 2}  # RC (rank collapse) is not on this scale
K_AXIS = (2, 5, PAPER_K)
FINISHED = ("finished", "diverged")


def panel_of(runs: pd.DataFrame) -> pd.Series:
    return runs["model.name"].astype(str) + "_" + runs["data.kind"].astype(str)


def _fired(row, rule: str, layers: list[str]) -> list[int | None]:
    epochs = [row.get(fire_epoch_column(rule, layer)) for layer in layers]
    return [None if pd.isna(e) else int(e) for e in epochs]


def _gap_fired(gap_fires, run: str, layers: list[str]) -> list[int | None] | None:
    """The gap rule's fires of ``run`` (replayed without K), None when not collected."""
    if gap_fires is None or run not in gap_fires.index:
        return None
    return _fired(gap_fires.loc[run], RULE, layers)


def _cell(epochs: list[int | None]) -> str:
    return " / ".join("-" if e is None else str(e) for e in epochs)


def _paper_fires(paper) -> str:
    return _cell([None if f is None else f[0] for f in (paper.first, paper.second)])


def _best(epochs: pd.DataFrame | None, run: str) -> str:
    if epochs is None or not (epochs["run"] == run).any():
        return "not collected"
    accuracy = epochs[epochs["run"] == run].set_index("epoch")["test_acc"]
    return f"{100 * accuracy.max():.2f}% ({int(accuracy.idxmax())})"


def _first(epochs: list[int | None]) -> int | None:
    fired = [e for e in epochs if e is not None]
    return min(fired) if fired else None


def _heaviest(types: list[str]) -> int | None:
    levels = [HEAVINESS.get(t) for t in types]
    return None if None in levels else max(levels)


def _setting_runs(runs: pd.DataFrame, paper) -> pd.DataFrame:
    """The lowest seed's runs of the paper's table row ``paper``."""
    column = panel_column(paper.panel)
    part = runs[
        (runs["panel"] == paper.panel) & (runs[column].astype(float).sub(paper.value).abs() < 1e-9)
    ]
    return part[part["seed"] == part["seed"].min()] if len(part) else part


def _claims_row(paper, part: pd.DataFrame, gap_fires, epochs, counts: dict) -> str:
    """One row of ``claims_table``; adds the row to the claims' ``counts``."""
    setting = f"{paper.panel} {panel_column(paper.panel).split('.')[1]} {paper.value:g}"
    paper_types = ", ".join(paper.final_types)
    if part.empty:
        return (
            f"| {setting} | {_paper_fires(paper)} | not run | not run | not run | {paper_types} "
            f"| not run | {paper.final_acc:.2f}% | not run | not run |"
        )
    row = part.iloc[0]
    layers = PAPER_LAYERS[paper.panel.split("_")[0]]
    ours_04, ours_cal = _fired(row, RULE, layers), _fired(row, "calibrated", layers)
    gap_epochs = _gap_fired(gap_fires, row["run"], layers)
    without_k = "not collected" if gap_epochs is None else _cell(gap_epochs)
    types = [row[final_type_column(layer)] for layer in layers]
    easy = paper.final_acc > 99
    counts["easy" if easy else "hard"] += 1
    counts["easy_fired" if easy else "hard_fired"] += any(e is not None for e in ours_04)
    if easy:
        counts["easy_lt"] += all(t == "LT" for t in types)
    else:
        counts["hard_heavy"] += any(t in ("BT", "HT") for t in types)
        counts["paper_hard_heavy"] += any(t in ("BT", "HT") for t in paper.final_types)
    return (
        f"| {setting} | {_paper_fires(paper)} | {_cell(ours_04)} | {_cell(ours_cal)} "
        f"| {without_k} | {paper_types} "
        f"| {', '.join(types)} | {paper.final_acc:.2f}% | {100 * row['final_test_acc']:.2f}% "
        f"| {_best(epochs, row['run'])} |"
    )


def claims_table(
    runs: pd.DataFrame, gap: pd.DataFrame | None = None, epochs: pd.DataFrame | None = None
) -> str:
    """The paper's two claims, setting by setting (K = 8, the lowest seed), and counted:
    1. the criterion fires early on hard problems and never on easy ones (its table: fires
       on every setting below 99% final accuracy, never above);
    2. final spectra are heavier on harder problems (its table: HT or BT below 99%, LT above).
    ``gap`` (the same runs replayed without K) adds the gap rule's fires: a fire there that is
    gone with K was the class spikes crossing the edge; a fire with K is the bulk deforming.
    ``epochs`` (the per-epoch metrics) adds our best test accuracy and its epoch, what a stop
    can at most keep.
    """
    gap_fires = gap.set_index("run") if gap is not None else None
    runs = runs[runs["data.K"].astype(int) == PAPER_K]  # the paper's tables are K = 8
    lines = [
        "| setting | paper fires (layer 1 / 2) | ours, C = 0.4 | ours, calibrated "
        "| ours without K, C = 0.4 | paper final types | ours | paper final acc | ours "
        "| ours best (epoch) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = ("hard", "hard_fired", "easy", "easy_fired", "hard_heavy", "easy_lt")
    counts = dict.fromkeys((*keys, "paper_hard_heavy"), 0)
    for paper in SYNTHETIC:
        lines.append(_claims_row(paper, _setting_runs(runs, paper), gap_fires, epochs, counts))
    lines += [
        "",
        f"Settings run: {counts['hard']} hard (paper's final accuracy below 99%), "
        f"{counts['easy']} easy.  Claim 1, the rule (C = 0.4, any layer) fires on the hard "
        f"ones and never on the easy ones: fired on {counts['hard_fired']} of {counts['hard']} "
        f"hard settings (paper: all) and on {counts['easy_fired']} of {counts['easy']} easy ones "
        f"(paper: none).  Claim 2, hard settings end heavier than MP: a monitored layer ends BT "
        f"or HT on {counts['hard_heavy']} of {counts['hard']} hard settings (paper: "
        f"{counts['paper_hard_heavy']} of them), and both end LT on {counts['easy_lt']} of "
        f"{counts['easy']} easy ones (paper: all).",
    ]
    return "\n".join(lines) + "\n"


def _settings(runs: pd.DataFrame, panels):
    """(panel, swept column, value, that setting's runs) for every value run, panel by panel."""
    for panel in panels:
        column = panel_column(panel)
        mine = runs[runs["panel"] == panel]
        for value in sorted(mine[column].astype(float).unique()):
            yield panel, column, value, mine[mine[column].astype(float).sub(value).abs() < 1e-9]


def _count(tally: list[int], epochs: list[int | None]) -> None:
    """[fired by the paper's window, fired at all, runs] += this run."""
    first = _first(epochs)
    tally[0] += first is not None and first <= PAPER_WINDOW
    tally[1] += first is not None
    tally[2] += 1


def _seeds_row(part, paper, panel, column, value, gap_fires, epochs, pairs) -> str:
    """One setting's row of ``seeds_table``; adds its (setting, seed) pairs to ``pairs``.
    Hard or easy by the paper's final accuracy (99%), by ours where the paper has no row."""
    layers = PAPER_LAYERS[panel.split("_")[0]]
    if paper is not None:
        easy = paper.final_acc > 99
        paper_fires = _paper_fires(paper)
    else:
        easy = float(part["final_test_acc"].median()) > 0.99
        paper_fires = "not in the paper"
    band = "easy" if easy else "hard"
    with_k, calibrated, without_k, best = [], [], [], []
    for _, record in part.iterrows():
        fires = _fired(record, RULE, layers)
        with_k.append(_cell(fires))
        calibrated.append(_cell(_fired(record, "calibrated", layers)))
        _count(pairs[(band, "k")], fires)
        gap_epochs = _gap_fired(gap_fires, record["run"], layers)
        if gap_epochs is None:
            without_k.append("not collected")
        else:
            without_k.append(_cell(gap_epochs))
            _count(pairs[(band, "gap")], gap_epochs)
        best.append(_best(epochs, record["run"]))
    span = sorted({int(e) for e in part["epochs_run"]})
    epochs_run = f"{span[0]}-{span[-1]}" if len(span) > 1 else str(span[0])
    return (
        f"| {panel} {column.split('.')[1]} {value:g} | {paper_fires} "
        f"| {', '.join(str(int(seed)) for seed in part['seed'])} | {epochs_run} "
        f"| {'; '.join(with_k)} | {'; '.join(calibrated)} | {'; '.join(without_k)} "
        f"| {'; '.join(best)} |"
    )


def seeds_table(runs: pd.DataFrame, gap: pd.DataFrame | None, epochs: pd.DataFrame) -> str:
    """Claim 1 over seeds: per setting, each seed's fires (first / second monitored layer)
    with K (C = 0.4, calibrated) and without K (C = 0.4), and its best test accuracy, all up
    to the epochs the run has (a fire cannot move; "-" means not by then).  Counted: the
    (setting, seed) pairs that fire within the paper's window of epochs (its latest fire is
    at epoch 32), on hard settings (the paper's final accuracy below 99%) and easy ones."""
    gap_fires = gap.set_index("run") if gap is not None else None
    runs = runs[runs["data.K"].astype(int) == PAPER_K]  # the paper's tables are K = 8
    lines = [
        "| setting | paper fires | seeds | epochs run | with K, C = 0.4 | with K, calibrated "
        "| without K, C = 0.4 | best test acc (epoch) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    # (setting, seed) pairs per band and rule: [fired by the window, fired at all, runs]
    pairs = {(band, rule): [0, 0, 0] for band in ("hard", "easy") for rule in ("k", "gap")}
    for panel, column, value, part in _settings(runs, PANELS):
        paper = next((r for r in paper_rows(panel) if abs(r.value - value) < 1e-9), None)
        part = part.sort_values("seed")
        lines.append(_seeds_row(part, paper, panel, column, value, gap_fires, epochs, pairs))
    count = {key: f"{early} ({ever}) of {total}" for key, (early, ever, total) in pairs.items()}
    lines += [
        "",
        "Cells list the seeds in order, each as first / second monitored layer (NN1: fc2 / fc3, "
        'NN2: fc1 / fc2); "-" is no fire by the last epoch run.  Fired within the paper\'s '
        f"window (by epoch {PAPER_WINDOW}; in brackets: by the last epoch run), any layer, "
        f"C = 0.4: with K on {count[('hard', 'k')]} hard (setting, seed) pairs and "
        f"{count[('easy', 'k')]} easy ones; without K on {count[('hard', 'gap')]} hard and "
        f"{count[('easy', 'gap')]} easy ones (the paper: every hard setting, no easy one).",
    ]
    return "\n".join(lines) + "\n"


def gpu_vs_cpu_table(gpu_runs, gpu_epochs, cpu_runs, cpu_epochs) -> str:
    """The same runs (same name: same config and seed) trained on the GPU and on the CPU,
    over the epochs both have: the largest test-accuracy difference and the fires."""
    lines = [
        "| run | setting | epochs compared | max abs test acc difference | test acc at the last "
        "(CPU, GPU) | with K, C = 0.4, CPU | GPU |",
        "|---|---|---|---|---|---|---|",
    ]
    cpu_by_run, gpu_by_run = cpu_runs.set_index("run"), gpu_runs.set_index("run")
    for run in sorted(set(gpu_by_run.index) & set(cpu_by_run.index)):
        cpu_row, gpu_row = cpu_by_run.loc[run], gpu_by_run.loc[run]
        model = str(cpu_row["model.name"])
        layers = PAPER_LAYERS[model]
        last = int(min(cpu_row["epochs_run"], gpu_row["epochs_run"]))
        a = cpu_epochs[cpu_epochs["run"] == run].set_index("epoch")["test_acc"].loc[:last]
        b = gpu_epochs[gpu_epochs["run"] == run].set_index("epoch")["test_acc"].loc[:last]
        column = panel_column(f"{model}_{cpu_row['data.kind']}")
        cpu_fires = [None if e is None or e > last else e for e in _fired(cpu_row, RULE, layers)]
        gpu_fires = _fired(gpu_row, RULE, layers)
        lines.append(
            f"| {run} | {model}_{cpu_row['data.kind']} {column.split('.')[1]} "
            f"{float(cpu_row[column]):g} | 0-{last} | {100 * (a - b).abs().max():.2f} points "
            f"| {100 * a.iloc[-1]:.2f}%, {100 * b.iloc[-1]:.2f}% | {_cell(cpu_fires)} "
            f"| {_cell(gpu_fires)} |"
        )
    return "\n".join(lines) + "\n"


def _k_cell(at_k: pd.DataFrame, layers, gap_fires) -> tuple[str, int | None]:
    """One K's cell of ``k_axis_table`` and the heavier of its final types."""
    if at_k.empty:
        return "not run", None
    row = at_k.sort_values("seed").iloc[0]
    types = [str(row[final_type_column(layer)]) for layer in layers]
    fires = _cell(_fired(row, RULE, layers))
    gap_epochs = _gap_fired(gap_fires, row["run"], layers)
    if gap_epochs is not None:
        fires += f" ({_cell(gap_epochs)})"
    return f"{', '.join(types)}, {100 * row['final_test_acc']:.2f}%, {fires}", _heaviest(types)


def k_axis_table(runs: pd.DataFrame, gap: pd.DataFrame | None = None) -> str:
    """Figure 2.13's K axis: NN1's table settings at K = 2, 5 and 8 (the lowest seed), each
    K's final types (fc2, fc3), final test accuracy and fires at C = 0.4 with K (and without
    K: the gap rule), "not run" where a run is missing.  The paper: more classes, heavier
    spectra.  Counted over the settings run at two K or more: the heavier of the two final
    types never gets lighter as K grows, and is heavier at the largest K than the smallest."""
    gap_fires = gap.set_index("run") if gap is not None else None
    runs = runs[runs["model.name"] == "nn1"]
    header = " | ".join(f"K = {k}: types, acc, fires (without K)" for k in K_AXIS)
    lines = [f"| setting | {header} |", "|---|" + "---|" * len(K_AXIS)]
    compared = monotone = heavier = 0
    for panel, column, value, part in _settings(runs, ("nn1_d1", "nn1_d2")):
        cells = [
            _k_cell(part[part["data.K"].astype(int) == K], PAPER_LAYERS["nn1"], gap_fires)
            for K in K_AXIS
        ]
        have = [level for _, level in cells if level is not None]
        if len(have) >= 2:
            compared += 1
            monotone += all(a <= b for a, b in pairwise(have))
            heavier += have[-1] > have[0]
        row = " | ".join(cell for cell, _ in cells)
        lines.append(f"| {panel} {column.split('.')[1]} {value:g} | {row} |")
    lines += [
        "",
        "Final types are fc2, fc3 at the end of 250 epochs; fires are the C = 0.4 rule's epochs "
        '(fc2 / fc3, "-" never), with K and, in brackets, without K.  Over the K run, on the '
        f"{compared} settings run at two K or more: the heavier of the two final types never "
        f"gets lighter as K grows on {monotone} of them, and is heavier at the largest K than "
        f"at the smallest on {heavier} (the paper: more classes, heavier spectra).",
    ]
    return "\n".join(lines) + "\n"


def save(figure, path: Path) -> None:
    fig.save(figure, path, dpi=90)


def _read_runs(folder: Path, finished_only: bool = True) -> pd.DataFrame:
    runs = pd.read_csv(folder / "runs.csv")
    if finished_only:
        runs = runs[runs["status"].isin(FINISHED)]
    return runs.assign(panel=panel_of(runs))


def _read_gaps(*paths: Path) -> pd.DataFrame | None:
    gaps = [pd.read_csv(path) for path in paths if path.exists()]
    return pd.concat(gaps, ignore_index=True) if gaps else None


def write_rule_tables(runs: pd.DataFrame, tables_dir: Path) -> None:
    """paper_tables_<rule>.md/.csv: per setting and layer, each recorded rule's fire."""
    for rule in thresholds_in(runs):
        parts = []
        for panel in PANELS:
            part = runs[runs["panel"] == panel]
            layers = PAPER_LAYERS[panel.split("_")[0]]
            parts.append(early_stopping_table(part, panel, rule.name, layers, extra_values=True))
        table = pd.concat(parts, ignore_index=True)
        stem = tables_dir / f"paper_tables_{rule.name}"
        write_atomically(Path(f"{stem}.csv"), lambda tmp, t=table: t.to_csv(tmp, index=False))
        write_text(Path(f"{stem}.md"), markdown_early_stopping(table, rule.name))
        print(f"wrote {stem}.md and .csv")


def write_seed_tables(results: Path, runs: pd.DataFrame, epochs: pd.DataFrame) -> None:
    """paper_fires_seeds.md, paper_gpu_vs_cpu.md and NN2's seed-0 s_hat with and without K,
    from results/paper_tables_gpu/ (collected with --partial: runs may stop short)."""
    gpu, tables_dir = results / "paper_tables_gpu", results / "tables"
    gpu_runs = _read_runs(gpu, finished_only=False)
    gpu_epochs = pd.read_csv(gpu / "epochs.csv")
    gpu_gap = results / "gap_rule" / "paper_tables_gpu" / "runs.csv"
    write_text(
        tables_dir / "paper_fires_seeds.md", seeds_table(gpu_runs, _read_gaps(gpu_gap), gpu_epochs)
    )
    write_text(
        tables_dir / "paper_gpu_vs_cpu.md", gpu_vs_cpu_table(gpu_runs, gpu_epochs, runs, epochs)
    )
    print(f"wrote {tables_dir}/paper_fires_seeds.md and paper_gpu_vs_cpu.md")
    # s_hat of NN2's seed 0 with K and without (gap rule): its early transients
    spectra = {"": pd.read_parquet(gpu / "spectral.parquet")}
    gap_spectral = gpu_gap.parent / "spectral.parquet"
    if gap_spectral.exists():
        spectra["_gap"] = pd.read_parquet(gap_spectral)
    for panel in ("nn2_d1", "nn2_d2"):
        part = gpu_runs[(gpu_runs["panel"] == panel) & (gpu_runs["seed"] == 0)]
        if part.empty:
            continue
        for suffix, table in spectra.items():
            save(
                fig.shat_figure(table, gpu_epochs, part, part["run"].tolist()),
                results / "figures" / f"paper_tables_gpu_shat_{panel}{suffix}.png",
            )


def _esd_epochs(part: pd.DataFrame, chosen: list[str], rule: str, layer: str) -> dict:
    """Per run, the epochs its ESD figure shows: 0, the rule's first fire, 50 and the last."""
    per_run = {}
    for run in chosen:
        row = part.set_index("run").loc[run]
        fired = row.get(fire_epoch_column(rule, layer))
        last = int(row["epochs_run"])
        marks = [0, int(fired) if pd.notna(fired) else None, 50, last]
        per_run[run] = [e for e in marks if e is not None and e <= last]
    return per_run


def write_figures(folder: Path, figures_dir: Path, runs: pd.DataFrame, epochs) -> None:
    """paper_tables_shat_<panel>.png and paper_tables_esd_<panel>_<layer>.png (lowest seed)."""
    spectral = pd.read_parquet(folder / "spectral.parquet")
    esd = pd.read_parquet(folder / "esd.parquet") if (folder / "esd.parquet").exists() else None
    primary = primary_threshold(thresholds_in(runs)).name
    for panel in PANELS:
        part = runs[runs["panel"] == panel]
        if part.empty:
            continue
        chosen = part.loc[part["seed"] == part["seed"].min(), "run"].tolist()
        save(
            fig.shat_figure(spectral, epochs, part, chosen),
            figures_dir / f"paper_tables_shat_{panel}.png",
        )
        if esd is None:
            continue
        mine = esd[esd["run"].isin(chosen)]
        for layer in PAPER_LAYERS[panel.split("_")[0]]:
            save(
                fig.esd_panels(
                    mine, spectral, part, layer, _esd_epochs(part, chosen, primary, layer)
                ),
                figures_dir / f"paper_tables_esd_{panel}_{layer}.png",
            )


def write_paper_tables(results: Path) -> None:
    """Every table and figure of scripts/paper_tables.py from the collections in ``results``;
    FileNotFoundError in one line when results/paper_tables/runs.csv is missing."""
    folder = results / "paper_tables"
    if not (folder / "runs.csv").exists():
        raise FileNotFoundError(f"no {folder / 'runs.csv'}: collect the paper_tables sweep first")
    runs = _read_runs(folder)
    tables_dir = results / "tables"
    write_rule_tables(runs, tables_dir)
    gap_path = results / "gap_rule" / "paper_tables" / "runs.csv"
    epochs = pd.read_csv(folder / "epochs.csv")
    write_text(tables_dir / "paper_claims.md", claims_table(runs, _read_gaps(gap_path), epochs))
    print(f"wrote {tables_dir}/paper_claims.md")
    k_axis = results / "paper_tables_k"
    if (k_axis / "runs.csv").exists():
        both = pd.concat([runs, _read_runs(k_axis)], ignore_index=True)
        gaps = _read_gaps(gap_path, results / "gap_rule" / "paper_tables_k" / "runs.csv")
        write_text(tables_dir / "paper_k_axis.md", k_axis_table(both, gaps))
        print(f"wrote {tables_dir}/paper_k_axis.md")
    if (results / "paper_tables_gpu" / "runs.csv").exists():
        write_seed_tables(results, runs, epochs)
    write_figures(folder, results / "figures", runs, epochs)
