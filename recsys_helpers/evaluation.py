"""The evaluation entry points every chapter uses, one per protocol, and the paired bootstrap that compares models.

**The scoring contract.** A model is passed to an ``evaluate_*`` function as an object, a function or a matrix:

- ranking protocol: an object with ``scores(user_idx) -> (len(user_idx), n_items)`` array in
  ``IdMap.from_train(train)`` order, a function with the same signature, or a (n_users, n_items) array;
- sequential protocol: an object with ``scores_next(user_idx, histories)`` (``histories``: one array of item
  indices per row, the user's true history before the event, oldest first) or such a function;
- cold-start protocol: an object with ``scores_items(user_idx, item_ids)`` (``item_ids``: the new items, which are
  not in the id map) or such a function.

**Rules for scores** (the same everywhere): NaN is an error (a model that produced it has a bug; use ``-inf`` for
"never recommend"); a pandas DataFrame is refused (its ``[]`` selects columns, not users: pass ``.to_numpy()`` in
id-map order); ties are broken in a seeded random order, so no item is favoured by its index (a model that scores
everything equally ranks like random).

**Top-K protocol.** For every test user who is also in train, score all training items, remove the items the user
rated in training, and take the top ``k``. Every test item of that user is relevant, including items never seen in
training (no model can recommend those, and the metrics say so honestly).
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .checks import require_columns, require_fraction, require_positive_int, require_seed
from .interactions import IdMap, train_index, user_histories
from .split import ColdStartSplit, SequentialSplit
from .metrics import RANKING_METRICS, catalogue_coverage, check_k, mae, rank_metrics, rmse

TIE_SEED = 0  # seeds the random order in which tied scores are broken


# ---------------------------------------------------------------------------------------------- scores

def scorer(model, method: str = "scores"):
    """The function behind ``model``: its ``method`` if it has one, the model itself if it is callable, or row
    look-ups in a score matrix."""
    if isinstance(model, (pd.DataFrame, pd.Series)):
        raise TypeError("scores must not be a pandas DataFrame: its [] would select columns, not users; pass "
                        "df.to_numpy() with rows and columns in IdMap.from_train(train) order")
    fn = getattr(model, method, None)
    if callable(fn):
        return fn
    if callable(model):
        return model
    if method != "scores":
        raise TypeError(f"the model must have a {method}(...) method or be a function; got {type(model).__name__}")
    if not hasattr(model, "shape") or len(model.shape) != 2:
        raise TypeError(f"scores must be a model with scores(user_idx), a function or a 2-D matrix; got "
                        f"{type(model).__name__}")
    return lambda user_idx: model[user_idx]


def _as_block(block, n_rows: int, n_cols: int, what: str = "scores") -> np.ndarray:
    block = block.toarray() if sp.issparse(block) else np.asarray(block, dtype=np.float64)
    if block.ndim != 2 or block.shape != (n_rows, n_cols):
        raise ValueError(f"the {what} for {n_rows} users came back with shape {block.shape}, expected "
                         f"({n_rows}, {n_cols}) in IdMap.from_train(train) order")
    if np.isnan(block).any():
        raise ValueError(f"the {what} contain {int(np.isnan(block).sum())} NaN value(s): a model that produces NaN "
                         "has a bug (check its training loss); use -inf for items it must never recommend")
    return np.array(block, dtype=np.float64)  # a copy: the caller masks it


def top_indices(block: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Column indices of the ``k`` best scores of each row, best first, ties broken in a random order."""
    n = block.shape[1]
    kth = np.partition(block, n - k, axis=1)[:, n - k][:, None]  # the k-th largest score of each row
    part = np.argpartition(-block, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(-block, part, axis=1).argsort(axis=1, kind="stable")
    out = np.take_along_axis(part, order, axis=1)
    chosen = np.take_along_axis(block, out, axis=1)
    # rows where a tie decides the list (more items at the k-th score than places) or its order
    tied = np.flatnonzero(((block == kth).sum(axis=1) > (chosen == kth).sum(axis=1))
                          | (chosen[:, 1:] == chosen[:, :-1]).any(axis=1))
    if len(tied):
        sub = block[tied]
        keys = np.where(sub >= kth[tied], -sub, np.inf)  # only the candidates compete
        out[tied] = np.lexsort((rng.random(sub.shape), keys), axis=1)[:, :k]
    return out


def top_k(scores, train: pd.DataFrame, k: int = 10, user_ids=None, batch_size: int = 512):
    """Recommend ``k`` unseen training items per user. Returns ``(user_ids, item_ids)``: the users (ids, in
    the order asked, default all training users) and a (users, k) array of item ids, best first.

    ``scores``: a model with ``scores(user_idx)``, a function of user indices, or a (n_users, n_items) matrix, in
    ``IdMap.from_train(train)`` order (see the module docstring for the rules)."""
    k, batch_size = check_k(k), require_positive_int(batch_size, "batch_size (users per call of the model)")
    index = train_index(train)
    ids, seen = index.ids, index.seen
    if k > ids.n_items:
        raise ValueError(f"k={k} is larger than the {ids.n_items} items in train")
    fn = scorer(scores)
    if hasattr(scores, "shape") and not callable(getattr(scores, "scores", None)) \
            and tuple(scores.shape) != (ids.n_users, ids.n_items):
        raise ValueError(f"scores has shape {tuple(scores.shape)}, expected (n_users, n_items) = "
                         f"({ids.n_users}, {ids.n_items}) in IdMap.from_train(train) order")
    user_ids = ids.user_ids if user_ids is None else np.asarray(user_ids)
    user_idx = ids.users(user_ids)
    rng = np.random.default_rng(TIE_SEED)
    out = np.empty((len(user_idx), k), dtype=ids.item_ids.dtype)
    for start in range(0, len(user_idx), batch_size):
        batch = user_idx[start:start + batch_size]
        block = _as_block(fn(batch), len(batch), ids.n_items)
        rows, cols = seen[batch].nonzero()
        block[rows, cols] = -np.inf
        out[start:start + len(batch)] = ids.item_ids[top_indices(block, k, rng)]
    return user_ids, out


def _ranking_metrics(recs, relevant, k: int, n_items: int, per_user: bool, users):
    if per_user:
        return pd.DataFrame({f"{name}@{k}": fn(recs, relevant, k, per_user=True) for name, fn in RANKING_METRICS.items()},
                            index=pd.Index(users, name="user_id"))
    result = {f"{name}@{k}": fn(recs, relevant, k) for name, fn in RANKING_METRICS.items()}
    result[f"coverage@{k}"] = catalogue_coverage(recs, n_items, k)
    return result


def evaluate_ranking(scores, train: pd.DataFrame, test: pd.DataFrame, k: int = 10, per_user: bool = False):
    """Precision, recall, NDCG, hit rate and MAP at ``k``, and catalogue coverage, on the top-K protocol.

    ``scores``: a model with ``scores(user_idx)``, a function of user indices, or a (n_users, n_items) matrix in
    ``IdMap.from_train(train)`` order. Test users absent from train are skipped. With ``per_user=True`` it returns
    a DataFrame (one row per test user, indexed by user id, one column per metric) whose column means are the
    metrics (coverage is a property of all lists together, so it has no per-user column)."""
    require_columns(test, ["user_id", "item_id"], "test")
    ids = train_index(train).ids
    test_users = np.unique(test["user_id"].to_numpy())
    test_users = test_users[ids.users(test_users, strict=False) >= 0]
    if len(test_users) == 0:
        raise ValueError("no test user appears in train, so nothing can be recommended; check the split")
    users, recs = top_k(scores, train, k, test_users)
    return evaluate_lists(users, recs, test, k, ids.n_items, per_user)


def evaluate_lists(user_ids, recommended, test: pd.DataFrame, k: int = 10, n_items: int | None = None,
                   per_user: bool = False):
    """The metrics of ``evaluate_ranking`` for lists made some other way (re-ranked lists in notebook 09):
    ``recommended`` (users × ≥ k item ids, best first) for the users ``user_ids``, each of whom must have test
    interactions. ``n_items``, the size of the catalogue the lists were drawn from, is needed for coverage."""
    require_columns(test, ["user_id", "item_id"], "test")
    users, recs = np.asarray(user_ids), np.asarray(recommended)
    if recs.ndim != 2 or len(recs) != len(users):
        raise ValueError(f"recommended must be a 2-D array with one row per user: {len(users)} users, "
                         f"recommended of shape {recs.shape}")
    relevant = test.groupby("user_id")["item_id"].agg(set).reindex(users)
    if relevant.isna().any():
        missing = relevant.index[relevant.isna()][:5].tolist()
        kinds = {"user_ids": users.dtype.kind in "iuf", "test": test["user_id"].dtype.kind in "iuf"}
        hint = (f" (user_ids are of type {users.dtype} but test's user ids of type {test['user_id'].dtype}: convert "
                "one of them)" if kinds["user_ids"] != kinds["test"] else "")
        raise ValueError(f"user(s) {missing} have no test interaction{hint}; evaluate only the test users")
    if not per_user and n_items is None:
        raise ValueError("pass n_items (the catalogue size) to compute coverage, or per_user=True")
    return _ranking_metrics(recs, relevant.tolist(), check_k(k), n_items, per_user, users)


def evaluate_ratings(predictions, test: pd.DataFrame) -> dict:
    """RMSE and MAE of rating predictions on ``test``.

    ``predictions``: an array aligned with the rows of ``test``, or a function ``f(user_ids, item_ids)``
    that returns one prediction per row."""
    require_columns(test, ["user_id", "item_id", "rating"], "test")
    try:
        y = test["rating"].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"test's rating column must hold numbers, got dtype {test['rating'].dtype}; convert it, "
                        "e.g. test.assign(rating=pd.to_numeric(test.rating))") from None
    if not np.isfinite(y).all():
        raise ValueError(f"test has {int((~np.isfinite(y)).sum())} rating(s) that are NaN or infinite: a prediction "
                         "can only be scored against a known rating; drop those rows first "
                         "(test.dropna(subset=['rating']))")
    if callable(predictions):
        predictions = predictions(test["user_id"].to_numpy(), test["item_id"].to_numpy())
    return {"rmse": rmse(y, predictions), "mae": mae(y, predictions)}


# ---------------------------------------------------------------------------------------------- sequential

def sequential_events(split: SequentialSplit, which: str = "test"):
    """The events of ``which`` and, for each, the user's true history before it (item indices of the training
    id map, oldest first; items unknown to train are left out). Returns ``(ids, events, user_idx, histories,
    targets)``; ``targets`` is -1 for an item never seen in training (no model can rank it)."""
    ids = train_index(split.train).ids
    events = split.events(which)
    everything = pd.concat([split.train, split.validation, split.test], ignore_index=True)
    full = user_histories(everything, ids)  # every interaction, time order, ties by item id
    twice = everything.duplicated(["user_id", "item_id", "timestamp"], keep=False)
    if twice.any():
        user, item, when = (everything.loc[twice, col].iloc[0] for col in ("user_id", "item_id", "timestamp"))
        raise ValueError(f"the split lists {int(twice.sum())} row(s) of the same event (user, item and timestamp) "
                         f"more than once, e.g. user {user}, item {item} at time {when}: keep one row per event "
                         "before splitting, e.g. "
                         "ratings.drop_duplicates(['user_id', 'item_id', 'timestamp'])")
    ordered = everything.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    position = ordered.groupby("user_id").cumcount()  # position of each row within its user's full sequence
    ordered = ordered.assign(position=position.to_numpy())
    known = ids.items(ordered["item_id"], strict=False) >= 0
    ordered = ordered.assign(known_before=ordered.assign(k=known).groupby("user_id")["k"].cumsum().to_numpy() - known)
    chosen = events.merge(ordered[["user_id", "item_id", "timestamp", "known_before"]],
                          on=["user_id", "item_id", "timestamp"], how="left", validate="one_to_one")
    user_idx = ids.users(chosen["user_id"])
    histories = [full[u][:n] for u, n in zip(user_idx, chosen["known_before"].to_numpy())]
    return ids, chosen, user_idx, histories, ids.items(chosen["item_id"], strict=False)


def evaluate_sequential(model, split: SequentialSplit, which: str = "test", k: int = 10,
                        per_event: bool = False, batch_size: int = 512):
    """HR@k, NDCG@k and MRR@k averaged over the events of ``which`` ("validation" or "test"), one step ahead.

    Each event is predicted from the user's true history before it (``model.scores_next(user_idx, histories)``);
    every training item the user has not interacted with before that moment is a candidate. An event whose item
    never occurs in training counts as a miss. With ``per_event=True`` it returns a DataFrame, one row per event
    (user_id, item_id, rank and the three metrics), whose metric means are the averages."""
    k, batch_size = check_k(k), require_positive_int(batch_size, "batch_size (events per call of the model)")
    fn = scorer(model, "scores_next")
    ids, events, user_idx, histories, targets = sequential_events(split, which)
    if k > ids.n_items:
        raise ValueError(f"k={k} is larger than the {ids.n_items} items in train, so every event would be a hit")
    ranks = np.full(len(events), np.inf)
    rng = np.random.default_rng(TIE_SEED)
    for start in range(0, len(events), batch_size):
        sl = slice(start, start + batch_size)
        hist = histories[sl]
        block = _as_block(fn(user_idx[sl], hist), len(hist), ids.n_items)
        rows = np.repeat(np.arange(len(hist)), [len(h) for h in hist])
        block[rows, np.concatenate(hist) if len(rows) else rows] = -np.inf  # items interacted with before
        t = targets[sl]
        ok = t >= 0
        target_score = block[np.arange(len(hist))[ok], t[ok]][:, None]
        greater = (block[ok] > target_score).sum(axis=1)
        equal = (block[ok] == target_score).sum(axis=1) - 1
        ranks[np.arange(start, start + len(hist))[ok]] = 1 + greater + np.floor(rng.random(ok.sum()) * (equal + 1))
    per = pd.DataFrame({"user_id": events["user_id"].to_numpy(), "item_id": events["item_id"].to_numpy(), "rank": ranks,
                        **rank_metrics(ranks, k)})
    if per_event:
        return per
    return {name: float(per[name].mean()) for name in per.columns[3:]}


# ---------------------------------------------------------------------------------------------- cold start

def evaluate_cold_start(model, split: ColdStartSplit, k: int = 10, per_user: bool = False):
    """Precision, recall, NDCG, hit rate and MAP at ``k`` on the cold-start protocol.

    Every test user who is in train ranks the new items only, scored by ``model.scores_items(user_idx, item_ids)``
    (``item_ids`` are the new items, in ``split.new_items`` order); the new items the user rated are relevant.
    ``per_user=True`` returns one row per user, as ``evaluate_ranking`` does."""
    k = check_k(k)
    new_items = np.asarray(split.new_items)
    if k > len(new_items):
        raise ValueError(f"k={k} is larger than the {len(new_items)} new items")
    ids = train_index(split.train).ids
    users = np.unique(split.test["user_id"].to_numpy())
    users = users[ids.users(users, strict=False) >= 0]
    if len(users) == 0:
        raise ValueError("no user who rated a new item appears in train; check the split")
    fn = scorer(model, "scores_items")
    rng = np.random.default_rng(TIE_SEED)
    recs = np.empty((len(users), k), dtype=new_items.dtype)
    for start in range(0, len(users), 512):
        batch = ids.users(users[start:start + 512])
        block = _as_block(fn(batch, new_items), len(batch), len(new_items))
        recs[start:start + len(batch)] = new_items[top_indices(block, k, rng)]
    relevant = split.test.groupby("user_id")["item_id"].agg(set).reindex(users).tolist()
    return _ranking_metrics(recs, relevant, k, len(new_items), per_user, users)  # coverage: of the new items


# ---------------------------------------------------------------------------------------------- comparing

def _values(values, name: str) -> np.ndarray:
    """Per-user values as floats (NaN kept: it marks a user without a value); text and inf are refused by name."""
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must hold numbers (one metric value per user), got values numpy cannot read as "
                        f"numbers ({error})") from None
    if np.isinf(values).any():
        raise ValueError(f"{name} holds {int(np.isinf(values).sum())} infinite value(s): a metric or an error per user "
                         "is a finite number; find where the inf comes from (a log of 0, a division by 0) and fix it")
    return values


def _unit(a, groups) -> str:
    """What one resampled unit is, for the verdict: users when the labels say so (a Series indexed by user_id, as
    ``evaluate_ranking(..., per_user=True)`` returns, or groups named user_id), else groups or paired values."""
    labels = groups if groups is not None else getattr(a, "index", None)
    if getattr(labels, "name", None) == "user_id":
        return "users"
    return "groups" if groups is not None else "paired values"


def paired_bootstrap(a, b, n_boot: int = 2000, seed: int = 0, level: float = 0.95, names=("A", "B"),
                     groups=None, higher_is_better: bool = True, unit: str | None = None) -> dict:
    """Compare two models on the same users (or events): the mean difference ``mean(a - b)`` and its
    ``level`` bootstrap interval, resampling users with replacement ``n_boot`` times (seeded by ``seed``).

    ``a`` and ``b``: per-user values of one metric (arrays in the same order, or Series with the same index, as
    ``evaluate_ranking(..., per_user=True)[metric]`` returns). Users with no value for either model (NaN in both)
    are left out; inf and text are refused. ``groups`` (one label per value, e.g. the user of each sequential event
    or rating; no NaN label, at least 2 groups) resamples whole groups instead of single values, since values of one
    user are not independent (a cluster bootstrap: each resample's difference is its total over its values' count,
    so it estimates the same mean as ``diff``). For errors (RMSE's squared errors, say) pass
    ``higher_is_better=False`` so the verdict names the lower one as the winner.

    ``names``: the two models' names, in the order of ``a`` and ``b``. The verdict always states the difference
    with the names, so its sign is never a guess:
    ``"A beats B: difference A − B = +0.0123, 95% interval [+0.0051, +0.0197] over 610 users"``, or
    ``"A and B are within noise: difference A − B = ..."`` when the interval contains 0. ``unit`` names what was
    resampled (default: "users" when ``a`` is indexed by user_id or ``groups`` is named user_id, else "groups" or
    "paired values"). Returns ``{mean_a, mean_b, diff, low, high, n, n_units, unit, names, verdict}``: ``diff`` is
    ``mean_a - mean_b`` over the ``n`` values, ``n_units`` the number of users (or groups) resampled."""
    seed = require_seed(seed, "seed")
    n_boot = require_positive_int(n_boot, "n_boot (the number of resamples)", minimum=100)
    level = require_fraction(level, "level (e.g. 0.95 for a 95% interval)")
    if isinstance(names, str) or not hasattr(names, "__len__") or len(names) != 2 \
            or not all(isinstance(name, str) for name in names):
        raise ValueError(f"names must be two strings, the names of the models behind a and b, such as "
                         f"('EASE', 'Popularity'); got {names!r}")
    if not isinstance(higher_is_better, (bool, np.bool_)):
        raise TypeError(f"higher_is_better must be True (a metric such as NDCG) or False (an error such as squared "
                        f"error), got {higher_is_better!r}")
    unit = _unit(a, groups) if unit is None else unit
    if not isinstance(unit, str) or not unit:
        raise ValueError(f"unit must be a non-empty string such as 'users', got {unit!r}")
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        if not a.index.equals(b.index):
            raise ValueError("a and b are not indexed by the same users in the same order; compare models on the "
                             "same users (e.g. a, b = a.align(b))")
    a, b = _values(a, "a"), _values(b, "b")
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D and of equal length (one value per user), got {a.shape} and {b.shape}")
    if (np.isnan(a) != np.isnan(b)).any():
        raise ValueError("a user has a value for one model and NaN for the other: the two were not evaluated on the "
                         "same users")
    keep = ~np.isnan(a)
    a, b = a[keep], b[keep]
    diff = a - b
    sums, counts = diff, np.ones(len(a))
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != keep.shape:
            raise ValueError(f"groups must hold one label per value ({len(keep)}), got {groups.shape}")
        if pd.isna(groups).any():
            raise ValueError(f"groups has {int(pd.isna(groups).sum())} missing label(s) (NaN or None): every value "
                             "needs the label of its group (its user), or its values would be left out of the "
                             "resamples but not of the difference")
        by_group = pd.Series(diff).groupby(groups[keep])
        sums, counts = by_group.sum().to_numpy(), by_group.size().to_numpy(np.float64)
    if len(sums) < 2:
        raise ValueError(f"a paired bootstrap needs at least 2 {unit} with a value, got {len(sums)}: with fewer there "
                         "is nothing to resample, so no interval can be estimated" +
                         ("; the groups must be the users (or other independent units), not one label for all"
                          if groups is not None and len(a) >= 2 else ""))
    rng = np.random.default_rng(seed)
    picks = (rng.integers(0, len(sums), len(sums)) for _ in range(n_boot))
    means = np.array([sums[idx].sum() / counts[idx].sum() for idx in picks])
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    first, second = names
    if (low > 0) if higher_is_better else (high < 0):
        verdict = f"{first} beats {second}"
    elif (high < 0) if higher_is_better else (low > 0):
        verdict = f"{second} beats {first}"
    else:
        verdict = f"{first} and {second} are within noise"
    return {"mean_a": float(a.mean()), "mean_b": float(b.mean()), "diff": float(diff.mean()), "low": float(low),
            "high": float(high), "n": int(len(a)), "n_units": int(len(sums)), "unit": unit,
            "names": [first, second],
            "verdict": f"{verdict}: difference {first} − {second} = {diff.mean():+.4f}, {100 * level:.4g}% interval "
                       f"[{low:+.4f}, {high:+.4f}] over {len(sums):,} {unit}"}


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``: training time to record with the results."""

    def __enter__(self):
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
        return False


__all__ = ["IdMap", "Timer", "evaluate_cold_start", "evaluate_ranking",
           "evaluate_ratings", "evaluate_sequential", "paired_bootstrap", "scorer", "top_indices", "top_k"]
