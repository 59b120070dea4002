"""recsys_helpers.split: stratified, random, temporal and leave-last-out splits, and their input checks."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from recsys_helpers.split import (cold_start_split, leave_last_out, random_split, sequential_split, stratified_split,
                                  temporal_split)

SPLITS = [stratified_split, random_split, temporal_split, leave_last_out]
FRACTION_SPLITS = [stratified_split, random_split, temporal_split]


@pytest.fixture
def ratings(synthetic) -> pd.DataFrame:
    """The synthetic ratings with a ``row`` id, so each split's rows can be traced back to the input."""
    return synthetic.ratings.assign(row=np.arange(len(synthetic.ratings)))


def assert_partition(ratings: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame) -> None:
    """train and test have the input's columns and dtypes, share no row, and together are the input."""
    for part in (train, test):
        assert list(part.columns) == list(ratings.columns)
        assert part.dtypes.equals(ratings.dtypes)
        assert part.index.equals(pd.RangeIndex(len(part)))
    assert not set(train.row) & set(test.row)
    assert len(train) + len(test) == len(ratings)
    both = pd.concat([train, test]).sort_values("row").reset_index(drop=True)
    pd.testing.assert_frame_equal(both, ratings.sort_values("row").reset_index(drop=True))


# --------------------------------------------------------------------------------------------- stratified

def test_stratified_keeps_every_user_in_train_with_about_a_fifth_in_test(ratings):
    train, test = stratified_split(ratings, 0.2, 42)
    assert_partition(ratings, train, test)
    assert set(train.user_id) == set(ratings.user_id)
    n = ratings.groupby("user_id").size()
    n_test = test.groupby("user_id").size().reindex(n.index, fill_value=0)
    assert (np.abs(n_test - 0.2 * n) <= 0.5).all()  # round(0.2 * n) ratings of each user
    assert (n - n_test >= 1).all()
    assert len(test) / len(ratings) == pytest.approx(0.2, abs=0.01)


def test_stratified_small_users():
    # one user with 1 rating, one with 2 (round(0.4) = 0 in test), one with 3 (round(0.6) = 1 in test),
    # and one with 5 at test_frac 0.9 (round(4.5) = 4, at most n - 1 = 4 in test)
    r = pd.DataFrame({"user_id": [1, 2, 2, 3, 3, 3], "item_id": [1, 1, 2, 1, 2, 3]})
    train, test = stratified_split(r, 0.2, 0)
    assert test.user_id.tolist() == [3] and len(train) == 5
    r5 = pd.DataFrame({"user_id": [7] * 5, "item_id": range(5)})
    train, test = stratified_split(r5, 0.9, 0)
    assert len(train) == 1 and len(test) == 4


def test_stratified_is_seeded_and_deterministic(ratings):
    a_train, a_test = stratified_split(ratings, 0.2, 42)
    b_train, b_test = stratified_split(ratings, 0.2, 42)
    pd.testing.assert_frame_equal(a_test, b_test)
    pd.testing.assert_frame_equal(a_train, b_train)
    _, c_test = stratified_split(ratings, 0.2, 43)
    assert set(c_test.row) != set(a_test.row)


def test_stratified_standard_split_of_movielens(movielens, standard_split):
    train, test = standard_split
    assert len(train) + len(test) == 100_836
    assert len(test) == 20_164  # the course's standard split: the same rows on every machine
    assert set(train.user_id) == set(movielens.ratings.user_id)


def test_stratified_ignores_the_index(ratings):
    odd = ratings.copy()
    odd.index = np.random.default_rng(0).permutation(len(odd)) * 3 + 1000  # neither sorted nor 0..n-1
    train, test = stratified_split(odd, 0.2, 42)
    assert_partition(ratings, train, test)
    _, expected_test = stratified_split(ratings, 0.2, 42)
    assert set(test.row) == set(expected_test.row)


@pytest.mark.parametrize("split_fn", [stratified_split, random_split, temporal_split, leave_last_out,
                                      sequential_split, cold_start_split])
def test_every_split_refuses_duplicate_pairs(ratings, split_fn):
    # one copy could land in train and the other in test: the model would be tested on what it trained on
    dup = pd.concat([ratings, ratings.head(40).assign(timestamp=lambda d: d.timestamp + 1)])
    with pytest.raises(ValueError, match=r"40 duplicate \(user, item\) row\(s\).*drop_duplicates"):
        split_fn(dup)


# --------------------------------------------------------------------------------------------- random

def test_random_split(ratings):
    train, test = random_split(ratings, 0.25, 1)
    assert_partition(ratings, train, test)
    assert len(test) == round(0.25 * len(ratings))
    again_train, again_test = random_split(ratings, 0.25, 1)
    pd.testing.assert_frame_equal(test, again_test)
    _, other = random_split(ratings, 0.25, 2)
    assert set(other.row) != set(test.row)


# --------------------------------------------------------------------------------------------- temporal

def test_temporal_split_tests_on_the_future(ratings):
    train, test = temporal_split(ratings, 0.2)
    assert_partition(ratings, train, test)
    assert test.timestamp.min() >= train.timestamp.max()
    assert len(test) / len(ratings) == pytest.approx(0.2, abs=0.01)


def test_temporal_split_keeps_tied_timestamps_together():
    # timestamps 1, 2, 3, 3, 3: the three ratings at time 3 go to test together (60%), never split apart
    r = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [1, 2, 1, 2, 1], "timestamp": [1, 2, 3, 3, 3]})
    train, test = temporal_split(r, 0.6)
    assert train.timestamp.tolist() == [1, 2] and test.timestamp.tolist() == [3, 3, 3]
    with pytest.raises(ValueError, match="test_frac=0.2 was asked, but 60%"):  # 20% would split time 3 apart
        temporal_split(r, 0.2)


# --------------------------------------------------------------------------------------------- leave last out

@pytest.mark.parametrize("n", [1, 2])
def test_leave_last_out(ratings, n):
    shuffled = ratings.sample(frac=1.0, random_state=0)  # input order must not matter (only time does)
    train, test = leave_last_out(shuffled, n)
    assert_partition(ratings, train, test)
    sizes = ratings.groupby("user_id").size()
    assert (test.groupby("user_id").size() == n).all()
    assert set(test.user_id) == set(sizes[sizes > n].index)
    assert set(train.user_id) == set(ratings.user_id)
    latest_train = train.groupby("user_id").timestamp.max()
    earliest_test = test.groupby("user_id").timestamp.min()
    assert (earliest_test >= latest_train.reindex(earliest_test.index)).all()


def test_leave_last_out_small_users_and_ties():
    # user 1: three ratings, two at the same last time: row order breaks the tie (the later row is "last");
    # user 2: a single rating, which stays in train
    r = pd.DataFrame({"user_id": [1, 1, 1, 2], "item_id": [10, 11, 12, 10], "timestamp": [5, 9, 9, 1]})
    train, test = leave_last_out(r, 1)
    assert test[["user_id", "item_id"]].values.tolist() == [[1, 12]]
    assert sorted(train.item_id.tolist()) == [10, 10, 11]
    train, test = leave_last_out(r, 3)  # no user has more than 3: everything stays in train
    assert len(train) == 4 and test.empty and list(test.columns) == list(r.columns)


@pytest.mark.parametrize("n", [0, -1, 1.5])
def test_leave_last_out_rejects_bad_n(ratings, n):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        leave_last_out(ratings, n)


# --------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("split", FRACTION_SPLITS)
@pytest.mark.parametrize("frac", [0.0, 1.0, -0.2, 1.5, float("nan")])
def test_fraction_out_of_range(split, frac, ratings):
    with pytest.raises(ValueError, match="test_frac"):
        split(ratings, frac)


@pytest.mark.parametrize("split, column", [(stratified_split, "user_id"), (stratified_split, "item_id"),
                                           (random_split, "item_id"), (temporal_split, "timestamp"),
                                           (leave_last_out, "timestamp"), (leave_last_out, "user_id")])
def test_missing_column_is_named(split, column, ratings):
    with pytest.raises(ValueError, match=re.escape(f"missing column(s) ['{column}']")):
        split(ratings.drop(columns=column))


@pytest.mark.parametrize("split", SPLITS)
def test_renamed_movielens_columns_are_refused_with_a_hint(split):
    raw = pd.DataFrame({"userId": [1], "movieId": [2], "rating": [4.0], "timestamp": [3]})
    with pytest.raises(ValueError, match="rename"):
        split(raw)


@pytest.mark.parametrize("split", SPLITS)
def test_empty_frame(split, ratings):
    with pytest.raises(ValueError, match="empty"):
        split(ratings.iloc[:0])


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("column", ["user_id", "item_id"])
def test_nan_ids(split, column, ratings):
    bad = ratings.astype({column: float})
    bad.loc[3, column] = np.nan
    with pytest.raises(ValueError, match=f"missing {column}"):
        split(bad)


@pytest.mark.parametrize("split", SPLITS)
def test_not_a_frame(split, ratings):
    with pytest.raises(TypeError, match="DataFrame"):
        split(ratings.to_numpy())


def test_stratified_keeps_one_rating_of_every_user_in_train():
    # users with 1 and 2 ratings: round(n * 0.9) would send all of them to test without the guard
    tiny = pd.DataFrame({"user_id": [1, 2, 2, 3, 3, 3], "item_id": [1, 1, 2, 1, 2, 3], "rating": 4.0})
    for seed in range(5):
        train, test = stratified_split(tiny, 0.9, seed)
        assert set(train.user_id) == {1, 2, 3}
        assert train.groupby("user_id").size().to_dict() == {1: 1, 2: 1, 3: 1}


def test_temporal_split_refuses_what_it_cannot_do(ratings):
    with pytest.raises(ValueError, match="1 rating\\(s\\) have no timestamp"):
        temporal_split(ratings.assign(timestamp=ratings.timestamp.astype(float).where(ratings.index != 3)))
    with pytest.raises(ValueError, match="same timestamp"):
        temporal_split(ratings.assign(timestamp=7))
    two_times = ratings.assign(timestamp=np.where(np.arange(len(ratings)) % 2 == 0, 100, 200))
    with pytest.raises(ValueError, match="test_frac=0.2 was asked, but 50%"):
        temporal_split(two_times, 0.2)
    train, test = temporal_split(two_times, 0.5)  # what it can do, it does
    assert (test.timestamp == 200).all() and (train.timestamp == 100).all()
