"""The training loop: per-epoch metrics and spectra, spectral early stopping, resumable runs.

A run directory holds (each file written atomically, ``done`` last):
  metrics.csv       one row per epoch (epoch 0 = the initialisation)
  spectral.csv      one row per epoch and monitored layer
  eigenvalues.npz   the eigenvalues, key "<layer>/<epoch>"
  summary.json      status, SNR, stop epoch per rule and layer, accuracies, wall time
  checkpoint.pt     model, optimiser, RNG states and the history, after every epoch
  esd_final.png     the monitored layers' last spectra against their MP fits
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

import heavytail as ht
from heavytail.esd import matrix_shape
from htrain.data import Dataset, batches
from htrain.io import write_atomically, write_json, write_text
from htrain.models import build_model, check_layers

# Columns every metrics.csv and spectral.csv has (collect.py checks runs against them);
# spectral.csv also has threshold_<rule> and fires_<rule> for each rule in spectra.C.
METRICS_COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "spectra_time_s",
    "wall_time_s",
)
SPECTRAL_COLUMNS = (
    "epoch",
    "layer",
    "n",
    "N",
    "ratio",
    "sigma2",
    "n_spikes",
    "s_hat",
    "type",
    "tail_extent",
    "alpha",
    "skipped",
    "threshold_calibrated",
    "fires_calibrated",
)


@dataclass(frozen=True)
class StopRule:
    """The rule that stops the run when ``action == "stop"`` (all rules are recorded)."""

    threshold: str = "paper"
    C: float = 0.4
    patience: int = 1
    start_from_epoch: int = 1
    combine: str = "any"

    @property
    def name(self) -> str:
        return rule_name(self.threshold, self.C)


def rule_name(threshold: str, C: float) -> str:
    return f"paper_C{C:g}" if threshold == "paper" else "calibrated"


def recorded_rules(config: TrainConfig) -> list[tuple[str, str, float]]:
    """(name, threshold rule, C) of every rule a run records: the paper rule for each C in
    spectra.C, and the calibrated rule (which has no C)."""
    paper = [(rule_name("paper", C), "paper", C) for C in config.C_values]
    return [*paper, ("calibrated", "calibrated", config.C_values[0])]


@dataclass(frozen=True)
class TrainConfig:
    model: str
    layers: tuple[str, ...]
    epochs: int
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    seed: int = 0
    C_values: tuple[float, ...] = (0.4, 0.6)
    stop: StopRule = StopRule()
    action: str = "record"
    conv: str = "flatten"
    spectra_every: int = 1
    device: str = "auto"

    def check(self) -> None:
        """One-line errors for values that would fail later, raised before any work."""
        if self.epochs < 1:
            raise ValueError(f"train.epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"train.batch_size must be positive, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"optim.lr must be positive, got {self.lr}")
        if self.action not in ("record", "stop"):
            raise ValueError(f"early_stop.action must be record or stop, got {self.action!r}")
        if self.spectra_every < 1:
            raise ValueError(f"spectra.every must be at least 1, got {self.spectra_every}")
        if not self.layers:
            raise ValueError("spectra.layers is empty: name at least one layer to monitor")
        if self.stop.threshold == "paper" and self.stop.C not in self.C_values:
            raise ValueError(f"early_stop.C={self.stop.C} must be one of spectra.C={self.C_values}")
        ht.SpectralEarlyStopping(  # validates patience, combine and the threshold rule
            layers=self.layers,
            threshold=self.stop.threshold,
            patience=self.stop.patience,
            combine=self.stop.combine,
        )


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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
    model: nn.Module, config: TrainConfig, epoch: int
) -> tuple[list[dict], dict[str, np.ndarray], dict[str, dict]]:
    """Per monitored layer: its row of spectral.csv, its eigenvalues and, per rule, its
    ``SpectralDistance`` with that rule's threshold (None when the spectrum is undefined)."""
    modules = dict(model.named_modules())
    rows, eigenvalues, per_rule = [], {}, {}
    rules = recorded_rules(config)
    for layer in config.layers:
        weight = modules[layer].weight
        n, big_n = matrix_shape(tuple(weight.shape), config.conv)
        row = {"epoch": epoch, "layer": layer, "n": n, "N": big_n, "ratio": n / big_n}
        try:
            eigs = ht.esd(weight, conv=config.conv)
            result = ht.classify(
                eigs, C=config.C_values[0], threshold="calibrated", ratio=n / big_n
            )
        except ValueError as error:  # NaN weights after divergence, degenerate spectra
            row["skipped"] = str(error)
            rows.append(row)
            for name, _, _ in rules:
                per_rule.setdefault(name, {})[layer] = None
            continue
        eigenvalues[layer] = eigs
        distance = result.distance
        row.update(
            sigma2=distance.fit.sigma2 if distance else math.nan,
            n_spikes=result.n_spikes,
            s_hat=result.s_hat,
            type=result.type,
            tail_extent=result.tail_extent,
            alpha=result.alpha,
            skipped="",
        )
        for name, threshold, C in rules:
            if distance is None:
                level, layer_result = math.nan, None
            else:
                level = (
                    distance.threshold
                    if threshold == "calibrated"
                    else ht.paper_threshold(distance.n, C)
                )
                layer_result = replace(
                    distance, threshold=level, fires=bool(distance.s_hat > level), rule=threshold
                )
            row[f"threshold_{name}"] = level
            row[f"fires_{name}"] = bool(layer_result.fires) if layer_result else False
            per_rule.setdefault(name, {})[layer] = layer_result
        rows.append(row)
    return rows, eigenvalues, per_rule


def _new_state(config: TrainConfig) -> dict:
    stoppers = {
        name: ht.SpectralEarlyStopping(
            layers=config.layers,
            C=C,
            threshold=threshold,
            patience=config.stop.patience,
            start_from_epoch=config.stop.start_from_epoch,
            combine=config.stop.combine,
        )
        for name, threshold, C in recorded_rules(config)
    }
    return {
        "epoch": -1,
        "metrics": [],
        "spectral": [],
        "eigenvalues": {},
        "stoppers": stoppers,
        "status": "running",
        "wall_time": 0.0,
    }


def _save(out: Path, state: dict, model, optimizer, generator) -> None:
    """Tables first, checkpoint last: on resume the checkpoint is the source of truth."""
    write_atomically(
        out / "metrics.csv", lambda tmp: pd.DataFrame(state["metrics"]).to_csv(tmp, index=False)
    )
    write_atomically(
        out / "spectral.csv", lambda tmp: pd.DataFrame(state["spectral"]).to_csv(tmp, index=False)
    )

    def save_eigenvalues(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            arrays = {
                f"{layer}/{epoch}": values
                for epoch, by_layer in state["eigenvalues"].items()
                for layer, values in by_layer.items()
            }
            np.savez(handle, **arrays)  # uncompressed: rewritten every epoch, must be fast

    write_atomically(out / "eigenvalues.npz", save_eigenvalues)
    checkpoint = {
        "state": state,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    write_atomically(out / "checkpoint.pt", lambda tmp: torch.save(checkpoint, tmp))


def _summary(state: dict, data: Dataset, config: TrainConfig, info: dict) -> dict:
    metrics = pd.DataFrame(state["metrics"]).set_index("epoch")
    rules = {}
    for name, stopper in state["stoppers"].items():
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
        "status": state["status"],
        "snr": data.snr,
        "epochs_run": int(last),
        "stop_rule": config.stop.name,
        "action": config.action,
        "rules": rules,
        "final_test_acc": float(metrics.loc[last, "test_acc"]),
        "final_train_acc": float(metrics.loc[last, "train_acc"]),
        "final_types": {
            row["layer"]: row.get("type") for row in state["spectral"] if row["epoch"] == last
        },
        "wall_time_s": state["wall_time"],
    }


def _esd_figure(out: Path, state: dict, config: TrainConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from heavytail.viz import plot_esd

    last = max((row["epoch"] for row in state["spectral"]), default=None)
    layers = [layer for layer in config.layers if layer in state["eigenvalues"].get(last, {})]
    if not layers:
        return
    figure, axes = plt.subplots(1, len(layers), figsize=(4.5 * len(layers), 3.8), squeeze=False)
    for ax, layer in zip(axes[0], layers, strict=True):
        eigs = state["eigenvalues"][last][layer]
        row = next(r for r in state["spectral"] if r["epoch"] == last and r["layer"] == layer)
        result = ht.classify(eigs, C=config.C_values[0], threshold="calibrated", ratio=row["ratio"])
        plot_esd(ax, eigs, result, title=f"{layer}, epoch {last}")
    figure.tight_layout()
    write_atomically(out / "esd_final.png", lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
    plt.close(figure)


def _line(epoch: int, metrics: dict, rows: list[dict], rule: str) -> str:
    parts = [f"epoch {epoch:3d}  train {metrics['train_acc']:.3f}  test {metrics['test_acc']:.3f}"]
    for row in rows:
        if row.get("skipped"):
            parts.append(f"{row['layer']} -")
            continue
        mark = "*" if row[f"fires_{rule}"] else " "
        parts.append(
            f"{row['layer']} {row['s_hat']:.3f}/{row[f'threshold_{rule}']:.3f}{mark} {row['type']}"
        )
    return " | ".join(parts)


def run_training(
    out_dir: str | Path,
    data: Dataset,
    config: TrainConfig,
    info: dict | None = None,
    progress: bool = True,
) -> dict:
    """Train, monitor and record one run in ``out_dir``; resume it if it was interrupted.

    A run whose ``done`` marker exists is not trained again: its summary is returned.
    ``info`` (e.g. the resolved config values) is copied into summary.json.
    """
    from tqdm import tqdm

    config.check()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "done").exists():
        import json

        return json.loads((out / "summary.json").read_text())
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    model = build_model(config.model, data.in_shape, data.num_classes).to(device)
    check_layers(model, list(config.layers))
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)
    state = _new_state(config)
    if (out / "checkpoint.pt").exists():
        checkpoint = torch.load(out / "checkpoint.pt", map_location=device, weights_only=False)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        generator.set_state(checkpoint["generator"])
        torch.set_rng_state(checkpoint["torch_rng"])
        state = checkpoint["state"]
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    primary = state["stoppers"][config.stop.name]
    start = state["epoch"] + 1
    bar = tqdm(
        range(start, config.epochs + 1),
        initial=start,
        total=config.epochs + 1,
        disable=not progress,
        desc="epochs",
        leave=False,
    )
    for epoch in bar:
        began = time.perf_counter()
        if epoch == 0:  # the initialisation, measured like any other epoch
            train_loss, train_acc = evaluate(model, x_train, y_train)
        else:
            # accumulated on the device: no host synchronisation per batch
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            for index in batches(len(y_train), config.batch_size, generator, device):
                logits = model(x_train[index])
                loss = nn.functional.cross_entropy(logits, y_train[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach() * len(index)
                correct += (logits.detach().argmax(1) == y_train[index]).sum()
            train_loss = loss_sum.item() / len(y_train)
            train_acc = correct.item() / len(y_train)
        test_loss, test_acc = evaluate(model, x_test, y_test)
        metrics = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "test_loss": test_loss,
            "test_acc": test_acc,
        }
        if data.x_val is not None:
            metrics["val_loss"], metrics["val_acc"] = evaluate(
                model, data.x_val.to(device), data.y_val.to(device)
            )
        diverged = not math.isfinite(train_loss) or any(
            not torch.isfinite(p).all() for p in model.parameters()
        )
        rows: list[dict] = []
        spectra_began = time.perf_counter()
        if epoch % config.spectra_every == 0 or diverged or epoch == config.epochs:
            rows, eigenvalues, per_rule = spectral_rows(model, config, epoch)
            state["eigenvalues"][epoch] = eigenvalues
            state["spectral"].extend(rows)
            for name, stopper in state["stoppers"].items():
                stopper.observe(epoch, per_rule[name])
        metrics["spectra_time_s"] = time.perf_counter() - spectra_began
        metrics["wall_time_s"] = time.perf_counter() - began
        state["wall_time"] += metrics["wall_time_s"]
        state["metrics"].append(metrics)
        state["epoch"] = epoch
        if diverged:
            state["status"] = "diverged"
        elif config.action == "stop" and primary.should_stop:
            state["status"] = "stopped"
        elif epoch == config.epochs:
            state["status"] = "finished"
        _save(out, state, model, optimizer, generator)
        if progress:
            tqdm.write(_line(epoch, metrics, rows, config.stop.name))
        if state["status"] != "running":
            break
    bar.close()
    summary = _summary(state, data, config, info or {})
    write_json(out / "summary.json", summary)
    _esd_figure(out, state, config)
    write_text(out / "done", f"{summary['status']}\n")
    return summary
