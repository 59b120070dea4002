"""tools/nbbuild.py: percent source -> notebook with jupytext, execution with the runner's papermill executor.

Nothing here executes a course notebook; two tests start a kernel for a tiny notebook (a few seconds each)."""
import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

PROJECT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("nbbuild", PROJECT / "tools" / "nbbuild.py")
nbbuild = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nbbuild)

TINY = '''# %% [markdown]
# # A title
#
# Some *text*, with a blank line above.

# %% tags=["parameters"]
SEED = 42
SMOKE = False

# %%
def double(x):
    return 2 * x

# %% [markdown]
# A second markdown cell.

# %% tags=["nbval-check-output"]
print(double(21))
'''

TWO_CELLS = '''# %% tags=["parameters"]
ANSWER = 21

# %%
import os
print(ANSWER * 2, os.path.basename(os.getcwd()))
'''


def cells(nb):
    return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]


def test_percent_source_gives_the_expected_cells_ids_and_metadata():
    nb = nbbuild.read_source(TINY)
    assert cells(nb) == [
        ("markdown", "# A title\n\nSome *text*, with a blank line above.", []),
        ("code", "SEED = 42\nSMOKE = False", ["parameters"]),
        ("code", "def double(x):\n    return 2 * x", []),
        ("markdown", "A second markdown cell.", []),
        ("code", "print(double(21))", ["nbval-check-output"]),
    ]
    assert [c.id for c in nb.cells] == ["c000", "c001", "c002", "c003", "c004"]
    # only the tags survive: no jupytext bookkeeping (lines_to_next_cell, ...) in cells or notebook
    assert all(set(c.metadata) <= {"tags"} for c in nb.cells)
    assert nb.metadata == {"kernelspec": nbbuild.KERNELSPEC, "language_info": {"name": "python"}}
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    nbformat.validate(nb)


def test_round_trip_source_notebook_source_is_exact():
    nb = nbbuild.read_source(TINY)
    assert nbbuild.to_source(nb) == TINY
    assert cells(nbbuild.read_source(nbbuild.to_source(nb))) == cells(nb)


def test_round_trip_notebook_source_notebook_keeps_the_cells():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title\n\n- a list\n- of two"),
        nbformat.v4.new_code_cell("EPOCHS = 3", metadata={"tags": ["parameters"], "collapsed": True}),
        nbformat.v4.new_code_cell("class A:\n    pass", execution_count=2,
                                  outputs=[nbformat.v4.new_output("stream", text="hi\n")]),
        nbformat.v4.new_code_cell("A()"),
    ])
    nb.metadata["kernelspec"] = dict(nbbuild.KERNELSPEC)
    source = nbbuild.to_source(nb)
    assert not source.startswith("# ---"), "no jupytext/YAML header in sources"
    assert "collapsed" not in source and "hi" not in source  # outputs and other metadata stay out
    back = nbbuild.read_source(source)
    assert cells(back) == cells(nb)
    assert [c.id for c in back.cells] == ["c000", "c001", "c002", "c003"]


@pytest.mark.parametrize("src", sorted((PROJECT / "tools" / "notebooks").glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_course_sources_round_trip(src):
    nb = nbbuild.read_source(src.read_text())
    assert cells(nbbuild.read_source(nbbuild.to_source(nb))) == cells(nb)


def test_source_line_points_at_the_cell_marker():
    assert [nbbuild.source_line(TINY, i) for i in range(5)] == [1, 6, 10, 14, 17]


@pytest.fixture
def course_dirs(tmp_path, monkeypatch):
    sources, notebooks = tmp_path / "sources", tmp_path / "notebooks"
    sources.mkdir()
    notebooks.mkdir()
    monkeypatch.setattr(nbbuild, "SOURCES", sources)
    monkeypatch.setattr(nbbuild, "NOTEBOOKS", notebooks)
    return sources, notebooks


def test_check_and_no_execute(course_dirs, capsys):
    sources, notebooks = course_dirs
    (sources / "98_tiny.py").write_text(TINY)
    assert nbbuild.main(["--check"]) == 1  # no notebook yet
    assert "98_tiny.ipynb" in capsys.readouterr().out
    assert nbbuild.main(["--no-execute"]) == 0
    assert nbbuild.main(["--check"]) == 0
    (sources / "98_tiny.py").write_text(TINY.replace("SEED = 42", "SEED = 7"))
    assert nbbuild.main(["--check", "98"]) == 1


def test_execute_uses_the_runner_and_strips_papermill_metadata(tmp_path, monkeypatch):
    import recsys_helpers.runner as runner

    calls = []
    real = runner.execute

    def spy(notebook, out_dir, parameters, **kwargs):
        calls.append((Path(notebook).name, parameters, kwargs.get("cwd")))
        return real(notebook, out_dir, parameters, **kwargs)

    monkeypatch.setattr(runner, "execute", spy)
    built = nbbuild.read_source(TWO_CELLS)
    nb = nbbuild.execute(built, "97_two_cells", cwd=tmp_path)

    assert calls == [("97_two_cells.ipynb", {}, tmp_path)]
    assert cells(nb) == cells(built)  # no injected-parameters cell at default parameters
    assert [c.id for c in nb.cells] == ["c000", "c001"]
    assert [c.execution_count for c in nb.cells] == [1, 2]
    assert nb.cells[1].outputs[0].text == f"42 {tmp_path.name}\n"  # ran in cwd
    assert set(nb.metadata) == {"kernelspec", "language_info"}
    assert nb.metadata.kernelspec == nbbuild.KERNELSPEC
    assert nb.metadata.language_info.get("version")  # filled in by the kernel
    assert [dict(c.metadata) for c in nb.cells] == [{"tags": ["parameters"]}, {}]
    assert "papermill" not in json.dumps(nb) and '"execution"' not in json.dumps(nb)
    nbformat.validate(nb)


def test_a_failing_notebook_is_reported_with_its_cell_and_not_written(course_dirs, capsys):
    sources, notebooks = course_dirs
    (sources / "99_broken.py").write_text(TWO_CELLS + "\n# %% [markdown]\n# Before the error.\n\n# %%\n1 / 0\n")
    assert nbbuild.main(["99"]) == 1
    err = capsys.readouterr().err
    assert "FAILED 99_broken.ipynb" in err
    assert "99_broken.py line 11, cell c003" in err
    assert "ZeroDivisionError" in err
    assert not (notebooks / "99_broken.ipynb").exists()


def test_jupytext_magic_conventions():
    """Commented magics in code cells become magics (jupytext's convention); commented twice they stay comments."""
    nb = nbbuild.read_source("# %%\n# %time x = 1\n# # !pip install something\ny = 2  # %% is no marker here\n")
    assert cells(nb) == [("code", "%time x = 1\n# !pip install something\ny = 2  # %% is no marker here", [])]
    assert cells(nbbuild.read_source(nbbuild.to_source(nb))) == cells(nb)


def test_text_only_carries_outputs_into_new_text_and_refuses_a_code_change(course_dirs, capsys):
    from recsys_helpers.results import read_timings, write_json

    sources, notebooks = course_dirs
    smoke = "# %%\nif SMOKE:\n    SEED = 1\n\n"
    source = TINY.replace("# %%\ndef double", smoke + "# %%\ndef double")
    (sources / "98_tiny.py").write_text(source)
    executed = nbbuild.read_source(source)
    for cell in executed.cells:  # a stand-in for an execution: an output on the print cell
        if cell.cell_type == "code" and "print" in cell.source:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
            cell.execution_count = 3
    nbformat.write(executed, notebooks / "98_tiny.ipynb")
    write_json(notebooks / "timings.json", {"98_tiny": {"status": "ok", "seconds": 1.0,
                                                        "source_sha256": nbbuild.source_sha256(executed)}})
    # new text, a new markdown cell and a changed SMOKE cell: outputs carried, the hash follows the source
    changed = source.replace("A second markdown cell.", "Better text.\n\n# %% [markdown]\n# One more.")
    changed = changed.replace("    SEED = 1", "    SEED = 2  # smaller")
    changed = changed.replace("def double(x):", "def double(x):  # a comment is not code\n\n")
    (sources / "98_tiny.py").write_text(changed)
    assert nbbuild.main(["--text-only", "98"]) == 0
    nb = nbformat.read(notebooks / "98_tiny.ipynb", as_version=4)
    printed = [c for c in nb.cells if c.cell_type == "code" and "print" in c.source][0]
    assert printed.outputs[0]["text"] == "42\n" and printed.execution_count == 3
    assert any("One more." in c.source for c in nb.cells)
    entry = read_timings(notebooks)["98_tiny"]
    assert entry["source_sha256"] == nbbuild.source_sha256(nb) and entry["text_only"] is True
    assert nbbuild.main(["--check", "98"]) == 0
    # a change of code is refused, and so is a SMOKE cell that does something at SMOKE = False
    for code in (changed.replace("return 2 * x", "return 3 * x"), changed.replace("    SEED = 2", "SEED = 2")):
        (sources / "98_tiny.py").write_text(code)
        assert nbbuild.main(["--text-only", "98"]) == 1
        assert "execute it" in capsys.readouterr().err
    assert nbformat.read(notebooks / "98_tiny.ipynb", as_version=4).cells == nb.cells  # left as it was
