"""Rating and top-K ranking metrics, with the definitions the whole course uses.

Ranking metrics are called as ``f(recommended, relevant, k)``:

- ``recommended``: a 2-D integer array, one row per user, best item first (at least ``k`` columns);
- ``relevant``: a sequence (same length) of the relevant item ids of each user (a set, list or array).

Each returns the mean over the users that have at least one relevant item (the others are skipped). For one
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


def _top_columns(recommended, k: int) -> np.ndarray:
    """The first ``k`` columns of a 2-D ``recommended`` array, after checking ``k`` and the shape."""
    if int(k) != k or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    recommended = np.asarray(recommended)
    if recommended.ndim != 2:
        raise ValueError(f"recommended must be 2-D (one row per user, best item first), got shape {recommended.shape}")
    if recommended.shape[1] < k:
        raise ValueError(f"recommended has only {recommended.shape[1]} columns; need at least k={k}")
    return recommended[:, :k]


def hit_matrix(recommended, relevant, k: int):
    """Return ``(hits, n_relevant)``: a boolean (users, k) matrix of hits and each user's relevant count,
    for the users with at least one relevant item. Shared by every ranking metric."""
    top = _top_columns(recommended, k)
    if len(relevant) != top.shape[0]:
        raise ValueError(f"recommended has {top.shape[0]} rows but relevant has {len(relevant)} entries; "
                         "give one set of relevant items per user")
    rows, n_rel = [], []
    for row, rel in zip(top, relevant):
        rel = set(np.asarray(list(rel)).tolist()) if not isinstance(rel, set) else rel
        if rel:
            seen, row_hits = set(), []
            for item in row.tolist():  # an item listed twice is one hit, at its first rank (recall, NDCG <= 1)
                row_hits.append(item in rel and item not in seen)
                seen.add(item)
            rows.append(row_hits)
            n_rel.append(len(rel))
    if not rows:
        raise ValueError("no user has a relevant item, so ranking metrics are undefined")
    return np.asarray(rows, dtype=bool), np.asarray(n_rel, dtype=np.float64)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def precision_at_k(recommended, relevant, k: int = 10) -> float:
    """Mean of (hits in top k) / k."""
    hits, _ = hit_matrix(recommended, relevant, k)
    return float(np.mean(hits.sum(axis=1) / k))


def recall_at_k(recommended, relevant, k: int = 10) -> float:
    """Mean of (hits in top k) / (number of relevant items)."""
    hits, n_rel = hit_matrix(recommended, relevant, k)
    return float(np.mean(hits.sum(axis=1) / n_rel))


def ndcg_at_k(recommended, relevant, k: int = 10) -> float:
    """Mean NDCG@k with binary gains and discount 1/log2(rank+1); ideal DCG over min(relevant, k) hits."""
    hits, n_rel = hit_matrix(recommended, relevant, k)
    disc = _discounts(k)
    dcg = hits @ disc
    ideal = np.cumsum(disc)[np.minimum(n_rel, k).astype(int) - 1]
    return float(np.mean(dcg / ideal))


def hit_rate_at_k(recommended, relevant, k: int = 10) -> float:
    """Fraction of users with at least one relevant item in their top k."""
    hits, _ = hit_matrix(recommended, relevant, k)
    return float(np.mean(hits.any(axis=1)))


def map_at_k(recommended, relevant, k: int = 10) -> float:
    """Mean average precision: sum of precision@r at each hit rank r <= k, divided by min(relevant, k)."""
    hits, n_rel = hit_matrix(recommended, relevant, k)
    precision_at_rank = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return float(np.mean((precision_at_rank * hits).sum(axis=1) / np.minimum(n_rel, k)))


def catalogue_coverage(recommended, n_items: int, k: int = 10) -> float:
    """Fraction of the catalogue's ``n_items`` items that appear in at least one user's top k."""
    top = _top_columns(recommended, k)
    if n_items <= 0:
        raise ValueError(f"n_items must be positive, got {n_items}")
    return float(len(np.unique(top)) / n_items)


RANKING_METRICS = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "hit_rate": hit_rate_at_k,
    "map": map_at_k,
}
