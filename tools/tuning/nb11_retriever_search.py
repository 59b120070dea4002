"""The validation search behind notebook 11's retrievers (log: nb11_retriever_search.csv, one row per epoch).

Every run fits on the inner part of the training split and measures NDCG@10 on its validation part after each
epoch (the test split is never loaded): the two-tower model with and without the logQ correction at two
temperatures, and LightGCN with 0 (plain MF), 1 and 2 propagation layers under the in-batch softmax, and with 2
layers under BPR (its paper's loss). Run from the project root:

    RECSYS_DATA_DIR=../shared/datasets .venv/bin/python tools/tuning/nb11_retriever_search.py
"""
import csv
import sys

sys.path.insert(0, "tools/tuning")
from nb11_common import *  # noqa: E402,F403

data, inner, val = load()
ids = IdMap.from_train(inner)
X = ids.interactions(inner).tocsr()
X.data[:] = 1
content, genres = content_matrix(data, ids)
counts = np.asarray(X.sum(0)).ravel()
log_q = np.log(np.maximum(counts, 1) / counts.sum())
u, i = X.nonzero()
pairs = {"user": u.astype("int32"), "item": i.astype("int32")}
runs = [("two-tower", dict(log_q=True, temperature=0.2), 10), ("two-tower", dict(log_q=False, temperature=0.2), 4),
        ("two-tower", dict(log_q=True, temperature=0.1), 8),
        ("LightGCN softmax", dict(layers=0), 16), ("LightGCN softmax", dict(layers=1), 16),
        ("LightGCN softmax", dict(layers=2), 16), ("LightGCN BPR", dict(layers=2), 20)]
LOG = "tools/tuning/nb11_retriever_search.csv"
done = set(pd.read_csv(LOG)[["model", "setting"]].astype(str).agg(" ".join, axis=1)) if os.path.exists(LOG) else set()
with open(LOG, "a", newline="") as f:  # runs already in the log are not repeated (an interrupted search resumes)
    out = csv.writer(f)
    if not done:
        out.writerow(["model", "setting", "epoch", "val_ndcg@10", "seconds"])
    for model, setting, epochs in runs:
        if f"{model} {setting}" in done:
            continue
        keras.utils.set_random_seed(SEED)
        if model == "two-tower":
            m = TwoTower(X, content, 64, setting["temperature"], log_q if setting["log_q"] else None)
            m.compile(optimizer=keras.optimizers.Adam(3e-3), loss=in_batch_loss, steps_per_execution=8)
            fit = lambda: m.fit(pairs, np.zeros(len(u)), batch_size=1024, epochs=1, verbose=0)  # noqa: E731
        elif model == "LightGCN softmax":
            m = LightGCNSoftmax(X, 64, setting["layers"], 0.2, log_q)
            m.compile(optimizer=keras.optimizers.Adam(5e-3), loss=in_batch_loss, steps_per_execution=8)
            fit = lambda: m.fit(pairs, np.zeros(len(u)), batch_size=1024, epochs=1, verbose=0)  # noqa: E731
        else:
            m = LightGCN(X, 64, setting["layers"], 1e-4)
            m.compile(optimizer=keras.optimizers.Adam(5e-3), loss=bpr_loss, steps_per_execution=4)
            triples = Triples(X, 4096, 1, SEED)
            fit = lambda: m.fit(triples, epochs=1, verbose=0)  # noqa: E731
        for epoch in range(1, epochs + 1):
            start = time.time()
            fit()
            row = [model, setting, epoch, round(ndcg(m, inner, val), 4), round(time.time() - start, 1)]
            out.writerow(row)
            f.flush()
            print(row, flush=True)
