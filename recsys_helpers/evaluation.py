"""The two evaluation entry points every chapter uses, and the id encoding they share.

Index convention: models work with contiguous indices. ``IdMap.from_train(train)`` numbers the users and the
items of the *training* frame in sorted id order (user index ``u`` is the ``u``-th smallest training user id);
``evaluate_ranking`` builds the same map, so a score matrix of shape (n_train_users, n_train_items) built with
``IdMap.from_train(train)`` lines up with it.

Top-K protocol: for every test user who is also in train, score all training items, remove the items the user
rated in training, and take the top ``k``. Every test item of that user is relevant, including items never seen
in training (no model can recommend those, and the metrics say so honestly).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .checks import require_columns
from .metrics import RANKING_METRICS, catalogue_coverage, mae, rmse


@dataclass
class IdMap:
    """Contiguous indices for the users and items of a training frame (sorted ids)."""

    user_ids: np.ndarray
    item_ids: np.ndarray

    @classmethod
    def from_train(cls, train: pd.DataFrame) -> "IdMap":
        require_columns(train, ["user_id", "item_id"], "train")
        return cls(np.unique(train["user_id"].to_numpy()), np.unique(train["item_id"].to_numpy()))

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def _lookup(self, known: np.ndarray, ids, what: str, strict: bool) -> np.ndarray:
        ids = np.asarray(ids)
        pos = np.searchsorted(known, ids).clip(0, max(len(known) - 1, 0))
        found = known[pos] == ids if len(known) else np.zeros(len(ids), bool)
        if strict and not found.all():
            raise KeyError(f"{int((~found).sum())} {what} id(s) are not in the training data, e.g. "
                           f"{ids[~found][:5].tolist()}; use strict=False to get -1 for them")
        return np.where(found, pos, -1)

    def users(self, user_ids, strict: bool = True) -> np.ndarray:
        """Indices of ``user_ids`` (-1 for unknown ids when ``strict=False``)."""
        return self._lookup(self.user_ids, user_ids, "user", strict)

    def items(self, item_ids, strict: bool = True) -> np.ndarray:
        """Indices of ``item_ids`` (-1 for unknown ids when ``strict=False``)."""
        return self._lookup(self.item_ids, item_ids, "item", strict)

    def interactions(self, frame: pd.DataFrame, values: str | None = None) -> sp.csr_matrix:
        """A (n_users, n_items) sparse matrix of ``frame`` (1s, or the column ``values``); rows of unknown
        users or items are dropped."""
        u = self.users(frame["user_id"], strict=False)
        i = self.items(frame["item_id"], strict=False)
        keep = (u >= 0) & (i >= 0)
        data = np.ones(keep.sum()) if values is None else frame[values].to_numpy(np.float64)[keep]
        return sp.csr_matrix((data, (u[keep], i[keep])), shape=(self.n_users, self.n_items))


def _score_rows(scores, user_idx: np.ndarray) -> np.ndarray:
    if callable(scores):
        block = np.asarray(scores(user_idx), dtype=np.float64)
    else:
        block = scores[user_idx]
        block = block.toarray() if sp.issparse(block) else np.asarray(block, dtype=np.float64)
    if block.shape[0] != len(user_idx):
        raise ValueError(f"the scores for {len(user_idx)} users came back with {block.shape[0]} rows")
    return block


def top_k(scores, train: pd.DataFrame, k: int = 10, user_ids=None, batch_size: int = 512):
    """Recommend ``k`` unseen training items per user. Returns ``(user_ids, item_ids)``: the users (ids, in
    the order asked, default all training users) and a (users, k) array of item ids, best first.

    ``scores`` is a (n_users, n_items) matrix in :class:`IdMap` order, or a function that takes an array of
    user indices and returns their rows of scores."""
    ids = IdMap.from_train(train)
    if int(k) != k or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k > ids.n_items:
        raise ValueError(f"k={k} is larger than the {ids.n_items} items in train")
    if not callable(scores) and tuple(scores.shape) != (ids.n_users, ids.n_items):
        raise ValueError(f"scores has shape {tuple(scores.shape)}, expected (n_users, n_items) = "
                         f"({ids.n_users}, {ids.n_items}) in IdMap.from_train(train) order")
    user_ids = ids.user_ids if user_ids is None else np.asarray(user_ids)
    user_idx = ids.users(user_ids)
    seen = ids.interactions(train).tocsr()
    out = np.empty((len(user_idx), k), dtype=ids.item_ids.dtype)
    for start in range(0, len(user_idx), batch_size):
        batch = user_idx[start:start + batch_size]
        block = _score_rows(scores, batch)
        if block.shape[1] != ids.n_items:
            raise ValueError(f"scores rows have {block.shape[1]} items, expected {ids.n_items}")
        block = np.where(np.isnan(block), -np.inf, block)
        rows, cols = seen[batch].nonzero()
        block[rows, cols] = -np.inf
        part = np.argpartition(-block, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(-block, part, axis=1).argsort(axis=1, kind="stable")
        out[start:start + len(batch)] = ids.item_ids[np.take_along_axis(part, order, axis=1)]
    return user_ids, out


def evaluate_ranking(scores, train: pd.DataFrame, test: pd.DataFrame, k: int = 10) -> dict:
    """Precision, recall, NDCG, hit rate and MAP at ``k``, and catalogue coverage, on the top-K protocol.

    ``scores``: a (n_users, n_items) matrix in ``IdMap.from_train(train)`` order, or a function of an array
    of user indices that returns their rows of scores. Test users absent from train are skipped."""
    require_columns(test, ["user_id", "item_id"], "test")
    ids = IdMap.from_train(train)
    test_users = np.unique(test["user_id"].to_numpy())
    test_users = test_users[ids.users(test_users, strict=False) >= 0]
    if len(test_users) == 0:
        raise ValueError("no test user appears in train, so nothing can be recommended; check the split")
    users, recs = top_k(scores, train, k, test_users)
    relevant = test.groupby("user_id")["item_id"].agg(set).reindex(users).tolist()
    result = {f"{name}@{k}": fn(recs, relevant, k) for name, fn in RANKING_METRICS.items()}
    result[f"coverage@{k}"] = catalogue_coverage(recs, ids.n_items, k)
    return result


def evaluate_ratings(predictions, test: pd.DataFrame) -> dict:
    """RMSE and MAE of rating predictions on ``test``.

    ``predictions``: an array aligned with the rows of ``test``, or a function ``f(user_ids, item_ids)``
    that returns one prediction per row."""
    require_columns(test, ["user_id", "item_id", "rating"], "test")
    if callable(predictions):
        predictions = predictions(test["user_id"].to_numpy(), test["item_id"].to_numpy())
    y = test["rating"].to_numpy()
    return {"rmse": rmse(y, predictions), "mae": mae(y, predictions)}


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``: training time to record with the results."""

    def __enter__(self):
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
        return False
