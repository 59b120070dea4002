"""Metric bars per notebook, checked on the metrics each notebook records (results.json).

``BARS``: checked by the full tier (notebooks at their committed defaults).
``SMOKE_BARS``: checked by the fast tier (smoke parameters): each notebook must beat a trivial level.
Each entry: (model, protocol, metric, op, value), op one of "<=", ">=", "<", ">".
"""

BARS = {
    "01_preprocessing_and_evaluation": [],
}

SMOKE_BARS = {
    "01_preprocessing_and_evaluation": [],
}
