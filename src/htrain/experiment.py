"""From a composed config (configs/) to plain arguments: the data set and a ``TrainConfig``.

``scripts/run.py`` is the Hydra entry point; everything it needs to turn a config into a run
lives here, so that tests compose the real configs and call these functions directly.  Every
value is checked before any work, with a one-line ``ValueError`` that says what to fix.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from htrain.data import Dataset


def _number(value, name: str, *, integer: bool = False, low=None, high=None, open_low=False):
    """``value`` as a finite number (an integer when asked) inside the given bounds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if integer and value != int(value):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if low is not None and (value <= low if open_low else value < low):
        if low == 0:
            wanted = "a positive number" if open_low else "a non-negative number"
        else:
            wanted = f"greater than {low}" if open_low else f"at least {low}"
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be at most {high}, got {value!r}")
    return int(value) if integer else float(value)


def _switch(value, name: str) -> bool:
    """``value`` as a bool; a typo such as ``flase`` is a string, and would count as true."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def mixture_spec(cfg) -> tuple[str, int, int, dict[str, float]]:
    """A Gaussian-mixture config's (kind, K, p, {"delta" or "t": value}), checked; the value
    from data.snr when it is set.  With the seed, all the class means depend on."""
    from htrain import data as datasets

    spec = cfg.data
    seed = _number(cfg.seed, "seed", integer=True, low=0)
    K = _number(spec.K, "data.K", integer=True, low=2)
    p = _number(spec.p, "data.p", integer=True, low=2)
    if spec.kind == "d2" and K > p:
        raise ValueError(f"D2 needs data.K <= data.p, got K={K}, p={p}")
    name = "delta" if spec.kind == "d1" else "t"
    if spec.kind not in ("d1", "d2"):
        raise ValueError(f"data.kind must be d1 or d2, got {spec.kind!r}")
    if spec.get("snr") is not None:
        snr = _number(spec.snr, "data.snr", low=0)
        value = datasets.parameter_for_snr(spec.kind, snr, K, p, seed)
    else:
        if spec.get(name) is None:
            raise ValueError(f"data.{name} must be a non-negative number, got None")
        value = _number(spec[name], f"data.{name}", low=0)
    return spec.kind, K, p, {name: value}


def _check_memory(cfg) -> None:
    """A generated data set (a mixture, MNIST-1D) is made in memory: one that would take more
    than half of this machine's memory is refused before it is drawn."""
    spec = cfg.data
    size = {"gmm": lambda: int(spec.p), "mnist1d": lambda: 40}.get(spec.name)
    if size is None:
        return  # the real data sets are as large as their files
    features = size()
    classes = num_classes(cfg)
    samples = classes * (int(spec.n_per_class) + int(spec.n_test_per_class))
    needed = 8 * samples * features  # float64 while drawn
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if needed > memory / 2:
        raise ValueError(
            f"data.n_per_class={spec.n_per_class} needs {needed / 2**30:.1f} GiB for the data "
            f"alone, more than half of this machine's {memory / 2**30:.0f} GiB; lower it"
        )


def load_data(cfg) -> Dataset:
    """The data set the config names (``htrain.datasets``), checked before anything is
    trained, with its label noise and validation split."""
    from htrain import data as datasets
    from htrain.datasets import dataset_entry

    spec = cfg.data
    entry = dataset_entry(spec.name)
    seed = _number(cfg.seed, "seed", integer=True, low=0)
    val_fraction = _number(spec.val_fraction, "data.val_fraction", low=0, high=0.99)
    label_noise = _number(spec.get("label_noise", 0.0), "data.label_noise", low=0, high=0.95)
    if spec.name == "gmm":
        mixture_spec(cfg)
    else:
        timeout = spec.get("download_timeout_s")
        if timeout is not None:
            _number(timeout, "data.download_timeout_s", low=0, open_low=True)
    for key in ("n_per_class", "n_test_per_class"):
        if spec.get(key) is not None or spec.name in ("gmm", "mnist1d"):
            _number(spec.get(key), f"data.{key}", integer=True, low=1)
    _check_memory(cfg)
    data = entry.load(cfg)
    data = datasets.with_label_noise(data, label_noise, seed)
    return datasets.hold_out(data, val_fraction, seed)


def n_classes_setting(cfg) -> int | str | None:
    """spectra.n_classes: "auto" (the data's K), null (no K: the gap rule) or a number."""
    value = cfg.spectra.get("n_classes", "auto")
    if value is None or value == "auto":
        return value
    return _number(value, "spectra.n_classes", integer=True, low=1)


def num_classes(cfg) -> int:
    """The data's number of classes, known from the config before any data is loaded."""
    from htrain.datasets import n_classes_of

    return n_classes_of(cfg.data)


def train_config(cfg):
    """The ``TrainConfig`` of a composed config (checked: ``TrainConfig.check``)."""
    from htrain.networks import network_entry
    from htrain.train import StopRule, TrainConfig

    network = network_entry(cfg.model.name)
    layers = cfg.spectra.layers
    if layers is None:
        layers = list(network.monitored)
    elif len(layers) == 0:
        raise ValueError(
            "spectra.layers is empty: name the layers to monitor, or null for the paper's"
        )
    setting = n_classes_setting(cfg)
    stop = cfg.early_stop
    config = TrainConfig(
        model=cfg.model.name,
        layers=tuple(layers),
        epochs=_number(cfg.train.epochs, "train.epochs", integer=True, low=1),
        batch_size=_number(cfg.train.batch_size, "train.batch_size", integer=True, low=1),
        # float32 holds the step's lr x gradient: above 1e30 the optimiser itself overflows
        lr=_number(cfg.optim.lr, "optim.lr", low=0, open_low=True, high=1e30),
        optimizer=str(cfg.optim.get("name", "sgd")),
        momentum=_number(cfg.optim.momentum, "optim.momentum", low=0),
        weight_decay=_number(cfg.optim.weight_decay, "optim.weight_decay", low=0),
        seed=_number(cfg.seed, "seed", integer=True, low=0),
        C_values=tuple(_number(c, "spectra.C", low=0, open_low=True) for c in cfg.spectra.C),
        stop=StopRule(
            threshold=stop.threshold,
            C=_number(stop.C, "early_stop.C", low=0, open_low=True),
            patience=_number(stop.patience, "early_stop.patience", integer=True, low=1),
            start_from_epoch=_number(
                stop.start_from_epoch, "early_stop.start_from_epoch", integer=True, low=0
            ),
            combine=stop.combine,
        ),
        action=stop.action,
        spectra_every=_number(cfg.spectra.every, "spectra.every", integer=True, low=1),
        device=str(cfg.train.device),
        n_classes=num_classes(cfg) if setting == "auto" else setting,
        grad_stats=_number(cfg.train.get("grad_stats", 4), "train.grad_stats", integer=True, low=0),
        esd_figure=_switch(cfg.train.get("esd_figure", True), "train.esd_figure"),
    )
    return config


def git_state(root: str | Path) -> dict:
    """The commit of the code that made a run and whether the tree had uncommitted changes
    (None when ``root`` is not a git checkout)."""

    def git(*args: str) -> str | None:
        try:
            found = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return found.stdout if found.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit.strip() if commit else None,
        "dirty": None if status is None else bool(status.strip()),
    }


def unwritable_reason(folder: str | Path) -> str | None:
    """Why files cannot be created in ``folder`` (or in the existing folder that would hold
    it), or None when they can."""
    path = Path(folder).absolute()
    too_long = [part for part in path.parts if len(os.fsencode(part)) > 255]
    if too_long:
        return f"the folder name {too_long[0][:40]}... is over 255 bytes, the file systems' limit"
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as error:
        return f"{probe} is not writable ({error.strerror or error})"
    return None


class CheckOutputFolder:
    """Hydra callback: an output folder that cannot be written ends the command in one line,
    before Hydra creates it (Hydra's own failure is a multi-line traceback)."""

    def _check(self, folder) -> None:
        reason = unwritable_reason(str(folder))
        if reason is not None:
            sys.exit(f"error: cannot write runs to {folder}: {reason}; set paths.output_dir")

    def on_run_start(self, config, **kwargs) -> None:
        self._check(config.hydra.run.dir)

    def on_multirun_start(self, config, **kwargs) -> None:
        from hydra.core.hydra_config import HydraConfig

        HydraConfig.instance().set_config(config)  # for ${hydra:...} in the sweep folder
        self._check(config.hydra.sweep.dir)

    # the other hooks Hydra calls on every callback
    def on_run_end(self, config, **kwargs) -> None:
        pass

    def on_multirun_end(self, config, **kwargs) -> None:
        pass

    def on_job_start(self, config, **kwargs) -> None:
        pass

    def on_job_end(self, config, job_return, **kwargs) -> None:
        pass

    def on_compute_sweep_end(self, config, **kwargs) -> None:
        pass


REPOSITORY = Path(__file__).resolve().parents[2]


def run_info(cfg, out_dir: str | Path, choices) -> dict:
    """What summary.json records beside the results: the run folder, the experiment, the
    profile, the seed, and the commit of the code with whether it had uncommitted changes."""
    return {
        "run_dir": str(out_dir),
        "experiment": choices.get("experiment") if choices is not None else None,
        "profile": cfg.profile.name,
        "seed": int(cfg.seed),
        **git_state(REPOSITORY),
    }


@dataclass(frozen=True)
class Prepared:
    """One composed config made ready to train, every value checked (``prepare``): where the
    run goes, its ``TrainConfig``, its data, what summary.json records beside the results,
    the config.yaml it writes, and the runner's switches."""

    out_dir: Path
    config: object  # htrain.train.TrainConfig
    data: Dataset
    info: dict
    config_yaml: str
    restart: bool = False
    progress: bool = False
    wait_for_lock: bool = False


def prepare(cfg, out_dir: str | Path, choices) -> Prepared:
    """The one way from a composed config to a run, used by scripts/run.py, the batched
    launcher and the tests: the values checked (``train_config``, then ``load_data``, which
    raise a one-line ValueError, FileNotFoundError or TimeoutError before any training).
    Hydra stays outside: ``cfg`` is the job's config (no ``hydra`` node) and ``choices`` the
    config groups chosen, ``hydra.runtime.choices``."""
    from omegaconf import OmegaConf

    config = train_config(cfg)
    data = load_data(cfg)
    return Prepared(
        Path(out_dir),
        config,
        data,
        run_info(cfg, out_dir, choices),
        OmegaConf.to_yaml(cfg, resolve=True),
        restart=bool(cfg.train.restart),
        progress=bool(cfg.train.progress),
        wait_for_lock=bool(cfg.train.wait_for_lock),
    )


def run_experiment(prepared: Prepared) -> dict:
    """Train a prepared run into its folder: the run's summary."""
    from htrain.train import run_training

    return run_training(
        prepared.out_dir,
        prepared.data,
        prepared.config,
        info=prepared.info,
        progress=prepared.progress,
        config_yaml=prepared.config_yaml,
        restart=prepared.restart,
        wait_for_lock=prepared.wait_for_lock,
    )


def run_job(cfg, out_dir: str | Path, choices) -> dict:
    """What ``scripts/run.py`` does with a composed config (``prepare``, then
    ``run_experiment``): the run's summary.  Every failure a user can fix ends the job as
    ``SystemExit`` with one line that says what to do: bad values and missing data before
    any work, a folder another process holds, a checkpoint that cannot be used, a folder
    that cannot be written (nothing half-written: every file is atomic), and Ctrl-C."""
    from htrain.rundir import BadCheckpoint, RunInUse

    try:
        prepared = prepare(cfg, out_dir, choices)
    except (ValueError, FileNotFoundError, TimeoutError) as error:
        raise SystemExit(f"error: {error}") from error
    try:
        return run_experiment(prepared)
    except KeyboardInterrupt:
        raise SystemExit(
            f"interrupted: {out_dir} keeps every epoch saved so far; the same command resumes it"
        ) from None
    except (ValueError, RunInUse, BadCheckpoint) as error:
        raise SystemExit(f"error: {error}") from error
    except OSError as error:
        where = error.filename or out_dir
        raise SystemExit(
            f"error: cannot write the run to {where}: {error.strerror or error}"
        ) from error
