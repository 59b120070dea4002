"""Models taught in a notebook and reused by later ones (the notebook that teaches each walks through it).

- ``BiasedMF`` (notebook 03): r̂(u, i) = μ + b_u + b_i + p_u · q_i, trained on explicit ratings with the
  per-rating L2 penalty of the matrix-factorisation loss. Inputs are ``(n, 2)`` integer arrays of
  ``[user_index, item_index]`` in ``IdMap.from_train(train)`` order.
- ``BPRMF`` and ``bpr_loss`` (notebook 03, §7a): matrix factorisation scored by p_u · q_i + b_i and trained on
  (user, positive, negative) triples with the BPR loss −ln σ(x_ui − x_uj) (Rendle et al., 2009).
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


@keras.saving.register_keras_serializable(package="recsys_helpers")
class BPRMF(keras.Model):
    """Matrix factorisation scored by x_ui = p_u · q_i + b_i, trained on (user, positive, negative) triples: the
    model returns x_uij = x_ui − x_uj, and ``bpr_loss`` turns it into −ln σ(x_uij). The L2 penalty ``reg`` is paid
    per triple on the vectors the triple uses (as ``BiasedMF`` pays it per rating)."""

    def __init__(self, n_users: int, n_items: int, n_factors: int = 64, reg: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.n_users, self.n_items, self.n_factors, self.reg = n_users, n_items, n_factors, reg
        init = keras.initializers.RandomNormal(stddev=0.01)
        self.user_factors = layers.Embedding(n_users, n_factors, embeddings_initializer=init, name="user_factors")
        self.item_factors = layers.Embedding(n_items, n_factors, embeddings_initializer=init, name="item_factors")
        self.item_bias = layers.Embedding(n_items, 1, embeddings_initializer="zeros", name="item_bias")

    def call(self, triples, training=False):
        p_u = self.user_factors(triples[:, 0])
        q_i, q_j = self.item_factors(triples[:, 1]), self.item_factors(triples[:, 2])
        b_i, b_j = ops.squeeze(self.item_bias(triples[:, 1]), -1), ops.squeeze(self.item_bias(triples[:, 2]), -1)
        if training and self.reg:
            penalty = ops.sum(p_u * p_u, -1) + ops.sum(q_i * q_i, -1) + ops.sum(q_j * q_j, -1) + b_i * b_i + b_j * b_j
            self.add_loss(self.reg * ops.mean(penalty))
        return ops.sum(p_u * (q_i - q_j), axis=-1) + b_i - b_j  # x_uij = x_ui − x_uj

    def scores(self, user_idx):
        """x_ui = p_u · q_i + b_i of every item for the users ``user_idx`` (no user bias: it would not change a
        user's order): the course's scoring contract."""
        p = ops.convert_to_numpy(self.user_factors.embeddings)[np.asarray(user_idx)]
        return p @ ops.convert_to_numpy(self.item_factors.embeddings).T + ops.convert_to_numpy(
            self.item_bias.embeddings)[:, 0]

    def get_config(self):
        return {**super().get_config(), "n_users": self.n_users, "n_items": self.n_items,
                "n_factors": self.n_factors, "reg": self.reg}


def bpr_loss(_, x_uij):
    """−ln σ(x_uij), written as softplus(−x_uij) for numerical stability; the 'labels' are unused."""
    return ops.softplus(-x_uij)


class WMF:
    """Weighted matrix factorisation by ALS: minimise Σ_{u,i} c_ui (p_ui − x_uᵀ y_i)² + λ (Σ‖x_u‖² + Σ‖y_i‖²) over
    *all* cells, with preference p_ui = 1 for an interaction (else 0) and confidence c_ui = 1 + α for an interaction
    (else 1). Each half step solves, for every row r of the binary matrix C with the other side's factors F fixed,

        (FᵀF + λI + α F_rᵀF_r) x_r = (1 + α) F_rᵀ1,      F_r: F's rows at the columns stored in row r,

    either exactly (``cg_steps=None``: one k × k solve per row) or approximately by ``cg_steps`` steps of the
    conjugate gradient method started from the previous x_r (Takács, Pilászy and Tikk, 2011; the default of the
    *implicit* library). Notebook 03 (§7b) derives both and chooses the defaults below on its validation split.
    """

    def __init__(self, factors: int = 128, alpha: float = 3.0, reg: float = 30.0, iterations: int = 20,
                 cg_steps: int | None = 3, seed: int = 42):
        if factors < 1 or alpha < 0 or reg < 0 or iterations < 1 or (cg_steps is not None and cg_steps < 1):
            raise ValueError(f"WMF needs factors >= 1, alpha >= 0, reg >= 0, iterations >= 1 and cg_steps >= 1 "
                             f"(or None for exact solves); got {factors}, {alpha}, {reg}, {iterations}, {cg_steps}")
        self.factors, self.alpha, self.reg, self.iterations = factors, alpha, reg, iterations
        self.cg_steps, self.seed = cg_steps, seed

    @staticmethod
    def half_step(C: sp.csr_matrix, F: np.ndarray, alpha: float, reg: float, block: int = 2048) -> np.ndarray:
        """Exact new factors of every row of C with the factors F of its columns fixed."""
        k = F.shape[1]
        shared = F.T @ F + reg * np.eye(k)
        rhs = (1 + alpha) * (C @ F)  # row r: (1 + α) · the sum of F over the columns of row r
        X = np.empty((C.shape[0], k))
        for start in range(0, C.shape[0], block):
            rows = range(start, min(start + block, C.shape[0]))
            cells = (F[C.indices[C.indptr[r]:C.indptr[r + 1]]] for r in rows)  # F_r for every row r
            grams = np.stack([F_r.T @ F_r for F_r in cells])
            X[start:start + len(rows)] = np.linalg.solve(shared + alpha * grams, rhs[rows.start:rows.stop, :, None])[:, :, 0]
        return X

    @staticmethod
    def cg_half_step(C: sp.csr_matrix, F: np.ndarray, X: np.ndarray, alpha: float, reg: float,
                     steps: int) -> np.ndarray:
        """``steps`` conjugate-gradient steps from X towards the exact half step, all rows at once. A_r v =
        (FᵀF + λI) v + α F_rᵀ(F_r v) is computed without building any k × k matrix per row."""
        shared = F.T @ F + reg * np.eye(F.shape[1])
        rows = np.repeat(np.arange(C.shape[0]), np.diff(C.indptr))  # the row of every stored cell
        F_cells = F[C.indices]  # f_c for every stored cell (r, c)

        def A(V):  # A_r v_r for every row r at once
            w = np.einsum("ij,ij->i", F_cells, V[rows])  # f_c · v_r for every stored cell
            return V @ shared + alpha * (sp.csr_matrix((w, C.indices, C.indptr), shape=C.shape) @ F)

        r = (1 + alpha) * (C @ F) - A(X)  # the residual b − A x of every row
        d, rr = r, np.einsum("ij,ij->i", r, r)
        for _ in range(steps):
            Ad = A(d)
            gamma = rr / np.maximum(np.einsum("ij,ij->i", d, Ad), 1e-30)  # the step to the minimum along d
            X = X + gamma[:, None] * d
            r = r - gamma[:, None] * Ad
            rr_new = np.einsum("ij,ij->i", r, r)
            d = r + (rr_new / np.maximum(rr, 1e-30))[:, None] * d  # the next direction, conjugate to the last
            rr = rr_new
        return X

    def fit(self, train: pd.DataFrame, on_iteration=None) -> "WMF":
        """Fit on the interactions of ``train`` (in ``IdMap.from_train(train)`` order). ``on_iteration(i, self)``,
        if given, is called after every ALS iteration i = 1, 2, … (notebook 03 checks validation NDCG there)."""
        index = train_index(train)
        self.ids, C = index.ids, index.seen.astype(np.float64)
        C_T = C.T.tocsr()
        self.item_factors = np.random.default_rng(self.seed).normal(0, 0.01, (C.shape[1], self.factors))
        self.user_factors = np.zeros((C.shape[0], self.factors))
        for iteration in range(1, self.iterations + 1):
            if self.cg_steps is None:
                self.user_factors = self.half_step(C, self.item_factors, self.alpha, self.reg)
                self.item_factors = self.half_step(C_T, self.user_factors, self.alpha, self.reg)
            else:
                self.user_factors = self.cg_half_step(C, self.item_factors, self.user_factors, self.alpha, self.reg,
                                                      self.cg_steps)
                self.item_factors = self.cg_half_step(C_T, self.user_factors, self.item_factors, self.alpha,
                                                      self.reg, self.cg_steps)
            if on_iteration is not None:
                on_iteration(iteration, self)
        return self

    def scores(self, user_idx) -> np.ndarray:
        """x_uᵀ y_i for every item: the course's scoring contract."""
        return self.user_factors[np.asarray(user_idx)] @ self.item_factors.T
