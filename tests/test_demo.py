"""Smoke test of the spectral demo script."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo_spectra.py"), *overrides],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


@pytest.mark.slow
def test_demo_prints_a_table_and_writes_a_figure(tmp_path):
    result = run("--out", str(tmp_path), "--n", "120", "--N", "240")
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


@pytest.mark.slow
def test_bad_demo_arguments_fail_before_work_with_one_clear_line(tmp_path):
    from helpers import script_in_process  # the script file in process: no interpreter start

    result = script_in_process(
        "demo_spectra.py", "--out", str(tmp_path), "--families", "gaussian", "cauchy"
    )
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "error: unknown demo family 'cauchy'; choose from gaussian, gaussian_square, "
        "planted_spikes, deformed_bulk, student_t2, product_of_3"
    )
    assert not (tmp_path / "spectra.csv").exists()
