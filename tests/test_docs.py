"""The README and docs/ agree with results/, and the README stays a front page."""

import subprocess
import sys

from helpers import ROOT

from htrain.docs import stale_pages, synced


def test_every_included_table_equals_its_file():
    assert stale_pages(ROOT) == [], "run python scripts/docs.py (make figures)"


def test_an_include_block_is_refilled_from_its_file(tmp_path):
    (tmp_path / "t.md").write_text("| a |\n|---|\n| 1 |\n")
    page = "x\n<!-- include: t.md -->\nold\n<!-- end include -->\ny\n"
    assert (
        synced(page, tmp_path)
        == "x\n<!-- include: t.md -->\n| a |\n|---|\n| 1 |\n<!-- end include -->\ny\n"
    )


def test_the_check_command_passes_on_the_repository():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "docs.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_bytes()) <= 12_500
