"""Smoke test of the default job through the real entry point and the real configs."""

import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def run(*overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run.py"), *overrides],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_default_job_prints_a_table_and_writes_a_figure(tmp_path):
    result = run(f"hydra.run.dir={tmp_path}", "demo.n=120", "demo.N=240")
    assert result.returncode == 0, result.stderr
    assert "planted_spikes" in result.stdout
    table = pd.read_csv(tmp_path / "spectra.csv")
    expected = {
        "gaussian": "LT",
        "gaussian_square": "LT",
        "planted_spikes": "LT",
        "student_t2": "HT",
        "product_of_3": "HT",
    }
    assert dict(zip(table["family"], table["type"], strict=True)).items() >= expected.items()
    assert (tmp_path / "esd_demo.png").stat().st_size > 10_000
    assert not list(tmp_path.glob(".*.tmp*"))


def test_bad_demo_config_fails_before_work_with_one_clear_line(tmp_path):
    result = run(f"hydra.run.dir={tmp_path}", "demo.families=[gaussian,cauchy]")
    assert result.returncode != 0
    assert "unknown demo family 'cauchy'" in result.stderr
    assert not (tmp_path / "spectra.csv").exists()
