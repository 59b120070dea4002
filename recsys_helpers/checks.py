"""Input checks shared by the helpers: fail early with a message that names the problem and the fix."""
from __future__ import annotations

import numpy as np
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
    """``value`` as a float strictly between 0 and 1 (``True``, strings and NaN are refused)."""
    value = require_finite(value, name)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value}")
    return value


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def require_positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int of at least ``minimum``: a whole number (``2.0`` is taken as 2); ``True``, ``2.5``, strings
    and None are refused with a message that names ``name``."""
    if not _is_number(value) or not np.isfinite(value) or value != int(value) or int(value) < minimum:
        kind = "a positive integer (a whole number of at least 1)" if minimum == 1 else \
            f"an integer of at least {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def require_seed(seed, name: str = "seed") -> int:
    """``seed`` as a non-negative int (what NumPy's and Keras's generators take); ``True``, ``1.5``, ``'a'`` and None
    are refused, naming ``name``. A Generator is not a seed: pass it as ``rng=`` where a helper takes one."""
    if isinstance(seed, np.random.Generator):
        raise TypeError(f"{name} must be a whole number such as 42, got a numpy Generator; pass the number itself")
    if not _is_number(seed) or not np.isfinite(seed) or seed != int(seed) or int(seed) < 0:
        raise TypeError(f"{name} must be a whole number of at least 0, such as 42, got {seed!r}")
    return int(seed)


def require_rng(rng, name: str = "rng") -> np.random.Generator:
    """``rng`` if it is a ``numpy.random.Generator``; a plain number is refused with the fix."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name} must be a numpy Generator, e.g. np.random.default_rng(42), got {rng!r}")
    return rng


def require_finite(value, name: str, positive: bool = False, non_negative: bool = False) -> float:
    """``value`` as a finite float (NaN and inf refused; optionally > 0 or >= 0), naming ``name``."""
    if not _is_number(value) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    if non_negative and value < 0:
        raise ValueError(f"{name} must be at least 0, got {value!r}")
    return value


def require_finite_array(values, name: str) -> np.ndarray:
    """``values`` as a float array with no NaN or inf, naming ``name`` and counting the bad entries."""
    arr = np.asarray(values, dtype=float)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} holds {int(bad.sum())} NaN or infinite value(s); drop or fill them first")
    return arr


def require_time_order(frame, what: str = "rating") -> None:
    """Refuse timestamps that cannot be ordered as times (used by the splits and the histories): text, which sorts
    as text ('9' after '10'), booleans, and missing values. ``what`` names one row in the messages."""
    ts = frame["timestamp"]
    numeric = pd.api.types.is_numeric_dtype(ts) and not pd.api.types.is_bool_dtype(ts)
    if not (numeric or pd.api.types.is_datetime64_any_dtype(ts) or pd.api.types.is_timedelta64_dtype(ts)):
        raise TypeError(f"timestamp has dtype {ts.dtype}, not numbers or datetimes, so it would be ordered as text "
                        "('9' after '10'); convert it first, e.g. df.assign(timestamp=pd.to_numeric(df['timestamp'])) "
                        "or pd.to_datetime(df['timestamp']) for dates")
    if ts.isna().any():
        raise ValueError(f"{int(ts.isna().sum())} {what}(s) have no timestamp; ordering by time needs every time: "
                         "drop or fill them first")
