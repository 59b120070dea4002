"""The validation search behind notebook 11's retrievers (log: nb11_retriever_search.csv, one row per epoch).

The notebook's own code (its functions and classes, read from tools/notebooks/11_two_stage_recommenders.py) fits
each model on the inner part of the training split and measures NDCG@10 on its validation part after every epoch
(the test split is never loaded): the two-tower model with and without the logQ correction at τ = 0.2 and with it at
τ = 0.1, and LightGCN with 0 (plain MF), 1 and 2 propagation layers under the in-batch softmax, and with 2 layers
under BPR (its paper's loss: one uniformly drawn unseen movie per interaction, batches of 4,096). Run from the project
root:

    RECSYS_DATA_DIR=../shared/datasets .venv/bin/python tools/tuning/nb11_retriever_search.py
"""
import ast
import csv
import os
import sys
import time

sys.path.insert(0, os.getcwd())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from recsys_helpers import env  # noqa: E402

tf, _ = env.start_notebook("nb11_retriever_search", 42)
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402,F401
from keras import layers, ops  # noqa: E402,F401

from recsys_helpers.content import tag_words  # noqa: E402,F401
from recsys_helpers.data import load_movielens  # noqa: E402
from recsys_helpers.evaluation import evaluate_ranking  # noqa: E402
from recsys_helpers.interactions import IdMap  # noqa: E402
from recsys_helpers.models import Seeds  # noqa: E402,F401
from recsys_helpers.split import stratified_split  # noqa: E402

SOURCE = "tools/notebooks/11_two_stage_recommenders.py"
NAMES = {"content_matrix", "in_batch_softmax", "batch_logits", "log_popularity", "sparse_tensor", "TwoTower",
         "normalised_adjacency", "LightGCN"}
PARAMETERS = {"SEED", "K", "TEST_FRAC", "VAL_FRAC", "DIM", "BATCH", "TEMPERATURE", "LR", "GCN_LR", "GCN_LAYERS"}
tree = ast.parse(open(SOURCE).read())
for node in tree.body:  # the notebook's parameters (before any profile changes them), then its classes
    if isinstance(node, ast.Assign) and {getattr(t, "id", None) for t in node.targets} & PARAMETERS:
        exec(compile(ast.Module([node], []), SOURCE, "exec"))
for node in tree.body:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in NAMES:
        exec(compile(ast.Module([node], []), SOURCE, "exec"))

data = load_movielens("ml-latest-small")
train, _ = stratified_split(data.ratings, TEST_FRAC, SEED)  # noqa: F821  (the test part is dropped here)
inner, val = stratified_split(train, VAL_FRAC, SEED)  # noqa: F821
ids = IdMap.from_train(inner)
X = ids.interactions(inner).tocsr().astype(np.float32)
X.data[:] = 1.0
content, _ = content_matrix(data.items, ids, data.tags)  # noqa: F821
u, i = X.nonzero()
pairs = {"user": u.astype("int32"), "item": i.astype("int32")}


class LightGCNBPR(LightGCN):  # noqa: F821
    """The same propagation, trained with BPR on (user, movie, sampled movie) triples."""

    def call(self, triples, training=False):
        E = self.propagate()
        eu = ops.take(E, triples[:, 0], axis=0)
        ei, ej = (ops.take(E, self.n_users + triples[:, c], axis=0) for c in (1, 2))
        return ops.sum(eu * (ei - ej), axis=-1)

    def scores(self, user_idx):
        E = ops.convert_to_numpy(self.propagate())
        return E[np.asarray(user_idx)] @ E[self.n_users:].T


def bpr_triples(rng):
    j = rng.integers(0, X.shape[1], len(u))
    bad = np.asarray(X[u, j]).ravel() > 0
    while bad.any():
        j[bad] = rng.integers(0, X.shape[1], bad.sum())
        bad[bad] = np.asarray(X[u[bad], j[bad]]).ravel() > 0
    return np.column_stack([u, i, j]).astype("int32")


runs = [("two-tower", {"log_q": True, "temperature": 0.2}, 8), ("two-tower", {"log_q": False, "temperature": 0.2}, 3),
        ("two-tower", {"log_q": True, "temperature": 0.1}, 6), ("LightGCN softmax", {"layers": 0}, 10),
        ("LightGCN softmax", {"layers": 1}, 8), ("LightGCN softmax", {"layers": 2}, 8),
        ("LightGCN BPR", {"layers": 2}, 10)]
rng = np.random.default_rng(SEED)  # noqa: F821
with open("tools/tuning/nb11_retriever_search.csv", "w", newline="") as f:
    out = csv.writer(f)
    out.writerow(["model", "setting", "epoch", "val_ndcg@10", "seconds"])
    for model, setting, epochs in runs:
        keras.utils.set_random_seed(SEED)  # noqa: F821
        TEMPERATURE = setting.get("temperature", TEMPERATURE)  # noqa: F821  (the classes read the global)
        if model == "two-tower":
            m = TwoTower(X, content, log_popularity(X) if setting["log_q"] else None)  # noqa: F821
            m.compile(optimizer=keras.optimizers.Adam(LR), loss=in_batch_softmax, steps_per_execution=8)  # noqa: F821
        elif model == "LightGCN softmax":
            m = LightGCN(X, log_popularity(X), setting["layers"])  # noqa: F821
            m.compile(optimizer=keras.optimizers.Adam(GCN_LR), loss=in_batch_softmax, steps_per_execution=8)  # noqa: F821
        else:
            m = LightGCNBPR(X, log_popularity(X), setting["layers"])  # noqa: F821
            m.compile(optimizer=keras.optimizers.Adam(GCN_LR), loss=lambda _, x: ops.softplus(-x),  # noqa: F821
                      steps_per_execution=4)
        for epoch in range(1, epochs + 1):
            start = time.time()
            if model == "LightGCN BPR":
                m.fit(bpr_triples(rng), np.zeros(len(u), np.float32), batch_size=4096, epochs=1, verbose=0)
            else:
                m.fit(pairs, np.zeros(len(u), np.float32), batch_size=BATCH, epochs=1, verbose=0)  # noqa: F821
            ndcg = evaluate_ranking(m, inner, val, K)[f"ndcg@{K}"]  # noqa: F821
            row = [model, setting, epoch, round(ndcg, 4), round(time.time() - start, 1)]
            out.writerow(row)
            f.flush()
            print(row, flush=True)
