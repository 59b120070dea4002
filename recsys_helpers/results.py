"""Recording each model's metrics, and the course leaderboard built from them.

A notebook makes one ``Results("03_matrix_factorisation")`` and calls ``results.record(model, protocol,
metrics, train_seconds)`` once per model. The record shows as a table in the notebook and, when the notebook
runs inside a course run (the runner sets ``RECSYS_RUN_DIR``), lands in that folder's ``results.json``:
a list of ``{notebook, model, protocol, metrics, train_seconds}`` records, which the leaderboard reads. The runner's
``timings.json`` says how each notebook ended: the leaderboard marks the rows of notebooks that did not finish.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd

RUN_DIR_ENV = "RECSYS_RUN_DIR"
RESULTS_FILE = "results.json"
# "systems": measurements of the systems around a model (a service's latency, an index's recall against exact search,
# a distributed run; notebook 10), not of recommendation quality: listed in their own table, never ranked
PROTOCOLS = ("rating", "ranking", "sequential", "cold-start", "sampled", "systems")
# the metric each protocol is ranked by (None: not ranked), and whether lower is better
PRIMARY_METRIC = {"rating": ("rmse", True), "ranking": ("ndcg@10", False), "sequential": ("ndcg@10", False),
                  "cold-start": ("ndcg@10", False), "sampled": ("ndcg@10", False), "systems": (None, False)}
# metrics (by their name before any "@k", any case) that are ratios in [0, 1], and errors that are >= 0
RATIO_METRICS = {"precision", "recall", "ndcg", "hit_rate", "map", "mrr", "coverage"}
ERROR_METRICS = {"rmse", "mae"}
RECORD_KEYS = {"notebook", "model", "protocol", "metrics"}
TIMINGS_FILE = "timings.json"


class BrokenRunFile(ValueError):
    """A run folder's results.json or timings.json that cannot be read; the message names the file and the fix."""


def _read_json(path: Path, fix: str):
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:  # json's errors are ValueErrors
        raise BrokenRunFile(f"{path} is not valid JSON ({err}); {fix}") from None


def read_results(run_dir) -> list[dict]:
    """The records in ``run_dir/results.json`` (an empty list if there are none yet)."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.exists():
        return []
    fix = "delete it, or rerun the notebooks into a new run folder"
    records = _read_json(path, fix)
    if not isinstance(records, list) or not all(isinstance(r, dict) and RECORD_KEYS <= set(r) for r in records):
        raise BrokenRunFile(f"{path} is not a list of {sorted(RECORD_KEYS)} records; {fix}")
    return records


def read_timings(run_dir) -> dict[str, dict]:
    """The runner's ``run_dir/timings.json``: notebook -> {status, seconds, parameters, ...} ({} if there is none)."""
    path = Path(run_dir) / TIMINGS_FILE
    if not path.exists():
        return {}
    timings = _read_json(path, "delete it (the leaderboard then shows no run times) or rerun into a new run folder")
    if not isinstance(timings, dict) or not all(isinstance(t, dict) for t in timings.values()):
        raise BrokenRunFile(f"{path} is not a {{notebook: {{status, seconds, ...}}}} object; delete it or rerun")
    return timings


def status_of(timing: dict) -> str:
    """``ok``, ``failed``, ``interrupted`` or ``running`` (older run folders stored only ``ok: true/false``)."""
    return timing.get("status") or ("ok" if timing.get("ok") else "failed")


def unfinished(run_dir) -> dict[str, str]:
    """Notebooks of the run that did not finish: notebook -> status."""
    return {nb: status_of(t) for nb, t in read_timings(run_dir).items() if status_of(t) != "ok"}


def write_json(path: Path, data) -> None:
    """Write ``data`` as strict JSON (no NaN), atomically: a crash leaves the old file, and no temp file, behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # open() gives it the usual mode (0644 under umask 022)
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, allow_nan=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def forget(run_dir, notebook: str) -> None:
    """Drop ``notebook``'s records from ``run_dir/results.json`` (the runner does it before running it again)."""
    records = read_results(run_dir)
    if any(r["notebook"] == notebook for r in records):
        write_json(Path(run_dir) / RESULTS_FILE, [r for r in records if r["notebook"] != notebook])


def _check_name(what: str, name) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{what} must be a non-empty string, got {name!r}")


def _check_metric(model: str, name, value) -> float:
    _check_name(f"metric names of {model!r}", name)
    try:
        number = None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise ValueError(f"metric {name!r} of {model!r} is {value!r}; record a number")
    value, kind = number, name.lower().split("@")[0]
    if not math.isfinite(value):
        raise ValueError(f"metric {name!r} of {model!r} is {value}; a model that produced it has a bug")
    if kind in RATIO_METRICS and not -1e-9 <= value <= 1 + 1e-9:  # (a rounding error is not a bug)
        raise ValueError(f"metric {name!r} of {model!r} is {value}, but {kind} is a ratio in [0, 1]: "
                         "check how it was computed (a sum instead of a mean?)")
    if kind in ERROR_METRICS and value < 0:
        raise ValueError(f"metric {name!r} of {model!r} is {value}, but an error ({kind}) is never negative")
    return value


def _check_seconds(model: str, seconds) -> float | None:
    if seconds is None:
        return None
    try:
        value = None if isinstance(seconds, bool) else float(seconds)
    except (TypeError, ValueError):
        value = None
    if value is None or not math.isfinite(value) or value < 0:
        raise ValueError(f"train_seconds of {model!r} is {seconds!r}; pass a time in seconds (>= 0), or None "
                         "if it was not measured")
    return round(value, 3)


class Results:
    """The metrics one notebook records; see the module docstring."""

    def __init__(self, notebook: str, run_dir=None):
        _check_name("notebook", notebook)
        self.notebook = notebook
        self.run_dir = Path(run_dir) if run_dir else (Path(os.environ[RUN_DIR_ENV]) if os.environ.get(RUN_DIR_ENV) else None)
        self.records: list[dict] = []

    def record(self, model: str, protocol: str, metrics: dict, train_seconds: float | None = None) -> pd.DataFrame:
        """Record ``metrics`` (name -> number) of ``model`` under ``protocol``; return it as a one-row table."""
        _check_name("model", model)
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        try:
            metrics = dict(metrics)  # a dict, or a pandas Series of metrics
        except (TypeError, ValueError):
            metrics = {}
        if not metrics:
            raise ValueError("metrics is empty or not a dict: record at least one name -> number")
        clean = {name: _check_metric(model, name, value) for name, value in metrics.items()}
        rec = {"notebook": self.notebook, "model": model, "protocol": protocol, "metrics": clean,
               "train_seconds": _check_seconds(model, train_seconds)}
        key = (self.notebook, model, protocol)
        self.records = [r for r in self.records if (r["notebook"], r["model"], r["protocol"]) != key] + [rec]
        if self.run_dir is not None:
            stored = [r for r in read_results(self.run_dir) if (r["notebook"], r["model"], r["protocol"]) != key]
            write_json(self.run_dir / RESULTS_FILE, stored + [rec])
        return records_frame([rec]).drop(columns="notebook")

    def table(self, protocol: str | None = None) -> pd.DataFrame:
        """The records so far (of one ``protocol``, if given), one row per model and protocol."""
        chosen = [r for r in self.records if protocol is None or r["protocol"] == protocol]
        return records_frame(chosen).drop(columns="notebook", errors="ignore").dropna(axis=1, how="all")

    def get(self, model: str, protocol: str) -> dict:
        """The metrics recorded for ``model`` under ``protocol``."""
        for r in self.records:
            if r["model"] == model and r["protocol"] == protocol:
                return r["metrics"]
        raise KeyError(f"nothing recorded for model {model!r} under protocol {protocol!r}")


def records_frame(records: list[dict]) -> pd.DataFrame:
    """Records as a flat table: notebook, model, protocol, one column per metric, train_seconds."""
    rows = [{"notebook": r["notebook"], "model": r["model"], "protocol": r["protocol"], **r["metrics"],
             "train_seconds": r.get("train_seconds")} for r in records]
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    return df[[c for c in df.columns if c != "train_seconds"] + ["train_seconds"]].round(4)


def leaderboard(records: list[dict], unfinished: dict[str, str] | None = None) -> dict[str, pd.DataFrame]:
    """One table per protocol, best model first by the protocol's primary metric. Rows of the ``unfinished``
    notebooks (notebook -> status) are marked, e.g. ``03_matrix_factorisation (interrupted)``."""
    tables = {}
    df = records_frame(records)
    if df.empty:
        return tables
    marks = unfinished or {}
    df["notebook"] = [f"{nb} ({marks[nb]})" if nb in marks else nb for nb in df["notebook"]]
    for protocol in [p for p in PROTOCOLS if p in set(df["protocol"])]:
        part = df[df["protocol"] == protocol].dropna(axis=1, how="all").drop(columns="protocol")
        metric, ascending = PRIMARY_METRIC[protocol]
        if metric in part:
            part = part.sort_values(metric, ascending=ascending, kind="stable")
        tables[protocol] = part.reset_index(drop=True)
    return tables


def leaderboard_markdown(tables: dict[str, pd.DataFrame], unfinished: dict[str, str] | None = None) -> str:
    lines = ["# Course leaderboard", ""]
    if unfinished:
        names = ", ".join(f"{nb} ({status})" for nb, status in unfinished.items())
        lines += [f"**Incomplete run.** These notebooks did not finish: {names}. Their rows, marked so, are only the "
                  "models they recorded before stopping; the rest are missing. Rerun them for a full result.", ""]
    if not tables:
        return "\n".join(lines + ["No results were recorded.", ""])
    for protocol, table in tables.items():
        metric, lower = PRIMARY_METRIC[protocol]
        lines += [f"## {protocol} protocol (sorted by {metric}, {'lower' if lower else 'higher'} is better)" if metric
                  else f"## {protocol} (measurements of the systems around the models, not ranked)", ""]
        cols = list(table.columns)
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "|".join("---" for _ in cols) + "|")
        for _, row in table.iterrows():
            cells = ["" if pd.isna(v) else (f"{v:.4f}" if isinstance(v, float) else str(v)) for v in row]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def parameters_label(timing: dict) -> str:
    """What a notebook ran with, e.g. ``defaults``, ``smoke`` or ``smoke + DATASET='ml-100k'``."""
    return timing.get("parameters") or ("smoke" if timing.get("smoke") else "defaults")


def timings_markdown(run_dir) -> str:
    """The run times the runner wrote to ``run_dir/timings.json``, as a markdown table (empty if none)."""
    rows = []
    for name, t in read_timings(run_dir).items():
        seconds = "" if t.get("seconds") is None else f"{t['seconds']:.0f}"
        status = status_of(t)
        rows.append(f"| {name} | {seconds} | {parameters_label(t)} | {status if status == 'ok' else status.upper()} |")
    if not rows:
        return ""
    header = ["## Run times", "", "| notebook | seconds | parameters | status |", "|---|---|---|---|"]
    return "\n".join([*header, *rows, ""])


def write_leaderboard(run_dir) -> dict[str, pd.DataFrame]:
    """Write ``leaderboard.md`` (with the run times) and ``leaderboard.png`` into ``run_dir`` from its
    ``results.json`` and ``timings.json``; rows of notebooks that did not finish are marked."""
    from .plots import plot_leaderboard

    run_dir = Path(run_dir)
    stopped = unfinished(run_dir)
    tables = leaderboard(read_results(run_dir), stopped)
    (run_dir / "leaderboard.md").write_text(leaderboard_markdown(tables, stopped) + "\n" + timings_markdown(run_dir))
    # the chart marks the same rows, e.g. "MF (interrupted)  [03]"
    marked = {p: t.assign(model=t["model"] + [nb[nb.find(" ("):] if " (" in nb else "" for nb in t["notebook"]])
              for p, t in tables.items()}
    fig = plot_leaderboard(marked, PRIMARY_METRIC)
    fig.savefig(run_dir / "leaderboard.png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return tables
