"""recsys_helpers.interactions: id maps, the cached training index, and time-ordered histories."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_helpers.interactions import (IdMap, next_item_pairs, pad_histories, sliding_windows, time_ordered,
                                         train_index, training_stretches, user_histories)

FRAME = pd.DataFrame({"user_id": [7, 7, 7, 9, 9, 7],
                      "item_id": [30, 10, 20, 10, 40, 50],
                      "timestamp": [5, 5, 1, 2, 3, 9]})  # user 7: t=1 item 20, t=5 items 10 and 30 (tie), t=9 50


def test_histories_are_time_ordered_with_ties_by_item_id():
    ids = IdMap.from_train(FRAME)  # items 10, 20, 30, 40, 50 -> 0..4
    hist = user_histories(FRAME, ids)
    assert [h.tolist() for h in hist] == [[1, 0, 2, 4], [0, 3]]
    shuffled = FRAME.sample(frac=1, random_state=3)
    assert [h.tolist() for h in user_histories(shuffled, ids)] == [h.tolist() for h in hist]  # row order is irrelevant


def test_histories_need_timestamps_and_skip_unknown_ids():
    ids = IdMap.from_train(FRAME[FRAME.item_id != 50])
    assert [h.tolist() for h in user_histories(FRAME, ids)] == [[1, 0, 2], [0, 3]]
    with pytest.raises(ValueError, match="1 interaction\\(s\\) have no timestamp"):
        user_histories(FRAME.assign(timestamp=[1.0, np.nan, 2, 3, 4, 5]), ids)
    with pytest.raises(ValueError, match="missing column"):
        user_histories(FRAME.drop(columns="timestamp"), ids)


def test_padding_truncation_and_pairs():
    hist = [np.array([1, 0, 2, 4]), np.array([3]), np.array([], dtype=np.int64)]
    assert pad_histories(hist, 3).tolist() == [[1, 3, 5], [0, 0, 4], [0, 0, 0]]  # last 3 items, index + 1, 0 pads
    users, x, y = next_item_pairs(hist, 2)
    assert users.tolist() == [0, 0, 0] and y.tolist() == [0, 2, 4]
    assert x.tolist() == [[0, 2], [2, 1], [1, 3]]
    users, x, y = next_item_pairs(hist, 5, min_history=3)
    assert y.tolist() == [4] and x.tolist() == [[0, 0, 2, 1, 3]]
    with pytest.raises(ValueError, match="no history has more than 4"):
        next_item_pairs(hist, 3, min_history=4)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="max_len must be a positive integer"):
            pad_histories(hist, bad)


def test_sliding_windows():
    w, t = sliding_windows([5, 6, 7, 8, 9], length=3, targets=2)
    assert w.tolist() == [[5, 6, 7]] and t.tolist() == [[8, 9]]
    w, t = sliding_windows([5, 6, 7, 8], length=2)
    assert w.tolist() == [[5, 6], [6, 7]] and t.tolist() == [[7], [8]]
    w, t = sliding_windows([5, 6], length=2)  # shorter than a window plus its target: no example
    assert w.shape == (0, 2) and t.shape == (0, 1)


def test_train_index_is_built_once_and_rebuilt_when_the_frame_changes():
    frame = FRAME.copy()
    first = train_index(frame)
    assert train_index(frame) is first
    assert first.seen.shape == (2, 5) and first.seen.nnz == 6
    frame.loc[0, "item_id"] = 40  # changed in place: the cached index would now be wrong
    second = train_index(frame)
    assert second is not first and second.seen.shape == (2, 4)  # item 30 is gone


def test_ids_of_another_kind_are_an_error():
    ids = IdMap.from_train(FRAME)
    with pytest.raises(TypeError, match="cannot match"):
        ids.items(["10", "20"])
    assert ids.items(np.array([10.0, 20.0])).tolist() == [0, 1]


def test_train_index_is_rebuilt_when_ids_are_permuted_in_place():
    """A permutation keeps each column's set of ids, which was all the cache compared: the stale seen matrix of the
    old pairs came back (I5, I6). Items 10..50 -> 0..4, users 7, 9 -> 0, 1."""
    frame = FRAME.copy()
    first = train_index(frame)
    assert first.seen.toarray().tolist() == [[1, 1, 1, 0, 1], [1, 0, 0, 1, 0]]
    frame["item_id"] = frame["item_id"].to_numpy()[::-1]  # 50, 40, 10, 20, 10, 30: user 9 now has 20 and 10
    second = train_index(frame)
    assert second is not first and second.seen.toarray().tolist() == [[1, 0, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert train_index(frame) is second  # and cached again
    frame["user_id"] = [9, 7, 7, 7, 9, 7]  # the same users, permuted: user 7 has 40, 10, 20, 30; user 9 50, 10
    third = train_index(frame)
    assert third is not second and third.seen.toarray().tolist() == [[1, 1, 1, 1, 0], [1, 0, 0, 0, 1]]
    reordered = frame.iloc[::-1].reset_index(drop=True)  # same pairs, another row order: the same matrix
    assert (train_index(reordered).seen != third.seen).nnz == 0


def test_train_index_counts_a_repeated_row_once():
    """The seen matrix is binary: a (user, item) pair listed twice is one seen item, not a 2 (mut-I1)."""
    frame = pd.concat([FRAME, FRAME.iloc[[1, 1]]], ignore_index=True)  # user 7, item 10 three times in all
    index = train_index(frame)
    assert index.seen.toarray().tolist() == [[1, 1, 1, 0, 1], [1, 0, 0, 1, 0]]
    assert index.seen.nnz == 6 and index.seen.has_sorted_indices
    assert IdMap.from_train(frame).interactions(frame).toarray()[0, 0] == 3  # interactions() itself sums them


def test_text_timestamps_are_refused_not_ordered_as_text():
    """'10' < '100' < '9' as text: the history was [1, 2, 0] instead of [0, 1, 2] (I7); a datetime or a number
    orders by time."""
    frame = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [10, 11, 12], "timestamp": ["9", "10", "100"]})
    ids = IdMap.from_train(frame)
    for bad in (frame, frame.astype({"timestamp": object}), frame.assign(timestamp=[True, False, True])):
        with pytest.raises(TypeError, match=r"ordered as text.*pd.to_numeric\(df\['timestamp'\]\)"):
            user_histories(bad, ids)
        with pytest.raises(TypeError, match="ordered as text"):
            time_ordered(bad)
    fixed = frame.assign(timestamp=pd.to_numeric(frame["timestamp"]))  # the fix the message names
    assert [h.tolist() for h in user_histories(fixed, ids)] == [[0, 1, 2]]
    as_dates = frame.assign(timestamp=pd.to_datetime(fixed["timestamp"], unit="D"))
    assert [h.tolist() for h in user_histories(as_dates, ids)] == [[0, 1, 2]]
    as_floats = fixed.assign(timestamp=[9.5, 9.25, 100.0])
    assert time_ordered(as_floats)["item_id"].tolist() == [11, 10, 12]


def test_ids_mixing_text_and_numbers_are_refused():
    """7 and '7' in one column: numpy could not sort them (I1), and they would be two users."""
    with pytest.raises(TypeError, match=r"user_id column of train mixes ids of different types \(int, str\)"):
        IdMap.from_train(FRAME.assign(user_id=[7, "7", 7, 9, 9, 7]))
    with pytest.raises(TypeError, match="item_id column of train mixes"):
        IdMap.from_train(FRAME.assign(item_id=[30, 10, 20, 10, "40", 50]))
    with pytest.raises(TypeError, match="user_id column of interactions mixes"):
        time_ordered(FRAME.assign(user_id=[7, "7", 7, 9, 9, 7]))
    text = IdMap.from_train(FRAME.astype({"user_id": str}))
    assert text.user_ids.tolist() == ["7", "9"] and text.users(["9"]).tolist() == [1]
    for same_kind in (["7", "7", "7", "9", "9", "7"], [7, 7, 7, 9, 9, 7]):  # one kind in an object column is fine
        objects = FRAME.assign(user_id=pd.Series(same_kind, dtype=object))
        assert IdMap.from_train(objects).user_ids.tolist() == sorted(set(same_kind))
        assert time_ordered(objects)["item_id"].tolist() == [20, 10, 30, 50, 10, 40]
    with pytest.raises(TypeError, match="item ids asked for mix|cannot match"):
        IdMap.from_train(FRAME.astype({"item_id": str})).items(np.array(["10", 10], dtype=object))


def test_one_id_must_be_passed_as_a_list():
    """IdMap.items(10) was a raw 'len() of unsized object' (I2)."""
    ids = IdMap.from_train(FRAME)
    for call in (lambda: ids.items(10), lambda: ids.users(7), lambda: ids.items("10"), lambda: ids.items([[10]])):
        with pytest.raises(TypeError, match=r"must be a list, array or Series of ids.*\[id\]\)\[0\]"):
            call()
    assert ids.items([10])[0] == 0 and ids.users(pd.Series([9, 7])).tolist() == [1, 0]


def test_interaction_values_must_be_finite_numbers():
    """A NaN rating was stored in the matrix (I12)."""
    ids = IdMap.from_train(FRAME)
    rated = FRAME.assign(rating=[1.0, 2.0, 3.0, 4.0, 5.0, 0.5])
    assert ids.interactions(rated, "rating").toarray().tolist() == [[2, 3, 1, 0, 0.5], [4, 0, 0, 5, 0]]
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="values column 'rating' holds 1 NaN or infinite value"):
            ids.interactions(rated.assign(rating=[1.0, bad, 3, 4, 5, 6]), "rating")
    unknown = pd.concat([rated, pd.DataFrame({"user_id": [8], "item_id": [10], "rating": [np.nan]})])
    assert ids.interactions(unknown, "rating").sum() == 15.5  # a row that is dropped may hold anything
    with pytest.raises(TypeError, match="'rating' has dtype .*not numbers.*pd.to_numeric"):
        ids.interactions(rated.assign(rating=list("abcdef")), "rating")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['score'\]"):
        ids.interactions(rated, "score")


def test_histories_must_hold_item_indices():
    """pad_histories turned the -1 of an unknown item into padding (I8); sliding_windows of text was a raw int()
    error (I11); fractions were truncated."""
    for call in (lambda: pad_histories([[-1, 5]], 3), lambda: next_item_pairs([[2, -1, 3]], 2),
                 lambda: training_stretches([[2, 3, -1]], 2, 5), lambda: sliding_windows([1, -1, 2], 1)):
        with pytest.raises(ValueError, match=r"item indices \(>= 0\), got -1.*strict=False"):
            call()
    for call in (lambda: sliding_windows(["a", "b", "c"], 1), lambda: pad_histories([[1.5]], 2),
                 lambda: next_item_pairs([["a", "b"]], 2), lambda: pad_histories([[True, False]], 2)):
        with pytest.raises(TypeError, match="integer item indices"):
            call()
    with pytest.raises(ValueError, match="1-d sequence"):
        pad_histories([[[1, 2]]], 2)
    assert pad_histories([[1.0, 2.0], []], 3).tolist() == [[0, 2, 3], [0, 0, 0]]  # whole floats are indices
    assert pad_histories(np.array([[4, 0, 2]]), 2).tolist() == [[1, 3]]


def test_counts_and_lengths_are_positive_integers():
    """max_len=True was taken as 1 (I9)."""
    for bad in (True, "abc", None, 2.5, 0):
        with pytest.raises(ValueError, match="max_len must be a positive integer"):
            pad_histories([[1, 2]], bad)
        with pytest.raises(ValueError, match="max_len must be a positive integer"):
            next_item_pairs([[1, 2]], bad)
        with pytest.raises(ValueError, match="length must be a positive integer"):
            sliding_windows([1, 2, 3], bad)
        with pytest.raises(ValueError, match="targets must be a positive integer"):
            sliding_windows([1, 2, 3], 1, bad)
        with pytest.raises(ValueError, match="min_history must be a positive integer"):
            next_item_pairs([[1, 2]], 2, bad)
        with pytest.raises(ValueError, match="max_history must be a positive integer"):
            training_stretches([[1, 2]], 2, bad)


def test_lookups_and_training_stretches_against_values_worked_by_hand():
    ids = IdMap.from_train(FRAME)  # users 7, 9; items 10, 20, 30, 40, 50
    assert ids.items([50, 10, 35, 99, 5], strict=False).tolist() == [4, 0, -1, -1, -1]
    assert ids.users([9, 8, 7], strict=False).tolist() == [1, -1, 0]
    with pytest.raises(KeyError, match=r"1 item id\(s\) are not in the training data, e.g. \[35\]"):
        ids.items([10, 35])
    # one history of items 0..3, stored as 1..4: stretches of 2 cut from the end, each position predicting the next
    inputs, targets = training_stretches([[0, 1, 2, 3]], max_len=2, max_history=10)
    assert inputs.tolist() == [[2, 3], [0, 1]] and targets.tolist() == [[3, 4], [0, 2]]
    inputs, targets = training_stretches([[0, 1, 2, 3]], max_len=2, max_history=2)  # only the last 3 items
    assert inputs.tolist() == [[2, 3]] and targets.tolist() == [[3, 4]]
    inputs, targets = training_stretches([[5, 6]], max_len=3, max_history=10)
    assert inputs.tolist() == [[0, 0, 6]] and targets.tolist() == [[0, 0, 7]]
