"""The stopping benchmark from committed runs: `python scripts/stopping.py [--results results]`.

Replays every rule of ``htrain.stopping.RULES`` over the frozen suite ``htrain.stopping.SUITE``
(what has been collected of it) and writes results/stopping/: runs.csv (one row per run),
rules.csv (one row per rule and run), summary.md (per part and regime), headline.md (the
README's table), sensitivity.csv and sensitivity.png (the bulk-growth rule's z against lost
and saved, dev beside held-out).  No training; byte-for-byte the same output from the same
committed files.
"""

from __future__ import annotations

import pandas as pd

from heavytail.growth import DEFAULT_Z
from htrain.figures import sensitivity_figure
from htrain.io import results_arguments, write_atomically, write_text
from htrain.stopping import (
    RULES,
    breakdown_markdown,
    choose_z,
    headline_markdown,
    load_suite,
    rule_rows,
    run_row,
    sensitivity,
    summary_markdown,
    summary_table,
)


def main() -> None:
    args = results_arguments(__doc__, "stopping")
    out = args.out
    full = load_suite(args.results)
    if not full:
        raise SystemExit(f"error: no run of the suite is collected under {args.results}")
    runs = pd.DataFrame([run_row(t) for t in full])
    rules = pd.DataFrame([row for t in full for row in rule_rows(t, RULES)])
    sensitivity_rows = sensitivity(full)
    out.mkdir(parents=True, exist_ok=True)
    tables = (("runs", runs), ("rules", rules), ("sensitivity", sensitivity_rows))
    for name, frame in tables:
        write_atomically(
            out / f"{name}.csv",
            lambda tmp, frame=frame: frame.to_csv(tmp, index=False, float_format="%.6g"),
        )
    summary = summary_table(rules)
    breakdown = breakdown_markdown(runs, rules)
    write_text(out / "summary.md", summary_markdown(summary) + breakdown)
    write_text(out / "headline.md", headline_markdown(summary))
    figure = sensitivity_figure(sensitivity_rows)
    write_atomically(
        out / "sensitivity.png", lambda tmp: figure.savefig(tmp, dpi=110, format="png")
    )
    print(f"{len(runs)} runs, {len(rules)} rule rows -> {out}")
    chosen = choose_z(sensitivity_rows, rules)
    print(f"z by the protocol on the dev part: {chosen}; the rule ships with z = {DEFAULT_Z}")


if __name__ == "__main__":
    main()
