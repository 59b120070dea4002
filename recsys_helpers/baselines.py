"""The baselines every chapter compares against (taught in notebook 01).

Each has ``fit(train)``; rating baselines have ``predict(user_ids, item_ids)``; every baseline has
``scores(user_idx)`` (rows of item scores in ``IdMap.from_train(train)`` order) for the top-K protocol.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .checks import require_columns
from .evaluation import IdMap


class GlobalMean:
    """Predict the mean training rating for everyone: the floor any rating model must beat."""

    def fit(self, train: pd.DataFrame) -> "GlobalMean":
        require_columns(train, ["user_id", "item_id", "rating"], "train")
        self.ids = IdMap.from_train(train)
        self.mu = float(train["rating"].mean())
        return self

    def predict(self, user_ids, item_ids) -> np.ndarray:
        return np.full(len(user_ids), self.mu)

    def scores(self, user_idx) -> np.ndarray:
        return np.full((len(user_idx), self.ids.n_items), self.mu)


class BiasBaseline:
    """r̂(u, i) = μ + b_u + b_i, with biases shrunk towards 0 by ``reg_user`` and ``reg_item``.

    Fitted by alternating closed-form updates of the regularised squared loss
    Σ (r - μ - b_u - b_i)² + reg_user Σ b_u² + reg_item Σ b_i²:
    b_i = Σ_u (r - μ - b_u) / (reg_item + n_i), then b_u = Σ_i (r - μ - b_i) / (reg_user + n_u).
    """

    def __init__(self, reg_user: float = 5.0, reg_item: float = 5.0, n_iter: int = 10):
        if reg_user < 0 or reg_item < 0:
            raise ValueError(f"regularisation must be >= 0, got reg_user={reg_user}, reg_item={reg_item}")
        self.reg_user, self.reg_item, self.n_iter = reg_user, reg_item, n_iter

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
        u = self.ids.users(user_ids, strict=False)
        i = self.ids.items(item_ids, strict=False)
        bu = np.where(u >= 0, self.user_bias[u], 0.0)
        bi = np.where(i >= 0, self.item_bias[i], 0.0)
        return self.mu + bu + bi

    def scores(self, user_idx) -> np.ndarray:
        return self.mu + self.user_bias[np.asarray(user_idx)][:, None] + self.item_bias[None, :]


class Popularity:
    """Recommend the items with the most training interactions to everyone."""

    def fit(self, train: pd.DataFrame) -> "Popularity":
        require_columns(train, ["user_id", "item_id"], "train")
        self.ids = IdMap.from_train(train)
        self.counts = np.bincount(self.ids.items(train["item_id"]), minlength=self.ids.n_items).astype(np.float64)
        return self

    def scores(self, user_idx) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(user_idx), self.ids.n_items)).copy()
