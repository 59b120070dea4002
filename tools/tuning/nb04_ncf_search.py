"""The validation search behind notebook 04's NCF settings (its log: nb04_ncf_search.csv, one row per checked epoch).

NeuMF and the dot product get the same search, in two stages, every candidate trained on fit_part with validation
NDCG@10 checked after every epoch and stopped after NCF_PATIENCE epochs without a new best (caps: CAP epochs,
NEUMF_CAP for NeuMF's fine-tuning), by the notebook's own code (nb04_common runs the notebook's cells tagged `tuning`):
1. negatives per positive in NEGATIVES, at NeuMF's size f = 32 and the dot product's 64 dimensions (the notebook's
   earlier settings), penalty 1e-3 for both;
2. at each model's best number of negatives from stage 1: size × penalty, NeuMF's f in SIZES with NEUMF_REG in REGS,
   the dot product's 2f dimensions with DOT_REG in REGS.
A NeuMF candidate pre-trains GMF and MLP of size f with early stopping on their own validation NDCG (logged as models
GMF and MLP, at their fixed penalties GMF_REG and MLP_REG), checks the initial blend (epoch 0), then fine-tunes NeuMF
with early stopping, as the notebook's train_ncf does. "seconds" is a candidate's training time with its checks
(for NeuMF: its fine-tuning only). The test split is never scored.

Run from the project root (about 40 minutes on 2 cores). It appends to the log and skips the candidates the log
already holds, so an interrupted search resumes:
    RECSYS_DATA_DIR=... .venv/bin/python tools/tuning/nb04_ncf_search.py [--smoke] [--stage1] [LOG]
"""
import sys
from pathlib import Path

import pandas as pd

from nb04_common import notebook_namespace

SMOKE = "--smoke" in sys.argv  # a tiny check of the script itself
STAGE1_ONLY = "--stage1" in sys.argv  # stop after stage 1 (run again without it to go on)
LOG = Path(next((a for a in sys.argv[1:] if not a.startswith("--")), Path(__file__).with_suffix(".csv")))
NEGATIVES, SIZES, REGS, CAP, NEUMF_CAP = [16, 32, 64], [16, 32, 64], [1e-4, 1e-3, 1e-2], 40, 20
STAGE1 = {"size f": 32, "reg": 1e-3}
if SMOKE:
    NEGATIVES, SIZES, REGS, CAP, NEUMF_CAP, STAGE1 = [1, 2], [8, 16], [1e-3], 2, 2, {"size f": 8, "reg": 1e-3}
nb = notebook_namespace()
keras, SEED, K = nb["keras"], nb["SEED"], nb["K"]
d, fit_part, val_part = nb["implicit_data"](nb["fit_part"]), nb["fit_part"], nb["val_part"]
COLUMNS = ["stage", "model", "negatives", "size f", "dims", "reg", "epoch", "val_ndcg", "ran", "best", "cap", "seconds"]
done = pd.read_csv(LOG) if LOG.exists() else pd.DataFrame(columns=COLUMNS)
if not LOG.exists():
    LOG.write_text(",".join(COLUMNS) + "\n")


def check(model):
    return nb["evaluate_ranking"](nb["all_scores"](model, d), fit_part, val_part, k=K)[f"ndcg@{K}"]


def logged(model, n_neg, f, reg):
    return ((done["model"] == model) & (done["negatives"] == n_neg) & (done["size f"] == f)
            & (done["reg"].astype(float) == reg)).any()


def write(stage, model, n_neg, f, dims, reg, run, cap, blend=None):
    stop, rows = run.stop, []
    checks = ([(0, blend)] if blend is not None else []) + list(zip(stop.epochs, stop.history))
    for epoch, value in checks:
        rows.append([stage, model, n_neg, f, dims, reg, epoch, round(value, 5), stop.ran, stop.best_epoch, cap,
                     round(run.seconds, 1)])
    with open(LOG, "a") as log:
        log.write("".join(",".join(map(str, r)) + "\n" for r in rows))
    print(f"stage {stage} {model} negatives {n_neg} f {f} reg {reg}: best {max(stop.history):.4f} at epoch "
          f"{stop.best_epoch} of {stop.ran} ({run.seconds:.0f} s)", flush=True)


def dot(stage, n_neg, f, reg):
    if not logged("Dot", n_neg, f, reg):
        _, run = nb["train_dot"](d, 2 * f, reg, n_neg, epochs=CAP, check=check)
        write(stage, "Dot", n_neg, f, 2 * f, reg, run, CAP)


PARENTS = {}  # (negatives, f) -> the pre-trained GMF and MLP, reused by the next NeuMF candidates


def neumf(stage, n_neg, f, regs):
    regs = [reg for reg in regs if not logged("NeuMF", n_neg, f, reg)]
    if not regs:
        return
    if (n_neg, f) not in PARENTS:
        keras.utils.set_random_seed(SEED)  # as train_ncf does
        parents = {"GMF": nb["build_gmf"](d, f), "MLP": nb["build_mlp"](d, nb["tower"](f))}
        for name, model in parents.items():
            run = nb["fit_implicit"](model, d, CAP, n_neg, check=check)
            reg = nb["GMF_REG"] if name == "GMF" else nb["MLP_REG"]
            if not logged(name, n_neg, f, reg):
                write(stage, name, n_neg, f, f, reg, run, CAP)
        PARENTS[(n_neg, f)] = parents
    parents = PARENTS[(n_neg, f)]
    for reg in regs:
        model = nb["build_neumf"](d, f, nb["tower"](f), reg)
        nb["init_from_pretrained"](model, parents["GMF"], parents["MLP"])
        blend = check(model)
        run = nb["fit_implicit"](model, d, NEUMF_CAP, n_neg, nb["NEUMF_LR"], seed=SEED + 1, check=check)
        write(stage, "NeuMF", n_neg, f, 2 * f, reg, run, NEUMF_CAP, blend)


for n_neg in NEGATIVES:
    dot(1, n_neg, STAGE1["size f"], STAGE1["reg"])
    neumf(1, n_neg, STAGE1["size f"], [STAGE1["reg"]])
    done = pd.read_csv(LOG)
if STAGE1_ONLY:
    sys.exit(0)
stage1 = done[(done["stage"] == 1) & (done["epoch"] > 0)].groupby(["model", "negatives"])["val_ndcg"].max()
for model, train in [("Dot", dot), ("NeuMF", neumf)]:
    best_n = int(stage1[model].idxmax())
    print(f"stage 2 for {model} at {best_n} negatives", flush=True)
    for f in SIZES:
        if model == "Dot":
            for reg in REGS:
                dot(2, best_n, f, reg)
        else:
            neumf(2, best_n, f, REGS)
        done = pd.read_csv(LOG)
