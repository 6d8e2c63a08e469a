"""Benchmark of the training loop: `python scripts/bench_training.py [--extra 3] [--out FILE]`.

Measured in one process, on the same data and batch size, at the paper's epoch size
(60,000 training samples: NN1 on D1 with K = 8 and 7,500 per class; LeNet on random
MNIST-shaped images, whose cost is that of MNIST):
  1. our loop (``htrain.train.run_training``, checkpoints and tables every epoch, spectra
     only at the first and last epoch) against a bare torch loop (shuffle, SGD steps, test
     accuracy each epoch) on NN1;
  2. the spectral monitoring overhead: our loop with spectra every epoch against the same
     loop without, on NN1 (monitored fc2, fc3) and LeNet (fc1, fc2).
Each time is the marginal cost of an epoch, (T(long run) - T(short run)) / (extra epochs),
so one-off costs (start-up, the initial evaluation, the final figure) cancel for both sides.
The difference of two such times is noisy (a few % between identical runs here), so the
monitoring overhead is also measured inside one run: the time of the spectral step (ESD,
fit, statistic, type, callbacks) over the rest of the epoch, from metrics.csv.
Ratios are taken within this one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from htrain.data import Dataset, batches, gaussian_mixture
from htrain.io import Report
from htrain.models import build_model
from htrain.train import TrainConfig, evaluate, run_training


def bare_loop(data: Dataset, config: TrainConfig) -> float:
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    model = build_model(config.model, data.in_shape, data.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    evaluate(model, data.x_test, data.y_test)
    for _ in range(config.epochs):
        for index in batches(len(data.y_train), config.batch_size, generator, "cpu"):
            loss = nn.functional.cross_entropy(model(data.x_train[index]), data.y_train[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        evaluate(model, data.x_test, data.y_test)
    return time.perf_counter() - start


def ours(data: Dataset, config: TrainConfig, metrics: list | None = None) -> float:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        run_training(folder, data, config, progress=False)
        elapsed = time.perf_counter() - start
        if metrics is not None:
            metrics.append(pd.read_csv(f"{folder}/metrics.csv"))
        return elapsed


def per_epoch(loop, data: Dataset, config: TrainConfig, extra: int) -> float:
    """Marginal seconds per epoch: a (1 + extra)-epoch run minus a 1-epoch run."""
    short = loop(data, replace(config, epochs=1))
    long = loop(data, replace(config, epochs=1 + extra))
    return (long - short) / extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the report to this Markdown file")
    parser.add_argument("--extra", type=int, default=3, help="epochs beyond the short run")
    args = parser.parse_args()
    say = Report()
    mixture = gaussian_mixture("d1", 8, 100, 7500, 1000, seed=0, delta=0.15)
    generator = torch.Generator().manual_seed(0)
    images = Dataset(
        torch.randn(60_000, 1, 28, 28, generator=generator),
        torch.randint(0, 10, (60_000,), generator=generator),
        torch.randn(10_000, 1, 28, 28, generator=generator),
        torch.randint(0, 10, (10_000,), generator=generator),
        10,
    )
    nn1 = TrainConfig(model="nn1", layers=("fc2", "fc3"), epochs=1)
    lenet = TrainConfig(model="lenet", layers=("fc1", "fc2"), epochs=1)
    never = 10**6  # spectra only at epoch 0 and the last epoch

    ours(mixture, replace(nn1, spectra_every=never))  # warm-up (imports, tables)
    bare = per_epoch(bare_loop, mixture, nn1, args.extra)
    loop = per_epoch(ours, mixture, replace(nn1, spectra_every=never), args.extra)
    say(f"NN1, {len(mixture.y_train)} samples per epoch, batch 64; seconds per epoch")
    say(
        f"  bare torch loop {bare:6.3f}   our loop {loop:6.3f}   "
        f"ratio {loop / bare:.3f} (target <= 1.10)"
    )
    for name, data, config in (("NN1", mixture, nn1), ("LeNet", images, lenet)):
        without = per_epoch(ours, data, replace(config, spectra_every=never), args.extra)
        with_spectra = per_epoch(ours, data, config, args.extra)
        # the same cost measured inside one run: time in the spectral step / rest of the epoch
        tables: list[pd.DataFrame] = []
        ours(data, replace(config, epochs=1 + args.extra), tables)
        epochs = tables[0][tables[0]["epoch"] >= 1]
        inside = epochs["spectra_time_s"] / (epochs["wall_time_s"] - epochs["spectra_time_s"])
        say(
            f"{name}: with spectra {with_spectra:6.3f}, without {without:6.3f}, "
            f"difference {with_spectra / without - 1:+.1%}; spectral step inside the run "
            f"{1e3 * epochs['spectra_time_s'].median():.0f} ms = {inside.median():+.1%} "
            "of the epoch (target <= 2%)"
        )

    say.save(args.out, "make bench-training")


if __name__ == "__main__":
    main()
