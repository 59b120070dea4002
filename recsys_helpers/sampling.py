"""Negative sampling for implicit feedback (taught in notebook 04, §6 and exercise 1; used by notebooks 03 and 04).

``seen`` is always the binary (n_users, n_items) CSR matrix of what each user interacted with in training
(``interactions.train_index(train).seen``); no sampler ever returns a seen item.

- ``sample_negatives``: for each user, ``n`` items drawn uniformly or in proportion to popularity (counts to a
  power), redrawing only the draws that hit a seen item, vectorised over all users at once.
- ``sampled_candidates``: the 1 + 99 protocol of the NCF paper (notebook 04): ``n`` *distinct* unseen items per user.

The Keras data sources that redraw negatives every epoch are in ``training``.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .checks import require_positive_int


def pair_keys(seen: sp.csr_matrix) -> np.ndarray:
    """Sorted keys user * n_items + item of every seen pair."""
    coo = seen.tocoo()
    return np.unique(coo.row.astype(np.int64) * seen.shape[1] + coo.col)


def is_seen(keys: np.ndarray, n_items: int, users, items) -> np.ndarray:
    """For each (user, item) pair: is it among the seen pairs ``keys`` (from ``pair_keys``)?"""
    q = np.asarray(users, dtype=np.int64) * n_items + np.asarray(items, dtype=np.int64)
    if len(keys) == 0:
        return np.zeros(len(q), dtype=bool)
    pos = np.searchsorted(keys, q).clip(max=len(keys) - 1)
    return keys[pos] == q


def popularity_probabilities(seen: sp.csr_matrix, power: float = 1.0) -> np.ndarray:
    """Sampling probabilities proportional to each item's interaction count to ``power`` (0 = uniform)."""
    counts = np.asarray(seen.sum(axis=0), dtype=np.float64).ravel() ** float(power)
    if counts.sum() <= 0:
        raise ValueError("no item has any interaction, so popularity sampling is undefined")
    return counts / counts.sum()


def _check_users(seen: sp.csr_matrix, users, n: int) -> np.ndarray:
    if not sp.issparse(seen) or seen.ndim != 2:
        raise TypeError("seen must be the (n_users, n_items) sparse matrix of training interactions, e.g. "
                        "train_index(train).seen")
    users = np.asarray(users, dtype=np.int64).ravel()
    if len(users) and (users.min() < 0 or users.max() >= seen.shape[0]):
        raise IndexError(f"user indices must lie in 0..{seen.shape[0] - 1}")
    free = seen.shape[1] - np.diff(seen.tocsr().indptr)[users]
    if len(users) and free.min() < 1:
        raise ValueError(f"user index {users[free.argmin()]} has interacted with every item: there is no negative to "
                         "sample for them")
    return users


def sample_negatives(seen: sp.csr_matrix, users, n: int, rng: np.random.Generator, p: np.ndarray | None = None,
                     max_rounds: int = 50) -> np.ndarray:
    """A (len(users), n) array of item indices that each user has not interacted with.

    Draws uniformly (``p=None``) or with item probabilities ``p`` (e.g. ``popularity_probabilities(seen)``), with
    replacement, and redraws only the draws that hit a seen item. After ``max_rounds`` redraws (a user who has seen
    almost every likely item), the rest are drawn exactly from each user's unseen items."""
    n = require_positive_int(n, "n")
    users = _check_users(seen, users, n)
    n_items = seen.shape[1]
    if p is not None:
        p = np.asarray(p, dtype=np.float64)
        if p.shape != (n_items,) or (p < 0).any() or not np.isclose(p.sum(), 1.0):
            raise ValueError(f"p must be {n_items} non-negative probabilities that sum to 1")
    draw = (lambda size: rng.integers(0, n_items, size=size)) if p is None else (lambda size: rng.choice(n_items, size, p=p))
    keys = pair_keys(seen)
    rows = np.repeat(users, n)
    items = draw(len(rows))
    clash = is_seen(keys, n_items, rows, items)
    for _ in range(max_rounds):
        if not clash.any():
            break
        items[clash] = draw(int(clash.sum()))
        clash[clash] = is_seen(keys, n_items, rows[clash], items[clash])
    for j in np.flatnonzero(clash):  # exact fallback: rare, and only for users with very little left to draw
        free = np.setdiff1d(np.arange(n_items), seen[rows[j]].indices)
        weights = None if p is None else p[free]
        if weights is not None and weights.sum() <= 0:
            raise ValueError(f"user index {rows[j]} has no unseen item with a positive sampling probability")
        items[j] = rng.choice(free, p=None if weights is None else weights / weights.sum())
    return items.reshape(len(users), n)


def sampled_candidates(seen: sp.csr_matrix, users, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct items per user, uniformly among the items the user never interacted with: the negatives of
    the sampled (1 + n) protocol. Pass as ``seen`` every known interaction, held-out items included."""
    n = require_positive_int(n, "n")
    users = _check_users(seen, users, n)
    free = seen.shape[1] - np.diff(seen.tocsr().indptr)[users]
    if len(users) and free.min() < n:
        raise ValueError(f"user index {users[free.argmin()]} has only {free.min()} unseen item(s), fewer than the "
                         f"{n} distinct negatives asked for")
    keys = rng.random((len(users), seen.shape[1]))
    keys[seen.tocsr()[users].nonzero()] = np.inf  # never pick an item the user interacted with
    return np.argpartition(keys, n, axis=1)[:, :n] if n < seen.shape[1] else np.argsort(keys, axis=1)[:, :n]
