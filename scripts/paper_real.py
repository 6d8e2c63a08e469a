"""The paper's real-data table beside ours: `python scripts/paper_real.py [--results results]`.

Reads results/paper_real (and results/gap_rule/paper_real, the same runs without K) and writes
results/tables/paper_real.md (``htrain.paper_real``) and the ESD figures of FC1 and FC2 at the
last epoch, one row per data set and network at batch 64 (results/figures/paper_real_esd_*.png).
--format-test marks the table as made from tiny test files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from htrain.figures import esd_panels
from htrain.io import write_atomically, write_text
from htrain.paper_real import LAYERS, real_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--format-test", action="store_true", help="say the runs are test files")
    args = parser.parse_args()
    folder = args.results / "paper_real"
    if not (folder / "runs.csv").exists():
        raise SystemExit(f"error: {folder} has no collected runs; run make results-real first")
    (args.results / "tables").mkdir(parents=True, exist_ok=True)
    table = real_table(args.results, format_test=args.format_test)
    write_text(args.results / "tables" / "paper_real.md", table)
    runs = pd.read_csv(folder / "runs.csv")
    spectral = pd.read_parquet(folder / "spectral.parquet")
    esd = pd.read_parquet(folder / "esd.parquet")
    # one run per data set and network: the paper's default batch (64) when it was trained
    chosen = runs.sort_values("train.batch_size", key=lambda b: (b - 64).abs(), kind="stable")
    chosen = chosen.drop_duplicates(["data.name", "model.name"])
    (args.results / "figures").mkdir(parents=True, exist_ok=True)
    for layer in LAYERS:
        picked = esd[esd["run"].isin(chosen["run"]) & (esd["layer"] == layer)]
        if picked.empty:
            continue
        last = {run: [int(rows["epoch"].max())] for run, rows in picked.groupby("run")}
        figure = esd_panels(picked, spectral, runs, layer, last)
        write_atomically(
            args.results / "figures" / f"paper_real_esd_{layer}.png",
            lambda tmp, figure=figure: figure.savefig(tmp, dpi=100, format="png"),
        )
    print(f"{len(runs)} runs -> {args.results / 'tables' / 'paper_real.md'}")


if __name__ == "__main__":
    main()
