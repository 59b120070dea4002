"""The runner behind `make course`: `python -m recsys_helpers run`."""
import argparse
import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from recsys_helpers.runner import (ANY, UsageError, check_parameters, course_notebooks, describe, main,
                                   notebook_parameters, parse_parameter, select)

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
    assert parse_parameter("QUERY=a=b") == ("QUERY", "a=b")  # only the first '=' separates the name
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=VALUE"):
        parse_parameter("EPOCHS")
    with pytest.raises(argparse.ArgumentTypeError, match="not a valid Python name"):
        parse_parameter("1X=2")
    for text in ["X={1, 2}", "X=1e999", "X=b'a'", "X=1j"]:  # what timings.json could not record
        with pytest.raises(argparse.ArgumentTypeError, match="must be a finite number"):
            parse_parameter(text)


def test_select_by_number_or_name_and_unknown_names():
    notebooks = course_notebooks()
    assert [nb.stem for nb in select(notebooks, ["01"])] == ["01_preprocessing_and_evaluation"]
    assert [nb.stem for nb in select(notebooks, ["00_welcome_and_data"])] == ["00_welcome_and_data"]
    with pytest.raises(UsageError, match="no notebook matches"):
        select(notebooks, ["99_nothing"])


def _stems(tmp_path, names):
    for name in names:
        (tmp_path / f"{name}.ipynb").write_text("{}")
    return course_notebooks(tmp_path)


def test_select_needs_a_whole_number_or_a_prefix_with_the_number(tmp_path):
    """`--only 1` once ran notebook 10 (a prefix of '10_serving'): a selector is a notebook's number, its stem,
    or the start of the stem with 'NN_'; anything else is an error that suggests what was meant."""
    notebooks = _stems(tmp_path, ["00_welcome", "01_pre", "03_matrix_factorisation", "10_serving", "11_ranking"])
    pick = lambda *only: [nb.stem for nb in select(notebooks, list(only))]  # noqa: E731
    assert pick("01") == ["01_pre"] and pick("10") == ["10_serving"] and pick("01_pre") == ["01_pre"]
    assert pick("03_") == pick("03_mat") == pick("03_matrix_factorisation") == ["03_matrix_factorisation"]
    assert pick("10", "01", "01_p") == ["01_pre", "10_serving"]  # course order, each once
    assert pick() == [nb.stem for nb in notebooks] and select(notebooks, None) == notebooks
    for selector, hint in [("1", "did you mean 01?"), ("3", "did you mean 03?"), ("0", "did you mean 00?"),
                           ("001", "did you mean 01?"), ("matrix", "did you mean 03_matrix_factorisation?"),
                           ("1_pre", "did you mean 01_pre?"), ("01pre", "did you mean 01_pre?")]:
        with pytest.raises(UsageError, match=re.escape(f"no notebook matches '{selector}' ({hint})")):
            select(notebooks, [selector])
    with pytest.raises(UsageError) as err:
        select(notebooks, ["01", "1", "zzz"])
    assert "no notebook matches '1' (did you mean 01?); no notebook matches 'zzz'. Name a notebook" in str(err.value)
    assert "the course has: 00_welcome, 01_pre, 03_matrix_factorisation, 10_serving, 11_ranking" in str(err.value)
    with pytest.raises(UsageError, match="no notebook matches '1_'"):
        select(notebooks, ["1_"])
    with pytest.raises(UsageError, match="no notebook matches '0'"):  # not a prefix of 00_ and 01_ at once
        select(notebooks, ["0"])


@pytest.mark.notebooks  # executes notebooks 00 and 01 (smoke)
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
    assert all(t["status"] == "ok" and t["smoke"] and t["parameters"] == "smoke" for t in timings.values())
    assert "Incomplete" not in board and "| 00_welcome_and_data |" in board


RECORD = "from recsys_helpers.results import Results\nResults({name!r}).record({model!r}, 'rating', {{'rmse': 1.0}})"


def _notebook(path: Path, sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_a_failing_notebook_is_reported_and_the_others_still_run(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(nbs / "00_breaks.ipynb", ["SMOKE = False", RECORD.format(name="00_breaks", model="Early"), "1 / 0"])
    _notebook(nbs / "01_works.ipynb", ["SMOKE = False", "print('fine', SMOKE)"])
    out = tmp_path / "run"
    proc = run_cli("run", "--smoke", "--out", str(out), "--notebook-dir", str(nbs))
    assert proc.returncode == 1
    assert "00_breaks" in proc.stderr and "ZeroDivisionError" in proc.stderr and "(`1 / 0`)" in proc.stderr
    executed = nbformat.read(out / "01_works.ipynb", as_version=4)
    assert "fine True" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    timings = json.loads((out / "timings.json").read_text())
    assert timings["00_breaks"]["status"] == "failed" and timings["01_works"]["status"] == "ok"
    board = (out / "leaderboard.md").read_text()
    assert "did not finish: 00_breaks (failed)" in board and "| 00_breaks (failed) | Early |" in board
    assert "| 00_breaks | " in board and "| smoke | FAILED |" in board


def test_unknown_notebook_name_is_a_clear_error(tmp_path):
    proc = run_cli("run", "--only", "42_nope", "--out", str(tmp_path))
    assert proc.returncode != 0 and "no notebook matches" in proc.stderr


def test_unknown_notebook_name_exits_with_2(tmp_path, capsys):
    assert main(["run", "--only", "42_nope", "--out", str(tmp_path / "run")]) == 2
    assert "error: no notebook matches '42_nope'" in capsys.readouterr().err and not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------------- parameters

def test_notebook_parameters_reads_the_parameters_cell_and_the_smoke_cell(tmp_path):
    _notebook(tmp_path / "00_x.ipynb", ["SEED = 42  # a comment\nLR: float = 0.1\nA, B = 1, [2]\nC = A + 1\nNAME = 'x'",
                                        "if SMOKE:\n    A, B = 0, []\n    for C in range(2):\n        pass\n"
                                        "else:\n    NAME = 'y'",
                                        "%matplotlib inline", "if SMOKE:\n    LR *= 10"])
    defaults, smoke = notebook_parameters(tmp_path / "00_x.ipynb")
    assert defaults == {"SEED": 42, "LR": 0.1, "A": 1, "B": [2], "C": ANY, "NAME": "x"}
    assert smoke == {"A", "B", "C", "LR"}  # the else branch does not run with --smoke

    defaults, smoke = notebook_parameters(course_notebooks()[3])
    assert defaults["SGD_MAX_EPOCHS"] == 100 and defaults["DATASET"] == "ml-latest-small" and "EPOCHS" not in defaults
    assert {"SGD_MAX_EPOCHS", "REG_GRID", "MF_MAX_EPOCHS"} <= smoke and "DATASET" not in smoke and "SEED" not in smoke


@pytest.fixture
def two_notebooks(tmp_path):
    _notebook(tmp_path / "00_a.ipynb", ["SEED = 42\nSMOKE = False\nLR = 0.1\nUSE_BIAS = True\nDATASET = 'ml'\n"
                                        "GRID = [1, 2]\nEPOCHS = 5", "if SMOKE:\n    EPOCHS = 1"])
    _notebook(tmp_path / "01_b.ipynb", ["SEED = 1\nSMOKE = False\nTOP_N = 10", "print(SEED)"])
    return [tmp_path / "00_a.ipynb", tmp_path / "01_b.ipynb"]


@pytest.mark.parametrize("overrides, smoke, message", [
    ({"EPOCH": 3}, False, "-p EPOCH: 00_a, 01_b have no parameter EPOCH \\(did you mean EPOCHS\\?\\)"),
    ({"EPOCHS": 3}, False, "-p EPOCHS: 01_b has no parameter EPOCHS; only 00_a has it: pick notebooks with --only"),
    ({"SEED": "notanumber"}, False, "-p SEED='notanumber': SEED takes an int, like its default SEED = 42 in 00_a"),
    ({"SEED": True}, False, "SEED takes an int"),
    ({"SEED": 1.5}, False, "SEED takes an int"),
    ({"LR": "fast"}, False, "-p LR='fast': LR takes a float, like its default LR = 0.1"),
    ({"USE_BIAS": 1}, False, "USE_BIAS takes a bool"),
    ({"DATASET": 100}, False, "DATASET takes a str \\(a string: quote it, -p \"DATASET='100'\"\\)"),
    ({"GRID": 3}, False, "GRID takes a list"),
    ({"GRID": (1, 2)}, False, "GRID takes a list"),
    ({"SMOKE": True}, False, "use --smoke instead of -p SMOKE"),
    ({"EPOCHS": 3}, True, "--smoke with -p EPOCHS: the `if SMOKE:` cell of 00_a sets EPOCHS after the injected"),
])
def test_check_parameters_refuses_with_the_fix(two_notebooks, overrides, smoke, message):
    only_a = "EPOCHS" in overrides and smoke or set(overrides) & {"LR", "USE_BIAS", "DATASET", "GRID"}
    with pytest.raises(UsageError, match=message):
        check_parameters(two_notebooks[:1] if only_a else two_notebooks, overrides, smoke)


def test_check_parameters_lists_the_parameters_of_one_notebook_and_every_problem(two_notebooks):
    with pytest.raises(UsageError) as err:
        check_parameters(two_notebooks[1:], {"EPOCHS": 3, "SEED": "x"}, smoke=False)
    assert "01_b has no parameter EPOCHS; its parameters are SEED, TOP_N" in str(err.value)
    assert "-p SEED='x': SEED takes an int" in str(err.value)


def test_check_parameters_accepts_values_like_the_defaults(two_notebooks):
    check_parameters(two_notebooks, {"SEED": 3}, smoke=True)
    check_parameters(two_notebooks[:1], {"LR": 1, "USE_BIAS": False, "DATASET": "ml-1m", "GRID": [], "SEED": 7},
                     smoke=True)
    check_parameters(two_notebooks[:1], {"EPOCHS": 3}, smoke=False)


def test_smoke_needs_a_smoke_parameter(tmp_path):
    _notebook(tmp_path / "00_plain.ipynb", ["SEED = 1"])
    with pytest.raises(UsageError, match="--smoke: 00_plain has no SMOKE parameter"):
        check_parameters([tmp_path / "00_plain.ipynb"], {}, smoke=True)
    _notebook(tmp_path / "01_untagged.ipynb", ["SEED = 1"])
    nb = nbformat.read(tmp_path / "01_untagged.ipynb", as_version=4)
    nb.cells[0].metadata["tags"] = []
    nbformat.write(nb, tmp_path / "01_untagged.ipynb")
    with pytest.raises(UsageError, match="its parameters are none \\(no cell is tagged parameters\\)"):
        check_parameters([tmp_path / "01_untagged.ipynb"], {"SEED": 2}, smoke=False)


def test_describe_the_parameters_a_notebook_ran_with():
    assert describe({}, False) == "defaults" and describe({}, True) == "smoke"
    assert describe({"DATASET": "ml-100k", "SEED": 1}, True) == "smoke + DATASET='ml-100k' + SEED=1"


def readme_section() -> str:
    return (PROJECT / "README.md").read_text().split("## Running notebooks with other parameters")[1].split("\n## ")[0]


def readme_commands() -> list[list[str]]:
    block = readme_section().split("```bash")[1].split("```")[0]
    return [shlex.split(line.split("#")[0])[3:] for line in block.splitlines() if "recsys_helpers run" in line]


@pytest.mark.parametrize("argv", readme_commands(), ids=" ".join)
def test_readme_examples_have_parameters_the_notebooks_have(argv):
    """Each README example passes the runner's checks on the course's notebooks (nothing is executed here)."""
    only = argv[argv.index("--only") + 1:] if "--only" in argv else None
    only = only and [o for o in only[:next((i for i, o in enumerate(only) if o.startswith("-")), len(only))]]
    overrides = dict(parse_parameter(argv[i + 1]) for i, a in enumerate(argv) if a == "-p")
    check_parameters(select(course_notebooks(), only), overrides, smoke="--smoke" in argv)


def test_readme_names_parameters_that_exist():
    """The `-p NAME=...` and `-p NAME ...` in the README's section are parameters of some notebook."""
    known = {name for nb in course_notebooks() for name in notebook_parameters(nb)[0]}
    named = set(re.findall(r"-p (\w+)[= ]", readme_section()))
    assert named and named <= known | {"NAME"}, named - known  # NAME: the placeholder in `-p NAME=VALUE`


# --------------------------------------------------------------------------------------------- command line

@pytest.mark.parametrize("argv, message", [
    (["run", "--only", "03", "-p", "EPOCHS=5"], "03_matrix_factorisation has no parameter EPOCHS (did you mean"),
    (["run", "--only", "00", "-p", "SEED=notanumber"], "-p SEED='notanumber': SEED takes an int, like its default"),
    (["run", "--only", "01", "--smoke", "-p", "REG_GRID=[1.0]"], "--smoke with -p REG_GRID: the `if SMOKE:` cell of"),
    (["run", "--only", "00", "-p", "SEED=1", "-p", "SEED=2"], "-p SEED given more than once"),
])
def test_bad_parameters_exit_with_2_before_anything_runs(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_out_naming_a_file_exits_with_2(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["run", "--only", "00", "--out", str(tmp_path / "file")]) == 2
    assert "--out " + str(tmp_path / "file") + " is a file, not a folder" in capsys.readouterr().err
    assert main(["run", "--only", "00", "--out", str(tmp_path / "file" / "run")]) == 2
    assert "cannot create the run folder" in capsys.readouterr().err


@pytest.mark.parametrize("make", [lambda p: None, lambda p: p.mkdir(), lambda p: p.write_text("x")],
                         ids=["missing", "not a run folder", "a file"])
def test_leaderboard_of_something_that_is_not_a_run_folder_exits_with_2(tmp_path, capsys, make):
    make(tmp_path / "run")
    assert main(["leaderboard", str(tmp_path / "run")]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    assert not (tmp_path / "run").is_dir() or list((tmp_path / "run").iterdir()) == []


def test_leaderboard_of_a_broken_results_json_exits_with_2(tmp_path, capsys):
    (tmp_path / "results.json").write_text("[{")
    assert main(["leaderboard", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "results.json is not valid JSON" in err and "delete it" in err and "Traceback" not in err


def test_leaderboard_cli_prints_the_board(tmp_path, capsys):
    (tmp_path / "timings.json").write_text(json.dumps({"00_a": {"status": "ok", "seconds": 1, "parameters": "smoke"}}))
    assert main(["leaderboard", str(tmp_path)]) == 0
    assert "| 00_a | 1 | smoke | ok |" in capsys.readouterr().out


def test_overrides_are_recorded_and_a_rerun_replaces_a_notebooks_rows(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(nbs / "00_tiny.ipynb", ["SMOKE = False\nN = 1\nNAME = 'a'", "if SMOKE:\n    N = 0",
                                      RECORD.replace("{model!r}", "f'{{NAME}}{{N}}'").format(name="00_tiny")])
    out = tmp_path / "run"
    proc = run_cli("run", "--out", str(out), "--notebook-dir", str(nbs))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["model"] for r in json.loads((out / "results.json").read_text())] == ["a1"]
    assert json.loads((out / "timings.json").read_text())["00_tiny"]["parameters"] == "defaults"

    proc = run_cli("run", "--smoke", "-p", "NAME=b", "--out", str(out), "--notebook-dir", str(nbs))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["model"] for r in json.loads((out / "results.json").read_text())] == ["b0"]  # a1 is gone
    timing = json.loads((out / "timings.json").read_text())["00_tiny"]
    assert timing["parameters"] == "smoke + NAME='b'" and timing["overrides"] == {"NAME": "b"} and timing["smoke"]
    assert "| 00_tiny | " in proc.stdout and "| smoke + NAME='b' | ok |" in (out / "leaderboard.md").read_text()


def test_ctrl_c_marks_the_run_interrupted_and_exits_with_130(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    started = tmp_path / "started"
    _notebook(nbs / "00_sleeps.ipynb", ["SMOKE = False", RECORD.format(name="00_sleeps", model="Early"),
                                        f"open({str(started)!r}, 'w').close()\nimport time\ntime.sleep(120)",
                                        RECORD.format(name="00_sleeps", model="Late")])
    _notebook(nbs / "01_never.ipynb", ["SMOKE = False", "print('ran')"])
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "recsys_helpers", "run", "--out", str(out), "--notebook-dir",
                             str(nbs)], cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a suite started in the background by a script inherits an ignored SIGINT (POSIX shells
                            # do that to `&` jobs), and Python then never raises KeyboardInterrupt: give Ctrl-C back
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Interrupted (Ctrl-C)" in stderr and "Traceback" not in stderr

    timings = json.loads((out / "timings.json").read_text())
    assert timings == {"00_sleeps": {**timings["00_sleeps"], "status": "interrupted"}}  # 01 never started
    board = (out / "leaderboard.md").read_text()
    assert "did not finish: 00_sleeps (interrupted)" in board and "| 00_sleeps (interrupted) | Early |" in board
    assert "Late" not in board and "| INTERRUPTED |" in board and board in stdout
    executed = nbformat.read(out / "00_sleeps.ipynb", as_version=4)
    assert executed.metadata.papermill.status == "interrupted" and "Interrupted (Ctrl-C)" in executed.cells[0].source
    assert executed.cells[-1].metadata.papermill.status == "pending" and executed.cells[-1].execution_count is None


def test_a_broken_results_json_in_the_out_folder_stops_the_run_before_it_starts(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text("[{")
    assert main(["run", "--only", "00", "--out", str(out)]) == 2
    assert "results.json is not valid JSON" in capsys.readouterr().err and not (out / "timings.json").exists()


def test_the_reference_profile_refuses_a_parameter_its_reference_cell_would_overwrite(tmp_path):
    import nbformat

    from recsys_helpers.runner import UsageError, check_parameters, reference_names

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("SEED = 1\nPROFILE = 'laptop'\nEPOCHS = 5\nDIM = 8", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('if PROFILE == "reference":\n    EPOCHS, DIM = 100, 64')])
    path = tmp_path / "03_x.ipynb"
    nbformat.write(nb, path)
    assert reference_names(path) == {"EPOCHS", "DIM"}
    check_parameters([path], {"PROFILE": "reference", "SEED": 3}, smoke=False)  # SEED is not overwritten: fine
    check_parameters([path], {"EPOCHS": 7}, smoke=False)  # the laptop profile keeps -p values
    with pytest.raises(UsageError, match=r"PROFILE=reference with -p DIM, EPOCHS"):
        check_parameters([path], {"PROFILE": "reference", "EPOCHS": 7, "DIM": 3}, smoke=False)
    with pytest.raises(UsageError, match="PROFILE is 'laptop'"):
        check_parameters([path], {"PROFILE": "fast"}, smoke=False)
