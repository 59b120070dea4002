"""The reference run (``make reference``): notebooks at ``PROFILE="reference"`` into ``notebooks/reference/``.

In the reference profile every compared model of a notebook gets its validation-chosen setting and trains until
early stopping on validation ends it, before its epoch cap (at most 30 minutes per notebook on 2 CPU cores, minutes on
a GPU). The folder is a run folder of the course's runner (the executed notebooks, ``results.json``,
``comparisons.json``, ``timings.json``, ``leaderboard.md``), committed, so that each notebook at its laptop default can
show the reference numbers beside its own (``Results.reference_table``).

For each notebook this script
1. builds it from its source in ``tools/notebooks/`` and executes it with the course's runner and
   ``-p PROFILE=reference`` into ``notebooks/reference/`` (replacing the notebook's earlier rows there);
2. strips papermill's bookkeeping from the executed copy (paths, timestamps) and puts a note at its top: the prose
   was written for the laptop profile's outputs, the numbers are those of the outputs below it;
3. records in ``timings.json`` the commit, the parameters, the machine and the sha256 of the notebook's reference
   settings (its ``parameters`` cell and its ``if PROFILE == "reference":`` cell): a fast test fails when a
   notebook's settings no longer match the ones its committed reference run used.

Usage (from the project root, in the course's environment):
    python tools/reference.py                 # every notebook with a PROFILE parameter
    python tools/reference.py 06 07           # only these
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat

PROJECT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = PROJECT / "notebooks" / "reference"
sys.path.insert(0, str(PROJECT / "tools"))
sys.path.insert(0, str(PROJECT))

from nbbuild import read_source, sources, strip_papermill  # noqa: E402


def reference_cells(nb) -> list[str]:
    """The sources that decide a notebook's reference settings: its ``parameters`` cell and every cell that starts
    with ``if PROFILE == "reference":``."""
    chosen = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        first = cell.source.lstrip().split("\n", 1)[0].replace("'", '"').replace(" ", "")
        if "parameters" in cell.metadata.get("tags", []) or first.startswith('ifPROFILE=="reference"'):
            chosen.append(cell.source)
    return chosen


def settings_sha256(nb) -> str:
    return hashlib.sha256(json.dumps(reference_cells(nb)).encode()).hexdigest()


def has_profile(nb) -> bool:
    return any(c.cell_type == "code" and "parameters" in c.metadata.get("tags", []) and "PROFILE" in c.source
               for c in nb.cells)


def commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=PROJECT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--", "tools/notebooks", "recsys_helpers") else "")


NOTE = ("> **Reference profile.** This copy of the notebook ran with `PROFILE = \"reference\"` ({when}, commit "
        "{commit}, {seconds:.0f} s on {machine}): every compared model at its validation-chosen setting, trained "
        "until early stopping ended it. The prose was written for the laptop profile's outputs (the notebook in "
        "`notebooks/`): where the two differ, the numbers are those of the outputs below.")


def main(argv=None) -> int:
    from recsys_helpers.env import machine_signature
    from recsys_helpers.results import (PENDING_FILE, TIMINGS_FILE, pending_reference, read_timings,
                                        write_json, write_leaderboard)
    from recsys_helpers.runner import run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    built = {src.stem: read_source(src.read_text()) for src in sources(args.names)}
    built = {name: nb for name, nb in built.items() if has_profile(nb)}
    if not built:
        sys.exit("no selected notebook has a PROFILE parameter")
    failed = {}
    scratch = Path(tempfile.mkdtemp(prefix="reference-"))
    for name, source_nb in built.items():
        path = scratch / f"{name}.ipynb"
        nbformat.write(source_nb, path)
        start = time.perf_counter()
        failed.update(run([path], REFERENCE_DIR, {"PROFILE": "reference"}))
        seconds = time.perf_counter() - start
        executed = REFERENCE_DIR / path.name
        if path.stem in failed or not executed.exists():
            continue
        nb = strip_papermill(nbformat.read(executed, as_version=4))
        machine = machine_signature()
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(NOTE.format(
            when=when, commit=commit(), seconds=seconds,
            machine=f"{machine['cores']} cores of {machine['cpu']}")))
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"r{i:03d}"
        nbformat.write(nb, executed)
        timings = read_timings(REFERENCE_DIR)
        timings[path.stem].update(commit=commit(), date=when, machine=machine,
                                  settings_sha256=settings_sha256(source_nb))
        write_json(REFERENCE_DIR / TIMINGS_FILE, dict(sorted(timings.items())))
        pending = pending_reference(REFERENCE_DIR)
        if pending.pop(path.stem, None) is not None:
            write_json(REFERENCE_DIR / PENDING_FILE, dict(sorted(pending.items())))
        print(f"{path.stem}: reference profile in {seconds:.0f} s", flush=True)
    write_leaderboard(REFERENCE_DIR)
    for name, error in failed.items():
        print(f"FAILED {name}: {error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
