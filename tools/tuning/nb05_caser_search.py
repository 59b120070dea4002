"""The search behind notebook 05's Caser training settings (NEG_POWER, CASER_NEG_PER_TARGET, CASER_LR, CASER_BATCH,
CASER_L2), on the validation events of the sequential protocol only (L = CASER_L).
Run (from the project root): python tools/tuning/nb05_caser_search.py > tools/tuning/nb05_caser_search.csv
(or, to add candidates to an existing log: python tools/tuning/nb05_caser_search.py LOG >> LOG)

It runs the notebook's own cells (nb05_common: the sequential split, ``Caser``, ``CaserWindows``, ``caser_loss`` and
``train_caser``) and trains every candidate with the notebook's code until early stopping ends it (patience
PATIENCE, checked after every epoch, cap CAP epochs). The first candidate is the setting of the authors' code
(train_caser.py of graytowne/caser_pytorch: 3 uniform negatives per target, learning rate 1e-3, batches of 512,
weight decay 1e-6; it trains 50 epochs without early stopping).
"""
import sys

from nb05_common import notebook

CAP = 80
GRID = [  # (NEG_POWER, CASER_NEG_PER_TARGET, CASER_LR, CASER_BATCH, CASER_L2)
    (0.0, 3, 1e-3, 512, 1e-6),  # the authors' code
    (0.75, 3, 1e-3, 512, 1e-6),
    (0.0, 3, 3e-3, 1024, 1e-6),
    (0.75, 3, 3e-3, 1024, 1e-6),
    (0.75, 3, 3e-3, 1024, 0.0),
    (1.0, 3, 3e-3, 1024, 1e-6),
    (0.75, 6, 3e-3, 1024, 1e-6),
]
COLUMNS = "NEG_POWER,CASER_NEG_PER_TARGET,CASER_LR,CASER_BATCH,CASER_L2"

done = set()
if len(sys.argv) > 1:  # an earlier log: run only the candidates it does not hold yet
    with open(sys.argv[1]) as log:
        done = {tuple(float(v) for v in line.split(",")[:5]) for line in log if not line.startswith("NEG_POWER")}
nb = notebook("SEED", "verdict", "ratings", "Caser", "CaserWindows", "train_caser")
K = nb["K"]
if not done:
    print(f"{COLUMNS},best validation ndcg@{K},best epoch,epochs run,cap,seconds", flush=True)
for power, per_target, lr, batch, l2 in GRID:
    if (power, per_target, lr, batch, l2) in done:
        continue
    run = nb["train_caser"](max_epochs=CAP, power=power, neg_per_target=per_target, lr=lr, l2=l2, batch_size=batch)
    c = run.check
    print(f"{power},{per_target},{lr},{batch},{l2},{max(c.history):.4f},{c.best_epoch},{c.ran},{CAP},"
          f"{run.seconds:.0f}", flush=True)
