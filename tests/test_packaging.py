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


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((PROJECT / "environment.yml").read_text())
    assert any(str(d).startswith("python=3.11") for d in env["dependencies"] if isinstance(d, str))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {p for p in pip if not p.startswith("-e")}
    assert listed == declared, (f"only in pyproject.toml: {sorted(declared - listed)}; "
                                f"only in environment.yml: {sorted(listed - declared)}")
    assert "-e ." in pip


def test_layout():
    for path in ["notebooks", "recsys_helpers", "data", "tests", "environment.yml", "README.md", "pyproject.toml",
                 "Makefile", ".ci/run"]:
        assert (PROJECT / path).exists(), path


def test_notebooks_match_their_sources():
    proc = subprocess.run([sys.executable, "tools/nbbuild.py", "--check"], cwd=PROJECT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


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
