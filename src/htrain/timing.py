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


def eigvalsh_ms(shapes, device, repeats: int) -> list[dict]:
    """For each (n, N) in ``shapes``, the median milliseconds of a random weight's spectrum on
    ``device`` (``htrain.spectra.eigenvalues_of``) and on the host (``heavytail.esd``)."""
    import torch

    import heavytail as ht
    from htrain.spectra import eigenvalues_of

    rows = []
    for n, big_n in shapes:
        weight = torch.randn(n, big_n, device=device) / big_n**0.5
        row = {"shape": f"{n}x{big_n}"}
        for where, solve in (("device", eigenvalues_of), ("host", ht.esd)):
            seconds = median_seconds(lambda s=solve, w=weight: s(w), repeats, device)[0]
            row[f"{where}_ms"] = 1e3 * seconds
        rows.append(row)
    return rows


def stacked_spectra_ms(shape, count: int, device, repeats: int) -> tuple[float, float]:
    """Median milliseconds for the spectra of ``count`` random (n, N) weights on ``device``:
    one after another, then as one batched eigendecomposition (``stacked_eigenvalues``)."""
    import torch

    from htrain.spectra import eigenvalues_of, stacked_eigenvalues

    weights = torch.randn(count, *shape, device=device) / shape[1] ** 0.5
    loop = median_seconds(lambda: [eigenvalues_of(m) for m in weights], repeats, device)[0]
    batch = median_seconds(lambda: stacked_eigenvalues(weights), repeats, device)[0]
    return 1e3 * loop, 1e3 * batch
