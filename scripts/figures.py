"""Regenerate the figures from collected tables: `python scripts/figures.py [NAME ...]`.

NAME is one or more of: types (Figure 2.13, one per synthetic panel), batch (Figure 2.14),
null (Figure 3.1, extended), esd (ESD panels, Figures 2.1-2.12 style), shat (s_hat over
epochs), evolution (the ESD over epochs); none = all.  Reads only results/ (runs.csv,
spectral.parquet, epochs.csv, esd.parquet, null/null_statistic.csv); trains nothing.
The ESD, s_hat and evolution figures show a hard, a middle and an easy setting of each panel
(htrain.report.SHOWCASE, K = 8, seed 0) from the eigenvalues collect.py kept (--esd);
--epochs picks the ESD panels' epochs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from htrain import figures as fig
from htrain.figures import panel_figures, read_runs, save
from htrain.report import PANELS, difficulty_column

FIGURES = ("types", "batch", "null", "esd", "shat", "evolution")
BATCH_SWEEPS = ("batch_nn1_d1", "batch_nn2_d2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {FIGURES}")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--out", type=Path, help="default: RESULTS/figures")
    parser.add_argument(
        "--epochs", help="ESD panel epochs, e.g. 0,10,30 (default: 0, 5, 20 and the last)"
    )
    args = parser.parse_args()
    try:
        esd_epochs = [int(e) for e in args.epochs.split(",")] if args.epochs else None
    except ValueError:
        sys.exit(f"error: --epochs must be integers separated by commas, got {args.epochs!r}")
    unknown = sorted(set(args.names) - set(FIGURES))
    if unknown:
        sys.exit(f"error: unknown figure(s) {unknown}; choose from {list(FIGURES)}")
    wanted = set(args.names or FIGURES)
    out = args.out or args.results / "figures"
    try:
        found = [p for p in PANELS if (args.results / p / "runs.csv").exists()]
        for name in found:
            panel_figures(name, args.results / name, out, wanted, esd_epochs)
        if "batch" in wanted:
            for name in BATCH_SWEEPS:
                if (args.results / name / "runs.csv").exists():
                    runs = read_runs(args.results / name)
                    title = f"{name}: final type per layer against batch size ({len(runs)} runs)"
                    figure = fig.types_figure(
                        runs, difficulty_column(runs), "train.batch_size", title
                    )
                    save(figure, out / f"types_{name}.png")
        if "null" in wanted:
            null_path = args.results / "null" / "null_statistic.csv"
            if null_path.exists():
                save(fig.null_figure(pd.read_csv(null_path)), out / "null_statistic.png")
            else:
                print(f"skip null: no {null_path} (python scripts/null_check.py --out {null_path})")
        if not found and wanted - {"null", "batch"}:
            print(f"no panel results under {args.results} ({', '.join(PANELS)})")
    except (OSError, ValueError, KeyError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
