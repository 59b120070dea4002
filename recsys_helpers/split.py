"""Train/test splits. Each takes a ratings frame and returns ``(train, test)`` with the original columns.

- ``stratified_split``: per user, a random ``test_frac`` of their ratings go to test; every user stays in
  train. The course's standard split (test_frac 0.2, seed 42) for rating and top-K protocols.
- ``random_split``: a random ``test_frac`` of all rows; some users may end up only in test.
- ``temporal_split``: everything after a global time cut-off goes to test (train on the past, test on the future).
- ``leave_last_out``: each user's last ``n`` interactions (time order) go to test; for sequential models.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .checks import require_columns, require_fraction, require_positive_int


def _by_mask(ratings: pd.DataFrame, test_mask: np.ndarray):
    return ratings[~test_mask].reset_index(drop=True), ratings[test_mask].reset_index(drop=True)


def stratified_split(ratings: pd.DataFrame, test_frac: float = 0.2, seed: int = 42):
    """Per user, put ``round(test_frac * n)`` random ratings in test, keeping at least one in train."""
    require_columns(ratings, ["user_id", "item_id"])
    test_frac = require_fraction(test_frac)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ratings))
    # rank of each row within its user in a random order; the first n_test ranks go to test
    shuffled_users = ratings["user_id"].to_numpy()[order]
    rank = np.empty(len(ratings), dtype=np.int64)
    rank[order] = pd.Series(shuffled_users).groupby(shuffled_users).cumcount().to_numpy()
    counts = ratings.groupby("user_id")["user_id"].transform("size").to_numpy()
    n_test = np.minimum(np.round(counts * test_frac).astype(np.int64), counts - 1)
    return _by_mask(ratings, rank < n_test)


def random_split(ratings: pd.DataFrame, test_frac: float = 0.2, seed: int = 42):
    """Put a uniformly random ``test_frac`` of all rows in test (users are not kept together)."""
    require_columns(ratings, ["user_id", "item_id"])
    test_frac = require_fraction(test_frac)
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(ratings), dtype=bool)
    mask[rng.permutation(len(ratings))[: int(round(len(ratings) * test_frac))]] = True
    return _by_mask(ratings, mask)


def temporal_split(ratings: pd.DataFrame, test_frac: float = 0.2):
    """Put the latest ``test_frac`` of all ratings (a global time cut-off) in test."""
    require_columns(ratings, ["user_id", "item_id", "timestamp"])
    test_frac = require_fraction(test_frac)
    cutoff = np.quantile(ratings["timestamp"].to_numpy(), 1.0 - test_frac, method="higher")
    return _by_mask(ratings, ratings["timestamp"].to_numpy() >= cutoff)


def leave_last_out(ratings: pd.DataFrame, n: int = 1):
    """Put each user's last ``n`` interactions in test (ties in time broken by row order); users with
    ``n`` or fewer interactions stay wholly in train."""
    require_columns(ratings, ["user_id", "item_id", "timestamp"])
    n = require_positive_int(n, "n")
    ordered = ratings.reset_index(drop=True).sort_values(["user_id", "timestamp"], kind="stable")
    from_end = ordered.groupby("user_id").cumcount(ascending=False).to_numpy()
    size = ordered.groupby("user_id")["user_id"].transform("size").to_numpy()
    mask = np.zeros(len(ratings), dtype=bool)
    mask[ordered.index.to_numpy()] = (from_end < n) & (size > n)
    return _by_mask(ratings.reset_index(drop=True), mask)
