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


# --------------------------------------------------------------------------------------------- probes (issue 25)

@pytest.mark.parametrize("split", [leave_last_out, sequential_split])
def test_text_timestamps_are_refused_not_ordered_as_text(split):
    # as text '9' > '10' > '100': user 1's last interaction would be item 10 (time '9') instead of item 12 (time '100')
    r = pd.DataFrame({"user_id": [1] * 12, "item_id": range(10, 22),
                      "timestamp": [str(t) for t in [9, 10, 100] + list(range(200, 209))]})
    with pytest.raises(TypeError, match="ordered as text"):
        split(r)
    numeric = r.assign(timestamp=pd.to_numeric(r.timestamp))
    assert split(numeric) is not None  # the fix the message names works


def test_leave_last_out_refuses_missing_timestamps():
    r = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3], "timestamp": [1.0, np.nan, 3.0]})
    with pytest.raises(ValueError, match="1 rating\\(s\\) have no timestamp"):
        leave_last_out(r)


def test_leave_last_out_orders_datetimes():
    r = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3],
                      "timestamp": pd.to_datetime(["2001-01-03", "2001-01-01", "2001-01-02"])})
    train, test = leave_last_out(r)
    assert test.item_id.tolist() == [1] and sorted(train.item_id) == [2, 3]


@pytest.mark.parametrize("split", [stratified_split, random_split])
@pytest.mark.parametrize("seed", [1.5, "a", True, None, -1])
def test_a_seed_that_is_not_a_whole_number_is_refused(split, seed, ratings):
    with pytest.raises(TypeError, match="seed must be a whole number"):
        split(ratings, 0.2, seed)


@pytest.mark.parametrize("seed", [1.5, "a", True])
def test_cold_start_seed_is_checked(seed, ratings):
    with pytest.raises(TypeError, match="seed must be a whole number"):
        cold_start_split(ratings, seed=seed)


def test_a_fraction_given_as_text_is_refused(ratings):
    with pytest.raises(ValueError, match="test_frac must be a finite number"):
        stratified_split(ratings, "0.2")


@pytest.mark.parametrize("bad", [True, 2.5, "5"])
def test_sequential_split_counts_are_whole_numbers(bad, ratings):
    with pytest.raises(ValueError, match="n_test must be a positive integer"):
        sequential_split(ratings, n_test=bad)


def test_cold_start_split_does_not_depend_on_the_row_order(ratings):
    a = cold_start_split(ratings, seed=3)
    b = cold_start_split(ratings.sample(frac=1.0, random_state=1).reset_index(drop=True), seed=3)
    assert np.array_equal(a.new_items, b.new_items)
    assert list(a.new_items) == sorted(a.new_items)


def test_cold_start_split_by_hand():
    # items 1-4 have 5 ratings each, item 5 has 4 (not eligible): frac 0.5 makes 2 of items 1-4 new, with every rating
    r = pd.DataFrame({"user_id": list(range(20)) + [0, 1, 2, 3], "item_id": [1, 2, 3, 4] * 5 + [5] * 4})
    split = cold_start_split(r, frac=0.5, min_ratings=5, seed=0)
    assert len(split.new_items) == 2 and set(split.new_items) <= {1, 2, 3, 4}
    assert set(split.test.item_id) == set(split.new_items) and len(split.test) == 10
    assert not set(split.train.item_id) & set(split.new_items) and 5 in set(split.train.item_id)


def test_temporal_split_never_leaves_train_empty():
    # 4% of the ratings at t=1, 16% at t=2, 80% at t=3: asking for 99% in test gives 96% (everything from t=2), since
    # a cut-off at the first time would leave nothing to train on
    r = pd.DataFrame({"user_id": range(100), "item_id": 1, "timestamp": [1] * 4 + [2] * 16 + [3] * 80})
    train, test = temporal_split(r, 0.99)
    assert len(train) == 4 and (train.timestamp == 1).all() and len(test) == 96


def test_sequential_split_by_hand():
    # user 1 has 11 interactions: 5 test, 5 validation, 1 train; user 2 has exactly 10: all in train (no history);
    # user 3 has 12 with two tied last times: ties are broken by item id (the larger id is later)
    rows = [(1, i, i) for i in range(11)] + [(2, i, i) for i in range(10)]
    rows += [(3, i, i) for i in range(10)] + [(3, 50, 99), (3, 40, 99)]
    r = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    s = sequential_split(r)
    assert s.test[s.test.user_id == 1].item_id.tolist() == [6, 7, 8, 9, 10]
    assert s.validation[s.validation.user_id == 1].item_id.tolist() == [1, 2, 3, 4, 5]
    assert s.train[s.train.user_id == 1].item_id.tolist() == [0]
    assert (s.train.user_id == 2).sum() == 10 and 2 not in set(s.test.user_id) | set(s.validation.user_id)
    assert s.test[s.test.user_id == 3].item_id.tolist() == [7, 8, 9, 40, 50]
    assert s.validation[s.validation.user_id == 3].item_id.tolist() == [2, 3, 4, 5, 6]
