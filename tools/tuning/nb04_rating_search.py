"""The validation search behind notebook 04's rating settings (its log: nb04_rating_search.csv, one row per epoch).

Both trained rating models of notebook 04, the feature MLP and biased MF, get the same grid: batch size
{1024, 4096} × Adam's learning rate {3e-3, 1e-2} × three penalty strengths around the model's earlier value (the MLP's
embedding L2 `RATING_REG` in {1e-3, 3e-3, 1e-2}, biased MF's per-rating λ `MF_REG` in {0.03, 0.1, 0.3}). Each candidate
is trained on fit_part until the validation RMSE has not improved for PATIENCE epochs (at most RATING_MAX_EPOCHS), by
the notebook's own code (nb04_common runs the notebook's cells tagged `tuning`). The test split is never scored.

Run from the project root (about 5 minutes on 2 cores; it writes the log, replacing it):
    RECSYS_DATA_DIR=... .venv/bin/python tools/tuning/nb04_rating_search.py [--smoke] [LOG]
"""
import sys
import time
from pathlib import Path

from nb04_common import notebook_namespace

SMOKE = "--smoke" in sys.argv  # a two-candidate check of the script itself
LOG = Path(next((a for a in sys.argv[1:] if not a.startswith("--")), Path(__file__).with_suffix(".csv")))
nb = notebook_namespace(**({"RATING_MAX_EPOCHS": 2} if SMOKE else {}))
keras, SEED = nb["keras"], nb["SEED"]
GRID = {"MLP": [1e-3, 3e-3, 1e-2], "Biased MF": [0.03, 0.1, 0.3]}
BATCHES, RATES = (1024, 4096), (3e-3, 1e-2)
if SMOKE:
    GRID, BATCHES, RATES = {"MLP": [3e-3], "Biased MF": [0.1]}, (4096,), (1e-2,)

with open(LOG, "w") as log:
    log.write("model,batch,lr,reg,epoch,val_rmse,ran,best,cap,seconds\n")
    for model_name, regs in GRID.items():
        for batch in BATCHES:
            for lr in RATES:
                for reg in regs:
                    keras.utils.set_random_seed(SEED)  # as the notebook does before building each model
                    if model_name == "MLP":
                        model = nb["build_rating_mlp"](reg=reg, lr=lr)
                        x_fit, x_val = nb["pick"](model, nb["fit_in"]), nb["pick"](model, nb["val_in"])
                    else:
                        model = nb["build_biased_mf"](reg=reg, lr=lr)
                        x_fit, x_val = nb["pairs"](nb["fit_in"]), nb["pairs"](nb["val_in"])
                    start = time.perf_counter()
                    history, epochs = nb["fit_early_stopping"](model, x_fit, x_val, batch)
                    seconds = time.perf_counter() - start
                    curve = history.history["val_rmse"]
                    for e, value in enumerate(curve, start=1):
                        log.write(f"{model_name},{batch},{lr},{reg},{e},{value:.5f},{epochs.ran},{epochs.best},"
                                  f"{epochs.cap},{seconds:.1f}\n")
                    log.flush()
                    print(f"{model_name} batch {batch} lr {lr} reg {reg}: best {min(curve):.4f} at epoch "
                          f"{epochs.best} of {epochs.ran} ({seconds:.0f} s)", flush=True)
