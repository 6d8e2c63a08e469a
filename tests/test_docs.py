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


def test_functions_and_scripts_stay_small():
    # the house rules (docs/method.md, "Where each idea lives"): no function over 60 lines in
    # src/ or scripts/ (generated tables aside), no script over about 120 lines
    import ast

    sources = [*(ROOT / "src").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]
    long = []
    for path in sources:
        if path.name.startswith("_null_table"):
            continue  # generated
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    long.append(f"{path.relative_to(ROOT)}:{node.name} {length}")
    assert long == []
    scripts = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "scripts").glob("*.py")}
    assert {name: n for name, n in scripts.items() if n > 130} == {}
