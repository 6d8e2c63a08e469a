"""Entry point: `python scripts/run.py [key=value ...]` (Hydra, configs/config.yaml).

For now the default job is a spectral demo: it draws random matrices whose spectra are known
(pure noise, planted spikes, a deformed bulk, heavy tails), types each one, prints a table
and saves the table and an ESD figure in the Hydra run directory.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig

import heavytail as ht
from heavytail import families

DEMO_FAMILIES = {
    "gaussian": families.gaussian,
    "gaussian_square": lambda n, N, rng: families.gaussian(n, n, rng),
    # three signals well above the BBP threshold c^(1/4)
    "planted_spikes": lambda n, N, rng: families.planted_spikes(n, N, (1.5, 2.5, 4.0), rng),
    "deformed_bulk": families.deformed_bulk,
    "student_t2": families.student_t2,
    "product_of_3": families.product_of_3,
}


def write_atomically(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: never half a file."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def demo(cfg: DictConfig, out_dir: Path) -> pd.DataFrame:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from heavytail.viz import plot_esd

    n, big_n = int(cfg.demo.n), int(cfg.demo.N)
    if not 2 <= n <= big_n:
        raise ValueError(f"demo.n and demo.N must satisfy 2 <= n <= N, got n={n}, N={big_n}")
    unknown = [family for family in cfg.demo.families if family not in DEMO_FAMILIES]
    if unknown:
        raise ValueError(
            f"unknown demo family {unknown[0]!r}; choose from {', '.join(DEMO_FAMILIES)}"
        )
    rng = np.random.default_rng(int(cfg.seed))
    rows, panels = [], []
    for family in cfg.demo.families:
        matrix = DEMO_FAMILIES[family](n, big_n, rng)
        columns = matrix.shape[1]
        eigs = ht.esd(matrix)
        result = ht.classify(eigs, C=cfg.demo.C, threshold=cfg.demo.threshold, ratio=n / columns)
        paper = ht.spectral_distance(eigs, C=cfg.demo.C, threshold="paper")
        rows.append(
            {
                "family": family,
                "n": n,
                "N": columns,
                "type": result.type,
                "n_spikes": result.n_spikes,
                "s_hat": result.s_hat,
                f"threshold_{cfg.demo.threshold}": result.threshold,
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


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
def main(cfg: DictConfig) -> None:
    out_dir = Path(hydra.core.hydra_config.HydraConfig.get().runtime.output_dir)
    try:
        table = demo(cfg, out_dir)
    except ValueError as error:  # bad config or input: one line that says what to fix
        sys.exit(f"error: {error}")
    with pd.option_context("display.width", 160, "display.precision", 3):
        print(table.to_string(index=False))
    print(f"\nwrote {out_dir / 'spectra.csv'} and {out_dir / 'esd_demo.png'}")


if __name__ == "__main__":
    main()
