"""Spectral against validation-based early stopping on the same runs:
`python scripts/compare.py [--results results] [--out results/compare]`.

Reads the collected synthetic panels (results/<panel>: full training set), their
validation-split twins (results/<panel>_val: 90% of it, data.val_fraction=0.1) and, when
present, results/compare_real (LeNet on MNIST and CIFAR-10, both splits), applies every
stopping rule after the fact (htrain.compare) and writes:
  outcomes.csv   one row per run and rule
  summary.csv    per training set, panel and rule: the measures
  summary.md     per training set and rule, pooled over the panels run on both training
                 sets (the README's table)
  compare.png    accuracy lost against epochs saved, one point per run, colour per rule
"""

from __future__ import annotations

import sys

import pandas as pd

from htrain.compare import load_outcomes, summarise, summary_markdown
from htrain.figures import compare_figure
from htrain.io import results_arguments, write_atomically, write_text


def main() -> None:
    args = results_arguments(__doc__, "compare")
    out = args.out
    try:
        outcomes, main_names = load_outcomes(args.results)
    except (FileNotFoundError, ValueError, KeyError) as error:
        sys.exit(f"error: {error}")
    by_panel = summarise(outcomes, ["training_set", "panel"])
    # pool only the settings (panel, parameters, seed) run on both training sets, so that
    # the two are comparable; panels with one set still appear in summary.csv
    both = outcomes.groupby(["panel", "setting"])["training_set"].transform("nunique") == 2
    paired = outcomes[both] if both.any() else outcomes
    matched = sorted(paired["panel"].unique())
    pooled = summarise(paired, ["training_set"])
    write_atomically(out / "outcomes.csv", lambda tmp: outcomes.to_csv(tmp, index=False))
    pooled_name = "+".join(matched)
    summary = pd.concat([pooled.assign(panel=pooled_name), by_panel], ignore_index=True)
    write_atomically(out / "summary.csv", lambda tmp: summary.to_csv(tmp, index=False))
    heading = (
        f"Pooled: the {len(paired[['panel', 'setting']].drop_duplicates())} settings x seeds of "
        f"{', '.join(matched)} "
        "that were run on both training sets.\n\n"
    )
    write_text(out / "summary.md", heading + summary_markdown(pooled))
    figure = compare_figure(paired, main_names)
    write_atomically(out / "compare.png", lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    print(f"{outcomes['run'].nunique()} runs -> {out}: outcomes.csv, summary.csv/.md, compare.png")


if __name__ == "__main__":
    main()
