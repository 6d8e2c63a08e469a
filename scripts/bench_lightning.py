"""What the Lightning callback costs per epoch: `python scripts/bench_lightning.py [--epochs 3]`.

NN1 on a Gaussian mixture at the paper's epoch size (7,500 samples per class, K = 8: 938
steps of batch 64), in a real lightning.Trainer on the CPU, with and without
heavytail.integrations.lightning.SpectralMonitor on fc2 and fc3 (the paper's layers).  Two
measures, both in this one run: whole-epoch times with and without the callback (medians,
alternating fits, so that drift of the machine hits both), and the callback's own time inside
the run (its on_train_epoch_end), which single timings on a noisy machine cannot hide.
Needs the lightning extra.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from heavytail.integrations.lightning import SpectralMonitor
from htrain.data import gaussian_mixture
from htrain.io import Report
from htrain.models import nn1


class Classifier(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.model = nn1((100,), 8)

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.cross_entropy(self.model(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class EpochTimer(L.Callback):
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.began = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # runs after the monitor's
        self.seconds.append(time.perf_counter() - self.began)


class TimedMonitor(SpectralMonitor):
    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.seconds: list[float] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        began = time.perf_counter()
        super().on_train_epoch_end(trainer, pl_module)
        self.seconds.append(time.perf_counter() - began)


def fit(loader: DataLoader, epochs: int, with_monitor: bool) -> tuple[list[float], list[float]]:
    monitor = TimedMonitor(layers=["model.fc2", "model.fc3"], n_classes=8)
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=epochs,
        callbacks=[monitor, timer] if with_monitor else [timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(Classifier(), loader)
    return timer.seconds, monitor.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the report to this Markdown file")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=7500)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    say = Report()
    data = gaussian_mixture("d1", 8, 100, args.per_class, 10, seed=0, delta=0.15)
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=64, shuffle=True)
    without, with_, inside = [], [], []
    for _ in range(args.repeats):
        plain, _ = fit(loader, args.epochs, with_monitor=False)
        timed, monitor = fit(loader, args.epochs, with_monitor=True)
        without += plain
        with_ += timed
        inside += monitor
    bare, full = statistics.median(without), statistics.median(with_)
    own = statistics.median(inside)
    say(
        f"NN1, {len(data.y_train)} samples per epoch, batch 64, Lightning {L.__version__}, "
        f"{torch.get_num_threads()} threads; medians of {len(without)} epochs each"
    )
    change = 100 * (full / bare - 1)
    say(f"  epoch without the callback {bare:.3f} s, with {full:.3f} s: {change:+.1f}%")
    share = 100 * own / bare
    say(f"  the callback's own time in the run: {1e3 * own:.1f} ms = {share:.2f}% of an epoch")

    say.save(args.out, "make bench-lightning")


if __name__ == "__main__":
    main()
