"""Rating and top-K ranking metrics, with the definitions the whole course uses.

Ranking metrics are called as ``f(recommended, relevant, k)``:

- ``recommended``: a 2-D integer array, one row per user, best item first (at least ``k`` columns);
- ``relevant``: a sequence (same length) of the relevant item ids of each user (a set, list or array). A pandas
  Series or a dict keyed by user is refused unless ``users=`` gives the user of each row of ``recommended``: it is then
  aligned on those users (a Series is otherwise read in its own order, which need not be the rows' order).

Each returns the mean over the users that have at least one relevant item (the others are skipped); with
``per_user=True`` it returns one value per user instead (NaN for a user without relevant items), the numbers a
paired bootstrap compares (``evaluation.paired_bootstrap``). For one
user with ``hits`` = relevant items among the top ``k`` and ``R`` = number of relevant items:

- precision@k = hits / k
- recall@k = hits / R
- NDCG@k = DCG / IDCG with binary gains, DCG = sum over hit ranks r (1-based) of 1 / log2(r + 1), and the ideal
  DCG = sum over r = 1 .. min(R, k) of 1 / log2(r + 1)
- hit rate@k = 1 if hits > 0 else 0
- MAP@k = (sum over hit ranks r <= k of precision@r) / min(R, k)
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .checks import require_positive_int


def _numbers(values, name: str) -> np.ndarray:
    """``values`` as a flat float array, or an error that names ``name`` (not numpy's "could not convert")."""
    try:
        return np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must hold numbers (ratings), got values numpy cannot read as numbers ({error})") \
            from None


def _pair(y_true, y_pred):
    y_true, y_pred = _numbers(y_true, "y_true"), _numbers(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} values but y_pred has {y_pred.size}; they must align")
    if y_true.size == 0:
        raise ValueError("no ratings to score: y_true and y_pred are empty")
    if np.isnan(y_true).any():
        raise ValueError(f"y_true has {int(np.isnan(y_true).sum())} NaN rating(s): the true ratings must all be known; "
                         "drop those rows before scoring")
    if np.isnan(y_pred).any():
        raise ValueError(f"y_pred has {int(np.isnan(y_pred).sum())} NaN prediction(s); fill them (e.g. with the "
                         "global mean) before scoring")
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if np.isinf(values).any():
            raise ValueError(f"{name} has {int(np.isinf(values).sum())} infinite value(s); a rating or a prediction "
                             "must be a finite number")
    return y_true, y_pred


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def check_k(k) -> int:
    """``k`` as an int: a positive whole number (``True`` and ``2.5`` are refused, ``2.0`` is taken as 2)."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, float, np.integer, np.floating)) or k != int(k) or k <= 0:
        raise ValueError(f"k must be a positive integer (a whole number of at least 1), got {k!r}")
    return int(k)


def _top_columns(recommended, k) -> np.ndarray:
    """The first ``k`` columns of a 2-D ``recommended`` array, after checking ``k`` and the shape."""
    k = check_k(k)
    recommended = np.asarray(recommended)
    if recommended.ndim != 2:
        raise ValueError(f"recommended must be 2-D (one row per user, best item first), got shape {recommended.shape}")
    if recommended.shape[1] < k:
        raise ValueError(f"recommended has only {recommended.shape[1]} columns; need at least k={k}")
    return recommended[:, :k]


def _aligned(relevant, users, n_rows: int) -> list:
    """``relevant`` as one entry per row of ``recommended``. A Series or dict keyed by user is looked up at
    ``users`` (the user of each row); without ``users`` it is refused, since zipping it by position would silently
    pair each list with another user's items whenever its order is not the rows' order."""
    keyed = isinstance(relevant, (pd.Series, Mapping))
    if keyed and users is None:
        kind = "a pandas Series" if isinstance(relevant, pd.Series) else "a dict"
        raise TypeError(f"relevant is {kind} keyed by user, but the rows of recommended are not labelled: pass "
                        "users=<the user id of each row of recommended> so it can be aligned, or pass a list in the "
                        "rows' order, e.g. relevant.reindex(users).tolist()")
    if users is not None:
        users = np.asarray(users)
        if users.ndim != 1 or len(users) != n_rows:
            raise ValueError(f"users must hold one user id per row of recommended ({n_rows}), got shape {users.shape}")
    if not keyed:
        if not hasattr(relevant, "__len__") or isinstance(relevant, (str, bytes, set)):
            raise TypeError(f"relevant must be a list with one collection of item ids per row of recommended, got "
                            f"{type(relevant).__name__}")
        return list(relevant)
    missing = [u for u in users.tolist() if u not in relevant]
    if missing:
        raise KeyError(f"{len(missing)} of the users have no entry in relevant, e.g. {missing[:5]}; give every user "
                       "an entry (set() for a user with nothing relevant), with ids of the same type")
    return [relevant[u] for u in users.tolist()]


def _as_set(rel, row: int) -> set:
    """One user's relevant items as a set; a scalar, a string or NaN in their place is an error, not letters or a
    crash inside ``list()``."""
    if isinstance(rel, set):
        return rel
    if isinstance(rel, (str, bytes)) or not hasattr(rel, "__iter__"):
        raise TypeError(f"relevant entry {row} is {rel!r} ({type(rel).__name__}), not a collection of item ids: give "
                        "one set of relevant items per user (set() for none), e.g. "
                        "test.groupby('user_id')['item_id'].agg(set).reindex(users).tolist()")
    return set(np.asarray(list(rel)).tolist())


def hit_matrix(recommended, relevant, k: int, users=None):
    """Return ``(hits, n_relevant)``: a boolean (users, k) matrix of hits and each user's relevant count, one row
    per user as given (a user without relevant items has no hits and a count of 0). Shared by every ranking
    metric. ``users``: the user of each row, needed (only) when ``relevant`` is a Series or dict keyed by user."""
    top = _top_columns(recommended, k)
    relevant = _aligned(relevant, users, top.shape[0])
    if len(relevant) != top.shape[0]:
        raise ValueError(f"recommended has {top.shape[0]} rows but relevant has {len(relevant)} entries; "
                         "give one set of relevant items per user")
    hits = np.zeros(top.shape, dtype=bool)
    n_rel = np.zeros(top.shape[0], dtype=np.float64)
    for r, (row, rel) in enumerate(zip(top, relevant)):
        rel = _as_set(rel, r)
        if not rel:
            continue
        _check_same_kind(row, rel)
        seen = set()
        for c, item in enumerate(row.tolist()):  # an item listed twice is one hit, at its first rank (recall, NDCG <= 1)
            hits[r, c] = item in rel and item not in seen
            seen.add(item)
        n_rel[r] = len(rel)
    if not n_rel.any():
        raise ValueError("no user has a relevant item, so ranking metrics are undefined")
    return hits, n_rel


def _check_same_kind(row: np.ndarray, rel: set) -> None:
    """Refuse relevant ids of another kind than the recommended ids ('3' versus 3 would match nothing)."""
    numeric_row = row.dtype.kind in "iuf"
    sample = next(iter(rel))
    if numeric_row != isinstance(sample, (int, float, np.integer, np.floating)) or isinstance(sample, bool):
        raise TypeError(f"relevant ids such as {sample!r} ({type(sample).__name__}) are not of the same kind as the "
                        f"recommended ids ({row.dtype}); convert one of them so that they can match")


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def _finish(values: np.ndarray, n_rel: np.ndarray, per_user: bool):
    """Per-user values (NaN for users without relevant items) or their mean over the users that have some."""
    values = np.where(n_rel > 0, values, np.nan)
    return values if per_user else float(np.nanmean(values))


def precision_at_k(recommended, relevant, k: int = 10, per_user: bool = False, users=None):
    """Mean of (hits in top k) / k (``per_user=True``: one value per user, NaN where nothing is relevant)."""
    hits, n_rel = hit_matrix(recommended, relevant, k, users)
    return _finish(hits.sum(axis=1) / hits.shape[1], n_rel, per_user)


def recall_at_k(recommended, relevant, k: int = 10, per_user: bool = False, users=None):
    """Mean of (hits in top k) / (number of relevant items)."""
    hits, n_rel = hit_matrix(recommended, relevant, k, users)
    return _finish(hits.sum(axis=1) / np.maximum(n_rel, 1), n_rel, per_user)


def ndcg_at_k(recommended, relevant, k: int = 10, per_user: bool = False, users=None):
    """Mean NDCG@k with binary gains and discount 1/log2(rank+1); ideal DCG over min(relevant, k) hits."""
    hits, n_rel = hit_matrix(recommended, relevant, k, users)
    k = hits.shape[1]
    disc = _discounts(k)
    ideal = np.cumsum(disc)[np.clip(np.minimum(n_rel, k).astype(int) - 1, 0, None)]
    return _finish(hits @ disc / ideal, n_rel, per_user)


def hit_rate_at_k(recommended, relevant, k: int = 10, per_user: bool = False, users=None):
    """Fraction of users with at least one relevant item in their top k."""
    hits, n_rel = hit_matrix(recommended, relevant, k, users)
    return _finish(hits.any(axis=1).astype(np.float64), n_rel, per_user)


def map_at_k(recommended, relevant, k: int = 10, per_user: bool = False, users=None):
    """Mean average precision: sum of precision@r at each hit rank r <= k, divided by min(relevant, k)."""
    hits, n_rel = hit_matrix(recommended, relevant, k, users)
    k = hits.shape[1]
    precision_at_rank = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return _finish((precision_at_rank * hits).sum(axis=1) / np.maximum(np.minimum(n_rel, k), 1), n_rel, per_user)


def rank_metrics(ranks, k: int = 10) -> dict[str, np.ndarray]:
    """Per-event HR@k, NDCG@k and MRR@k from the 1-based rank of the one relevant item of each event (``inf`` when
    it could not be ranked at all). With one relevant item, NDCG@k = 1/log2(rank + 1) and MRR@k = 1/rank inside
    the top k, 0 outside. Used by the sequential protocol."""
    k = check_k(k)
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.ndim != 1 or len(ranks) == 0:
        raise ValueError("ranks must be a non-empty 1-D array, one rank per event")
    if np.isnan(ranks).any() or (ranks < 1).any():
        raise ValueError("ranks must be 1-based (the best position is 1) and not NaN")
    fractional = ranks[np.isfinite(ranks) & (ranks != np.floor(ranks))]
    if len(fractional):
        raise ValueError(f"ranks must be whole numbers (a position in the list) or inf (not ranked), got e.g. "
                         f"{fractional[0]}; an average rank of ties is not a position: break ties in a random order, "
                         "as evaluate_sequential does")
    inside = ranks <= k
    safe = np.where(inside, ranks, 1.0)
    return {f"hit_rate@{k}": inside.astype(np.float64),
            f"ndcg@{k}": np.where(inside, 1.0 / np.log2(safe + 1.0), 0.0),
            f"mrr@{k}": np.where(inside, 1.0 / safe, 0.0)}


def catalogue_coverage(recommended, n_items: int, k: int = 10) -> float:
    """Fraction of the catalogue's ``n_items`` items that appear in at least one user's top k."""
    top = _top_columns(recommended, k)
    n_items = require_positive_int(n_items, "n_items (the size of the catalogue)")
    distinct = len(np.unique(top))
    if distinct > n_items:
        raise ValueError(f"the lists hold {distinct} distinct items but n_items is {n_items}: n_items must be the "
                         "size of the whole catalogue the lists were drawn from")
    return float(distinct / n_items)


RANKING_METRICS = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "hit_rate": hit_rate_at_k,
    "map": map_at_k,
}
