"""recsys_helpers.exercises.check: what a learner sees for a correct, a wrong, an unwritten and a crashing function."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_helpers.exercises import check

CASES = [((1, 2), 3, "add the two numbers"), ((0.5, 0.25), 0.75), ((-1, 1), 0)]


def add(a, b):
    return a + b


def output(capsys) -> list[str]:
    out, err = capsys.readouterr()
    assert err == ""
    return out.splitlines()


def test_correct_function(capsys):
    assert check(add, CASES) is None  # prints, returns nothing (the notebook shows only the printed lines)
    assert output(capsys) == ["✓ add: all 3 checks pass."]


def test_wrong_function_shows_input_expected_returned_and_hint(capsys):
    def add(a, b):
        return a - b

    check(add, CASES)
    assert output(capsys) == [
        "✗ 3 of 3 check(s) failed:",
        "  add(1, 2) returned -1, expected 3",
        "    hint: add the two numbers",
        "  add(0.5000, 0.2500) returned 0.2500, expected 0.7500",
        "  add(-1, 1) returned -2, expected 0",
    ]


def test_partly_wrong_function_lists_only_the_failing_cases(capsys):
    def add(a, b):
        return a + b if a >= 0 else 99

    check(add, CASES, name="my_add")
    assert output(capsys) == ["✗ 1 of 3 check(s) failed:", "  my_add(-1, 1) returned 99, expected 0"]


def test_unwritten_function(capsys):
    def recall(recommended, relevant):
        raise NotImplementedError

    check(recall, CASES)
    lines = output(capsys)
    assert len(lines) == 1 and lines[0].startswith("✗") and "not written yet" in lines[0] and "recall" in lines[0]


def test_crashing_function_is_one_line_not_a_traceback(capsys):
    def ratio(a, b):
        return a / (b - b)

    check(ratio, [((1, 2), 0.5)])
    lines = output(capsys)
    assert lines == ["✗ 1 of 1 check(s) failed:", "  ratio(1, 2) raised ZeroDivisionError: division by zero"]
    assert "Traceback" not in "\n".join(lines)


def test_a_crash_in_one_case_does_not_hide_the_others(capsys):
    def lookup(d, key):
        return d[key]

    check(lookup, [(({"a": 1}, "a"), 1), (({"a": 1}, "b"), 2), (({"a": 1}, "a"), 5)])
    lines = output(capsys)
    assert lines[0] == "✗ 2 of 3 check(s) failed:"
    assert lines[1] == "  lookup({'a': 1}, 'b') raised KeyError: 'b'"
    assert lines[2] == "  lookup({'a': 1}, 'a') returned 1, expected 5"


def test_arrays_tolerance_and_shapes(capsys):
    def scale(x):
        return np.asarray(x, dtype=float) * 2 + 1e-9  # within the default tolerance of 1e-6

    check(scale, [((np.array([1.0, 2.0]),), [2.0, 4.0])])
    assert output(capsys) == ["✓ scale: all 1 checks pass."]
    check(scale, [((np.array([1.0, 2.0]),), [2.0, 4.0])], tol=1e-12)
    assert output(capsys)[0] == "✗ 1 of 1 check(s) failed:"
    check(scale, [((np.array([1.0, 2.0]),), [[2.0, 4.0]])])  # same numbers, wrong shape
    assert output(capsys)[1] == "  scale([1. 2.]) returned [2. 4.], expected [[2.0, 4.0]]"


def test_non_numeric_results_and_frames(capsys):
    def first_title(frame):
        return frame["title"].iloc[0]

    frame = pd.DataFrame({"title": ["Toy Story (1995)", "Jumanji (1995)"]})
    check(first_title, [((frame,), "Toy Story (1995)")])
    assert output(capsys) == ["✓ first_title: all 1 checks pass."]
    check(first_title, [((frame,), "Jumanji (1995)")])
    assert output(capsys)[1] == ("  first_title(<DataFrame of 2 rows>) returned 'Toy Story (1995)', "
                                 "expected 'Jumanji (1995)'")


def test_a_none_result_is_a_failure(capsys):
    def forgot_return(a, b):
        a + b  # noqa: B018 (the learner forgot `return`)

    check(forgot_return, CASES[:1])
    assert output(capsys)[1] == "  forgot_return(1, 2) returned None, expected 3"


@pytest.mark.parametrize("long", [list(range(1000)), "x" * 500])
def test_long_values_are_shortened(capsys, long):
    check(lambda v: 0, [((long,), 1)], name="f")
    line = output(capsys)[1]
    assert len(line) < 500 and "..." in line
