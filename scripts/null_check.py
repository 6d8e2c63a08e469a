"""The criterion on pure noise: the paper's Figure 3.1 grid, extended to c = 0.9 and 1.

    python scripts/null_check.py [--draws 50] [--out results/null/null_statistic.csv]

For each (c, n) it draws Gaussian n x n/c spectra (exact tridiagonal sampler), and prints the
mean and maximum of the scaled statistic s_hat n^(1/3) / sqrt(ln n) and the share of draws
on which the paper rule (C = 0.4) and the calibrated rule fire.  With --out it also writes
one row per draw (c, n, draw, s_hat, scaled, fires_paper_C0.4, fires_calibrated,
calibrated_scaled), the table the null figure is drawn from.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from heavytail import Threshold, spectral_distance, wishart_eigenvalues
from heavytail.columns import fires_column
from heavytail.distance import scale_factor
from heavytail.null import columns_for
from htrain.io import write_atomically

# the paper's grid (its Figure 3.1), then near-square layers it does not cover
GRID = [
    (0.2, (100, 500, 900, 1300)),
    (0.5, (250, 1500, 2750, 4000)),
    (0.8, (400, 2400, 4400, 6400)),
    (0.9, (400, 1000, 2000)),
    (1.0, (400, 1000, 2000)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="CSV of every draw (for the null figure)")
    args = parser.parse_args()
    if args.draws < 1:
        raise SystemExit(f"error: --draws must be at least 1, got {args.draws}")
    rows = []
    rng = np.random.default_rng(args.seed)
    print(
        f"{'c':>4s} {'n':>5s} | {'mean':>5s} {'max':>5s} | {'paper fires':>11s} "
        f"{'calibrated':>10s} {'cal. s*/scale':>13s}"
    )
    paper, calibrated = Threshold("paper", 0.4), Threshold("calibrated")
    for ratio, sizes in GRID:
        for n in sizes:
            results = [
                spectral_distance(wishart_eigenvalues(n, columns_for(n, ratio), rng), ratio=ratio)
                for _ in range(args.draws)
            ]
            judged = {rule.name: [rule.judge(r) for r in results] for rule in (paper, calibrated)}
            scaled = np.array([r.scaled for r in results])
            level = judged[calibrated.name][0].threshold
            rows += [
                {
                    "c": ratio,
                    "n": n,
                    "draw": draw,
                    "s_hat": r.s_hat,
                    "scaled": r.scaled,
                    **{
                        fires_column(name): verdicts[draw].fires
                        for name, verdicts in judged.items()
                    },
                    "calibrated_scaled": level / scale_factor(n),
                }
                for draw, r in enumerate(results)
            ]
            print(
                f"{ratio:4.1f} {n:5d} | {scaled.mean():5.2f} {scaled.max():5.2f} | "
                f"{np.mean([r.fires for r in judged[paper.name]]):11.0%} "
                f"{np.mean([r.fires for r in judged[calibrated.name]]):10.0%} "
                f"{level / scale_factor(n):13.2f}"
            )
    if args.out:
        table = pd.DataFrame(rows)
        write_atomically(args.out, lambda tmp: table.to_csv(tmp, index=False))
        print(f"{len(table)} draws written to {args.out}")


if __name__ == "__main__":
    main()
