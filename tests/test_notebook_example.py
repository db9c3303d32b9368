"""examples/transformerlens.ipynb, executed as a notebook (a Jupyter kernel, every cell in order): a
TransformerLens user's notebook must run unchanged on grokscope's models. Its cells assert what they
show (accuracy, the logit lens, agreement of activation_patch with transformer_lens.patching)."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "transformerlens.ipynb"


@pytest.mark.slow  # a kernel start and TransformerLens's import: ~15 s on a 2-core CI machine
def test_the_transformer_lens_notebook_runs_unchanged(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")  # stored without outputs
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails
    text = "\n".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )
    assert "test accuracy 1.000" in text and "('layer', 'pos')" in text
