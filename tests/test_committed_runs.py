"""The two committed run folders and the notebooks cannot drift apart silently.

- ``notebooks/`` is the run of every notebook at its defaults (laptop profile), written by ``tools/nbbuild.py``:
  each notebook's entry in ``notebooks/timings.json`` names the sha256 of the source it was executed from (fast tier),
  and the full tier, which re-executes every notebook, compares the metrics it records with those committed.
- ``notebooks/reference/`` is the reference run (``make reference``): each notebook with a ``PROFILE`` parameter must
  have run there with its current reference settings (its parameters cell and its ``if PROFILE == "reference":``
  cell), so a change of setting cannot hide behind an older reference run (fast tier).
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tools"))

from nbbuild import read_source, source_sha256, sources  # noqa: E402
from reference import has_profile, settings_sha256  # noqa: E402

from recsys_helpers.env import machine_signature  # noqa: E402
from recsys_helpers.results import (DEFAULT_DIR, PENDING_FILE, REFERENCE_DIR, metric_kind,  # noqa: E402
                                    pending_reference, read_results, read_timings)

SOURCES = sources([])
# Differences allowed between a re-execution and the committed run. On a machine with the same signature (CPU model,
# vector instructions, cores) and the locked versions, TensorFlow's op determinism and the seeds make every run
# identical (measured: two runs of every notebook, and runs with 1 and 2 threads and with oneDNN on and off, gave the
# same digits), so only float formatting is allowed. On another machine other kernels change the last digits of a
# trained model, which training can amplify to the size of a change of seed: the tolerance is then that size.
SAME_MACHINE = 1e-9
OTHER_MACHINE = {"ratio": 0.01, "error": 0.005, "other": 0.05}  # absolute; "other": relative


@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_each_committed_notebook_recorded_its_results_from_its_current_source(src):
    timings = read_timings(DEFAULT_DIR)
    assert src.stem in timings, (f"notebooks/timings.json has no entry for {src.stem}: execute it with "
                                 f"`python tools/nbbuild.py {src.stem[:2]}`")
    assert timings[src.stem]["source_sha256"] == source_sha256(read_source(src.read_text())), (
        f"{src.stem} changed after its committed execution: re-execute it with `python tools/nbbuild.py "
        f"{src.stem[:2]}` (its outputs and notebooks/results.json must come from the source as it is)")


@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_each_reference_run_used_the_notebooks_current_reference_settings(src):
    """A notebook with a PROFILE parameter has a finished reference run with its current settings, or is listed in
    notebooks/reference/pending.json with the reason (its laptop notebook then says the reference column is empty)."""
    nb = read_source(src.read_text())
    if not has_profile(nb):
        pytest.skip(f"{src.stem} has no PROFILE parameter")
    timings, pending = read_timings(REFERENCE_DIR), pending_reference(REFERENCE_DIR)
    if src.stem in pending:
        assert src.stem not in timings, (f"{src.stem} has a committed reference run but is still listed in "
                                         f"notebooks/reference/{PENDING_FILE}: remove it from there")
        return
    assert src.stem in timings and timings[src.stem].get("status") == "ok", (
        f"notebooks/reference has no finished run of {src.stem}: `make reference ARGS={src.stem[:2]}` (or list it, "
        f"with the reason, in notebooks/reference/{PENDING_FILE})")
    assert timings[src.stem].get("settings_sha256") == settings_sha256(nb), (
        f"{src.stem}'s reference settings (its parameters cell or its `if PROFILE == \"reference\":` cell) changed "
        f"after its committed reference run: rerun it with `make reference ARGS={src.stem[:2]}`")


def test_pending_reference_runs_are_notebooks_with_a_profile():
    names = {s.stem: s for s in SOURCES}
    for name in pending_reference(REFERENCE_DIR):
        assert name in names and has_profile(read_source(names[name].read_text())), (
            f"notebooks/reference/{PENDING_FILE} lists {name}, which is not a notebook with a PROFILE parameter")


def test_reference_records_say_how_many_epochs_each_model_ran():
    """A model trained by gradient descent in the reference run records its epochs; none ran to its cap."""
    capped = [f"{r['notebook']}: {r['model']} ({r['epochs']['ran']}/{r['epochs']['cap']})"
              for r in read_results(REFERENCE_DIR) if r.get("epochs") and r["epochs"]["ran"] >= r["epochs"]["cap"]]
    assert not capped, "the reference run must train until early stopping, but these ran to their cap: " + \
        "; ".join(capped)


def _tolerance(name: str, same_machine: bool) -> tuple[float, bool]:
    """(tolerance, relative?) for a metric."""
    if same_machine:
        return SAME_MACHINE, False
    kind = metric_kind(name)
    from recsys_helpers.results import ERROR_METRICS, RATIO_METRICS

    if kind in RATIO_METRICS:
        return OTHER_MACHINE["ratio"], False
    if kind in ERROR_METRICS:
        return OTHER_MACHINE["error"], False
    return OTHER_MACHINE["other"], True


@pytest.mark.full
def test_re_executed_notebooks_record_the_committed_metrics():
    run_dir = os.environ.get("RECSYS_RUN_DIR")
    if not run_dir or not read_results(run_dir):
        pytest.skip("needs the full tier's run folder (make test-full executes the notebooks first)")
    committed = {(r["notebook"], r["model"], r["protocol"]): r for r in read_results(DEFAULT_DIR)}
    machines = {nb: t.get("machine") for nb, t in read_timings(DEFAULT_DIR).items()}
    here = machine_signature()
    problems, compared = [], 0
    for r in read_results(run_dir):
        if r["protocol"] == "systems":  # latencies and throughputs of this machine at this moment: not a result
            continue
        key = (r["notebook"], r["model"], r["protocol"])
        if key not in committed:
            problems.append(f"{key}: recorded now but not in notebooks/results.json (re-execute the notebook)")
            continue
        same = machines.get(r["notebook"]) == here
        for name, value in r["metrics"].items():
            old = committed[key]["metrics"].get(name)
            if old is None:
                problems.append(f"{key} {name}: not in notebooks/results.json")
                continue
            tol, relative = _tolerance(name, same)
            allowed = tol * max(abs(old), 1e-12) if relative else tol
            compared += 1
            if not math.isclose(value, old, rel_tol=0, abs_tol=allowed):
                problems.append(f"{key} {name}: committed {old:.6g}, now {value:.6g} (allowed ±{allowed:.2g}, "
                                f"{'same' if same else 'another'} machine)")
    assert compared, "nothing was compared"
    assert not problems, "re-executed metrics differ from the committed ones:\n" + "\n".join(problems[:30])
