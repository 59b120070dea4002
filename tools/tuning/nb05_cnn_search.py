"""The search behind notebook 05's TRAIN_TAGS, CNN_DROPOUT and N_FILTERS, on the validation-new movies only.
Run (from the project root): python tools/tuning/nb05_cnn_search.py > tools/tuning/nb05_cnn_search.csv

It runs the notebook's own cells (nb05_common: the documents, the cold-start and validation splits, WMF, the ridge
and ``train_text_cnn``) and trains every candidate with the notebook's code until early stopping ends it (patience
PATIENCE, cap CAP epochs); for each choice of training documents it also reports the ridge's best λ.
"""
import time

from nb05_common import notebook

CAP = 40
GRID = [(0.1, 100), (0.3, 100), (0.5, 100), (0.1, 50), (0.1, 200)]  # (CNN_DROPOUT, N_FILTERS), with and without tags

nb = notebook("SEED", "verdict", "data", "cold", "documents", "featurise", "wmf", "fit_ridge", "train_text_cnn")
K = nb["K"]
print(f"TRAIN_TAGS,model,dropout,filters,best validation ndcg@{K},best epoch,epochs run,cap,seconds", flush=True)
for train_tags in (True, False):
    f = nb["featurise"](train_tags)
    ridge = nb["ridge_search"](f)
    lam = max(ridge, key=ridge.get)
    print(f'{train_tags},"ridge (λ = {lam:g}, best of RIDGE_GRID)",,,{ridge[lam]:.4f},,,,', flush=True)
    for dropout, n_filters in GRID:
        start = time.perf_counter()
        run = nb["train_text_cnn"](f, dropout, n_filters, max_epochs=CAP)
        c = run.check
        print(f"{train_tags},CNN,{dropout},{n_filters},{max(c.history):.4f},{c.best_epoch},{c.ran},{CAP},"
              f"{time.perf_counter() - start:.0f}", flush=True)
