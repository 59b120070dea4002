"""The validation search behind notebook 11's candidate count (log: nb11_ranker_search.csv, one row per run).

The notebook's own code (its functions and classes, read from tools/notebooks/11_two_stage_recommenders.py) fits the
four retrievers on the inner part of the training split (the two neural ones for the epochs their validation runs
chose in nb11_retriever_search.csv), builds the ranker's examples labelled by the validation part, and trains
LambdaMART with each setting of the notebook's TREE_GRID on 80% of the users, measuring NDCG@10 over the full
ranking on the other 20% (the notebook's RANKER_VAL_SHARE), for each number of candidates per retriever, with all
features and without the time features. The test split is never loaded. Run from the project root:

    RECSYS_DATA_DIR=../shared/datasets .venv/bin/python tools/tuning/nb11_ranker_search.py
"""
import ast
import csv
import os
import sys
import time

sys.path.insert(0, os.getcwd())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from recsys_helpers import env  # noqa: E402

tf, _ = env.start_notebook("nb11_ranker_search", 42)
import keras  # noqa: E402,F401
import keras_rs  # noqa: E402,F401
import lightgbm as lgb  # noqa: E402,F401
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402,F401
from keras import layers, ops  # noqa: E402,F401

from recsys_helpers import training  # noqa: E402,F401
from recsys_helpers.baselines import ItemKNN  # noqa: E402
from recsys_helpers.content import tag_words  # noqa: E402,F401
from recsys_helpers.data import load_movielens  # noqa: E402
from recsys_helpers.evaluation import evaluate_ranking  # noqa: E402
from recsys_helpers.interactions import IdMap  # noqa: E402
from recsys_helpers.models import EASE, Seeds  # noqa: E402,F401
from recsys_helpers.split import stratified_split  # noqa: E402

SOURCE = "tools/notebooks/11_two_stage_recommenders.py"
NAMES = {"content_matrix", "in_batch_softmax", "batch_logits", "log_popularity", "sparse_tensor", "TwoTower",
         "normalised_adjacency", "LightGCN", "RankerFacts", "ranker_features", "sizes", "full_scores",
         "fit_lambdamart", "held_out_matrix"}
PARAMETERS = {"SEED", "K", "TEST_FRAC", "VAL_FRAC", "DIM", "BATCH", "TEMPERATURE", "LR", "GCN_LR", "GCN_LAYERS",
              "CANDIDATES", "RANKER_VAL_SHARE", "TREE_GRID", "MAX_TREES", "EASE_GRID", "KNN_SETTINGS"}
tree = ast.parse(open(SOURCE).read())
for node in tree.body:  # the notebook's parameters, then its functions and classes (not its cells that use test)
    if isinstance(node, ast.Assign) and {getattr(t, "id", None) for t in node.targets} & PARAMETERS:
        exec(compile(ast.Module([node], []), SOURCE, "exec"))
for node in tree.body:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in NAMES:
        exec(compile(ast.Module([node], []), SOURCE, "exec"))

data = load_movielens("ml-latest-small")
train, _ = stratified_split(data.ratings, TEST_FRAC, SEED)  # noqa: F821  (the test part is dropped here)
inner, val = stratified_split(train, VAL_FRAC, SEED)  # noqa: F821
ids_in = IdMap.from_train(inner)
X_in = ids_in.interactions(inner).tocsr().astype(np.float32)
X_in.data[:] = 1.0
content_in, genres = content_matrix(data.items, ids_in, data.tags)  # noqa: F821
log = pd.read_csv("tools/tuning/nb11_retriever_search.csv")
best_epoch = {m: int(g.loc[g["val_ndcg@10"].idxmax(), "epoch"]) for m, g in log.groupby(log.model + " " + log.setting)}
print(best_epoch)


def validation_ndcg(scores, frame=val):
    return evaluate_ranking(scores, inner, frame, K)[f"ndcg@{K}"]  # noqa: F821


def fit(model, epochs, lr):
    keras.utils.set_random_seed(SEED)  # noqa: F821
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=in_batch_softmax, steps_per_execution=8)  # noqa: F821
    u, i = X_in.nonzero()
    model.fit({"user": u.astype("int32"), "item": i.astype("int32")}, np.zeros(len(u), np.float32), batch_size=BATCH,  # noqa: F821
              epochs=epochs, verbose=0)
    return model


lam = max(EASE_GRID, key=lambda lam: validation_ndcg(EASE(lam).fit(X_in)))  # noqa: F821
scores_in = {"EASE": EASE(lam).fit(X_in).scores(np.arange(ids_in.n_users)),
             "Item-kNN": ItemKNN(**KNN_SETTINGS).fit(inner).scores(np.arange(ids_in.n_users)),  # noqa: F821
             "Two-tower": fit(TwoTower(X_in, content_in, log_popularity(X_in)),  # noqa: F821
                              best_epoch["two-tower {'log_q': True, 'temperature': 0.2}"], LR).scores(  # noqa: F821
                 np.arange(ids_in.n_users)),
             "LightGCN": fit(LightGCN(X_in, log_popularity(X_in)),  # noqa: F821
                             best_epoch[f"LightGCN softmax {{'layers': {GCN_LAYERS}}}"], GCN_LR).scores(  # noqa: F821
                 np.arange(ids_in.n_users))}
data_globals = globals()
H_val = held_out_matrix(val, ids_in)  # noqa: F821
facts_in = RankerFacts(inner, ids_in, X_in, content_in[:, :len(genres)])  # noqa: F821
rank_val_users = np.sort(np.random.default_rng(SEED).permutation(ids_in.n_users)[:int(RANKER_VAL_SHARE * ids_in.n_users)])  # noqa: F821,E501
val_part = val[val.user_id.isin(ids_in.user_ids[rank_val_users])]
TIME = ["movie first rated", "movie median time", "user first", "user last", "first rated − user last",
        "log ratings while user active"]
with open("tools/tuning/nb11_ranker_search.csv", "w", newline="") as f:
    out = csv.writer(f)
    out.writerow(["candidates_per_retriever", "features", "tree_setting", "trees", "val_ndcg@10 (held-out users)",
                  "EASE val_ndcg@10 (same users)", "candidate recall", "seconds"])
    ease_part = validation_ndcg(scores_in["EASE"], val_part)
    for k in [50, 100, 200]:
        frame = ranker_features(facts_in, np.arange(ids_in.n_users), scores_in, k)  # noqa: F821
        frame["label"] = H_val[frame.user, frame.item].astype(np.float32)
        features = [c for c in frame.columns if c not in ("user", "item", "label") and not c.startswith("proposed")]
        held = np.isin(frame.user, rank_val_users)
        for name, use in [("all", features), ("without time features", [c for c in features if c not in TIME])]:
            for setting in TREE_GRID:  # noqa: F821
                start = time.time()
                model = fit_lambdamart(setting, use, frame[~held], frame[held])  # noqa: F821
                part = frame[held]
                ndcg = validation_ndcg(full_scores(part, model.predict(part[use]), ids_in), val_part)  # noqa: F821
                row = [k, name, setting, model.best_iteration_, round(ndcg, 4), round(ease_part, 4),
                       round(frame.label.sum() / H_val.sum(), 4), round(time.time() - start, 1)]
                out.writerow(row)
                f.flush()
                print(row, flush=True)
