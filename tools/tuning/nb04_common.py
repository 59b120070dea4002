"""Shared by notebook 04's searches: run the notebook's own code, so that a search trains exactly what the notebook
trains.

``notebook_namespace()`` executes the cells of ``tools/notebooks/04_mlp_recommenders.py`` tagged ``parameters`` or
``tuning`` (the parameters, the imports, the data and the split, the features and every model builder and training
function), in order, and returns their names. No other cell runs: nothing is trained, and the test split, which the
data cell creates with the standard split, is never scored by the searches.
"""
import os
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
SOURCE = PROJECT / "tools" / "notebooks" / "04_mlp_recommenders.py"
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def notebook_namespace(**overrides) -> dict:
    """The names defined by the notebook's ``parameters`` and ``tuning`` cells; ``overrides`` replace parameters
    (applied right after the parameters cell, as papermill does)."""
    import jupytext
    import matplotlib

    matplotlib.use("Agg")
    names: dict = {}
    for k, cell in enumerate(jupytext.read(SOURCE).cells):
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type != "code" or not tags & {"parameters", "tuning"}:
            continue
        exec(compile(cell.source, f"{SOURCE.name}, cell {k}", "exec"), names)
        if "parameters" in tags:
            names.update(overrides)
    return names
