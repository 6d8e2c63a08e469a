"""The stopping benchmark (htrain.stopping, scripts/stopping.py) on a hand-made collection in
the real on-disk formats, whose every rule's stop epoch is known; the suite's grids."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import ROOT, script_in_process
from test_growth import synthetic_weights
from test_sweeps import grid

from htrain import stopping
from htrain.rules import EvidenceBased, Validation

# the tests on the module fixture `toy_results` build it once, on one xdist worker
pytestmark = pytest.mark.xdist_group("toy_results")

TEST_ACC = [0.1, 0.5, 0.7, 0.8, 0.82, 0.81, 0.78]  # best at epoch 4
EB = [np.nan, -1.0, -0.5, -0.2, 0.1, 0.3, 0.2]  # first positive at 4
SPIKES = [0, 0, 2, 4, 4, 4, 4]  # K = 4: out (>= K - 1 in both layers) at 3
PAPER_FIRES = [False, False, False, False, False, False, True]  # C = 0.4 with K: 6
VAL_LOSS = [2.0, 1.0, 0.8, 0.7, 0.9, 1.0, 1.1]  # best at 3


def write_collection(folder, twin=True, last_epoch=6):
    """Two runs of one setting (a full one and its twin), the full one with eigenvalues;
    past epoch 6 every value stays as at epoch 6."""
    folder.mkdir(parents=True)
    weights = synthetic_weights(np.random.default_rng(3))
    weights[0] = weights[1]
    spectra = {e: np.linalg.eigvalsh(w @ w.T / 512).astype(np.float32) for e, w in weights.items()}
    runs, epochs, spectral, esd = [], [], [], []
    for run, val in (("full", False), ("twin", True))[: 2 if twin else 1]:
        runs.append(
            {
                "run": run,
                "data.name": "gmm",
                "data.kind": "d1",
                "model.name": "nn1",
                "data.K": 4,
                "data.delta": 0.3,
                "data.t": np.nan,
                "train.batch_size": 64,
                "train.epochs": 6,
                "data.n_per_class": 10000,
                "seed": 0,
                "profile.name": "paper",
                "status": "finished",
            }
        )
        for epoch in range(last_epoch + 1):
            at = min(epoch, 6)
            row = {
                "run": run,
                "epoch": epoch,
                "train_loss": 1.0,
                "train_acc": TEST_ACC[at],
                "test_loss": 1.0,
                "test_acc": TEST_ACC[at] - 0.01 * val,
                "eb_criterion": EB[at],
            }
            row["val_loss"] = VAL_LOSS[at] if val else np.nan
            row["val_acc"] = 0.5 if val else np.nan
            epochs.append(row)
            for layer in ("a", "b"):
                spectral.append(
                    {
                        "run": run,
                        "epoch": epoch,
                        "layer": layer,
                        "n": 256,
                        "N": 512,
                        "ratio": 0.5,
                        "n_spikes": SPIKES[at],
                        "fires_paper_C0.4": PAPER_FIRES[at],
                    }
                )
                if not val:
                    esd.append(
                        pd.DataFrame(
                            {"run": run, "layer": layer, "epoch": epoch, "eigenvalue": spectra[at]}
                        )
                    )
    pd.DataFrame(runs).to_csv(folder / "runs.csv", index=False)
    pd.DataFrame(epochs).to_csv(folder / "epochs.csv", index=False)
    pd.DataFrame(spectral).to_parquet(folder / "spectral.parquet")
    (folder / "esd.parquet").mkdir()
    pd.concat(esd).to_parquet(folder / "esd.parquet" / "full.parquet")


TOY_SUITE = (stopping.Source("toy", "dev", "large", 6),)


@pytest.fixture(scope="module")
def toy_results(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    write_collection(results / "toy")
    return results


def test_every_rule_stops_where_the_hand_made_run_says(toy_results):
    runs, rules = stopping.benchmark(toy_results, suite=TOY_SUITE)
    assert list(runs["run"]) == ["full"] and runs.loc[0, "twin"] == "twin"
    assert runs.loc[0, "best_epoch"] == 4 and runs.loc[0, "end_acc"] == pytest.approx(0.78)
    by_rule = rules.set_index("rule")
    expected = {  # rule: (stop epoch, reported epoch)
        "bulk_growth": (5, 4),
        "evidence": (4, 4),
        "paper_C0.4": (6, 6),
        "end": (6, 6),
        # the twin: patience 5 or 10 never runs out in 6 epochs, and Keras keeps the last
        # weights then (a shorter patience is tested below)
        "validation_p5": (6, 6),
        "validation_p10": (6, 6),
    }
    for rule, (stop, reported) in expected.items():
        assert (by_rule.loc[rule, "stop_epoch"], by_rule.loc[rule, "reported_epoch"]) == (
            stop,
            reported,
        ), rule
    growth = by_rule.loc["bulk_growth"]
    assert growth["lost_vs_best"] == pytest.approx(0.0)
    assert growth["saved"] == pytest.approx(1 / 6)
    assert growth["vs_end"] == pytest.approx(4.0)
    assert growth["vs_validation_p10"] == pytest.approx(100 * (0.82 - 0.77))
    assert set(rules.columns) >= {
        "rule",
        "run",
        "part",
        "regime",
        "stop_epoch",
        "acc_at_stop",
        "lost_vs_best",
        "saved",
        "vs_end",
        "vs_validation_p10",
    }


def test_validation_p5_reads_the_twin_and_stops_when_patience_runs_out(toy_results):
    trajectories = stopping.load_source(toy_results, TOY_SUITE[0])
    twin = next(t for t in trajectories if t.run == "twin")
    decision = Validation(2).decide(twin)
    assert (decision.stop_epoch, decision.reported_epoch) == (5, 3)


def test_the_command_writes_the_three_tables_and_the_same_bytes_twice(toy_results, tmp_path):
    # scripts/stopping.py on the real suite reads what is collected; point it at a results
    # folder that holds the suite's first source under its name
    write_collection(tmp_path / "results" / "paper_tables", twin=False, last_epoch=100)
    command = [
        sys.executable,
        str(ROOT / "scripts" / "stopping.py"),
        "--results",
        str(tmp_path / "results"),
    ]
    first = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    out = tmp_path / "results" / "stopping"
    contents = {name: (out / name).read_bytes() for name in ("runs.csv", "rules.csv", "summary.md")}
    # again, and on an empty folder, in process (the script file as the interpreter runs it)
    assert script_in_process("stopping.py", *command[2:]).returncode == 0
    for name, content in contents.items():
        assert (out / name).read_bytes() == content, name
    assert "## dev, large data (1 runs)" in contents["summary.md"].decode()
    empty = script_in_process("stopping.py", "--results", str(tmp_path / "none"))
    assert empty.returncode != 0 and "no run of the suite" in empty.stderr


def test_the_suite_grids_are_frozen_as_the_docs_say():
    assert grid("stopping_dev")["seed"] == ["1", "2"]
    assert len(grid("stopping_dev")["experiment"]) == 4
    mnist = grid("stopping_mnist1d")
    assert mnist["data.label_noise"] == ["0.0", "0.2", "0.4"] and mnist["seed"] == ["0", "1", "2"]
    assert mnist["data.val_fraction"] == ["0.0", "0.1"]
    recipes = grid("stopping_recipes")
    assert recipes["recipe"] == ["momentum", "batch256", "adam"]
    assert len(recipes["experiment"]) == 6
    assert len(grid("stopping_nn1")["experiment"]) == 5
    assert len(grid("stopping_nn2")["experiment"]) == 6
    parts = {source.part for source in stopping.SUITE}
    assert parts == {"dev", "held-out"}


def test_the_protocol_picks_z_on_dev_alone():
    rows = pd.DataFrame(
        [
            # z, part, regime, lost_mean, saved_mean
            (0.0, "dev", "large", 0.10, 0.90),
            (0.0, "dev", "small", 1.50, 0.3),
            (0.5, "dev", "large", 0.12, 0.70),
            (0.5, "dev", "small", 0.80, 0.1),
            (1.0, "dev", "large", 0.14, 0.65),
            (1.0, "dev", "small", 0.75, 0.05),
            (4.0, "dev", "large", 0.50, 0.40),
            (4.0, "dev", "small", 0.70, 0.0),
            (0.5, "held-out", "large", 9.0, 0.0),  # never looked at
        ],
        columns=["z", "part", "regime", "lost_mean", "saved_mean"],
    )
    rules = pd.DataFrame(
        {
            "part": ["dev"] * 2,
            "regime": ["small"] * 2,
            "rule": ["end"] * 2,
            "lost_vs_best": [0.7, 0.7],
        }
    )
    # z = 0 loses too much on small data, z = 4 saves too little; 0.5 and 1 tie within 0.05
    assert stopping.choose_z(rows, rules) == 1.0
    assert stopping.choose_z(rows[rows["z"] == 4.0], rules) is None


def test_the_evidence_based_criterion_does_not_decide_for_momentum_or_adam(toy_results):
    # derived for plain SGD: a momentum or Adam run that logged EB gets no decision
    full = next(t for t in stopping.load_source(toy_results, TOY_SUITE[0]) if t.run == "full")
    rule = EvidenceBased()
    assert rule.decide(full).stop_epoch == 4
    for recipe in ("momentum", "adam"):
        full.info["recipe"] = recipe
        assert rule.decide(full) is None
    full.info["recipe"] = "sgd"


def test_the_breakdown_by_family_and_recipe(toy_results):
    runs, rules = stopping.benchmark(toy_results, suite=TOY_SUITE)
    text = stopping.breakdown_markdown(runs, rules, part="dev")
    row = next(line for line in text.splitlines() if line.startswith("| mixtures, SGD (1) |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # bulk growth: 0 lost, 1/6 saved, ends above validation p10's twin; EB stops at 4 (best)
    assert cells[1] == "0.00 / 0.00, 17% (1/1)"
    assert cells[3].startswith("0.00 / 0.00, 33%")
