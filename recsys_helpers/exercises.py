"""Exercise checks: run a learner's function on worked cases and say what is wrong, not only that it is.

A notebook calls ``check(learner_function, cases)`` right after the learner's function.
Each case is ``(args, expected)`` or ``(args, expected, hint)``; ``args`` is a tuple of positional arguments.
The check prints one line per failing case with the input, the expected and the returned value, and a hint,
or a single line saying that every case passed. It returns nothing, so the notebook shows only those lines.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _close(a, b, tol: float) -> bool:
    try:
        a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        return a == b
    return a_arr.shape == b_arr.shape and bool(np.allclose(a_arr, b_arr, atol=tol, rtol=0, equal_nan=True))


def _short(value) -> str:
    """A compact, readable form of an argument or a result for the check's messages."""
    if isinstance(value, pd.DataFrame):
        return f"<DataFrame of {len(value):,} rows>"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, np.ndarray):
        text = np.array2string(value, precision=4, threshold=12)
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
        if not _close(got, expected, tol):
            line = f"  {name}{_args(args)} returned {_short(got)}, expected {_short(expected)}"
            problems.append(line + (f"\n    hint: {hint}" if hint else ""))
    if problems:
        print(f"✗ {len(problems)} of {len(cases)} check(s) failed:")
        print("\n".join(problems))
        return
    print(f"✓ {name}: all {len(cases)} checks pass.")


def _args(args) -> str:
    return "(" + ", ".join(_short(a) for a in args) + ")"
