"""Collect run directories into tidy tables: `python scripts/collect.py NAME [--runs DIR]`.

Reads every run under outputs/sweeps/NAME (or --runs), checks its files against the expected
schema and writes, under results/NAME (or --out):
  runs.csv           one row per run: the swept keys, SNR, seed, status, the epoch each rule
                     fired per layer and its stop epoch, test accuracy then and at the end,
                     the final type per layer
  epochs.csv         one row per run and epoch (metrics.csv of every run)
  spectral.parquet   one row per run, epoch and layer (spectral.csv of every run)
  problems.csv       the runs that are incomplete, diverged or malformed, and why
  esd.parquet        with --esd KEY=V1,V2 ...: one row per eigenvalue (run, layer, epoch,
                     eigenvalue) of the runs matching every filter, every recorded epoch;
                     the ESD figures read it (all runs' eigenvalues would not fit in git)
  manifest.json      with --command: commit, command, date, machine, profile, wall time
Nothing is dropped silently: a run with a problem is listed there (diverged runs also stay
in the tables, with their status).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from htrain.io import write_atomically, write_json
from htrain.train import METRICS_COLUMNS, SPECTRAL_COLUMNS

SUMMARY_KEYS = {"status", "snr", "epochs_run", "rules", "final_test_acc", "final_types"}
# always in runs.csv when present, whether or not they vary
DESCRIPTIVE = (
    "data.name",
    "data.kind",
    "model.name",
    "data.K",
    "data.p",
    "data.delta",
    "data.t",
    "train.batch_size",
    "train.epochs",
    "data.n_per_class",
    "seed",
    "profile.name",
)


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list) else value
    return flat


def read_run(run_dir: Path) -> tuple[dict | None, str | None]:
    """The run's config, summary and tables, or (None, why it cannot be used)."""
    try:
        config = flatten(yaml.safe_load((run_dir / "config.yaml").read_text()))
    except (OSError, yaml.YAMLError) as error:
        return None, f"config.yaml unreadable: {error}"
    if not (run_dir / "done").exists():
        return None, "incomplete: no done marker (re-run the sweep to resume it)"
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        metrics = pd.read_csv(run_dir / "metrics.csv")
        spectral = pd.read_csv(run_dir / "spectral.csv")
    except (OSError, ValueError) as error:
        return None, f"malformed: {error}"
    for name, have, need in (
        ("summary.json", set(summary), SUMMARY_KEYS),
        ("metrics.csv", set(metrics.columns), set(METRICS_COLUMNS)),
        ("spectral.csv", set(spectral.columns), set(SPECTRAL_COLUMNS)),
    ):
        missing = need - have
        if missing and not (name == "spectral.csv" and summary.get("status") == "diverged"):
            return None, f"malformed: {name} lacks {sorted(missing)}"
    return {"config": config, "summary": summary, "metrics": metrics, "spectral": spectral}, None


def run_row(run: str, keys: dict, summary: dict) -> dict:
    row = {
        "run": run,
        **keys,
        "snr": summary["snr"],
        "status": summary["status"],
        "epochs_run": summary["epochs_run"],
        "final_test_acc": summary["final_test_acc"],
    }
    for rule, result in summary["rules"].items():
        row[f"stop_epoch_{rule}"] = result["stop_epoch"]
        row[f"test_acc_at_stop_{rule}"] = result["test_acc_at_stop"]
        for layer, epoch in result["fire_epoch"].items():
            row[f"fire_epoch_{rule}_{layer}"] = epoch
            row[f"test_acc_at_fire_{rule}_{layer}"] = result.get("test_acc_at_fire", {}).get(layer)
    for layer, kind in summary["final_types"].items():
        row[f"final_type_{layer}"] = kind
    return row


def collect(runs_dir: Path, out_dir: Path) -> dict[str, pd.DataFrame]:
    """Build and write the tables; returns them (with 'problems')."""
    run_dirs = sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not run_dirs:
        raise FileNotFoundError(f"no run directories under {runs_dir}")
    runs, problems = {}, []
    for run_dir in run_dirs:
        loaded, why = read_run(run_dir)
        if loaded is None:
            problems.append({"run": run_dir.name, "problem": why})
        else:
            runs[run_dir.name] = loaded
            if loaded["summary"]["status"] == "diverged":
                problems.append({"run": run_dir.name, "problem": "diverged (kept in the tables)"})
    configs = pd.DataFrame({name: run["config"] for name, run in runs.items()}).T
    varying = [
        c
        for c in configs.columns
        if configs[c].astype(str).nunique() > 1 and not c.startswith(("paths.", "hydra"))
    ]
    key_columns = [c for c in DESCRIPTIVE if c in configs.columns]
    key_columns += [c for c in varying if c not in key_columns]
    rows, epochs, spectral = [], [], []
    for name, run in runs.items():
        keys = {column: run["config"].get(column) for column in key_columns}
        rows.append(run_row(name, keys, run["summary"]))
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
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("runs", "epochs", "problems"):
        write_atomically(
            out_dir / f"{name}.csv", lambda tmp, name=name: tables[name].to_csv(tmp, index=False)
        )
    write_atomically(
        out_dir / "spectral.parquet", lambda tmp: tables["spectral"].to_parquet(tmp, index=False)
    )
    return tables


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
    """Every recorded eigenvalue of the runs whose columns match all ``filters``."""
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
        with np.load(runs_dir / run / "eigenvalues.npz") as stored:
            for key in stored.files:
                layer, epoch = key.rsplit("/", 1)
                values = stored[key].astype(np.float32)  # float32: 7 digits, half the bytes
                frames.append(
                    pd.DataFrame(
                        {"run": run, "layer": layer, "epoch": int(epoch), "eigenvalue": values}
                    )
                )
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["run", "layer", "epoch", "eigenvalue"], ignore_index=True)


def manifest(tables: dict, command: str, wall_s: float | None, commit: str | None) -> dict:
    """Where the collected runs came from: enough to re-run them and to judge the timings."""
    import torch

    runs = tables["runs"]
    if commit is None:
        found = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
        commit = found.stdout.strip() or None
    profiles = sorted(runs["profile.name"].dropna().unique()) if "profile.name" in runs else []
    return {
        "commit": commit,
        "command": command,
        "collected": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
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
        "sum_of_run_wall_times_s": float(tables["epochs"]["wall_time_s"].sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="sweep name (outputs/sweeps/NAME -> results/NAME)")
    parser.add_argument("--runs", type=Path, help="folder of run directories")
    parser.add_argument("--out", type=Path, help="output folder")
    parser.add_argument(
        "--esd", nargs="+", default=[], metavar="KEY=VALUES", help="runs whose eigenvalues to keep"
    )
    parser.add_argument("--command", help="the sweep command, recorded in manifest.json")
    parser.add_argument("--wall-s", type=float, help="the sweep's wall time, for manifest.json")
    parser.add_argument("--commit", help="commit the runs were made at (default: HEAD)")
    args = parser.parse_args()
    runs_dir = args.runs or Path("outputs/sweeps") / args.name
    out_dir = args.out or Path("results") / args.name
    if not runs_dir.is_dir():
        sys.exit(f"error: {runs_dir} is not a folder; run the sweep first or pass --runs")
    try:
        filters = parse_filters(args.esd)
        tables = collect(runs_dir, out_dir)
        if filters:
            esd = esd_table(runs_dir, tables["runs"], filters)
            write_atomically(out_dir / "esd.parquet", lambda tmp: esd.to_parquet(tmp, index=False))
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    if args.command:
        info = manifest(tables, args.command, args.wall_s, args.commit)
        write_json(out_dir / "manifest.json", info)
    print(f"{len(tables['runs'])} runs collected into {out_dir}")
    for problem in tables["problems"].itertuples():
        print(f"  {problem.run}: {problem.problem}")


if __name__ == "__main__":
    main()
