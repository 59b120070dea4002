"""Beyond-accuracy metrics of top-K lists (notebook 09 teaches them): diversity, novelty, exposure, popularity bias,
calibration, and accuracy by user group.

Lists are passed as in ``metrics``: ``recommended`` is a 2-D array of item ids, one row per user, best first, with at
least ``k`` columns; only the first ``k`` count. Each per-list metric returns the mean over the lists, or with
``per_user=True`` one value per list (the numbers a paired bootstrap compares). Item attributes are looked up by
item id, so an id that the attribute table does not know raises a ``KeyError`` naming it rather than a wrong number.

What the functions take, and refuse rather than misread:

- attribute tables (``features``, ``popularity``, ``genres``) are pandas objects indexed by item id, one row per item,
  with no NaN or infinite number in the rows a list uses;
- a collection of ids (``aplt``'s ``tail``, ``exposure_gini``'s ``catalogue``, ``genre_distribution``'s ``items``,
  each history of ``calibration_kl``) is a set, list, array or Index. A pandas Series is refused, because its values
  (counts, say) and its index (the ids) could both be meant: pass ``set(s.index)`` or ``s.to_numpy()``. Ids of
  another kind than the listed ones (``'3'`` against ``3``) are refused too: they would match nothing;
- ``genres`` holds a list (tuple, set) of genre names per item, as ``load_movielens`` gives, never the raw
  ``'Comedy|Drama'`` string, whose letters would become genres.

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

from .checks import require_columns, require_finite, require_finite_array, require_positive_int
from .metrics import _top_columns

_TABLES = {"features": "one row per item, e.g. the binary item × genre matrix or pd.DataFrame(vectors, index=item_ids)",
           "popularity": "e.g. item_popularity(train); pd.Series(d) turns a dict into one",
           "genres": "a list of genre names per item, e.g. items.set_index('item_id')['genres']"}


def _table(table, what: str, kind=pd.Series):
    """``table`` if it is a ``kind`` (Series or DataFrame) indexed by item id with each id once."""
    if not isinstance(table, kind):
        raise TypeError(f"{what} must be a pandas {kind.__name__} indexed by item id ({_TABLES[what]}), got "
                        f"{type(table).__name__}")
    if table.index.has_duplicates:
        repeated = table.index[table.index.duplicated()].unique()[:5].tolist()
        raise ValueError(f"{what} has repeated item ids in its index, e.g. {repeated}; keep one row per item")
    return table


def _lookup(table: pd.DataFrame | pd.Series, item_ids: np.ndarray, what: str, kind=pd.Series):
    """Rows of ``table`` (indexed by item id) for ``item_ids`` (any shape), as an array of shape ids.shape + row."""
    table = _table(table, what, kind)
    flat = np.asarray(item_ids).ravel()
    missing = ~np.isin(flat, table.index.to_numpy())
    if missing.any():
        raise KeyError(f"{int(missing.sum())} listed item id(s) have no {what}, e.g. {flat[missing][:5].tolist()}; "
                       f"the {what} table must cover every item a model can recommend")
    values = table.loc[flat].to_numpy()
    return values.reshape(np.asarray(item_ids).shape + values.shape[1:])


def _is_numeric(values: np.ndarray) -> bool:
    """Whether ``values`` are numbers (ints or floats, not bools), also inside an object array."""
    if values.dtype.kind == "O":
        return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
                   for v in values.ravel())
    return values.dtype.kind in "iuf"


def _ids(ids, name: str, numeric: bool | None = None) -> np.ndarray:
    """``ids`` (a set, list, array or Index of item ids) as a 1-D array. A Series or dict is refused (its values and
    its index could both be meant), and so are ids that are numbers where ``numeric`` (the listed ids' kind) says
    they are not, or the other way round ('3' versus 3 would match nothing)."""
    if isinstance(ids, (pd.Series, pd.DataFrame, dict)):
        raise TypeError(f"{name} must be a set, list or array of item ids, got a {type(ids).__name__}, whose values "
                        f"(counts, say) could be taken for ids; pass set(x.index) if its index holds the ids, or "
                        f"x.to_numpy() if its values do")
    values = np.asarray(list(ids) if isinstance(ids, (set, frozenset)) else ids)
    if values.ndim != 1:
        raise TypeError(f"{name} must be a flat collection of item ids (a set, list or 1-D array), got "
                        f"{repr(ids)[:60]}")
    if numeric is not None and len(values) and _is_numeric(values) != numeric:
        sample = values.tolist()[0]
        raise TypeError(f"{name} holds ids such as {sample!r} ({type(sample).__name__}), not of the same kind as the "
                        f"recommended ids, which are {'numbers' if numeric else 'not numbers'}; convert one of them "
                        "so that they can match")
    return values


def _lists(recommended, k) -> np.ndarray:
    """The first ``k`` columns of ``recommended``, refusing no lists at all and NaN ids."""
    lists = _top_columns(recommended, k)
    if len(lists) == 0:
        raise ValueError("recommended has no lists (0 rows); pass one row of item ids per user")
    if lists.dtype.kind == "f" and np.isnan(lists).any():
        raise ValueError("recommended holds NaN item ids; every slot of the top k must be an item id")
    return lists


def _popularity(popularity: pd.Series, lists: np.ndarray) -> np.ndarray:
    """The training-user counts of the listed items (finite and >= 0), as floats of the lists' shape."""
    counts = require_finite_array(_lookup(popularity, lists, "popularity"), "popularity")
    if (counts < 0).any():
        raise ValueError("popularity holds negative counts; pass the number of training users of each item "
                         "(item_popularity(train))")
    return counts


def _finish(values: np.ndarray, per_user: bool):
    return values if per_user else float(values.mean())


def item_popularity(train: pd.DataFrame) -> pd.Series:
    """The number of distinct training users of each item, indexed by item id."""
    require_columns(train, ["user_id", "item_id"], "train")
    return train.drop_duplicates(["user_id", "item_id"]).groupby("item_id").size().rename("users")


def intra_list_diversity(recommended, features: pd.DataFrame, k: int = 10, per_user: bool = False,
                         distance: str = "jaccard"):
    """ILD@k: the mean pairwise distance within each list. ``features``: a DataFrame with one row per item id
    (binary columns for ``distance="jaccard"``, real vectors for ``distance="cosine"``)."""
    if distance not in ("jaccard", "cosine"):
        raise ValueError(f"distance must be 'jaccard' or 'cosine', got {distance!r}")
    lists = _lists(recommended, k)
    if lists.shape[1] < 2:
        raise ValueError("diversity needs lists of at least 2 items (k >= 2)")
    F = require_finite_array(_lookup(features, lists, "features", pd.DataFrame), "features")  # users × k × d
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
    """Novelty@k: the mean −log₂(popularity / n_users) of the listed items (``popularity``: ``item_popularity``;
    ``n_users``: the number of training users, a whole number)."""
    n_users = require_positive_int(n_users, "n_users")
    counts = _popularity(popularity, _lists(recommended, k))
    if (counts <= 0).any():
        raise ValueError("a listed item has no training user: its self-information is infinite; recommend only "
                         "items seen in training, or smooth the popularity first")
    if (counts > n_users).any():
        raise ValueError(f"an item has more users ({int(counts.max())}) than n_users ({n_users}); pass the number of "
                         "training users")
    return _finish((-np.log2(counts / n_users)).mean(1), per_user)


def average_popularity(recommended, popularity: pd.Series, k: int = 10, per_user: bool = False):
    """ARP@k: the mean number of training users of the listed items."""
    return _finish(_popularity(popularity, _lists(recommended, k)).mean(1), per_user)


def long_tail(popularity: pd.Series, head_share: float = 0.2) -> set:
    """The long-tail items: all but the ``head_share`` most popular items (ties broken by item id)."""
    head_share = require_finite(head_share, "head_share")
    if not 0 <= head_share < 1:
        raise ValueError(f"head_share must be in [0, 1), got {head_share}")
    require_finite_array(_table(popularity, "popularity").to_numpy(), "popularity")
    order = popularity.sort_index().sort_values(ascending=False, kind="stable").index
    n_head = int(round(head_share * len(order)))
    return set(order[n_head:].tolist())


def aplt(recommended, tail: set, k: int = 10, per_user: bool = False):
    """APLT@k: the share of each list that lies in ``tail`` (``long_tail``: a set, list or array of item ids; a
    Series is refused, since its values would be read as ids: pass ``set(s.index)``)."""
    lists = _lists(recommended, k)
    return _finish(np.isin(lists, _ids(tail, "tail", _is_numeric(lists))).mean(1), per_user)


def exposure_gini(recommended, catalogue, k: int = 10) -> float:
    """The Gini index of item exposure: how unevenly all the lists' slots are spread over the ``catalogue`` (item
    ids, e.g. ``IdMap.item_ids``; items never listed count as 0). A listed item outside the catalogue raises."""
    lists = _lists(recommended, k).ravel()
    catalogue = np.unique(_ids(catalogue, "catalogue", _is_numeric(lists)))
    pos = np.searchsorted(catalogue, lists).clip(0, max(len(catalogue) - 1, 0))
    if len(catalogue) == 0 or (catalogue[pos] != lists).any():
        raise KeyError("a listed item is not in the catalogue; pass every item id a model can recommend")
    x = np.sort(np.bincount(pos, minlength=len(catalogue)).astype(np.float64))
    n = len(x)
    return float(((2 * np.arange(1, n + 1) - n - 1) * x).sum() / (n * x.sum()))


def _genre_lists(genres: pd.Series, items: np.ndarray) -> np.ndarray:
    """The genre lists of ``items`` (an object array), refusing an entry that is not a list of genre names."""
    lists = _lookup(genres, items, "genres")
    for item, names in zip(np.ravel(items).tolist(), lists.ravel()):
        if not isinstance(names, (list, tuple, set, frozenset, np.ndarray)):
            raise TypeError(f"genres must hold a list of genre names per item, got {names!r} for item {item}; split "
                            "a 'Comedy|Drama' string first (genres.str.split('|')) and use [] for no genre")
    return lists


def genre_distribution(items, genres: pd.Series, weights=None) -> pd.Series:
    """The genre distribution of some items: each item spreads its weight (1 by default; one finite weight >= 0
    per item) evenly over its genres (``genres``: a list of genres per item id); returns shares that sum to 1."""
    items = _ids(items, "items")
    if weights is None:
        weights = np.ones(len(items))
    else:
        weights = require_finite_array(weights, "weights")
        if weights.shape != items.shape:
            raise ValueError(f"weights has {weights.size} value(s) for {len(items)} item(s); give one weight per item")
        if (weights < 0).any():
            raise ValueError("weights must be at least 0: a negative weight would give shares outside [0, 1]")
    lists = _genre_lists(genres, items)
    mass: dict = {}
    for item_genres, w in zip(lists, weights):
        if len(item_genres) == 0:
            continue
        for g in item_genres:
            mass[g] = mass.get(g, 0.0) + w / len(item_genres)
    total = sum(mass.values())
    if total <= 0:
        raise ValueError("none of these items has a genre (or every weight is 0); the genre distribution is undefined")
    return pd.Series(mass).sort_index() / total


def calibration_kl(recommended, histories, genres: pd.Series, k: int = 10, alpha: float = 0.01,
                   per_user: bool = False):
    """Steck's miscalibration: KL(p ‖ q̃) per user, p = the genre distribution of the user's history, q̃ = (1 − α) q
    + α p with q that of the top-k list (both as in ``genre_distribution``). ``histories``: a list with one non-empty
    sequence of item ids per row of ``recommended``, in the same order (a Series is refused: it would be read by
    position, not by user; pass ``histories.reindex(user_ids).tolist()``)."""
    alpha = require_finite(alpha, "alpha")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1) so that the KL stays finite, got {alpha}")
    lists = _lists(recommended, k)
    if isinstance(histories, (pd.Series, pd.DataFrame, dict)):
        raise TypeError(f"histories must be a list with one history per row of recommended, got a "
                        f"{type(histories).__name__}, which would be read by position, not by user; pass "
                        "histories.reindex(user_ids).tolist() with the users of the rows")
    histories = list(histories)
    single = [(u, h) for u, h in enumerate(histories) if h is None or np.isscalar(h)]
    if single:
        u, h = single[0]
        if h is None or pd.isna(h):
            raise ValueError(f"histories[{u}] is missing ({h!r}), as for a user without training history after a "
                             "reindex; leave such users out")
        raise TypeError(f"histories must hold one sequence of item ids per list, got single ids such as {h!r}; "
                        "for one user, pass [history]")
    if len(histories) != len(lists):
        raise ValueError(f"{len(histories)} histories for {len(lists)} lists; pass one history per list")
    numeric = _is_numeric(lists)
    histories = [_ids(h, f"histories[{u}]", numeric) for u, h in enumerate(histories)]
    lengths = np.array([len(h) for h in histories])
    if (lengths == 0).any():
        raise ValueError(f"the history of list {int(np.argmin(lengths))} is empty, so its genre distribution is "
                         "undefined; leave out users without a training history")
    items, where = np.unique(np.concatenate([lists.ravel(), *histories]), return_inverse=True)
    item_genres = _genre_lists(genres, items)
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
    for mass, what in ((p, "history"), (q, "list")):
        total = mass.sum(1, keepdims=True)
        if (total <= 0).any():
            raise ValueError(f"no item of the {what} of row {int(np.argmin(total))} has a genre; its genre "
                             "distribution is undefined")
        mass /= total
    q_tilde = (1 - alpha) * q + alpha * p
    terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / np.where(p > 0, q_tilde, 1.0)), 0.0)
    return _finish(terms.sum(1), per_user)


def activity_groups(train: pd.DataFrame, n_groups: int = 3, labels=None) -> pd.Series:
    """Users split into ``n_groups`` groups of training activity (number of interactions), lightest first: a Series
    indexed by user id. Users of equal activity are split by user id, so the groups have equal sizes (within one).
    Default labels for terciles: "light", "medium", "heavy"."""
    require_columns(train, ["user_id"], "train")
    n_groups = require_positive_int(n_groups, "n_groups")
    if labels is None:
        labels = ["light", "medium", "heavy"] if n_groups == 3 else [f"group {g + 1}" for g in range(n_groups)]
    if len(labels) != n_groups:
        raise ValueError(f"{len(labels)} labels for {n_groups} groups")
    activity = train.groupby("user_id").size()
    ranks = activity.rank(method="first")  # ties broken by user order, so the groups have equal sizes
    return pd.qcut(ranks, n_groups, labels=labels).rename("activity group")


def by_group(values: pd.Series, groups: pd.Series) -> pd.Series:
    """The mean of per-user ``values`` (indexed by user id) within each group of ``groups`` (``activity_groups``);
    users missing from ``groups`` raise rather than drop out silently."""
    for series, name in ((values, "values"), (groups, "groups")):
        if not isinstance(series, pd.Series):
            raise TypeError(f"{name} must be a pandas Series indexed by user id, got {type(series).__name__}")
    if groups.index.has_duplicates:
        raise ValueError("groups has repeated user ids; give each user one group")
    missing = ~values.index.isin(groups.index)
    if missing.any():
        raise KeyError(f"{int(missing.sum())} user(s) have values but no group, e.g. "
                       f"{values.index[missing][:5].tolist()}")
    return values.groupby(groups.reindex(values.index), observed=True).mean()
