"""Build the course notebooks from their sources and execute them at their default parameters.

Sources are ``tools/notebooks/NN_name.py`` in the "percent" format that Jupytext and VS Code understand:

    # %% [markdown]
    # Text of a markdown cell, each line behind "# ".
    # %% tags=["parameters"]
    SEED = 42

Usage (from the project root, inside the course's environment):
    python tools/nbbuild.py                 # build and execute every notebook
    python tools/nbbuild.py 03 04           # only these (by number or name)
    python tools/nbbuild.py --no-execute    # build only (outputs are dropped)
    python tools/nbbuild.py --check         # exit 1 if a committed notebook differs from its source
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import nbformat

PROJECT = Path(__file__).resolve().parents[1]
SOURCES = PROJECT / "tools" / "notebooks"
NOTEBOOKS = PROJECT / "notebooks"
_HEADER = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")


def parse_source(text: str) -> list:
    """Cells of a percent-format source."""
    cells, kind, tags, lines = [], None, [], []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(re.sub(r"^# ?", "", ln) for ln in body.split("\n"))
            cell = nbformat.v4.new_markdown_cell(body)
        else:
            cell = nbformat.v4.new_code_cell(body)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in text.split("\n"):
        m = _HEADER.match(line)
        if m:
            flush()
            kind = "markdown" if m.group("md") else "code"
            tags = json.loads(m.group("tags")) if m.group("tags") else []
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def new_notebook(cells: list) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):  # stable ids keep diffs small
        cell["id"] = f"c{i:03d}"
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 1200) -> None:
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()


def sources(names: list[str]) -> list[Path]:
    found = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if names:
        found = [p for p in found if any(p.stem.startswith(n) for n in names)]
    if not found:
        sys.exit(f"no notebook source matches {names} in {SOURCES}")
    return found


def same_sources(committed: nbformat.NotebookNode, built: nbformat.NotebookNode) -> bool:
    pick = lambda nb: [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]  # noqa: E731
    return pick(committed) == pick(built)


def main() -> int:
    parser = argparse.ArgumentParser(description="build and execute the course notebooks")
    parser.add_argument("names", nargs="*")
    parser.add_argument("--no-execute", action="store_true")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = []
    for src in sources(args.names):
        target = NOTEBOOKS / f"{src.stem}.ipynb"
        nb = new_notebook(parse_source(src.read_text()))
        if args.check:
            if not target.exists() or not same_sources(nbformat.read(target, as_version=4), nb):
                stale.append(target.name)
            continue
        start = time.perf_counter()
        if not args.no_execute:
            execute(nb)
        nbformat.write(nb, target)
        print(f"{target.name}: {time.perf_counter() - start:.1f} s")
    if stale:
        print("out of date with tools/notebooks (run python tools/nbbuild.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
