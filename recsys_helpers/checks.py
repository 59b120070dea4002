"""Input checks shared by the helpers: fail early with a message that names the problem and the fix."""
from __future__ import annotations

import pandas as pd


def require_columns(df, columns, what: str = "ratings") -> None:
    """Raise a clear error unless ``df`` is a non-empty DataFrame with ``columns`` and no missing ids."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} is missing column(s) {missing}; it has {list(df.columns)}. "
                         f"Rename them, e.g. df.rename(columns={{'userId': 'user_id', 'movieId': 'item_id'}}).")
    if df.empty:
        raise ValueError(f"{what} is empty: there is nothing to work with")
    for col in ("user_id", "item_id"):
        if col in columns and df[col].isna().any():
            n = int(df[col].isna().sum())
            raise ValueError(f"{what} has {n} row(s) with a missing {col}; drop them first (df.dropna(subset=['{col}']))")


def require_fraction(value, name: str = "test_frac") -> float:
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value}")
    return value


def require_positive_int(value, name: str) -> int:
    if int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
