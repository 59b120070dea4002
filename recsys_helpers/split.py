"""Train/test splits. Each takes a ratings frame and returns ``(train, test)`` with the original columns.

- ``stratified_split``: per user, a random ``test_frac`` of their ratings go to test; every user stays in
  train. The course's standard split (test_frac 0.2, seed 42) for rating and top-K protocols.
- ``random_split``: a random ``test_frac`` of all rows; some users may end up only in test.
- ``temporal_split``: everything after a global time cut-off goes to test (train on the past, test on the future).
- ``leave_last_out``: each user's last ``n`` interactions (time order) go to test (notebook 04's sampled protocol).
- ``sequential_split``: the sequential protocol (notebook 01, §7): each user's last 5 interactions are test events,
  the 5 before them validation events; returns a ``SequentialSplit``.
- ``cold_start_split``: the cold-start protocol (notebook 01, §8): a seeded 10% of the items with at least 5
  ratings become new, with all their ratings; returns a ``ColdStartSplit``.

Every split refuses duplicate (user, item) rows: they would land in train and test at once (notebook 01, §1 shows
how to remove them).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .checks import require_columns, require_fraction, require_positive_int, require_seed, require_time_order


def _require_unique_pairs(ratings: pd.DataFrame) -> None:
    dup = ratings.duplicated(["user_id", "item_id"])
    if dup.any():
        first = ratings.loc[dup, ["user_id", "item_id"]].iloc[0].tolist()
        raise ValueError(f"ratings has {int(dup.sum())} duplicate (user, item) row(s), e.g. user {first[0]}, item "
                         f"{first[1]}: a split could put one copy in train and the other in test. Keep one row per "
                         "pair first, e.g. ratings.sort_values('timestamp').drop_duplicates(['user_id', 'item_id'], "
                         "keep='last') (notebook 01, §1)")


def _by_mask(ratings: pd.DataFrame, test_mask: np.ndarray):
    return ratings[~test_mask].reset_index(drop=True), ratings[test_mask].reset_index(drop=True)


def stratified_split(ratings: pd.DataFrame, test_frac: float = 0.2, seed: int = 42):
    """Per user, put ``round(test_frac * n)`` random ratings in test, keeping at least one in train."""
    require_columns(ratings, ["user_id", "item_id"])
    _require_unique_pairs(ratings)
    test_frac, seed = require_fraction(test_frac), require_seed(seed)
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
    _require_unique_pairs(ratings)
    test_frac, seed = require_fraction(test_frac), require_seed(seed)
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(ratings), dtype=bool)
    mask[rng.permutation(len(ratings))[: int(round(len(ratings) * test_frac))]] = True
    return _by_mask(ratings, mask)


def temporal_split(ratings: pd.DataFrame, test_frac: float = 0.2):
    """Put the latest ``test_frac`` of all ratings in test: every rating at or after a global cut-off time, chosen so
    that the share in test is as close as possible to ``test_frac`` (ratings given at the same time stay together; a
    share more than 5 points away is an error)."""
    require_columns(ratings, ["user_id", "item_id", "timestamp"])
    _require_unique_pairs(ratings)
    test_frac = require_fraction(test_frac)
    ts = ratings["timestamp"].to_numpy(np.float64)
    if np.isnan(ts).any():
        raise ValueError(f"{int(np.isnan(ts).sum())} rating(s) have no timestamp; a temporal split needs every time: "
                         "drop or fill them first")
    if ts.min() == ts.max():
        raise ValueError("every rating has the same timestamp, so there is no past and future to split; use "
                         "stratified_split or random_split")
    times, counts = np.unique(ts, return_counts=True)
    share_from = np.cumsum(counts[::-1])[::-1] / len(ts)  # share of ratings at or after each distinct time
    cutoff = times[1:][np.argmin(np.abs(share_from[1:] - test_frac))]  # the closest share; train is never empty
    mask = ts >= cutoff  # ratings given at the same time stay together
    if abs(mask.mean() - test_frac) > 0.05:  # many ratings share few times: no cut-off comes close
        raise ValueError(f"test_frac={test_frac:g} was asked, but {mask.mean():.0%} of the ratings are at or after "
                         f"the cut-off time ({mask.sum():,} ratings share few distinct timestamps); a temporal split "
                         "cannot separate ratings given at the same time: use a test_frac close to that share, or "
                         "another split")
    return _by_mask(ratings, mask)


def leave_last_out(ratings: pd.DataFrame, n: int = 1):
    """Put each user's last ``n`` interactions in test (ties in time broken by row order); users with
    ``n`` or fewer interactions stay wholly in train."""
    require_columns(ratings, ["user_id", "item_id", "timestamp"])
    _require_unique_pairs(ratings)
    n = require_positive_int(n, "n")
    require_time_order(ratings)
    ordered = ratings.reset_index(drop=True).sort_values(["user_id", "timestamp"], kind="stable")
    from_end = ordered.groupby("user_id").cumcount(ascending=False).to_numpy()
    size = ordered.groupby("user_id")["user_id"].transform("size").to_numpy()
    mask = np.zeros(len(ratings), dtype=bool)
    mask[ordered.index.to_numpy()] = (from_end < n) & (size > n)
    return _by_mask(ratings.reset_index(drop=True), mask)


@dataclass
class SequentialSplit:
    """The sequential protocol's split (``split.sequential_split``): each user's last ``n_test`` interactions in
    time order are test events, the ``n_val`` before them validation events, the rest train."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame

    def events(self, which: str) -> pd.DataFrame:
        if which not in ("validation", "test"):
            raise ValueError(f"which must be 'validation' or 'test', got {which!r}")
        return self.validation if which == "validation" else self.test



def sequential_split(ratings: pd.DataFrame, n_test: int = 5, n_val: int = 5) -> SequentialSplit:
    """Each user's last ``n_test`` interactions in time order (ties by item id) become test events and the
    ``n_val`` before them validation events; everything earlier is train. A user with ``n_test + n_val`` or fewer
    interactions stays wholly in train (no events), so every user with events has some history."""
    from .interactions import time_ordered

    n_test, n_val = require_positive_int(n_test, "n_test"), require_positive_int(n_val, "n_val")
    _require_unique_pairs(ratings)
    require_columns(ratings, ["user_id", "item_id", "timestamp"])
    require_time_order(ratings)
    ordered = time_ordered(ratings)
    from_end = ordered.groupby("user_id").cumcount(ascending=False).to_numpy()
    size = ordered.groupby("user_id")["user_id"].transform("size").to_numpy()
    has_events = size > n_test + n_val
    test = has_events & (from_end < n_test)
    val = has_events & (from_end >= n_test) & (from_end < n_test + n_val)
    if not test.any():
        raise ValueError(f"no user has more than {n_test + n_val} interactions, so there are no events to predict")
    return SequentialSplit(ordered[~(test | val)].reset_index(drop=True), ordered[val].reset_index(drop=True),
                           ordered[test].reset_index(drop=True))


@dataclass
class ColdStartSplit:
    """The cold-start protocol's split (``split.cold_start_split``): ``new_items`` left training with all their
    ratings, which form ``test``; ``train`` holds every other rating."""

    train: pd.DataFrame
    test: pd.DataFrame
    new_items: np.ndarray



def cold_start_split(ratings: pd.DataFrame, frac: float = 0.1, min_ratings: int = 5, seed: int = 42) -> ColdStartSplit:
    """A seeded ``frac`` of the items with at least ``min_ratings`` ratings become "new": all their ratings leave
    train and form the test set."""
    require_columns(ratings, ["user_id", "item_id"])
    _require_unique_pairs(ratings)
    frac, min_ratings = require_fraction(frac, "frac"), require_positive_int(min_ratings, "min_ratings")
    seed = require_seed(seed)
    counts = ratings["item_id"].value_counts()
    eligible = np.sort(counts.index[counts >= min_ratings].to_numpy())
    n_new = int(round(frac * len(eligible)))
    if n_new == 0:
        raise ValueError(f"only {len(eligible)} item(s) have at least {min_ratings} ratings; {frac:.0%} of them is "
                         "no item at all")
    new_items = np.sort(np.random.default_rng(seed).choice(eligible, n_new, replace=False))
    is_new = ratings["item_id"].isin(new_items).to_numpy()
    train, test = _by_mask(ratings, is_new)
    return ColdStartSplit(train, test, new_items)
