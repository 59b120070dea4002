"""recsys_helpers.metrics: hand-computed tiny cases, scikit-learn where the definitions coincide, bad input."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, ndcg_score

from recsys_helpers.metrics import (RANKING_METRICS, catalogue_coverage, hit_matrix, hit_rate_at_k, mae, map_at_k,
                                    ndcg_at_k, precision_at_k, recall_at_k, rmse)

D2, D3, D4 = 1 / math.log2(3), 1 / math.log2(4), 1 / math.log2(5)  # discounts of ranks 2, 3, 4 (rank 1: 1)

# Two users, k = 3.
#   user A: top 3 = [1, 2, 3], relevant {2, 4, 9}: one hit, at rank 2; R = 3
#   user B: top 3 = [5, 6, 7], relevant {5}:       one hit, at rank 1; R = 1
RECOMMENDED = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
RELEVANT = [{2, 4, 9}, {5}]
HAND = {
    # A: 1/3, B: 1/3
    "precision": (1 / 3 + 1 / 3) / 2,
    # A: 1/3, B: 1/1
    "recall": (1 / 3 + 1) / 2,
    # A: DCG = 1/log2(3); ideal DCG over min(R, k) = 3 hits = 1 + 1/log2(3) + 1/log2(4); B: 1/1
    "ndcg": (D2 / (1 + D2 + D3) + 1) / 2,
    # both users have a hit
    "hit_rate": 1.0,
    # A: precision@2 = 1/2 at its one hit, divided by min(R, k) = 3; B: precision@1 = 1, divided by 1
    "map": ((1 / 2) / 3 + 1) / 2,
}


@pytest.mark.parametrize("name", list(HAND))
def test_ranking_metrics_by_hand(name):
    assert RANKING_METRICS[name](RECOMMENDED, RELEVANT, 3) == pytest.approx(HAND[name])


def test_ranking_metrics_by_hand_more_relevant_than_k():
    # one user, k = 2: top 2 = [1, 2], relevant {1, 2, 3, 4}: hits at ranks 1 and 2, R = 4
    rec, rel = [[1, 2, 7]], [{1, 2, 3, 4}]
    assert precision_at_k(rec, rel, 2) == 1.0           # 2 / 2
    assert recall_at_k(rec, rel, 2) == 0.5              # 2 / 4
    assert ndcg_at_k(rec, rel, 2) == pytest.approx(1.0)  # (1 + 1/log2(3)) / ideal over min(4, 2) = 2 ranks: the same
    assert map_at_k(rec, rel, 2) == 1.0                 # (1/1 + 2/2) / min(4, 2)
    assert hit_rate_at_k(rec, rel, 2) == 1.0


def test_ranking_metrics_by_hand_with_a_miss():
    # user A: top 4 = [3, 1, 4, 2], relevant {4, 2}: hits at ranks 3 and 4, R = 2
    # user B: top 4 = [9, 8, 7, 6], relevant {5}:    no hit
    rec, rel = [[3, 1, 4, 2], [9, 8, 7, 6]], [{4, 2}, {5}]
    assert precision_at_k(rec, rel, 4) == pytest.approx((2 / 4 + 0) / 2)
    assert recall_at_k(rec, rel, 4) == pytest.approx((1 + 0) / 2)
    assert ndcg_at_k(rec, rel, 4) == pytest.approx(((D3 + D4) / (1 + D2) + 0) / 2)
    assert hit_rate_at_k(rec, rel, 4) == 0.5
    assert map_at_k(rec, rel, 4) == pytest.approx(((1 / 3 + 2 / 4) / 2 + 0) / 2)  # precision@3, precision@4
    assert recall_at_k(rec, rel, 2) == 0.0 and ndcg_at_k(rec, rel, 2) == 0.0  # both hits fall below rank 2


def test_users_without_relevant_items_are_skipped():
    with_empty = np.vstack([RECOMMENDED, [[1, 2, 3, 4]], [[5, 6, 7, 8]]])
    relevant = RELEVANT + [set(), []]
    for name, fn in RANKING_METRICS.items():
        assert fn(with_empty, relevant, 3) == pytest.approx(HAND[name]), name
    hits, n_rel = hit_matrix(with_empty, relevant, 3)  # one row per user as given; no relevant item, no hit
    assert hits.tolist() == [[False, True, False], [True, False, False], [False] * 3, [False] * 3]
    assert n_rel.tolist() == [3, 1, 0, 0]
    for name, fn in RANKING_METRICS.items():  # per user: NaN for the users with nothing relevant
        values = fn(with_empty, relevant, 3, per_user=True)
        assert np.isnan(values[2:]).all() and np.nanmean(values) == pytest.approx(HAND[name]), name


@pytest.mark.parametrize("fn", list(RANKING_METRICS.values()))
def test_no_user_with_relevant_items_is_an_error(fn):
    with pytest.raises(ValueError, match="no user has a relevant item"):
        fn(RECOMMENDED, [set(), set()], 3)


def test_relevant_as_lists_arrays_or_with_duplicates():
    for relevant in ([[2, 4, 9], [5]], [np.array([9, 4, 2]), np.array([5])], [[2, 2, 4, 9, 4], (5, 5)]):
        for name, fn in RANKING_METRICS.items():
            assert fn(RECOMMENDED, relevant, 3) == pytest.approx(HAND[name]), (name, relevant)


def test_an_item_recommended_twice_is_one_hit():
    # top 3 = [1, 1, 2], relevant {1}: item 1 is one hit (rank 1); listing it again gains nothing
    rec, rel = [[1, 1, 2]], [{1}]
    assert precision_at_k(rec, rel, 3) == pytest.approx(1 / 3)
    assert recall_at_k(rec, rel, 3) == 1.0
    assert ndcg_at_k(rec, rel, 3) == pytest.approx(1.0)
    assert map_at_k(rec, rel, 3) == pytest.approx(1.0)


@pytest.mark.parametrize("fn", list(RANKING_METRICS.values()))
@pytest.mark.parametrize("k", [0, -1, 2.5])
def test_k_must_be_a_positive_integer(fn, k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        fn(RECOMMENDED, RELEVANT, k)


@pytest.mark.parametrize("fn", list(RANKING_METRICS.values()))
def test_fewer_columns_than_k(fn):
    with pytest.raises(ValueError, match="need at least k=5"):
        fn(RECOMMENDED, RELEVANT, 5)


@pytest.mark.parametrize("fn", list(RANKING_METRICS.values()))
def test_shape_errors(fn):
    with pytest.raises(ValueError, match="2-D"):
        fn(np.array([1, 2, 3]), [{1}], 1)
    with pytest.raises(ValueError, match="one set of relevant items per user"):
        fn(RECOMMENDED, RELEVANT[:1], 3)


@pytest.mark.parametrize("k", [1, 3, 5, 10, 25])
def test_ndcg_matches_sklearn(k):
    """Binary relevance, every relevant item among the scored (catalogue) items: sklearn's ideal DCG is ours."""
    rng = np.random.default_rng(k)
    n_users, n_items = 40, 25
    recommended = np.array([rng.permutation(n_items) for _ in range(n_users)])  # item ids = column indices
    relevant = [set(rng.choice(n_items, size=rng.integers(1, 9), replace=False).tolist()) for _ in range(n_users)]
    y_true = np.zeros((n_users, n_items))
    y_score = np.zeros((n_users, n_items))
    for u in range(n_users):
        y_true[u, list(relevant[u])] = 1
        y_score[u, recommended[u]] = np.arange(n_items, 0, -1)  # distinct scores: no ties, same ranking
    assert ndcg_at_k(recommended, relevant, k) == pytest.approx(ndcg_score(y_true, y_score, k=k), abs=1e-12)


def test_rating_metrics_by_hand():
    # errors 0, 0, -2: squared 0, 0, 4 -> RMSE = sqrt(4/3); absolute 0, 0, 2 -> MAE = 2/3
    assert rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert mae([1, 2, 3], [1, 2, 5]) == pytest.approx(2 / 3)
    assert rmse([4.0], [4.0]) == 0.0 and mae(np.array([[1.0, 2.0]]), [2.0, 2.0]) == 0.5  # 2-D is flattened


def test_rating_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(1, 11, 500) / 2
    p = rng.normal(3.5, 1.0, 500)
    assert rmse(y, p) == pytest.approx(math.sqrt(mean_squared_error(y, p)))
    assert mae(y, p) == pytest.approx(mean_absolute_error(y, p))


@pytest.mark.parametrize("fn", [rmse, mae])
def test_rating_metrics_bad_input(fn):
    with pytest.raises(ValueError, match="must align"):
        fn([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="empty"):
        fn([], [])
    with pytest.raises(ValueError, match="NaN"):
        fn([1, 2, 3], [1, np.nan, 3])


def test_catalogue_coverage():
    rec = [[1, 2, 3], [1, 4, 5]]
    assert catalogue_coverage(rec, 10, k=2) == pytest.approx(3 / 10)  # {1, 2, 4}
    assert catalogue_coverage(rec, 10, k=3) == pytest.approx(5 / 10)  # {1, 2, 3, 4, 5}
    assert catalogue_coverage([[7, 7], [7, 7]], 4, k=2) == pytest.approx(1 / 4)
    for k in (0, -2, 1.5):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            catalogue_coverage(rec, 10, k=k)
    with pytest.raises(ValueError, match="n_items"):
        catalogue_coverage(rec, 0, k=2)
    with pytest.raises(ValueError, match="2-D"):
        catalogue_coverage([1, 2, 3], 10, k=2)
    with pytest.raises(ValueError, match="need at least k=4"):
        catalogue_coverage(rec, 10, k=4)


@pytest.mark.parametrize("fn", list(RANKING_METRICS.values()))
def test_k_must_be_a_whole_number_not_a_bool(fn):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        fn(RECOMMENDED, RELEVANT, True)  # True == 1 in Python: refused, not taken as k=1
    assert fn(RECOMMENDED, RELEVANT, 3.0) == pytest.approx(fn(RECOMMENDED, RELEVANT, 3))  # 3.0 is the number 3


def test_relevant_ids_of_another_kind_are_an_error_not_zeros():
    with pytest.raises(TypeError, match="not of the same kind"):
        ndcg_at_k(RECOMMENDED, [{str(i) for i in rel} for rel in RELEVANT], 3)  # '3' would never match 3


def test_coverage_above_one_is_an_error():
    with pytest.raises(ValueError, match="n_items must be the size of the whole catalogue"):
        catalogue_coverage([[1, 2], [3, 4]], 2, k=2)  # 4 distinct items listed from a "catalogue" of 2


# --------------------------------------------------------------------------------------------- issue 25 probes

@pytest.mark.parametrize("fn", list(RANKING_METRICS.values()))
def test_relevant_keyed_by_user_is_aligned_on_the_users_or_refused(fn):
    # rows: users 10 and 20 (RECOMMENDED); the Series lists user 20 first, so zipping it by position would pair
    # user 10's list with user 20's items
    keyed = pd.Series([RELEVANT[1], RELEVANT[0]], index=[20, 10])
    with pytest.raises(TypeError, match="relevant is a pandas Series keyed by user.*pass users="):
        fn(RECOMMENDED, keyed, 3)
    with pytest.raises(TypeError, match="relevant is a dict keyed by user.*pass users="):
        fn(RECOMMENDED, {20: RELEVANT[1], 10: RELEVANT[0]}, 3)
    name = next(n for n, f in RANKING_METRICS.items() if f is fn)
    assert fn(RECOMMENDED, keyed, 3, users=[10, 20]) == pytest.approx(HAND[name])
    assert fn(RECOMMENDED, {20: RELEVANT[1], 10: RELEVANT[0], 30: {1}}, 3, users=np.array([10, 20])) == \
        pytest.approx(HAND[name])  # extra users in the dict are ignored
    per_user = fn(RECOMMENDED[::-1], keyed, 3, per_user=True, users=[20, 10])
    assert per_user == pytest.approx(fn(RECOMMENDED, RELEVANT, 3, per_user=True)[::-1])
    with pytest.raises(KeyError, match=r"1 of the users have no entry in relevant, e.g. \[30\]"):
        fn(RECOMMENDED, keyed, 3, users=[10, 30])
    with pytest.raises(KeyError, match=r"2 of the users have no entry in relevant, e.g. \['10', '20'\]"):
        fn(RECOMMENDED, keyed, 3, users=["10", "20"])  # '10' (text) is not the user 10
    with pytest.raises(ValueError, match=r"users must hold one user id per row of recommended \(2\)"):
        fn(RECOMMENDED, keyed, 3, users=[10])


@pytest.mark.parametrize("fn", list(RANKING_METRICS.values()))
def test_relevant_entries_must_be_collections_of_items(fn):
    with pytest.raises(TypeError, match=r"relevant entry 0 is 2 \(int\), not a collection of item ids"):
        fn(RECOMMENDED, [2, 5], 3)  # a flat list of test items, one per user
    with pytest.raises(TypeError, match=r"relevant entry 1 is '5' \(str\)"):
        fn(RECOMMENDED, [{2}, "5"], 3)  # a string would be read letter by letter
    with pytest.raises(TypeError, match=r"relevant entry 1 is nan"):
        fn(RECOMMENDED, [{2}, np.nan], 3)  # what reindex leaves for a user it does not know
    with pytest.raises(TypeError, match="relevant must be a list with one collection of item ids per row"):
        fn(RECOMMENDED, {2, 5}, 3)


def test_rank_metrics_by_hand_and_whole_ranks_only():
    from recsys_helpers.metrics import rank_metrics

    m = rank_metrics([1, 3.0, np.inf, 11], k=10)  # inside, inside, never ranked, outside
    assert m["hit_rate@10"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert m["ndcg@10"] == pytest.approx([1.0, 1 / math.log2(4), 0.0, 0.0])
    assert m["mrr@10"] == pytest.approx([1.0, 1 / 3, 0.0, 0.0])
    assert rank_metrics([10, 11], k=10)["hit_rate@10"].tolist() == [1.0, 0.0]  # rank k is inside, k + 1 is not
    for ranks in ([1.5], [2, 3.25, np.inf]):
        with pytest.raises(ValueError, match="ranks must be whole numbers"):
            rank_metrics(ranks, k=10)
    for ranks in ([0, 2], [np.nan], []):
        with pytest.raises(ValueError, match="ranks must"):
            rank_metrics(ranks, k=10)


def test_catalogue_size_must_be_a_whole_number():
    rec = [[1, 2, 3], [1, 4, 5]]
    for n_items in (4.5, 9724 / 7, np.nan, np.inf, True, "10", None, -3):
        with pytest.raises(ValueError, match=r"n_items \(the size of the catalogue\) must be a positive integer"):
            catalogue_coverage(rec, n_items, k=2)
    assert catalogue_coverage(rec, 10.0, k=2) == pytest.approx(3 / 10)  # 10.0 is the number 10
    assert catalogue_coverage(rec, np.int64(3), k=2) == 1.0  # {1, 2, 4}: the whole catalogue of 3


@pytest.mark.parametrize("fn", [rmse, mae])
def test_rating_metrics_refuse_missing_ratings_inf_and_text(fn):
    with pytest.raises(ValueError, match=r"y_true has 1 NaN rating\(s\)"):
        fn([1, np.nan, 3], [1, 2, 3])
    with pytest.raises(ValueError, match=r"y_true has 1 infinite value"):
        fn([1, np.inf, 3], [1, 2, 3])
    with pytest.raises(ValueError, match=r"y_pred has 2 infinite value"):
        fn([1, 2, 3], [1, np.inf, -np.inf])
    with pytest.raises(TypeError, match="y_pred must hold numbers"):
        fn([1, 2, 3], [1, "two", 3])


def test_float_item_ids_match_integer_relevant_ids():
    # ids read from a CSV with a NaN somewhere become floats: 3.0 is still item 3
    assert ndcg_at_k(RECOMMENDED.astype(float), RELEVANT, 3) == pytest.approx(HAND["ndcg"])
    assert recall_at_k(RECOMMENDED, [{2.0, 4.0, 9.0}, {5.0}], 3) == pytest.approx(HAND["recall"])
