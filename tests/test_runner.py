"""The runner behind `make course`: `python -m recsys_helpers run`."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from recsys_helpers.runner import course_notebooks, parse_parameter, select

PROJECT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=PROJECT):
    return subprocess.run([sys.executable, "-m", "recsys_helpers", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_parse_parameter_reads_literals_and_strings():
    assert parse_parameter("EPOCHS=3") == ("EPOCHS", 3)
    assert parse_parameter("LR=0.01") == ("LR", 0.01)
    assert parse_parameter("SMOKE=True") == ("SMOKE", True)
    assert parse_parameter("DATASET=ml-1m") == ("DATASET", "ml-1m")
    assert parse_parameter("SIZES=[8, 16]") == ("SIZES", [8, 16])
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=VALUE"):
        parse_parameter("EPOCHS")
    with pytest.raises(argparse.ArgumentTypeError, match="not a valid Python name"):
        parse_parameter("1X=2")


def test_select_by_number_or_name_and_unknown_names():
    notebooks = course_notebooks()
    assert [nb.stem for nb in select(notebooks, ["01"])] == ["01_preprocessing_and_evaluation"]
    assert [nb.stem for nb in select(notebooks, ["00_welcome_and_data"])] == ["00_welcome_and_data"]
    with pytest.raises(SystemExit, match="no notebook matches"):
        select(notebooks, ["99_nothing"])


def test_run_two_notebooks_builds_the_leaderboard(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", "--smoke", "--only", "00", "01", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ["00_welcome_and_data.ipynb", "01_preprocessing_and_evaluation.ipynb", "results.json",
                 "leaderboard.md", "leaderboard.png", "timings.json"]:
        assert (out / name).exists(), name
    board = (out / "leaderboard.md").read_text()
    assert "## rating protocol" in board and "## ranking protocol" in board and "Popularity" in board
    assert "Popularity" in proc.stdout  # the leaderboard is printed too
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings) == {"00_welcome_and_data", "01_preprocessing_and_evaluation"}
    assert all(t["ok"] and t["smoke"] for t in timings.values())


def _notebook(path: Path, sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_a_failing_notebook_is_reported_and_the_others_still_run(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(nbs / "00_breaks.ipynb", ["SMOKE = False", "x = 1", "1 / 0"])
    _notebook(nbs / "01_works.ipynb", ["SMOKE = False", "print('fine', SMOKE)"])
    out = tmp_path / "run"
    proc = run_cli("run", "--smoke", "--out", str(out), "--notebook-dir", str(nbs))
    assert proc.returncode == 1
    assert "00_breaks" in proc.stderr and "ZeroDivisionError" in proc.stderr and "(`1 / 0`)" in proc.stderr
    executed = nbformat.read(out / "01_works.ipynb", as_version=4)
    assert "fine True" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert json.loads((out / "timings.json").read_text())["00_breaks"]["ok"] is False
    assert "No results were recorded" in (out / "leaderboard.md").read_text()


def test_unknown_notebook_name_is_a_clear_error(tmp_path):
    proc = run_cli("run", "--only", "42_nope", "--out", str(tmp_path))
    assert proc.returncode != 0 and "no notebook matches" in proc.stderr
