"""Negative sampling for implicit feedback (taught in notebook 04, §6 and exercise 1; used by notebooks 03 and 04).

``seen`` is always the binary (n_users, n_items) matrix of what each user interacted with in training
(``interactions.train_index(train).seen``); no sampler ever returns a seen item. Any SciPy sparse format is accepted
(CSC, COO, ``csr_array`` …) and read as CSR, so a row is always one user's items.

- ``sample_negatives``: for each user, ``n`` items drawn uniformly or in proportion to popularity (counts to a
  power), redrawing only the draws that hit a seen item, vectorised over all users at once.
- ``sampled_candidates``: the 1 + 99 protocol of the NCF paper (notebook 04): ``n`` *distinct* unseen items per user.

The Keras data sources that redraw negatives every epoch are in ``training``.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .checks import require_finite, require_positive_int, require_rng


def _as_csr(seen) -> sp.csr_matrix:
    """``seen`` as a CSR matrix (rows = users), whatever its sparse format; anything else is refused."""
    if not sp.issparse(seen) or seen.ndim != 2:
        raise TypeError("seen must be the (n_users, n_items) sparse matrix of training interactions, e.g. "
                        f"train_index(train).seen, got {type(seen).__name__}")
    seen = sp.csr_matrix(seen)  # CSC's rows would be items; COO and csr_array cannot be indexed by row alike
    if not seen.has_canonical_format:  # a pair stored twice would count twice among a user's seen items
        seen = seen.copy()
        seen.sum_duplicates()
    return seen


def _as_indices(values, name: str) -> np.ndarray:
    """``values`` as an int64 array of indices; fractions (0.9 would become 0), bools (a mask is not a list of
    indices), NaN and text are refused, naming ``name``. Whole floats (2.0) are taken as ints."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu" and arr.size:
        whole = arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all()
        if not whole:
            raise TypeError(f"{name} must be integer indices (e.g. from IdMap.users), got {arr.dtype} values such "
                            f"as {arr.ravel()[:3].tolist()}; a boolean mask needs np.flatnonzero(mask) first")
    return arr.astype(np.int64, copy=False)


def pair_keys(seen: sp.csr_matrix) -> np.ndarray:
    """Sorted keys user * n_items + item of every seen pair."""
    coo = _as_csr(seen).tocoo()
    return np.unique(coo.row.astype(np.int64) * seen.shape[1] + coo.col)


def is_seen(keys: np.ndarray, n_items: int, users, items) -> np.ndarray:
    """For each (user, item) pair: is it among the seen pairs ``keys`` (from ``pair_keys``)?"""
    q = _as_indices(users, "users") * n_items + _as_indices(items, "items")
    if len(keys) == 0:
        return np.zeros(len(q), dtype=bool)
    pos = np.searchsorted(keys, q).clip(max=len(keys) - 1)
    return keys[pos] == q


def popularity_probabilities(seen: sp.csr_matrix, power: float = 1.0) -> np.ndarray:
    """Sampling probabilities proportional to each item's interaction count to ``power`` (0 = uniform; between 0
    and 1 flattens popularity, e.g. word2vec's 0.75)."""
    power = require_finite(power, "power")
    counts = np.asarray(_as_csr(seen).sum(axis=0), dtype=np.float64).ravel()
    if (counts < 0).any():
        raise ValueError("seen holds negative values: it must be the binary matrix of interactions")
    if power < 0 and (counts == 0).any():
        raise ValueError(f"power={power} is negative and item index {int(np.argmin(counts))} has no interaction: "
                         "0 ** power is infinite. Use power >= 0, or leave out the items nobody interacted with")
    counts = counts ** power
    if counts.sum() <= 0:
        raise ValueError("no item has any interaction, so popularity sampling is undefined")
    return counts / counts.sum()


def _check_users(seen: sp.csr_matrix, users) -> np.ndarray:
    users = _as_indices(users, "users").ravel()
    if len(users) and (users.min() < 0 or users.max() >= seen.shape[0]):
        raise IndexError(f"user indices must lie in 0..{seen.shape[0] - 1}")
    free = seen.shape[1] - np.diff(seen.indptr)[users]
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
    seen, n, rng = _as_csr(seen), require_positive_int(n, "n"), require_rng(rng, "rng")
    max_rounds = require_positive_int(max_rounds, "max_rounds", minimum=0)
    users = _check_users(seen, users)
    n_items = seen.shape[1]
    if p is not None:
        p = np.asarray(p, dtype=np.float64)
        if p.shape != (n_items,) or not np.isfinite(p).all() or (p < 0).any() or not np.isclose(p.sum(), 1.0):
            raise ValueError(f"p must be {n_items} finite, non-negative probabilities that sum to 1, e.g. "
                             f"popularity_probabilities(seen); got shape {p.shape}, sum {p.sum():.4g}")
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
    seen, n, rng = _as_csr(seen), require_positive_int(n, "n"), require_rng(rng, "rng")
    users = _check_users(seen, users)
    free = seen.shape[1] - np.diff(seen.indptr)[users]
    if len(users) and free.min() < n:
        raise ValueError(f"user index {users[free.argmin()]} has only {free.min()} unseen item(s), fewer than the "
                         f"{n} distinct negatives asked for")
    keys = rng.random((len(users), seen.shape[1]))
    rows = seen[users]  # every stored entry is a seen item, as in sample_negatives (an explicit 0 too)
    keys[np.repeat(np.arange(len(users)), np.diff(rows.indptr)), rows.indices] = np.inf  # never pick a seen item
    return np.argpartition(keys, n, axis=1)[:, :n] if n < seen.shape[1] else np.argsort(keys, axis=1)[:, :n]
