"""The search that chose notebook 08's CFGAN setting (its log: nb08_cfgan_search.csv, one row per run).

It runs the notebook's own code, not a copy: the cells of ``tools/notebooks/08_gan_recommenders.py`` that load the
data, define the helpers and define CFGAN and its validation run are executed as they are, at the reference
profile's check interval, patience and cap (``PROFILE = "reference"``), with the setting of one run put in place of
the parameters cell's values. Each run trains on the inner split and checks NDCG@10 on the validation split (never
the test split: the notebook's test-scoring cells are not run) until early stopping ends it, and appends one row to
the log. Run from the project root, one run per call, for example:

    RECSYS_DATA_DIR=../shared/datasets .venv/bin/python tools/tuning/nb08_cfgan_search.py CF_HIDDEN_G=400 CF_ALPHA=0.1

Any CF_* parameter of the notebook can be set (CF_HIDDEN_G, CF_HIDDEN_D, CF_LR, CF_BATCH, CF_ALPHA, CF_ZR, CF_PM,
CF_REG); ``variant=no_d`` runs CFGAN's no-D twin, ``variant=no_zr_pm`` the ablation without ZR and PM.
"""
import csv
import os
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(PROJECT), str(PROJECT / "tools")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from nbbuild import read_source  # noqa: E402

SOURCE = PROJECT / "tools" / "notebooks" / "08_gan_recommenders.py"
LOG = Path(__file__).with_suffix(".csv")
# the cells run, in the notebook's order, each found by a line it alone starts with
CELLS = ['SEED = 42', 'if PROFILE == "reference":', 'from recsys_helpers import env', 'data = load_movielens(',
         'def validation_ndcg(', 'def toy_data(', 'class CFGAN:', 'def draw(', 'cols_in, cols_tr =']
SETTING = ["CF_HIDDEN_G", "CF_HIDDEN_D", "CF_LR", "CF_BATCH", "CF_ALPHA", "CF_ZR", "CF_PM", "CF_REG"]
VARIANTS = {"cfgan": {}, "no_d": {"adversarial": False}, "no_zr_pm": {"zr_pm": False}}


def main(argv):
    overrides = dict(a.split("=", 1) for a in argv)
    variant = overrides.pop("variant", "cfgan")
    unknown = set(overrides) - set(SETTING)
    if unknown or variant not in VARIANTS:
        sys.exit(f"unknown setting {sorted(unknown)} or variant {variant!r}; settings: {SETTING}, variants: "
                 f"{list(VARIANTS)}")
    cells = [c.source for c in read_source(SOURCE.read_text()).cells if c.cell_type == "code"]
    chosen = []
    for start in CELLS:
        found = [c for c in cells if any(line.startswith(start) for line in c.splitlines())]
        if len(found) != 1:
            sys.exit(f"expected one code cell with a line starting {start!r} in {SOURCE.name}, found {len(found)}")
        chosen.append(found[0])
    ns = {}
    exec(chosen[0], ns)  # the parameters cell, then the reference profile's caps
    ns["PROFILE"] = "reference"
    exec(chosen[1], ns)
    for name, value in overrides.items():
        ns[name] = type(ns[name])(float(value)) if isinstance(ns[name], (int, float)) else value
    for cell in chosen[2:]:
        exec(cell, ns)
    checked = ns["validation_ndcg"]

    def progress(scores):  # the notebook's validation score, printed as it goes
        value = checked(scores)
        print(f"  check {len(progress.log) + 1}: validation NDCG@10 {value:.4f} ({time.time() - start:.0f} s)",
              flush=True)
        progress.log.append(value)
        return value

    progress.log = []
    ns["validation_ndcg"] = progress
    setting = {name: ns[name] for name in SETTING}
    print(f"variant {variant}: {setting}; every {ns['CF_EVERY']}, patience {ns['CF_PATIENCE']}, "
          f"cap {ns['CF_MAX_EPOCHS']}", flush=True)
    start = time.time()
    _, check = ns["validation_run"](**VARIANTS[variant])
    row = {"variant": variant, **setting, "every": ns["CF_EVERY"], "patience": ns["CF_PATIENCE"],
           "cap": ns["CF_MAX_EPOCHS"], "best_val_ndcg10": round(max(check.history), 4), "best_epoch": check.best_epoch,
           "epochs_run": check.log.ran, "stopped_by": "early stopping" if check.log.stopped_early else "cap",
           "seconds": round(time.time() - start, 1),
           "checks": " ".join(f"{e}:{v:.4f}" for e, v in zip(check.epochs, check.history))}
    new = not LOG.exists()
    with LOG.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    print("ROW", row)


if __name__ == "__main__":
    main(sys.argv[1:])
