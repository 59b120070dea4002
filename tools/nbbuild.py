"""Build the course notebooks from their sources and execute them at their default parameters.

Sources are ``tools/notebooks/NN_name.py`` in Jupytext's "percent" format (which VS Code and PyCharm also
understand as cells):

    # %% [markdown]
    # Text of a markdown cell, each line behind "# ".

    # %% tags=["parameters"]
    SEED = 42

Building has two steps, each done by the tool made for it:

1. Source -> notebook with jupytext (``read_source``). Only what the course keeps is carried over: cell type,
   source and the ``tags`` cell metadata. Jupytext's own bookkeeping (``lines_to_next_cell`` and the ``jupytext``
   notebook metadata) is dropped, the cells get stable ids ``c000``, ``c001``, ... so diffs stay small, and the
   notebook metadata is the kernelspec ``python3`` plus ``language_info`` (no jupytext header in the notebooks).
   ``to_source`` is the way back (notebook -> percent source), with one blank line between cells as in the
   committed sources: for the committed notebooks it reproduces ``tools/notebooks`` byte for byte.
   Jupytext's conventions apply in code cells: a commented magic (``# %time f()``, ``# !ls``) is the magic itself
   in the notebook (``%time f()``); to keep such a line a comment, comment it twice (``# # !pip install x``).
2. Execution with the course's one executor, ``recsys_helpers.runner.execute`` (papermill, kernel ``python3``,
   working directory ``notebooks/``, empty parameters so the notebook's own defaults run; the results a notebook
   records land in a throw-away run folder). Papermill's bookkeeping (the notebook-level and per-cell
   ``papermill`` metadata, the per-cell ``execution`` timestamps, the empty ``tags`` lists it adds) is stripped;
   execution counts and outputs stay. A notebook that fails is reported with the failing cell (its id and the line
   of its ``# %%`` marker in the source) and the error; it is not written, the other notebooks still build, and
   the exit status is 1.
3. What the execution recorded lands beside the committed notebooks, which makes ``notebooks/`` a run folder of
   the defaults: ``notebooks/results.json`` (the records, as ``Results.record`` wrote them), ``comparisons.json``
   (the verdicts ``Results.compare`` stored) and ``timings.json`` (per notebook: its run time, the sha256 of its
   source cells and the machine's signature). A notebook rebuilt replaces its own entries. The full tier re-executes
   the notebooks and compares their records with these; a fast test checks that each entry comes from the
   notebook's current source, so a notebook cannot be changed without being re-executed.

Usage (from the project root, inside the course's environment; jupytext comes with ``pip install -e ".[dev]"``):
    python tools/nbbuild.py                 # build and execute every notebook
    python tools/nbbuild.py 03 04           # only these (by number or name)
    python tools/nbbuild.py --no-execute    # build only (no outputs)
    python tools/nbbuild.py --check         # exit 1 if a committed notebook's cells differ from its source
    python tools/nbbuild.py --text-only 04  # carry a change of text into the executed notebook, without executing

``--text-only`` is for a change that cannot move an output: the built notebook's code cells must be those of the
committed executed notebook, in the same order (comments may change), except ``if SMOKE:`` cells (every other line indented under the
``if``: at the default parameters they run nothing and print nothing). Markdown cells may change, appear or go. The
outputs are carried over from the executed notebook, and its ``timings.json`` entry gets the new source's sha256
(``text_only: true``); ``results.json`` and ``comparisons.json`` stay, since the code that wrote them is the same.
Any other difference is refused: execute the notebook instead.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat

PROJECT = Path(__file__).resolve().parents[1]
SOURCES = PROJECT / "tools" / "notebooks"
NOTEBOOKS = PROJECT / "notebooks"
# the percent format, without a YAML header, carrying only the ``tags`` of each cell
FORMAT = {"extension": ".py", "format_name": "percent",
          "notebook_metadata_filter": "-all", "cell_metadata_filter": "tags,-all"}
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def read_source(text: str) -> nbformat.NotebookNode:
    """The notebook (unexecuted) that a percent-format source describes."""
    new_cell = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell,
                "raw": nbformat.v4.new_raw_cell}
    cells = []
    for cell in jupytext.reads(text, fmt=FORMAT).cells:
        fresh = new_cell[cell.cell_type](cell.source)
        if cell.metadata.get("tags"):
            fresh.metadata["tags"] = list(cell.metadata["tags"])
        cells.append(fresh)
    return new_notebook(cells)


def new_notebook(cells: list) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):  # stable ids keep diffs small
        cell["id"] = f"c{i:03d}"
    return nb


def to_source(nb: nbformat.NotebookNode) -> str:
    """The percent-format source of a notebook (cells and tags only; outputs and other metadata are left out)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells[:-1]:
        # one blank line between cells, as in tools/notebooks (jupytext's PEP 8 default puts two around code
        # cells that define functions or classes)
        cell.metadata["lines_to_next_cell"] = 1
    return jupytext.writes(nb, fmt=FORMAT)


def strip_papermill(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop papermill's bookkeeping (run times, paths, per-cell status) so committed notebooks diff cleanly."""
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.metadata.get("tags") == []:  # papermill gives every cell a tags list, most of them empty
            del cell.metadata["tags"]
    return nb


class ExecutionFailed(Exception):
    """A notebook that stopped with an error: ``error`` is the executor's one line, ``cell_id`` the failing cell."""

    def __init__(self, error: str, cell_id: str | None = None):
        super().__init__(error)
        self.error, self.cell_id = error, cell_id


def source_sha256(nb: nbformat.NotebookNode) -> str:
    """The sha256 of a notebook's cells (type, source, tags): what its executed outputs depend on."""
    import hashlib
    import json

    cells = [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode()).hexdigest()


def store_run(name: str, run_dir: Path, seconds: float, nb: nbformat.NotebookNode, target: Path = NOTEBOOKS) -> None:
    """Replace ``name``'s entries in ``target``'s results.json, comparisons.json and timings.json by those of the run
    in ``run_dir`` (see the module docstring)."""
    from recsys_helpers.env import machine_signature
    from recsys_helpers.results import (COMPARISONS_FILE, RESULTS_FILE, TIMINGS_FILE, read_comparisons, read_results,
                                        read_timings, write_json)

    for file, read in ((RESULTS_FILE, read_results), (COMPARISONS_FILE, read_comparisons)):
        kept = [r for r in read(target) if r["notebook"] != name]
        write_json(target / file, kept + [r for r in read(run_dir) if r["notebook"] == name])
    timings = read_timings(target)
    timings[name] = {"status": "ok", "seconds": round(seconds, 1), "parameters": "defaults", "smoke": False,
                     "overrides": {}, "source_sha256": source_sha256(nb), "machine": machine_signature()}
    write_json(target / TIMINGS_FILE, dict(sorted(timings.items())))


def execute(nb: nbformat.NotebookNode, name: str, cwd: Path = NOTEBOOKS, store: bool = False) -> nbformat.NotebookNode:
    """``nb`` run by the course's executor at its default parameters, papermill's bookkeeping stripped; with
    ``store``, what it recorded replaces its entries in ``notebooks/`` (``store_run``).

    Raises ExecutionFailed with the executor's message ("cell N (`first line`): Error: message") on failure."""
    if str(PROJECT) not in sys.path:  # the project may not be installed (python tools/nbbuild.py from a checkout)
        sys.path.insert(0, str(PROJECT))
    from recsys_helpers.runner import execute as run_notebook

    with tempfile.TemporaryDirectory(prefix="nbbuild-") as tmp:
        source, out_dir = Path(tmp) / "built" / f"{name}.ipynb", Path(tmp) / "run"
        source.parent.mkdir()
        out_dir.mkdir()
        nbformat.write(nb, source)
        start = time.perf_counter()
        error = run_notebook(source, out_dir, {}, cwd=cwd)
        seconds = time.perf_counter() - start
        executed = out_dir / source.name
        if error:
            raise ExecutionFailed(error, _error_cell(executed))
        executed = nbformat.read(executed, as_version=4)
        slowest = sorted(((c.metadata.get("papermill", {}).get("duration") or 0, i, c.source.split("\n")[0][:60])
                          for i, c in enumerate(executed.cells) if c.cell_type == "code"), reverse=True)[:5]
        print(f"{name}: slowest cells " + "; ".join(f"#{i} {d:.1f} s `{line}`" for d, i, line in slowest))
        if store:
            store_run(name, out_dir, seconds, nb)
        return strip_papermill(executed)


def _error_cell(executed: Path) -> str | None:
    """Id of the cell whose output is an error in papermill's (partial) output notebook, if there is one."""
    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception:  # papermill could not write it (kernel died before the first cell, ...)
        return None
    return next((c.get("id") for c in nb.cells if c.cell_type == "code"
                 and any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)


def source_line(text: str, index: int) -> int | None:
    """1-based line of the ``# %%`` marker that starts cell ``index`` of a percent source (None if unsure)."""
    markers = [i + 1 for i, line in enumerate(text.splitlines()) if re.match(r"#\s*%%", line)]
    return markers[index] if len(markers) == len(read_source(text).cells) and index < len(markers) else None


def where(src: Path, nb: nbformat.NotebookNode, cell_id: str | None) -> str:
    """``tools/notebooks/NN_name.py line L, cell cNNN``: where in its source a notebook's cell comes from."""
    shown = src.relative_to(PROJECT) if src.is_relative_to(PROJECT) else src
    ids = [c.get("id") for c in nb.cells]
    line = source_line(src.read_text(), ids.index(cell_id)) if cell_id in ids else None
    return f"{shown} line {line}, cell {cell_id}" if line else f"{shown}, cell {cell_id or '?'}"


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


def _inert_smoke_cell(source: str) -> bool:
    """A cell ``if SMOKE:`` with every other line indented (or blank, or a comment): at SMOKE = False it does nothing."""
    lines = source.strip().split("\n")
    return lines[0].startswith("if SMOKE:") and all(
        not line.strip() or line.startswith((" ", "\t")) or line.lstrip().startswith("#") for line in lines[1:])


def _code_tokens(source: str):
    """The tokens of a code cell without its comments and blank lines (None where it does not tokenize, e.g. magics):
    two cells with the same tokens run the same code."""
    import io
    import tokenize

    skip = {tokenize.COMMENT, tokenize.NL}
    try:
        return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type not in skip]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None


def _same_code(a: str, b: str) -> bool:
    ta, tb = _code_tokens(a), _code_tokens(b)
    return a == b if ta is None or tb is None else ta == tb


def carry_outputs(executed: nbformat.NotebookNode, built: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``built`` with the outputs of ``executed`` (see --text-only in the module docstring); ValueError naming the
    first code cell that differs."""
    old = [c for c in executed.cells if c.cell_type == "code"]
    new = [c for c in built.cells if c.cell_type == "code"]
    if len(old) != len(new):
        raise ValueError(f"the source has {len(new)} code cells, the executed notebook {len(old)}: execute it")
    for i, (a, b) in enumerate(zip(old, new)):
        same = _same_code(a.source, b.source) and a.metadata.get("tags", []) == b.metadata.get("tags", [])
        if not same and not (_inert_smoke_cell(a.source) and _inert_smoke_cell(b.source) and not a.get("outputs")):
            first = b.source.strip().split("\n")[0][:60]
            raise ValueError(f"code cell {i} (`{first}`) differs from the executed notebook's: execute it")
        b.outputs, b.execution_count = a.get("outputs", []), a.get("execution_count")
    return built


def text_only(src: Path, target: Path) -> None:
    """Carry ``src``'s text into the executed ``target`` and update its timings entry (see --text-only)."""
    from recsys_helpers.results import TIMINGS_FILE, read_timings, write_json

    timings = read_timings(NOTEBOOKS)
    executed = nbformat.read(target, as_version=4)
    if src.stem not in timings or timings[src.stem].get("source_sha256") != source_sha256(executed):
        raise ValueError(f"{target.name} is not the committed execution recorded in notebooks/{TIMINGS_FILE}: "
                         f"execute it")
    nb = carry_outputs(executed, read_source(src.read_text()))
    nbformat.write(nb, target)
    timings[src.stem].update(source_sha256=source_sha256(nb), text_only=True)
    write_json(NOTEBOOKS / TIMINGS_FILE, dict(sorted(timings.items())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="build and execute the course notebooks")
    parser.add_argument("names", nargs="*")
    parser.add_argument("--no-execute", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--text-only", action="store_true", help="carry text changes into the executed notebooks")
    args = parser.parse_args(argv)
    stale, failed = [], []
    for src in sources(args.names):
        target = NOTEBOOKS / f"{src.stem}.ipynb"
        nb = read_source(src.read_text())
        if args.check:
            if not target.exists() or not same_sources(nbformat.read(target, as_version=4), nb):
                stale.append(target.name)
            continue
        if args.text_only:
            try:
                text_only(src, target)
            except ValueError as err:
                failed.append(target.name)
                print(f"REFUSED {target.name}: {err}", file=sys.stderr)
            else:
                print(f"{target.name}: text carried over, outputs kept")
            continue
        start = time.perf_counter()
        if not args.no_execute:
            try:
                nb = execute(nb, src.stem, store=True)
            except ExecutionFailed as err:
                failed.append(target.name)
                print(f"FAILED {target.name} ({where(src, nb, err.cell_id)}): {err.error}; "
                      f"{target.name} left as it was", file=sys.stderr)
                continue
        nbformat.write(nb, target)
        print(f"{target.name}: {time.perf_counter() - start:.1f} s")
    if stale:
        print("out of date with tools/notebooks (run python tools/nbbuild.py): " + ", ".join(stale))
    if failed:
        print(f"{len(failed)} notebook(s) failed to execute: " + ", ".join(failed), file=sys.stderr)
    return 1 if stale or failed else 0


if __name__ == "__main__":
    sys.exit(main())
