"""Beyond-accuracy metrics of top-K lists (notebook 09 teaches them): diversity, novelty, exposure, popularity bias,
calibration, and accuracy by user group.

Lists are passed as in ``metrics``: ``recommended`` is a 2-D array of item ids, one row per user, best first, with at
least ``k`` columns; only the first ``k`` count. Each per-list metric returns the mean over the lists, or with
``per_user=True`` one value per list (the numbers a paired bootstrap compares). Item attributes are looked up by
item id, so an id that the attribute table does not know raises a ``KeyError`` naming it rather than a wrong number.

- **Intra-list diversity** (ILD@k): the mean distance over the k(k−1)/2 pairs of a list. With binary features
  (genres) the distance is the Jaccard distance 1 − |A ∩ B| / |A ∪ B| (0 when both items have no feature); with
  real vectors (embeddings) it is the cosine distance 1 − cos(a, b).
- **Novelty@k**: the mean self-information −log₂ p(i) of the listed items, p(i) = the share of training users who
  interacted with item i (Zhou et al., 2010). An item no training user saw has unbounded novelty: it raises.
- **Exposure Gini**: the Gini index of how often each catalogue item appears in all the lists together (items never
  listed count as 0): 0 when every item is listed equally often, close to 1 when a few items take every slot.
- **Average recommendation popularity** (ARP@k): the mean number of training users of the listed items.
- **APLT@k** (average percentage of long-tail items): the share of a list that lies in the long tail, the items
  outside the head; ``long_tail`` defines the head as the ``head_share`` most popular items.
- **Calibration** (Steck, 2018): KL(p ‖ q̃) between the genre distribution p of a user's history and that of their
  list, q̃ = (1 − α) q + α p, where an item spreads one unit evenly over its genres; 0 when the list has the
  history's genre mix.
- **Accuracy by group**: ``activity_groups`` splits users into terciles (or ``n_groups`` groups) of training
  activity, and ``by_group`` averages any per-user values within each group.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .checks import require_columns
from .metrics import _top_columns


def _lookup(table: pd.DataFrame | pd.Series, item_ids: np.ndarray, what: str):
    """Rows of ``table`` (indexed by item id) for ``item_ids`` (any shape), as an array of shape ids.shape + row."""
    flat = np.asarray(item_ids).ravel()
    missing = ~np.isin(flat, table.index.to_numpy())
    if missing.any():
        raise KeyError(f"{int(missing.sum())} listed item id(s) have no {what}, e.g. {flat[missing][:5].tolist()}; "
                       f"the {what} table must cover every item a model can recommend")
    values = table.loc[flat].to_numpy()
    return values.reshape(np.asarray(item_ids).shape + values.shape[1:])


def _finish(values: np.ndarray, per_user: bool):
    return values if per_user else float(values.mean())


def item_popularity(train: pd.DataFrame) -> pd.Series:
    """The number of distinct training users of each item, indexed by item id."""
    require_columns(train, ["user_id", "item_id"], "train")
    return train.drop_duplicates(["user_id", "item_id"]).groupby("item_id").size().rename("users")


def intra_list_diversity(recommended, features: pd.DataFrame, k: int = 10, per_user: bool = False,
                         distance: str = "jaccard"):
    """ILD@k: the mean pairwise distance within each list. ``features``: one row per item id (binary columns for
    ``distance="jaccard"``, real vectors for ``distance="cosine"``)."""
    if distance not in ("jaccard", "cosine"):
        raise ValueError(f"distance must be 'jaccard' or 'cosine', got {distance!r}")
    lists = _top_columns(recommended, k)
    if lists.shape[1] < 2:
        raise ValueError("diversity needs lists of at least 2 items (k >= 2)")
    F = _lookup(features, lists, "features").astype(np.float64)  # users × k × d
    inner = np.einsum("ukd,uld->ukl", F, F)
    if distance == "jaccard":
        if not np.isin(F, (0.0, 1.0)).all():
            raise ValueError("the Jaccard distance needs binary (0/1) features; use distance='cosine' for vectors")
        size = F.sum(-1)
        union = size[:, :, None] + size[:, None, :] - inner
        dist = np.where(union > 0, 1.0 - inner / np.where(union > 0, union, 1.0), 0.0)
    else:
        norms = np.linalg.norm(F, axis=-1)
        if (norms == 0).any():
            raise ValueError("an item has an all-zero vector, whose cosine is undefined; drop it or use Jaccard")
        dist = 1.0 - inner / (norms[:, :, None] * norms[:, None, :])
    n = lists.shape[1]
    pairs = np.triu_indices(n, 1)
    return _finish(dist[:, pairs[0], pairs[1]].mean(1), per_user)


def novelty(recommended, popularity: pd.Series, n_users: int, k: int = 10, per_user: bool = False):
    """Novelty@k: the mean −log₂(popularity / n_users) of the listed items (``popularity``: ``item_popularity``)."""
    if n_users < 1:
        raise ValueError(f"n_users must be the number of training users (>= 1), got {n_users}")
    counts = _lookup(popularity, _top_columns(recommended, k), "popularity").astype(np.float64)
    if (counts <= 0).any():
        raise ValueError("a listed item has no training user: its self-information is infinite; recommend only "
                         "items seen in training, or smooth the popularity first")
    if (counts > n_users).any():
        raise ValueError(f"an item has more users ({int(counts.max())}) than n_users ({n_users}); pass the number of "
                         "training users")
    return _finish((-np.log2(counts / n_users)).mean(1), per_user)


def average_popularity(recommended, popularity: pd.Series, k: int = 10, per_user: bool = False):
    """ARP@k: the mean number of training users of the listed items."""
    counts = _lookup(popularity, _top_columns(recommended, k), "popularity").astype(np.float64)
    return _finish(counts.mean(1), per_user)


def long_tail(popularity: pd.Series, head_share: float = 0.2) -> set:
    """The long-tail items: all but the ``head_share`` most popular items (ties broken by item id)."""
    if not 0 <= head_share < 1:
        raise ValueError(f"head_share must be in [0, 1), got {head_share}")
    order = popularity.sort_index().sort_values(ascending=False, kind="stable").index
    n_head = int(round(head_share * len(order)))
    return set(order[n_head:].tolist())


def aplt(recommended, tail: set, k: int = 10, per_user: bool = False):
    """APLT@k: the share of each list that lies in ``tail`` (``long_tail``)."""
    lists = _top_columns(recommended, k)
    return _finish(np.isin(lists, list(tail)).mean(1), per_user)


def exposure_gini(recommended, catalogue, k: int = 10) -> float:
    """The Gini index of item exposure: how unevenly all the lists' slots are spread over the ``catalogue`` (item
    ids; items never listed count as 0). A listed item outside the catalogue raises."""
    lists = _top_columns(recommended, k).ravel()
    catalogue = np.unique(np.asarray(catalogue))
    pos = np.searchsorted(catalogue, lists).clip(0, max(len(catalogue) - 1, 0))
    if len(catalogue) == 0 or (catalogue[pos] != lists).any():
        raise KeyError("a listed item is not in the catalogue; pass every item id a model can recommend")
    x = np.sort(np.bincount(pos, minlength=len(catalogue)).astype(np.float64))
    n = len(x)
    return float(((2 * np.arange(1, n + 1) - n - 1) * x).sum() / (n * x.sum()))


def genre_distribution(items, genres: pd.Series, weights=None) -> pd.Series:
    """The genre distribution of some items: each item spreads its weight (1 by default) evenly over its genres
    (``genres``: a list of genres per item id); returns shares that sum to 1."""
    items = np.asarray(items)
    weights = np.ones(len(items)) if weights is None else np.asarray(weights, dtype=np.float64)
    lists = _lookup(genres, items, "genres")
    mass: dict = {}
    for item_genres, w in zip(lists, weights):
        if len(item_genres) == 0:
            continue
        for g in item_genres:
            mass[g] = mass.get(g, 0.0) + w / len(item_genres)
    total = sum(mass.values())
    if total <= 0:
        raise ValueError("none of these items has a genre; the genre distribution is undefined")
    return pd.Series(mass).sort_index() / total


def calibration_kl(recommended, histories, genres: pd.Series, k: int = 10, alpha: float = 0.01,
                   per_user: bool = False):
    """Steck's miscalibration: KL(p ‖ q̃) per user, p = the genre distribution of the user's history (a sequence of
    item ids per list), q̃ = (1 − α) q + α p with q that of the top-k list (both as in ``genre_distribution``)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1) so that the KL stays finite, got {alpha}")
    lists = _top_columns(recommended, k)
    if len(histories) != len(lists):
        raise ValueError(f"{len(histories)} histories for {len(lists)} lists; pass one history per list")
    lengths = np.array([len(h) for h in histories])
    flat_history = np.concatenate([np.asarray(h).ravel() for h in histories]) if lengths.sum() else np.empty(0)
    items, where = np.unique(np.concatenate([lists.ravel(), flat_history]), return_inverse=True)
    item_genres = _lookup(genres, items, "genres")
    names = sorted({g for gs in item_genres for g in gs})
    column = {g: c for c, g in enumerate(names)}
    shares = np.zeros((len(items), len(names)))  # each item spreads one unit evenly over its genres
    for r, gs in enumerate(item_genres):
        for g in gs:
            shares[r, column[g]] += 1.0 / len(gs)
    q = shares[where[:lists.size]].reshape(lists.shape + (len(names),)).sum(1)  # (lists, genres)
    owner = np.repeat(np.arange(len(lists)), lengths)
    p = np.zeros_like(q)
    np.add.at(p, owner, shares[where[lists.size:]])
    for mass in (p, q):
        total = mass.sum(1, keepdims=True)
        if (total <= 0).any():
            raise ValueError("none of the items of a history or list has a genre; the genre distribution is "
                             "undefined")
        mass /= total
    q_tilde = (1 - alpha) * q + alpha * p
    terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / np.where(p > 0, q_tilde, 1.0)), 0.0)
    return _finish(terms.sum(1), per_user)


def activity_groups(train: pd.DataFrame, n_groups: int = 3, labels=None) -> pd.Series:
    """Users split into ``n_groups`` groups of training activity (number of interactions), lightest first: a Series
    indexed by user id. Default labels for terciles: "light", "medium", "heavy"."""
    require_columns(train, ["user_id"], "train")
    if labels is None:
        labels = ["light", "medium", "heavy"] if n_groups == 3 else [f"group {g + 1}" for g in range(n_groups)]
    if len(labels) != n_groups:
        raise ValueError(f"{len(labels)} labels for {n_groups} groups")
    activity = train.groupby("user_id").size()
    ranks = activity.rank(method="first")  # ties broken by user order, so the groups have equal sizes
    return pd.qcut(ranks, n_groups, labels=labels).rename("activity group")


def by_group(values: pd.Series, groups: pd.Series) -> pd.Series:
    """The mean of per-user ``values`` (indexed by user id) within each group of ``groups``; users missing from
    ``groups`` raise rather than drop out silently."""
    missing = ~values.index.isin(groups.index)
    if missing.any():
        raise KeyError(f"{int(missing.sum())} user(s) have values but no group, e.g. "
                       f"{values.index[missing][:5].tolist()}")
    return values.groupby(groups.reindex(values.index), observed=True).mean()
