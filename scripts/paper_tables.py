"""The paper's early-stopping tables at its scale, ours beside its numbers:
`python scripts/paper_tables.py [--results results]`.

Reads results/paper_tables/ (collected from `sweep=paper_tables profile=paper`: 7,500 samples
per class, 250 epochs, K = 8) and writes
  results/tables/paper_tables_<rule>.md/.csv   per setting and monitored layer: the epoch the
                                               rule fired, the test accuracy then, the final
                                               types and accuracy; the paper's beside ours
  results/figures/paper_tables_shat_<panel>.png    s_hat over the 250 epochs against the
                                               thresholds, with the test accuracy
  results/figures/paper_tables_esd_<panel>_<layer>.png   the ESD at epochs 0, the first
                                               fire (C = 0.4), 50 and the last
Settings whose runs are not finished yet show as "not run".  Trains nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from htrain import figures as fig
from htrain.io import write_atomically, write_text
from htrain.models import PAPER_LAYERS
from htrain.report import (
    early_stopping_table,
    markdown_early_stopping,
    primary_threshold,
    thresholds_in,
)

PANELS = ("nn1_d1", "nn1_d2", "nn2_d1", "nn2_d2")


def panel_of(runs: pd.DataFrame) -> pd.Series:
    return runs["model.name"].astype(str) + "_" + runs["data.kind"].astype(str)


def save(figure, path: Path) -> None:
    write_atomically(path, lambda tmp: figure.savefig(tmp, dpi=90, format="png"))
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args()
    folder = args.results / "paper_tables"
    if not (folder / "runs.csv").exists():
        sys.exit(f"error: no {folder / 'runs.csv'}: collect the paper_tables sweep first")
    runs = pd.read_csv(folder / "runs.csv")
    runs = runs[runs["status"].isin(["finished", "diverged"])]
    runs = runs.assign(panel=panel_of(runs))
    tables_dir, figures_dir = args.results / "tables", args.results / "figures"
    rules = thresholds_in(runs)
    for rule in rules:
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
    spectral = pd.read_parquet(folder / "spectral.parquet")
    epochs = pd.read_csv(folder / "epochs.csv")
    esd = pd.read_parquet(folder / "esd.parquet") if (folder / "esd.parquet").exists() else None
    primary = primary_threshold(rules).name
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
            per_run = {}
            for run in chosen:
                row = part.set_index("run").loc[run]
                fired = row.get(f"fire_epoch_{primary}_{layer}")
                last = int(row["epochs_run"])
                marks = [0, int(fired) if pd.notna(fired) else None, 50, last]
                per_run[run] = [e for e in marks if e is not None and e <= last]
            save(
                fig.esd_panels(mine, spectral, part, layer, per_run),
                figures_dir / f"paper_tables_esd_{panel}_{layer}.png",
            )


if __name__ == "__main__":
    main()
