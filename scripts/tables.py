"""Early-stopping tables in the paper's form, ours beside its numbers:
`python scripts/tables.py [--results results] [--out results/tables]`.

For each rule recorded (paper C = 0.4 and 0.6, calibrated) writes early_stopping_<rule>.csv, .md:
the paper's settings (K = 8) of every synthetic panel found under results/, seeds pooled.
Also trend.csv: Figure 2.13 in numbers (share of HT and of BT-or-HT final types per setting),
difficulty_bands.csv/.md: per panel, runs grouped by final test accuracy, how often each
rule fired and how often the final spectrum is not LT; and sweeps.md: what each results folder
holds and how long it took (from its manifest.json).
Reads only results/<panel>/runs.csv; trains nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from htrain.io import results_arguments, write_atomically, write_text
from htrain.report import (
    PANELS,
    difficulty_bands,
    early_stopping_table,
    markdown_bands,
    markdown_early_stopping,
    thresholds_in,
    trend_table,
)


def main() -> None:
    args = results_arguments(__doc__, "tables")
    out = args.out
    panels = {p: args.results / p / "runs.csv" for p in PANELS}
    panels = {p: path for p, path in panels.items() if path.exists()}
    if not panels:
        sys.exit(
            f"error: no panel runs.csv under {args.results} ({', '.join(PANELS)}); collect first"
        )
    try:
        runs = {panel: pd.read_csv(path) for panel, path in panels.items()}
        for rule in thresholds_in(next(iter(runs.values()))):
            rule = rule.name
            table = pd.concat(
                [early_stopping_table(frame, panel, rule) for panel, frame in runs.items()],
                ignore_index=True,
            )
            write_atomically(
                out / f"early_stopping_{rule}.csv", lambda tmp, t=table: t.to_csv(tmp, index=False)
            )
            write_text(out / f"early_stopping_{rule}.md", markdown_early_stopping(table, rule))
            print(f"wrote {out}/early_stopping_{rule}.csv and .md ({len(table)} settings)")
        trend = pd.concat(
            [trend_table(frame, panel) for panel, frame in runs.items()], ignore_index=True
        )
        write_atomically(out / "trend.csv", lambda tmp: trend.to_csv(tmp, index=False))
        print(f"wrote {out}/trend.csv")
        bands = pd.concat(
            [difficulty_bands(frame, panel) for panel, frame in runs.items()], ignore_index=True
        )
        write_atomically(out / "difficulty_bands.csv", lambda tmp: bands.to_csv(tmp, index=False))
        write_text(out / "difficulty_bands.md", markdown_bands(bands))
        print(f"wrote {out}/difficulty_bands.csv and .md")
        write_text(out / "sweeps.md", sweeps_table(args.results))
        print(f"wrote {out}/sweeps.md")
    except (KeyError, ValueError) as error:
        sys.exit(f"error: {error}")


def sweeps_table(results: Path) -> str:
    """What results/ holds, from each folder's manifest.json: runs, profile, wall times."""
    lines = [
        "| results/ | runs | problems | profile | sweep wall time | sum of run times |",
        "|---|---|---|---|---|---|",
    ]
    for manifest in sorted(results.glob("*/manifest.json")):
        info = json.loads(manifest.read_text())
        wall, total = info.get("sweep_wall_time_s"), info.get("sum_of_run_wall_times_s")
        lines.append(
            f"| `{manifest.parent.name}` | {info['runs']} | {info['problems']} "
            f"| {', '.join(info.get('profile', []))} "
            f"| {'-' if wall is None else f'{wall / 60:.1f} min'} "
            f"| {'-' if total is None else f'{total / 60:.1f} min'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
