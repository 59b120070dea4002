"""Refresh the lock file of exact versions, and environment.yml from it (``make lock``).

1. ``uv pip compile`` resolves ``pyproject.toml`` (with the ``dev`` extra) for Python 3.11 on every platform and
   writes ``requirements.lock``: every package at one exact version, with the sha256 of each of its files.
   ``make venv`` and ``.ci/run`` install exactly that (``uv pip sync --require-hashes``), so everyone gets the same
   numbers from the same versions.
2. ``environment.yml`` (for conda users) gets the same exact versions in its pip section.

Run it after changing a dependency's range in ``pyproject.toml`` (or to take newer releases), then ``make venv``,
re-execute the notebooks (``make notebooks``) and commit all three files: a new version can move a number.

Usage: python tools/lock.py [--check]   (--check: exit 1 if environment.yml does not match requirements.lock)
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
LOCK = PROJECT / "requirements.lock"
ENV_YML = PROJECT / "environment.yml"
COMPILE = ["pip", "compile", "pyproject.toml", "--extra", "dev", "--python-version", "3.11", "--universal",
           "--generate-hashes", "--no-header", "-o", "requirements.lock"]
HEADER = """# conda env create -f environment.yml && conda activate recsys-course
# conda provides Python and pip; the course and its dependencies install through pip, at the exact versions of
# requirements.lock (written by tools/lock.py from that file: do not edit the list by hand).
name: recsys-course
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
"""


def locked(text: str) -> list[str]:
    """``name==version`` lines (with their environment markers) of a lock file, without hashes or comments."""
    pins = []
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-\[\]]+==[^\s\\;]+)(\s*;\s*[^\\]+?)?\s*\\?$", line)
        if m:
            pins.append(m.group(1) + (f" ; {m.group(2).strip(' ;')}" if m.group(2) else ""))
    return pins


def environment_yml(pins: list[str]) -> str:
    return HEADER + "".join(f"      - \"{p}\"\n" for p in pins) + "      - -e .\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if not args.check:
        uv = shutil.which("uv", path=str(PROJECT / ".venv" / "bin")) or shutil.which("uv")
        if uv is None:
            sys.exit("uv is needed: `make venv` installs it into .venv, or `pip install uv`")
        header = "# The course's lock file: `make lock` (tools/lock.py) writes it with\n#    uv " + " ".join(COMPILE) + "\n"
        subprocess.run([uv, *COMPILE], cwd=PROJECT, check=True)
        LOCK.write_text(header + LOCK.read_text())
    expected = environment_yml(locked(LOCK.read_text()))
    if args.check:
        if ENV_YML.read_text() != expected:
            print("environment.yml does not match requirements.lock: run `make lock`")
            return 1
        return 0
    ENV_YML.write_text(expected)
    print(f"requirements.lock: {len(locked(LOCK.read_text()))} packages; environment.yml written from it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
