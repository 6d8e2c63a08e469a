"""Collect run folders into tidy tables: `python scripts/collect.py NAME [--runs DIR] [--out DIR]`.

Reads every run under outputs/sweeps/NAME (or --runs) and writes under results/NAME (or --out)
runs.csv, epochs.csv, spectral.parquet, problems.csv (``htrain.collect`` says what each holds
and how runs are checked), with --esd KEY=V1,V2 ... esd.parquet (every eigenvalue of the
matching runs; a folder of one file per run, read whole by pd.read_parquet), with --command
manifest.json.  The spectral tables are replayed from the runs' eigenvalues under the current
spike rule; --n-classes none replays without K.  --partial also collects unfinished runs, up
to their last saved epoch (status "partial").  Existing tables are replaced only with
--overwrite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from htrain.collect import (
    collect,
    esd_table,
    manifest,
    parse_filters,
    write_esd,
    write_tables,
)
from htrain.io import write_json

# what a collection folder holds: replaced only when runs.csv shows that collect wrote them
COLLECTION_FILES = (
    "runs.csv",
    "epochs.csv",
    "problems.csv",
    "spectral.parquet",
    "esd.parquet",
    "manifest.json",
)


def n_classes_option(text: str):
    if text in ("config", "auto"):
        return text
    if text in ("none", "null"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("use config, auto, none or a number") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="sweep name (outputs/sweeps/NAME -> results/NAME)")
    parser.add_argument("--runs", type=Path, help="folder of run directories")
    parser.add_argument("--out", type=Path, help="output folder (default results/NAME)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing tables")
    parser.add_argument(
        "--esd", nargs="+", default=[], metavar="KEY=VALUES", help="runs whose eigenvalues to keep"
    )
    parser.add_argument(
        "--n-classes",
        type=n_classes_option,
        default="config",
        help="K for the spike rule: config (each run's spectra.n_classes), auto, none, a number",
    )
    parser.add_argument(
        "--partial",
        action="store_true",
        help="also unfinished runs, up to their last saved epoch (status partial)",
    )
    parser.add_argument("--command", help="the sweep command, recorded in manifest.json")
    parser.add_argument("--wall-s", type=float, help="the sweep's wall time, for manifest.json")
    args = parser.parse_args()
    runs_dir = args.runs or Path("outputs/sweeps") / args.name
    out_dir = args.out or Path("results") / args.name
    if not runs_dir.is_dir():
        sys.exit(f"error: {runs_dir} is not a folder; run the sweep first or pass --runs")
    existing = [name for name in COLLECTION_FILES if (out_dir / name).exists()]
    if existing and not (out_dir / "runs.csv").exists():
        # files of these names that no collection of ours made (no runs.csv): never replaced
        sys.exit(
            f"error: {out_dir} holds {', '.join(existing)} but no runs.csv, so they are not a "
            "collection this command wrote; choose another --out"
        )
    if existing and not args.overwrite:
        sys.exit(f"error: {out_dir} already holds collected tables; pass --overwrite or --out DIR")
    try:
        filters = parse_filters(args.esd)
        tables, meta = collect(runs_dir, args.n_classes, args.partial)
        write_tables(tables, meta, out_dir)
        if filters:
            write_esd(esd_table(runs_dir, tables["runs"], filters), out_dir / "esd.parquet")
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    except OSError as error:
        sys.exit(f"error: cannot write to {out_dir}: {error.strerror or error}")
    if args.command:
        write_json(out_dir / "manifest.json", manifest(tables, meta, args.command, args.wall_s))
    print(f"{len(tables['runs'])} runs collected into {out_dir}")
    for problem in tables["problems"].itertuples():
        print(f"  {problem.run}: {problem.problem}")


if __name__ == "__main__":
    main()
