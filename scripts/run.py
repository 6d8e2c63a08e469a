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


def make_matrix(family: str, n: int, N: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A matrix of the named family and the number of columns it really has."""
    if family == "gaussian":
        return rng.standard_normal((n, N)), N
    if family == "gaussian_square":
        return rng.standard_normal((n, n)), n
    if family == "planted_spikes":
        # three rank-one signals well above the BBP threshold c^(1/4)
        matrix = rng.standard_normal((n, N)) / np.sqrt(N)
        for theta in (1.5, 2.5, 4.0):
            u, v = rng.standard_normal(n), rng.standard_normal(N)
            matrix += theta * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))
        return matrix * np.sqrt(N), N
    if family == "deformed_bulk":
        return np.sqrt(rng.uniform(0.5, 3.0, n))[:, None] * rng.standard_normal((n, N)), N
    if family == "student_t2":
        return rng.standard_t(2, (n, N)), N
    if family == "product_of_3":
        return rng.standard_normal((n, N)) @ rng.standard_normal((N, N)) @ rng.standard_normal(
            (N, N)
        ), N
    raise ValueError(
        f"unknown demo family {family!r}; choose from gaussian, gaussian_square, "
        "planted_spikes, deformed_bulk, student_t2, product_of_3"
    )


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
    for family in cfg.demo.families:
        make_matrix(family, 2, 2, np.random.default_rng(0))  # reject unknown names up front
    rng = np.random.default_rng(int(cfg.seed))
    rows, panels = [], []
    for family in cfg.demo.families:
        matrix, columns = make_matrix(family, n, big_n, rng)
        eigs = ht.esd(matrix)
        result = ht.classify(
            eigs,
            C=cfg.demo.C,
            threshold=cfg.demo.threshold,
            ratio=min(matrix.shape) / max(matrix.shape),
        )
        paper = ht.spectral_distance(eigs, C=cfg.demo.C, threshold="paper")
        rows.append(
            {
                "family": family,
                "n": n,
                "N": columns,
                "type": result.type,
                "n_spikes": result.n_spikes,
                "s_hat": result.s_hat,
                "threshold_calibrated": ht.threshold_for(
                    result.distance.n, n / columns, "calibrated"
                )
                if result.distance
                else np.nan,
                "threshold_paper": paper.threshold,
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
