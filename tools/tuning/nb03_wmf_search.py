"""The wider WMF search behind notebook 03's WMF_GRID, on the validation split only (test is never loaded into a
score). Run: RECSYS_DATA_DIR=... python tools/tuning/nb03_wmf_search.py > tools/tuning/nb03_wmf_search.csv

Every candidate is fitted on `inner` (train minus validation) and NDCG@10 on `val` is recorded every 5 iterations.
"""
import sys
import time

from recsys_helpers.data import load_movielens
from recsys_helpers.evaluation import evaluate_ranking
from recsys_helpers.models import WMF
from recsys_helpers.split import stratified_split

SEED = 42
data = load_movielens("ml-latest-small")
train, _ = stratified_split(data.ratings, 0.2, SEED)  # the test part is dropped here
inner, val = stratified_split(train, 0.2, SEED)

GRID = [(k, a, l) for k in (64, 128, 256) for a, l in
        [(1, 10), (1, 20), (1, 50), (3, 15), (3, 30), (3, 60), (10, 50), (10, 100), (10, 200), (20, 100), (20, 200),
         (40, 200), (40, 400)]]
if len(sys.argv) > 1:  # a quick subset: python nb03_wmf_search.py 128
    GRID = [g for g in GRID if g[0] == int(sys.argv[1])]
print("factors,alpha,reg,iterations,val_ndcg10,seconds", flush=True)
for k, a, l in GRID:
    checks = {}

    def check(iteration, model):
        if iteration % 5 == 0:
            checks[iteration] = evaluate_ranking(model, inner, val)["ndcg@10"]

    t0 = time.perf_counter()
    WMF(k, a, l, iterations=20, cg_steps=3, seed=SEED).fit(inner, on_iteration=check)
    secs = time.perf_counter() - t0
    for i, v in checks.items():
        print(f"{k},{a},{l},{i},{v:.4f},{secs:.1f}", flush=True)
