"""Fast tier: every notebook end to end through papermill with smoke parameters (and, in the full tier, on the
other data sets' formats).

Each notebook runs with its exercise stubs replaced by the revealed reference solutions, so one run checks that
the notebook executes, that it records its metrics, that they beat a trivial level (SMOKE_BARS), and that every
reference solution passes its own check.
"""
import os
import time

import nbformat
import pytest

from bars import RECORDS_NOTHING, SMOKE_BARS, check_bar
from notebook_tools import exercises, stream_text, with_solutions
from recsys_helpers.results import read_results
from recsys_helpers.runner import NOTEBOOK_DIR, course_notebooks, execute

NOTEBOOKS = course_notebooks()


def test_the_course_has_its_notebooks():
    names = [nb.stem for nb in NOTEBOOKS]
    assert names[:2] == ["00_welcome_and_data", "01_preprocessing_and_evaluation"]
    assert names == sorted(names)


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_with_smoke_parameters(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    found = exercises(nb)
    assert found, f"{path.name} has no exercise with a revealed solution"
    patched = tmp_path / "patched" / path.name
    patched.parent.mkdir()
    nbformat.write(with_solutions(nb), patched)

    start = time.perf_counter()
    error = execute(patched, tmp_path, {"SMOKE": True}, cwd=NOTEBOOK_DIR)
    seconds = time.perf_counter() - start
    assert error is None, f"{path.name} failed at {error}"
    print(f"{path.stem}: {seconds:.1f} s with smoke parameters")
    if os.environ.get("RECSYS_SMOKE_LOG"):  # .ci/run prints these: the smoke budget is 60 s per notebook
        with open(os.environ["RECSYS_SMOKE_LOG"], "a") as log:
            log.write(f"{path.stem} {seconds:.1f}\n")

    executed = {c.get("id"): c for c in nbformat.read(tmp_path / path.name, as_version=4).cells}
    for idx, name, _ in found:
        text = stream_text(executed[nb.cells[idx].id])  # by id: papermill inserts a cell of parameters
        assert "✓" in text and "✗" not in text, f"the reference solution of {name} fails its check:\n{text}"

    records = [r for r in read_results(tmp_path) if r["notebook"] == path.stem]
    if path.stem in RECORDS_NOTHING:
        assert records == []
        return
    assert records, f"{path.name} recorded no results"
    for bar in SMOKE_BARS.get(path.stem, []):
        check_bar(records, bar)


OTHER_DATASETS = ["ml-100k", "ml-1m"]


@pytest.fixture(scope="module")
def other_datasets(tmp_path_factory):
    """Synthetic folders written in the exact file formats of ml-100k and ml-1m (the real ones may not be shipped)."""
    from recsys_helpers.data import write_movielens_folder

    root = tmp_path_factory.mktemp("formats")
    for name in OTHER_DATASETS:
        write_movielens_folder(root, name, n_users=120, n_items=240, ratings_per_user=40, seed=1)
    return root


# These runs belong to the full tier (the fast tier's time goes to one smoke run per notebook); the loader's handling
# of both formats has its own unit tests in test_data.py.
@pytest.mark.full
@pytest.mark.parametrize("dataset", OTHER_DATASETS)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_with_another_dataset(path, dataset, other_datasets, tmp_path, monkeypatch):
    """Nothing is tuned to ml-latest-small's sizes: every notebook runs end to end on another data set's format."""
    monkeypatch.setenv("RECSYS_DATA_DIR", str(other_datasets))
    error = execute(path, tmp_path, {"SMOKE": True, "DATASET": dataset}, cwd=NOTEBOOK_DIR)
    assert error is None, f"{path.name} with DATASET={dataset} failed at {error}"
    if path.stem not in RECORDS_NOTHING:
        assert [r for r in read_results(tmp_path) if r["notebook"] == path.stem], f"{path.name} recorded nothing"
