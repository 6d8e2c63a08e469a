"""Run folders -> tidy tables (DomainBed's raw runs -> collect -> tables -> figures).

Each run folder is checked against what a finished run writes; a folder that is incomplete or
malformed in any way goes to ``problems`` with the reason, and the good runs are still
collected: nothing is dropped silently and one bad folder never stops the rest.

The spectral tables are not copied from the runs: they are recomputed from each run's
recorded eigenvalues (``htrain.replay``) under one analysis (the current spike rule, the
run's thresholds and stopping settings, the data's K unless told otherwise), so runs made by
different versions of the code are typed and stopped by the same rule.

Tables (one row per ...):
  runs       run: the swept keys, SNR, status, the epoch each rule fired per layer, its stop
             epoch, test accuracy then and at the end, the final type per layer
  epochs     run and epoch (metrics.csv)
  spectral   run, epoch and layer (the replayed spectral rows)
  problems   run that could not be collected, or diverged (kept in the tables), and why
  esd        run, layer, epoch and eigenvalue, for the runs chosen (``esd_table``); written
             as a folder of one Parquet file per run (``write_esd``)

With ``partial=True`` a run that has not finished (no done marker: still training, or
stopped for good, e.g. a GPU lease that ran out) is collected up to the last epoch its tables
were saved at, with status "partial": its fire epochs are final (a first fire cannot move),
its "never fired" and final_* columns mean "by epochs_run", not at the end of training.
"""

from __future__ import annotations

import json
import os
import platform
import stat
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from heavytail import StopSettings
from heavytail.columns import (
    acc_at_fire_column,
    acc_at_stop_column,
    final_type_column,
    fire_epoch_column,
    stop_epoch_column,
)
from htrain.datasets import n_classes_of
from htrain.io import replace_folder, write_atomically
from htrain.networks import network_entry
from htrain.replay import Analysis, read_eigenvalues, replay
from htrain.runfiles import METRICS_COLUMNS

SUMMARY_KEYS = {"status", "snr", "epochs_run", "rules", "final_test_acc", "final_types"}
SHAPE_COLUMNS = ("epoch", "layer", "n", "N")
# always in runs.csv when present, whether or not they vary
DESCRIPTIVE = (
    "data.name",
    "data.kind",
    "model.name",
    "data.K",
    "data.p",
    "data.delta",
    "data.t",
    "data.label_noise",
    "optim.name",
    "train.batch_size",
    "train.epochs",
    "data.n_per_class",
    "seed",
    "profile.name",
)


class RunProblem(ValueError):
    """Why a run folder cannot be collected."""


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list) else value
    return flat


def analysis_of(config: dict, n_classes: str | int | None = "config") -> Analysis:
    """The analysis a run is collected under: its monitored layers, thresholds and stopping
    settings, and K for the spike rule: ``"config"`` = the run's spectra.n_classes (auto, the
    default, = the data's classes), ``None`` = K unknown (the gap rule), or a number."""
    spectra, stop = config.get("spectra", {}), config.get("early_stop", {})
    layers = spectra.get("layers") or network_entry(config["model"]["name"]).monitored
    if n_classes == "config":
        n_classes = spectra.get("n_classes", "auto")
    if n_classes == "auto":
        n_classes = n_classes_of(config["data"])
    return Analysis(
        layers=tuple(layers),
        C_values=tuple(float(c) for c in spectra.get("C", (0.4, 0.6))),
        n_classes=None if n_classes is None else int(n_classes),
        stop=StopSettings(
            int(stop.get("patience", 1)),
            int(stop.get("start_from_epoch", 1)),
            stop.get("combine", "any"),
        ),
    )


# the largest file of each kind collect reads (a run of the paper's scale writes a few MB);
# a larger one is a problem of that folder, not a reason to read gigabytes
SIZE_LIMITS = {
    "config.yaml": 1 << 20,
    "summary.json": 1 << 20,
    "metrics.csv": 256 << 20,
    "spectral.csv": 256 << 20,
    "eigenvalues.npz": 8 << 30,
}


def checked_file(path: Path) -> Path:
    """``path`` if it is a regular file (a symlink to one is followed) within its size limit;
    otherwise RunProblem: a FIFO would block forever, /dev/zero behind a link never ends."""
    try:
        info = path.stat()
    except OSError as error:
        raise RunProblem(f"{path.name} unreadable: {error.strerror or error}") from None
    if not stat.S_ISREG(info.st_mode):
        raise RunProblem(f"{path.name} is not a regular file (a pipe, device or folder)")
    limit = SIZE_LIMITS.get(path.name)
    if limit is not None and info.st_size > limit:
        raise RunProblem(f"{path.name} is {info.st_size:,} bytes, over the {limit:,} a run writes")
    return path


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without aliases: a run's config.yaml never has one, and a few nested aliases
    expand to gigabytes (the "billion laughs")."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases are not allowed in a run's config.yaml")
        return super().compose_node(parent, index)


def _read_csv(path: Path) -> pd.DataFrame:
    text = checked_file(path).read_text()
    if not text.endswith("\n"):
        raise RunProblem(f"{path.name} is truncated (its last line is cut off)")
    return pd.read_csv(path)


def _mixture_snr(config: dict) -> float | None:
    """The SNR a Gaussian-mixture run's summary.json holds, from its config alone: the class
    means depend only on ``experiment.mixture_spec`` and the seed.  None for MNIST and
    CIFAR10, as summary.json has it."""
    from omegaconf import OmegaConf

    from htrain import data as datasets
    from htrain import experiment

    if config["data"].get("name") != "gmm":
        return None
    try:
        cfg = OmegaConf.create(config)
        kind, K, p, parameter = experiment.mixture_spec(cfg)
        rng = np.random.default_rng(int(cfg.seed))
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise RunProblem(f"config.yaml: the mixture cannot be rebuilt ({error})") from None
    return datasets.mixture_snr(datasets.mixture_means(kind, K, p, rng, **parameter))


def _partial_summary(metrics: pd.DataFrame, config: dict) -> dict:
    """What summary.json would say of a run that stopped at its last saved epoch."""
    if metrics.empty:
        raise RunProblem("incomplete: metrics.csv has no epochs yet")
    last = metrics.iloc[-1]
    return {
        "status": "partial",
        "snr": _mixture_snr(config),
        "epochs_run": int(last["epoch"]),
        "rules": {},
        "final_test_acc": float(last["test_acc"]),
        "final_types": {},
    }


def _read_config(run_dir: Path) -> dict:
    try:
        config = yaml.load(checked_file(run_dir / "config.yaml").read_text(), _NoAliasLoader)
    except (OSError, yaml.YAMLError) as error:
        raise RunProblem(f"config.yaml unreadable: {error}") from None
    if not isinstance(config, dict) or not {"data", "model"} <= set(config):
        raise RunProblem("config.yaml is empty or not a run's config (no data/model)")
    return config


def _read_summary(run_dir: Path, config: dict, finished: bool) -> dict:
    """summary.json, or for an unfinished run a summary rebuilt from metrics.csv."""
    if finished:
        try:
            summary = json.loads(checked_file(run_dir / "summary.json").read_text())
        except (OSError, ValueError) as error:
            raise RunProblem(f"summary.json unreadable: {error}") from None
    else:
        summary = _partial_summary(_read_csv(run_dir / "metrics.csv"), config)
    if not isinstance(summary, dict) or SUMMARY_KEYS - set(summary):
        missing = sorted(SUMMARY_KEYS - set(summary)) if isinstance(summary, dict) else "all"
        raise RunProblem(f"summary.json lacks {missing}")
    return summary


def _read_metrics(run_dir: Path, summary: dict) -> pd.DataFrame:
    """metrics.csv, checked: its columns, one row per epoch the summary counts, test accuracies."""
    metrics = _read_csv(run_dir / "metrics.csv")
    missing = set(METRICS_COLUMNS) - set(metrics.columns)
    if missing:
        raise RunProblem(f"metrics.csv lacks {sorted(missing)}")
    epochs = list(range(int(summary["epochs_run"]) + 1))
    if metrics["epoch"].tolist() != epochs:
        raise RunProblem(
            f"metrics.csv has epochs {_span(metrics['epoch'])} but summary.json says "
            f"0-{summary['epochs_run']}"
        )
    if metrics["test_acc"].isna().any():
        raise RunProblem("metrics.csv has epochs without a test accuracy")
    return metrics


def _read_spectra(run_dir: Path, last: int | None) -> tuple[pd.DataFrame, dict]:
    """spectral.csv and eigenvalues.npz, up to epoch ``last`` when given (an unfinished run)."""
    recorded = _read_csv(run_dir / "spectral.csv")
    if set(SHAPE_COLUMNS) - set(recorded.columns):
        raise RunProblem(f"spectral.csv lacks {sorted(set(SHAPE_COLUMNS) - set(recorded.columns))}")
    try:
        eigenvalues = read_eigenvalues(checked_file(run_dir / "eigenvalues.npz"))
    except Exception as error:  # BadZipFile, truncated arrays, pickles refused...
        raise RunProblem(f"eigenvalues.npz unreadable: {type(error).__name__}: {error}") from None
    if last is not None:
        # a save writes metrics.csv, spectral.csv, eigenvalues.npz in turn: read while a run
        # saves, the later files can be a save ahead; keep the epochs metrics.csv has
        recorded = recorded[recorded["epoch"] <= last]
        eigenvalues = {epoch: by_layer for epoch, by_layer in eigenvalues.items() if epoch <= last}
    return recorded, eigenvalues


def _check_spectra(recorded: pd.DataFrame, eigenvalues: dict, analysis: Analysis) -> dict:
    """Each monitored layer's (n, N); RunProblem when a layer or a recorded spectrum is missing."""
    shapes = {
        layer: (int(rows["n"].iloc[0]), int(rows["N"].iloc[0]))
        for layer, rows in recorded.groupby("layer", sort=False)
    }
    if set(analysis.layers) - set(shapes):
        raise RunProblem(
            f"spectral.csv has no rows for {sorted(set(analysis.layers) - set(shapes))}"
        )
    if "skipped" in recorded:
        usable = recorded[recorded["skipped"].isna() | (recorded["skipped"].astype(str) == "")]
    else:
        usable = recorded
    for epoch, layer in zip(usable["epoch"], usable["layer"], strict=True):
        if layer not in eigenvalues.get(int(epoch), {}):
            raise RunProblem(f"eigenvalues.npz lacks {layer} at epoch {epoch}")
    return shapes


def read_run(run_dir: Path, n_classes: str | int | None = "config", partial: bool = False) -> dict:
    """A finished run's config, summary, metrics and replayed spectral rows; ``RunProblem``
    with the reason when the folder is incomplete or any file is malformed.  ``partial``:
    an unfinished run is read up to its last saved epoch (status "partial")."""
    config = _read_config(run_dir)
    finished = (run_dir / "done").exists()
    if not finished and not partial:
        raise RunProblem("incomplete: no done marker (re-run the sweep to resume it)")
    summary = _read_summary(run_dir, config, finished)
    metrics = _read_metrics(run_dir, summary)
    recorded, eigenvalues = _read_spectra(run_dir, None if finished else int(summary["epochs_run"]))
    analysis = analysis_of(config, n_classes)
    shapes = _check_spectra(recorded, eigenvalues, analysis)
    measured = sorted(int(epoch) for epoch in recorded["epoch"].unique())
    rows, stoppers = replay(eigenvalues, shapes, analysis, measured)
    return {
        "config": flatten(config),
        "summary": summary,
        "metrics": metrics,
        "spectral": pd.DataFrame(rows),
        "stoppers": stoppers,
        "analysis": analysis,
    }


def _span(epochs: pd.Series) -> str:
    return f"{epochs.min()}-{epochs.max()} ({len(epochs)} rows)" if len(epochs) else "none"


def run_row(run: str, keys: dict, loaded: dict) -> dict:
    """The run's row of runs.csv; fire epochs and final types from the replayed analysis."""
    summary, metrics = loaded["summary"], loaded["metrics"].set_index("epoch")
    test_acc = metrics["test_acc"]
    row = {
        "run": run,
        **keys,
        "snr": summary["snr"],
        "status": summary["status"],
        "epochs_run": summary["epochs_run"],
        "final_test_acc": summary["final_test_acc"],
    }
    for rule, stopper in loaded["stoppers"].items():
        stop = stopper.stop_epoch
        row[stop_epoch_column(rule)] = stop
        row[acc_at_stop_column(rule)] = float(test_acc[stop]) if stop is not None else None
        for layer in loaded["analysis"].layers:
            epoch = stopper.fire_epoch.get(layer)
            row[fire_epoch_column(rule, layer)] = epoch
            row[acc_at_fire_column(rule, layer)] = (
                float(test_acc[epoch]) if epoch is not None else None
            )
    spectral = loaded["spectral"]
    last = spectral[spectral["epoch"] == spectral["epoch"].max()]
    for layer in loaded["analysis"].layers:
        types = last.loc[last["layer"] == layer, "type"] if "type" in last else pd.Series()
        row[final_type_column(layer)] = types.iloc[0] if len(types) else None
    return row


def _read_runs(run_dirs, n_classes, partial) -> tuple[dict[str, dict], list[dict]]:
    """Every readable run by folder name, and one problem row per folder that is not (or
    that diverged: kept in the tables and listed)."""
    runs, problems = {}, []
    for run_dir in run_dirs:
        try:
            run_dir.name.encode("utf-8")
        except UnicodeEncodeError:  # a name that is not UTF-8 cannot go into the tables
            shown = run_dir.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            problems.append({"run": shown, "problem": "folder name is not valid UTF-8: rename it"})
            continue
        try:
            runs[run_dir.name] = read_run(run_dir, n_classes, partial)
        except RunProblem as error:
            problems.append({"run": run_dir.name, "problem": str(error)})
            continue
        except Exception as error:  # anything else a damaged folder can raise
            problems.append(
                {"run": run_dir.name, "problem": f"unreadable: {type(error).__name__}: {error}"}
            )
            continue
        if runs[run_dir.name]["summary"]["status"] == "diverged":
            problems.append({"run": run_dir.name, "problem": "diverged (kept in the tables)"})
    return runs, problems


def _key_columns(runs: dict[str, dict]) -> list[str]:
    """The config columns that identify a run: the descriptive ones, then any that vary."""
    configs = pd.DataFrame({name: run["config"] for name, run in runs.items()}).T
    varying = [
        c
        for c in configs.columns
        if configs[c].astype(str).nunique() > 1 and not c.startswith(("paths.", "hydra"))
    ]
    key_columns = [c for c in DESCRIPTIVE if c in configs.columns]
    return key_columns + [c for c in varying if c not in key_columns]


def _provenance(runs: dict[str, dict]) -> dict:
    """The analyses the runs were read under and the commits that trained them."""
    analyses = {json.dumps(run["analysis"].identity(), sort_keys=True) for run in runs.values()}
    commits = Counter(
        f"{run['summary'].get('commit') or 'unknown'}"
        f"{'+dirty' if run['summary'].get('dirty') else ''}"
        for run in runs.values()
    )
    return {"analysis": [json.loads(a) for a in sorted(analyses)], "run_commits": dict(commits)}


def collect(
    runs_dir: Path, n_classes: str | int | None = "config", partial: bool = False
) -> tuple[dict[str, pd.DataFrame], dict]:
    """The tables of every run folder under ``runs_dir`` (with "problems"), and what they
    were made with: the analyses and the commits of the runs (from their summary.json).
    ``partial``: unfinished runs too, up to their last saved epoch (``read_run``)."""
    run_dirs = sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not run_dirs:
        raise FileNotFoundError(f"no run directories under {runs_dir}")
    runs, problems = _read_runs(run_dirs, n_classes, partial)
    key_columns = _key_columns(runs)
    rows, epochs, spectral = [], [], []
    for name, run in runs.items():
        keys = {column: run["config"].get(column) for column in key_columns}
        rows.append(run_row(name, keys, run))
        epochs.append(run["metrics"].assign(run=name, **keys))
        spectral.append(run["spectral"].assign(run=name, **keys))
    tables = {
        "runs": pd.DataFrame(rows),
        "epochs": pd.concat(epochs, ignore_index=True) if epochs else pd.DataFrame(),
        "spectral": pd.concat(spectral, ignore_index=True) if spectral else pd.DataFrame(),
        "problems": pd.DataFrame(problems, columns=["run", "problem"]),
    }
    for table in ("runs", "epochs", "spectral"):  # identifying columns first
        frame = tables[table]
        if not frame.empty:
            first = ["run", *key_columns]
            tables[table] = frame[first + [c for c in frame.columns if c not in first]]
    return tables, _provenance(runs)


def write_tables(tables: dict[str, pd.DataFrame], meta: dict, out_dir: Path) -> None:
    """runs.csv, epochs.csv, problems.csv and spectral.parquet, each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("runs", "epochs", "problems"):
        write_atomically(
            out_dir / f"{name}.csv", lambda tmp, name=name: tables[name].to_csv(tmp, index=False)
        )
    write_atomically(
        out_dir / "spectral.parquet",
        lambda tmp: tables["spectral"].to_parquet(tmp, index=False, compression="zstd"),
    )


def parse_filters(specs: list[str]) -> dict[str, list[str]]:
    """``["data.K=8", "data.delta=0.15,2"]`` -> {"data.K": ["8"], "data.delta": ["0.15", "2"]}."""
    filters = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        if not sep or not key or not values:
            raise ValueError(f"--esd filter {spec!r} must look like KEY=V1[,V2...], e.g. data.K=8")
        filters[key] = values.split(",")
    return filters


def _same(value, wanted: str) -> bool:
    try:
        return float(value) == float(wanted)
    except (TypeError, ValueError):
        return str(value) == wanted


def esd_table(runs_dir: Path, runs: pd.DataFrame, filters: dict[str, list[str]]) -> pd.DataFrame:
    """Every recorded eigenvalue of the runs whose columns match all ``filters``, as float32:
    7 significant digits, half the bytes of float64, and s_hat within 1e-6 of the float64
    value (tests/test_collect.py)."""
    unknown = [key for key in filters if key not in runs.columns]
    if unknown:
        raise ValueError(f"--esd keys {unknown} are not run columns; use one of {list(runs)}")
    chosen = runs
    for key, values in filters.items():
        chosen = chosen[chosen[key].map(lambda v, values=values: any(_same(v, w) for w in values))]
    if chosen.empty:
        raise ValueError(f"--esd {filters} matches no collected run")
    frames = []
    for run in chosen["run"]:
        for epoch, by_layer in read_eigenvalues(runs_dir / run / "eigenvalues.npz").items():
            for layer, values in by_layer.items():
                frames.append(
                    pd.DataFrame(
                        {
                            "run": run,
                            "layer": layer,
                            "epoch": epoch,
                            "eigenvalue": np.sort(values).astype(np.float32),
                        }
                    )
                )
    table = pd.concat(frames, ignore_index=True)
    table["layer"] = table["layer"].astype("category")
    table["run"] = table["run"].astype("category")
    return table.sort_values(["run", "layer", "epoch", "eigenvalue"], ignore_index=True)


def esd_history(esd: pd.DataFrame, run: str) -> dict[int, dict[str, np.ndarray]]:
    """One run's eigenvalues from a collected esd table, as ``replay`` takes them."""
    rows = esd[esd["run"] == run]
    history: dict[int, dict[str, np.ndarray]] = {}
    for (layer, epoch), values in rows.groupby(["layer", "epoch"], observed=True)["eigenvalue"]:
        history.setdefault(int(epoch), {})[str(layer)] = values.to_numpy(np.float64)
    return history


def manifest(tables: dict, meta: dict, command: str | None, wall_s: float | None) -> dict:
    """Where the collected runs came from: the commits that made them, the command, the
    analysis, the machine, and enough to judge the timings."""
    import torch

    runs = tables["runs"]
    profiles = sorted(runs["profile.name"].dropna().unique()) if "profile.name" in runs else []
    epochs = tables["epochs"]
    return {
        "command": command,
        "collected": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **meta,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
        },
        "profile": profiles,
        "runs": len(runs),
        "problems": len(tables["problems"]),
        "sweep_wall_time_s": wall_s,
        "sum_of_run_wall_times_s": float(epochs["wall_time_s"].sum()) if len(epochs) else None,
    }


def write_esd(esd: pd.DataFrame, path: Path) -> None:
    """esd.parquet, small enough for git: a folder holding one Parquet file per run (a
    Parquet dataset: ``pd.read_parquet(path)`` reads it whole, in run order), so that adding
    runs to a collection adds files and leaves the bytes of the others as they were: git
    stores a finished run's eigenvalues once, not again at every re-collect. Each file has
    float32 eigenvalues stored byte-stream-split (the bytes of equal significance together,
    which zstd compresses; 6.4 -> 3.0 MB on a quick NN1 panel's seed 0), dictionaries only
    for the run and layer names. Replaces what was at ``path`` (an older single file too)
    only once every file is written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def fill(folder: Path) -> None:
        for run, rows in esd.groupby("run", observed=True, sort=True):
            rows = rows.reset_index(drop=True)
            for name in ("run", "layer"):
                rows[name] = rows[name].astype(str).astype("category")
            pq.write_table(
                pa.Table.from_pandas(rows, preserve_index=False),
                folder / f"{run}.parquet",
                compression="zstd",
                compression_level=19,
                use_dictionary=["run", "layer"],
                use_byte_stream_split=["eigenvalue"],
            )

    replace_folder(path, fill)
