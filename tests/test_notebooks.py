"""The notebooks in notebooks/: each runs top to bottom in quick mode, and each is stored without outputs."""

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from .conftest import REPO

NOTEBOOKS = REPO / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))


def needs_real_data(notebook: nbformat.NotebookNode) -> bool:
    """Whether the notebook reads ../shared/data (it then names SEGATTN_SHARED_DATA)."""
    return any("SEGATTN_SHARED_DATA" in cell.source for cell in notebook.cells if cell.cell_type == "code")


@pytest.fixture(scope="module")
def python_kernel(tmp_path_factory):
    """A `python3` kernel spec that runs this interpreter (the one that imports segattn), found before any other
    `python3` spec on the machine."""
    folder = tmp_path_factory.mktemp("jupyter")
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(folder))
        yield


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path: Path, python_kernel, request, monkeypatch, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    if needs_real_data(notebook):
        request.getfixturevalue("shared_data")  # skips where ../shared/data is absent
    monkeypatch.setenv("SEGATTN_QUICK", "1")
    monkeypatch.setenv("SEGATTN_RUNS", str(tmp_path))  # checkpoints and logs, outside the repository
    # Quick mode's tensors are tiny: one thread is as fast, and it does not stall when other processes share the
    # cores (two OpenMP threads on two busy cores ran these notebooks up to 8 times slower).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    try:
        client.execute()  # in memory: the executed notebook is not written back
    except CellExecutionError as exc:
        pytest.fail(f"{path.name} failed in quick mode:\n{exc}", pytrace=False)


def test_notebooks_are_stored_without_outputs():
    assert PATHS, f"no notebooks in {NOTEBOOKS}"
    for path in PATHS:
        notebook = nbformat.read(path, as_version=4)
        dirty = [
            index
            for index, cell in enumerate(notebook.cells)
            if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
        ]
        assert not dirty, (
            f"{path.relative_to(REPO)}: code cells {dirty} hold outputs or execution counts; "
            "clear all outputs before committing"
        )
