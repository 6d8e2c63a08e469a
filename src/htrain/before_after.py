"""The spike rule that knows K against the gap rule, on the same quick-profile runs.

"Before" is every run replayed without K (results/gap_rule/<sweep>/, collected with
`scripts/collect.py --n-classes none`), "after" with K (results/<sweep>/): the same
trajectories, two analyses.  Per panel: how often the paper's rule (C = 0.4) and the
calibrated rule fire on runs that end above 99% test accuracy, the test accuracy lost against
the best epoch and the epochs saved when each stops the run, and the share of runs whose final
spectrum is not LT / is HT per band of final test accuracy.  Its command is
scripts/before_after.py.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from htrain.compare import evaluate_runs
from htrain.io import write_atomically, write_text
from htrain.report import PANELS, difficulty_bands
from htrain.rules import EASY_ACCURACY, ThresholdReplay

WITHOUT_K, WITH_K = "without K (gap rule)", "with K"

RULES = (ThresholdReplay("C=0.4", "paper_C0.4"), ThresholdReplay("calibrated", "calibrated"))


def outcomes(folder: Path, spectral_folder: Path) -> pd.DataFrame:
    epochs = pd.read_csv(folder / "epochs.csv")
    spectral = pd.read_parquet(spectral_folder / "spectral.parquet")
    return evaluate_runs(epochs, spectral, RULES)


def stopping_summary(outcomes_: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """One row per group of ``by`` (in order of appearance): runs, fires, fires on easy runs,
    mean test accuracy lost against the best epoch (points) and mean epochs saved."""
    records = []
    for keys, rows in outcomes_.groupby(by, sort=False):
        easy = rows[rows["easy"]]
        records.append(
            {
                **dict(zip(by, keys, strict=True)),
                "runs": len(rows),
                "fired": int(rows["fired"].sum()),
                "fired on easy runs": f"{int(easy['fired'].sum())}/{len(easy)}",
                "lost vs best (points)": round(100 * rows["lost_vs_best"].mean(), 2),
                "epochs saved": round(rows["epochs_saved"].mean(), 1),
            }
        )
    return pd.DataFrame(records)


def pooled_markdown(outcomes_: pd.DataFrame, shares: pd.DataFrame) -> str:
    """The README's short version: every panel's runs pooled, one row per spike rule and
    stopping rule, then the final types per band of final test accuracy (shares weighted by
    each panel's runs, since the panels monitor differently named layers)."""
    pooled = stopping_summary(outcomes_, ["spike rule", "stopping rule"])
    lines = [
        f"The {outcomes_['panel'].nunique()} quick-profile panels pooled "
        f"({pooled['runs'].iloc[0]} runs; "
        f"easy = final test accuracy above {100 * EASY_ACCURACY:.0f}%):",
        "",
        "| spike rule | stopping rule | fired | fired on easy runs | lost vs best (points) "
        "| epochs saved |",
        "|---|---|---|---|---|---|",
    ]
    for row in pooled.to_dict("records"):
        lines.append(
            f"| {row['spike rule']} | {row['stopping rule']} | {row['fired']}/{row['runs']} "
            f"| {row['fired on easy runs']} | {row['lost vs best (points)']:.2f} "
            f"| {row['epochs saved']:.1f} |"
        )
    lines += [
        "",
        "| final test accuracy | runs | a layer ends not LT: without K | with K "
        "| a layer ends HT: without K | with K |",
        "|---|---|---|---|---|---|",
    ]
    weighted = shares.assign(
        not_lt=shares["final_not_LT"] * shares["runs"], ht=shares["final_HT"] * shares["runs"]
    )
    sums = weighted.groupby(["band", "spike rule"], observed=True, sort=False)[
        ["runs", "not_lt", "ht"]
    ].sum()
    for band in dict.fromkeys(shares["band"].astype(str)):
        before, after = sums.loc[(band, WITHOUT_K)], sums.loc[(band, WITH_K)]
        cells = [band, str(int(after["runs"]))]
        for measure in ("not_lt", "ht"):
            for row in (before, after):
                cells.append(f"{100 * row[measure] / row['runs']:.0f}%")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _read(results: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every panel's stopping outcomes and final-type shares, with and without K; panels
    not collected both ways are skipped (said on stdout)."""
    bands, outcome_tables = [], []
    for panel in PANELS:
        after_dir, before_dir = results / panel, results / "gap_rule" / panel
        if not (after_dir / "runs.csv").exists() or not (before_dir / "runs.csv").exists():
            print(f"skip {panel}: collect it with and without K first")
            continue
        for label, folder in ((WITHOUT_K, before_dir), (WITH_K, after_dir)):
            table = outcomes(after_dir, folder).rename(columns={"rule": "stopping rule"})
            outcome_tables.append(table.assign(panel=panel, **{"spike rule": label}))
            runs = pd.read_csv(folder / "runs.csv")
            band = difficulty_bands(runs, panel)[["band", "runs", "final_not_LT", "final_HT"]]
            bands.append(band.assign(panel=panel, **{"spike rule": label}))
    if not outcome_tables:
        raise FileNotFoundError(f"nothing to compare under {results}")
    return pd.concat(outcome_tables, ignore_index=True), pd.concat(bands, ignore_index=True)


def panels_markdown(summary: pd.DataFrame, shares: pd.DataFrame) -> str:
    """before_after.md: the stopping summary and the final types, panel by panel."""
    lines = [
        "Stopping (quick profile; easy = final test accuracy above "
        f"{100 * EASY_ACCURACY:.0f}%; means over runs):",
        "",
        "| panel | spike rule | stopping rule | runs | fired | fired on easy runs "
        "| lost vs best (points) | epochs saved |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in summary.to_dict("records"):
        lines.append("| " + " | ".join(str(v) for v in row.values()) + " |")
    lines += [
        "",
        "Final spectrum types per band of final test accuracy (share of runs with a "
        "monitored layer not LT / HT):",
        "",
        "| panel | final test accuracy | runs | not LT without K | not LT with K "
        "| HT without K | HT with K |",
        "|---|---|---|---|---|---|---|",
    ]
    pivot = shares.pivot_table(
        index=["panel", "band", "runs"],
        columns="spike rule",
        values=["final_not_LT", "final_HT"],
        observed=True,
    )
    for (panel, band, runs), row in pivot.iterrows():
        cells = [panel, str(band), str(runs)]
        for measure in ("final_not_LT", "final_HT"):
            for label in (WITHOUT_K, WITH_K):
                cells.append(f"{100 * row[(measure, label)]:.0f}%")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_before_after(results: Path) -> None:
    """results/tables/before_after.md/.csv and before_after_pooled.md."""
    every_outcome, shares = _read(results)
    summary = stopping_summary(every_outcome, ["panel", "spike rule", "stopping rule"])
    out = results / "tables"
    write_atomically(out / "before_after.csv", lambda tmp: summary.to_csv(tmp, index=False))
    write_text(out / "before_after.md", panels_markdown(summary, shares))
    write_text(out / "before_after_pooled.md", pooled_markdown(every_outcome, shares))
    print(f"wrote {out}/before_after.md, before_after_pooled.md and before_after.csv")
