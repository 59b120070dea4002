"""Exercise checks: run a learner's function on worked cases and say what is wrong, not only that it is.

A notebook calls ``check(learner_function, cases)`` right after the learner's function.
Each case is ``(args, expected)`` or ``(args, expected, hint)``; ``args`` is a tuple of positional arguments.
Numbers and arrays match within the tolerance; dicts, other mappings and pandas Series match key by key (a Series
counts as the mapping of its index to its values, so a learner may return either), each value within the tolerance.
The check prints one line per failing case with the input, the expected and the returned value, and a hint,
or a single line saying that every case passed. It returns nothing, so the notebook shows only those lines.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def _is_mapping(value) -> bool:
    return isinstance(value, (Mapping, pd.Series))


def _plain(value):
    """A NumPy scalar as the Python number it holds (np.int64(10) -> 10), anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def _items(value) -> dict | None:
    """A mapping or a Series as a plain dict {key: value}; None for a Series whose index repeats a key."""
    if isinstance(value, pd.Series) and not value.index.is_unique:
        return None
    return {_plain(key): item for key, item in value.items()}


def _close(a, b, tol: float) -> bool:
    """Whether ``a`` (returned) matches ``b`` (expected).

    A dict (or other mapping) against a dict or a Series, and a Series against a Series, match key by key: the same
    keys, each value within ``tol`` (a Series counts as the mapping of its index to its values). A mapping against
    anything else does not match. Otherwise numbers, arrays and lists (and a Series against a list or an array, by
    its values) match within ``tol`` and in the same shape, and anything else by ``==``. A comparison that raises
    is an error for ``check`` to report as a mismatch."""
    if isinstance(a, Mapping) or isinstance(b, Mapping) or (isinstance(a, pd.Series) and isinstance(b, pd.Series)):
        if not (_is_mapping(a) and _is_mapping(b)):
            return False
        a_items, b_items = _items(a), _items(b)
        if a_items is None or b_items is None or a_items.keys() != b_items.keys():
            return False
        return all(_close(a_items[key], b_items[key], tol) for key in b_items)
    try:
        a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        equal = a == b
        if isinstance(equal, (bool, np.bool_)):
            return bool(equal)
        return np.shape(equal) == np.shape(b) and bool(np.all(equal))  # elementwise ==, e.g. arrays of strings
    return a_arr.shape == b_arr.shape and bool(np.allclose(a_arr, b_arr, atol=tol, rtol=0, equal_nan=True))


def _short(value) -> str:
    """A compact, readable form of an argument or a result for the check's messages."""
    value = _plain(value)
    if isinstance(value, pd.DataFrame):
        return f"<DataFrame of {len(value):,} rows>"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, np.ndarray):
        text = np.array2string(value, precision=4, threshold=12)
    elif _is_mapping(value):
        text = "{" + ", ".join(f"{_short(key)}: {_short(item)}" for key, item in list(value.items())[:50]) + \
               (", ..." if len(value) > 50 else "") + "}"
        text = "Series " + text if isinstance(value, pd.Series) else text
    else:
        text = repr(value)
    return text if len(text) < 200 else text[:197] + "..."


def check(fn, cases, tol: float = 1e-6, name: str | None = None) -> None:
    """Run ``fn(*args)`` for every case and print each mismatch with its input and a hint."""
    name = name or getattr(fn, "__name__", "your function")
    problems = []
    for case in cases:
        args, expected, hint = (tuple(case) + ("",))[:3]
        try:
            got = fn(*args)
        except NotImplementedError:
            print(f"✗ {name} is not written yet: replace `raise NotImplementedError` with your code.")
            return
        except Exception as err:  # the learner's bug: show it as one line, not a traceback
            problems.append(f"  {name}{_args(args)} raised {type(err).__name__}: {err}")
            continue
        try:
            same = _close(got, expected, tol)
        except Exception:  # e.g. an object whose == raises, or is ambiguous: a mismatch to show, not a crash
            same = False
        if not same:
            line = f"  {name}{_args(args)} returned {_short(got)}, expected {_short(expected)}"
            problems.append(line + (f"\n    hint: {hint}" if hint else ""))
    if problems:
        print(f"✗ {len(problems)} of {len(cases)} check(s) failed:")
        print("\n".join(problems))
        return
    print(f"✓ {name}: all {len(cases)} checks pass.")


def _args(args) -> str:
    return "(" + ", ".join(_short(a) for a in args) + ")"
