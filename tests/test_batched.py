"""The batched trainer: each member of a stacked model follows its single run (same seeds),
writes the same files, and a diverging member does not stop the others."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import ROOT
from hydra import compose, initialize_config_dir

from htrain import experiment
from htrain.batched import Member, train_batched
from htrain.replay import read_eigenvalues
from htrain.rundir import load_checkpoint
from htrain.train import run_training

# trains several small runs per test: slow (make test runs it, make test-fast skips it)
pytestmark = pytest.mark.slow

# three settings of one NN1 panel row (K = 8): different difficulty and seed
SETTINGS = [
    ("data.delta=0.3", "seed=0"),
    ("data.delta=0.9", "seed=1"),
    ("data.delta=2.0", "seed=2"),
]
BASE = ("profile=smoke", "data.n_per_class=40", "data.n_test_per_class=10", "train.epochs=3")


def member(folder, *overrides: str) -> Member:
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=[*BASE, *overrides])
    return Member(folder, experiment.load_data(cfg), experiment.train_config(cfg))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("batched")
    singles = [member(root / f"single{i}", *s) for i, s in enumerate(SETTINGS)]
    for m in singles:
        run_training(m.out_dir, m.data, m.config, progress=False)
    stacked = [member(root / f"stacked{i}", *s) for i, s in enumerate(SETTINGS)]
    summaries = train_batched(stacked)
    return singles, stacked, summaries


@pytest.mark.xdist_group("batched_runs")
def test_each_member_follows_its_single_run(runs):
    singles, stacked, summaries = runs
    for single, batched, summary in zip(singles, stacked, summaries, strict=True):
        assert summary["status"] == "finished" and summary["epochs_run"] == 3
        ours = pd.read_csv(batched.out_dir / "metrics.csv")
        theirs = pd.read_csv(single.out_dir / "metrics.csv")
        assert list(ours.columns) == list(theirs.columns)
        for column in ("train_loss", "train_acc", "test_loss", "test_acc"):
            np.testing.assert_allclose(ours[column], theirs[column], rtol=1e-4, atol=1e-5)
        # the evidence-based criterion, measured per member on the same steps
        assert ours["eb_criterion"].isna().tolist() == [True, False, False, False]
        np.testing.assert_allclose(ours["eb_criterion"], theirs["eb_criterion"], rtol=1e-3)
        mine, reference = (
            read_eigenvalues(r.out_dir / "eigenvalues.npz") for r in (batched, single)
        )
        assert mine.keys() == reference.keys()
        for epoch in reference:
            for layer in reference[epoch]:
                np.testing.assert_allclose(
                    mine[epoch][layer], reference[epoch][layer], rtol=1e-4, atol=1e-9
                )


@pytest.mark.xdist_group("batched_runs")
def test_members_write_the_files_a_single_run_writes(runs):
    singles, stacked, _ = runs
    for single, batched in zip(singles, stacked, strict=True):
        names = {p.name for p in single.out_dir.iterdir()}
        assert {p.name for p in batched.out_dir.iterdir()} == names
        ours = json.loads((batched.out_dir / "summary.json").read_text())
        theirs = json.loads((single.out_dir / "summary.json").read_text())
        assert ours.keys() == theirs.keys() and ours["analysis"] == theirs["analysis"]


def test_a_member_checkpoint_resumes_as_a_single_run(tmp_path):
    # a batched member's folder, asked for one more epoch, resumed by the single-run loop
    folder = tmp_path / "resume"
    extended = member(folder, *SETTINGS[0])
    train_batched([extended])
    (folder / "done").unlink()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=[*BASE, *SETTINGS[0], "train.epochs=4"])
    summary = run_training(folder, extended.data, experiment.train_config(cfg), progress=False)
    assert summary["epochs_run"] == 4


def test_a_diverging_member_is_marked_and_the_others_go_on(tmp_path):
    # members share the learning rate (stacked models have one): one diverges through its
    # data, means of 1e6
    members = [member(tmp_path / "ok", *SETTINGS[0]), member(tmp_path / "bad", "data.delta=1e6")]
    summaries = train_batched(members)
    assert summaries[0]["status"] == "finished" and summaries[0]["epochs_run"] == 3
    assert summaries[1]["status"] == "diverged"
    assert (tmp_path / "bad" / "done").read_text().strip() == "diverged"


def test_models_that_cannot_be_stacked_are_refused(tmp_path, data_dir):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["experiment=mnist_lenet", "profile=smoke", f"paths.data_dir={data_dir}"],
        )
    lenet = Member(tmp_path / "lenet", experiment.load_data(cfg), experiment.train_config(cfg))
    with pytest.raises(ValueError, match="cannot be stacked"):
        train_batched([lenet])


def test_launcher_batched_writes_the_folders_the_basic_launcher_writes(tmp_path):
    from helpers import run_script, train_in_process

    grid = ("sweep=nn1_d1", "profile=smoke", "data.K=8", "seed=0")
    batched = run_script(
        *grid, "data.delta=0,2.0", "launcher=batched", f"paths.output_dir={tmp_path / 'batched'}"
    )
    assert batched.returncode == 0, batched.stderr
    assert "as stacked models" in batched.stderr + batched.stdout
    # each point as run.py trains it alone, in process: a run's folder is named by its
    # config's hash, whichever launcher (test_sweeps runs the basic one's sweeps)
    for delta in ("0", "2.0"):
        train_in_process(None, *grid, f"data.delta={delta}", f"paths.output_dir={tmp_path}")
    names = {p.name for p in (tmp_path / "runs").glob("gmm*")}
    assert names == {p.name for p in (tmp_path / "batched" / "sweeps" / "nn1_d1").glob("gmm*")}
    assert len(names) == 2
    for name in names:
        assert (tmp_path / "batched" / "sweeps" / "nn1_d1" / name / "done").exists()


def test_momentum_buffers_travel_through_member_checkpoints(tmp_path):
    # SGD with momentum: a member checkpoint holds its slice of the stacked buffers, so a
    # single-run resume continues as the uninterrupted single run does
    momentum = ("optim.momentum=0.9",)
    whole = member(tmp_path / "whole", *SETTINGS[1], *momentum)
    run_training(whole.out_dir, whole.data, whole.config, progress=False)
    part = member(tmp_path / "part", *SETTINGS[1], *momentum, "train.epochs=2")
    train_batched([part])
    assert_resumes_as_the_whole_run(part, whole)


def assert_resumes_as_the_whole_run(part: Member, whole: Member) -> None:
    """``part`` (a batched member stopped at epoch 2), resumed by the single-run loop to
    epoch 3, ends with the uninterrupted single run ``whole``'s numbers."""
    (part.out_dir / "done").unlink()
    summary = run_training(part.out_dir, part.data, whole.config, progress=False)
    assert summary["epochs_run"] == 3
    ours = pd.read_csv(part.out_dir / "metrics.csv")
    theirs = pd.read_csv(whole.out_dir / "metrics.csv")
    np.testing.assert_allclose(ours["train_loss"], theirs["train_loss"], rtol=1e-4)
    np.testing.assert_allclose(ours["test_acc"], theirs["test_acc"], atol=1e-6)


def test_the_stacked_spectra_equal_the_single_ones_and_skip_nan_members():
    import heavytail as ht
    from htrain.spectra import stacked_eigenvalues

    generator = torch.Generator().manual_seed(0)
    weights = torch.randn(4, 96, 64, generator=generator)  # out > in: transposed like esd
    weights[2, 0, 0] = float("nan")
    values = stacked_eigenvalues(weights)
    assert values[2] is None
    for r in (0, 1, 3):
        single = ht.esd(weights[r])
        assert values[r].shape == (64,)
        np.testing.assert_allclose(values[r], single, rtol=1e-10, atol=1e-12)


def test_adam_members_follow_their_single_runs_and_resume_as_single_runs(tmp_path):
    # Adam is elementwise too: stacked members follow their single runs; a member checkpoint
    # holds its slices of the moments and the shared step count, so a single-run resume
    # continues as the uninterrupted single run does
    adam = ("optim.name=adam", "optim.lr=0.001")
    singles = [member(tmp_path / f"single{i}", *s, *adam) for i, s in enumerate(SETTINGS[:2])]
    for m in singles:
        run_training(m.out_dir, m.data, m.config, progress=False)
    parts = [
        member(tmp_path / f"part{i}", *s, *adam, "train.epochs=2")
        for i, s in enumerate(SETTINGS[:2])
    ]
    train_batched(parts)
    for part, single in zip(parts, singles, strict=True):
        state = load_checkpoint(part.out_dir / "checkpoint.pt", "cpu")["optimizer"]
        assert {"exp_avg", "exp_avg_sq", "step"} <= set(state["state"][0])
        assert_resumes_as_the_whole_run(part, single)
