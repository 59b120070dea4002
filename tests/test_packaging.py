"""The project's promises about its own layout: environment.yml in step with pyproject.toml, notebooks in step
with their sources, committed notebooks executed and clean."""
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower()


def _locked_versions() -> dict[str, str]:
    text = (PROJECT / "requirements.lock").read_text()
    return {m.group(1).lower().replace("_", "-"): m.group(2)
            for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", text, re.M)}


def test_the_lock_pins_every_declared_dependency_within_its_range():
    """requirements.lock (what `make venv` and CI install) holds one exact version of every dependency that
    pyproject.toml declares, inside the range declared there, with hashes."""
    from packaging.requirements import Requirement

    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    versions = _locked_versions()
    for text in project["dependencies"] + project["optional-dependencies"]["dev"]:
        req = Requirement(text)
        name = req.name.lower().replace("_", "-")
        assert name in versions, f"{name} is declared in pyproject.toml but not locked: run `make lock`"
        assert req.specifier.contains(versions[name], prereleases=True), \
            f"{name}=={versions[name]} in requirements.lock is outside {req.specifier}: run `make lock`"
    assert "--hash=sha256:" in (PROJECT / "requirements.lock").read_text()


def test_environment_yml_pins_what_the_lock_pins():
    proc = subprocess.run([sys.executable, "tools/lock.py", "--check"], cwd=PROJECT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    env = yaml.safe_load((PROJECT / "environment.yml").read_text())
    assert any(str(d).startswith("python=3.11") for d in env["dependencies"] if isinstance(d, str))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip


def test_make_venv_installs_from_the_lock():
    makefile = (PROJECT / "Makefile").read_text()
    assert "--require-hashes requirements.lock" in makefile and "--no-deps" in makefile


def test_layout():
    for path in ["notebooks", "recsys_helpers", "data", "tests", "environment.yml", "README.md", "pyproject.toml",
                 "Makefile", ".ci/run"]:
        assert (PROJECT / path).exists(), path


def test_notebooks_match_their_sources():
    proc = subprocess.run([sys.executable, "tools/nbbuild.py", "--check"], cwd=PROJECT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_code_cell_is_over_40_lines():
    """The course's rule: no code cell over 40 non-blank lines (the parameters cell aside); split it, or move what a
    learner need not read to the package."""
    long = []
    for path in sorted((PROJECT / "notebooks").glob("*.ipynb")):
        for i, c in enumerate(json.loads(path.read_text())["cells"]):
            source = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            lines = sum(1 for line in source.split("\n") if line.strip())
            if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", []) and lines > 40:
                long.append(f"{path.name} cell {i} ({lines} lines)")
    assert not long, "code cells over 40 lines: " + "; ".join(long)


def test_committed_notebooks_are_executed_in_order_without_errors():
    for path in sorted((PROJECT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert any("parameters" in c["metadata"].get("tags", []) for c in code), f"{path.name}: no parameters cell"
        counts = [c["execution_count"] for c in code]
        assert None not in counts, f"{path.name}: some cells were never executed"
        assert counts == sorted(counts), f"{path.name}: cells executed out of order"
        for c in code:
            for o in c["outputs"]:
                assert o["output_type"] != "error", f"{path.name}: a stored output is an error"
                text = json.dumps(o.get("text", "")) + json.dumps(o.get("data", {}).get("text/plain", ""))
                assert not re.search(r"(/work/|/tmp/|/root/|/home/\w+/|site-packages)", text), \
                    f"{path.name}: an output shows a machine path: {text[:200]}"
        assert path.stat().st_size < 3_000_000, f"{path.name} is too large"


def test_committed_notebooks_carry_no_build_bookkeeping():
    """tools/nbbuild.py keeps only what the course needs: stable ids, tags, outputs; no papermill or jupytext
    metadata (run times and paths would make every rebuild a diff)."""
    for path in sorted((PROJECT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        assert set(nb["metadata"]) == {"kernelspec", "language_info"}, f"{path.name}: {sorted(nb['metadata'])}"
        assert nb["metadata"]["kernelspec"]["name"] == "python3", path.name
        assert [c.get("id") for c in nb["cells"]] == [f"c{i:03d}" for i in range(len(nb["cells"]))], path.name
        for c in nb["cells"]:
            assert set(c["metadata"]) <= {"tags"}, f"{path.name} cell {c.get('id')}: {sorted(c['metadata'])}"


def _shows_a_figure(source: str) -> bool:
    """Whether a cell draws a figure when it runs: ``plt.show()`` called outside any function or class it defines."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:  # a cell with IPython magics
        return "plt.show()" in source
    inside = {id(n) for d in ast.walk(tree) if isinstance(d, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
              for n in ast.walk(d) if n is not d}
    return any(isinstance(n, ast.Call) and ast.unparse(n.func) == "plt.show" and id(n) not in inside
               for n in ast.walk(tree))


def test_every_committed_figure_has_its_image():
    """A notebook executed with a non-interactive backend (MPLBACKEND=Agg inherited by the kernel) keeps its text but
    loses every figure (notebook 10 was committed so once): each cell that shows a figure must hold a PNG."""
    for path in sorted((PROJECT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        blank = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and _shows_a_figure("".join(c["source"]))
                 and not any("image/png" in o.get("data", {}) for o in c["outputs"])]
        assert not blank, f"{path.name}: cells {blank} show a figure but hold no image; re-execute the notebook"


def test_a_cell_that_calls_plt_show_only_inside_a_function_draws_nothing():
    assert _shows_a_figure("fig, ax = plt.subplots()\nplt.show()")
    assert not _shows_a_figure("def plot(x):\n    plt.plot(x)\n    plt.show()\n")
    assert _shows_a_figure("def plot(x):\n    plt.plot(x)\nplot(1)\nplt.show()\n")


def test_every_name_in_the_readmes_package_table_exists():
    """The README's table of modules lists names a learner will look for: each must exist where it says."""
    import importlib

    text = (PROJECT / "README.md").read_text()
    table = text[text.index("| module | acts on | main names |"):]
    table = table[:table.index("\n\n")]
    checked = 0
    for line in table.splitlines()[2:]:
        modules_cell, _, names_cell = [c.strip() for c in line.strip("|").split("|")][:3]
        modules = re.findall(r"`(\w+)`", modules_cell)
        for name in re.findall(r"`([A-Za-z_][\w.]*)`", re.sub(r"\(.*?\)", "", names_cell)):
            if "." in name:
                module, attr = name.split(".", 1)
            else:
                assert len(modules) == 1, f"{name}: say which module it is in ({modules})"
                module, attr = modules[0], name
            assert hasattr(importlib.import_module(f"recsys_helpers.{module}"), attr), \
                f"README lists {module}.{attr}, which does not exist"
            checked += 1
    assert checked > 60


def test_the_chapter_table_of_notebook_00_names_every_notebook():
    """Notebook 00's "How to use the course" table lists every notebook source in tools/notebooks/, by its name, and
    calls no chapter unpublished: the table went stale once when chapters 05-10 landed."""
    source = (PROJECT / "tools" / "notebooks" / "00_welcome_and_data.py").read_text()
    section = source.split("### How to use the course", 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if not line.startswith("# |"):
            break
        rows.append(line)
    table = "\n".join(rows)
    assert rows, "notebook 00 has no chapter table under '### How to use the course'"
    for path in sorted((PROJECT / "tools" / "notebooks").glob("[0-9][0-9]_*.py")):
        assert f"| {path.stem[:2]} | `{path.stem}` |" in table, \
            f"notebook 00's chapter table has no row for {path.stem} (tools/notebooks/{path.name})"
    assert "not yet published" not in table and "| later |" not in table
