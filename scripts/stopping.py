"""The stopping benchmark from committed runs: `python scripts/stopping.py [--results results]`.

Replays every rule of ``htrain.stopping.RULES`` over the frozen suite ``htrain.stopping.SUITE``
(what has been collected of it) and writes results/stopping/: runs.csv (one row per run),
rules.csv (one row per rule and run), summary.md (per part and regime).  No training;
byte-for-byte the same output from the same committed files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from htrain.io import write_atomically, write_text
from htrain.stopping import benchmark, summary_markdown, summary_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--out", type=Path, default=None, help="default: RESULTS/stopping")
    args = parser.parse_args()
    out = args.out or args.results / "stopping"
    runs, rules = benchmark(args.results)
    if runs.empty:
        raise SystemExit(f"error: no run of the suite is collected under {args.results}")
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in (("runs", runs), ("rules", rules)):
        write_atomically(
            out / f"{name}.csv",
            lambda tmp, frame=frame: frame.to_csv(tmp, index=False, float_format="%.6g"),
        )
    write_text(out / "summary.md", summary_markdown(summary_table(rules)))
    print(f"{len(runs)} runs, {len(rules)} rule rows -> {out}")


if __name__ == "__main__":
    main()
