"""collect: tables from run folders, replayed spectra, and damaged folders that never stop it."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import ROOT, compose_config, script_in_process

from htrain import experiment
from htrain.collect import analysis_of, collect, esd_history, esd_table, write_esd
from htrain.replay import replay
from htrain.train import run_training

# the tests on the module fixture `sweep_dir` build it once, on one xdist worker
pytestmark = pytest.mark.xdist_group("collect_sweep")


def train(folder, *overrides: str) -> None:
    cfg = compose_config("profile=smoke", "data.n_per_class=150", *overrides)
    run_training(
        folder,
        experiment.load_data(cfg),
        experiment.train_config(cfg),
        progress=False,
        config_yaml=__import__("omegaconf").OmegaConf.to_yaml(cfg, resolve=True),
    )


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """Two finished runs of a small sweep (3 epochs each), made once for this module."""
    root = tmp_path_factory.mktemp("sweep")
    train(root / "run_a", "train.epochs=3", "data.delta=0.5")
    train(root / "run_b", "train.epochs=3", "data.delta=2.0", "data.K=2")
    return root


def copy_of(sweep_dir, tmp_path):
    target = tmp_path / "runs"
    shutil.copytree(sweep_dir, target)
    return target


def test_collect_replays_the_live_spectra_exactly(sweep_dir):
    tables, meta = collect(sweep_dir)
    assert tables["problems"].empty and len(tables["runs"]) == 2
    for run in ("run_a", "run_b"):
        live = pd.read_csv(sweep_dir / run / "spectral.csv")
        replayed = tables["spectral"][tables["spectral"]["run"] == run]
        replayed = replayed[live.columns].reset_index(drop=True)
        # "" (nothing skipped) reads back from CSV as NaN
        assert live["skipped"].isna().all() and (replayed["skipped"] == "").all()
        pd.testing.assert_frame_equal(
            replayed.drop(columns="skipped"), live.drop(columns="skipped"), check_dtype=False
        )
        summary = json.loads((sweep_dir / run / "summary.json").read_text())
        row = tables["runs"].set_index("run").loc[run]
        for rule, result in summary["rules"].items():
            for layer, epoch in result["fire_epoch"].items():
                collected = row[f"fire_epoch_{rule}_{layer}"]
                assert (epoch is None and pd.isna(collected)) or epoch == collected
    (identity,) = [a for a in meta["analysis"] if a["n_classes"] == 8]
    assert identity["spike_rule"] and identity["layers"] == ["fc2", "fc3"]


def test_a_replay_from_the_float32_esd_table_keeps_s_hat_within_1e_6(sweep_dir, tmp_path):
    tables, _ = collect(sweep_dir)
    write_esd(esd_table(sweep_dir, tables["runs"], {"data.K": ["8"]}), tmp_path / "esd.parquet")
    esd = pd.read_parquet(tmp_path / "esd.parquet")
    assert esd["eigenvalue"].dtype == np.float32
    live = pd.read_csv(sweep_dir / "run_a" / "spectral.csv")
    config = __import__("yaml").safe_load((sweep_dir / "run_a" / "config.yaml").read_text())
    shapes = {row.layer: (row.n, row.N) for row in live.itertuples()}
    rows, _ = replay(esd_history(esd, "run_a"), shapes, analysis_of(config))
    replayed = pd.DataFrame(rows)
    assert np.max(np.abs(replayed["s_hat"].to_numpy() - live["s_hat"].to_numpy())) < 1e-6
    assert (replayed["type"] == live["type"]).all()


def test_esd_parquet_is_one_file_per_run_and_new_runs_leave_the_others_bytes_alone(
    sweep_dir, tmp_path
):
    tables, _ = collect(sweep_dir)
    both = esd_table(sweep_dir, tables["runs"], {"data.delta": ["0.5", "2"]})
    target = tmp_path / "esd.parquet"
    target.write_bytes(b"an esd.parquet of the older single-file form")
    write_esd(both[both["run"] == "run_a"], target)
    first = (target / "run_a.parquet").read_bytes()
    write_esd(both, target)
    assert sorted(p.name for p in target.iterdir()) == ["run_a.parquet", "run_b.parquet"]
    assert (target / "run_a.parquet").read_bytes() == first
    back = pd.read_parquet(target)
    assert back["eigenvalue"].dtype == np.float32
    pd.testing.assert_frame_equal(
        back.astype({"run": str, "layer": str}), both.astype({"run": str, "layer": str})
    )
    # a failure while writing leaves the collection as it was, and no temporary folders
    broken = both.assign(eigenvalue=both["eigenvalue"].astype(object))
    broken.loc[broken.index[-1], "eigenvalue"] = "not a number"  # run_b: after run_a is written
    with pytest.raises((TypeError, ValueError), match="eigenvalue"):
        write_esd(broken, target)
    assert (target / "run_a.parquet").read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["esd.parquet"]


def test_collect_without_k_is_the_gap_rule(sweep_dir):
    with_k, _ = collect(sweep_dir)
    without, meta = collect(sweep_dir, n_classes=None)
    assert [a["n_classes"] for a in meta["analysis"]] == [None]
    assert len(without["spectral"]) == len(with_k["spectral"])


def damage(folder, how: str) -> None:
    if how == "empty config":
        (folder / "config.yaml").write_text("")
    elif how == "summary without keys":
        summary = json.loads((folder / "summary.json").read_text())
        summary["rules"] = {"paper_C0.4": {}}
        del summary["final_test_acc"]
        (folder / "summary.json").write_text(json.dumps(summary))
    elif how == "corrupt eigenvalues":
        (folder / "eigenvalues.npz").write_bytes(b"PK\x03\x04 not a zip")
    elif how == "truncated metrics":
        text = (folder / "metrics.csv").read_text()
        (folder / "metrics.csv").write_text(text[: len(text) - 9])
    elif how == "short metrics":
        lines = (folder / "metrics.csv").read_text().splitlines(keepends=True)
        (folder / "metrics.csv").write_text("".join(lines[:-1]))
    elif how == "no done":
        (folder / "done").unlink()
    elif how == "garbage summary":
        (folder / "summary.json").write_text("[1, 2")


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("empty config", "config.yaml is empty"),
        ("summary without keys", "summary.json lacks ['final_test_acc']"),
        ("corrupt eigenvalues", "eigenvalues.npz unreadable"),
        ("truncated metrics", "metrics.csv is truncated"),
        ("short metrics", "metrics.csv has epochs 0-2 (3 rows) but summary.json says 0-3"),
        ("no done", "incomplete"),
        ("garbage summary", "summary.json unreadable"),
    ],
)
def test_a_damaged_run_is_listed_and_the_good_ones_are_collected(sweep_dir, tmp_path, how, reason):
    runs = copy_of(sweep_dir, tmp_path)
    damage(runs / "run_a", how)
    tables, _ = collect(runs)
    problems = dict(zip(tables["problems"]["run"], tables["problems"]["problem"], strict=True))
    assert list(problems) == ["run_a"] and reason in problems["run_a"], problems
    assert tables["runs"]["run"].tolist() == ["run_b"]


@pytest.mark.slow
def test_the_command_line_keeps_existing_tables_unless_told(sweep_dir, tmp_path):
    command = [sys.executable, str(ROOT / "scripts" / "collect.py"), "demo"]
    command += ["--runs", str(sweep_dir), "--out", str(tmp_path / "out")]
    first = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    before = (tmp_path / "out" / "runs.csv").stat().st_mtime_ns
    # the same command twice more, in process (the script file as the interpreter runs it)
    again = script_in_process("collect.py", *command[2:])
    assert again.returncode != 0 and "--overwrite" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert (tmp_path / "out" / "runs.csv").stat().st_mtime_ns == before
    forced = script_in_process("collect.py", *command[2:], "--overwrite")
    assert forced.returncode == 0, forced.stderr


def stop_early(folder, last_epoch: int) -> None:
    """The folder as a run killed after saving epoch ``last_epoch`` leaves it: tables and
    eigenvalues up to that epoch, no summary, no done marker."""
    for name in ("metrics.csv", "spectral.csv"):
        table = pd.read_csv(folder / name)
        table[table["epoch"] <= last_epoch].to_csv(folder / name, index=False)
    with np.load(folder / "eigenvalues.npz") as stored:
        kept = {k: stored[k] for k in stored.files if int(k.rsplit("/", 1)[1]) <= last_epoch}
    np.savez(folder / "eigenvalues.npz", **kept)
    (folder / "done").unlink()
    (folder / "summary.json").unlink()


def test_partial_collects_an_unfinished_run_up_to_its_last_saved_epoch(sweep_dir, tmp_path):
    runs = copy_of(sweep_dir, tmp_path)
    stop_early(runs / "run_a", 2)
    strict, _ = collect(runs)
    assert strict["runs"]["run"].tolist() == ["run_b"]
    tables, _ = collect(runs, partial=True)
    assert tables["problems"].empty
    row = tables["runs"].set_index("run").loc["run_a"]
    metrics = pd.read_csv(runs / "run_a" / "metrics.csv")
    assert row["status"] == "partial" and row["epochs_run"] == 2
    assert row["final_test_acc"] == pytest.approx(metrics["test_acc"].iloc[-1])
    finished = collect(sweep_dir)[0]
    # no summary.json yet: the SNR is rebuilt from the config, equal to the finished run's
    assert row["snr"] == pytest.approx(finished["runs"].set_index("run").loc["run_a", "snr"])
    # the replay is causal: the unfinished run's spectra are the finished run's, so far
    full = finished["spectral"]
    spectral = full[(full["run"] == "run_a") & (full["epoch"] <= 2)]
    got = tables["spectral"][tables["spectral"]["run"] == "run_a"]
    np.testing.assert_allclose(got["s_hat"].to_numpy(), spectral["s_hat"].to_numpy())
    assert got["type"].tolist() == spectral["type"].tolist()


def test_partial_reads_a_run_caught_in_the_middle_of_a_save(sweep_dir, tmp_path):
    # metrics.csv is written first: a folder read during a save can have spectra one save
    # ahead of it; the run is collected up to the epochs metrics.csv has
    runs = copy_of(sweep_dir, tmp_path)
    stop_early(runs / "run_a", 3)
    metrics = pd.read_csv(runs / "run_a" / "metrics.csv")
    metrics[metrics["epoch"] <= 1].to_csv(runs / "run_a" / "metrics.csv", index=False)
    tables, _ = collect(runs, partial=True)
    assert tables["problems"].empty
    assert tables["runs"].set_index("run").loc["run_a", "epochs_run"] == 1
    spectral = tables["spectral"]
    assert spectral.loc[spectral["run"] == "run_a", "epoch"].max() == 1


def test_a_partial_runs_snr_comes_from_its_config():
    from htrain.collect import RunProblem, _mixture_snr

    gmm = {"name": "gmm", "kind": "d2", "K": 4, "p": 20, "snr": 2.5, "t": None}
    assert _mixture_snr({"data": gmm, "seed": 3}) == pytest.approx(2.5)
    # D2's means are t times a simplex of K points, sqrt(2) apart: SNR = sqrt(2) t
    assert _mixture_snr({"data": {**gmm, "snr": None, "t": 1.2}, "seed": 0}) == pytest.approx(
        1.2 * np.sqrt(2)
    )
    assert _mixture_snr({"data": {"name": "mnist"}, "seed": 0}) is None
    with pytest.raises(RunProblem, match="mixture cannot be rebuilt"):
        _mixture_snr({"data": {**gmm, "snr": None}, "seed": 0})
