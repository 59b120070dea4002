"""Mutation testing of ``recsys_helpers``: does a one-line bug make a unit test fail?

Each mutant in ``tools/mutants/*.txt`` (one file per module) is one line of the form

    module.py :: test_a.py test_b.py :: original text :: replacement text

(``#`` starts a comment; ``\\n`` in either text stands for a line break, ``<nothing>`` as the replacement deletes
the text). The original text must occur exactly once in ``recsys_helpers/module.py``. For each
mutant the tool copies the project's package and tests into a scratch folder, applies the one replacement there
(the working tree is never touched, so other work can go on), runs the listed test files with pytest (``-x``, unit
tests only), and reports the mutant KILLED (a test failed) or SURVIVED (every test passed). A mutant whose
original text is missing or ambiguous is reported STALE. Exit status 1 if fewer than ``--bar`` (90%) are killed.

Usage (from the project root, in the course's environment):
    python tools/mutate.py                       # every mutant in tools/mutants/
    python tools/mutate.py --only sampling.py    # the mutants of one module
    python tools/mutate.py --file my_mutants.txt
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT = PROJECT / "tools" / "mutants"


def parse(path: Path) -> list[dict]:
    """The mutants of one file, or of every ``*.txt`` file in a folder."""
    if path.is_dir():
        return [m for f in sorted(path.glob("*.txt")) for m in parse(f)]
    mutants = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split(" :: ")]
        if len(parts) != 4:
            raise SystemExit(f"{path}:{number}: expected 'module.py :: tests :: original :: replacement'")
        module, tests, old, new = (p.replace("\\n", "\n") for p in parts)
        mutants.append({"file": path.name, "line": number, "module": module, "tests": tests.split(), "old": old,
                        "new": "" if new == "<nothing>" else new})
    return mutants


def scratch_copy(root: Path) -> None:
    for name in ("recsys_helpers", "tests", "tools"):
        shutil.copytree(PROJECT / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("conftest.py", "pyproject.toml", "README.md", "Makefile", "environment.yml", "requirements.lock"):
        if (PROJECT / name).exists():
            shutil.copy2(PROJECT / name, root / name)
    (root / "notebooks").mkdir()


def run_one(mutant: dict, root: Path, timeout: float) -> tuple[str, str]:
    target = root / "recsys_helpers" / mutant["module"]
    original = (PROJECT / "recsys_helpers" / mutant["module"]).read_text()
    count = original.count(mutant["old"])
    if count != 1:
        return "STALE", f"the original text occurs {count} times in {mutant['module']}"
    target.write_text(original.replace(mutant["old"], mutant["new"]))
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg"}
    shared = PROJECT.parent / "shared" / "datasets"  # the scratch copy has no ../shared beside it
    if "RECSYS_DATA_DIR" not in env and shared.is_dir():
        env["RECSYS_DATA_DIR"] = str(shared)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not full and not notebooks",
           *[f"tests/{t}" for t in mutant["tests"]]]
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
        failed = proc.returncode != 0
        detail = next((ln for ln in proc.stdout.splitlines() if ln.startswith("FAILED") or "error" in ln.lower()),
                      proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "")
    except subprocess.TimeoutExpired:
        failed, detail = True, f"timed out after {timeout:.0f} s (counted as killed)"
    finally:
        target.write_text(original)
    return ("KILLED" if failed else "SURVIVED"), detail[:160]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT, help="a mutants file or folder (default tools/mutants)")
    parser.add_argument("--only", nargs="+", help="modules whose mutants to run (e.g. sampling.py)")
    parser.add_argument("--bar", type=float, default=0.9)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    mutants = [m for m in parse(args.file) if not args.only or m["module"] in args.only]
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        root = Path(tmp)
        scratch_copy(root)
        outcomes = {"KILLED": 0, "SURVIVED": 0, "STALE": 0}
        start = time.perf_counter()
        for m in mutants:
            outcome, detail = run_one(m, root, args.timeout)
            outcomes[outcome] += 1
            print(f"{outcome:8} {m['file']}:{m['line']} {m['module']}: {m['old'][:50]!r} -> {m['new'][:40]!r}"
                  + (f"  ({detail})" if outcome != "KILLED" else ""), flush=True)
    tried = outcomes["KILLED"] + outcomes["SURVIVED"]
    share = outcomes["KILLED"] / tried if tried else 1.0
    print(f"\n{outcomes['KILLED']} of {tried} mutants killed ({share:.0%}); {outcomes['STALE']} stale; "
          f"{time.perf_counter() - start:.0f} s")
    return 0 if share >= args.bar and not outcomes["STALE"] else 1


if __name__ == "__main__":
    sys.exit(main())
