"""``python -m recsys_helpers run``: execute the course's notebooks in order with papermill.

Each notebook runs in a fresh kernel, into a run folder (default ``runs/<date-time>``), with one progress bar
across all notebooks (one step per cell). A failing notebook is reported with its cell and error and the others
still run; the exit status is 1 if anything failed, 2 for a wrong command line, 130 after Ctrl-C. The run ends
with the leaderboard, on which the rows of notebooks that did not finish are marked.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from traitlets.config import Config

from .results import (RESULTS_FILE, RUN_DIR_ENV, TIMINGS_FILE, BrokenRunFile, forget, read_results, read_timings,
                      write_json, write_leaderboard)

PROJECT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = PROJECT / "notebooks"
KERNEL_NAME = "python3"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
ANY = object()  # the "default" of a parameter that is not a plain literal (``PAPER_BATCH = NCF_BATCH``): any value goes


class UsageError(Exception):
    """A wrong command line or run folder: ``main`` prints the message (which says the fix) and exits with 2."""


def course_notebooks(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The course's notebooks in order (``NN_name.ipynb``)."""
    return sorted(p for p in Path(notebook_dir).glob("[0-9][0-9]_*.ipynb"))


def _matches(stem: str, selector: str) -> bool:
    """Whether ``selector`` names the notebook ``stem`` (``NN_name``): its number exactly (``01``), its whole stem, or
    the start of the stem with the number and its underscore (``01_pre``). A bare ``1`` or ``0`` is no prefix of
    ``10_...``: it would pick a notebook nobody meant."""
    number = stem.split("_", 1)[0]
    return selector in (number, stem) or (selector.startswith(number + "_") and stem.startswith(selector))


def _close_to(selector: str, notebooks: list[Path]) -> list[str]:
    """The notebooks ``selector`` was probably meant to name: the same number written otherwise (``1`` -> ``01``),
    stems that contain it (``matrix`` -> ``03_matrix_factorisation``), or stems spelt alike."""
    stems = [nb.stem for nb in notebooks]
    if selector.isdigit():
        return [n for n in (stem.split("_", 1)[0] for stem in stems) if n.isdigit() and int(n) == int(selector)]
    close = [stem for stem in stems if selector.lower() in stem.lower()]
    close += difflib.get_close_matches(selector, stems, n=2, cutoff=0.6)
    return list(dict.fromkeys(close))[:3]


def select(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    """Notebooks that one of ``only`` names: by number (``01``), by stem (``01_preprocessing_and_evaluation``) or
    by the start of the stem with its number (``01_pre``); anything else is a UsageError that suggests the notebook
    it may have meant."""
    if not only:
        return notebooks
    unknown = [o for o in only if not any(_matches(nb.stem, o) for nb in notebooks)]
    if unknown:
        problems = []
        for o in unknown:
            close = _close_to(o, notebooks)
            problems.append(f"no notebook matches {o!r}" + (f" (did you mean {' or '.join(close)}?)" if close else ""))
        names = ", ".join(nb.stem for nb in notebooks)
        raise UsageError("; ".join(problems) + f". Name a notebook by its number (01), its name or the start of its "
                         f"name with the number (01_pre); the course has: {names}")
    return [nb for nb in notebooks if any(_matches(nb.stem, o) for o in only)]


def parse_parameter(text: str) -> tuple[str, object]:
    """``NAME=VALUE``: VALUE is read as a Python literal (``3``, ``0.1``, ``True``, ``'ml-1m'``) or else a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"parameter {text!r} must look like NAME=VALUE, e.g. SEED=3")
    name, raw = text.split("=", 1)
    if not name.isidentifier():
        raise argparse.ArgumentTypeError(f"parameter name {name!r} is not a valid Python name")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        value = raw
    try:  # what timings.json can record: numbers, True/False, None, strings, lists and dicts of them
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{name}={raw}: the value must be a finite number, True/False, a string "
                                         "or a list of those") from None
    return name, value


def _code_cells(path: Path) -> list:
    import nbformat

    try:
        return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    except Exception:  # not a readable notebook: execute() reports that when the run reaches it
        return []


def count_code_cells(path: Path) -> int:
    return len(_code_cells(path))


def _statements(source: str) -> list[ast.stmt]:
    try:
        return ast.parse(source).body
    except SyntaxError:  # IPython magics (%matplotlib ...) are not Python
        return []


def _names_and_values(target: ast.expr, value: ast.expr | None):
    if isinstance(target, ast.Name):
        yield target.id, value
    elif isinstance(target, (ast.Tuple, ast.List)):  # A, B = 1, 2
        same = isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts)
        for i, t in enumerate(target.elts):
            yield from _names_and_values(t, value.elts[i] if same else None)


def notebook_parameters(path: Path) -> tuple[dict[str, object], set[str]]:
    """The parameters (name -> default) that ``path``'s cell tagged ``parameters`` assigns, and the names its
    ``if SMOKE:`` blocks (in the cells after it) assign: with ``--smoke`` these overwrite injected values."""
    cells = _code_cells(path)
    start = next((i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])), None)
    if start is None:
        return {}, set()
    defaults = {}
    for stmt in _statements(cells[start].source):
        targets = (stmt.targets if isinstance(stmt, ast.Assign) else
                   [stmt.target] if isinstance(stmt, ast.AnnAssign) else [])
        for target in targets:
            for name, value in _names_and_values(target, stmt.value):
                try:
                    defaults[name] = ast.literal_eval(value)
                except (ValueError, TypeError, SyntaxError):
                    defaults[name] = ANY
    smoke = set()
    for cell in cells[start + 1:]:
        for stmt in _statements(cell.source):
            if isinstance(stmt, ast.If) and isinstance(stmt.test, ast.Name) and stmt.test.id == "SMOKE":
                smoke |= {n.id for part in stmt.body for n in ast.walk(part)
                          if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return defaults, smoke


def _is_reference_test(test: ast.expr) -> bool:
    """``PROFILE == "reference"`` (either side)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(x, ast.Name) and x.id == "PROFILE" for x in sides)
            and any(isinstance(x, ast.Constant) and x.value == "reference" for x in sides))


def reference_names(path: Path) -> set[str]:
    """The names that ``path``'s ``if PROFILE == "reference":`` blocks assign: with ``-p PROFILE=reference`` these
    overwrite injected values, as the ``if SMOKE:`` block does with ``--smoke``."""
    names = set()
    for cell in _code_cells(path):
        for stmt in _statements(cell.source):
            if isinstance(stmt, ast.If) and _is_reference_test(stmt.test):
                names |= {n.id for part in stmt.body for n in ast.walk(part)
                          if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return names


def _fits(value, default) -> bool:
    """Whether ``value`` may replace ``default``: an int for an int (not True/False), an int or float for a float,
    True/False for a bool, a str for a str, a list for a list."""
    if default is ANY or default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _has(stems: list[str]) -> str:
    return f"{', '.join(stems)} {'has' if len(stems) == 1 else 'have'}"


def check_parameters(notebooks: list[Path], overrides: dict, smoke: bool) -> None:
    """Refuse, before anything runs, a ``-p`` name that a selected notebook lacks, a value unlike its default, and
    ``--smoke`` with a ``-p`` that the notebook's ``if SMOKE:`` block would overwrite (UsageError, every problem)."""
    if "SMOKE" in overrides:
        raise UsageError("use --smoke instead of -p SMOKE=...")
    info = {nb.stem: notebook_parameters(nb) for nb in notebooks}
    known = sorted({name for defaults, _ in info.values() for name in defaults})
    problems = []
    if smoke and (lacking := [stem for stem, (defaults, _) in info.items() if "SMOKE" not in defaults]):
        problems.append(f"--smoke: {_has(lacking)} no SMOKE parameter, so it would run at full size; "
                        "leave it out with --only, or drop --smoke")
    for name, value in overrides.items():
        lacking = [stem for stem, (defaults, _) in info.items() if name not in defaults]
        having = [stem for stem in info if stem not in lacking]
        if lacking:
            close = difflib.get_close_matches(name, [k for k in known if k != name], n=3, cutoff=0.5)
            text = f"-p {name}: {_has(lacking)} no parameter {name}"
            text += f" (did you mean {' or '.join(close)}?)" if close else ""
            if having:
                text += f"; only {_has(having)} it: pick notebooks with --only"
            elif len(lacking) == 1:
                own = [n for n in info[lacking[0]][0] if n != "SMOKE"]  # (SMOKE is set by --smoke)
                text += f"; its parameters are {', '.join(own) or 'none (no cell is tagged parameters)'}"
            problems.append(text)
        for stem in having:
            default = info[stem][0][name]
            if not _fits(value, default):
                hint = f" (a string: quote it, -p \"{name}='{value}'\")" if isinstance(default, str) else ""
                kind = type(default).__name__
                problems.append(f"-p {name}={value!r}: {name} takes {'an' if kind == 'int' else 'a'} {kind}{hint}, "
                                f"like its default {name} = {default!r} in {stem}")
                break
        clash = [stem for stem in having if smoke and name in info[stem][1]]
        if clash:
            problems.append(f"--smoke with -p {name}: the `if SMOKE:` cell of {', '.join(clash)} sets {name} after "
                            f"the injected parameters, so your value would be replaced. Drop --smoke (and set the "
                            f"small values you want with -p), or drop -p {name}")
    if "PROFILE" in overrides and overrides["PROFILE"] not in ("laptop", "reference"):
        problems.append(f"-p PROFILE={overrides['PROFILE']!r}: PROFILE is 'laptop' (the default) or 'reference'")
    if overrides.get("PROFILE") == "reference":
        for stem in info:
            clash = sorted((set(overrides) - {"PROFILE"}) & reference_names(next(nb for nb in notebooks
                                                                                  if nb.stem == stem)))
            if clash:
                problems.append(f"-p PROFILE=reference with -p {', '.join(clash)}: the `if PROFILE == \"reference\":` "
                                f"cell of {stem} sets {', '.join(clash)} after the injected parameters, so your value "
                                "would be replaced. Drop -p PROFILE=reference, or drop the other -p")
    if problems:
        raise UsageError("\n       ".join(problems))


def describe(overrides: dict, smoke: bool) -> str:
    """What a notebook runs with, for timings.json and the leaderboard: ``defaults``, ``smoke``,
    ``smoke + DATASET='ml-100k'``, ``SGD_EPOCHS=50``."""
    return " + ".join((["smoke"] if smoke else []) + [f"{k}={v!r}" for k, v in overrides.items()]) or "defaults"


def execute(notebook: Path, out_dir: Path, parameters: dict, on_cell=None, cwd: Path = NOTEBOOK_DIR):
    """Run one notebook with papermill into ``out_dir``; return None on success or a one-line error.

    Ctrl-C (KeyboardInterrupt) marks the executed notebook as interrupted, and is raised again."""
    import papermill as pm

    env_before = dict(os.environ)
    os.environ[RUN_DIR_ENV] = str(out_dir.resolve())
    # the kernel draws inline whatever backend this process uses (MPLBACKEND=Agg in CI and the tests would leave every
    # executed notebook without its figures)
    os.environ["MPLBACKEND"] = INLINE_BACKEND
    sockets = tempfile.TemporaryDirectory(prefix="recsys-kernel-")
    # a local kernel over Unix sockets: no TCP ports, and no "running over TCP without encryption" warning
    config = Config({"KernelManager": {"transport": "ipc", "ip": f"{sockets.name}/kernel"}}) if os.name == "posix" else None
    try:
        pm.execute_notebook(str(notebook), str(out_dir / notebook.name), parameters=parameters,
                            kernel_name=KERNEL_NAME, progress_bar=False, cwd=str(cwd), config=config,
                            shutdown_kernel="immediate",  # after the last cell (or Ctrl-C): no shutdown noise
                            on_cell_executed=(lambda **_: on_cell()) if on_cell else None)
        return None
    except pm.PapermillExecutionError as err:
        first_line = next((ln for ln in err.source.splitlines() if ln.strip()), "")
        return f"cell {err.exec_count} (`{first_line.strip()[:60]}`): {err.ename}: {err.evalue}"
    except KeyboardInterrupt:
        mark_interrupted(out_dir / notebook.name)
        raise
    except Exception as err:  # a kernel that died, a notebook that is not valid JSON, ...
        return f"{type(err).__name__}: {err}"
    finally:
        sockets.cleanup()
        os.environ.clear()
        os.environ.update(env_before)


def mark_interrupted(path: Path) -> None:
    """Papermill saves an interrupted notebook as completed: say at its top, and in its metadata, that it is not."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # interrupted before papermill wrote it
        return
    nb.metadata.setdefault("papermill", {}).update(exception=True, status="interrupted")
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        if cell.execution_count is None:
            cell.metadata.setdefault("papermill", {})["status"] = "pending"
    last = max((c.execution_count for c in code if c.execution_count is not None), default=None)
    banner = nbformat.v4.new_markdown_cell(f"**Interrupted (Ctrl-C)** during or after cell [{last}]: this notebook "
                                           "did not finish, and the cells without an execution count did not run.")
    nb.cells.insert(0, banner)
    nbformat.write(nb, path)


def run(notebooks: list[Path], out_dir: Path, parameters: dict, smoke: bool = False,
        cwd: Path = NOTEBOOK_DIR) -> dict[str, str]:
    """Execute ``notebooks`` in order into ``out_dir``; return {notebook name: error} for those that failed.

    Bad parameters or ``out_dir`` raise UsageError before anything runs. ``out_dir/timings.json`` gets, per
    notebook, ``{status, seconds, parameters, smoke, overrides}``: status ``running`` while it runs, then ``ok``,
    ``failed`` or ``interrupted`` (Ctrl-C, which is raised again); ``parameters`` reads e.g. ``smoke + SEED=1``.
    A notebook's earlier records in ``results.json`` are dropped before it runs again."""
    from tqdm.auto import tqdm

    check_parameters(notebooks, parameters, smoke)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file, not a folder: name a new folder or an earlier run folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create the run folder {out_dir} ({err.strerror}): choose another --out") from None
    timings, _ = read_timings(out_dir), read_results(out_dir)  # a broken file stops the run before it starts
    params = {**parameters, **({"SMOKE": True} if smoke else {})}
    failures: dict[str, str] = {}
    cells = {nb: count_code_cells(nb) for nb in notebooks}
    with tqdm(total=sum(cells.values()), unit="cell", desc="course", dynamic_ncols=True) as bar:
        for nb in notebooks:
            bar.set_postfix_str(nb.stem)
            done_before = bar.n
            entry = timings[nb.stem] = {"status": "running", "seconds": None, "parameters": describe(parameters, smoke),
                                        "smoke": smoke, "overrides": parameters}
            write_json(out_dir / TIMINGS_FILE, timings)
            start = time.perf_counter()
            try:
                forget(out_dir, nb.stem)  # rows of an earlier run of this notebook in this folder
                error = execute(nb, out_dir, params, on_cell=lambda: bar.update(1), cwd=cwd)
            except KeyboardInterrupt:
                entry.update(status="interrupted", seconds=round(time.perf_counter() - start, 1))
                write_json(out_dir / TIMINGS_FILE, timings)
                bar.write(f"INTERRUPTED {nb.stem} after {entry['seconds']:.0f} s")
                raise
            bar.update(cells[nb] - (bar.n - done_before))  # skip the cells a failure left unrun
            seconds = time.perf_counter() - start
            entry.update(status="failed" if error else "ok", seconds=round(seconds, 1))
            write_json(out_dir / TIMINGS_FILE, timings)
            if error:
                failures[nb.stem] = error
                bar.write(f"FAILED {nb.stem} after {seconds:.0f} s at {error}")
            else:
                bar.write(f"ok     {nb.stem} in {seconds:.0f} s")
    return failures


def _leaderboard(run_dir: Path) -> None:
    """Write and print the leaderboard of ``run_dir``."""
    write_leaderboard(run_dir)
    print((run_dir / "leaderboard.md").read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys_helpers", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="execute the course's notebooks and build the leaderboard")
    p_run.add_argument("--smoke", action="store_true", help="small, fast parameters (what the tests use)")
    p_run.add_argument("--only", nargs="+", metavar="NAME",
                       help="run only these notebooks, by number or by the start of the name with its number "
                            "(e.g. 00 03_matrix)")
    p_run.add_argument("-p", "--parameter", action="append", default=[], type=parse_parameter, metavar="NAME=VALUE",
                       help="override a notebook parameter, e.g. -p SEED=1 (repeatable; not with --smoke for a "
                            "name the notebook's `if SMOKE:` cell sets)")
    p_run.add_argument("--out", type=Path, help="run folder (default runs/<date-time>)")
    p_run.add_argument("--notebook-dir", type=Path, default=NOTEBOOK_DIR, help=argparse.SUPPRESS)
    p_board = sub.add_parser("leaderboard", help="rebuild the leaderboard of a run folder")
    p_board.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "leaderboard":
            if not any((args.run_dir / name).is_file() for name in (RESULTS_FILE, TIMINGS_FILE)):
                raise UsageError(f"{args.run_dir} is not a run folder (no {RESULTS_FILE} or {TIMINGS_FILE} in it): "
                                 "name a folder that `run` wrote, such as runs/<date-time>")
            _leaderboard(args.run_dir)
            return 0
        return _run(args)
    except (UsageError, BrokenRunFile) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(args) -> int:
    names = [name for name, _ in args.parameter]
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise UsageError(f"-p {', '.join(twice)} given more than once: give each parameter once")
    notebooks = course_notebooks(args.notebook_dir)
    if not notebooks:
        raise UsageError(f"no notebooks named NN_name.ipynb in {args.notebook_dir}")
    notebooks = select(notebooks, args.only)
    out = args.out or PROJECT / "runs" / datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        failures = run(notebooks, out, dict(args.parameter), smoke=args.smoke, cwd=args.notebook_dir)
    except KeyboardInterrupt:
        if (out / TIMINGS_FILE).is_file():
            _leaderboard(out)
        print(f"\nInterrupted (Ctrl-C): the run in {out} is incomplete, and its leaderboard says so.", file=sys.stderr)
        return 130
    print()
    _leaderboard(out)
    print(f"Run folder: {out} (executed notebooks, results.json, timings.json, leaderboard.md, leaderboard.png)")
    if failures:
        print(f"\n{len(failures)} of {len(notebooks)} notebook(s) failed:", file=sys.stderr)
        for name, error in failures.items():
            print(f"  {name}: {error}", file=sys.stderr)
        return 1
    return 0
