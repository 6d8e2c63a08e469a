"""Committed grids, launchers, interrupt-and-resume, and collect."""

import functools
import json
import os
import subprocess
import sys
from itertools import product
from pathlib import Path

import pandas as pd
import pytest
from helpers import ROOT, kill_when, run_command, run_script, train_in_process
from hydra import compose, initialize_config_dir

from htrain import collect as collect_module
from htrain.collect import collect as collect_tables

SWEEPS = sorted(path.stem for path in (ROOT / "configs" / "sweep").glob("*.yaml"))
PANELS = {"nn1_d1": "data.delta", "nn1_d2": "data.t", "nn2_d1": "data.delta", "nn2_d2": "data.t"}
SMALL_GRID = ("data.delta=0,2.0", "data.K=2,8", "seed=0")


def collect(runs_dir: Path) -> dict:
    return collect_tables(runs_dir)[0]


def sweep(*overrides: str, output: Path) -> subprocess.CompletedProcess:
    return run_script(f"paths.output_dir={output}", *overrides)


def grid(name: str) -> dict[str, list[str]]:
    """A committed sweep's grid: swept key -> its values."""
    return {key: list(values) for key, values in _composed_grid(name).items()}


@functools.cache  # a Hydra compose costs a quarter of a second; the grids are asked for often
def _composed_grid(name: str) -> dict[str, tuple[str, ...]]:
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=[f"sweep={name}"], return_hydra_config=True)
    assert cfg.hydra.mode.name == "MULTIRUN" and cfg.hydra.runtime.choices.sweep == name
    return {key: tuple(str(value).split(",")) for key, value in cfg.hydra.sweeper.params.items()}


@pytest.mark.parametrize("name", sorted(PANELS))
def test_panel_grids_cover_the_paper_range(name):
    params = grid(name)
    values = [float(v) for v in params[PANELS[name]]]
    assert len(values) >= 9 and min(values) == 0
    assert params["data.K"] == ["2", "5", "8"] and len(params["seed"]) >= 3


def test_batch_and_real_data_grids():
    for name in ("batch_nn1_d1", "batch_nn2_d2"):
        assert grid(name)["train.batch_size"] == ["32", "64", "256"]
    real = grid("real")
    assert real["data"] == ["mnist", "cifar10"]
    assert real["model"] == ["lenet", "minialexnet", "vgg11"]
    assert real["train.batch_size"] == ["16", "32", "64", "128", "256"]


def comparable(tables: dict) -> list[pd.DataFrame]:
    runs = tables["runs"].sort_values("run").reset_index(drop=True)
    epochs = tables["epochs"].drop(columns=["wall_time_s", "spectra_time_s"])
    epochs = epochs.sort_values(["run", "epoch"]).reset_index(drop=True)
    spectral = tables["spectral"].sort_values(["run", "epoch", "layer"]).reset_index(drop=True)
    return [runs, epochs, spectral]


RESUMABLE = ("sweep=nn1_d1", "profile=smoke", "data.n_per_class=250", "train.epochs=3", *SMALL_GRID)


@pytest.fixture(scope="module")
def serial_sweep(tmp_path_factory) -> Path:
    """The small grid trained once, serially: the reference of the tests in its xdist group."""
    output = tmp_path_factory.mktemp("serial")
    result = sweep(*RESUMABLE, output=output)
    assert result.returncode == 0, result.stderr
    return output / "sweeps" / "nn1_d1"


@pytest.mark.slow
@pytest.mark.xdist_group("serial_sweep")
def test_a_small_grid_runs_end_to_end_through_collect(serial_sweep, tmp_path):
    tables = collect(serial_sweep)
    collect_module.write_tables(tables, {}, tmp_path / "results")
    runs = tables["runs"]
    assert len(runs) == 4 and tables["problems"].empty
    assert set(runs["data.K"]) == {2, 8} and set(runs["data.delta"]) == {0.0, 2.0}
    assert (runs["status"] == "finished").all()
    assert {"fire_epoch_paper_C0.4_fc2", "final_type_fc3", "snr", "seed"} <= set(runs.columns)
    spectral = pd.read_parquet(tmp_path / "results" / "spectral.parquet")
    assert len(spectral) == 4 * 4 * 2  # runs x epochs (0 to 3) x layers
    assert (tmp_path / "results" / "epochs.csv").exists()
    # the eigenvalues of chosen runs, and the manifest, through the command line
    cli = [sys.executable, str(ROOT / "scripts" / "collect.py"), "nn1_d1"]
    cli += ["--runs", str(serial_sweep), "--out", str(tmp_path / "cli")]
    cli += ["--esd", "data.K=8", "data.delta=2"]
    cli += ["--command", "python scripts/run.py sweep=nn1_d1", "--wall-s", "12.5"]
    done = subprocess.run(
        cli,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    esd = pd.read_parquet(tmp_path / "cli" / "esd.parquet")
    assert esd["run"].nunique() == 1 and set(esd["epoch"]) == {0, 1, 2, 3}
    sizes = esd.groupby(["layer", "epoch"]).size()
    assert set(sizes["fc2"]) == {512} and set(sizes["fc3"]) == {384}
    manifest = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert manifest["runs"] == 4 and manifest["sweep_wall_time_s"] == 12.5
    assert manifest["profile"] == ["smoke"] and manifest["machine"]["cpus"] >= 1
    for bad, message in (
        ("data.K", "KEY=V1"),
        ("data.Q=1", "not run columns"),
        ("data.K=3", "matches no"),
    ):
        with pytest.raises(ValueError, match=message):
            filters = collect_module.parse_filters([bad])
            collect_module.esd_table(serial_sweep, runs, filters)


@pytest.mark.slow
@pytest.mark.xdist_group("serial_sweep")
def test_an_interrupted_parallel_sweep_resumes_without_retraining_finished_runs(
    serial_sweep, tmp_path
):
    # the joblib launcher (two runs at a time), killed after two runs, then resumed: the same
    # tables as the serial sweep, and the finished runs are not trained again
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    cut = tmp_path / "cut"
    kill_when(
        run_command(f"paths.output_dir={cut}", "launcher=local", *RESUMABLE),
        lambda: len(list(cut.glob("sweeps/*/*/done"))) >= 2,
    )
    finished = {path.parent.name: path.stat().st_mtime_ns for path in cut.glob("sweeps/*/*/done")}
    assert 2 <= len(finished) < 4
    resumed = sweep("launcher=local", *RESUMABLE, output=cut)
    assert resumed.returncode == 0, resumed.stderr
    assert "Joblib.Parallel(n_jobs=2" in resumed.stderr + resumed.stdout
    for run, stamp in finished.items():  # finished runs were not trained again
        assert (cut / "sweeps" / "nn1_d1" / run / "done").stat().st_mtime_ns == stamp
    ours = collect(cut / "sweeps" / "nn1_d1")
    reference = collect(serial_sweep)
    assert ours["problems"].empty
    for mine, theirs in zip(comparable(ours), comparable(reference), strict=True):
        pd.testing.assert_frame_equal(mine, theirs)


def test_collect_keeps_diverged_runs_in_the_tables(tmp_path):
    # two runs in process (run.py's own call), one at a learning rate that diverges
    overrides = ("data.delta=0", "data.K=2", "seed=0", "data.n_per_class=200", "train.epochs=3")
    for lr in ("0.01", "1e6"):
        train_in_process(
            None, "profile=smoke", *overrides, f"optim.lr={lr}", f"paths.output_dir={tmp_path}"
        )
    tables = collect(tmp_path / "runs")
    assert len(tables["runs"]) == 2 and set(tables["runs"]["status"]) == {"finished", "diverged"}
    assert tables["problems"]["problem"].str.startswith("diverged").sum() == 1


@pytest.mark.slow
def test_submitit_launcher_with_its_local_executor(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    result = sweep(
        "sweep=nn1_d1",
        "profile=smoke",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=5",
        "data.delta=0.5",
        "data.K=2",
        "seed=0",
        output=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.glob("sweeps/nn1_d1/*/done"))) == 1  # one job is enough


def one_point(name: str) -> list[str]:
    """Overrides that pin every swept key of a grid to its first value: one run."""
    return [f"{key}={values[0]}" for key, values in grid(name).items()]


@pytest.mark.slow
@pytest.mark.parametrize("name", SWEEPS)
def test_one_point_of_every_committed_grid_trains(name, data_dir, tmp_path):
    # the grid itself is composed and checked by the tests above and test_paper_tables_grid;
    # one point of it is trained through scripts/run.py's own calls, in process (a second
    # each instead of a fresh interpreter and Hydra launch); the launchers are tested by the
    # sweeps above, which run through the command line
    point = one_point(name)
    # train.epochs=1: the stopping sweeps set their budget (100 epochs) over the profile's
    summary = train_in_process(
        tmp_path / "run",
        f"sweep={name}",
        "profile=smoke",
        "train.epochs=1",
        f"paths.data_dir={data_dir}",
        *point,
    )
    assert summary["status"] == "finished" and (tmp_path / "run" / "done").exists()
    written = (tmp_path / "run" / "config.yaml").read_text()
    for override in point:
        key, value = override.split("=", 1)
        if key.startswith("data.") or key == "seed":
            assert f"{key.rsplit('.', 1)[-1]}: {value}" in written


def grid_points(name: str, overrides: dict[str, list[str]] | None = None) -> set[tuple]:
    """Every run of a sweep's grid, as sorted (key, value) tuples; ``overrides`` replace keys."""
    params = {**grid(name), **(overrides or {})}
    keys = sorted(params)
    return {tuple(zip(keys, values, strict=True)) for values in product(*(params[k] for k in keys))}


def gpu_processes(**env) -> list[str]:
    """The processes scripts/gpu_stopping_runs.sh would start (gpu_sweeps.sh's DRY_RUN)."""
    printed = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_stopping_runs.sh"), "runs", "pack"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "DRY_RUN": "1", **env},
        check=True,
    )
    return list(filter(None, printed.stdout.split("\n")))


def test_the_gpu_script_trains_every_held_out_gmm_run_once():
    # scripts/gpu_stopping_runs.sh: its stacks (one process each) cover every run of the
    # three stopping sweeps on mixtures exactly once; ONLY=adam keeps the Adam stacks
    printed = gpu_processes()
    assert len(printed) == 12
    assert {line.split("|")[0] for line in gpu_processes(ONLY="adam")} == {
        "adam_val0.0",
        "adam_val0.1",
    }
    trained: dict[str, list[tuple]] = {}
    for line in printed:
        _, sweep_name, overrides = line.split("|")
        swept = dict(o.split("=", 1) for o in overrides.split() if not o.startswith("profile="))
        points = grid_points(sweep_name, {k: v.split(",") for k, v in swept.items()})
        trained.setdefault(sweep_name, []).extend(points)
    for sweep_name, points in trained.items():
        assert len(points) == len(set(points)), f"{sweep_name}: a run in two stacks"
        assert set(points) == grid_points(sweep_name), sweep_name
    assert sorted(trained) == ["stopping_nn1", "stopping_nn2", "stopping_recipes"]


def test_paper_tables_grid_holds_the_papers_settings():
    params = grid("paper_tables")
    rows = sorted(params["experiment"])
    assert len(rows) == 15 and params["seed"] == ["0"]
    expected = {
        ("nn1", "d1"): [0.15, 0.3, 0.6, 0.9],
        ("nn1", "d2"): [0.24, 1.2, 2.4, 3.2, 4.8],
        ("nn2", "d1"): [0.02, 0.13, 0.2],
        ("nn2", "d2"): [1.2, 2.4, 4.8],
    }
    found = {}
    for row in rows:
        with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
            cfg = compose("config", overrides=[f"experiment={row}", "profile=paper"])
        value = cfg.data.delta if cfg.data.kind == "d1" else cfg.data.t
        found.setdefault((cfg.model.name, cfg.data.kind), []).append(value)
        assert cfg.data.K == 8 and cfg.data.n_per_class == 7500 and cfg.train.epochs == 250
        assert cfg.train.batch_size == 64 and cfg.optim.lr == 0.01
        assert cfg.data.p == (100 if cfg.model.name == "nn1" else 2048)
    assert {key: sorted(values) for key, values in found.items()} == expected


def test_the_k_axis_grid_is_nn1s_table_settings_at_k_2_and_5():
    params = grid("paper_tables_k")
    nn1_rows = {row for row in grid("paper_tables")["experiment"] if "/nn1_" in row}
    assert set(params["experiment"]) == nn1_rows and len(nn1_rows) == 9
    assert params["data.K"] == ["2", "5"] and params["seed"] == ["0"]


def test_the_gpu_script_trains_the_paper_tables_grid():
    # scripts/gpu_paper_tables.sh lists the grid per architecture (one process each): the
    # same runs, each in the process of its own network
    text = (ROOT / "scripts" / "gpu_paper_tables.sh").read_text()
    listed = text.split('panels="', 1)[1].split('"', 1)[0].replace("\\\n", "").split()
    experiments = set()
    for entry in listed:
        model, values = entry.split(":")
        for value in values.split(","):
            assert value.startswith(f"{model}_")
            experiments.add(f"paper_tables/{value}")
    assert experiments == set(grid("paper_tables")["experiment"])
