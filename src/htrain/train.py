"""The training loop: per-epoch metrics and spectra, spectral early stopping, resumable runs.

A run directory holds (each file written atomically, ``done`` last):
  metrics.csv       one row per epoch (epoch 0 = the initialisation)
  spectral.csv      one row per epoch and monitored layer
  eigenvalues.npz   the eigenvalues, key "<layer>/<epoch>"
  summary.json      status, SNR, stop epoch per rule and layer, accuracies, wall time
  checkpoint.pt     model, optimiser, RNG states and the history, after every epoch: tensors
                    and one JSON string, loaded with weights_only=True (``htrain.rundir``)
  .lock             the OS lock that keeps a second process out while the run is live
  esd_final.png     the monitored layers' last spectra against their MP fits (train.esd_figure)
"""

from __future__ import annotations

import io
import json
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

import heavytail as ht
from heavytail.columns import fires_column, threshold_column
from htrain.data import Dataset, batches
from htrain.gradstats import GradientNoise
from htrain.io import write_atomically, write_bytes, write_json, write_text
from htrain.models import build_model, check_layers
from htrain.replay import Analysis, analyse_epoch, replay
from htrain.rundir import (
    RESTART_HINT,
    BadCheckpoint,
    RunLock,
    _first_line,
    checkpoint_payload,
    load_checkpoint,
    set_aside,
)
from htrain.runfiles import RUN_FILES
from htrain.spectra import eigenvalues_of

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class StopRule(ht.StopSettings):
    """The rule that stops the run when ``action == "stop"`` (all rules are recorded): the
    threshold rule and its C, stopped as ``heavytail.StopSettings`` says."""

    threshold: str = "paper"
    C: float = 0.4

    @property
    def name(self) -> str:
        return ht.Threshold(self.threshold, self.C).name


@dataclass(frozen=True)
class TrainConfig:
    model: str
    layers: tuple[str, ...]
    epochs: int
    batch_size: int = 64
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    seed: int = 0
    C_values: tuple[float, ...] = (0.4, 0.6)
    stop: StopRule = StopRule()
    action: str = "record"
    spectra_every: int = 1
    device: str = "auto"
    # the classification problem's K, for the spike rule (None: the rule does not know K)
    n_classes: int | None = None
    # the evidence-based criterion (htrain.gradstats) on every grad_stats-th step; 0: off
    grad_stats: int = 4
    # esd_final.png when the run ends: 0.3-0.4 s of CPU per run, which a sweep of thousands
    # of tiny runs (or the test suite) can skip; collect draws figures from the tables
    esd_figure: bool = True

    def __post_init__(self) -> None:
        self.check()  # once, when made: a TrainConfig that exists is valid

    def check(self) -> None:
        """One-line errors for values that would fail later, raised before any work."""
        if self.epochs < 1:
            raise ValueError(f"train.epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"train.batch_size must be positive, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"optim.lr must be positive, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optim.name must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        if self.action not in ("record", "stop"):
            raise ValueError(f"early_stop.action must be record or stop, got {self.action!r}")
        if self.grad_stats < 0:
            raise ValueError(f"train.grad_stats must be 0 (off) or a count, got {self.grad_stats}")
        if self.spectra_every < 1:
            raise ValueError(f"spectra.every must be at least 1, got {self.spectra_every}")
        if not self.layers:
            raise ValueError("spectra.layers is empty: name at least one layer to monitor")
        if not self.C_values:
            raise ValueError("spectra.C is empty: give at least one constant, e.g. [0.4]")
        if (
            ht.Threshold(self.stop.threshold, self.stop.C).kind.uses_C
            and self.stop.C not in self.C_values
        ):
            raise ValueError(f"early_stop.C={self.stop.C} must be one of spectra.C={self.C_values}")
        if self.n_classes is not None and self.n_classes < 1:
            raise ValueError(f"spectra.n_classes must be positive, got {self.n_classes}")
        pick_device(self.device)
        ht.SpectralEarlyStopping(layers=self.layers, threshold=self.stop.threshold)

    @property
    def analysis(self) -> Analysis:
        """The spectral analysis this run records (``htrain.replay``)."""
        return Analysis(
            layers=tuple(self.layers),
            C_values=tuple(self.C_values),
            n_classes=self.n_classes,
            stop=ht.StopSettings(**self.stop.stop_settings()),
        )


def pick_device(name: str) -> torch.device:
    """The training device; ValueError in one line for a name torch does not know or a GPU
    that is not there."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"train.device={name!r} is not a device; use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device=cuda but no CUDA GPU is visible; use auto or cpu")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"train.device={name!r} is not supported; use auto, cpu or cuda")
    return device


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 4096):
    """Mean cross-entropy and accuracy of the model on (x, y), in eval mode."""
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(y), chunk):
            logits = model(x[start : start + chunk])
            target = y[start : start + chunk]
            loss += nn.functional.cross_entropy(logits, target, reduction="sum").item()
            correct += (logits.argmax(1) == target).sum().item()
    model.train()
    return loss / len(y), correct / len(y)


def spectral_rows(
    weights: dict[str, torch.Tensor],
    analysis: Analysis,
    epoch: int,
    eigenvalues: dict[str, np.ndarray | None] | None = None,
) -> tuple[list[dict], dict[str, np.ndarray], dict[str, dict]]:
    """``htrain.replay.analyse_epoch`` on the monitored layers' current weights (the
    eigenvalues computed where the weights are: ``htrain.spectra.eigenvalues_of``, or given
    in ``eigenvalues`` when a stacked trainer computed them for all its runs at once)."""
    shapes = {layer: tuple(weight.shape) for layer, weight in weights.items()}
    given = eigenvalues or {}
    sources = {}
    for layer, weight in weights.items():
        if given.get(layer) is not None:
            sources[layer] = given[layer]
            continue
        try:
            sources[layer] = eigenvalues_of(weight)
        except ValueError:  # NaN weights: analyse_epoch records why from the weight itself
            sources[layer] = weight
    return analyse_epoch(sources, shapes, analysis, epoch)


def monitored_weights(model: nn.Module, layers) -> dict[str, torch.Tensor]:
    modules = dict(model.named_modules())
    return {layer: modules[layer].weight for layer in layers}


@dataclass
class RunState:
    """Everything a run has recorded so far; the checkpoint holds it as plain data."""

    epoch: int = -1
    metrics: list[dict] = field(default_factory=list)
    spectral: list[dict] = field(default_factory=list)
    eigenvalues: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    stoppers: dict[str, ht.SpectralEarlyStopping] = field(default_factory=dict)
    status: str = "running"
    wall_time: float = 0.0
    analysis: dict = field(default_factory=dict)

    def plain(self) -> dict:
        """The JSON part of the checkpoint (eigenvalues travel as tensors)."""
        return {
            "epoch": self.epoch,
            "metrics": self.metrics,
            "spectral": self.spectral,
            "stoppers": {name: stopper.state_dict() for name, stopper in self.stoppers.items()},
            "status": self.status,
            "wall_time": self.wall_time,
            "analysis": self.analysis,
        }

    def flat_eigenvalues(self) -> dict[str, np.ndarray]:
        return {
            f"{layer}/{epoch}": values
            for epoch, by_layer in self.eigenvalues.items()
            for layer, values in by_layer.items()
        }


def _restore(payload: dict, shapes: dict[str, tuple[int, ...]], analysis: Analysis) -> RunState:
    """The run's state from its checkpoint.  Recorded under another analysis (a new spike
    rule, other thresholds or stopping settings), the spectral history is recomputed from
    the stored eigenvalues, so that the run's tables follow one analysis throughout."""
    plain = payload["state"]
    eigenvalues: dict[int, dict[str, np.ndarray]] = {}
    for key, values in payload["eigenvalues"].items():
        layer, epoch = key.rsplit("/", 1)
        eigenvalues.setdefault(int(epoch), {})[layer] = values.cpu().numpy()
    stoppers = analysis.stoppers()
    spectral = plain["spectral"]
    if plain.get("analysis") == analysis.identity():
        for name, stopper in stoppers.items():
            stopper.load_state_dict(plain["stoppers"][name])
    else:
        measured = sorted({int(row["epoch"]) for row in spectral})
        spectral, stoppers = replay(eigenvalues, shapes, analysis, measured)
    return RunState(
        epoch=int(plain["epoch"]),
        metrics=plain["metrics"],
        spectral=spectral,
        eigenvalues=eigenvalues,
        stoppers=stoppers,
        status=plain["status"],
        wall_time=float(plain["wall_time"]),
        analysis=analysis.identity(),
    )


RUN_STATUSES = ("running", "finished", "stopped", "diverged")


def _check_saved_state(payload: dict, path: Path, config: TrainConfig, shapes: dict) -> None:
    """A checkpoint that decodes but does not fit this run (an epoch past the run's end, an
    unknown status, a history that disagrees with its epoch, eigenvalues of other layers or
    shapes) is refused in one line, before anything is restored."""

    def refuse(what: str) -> None:
        raise BadCheckpoint(f"{path} does not fit this run: {what}; {RESTART_HINT}")

    state = payload["state"]
    if not isinstance(state, dict):
        refuse("its state is not a mapping")
    epoch, status = state.get("epoch"), state.get("status")
    # more epochs than asked is allowed: the same folder asked for fewer ends at once
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < -1:
        refuse(f"saved epoch {epoch!r} is not an epoch")
    if status not in RUN_STATUSES:
        refuse(f"unknown status {status!r}")
    metrics = state.get("metrics")
    if not isinstance(metrics, list) or len(metrics) != epoch + 1:
        rows = len(metrics) if isinstance(metrics, list) else "no"
        refuse(f"{rows} metric rows for epoch {epoch}")
    if [row.get("epoch") if isinstance(row, dict) else None for row in metrics] != list(
        range(epoch + 1)
    ):
        refuse("its metric rows are not epochs 0, 1, 2, ...")
    for key, values in payload.get("eigenvalues", {}).items():
        layer = key.rsplit("/", 1)[0]
        if layer not in shapes or tuple(values.shape) != (min(shapes[layer]),):
            refuse(f"eigenvalues {key!r} do not belong to a monitored layer of this model")


def _esd_figure(out: Path, state: RunState, config: TrainConfig) -> None:
    from matplotlib.figure import Figure

    from heavytail.viz import plot_esd

    last = max((row["epoch"] for row in state.spectral), default=None)
    layers = [layer for layer in config.layers if layer in state.eigenvalues.get(last, {})]
    if not layers:
        return
    width = 4.5 * len(layers)
    figure = Figure(figsize=(width, 3.8))
    # margins fixed in inches, not a tight layout: every run draws this figure, and a tight
    # layout draws it twice (0.5 s instead of 0.3 s of a short run's second)
    figure.subplots_adjust(
        left=0.8 / width, right=1 - 0.15 / width, bottom=0.14, top=0.85, wspace=0.3
    )
    axes = figure.subplots(1, len(layers), squeeze=False)
    for ax, layer in zip(axes[0], layers, strict=True):
        eigs = state.eigenvalues[last][layer]
        row = next(r for r in state.spectral if r["epoch"] == last and r["layer"] == layer)
        result = ht.classify(
            eigs, threshold="calibrated", ratio=row["ratio"], n_classes=config.n_classes
        )
        plot_esd(ax, eigs, result, title=f"{layer}, epoch {last}")
    write_atomically(out / "esd_final.png", lambda tmp: figure.savefig(tmp, dpi=110, format="png"))


def _line(epoch: int, metrics: dict, rows: list[dict], rule: str) -> str:
    parts = [f"epoch {epoch:3d}  train {metrics['train_acc']:.3f}  test {metrics['test_acc']:.3f}"]
    for row in rows:
        if row.get("skipped"):
            parts.append(f"{row['layer']} -")
            continue
        mark = "*" if row[fires_column(rule)] else " "
        level = row[threshold_column(rule)]
        parts.append(f"{row['layer']} {row['s_hat']:.3f}/{level:.3f}{mark} {row['type']}")
    return " | ".join(parts)


def _refuse_foreign_files(out: Path) -> None:
    """A run folder's files are replaced only by a run: files of a run's names in a folder
    that holds no checkpoint and whose config.yaml is missing or is not a run's config
    (``hydra.run.dir`` pointed at a user's folder) are refused in one line, before anything
    is written.  A folder with a checkpoint is a run's, and its checkpoint is checked when
    it is loaded (``_check_saved_state``)."""
    import yaml

    from htrain.naming import HASHED_GROUPS

    present = [name for name in RUN_FILES if (out / name).exists()]
    if not present or (out / "checkpoint.pt").exists():
        return
    try:
        loaded = yaml.safe_load((out / "config.yaml").read_text())
        ours = isinstance(loaded, dict) and set(HASHED_GROUPS) <= set(loaded)
    except (OSError, ValueError, yaml.YAMLError):
        ours = False
    if not ours:
        raise ValueError(
            f"{out} holds {', '.join(present)}, which this run did not write; choose another "
            "hydra.run.dir, or pass train.restart=true to move them into replaced-<time>/"
        )


def _remove_stale_temporaries(out: Path) -> None:
    """Temporary files of saves that were killed mid-write (``htrain.io.write_atomically``
    names them .<file>.<random>.tmp); the caller holds the folder's lock, so none is live."""
    for name in RUN_FILES:
        for stale in out.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)


class RunRecorder:
    """One run folder's bookkeeping, whatever trains the weights (``run_training`` or the
    batched trainer ``htrain.batched``): what was recorded, the per-epoch metrics and
    spectra, the stopping rules, the checkpoint, the summary.  The caller holds the folder's
    lock (``htrain.rundir.RunLock``) for as long as it uses the recorder.
    """

    def __init__(
        self,
        out_dir: str | Path,
        data: Dataset,
        config: TrainConfig,
        info: dict | None = None,
        config_yaml: str | None = None,
        restart: bool = False,
        checkpoint_every: int = 1,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError(f"train.checkpoint_every must be at least 1, got {checkpoint_every}")
        self.out = Path(out_dir)
        self.data, self.config, self.info = data, config, info or {}
        self.analysis = config.analysis
        self.checkpoint_every = checkpoint_every
        if restart:
            set_aside(self.out, list(RUN_FILES), time.strftime("%Y%m%dT%H%M%S"))
        elif config_yaml is not None:
            _refuse_foreign_files(self.out)
        _remove_stale_temporaries(self.out)
        self.done = (self.out / "done").exists()
        if config_yaml is not None and not self.done:
            write_text(self.out / "config.yaml", config_yaml)
        self.state = RunState(stoppers=self.analysis.stoppers(), analysis=self.analysis.identity())
        self.primary = self.config.stop.name

    def summary(self) -> dict:
        """summary.json of a finished run; a missing or damaged one (a done marker beside an
        empty file) is rewritten from the checkpoint when there is one, else BadCheckpoint."""
        path = self.out / "summary.json"
        try:
            summary = json.loads(path.read_text())
            if isinstance(summary, dict) and "status" in summary:
                return summary
        except (OSError, ValueError):
            pass
        raise BadCheckpoint(
            f"{path} is missing or damaged although the run is marked done; {RESTART_HINT}"
        )

    def load(self, device, shapes: dict[str, tuple[int, ...]]) -> dict | None:
        """The checkpoint's payload (model, optimiser and RNG states) when the run resumes,
        None when it starts; the recorded history is restored into ``self.state``."""
        if not (self.out / "checkpoint.pt").exists():
            return None
        path = self.out / "checkpoint.pt"
        payload = load_checkpoint(path, map_location=device)
        _check_saved_state(payload, path, self.config, shapes)
        try:
            self.state = _restore(payload, shapes, self.analysis)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise BadCheckpoint(
                f"{path} has a state that cannot be restored ({type(error).__name__}: "
                f"{error}); {RESTART_HINT}"
            ) from None
        if self.state.status == "finished" and self.state.epoch < self.config.epochs:
            self.state.status = "running"  # the same folder asked for more epochs
        return payload

    @property
    def next_epoch(self) -> int:
        return self.state.epoch + 1

    @property
    def running(self) -> bool:
        return self.state.status == "running"

    def record(
        self,
        epoch: int,
        metrics: dict,
        weights: dict[str, torch.Tensor],
        diverged: bool,
        seconds: float,
        eigenvalues: dict[str, np.ndarray | None] | None = None,
    ) -> list[dict]:
        """One epoch's metrics, spectra (every spectra_every epochs, at the last epoch and
        on divergence) and stopping decisions; returns the epoch's spectral rows.
        ``eigenvalues``: the layers' spectra when the caller computed them already."""
        config, state = self.config, self.state
        rows: list[dict] = []
        began = time.perf_counter()
        if epoch % config.spectra_every == 0 or diverged or epoch == config.epochs:
            rows, measured, per_rule = spectral_rows(weights, self.analysis, epoch, eigenvalues)
            state.eigenvalues[epoch] = measured
            state.spectral.extend(rows)
            for name, stopper in state.stoppers.items():
                stopper.observe(epoch, per_rule[name])
        metrics["spectra_time_s"] = time.perf_counter() - began
        metrics["wall_time_s"] = seconds + metrics["spectra_time_s"]  # checkpoint write excluded
        state.metrics.append(metrics)
        state.epoch = epoch
        state.wall_time += metrics["wall_time_s"]
        if diverged:
            state.status = "diverged"
        elif config.action == "stop" and state.stoppers[self.primary].should_stop:
            state.status = "stopped"
        elif epoch == config.epochs:
            state.status = "finished"
        return rows

    def due(self, epoch: int) -> bool:
        """Whether this epoch is saved: every checkpoint_every epochs and at the end."""
        return not self.running or epoch % self.checkpoint_every == 0

    def save(self, model_state: dict, optimizer_state: dict, generator_state, torch_rng) -> None:
        """Tables first, checkpoint last: on resume the checkpoint is the source of truth."""
        saving = time.perf_counter()
        state = self.state
        write_atomically(
            self.out / "metrics.csv",
            lambda tmp: pd.DataFrame(state.metrics).to_csv(tmp, index=False),
        )
        write_atomically(
            self.out / "spectral.csv",
            lambda tmp: pd.DataFrame(state.spectral).to_csv(tmp, index=False),
        )
        flat = state.flat_eigenvalues()

        def save_eigenvalues(tmp: str) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, **flat)  # uncompressed: rewritten at every save, must be fast

        write_atomically(self.out / "eigenvalues.npz", save_eigenvalues)
        payload = checkpoint_payload(
            state.plain(), model_state, optimizer_state, generator_state, torch_rng, flat
        )
        # serialised in memory first: torch.save reports a full disk as an opaque
        # RuntimeError, a plain file write as OSError(ENOSPC)
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        write_bytes(self.out / "checkpoint.pt", buffer.getvalue())
        state.wall_time += time.perf_counter() - saving  # counted in the next checkpoint

    def finish(self) -> dict:
        """summary.json, the final ESD figure (train.esd_figure), then the done marker."""
        summary = _summary(self.state, self.data, self.config, self.info)
        write_json(self.out / "summary.json", summary)
        if self.config.esd_figure:
            _esd_figure(self.out, self.state, self.config)
        write_text(self.out / "done", f"{summary['status']}\n")
        self.done = True
        return summary


def _summary(state: RunState, data: Dataset, config: TrainConfig, info: dict) -> dict:
    metrics = pd.DataFrame(state.metrics).set_index("epoch")
    rules = {}
    for name, stopper in state.stoppers.items():
        stop = stopper.stop_epoch
        fired = {layer: stopper.fire_epoch.get(layer) for layer in config.layers}
        rules[name] = {
            "stop_epoch": stop,
            "stopped_by": stopper.stopped_by,
            "fire_epoch": fired,
            "test_acc_at_stop": float(metrics.loc[stop, "test_acc"]) if stop is not None else None,
            "test_acc_at_fire": {
                layer: float(metrics.loc[epoch, "test_acc"]) if epoch is not None else None
                for layer, epoch in fired.items()
            },
        }
    last = metrics.index.max()
    return {
        **info,
        "status": state.status,
        "snr": data.snr,
        "epochs_run": int(last),
        "stop_rule": config.stop.name,
        "action": config.action,
        "analysis": state.analysis,
        "rules": rules,
        "final_test_acc": float(metrics.loc[last, "test_acc"]),
        "final_train_acc": float(metrics.loc[last, "train_acc"]),
        "final_types": {
            row["layer"]: row.get("type") for row in state.spectral if row["epoch"] == last
        },
        "wall_time_s": state.wall_time,
    }


def _train_epoch(
    model, optimizer, x_train, y_train, batch_size, generator, device, noise=None, every=1
):
    """One epoch of SGD; (mean loss, accuracy, mean evidence-based criterion or None)
    accumulated on the device: no host synchronisation per batch.  ``noise``
    (``htrain.gradstats.GradientNoise``) measures EB on every ``every``-th step (the first
    included); a batch of one sample has no variance and is left out of the mean."""
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    eb_values = []
    for step, index in enumerate(batches(len(y_train), batch_size, generator, device)):
        measured = noise is not None and step % every == 0 and len(index) > 1
        if noise is not None:
            noise.active = measured
        logits = model(x_train[index])
        loss = nn.functional.cross_entropy(logits, y_train[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if measured:
            eb_values.append(noise.criterion(len(index)))
        optimizer.step()
        loss_sum += loss.detach() * len(index)
        correct += (logits.detach().argmax(1) == y_train[index]).sum()
    eb = torch.stack(eb_values).nanmean().item() if eb_values else None
    return loss_sum.item() / len(y_train), correct.item() / len(y_train), eb


def new_model(config: TrainConfig, data: Dataset, device) -> nn.Module:
    """The run's network, initialised from its seed (PyTorch's default initialisation)."""
    torch.manual_seed(config.seed)
    model = build_model(config.model, data.in_shape, data.num_classes).to(device)
    check_layers(model, list(config.layers))
    return model


def new_optimizer(
    config: TrainConfig, parameters, capturable: bool = False
) -> torch.optim.Optimizer:
    """SGD (plain, or with momentum) as in the paper, or Adam with torch's default betas
    (0.9, 0.999) and eps 1e-8 (optim.momentum is not used by Adam).  ``capturable``: Adam
    keeps its step count on the device, as a CUDA graph of the step needs (same numbers).

    On the CPU, Adam runs torch's fused kernel: the same update in one pass over each
    parameter instead of about ten (a whole NN1 step at batch 64: 9.5 against 14.5 ms with
    the for-loop kernel, 7.7 for SGD, on one busy thread); its state (moments, step) is the
    for-loop kernel's, so checkpoints load either way.
    """
    if config.optimizer == "adam":
        parameters = list(parameters)
        on_cpu = all(p.device.type == "cpu" for p in parameters)
        return torch.optim.Adam(
            parameters,
            lr=config.lr,
            weight_decay=config.weight_decay,
            capturable=capturable,
            fused=True if on_cpu and not capturable else None,
        )
    return torch.optim.SGD(
        parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


@contextmanager
def subnormals_flushed() -> Iterator[None]:
    """While a run trains, the CPU flushes subnormal floats (below 1.2e-38 in float32) to
    zero, as TensorFlow does on CPUs by default; the default (off) comes back after.

    Why: Adam's first moment of a weight whose gradient is zero decays by beta1 = 0.9 per
    step down to a few units of the smallest subnormal, 2^-149, where 0.9 x rounds back to
    the same value; it stays there, and every later step computes on subnormals, which x86
    CPUs do in microcode.  On an NN1 checkpoint (D1 delta 0.9, epoch 40: 16-77% of the first
    moments of layers 2-5 subnormal) an Adam step took 8.8 ms with them flushed against
    11.4-14.5 ms without, on one thread, and Adam epochs had slowed from 15 s to 25 s.  The
    values flushed are smaller than any a run records; GPUs are not affected."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _resume(recorder, payload, model, optimizer, generator) -> None:
    """Load a checkpoint's states; BadCheckpoint with what to do when they do not fit."""
    try:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        generator.set_state(payload["generator"].cpu())
        torch.set_rng_state(payload["torch_rng"].cpu())
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as error:
        raise BadCheckpoint(
            f"{recorder.out / 'checkpoint.pt'} does not fit this model "
            f"({_first_line(error)}); {RESTART_HINT}"
        ) from None


def _on_device(data: Dataset, device) -> dict[str, torch.Tensor | None]:
    """The data's tensors on ``device``, by split name (val: None without a validation set)."""
    return {
        split: None if pair is None else (pair[0].to(device), pair[1].to(device))
        for split, pair in data.splits().items()
    }


def measured(evaluate, model, splits: dict, train_loss, train_acc) -> dict:
    """The metrics every epoch records, shared by the single and the stacked loop: the
    training loss and accuracy given, then ``evaluate(model, x, y)`` -> (loss, accuracy) on
    the test split and on the validation split when there is one."""
    metrics = {"train_loss": train_loss, "train_acc": train_acc}
    metrics["test_loss"], metrics["test_acc"] = evaluate(model, *splits["test"])
    if splits["val"] is not None:
        metrics["val_loss"], metrics["val_acc"] = evaluate(model, *splits["val"])
    return metrics


def run_epoch(epoch, model, optimizer, splits, config: TrainConfig, generator, device) -> dict:
    """Epoch ``epoch`` of one run: train (epoch 0 is the initialisation, only measured),
    then measure; its metrics row (train, test, validation when held out, EB when logged)."""
    x_train, y_train = splits["train"]
    eb = None
    if epoch == 0:  # the initialisation, measured like any other epoch
        train_loss, train_acc = evaluate(model, x_train, y_train)
    elif config.grad_stats:
        with GradientNoise(model) as noise:
            train_loss, train_acc, eb = _train_epoch(
                model, optimizer, x_train, y_train, config.batch_size, generator, device,
                noise, config.grad_stats,
            )  # fmt: skip
    else:
        train_loss, train_acc, _ = _train_epoch(
            model, optimizer, x_train, y_train, config.batch_size, generator, device
        )
    metrics = {"epoch": epoch, **measured(evaluate, model, splits, train_loss, train_acc)}
    if config.grad_stats:
        metrics["eb_criterion"] = eb
    return metrics


def _diverged(model: nn.Module, train_loss: float) -> bool:
    return not math.isfinite(train_loss) or any(
        not torch.isfinite(p).all() for p in model.parameters()
    )


def epoch_bar(first: int, last: int, progress: bool):
    """The progress bar over epochs first..last.  A bar redrawn into a log file is noise:
    only on a terminal (epoch lines go to stdout either way)."""
    from tqdm import tqdm

    return tqdm(
        range(first, last + 1),
        initial=first,
        total=last + 1,
        disable=not progress or not sys.stderr.isatty(),
        desc="epochs",
        leave=False,
    )


def run_training(
    out_dir: str | Path,
    data: Dataset,
    config: TrainConfig,
    info: dict | None = None,
    progress: bool = True,
    config_yaml: str | None = None,
    restart: bool = False,
    wait_for_lock: bool = False,
    checkpoint_every: int = 1,
) -> dict:
    """Train, monitor and record one run in ``out_dir``; resume it if it was interrupted.

    The folder is locked for the whole call (``htrain.rundir.RunLock``: a second process
    gets ``RunInUse``, or waits with ``wait_for_lock``).  A run whose ``done`` marker exists
    is not trained again: its summary is returned.  ``restart`` moves the folder's earlier
    files into ``replaced-<time>/`` and starts over.  ``config_yaml`` is written as
    config.yaml; ``info`` (e.g. the profile and the commit) is copied into summary.json.
    A checkpoint that cannot be used raises ``BadCheckpoint`` with what to do.
    """
    with RunLock(out_dir, wait=wait_for_lock), subnormals_flushed():
        recorder = RunRecorder(out_dir, data, config, info, config_yaml, restart, checkpoint_every)
        if recorder.done:
            return recorder.summary()
        device = pick_device(config.device)
        model = new_model(config, data, device)
        optimizer = new_optimizer(config, model.parameters())
        generator = torch.Generator().manual_seed(config.seed)
        shapes = {k: tuple(w.shape) for k, w in monitored_weights(model, config.layers).items()}
        payload = recorder.load(device, shapes)
        if payload is not None:
            if not recorder.running:  # ended before its summary was written (killed between)
                return recorder.finish()
            _resume(recorder, payload, model, optimizer, generator)
        splits = _on_device(data, device)
        bar = epoch_bar(recorder.next_epoch, config.epochs, progress)
        for epoch in bar:
            began = time.perf_counter()
            metrics = run_epoch(epoch, model, optimizer, splits, config, generator, device)
            weights = monitored_weights(model, config.layers)
            diverged = _diverged(model, metrics["train_loss"])
            rows = recorder.record(epoch, metrics, weights, diverged, time.perf_counter() - began)
            if recorder.due(epoch):
                states = (model.state_dict(), optimizer.state_dict(), generator.get_state())
                recorder.save(*states, torch.get_rng_state())
            if progress:
                bar.write(_line(epoch, metrics, rows, config.stop.name))
            if not recorder.running:
                break
        bar.close()
        return recorder.finish()
