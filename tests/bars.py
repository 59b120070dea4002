"""Metric bars per notebook, checked on the metrics each notebook records (results.json).

``BARS``: checked by the full tier (notebooks at their committed defaults).
``SMOKE_BARS``: checked by the fast tier (smoke parameters): each notebook must beat a trivial level.
Each entry: (model, protocol, metric, op, value), op one of "<=", ">=", "<", ">".
"""

import operator

BARS = {
    "01_preprocessing_and_evaluation": [
        ("Popularity", "ranking", "ndcg@10", ">=", 0.187 - 0.015),
        ("Popularity", "ranking", "ndcg@10", "<=", 0.187 + 0.015),
        ("User/item biases", "rating", "rmse", "<=", 0.885),
        ("Global mean", "rating", "rmse", "<=", 1.05),
    ],
}

SMOKE_BARS = {
    "01_preprocessing_and_evaluation": [
        ("User/item biases", "rating", "rmse", "<", 1.04),
        ("Popularity", "ranking", "ndcg@10", ">", 0.05),
    ],
}

_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def check_bar(records, bar):
    """Assert one bar on a notebook's records, with a message that names the model, metric and values."""
    model, protocol, metric, op, value = bar
    found = [r for r in records if r["model"] == model and r["protocol"] == protocol]
    assert found, f"no result recorded for {model!r} ({protocol}); recorded: {[r['model'] for r in records]}"
    got = found[0]["metrics"].get(metric)
    assert got is not None, f"{model!r} recorded no {metric!r}: {sorted(found[0]['metrics'])}"
    assert _OPS[op](got, value), f"{model!r} {metric} = {got:.4f}, bar: {op} {value:.4f}"
