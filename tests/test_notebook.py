"""The walkthrough notebook runs top to bottom, and is committed without outputs."""

import json

import pytest
from helpers import ROOT

NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"


def test_notebook_is_committed_with_outputs_stripped():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert code, "the walkthrough has no code"
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)


@pytest.mark.slow
def test_notebook_executes(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    )
    client.execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert "Student-t(2)" in text and "type HT" in text  # the heavy-tailed matrix is typed HT
    assert "epoch 5" in text
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 2  # the three ESDs and the results figure
