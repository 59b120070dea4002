"""``python -m recsys_helpers run``: execute the course's notebooks in order with papermill.

Each notebook runs in a fresh kernel, into a run folder (default ``runs/<date-time>``), with one progress bar
across all notebooks (one step per cell). A failing notebook is reported with its cell and error and the others
still run; the exit status is non-zero if anything failed. The run ends with the leaderboard.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from traitlets.config import Config

from .results import RUN_DIR_ENV, leaderboard_markdown, write_leaderboard

PROJECT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = PROJECT / "notebooks"
KERNEL_NAME = "python3"


def course_notebooks(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The course's notebooks in order (``NN_name.ipynb``)."""
    return sorted(p for p in Path(notebook_dir).glob("[0-9][0-9]_*.ipynb"))


def select(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    """Notebooks whose stem or number matches one of ``only`` (e.g. ``01`` or ``01_preprocessing``)."""
    if not only:
        return notebooks
    chosen = [nb for nb in notebooks if any(nb.stem == o or nb.stem.startswith(o) for o in only)]
    unknown = [o for o in only if not any(nb.stem == o or nb.stem.startswith(o) for nb in notebooks)]
    if unknown:
        names = ", ".join(nb.stem for nb in notebooks)
        raise SystemExit(f"error: no notebook matches {unknown}; the course has: {names}")
    return chosen


def parse_parameter(text: str) -> tuple[str, object]:
    """``NAME=VALUE``: VALUE is read as a Python literal (``3``, ``0.1``, ``True``, ``'ml-1m'``) or else a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"parameter {text!r} must look like NAME=VALUE, e.g. EPOCHS=3")
    name, raw = text.split("=", 1)
    if not name.isidentifier():
        raise argparse.ArgumentTypeError(f"parameter name {name!r} is not a valid Python name")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return name, value


def count_code_cells(path: Path) -> int:
    import nbformat

    return sum(1 for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


def execute(notebook: Path, out_dir: Path, parameters: dict, on_cell=None, cwd: Path = NOTEBOOK_DIR):
    """Run one notebook with papermill into ``out_dir``; return None on success or a one-line error."""
    import papermill as pm

    env_before = dict(os.environ)
    os.environ[RUN_DIR_ENV] = str(out_dir.resolve())
    sockets = tempfile.TemporaryDirectory(prefix="recsys-kernel-")
    # a local kernel over Unix sockets: no TCP ports, and no "running over TCP without encryption" warning
    config = Config({"KernelManager": {"transport": "ipc", "ip": f"{sockets.name}/kernel"}}) if os.name == "posix" else None
    try:
        pm.execute_notebook(str(notebook), str(out_dir / notebook.name), parameters=parameters,
                            kernel_name=KERNEL_NAME, progress_bar=False, cwd=str(cwd), config=config,
                            on_cell_executed=(lambda **_: on_cell()) if on_cell else None)
        return None
    except pm.PapermillExecutionError as err:
        first_line = next((ln for ln in err.source.splitlines() if ln.strip()), "")
        return f"cell {err.exec_count} (`{first_line.strip()[:60]}`): {err.ename}: {err.evalue}"
    except Exception as err:  # a kernel that died, a notebook that is not valid JSON, ...
        return f"{type(err).__name__}: {err}"
    finally:
        sockets.cleanup()
        os.environ.clear()
        os.environ.update(env_before)


def run(notebooks: list[Path], out_dir: Path, parameters: dict, smoke: bool = False,
        cwd: Path = NOTEBOOK_DIR) -> dict[str, str]:
    """Execute ``notebooks`` in order into ``out_dir``; return {notebook name: error} for those that failed.

    Run times land in ``out_dir/timings.json`` ({notebook: {seconds, smoke, ok}}), beside the leaderboard."""
    from tqdm.auto import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    params = dict(parameters)
    if smoke:
        params["SMOKE"] = True
    failures: dict[str, str] = {}
    timings_path = out_dir / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    cells = {nb: count_code_cells(nb) for nb in notebooks}
    with tqdm(total=sum(cells.values()), unit="cell", desc="course", dynamic_ncols=True) as bar:
        for nb in notebooks:
            bar.set_postfix_str(nb.stem)
            done_before = bar.n
            start = time.perf_counter()
            error = execute(nb, out_dir, params, on_cell=lambda: bar.update(1), cwd=cwd)
            bar.update(cells[nb] - (bar.n - done_before))  # skip the cells a failure left unrun
            seconds = time.perf_counter() - start
            timings[nb.stem] = {"seconds": round(seconds, 1), "smoke": smoke, "ok": error is None}
            timings_path.write_text(json.dumps(timings, indent=1))
            if error:
                failures[nb.stem] = error
                bar.write(f"FAILED {nb.stem} after {seconds:.0f} s at {error}")
            else:
                bar.write(f"ok     {nb.stem} in {seconds:.0f} s")
    return failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys_helpers", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="execute the course's notebooks and build the leaderboard")
    p_run.add_argument("--smoke", action="store_true", help="small, fast parameters (what the tests use)")
    p_run.add_argument("--only", nargs="+", metavar="NAME", help="run only these notebooks (e.g. 00 03_matrix)")
    p_run.add_argument("-p", "--parameter", action="append", default=[], type=parse_parameter, metavar="NAME=VALUE",
                       help="override a notebook parameter, e.g. -p EPOCHS=3 (repeatable)")
    p_run.add_argument("--out", type=Path, help="run folder (default runs/<date-time>)")
    p_run.add_argument("--notebook-dir", type=Path, default=NOTEBOOK_DIR, help=argparse.SUPPRESS)
    p_board = sub.add_parser("leaderboard", help="rebuild the leaderboard of a run folder")
    p_board.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)

    if args.command == "leaderboard":
        tables = write_leaderboard(args.run_dir)
        print(leaderboard_markdown(tables))
        return 0

    notebooks = select(course_notebooks(args.notebook_dir), args.only)
    out = args.out or PROJECT / "runs" / datetime.now().strftime("%Y%m%d-%H%M%S")
    failures = run(notebooks, out, dict(args.parameter), smoke=args.smoke, cwd=args.notebook_dir)
    tables = write_leaderboard(out)
    print()
    print(leaderboard_markdown(tables))
    print(f"Run folder: {out} (executed notebooks, results.json, leaderboard.md, leaderboard.png)")
    if failures:
        print(f"\n{len(failures)} of {len(notebooks)} notebook(s) failed:", file=sys.stderr)
        for name, error in failures.items():
            print(f"  {name}: {error}", file=sys.stderr)
        return 1
    return 0
