"""Models taught in a notebook and reused by later ones (the notebook that teaches each walks through it).

- ``BiasedMF`` (notebook 03): r̂(u, i) = μ + b_u + b_i + p_u · q_i, trained on explicit ratings with the
  per-rating L2 penalty of the matrix-factorisation loss. Inputs are ``(n, 2)`` integer arrays of
  ``[user_index, item_index]`` in ``IdMap.from_train(train)`` order.
- ``BPRMF`` and ``bpr_loss`` (notebook 03, §7a): matrix factorisation scored by p_u · q_i + b_i and trained on
  (user, positive, negative) triples with the BPR loss −ln σ(x_ui − x_uj) (Rendle et al., 2009).
- ``WMF`` (notebook 03, §7b; the strongest earlier top-K model in notebook 04's tables): weighted matrix
  factorisation of implicit feedback (Hu, Koren and Volinsky, 2008) fitted by alternating least squares in numpy.
- ``EASE`` (notebook 07, §2; compared against in notebook 08): Steck's closed-form linear autoencoder, solved in the
  smaller of the user and item spaces.
- ``MultVAE`` (notebook 07, §5, which builds it layer by layer; compared against in notebook 08): the variational
  autoencoder with a multinomial likelihood and KL annealing (Liang et al., 2018), in one compact class.
- ``NextItemModel``, ``sampled_softmax_loss`` and ``SASRec`` (notebook 06, §3 and §4; SASRec's attention explains
  recommendations in notebook 09): next-item models over padded histories (``pad_histories`` convention) trained
  with a popularity-sampled softmax and the logQ correction.

Every model takes a ``seed`` and is deterministic given it: each randomly initialised layer gets its own seed, drawn
from the model's by ``Seeds``. (In Keras 3 one initializer instance called twice, or two initializers given the same
seed, return the same values: two tables that shared one would start equal.)
"""
from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import scipy.sparse as sp
from keras import layers, ops

from .baselines import _user_indices
from .checks import require_finite, require_finite_array, require_positive_int, require_seed
from .interactions import pad_histories, train_index


class Seeds:
    """The seeds of one model's layers, drawn from the model's ``seed``: ``seeds()`` gives the next one. The same
    model seed gives the same sequence; every draw differs from the others (NumPy's ``SeedSequence`` of
    ``[seed, draw]``), so no two layers start alike."""

    def __init__(self, seed, name: str = "seed"):
        self.seed, self.drawn = require_seed(seed, name), 0

    def __call__(self) -> int:
        self.drawn += 1
        return int(np.random.SeedSequence([self.seed, self.drawn]).generate_state(1)[0] >> 1)  # < 2**31 for any backend


def _not_fitted(model: str, fit: str = "fit") -> RuntimeError:
    return RuntimeError(f"{model} has not been fitted yet: call {fit} first, then score")


def _dense_matrix(X, what: str) -> np.ndarray:
    """``X`` (dense, or a SciPy sparse matrix such as ``train_index(train).seen``) as a finite 2-D float array."""
    X = require_finite_array(X.toarray() if sp.issparse(X) else X, what)
    if X.ndim != 2 or X.size == 0:
        raise ValueError(f"{what} must be a non-empty 2-D users × items matrix, got shape {X.shape}")
    return X


class _IndexInputs:
    """Mixed into the Keras models whose inputs are rows of their tables: ``fit``, ``predict``, ``evaluate`` and a
    direct call refuse a NumPy index outside its table before TensorFlow sees it (on a CPU TensorFlow stops with an
    InvalidArgumentError deep in a graph; on a GPU its gather returns zeros, without a word). Subclasses list
    ``(what, values, table size)`` in ``_index_inputs(x)``."""

    def _index_inputs(self, x) -> list:
        return []

    def _check_indices(self, x):
        for what, values, size in self._index_inputs(x):
            values = np.asarray(values)
            bad = values[(values < 0) | (values >= size)]
            if bad.size:
                raise IndexError(f"{type(self).__name__}: {what} {bad[0]} is outside its table (0 to {size - 1}); "
                                 "build the model with the sizes of the IdMap the indices come from")

    def __call__(self, *args, **kwargs):
        if args:
            self._check_indices(args[0])
        return super().__call__(*args, **kwargs)

    def fit(self, x=None, *args, **kwargs):
        self._check_indices(x)
        return super().fit(x, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._check_indices(x)
        return super().predict(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        self._check_indices(x)
        return super().evaluate(x, *args, **kwargs)


def _columns(x, n_columns: int):
    """The columns of a NumPy ``(n, n_columns)`` index array, or None for any other input (tensors, data sets)."""
    return x.T if isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[1] == n_columns else None


def _embeddings(model, layer) -> np.ndarray:
    if not layer.built:
        raise RuntimeError(f"{type(model).__name__} has no weights yet: train it (fit) or call it on a batch of "
                           "indices before asking for scores")
    return ops.convert_to_numpy(layer.embeddings)


@keras.saving.register_keras_serializable(package="recsys_helpers")
class BiasedMF(_IndexInputs, keras.Model):
    """Biased matrix factorisation: global mean + user bias + item bias + dot product of factors.

    Training minimises, over each batch of ratings,

        mean (r - r̂)²  +  reg · mean (‖p_u‖² + ‖q_i‖² + b_u² + b_i²)

    with ``loss="mse"`` in ``compile``: the penalty covers only the embeddings looked up for the batch (the
    per-rating L2 of the MF loss that SGD and ALS use), so a user or item is shrunk in proportion to how often
    it is seen, and rows that a batch does not touch are left alone. ``reg`` ≈ 0.1 suits MovieLens. The factors
    start as N(0, init_std²) draws, seeded by ``seed``; the biases start at 0.
    """

    def __init__(self, n_users: int, n_items: int, n_factors: int = 64, reg: float = 0.1,
                 global_mean: float = 0.0, init_std: float = 0.1, seed: int = 42, **kwargs):
        super().__init__(**kwargs)
        self.n_users, self.n_items = require_positive_int(n_users, "n_users"), require_positive_int(n_items, "n_items")
        self.n_factors = require_positive_int(n_factors, "n_factors")
        self.reg = require_finite(reg, "reg", non_negative=True)
        self.global_mean = require_finite(global_mean, "global_mean")
        self.init_std, seeds = require_finite(init_std, "init_std", positive=True), Seeds(seed)
        self.seed = seeds.seed
        self.user_factors = layers.Embedding(self.n_users, self.n_factors, name="user_factors",
                                             embeddings_initializer=keras.initializers.RandomNormal(
                                                 stddev=self.init_std, seed=seeds()))
        self.item_factors = layers.Embedding(self.n_items, self.n_factors, name="item_factors",
                                             embeddings_initializer=keras.initializers.RandomNormal(
                                                 stddev=self.init_std, seed=seeds()))
        self.user_bias = layers.Embedding(self.n_users, 1, embeddings_initializer="zeros", name="user_bias")
        self.item_bias = layers.Embedding(self.n_items, 1, embeddings_initializer="zeros", name="item_bias")

    def _index_inputs(self, x):
        pairs = _columns(x, 2)
        return [] if pairs is None else [("user index", pairs[0], self.n_users), ("item index", pairs[1], self.n_items)]

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
        p = _embeddings(self, self.user_factors)
        user_idx = _user_indices(user_idx, self.n_users, "BiasedMF")
        q = ops.convert_to_numpy(self.item_factors.embeddings)
        bu = ops.convert_to_numpy(self.user_bias.embeddings)[user_idx]
        bi = ops.convert_to_numpy(self.item_bias.embeddings)[:, 0]
        return self.global_mean + bu + bi[None, :] + p[user_idx] @ q.T

    def get_config(self):
        return {**super().get_config(), "n_users": self.n_users, "n_items": self.n_items,
                "n_factors": self.n_factors, "reg": self.reg, "global_mean": self.global_mean,
                "init_std": self.init_std, "seed": self.seed}


@keras.saving.register_keras_serializable(package="recsys_helpers")
class BPRMF(_IndexInputs, keras.Model):
    """Matrix factorisation scored by x_ui = p_u · q_i + b_i, trained on (user, positive, negative) triples: the
    model returns x_uij = x_ui − x_uj, and ``bpr_loss`` turns it into −ln σ(x_uij). The L2 penalty ``reg`` is paid
    per triple on the vectors the triple uses (as ``BiasedMF`` pays it per rating). The factors start as
    N(0, 0.01²) draws, seeded by ``seed``."""

    def __init__(self, n_users: int, n_items: int, n_factors: int = 64, reg: float = 1e-3, seed: int = 42,
                 **kwargs):
        super().__init__(**kwargs)
        self.n_users, self.n_items = require_positive_int(n_users, "n_users"), require_positive_int(n_items, "n_items")
        self.n_factors = require_positive_int(n_factors, "n_factors")
        self.reg, seeds = require_finite(reg, "reg", non_negative=True), Seeds(seed)
        self.seed = seeds.seed
        self.user_factors = layers.Embedding(self.n_users, self.n_factors, name="user_factors",
                                             embeddings_initializer=keras.initializers.RandomNormal(
                                                 stddev=0.01, seed=seeds()))
        self.item_factors = layers.Embedding(self.n_items, self.n_factors, name="item_factors",
                                             embeddings_initializer=keras.initializers.RandomNormal(
                                                 stddev=0.01, seed=seeds()))
        self.item_bias = layers.Embedding(self.n_items, 1, embeddings_initializer="zeros", name="item_bias")

    def _index_inputs(self, x):
        seen = getattr(x, "seen", None)  # a training.NegativeSampling: its users, and items up to its width
        if sp.issparse(seen):
            return [("user index", x.pos_users, self.n_users), ("item index", [seen.shape[1] - 1], self.n_items)]
        triples = _columns(x, 3)
        return [] if triples is None else [("user index", triples[0], self.n_users),
                                           ("item index", triples[1:], self.n_items)]

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
        p = _embeddings(self, self.user_factors)[_user_indices(user_idx, self.n_users, "BPRMF")]
        return p @ ops.convert_to_numpy(self.item_factors.embeddings).T + ops.convert_to_numpy(
            self.item_bias.embeddings)[:, 0]

    def get_config(self):
        return {**super().get_config(), "n_users": self.n_users, "n_items": self.n_items,
                "n_factors": self.n_factors, "reg": self.reg, "seed": self.seed}


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
    The item factors start as N(0, 0.01²) draws seeded by ``seed``, the user factors at 0.
    """

    def __init__(self, factors: int = 128, alpha: float = 3.0, reg: float = 30.0, iterations: int = 20,
                 cg_steps: int | None = 3, seed: int = 42):
        self.factors = require_positive_int(factors, "factors")
        self.alpha = require_finite(alpha, "alpha", non_negative=True)
        self.reg = require_finite(reg, "reg", non_negative=True)
        self.iterations = require_positive_int(iterations, "iterations")
        if cg_steps is not None:
            cg_steps = require_positive_int(cg_steps, "cg_steps (or None for exact solves)")
        self.cg_steps, self.seed = cg_steps, require_seed(seed)

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
        if on_iteration is not None and not callable(on_iteration):
            raise TypeError(f"on_iteration must be a function (i, model) or None, got {type(on_iteration).__name__}")
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
        if not hasattr(self, "user_factors"):
            raise _not_fitted("WMF", "fit(train)")
        return self.user_factors[_user_indices(user_idx, len(self.user_factors), "WMF")] @ self.item_factors.T


class EASE:
    """Steck's EASE (notebook 07, §2): scores x B with B = I − P diag(P)⁻¹ (zero diagonal),
    P = (XᵀX + λI)⁻¹, computed in the item space or, when there are fewer users than items, in the user space by the Woodbury
    identity (B is then never formed). ``fit`` takes a binary users × items matrix, dense or SciPy sparse (such as
    ``train_index(train).seen``); ``score_rows`` scores any rows over the same items (fold-in for users who were not
    fitted)."""

    def __init__(self, lam: float):
        try:
            self.lam = require_finite(lam, "lam", positive=True)
        except ValueError:
            raise ValueError(f"EASE needs a positive, finite number λ (lam), got {lam!r}; notebook 07 tries 50 to "
                             "1600") from None

    def fit(self, X) -> "EASE":
        X = _dense_matrix(X, "EASE.fit's X")
        self.X, n_users, n_items = X, *X.shape
        self.user_space = n_users < n_items
        if self.user_space:
            self.KX = np.linalg.solve(X @ X.T + self.lam * np.eye(n_users), X)  # (XXᵀ + λI)⁻¹ X
            self.diag_P = (1.0 - np.einsum("ui,ui->i", X, self.KX)) / self.lam
        else:
            P = np.linalg.inv(X.T @ X + self.lam * np.eye(n_items))
            self.diag_P = np.diag(P).copy()
            self.B = np.eye(n_items) - P / self.diag_P  # B = I - P diag(P)^-1: zero diagonal
        return self

    def _fitted(self) -> np.ndarray:
        if not hasattr(self, "X"):
            raise _not_fitted("EASE", "fit(X)")
        return self.X

    def score_rows(self, rows) -> np.ndarray:
        """Scores of every item for user rows (binary, the fitted items as columns; fold-in for new users)."""
        n_items = self._fitted().shape[1]
        rows = require_finite_array(rows.toarray() if sp.issparse(rows) else rows, "rows")
        if rows.ndim != 2 or rows.shape[1] != n_items:
            raise ValueError(f"rows must be a 2-D array over the {n_items} fitted items, got shape {rows.shape}")
        if not self.user_space:
            return rows @ self.B
        rows_P = (rows - (rows @ self.X.T) @ self.KX) / self.lam  # x P, without forming P
        return rows - rows_P / self.diag_P

    def scores(self, user_idx) -> np.ndarray:
        """Scores of the fitted users ``user_idx``: the course's scoring contract."""
        X = self._fitted()
        return self.score_rows(X[_user_indices(user_idx, X.shape[0], "EASE")])

    def column(self, j: int) -> np.ndarray:
        """Column j of B: the weight of every item in the prediction of item j."""
        n_items = self._fitted().shape[1]
        if isinstance(j, (bool, np.bool_)) or not isinstance(j, (int, np.integer)) or not 0 <= j < n_items:
            raise IndexError(f"EASE.column: j must be an item index from 0 to {n_items - 1}, got {j!r}")
        if not self.user_space:
            return self.B[:, j]
        e = np.zeros(n_items)
        e[j] = 1.0
        P_j = (e - self.X.T @ self.KX[:, j]) / self.lam
        return np.where(np.arange(len(e)) == j, 0.0, -P_j / self.diag_P[j])


class _Reparameterise(layers.Layer):
    """z = μ + σ ⊙ ε while training (μ otherwise); adds β · KL(q(z|x) ‖ N(0, I)), averaged over the batch."""

    def __init__(self, seed, **kwargs):
        super().__init__(**kwargs)
        self.beta = keras.Variable(0.0, trainable=False, name="beta")
        self.noise = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        mu, log_var = inputs
        self.add_loss(self.beta * 0.5 * ops.mean(ops.sum(ops.exp(log_var) + mu ** 2 - 1.0 - log_var, axis=-1)))
        if not training:
            return mu
        return mu + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mu), seed=self.noise)


class _Anneal(keras.callbacks.Callback):
    """β = beta · min(1, step / (anneal_epochs · steps per epoch)), set before every training step."""

    def __init__(self, layer, beta, anneal_epochs):
        super().__init__()
        self.layer, self.beta, self.anneal_epochs, self.step = layer, beta, anneal_epochs, 0

    def on_train_batch_begin(self, batch, logs=None):
        total = max(1, self.anneal_epochs * self.params["steps"])
        self.layer.beta.assign(self.beta * min(1.0, self.step / total))
        self.step += 1


def multinomial_nll(x, logits):
    """−Σᵢ xᵢ log softmax(logits)ᵢ per user, averaged over the batch (the Mult-DAE and Mult-VAE likelihood)."""
    return -ops.mean(ops.sum(x * ops.log_softmax(logits, axis=-1), axis=-1))


def _dropout_rate(dropout) -> float:
    dropout = require_finite(dropout, "dropout", non_negative=True)
    if dropout >= 1:
        raise ValueError(f"dropout must be in [0, 1) (the share of inputs dropped while training), got {dropout}")
    return dropout


class MultVAE:
    """Mult-VAE (Liang et al., 2018), built step by step in notebook 07, §5, with its settings as defaults:
    L2-normalised input, input dropout, encoder [items → hidden → 2 × latent] with tanh, the reparameterisation
    trick, decoder [latent → hidden → items], the multinomial likelihood, and β grown linearly from 0 to ``beta``
    over ``anneal_epochs`` epochs. ``fit`` takes a binary users × items matrix (dense or SciPy sparse); scores are
    the decoder's logits at z = μ(x) for the user's row (fold-in), ``score_rows`` for any rows over the same items.
    Every layer's weights and the noise are seeded from ``seed``."""

    def __init__(self, hidden: int = 256, latent: int = 64, dropout: float = 0.5, beta: float = 0.2,
                 anneal_epochs: int = 20, lr: float = 2e-3, batch_size: int = 64, seed: int = 42):
        self.hidden, self.latent = require_positive_int(hidden, "hidden"), require_positive_int(latent, "latent")
        self.dropout, self.beta = _dropout_rate(dropout), require_finite(beta, "beta", non_negative=True)
        self.anneal_epochs = require_positive_int(anneal_epochs, "anneal_epochs", minimum=0)
        self.lr = require_finite(lr, "lr", positive=True)
        self.batch_size, self.seed = require_positive_int(batch_size, "batch_size"), require_seed(seed)

    def build(self, n_items: int) -> keras.Model:
        seeds = Seeds(self.seed)
        glorot = lambda: keras.initializers.GlorotUniform(seed=seeds())  # noqa: E731  (one seed per layer)
        row = keras.Input((n_items,), name="history")
        h = layers.Dropout(self.dropout, seed=seeds(), name="input_dropout")(
            layers.UnitNormalization(name="l2_norm")(row))
        h = layers.Dense(self.hidden, activation="tanh", kernel_initializer=glorot(), name="encoder")(h)
        mu = layers.Dense(self.latent, kernel_initializer=glorot(), name="mu")(h)
        log_var = layers.Dense(self.latent, kernel_initializer=glorot(), name="log_var")(h)
        z = _Reparameterise(seeds(), name="z")([mu, log_var])
        hidden = layers.Dense(self.hidden, activation="tanh", kernel_initializer=glorot(), name="decoder")(z)
        out = layers.Dense(n_items, kernel_initializer=glorot(), name="decoder_out")(hidden)
        return keras.Model(row, out, name="mult_vae")

    def fit(self, X, epochs: int) -> "MultVAE":
        X = _dense_matrix(X, "MultVAE.fit's X").astype(np.float32)
        epochs = require_positive_int(epochs, "epochs")
        keras.utils.set_random_seed(self.seed)  # the order of the batches
        self.X, self.model = X, self.build(X.shape[1])
        self.model.compile(optimizer=keras.optimizers.Adam(self.lr), loss=multinomial_nll)
        anneal = _Anneal(self.model.get_layer("z"), self.beta, self.anneal_epochs)
        self.history = self.model.fit(X, X, batch_size=self.batch_size, epochs=epochs, shuffle=True, verbose=0,
                                      callbacks=[anneal])
        return self

    def score_rows(self, rows) -> np.ndarray:
        if not hasattr(self, "model"):
            raise _not_fitted("MultVAE", "fit(X, epochs)")
        rows = require_finite_array(rows.toarray() if sp.issparse(rows) else rows, "rows")
        if rows.ndim != 2 or rows.shape[1] != self.X.shape[1]:
            raise ValueError(f"rows must be a 2-D array over the {self.X.shape[1]} fitted items, got shape "
                             f"{rows.shape}")
        return ops.convert_to_numpy(self.model(rows.astype(np.float32), training=False))

    def scores(self, user_idx) -> np.ndarray:
        if not hasattr(self, "X"):
            raise _not_fitted("MultVAE", "fit(X, epochs)")
        return self.score_rows(self.X[_user_indices(user_idx, self.X.shape[0], "MultVAE")])


class NextItemModel(_IndexInputs, keras.Model):
    """Shared part of the next-item models of notebook 06: item embeddings (index 0 = padding), output embeddings
    and biases, a sampled softmax for training and ``scores_next`` for the sequential protocol. Subclasses define
    ``encode(history, training)``, which turns a padded batch of histories into one state per position, and draw
    the seeds of their own layers from ``self.seeds()`` (e.g. ``kernel_initializer=GlorotUniform(seed=self.seeds())``).

    ``log_q`` (n_items,) holds the log of each movie's expected count among the ``n_sampled`` negatives (the logQ
    correction); ``popularity_bias`` (n_items + 1,) starts the output biases (index 0 = padding)."""

    def __init__(self, n_items, log_q, popularity_bias, max_len=50, dim=64, dropout=0.2, n_sampled=1024, seed=42,
                 **kwargs):
        super().__init__(**kwargs)
        n_items = self.n_items = require_positive_int(n_items, "n_items")
        log_q, popularity_bias = np.asarray(log_q, "float32"), np.asarray(popularity_bias, "float32")
        if log_q.shape != (n_items,) or popularity_bias.shape != (n_items + 1,):
            raise ValueError(f"log_q must have shape ({n_items},) and popularity_bias ({n_items + 1},) (index 0 is "
                             f"padding), not {log_q.shape} and {popularity_bias.shape}")
        require_finite_array(log_q, "log_q"), require_finite_array(popularity_bias, "popularity_bias")
        self.max_len, self.dim = require_positive_int(max_len, "max_len"), require_positive_int(dim, "dim")
        self.n_sampled, self.log_q = require_positive_int(n_sampled, "n_sampled"), log_q
        self.seeds = Seeds(seed)
        self.item_embedding = layers.Embedding(n_items + 1, dim, mask_zero=True, name="item_embedding",
                                               embeddings_initializer=keras.initializers.RandomNormal(
                                                   stddev=0.1, seed=self.seeds()))
        self.output_embedding = layers.Embedding(n_items + 1, dim, name="output_embedding",
                                                 embeddings_initializer=keras.initializers.RandomNormal(
                                                     stddev=0.1, seed=self.seeds()))
        self.output_bias = self.add_weight(shape=(n_items + 1,), initializer=keras.initializers.Constant(
            popularity_bias), name="output_bias")
        self.dropout = layers.Dropout(_dropout_rate(dropout), seed=self.seeds())
        self.sampler = keras.random.SeedGenerator(self.seeds())
        self.predict_state = None  # set on the first scores_next call

    def _index_inputs(self, x):
        if not isinstance(x, dict):
            return []
        return [(f"{key} value (movie index + 1, 0 = padding)", x[key], self.n_items + 1)
                for key in ("history", "target") if isinstance(x.get(key), np.ndarray)]

    def logits(self, states, items):
        """Scores of ``items`` (indices + 1), one set shared by all states: (..., dim) × (n,) → (..., n)."""
        return ops.matmul(states, ops.transpose(self.output_embedding(items))) + ops.take(self.output_bias, items)

    def call(self, inputs, training=False):
        """Training logits: column 0 is each position's true next movie, the rest are the batch's negatives."""
        states = self.encode(inputs["history"], training)  # (batch, T, dim)
        target = ops.cast(inputs["target"], "int32")  # (batch, T), movie index + 1
        negatives = ops.cast(keras.random.categorical(self.log_q[None], self.n_sampled, seed=self.sampler)[0],
                             "int32") + 1
        log_q_padded = ops.concatenate([ops.zeros((1,)), self.log_q])
        positive = (ops.sum(states * self.output_embedding(target), axis=-1) + ops.take(self.output_bias, target)
                    - ops.take(log_q_padded, target))
        negative = self.logits(states, negatives) - ops.take(log_q_padded, negatives)
        negative = ops.where(target[..., None] == negatives, -1e9, negative)  # a negative that is the true target
        return ops.concatenate([positive[..., None], negative], axis=-1)

    def scores_next(self, user_idx, histories):
        """The sequential protocol's scoring contract: every movie's score after each history (its last T movies)."""
        padded = pad_histories(histories, self.max_len)
        if padded.size and padded.max() > self.n_items:
            raise IndexError(f"{type(self).__name__}.scores_next: the histories hold item index {padded.max() - 1}, "
                             f"but the model knows {self.n_items} items (0 to {self.n_items - 1}); map them with the "
                             "IdMap of its training data")
        if self.predict_state is None:  # a functional view of encode's last state, for Keras's compiled predict()
            history = keras.Input((self.max_len,), dtype="int32")
            self.predict_state = keras.Model(history, self.encode(history)[:, -1]).predict
        states = self.predict_state(padded, batch_size=1024, verbose=0)
        return ops.convert_to_numpy(self.logits(states, ops.arange(1, self.output_bias.shape[0])))


def sampled_softmax_loss(y_true, logits):
    """Cross-entropy with the true next movie in column 0 (``NextItemModel.call``'s layout); ``y_true`` is ignored,
    and padded positions get weight 0 through ``sample_weight``."""
    return keras.losses.sparse_categorical_crossentropy(ops.zeros(ops.shape(logits)[:-1], "int32"), logits,
                                                        from_logits=True)


class _SeededAttention(layers.MultiHeadAttention):
    """Multi-head attention whose query, key, value and output kernels each get their own seed: Keras clones one
    kernel initializer for all four, so a seeded one would start them equal, and an unseeded one would not follow
    the model's seed."""

    def __init__(self, *args, seeds: Seeds, **kwargs):
        super().__init__(*args, seed=seeds(), **kwargs)  # (the attention dropout's seed)
        self._seeds = seeds

    def _get_common_kwargs_for_sublayer(self):
        return {**super()._get_common_kwargs_for_sublayer(),
                "kernel_initializer": keras.initializers.GlorotUniform(seed=self._seeds())}


class SASRec(NextItemModel):
    """SASRec (Kang and McAuley, 2018): causal self-attention blocks over item + position embeddings.

    Padded positions are zeroed after the embedding and after every block; ``mask_padding=True`` also hides them
    from attention (the paper's code). ``encode(..., return_attention=True)`` also returns the last block's weights,
    shape (batch, heads, T, T)."""

    def __init__(self, n_items, log_q, popularity_bias, blocks=2, heads=1, dim=64, dropout=0.2, mask_padding=False,
                 seed=42, **kwargs):
        super().__init__(n_items, log_q, popularity_bias, dim=dim, dropout=dropout, seed=seed, **kwargs)
        blocks, heads = require_positive_int(blocks, "blocks"), require_positive_int(heads, "heads")
        if heads > self.dim:
            raise ValueError(f"heads={heads} is more than dim={self.dim}: each head needs at least one dimension")
        self.mask_padding, dim, seeds = mask_padding, self.dim, self.seeds
        glorot = lambda: keras.initializers.GlorotUniform(seed=seeds())  # noqa: E731  (one seed per layer)
        self.position_embedding = layers.Embedding(self.max_len, dim, name="position_embedding",
                                                   embeddings_initializer=keras.initializers.RandomUniform(
                                                       -0.05, 0.05, seed=seeds()))
        self.attention = [_SeededAttention(heads, dim // heads, dropout=self.dropout.rate, seeds=seeds,
                                           name=f"attention_{b}") for b in range(blocks)]
        self.norm_attention = [layers.LayerNormalization(name=f"norm_attention_{b}") for b in range(blocks)]
        self.norm_feed_forward = [layers.LayerNormalization(name=f"norm_ff_{b}") for b in range(blocks)]
        self.feed_forward = [(layers.Dense(dim, activation="relu", kernel_initializer=glorot(), name=f"ff_{b}_1"),
                              layers.Dense(dim, kernel_initializer=glorot(), name=f"ff_{b}_2")) for b in range(blocks)]
        self.norm_out = layers.LayerNormalization(name="norm_out")

    def encode(self, history, training=False, return_attention=False, item_vectors=None):
        """States (batch, T, dim) of a padded batch of histories; ``item_vectors`` (batch, T, dim), if given, replace
        the looked-up item embeddings (integrated gradients in notebook 09 scales them)."""
        keep = ops.cast(history > 0, "float32")[..., None]  # 1 for a movie, 0 for padding
        items = self.item_embedding(history) if item_vectors is None else item_vectors
        x = items * self.dim ** 0.5 + self.position_embedding(ops.arange(self.max_len))[None]
        x = self.dropout(x, training=training) * keep
        causal = ops.tril(ops.ones((self.max_len, self.max_len), dtype="bool"))[None]  # position t sees s <= t
        mask = ops.logical_and(causal, (history > 0)[:, None, :]) if self.mask_padding else causal
        for attention, norm_a, norm_f, (ff_1, ff_2) in zip(self.attention, self.norm_attention,
                                                           self.norm_feed_forward, self.feed_forward):
            a, weights = attention(norm_a(x), x, attention_mask=mask, training=training,
                                   return_attention_scores=True)
            x = x + a
            x = (x + self.dropout(ff_2(self.dropout(ff_1(norm_f(x)), training=training)), training=training)) * keep
        x = self.norm_out(x)
        return (x, weights) if return_attention else x
