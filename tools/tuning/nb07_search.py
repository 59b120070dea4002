"""The validation-only search behind notebook 07's neural settings (its log: nb07_search.csv, one row per validation
check of every candidate).

It runs the notebook's own code. The cells of ``tools/notebooks/07_autoencoders.py`` that set the parameters (with
``PROFILE = "reference"``: the reference profile's caps, check intervals and patience), load and split the data and
define the models and their tuning (``tune`` for Mult-DAE and Mult-VAE, ``tune_autorec``, ``train_rbm``) are executed
here, and each candidate is trained exactly as the notebook trains it: on ``inner``, checked on ``val``. No cell that
scores the test split is executed. A candidate overrides some of the notebook's parameters (the names in its
``setting`` column) and passes the swept knob (``corruption``, ``beta``, ``lam``) as the notebook's grids do.

Usage, from the project root (appends to the log; a candidate already in the log is skipped):
    RECSYS_DATA_DIR=../shared/datasets .venv/bin/python tools/tuning/nb07_search.py dae vae autorec rbm

The columns: model, setting, epoch, metric (validation NDCG@10, or RMSE for AutoRec), value, seconds (of the whole
run), best_epoch, ran (epochs run) and cap.
"""
from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(PROJECT), str(PROJECT / "tools")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from nbbuild import read_source  # noqa: E402

LOG = Path(__file__).with_suffix(".csv")
COLUMNS = ["model", "setting", "epoch", "metric", "value", "seconds", "best_epoch", "ran", "cap"]
# the notebook's cells to run, each found by a line it contains (in this order)
CELLS = ['SEED = 42', 'if PROFILE == "reference":', "tf, results = env.start_notebook", "def binary_matrix",
         "def masked_mse", "def autorec(", "def multinomial_nll", "def tune(build", "class Reparameterise",
         "class KLAnnealing", "def sigmoid", "def train_rbm"]
LRS = {"dae": "NEURAL_LR", "vae": "NEURAL_LR", "autorec": "AUTOREC_LR", "rbm": "RBM_LR"}
GRIDS = {  # (parameters of the notebook to override, the swept knob)
    "dae": [({"DAE_HIDDEN": h, "NEURAL_LR": 2e-3}, {"corruption": q}) for h in (200, 600) for q in (0.25, 0.5, 0.75)],
    "vae": [({"VAE_HIDDEN": h, "VAE_LATENT": d, "VAE_DROPOUT": p, "NEURAL_LR": 2e-3}, {"beta": b})
            for h, d in ((256, 64), (600, 200)) for p in (0.5, 0.75) for b in (0.1, 0.2, 0.5)],
    "autorec": [({"AUTOREC_HIDDEN": 200, "AUTOREC_LR": lr}, {"item_based": ib, "lam": lam})
                for ib in (True, False) for lr in (3e-4, 1e-3, 3e-3) for lam in (1.0, 10.0, 100.0, 1000.0)],
    "rbm": [({"RBM_HIDDEN": h, "RBM_LR": lr}, {}) for h in (100, 300) for lr in (0.01, 0.05)],
}


def notebook_namespace() -> dict:
    cells = [c.source for c in read_source((PROJECT / "tools/notebooks/07_autoencoders.py").read_text()).cells
             if c.cell_type == "code"]
    ns = {"__name__": "nb07_search"}
    for marker in CELLS:
        found = [c for c in cells if marker in c]
        if len(found) != 1:
            sys.exit(f"the notebook has {len(found)} code cells containing {marker!r}; update CELLS")
        exec(compile(found[0], f"<notebook cell: {marker}>", "exec"), ns)
        if marker == "SEED = 42":
            ns["PROFILE"] = "reference"
    return ns


def setting_text(model: str, overrides: dict, knob: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in {**overrides, **knob}.items())


def run(ns: dict, model: str, overrides: dict, knob: dict) -> list[dict]:
    ns.update(overrides)
    start = time.perf_counter()
    if model in ("dae", "vae"):
        if model == "dae":
            ranker = ns["tune"](ns["build_dae"], corruption=knob["corruption"], user_node=False)
        else:
            ranker = ns["tune"](ns["build_vae"], ns["annealing"](knob["beta"]))
        check = ranker.check
        checks, metric = dict(zip(check.epochs, check.history)), "validation ndcg@10"
        best, ran, cap = check.best_epoch, check.ran, check.cap
    elif model == "autorec":
        check = ns["tune_autorec"](knob["item_based"], knob["lam"])
        checks, metric = {e: -v for e, v in zip(check.epochs, check.history)}, "validation rmse"
        best, ran, cap = check.best_epoch, check.ran, check.cap
    else:
        checks = {}
        rbm = ns["train_rbm"](ns["X_in"], ns["keep_in"], ns["RBM_MAX_EPOCHS"], checks)
        metric, best = "validation ndcg@10", max(checks, key=checks.get)
        ran, cap = len(rbm.errors), ns["RBM_MAX_EPOCHS"]
    seconds = time.perf_counter() - start
    setting = setting_text(model, overrides, knob)
    return [{"model": model, "setting": setting, "epoch": e, "metric": metric, "value": f"{v:.4f}",
             "seconds": f"{seconds:.1f}", "best_epoch": best, "ran": ran, "cap": cap} for e, v in checks.items()]


def main(models: list[str]) -> None:
    unknown = [m for m in models if m not in GRIDS]
    if unknown or not models:
        sys.exit(f"name the models to search among {sorted(GRIDS)} (got {models})")
    done = set()
    if LOG.exists():
        with LOG.open() as f:
            done = {(r["model"], r["setting"]) for r in csv.DictReader(f)}
    ns = notebook_namespace()
    new_file = not LOG.exists()
    with LOG.open("a", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        if new_file:
            writer.writeheader()
        for model in models:
            for overrides, knob in GRIDS[model]:
                if (model, setting_text(model, overrides, knob)) in done:
                    continue
                rows = run(ns, model, overrides, knob)
                writer.writerows(rows)
                f.flush()
                best = max(rows, key=lambda r: float(r["value"]) * (-1 if model == "autorec" else 1))
                print(f"{model} {rows[0]['setting']}: best {best['value']} at epoch {best['epoch']} "
                      f"({rows[0]['ran']}/{rows[0]['cap']} epochs, {rows[0]['seconds']} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
