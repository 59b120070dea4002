"""Notebook 05's own code for its validation searches: the cells of ``tools/notebooks/05_cnn_recommenders.py`` that
define the names a search needs are executed, in the notebook's order, in one namespace (the parameters cell first),
so a search trains exactly what the notebook trains. No cell that scores the test split is run: a search scores
validation only (the validation-new movies of the cold-start protocol, or the validation events of the sequential
protocol).
"""
from __future__ import annotations

import ast
import os
import re
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
SOURCE = PROJECT / "tools" / "notebooks" / "05_cnn_recommenders.py"
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("RECSYS_DATA_DIR", str(PROJECT.parent / "shared" / "datasets"))


def code_cells() -> list[str]:
    """The notebook's code cells, in order (markdown cells left out)."""
    parts = re.split(r"^# %%(.*)$", SOURCE.read_text(), flags=re.M)
    return [body for header, body in zip(parts[1::2], parts[2::2]) if "[markdown]" not in header]


def defines(cell: str) -> set[str]:
    """The names a cell defines at its top level (functions, classes, assignments, also inside a ``with``)."""
    names, nodes = set(), list(ast.parse(cell).body)
    while nodes:
        node = nodes.pop()
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.With):
            nodes += node.body
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                elements = target.elts if isinstance(target, ast.Tuple) else [target]
                names |= {e.id for e in elements if isinstance(e, ast.Name)}
    return names


def notebook(*names: str, **parameters) -> dict:
    """A namespace holding the notebook's definitions of ``names``: every cell that defines one of them is run in
    order, after the parameters cell (with ``parameters`` overriding its values, as papermill would)."""
    cells = code_cells()
    ns: dict = {"__name__": "nb05"}
    exec(cells[0], ns)  # the parameters cell
    ns.update(parameters)
    cwd = os.getcwd()
    os.chdir(PROJECT / "notebooks")  # the notebook's working directory (its relative paths)
    try:
        for cell in cells[1:]:
            if set(names) & defines(cell):
                exec(cell, ns)
    finally:
        os.chdir(cwd)
    return ns
