"""The wider BPR search behind notebook 03's BPR_GRID, on the validation split only (test is never scored).
Run: RECSYS_DATA_DIR=... python tools/tuning/nb03_bpr_search.py > tools/tuning/nb03_bpr_search.csv
(or, to add new grid points to an existing log: ... nb03_bpr_search.py LOG >> LOG)

Every candidate is trained on `inner` (train minus validation) as notebook 03 trains BPR (16 sampled negatives per
positive, batches of 16,384 triples, Adam with a cosine-decayed learning rate over `epochs`), and NDCG@10 on `val`
is recorded after every epoch.
"""
import sys
import time

import keras

from recsys_helpers import env
from recsys_helpers.data import load_movielens
from recsys_helpers.interactions import train_index
from recsys_helpers.models import BPRMF, bpr_loss
from recsys_helpers.split import stratified_split
from recsys_helpers.training import NegativeSampling, RankingEarlyStopping

SEED = 42
env.setup(SEED)
data = load_movielens("ml-latest-small")
train, _ = stratified_split(data.ratings, 0.2, SEED)  # the test part is dropped here
inner, val = stratified_split(train, 0.2, SEED)
index = train_index(inner)

GRID = ([(64, lr, reg, 4) for lr in (0.01, 0.02, 0.05) for reg in (1e-3, 3e-3, 1e-2)]
        + [(128, 0.02, reg, 4) for reg in (3e-3, 1e-2)] + [(64, 0.02, reg, 8) for reg in (3e-3, 1e-2)]
        + [(64, lr, 3e-2, 4) for lr in (0.01, 0.02, 0.05)] + [(128, 0.01, 1e-2, 4), (128, 0.01, 3e-2, 4)])
done = set()
if len(sys.argv) > 1:  # python nb03_bpr_search.py earlier.csv: append the candidates that file does not hold yet
    with open(sys.argv[1]) as log:
        done = {(int(k), float(lr), float(reg), int(e)) for k, lr, reg, e, *_ in (line.split(",") for line in log)
                if k != "factors"}
else:
    print("factors,lr,reg,max_epochs,epoch,val_ndcg10,seconds", flush=True)
for k, lr, reg, epochs in GRID:
    if (k, lr, reg, epochs) in done:
        continue
    triples = NegativeSampling(index.seen, 16384, 16, "triples", SEED)
    keras.utils.set_random_seed(SEED)
    model = BPRMF(index.ids.n_users, index.ids.n_items, k, reg)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(lr, epochs * len(triples))),
                  loss=bpr_loss)
    checks = RankingEarlyStopping(inner, val, every=1, patience=epochs)  # patience = epochs: never stops early
    t0 = time.perf_counter()
    model.fit(triples, epochs=epochs, verbose=0, callbacks=[checks])
    secs = time.perf_counter() - t0
    for e, v in checks.checks.items():
        print(f"{k},{lr},{reg},{epochs},{e},{v:.4f},{secs:.1f}", flush=True)
