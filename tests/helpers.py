"""Running scripts/run.py as a user does, and killing it part-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quiet(overrides: tuple[str, ...]) -> list[str]:
    """The overrides of a test run: no progress bar, and no esd_final.png (0.3-0.4 s of CPU
    for each of the suite's ~150 runs) unless the test asks for it (train.esd_figure=true)."""
    figure = (
        []
        if any(o.startswith("train.esd_figure=") for o in overrides)
        else ["train.esd_figure=false"]
    )
    return ["train.progress=false", *figure, *overrides]


def compose_config(*overrides: str):
    """The job config a test run trains from (Hydra's compose, no ``hydra`` node), with the
    test runs' overrides (``quiet``)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose("config", overrides=quiet(overrides))


def run_command(*overrides: str) -> list[str]:
    return [sys.executable, str(ROOT / "scripts" / "run.py"), *quiet(overrides)]


def run_script(*overrides: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        run_command(*overrides), capture_output=True, text=True, cwd=ROOT, timeout=timeout
    )


def script_in_process(name: str, *args: str) -> subprocess.CompletedProcess:
    """``python scripts/NAME ARGS`` run in this process, as the interpreter runs the file
    (runpy, ``__name__ == "__main__"``, sys.argv), without a 1.5-3 s interpreter start: its
    exit code, stdout and stderr as ``subprocess.run`` gives them.  A SystemExit message goes
    to stderr with code 1, as Python prints it; any other exception fails the test."""
    import contextlib
    import io
    import runpy

    path = str(ROOT / "scripts" / name)
    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, [path, *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(path, run_name="__main__")
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            print(stop.code, file=err)
            code = 1
    finally:
        sys.argv = argv
    return subprocess.CompletedProcess([path, *args], code, out.getvalue(), err.getvalue())


def kill_when(command: list[str], ready: Callable[[], bool], timeout: float = 300) -> None:
    """Start ``command``, SIGKILL it and its workers as soon as ``ready()`` holds (or at the
    timeout): the whole process group, as a killed job loses its launcher's workers too."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + timeout
    while time.time() < deadline and not ready():
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def error_line(run_dir: Path | None, *overrides: str) -> str:
    """The one line ``scripts/run.py OVERRIDES`` ends with when it fails, found in process
    (train_in_process: run.py's own call, ``htrain.experiment.run_job``) instead of a
    3-second interpreter start per case; test_runner keeps cases that go through the
    command."""
    try:
        train_in_process(run_dir, *overrides)
    except SystemExit as stop:
        return str(stop.code)
    raise AssertionError("the config trained without an error")


def train_in_process(run_dir: Path | None, *overrides: str) -> dict:
    """What ``scripts/run.py OVERRIDES`` does, into ``run_dir`` (None: the folder the command
    would use, ``hydra.run.dir``, named by the config's hash), without a fresh interpreter
    and Hydra launch (seconds per run): the config composed with Hydra, then run.py's own
    call (``htrain.experiment.run_job``, which ends a failure as a one-line SystemExit).
    Its summary."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from htrain import experiment

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=quiet(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # the run name and folders read ${hydra:...}
    try:
        run_dir = Path(cfg.hydra.run.dir) if run_dir is None else run_dir
        job = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
        return experiment.run_job(job, run_dir, cfg.hydra.runtime.choices)
    finally:
        HydraConfig.instance().cfg = None
