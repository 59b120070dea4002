"""recsys_helpers.interactions: id maps, the cached training index, and time-ordered histories."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_helpers.interactions import (IdMap, next_item_pairs, pad_histories, sliding_windows, train_index,
                                         user_histories)

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
