"""`heavytail report`: a self-contained HTML page of a run or a sweep, checked as a file and,
where a browser is installed, in headless Chromium (no console errors, the ESD slider moves
the epoch shown, a screenshot that is not blank)."""

import shutil

import pytest
from helpers import train_in_process

pytest.importorskip("plotly")
from heavytail.cli import main as cli_main

# the tests on the module fixture `runs` build it once, on one xdist worker
pytestmark = pytest.mark.xdist_group("report_runs")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny runs in a folder of run folders (a sweep before collect)."""
    root = tmp_path_factory.mktemp("runs")
    for delta in (0.3, 2.0):
        train_in_process(
            root / f"delta{delta}",
            "profile=smoke",
            "train.epochs=4",
            f"data.delta={delta}",
            "data.n_per_class=40",
        )
    return root


def report(path, out, capsys):
    code = cli_main(["report", str(path), "-o", str(out), "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_run_report_is_one_self_contained_file(runs, tmp_path, capsys):
    code, out, _ = report(runs / "delta0.3", tmp_path / "run.html", capsys)
    assert code == 0 and "MB" in out
    page = (tmp_path / "run.html").read_text()
    assert "<script src=" not in page  # plotly inline: opens offline
    for piece in ("metrics-0", "shat-0-0", "top-0-0", "esd-0-0", "ESD at epoch 4", "s_hat"):
        assert piece in page, piece


def test_a_sweep_report_links_every_run_and_a_bad_folder_is_one_line(runs, tmp_path, capsys):
    code, _, _ = report(runs, tmp_path / "sweep.html", capsys)
    page = (tmp_path / "sweep.html").read_text()
    assert code == 0 and "Stopping rules per run" in page
    assert 'href="#run-delta0.3"' in page and 'id="run-delta2.0"' in page
    code, _, err = report(tmp_path, tmp_path / "x.html", capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "neither a run folder" in err


def test_a_collected_sweep_has_its_phase_diagram(tmp_path, capsys):
    from test_stopping_benchmark import write_collection

    write_collection(tmp_path / "toy", twin=False)
    runs_csv = tmp_path / "toy" / "runs.csv"
    import pandas as pd

    frame = pd.read_csv(runs_csv).assign(final_type_a="BT", final_type_b="LT")
    frame.to_csv(runs_csv, index=False)
    code, _, _ = report(tmp_path / "toy", tmp_path / "toy.html", capsys)
    page = (tmp_path / "toy.html").read_text()
    assert code == 0 and "final type of a per setting" in page and "esd-0-0" in page


def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("no Chromium installed (apt-get install chromium; .ci/run installs it)")
    return playwright, executable


def test_the_report_in_a_real_browser(runs, tmp_path, capsys):
    playwright, executable = browser()
    assert report(runs / "delta0.3", tmp_path / "run.html", capsys)[0] == 0
    errors = []
    with playwright.sync_playwright() as p:
        chrome = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = chrome.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((tmp_path / "run.html").as_uri())
        page.wait_for_selector("#esd-0-0 .slider-rail-rect")
        title = page.evaluate("document.getElementById('esd-0-0').layout.title.text")
        assert "epoch 4" in title
        rail = page.locator("#esd-0-0 .slider-rail-touch-rect")
        rail.scroll_into_view_if_needed()
        box = rail.bounding_box()
        page.mouse.click(box["x"] + 3, box["y"] + box["height"] / 2)  # the first epoch
        page.wait_for_function(
            "!document.getElementById('esd-0-0').layout.title.text.includes('epoch 4')"
        )
        moved = page.evaluate("document.getElementById('esd-0-0').layout.title.text")
        assert "epoch 0" in moved
        shot = page.screenshot(full_page=False)
        chrome.close()
    assert not errors, errors
    from io import BytesIO

    from matplotlib.image import imread

    pixels = imread(BytesIO(shot), format="png")
    assert len({tuple(p) for p in pixels.reshape(-1, pixels.shape[-1])[::97]}) > 20


def test_analyze_on_a_run_folder_replays_each_rule_as_the_run_recorded_it(runs, capsys):
    import json

    folder = runs / "delta2.0"
    assert cli_main(["analyze", str(folder)]) == 0
    out = capsys.readouterr().out
    summary = json.loads((folder / "summary.json").read_text())
    for rule in ("paper_C0.4", "calibrated"):
        stop = summary["rules"][rule]["stop_epoch"]
        expected = "never" if stop is None else f"at epoch {stop}"
        assert f"{rule:12s} stops {expected}" in out
    assert "bulk_growth" in out and "best test epoch" in out


def test_reports_can_share_one_plotly_file_beside_them(runs, tmp_path, capsys):
    for name in ("a", "b"):
        code = cli_main(
            [
                "report",
                str(runs / "delta0.3"),
                "-o",
                str(tmp_path / f"{name}.html"),
                "--no-progress",
                "--js-beside",
            ]
        )
        assert code == 0
    page = (tmp_path / "a.html").read_text()
    assert "<script src='plotly.min.js'>" in page and len(page) < 1_000_000
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000
