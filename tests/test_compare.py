"""Stopping rules applied after the fact (htrain.compare) on hand-made trajectories with
known answers, and against live runs that really stop (early_stop.action=stop)."""

import json

import pandas as pd
import pytest
from helpers import train_in_process

from htrain.compare import evaluate_run, evaluate_runs, rules_for, summarise
from htrain.rules import (
    Decision,
    Rule,
    Validation,
    spectral_stop,
    validation_stop,
    widest_layer,
)

SHAPES = {"fc2": (512, 1024), "fc3": (384, 512)}


def spectral_table(fires: dict[str, set[int]], epochs: int = 10) -> pd.DataFrame:
    rows = []
    for epoch in range(epochs + 1):
        for layer, fired in fires.items():
            n, big_n = SHAPES[layer]
            over = epoch in fired
            rows.append(
                {
                    "epoch": epoch,
                    "layer": layer,
                    "n": n,
                    "N": big_n,
                    "s_hat": 0.3 if over else 0.1,
                    "skipped": "",
                    **{f"threshold_{r}": 0.2 for r in ("paper_C0.4", "paper_C0.6", "calibrated")},
                    **{f"fires_{r}": over for r in ("paper_C0.4", "paper_C0.6", "calibrated")},
                }
            )
    return pd.DataFrame(rows)


def metrics_table(test_acc, val_loss=None) -> pd.DataFrame:
    table = pd.DataFrame({"epoch": range(len(test_acc)), "test_acc": test_acc})
    if val_loss is not None:
        table["val_loss"] = val_loss
    return table


# fc2 over the threshold at epochs 0 (ignored: the initialisation), 3, 4, 6, 7, 8; fc3 at 5, 6
FIRES = {"fc2": {0, 3, 4, 6, 7, 8}, "fc3": {5, 6}}


@pytest.mark.parametrize(
    ("patience", "combine", "expected"),
    [
        (1, "any", 3),  # the first layer over the threshold
        (1, "all", 5),  # fc2 fired at 3, fc3 at 5
        (1, "widest", 3),  # fc2 has 512 x 1024 weights, fc3 384 x 512
        (2, "any", 4),  # fc2: 3, 4
        (3, "any", 8),  # fc2: 6, 7, 8 (the streak 3, 4 broke at 5)
        (3, "all", None),  # fc3 never holds for three epochs
    ],
)
def test_spectral_replay_follows_the_callback(patience, combine, expected):
    table = spectral_table(FIRES)
    assert spectral_stop(table, "paper_C0.4", patience, combine) == expected


def test_widest_layer_counts_weights():
    assert widest_layer(spectral_table(FIRES)) == "fc2"


def test_a_skipped_layer_breaks_its_streak():
    table = spectral_table({"fc2": {3, 4, 5}, "fc3": set()})
    table.loc[(table["epoch"] == 4) & (table["layer"] == "fc2"), ["skipped", "s_hat"]] = [
        "NaN weights",
        float("nan"),
    ]
    assert spectral_stop(table, "paper_C0.4", patience=2) is None
    assert spectral_stop(table, "paper_C0.4", patience=1) == 3


def test_validation_stop_has_keras_semantics():
    # epoch 0 is the initialisation and is not monitored (Keras starts after epoch 1)
    val = [0.1, 5.0, 4.0, 4.5, 4.2, 3.9, 4.0, 4.1]
    metrics = metrics_table([0.0] * 8, val)
    # patience 2: no improvement at 3 and 4 -> stop at 4, restore epoch 2
    assert validation_stop(metrics, patience=2) == (4, 2)
    # patience 3: 5 improves on 4.0, then 6 and 7 do not -> never stops, last weights kept
    assert validation_stop(metrics, patience=3) == (None, 7)
    # an equal value is no improvement (Keras: current - min_delta < best)
    flat = metrics_table([0.0] * 5, [1.0, 2.0, 2.0, 2.0, 2.0])
    assert validation_stop(flat, patience=2) == (3, 1)
    with pytest.raises(ValueError, match="val_fraction"):
        validation_stop(metrics_table([0.0] * 3), patience=2)


def test_measures_against_best_last_and_easy_runs():
    acc = [0.1, 0.5, 0.7, 0.8, 0.995, 0.99, 0.992, 0.993, 0.991, 0.995, 0.996]
    val = [9, 5, 4, 3, 2, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0]
    records = {r["rule"]: r for r in evaluate_run(metrics_table(acc, val), spectral_table(FIRES))}
    first = records["spectral C=0.4"]
    assert first["fired"] and first["stop_epoch"] == 3 and first["test_acc"] == 0.8
    assert first["lost_vs_best"] == pytest.approx(0.996 - 0.8)
    assert first["lost_vs_last"] == pytest.approx(0.996 - 0.8)
    assert first["epochs_saved"] == 7 and first["easy"] and first["false_stop"]
    keras = records["validation p=5"]  # best val at 4, five epochs without improvement
    assert keras["stop_epoch"] == 9 and keras["reported_epoch"] == 4
    assert keras["test_acc"] == 0.995 and keras["fired"] and keras["false_stop"]
    assert records["validation p=10"]["fired"] is False
    assert records["validation p=10"]["reported_epoch"] == 10  # not restored: Keras' behaviour
    last = records["no early stopping"]
    assert last["stop_epoch"] == 10 and last["lost_vs_last"] == 0 and not last["fired"]


def test_validation_rules_skip_runs_without_a_split_and_summaries_count():
    epochs = pd.concat(
        [
            metrics_table([0.1, 0.5, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]).assign(run="a"),
            metrics_table([0.1, 0.9, 0.95, 0.99, 1, 1, 1, 1, 1, 1, 1]).assign(run="b"),
        ]
    )
    spectral = pd.concat(
        [
            spectral_table(FIRES).assign(run="a"),
            spectral_table({"fc2": set(), "fc3": set()}).assign(run="b"),
        ]
    )
    outcomes = evaluate_runs(epochs, spectral)
    assert not outcomes["rule"].str.startswith("validation").any()
    applies = [rule for rule in rules_for(spectral) if not isinstance(rule, Validation)]
    assert len(outcomes) == 2 * len(applies)
    summary = summarise(outcomes, []).set_index("rule")
    assert summary.loc["spectral C=0.4", "fired"] == 1
    assert summary.loc["spectral C=0.4", "never_fired"] == 1
    assert summary.loc["spectral C=0.4", "easy_runs"] == 1  # run b ends at 100%
    assert summary.loc["spectral C=0.4", "false_stops"] == 0  # b never fired


class Oracle(Rule):
    """Stops at the best test epoch in hindsight: a rule no one can run, and a new Rule
    subclass that the comparison judges without being told about it."""

    name = "oracle"

    def decide(self, run):
        best = int(run.metrics.loc[run.metrics.index >= 1, "test_acc"].idxmax())
        return Decision(best, best)


def test_a_new_rule_is_one_subclass_and_the_comparison_judges_it():
    acc = [0.1, 0.5, 0.9, 0.8, 0.7]
    (record,) = evaluate_run(metrics_table(acc), spectral_table(FIRES, 4), [Oracle()])
    assert record["rule"] == "oracle" and record["stop_epoch"] == 2 and record["fired"]
    assert record["lost_vs_best"] == 0 and record["lost_vs_last"] == pytest.approx(0.7 - 0.9)
    assert record["epochs_saved"] == 2


# an easy mixture at a large learning rate: the K signal spikes emerge in a few epochs, and
# the gap rule (K unknown) fires on them: what is checked is that replay and live agree
FAST = (
    "profile=smoke",
    "data.n_per_class=100",
    "data.delta=2.0",
    "optim.lr=0.1",
    "train.epochs=8",
    "spectra.n_classes=null",
)


@pytest.mark.slow
def test_replay_of_a_recorded_run_stops_where_a_live_run_stops(tmp_path):
    # in process, through scripts/run.py's own calls (tests/helpers.train_in_process)
    record_dir = tmp_path / "record"
    assert train_in_process(record_dir, *FAST)["status"] == "finished"
    spectral = pd.read_csv(record_dir / "spectral.csv")
    whole = pd.read_csv(record_dir / "metrics.csv")[["epoch", "test_acc", "train_loss"]]
    for threshold, C, patience, combine, rule in (
        ("paper", 0.4, 1, "any", "paper_C0.4"),
        ("calibrated", 0.4, 2, "all", "calibrated"),
    ):
        live_dir = tmp_path / f"stop_{rule}"
        train_in_process(
            live_dir,
            *FAST,
            "early_stop.action=stop",
            f"early_stop.threshold={threshold}",
            f"early_stop.C={C}",
            f"early_stop.patience={patience}",
            f"early_stop.combine={combine}",
        )
        replayed = spectral_stop(spectral, rule, patience, combine)
        summary = json.loads((live_dir / "summary.json").read_text())
        assert summary["status"] == "stopped" and replayed is not None, rule
        assert summary["epochs_run"] == replayed, rule
        # the live run's trajectory is the recorded one, cut at the stop
        ours = pd.read_csv(live_dir / "metrics.csv")[["epoch", "test_acc", "train_loss"]]
        pd.testing.assert_frame_equal(ours, whole[whole["epoch"] <= replayed])
