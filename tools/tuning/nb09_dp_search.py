"""The validation search behind notebook 09's DP-SGD settings (its log: nb09_dp_search.csv, one row per run).

It runs the notebook's own code: the parameters cell (sampling rate q, δ, negatives, clipping norm C, bisection
rounds, the target ε), the cells that define ``clip_examples``, ``PoissonBatches`` and ``DPMF``, and the accountant's
``epsilon`` and ``sigma_for``, all read from tools/notebooks/09_beyond_accuracy.py. Each run trains ``DPMF`` on the
inner split and measures NDCG@10 on the validation split, never on the test split. δ = min(DP_DELTA, N^-1.1) for the
N inner interactions (1e-7, as for the N training interactions in the notebook), and q is the notebook's, so the σ of
each ε and number of steps is the one the notebook uses.

The grid: for every number of steps in STEPS, every size in FACTORS and every (optimizer, learning rate) in
OPTIMIZERS, a model without DP (σ = 0, no clipping) and one per target ε (σ from the accountant for that many steps,
clipping at C). The notebook keeps, for each ε (and without DP), the setting with the best validation NDCG@10: among
all rows for the reference profile, among the rows with at most LAPTOP_STEPS steps for the laptop profile. A run
already in the log is not repeated, so an interrupted search resumes. Run from the project root:

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
import dp_accounting  # noqa: E402,F401  (used by the notebook's accountant functions)
import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import logging as absl_logging  # noqa: E402
from keras import ops  # noqa: E402,F401

from recsys_helpers.data import load_movielens  # noqa: E402
from recsys_helpers.evaluation import evaluate_ranking  # noqa: E402
from recsys_helpers.interactions import IdMap  # noqa: E402
from recsys_helpers.split import stratified_split  # noqa: E402

absl_logging.set_verbosity(absl_logging.ERROR)
STEPS = [20, 80, 320]  # numbers of DP-SGD steps tried (q · steps epochs)
LAPTOP_STEPS = 80  # the laptop profile's cap: its settings are the best rows with at most this many steps
FACTORS = [16, 64]
OPTIMIZERS = [("sgd", 25.0), ("sgd", 100.0), ("sgd", 400.0), ("adam", 0.01), ("adam", 0.05)]  # (optimizer, rate)
LOG = "tools/tuning/nb09_dp_search.csv"
COLUMNS = ["epsilon", "factors", "optimizer", "learning_rate", "steps", "q", "delta", "noise_multiplier",
           "val_ndcg@10", "seconds"]

source = open("tools/notebooks/09_beyond_accuracy.py").read()
parameters = source[source.index('# %% tags=["parameters"]'):source.index("# %%\nif PROFILE ==")]
exec(parameters)  # SEED, TEST_FRAC, VAL_FRAC, DP_SAMPLING_RATE, DP_DELTA, DP_NEGATIVES, DP_CLIP, DP_EPSILONS, ...
exec(source[source.index("def clip_examples("):source.index("# %% [markdown]\n# **The settings, and two controls.**")])
exec(source[source.index("def epsilon(sigma, steps):"):source.index("with Timer() as t_dp:")])

data = load_movielens("ml-latest-small")
train, _ = stratified_split(data.ratings, TEST_FRAC, SEED)
inner, val = stratified_split(train, VAL_FRAC, SEED)
ids = IdMap.from_train(inner)
pairs = np.argwhere(ids.interactions(inner).toarray() > 0).astype(np.int32)
N, q = len(pairs), DP_SAMPLING_RATE
delta = min(DP_DELTA, N ** -1.1)  # the names epsilon() and sigma_for() read


def done() -> set:
    if not os.path.exists(LOG):
        return set()
    with open(LOG) as f:
        return {(r["epsilon"], int(r["factors"]), r["optimizer"], float(r["learning_rate"]), int(r["steps"]))
                for r in csv.DictReader(f)}


finished = done()
new_file = not os.path.exists(LOG)
with open(LOG, "a", newline="") as f:
    writer = csv.writer(f)
    if new_file:
        writer.writerow(COLUMNS)
    for steps in STEPS:
        sigmas = {eps: sigma_for(eps, steps) for eps in DP_EPSILONS}
        for factors in FACTORS:
            for optimizer, lr in OPTIMIZERS:
                for eps in [None] + DP_EPSILONS:
                    key = ("none" if eps is None else str(eps), factors, optimizer, lr, steps)
                    if key in finished:
                        continue
                    sigma = 0.0 if eps is None else sigmas[eps]
                    keras.utils.set_random_seed(SEED)
                    model = DPMF(ids.n_users, ids.n_items, factors, None if eps is None else DP_CLIP, sigma, q * N)
                    model.compile(optimizer={"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[optimizer](lr))
                    start = time.time()
                    model.fit(PoissonBatches(pairs, q, ids.n_items, DP_NEGATIVES, steps), epochs=1, verbose=0)
                    ndcg = evaluate_ranking(model.scores, inner, val, 10)["ndcg@10"]
                    row = [key[0], factors, optimizer, lr, steps, q, f"{delta:.3g}", round(sigma, 4), round(ndcg, 4),
                           round(time.time() - start, 1)]
                    writer.writerow(row)
                    f.flush()
                    print(row, flush=True)
