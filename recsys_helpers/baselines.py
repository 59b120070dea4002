"""The baselines every chapter compares against (taught in notebook 01), one scoring contract for all.

Each has ``fit(train)``; rating baselines have ``predict(user_ids, item_ids)``; the top-K baselines have
``scores(user_idx)`` (rows of item scores in ``IdMap.from_train(train)`` order): ``Popularity`` (notebook 01) and
``ItemKNN``, notebook 02's top-K item-kNN, which notebooks 03 and 07 compare against. The sequential baselines
(``Popularity``, ``MarkovChain``, ``RecencyItemKNN``, notebook 01 §7) have ``scores_next(user_idx, histories)``;
the cold-start baselines (``RandomScores``, ``GenreProfile``, notebook 01 §8) have ``scores_items(user_idx,
item_ids)``. See ``evaluation`` for how each protocol calls them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

import scipy.sparse as sp

from .checks import require_columns, require_finite, require_positive_int, require_seed
from .interactions import IdMap, train_index, user_histories


def _fitted_ids(model) -> IdMap:
    """The IdMap of a fitted model; a model that was never fitted is refused with the fix."""
    if not hasattr(model, "ids"):
        raise RuntimeError(f"{type(model).__name__} has not been fitted yet: call fit(train) first, then score")
    return model.ids


def _user_indices(user_idx, n_users: int, model: str) -> np.ndarray:
    """``user_idx`` as integer indices of the fitted users (0 … n_users − 1). A fraction, or an index past the end
    or below 0 (which NumPy would count from the end: another user's scores) is refused, naming the range."""
    idx = np.asarray(user_idx)
    if idx.size and idx.dtype.kind not in "iu":
        raise TypeError(f"{model}.scores takes integer user indices (IdMap.users of the training frame), got "
                        f"{idx.dtype} values such as {idx.ravel()[:3].tolist()}")
    idx = idx.astype(np.int64)
    bad = idx[(idx < 0) | (idx >= n_users)]
    if bad.size:
        raise IndexError(f"{model}.scores: user index {bad[0]} is not one of the {n_users} fitted users (0 to "
                         f"{n_users - 1}); map user ids with IdMap.from_train(train).users(...) of the frame it was "
                         "fitted on")
    return idx


def _item_indices(histories, n_items: int, model: str) -> None:
    """Refuse histories that hold an item index outside the fitted items (or below 0)."""
    items = np.concatenate([np.asarray(h, dtype=np.int64).ravel() for h in histories] or [np.zeros(0, np.int64)])
    bad = items[(items < 0) | (items >= n_items)]
    if bad.size:
        raise IndexError(f"{model}.scores_next: the histories hold item index {bad[0]}, but the model was fitted on "
                         f"{n_items} items (0 to {n_items - 1}); map them with the IdMap of its training data")


def _same_length(user_ids, item_ids) -> None:
    if len(user_ids) != len(item_ids):
        raise ValueError(f"user_ids and item_ids must pair up, one user per item, got {len(user_ids)} and "
                         f"{len(item_ids)}")


class GlobalMean:
    """Predict the mean training rating for everyone: the floor any rating model must beat."""

    def fit(self, train: pd.DataFrame) -> "GlobalMean":
        require_columns(train, ["user_id", "item_id", "rating"], "train")
        self.ids = IdMap.from_train(train)
        self.mu = float(train["rating"].mean())
        return self

    def predict(self, user_ids, item_ids) -> np.ndarray:
        _fitted_ids(self)
        _same_length(user_ids, item_ids)
        return np.full(len(user_ids), self.mu)

    def scores(self, user_idx) -> np.ndarray:
        ids = _fitted_ids(self)
        return np.full((len(_user_indices(user_idx, ids.n_users, "GlobalMean")), ids.n_items), self.mu)


class BiasBaseline:
    """r̂(u, i) = μ + b_u + b_i, with biases shrunk towards 0 by ``reg_user`` and ``reg_item``.

    Fitted by alternating closed-form updates of the regularised squared loss
    Σ (r - μ - b_u - b_i)² + reg_user Σ b_u² + reg_item Σ b_i²:
    b_i = Σ_u (r - μ - b_u) / (reg_item + n_i), then b_u = Σ_i (r - μ - b_i) / (reg_user + n_u).
    """

    def __init__(self, reg_user: float = 5.0, reg_item: float = 5.0, n_iter: int = 10):
        try:
            self.reg_user = require_finite(reg_user, "reg_user", non_negative=True)
            self.reg_item = require_finite(reg_item, "reg_item", non_negative=True)
        except ValueError as err:
            raise ValueError(f"regularisation must be >= 0 and finite, got reg_user={reg_user!r}, "
                             f"reg_item={reg_item!r} ({err})") from None
        self.n_iter = require_positive_int(n_iter, "n_iter")

    def fit(self, train: pd.DataFrame) -> "BiasBaseline":
        require_columns(train, ["user_id", "item_id", "rating"], "train")
        self.ids = IdMap.from_train(train)
        u, i = self.ids.users(train["user_id"]), self.ids.items(train["item_id"])
        r = train["rating"].to_numpy(np.float64)
        self.mu = float(r.mean())
        n_u = np.bincount(u, minlength=self.ids.n_users)
        n_i = np.bincount(i, minlength=self.ids.n_items)
        self.user_bias = np.zeros(self.ids.n_users)
        self.item_bias = np.zeros(self.ids.n_items)
        for _ in range(self.n_iter):
            self.item_bias = np.bincount(i, r - self.mu - self.user_bias[u], self.ids.n_items) / (self.reg_item + n_i)
            self.user_bias = np.bincount(u, r - self.mu - self.item_bias[i], self.ids.n_users) / (self.reg_user + n_u)
        return self

    def predict(self, user_ids, item_ids) -> np.ndarray:
        """Unknown users or items get a bias of 0 (the global mean is the fallback)."""
        _fitted_ids(self)
        _same_length(user_ids, item_ids)
        u = self.ids.users(user_ids, strict=False)
        i = self.ids.items(item_ids, strict=False)
        bu = np.where(u >= 0, self.user_bias[u], 0.0)
        bi = np.where(i >= 0, self.item_bias[i], 0.0)
        return self.mu + bu + bi

    def scores(self, user_idx) -> np.ndarray:
        user_idx = _user_indices(user_idx, _fitted_ids(self).n_users, "BiasBaseline")
        return self.mu + self.user_bias[user_idx][:, None] + self.item_bias[None, :]


class Popularity:
    """Recommend the items with the most training interactions to everyone."""

    def fit(self, train: pd.DataFrame) -> "Popularity":
        require_columns(train, ["user_id", "item_id"], "train")
        self.ids = IdMap.from_train(train)
        self.counts = np.bincount(self.ids.items(train["item_id"]), minlength=self.ids.n_items).astype(np.float64)
        return self

    def scores(self, user_idx) -> np.ndarray:
        ids = _fitted_ids(self)
        n = len(_user_indices(user_idx, ids.n_users, "Popularity"))
        return np.broadcast_to(self.counts, (n, ids.n_items)).copy()

    def scores_next(self, user_idx, histories) -> np.ndarray:
        """The sequential protocol: the same counts whatever the history (one row per history)."""
        _item_indices(histories, _fitted_ids(self).n_items, "Popularity")
        return np.broadcast_to(self.counts, (len(histories), self.ids.n_items)).copy()


def _last_items(histories) -> np.ndarray:
    return np.array([h[-1] if len(h) else -1 for h in histories], dtype=np.int64)


class MarkovChain:
    """First-order Markov chain: count how often item j directly follows item i in the training histories;
    score the items after the last item of the history by that count, ties (and empty histories) by popularity."""

    def fit(self, train: pd.DataFrame) -> "MarkovChain":
        require_columns(train, ["user_id", "item_id", "timestamp"], "train")
        self.ids = train_index(train).ids
        histories = user_histories(train, self.ids)
        src = np.concatenate([h[:-1] for h in histories])
        dst = np.concatenate([h[1:] for h in histories])
        n = self.ids.n_items
        self.transitions = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
        self.transitions.sum_duplicates()
        counts = np.bincount(self.ids.items(train["item_id"]), minlength=n).astype(np.float64)
        self.tie_break = counts / (counts.max() + 1.0)  # < 1: decides only between equal counts
        return self

    def scores_next(self, user_idx, histories) -> np.ndarray:
        _item_indices(histories, _fitted_ids(self).n_items, "MarkovChain")
        last = _last_items(histories)
        out = np.tile(self.tie_break, (len(last), 1))
        has = last >= 0
        out[has] += self.transitions[last[has]].toarray()
        return out


class RecencyItemKNN:
    """Item-based kNN over the history, recent items weighing more: score(j) = Σ_t decay^age(t) · cos(h_t, j),
    over the last ``window`` items of the history (age 0 = the most recent), with cosine similarity of the items'
    training-user columns. ``decay`` = 1 weighs the whole window equally."""

    def __init__(self, decay: float = 0.8, window: int = 50):
        decay = require_finite(decay, "decay")
        if not 0 < decay <= 1:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        self.decay, self.window = decay, require_positive_int(window, "window")  # (a window of 0 would be h[-0:]: all)

    def fit(self, train: pd.DataFrame) -> "RecencyItemKNN":
        require_columns(train, ["user_id", "item_id"], "train")
        index = train_index(train)
        self.ids = index.ids
        norms = np.sqrt(np.asarray(index.seen.sum(axis=0)).ravel())
        self.columns = (index.seen @ sp.diags(1.0 / np.maximum(norms, 1e-12))).T.tocsr()  # (items, users), unit rows
        return self

    def scores_next(self, user_idx, histories) -> np.ndarray:
        _item_indices(histories, _fitted_ids(self).n_items, "RecencyItemKNN")
        rows, cols, weights = [], [], []
        for r, h in enumerate(histories):
            tail = np.asarray(h[-self.window:], dtype=np.int64)
            rows.append(np.full(len(tail), r))
            cols.append(tail)
            weights.append(self.decay ** np.arange(len(tail))[::-1])
        W = sp.csr_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(len(histories), self.ids.n_items))
        user_space = (W @ self.columns).toarray()  # (events, users): the weighted sum of the history's columns
        return np.asarray(self.columns @ user_space.T).T  # (events, items)


class ItemKNN:
    """Notebook 02's top-K item-kNN on binarised interactions ``X``: the similarity of movies ``i`` and ``j`` is
    ``c_ij / (n_i^alpha n_j^(1 - alpha))`` (``c``: co-occurrence counts, ``n``: interaction counts; ``alpha`` = 0.5
    is cosine), every movie keeps its ``k`` most similar movies (never itself), and a user's scores are ``X S``.
    Dense in items: it needs about 12 bytes per pair of training items."""

    def __init__(self, k: int = 50, alpha: float = 0.5):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a whole number >= 1, got {k!r}")
        alpha = require_finite(alpha, "alpha")
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        self.k, self.alpha = int(k), alpha

    def fit(self, train: pd.DataFrame) -> "ItemKNN":
        require_columns(train, ["user_id", "item_id"], "train")
        index = train_index(train)
        self.ids = index.ids
        self.X = index.seen.astype(np.float32).tocsr()
        C = (self.X.T @ self.X).toarray()
        n = np.maximum(C.diagonal(), 1).astype(np.float32)
        S = C / n[:, None] ** np.float32(self.alpha) / n[None, :] ** np.float32(1 - self.alpha)
        del C
        np.fill_diagonal(S, 0)  # a movie is not its own neighbour
        k = min(self.k, S.shape[0] - 1)
        if k == 0:  # a single training item has no neighbours
            self.S = sp.csc_matrix(S.shape, dtype=np.float32)
            return self
        top = np.argpartition(-S, k - 1, axis=0)[:k]  # the k most similar movies of every column
        self.S = sp.csc_matrix((np.take_along_axis(S, top, axis=0).ravel(order="F"), top.ravel(order="F"),
                                np.arange(0, S.shape[1] * k + 1, k)), shape=S.shape)
        return self

    def scores(self, user_idx) -> np.ndarray:
        return (self.X[_user_indices(user_idx, _fitted_ids(self).n_users, "ItemKNN")] @ self.S).toarray()


class RandomScores:
    """Random scores (seeded): the floor of the cold-start protocol."""

    def __init__(self, seed: int = 42):
        self.rng = np.random.default_rng(require_seed(seed))

    def scores_items(self, user_idx, item_ids) -> np.ndarray:
        return self.rng.random((len(user_idx), len(item_ids)))


class GenreProfile:
    """Content baseline for new items: a user's genre profile (the share of each genre among the movies they rated
    in training) dotted with a new movie's genres, scaled by its number of genres (cosine-like)."""

    def fit(self, train: pd.DataFrame, items: pd.DataFrame) -> "GenreProfile":
        require_columns(train, ["user_id", "item_id"], "train")
        require_columns(items, ["item_id", "genres"], "items")
        self.ids = train_index(train).ids
        text = items["genres"].map(lambda gs: isinstance(gs, str))
        if text.any():  # a string would be taken letter by letter ('Comedy|Drama' -> 'C', 'o', ...)
            raise TypeError(f"items['genres'] must hold a list of genres per movie, got text such as "
                            f"{items['genres'][text].iloc[0]!r}; split it first: "
                            "items.assign(genres=items.genres.str.split('|'))")
        self.genres = sorted({g for gs in items["genres"] for g in gs})
        self.item_genres = items.set_index("item_id")["genres"]
        seen = train_index(train).seen
        G = self._genre_matrix(self.ids.item_ids)  # (train items, genres)
        profile = np.asarray((seen @ G).todense())
        self.profiles = profile / np.maximum(profile.sum(axis=1, keepdims=True), 1e-12)
        return self

    def _genre_matrix(self, item_ids) -> sp.csr_matrix:
        col = {g: c for c, g in enumerate(self.genres)}
        lists = self.item_genres.reindex(item_ids)
        if lists.isna().any():
            raise KeyError(f"{int(lists.isna().sum())} item(s) are missing from the items table, e.g. "
                           f"{np.asarray(item_ids)[lists.isna().to_numpy()][:3].tolist()}")
        rows = [r for r, gs in enumerate(lists) for g in gs if g in col]
        cols = [col[g] for gs in lists for g in gs if g in col]
        return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(lists), len(self.genres)))

    def scores_items(self, user_idx, item_ids) -> np.ndarray:
        user_idx = _user_indices(user_idx, _fitted_ids(self).n_users, "GenreProfile")
        G = self._genre_matrix(item_ids)
        n_genres = np.maximum(np.asarray(G.sum(axis=1)).ravel(), 1.0)
        return np.asarray((G @ self.profiles[user_idx].T).T) / np.sqrt(n_genres)
