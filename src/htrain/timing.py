"""Timing helpers shared by the benchmark scripts (scripts/bench_*.py): medians of repeated
calls after a warm-up, synchronised on a GPU so that a kernel's time is not left uncounted."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pandas as pd


def median_seconds(call, repeats: int, device=None) -> tuple[float, object]:
    """The median wall time of ``repeats`` calls of ``call()`` after one warm-up call (CUDA
    context, solver handles), and the last call's result; on a CUDA ``device`` each call is
    timed from a synchronised start to a synchronised end."""
    cuda = device is not None and getattr(device, "type", device) == "cuda"
    result = call()
    seconds = []
    for _ in range(repeats):
        if cuda:
            import torch

            torch.cuda.synchronize()
        began = time.perf_counter()
        result = call()
        if cuda:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds), result


def epoch_seconds(run_dir: Path) -> float:
    """A run's median wall time per training epoch (epoch 0, evaluation only, left out)."""
    metrics = pd.read_csv(run_dir / "metrics.csv")
    return float(metrics.loc[metrics["epoch"] >= 1, "wall_time_s"].median())
