"""The CUDA path (skipped without a GPU; scripts/gpu_tests.sh runs these on a GPU machine),
and the GPU benchmark on a small size on the CPU."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import ROOT

import heavytail as ht
from htrain.batched import Member, train_batched
from htrain.data import gaussian_mixture
from htrain.rundir import load_checkpoint
from htrain.spectra import eigenvalues_of
from htrain.train import TrainConfig, run_training

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def config(**changes) -> TrainConfig:
    return TrainConfig(model="nn1", layers=("fc2", "fc3"), epochs=2, n_classes=8, **changes)


def data(seed: int = 0, delta: float = 0.6):
    return gaussian_mixture("d1", 8, 100, 60, 20, seed=seed, delta=delta)


@pytest.mark.gpu
@cuda
def test_eigenvalues_on_the_device_equal_the_hosts():
    weight = torch.randn(384, 512, device="cuda") / 512**0.5
    np.testing.assert_allclose(eigenvalues_of(weight), ht.esd(weight), rtol=1e-9, atol=1e-12)


@pytest.mark.gpu
@cuda
def test_a_run_on_cuda_writes_a_checkpoint_that_loads_on_the_cpu(tmp_path):
    summary = run_training(tmp_path / "run", data(), config(device="cuda"), progress=False)
    assert summary["status"] == "finished"
    payload = load_checkpoint(tmp_path / "run" / "checkpoint.pt", map_location="cpu")
    assert all(t.device.type == "cpu" for t in payload["model"].values())


@pytest.mark.gpu
@cuda
def test_the_batched_trainer_on_cuda_follows_single_cuda_runs(tmp_path):
    settings = [(0, 0.3), (1, 0.9), (2, 2.0)]
    for index, (seed, delta) in enumerate(settings):
        run_training(
            tmp_path / f"single{index}",
            data(seed, delta),
            config(device="cuda", seed=seed),
            progress=False,
        )
    members = [
        Member(tmp_path / f"stacked{i}", data(seed, delta), config(device="cuda", seed=seed))
        for i, (seed, delta) in enumerate(settings)
    ]
    train_batched(members)
    for index in range(len(settings)):
        ours = pd.read_csv(tmp_path / f"stacked{index}" / "metrics.csv")
        theirs = pd.read_csv(tmp_path / f"single{index}" / "metrics.csv")
        np.testing.assert_allclose(ours["test_acc"], theirs["test_acc"], atol=1e-3)
        np.testing.assert_allclose(ours["train_loss"], theirs["train_loss"], rtol=1e-3)
        np.testing.assert_allclose(ours["eb_criterion"], theirs["eb_criterion"], rtol=1e-2)


@pytest.mark.slow
def test_the_gpu_benchmark_runs_on_a_small_size_on_any_device():
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_gpu.py"),
            "--per-class",
            "8",
            "--members",
            "2",
            "--epochs",
            "1",
            "--repeats",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "runs stacked" in result.stdout and "ratio" in result.stdout
    assert "CUDA-graph steps" in result.stdout and "batched" in result.stdout


def eager_and_graphed(tmp_path, device: str, **changes):
    """The same two members trained with eager steps and with CUDA-graph steps: their
    summaries and metrics.csv frames, in that order."""
    settings = [(0, 0.3), (1, 0.9)]

    def members(tag):
        return [
            Member(
                tmp_path / f"{tag}{i}",
                data(seed, delta),
                config(device=device, seed=seed, **changes),
            )
            for i, (seed, delta) in enumerate(settings)
        ]

    summaries = [train_batched(members(tag), graphs=tag == "graph") for tag in ("eager", "graph")]
    frames = [
        [pd.read_csv(tmp_path / f"{tag}{i}" / "metrics.csv") for i in range(len(settings))]
        for tag in ("eager", "graph")
    ]
    return summaries, frames


@pytest.mark.gpu
@cuda
def test_the_cuda_graph_step_follows_the_eager_one(tmp_path, capsys):
    # measured and unmeasured steps are two graphs; EB comes out of the measured one
    (eager, graphed), (first, second) = eager_and_graphed(tmp_path, "cuda")
    assert "capture failed" not in capsys.readouterr().out
    for a, b in zip(eager, graphed, strict=True):
        assert abs(a["final_test_acc"] - b["final_test_acc"]) <= 0.02
    for a, b in zip(first, second, strict=True):
        np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=1e-4)
        np.testing.assert_allclose(a["eb_criterion"], b["eb_criterion"], rtol=1e-3)


@pytest.mark.gpu
@cuda
def test_the_cuda_graph_step_of_stacked_adam_follows_the_eager_one(tmp_path, capsys):
    # Adam is captured with its step count on the device (capturable)
    changes = {"optimizer": "adam", "lr": 0.001}
    _, (first, second) = eager_and_graphed(tmp_path, "cuda", **changes)
    assert "capture failed" not in capsys.readouterr().out
    for a, b in zip(first, second, strict=True):
        np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=1e-4)
        np.testing.assert_allclose(a["test_acc"], b["test_acc"], atol=0.02)


def test_on_the_cpu_the_graph_option_falls_back_to_the_same_eager_steps(tmp_path):
    # graphs=True on a CPU: eager steps, the very same numbers as graphs=False
    (eager, graphed), (first, second) = eager_and_graphed(tmp_path, "cpu")
    for a, b in zip(eager, graphed, strict=True):
        assert a["final_test_acc"] == b["final_test_acc"]
    for a, b in zip(first, second, strict=True):
        pd.testing.assert_series_equal(a["train_loss"], b["train_loss"])
