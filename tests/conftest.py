"""Shared, generic fixtures for the test suite.

- ``shared_data_dir``: the folder that holds an unmodified ``ml-latest-small/`` (``$RECSYS_DATA_DIR`` when it
  points at one, else the course's ``../shared/datasets``); tests that need it are skipped where it is absent.
- ``movielens``: ml-latest-small loaded once per session through ``RECSYS_DATA_DIR`` (never downloaded).
- ``standard_split``: the course's standard split of it, ``stratified_split(ratings, 0.2, 42)``.
- ``synthetic``: a small seeded ``make_synthetic`` data set.

Session fixtures return shared frames: a test that changes one works on a ``.copy()``.
Plots use matplotlib's Agg backend, so no test opens a window.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest  # the root conftest.py sets MPLBACKEND=Agg before anything imports matplotlib.pyplot

PROJECT = Path(__file__).resolve().parents[1]
DATASET = "ml-latest-small"


def _shared_data_dir() -> Path | None:
    candidates = [os.environ.get("RECSYS_DATA_DIR"), PROJECT.parent / "shared" / "datasets"]
    for folder in candidates:
        if folder and (Path(folder) / DATASET / "ratings.csv").is_file():
            return Path(folder).resolve()
    return None


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    folder = _shared_data_dir()
    if folder is None:
        pytest.skip(f"no copy of {DATASET} found: set RECSYS_DATA_DIR to a folder that holds {DATASET}/")
    return folder


@pytest.fixture(scope="session")
def movielens(shared_data_dir):
    from recsys_helpers.data import load_movielens

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSYS_DATA_DIR", str(shared_data_dir))
        return load_movielens(DATASET)


@pytest.fixture(scope="session")
def standard_split(movielens):
    from recsys_helpers.split import stratified_split

    return stratified_split(movielens.ratings, 0.2, 42)


@pytest.fixture(scope="session")
def synthetic():
    from recsys_helpers.data import make_synthetic

    return make_synthetic(n_users=200, n_items=300, ratings_per_user=30, seed=0)
