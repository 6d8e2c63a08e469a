"""`make results-real` end to end on tiny files in the real MNIST and CIFAR-10 formats: the
grid (both data sets and the three networks at batch 64, the paper's default: test_sweeps
checks the whole grid), both collections, the table beside the paper's and the ESD figures."""

import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import write_cifar10, write_mnist
from helpers import ROOT

from htrain.paper import REAL, REAL_FINAL, real_row


def test_the_record_holds_the_papers_real_data_numbers():
    assert len(REAL) == 9 and len(REAL_FINAL) == 6
    row = real_row("cifar10", "minialexnet", 64)
    assert (row.fc1, row.fc2, row.final_acc) == ((5, 71.61), (28, 76.35), 77.94)
    assert real_row("cifar10", "minialexnet", 16).final_acc is None  # exploded
    assert REAL_FINAL[("cifar10", "vgg11")] == (81.0, "HT")
    assert real_row("mnist", "vgg11", 64) is None


@pytest.mark.slow
def test_the_real_data_command_runs_end_to_end_on_tiny_files(tmp_path):
    data = tmp_path / "data"
    write_mnist(data)
    write_cifar10(data)
    env = {
        **os.environ,
        "PY": sys.executable,
        "PROFILE": "smoke",
        "LAUNCHER": "basic",  # one job at a time: the suite's xdist workers hold the cores
        "DOWNLOAD": "0",
        "HEAVYTAIL_RUNS": str(tmp_path / "runs"),
        "HEAVYTAIL_DATA": str(data),
        "RESULTS": str(tmp_path / "results"),
    }
    done = subprocess.run(
        [
            "bash",
            str(ROOT / "scripts" / "real_results.sh"),
            "data.download=false",
            "train.epochs=1",
            "train.batch_size=64",  # 6 of the 30 runs: each data set and network once
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "results" / "tables" / "paper_real.md").read_text()
    assert table.startswith("**Format test, not a result**")
    rows = [
        line
        for line in table.splitlines()
        if line.startswith("| mnist") or line.startswith("| cifar10")
    ]
    assert len(rows) == 6
    assert [row.split(" | ")[:3] for row in rows[:3]] == [
        ["| mnist", network, "64"] for network in ("lenet", "minialexnet", "vgg11")
    ]
    # the paper's cells where it has the row, its per-network numbers where it has not
    assert "| cifar10 | minialexnet | 64 | 5 : 71.61% / 28 : 76.35% |" in table
    assert "| mnist | vgg11 | 64 | not in its table |" in table
    runs = pd.read_csv(tmp_path / "results" / "paper_real" / "runs.csv")
    assert len(runs) == 6 and set(runs["data.name"]) == {"mnist", "cifar10"}
    for layer in ("fc1", "fc2"):
        assert (tmp_path / "results" / "figures" / f"paper_real_esd_{layer}.png").stat().st_size
