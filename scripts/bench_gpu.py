"""Single runs against the batched trainer, and eigenvalues on the device against the host:
`python scripts/bench_gpu.py [--device auto] [--members 27] [--per-class 7500] [--epochs 3]`.

Measured in one call, on one device, so the ratios compare like with like:
  1. eigvalsh of W W^T / N for the monitored shapes, on the device (htrain.spectra) and on
     the host (heavytail.esd), median of --repeats;
  2. one NN1 run (K = 8, D1) trained alone by htrain.train.run_training: seconds per epoch;
  3. --members NN1 runs of one panel row (9 deltas x 3 seeds at K = 8 by default) trained as
     one stacked model by htrain.batched.train_batched with eager steps: seconds per
     run-epoch (the stacked panel before CUDA graphs);
  4. the same with each step replayed as a CUDA graph (on a CPU: eager, the same);
  5. the stack's spectra: one run after another against one batched eigendecomposition;
then the ratios and the time the 81-run NN1 panel would take at 250 epochs (from 4).  Epochs
include each run's spectra and checkpoint writes, as in real runs; epoch 0 (evaluation
only) is left out.  The paper's scale is the default (made for a GPU: about 8 minutes on an
H100 by design); on a CPU use a small size, e.g. --per-class 50 --members 4 --epochs 2.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from htrain.batched import Member, train_batched
from htrain.data import gaussian_mixture
from htrain.io import Report
from htrain.timing import eigvalsh_ms, epoch_seconds, stacked_spectra_ms
from htrain.train import TrainConfig, pick_device, run_training

SHAPES = [(384, 512), (512, 1024), (1024, 2048), (500, 2450), (256, 2450)]
DELTAS = (0.0, 0.15, 0.3, 0.45, 0.6, 0.9, 1.2, 1.6, 2.0)


def stacked_runs(root: Path, tag: str, config, settings, args, graphs: bool):
    """Median seconds per run-epoch of the settings trained as one stacked model, and the wall."""
    members = [
        Member(
            root / f"{tag}{index}",
            gaussian_mixture("d1", 8, 100, args.per_class, 1000, seed=seed, delta=delta),
            TrainConfig(**{**config.__dict__, "seed": seed}),
        )
        for index, (delta, seed) in enumerate(settings)
    ]
    began = time.perf_counter()
    train_batched(members, checkpoint_every=args.checkpoint_every, graphs=graphs)
    wall = time.perf_counter() - began
    return float(np.median([epoch_seconds(m.out_dir) for m in members])), wall


def spectra_section(say, device, count: int, repeats: int) -> None:
    say("\n5. spectra of the stack's monitored layers, one run after another against one")
    say("   batched eigendecomposition per layer (median ms per epoch of all runs)")
    for n, big_n in ((512, 1024), (384, 512)):
        loop, batch = stacked_spectra_ms((n, big_n), count, device, repeats)
        ratio = loop / batch
        say(
            f"  {n}x{big_n} x {count}: one by one {loop:8.1f}  batched {batch:8.1f}  ({ratio:.1f}x)"
        )


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the report to this Markdown file")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--members", type=int, default=27)
    parser.add_argument("--per-class", type=int, default=7500)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--checkpoint-every", type=int, default=10)
    args = parser.parse_args()
    if min(args.members, args.per_class, args.epochs, args.repeats) < 1:
        raise SystemExit("error: --members, --per-class, --epochs, --repeats must be positive")
    return args


def main() -> None:
    args = parse_args()
    say = Report()
    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    say(f"device: {name}; torch {torch.__version__}; {args.per_class} samples per class, K = 8")

    say("\n1. eigvalsh of W W^T / N (median ms)")
    for row in eigvalsh_ms(SHAPES, device, args.repeats):
        say(f"  {row['shape']:>10s}  device {row['device_ms']:8.2f}  host {row['host_ms']:8.2f}")

    config = TrainConfig(
        model="nn1", layers=("fc2", "fc3"), epochs=args.epochs, device=str(device), n_classes=8
    )
    settings = [(delta, seed) for seed in (0, 1, 2) for delta in DELTAS][: args.members]
    count = len(settings)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        data = gaussian_mixture("d1", 8, 100, args.per_class, 1000, seed=0, delta=0.15)
        began = time.perf_counter()
        run_training(root / "single", data, config, progress=False)
        single_wall = time.perf_counter() - began
        single = epoch_seconds(root / "single")
        say(f"\n2. one run alone: {single:.3f} s per epoch ({single_wall:.1f} s in all)")
        before, before_wall = stacked_runs(root, "eager", config, settings, args, graphs=False)
        after, after_wall = stacked_runs(root, "graph", config, settings, args, graphs=True)
        say(
            f"\n3. {count} runs stacked, eager steps: {before * count:.3f} s per epoch of all "
            f"of them, {before:.4f} s per run-epoch ({before_wall:.1f} s in all)"
        )
        say(
            f"4. {count} runs stacked, CUDA-graph steps (eager on a CPU): "
            f"{after * count:.3f} s per epoch, {after:.4f} s per run-epoch "
            f"({after_wall:.1f} s in all)"
        )
    spectra_section(say, device, count, args.repeats)
    say(f"\nratio (one run alone / one run stacked, per epoch): {single / after:.1f}x")
    say(f"ratio (stacked eager / stacked with graphs, per epoch): {before / after:.2f}x")
    panel = 81 * 250 * after
    say(f"the 81-run NN1 panel x 250 epochs at this rate: {panel / 60:.1f} min")

    say.save(args.out, "make bench-gpu")


if __name__ == "__main__":
    main()
