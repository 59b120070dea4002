"""Prototype for chapter 10: a Keras top-K model over WMF's vectors, exported as a SavedModel with a serving
signature (user ids -> top-K item ids and scores, seen items removed in the graph), reloaded in another process."""
import os, sys, time, subprocess, json
sys.path.insert(0, "/work/main")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from recsys_helpers import env
tf, _ = env.start_notebook("proto10", 42)
import keras, numpy as np
from keras import layers, ops
from recsys_helpers.data import load_movielens
from recsys_helpers.split import stratified_split
from recsys_helpers.interactions import IdMap
from recsys_helpers.models import WMF
from recsys_helpers.evaluation import top_k

data = load_movielens("ml-latest-small")
train, test = stratified_split(data.ratings, 0.2, 42)
ids = IdMap.from_train(train)
wmf = WMF(factors=128, alpha=3.0, reg=30.0, iterations=20, seed=42).fit(train)
seen = ids.interactions(train).toarray() > 0
K = 10


@keras.saving.register_keras_serializable(package="proto")
class TopK(keras.Model):
    """user ids -> (top-K item ids, scores, known); seen items removed in the graph."""
    def __init__(self, user_ids, n_items, dim, k=10, **kw):
        super().__init__(**kw)
        self.user_ids, self.n_items, self.dim, self.k = [int(u) for u in user_ids], n_items, dim, k
        n = len(self.user_ids) + 1  # row 0: unknown users
        self.lookup = layers.IntegerLookup(vocabulary=np.asarray(self.user_ids, "int64"), num_oov_indices=1)
        self.P = self.add_weight(shape=(n, dim), initializer="zeros", trainable=False, name="P")
        self.Q = self.add_weight(shape=(n_items, dim), initializer="zeros", trainable=False, name="Q")
        self.seen = self.add_weight(shape=(n, n_items), initializer="zeros", trainable=False, name="seen")
        self.items = self.add_weight(shape=(n_items,), initializer="zeros", trainable=False, dtype="int64",
                                     name="item_ids")

    def set_vectors(self, user_vectors, item_vectors, seen, item_ids):
        self.P.assign(np.vstack([np.zeros((1, self.dim)), user_vectors]).astype("float32"))
        self.Q.assign(np.asarray(item_vectors, "float32"))
        self.seen.assign(np.vstack([np.zeros((1, self.n_items)), seen]).astype("float32"))
        self.items.assign(np.asarray(item_ids, "int64"))
        return self

    def get_config(self):
        return {**super().get_config(), "user_ids": self.user_ids, "n_items": self.n_items, "dim": self.dim,
                "k": self.k}

    def call(self, user_ids):
        row = self.lookup(user_ids)  # 0 = unknown
        scores = ops.matmul(ops.take(self.P, row, 0), ops.transpose(self.Q))
        scores = ops.where(ops.take(self.seen, row, 0) > 0, -np.inf, scores)
        values, idx = ops.top_k(scores, self.k)
        return {"item_ids": ops.take(self.items, idx, 0), "scores": values, "known": row > 0}


model = TopK(ids.user_ids, ids.n_items, wmf.item_factors.shape[1], K).set_vectors(wmf.user_factors, wmf.item_factors, seen, ids.item_ids)
out = model(np.asarray(ids.user_ids[:5], "int64"))
users, ref = top_k(wmf.scores, train, K, ids.user_ids[:5])
print("same as top_k:", np.array_equal(out["item_ids"].numpy(), ref))
t0 = time.time()
model.save("/tmp/p10/topk.keras")
print("saved .keras", time.time() - t0, os.path.getsize("/tmp/p10/topk.keras") / 1e6, "MB")
back = keras.models.load_model("/tmp/p10/topk.keras")
print("reloaded .keras same:", np.array_equal(back(np.asarray(ids.user_ids[:5], "int64"))["item_ids"].numpy(), ref))
export = keras.export.ExportArchive()
export.track(model)
export.add_endpoint("serve", model.call, input_signature=[tf.TensorSpec([None], tf.int64, name="user_ids")])
export.write_out("/tmp/p10/topk_savedmodel")
code = ("import json, numpy as np, tensorflow as tf\n"
        "m = tf.saved_model.load('/tmp/p10/topk_savedmodel')\n"
        "o = m.serve(tf.constant(%s, tf.int64))\n"
        "print(json.dumps(o['item_ids'].numpy().tolist()))\n") % list(map(int, ids.user_ids[:5]))
t0 = time.time()
res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
print("subprocess", time.time() - t0, res.returncode, res.stderr[-500:])
print("reloaded same:", np.array_equal(np.array(json.loads(res.stdout.strip().splitlines()[-1])), ref))
