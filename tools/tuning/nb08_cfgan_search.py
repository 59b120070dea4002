"""The hand search behind notebook 08's CFGAN settings (its log: nb08_cfgan_search.csv, one row per run).

Each run trains CFGAN on the inner split and checks NDCG@10 on the validation split every few epochs (never the test
split). Run from the project root with the settings to change, for example:

    RECSYS_DATA_DIR=../shared/datasets .venv/bin/python tools/tuning/nb08_cfgan_search.py mode=user alpha=0.1 hg=200

mode: "user" (a user's row is the condition) or "item" (a movie's column); hg, hd: hidden sizes of G and D; lr_g,
lr_d: Adam's rates; bs_g, bs_d: batch sizes; step_g, step_d: passes per epoch; zr, pm: the ZR and PM shares; alpha:
the ZR weight; reg_g: the L2 penalty of G; epochs, every: the run's length and how often validation is checked.
"""
import os
import sys
import time

sys.path.insert(0, os.getcwd())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from recsys_helpers import env  # noqa: E402

tf, _ = env.start_notebook("nb08_cfgan_search", 42)
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

from recsys_helpers.data import load_movielens  # noqa: E402
from recsys_helpers.evaluation import evaluate_ranking  # noqa: E402
from recsys_helpers.interactions import IdMap  # noqa: E402
from recsys_helpers.split import stratified_split  # noqa: E402

data = load_movielens("ml-latest-small")
train, test = stratified_split(data.ratings, 0.2, 42)
inner, val = stratified_split(train, 0.2, 42)
ids_in = IdMap.from_train(inner)
X_in = ids_in.interactions(inner).toarray().astype(np.float32)
keep_in = X_in.sum(0) >= 5


def expand(block, keep):
    full = np.full((block.shape[0], len(keep)), -np.inf, dtype=np.float32)
    full[:, keep] = block
    return full


def vndcg(scores):
    return evaluate_ranking(scores, inner, val, 10)["ndcg@10"]


import json
cfg = dict(mode="item", hg=400, hd=125, lr_g=1e-3, lr_d=1e-3, bs_g=32, bs_d=64, step_g=1, step_d=1, zr=0.7, pm=0.7,
           alpha=0.03, reg_g=1e-3, reg_d=0.0, epochs=100, every=5, keep=1, zp=1)
for a in sys.argv[1:]:
    k, v = a.split("="); cfg[k] = type(cfg[k])(v) if not isinstance(cfg[k], str) else v
print(cfg)
def run(X, keep, evalf, cfg):
    keras.utils.set_random_seed(42)
    Xk = X[:, keep] if cfg["keep"] else X
    R = Xk.T.copy() if cfg["mode"] == "item" else Xk.copy()
    n, d = R.shape
    l2 = keras.regularizers.L2(cfg["reg_g"] / 2) if cfg["reg_g"] else None
    G = keras.Sequential([keras.Input((d,)), layers.Dense(cfg["hg"], activation="sigmoid", kernel_regularizer=l2, bias_regularizer=l2),
                          layers.Dense(d, kernel_regularizer=l2, bias_regularizer=l2)])
    D = keras.Sequential([keras.Input((2 * d,)), layers.Dense(cfg["hd"], activation="sigmoid"), layers.Dense(1)])
    og, od = keras.optimizers.Adam(cfg["lr_g"]), keras.optimizers.Adam(cfg["lr_d"])
    bce = lambda logits, y: tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), y), logits=logits))
    @tf.function
    def update_d(c, pm):
        fake = G(c) * (c + pm)
        with tf.GradientTape() as tape:
            loss = bce(D(tf.concat([c, c], 1)), 1.0) + bce(D(tf.concat([c, fake], 1)), 0.0)
        od.apply_gradients(zip(tape.gradient(loss, D.trainable_variables), D.trainable_variables))
        return loss
    @tf.function
    def update_g(c, pm, zr):
        with tf.GradientTape() as tape:
            out = G(c)
            adv = bce(D(tf.concat([c, out * (c + pm)], 1)), 1.0)
            loss = adv + cfg["alpha"] * tf.reduce_mean(tf.reduce_sum(tf.square(out) * zr, 1)) + tf.add_n(G.losses or [0.0])
        og.apply_gradients(zip(tape.gradient(loss, G.trainable_variables), G.trainable_variables))
        return adv
    rng = np.random.default_rng(42)
    best, hist = (-1, 0), []
    t0 = time.time()
    for ep in range(1, cfg["epochs"] + 1):
        u = rng.random(R.shape, dtype=np.float32)
        if cfg["zp"]:
            zr = ((R == 0) & (u < cfg["zr"])).astype(np.float32)
            pm = ((R == 0) & (rng.random(R.shape, dtype=np.float32) < cfg["pm"])).astype(np.float32)
        else:
            zr = np.zeros_like(R); pm = np.zeros_like(R)
        for _ in range(cfg["step_d"]):
            for b in np.array_split(rng.permutation(n), max(1, n // cfg["bs_d"])):
                dl = update_d(R[b], pm[b])
        for _ in range(cfg["step_g"]):
            for b in np.array_split(rng.permutation(n), max(1, n // cfg["bs_g"])):
                gl = update_g(R[b], pm[b], zr[b])
        if ep % cfg["every"] == 0:
            out = G(R, training=False).numpy()
            S = out.T if cfg["mode"] == "item" else out
            S = expand(S, keep) if cfg["keep"] else S
            v = evalf(S)
            hist.append((ep, round(v, 4), round(float(dl), 3), round(float(gl), 3)))
            print(ep, round(v, 4), float(dl), float(gl), round(time.time() - t0, 1), flush=True)
            if v > best[0]: best = (v, ep)
    return best, hist, time.time() - t0
best, hist, secs = run(X_in, keep_in, vndcg, cfg)
print("BEST", best, round(secs, 1), json.dumps(cfg))
