"""Train one network and record its spectra: `python scripts/run.py [experiment=NAME] ...`.

Hydra stays here: the config is checked and turned into plain arguments for ``htrain``
(data, model, training loop) and ``heavytail`` (the spectra).  See configs/config.yaml.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

# keys that do not change a run's numbers, left out of its name
NOT_IN_RUN_NAME = {"train": ("progress", "device", "threads")}


def run_name(*, _root_: DictConfig) -> str:
    """`<data>-<model>-<hash>`: a stable hash of the values that define the run, so the same
    command finds (and resumes) the same directory and two sweeps never collide."""
    values = {
        key: OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
        for key in ("data", "model", "optim", "train", "spectra", "early_stop", "seed")
        for node in [_root_[key]]
    }
    for group, keys in NOT_IN_RUN_NAME.items():
        for key in keys:
            values[group].pop(key, None)
    digest = hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]
    data = _root_.data
    prefix = f"{data.name}_{data.kind}" if data.name == "gmm" else data.name
    return f"{prefix}-{_root_.model.name}-{digest}"


OmegaConf.register_new_resolver("run_name", run_name, replace=True)


def load_data(cfg: DictConfig):
    """The data set the config names, checked before anything is trained."""
    from htrain import data as datasets

    spec = cfg.data
    seed = int(cfg.seed)
    if spec.name == "gmm":
        if spec.K < 2:
            raise ValueError(f"data.K must be at least 2, got {spec.K}")
        if spec.n_per_class < 1 or spec.n_test_per_class < 1:
            raise ValueError("data.n_per_class and data.n_test_per_class must be positive")
        if spec.kind == "d2" and spec.K > spec.p:
            raise ValueError(f"D2 needs data.K <= data.p, got K={spec.K}, p={spec.p}")
        name = "delta" if spec.kind == "d1" else "t"
        value = spec[name]
        if spec.snr is not None:
            if spec.snr < 0:
                raise ValueError(f"data.snr must be non-negative, got {spec.snr}")
            value = datasets.parameter_for_snr(spec.kind, spec.snr, spec.K, spec.p, seed)
        if value is None or value < 0:
            raise ValueError(f"data.{name} must be a non-negative number, got {value}")
        data = datasets.gaussian_mixture(
            spec.kind,
            spec.K,
            spec.p,
            spec.n_per_class,
            spec.n_test_per_class,
            seed,
            **{name: value},
        )
    elif spec.name in ("mnist", "cifar10"):
        loader = datasets.load_mnist if spec.name == "mnist" else datasets.load_cifar10
        full = loader(cfg.paths.data_dir, bool(spec.download), int(spec.size))
        x_train, y_train = datasets.class_subset(full.x_train, full.y_train, spec.n_per_class, seed)
        x_test, y_test = datasets.class_subset(
            full.x_test, full.y_test, spec.n_test_per_class, seed
        )
        data = datasets.Dataset(x_train, y_train, x_test, y_test, full.num_classes)
    else:
        raise ValueError(f"unknown data set {spec.name!r}; choose gmm, mnist or cifar10")
    return datasets.hold_out(data, float(spec.val_fraction), seed)


def train_config(cfg: DictConfig):
    from htrain.models import PAPER_LAYERS
    from htrain.train import StopRule, TrainConfig

    if cfg.model.name not in PAPER_LAYERS:
        raise ValueError(f"unknown model {cfg.model.name!r}; choose from {', '.join(PAPER_LAYERS)}")
    layers = cfg.spectra.layers or PAPER_LAYERS[cfg.model.name]
    stop = cfg.early_stop
    return TrainConfig(
        model=cfg.model.name,
        layers=tuple(layers),
        epochs=int(cfg.train.epochs),
        batch_size=int(cfg.train.batch_size),
        lr=float(cfg.optim.lr),
        momentum=float(cfg.optim.momentum),
        weight_decay=float(cfg.optim.weight_decay),
        seed=int(cfg.seed),
        C_values=tuple(float(c) for c in cfg.spectra.C),
        stop=StopRule(
            threshold=stop.threshold,
            C=float(stop.C),
            patience=int(stop.patience),
            start_from_epoch=int(stop.start_from_epoch),
            combine=stop.combine,
        ),
        action=stop.action,
        conv=cfg.spectra.conv,
        spectra_every=int(cfg.spectra.every),
        device=cfg.train.device,
    )


def print_summary(summary: dict) -> None:
    print(
        f"\nstatus: {summary['status']}, {summary['epochs_run']} epochs, "
        f"SNR {summary['snr'] if summary['snr'] is None else round(summary['snr'], 3)}, "
        f"final test accuracy {summary['final_test_acc']:.4f}, "
        f"final types {summary['final_types']}"
    )
    for rule, result in summary["rules"].items():
        fired = (
            ", ".join(
                f"{layer} at epoch {epoch}"
                for layer, epoch in result["fire_epoch"].items()
                if epoch is not None
            )
            or "never"
        )
        at_stop = result["test_acc_at_stop"]
        tail = f"; test accuracy then {at_stop:.4f}" if at_stop is not None else ""
        print(f"  {rule:11s} fired: {fired}{tail}")


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
def main(cfg: DictConfig) -> None:
    from htrain.io import write_text
    from htrain.train import run_training

    out_dir = Path(hydra.core.hydra_config.HydraConfig.get().runtime.output_dir)
    if cfg.train.threads:
        import torch

        torch.set_num_threads(int(cfg.train.threads))  # parallel jobs must not oversubscribe
    try:
        config = train_config(cfg)
        config.check()
        data = load_data(cfg)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")  # before any training: one line that says what to fix
    write_text(out_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    info = {
        "run_dir": str(out_dir),
        "experiment": cfg.get("experiment_name"),
        "profile": cfg.profile.name,
        "seed": int(cfg.seed),
    }
    try:
        summary = run_training(out_dir, data, config, info=info, progress=cfg.train.progress)
    except ValueError as error:  # a monitored layer not in the model, an input it cannot take
        sys.exit(f"error: {error}")
    print_summary(summary)
    print(f"run directory: {out_dir}")


if __name__ == "__main__":
    main()
