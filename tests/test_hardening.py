"""Faults a user meets, each reproduced: unsafe or broken checkpoints, two writers on one run,
downloads that hang, bad config values, folders that cannot be written, float32 spectra,
file permissions."""

import os
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import ROOT, compose_config, error_line, run_command, train_in_process

from heavytail import classify
from heavytail.fit import as_eigenvalues
from htrain import data as datasets
from htrain import experiment
from htrain.io import write_text
from htrain.rundir import BadCheckpoint
from htrain.train import run_training

SMALL = ("profile=smoke", "data.n_per_class=100", "train.epochs=3")


def train(folder, *overrides: str, **options) -> dict:
    cfg = compose_config(*SMALL, *overrides)
    return run_training(
        folder, experiment.load_data(cfg), experiment.train_config(cfg), progress=False, **options
    )


def unfinished_run(folder) -> None:
    """A run folder as a killed run leaves it: tables and a checkpoint, no done marker."""
    train(folder)
    (folder / "done").unlink()
    (folder / "summary.json").unlink()


class _Payload:
    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_checkpoint_cannot_run_code_on_resume(tmp_path):
    run = tmp_path / "run"
    unfinished_run(run)
    marker = tmp_path / "pwned"
    torch.save({"format": 2, "state": _Payload(marker)}, run / "checkpoint.pt")
    with pytest.raises(BadCheckpoint, match=r"pickled objects.*train\.restart=true"):
        train(run)
    assert not marker.exists()


@pytest.mark.slow
def test_a_truncated_checkpoint_says_what_to_do_and_restart_keeps_the_old_files(tmp_path):
    run = tmp_path / "run"
    unfinished_run(run)
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    line = error_line(run, *SMALL)  # in process: run.py's own call
    assert "\n" not in line and line.startswith("error: ") and "checkpoint.pt is corrupt" in line
    assert "train.restart=true" in line
    assert train_in_process(run, *SMALL, "train.restart=true")["status"] == "finished"
    assert (run / "done").exists()
    (kept,) = run.glob("replaced-*")
    assert (kept / "checkpoint.pt").read_bytes() == data[: len(data) // 2]


def test_an_old_pickled_checkpoint_gets_a_clear_error(tmp_path):
    run = tmp_path / "run"
    unfinished_run(run)
    torch.save({"state": {"stoppers": object()}, "model": {}}, run / "checkpoint.pt")
    with pytest.raises(BadCheckpoint, match="older version"):
        train(run)
    torch.save({"format": 1}, run / "checkpoint.pt")
    with pytest.raises(BadCheckpoint, match="not a run checkpoint of format 2"):
        train(run)


def test_a_resumed_run_continues_exactly(tmp_path):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    train(whole)
    train(resumed, "train.epochs=2")  # stop after 2 epochs, then ask for 3 from the same folder
    (resumed / "done").unlink()
    train(resumed)
    for name in ("metrics.csv", "spectral.csv"):
        ours, theirs = pd.read_csv(resumed / name), pd.read_csv(whole / name)
        drop = [c for c in ("wall_time_s", "spectra_time_s") if c in ours]
        pd.testing.assert_frame_equal(ours.drop(columns=drop), theirs.drop(columns=drop))


def test_a_run_resumed_under_another_analysis_replays_its_history(tmp_path):
    mixed, reference = tmp_path / "mixed", tmp_path / "reference"
    train(mixed, "train.epochs=2", "spectra.n_classes=null")
    (mixed / "done").unlink()
    train(mixed)  # the default analysis knows K = 8
    train(reference)
    ours, theirs = pd.read_csv(mixed / "spectral.csv"), pd.read_csv(reference / "spectral.csv")
    pd.testing.assert_frame_equal(ours, theirs)


@pytest.mark.slow
def test_a_second_process_on_a_live_run_folder_is_refused_or_waits(tmp_path):
    slow = (
        "profile=smoke",
        "data.n_per_class=200",
        "train.epochs=40",  # far more than fit in the 0.1 s before it is stopped
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    first = subprocess.Popen(
        run_command(*slow), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    said = tmp_path / "waiting.err"
    try:
        lock = tmp_path / "run" / ".lock"
        deadline = time.time() + 120
        while time.time() < deadline and not (lock.exists() and lock.read_text().strip()):
            time.sleep(0.1)
        # stopped, the first run still holds the lock (it is alive) and leaves the cores free
        os.kill(first.pid, signal.SIGSTOP)
        # the second one from this test's process (run.py's own call): no interpreter start
        line = error_line(None, *slow)
        assert "\n" not in line and f"in use by PID {first.pid}" in line
        assert "train.wait_for_lock=true" in line
        with open(said, "w") as err:
            waiting = subprocess.Popen(
                run_command(*slow, "train.epochs=2", "train.wait_for_lock=true"),
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.time() + 120
        while (
            time.time() < deadline and waiting.poll() is None and "waiting" not in said.read_text()
        ):
            time.sleep(0.1)
        assert f"in use by PID {first.pid}; waiting for it" in said.read_text()
        assert waiting.poll() is None  # blocked on the lock, not failed
    finally:
        first.kill()
        first.wait()
    assert waiting.wait(timeout=300) == 0, said.read_text()
    assert (tmp_path / "run" / "done").exists()


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []

    def accept() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            held.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    server.close()
    for connection in held:
        connection.close()


def test_an_mnist_download_that_never_answers_times_out(silent_server, tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    monkeypatch.setattr(MNIST, "mirrors", [silent_server])
    started = time.time()
    with pytest.raises(FileNotFoundError) as error:
        datasets.load_mnist(tmp_path, download=True, size=28, timeout_s=1)
    assert time.time() - started < 30
    message = str(error.value)
    assert silent_server in message and "download_timeout_s=1" in message
    assert str(tmp_path / "MNIST" / "raw") in message and "data.download=true" not in message
    assert "\n" not in message


def test_a_cifar_download_that_never_answers_times_out(silent_server, tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    url = f"{silent_server}cifar-10-python.tar.gz"
    monkeypatch.setattr(CIFAR10, "url", url)
    started = time.time()
    with pytest.raises(FileNotFoundError) as error:
        datasets.load_cifar10(tmp_path, download=True, size=28, timeout_s=1)
    assert time.time() - started < 30
    assert url in str(error.value) and str(tmp_path / "cifar-10-batches-py") in str(error.value)


def test_missing_mnist_without_download_says_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"set data\.download=true"):
        datasets.load_mnist(tmp_path, download=False, size=28)


def mount_and_run(tmp_path, options: str, *overrides: str) -> subprocess.CompletedProcess:
    """scripts/run.py with its output folder on a tmpfs mounted with ``options``, in a private
    mount namespace (root inside a user namespace: no privileges needed on the machine)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not available")
    probe = subprocess.run(
        ["unshare", "--mount", "--map-root-user", "true"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.skip(f"user and mount namespaces not available: {probe.stderr.strip()}")
    mount = tmp_path / "mnt"
    mount.mkdir()
    command = " ".join(run_command(*SMALL, f"paths.output_dir={mount / 'out'}", *overrides))
    script = f"mount -t tmpfs -o {options} none {mount} && {command}"
    return subprocess.run(
        ["unshare", "--mount", "--map-root-user", "sh", "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


@pytest.mark.slow
def test_a_read_only_output_folder_is_one_line(tmp_path):
    result = mount_and_run(tmp_path, "ro,size=1m")
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot write runs to") and "Read-only file system" in line


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_no_half_written_file(tmp_path):
    result = mount_and_run(
        tmp_path,
        "size=160k",
        "data.n_per_class=300",
    )
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot write the run to") and "No space left" in line


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("data.delta=nan",), "data.delta must be a finite number"),
        (("experiment=gmm_nn1_d2", "data.t=nan"), "data.t must be a finite number"),
        (("data.snr=nan",), "data.snr must be a finite number"),
        (("data.p=0",), "data.p must be at least 2"),
        (("data.p=1",), "data.p must be at least 2"),
        (("train.epochs=2.5",), "train.epochs must be a whole number"),
        (("spectra.layers=[]",), "spectra.layers is empty"),
        (("train.device=foo",), "train.device='foo' is not a device"),
        (("spectra.n_classes=0",), "spectra.n_classes must be at least 1"),
        (("optim.lr=nan",), "optim.lr must be a finite number"),
    ],
)
def test_bad_values_fail_before_any_work(overrides, message, tmp_path):
    # in process: test_runner checks that the command prints these lines alone
    line = error_line(tmp_path / "run", *SMALL, *overrides)
    assert "\n" not in line and message in line, line
    assert not (tmp_path / "run" / "metrics.csv").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_cuda_without_a_gpu_is_one_line(tmp_path):
    line = error_line(None, *SMALL, f"paths.output_dir={tmp_path}", "train.device=cuda")
    assert "\n" not in line and "no CUDA GPU is visible" in line


def test_float32_eigenvalues_of_a_rank_deficient_gram_matrix_are_accepted():
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((300, 60)) @ rng.standard_normal((60, 600))).astype(np.float32)
    eigenvalues = np.linalg.eigvalsh(weight @ weight.T / np.float32(600))
    assert eigenvalues.dtype == np.float32 and eigenvalues.min() < 0
    assert as_eigenvalues(eigenvalues).min() == 0.0
    assert classify(eigenvalues).type == "RC"
    with pytest.raises(ValueError, match="non-negative"):
        as_eigenvalues(np.array([-0.5, 1.0, 2.0]))  # far beyond rounding: a real mistake


def test_files_follow_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        write_text(tmp_path / "shared.txt", "x")
        train(tmp_path / "run")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "shared.txt").stat().st_mode) == 0o640
    for name in ("metrics.csv", "checkpoint.pt", "summary.json", "eigenvalues.npz"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == 0o640, name


def test_a_replaced_folder_is_never_lost(tmp_path, monkeypatch):
    from htrain import io

    target = tmp_path / "esd.parquet"
    target.mkdir()
    (target / "old_run.parquet").write_text("old")

    def fill(folder):
        (folder / "new_run.parquet").write_text("new")

    previous = os.umask(0o027)
    try:
        io.replace_folder(target, fill)
    finally:
        os.umask(previous)
    assert [p.name for p in target.iterdir()] == ["new_run.parquet"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert stat.S_IMODE((target / "new_run.parquet").stat().st_mode) == 0o640
    # the rename of the new folder into place fails: the old one is put back
    real_replace = os.replace

    def refuse_the_new_folder(source, destination):
        if str(source).endswith(".tmp"):
            raise OSError(28, "No space left on device")
        real_replace(source, destination)

    monkeypatch.setattr(io.os, "replace", refuse_the_new_folder)
    with pytest.raises(OSError, match="No space left"):
        io.replace_folder(target, lambda folder: (folder / "newer_run.parquet").write_text("x"))
    assert [p.name for p in target.iterdir()] == ["new_run.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["esd.parquet"]
