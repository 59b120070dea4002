"""Recording each model's metrics, and the course leaderboard built from them.

A notebook makes one ``Results("03_matrix_factorisation")`` and calls ``results.record(model, protocol,
metrics, train_seconds)`` once per model. The record shows as a table in the notebook and, when the notebook
runs inside a course run (the runner sets ``RECSYS_RUN_DIR``), lands in that folder's ``results.json``:
a list of ``{notebook, model, protocol, metrics, train_seconds}`` records, which the leaderboard reads.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import pandas as pd

RUN_DIR_ENV = "RECSYS_RUN_DIR"
RESULTS_FILE = "results.json"
PROTOCOLS = ("rating", "ranking", "sequential", "cold-start", "sampled")
# the metric each protocol is ranked by, and whether lower is better
PRIMARY_METRIC = {"rating": ("rmse", True), "ranking": ("ndcg@10", False), "sequential": ("ndcg@10", False),
                  "cold-start": ("ndcg@10", False), "sampled": ("ndcg@10", False)}


def read_results(run_dir) -> list[dict]:
    """The records in ``run_dir/results.json`` (an empty list if there are none yet)."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.exists():
        return []
    return json.loads(path.read_text())


def _write_atomically(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        try:
            json.dump(records, tmp, indent=1)
        except BaseException:
            tmp.close()
            os.unlink(tmp.name)  # a failed write leaves neither a damaged results.json nor a stray temp file
            raise
    os.replace(tmp.name, path)


class Results:
    """The metrics one notebook records; see the module docstring."""

    def __init__(self, notebook: str, run_dir=None):
        self.notebook = notebook
        self.run_dir = Path(run_dir) if run_dir else (Path(os.environ[RUN_DIR_ENV]) if os.environ.get(RUN_DIR_ENV) else None)
        self.records: list[dict] = []

    def record(self, model: str, protocol: str, metrics: dict, train_seconds: float | None = None) -> pd.DataFrame:
        """Record ``metrics`` (name -> number) of ``model`` under ``protocol``; return it as a one-row table."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        if not metrics:
            raise ValueError("metrics is empty: record at least one number")
        clean = {}
        for name, value in metrics.items():
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"metric {name!r} of {model!r} is {value}; a model that produced it has a bug")
            clean[name] = value
        rec = {"notebook": self.notebook, "model": model, "protocol": protocol, "metrics": clean,
               "train_seconds": None if train_seconds is None else round(float(train_seconds), 3)}
        key = (self.notebook, model, protocol)
        self.records = [r for r in self.records if (r["notebook"], r["model"], r["protocol"]) != key] + [rec]
        if self.run_dir is not None:
            stored = [r for r in read_results(self.run_dir) if (r["notebook"], r["model"], r["protocol"]) != key]
            _write_atomically(self.run_dir / RESULTS_FILE, stored + [rec])
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


def leaderboard(records: list[dict]) -> dict[str, pd.DataFrame]:
    """One table per protocol, best model first by the protocol's primary metric."""
    tables = {}
    df = records_frame(records)
    if df.empty:
        return tables
    for protocol in [p for p in PROTOCOLS if p in set(df["protocol"])]:
        part = df[df["protocol"] == protocol].dropna(axis=1, how="all").drop(columns="protocol")
        metric, ascending = PRIMARY_METRIC[protocol]
        if metric in part:
            part = part.sort_values(metric, ascending=ascending, kind="stable")
        tables[protocol] = part.reset_index(drop=True)
    return tables


def leaderboard_markdown(tables: dict[str, pd.DataFrame]) -> str:
    lines = ["# Course leaderboard", ""]
    if not tables:
        return "\n".join(lines + ["No results were recorded.", ""])
    for protocol, table in tables.items():
        metric, lower = PRIMARY_METRIC[protocol]
        lines += [f"## {protocol} protocol (sorted by {metric}, {'lower' if lower else 'higher'} is better)", ""]
        cols = list(table.columns)
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "|".join("---" for _ in cols) + "|")
        for _, row in table.iterrows():
            cells = ["" if pd.isna(v) else (f"{v:.4f}" if isinstance(v, float) else str(v)) for v in row]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def timings_markdown(run_dir) -> str:
    """The run times the runner wrote to ``run_dir/timings.json``, as a markdown table (empty if none)."""
    path = Path(run_dir) / "timings.json"
    if not path.exists():
        return ""
    rows = [f"| {name} | {t['seconds']:.0f} | {'smoke' if t['smoke'] else 'defaults'} | {'ok' if t['ok'] else 'FAILED'} |"
            for name, t in json.loads(path.read_text()).items()]
    return "\n".join(["## Run times", "", "| notebook | seconds | parameters | status |", "|---|---|---|---|", *rows, ""])


def write_leaderboard(run_dir) -> dict[str, pd.DataFrame]:
    """Write ``leaderboard.md`` (with the run times) and ``leaderboard.png`` into ``run_dir`` from its
    ``results.json``."""
    from .plots import plot_leaderboard

    run_dir = Path(run_dir)
    tables = leaderboard(read_results(run_dir))
    (run_dir / "leaderboard.md").write_text(leaderboard_markdown(tables) + "\n" + timings_markdown(run_dir))
    fig = plot_leaderboard(tables, PRIMARY_METRIC)
    fig.savefig(run_dir / "leaderboard.png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return tables
