"""Figures, tables and the rule comparison, drawn from a small committed results fixture
(tests/fixtures/results, a slice of results/ made by make_results_fixture.py)."""

import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from helpers import ROOT, script_in_process

from htrain.paper import SYNTHETIC
from htrain.report import early_stopping_table, markdown_early_stopping, type_shares

FIXTURE = ROOT / "tests" / "fixtures" / "results"


@pytest.fixture
def results(tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(FIXTURE, copy)
    return copy


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    """The script in this process (``helpers.script_in_process``); ``script_process`` starts
    an interpreter, as a user does, for the one-line error test."""
    return script_in_process(name, *args)


def script_process(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


def is_png(path) -> bool:
    return path.exists() and path.stat().st_size > 5000 and path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("types", ["types_nn1_d1.png"]),
        ("batch", ["types_batch_nn1_d1.png"]),
        ("null", ["null_statistic.png"]),
        ("esd", ["esd_nn1_d1_fc2.png", "esd_nn1_d1_fc3.png"]),
        ("shat", ["shat_nn1_d1.png"]),
        ("evolution", ["evolution_nn1_d1_fc2.png", "evolution_nn1_d1_fc3.png"]),
    ],
)
def test_each_figure_command_writes_its_images(results, name, files):
    done = script("figures.py", name, "--results", str(results))
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in (results / "figures").iterdir())
    assert written == sorted(files)
    assert all(is_png(results / "figures" / f) for f in files)


def test_unknown_figure_and_missing_results_are_one_line_errors(tmp_path):
    done = script_process("figures.py", "heatmap", "--results", str(FIXTURE))
    assert done.returncode != 0 and done.stderr.strip().count("\n") == 0
    assert "unknown figure" in done.stderr
    done = script_process("tables.py", "--results", str(tmp_path))
    assert done.returncode != 0 and "collect first" in done.stderr


def test_tables_have_the_paper_columns_beside_ours(results):
    done = script("tables.py", "--results", str(results))
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(results / "tables" / "early_stopping_paper_C0.4.csv")
    assert list(table["value"]) == [0.15, 0.3, 0.6, 0.9]  # the paper's NN1 + D1 settings
    expected = {
        "layer1_ours",
        "layer1_paper",
        "layer2_ours",
        "layer2_paper",
        "final_types_ours",
        "final_types_paper",
        "final_acc_ours",
        "final_acc_paper",
        "layer1_fired",
        "seeds",
    }
    assert expected <= set(table.columns)
    assert table.loc[0, "layer1_paper"] == "7 : 25.84%" and table.loc[3, "layer1_paper"] == "-"
    # the fixture has delta 0.15 and 0.9 (two seeds at K = 8), not 0.3 or 0.6
    assert list(table["seeds"]) == [2, 0, 0, 2]
    assert table.loc[1, "layer1_ours"] == "not run"
    markdown = (results / "tables" / "early_stopping_paper_C0.4.md").read_text()
    assert "| nn1_d1 (fc2, fc3) | delta 0.15 |" in markdown
    calibrated = pd.read_csv(results / "tables" / "early_stopping_calibrated.csv")
    assert "layer1_paper" not in calibrated  # the paper reports C = 0.4 only
    trend = pd.read_csv(results / "tables" / "trend.csv")
    assert {"fc2_HT", "fc3_BT_or_HT", "final_acc", "runs", "K"} <= set(trend.columns)
    assert trend["runs"].sum() == 8
    bands = pd.read_csv(results / "tables" / "difficulty_bands.csv")
    assert {"band", "runs", "fired_paper_C0.4", "fired_calibrated", "final_not_LT"} <= set(bands)
    assert bands["runs"].sum() == 8 and bands["fired_calibrated"].between(0, 1).all()


def test_early_stopping_cells_pool_the_seeds():
    runs = pd.DataFrame(
        {
            "run": ["a", "b", "c"],
            "data.kind": "d1",
            "data.K": 8,
            "data.delta": 0.15,
            "seed": [0, 1, 2],
            "final_test_acc": [0.2, 0.3, 0.25],
            "fire_epoch_paper_C0.4_fc2": [4, 6, None],
            "test_acc_at_fire_paper_C0.4_fc2": [0.2, 0.3, None],
            "fire_epoch_paper_C0.4_fc3": [None, None, None],
            "test_acc_at_fire_paper_C0.4_fc3": [None, None, None],
            "final_type_fc2": ["HT", "HT", "BT"],
            "final_type_fc3": ["LT", "LT", "LT"],
        }
    )
    table = early_stopping_table(runs, "nn1_d1", "paper_C0.4")
    row = table.iloc[0]
    assert row["layer1_ours"] == "5 : 25.00% (2/3)" and row["layer2_ours"] == "- (0/3)"
    assert row["final_types_ours"] == "HT 2/3, LT" and row["final_acc_ours"] == pytest.approx(25)
    assert "| delta 0.15 | 5 : 25.00% (2/3) | 7 : 25.84% |" in markdown_early_stopping(table, "x")
    shares = type_shares(runs, ["data.delta"], "fc2")
    assert shares.loc[0, "HT"] == pytest.approx(2 / 3) and shares.loc[0, "runs"] == 3


def test_compare_writes_table_and_figure(results):
    done = script("compare.py", "--results", str(results))
    assert done.returncode == 0, done.stderr
    outcomes = pd.read_csv(results / "compare" / "outcomes.csv")
    assert set(outcomes["training_set"]) == {"full", "reduced (90%)"}
    full = outcomes[outcomes["training_set"] == "full"]
    assert not full["rule"].str.startswith("validation").any()  # no split, no Keras rule
    reduced = outcomes[outcomes["training_set"] == "reduced (90%)"]
    assert {"validation p=5", "validation p=10"} <= set(reduced["rule"])
    summary = pd.read_csv(results / "compare" / "summary.csv")
    assert {"lost_vs_best_mean", "epochs_saved_mean", "false_stops", "never_fired"} <= set(summary)
    assert "| spectral C=0.4 |" in (results / "compare" / "summary.md").read_text()
    assert is_png(results / "compare" / "compare.png")


def test_before_after_counts_the_fires_of_each_spike_rule(results):
    # "without K": the same runs, their spectra made to fire from epoch 10 on in every layer
    gap = results / "gap_rule" / "nn1_d1"
    gap.mkdir(parents=True)
    shutil.copy(results / "nn1_d1" / "runs.csv", gap / "runs.csv")
    spectral = pd.read_parquet(results / "nn1_d1" / "spectral.parquet")
    late = spectral["epoch"] >= 10
    for column in [c for c in spectral if c.startswith("fires_")]:
        spectral.loc[late, column] = True
    spectral.to_parquet(gap / "spectral.parquet")
    done = script("before_after.py", "--results", str(results))
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(results / "tables" / "before_after.csv")
    runs = len(pd.read_csv(results / "nn1_d1" / "runs.csv"))
    before = table[table["spike rule"] == "without K (gap rule)"].set_index("stopping rule")
    after = table[table["spike rule"] == "with K"].set_index("stopping rule")
    assert list(before["fired"]) == [runs, runs] and (before["epochs saved"] > 0).all()
    assert (after["fired"] < runs).all()
    pooled = (results / "tables" / "before_after_pooled.md").read_text()
    assert f"| without K (gap rule) | C=0.4 | {runs}/{runs} |" in pooled
    assert "| >99% |" in pooled  # the final types per band of final test accuracy


def test_paper_tables_put_ours_beside_the_papers_and_count_the_claims(results):
    # the fixture's NN1 + D1 runs stand in for the paper-scale sweep; the gap-rule replay is
    # made to fire at epoch 3 in fc2 and never in fc3
    shutil.copytree(results / "nn1_d1", results / "paper_tables")
    # and for the seeds of the GPU grid: the same runs, as if trained on the GPU
    shutil.copytree(results / "nn1_d1", results / "paper_tables_gpu")
    # and for the K axis: its K = 2 runs (K = 8 comes from paper_tables)
    shutil.copytree(results / "nn1_d1", results / "paper_tables_k")
    gap = results / "gap_rule" / "paper_tables"
    gap.mkdir(parents=True)
    runs = pd.read_csv(results / "nn1_d1" / "runs.csv")
    fires = {"fire_epoch_paper_C0.4_fc2": 3, "fire_epoch_paper_C0.4_fc3": None}
    runs.assign(**fires).to_csv(gap / "runs.csv", index=False)
    done = script("paper_tables.py", "--results", str(results))
    assert done.returncode == 0, done.stderr
    claims = (results / "tables" / "paper_claims.md").read_text().splitlines()
    rows = [line for line in claims if line.startswith("| nn")]
    assert len(rows) == len(SYNTHETIC)
    ran = {f"nn1_d1 delta {value:g}" for value in runs.loc[runs["data.K"] == 8, "data.delta"]}
    assert ran == {"nn1_d1 delta 0.15", "nn1_d1 delta 0.9"}
    for row in rows:
        setting = row.split(" | ")[0].removeprefix("| ")
        assert ("not run" in row) == (setting not in ran), row
        if setting in ran:
            assert row.split(" | ")[4] == "3 / -"  # the gap rule's fires, fc2 / fc3
            best = row.split(" | ")[-1]  # our best test accuracy (its epoch)
            assert re.fullmatch(r"\d+\.\d\d% \(\d+\) \|", best), best
    # delta 0.15 is hard in the paper (20% final accuracy), 0.9 easy (99.1%)
    assert "Settings run: 1 hard (paper's final accuracy below 99%), 1 easy." in claims[-1]
    table = pd.read_csv(results / "tables" / "paper_tables_paper_C0.4.csv")
    assert set(table.loc[table["seeds"] > 0, "value"]) == {0.15, 0.9}
    for name in ("shat_nn1_d1", "esd_nn1_d1_fc2", "esd_nn1_d1_fc3"):
        assert is_png(results / "figures" / f"paper_tables_{name}.png")
    seeds = (results / "tables" / "paper_fires_seeds.md").read_text().splitlines()
    eight = runs[runs["data.K"] == 8]
    rows = {
        line.split(" | ")[0].removeprefix("| "): line for line in seeds if line.startswith("| nn")
    }
    assert set(rows) == ran
    for setting, line in rows.items():
        delta = float(setting.split()[-1])
        seeds_run = sorted(eight.loc[eight["data.delta"] == delta, "seed"])
        assert line.split(" | ")[2] == ", ".join(str(s) for s in seeds_run)
        assert line.split(" | ")[5].count(";") == len(seeds_run) - 1  # one cell per seed
    assert "easy ones (the paper: every hard setting, no easy one)." in seeds[-1]
    k_axis = (results / "tables" / "paper_k_axis.md").read_text().splitlines()
    k_rows = {
        line.split(" | ")[0].removeprefix("| "): line for line in k_axis if line.startswith("| nn")
    }
    assert set(k_rows) == ran
    by_k = runs[runs["seed"] == 0].set_index(["data.delta", "data.K"])
    for setting, line in k_rows.items():
        two, five, eight = line.split(" | ")[1:4]
        assert five == "not run"  # the fixture has no K = 5
        for cell, K in ((two, 2), (eight.removesuffix(" |"), 8)):
            row = by_k.loc[(float(setting.split()[-1]), K)]
            assert cell.startswith(f"{row['final_type_fc2']}, {row['final_type_fc3']}, "), cell
            assert f"{100 * row['final_test_acc']:.2f}%" in cell and cell.endswith("(3 / -)"), cell
    # K = 2 and 8 on both settings: counted, whatever the types
    assert "on the 2 settings run at two K or more:" in k_axis[-1]
    same = (results / "tables" / "paper_gpu_vs_cpu.md").read_text().splitlines()[2:]
    assert len(same) == len(runs) and all("| 0.00 points |" in line for line in same)
