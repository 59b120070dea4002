"""The validation search behind notebook 06's reference settings: the size and the stretch length T of GRU4Rec, the
LSTM and SASRec (the hybrid of §5 is the LSTM plus a content CNN, at the LSTM's setting).

Run from the project root, in the course's environment (RECSYS_DATA_DIR set as for the notebooks):
    python tools/tuning/nb06_search.py [MODEL ...]    # appends to tools/tuning/nb06_search.csv

It executes the notebook's own cells (tools/notebooks/06_rnn_recommenders.py) with PROFILE = "reference", from the
parameters cell to the cell that defines ``train_next_item``: the data, the split, the models, the training recipe,
the epoch cap and the patience are the notebook's. The test events are never scored (those cells only use the
validation events). Then, per model:
1. sizes SIZES at T = FIRST_T;
2. the best of those sizes at the other lengths in LENGTHS;
each run trained until early stopping on the validation NDCG@10 ends it, and logged with its best validation NDCG@10,
its epochs and its seconds. A run already in the log is not repeated, so an interrupted search resumes.
"""
from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "tools"))
sys.path.insert(0, str(PROJECT))
from nbbuild import read_source  # noqa: E402

SOURCE = PROJECT / "tools" / "notebooks" / "06_rnn_recommenders.py"
LOG = PROJECT / "tools" / "tuning" / "nb06_search.csv"
MODELS = ["GRU4Rec", "LSTM", "SASRec"]
SIZES = [64, 128, 256]
FIRST_T = 50
LENGTHS = [20, 50, 100]
COLUMNS = ["model", "size", "T", "best validation ndcg@10", "best epoch", "epochs run", "epoch cap", "seconds",
           "validation ndcg by epoch"]


def notebook_namespace() -> dict:
    """The notebook's variables after its cells up to ``train_next_item`` ran, with PROFILE = "reference"."""
    os.chdir(PROJECT / "notebooks")  # where the notebook runs
    ns: dict = {}
    for cell in read_source(SOURCE.read_text()).cells:
        if cell.cell_type != "code":
            continue
        exec(compile(cell.source, str(SOURCE), "exec"), ns)
        if "parameters" in cell.metadata.get("tags", []):
            ns["PROFILE"] = "reference"
        if "def train_next_item" in cell.source:
            return ns
    raise RuntimeError(f"{SOURCE} has no cell that defines train_next_item")


def logged() -> dict:
    if not LOG.exists():
        return {}
    with LOG.open() as f:
        return {(r["model"], int(r["size"]), int(r["T"])): float(r["best validation ndcg@10"]) for r in csv.DictReader(f)}


def run(ns: dict, model: str, size: int, T: int) -> float:
    if model == "SASRec":
        m = ns["SASRec"](ns["n_items"], blocks=ns["SAS_BLOCKS"], heads=ns["SAS_HEADS"], dim=size, max_len=T,
                         mask_padding=ns["SAS_MASK_PADDING"], **ns["SHARED"], name=f"sasrec_{size}_{T}")
    else:
        m = ns["GRU4Rec"](ns["n_items"], {"GRU4Rec": "gru", "LSTM": "lstm"}[model], size, T, name=f"{model}_{size}_{T}")
    start = time.perf_counter()
    _, _, check, _ = ns["train_next_item"](m)
    e = check.log
    row = [model, size, T, round(max(check.history), 4), e.best, e.ran, e.cap, round(time.perf_counter() - start),
           ";".join(f"{v:.4f}" for v in check.history)]
    new = not LOG.exists()
    with LOG.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(COLUMNS)
        writer.writerow(row)
    print(", ".join(f"{c} {v}" for c, v in zip(COLUMNS[:-1], row)), flush=True)
    return max(check.history)


def main(models) -> None:
    ns = notebook_namespace()
    print(f"cap {ns['MAX_EPOCHS']} epochs, patience {ns['PATIENCE']}, batch {ns['BATCH']}, lr {ns['LR']}", flush=True)
    for model in models:
        done = logged()
        for size in SIZES:
            if (model, size, FIRST_T) not in done:
                done[model, size, FIRST_T] = run(ns, model, size, FIRST_T)
        best_size = max(SIZES, key=lambda s: done[model, s, FIRST_T])
        for T in LENGTHS:
            if (model, best_size, T) not in done:
                done[model, best_size, T] = run(ns, model, best_size, T)


if __name__ == "__main__":
    main(sys.argv[1:] or MODELS)
