"""The stopping benchmark: every registered stopping rule replayed over a frozen suite of
collected runs (docs/stopping.md).

Nothing is trained here.  Each run of the suite is read from a committed collection
(``results/<collection>/``: epochs.csv, spectral.parquet, esd.parquet), cut to its part's epoch
budget, and turned into a ``Trajectory``: per epoch the training and test metrics, the
evidence-based criterion, each monitored layer's class-spike count and paper-rule fires (with
K, as collected), and, from the eigenvalues, the first layer's body scale and the paper
rule's fires without K.  Each rule decides from the epochs seen so far, so a replay stops
where a live run would (the spectral rules through the library's own state machines).

``SUITE`` is the frozen suite: which collections, filtered how, make the dev and the
held-out parts, with their budgets and regimes.  ``RULES`` lists the rules judged; a new rule
is one class of ``htrain.rules`` (its one home) listed there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import heavytail as ht
from heavytail.columns import fires_column
from heavytail.fit import fit_body
from htrain.datasets import dataset_entry, n_classes_of_row
from htrain.rules import (
    EASY_ACCURACY,
    BulkGrowth,
    EvidenceBased,
    PaperRule,
    Rule,
    TrainToEnd,
    Validation,
)

PAPER_RULE = ht.Threshold("paper", 0.4)  # the paper's rule with its C, as the tables report it


# ------------------------------------------------------------------------------ the suite


@dataclass(frozen=True)
class Source:
    """Runs of one collection that belong to one part of the suite."""

    collection: str  # folder under results/
    part: str  # dev | held-out
    regime: str  # large | small (data per epoch)
    budget: int  # epochs: the run is read up to here
    select: Callable[[pd.DataFrame], pd.Series] = field(
        default=lambda runs: pd.Series(True, index=runs.index)
    )
    family: str = "gmm"
    # only the runs whose eigenvalues were kept (the quick panels keep seed 0's), so that
    # every rule is judged on the same runs
    with_eigenvalues: bool = False


def _nn1_d1(runs):
    return (runs["model.name"] == "nn1") & (runs["data.kind"] == "d1")


def _not_nn1_d1(runs):
    return ~_nn1_d1(runs)


SUITE: tuple[Source, ...] = (
    # dev: NN1 + D1 at the paper's scale (seed 0 from the paper tables, seeds 1-2 trained for
    # the benchmark) and the NN1 quick panels (the seed-0 runs, whose eigenvalues are kept)
    Source("paper_tables", "dev", "large", 100, _nn1_d1),
    Source("stopping_runs/stopping_dev", "dev", "large", 100),
    Source("nn1_d1", "dev", "small", 60, with_eigenvalues=True),
    Source("nn1_d2", "dev", "small", 60, with_eigenvalues=True),
    # held-out, paper scale: the other table settings (seed 0 from the paper tables; NN1 at
    # 100 epochs, NN2 at 60), their seeds 1-2 with validation twins, the K axis, recipes
    Source(
        "paper_tables",
        "held-out",
        "large",
        100,
        lambda r: _not_nn1_d1(r) & (r["model.name"] == "nn1"),
    ),
    Source("paper_tables", "held-out", "large", 60, lambda r: r["model.name"] == "nn2"),
    Source("stopping_runs/stopping_nn1", "held-out", "large", 100),
    Source("stopping_runs/stopping_nn2", "held-out", "large", 60),
    Source("paper_tables_k", "held-out", "large", 100),
    Source("stopping_runs/stopping_recipes", "held-out", "large", 100),
    # held-out, a second data family
    Source("stopping_runs/stopping_mnist1d", "held-out", "large", 100, family="mnist1d"),
    # held-out, small data: the NN2 quick panels and their validation twins
    Source("nn2_d1", "held-out", "small", 60, with_eigenvalues=True),
    Source("nn2_d2", "held-out", "small", 60, with_eigenvalues=True),
    Source("nn2_d1_val", "held-out", "small", 60),
)


# ------------------------------------------------------------------------- trajectories


@dataclass
class Trajectory:
    """One run as the rules see it, cut to the budget (epoch 0 = the initialisation)."""

    run: str
    info: dict
    metrics: pd.DataFrame  # indexed by epoch
    spikes: pd.DataFrame  # epoch x layer: class-spike counts (with K)
    fires_with_k: pd.DataFrame  # epoch x layer: the paper rule (C = 0.4) with K
    layers: tuple[str, ...]
    n_classes: int | None
    body_sigma2: pd.Series | None = None  # first layer, by epoch (from the eigenvalues)
    n_first: int | None = None
    n_train: int | None = None
    fan_ins: tuple[int, ...] = ()
    fires_without_k: pd.DataFrame | None = None
    twin: Trajectory | None = None

    @property
    def budget(self) -> int:
        return int(self.metrics.index.max())

    def accuracy(self, epoch: int) -> float:
        return float(self.metrics.loc[epoch, "test_acc"])


def _eigen_columns(esd: pd.DataFrame, layers, first: str, ratio: dict[str, float]):
    """Per epoch: the first layer's body scale, and each layer's paper-rule fire without K."""
    body, fires = {}, {}
    for (layer, epoch), rows in esd.groupby(["layer", "epoch"], sort=True):
        eigs = np.sort(rows["eigenvalue"].to_numpy(dtype=np.float64))
        if layer == first:
            body[int(epoch)] = fit_body(eigs)[1]
        try:
            result = ht.spectral_distance(eigs, C=0.4, ratio=ratio[layer], n_classes=None)
            fires.setdefault(int(epoch), {})[layer] = bool(result.fires)
        except ValueError:
            fires.setdefault(int(epoch), {})[layer] = False
    return pd.Series(body).sort_index(), pd.DataFrame(fires).T.sort_index()[list(layers)]


def _describe(row: pd.Series, source: Source) -> dict:
    def value(key):
        item = row.get(key)
        return None if item is None or (isinstance(item, float) and math.isnan(item)) else item

    model, kind = value("model.name"), value("data.kind")
    if value("data.name") != "gmm":
        setting = f"{value('data.name')} {model}"
    else:
        column = dataset_entry("gmm").difficulty({"kind": kind})  # data.delta or data.t
        parameter = f"{column.removeprefix('data.')} {value(column):g}"
        setting = f"{model}_{kind} {parameter} K={int(value('data.K'))}"
    optimizer = value("optim.name") or "sgd"
    momentum = value("optim.momentum") or 0.0
    batch = int(value("train.batch_size") or 64)
    recipe = (
        "adam"
        if optimizer == "adam"
        else "momentum"
        if momentum
        else "batch256"
        if batch == 256
        else "sgd"
    )
    return {
        "part": source.part,
        "family": source.family,
        "setting": setting,
        "recipe": recipe,
        "seed": int(value("seed")),
        "label_noise": float(value("data.label_noise") or 0.0),
        "val_fraction": None,  # set by load_source from the metrics
        "epochs": source.budget,
        "n_per_class": None
        if value("data.n_per_class") is None
        else int(value("data.n_per_class")),
        "regime": source.regime,
        "collection": source.collection,
    }


def _training_size(row: pd.Series, metrics: pd.DataFrame, n_classes: int) -> int | None:
    """Training samples: n_per_class x K, less the validation share of a twin (0.1: every
    twin of the suite holds out 10%); None for a whole real data set (not in the tables)."""
    if pd.isna(row.get("data.n_per_class")):
        return None
    total = int(row["data.n_per_class"]) * n_classes
    has_val = "val_loss" in metrics and metrics["val_loss"].notna().any()
    return total - round(0.1 * total) if has_val else total


def load_source(results: Path, source: Source) -> list[Trajectory]:
    """The trajectories of one source (none when its collection is not there yet)."""
    folder = results / source.collection
    if not (folder / "runs.csv").exists():
        return []
    runs = pd.read_csv(folder / "runs.csv")
    runs = runs[(runs["status"] == "finished") & source.select(runs)]
    if runs.empty:
        return []
    epochs = pd.read_csv(folder / "epochs.csv")
    spectral = pd.read_parquet(folder / "spectral.parquet")
    esd_folder = folder / "esd.parquet"
    trajectories = []
    for _, row in runs.iterrows():
        run = row["run"]
        metrics = epochs[(epochs["run"] == run) & (epochs["epoch"] <= source.budget)]
        metrics = metrics.set_index("epoch").sort_index()
        if metrics.index.max() < source.budget:
            continue  # a run that ended early (diverged) is not part of the suite
        rows = spectral[(spectral["run"] == run) & (spectral["epoch"] <= source.budget)]
        layers = tuple(dict.fromkeys(rows["layer"]))
        n_classes = n_classes_of_row(row)
        trajectory = Trajectory(
            run=run,
            info=_describe(row, source),
            metrics=metrics,
            spikes=rows.pivot(index="epoch", columns="layer", values="n_spikes")[list(layers)],
            fires_with_k=rows.pivot(
                index="epoch", columns="layer", values=fires_column(PAPER_RULE.name)
            )[list(layers)].astype(bool),
            layers=layers,
            n_classes=n_classes,
            n_train=_training_size(row, metrics, n_classes),
            fan_ins=tuple(int(n) for n in rows.drop_duplicates("layer")["N"]),
        )
        has_val = "val_loss" in metrics and metrics["val_loss"].notna().any()
        trajectory.info["val_fraction"] = 0.1 if has_val else 0.0
        path = esd_folder / f"{run}.parquet"
        if source.with_eigenvalues and not path.exists():
            continue
        if path.exists():
            esd = pd.read_parquet(path)
            esd = esd[esd["epoch"] <= source.budget]
            shapes = rows.drop_duplicates("layer").set_index("layer")
            ratio = {layer: float(shapes.loc[layer, "ratio"]) for layer in layers}
            trajectory.body_sigma2, trajectory.fires_without_k = _eigen_columns(
                esd, layers, layers[0], ratio
            )
            trajectory.n_first = int(shapes.loc[layers[0], "n"])
        trajectories.append(trajectory)
    return trajectories


# what a twin shares with its run (the run names differ: val_fraction is hashed)
TWIN_KEYS = ("family", "setting", "recipe", "seed", "label_noise", "epochs", "n_per_class")


def pair_twins(trajectories: list[Trajectory]) -> list[Trajectory]:
    """The runs trained on the whole training set, each with its validation twin attached
    (the same setting, recipe and seed trained on 90%), when there is one."""
    twins = {
        tuple(t.info[k] for k in TWIN_KEYS): t for t in trajectories if t.info["val_fraction"] > 0
    }
    full = [t for t in trajectories if t.info["val_fraction"] == 0]
    for trajectory in full:
        trajectory.twin = twins.get(tuple(trajectory.info[k] for k in TWIN_KEYS))
    return full


# ----------------------------------------------------------------------------- the rules

# every rule the benchmark judges, once (a new one: a class in htrain.rules, listed here)
RULES: tuple[Rule, ...] = (
    BulkGrowth(),
    Validation(10),
    Validation(5),
    EvidenceBased(),
    PaperRule(with_k=True),
    PaperRule(with_k=False),
    TrainToEnd(),
)


# ------------------------------------------------------------------------------- tables


def run_row(t: Trajectory) -> dict:
    trained = t.metrics.loc[t.metrics.index >= 1, "test_acc"]
    return {
        "run": t.run,
        **{k: t.info[k] for k in ("part", "family", "setting", "recipe", "seed", "label_noise")},
        "epochs": t.budget,
        "best_epoch": int(trained.idxmax()),
        "best_acc": float(trained.max()),
        "end_acc": t.accuracy(t.budget),
        "regime": t.info["regime"],
        "twin": t.twin.run if t.twin is not None else None,
    }


def rule_rows(t: Trajectory, rules=RULES) -> list[dict]:
    """One row per rule that applies to the run; validation rules read its twin."""
    best = float(t.metrics.loc[t.metrics.index >= 1, "test_acc"].max())
    end = t.accuracy(t.budget)
    p10 = None
    if t.twin is not None:
        decision = Validation(10).decide(t.twin)
        p10 = t.twin.accuracy(decision.reported_epoch)
    rows = []
    for rule in rules:
        source = t.twin if isinstance(rule, Validation) else t
        decision = rule.decide(source) if source is not None else None
        if decision is None:
            continue
        accuracy = source.accuracy(decision.reported_epoch)
        stop = decision.stop_epoch if decision.stop_epoch is not None else t.budget
        rows.append(
            {
                "rule": rule.name,
                "run": t.run,
                "part": t.info["part"],
                "regime": t.info["regime"],
                "stop_epoch": stop,
                "fired": decision.stop_epoch is not None,
                "reported_epoch": decision.reported_epoch,
                "acc_at_stop": accuracy,
                "lost_vs_best": 100 * (best - accuracy),
                "saved": (t.budget - stop) / t.budget,
                "vs_end": 100 * (accuracy - end),
                "vs_validation_p10": 100 * (accuracy - p10) if p10 is not None else np.nan,
                "easy": end > EASY_ACCURACY,
            }
        )
    return rows


def load_suite(results: Path, suite=SUITE) -> list[Trajectory]:
    """Every collected run of the suite trained on the whole training set, twins attached."""
    trajectories = []
    for source in suite:
        trajectories += load_source(results, source)
    return pair_twins(trajectories)


def benchmark(results: Path, suite=SUITE, rules=RULES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, rules) tables over every suite run that has been collected."""
    full = load_suite(results, suite)
    runs = pd.DataFrame([run_row(t) for t in full])
    rows = [row for t in full for row in rule_rows(t, rules)]
    return runs, pd.DataFrame(rows)


Z_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def sensitivity(full: list[Trajectory], grid=Z_GRID) -> pd.DataFrame:
    """The bulk-growth rule at each z of ``grid``: per part and regime, mean and worst lost
    and mean saved (the parameter's sensitivity, dev and held-out side by side)."""
    rows = []
    for z in grid:
        rule = BulkGrowth(z, name=f"bulk_growth_z{z:g}")
        frame = pd.DataFrame([row for t in full for row in rule_rows(t, (rule,))])
        for (part, regime), group in frame.groupby(["part", "regime"], sort=False):
            rows.append(
                {
                    "z": z,
                    "part": part,
                    "regime": regime,
                    "runs": len(group),
                    "lost_mean": group["lost_vs_best"].mean(),
                    "lost_worst": group["lost_vs_best"].max(),
                    "saved_mean": group["saved"].mean(),
                }
            )
    return pd.DataFrame(rows)


def summary_table(rules: pd.DataFrame, order=RULES) -> pd.DataFrame:
    """Per part, regime and rule: runs, mean and worst lost, mean saved, mean vs end, wins
    against validation p10 (twins where the rule's accuracy is at least p10's), fires on
    easy runs."""
    names = [rule.name for rule in order]
    grouped = rules.groupby(["part", "regime", "rule"], sort=False)
    table = grouped.agg(
        runs=("run", "size"),
        lost_mean=("lost_vs_best", "mean"),
        lost_worst=("lost_vs_best", "max"),
        saved_mean=("saved", "mean"),
        vs_end_mean=("vs_end", "mean"),
        twins=("vs_validation_p10", lambda v: int(v.notna().sum())),
        wins_vs_p10=("vs_validation_p10", lambda v: int((v >= 0).sum())),
        easy_runs=("easy", "sum"),
    ).reset_index()
    easy = rules[rules["easy"]].groupby(["part", "regime", "rule"])["fired"].sum()
    table["easy_fires"] = [
        int(easy.get((p, g, r), 0))
        for p, g, r in zip(table["part"], table["regime"], table["rule"], strict=True)
    ]
    table["order"] = table["rule"].map({name: i for i, name in enumerate(names)})
    return table.sort_values(["part", "regime", "order"], kind="stable").drop(columns="order")


def summary_markdown(table: pd.DataFrame, order=RULES) -> str:
    """summary.md: one table per part and regime, a row per rule."""
    labels = {rule.name: rule.label for rule in order}
    lines = [
        "# Stopping benchmark: summary",
        "",
        "Generated by `make stopping` from the committed runs (docs/stopping.md).  lost = test",
        "accuracy points below the run's best epoch in hindsight; saved = share of the epoch",
        "budget not trained; vs end = points above the last epoch's accuracy; wins vs p10 =",
        "twins (the same setting trained on 90% with 10% held out) on which the rule's final",
        "accuracy is at least validation stopping's (patience 10, best weights restored);",
        "easy fires = fires on runs that end above 99%.",
    ]
    for (part, regime), rows in table.groupby(["part", "regime"], sort=False):
        lines += [
            "",
            f"## {part}, {regime} data ({int(rows['runs'].max())} runs)",
            "",
            "| rule | runs | lost mean | lost worst | saved | vs end | wins vs p10 | easy fires |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in rows.itertuples():
            wins = f"{row.wins_vs_p10}/{row.twins}" if row.twins else "-"
            lines.append(
                f"| {labels.get(row.rule, row.rule)} | {row.runs} | {row.lost_mean:.2f} | "
                f"{row.lost_worst:.2f} | {100 * row.saved_mean:.0f}% | {row.vs_end_mean:+.2f} | "
                f"{wins} | {row.easy_fires}/{row.easy_runs} |"
            )
    return "\n".join(lines) + "\n"


BREAKDOWN_RULES = ("bulk_growth", "validation_p10", "evidence", "end")


def _group_of(run: pd.Series) -> str:
    """A held-out run's family and recipe (MNIST-1D: its label noise), as a row label."""
    if run["family"] == "mnist1d":
        return f"MNIST-1D, label noise {100 * run['label_noise']:.0f}%"
    recipe = {"sgd": "SGD", "batch256": "batch 256", "momentum": "momentum", "adam": "Adam"}
    return f"mixtures, {recipe.get(run['recipe'], run['recipe'])}"


def breakdown_markdown(
    runs: pd.DataFrame, rules: pd.DataFrame, part: str = "held-out", order=RULES
) -> str:
    """The large-data runs of ``part`` by family and recipe (MNIST-1D: by label noise): for
    a few rules, lost mean / worst, saved, and wins against validation p10 where there are
    twins; where each rule works and where it does not."""
    labels = {rule.name: rule.label for rule in order}
    chosen = runs[(runs["part"] == part) & (runs["regime"] == "large")]
    groups = chosen.assign(group=chosen.apply(_group_of, axis=1))[["run", "group"]]
    rows = rules.merge(groups, on="run")
    header = " | ".join(labels[name] for name in BREAKDOWN_RULES)
    lines = [
        "",
        f"## {part}, large data, by family and recipe",
        "",
        "lost mean / worst, saved (wins vs p10 where there are twins)",
        "",
        f"| family, recipe (runs) | {header} |",
        "|---" * (len(BREAKDOWN_RULES) + 1) + "|",
    ]
    for group, members in rows.groupby("group", sort=True):
        cells = []
        for name in BREAKDOWN_RULES:
            mine = members[members["rule"] == name]
            if mine.empty:
                cells.append("-")
                continue
            text = (
                f"{mine['lost_vs_best'].mean():.2f} / {mine['lost_vs_best'].max():.2f}, "
                f"{100 * mine['saved'].mean():.0f}%"
            )
            twins = mine["vs_validation_p10"].dropna()
            if len(twins) and name != "validation_p10":
                text += f" ({int((twins >= 0).sum())}/{len(twins)})"
            cells.append(text)
        count = int(members["run"].nunique())
        lines.append(f"| {group} ({count}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def headline_markdown(table: pd.DataFrame, part: str = "held-out", order=RULES) -> str:
    """The README's table: each rule on one part, large and small data side by side."""
    labels = {rule.name: rule.label for rule in order}
    rows = table[table["part"] == part]
    large = rows[rows["regime"] == "large"].set_index("rule")
    small = rows[rows["regime"] == "small"].set_index("rule")

    def cell(frame, rule, with_saved=True):
        if rule not in frame.index:
            return "-"
        row = frame.loc[rule]
        text = f"{row['lost_mean']:.2f} / {row['lost_worst']:.2f}"
        return f"{text} / {100 * row['saved_mean']:.0f}%" if with_saved else text

    def wins(rule):
        total = sum(int(f.loc[rule, "twins"]) for f in (large, small) if rule in f.index)
        won = sum(int(f.loc[rule, "wins_vs_p10"]) for f in (large, small) if rule in f.index)
        return f"{won}/{total}" if total else "-"

    runs = {
        name: int(f["runs"].max()) if not f.empty else 0 for name, f in (("l", large), ("s", small))
    }
    lines = [
        f"| rule ({part}) | large data ({runs['l']} runs): lost mean / worst / saved | "
        f"small data ({runs['s']} runs): lost mean / worst | wins vs validation p10 |",
        "|---|---|---|---|",
    ]
    for rule in order:
        if rule.name in large.index or rule.name in small.index:
            lines.append(
                f"| {labels[rule.name]} | {cell(large, rule.name)} | "
                f"{cell(small, rule.name, with_saved=False)} | {wins(rule.name)} |"
            )
    return "\n".join(lines) + "\n"


def choose_z(sensitivity_rows: pd.DataFrame, rules: pd.DataFrame) -> float | None:
    """The protocol's choice of z (docs/stopping.md), from the dev part alone: the z with the
    smallest mean lost on dev large-data runs among those that save at least 50% there and
    lose on dev small-data runs at most training to the end's mean plus 0.2 points; ties
    within 0.05 points go to the larger z.  None when no z qualifies."""
    dev = sensitivity_rows[sensitivity_rows["part"] == "dev"]
    large = dev[dev["regime"] == "large"].set_index("z")
    small = dev[dev["regime"] == "small"].set_index("z")
    end = rules[(rules["part"] == "dev") & (rules["regime"] == "small") & (rules["rule"] == "end")]
    end_small = float(end["lost_vs_best"].mean()) if not end.empty else math.inf
    feasible = [
        z
        for z in large.index
        if large.loc[z, "saved_mean"] >= 0.5
        and (z not in small.index or small.loc[z, "lost_mean"] <= end_small + 0.2)
    ]
    if not feasible:
        return None
    best = min(large.loc[z, "lost_mean"] for z in feasible)
    return float(max(z for z in feasible if large.loc[z, "lost_mean"] <= best + 0.05))
