"""The experiment runner through the real configs: every experiment, outputs, resume,
divergence and bad configs."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import ROOT, error_line, kill_when, run_command, run_script, train_in_process
from hydra import compose, initialize_config_dir

from htrain import experiment as runner
from htrain.collect import collect as collect_tables
from htrain.runfiles import RUN_FILES, SPECTRAL_COLUMNS
from htrain.train import run_training

EXPERIMENTS = sorted(path.stem for path in (ROOT / "configs" / "experiment").glob("*.yaml"))


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_there_are_the_paper_experiments():
    expected = {
        "gmm_nn1_d1",
        "gmm_nn1_d2",
        "gmm_nn2_d1",
        "gmm_nn2_d2",
        "mnist_lenet",
        "mnist_minialexnet",
        "mnist_vgg11",
        "cifar10_lenet",
        "cifar10_minialexnet",
        "cifar10_vgg11",
        "mnist",
        "cifar10",
    }
    assert expected <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_each_experiment_runs_one_epoch_on_tiny_data(experiment, data_dir, tmp_path):
    # with the files in place torchvision finds them and downloads nothing
    cfg = config(
        f"experiment={experiment}",
        "profile=smoke",
        f"paths.data_dir={data_dir}",
    )
    assert cfg.train.epochs == 1
    train = runner.train_config(cfg)
    data = runner.load_data(cfg)
    summary = run_training(tmp_path / "run", data, train, progress=False)
    assert summary["status"] == "finished" and summary["epochs_run"] == 1
    spectral = pd.read_csv(tmp_path / "run" / "spectral.csv")
    assert set(spectral["layer"]) == set(train.layers)
    assert set(spectral["epoch"]) == {0, 1}
    for column in (*SPECTRAL_COLUMNS, "threshold_paper_C0.4", "threshold_paper_C0.6"):
        assert column in spectral.columns
    eigenvalues = np.load(tmp_path / "run" / "eigenvalues.npz")
    assert f"{train.layers[0]}/1" in eigenvalues.files


@pytest.mark.slow
def test_the_default_command_writes_every_output(tmp_path):
    result = run_script("profile=smoke", "train.esd_figure=true", f"paths.output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("gmm_d1-nn1-")
    for name in RUN_FILES:
        assert (run_dir / name).exists(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["snr"] > 0
    assert "calibrated" in result.stdout and "status: finished" in result.stdout
    # the same command again finds the finished run instead of training a new one (in
    # process: run.py's own call); without the figure, a run writes every other file
    again = train_in_process(None, "profile=smoke", f"paths.output_dir={tmp_path}")
    assert again == summary and len(list((tmp_path / "runs").iterdir())) == 1
    plain = train_in_process(None, "profile=smoke", "seed=1", f"paths.output_dir={tmp_path}")
    plain_dir = Path(plain["run_dir"])
    assert [name for name in RUN_FILES if not (plain_dir / name).exists()] == ["esd_final.png"]


@pytest.mark.slow
def test_class_spikes_are_set_aside_in_a_real_run(tmp_path):
    # an easy mixture (D1, delta = 2, K = 8) grows its 8 class spikes within a few epochs;
    # with K known they are set aside and nothing fires, while the gap rule (K unknown)
    # fires on them in transit (the same run replayed from its own eigenvalues)
    summary = train_in_process(
        None, f"paths.output_dir={tmp_path}", "data.delta=2.0", "train.epochs=10", "optim.lr=0.05"
    )
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert summary["analysis"]["n_classes"] == 8
    assert summary["rules"]["paper_C0.4"]["stop_epoch"] is None
    assert summary["final_types"] == {"fc2": "LT", "fc3": "LT"}
    spectral = pd.read_csv(run_dir / "spectral.csv")
    assert spectral.groupby("layer")["n_spikes"].max().min() >= 1
    tables, _ = collect_tables(tmp_path / "runs", n_classes=None)
    assert tables["runs"]["stop_epoch_paper_C0.4"].notna().all()


RESUME = ("data.n_per_class=400", "data.n_test_per_class=50", "train.epochs=6")


def comparable(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics = pd.read_csv(run_dir / "metrics.csv").drop(columns=["wall_time_s", "spectra_time_s"])
    return metrics, pd.read_csv(run_dir / "spectral.csv")


@pytest.mark.slow
def test_a_killed_run_resumes_and_ends_with_the_same_numbers(tmp_path):
    # the killed run is a process of its own; the whole run and the resume run in process
    # (run.py's own call): the same folders, names and numbers, without two interpreter starts
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    train_in_process(None, *RESUME, f"paths.output_dir={whole}")

    def epoch_two_on_disk() -> bool:
        found = list(killed.glob("runs/*/metrics.csv"))
        return bool(found) and len(pd.read_csv(found[0])) >= 3

    kill_when(run_command(*RESUME, f"paths.output_dir={killed}"), epoch_two_on_disk)
    (run_dir,) = (killed / "runs").iterdir()
    assert not (run_dir / "done").exists()
    assert len(pd.read_csv(run_dir / "metrics.csv")) < 7
    assert train_in_process(None, *RESUME, f"paths.output_dir={killed}")["status"] == "finished"
    (reference,) = (whole / "runs").iterdir()
    assert reference.name == run_dir.name  # same config, same run name
    for ours, theirs in zip(comparable(run_dir), comparable(reference), strict=True):
        pd.testing.assert_frame_equal(ours, theirs)


def test_a_diverging_run_stops_cleanly_and_keeps_its_history(tmp_path):
    cfg = config("profile=smoke", "data.n_per_class=200", "optim.lr=1e6", "train.epochs=5")
    summary = run_training(
        tmp_path / "run", runner.load_data(cfg), runner.train_config(cfg), progress=False
    )
    assert summary["status"] == "diverged"
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert len(metrics) >= 2 and metrics["epoch"].iloc[0] == 0
    spectral = pd.read_csv(tmp_path / "run" / "spectral.csv")
    last = spectral[spectral["epoch"] == spectral["epoch"].max()]
    assert last["skipped"].str.contains("NaN or inf").all()
    assert (tmp_path / "run" / "done").read_text().strip() == "diverged"


BAD_CONFIGS = [
    (("data.K=1",), "data.K must be at least 2"),
    (("data.delta=-0.5",), "data.delta must be a non-negative number"),
    (("data.snr=-1",), "data.snr must be a non-negative number"),
    (("train.batch_size=0",), "train.batch_size must be at least 1"),
    (("spectra.layers=[fc9]",), "monitored layer 'fc9' is not in the model"),
    (("experiment=cifar10_lenet", "data.size=32"), "cannot take inputs of shape (3, 32, 32)"),
    (("model.name=resnet",), "unknown model 'resnet'"),
    (("early_stop.action=halt",), "early_stop.action must be record or stop"),
    (("train.esd_figure=flase",), "train.esd_figure must be true or false, got 'flase'"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_CONFIGS)
def test_bad_configs_fail_before_training_with_one_line(overrides, message, data_dir, tmp_path):
    line = error_line(tmp_path / "run", "profile=smoke", f"paths.data_dir={data_dir}", *overrides)
    assert "\n" not in line and message in line
    assert not (tmp_path / "run" / "metrics.csv").exists()


@pytest.mark.slow
def test_the_command_prints_one_line_and_fails_before_training(data_dir, tmp_path):
    # the line that run_job ends with (every case above, in process) is all the command
    # prints; this check is found while the model is built, the latest before training
    overrides, message = BAD_CONFIGS[4]
    result = run_script(
        "profile=smoke", f"paths.data_dir={data_dir}", f"paths.output_dir={tmp_path}", *overrides
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not list(tmp_path.glob("runs/*/metrics.csv"))


def test_missing_real_data_says_where_the_files_go(tmp_path):
    line = error_line(
        None,
        "experiment=cifar10",
        "profile=smoke",
        f"paths.data_dir={tmp_path}",
        "data.download=false",
        f"paths.output_dir={tmp_path / 'out'}",
    )
    assert line.startswith("error: ") and f"{tmp_path / 'cifar-10-batches-py'}" in line


def test_snr_sets_the_difficulty_parameter():
    cfg = config("profile=smoke", "experiment=gmm_nn1_d2", "data.snr=2.0")
    assert runner.load_data(cfg).snr == pytest.approx(2.0)
    cfg = config("profile=smoke", "experiment=gmm_nn1_d1", "data.snr=1.5")
    assert runner.load_data(cfg).snr == pytest.approx(1.5)


def test_validation_split_is_held_out_of_training():
    cfg = config("profile=smoke", "data.n_per_class=50", "data.val_fraction=0.2")
    data = runner.load_data(cfg)
    assert len(data.y_train) == 320 and len(data.y_val) == 80


def test_action_stop_really_stops_and_record_trains_on(tmp_path):
    # a tiny C makes the paper rule fire at the first monitored epoch
    overrides = (
        "profile=smoke",
        "data.n_per_class=100",
        "train.epochs=4",
        "spectra.C=[0.001,0.6]",
        "early_stop.C=0.001",
    )
    stop = config(*overrides, "early_stop.action=stop")
    summary = run_training(
        tmp_path / "stop", runner.load_data(stop), runner.train_config(stop), progress=False
    )
    assert summary["status"] == "stopped" and summary["epochs_run"] == 1
    assert summary["rules"]["paper_C0.001"]["stop_epoch"] == 1
    record = config(*overrides)
    summary = run_training(
        tmp_path / "record", runner.load_data(record), runner.train_config(record), progress=False
    )
    assert summary["status"] == "finished" and summary["epochs_run"] == 4
    assert summary["rules"]["paper_C0.001"]["stop_epoch"] == 1
    assert summary["rules"]["paper_C0.001"]["test_acc_at_fire"]["fc2"] is not None


def test_subnormals_are_flushed_while_a_run_trains_and_not_after():
    # Adam's first moment of a weight with zero gradient decays to the smallest subnormal,
    # where beta1 = 0.9 rounds it back to itself: it would stay there, slow, for good
    import torch

    from htrain.train import subnormals_flushed

    smallest = torch.tensor(2.0**-149, dtype=torch.float32)
    assert smallest.item() > 0 and (smallest * 0.9).item() == smallest.item()
    with subnormals_flushed():
        assert (smallest * 0.9).item() == 0.0
    assert (smallest * 0.9).item() == smallest.item()
