"""Spectral demo: `python scripts/demo_spectra.py [--n 300 --N 600 --out outputs/demo]`.

Draws random matrices whose spectra are known (pure noise, planted spikes, a deformed bulk,
heavy tails), types each one, prints a table and saves it with an ESD figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import heavytail as ht
from heavytail import families
from heavytail.columns import threshold_column
from htrain.io import write_atomically

DEMO_FAMILIES = {
    "gaussian": families.gaussian,
    "gaussian_square": lambda n, N, rng: families.gaussian(n, n, rng),
    # three signals well above the BBP threshold c^(1/4)
    "planted_spikes": lambda n, N, rng: families.planted_spikes(n, N, (1.5, 2.5, 4.0), rng),
    "deformed_bulk": families.deformed_bulk,
    "student_t2": families.student_t2,
    "product_of_3": families.product_of_3,
}


def demo(
    n: int, big_n: int, seed: int, names: list[str], C: float, threshold: str, out_dir: Path
) -> pd.DataFrame:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from heavytail.viz import plot_esd

    if not 2 <= n <= big_n:
        raise ValueError(f"--n and --N must satisfy 2 <= n <= N, got n={n}, N={big_n}")
    unknown = [family for family in names if family not in DEMO_FAMILIES]
    if unknown:
        raise ValueError(
            f"unknown demo family {unknown[0]!r}; choose from {', '.join(DEMO_FAMILIES)}"
        )
    rng = np.random.default_rng(seed)
    rows, panels = [], []
    for family in names:
        matrix = DEMO_FAMILIES[family](n, big_n, rng)
        columns = matrix.shape[1]
        eigs = ht.esd(matrix)
        result = ht.classify(eigs, C=C, threshold=threshold, ratio=n / columns)
        paper = ht.spectral_distance(eigs, C=C, threshold="paper")
        rows.append(
            {
                "family": family,
                "n": n,
                "N": columns,
                "type": result.type,
                "n_spikes": result.n_spikes,
                "s_hat": result.s_hat,
                threshold_column(threshold): result.threshold,
                "fires_paper": paper.fires,
                "tail_extent": result.tail_extent,
                "alpha": result.alpha,
            }
        )
        panels.append((family, eigs, result))
    table = pd.DataFrame(rows)
    figure, axes = plt.subplots(
        2, (len(panels) + 1) // 2, figsize=(4.2 * ((len(panels) + 1) // 2), 7)
    )
    for ax, (family, eigs, result) in zip(np.ravel(axes), panels, strict=False):
        plot_esd(ax, eigs, result, title=family)
    figure.tight_layout()
    write_atomically(out_dir / "spectra.csv", lambda tmp: table.to_csv(tmp, index=False))
    write_atomically(
        out_dir / "esd_demo.png", lambda tmp: figure.savefig(tmp, dpi=110, format="png")
    )
    plt.close(figure)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="rows of each matrix (n <= N)")
    parser.add_argument("--N", type=int, default=600, help="columns")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--C", type=float, default=0.4, help="paper threshold constant")
    parser.add_argument(
        "--threshold",
        default="calibrated",
        choices=["paper", "calibrated"],
        help="rule used for the type",
    )
    parser.add_argument("--families", nargs="+", default=list(DEMO_FAMILIES))
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        table = demo(args.n, args.N, args.seed, args.families, args.C, args.threshold, args.out)
    except ValueError as error:  # bad arguments: one line that says what to fix
        sys.exit(f"error: {error}")
    with pd.option_context("display.width", 160, "display.precision", 3):
        print(table.to_string(index=False))
    print(f"\nwrote {args.out / 'spectra.csv'} and {args.out / 'esd_demo.png'}")


if __name__ == "__main__":
    main()
