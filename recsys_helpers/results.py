"""Recording each model's metrics, and the course leaderboard built from them.

A notebook makes one ``Results("03_matrix_factorisation")`` and calls ``results.record(model, protocol,
metrics, train_seconds)`` once per model. The record shows as a table in the notebook and, when the notebook
runs inside a course run (the runner sets ``RECSYS_RUN_DIR``), lands in that folder's ``results.json``:
a list of ``{notebook, model, protocol, metrics, train_seconds}`` records, which the leaderboard reads. The runner's
``timings.json`` says how each notebook ended: the leaderboard marks the rows of notebooks that did not finish.

Fair comparisons (the course guide's "two profiles, one truth"):
- ``record(..., epochs=, budget=)``: a model trained by gradient descent records how many epochs it ran, its best
  epoch and its cap (a ``training.EpochLog``, or a ``ValidationCheck`` / ``RankingEarlyStopping`` after ``fit``);
  ``budget`` says in a few words what it was given. ``budget_table()`` lists them, and labels a model that ran to
  its cap "cut short by the budget".
- ``compare(boot, protocol, metric)`` stores a ``paired_bootstrap`` verdict in the run folder's ``comparisons.json``.
- Two committed run folders hold the course at both profiles: ``notebooks/`` (the laptop defaults, written by
  ``tools/nbbuild.py``) and ``notebooks/reference/`` (``make reference``). ``reference_table(protocol, metric)``
  shows a notebook's models in both, ``reference_verdicts()`` the verdicts of the reference run.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

RUN_DIR_ENV = "RECSYS_RUN_DIR"
RESULTS_FILE = "results.json"
COMPARISONS_FILE = "comparisons.json"
PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = PROJECT / "notebooks"  # the committed run of every notebook at its defaults (laptop profile)
REFERENCE_DIR = DEFAULT_DIR / "reference"  # the committed reference run (make reference)
# "systems": measurements of the systems around a model (a service's latency, an index's recall against exact search,
# a distributed run; notebook 10), not of recommendation quality: listed in their own table, never ranked
PROTOCOLS = ("rating", "ranking", "sequential", "cold-start", "sampled", "systems")
# the metric each protocol is ranked by (None: not ranked), and whether lower is better
PRIMARY_METRIC = {"rating": ("rmse", True), "ranking": ("ndcg@10", False), "sequential": ("ndcg@10", False),
                  "cold-start": ("ndcg@10", False), "sampled": ("ndcg@10", False), "systems": (None, False)}
# metrics (by their name before any "@k", any case) that are ratios in [0, 1], and errors that are >= 0
RATIO_METRICS = {"precision", "recall", "ndcg", "hit_rate", "map", "mrr", "coverage", "auc"}
ERROR_METRICS = {"rmse", "mae", "mse"}
# other spellings of those names (after metric_kind's clean-up)
METRIC_ALIASES = {"hr": "hit_rate", "hit": "hit_rate", "hits": "hit_rate", "hitrate": "hit_rate",
                  "hit_ratio": "hit_rate", "prec": "precision", "mean_average_precision": "map",
                  "mean_reciprocal_rank": "mrr", "catalogue_coverage": "coverage", "catalog_coverage": "coverage",
                  "item_coverage": "coverage", "roc_auc": "auc"}
RECORD_KEYS = {"notebook", "model", "protocol", "metrics"}
TIMINGS_FILE = "timings.json"
# notebook -> why its reference run is not committed yet (notebooks/reference/pending.json; tools/reference.py removes
# a notebook from it when its run finishes)
PENDING_FILE = "pending.json"


class BrokenRunFile(ValueError):
    """A run folder's results.json or timings.json that cannot be read; the message names the file and the fix."""


def metric_kind(name: str) -> str:
    """What a metric name measures, whatever its spelling: ``'NDCG@10'``, ``'ndcg_at_10'``, ``'ndcg10'`` and
    ``'ndcg@10 (test)'`` are ``'ndcg'``; ``'HR@10'``, ``'HitRate@5'`` and ``'hit rate'`` are ``'hit_rate'``. A name
    with more before its cut-off (``'difference from EASE, ndcg@10'``) is its own kind, not a ratio."""
    base = re.split(r"@|[\s_-]*at[\s_-]*(?:\d|k\b)|[\s_-]*\d", name.strip().lower(), maxsplit=1)[0]
    base = re.sub(r"[\s-]+", "_", base.strip())
    return METRIC_ALIASES.get(base, base)


def _number(value) -> float | None:
    """``value`` as a float if it is one real number (an int, a float, a NumPy scalar); None for anything else:
    True, None, an array, and text such as '5' (a formatted number, f'{x:.3f}', that lost its precision)."""
    try:
        arr = np.asarray(value)  # text is an array of kind 'U', True one of kind 'b', None one of kind 'O'
    except ValueError:  # a ragged list, such as [[1], [2, 3]]
        return None
    return float(arr) if arr.ndim == 0 and arr.dtype.kind in "iuf" else None


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
    for number, r in enumerate(records, 1):  # a hand-edited file: say which record is wrong, and how
        problem = _record_problem(r)
        if problem:
            raise BrokenRunFile(f"{path}: record {number} (notebook {r['notebook']!r}, model {r['model']!r}) "
                                f"{problem}; correct that record by hand, or {fix}")
    return records


def _record_problem(r: dict) -> str | None:
    """What is wrong with one stored record (None if nothing): names must be text, metrics a {name: number}
    object, train_seconds a number or null."""
    for key in ("notebook", "model", "protocol"):
        if not isinstance(r[key], str) or not r[key].strip():
            return f"has {key} {r[key]!r}, not a non-empty string"
    if not isinstance(r["metrics"], dict) or not r["metrics"]:
        return f"has metrics {r['metrics']!r}, not a {{name: number}} object"
    for name, value in r["metrics"].items():
        if _number(value) is None or not math.isfinite(_number(value)):
            return f"has metric {name!r} = {value!r}, not a finite number"
    seconds = r.get("train_seconds")
    if seconds is not None and _number(seconds) is None:
        return f"has train_seconds {seconds!r}, not a number or null"
    return None


def read_timings(run_dir) -> dict[str, dict]:
    """The runner's ``run_dir/timings.json``: notebook -> {status, seconds, parameters, ...} ({} if there is none)."""
    path = Path(run_dir) / TIMINGS_FILE
    if not path.exists():
        return {}
    timings = _read_json(path, "delete it (the leaderboard then shows no run times) or rerun into a new run folder")
    if not isinstance(timings, dict) or not all(isinstance(t, dict) for t in timings.values()):
        raise BrokenRunFile(f"{path} is not a {{notebook: {{status, seconds, ...}}}} object; delete it or rerun")
    return timings


def pending_reference(run_dir=None) -> dict[str, str]:
    """Notebooks whose reference run is not committed yet (``run_dir``, by default ``notebooks/reference/``):
    notebook -> the reason (``{}`` if none is pending)."""
    path = Path(run_dir if run_dir is not None else REFERENCE_DIR) / PENDING_FILE
    if not path.exists():
        return {}
    pending = _read_json(path, "fix it: it maps a notebook's name to why its reference run is not committed yet")
    if not isinstance(pending, dict) or not all(isinstance(v, str) and v for v in pending.values()):
        raise BrokenRunFile(f"{path} is not a {{notebook: reason}} object with a non-empty reason for each notebook")
    return pending


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
    """Drop ``notebook``'s records from ``run_dir/results.json`` and its verdicts from ``comparisons.json`` (the
    runner does it before running it again)."""
    records = read_results(run_dir)
    if any(r["notebook"] == notebook for r in records):
        write_json(Path(run_dir) / RESULTS_FILE, [r for r in records if r["notebook"] != notebook])
    found = read_comparisons(run_dir)
    if any(e["notebook"] == notebook for e in found):
        write_json(Path(run_dir) / COMPARISONS_FILE, [e for e in found if e["notebook"] != notebook])


def _check_name(what: str, name) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{what} must be a non-empty string, got {name!r}")


def _check_metric(model: str, name, value) -> float:
    _check_name(f"metric names of {model!r}", name)
    number = _number(value)
    if number is None:
        raise ValueError(f"metric {name!r} of {model!r} is {value!r}; record a number")
    value, kind = number, metric_kind(name)
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
    value = _number(seconds)
    if value is None or not math.isfinite(value) or value < 0:
        raise ValueError(f"train_seconds of {model!r} is {seconds!r}; pass a time in seconds (>= 0), or None "
                         "if it was not measured")
    return round(value, 3)


class Results:
    """The metrics one notebook records; see the module docstring."""

    def __init__(self, notebook: str, run_dir=None, profile: str = "laptop"):
        _check_name("notebook", notebook)
        if profile not in ("laptop", "reference"):
            raise ValueError(f"profile must be 'laptop' or 'reference', got {profile!r}")
        self.notebook, self.profile = notebook, profile
        self.run_dir = Path(run_dir) if run_dir else (Path(os.environ[RUN_DIR_ENV]) if os.environ.get(RUN_DIR_ENV) else None)
        self.records: list[dict] = []
        self._said_pending = False  # reference_table says once per notebook that no reference run is committed
        # the run folder, or the first of its parents that exists, must be a folder (record() creates the rest)
        first = next((p for p in [self.run_dir, *self.run_dir.parents] if p.exists()), None) if self.run_dir else None
        if first is not None and not first.is_dir():
            source = "run_dir" if run_dir else f"${RUN_DIR_ENV}"
            raise ValueError(f"{source} {self.run_dir}: {first} is a file, not a folder; name a folder for the "
                             f"run's {RESULTS_FILE} (it is created if missing)")

    def record(self, model: str, protocol: str, metrics: dict, train_seconds: float | None = None, *,
               epochs=None, budget: str | None = None) -> pd.DataFrame:
        """Record ``metrics`` (name -> number) of ``model`` under ``protocol``; return it as a one-row table.

        ``epochs``: for a model trained by gradient descent, its ``training.EpochLog`` (or a ``ValidationCheck`` or
        ``RankingEarlyStopping`` it was fitted with, or ``{"ran", "best", "cap"}``); ``budget``: a few words on what
        it was given ("2 candidates × ≤ 40 epochs")."""
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
               "train_seconds": _check_seconds(model, train_seconds), "profile": self.profile}
        if epochs is not None:
            rec["epochs"] = epoch_counts(epochs, model)
        if budget is not None:
            _check_name(f"budget of {model!r}", budget)
            rec["budget"] = budget
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

    def compare(self, boot: dict, protocol: str, metric: str) -> str:
        """Keep a ``paired_bootstrap`` result (its names, difference, interval and verdict) in the run folder's
        ``comparisons.json`` (so the other profile's notebook can show it); return its verdict."""
        if not isinstance(boot, dict) or not {"names", "diff", "low", "high", "verdict"} <= set(boot):
            raise TypeError("boot must be what evaluation.paired_bootstrap returned (a dict with names, diff, low, "
                            f"high and verdict), got {type(boot).__name__}")
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        _check_name("metric", metric)
        entry = {"notebook": self.notebook, "profile": self.profile, "protocol": protocol, "metric": metric,
                 "a": str(boot["names"][0]), "b": str(boot["names"][1]), "diff": float(boot["diff"]),
                 "low": float(boot["low"]), "high": float(boot["high"]), "n": int(boot.get("n", 0)),
                 "verdict": str(boot["verdict"])}
        key = lambda e: (e["notebook"], e["protocol"], e["metric"], e["a"], e["b"])  # noqa: E731
        if self.run_dir is not None:
            kept = [e for e in read_comparisons(self.run_dir) if key(e) != key(entry)]
            write_json(self.run_dir / COMPARISONS_FILE, kept + [entry])
        return entry["verdict"]

    def budget_table(self, protocol: str | None = None) -> pd.DataFrame:
        """Each recorded model's budget: training seconds, epochs run / best / cap, what stopped it ("early
        stopping", or "its cap: cut short by the budget") and the budget text it was recorded with."""
        rows = []
        for r in self.records:
            if protocol is not None and r["protocol"] != protocol:
                continue
            e = r.get("epochs")
            rows.append({"model": r["model"], "protocol": r["protocol"], "train seconds": r.get("train_seconds"),
                         "epochs run": e["ran"] if e else None, "best epoch": e["best"] if e else None,
                         "epoch cap": e["cap"] if e else None, "stopped by": stopped_by(e),
                         "budget": r.get("budget", "")})
        return pd.DataFrame(rows, columns=["model", "protocol", "train seconds", "epochs run", "best epoch",
                                           "epoch cap", "stopped by", "budget"]).astype(
            {"epochs run": "Int64", "best epoch": "Int64", "epoch cap": "Int64"})

    def reference_table(self, protocol: str, metric: str, models=None) -> pd.DataFrame:
        """This notebook's models under ``protocol`` in both profiles: the laptop value and the reference value of
        ``metric``, each with the epochs its model ran and its cap. This run's own records fill its profile's column;
        the other column comes from the committed run folder of the other profile (``notebooks/reference/`` or
        ``notebooks/``), and is empty where that run has no such model (or no run exists yet)."""
        other_dir, other = (REFERENCE_DIR, "reference") if self.profile == "laptop" else (DEFAULT_DIR, "laptop")
        try:
            committed = [r for r in read_results(other_dir) if r["notebook"] == self.notebook]
        except BrokenRunFile:
            committed = []
        if other == "reference" and not committed and not self._said_pending:
            self._said_pending = True
            reason = pending_reference().get(self.notebook, "no run of this notebook is in notebooks/reference/")
            print(f"No reference run of {self.notebook} is committed yet ({reason}): the reference columns are empty "
                  f"until `make reference ARGS={self.notebook[:2]}` fills them.")
        own = {r["model"]: r for r in self.records if r["protocol"] == protocol}
        theirs = {r["model"]: r for r in committed if r["protocol"] == protocol}
        names = list(models) if models is not None else list(own) + [m for m in theirs if m not in own]
        columns = {self.profile: own, other: theirs}
        rows = []
        for name in names:
            row = {"model": name}
            for label in ("laptop", "reference"):
                rec = columns[label].get(name)
                row[f"{label}: {metric}"] = rec["metrics"].get(metric) if rec else None
                e = rec.get("epochs") if rec else None
                row[f"{label}: epochs"] = (f"{e['ran']}/{e['cap']}" + (" (cap)" if e["ran"] >= e["cap"] else "")
                                           if e else "")
            rows.append(row)
        return pd.DataFrame(rows).round(4)

    def reference_verdicts(self, protocol: str | None = None) -> pd.DataFrame:
        """The verdicts the committed reference run stored for this notebook (``compare``), as a table."""
        try:
            found = [e for e in read_comparisons(REFERENCE_DIR) if e["notebook"] == self.notebook
                     and (protocol is None or e["protocol"] == protocol)]
        except BrokenRunFile:
            found = []
        return pd.DataFrame([{"metric": e["metric"], "A − B": f"{e['a']} − {e['b']}", "difference": e["diff"],
                              "95% low": e["low"], "95% high": e["high"], "verdict": e["verdict"].split(":")[0]}
                             for e in found], columns=["metric", "A − B", "difference", "95% low", "95% high",
                                                       "verdict"]).round(4)


def epoch_counts(epochs, model: str = "model") -> dict:
    """``{"ran", "best", "cap"}`` from a ``training.EpochLog``, a callback with a ``log`` (``ValidationCheck``,
    ``RankingEarlyStopping``, after ``fit``) or a dict; whole numbers with 1 <= best <= ran <= cap."""
    if hasattr(epochs, "log") and not isinstance(epochs, dict):
        epochs = epochs.log
    if not isinstance(epochs, dict):
        epochs = {k: getattr(epochs, k, None) for k in ("ran", "best", "cap")}
    counts = {k: _number(epochs.get(k)) for k in ("ran", "best", "cap")}
    if any(v is None or v != int(v) for v in counts.values()):
        raise ValueError(f"epochs of {model!r} must give whole numbers ran, best and cap, got {epochs!r}")
    counts = {k: int(v) for k, v in counts.items()}
    if not 1 <= counts["best"] <= counts["ran"] <= counts["cap"]:
        raise ValueError(f"epochs of {model!r}: need 1 <= best <= ran <= cap, got {counts}")
    return counts


def stopped_by(epochs: dict | None) -> str:
    """What ended a training run: "early stopping" before the cap, "its cap: cut short by the budget", or "" for a
    model without epochs."""
    if not epochs:
        return ""
    return "early stopping" if epochs["ran"] < epochs["cap"] else "its cap: cut short by the budget"


def read_comparisons(run_dir) -> list[dict]:
    """The verdicts in ``run_dir/comparisons.json`` (an empty list if there are none)."""
    path = Path(run_dir) / COMPARISONS_FILE
    if not path.exists():
        return []
    found = _read_json(path, "delete it, or rerun the notebooks into a new run folder")
    keys = {"notebook", "protocol", "metric", "a", "b", "diff", "low", "high", "verdict"}
    if not isinstance(found, list) or not all(isinstance(e, dict) and keys <= set(e) for e in found):
        raise BrokenRunFile(f"{path} is not a list of {sorted(keys)} entries; delete it or rerun the notebooks")
    return found


def records_frame(records: list[dict]) -> pd.DataFrame:
    """Records as a flat table: notebook, model, protocol, one column per metric, train_seconds, and (when a record
    has them) epochs as "ran/cap", marked "(cap)" when the cap ended training."""
    rows = []
    for r in records:
        row = {"notebook": r["notebook"], "model": r["model"], "protocol": r["protocol"], **r["metrics"],
               "train_seconds": r.get("train_seconds")}
        e = r.get("epochs")
        if e:
            row["epochs"] = f"{e['ran']}/{e['cap']}" + (" (cap)" if e["ran"] >= e["cap"] else "")
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    tail = [c for c in ("train_seconds", "epochs") if c in df.columns]
    return df[[c for c in df.columns if c not in tail] + tail].round(4)


def primary_metric(protocol: str) -> tuple[str | None, bool]:
    """The metric ``protocol`` is ranked by and whether lower is better; (None, False) for a protocol this course
    does not know (a record of an older or hand-edited results.json: listed as recorded, not ranked)."""
    return PRIMARY_METRIC.get(protocol, (None, False))


def leaderboard(records: list[dict], unfinished: dict[str, str] | None = None) -> dict[str, pd.DataFrame]:
    """One table per protocol, best model first by the protocol's primary metric. Rows of the ``unfinished``
    notebooks (notebook -> status) are marked, e.g. ``03_matrix_factorisation (interrupted)``. Records of a
    protocol that is not in ``PROTOCOLS`` get a table of their own, after the others, so no row is lost."""
    tables = {}
    df = records_frame(records)
    if df.empty:
        return tables
    marks = unfinished or {}
    df["notebook"] = [f"{nb} ({marks[nb]})" if nb in marks else nb for nb in df["notebook"]]
    found = set(df["protocol"])
    for protocol in [p for p in PROTOCOLS if p in found] + sorted(found - set(PROTOCOLS)):
        part = df[df["protocol"] == protocol].dropna(axis=1, how="all").drop(columns="protocol")
        metric, ascending = primary_metric(protocol)
        if metric in part:
            part = part.sort_values(metric, ascending=ascending, kind="stable")
        tables[protocol] = part.reset_index(drop=True)
    return tables


def _cell(value) -> str:
    """One markdown table cell: a '|' in a name would end the cell (and shift every later column), and a line
    break would end the row, so both are escaped."""
    text = "" if pd.isna(value) else (f"{value:.4f}" if isinstance(value, float) else str(value))
    return " ".join(text.splitlines()).replace("|", "\\|")


def _row(cells) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def leaderboard_markdown(tables: dict[str, pd.DataFrame], unfinished: dict[str, str] | None = None) -> str:
    lines = ["# Course leaderboard", ""]
    if unfinished:
        names = ", ".join(f"{_cell(nb)} ({status})" for nb, status in unfinished.items())
        lines += [f"**Incomplete run.** These notebooks did not finish: {names}. Their rows, marked so, are only the "
                  "models they recorded before stopping; the rest are missing. Rerun them for a full result.", ""]
    if not tables:
        return "\n".join(lines + ["No results were recorded.", ""])
    for protocol, table in tables.items():
        metric, lower = primary_metric(protocol)
        if metric:
            heading = f"## {protocol} protocol (sorted by {metric}, {'lower' if lower else 'higher'} is better)"
        elif protocol in PROTOCOLS:
            heading = f"## {protocol} (measurements of the systems around the models, not ranked)"
        else:
            heading = (f"## {_cell(protocol)} (not a protocol of this course: {', '.join(PROTOCOLS)}; listed as "
                       "recorded, not ranked)")
        cols = list(table.columns)
        lines += [heading, "", _row(cols), "|" + "|".join("---" for _ in cols) + "|"]
        lines += [_row(row) for _, row in table.iterrows()]
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
        rows.append(_row([name, seconds, parameters_label(t), status if status == "ok" else status.upper()]))
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
    fig = plot_leaderboard(marked, {p: primary_metric(p) for p in tables})
    fig.savefig(run_dir / "leaderboard.png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return tables
