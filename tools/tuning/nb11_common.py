"""Shared code of notebook 11's validation searches (the same code as the notebook's cells: data, content features,
the two-tower model, LightGCN, candidates and ranker features). Validation only: models are fitted on the inner part
of the training split and measured on its validation part; the test split is never loaded into a search.
"""
import os
import sys
import time

sys.path.insert(0, os.getcwd())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("RECSYS_DATA_DIR", "/work/shared/datasets")
from recsys_helpers import env  # noqa: E402

tf = env.setup(42)
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from keras import layers, ops  # noqa: E402

from recsys_helpers.content import tag_words  # noqa: E402
from recsys_helpers.data import load_movielens  # noqa: E402
from recsys_helpers.evaluation import evaluate_ranking  # noqa: E402
from recsys_helpers.interactions import IdMap  # noqa: E402
from recsys_helpers.split import stratified_split  # noqa: E402

SEED, K = 42, 10


def load(dataset="ml-latest-small"):
    data = load_movielens(dataset)
    train, _ = stratified_split(data.ratings, 0.2, SEED)  # the test part is dropped here
    inner, val = stratified_split(train, 0.2, SEED)
    return data, inner, val


def content_matrix(data, ids, n_words=1000):
    """Movie content in the id map's order: genres (multi-hot), year (scaled) + unknown-year flag, tag words
    (binary, the n_words most frequent)."""
    items = data.items.set_index("item_id").reindex(ids.item_ids)
    genres = sorted({g for gs in items.genres for g in gs if g != "(no genres listed)"})
    G = np.array([[g in gs for g in genres] for gs in items.genres], np.float32)
    year = items.year.to_numpy(np.float64)
    known = ~np.isnan(year)
    y = np.where(known, (year - np.nanmean(year)) / np.nanstd(year), 0.0)
    words = tag_words(data.tags).reindex(ids.item_ids).fillna("")
    counts = pd.Series(" ".join(words).split()).value_counts()
    vocab = {w: j for j, w in enumerate(counts.index[:n_words])}
    T = np.zeros((ids.n_items, len(vocab)), np.float32)
    for row, text in enumerate(words):
        for w in text.split():
            if w in vocab:
                T[row, vocab[w]] = 1.0
    return np.hstack([G, y[:, None], (~known)[:, None], T]).astype(np.float32), genres


def sparse_tensor(X):
    X = X.tocoo()
    return tf.sparse.reorder(tf.SparseTensor(np.column_stack([X.row, X.col]).astype("int64"),
                                             X.data.astype("float32"), X.shape))


class TwoTower(keras.Model):
    """User tower: mean of the user's training movies' embeddings (the target left out while training) + log
    activity → Dense; movie tower: ID embedding + Dense(content) → Dense. Cosine similarity / temperature."""

    def __init__(self, X, content, dim=64, temperature=0.05, log_q=None, id_dropout=0.0, seed=42, **kw):
        super().__init__(**kw)
        rng = np.random.SeedSequence(seed).generate_state(8).tolist()
        n_users, n_items = X.shape
        self.X = sparse_tensor(X)
        self.n_seen = np.maximum(np.asarray(X.sum(1)).ravel(), 1).astype("float32")
        self.content = ops.convert_to_tensor(content)
        self.log_q = None if log_q is None else ops.convert_to_tensor(np.asarray(log_q, "float32"))
        self.temperature, self.id_dropout = temperature, id_dropout
        init = keras.initializers.RandomNormal
        self.history_embedding = layers.Embedding(n_items, dim, embeddings_initializer=init(stddev=0.1, seed=rng[0]))
        self.item_embedding = layers.Embedding(n_items, dim, embeddings_initializer=init(stddev=0.1, seed=rng[1]))
        self.content_dense = layers.Dense(dim, kernel_initializer=keras.initializers.GlorotUniform(seed=rng[2]))
        self.user_dense = layers.Dense(dim, kernel_initializer=keras.initializers.GlorotUniform(seed=rng[3]))
        self.item_dense = layers.Dense(dim, kernel_initializer=keras.initializers.GlorotUniform(seed=rng[4]))
        self.dropper = keras.random.SeedGenerator(rng[5])
        self.history_embedding.build((None,))

    def user_vectors(self, users, leave_out=None):
        H = ops.matmul(self.X, self.history_embedding.embeddings)  # the sum of each user's movies' embeddings
        h, n = ops.take(H, users, axis=0), ops.take(self.n_seen, users)
        if leave_out is not None:  # while training, the target movie is not part of its own user's history
            h, n = h - self.history_embedding(leave_out), ops.maximum(n - 1, 1)
        x = ops.concatenate([h / n[:, None], ops.log(n)[:, None] / 5.0], axis=1)
        return ops.normalize(self.user_dense(x), axis=-1)

    def item_vectors(self, items, training=False, use_id=True):
        e = self.item_embedding(items)
        if training and self.id_dropout > 0:
            keep = keras.random.uniform(ops.shape(items), seed=self.dropper) >= self.id_dropout
            e = e * ops.cast(keep, e.dtype)[:, None]
        if not use_id:
            e = ops.zeros_like(e)
        x = ops.concatenate([e, self.content_dense(ops.take(self.content, items, axis=0))], axis=1)
        return ops.normalize(self.item_dense(ops.relu(x)), axis=-1)

    def call(self, inputs, training=False):
        users, items = inputs["user"], inputs["item"]
        logits = ops.matmul(self.user_vectors(users, items), ops.transpose(self.item_vectors(items, training)))
        logits = logits / self.temperature
        if self.log_q is not None:
            logits = logits - ops.take(self.log_q, items)[None, :]  # logQ correction
        same = ops.equal(items[:, None], items[None, :]) & ~ops.eye(ops.shape(items)[0], dtype="bool")
        return ops.where(same, -1e9, logits)  # accidental hits: the positive again, as a negative

    def scores(self, user_idx):
        users = ops.convert_to_tensor(np.asarray(user_idx, "int32"))
        V = self.item_vectors(ops.arange(self.content.shape[0]))
        return ops.convert_to_numpy(ops.matmul(self.user_vectors(users), ops.transpose(V)) / self.temperature)


def in_batch_loss(_, logits):
    return keras.losses.sparse_categorical_crossentropy(ops.arange(ops.shape(logits)[0]), logits, from_logits=True)


def normalised_adjacency(X):
    n_users, n_items = X.shape
    A = sp.bmat([[None, X], [X.T, None]]).tocsr().astype(np.float32)
    d = np.asarray(A.sum(1)).ravel()
    dinv = np.where(d > 0, d ** -0.5, 0.0).astype(np.float32)
    return sp.diags(dinv) @ A @ sp.diags(dinv)


class LightGCN(keras.Model):
    """He et al. (2020): E^(k+1) = Â E^(k), final = mean_k E^(k); BPR on (u, i, j) triples."""

    def __init__(self, X, dim=64, n_layers=2, reg=1e-4, seed=42, **kw):
        super().__init__(**kw)
        self.n_users, self.n_items = X.shape
        A = normalised_adjacency(X).tocoo()
        self.rows, self.cols = A.row.astype("int32"), A.col.astype("int32")
        self.weights_ = A.data.astype("float32")
        self.n_layers, self.reg = n_layers, reg
        self.E0 = self.add_weight(shape=(self.n_users + self.n_items, dim), name="E0",
                                  initializer=keras.initializers.RandomNormal(stddev=0.1, seed=seed))

    def propagate(self):
        if not hasattr(self, "_layer_mean"):
            rows, cols, w = self.rows, self.cols, self.weights_
            n, n_layers = self.n_users + self.n_items, self.n_layers

            variable = self.E0

            def layer_mean():
                E = total = ops.convert_to_tensor(variable)
                for _ in range(n_layers):
                    E = ops.segment_sum(w[:, None] * ops.take(E, cols, axis=0), rows, num_segments=n)
                    total = total + E
                return total / (n_layers + 1)

            self._layer_mean = tf.function(layer_mean, jit_compile=True)  # XLA: 3-4x faster than without
        return self._layer_mean()

    def call(self, triples, training=False):
        E = self.propagate()
        u, i, j = triples[:, 0], self.n_users + triples[:, 1], self.n_users + triples[:, 2]
        eu, ei, ej = ops.take(E, u, axis=0), ops.take(E, i, axis=0), ops.take(E, j, axis=0)
        if training and self.reg:
            e0 = ops.concatenate([ops.take(self.E0, u, axis=0), ops.take(self.E0, i, axis=0),
                                  ops.take(self.E0, j, axis=0)], axis=1)
            self.add_loss(self.reg * ops.sum(e0 ** 2) / 2 / ops.cast(ops.shape(u)[0], "float32"))
        return ops.sum(eu * (ei - ej), axis=-1)

    def scores(self, user_idx):
        E = ops.convert_to_numpy(self.propagate())
        return E[np.asarray(user_idx)] @ E[self.n_users:].T


def bpr_loss(_, x):
    return ops.softplus(-x)


class Triples(keras.utils.PyDataset):
    def __init__(self, X, batch, negatives=1, seed=42, **kw):
        super().__init__(**kw)
        self.X = X.tocsr()
        self.u, self.i = self.X.nonzero()
        self.batch, self.negatives, self.rng = batch, negatives, np.random.default_rng(seed)
        self.on_epoch_end()

    def on_epoch_end(self):
        u = np.repeat(self.u, self.negatives)
        i = np.repeat(self.i, self.negatives)
        j = self.rng.integers(0, self.X.shape[1], len(u))
        bad = np.asarray(self.X[u, j]).ravel() > 0
        while bad.any():
            j[bad] = self.rng.integers(0, self.X.shape[1], bad.sum())
            bad[bad] = np.asarray(self.X[u[bad], j[bad]]).ravel() > 0
        order = self.rng.permutation(len(u))
        self.t = np.column_stack([u, i, j])[order].astype("int32")

    def __len__(self):
        return int(np.ceil(len(self.t) / self.batch))

    def __getitem__(self, b):
        x = self.t[b * self.batch:(b + 1) * self.batch]
        return x, np.zeros(len(x), "float32")


def ndcg(scores, fit, held_out):
    return evaluate_ranking(scores, fit, held_out, K)[f"ndcg@{K}"]


def recall_at(scores, X, held_out_matrix, ks):
    """Share of held-out interactions found in the top-k unseen items, for each k (micro average)."""
    s = np.where(X.toarray() > 0, -np.inf, scores)
    order = np.argsort(-s, axis=1)
    H = held_out_matrix.toarray() > 0
    hits = np.take_along_axis(H, order, axis=1).cumsum(1)
    return {k: hits[:, k - 1].sum() / H.sum() for k in ks}


class LightGCNSoftmax(LightGCN):
    """LightGCN's propagation trained like the two-tower: in-batch softmax over cosine / τ with the logQ
    correction and accidental hits removed."""

    def __init__(self, X, dim=64, n_layers=2, temperature=0.2, log_q=None, seed=42, **kw):
        super().__init__(X, dim, n_layers, 0.0, seed, **kw)
        self.temperature = temperature
        self.log_q = ops.convert_to_tensor(np.asarray(log_q, "float32"))

    def call(self, inputs, training=False):
        E = self.propagate()
        users, items = inputs["user"], inputs["item"]
        eu = ops.normalize(ops.take(E, users, axis=0), axis=-1)
        ei = ops.normalize(ops.take(E, self.n_users + items, axis=0), axis=-1)
        logits = ops.matmul(eu, ops.transpose(ei)) / self.temperature - ops.take(self.log_q, items)[None, :]
        same = ops.equal(items[:, None], items[None, :]) & ~ops.eye(ops.shape(items)[0], dtype="bool")
        return ops.where(same, -1e9, logits)

    def scores(self, user_idx):
        E = ops.convert_to_numpy(self.propagate())
        E = E / np.linalg.norm(E, axis=1, keepdims=True)
        return E[np.asarray(user_idx)] @ E[self.n_users:].T / self.temperature


# ------------------------------------------------------------------ candidates and ranker features
def candidate_lists(score_mats, seen, ks):
    """Union of each retriever's top-k unseen movies per user: (users, items) boolean matrix."""
    n_users, n_items = seen.shape
    chosen = np.zeros((n_users, n_items), bool)
    S = seen.toarray() > 0
    for name, s in score_mats.items():
        s = np.where(S, -np.inf, s)
        top = np.argpartition(-s, ks[name], axis=1)[:, :ks[name]]
        np.put_along_axis(chosen, top, True, axis=1)
    return chosen & ~S


def ranks_of(s, seen):
    s = np.where(seen.toarray() > 0, -np.inf, s)
    order = np.argsort(-s, axis=1, kind="stable")
    r = np.empty_like(order)
    np.put_along_axis(r, order, np.arange(s.shape[1])[None, :].repeat(s.shape[0], 0), axis=1)
    return r


def user_item_tables(fit, data, ids):
    """Per-user and per-movie facts from the fitting frame (ratings and times included; never the held-out part)."""
    u = ids.users(fit.user_id.to_numpy())
    i = ids.items(fit.item_id.to_numpy())
    t = fit.timestamp.to_numpy() / (365.25 * 86400) + 1970  # years
    users = pd.DataFrame({"u": u, "t": t, "r": fit.rating.to_numpy()}).groupby("u").agg(
        n=("t", "size"), first=("t", "min"), last=("t", "max"), mean_rating=("r", "mean"))
    items = pd.DataFrame({"i": i, "t": t, "r": fit.rating.to_numpy()}).groupby("i").agg(
        n=("t", "size"), first=("t", "min"), median_t=("t", "median"), mean_rating=("r", "mean")).reindex(
        np.arange(ids.n_items))
    year = data.items.set_index("item_id").year.reindex(ids.item_ids).to_numpy(np.float64)
    items["year"] = np.where(np.isnan(year), np.nanmedian(year), year)
    return users, items, u, i, t


def ranker_frame(fit, data, ids, score_mats, chosen, genre_matrix):
    """One row per (user, candidate movie): retriever scores and ranks, movie, user and user-movie features."""
    seen = ids.interactions(fit)
    users, items, fu, fi, ft = user_item_tables(fit, data, ids)
    cu, ci = np.nonzero(chosen)
    f = {"user": cu, "item": ci}
    for name, s in score_mats.items():
        r = ranks_of(s, seen)
        s_masked = np.where(seen.toarray() > 0, np.nan, s)
        top = np.nanmax(s_masked, axis=1)
        sd = np.nanstd(s_masked, axis=1) + 1e-9
        f[f"{name} score"] = ((s[cu, ci] - top[cu]) / sd[cu]).astype("float32")
        f[f"{name} log rank"] = np.log1p(r[cu, ci]).astype("float32")
    total = len(fit)
    f["log popularity"] = np.log(items.n.fillna(0).to_numpy()[ci] / total * 1e4 + 1e-2)
    f["movie year"] = items.year.to_numpy()[ci]
    f["movie first seen"] = items["first"].fillna(2020).to_numpy()[ci]
    f["movie median time"] = items.median_t.fillna(2020).to_numpy()[ci]
    f["movie mean rating"] = items.mean_rating.fillna(fit.rating.mean()).to_numpy()[ci]
    f["user log activity"] = np.log(users.n.to_numpy()[cu])
    f["user mean rating"] = users.mean_rating.to_numpy()[cu]
    f["user first"] = users["first"].to_numpy()[cu]
    f["user last"] = users["last"].to_numpy()[cu]
    f["first seen - user last"] = f["movie first seen"] - f["user last"]
    f["median time - user last"] = f["movie median time"] - f["user last"]
    # how many ratings the movie received while the user was active (log share)
    order = np.argsort(fi, kind="stable")
    times_by_item = np.split(ft[order], np.cumsum(np.bincount(fi, minlength=ids.n_items))[:-1])
    times_by_item = [np.sort(x) for x in times_by_item]
    lo, hi = users["first"].to_numpy()[cu] - 0.5, users["last"].to_numpy()[cu] + 0.5
    inside = np.array([np.searchsorted(times_by_item[j], b) - np.searchsorted(times_by_item[j], a)
                       for j, a, b in zip(ci, lo, hi)], np.float64)
    f["log popularity while active"] = np.log(inside + 1)
    profile = seen @ genre_matrix
    profile = profile / np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-9)
    g = genre_matrix / np.maximum(np.linalg.norm(genre_matrix, axis=1, keepdims=True), 1e-9)
    f["genre match"] = np.einsum("ij,ij->i", np.asarray(profile)[cu], g[ci])
    return pd.DataFrame(f)
