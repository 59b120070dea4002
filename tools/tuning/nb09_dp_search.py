"""The validation search behind notebook 09's DP-SGD settings (its log: nb09_dp_search.csv, one row per run).

Each run trains the notebook's ``DPMF`` (its class and Poisson batches are read from the notebook's source, so the
search trains exactly the notebook's model) on the inner split and measures NDCG@10 on the validation split, never on
the test split: for every learning rate × number of epochs, without DP and at each target ε (σ from the same RDP
accountant, δ = 1 / number of inner interactions), for every size × optimizer × learning rate in the grid below.
The notebook keeps, for each ε, the setting with the best validation NDCG. Run from the project root:

    RECSYS_DATA_DIR=../shared/datasets .venv/bin/python tools/tuning/nb09_dp_search.py
"""
import csv
import os
import sys
import time

sys.path.insert(0, os.getcwd())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from recsys_helpers import env  # noqa: E402

tf, _ = env.start_notebook("nb09_dp_search", 42)
import dp_accounting  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import logging as absl_logging  # noqa: E402
from keras import ops  # noqa: E402

from recsys_helpers.data import load_movielens  # noqa: E402
from recsys_helpers.evaluation import evaluate_ranking  # noqa: E402
from recsys_helpers.interactions import IdMap  # noqa: E402
from recsys_helpers.split import stratified_split  # noqa: E402

absl_logging.set_verbosity(absl_logging.ERROR)
SEED, NEGATIVES, BATCH, CLIP, EPOCHS = 42, 16, 16384, 1.0, 4
FACTORS, EPSILONS = [16, 64], [None, 8.0, 4.0, 1.0]
OPTIMIZERS = [("sgd", 25.0), ("sgd", 100.0), ("adam", 0.01), ("adam", 0.05)]  # (optimizer, learning rate)
source = open("tools/notebooks/09_beyond_accuracy.py").read()
exec(source[source.index("class DPMF(keras.Model):"):source.index("pairs = np.argwhere(")])  # DPMF, PoissonBatches

data = load_movielens("ml-latest-small")
train, _ = stratified_split(data.ratings, 0.2, SEED)
inner, val = stratified_split(train, 0.2, SEED)
ids = IdMap.from_train(inner)
pairs = np.argwhere(ids.interactions(inner).toarray() > 0).astype(np.int32)
q, delta = BATCH / len(pairs), 1.0 / len(pairs)


def epsilon(sigma, steps):
    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps)
    return accountant.get_epsilon(delta)


def sigma_for(target, steps, low=0.3, high=100.0):
    for _ in range(14):
        middle = (low * high) ** 0.5
        low, high = (middle, high) if epsilon(middle, steps) > target else (low, middle)
    return high


out = "tools/tuning/nb09_dp_search.csv"
with open(out, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["epsilon", "factors", "optimizer", "learning_rate", "epochs", "steps", "noise_multiplier",
                     "val_ndcg@10", "seconds"])
    steps = int(round(EPOCHS / q))
    for factors in FACTORS:
        for optimizer, lr in OPTIMIZERS:
            for eps in EPSILONS:
                sigma = 0.0 if eps is None else sigma_for(eps, steps)
                keras.utils.set_random_seed(SEED)
                model = DPMF(ids.n_users, ids.n_items, factors, None if eps is None else CLIP, sigma, q * len(pairs))
                model.compile(optimizer={"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[optimizer](lr))
                start = time.time()
                model.fit(PoissonBatches(pairs, q, ids.n_items, NEGATIVES, steps), epochs=1, verbose=0)
                ndcg = evaluate_ranking(model.scores, inner, val, 10)["ndcg@10"]
                row = ["none" if eps is None else eps, factors, optimizer, lr, EPOCHS, steps, round(sigma, 4),
                       round(ndcg, 4), round(time.time() - start, 1)]
                writer.writerow(row)
                f.flush()
                print(row, flush=True)
