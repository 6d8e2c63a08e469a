"""Sweep timing: `python scripts/bench_sweep.py [--panel nn1_d1] [--values 0,1.0,2.0]`.

Runs the same sub-grid of a panel (given parameter values x K in {2, 8}, seed 0) with the
quick profile twice, one run after another (Hydra's basic launcher) and with the joblib
launcher (launcher=local: 2 jobs, 1 torch thread each), and prints both wall times and their
ratio.  From the per-epoch times it measured it projects the full grid of the panel (9
values x K in {2, 5, 8} x 3 seeds) with the quick and with the paper profile, sequentially
on this machine: an epoch's cost is taken proportional to its number of samples.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PARAMETER = {"nn1_d1": "data.delta", "nn1_d2": "data.t", "nn2_d1": "data.delta", "nn2_d2": "data.t"}


def run_sweep(panel: str, values: str, output: Path, *extra: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "run.py"),
            f"sweep={panel}",
            "profile=quick",
            f"{PARAMETER[panel]}={values}",
            "data.K=2,8",
            "seed=0",
            "train.progress=false",
            f"paths.output_dir={output}",
            *extra,
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panel", default="nn1_d1", choices=sorted(PARAMETER))
    parser.add_argument("--values", default="0,1.0,2.0")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        sequential = run_sweep(args.panel, args.values, Path(folder) / "seq")
        parallel = run_sweep(args.panel, args.values, Path(folder) / "par", "launcher=local")
        rows = []
        for metrics in (Path(folder) / "seq" / "sweeps" / args.panel).glob("*/metrics.csv"):
            config = (metrics.parent / "config.yaml").read_text()
            classes = int(
                next(
                    line.split(":")[1]
                    for line in config.splitlines()
                    if line.strip().startswith("K:")
                )
            )
            epochs = pd.read_csv(metrics)
            rows.append(
                {"K": classes, "epoch_s": epochs.loc[epochs["epoch"] >= 1, "wall_time_s"].median()}
            )
    runs = len(args.values.split(",")) * 2
    print(f"{args.panel}, quick profile, {runs} runs ({args.values} x K in 2, 8, seed 0)")
    print(
        f"  sequential {sequential:7.1f} s   joblib 2 jobs {parallel:7.1f} s   "
        f"speed-up {sequential / parallel:.2f}x"
    )
    per_sample = pd.DataFrame(rows).eval("epoch_s / (K * 1000)").median()
    grid = {K: 9 * 3 for K in (2, 5, 8)}  # 9 values x 3 seeds per K
    quick = sum(n * 60 * K * 1000 * per_sample for K, n in grid.items())
    paper = sum(n * 250 * K * 7500 * per_sample for K, n in grid.items())
    print(
        f"  measured {1e6 * per_sample:.1f} us per sample-epoch; full panel grid (81 runs), "
        f"sequential: quick {quick / 3600:.1f} h, paper {paper / 3600:.0f} h "
        f"(divide by the joblib speed-up for 2 jobs)"
    )


if __name__ == "__main__":
    main()
