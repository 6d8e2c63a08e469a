"""One home per idea: a toy threshold rule, a toy data set with K = 100 and a toy network,
each added here and nowhere else (one registry entry each), are found by the run, the replay,
collect, compare and the figures."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import train_in_process

import heavytail as ht
from htrain import datasets, figures, networks
from htrain.collect import collect
from htrain.compare import rules_for
from htrain.data import Dataset
from htrain.models import MLP
from htrain.replay import Analysis, read_eigenvalues, replay
from htrain.report import thresholds_in

TOY_K = 100
TOY_LEVEL = 0.05


def _toy_data(cfg) -> Dataset:
    """K = 100 Gaussian blobs in 20 dimensions, a few per class."""
    rng = np.random.default_rng(int(cfg.seed))
    means = 3.0 * rng.standard_normal((TOY_K, 20))

    def draw(per_class):
        y = np.repeat(np.arange(TOY_K), per_class)
        x = means[y] + rng.standard_normal((y.size, 20))
        return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.int64)

    x_train, y_train = draw(int(cfg.data.n_per_class))
    x_test, y_test = draw(int(cfg.data.n_test_per_class))
    return Dataset(x_train, y_train, x_test, y_test, TOY_K)


@pytest.fixture
def toy_homes():
    rule = ht.register_threshold(
        ht.ThresholdKind("toy", lambda n, ratio, C: TOY_LEVEL, "toy (s* = 0.05)", "toy", False, ":")
    )
    datasets.DATASETS["toy100"] = datasets.DataSetEntry(
        "toy100", _toy_data, lambda spec: TOY_K, lambda spec: None
    )
    networks.register_network(
        networks.NetworkEntry(
            "toy_mlp", lambda in_shape, K: MLP([in_shape[0], 64, 48, K]), ("fc1", "fc2")
        )
    )
    yield rule
    ht.THRESHOLD_KINDS.pop("toy")
    datasets.DATASETS.pop("toy100")
    networks.NETWORKS.pop("toy_mlp")


def test_a_toy_rule_data_set_and_network_reach_run_replay_collect_and_figures(tmp_path, toy_homes):
    runs_dir = tmp_path / "runs"
    run_dir = runs_dir / "toy"
    overrides = ("profile=smoke", "data=mnist1d", "data.name=toy100", "model.name=toy_mlp")
    train_in_process(run_dir, *overrides, "train.epochs=3")

    # the run: K from the data set's entry, layers from the network's, the rule recorded
    spectral = pd.read_csv(run_dir / "spectral.csv")
    assert set(spectral["layer"]) == {"fc1", "fc2"}
    assert np.array_equal(spectral["threshold_toy"], np.full(len(spectral), TOY_LEVEL))
    assert (spectral["fires_toy"] == (spectral["s_hat"] > TOY_LEVEL)).all()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["analysis"]["n_classes"] == TOY_K
    assert "toy" in summary["rules"]

    # the replay from the recorded eigenvalues: the same rows, the rule's stopper
    analysis = Analysis(layers=("fc1", "fc2"), n_classes=TOY_K)
    shapes = {"fc1": (64, 20), "fc2": (48, 64)}
    rows, stoppers = replay(read_eigenvalues(run_dir / "eigenvalues.npz"), shapes, analysis)
    replayed = pd.DataFrame(rows)
    assert np.allclose(replayed["s_hat"], spectral["s_hat"], atol=1e-9)
    assert stoppers["toy"].stop_epoch == summary["rules"]["toy"]["stop_epoch"]

    # collect: the rule's columns, K = 100 and the network's layers in its analysis
    tables, meta = collect(runs_dir)
    runs = tables["runs"]
    assert runs["status"].tolist() == ["finished"]
    assert "stop_epoch_toy" in runs and "fire_epoch_toy_fc1" in runs
    assert meta["analysis"][0]["n_classes"] == TOY_K
    assert meta["analysis"][0]["layers"] == ["fc1", "fc2"]

    # compare and the figures: the rule by its registry entry, K from the data set's
    collected = tables["spectral"]
    assert "spectral toy" in [rule.name for rule in rules_for(collected)]
    assert ht.Threshold("toy") in thresholds_in(collected)
    assert figures.rule_styles(thresholds_in(collected))["toy"] == ":"
    assert figures.n_classes_of(runs, runs["run"].iloc[0]) == TOY_K
    figure = figures.shat_figure(collected, tables["epochs"], runs, runs["run"].tolist())
    dotted = [line for ax in figure.axes for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert any(np.allclose(line.get_ydata(), TOY_LEVEL) for line in dotted)


def test_a_threshold_rule_name_is_checked_against_the_registry():
    with pytest.raises(ValueError, match=r"threshold must be one of \('paper', 'calibrated'"):
        ht.Threshold("bootstrap")
    with pytest.raises(ValueError, match="kind must be an identifier"):
        ht.register_threshold(ht.ThresholdKind("two words", lambda n, r, C: 0.1, "x", "x"))
    assert ht.Threshold.from_name("paper_C0.6") == ht.Threshold("paper", 0.6)
    assert [rule.name for rule in ht.Threshold.recorded((0.4, 0.6))] == [
        "paper_C0.4",
        "paper_C0.6",
        "calibrated",
    ]


@pytest.mark.xdist_group("lightning")  # imports lightning: on the worker that already has
def test_the_stopping_settings_are_one_type_with_one_default_everywhere():
    # the runner's stop rule, a run's analysis, compare's rules and every callback hold the
    # same heavytail.StopSettings (patience, start_from_epoch, combine), defaults included
    from heavytail.integrations.lightning import SpectralMonitor
    from htrain.rules import ThresholdReplay
    from htrain.train import StopRule

    default = ht.StopSettings()
    assert isinstance(StopRule(), ht.StopSettings)
    assert StopRule().stop_settings() == default.stop_settings()
    assert Analysis(layers=("fc1",)).stop == default
    assert ThresholdReplay("x", "paper_C0.4").stop == default
    stoppers = [
        ht.SpectralEarlyStopping(layers=["fc1"]),
        SpectralMonitor(layers=["fc1"]).stopper,
        *Analysis(layers=("fc1",)).stoppers().values(),
    ]
    for stopper in stoppers:
        assert stopper.settings == default
    with pytest.raises(ValueError, match="patience must be at least 1"):
        StopRule(patience=0)
