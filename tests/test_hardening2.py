"""Hardening, second round: no code from data files, no overwritten user files, bounded work
on hostile input, one-line errors.  Each test reproduces a fault found by trying."""

import json
import os
import pickle
import subprocess

import numpy as np
import pytest
import torch
from conftest import write_cifar10
from helpers import ROOT, script_in_process
from test_hardening import _Payload, train, unfinished_run

from heavytail.cli import main as cli_main
from htrain import data as datasets
from htrain.rundir import BadCheckpoint, set_aside


def test_a_cifar_batch_holding_a_pickle_payload_runs_nothing(tmp_path):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    with open(batch, "wb") as handle:
        pickle.dump({b"data": _Payload(marker), b"labels": [0]}, handle)
    with pytest.raises(ValueError, match=r"data_batch_3 is not a CIFAR-10 batch .*posix\.system"):
        datasets.load_cifar10(tmp_path, download=False, size=28)
    assert not marker.exists()
    batch.write_bytes(b"\x80\x04garbage")  # and a corrupt one is one line too
    with pytest.raises(ValueError, match="is not a CIFAR-10 batch"):
        datasets.load_cifar10(tmp_path, download=False, size=28)


def test_collect_never_replaces_files_that_are_not_a_collection(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "epochs.csv").write_text("my own notes\n")
    (out / "esd.parquet").mkdir()
    (tmp_path / "runs").mkdir()
    for extra in ([], ["--overwrite"]):  # in process: the script file as the interpreter runs it
        done = script_in_process(
            "collect.py", "x", "--runs", str(tmp_path / "runs"), "--out", str(out), *extra
        )
        assert done.returncode != 0 and "no runs.csv" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert (out / "epochs.csv").read_text() == "my own notes\n" and (out / "esd.parquet").is_dir()


def test_two_restarts_within_one_second_keep_both_earlier_attempts(tmp_path):
    for attempt in ("first", "second"):
        (tmp_path / "metrics.csv").write_text(attempt)
        set_aside(tmp_path, ["metrics.csv"], "20261130T120000")
    kept = sorted(p.read_text() for p in tmp_path.glob("replaced-*/metrics.csv"))
    assert kept == ["first", "second"]


def analyze(path, *options, capsys):
    code = cli_main(["analyze", str(path), *options])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (torch.ones(64, 32, dtype=torch.int8), "torch.int8 weights"),
        (torch.ones(64, 32, dtype=torch.bool), "torch.bool weights"),
        (torch.ones(64, 32, dtype=torch.complex64), "torch.complex64 weights"),
    ],
)
def test_analyze_refuses_weights_that_have_no_real_spectrum(tmp_path, capsys, tensor, message):
    torch.save({"fc.weight": tensor}, tmp_path / "w.pt")
    code, _, err = analyze(tmp_path / "w.pt", capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_analyze_checks_the_size_before_any_copy(tmp_path, capsys):
    # one stored number, 40000 x 40000 entries once expanded: refused at once
    torch.save({"fc.weight": torch.zeros(1).expand(40000, 40000)}, tmp_path / "big.pt")
    assert (tmp_path / "big.pt").stat().st_size < 4000
    code, _, err = analyze(tmp_path / "big.pt", capsys=capsys)
    assert code == 2 and "--max-elements 1600000000" in err
    code, _, err = analyze(tmp_path / "big.pt", "--C", "nan", capsys=capsys)
    assert code == 2 and "--C must be a positive number" in err


def test_analyze_reads_bfloat16_safetensors_and_prints_control_characters_escaped(tmp_path, capsys):
    safetensors = pytest.importorskip("safetensors.torch")
    weight = torch.randn(64, 128).to(torch.bfloat16)
    safetensors.save_file({"\x1b[31mevil.weight": weight}, str(tmp_path / "m.safetensors"))
    code, out, err = analyze(tmp_path / "m.safetensors", capsys=capsys)
    assert code == 0, err
    assert "\x1b" not in out and "\\x1b[31mevil" in out


def tamper(run, **changes):
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    state = json.loads(payload["state"])
    state.update(changes)
    payload["state"] = json.dumps(state)
    torch.save(payload, run / "checkpoint.pt")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epoch": 10**9}, "metric rows for epoch 1000000000"),
        ({"epoch": -5}, "saved epoch -5 is not an epoch"),
        ({"status": "weird"}, "unknown status 'weird'"),
        ({"metrics": []}, "0 metric rows for epoch"),
    ],
)
def test_a_checkpoint_that_does_not_fit_the_run_is_refused_in_one_line(tmp_path, changes, message):
    run = tmp_path / "run"
    unfinished_run(run)
    tamper(run, **changes)
    with pytest.raises(BadCheckpoint, match=rf"{message}.*train\.restart=true") as caught:
        train(run)
    assert len(str(caught.value).splitlines()) == 1
    assert not (run / "done").exists()


def test_a_checkpoint_with_tensors_of_another_model_is_refused_in_one_line(tmp_path):
    run = tmp_path / "run"
    unfinished_run(run)
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    state = json.loads(payload["state"])  # a run killed after epoch 2 of 3
    state.update(status="running", epoch=2, metrics=state["metrics"][:3])
    payload["state"] = json.dumps(state)
    payload["model"] = {"fc1.weight": torch.zeros(3, 3)}
    torch.save(payload, run / "checkpoint.pt")
    with pytest.raises(BadCheckpoint, match=r"does not fit this model.*train\.restart=true"):
        train(run)


def test_the_evidence_based_criterion_is_logged_and_changes_no_number(tmp_path):
    with_stats = train(tmp_path / "a", "train.grad_stats=4")
    without = train(tmp_path / "b", "train.grad_stats=0")
    assert with_stats["final_test_acc"] == without["final_test_acc"]
    import pandas as pd

    metrics = pd.read_csv(tmp_path / "a" / "metrics.csv")
    assert metrics["eb_criterion"].iloc[1:].notna().all() and np.isnan(metrics["eb_criterion"][0])


def test_the_callback_records_a_collapsed_layer_and_skips_one_output_heads():
    from heavytail import SpectralEarlyStopping

    model = torch.nn.Sequential(torch.nn.Linear(40, 30), torch.nn.Linear(30, 1))
    with torch.no_grad():
        model[0].weight.zero_()
    stopper = SpectralEarlyStopping(n_classes=2)
    assert not stopper.step(model, 1)  # no crash on the all-zero layer, nothing fires
    assert stopper.layers == ["0"]  # the 1-output head has no spectrum: left out
    assert np.isnan(stopper.history[-1]["s_hat"])
    with pytest.raises(ValueError, match="whole number"):
        SpectralEarlyStopping(n_classes=2.7)


@pytest.mark.xdist_group("lightning")  # imports lightning: on the worker that already has
def test_a_lightning_state_for_other_layers_is_refused_in_one_line():
    pytest.importorskip("lightning")
    from heavytail.integrations.lightning import SpectralMonitor

    saved = SpectralMonitor(layers=["fc1"]).state_dict()
    with pytest.raises(ValueError, match=r"cannot restore.*monitors \['fc1'\]"):
        SpectralMonitor(layers=["fc2"]).load_state_dict(saved)
    with pytest.raises(ValueError, match="cannot restore the saved state"):
        SpectralMonitor(layers=["fc1"]).load_state_dict({"layers": ["fc1"]})


def test_a_done_run_with_an_empty_summary_is_one_line(tmp_path):
    run = tmp_path / "run"
    train(run)
    (run / "summary.json").write_text("")
    with pytest.raises(BadCheckpoint, match=r"summary.json is missing or damaged.*restart=true"):
        train(run)


@pytest.mark.slow
def test_ctrl_c_ends_the_command_with_one_line(tmp_path):
    import signal
    import time

    from helpers import run_command

    command = run_command(
        f"hydra.run.dir={tmp_path / 'run'}",
        "profile=smoke",
        "data.n_per_class=400",
        "train.epochs=200",
    )
    # Ctrl-C reaches a command run in the foreground of a terminal, where SIGINT has its
    # default action; a suite started in the background (`make test &`) ignores SIGINT, and
    # its children inherit that, so the run is given the terminal's default
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (tmp_path / "run" / "checkpoint.pt").exists():
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:  # a run that ignored the signal is not left training beside the next tests
        if process.poll() is None:
            process.kill()
            _, err = process.communicate()
            pytest.fail(f"the run went on after SIGINT:\n{err[-3000:]}")
    assert process.returncode != 0
    assert err.strip().splitlines()[-1].startswith("interrupted:"), err
    assert len([line for line in err.splitlines() if line.strip()]) <= 2, err


def test_a_run_refuses_a_folder_holding_files_it_did_not_write(tmp_path):
    from helpers import error_line

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.yaml").write_text("my: own notes\n")
    (folder / "metrics.csv").write_text("mine\n")
    line = error_line(folder, "profile=smoke")
    assert (
        line.startswith("error: ") and "holds config.yaml, metrics.csv, which this run did" in line
    )
    assert (folder / "config.yaml").read_text() == "my: own notes\n"
    assert (folder / "metrics.csv").read_text() == "mine\n"


def test_stale_temporary_files_of_killed_saves_are_removed_on_resume(tmp_path):
    run = tmp_path / "run"
    unfinished_run(run)
    stale = run / ".metrics.csv.k2j3.tmp"
    stale.write_text("half")
    train(run)
    assert not stale.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("data.n_per_class=1", "data.K=2", "data.val_fraction=0.9"), "leaves no training sample"),
        (("data.n_per_class=10000000",), "GiB for the data alone"),
        (("optim.lr=1e39",), "optim.lr must be at most 1e+30"),
    ],
)
def test_values_that_would_fail_late_are_refused_in_one_line(tmp_path, overrides, message):
    from helpers import error_line

    line = error_line(tmp_path / "run", "profile=smoke", *overrides)
    assert message in line and "\n" not in line


def test_damaged_mnist_files_and_too_long_folder_names_are_one_line(tmp_path):
    from conftest import write_mnist

    from htrain.experiment import unwritable_reason

    write_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    raw.write_bytes(raw.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"damaged .*download again"):
        datasets.load_mnist(tmp_path, download=False, size=28)
    assert "over 255 bytes" in unwritable_reason(tmp_path / ("x" * 300) / "runs")


def test_collect_reads_only_bounded_regular_files_and_survives_bad_names(tmp_path):
    import shutil

    from helpers import train_in_process

    from htrain.collect import collect

    runs = tmp_path / "runs"
    train_in_process(runs / "good", "profile=smoke", "train.epochs=2")
    for name in ("fifo", "bomb", "zero"):
        shutil.copytree(runs / "good", runs / name)
    (runs / "fifo" / "config.yaml").unlink()
    os.mkfifo(runs / "fifo" / "config.yaml")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    (runs / "bomb" / "config.yaml").write_text(bomb + "data: {}\nmodel: {}\n")
    (runs / "zero" / "metrics.csv").unlink()
    (runs / "zero" / "metrics.csv").symlink_to("/dev/zero")
    bad_name = os.fsdecode(b"bad\xff")
    shutil.copytree(runs / "good", runs / bad_name)
    tables, _ = collect(runs)
    assert list(tables["runs"]["run"]) == ["good"]
    problems = dict(zip(tables["problems"]["run"], tables["problems"]["problem"], strict=True))
    assert "not a regular file" in problems["fifo"]
    assert "aliases are not allowed" in problems["bomb"]
    assert "not a regular file" in problems["zero"]
    assert any("not valid UTF-8" in problem for problem in problems.values())
