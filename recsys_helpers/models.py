"""Models taught in a notebook and reused by later ones (the notebook that teaches each walks through it).

- ``BiasedMF`` (notebook 03): r̂(u, i) = μ + b_u + b_i + p_u · q_i, trained on explicit ratings with the
  per-rating L2 penalty of the matrix-factorisation loss. Inputs are ``(n, 2)`` integer arrays of
  ``[user_index, item_index]`` in ``IdMap.from_train(train)`` order.
- ``WMF`` (notebook 03, §7b; the strongest earlier top-K model in notebook 04's tables): weighted matrix
  factorisation of implicit feedback (Hu, Koren and Volinsky, 2008) fitted by alternating least squares in numpy.
"""
from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import scipy.sparse as sp
from keras import layers, ops

from .interactions import train_index


@keras.saving.register_keras_serializable(package="recsys_helpers")
class BiasedMF(keras.Model):
    """Biased matrix factorisation: global mean + user bias + item bias + dot product of factors.

    Training minimises, over each batch of ratings,

        mean (r - r̂)²  +  reg · mean (‖p_u‖² + ‖q_i‖² + b_u² + b_i²)

    with ``loss="mse"`` in ``compile``: the penalty covers only the embeddings looked up for the batch (the
    per-rating L2 of the MF loss that SGD and ALS use), so a user or item is shrunk in proportion to how often
    it is seen, and rows that a batch does not touch are left alone. ``reg`` ≈ 0.1 suits MovieLens.
    """

    def __init__(self, n_users: int, n_items: int, n_factors: int = 64, reg: float = 0.1,
                 global_mean: float = 0.0, init_std: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.n_users, self.n_items, self.n_factors = n_users, n_items, n_factors
        self.reg, self.global_mean, self.init_std = reg, global_mean, init_std
        init = keras.initializers.RandomNormal(stddev=init_std)
        self.user_factors = layers.Embedding(n_users, n_factors, embeddings_initializer=init, name="user_factors")
        self.item_factors = layers.Embedding(n_items, n_factors, embeddings_initializer=init, name="item_factors")
        self.user_bias = layers.Embedding(n_users, 1, embeddings_initializer="zeros", name="user_bias")
        self.item_bias = layers.Embedding(n_items, 1, embeddings_initializer="zeros", name="item_bias")

    def call(self, pairs, training=False):
        users, items = pairs[:, 0], pairs[:, 1]
        p_u, q_i = self.user_factors(users), self.item_factors(items)  # (batch, n_factors) each
        b_u = ops.squeeze(self.user_bias(users), -1)  # (batch,)
        b_i = ops.squeeze(self.item_bias(items), -1)
        if training and self.reg:
            # per-rating L2 of the parameters this batch uses; Keras adds it to the compiled loss
            penalty = ops.sum(p_u * p_u, axis=-1) + ops.sum(q_i * q_i, axis=-1) + b_u * b_u + b_i * b_i
            self.add_loss(self.reg * ops.mean(penalty))
        return self.global_mean + b_u + b_i + ops.sum(p_u * q_i, axis=-1)

    def scores(self, user_idx):
        """Scores of every item for the users ``user_idx``: an (n, n_items) array for the top-K protocol (the
        course's scoring contract, see ``evaluation``)."""
        p = ops.convert_to_numpy(self.user_factors.embeddings)[user_idx]
        q = ops.convert_to_numpy(self.item_factors.embeddings)
        bu = ops.convert_to_numpy(self.user_bias.embeddings)[user_idx]
        bi = ops.convert_to_numpy(self.item_bias.embeddings)[:, 0]
        return self.global_mean + bu + bi[None, :] + p @ q.T

    def get_config(self):
        return {**super().get_config(), "n_users": self.n_users, "n_items": self.n_items,
                "n_factors": self.n_factors, "reg": self.reg, "global_mean": self.global_mean,
                "init_std": self.init_std}


class WMF:
    """Weighted matrix factorisation by ALS: minimise Σ_{u,i} c_ui (p_ui − x_uᵀ y_i)² + λ (Σ‖x_u‖² + Σ‖y_i‖²) over
    *all* cells, with preference p_ui = 1 for an interaction (else 0) and confidence c_ui = 1 + α for an interaction
    (else 1). Each half step solves, for every row r of the binary matrix C with the other side's factors F fixed,
    x_r = (FᵀF + α F_rᵀF_r + λI)⁻¹ (1 + α) F_rᵀ1, where F_r stacks F's rows at the columns of row r."""

    def __init__(self, factors: int = 64, alpha: float = 10.0, reg: float = 100.0, iterations: int = 10,
                 seed: int = 42):
        if factors < 1 or alpha < 0 or reg < 0 or iterations < 1:
            raise ValueError(f"WMF needs factors >= 1, alpha >= 0, reg >= 0 and iterations >= 1; got {factors}, "
                             f"{alpha}, {reg}, {iterations}")
        self.factors, self.alpha, self.reg, self.iterations, self.seed = factors, alpha, reg, iterations, seed

    @staticmethod
    def half_step(C: sp.csr_matrix, F: np.ndarray, alpha: float, reg: float, block: int = 2048) -> np.ndarray:
        """New factors of every row of C with the factors F of its columns fixed."""
        k = F.shape[1]
        shared = F.T @ F + reg * np.eye(k)
        rhs = (1 + alpha) * (C @ F)  # row r: (1 + α) · the sum of F over the columns of row r
        X = np.empty((C.shape[0], k))
        for start in range(0, C.shape[0], block):
            rows = range(start, min(start + block, C.shape[0]))
            grams = np.stack([F[C.indices[C.indptr[r]:C.indptr[r + 1]]].T @ F[C.indices[C.indptr[r]:C.indptr[r + 1]]]
                              for r in rows])
            X[start:start + len(rows)] = np.linalg.solve(shared + alpha * grams, rhs[rows.start:rows.stop, :, None])[:, :, 0]
        return X

    def fit(self, train: pd.DataFrame) -> "WMF":
        index = train_index(train)
        self.ids, C = index.ids, index.seen
        C_T = C.T.tocsr()
        self.item_factors = np.random.default_rng(self.seed).normal(0, 0.01, (C.shape[1], self.factors))
        for _ in range(self.iterations):
            self.user_factors = self.half_step(C, self.item_factors, self.alpha, self.reg)
            self.item_factors = self.half_step(C_T, self.user_factors, self.alpha, self.reg)
        return self

    def scores(self, user_idx) -> np.ndarray:
        """x_uᵀ y_i for every item: the course's scoring contract."""
        return self.user_factors[np.asarray(user_idx)] @ self.item_factors.T
