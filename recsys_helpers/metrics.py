"""Rating and top-K ranking metrics, with the definitions the whole course uses.

Ranking metrics are called as ``f(recommended, relevant, k)``:

- ``recommended``: a 2-D integer array, one row per user, best item first (at least ``k`` columns);
- ``relevant``: a sequence (same length) of the relevant item ids of each user (a set, list or array).

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

import numpy as np


def _pair(y_true, y_pred):
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} values but y_pred has {y_pred.size}; they must align")
    if y_true.size == 0:
        raise ValueError("no ratings to score: y_true and y_pred are empty")
    if np.isnan(y_pred).any():
        raise ValueError(f"y_pred has {int(np.isnan(y_pred).sum())} NaN prediction(s); fill them (e.g. with the "
                         "global mean) before scoring")
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


def hit_matrix(recommended, relevant, k: int):
    """Return ``(hits, n_relevant)``: a boolean (users, k) matrix of hits and each user's relevant count, one row
    per user as given (a user without relevant items has no hits and a count of 0). Shared by every ranking
    metric."""
    top = _top_columns(recommended, k)
    if len(relevant) != top.shape[0]:
        raise ValueError(f"recommended has {top.shape[0]} rows but relevant has {len(relevant)} entries; "
                         "give one set of relevant items per user")
    hits = np.zeros(top.shape, dtype=bool)
    n_rel = np.zeros(top.shape[0], dtype=np.float64)
    for r, (row, rel) in enumerate(zip(top, relevant)):
        rel = rel if isinstance(rel, set) else set(np.asarray(list(rel)).tolist())
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


def precision_at_k(recommended, relevant, k: int = 10, per_user: bool = False):
    """Mean of (hits in top k) / k (``per_user=True``: one value per user, NaN where nothing is relevant)."""
    hits, n_rel = hit_matrix(recommended, relevant, k)
    return _finish(hits.sum(axis=1) / hits.shape[1], n_rel, per_user)


def recall_at_k(recommended, relevant, k: int = 10, per_user: bool = False):
    """Mean of (hits in top k) / (number of relevant items)."""
    hits, n_rel = hit_matrix(recommended, relevant, k)
    return _finish(hits.sum(axis=1) / np.maximum(n_rel, 1), n_rel, per_user)


def ndcg_at_k(recommended, relevant, k: int = 10, per_user: bool = False):
    """Mean NDCG@k with binary gains and discount 1/log2(rank+1); ideal DCG over min(relevant, k) hits."""
    hits, n_rel = hit_matrix(recommended, relevant, k)
    k = hits.shape[1]
    disc = _discounts(k)
    ideal = np.cumsum(disc)[np.clip(np.minimum(n_rel, k).astype(int) - 1, 0, None)]
    return _finish(hits @ disc / ideal, n_rel, per_user)


def hit_rate_at_k(recommended, relevant, k: int = 10, per_user: bool = False):
    """Fraction of users with at least one relevant item in their top k."""
    hits, n_rel = hit_matrix(recommended, relevant, k)
    return _finish(hits.any(axis=1).astype(np.float64), n_rel, per_user)


def map_at_k(recommended, relevant, k: int = 10, per_user: bool = False):
    """Mean average precision: sum of precision@r at each hit rank r <= k, divided by min(relevant, k)."""
    hits, n_rel = hit_matrix(recommended, relevant, k)
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
    inside = ranks <= k
    safe = np.where(inside, ranks, 1.0)
    return {f"hit_rate@{k}": inside.astype(np.float64),
            f"ndcg@{k}": np.where(inside, 1.0 / np.log2(safe + 1.0), 0.0),
            f"mrr@{k}": np.where(inside, 1.0 / safe, 0.0)}


def catalogue_coverage(recommended, n_items: int, k: int = 10) -> float:
    """Fraction of the catalogue's ``n_items`` items that appear in at least one user's top k."""
    top = _top_columns(recommended, k)
    if n_items <= 0:
        raise ValueError(f"n_items must be positive, got {n_items}")
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
