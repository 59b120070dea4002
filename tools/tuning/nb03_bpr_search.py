"""The wider BPR search behind notebook 03's BPR_FACTORS and BPR_GRID, on the validation split only (test is never
scored). Run: RECSYS_DATA_DIR=... python tools/tuning/nb03_bpr_search.py > tools/tuning/nb03_bpr_search.csv
(or, to add the grid points an existing log does not hold yet: ... nb03_bpr_search.py LOG >> LOG)

Every candidate is trained on `inner` (train minus validation) exactly as notebook 03 trains BPR: 16 sampled negatives
per positive redrawn every epoch, batches of 16,384 triples, Adam at a constant learning rate, the model's seed SEED,
and NDCG@10 on `val` after every epoch; it stops after PATIENCE epochs without a new best, or at MAX_EPOCHS (the
notebook's reference profile: BPR_PATIENCE and BPR_MAX_EPOCHS). Because the learning rate does not depend on the cap,
the first epochs of a run are also the run that a smaller cap (the notebook's laptop profile) would make.

The grid was run in two stages: learning rate × λ at 128 factors (the size that validation preferred in the
notebook's earlier search), then the best pairs at 64 and 256 factors.
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
NEGATIVES, BATCH = 16, 16384
MAX_EPOCHS, PATIENCE = 40, 3
env.setup(SEED)
data = load_movielens("ml-latest-small")
train, _ = stratified_split(data.ratings, 0.2, SEED)  # the test part is dropped here
inner, val = stratified_split(train, 0.2, SEED)
index = train_index(inner)

GRID = ([(128, lr, 1e-2) for lr in (0.02, 0.01, 0.005)]  # stage 1: (factors, learning rate, λ)
        + [(128, 0.0025, 1e-2), (128, 0.005, 3e-2), (128, 0.005, 3e-3)]  # stage 2: around the best of stage 1
        + [(k, 0.005, 1e-2) for k in (64, 256)])  # stage 3: other sizes at the best pair
done = set()
if len(sys.argv) > 1:  # python nb03_bpr_search.py earlier.csv: append the candidates that file does not hold yet
    with open(sys.argv[1]) as log:
        done = {(int(k), float(lr), float(reg)) for k, lr, reg, *_ in (line.split(",") for line in log)
                if k != "factors"}
else:
    print("factors,lr,reg,epoch,val_ndcg10,epochs_run,best_epoch,seconds", flush=True)
for k, lr, reg in GRID:
    if (k, lr, reg) in done:
        continue
    triples = NegativeSampling(index.seen, BATCH, NEGATIVES, "triples", SEED)
    keras.utils.set_random_seed(SEED)
    model = BPRMF(index.ids.n_users, index.ids.n_items, k, reg, seed=SEED)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=bpr_loss)
    checks = RankingEarlyStopping(inner, val, every=1, patience=PATIENCE)
    t0 = time.perf_counter()
    model.fit(triples, epochs=MAX_EPOCHS, verbose=0, callbacks=[checks])
    secs = time.perf_counter() - t0
    log = checks.log
    for e, v in checks.checks.items():
        print(f"{k},{lr},{reg},{e},{v:.4f},{log.ran},{log.best},{secs:.1f}", flush=True)
