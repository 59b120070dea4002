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


# ------------------------------------------------------------------ mappings and Series (issue 9, exercise 2 of 01)

ITEM_BIASES = {10: 0.25, 20: -1 / 3}


def test_a_series_for_a_dict_is_compared_by_its_items(capsys):
    def as_series():  # what `grouped.sum() / (reg + grouped.size())` gives a learner who forgets `.to_dict()`
        return pd.Series([0.25, -1 / 3], index=pd.Index([10, 20], name="item_id"))

    check(as_series, [((), ITEM_BIASES)])
    assert output(capsys) == ["✓ as_series: all 1 checks pass."]


def test_a_wrong_series_is_a_readable_line_not_a_crash(capsys):
    def as_series():
        return pd.Series([0.5, -1.0], index=[10, 20])

    check(as_series, [((), ITEM_BIASES, "divide by reg + number of ratings")])
    assert output(capsys) == [
        "✗ 1 of 1 check(s) failed:",
        "  as_series() returned Series {10: 0.5000, 20: -1.0000}, expected {10: 0.2500, 20: -0.3333}",
        "    hint: divide by reg + number of ratings",
    ]


def test_dicts_are_compared_with_the_tolerance(capsys):
    def rounded():
        return {10: 0.25 + 1e-9, 20: -0.333333333}  # within the default tolerance of 1e-6

    check(rounded, [((), ITEM_BIASES)])
    assert output(capsys) == ["✓ rounded: all 1 checks pass."]
    check(rounded, [((), ITEM_BIASES)], tol=1e-12)
    assert output(capsys)[0] == "✗ 1 of 1 check(s) failed:"


def test_dicts_in_another_order_with_numpy_keys_and_values_pass(capsys):
    def numpy_dict():
        return {np.int64(20): np.float64(-1 / 3), np.int64(10): np.float64(0.25)}

    check(numpy_dict, [((), ITEM_BIASES)])
    assert output(capsys) == ["✓ numpy_dict: all 1 checks pass."]


@pytest.mark.parametrize("got", [
    {10: 0.25},  # a missing key
    {10: 0.25, 20: -1 / 3, 30: 0.0},  # an extra key
    {10: 0.25, 20: float("nan")},  # a NaN value
    {10: 0.25, 20: "-0.33"},  # a value that is not a number
    pd.Series([0.25, -1 / 3], index=[10, 21]),  # a Series with a wrong key
    [0.25, -1 / 3],  # a list where a dict was expected
    pd.DataFrame({"b_i": [0.25, -1 / 3]}, index=[10, 20]),  # a frame where a dict was expected
])
def test_every_wrong_mapping_is_one_failing_line(capsys, got):
    check(lambda: got, [((), ITEM_BIASES)], name="biases")
    lines = output(capsys)
    assert lines[0] == "✗ 1 of 1 check(s) failed:"
    assert lines[1].startswith("  biases() returned ") and "expected {10: 0.2500, 20: -0.3333}" in lines[1]


def test_series_against_series_and_nested_values(capsys):
    expected = pd.Series([1.0, 2.0], index=["a", "b"])
    check(lambda: pd.Series([2.0 + 1e-9, 1.0], index=["b", "a"]), [((), expected)], name="f")
    assert output(capsys) == ["✓ f: all 1 checks pass."]
    check(lambda: {"a": [1.0, 2.0]}, [((), {"a": np.array([1.0, 2.0 + 1e-9])})], name="g")
    assert output(capsys) == ["✓ g: all 1 checks pass."]


def test_a_result_that_cannot_be_compared_is_a_failure_not_a_crash(capsys):
    class Odd:
        def __eq__(self, other):
            raise RuntimeError("cannot compare")

        __hash__ = object.__hash__

        def __repr__(self):
            return "Odd()"

    check(lambda: Odd(), [((), "x")], name="f")
    assert output(capsys) == ["✗ 1 of 1 check(s) failed:", "  f() returned Odd(), expected 'x'"]
    check(lambda: np.array([1.0, 2.0]), [((), "x")], name="g")  # an array against a string: elementwise ==
    assert output(capsys)[1] == "  g() returned [1. 2.], expected 'x'"


def test_a_series_against_a_list_is_compared_by_its_values_and_repeated_keys_fail(capsys):
    check(lambda: pd.Series([1.0, 2.0 + 1e-9], index=[7, 8]), [((), [1.0, 2.0])], name="f")
    assert output(capsys) == ["✓ f: all 1 checks pass."]
    check(lambda: pd.Series([0.25, 0.0, -1 / 3], index=[10, 10, 20]), [((), ITEM_BIASES)], name="g")
    assert output(capsys)[0] == "✗ 1 of 1 check(s) failed:"
