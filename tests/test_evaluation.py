"""recsys_helpers.evaluation: IdMap conventions, top_k, evaluate_ranking, evaluate_ratings, Timer."""
from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_helpers.baselines import BiasBaseline
from recsys_helpers.evaluation import IdMap, Timer, evaluate_lists, evaluate_ranking, evaluate_ratings, top_k
from recsys_helpers.split import stratified_split

D2 = 1 / math.log2(3)


@pytest.fixture(scope="module")
def split(synthetic):
    return stratified_split(synthetic.ratings, 0.2, 42)


# --------------------------------------------------------------------------------------------- IdMap

def test_idmap_numbers_sorted_training_ids():
    train = pd.DataFrame({"user_id": [30, 10, 20, 10], "item_id": [7, 5, 7, 9], "rating": [1.0, 2.0, 3.0, 4.0]})
    ids = IdMap.from_train(train)
    assert ids.user_ids.tolist() == [10, 20, 30] and ids.item_ids.tolist() == [5, 7, 9]
    assert ids.n_users == 3 and ids.n_items == 3
    assert ids.users([20, 10, 30]).tolist() == [1, 0, 2]
    assert ids.items(np.array([9, 5])).tolist() == [2, 0]
    m = ids.interactions(train)
    assert m.shape == (3, 3) and m.toarray().tolist() == [[1, 0, 1], [0, 1, 0], [0, 1, 0]]
    assert ids.interactions(train, "rating").toarray().tolist() == [[2, 0, 4], [0, 3, 0], [0, 1, 0]]


def test_idmap_unknown_ids():
    ids = IdMap.from_train(pd.DataFrame({"user_id": [1, 3], "item_id": [10, 30]}))
    with pytest.raises(KeyError, match=r"2 user id\(s\) are not in the training data, e.g. \[2, 99\]"):
        ids.users([1, 2, 99])
    with pytest.raises(KeyError, match=r"2 item id\(s\) are not in the training data, e.g. \[0, 31\]"):
        ids.items([0, 10, 31])
    assert ids.users([1, 2, 99], strict=False).tolist() == [0, -1, -1]
    assert ids.items([0, 10, 31], strict=False).tolist() == [-1, 0, -1]
    # rows of unknown users or items are dropped from the interaction matrix
    other = pd.DataFrame({"user_id": [1, 2, 3], "item_id": [30, 10, 99]})
    assert ids.interactions(other).toarray().tolist() == [[0, 1], [0, 0]]


def test_idmap_bad_train():
    with pytest.raises(ValueError, match="train is missing column"):
        IdMap.from_train(pd.DataFrame({"user_id": [1]}))
    with pytest.raises(ValueError, match="empty"):
        IdMap.from_train(pd.DataFrame({"user_id": [], "item_id": []}))
    with pytest.raises(ValueError, match="missing user_id"):
        IdMap.from_train(pd.DataFrame({"user_id": [1, np.nan], "item_id": [1, 2]}))


# --------------------------------------------------------------------------------------------- a case by hand

# users 1, 2, 3 and items 10, 20, 30, 40, 50 (user 3 rated everything, so every item is in train)
HAND_TRAIN = pd.DataFrame({"user_id": [1, 2, 3, 3, 3, 3, 3], "item_id": [10, 20, 10, 20, 30, 40, 50],
                           "rating": [4.0, 3.0, 5.0, 4.0, 3.0, 2.0, 1.0]})
HAND_TEST = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [20, 40, 50], "rating": [2.0, 4.0, 5.0]})
HAND_SCORES = np.array([
    # items 10  20  30  40  50
    [9.0, 1.0, 5.0, 4.0, 0.0],  # user 1: 10 is seen -> ranking 30, 40, 20, 50: top 2 = [30, 40], hit at rank 2
    [1.0, 9.0, 0.0, 0.5, 2.0],  # user 2: 20 is seen -> ranking 50, 10, 40, 30: top 2 = [50, 10], hit at rank 1
    [0.0, 0.0, 0.0, 0.0, 0.0],  # user 3: not in test
])


def test_top_k_by_hand():
    users, recs = top_k(HAND_SCORES, HAND_TRAIN, k=2, user_ids=[2, 1])
    assert users.tolist() == [2, 1] and recs.tolist() == [[50, 10], [30, 40]]
    users, recs = top_k(HAND_SCORES, HAND_TRAIN, k=4)
    assert users.tolist() == [1, 2, 3] and recs[:2].tolist() == [[30, 40, 20, 50], [50, 10, 40, 30]]
    # k = the whole catalogue: every item in score order, the seen one (scored -inf) last
    _, recs = top_k(HAND_SCORES, HAND_TRAIN, k=5, user_ids=[1, 2])
    assert recs.tolist() == [[30, 40, 20, 50, 10], [50, 10, 40, 30, 20]]
    tied = np.array([[0.0, 3.0, 2.0, 1.0, 1.0],   # user 1 (10 seen): 20, 30, then 40 and 50 tied, 10 last
                     [1.0, 0.0, 4.0, 4.0, 2.0],   # user 2 (20 seen): 30 and 40 tied, 50, 10, 20 last
                     [0.0] * 5])
    _, recs = top_k(tied, HAND_TRAIN, k=5, user_ids=[1, 2])
    assert recs[0, :2].tolist() == [20, 30] and set(recs[0, 2:4]) == {40, 50} and recs[0, 4] == 10
    assert set(recs[1, :2]) == {30, 40} and recs[1, 2:].tolist() == [50, 10, 20]


def test_evaluate_ranking_by_hand():
    result = evaluate_ranking(HAND_SCORES, HAND_TRAIN, HAND_TEST, k=2)
    assert set(result) == {"precision@2", "recall@2", "ndcg@2", "hit_rate@2", "map@2", "coverage@2"}
    assert result["precision@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert result["recall@2"] == pytest.approx((1 / 2 + 1 / 1) / 2)  # user 1 has 2 test items, user 2 one
    assert result["ndcg@2"] == pytest.approx((D2 / (1 + D2) + 1) / 2)
    assert result["hit_rate@2"] == 1.0
    assert result["map@2"] == pytest.approx(((1 / 2) / 2 + 1) / 2)
    assert result["coverage@2"] == pytest.approx(4 / 5)  # {30, 40, 50, 10} of 5 training items


def test_evaluate_ratings_by_hand():
    # predictions 3, 4, 4 for ratings 2, 4, 5: errors 1, 0, -1 -> RMSE sqrt(2/3), MAE 2/3
    result = evaluate_ratings(np.array([3.0, 4.0, 4.0]), HAND_TEST)
    assert result == pytest.approx({"rmse": math.sqrt(2 / 3), "mae": 2 / 3})


# --------------------------------------------------------------------------------------------- top_k

def test_top_k_never_recommends_training_items(split):
    train, _ = split
    ids = IdMap.from_train(train)
    scores = np.random.default_rng(0).random((ids.n_users, ids.n_items))
    seen_boost = scores + 10 * ids.interactions(train).toarray()  # seen items score highest: still never shown
    users, recs = top_k(seen_boost, train, k=10)
    assert users.tolist() == ids.user_ids.tolist() and recs.shape == (ids.n_users, 10)
    seen = set(zip(train.user_id, train.item_id))
    assert not any((u, i) in seen for u, row in zip(users, recs) for i in row)
    assert all(len(set(row)) == 10 for row in recs)
    # best first: each row is in decreasing score order
    u_idx, i_idx = ids.users(users), ids.items(recs.ravel()).reshape(recs.shape)
    row_scores = scores[u_idx[:, None], i_idx]
    assert (np.diff(row_scores, axis=1) <= 0).all()


def test_nan_scores_are_an_error_and_minus_inf_means_never():
    scores = HAND_SCORES.copy()
    scores[0, 2] = np.nan  # user 1, item 30 (its best unseen item) has no score
    with pytest.raises(ValueError, match="1 NaN value.*use -inf"):
        top_k(scores, HAND_TRAIN, k=2, user_ids=[1])
    scores[0, 2] = -np.inf  # the way to say "never recommend it"
    _, recs = top_k(scores, HAND_TRAIN, k=2, user_ids=[1])
    assert recs.tolist() == [[40, 20]]


def test_top_k_bad_input():
    with pytest.raises(ValueError, match="k must be a positive integer"):
        top_k(HAND_SCORES, HAND_TRAIN, k=0)
    with pytest.raises(ValueError, match="larger than the 5 items"):
        top_k(HAND_SCORES, HAND_TRAIN, k=6)
    with pytest.raises(ValueError, match=r"scores has shape \(3, 4\)"):
        top_k(HAND_SCORES[:, :4], HAND_TRAIN, k=2)
    with pytest.raises(ValueError, match=r"came back with shape \(3, 4\), expected \(3, 5\)"):
        top_k(lambda idx: HAND_SCORES[idx, :4], HAND_TRAIN, k=2)
    with pytest.raises(ValueError, match=r"came back with shape \(1, 5\), expected \(3, 5\)"):
        top_k(lambda idx: HAND_SCORES[:1], HAND_TRAIN, k=2)
    with pytest.raises(KeyError):
        top_k(HAND_SCORES, HAND_TRAIN, k=2, user_ids=[4])


# --------------------------------------------------------------------------------------------- evaluate_ranking

def test_oracle_scores_give_perfect_recall(split):
    """An oracle that scores each user's test items highest: with at most k test items, all of them are found."""
    train, test = split
    k = 10
    ids = IdMap.from_train(train)
    test = test[test.item_id.isin(ids.item_ids)]  # items unseen in training cannot be recommended by anyone
    small = test.groupby("user_id").item_id.transform("size") <= k
    test = test[small]
    assert test.user_id.nunique() > 50
    oracle = ids.interactions(test).toarray()
    result = evaluate_ranking(oracle, train, test, k)
    assert result[f"recall@{k}"] == 1.0
    assert result[f"ndcg@{k}"] == pytest.approx(1.0)
    assert result[f"hit_rate@{k}"] == 1.0 and result[f"map@{k}"] == pytest.approx(1.0)
    expected_precision = (test.groupby("user_id").size() / k).mean()
    assert result[f"precision@{k}"] == pytest.approx(expected_precision)


def test_callable_sparse_and_matrix_scores_agree(split):
    train, test = split
    model = BiasBaseline().fit(train)
    matrix = model.scores(np.arange(model.ids.n_users))
    by_function = evaluate_ranking(model.scores, train, test, 10)
    by_matrix = evaluate_ranking(matrix, train, test, 10)
    assert by_function == by_matrix
    random_scores = np.random.default_rng(1).random(matrix.shape)
    sparse = sp.csr_matrix(np.where(random_scores > 0.5, random_scores, 0.0))
    assert evaluate_ranking(sparse, train, test, 5) == evaluate_ranking(sparse.toarray(), train, test, 5)


def test_test_users_absent_from_train_are_skipped(split):
    train, test = split
    scores = BiasBaseline().fit(train).scores
    newcomer = pd.DataFrame({"user_id": [10_000, 10_000], "item_id": test.item_id.iloc[:2].to_numpy(),
                             "rating": [4.0, 5.0], "timestamp": [0, 1]})
    with_newcomer = pd.concat([test, newcomer], ignore_index=True)
    assert evaluate_ranking(scores, train, with_newcomer, 10) == evaluate_ranking(scores, train, test, 10)
    with pytest.raises(ValueError, match="no test user appears in train"):
        evaluate_ranking(scores, train, newcomer, 10)


def test_duplicate_test_rows_do_not_change_the_ranking_metrics(split):
    train, test = split
    scores = BiasBaseline().fit(train).scores
    doubled = pd.concat([test, test.head(100)], ignore_index=True)
    assert evaluate_ranking(scores, train, doubled, 10) == evaluate_ranking(scores, train, test, 10)


def test_evaluate_ranking_bad_input(split):
    train, test = split
    ids = IdMap.from_train(train)
    with pytest.raises(ValueError, match="scores has shape"):
        evaluate_ranking(np.zeros((ids.n_users, ids.n_items - 1)), train, test)
    with pytest.raises(ValueError, match="scores has shape"):
        evaluate_ranking(np.zeros((ids.n_users + 1, ids.n_items)), train, test)
    for k in (0, -3):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            evaluate_ranking(np.zeros((ids.n_users, ids.n_items)), train, test, k)
    with pytest.raises(ValueError, match="test is missing column"):
        evaluate_ranking(np.zeros((ids.n_users, ids.n_items)), train, test.drop(columns="item_id"))
    with pytest.raises(ValueError, match="test is empty"):
        evaluate_ranking(np.zeros((ids.n_users, ids.n_items)), train, test.iloc[:0])


# --------------------------------------------------------------------------------------------- evaluate_ratings

def test_evaluate_ratings_array_and_callable_agree(split):
    train, test = split
    model = BiasBaseline().fit(train)
    predictions = model.predict(test.user_id, test.item_id)
    by_array = evaluate_ratings(predictions, test)
    assert evaluate_ratings(model.predict, test) == by_array
    assert by_array["rmse"] == pytest.approx(np.sqrt(np.mean((test.rating - predictions) ** 2)))
    assert by_array["mae"] == pytest.approx(np.mean(np.abs(test.rating - predictions)))


def test_evaluate_ratings_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        evaluate_ratings(np.array([3.0, np.nan, 4.0]), HAND_TEST)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_ratings(lambda u, i: np.full(len(u), np.nan), HAND_TEST)
    with pytest.raises(ValueError, match="must align"):
        evaluate_ratings(np.array([3.0, 4.0]), HAND_TEST)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['rating'\]"):
        evaluate_ratings(np.array([3.0, 4.0, 4.0]), HAND_TEST.drop(columns="rating"))


def test_timer():
    with Timer() as t:
        time.sleep(0.02)
    assert 0.02 <= t.seconds < 5


def test_evaluate_lists_matches_evaluate_ranking_and_refuses_users_without_test_items():
    from recsys_helpers.evaluation import evaluate_lists
    users, recs = top_k(HAND_SCORES, HAND_TRAIN, k=2, user_ids=[1, 2])
    assert evaluate_lists(users, recs, HAND_TEST, k=2, n_items=5) == evaluate_ranking(HAND_SCORES, HAND_TRAIN,
                                                                                      HAND_TEST, k=2)
    per_user = evaluate_lists(users[::-1], recs[::-1], HAND_TEST, k=2, per_user=True)
    assert per_user.index.tolist() == [2, 1] and per_user.loc[2, "ndcg@2"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no test interaction"):
        evaluate_lists([1, 3], recs, HAND_TEST, k=2, n_items=5)  # user 3 has no test item
    with pytest.raises(ValueError, match="one row per user"):
        evaluate_lists([1], recs, HAND_TEST, k=2, n_items=5)
    with pytest.raises(ValueError, match="n_items"):
        evaluate_lists(users, recs, HAND_TEST, k=2)


# --------------------------------------------------------------------------------------------- issue 25 probes

def test_top_k_batch_size_must_be_a_positive_integer_and_does_not_change_the_lists(split):
    for batch_size in (-1, 0, 2.5, True, None):
        with pytest.raises(ValueError, match=r"batch_size \(.*\) must be a positive integer"):
            top_k(HAND_SCORES, HAND_TRAIN, k=2, batch_size=batch_size)
    train, _ = split
    scores = np.round(np.random.default_rng(4).random((train.user_id.nunique(), train.item_id.nunique())), 1)  # ties
    users, recs = top_k(scores, train, k=5)
    for batch_size in (1, 7, 2.0):
        assert (top_k(scores, train, k=5, batch_size=batch_size)[1] == recs).all()
    # with many ties, still no training item and still best first
    seen = set(zip(train.user_id, train.item_id))
    assert not any((u, i) in seen for u, row in zip(users, recs) for i in row)
    ids = IdMap.from_train(train)
    row_scores = scores[ids.users(users)[:, None], ids.items(recs.ravel()).reshape(recs.shape)]
    assert (np.diff(row_scores, axis=1) <= 0).all()


def test_a_missing_test_rating_is_blamed_on_the_test_set_not_the_model():
    test = HAND_TEST.assign(rating=[2.0, np.nan, 5.0])
    with pytest.raises(ValueError, match=r"test has 1 rating\(s\) that are NaN or infinite.*dropna"):
        evaluate_ratings(np.array([3.0, 4.0, 4.0]), test)
    with pytest.raises(ValueError, match=r"test has 1 rating\(s\) that are NaN or infinite"):
        evaluate_ratings(np.array([3.0, 4.0, 4.0]), HAND_TEST.assign(rating=[2.0, np.inf, 5.0]))
    with pytest.raises(TypeError, match="test's rating column must hold numbers"):
        evaluate_ratings(np.array([3.0, 4.0, 4.0]), HAND_TEST.assign(rating=["2", "four", "5"]))
    with pytest.raises(ValueError, match=r"y_pred has 1 infinite value"):
        evaluate_ratings(np.array([3.0, np.inf, 4.0]), HAND_TEST)


def test_evaluate_lists_checks_the_catalogue_size():
    users, recs = top_k(HAND_SCORES, HAND_TRAIN, k=2, user_ids=[1, 2])
    for n_items in (4.5, np.nan, True):
        with pytest.raises(ValueError, match="n_items .*must be a positive integer"):
            evaluate_lists(users, recs, HAND_TEST, k=2, n_items=n_items)
    assert evaluate_lists(users, recs, HAND_TEST, k=2, n_items=5.0)["coverage@2"] == pytest.approx(4 / 5)


def test_evaluate_lists_says_when_user_ids_are_of_another_type():
    users, recs = top_k(HAND_SCORES, HAND_TRAIN, k=2, user_ids=[1, 2])
    with pytest.raises(ValueError, match=r"have no test interaction \(user_ids are of type <U1 but test's user ids of "
                                         r"type int64: convert one of them\)"):
        evaluate_lists(["1", "2"], recs, HAND_TEST, k=2, n_items=5)
    with pytest.raises(ValueError, match=r"user\(s\) \[3\] have no test interaction; evaluate only"):
        evaluate_lists([1, 3], recs, HAND_TEST, k=2, n_items=5)  # same type: no hint
