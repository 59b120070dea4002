"""Beyond-accuracy metrics (recsys_helpers.beyond_accuracy) on lists small enough to work out by hand, and the
errors that keep a wrong table from producing a plausible number."""
import numpy as np
import pandas as pd
import pytest

from recsys_helpers import beyond_accuracy as ba

GENRES = pd.DataFrame({"A": [1, 0, 0], "B": [1, 1, 0], "C": [0, 0, 1]}, index=[1, 2, 3])  # 1: {A, B}, 2: {B}, 3: {C}
POPULARITY = pd.Series({1: 8, 2: 4, 3: 1, 4: 1, 5: 2})  # training users per item, of 8 users


def test_intra_list_diversity_by_jaccard_and_cosine():
    # Jaccard: (1, 2): 1 − 1/2 = 0.5; (1, 3): 1 − 0/3 = 1; (2, 3): 1 − 0/2 = 1; mean 2.5 / 3
    assert ba.intra_list_diversity([[1, 2, 3]], GENRES, k=3) == pytest.approx(2.5 / 3)
    per_user = ba.intra_list_diversity([[1, 2, 3], [2, 1, 3]], GENRES, k=2, per_user=True)
    assert per_user == pytest.approx([0.5, 0.5])  # only the first k = 2 items count
    vectors = pd.DataFrame([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], index=[1, 2, 3])
    # cosine: (1, 2): 1 − 0; (1, 3) and (2, 3): 1 − 1/√2
    assert ba.intra_list_diversity([[1, 2, 3]], vectors, k=3, distance="cosine") == pytest.approx(
        (1 + 2 * (1 - 1 / np.sqrt(2))) / 3)
    # two items without any feature are at distance 0 (nothing tells them apart)
    empty = pd.DataFrame({"A": [0, 0]}, index=[7, 8])
    assert ba.intra_list_diversity([[7, 8]], empty, k=2) == 0.0


def test_intra_list_diversity_refuses_what_it_cannot_measure():
    with pytest.raises(KeyError, match="no features.*\\[9\\]"):
        ba.intra_list_diversity([[1, 9]], GENRES, k=2)
    with pytest.raises(ValueError, match="binary"):
        ba.intra_list_diversity([[1, 2]], GENRES * 0.5, k=2)
    with pytest.raises(ValueError, match="all-zero"):
        ba.intra_list_diversity([[1, 2]], pd.DataFrame([[0.0], [1.0]], index=[1, 2]), k=2, distance="cosine")
    with pytest.raises(ValueError, match="at least 2"):
        ba.intra_list_diversity([[1, 2]], GENRES, k=1)
    with pytest.raises(ValueError, match="jaccard' or 'cosine"):
        ba.intra_list_diversity([[1, 2]], GENRES, k=2, distance="euclid")


def test_novelty_average_popularity_and_the_long_tail():
    # self-information with 8 users: item 1 (8 users) 0 bits, item 2 (4) 1 bit, item 3 (1) 3 bits
    assert ba.novelty([[1, 2], [3, 3]], POPULARITY, n_users=8, k=2, per_user=True) == pytest.approx([0.5, 3.0])
    assert ba.novelty([[1, 2], [3, 3]], POPULARITY, n_users=8, k=2) == pytest.approx(1.75)
    assert ba.novelty([[1, 2], [3, 3], [1, 1]], POPULARITY, n_users=8, k=2) == pytest.approx(3.5 / 3)  # the mean
    assert ba.average_popularity([[1, 2], [3, 5]], POPULARITY, k=2, per_user=True) == pytest.approx([6.0, 1.5])
    assert ba.long_tail(POPULARITY, head_share=0.2) == {2, 3, 4, 5}  # the head: the top 20% of 5 items = item 1
    assert ba.long_tail(POPULARITY, head_share=0.4) == {3, 4, 5}
    assert ba.long_tail(POPULARITY, head_share=0.0) == {1, 2, 3, 4, 5}
    tail = ba.long_tail(POPULARITY)
    assert ba.aplt([[1, 2], [3, 4]], tail, k=2, per_user=True) == pytest.approx([0.5, 1.0])
    assert ba.aplt([[1, 2], [3, 4]], tail, k=2) == pytest.approx(0.75)


def test_novelty_refuses_unseen_items_and_a_wrong_user_count():
    with pytest.raises(ValueError, match="infinite"):
        ba.novelty([[1, 6]], pd.Series({1: 8, 6: 0}), n_users=8, k=2)
    with pytest.raises(ValueError, match="more users"):
        ba.novelty([[1, 2]], POPULARITY, n_users=4, k=2)
    with pytest.raises(KeyError, match="no popularity"):
        ba.average_popularity([[1, 42]], POPULARITY, k=2)
    with pytest.raises(ValueError, match="head_share"):
        ba.long_tail(POPULARITY, head_share=1.0)


def test_item_popularity_counts_distinct_users():
    train = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [10, 10, 10, 11, 11]})  # user 1 twice on item 10
    assert ba.item_popularity(train).to_dict() == {10: 2, 11: 2}


def test_exposure_gini_worked_by_hand():
    catalogue = [1, 2, 3, 4]
    assert ba.exposure_gini([[1, 2], [3, 4]], catalogue, k=2) == pytest.approx(0.0)  # every item once
    # slot counts sorted [0, 0, 2, 2]: Σ (2i − n − 1) x_(i) = 1·2 + 3·2 = 8, over n Σ x = 4 · 4
    assert ba.exposure_gini([[1, 2], [1, 2]], catalogue, k=2) == pytest.approx(0.5)
    assert ba.exposure_gini([[1], [1], [1], [1]], catalogue, k=1) == pytest.approx(0.75)  # [0, 0, 0, 4]: 12 / 16
    with pytest.raises(KeyError, match="catalogue"):
        ba.exposure_gini([[1, 9]], catalogue, k=2)


def test_genre_distribution_and_calibration():
    genres = pd.Series({1: ["A"], 2: ["B"], 3: ["A", "B"], 4: []})
    assert ba.genre_distribution([1, 3], genres).to_dict() == pytest.approx({"A": 0.75, "B": 0.25})
    assert ba.genre_distribution([1, 2], genres, weights=[3, 1]).to_dict() == pytest.approx({"A": 0.75, "B": 0.25})
    # history [1, 2]: p = (A 0.5, B 0.5); list [1]: q = (A 1, B 0); q̃ = 0.99 q + 0.01 p = (0.995, 0.005)
    expected = 0.5 * np.log(0.5 / 0.995) + 0.5 * np.log(0.5 / 0.005)
    kl = ba.calibration_kl([[1], [3]], [[1, 2], [1, 2]], genres, k=1, per_user=True)
    assert kl == pytest.approx([expected, 0.0])  # list [3] has the history's mix exactly
    with pytest.raises(ValueError, match="one history per list"):
        ba.calibration_kl([[1], [3]], [[1, 2]], genres, k=1)
    with pytest.raises(ValueError, match="alpha"):
        ba.calibration_kl([[1]], [[1, 2]], genres, k=1, alpha=0.0)
    with pytest.raises(ValueError, match="no.*genre"):
        ba.genre_distribution([4], genres)


def test_activity_groups_and_accuracy_by_group():
    train = pd.DataFrame({"user_id": np.repeat([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]), "item_id": np.arange(21)})
    groups = ba.activity_groups(train)
    assert groups.to_dict() == {1: "light", 2: "light", 3: "medium", 4: "medium", 5: "heavy", 6: "heavy"}
    ndcg = pd.Series([0.1, 0.3, 0.5, 0.5, 0.9, 0.7], index=[1, 2, 3, 4, 5, 6])
    assert ba.by_group(ndcg, groups).to_dict() == pytest.approx({"light": 0.2, "medium": 0.5, "heavy": 0.8})
    with pytest.raises(KeyError, match="no group"):
        ba.by_group(pd.Series([0.5], index=[99]), groups)
    with pytest.raises(ValueError, match="labels"):
        ba.activity_groups(train, n_groups=2, labels=["a"])


def test_calibration_kl_agrees_with_genre_distribution_on_random_lists():
    rng = np.random.default_rng(3)
    names = list("ABCDE")
    genres = pd.Series({i: list(rng.choice(names, size=rng.integers(1, 4), replace=False)) for i in range(30)})
    lists = rng.integers(0, 30, (6, 5))
    histories = [rng.integers(0, 30, rng.integers(1, 12)) for _ in range(6)]
    kl = ba.calibration_kl(lists, histories, genres, k=4, alpha=0.05, per_user=True)
    for u in range(6):
        p, q = ba.genre_distribution(histories[u], genres), ba.genre_distribution(lists[u, :4], genres)
        p, q = p.reindex(names, fill_value=0.0), q.reindex(names, fill_value=0.0)
        q_tilde = 0.95 * q + 0.05 * p
        assert kl[u] == pytest.approx(float((p[p > 0] * np.log(p[p > 0] / q_tilde[p > 0])).sum()))
    with pytest.raises(ValueError, match="genre"):
        ba.calibration_kl([[4]], [[1]], pd.Series({1: ["A"], 4: []}), k=1)
    with pytest.raises(KeyError):
        ba.calibration_kl([[1]], [[99]], pd.Series({1: ["A"]}), k=1)


# --- issue 25: inputs that used to give a plausible wrong number, NaN or a deep traceback ---------------------------

def test_aplt_refuses_a_tail_it_would_misread():
    lists = [[1, 2, 3], [2, 3, 4]]
    assert ba.aplt(lists, {3, 4}, k=3, per_user=True) == pytest.approx([1 / 3, 2 / 3])
    # '3' against 3 matched nothing: 0.0
    with pytest.raises(TypeError, match="tail holds ids such as '[34]' \\(str\\).*same kind"):
        ba.aplt(lists, {"3", "4"}, k=3)
    with pytest.raises(TypeError, match="same kind"):  # a large tail made np.isin compare as text, and match
        ba.aplt(lists, {str(i) for i in range(100)}, k=3)
    with pytest.raises(TypeError, match="same kind"):
        ba.aplt([["a", "b"]], {1, 2}, k=2)
    # a Series of the tail's popularity: its values (the counts) were read as the ids
    tail_popularity = POPULARITY[POPULARITY.index.isin([3, 4])]  # counts 1, 1
    with pytest.raises(TypeError, match="tail must be a set.*got a Series.*set\\(x.index\\)"):
        ba.aplt(lists, tail_popularity, k=3)
    with pytest.raises(TypeError, match="got a dict"):
        ba.aplt(lists, {3: 1, 4: 1}, k=3)
    with pytest.raises(TypeError, match="flat collection"):
        ba.aplt(lists, 3, k=3)
    with pytest.raises(TypeError, match="such as False \\(bool\\)"):  # a mask over the catalogue is not a set of ids
        ba.aplt(lists, np.array([False, False, True, True]), k=3)
    # what the message says to pass works, and so do a list, an array, an Index and float ids
    for tail in (set(tail_popularity.index), [3, 4], np.array([3, 4]), pd.Index([3, 4]), {3.0, 4.0}):
        assert ba.aplt(lists, tail, k=3) == pytest.approx(0.5)
    assert ba.aplt(lists, set(), k=3) == 0.0  # an empty tail (head_share close to 1) is no error


def test_exposure_gini_takes_the_same_ids_as_aplt():
    with pytest.raises(TypeError, match="catalogue holds ids such as '1'"):
        ba.exposure_gini([[1, 2]], ["1", "2", "3"], k=2)
    with pytest.raises(TypeError, match="catalogue must be a set.*Series"):
        ba.exposure_gini([[1, 2]], pd.Series([1, 2, 3]), k=2)
    assert ba.exposure_gini([[1, 2]], pd.Index([1, 2, 3]), k=2) == pytest.approx(1 / 3)  # [0, 1, 1]: 2 / 6
    assert ba.exposure_gini([[1, 2]], {1, 2, 3}, k=2) == pytest.approx(1 / 3)
    assert ba.exposure_gini([[1, 2], [1, 2]], [4, 3, 2, 1, 1], k=2) == pytest.approx(0.5)  # unsorted, repeated ids


def test_no_lists_and_nan_ids_are_refused_rather_than_averaged_to_nan():
    empty = np.empty((0, 3), dtype=np.int64)
    for call in (lambda: ba.aplt(empty, {1}, k=2), lambda: ba.exposure_gini(empty, [1, 2], k=2),
                 lambda: ba.average_popularity(empty, POPULARITY, k=2),
                 lambda: ba.intra_list_diversity(empty, GENRES, k=2)):
        with pytest.raises(ValueError, match="no lists"):
            call()
    with pytest.raises(ValueError, match="NaN item ids"):
        ba.aplt([[1.0, np.nan]], {1}, k=2)


def test_genre_distribution_refuses_weights_and_genres_it_would_misread():
    genres = pd.Series({1: ["x"], 2: ["y"], 3: ["x", "y"]})
    with pytest.raises(ValueError, match="one weight per item"):  # zip dropped items 2 and 3: {'x': 1.0}
        ba.genre_distribution([1, 2, 3], genres, weights=[1.0])
    with pytest.raises(ValueError, match="one weight per item"):
        ba.genre_distribution([1], genres, weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="at least 0"):  # shares {'x': 2.0, 'y': -1.0}
        ba.genre_distribution([1, 2], genres, weights=[2.0, -1.0])
    with pytest.raises(ValueError, match="weights holds 1 NaN"):
        ba.genre_distribution([1, 2], genres, weights=[1.0, np.nan])
    with pytest.raises(ValueError, match="every weight is 0"):
        ba.genre_distribution([1, 2], genres, weights=[0.0, 0.0])
    assert ba.genre_distribution([1, 3], genres, weights=[0.0, 2.0]).to_dict() == pytest.approx({"x": 0.5, "y": 0.5})
    raw = pd.Series({1: "Comedy|Drama", 2: "Drama"})  # the letters became genres
    with pytest.raises(TypeError, match="list of genre names.*'Comedy\\|Drama' for item 1.*str.split"):
        ba.genre_distribution([1], raw)
    with pytest.raises(TypeError, match="list of genre names"):
        ba.calibration_kl([[2]], [[1]], raw, k=1)
    with pytest.raises(TypeError, match="genres must be a pandas Series"):
        ba.genre_distribution([1], GENRES)  # the binary matrix is features, not genres
    with pytest.raises(TypeError, match="items must be a set.*Series.*to_numpy"):
        ba.genre_distribution(pd.Series([1, 3]), genres)
    # tuples, sets and arrays of names are lists of genres too
    other = pd.Series({1: ("x",), 2: {"y"}, 3: np.array(["x", "y"])})
    assert ba.genre_distribution([1, 2, 3], other).to_dict() == pytest.approx({"x": 0.5, "y": 0.5})


def test_attribute_tables_are_refused_where_they_would_give_nan_or_a_deep_traceback():
    vectors = pd.DataFrame([[1.0, 0.0], [np.nan, 1.0], [1.0, 1.0]], index=[1, 2, 3])
    with pytest.raises(ValueError, match="features holds 1 NaN"):  # was nan
        ba.intra_list_diversity([[1, 2, 3]], vectors, k=3, distance="cosine")
    with pytest.raises(ValueError, match="features holds 1 NaN"):
        ba.intra_list_diversity([[1, 2, 3]], vectors, k=3)
    assert ba.intra_list_diversity([[1, 3]], vectors, k=2, distance="cosine") == pytest.approx(1 - 1 / np.sqrt(2))
    with pytest.raises(ValueError, match="features has repeated item ids.*\\[2\\]"):  # was a reshape error
        ba.intra_list_diversity([[1, 2, 3]], pd.concat([GENRES, GENRES.loc[[2]]]), k=3)
    with pytest.raises(TypeError, match="features must be a pandas DataFrame indexed by item id"):
        ba.intra_list_diversity([[0, 1]], GENRES.to_numpy(), k=2)  # was AttributeError: no attribute 'index'
    with pytest.raises(TypeError, match="popularity must be a pandas Series.*pd.Series\\(d\\)"):
        ba.average_popularity([[1, 2]], POPULARITY.to_dict(), k=2)
    with pytest.raises(TypeError, match="popularity must be a pandas Series"):
        ba.novelty([[1, 2]], POPULARITY.to_dict(), n_users=8, k=2)
    with pytest.raises(TypeError, match="popularity must be a pandas Series"):
        ba.long_tail(POPULARITY.to_dict())
    with_nan = POPULARITY.astype(float).copy()
    with_nan[2] = np.nan
    with pytest.raises(ValueError, match="popularity holds 1 NaN"):  # was nan
        ba.novelty([[1, 2]], with_nan, n_users=8, k=2)
    with pytest.raises(ValueError, match="popularity holds 1 NaN"):
        ba.average_popularity([[1, 2]], with_nan, k=2)
    with pytest.raises(ValueError, match="popularity holds 1 NaN"):  # NaN sorted last: it joined the tail
        ba.long_tail(with_nan)
    with pytest.raises(ValueError, match="negative"):
        ba.average_popularity([[1, 2]], POPULARITY - 5, k=2)
    assert ba.average_popularity([[1, 6]], pd.Series({1: 8, 6: 0}), k=2) == 4.0  # no user is a count, not an error
    with pytest.raises(ValueError, match="popularity has repeated item ids"):
        ba.long_tail(pd.concat([POPULARITY, POPULARITY.loc[[5]]]))
    with pytest.raises(ValueError, match="head_share must be a finite number"):
        ba.long_tail(POPULARITY, head_share=np.nan)


def test_novelty_needs_a_whole_number_of_users():
    for bad in (10.7, 0.5, 0, True, "8", None):
        with pytest.raises(ValueError, match="n_users must be a positive integer"):
            ba.novelty([[1, 2]], POPULARITY, n_users=bad, k=2)
    assert ba.novelty([[1, 2]], POPULARITY, n_users=8.0, k=2) == pytest.approx(0.5)


def test_calibration_kl_refuses_histories_it_would_misread():
    genres = pd.Series({1: ["A"], 2: ["B"], 3: ["A", "B"]})
    with pytest.raises(TypeError, match="one sequence of item ids per list.*such as 1.*\\[history\\]"):
        ba.calibration_kl([[1], [3]], [1, 2], genres, k=1)  # one flat list: was "object of type 'int' has no len()"
    with pytest.raises(ValueError, match="history of list 1 is empty"):  # was "none of the items ... has a genre"
        ba.calibration_kl([[1], [3]], [[1, 2], []], genres, k=1)
    with pytest.raises(ValueError, match="histories\\[0\\] is missing"):
        ba.calibration_kl([[1]], pd.Series({7: [1]}).reindex([8]).tolist(), genres, k=1)
    with pytest.raises(TypeError, match="read by position.*reindex"):
        ba.calibration_kl([[1], [3]], pd.Series({20: [1, 2], 10: [2]}), genres, k=1)
    with pytest.raises(TypeError, match="histories\\[0\\] holds ids such as '1'"):
        ba.calibration_kl([[1]], [["1", "2"]], genres, k=1)
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        ba.calibration_kl([[1]], [[1]], genres, k=1, alpha=np.nan)
    with pytest.raises(ValueError, match="no item of the list of row 1 has a genre"):
        ba.calibration_kl([[1], [4]], [[1], [1]], pd.Series({1: ["A"], 4: []}), k=1)
    with pytest.raises(ValueError, match="no item of the history of row 0 has a genre"):
        ba.calibration_kl([[1]], [[4]], pd.Series({1: ["A"], 4: []}), k=1)
    # a history may be a set, an array or a tuple; the lists' own history gives 0
    kl = ba.calibration_kl([[1, 2], [1, 3]], [{1, 2}, np.array([1, 3])], genres, k=2, per_user=True)
    assert kl == pytest.approx([0.0, 0.0])


def test_activity_groups_split_tied_users_by_id_into_equal_groups():
    # activities 2, 1, 1, 1, 1, 3 (users 1..6): ranked by activity, ties by user id -> 2, 3, 4, 5 | 1, 6 ...
    train = pd.DataFrame({"user_id": np.repeat([1, 2, 3, 4, 5, 6], [2, 1, 1, 1, 1, 3])})
    groups = ba.activity_groups(train)
    assert groups.to_dict() == {2: "light", 3: "light", 4: "medium", 5: "medium", 1: "heavy", 6: "heavy"}
    assert ba.activity_groups(train, n_groups=2, labels=["low", "high"]).to_dict() == {
        2: "low", 3: "low", 4: "low", 5: "high", 1: "high", 6: "high"}
    assert ba.activity_groups(train, n_groups=1).to_dict() == dict.fromkeys([1, 2, 3, 4, 5, 6], "group 1")
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_groups must be a positive integer"):
            ba.activity_groups(train, n_groups=bad)


def test_by_group_is_the_mean_not_the_median_and_needs_series():
    groups = pd.Series(["a", "a", "a", "b", "b", "b"], index=[1, 2, 3, 4, 5, 6])
    values = pd.Series([0.0, 0.0, 0.9, 0.1, 0.1, 0.4], index=[6, 5, 4, 3, 2, 1])  # aligned by user id, not position
    # a: users 1, 2, 3 -> 0.4, 0.1, 0.1 (mean 0.2, median 0.1); b: users 4, 5, 6 -> 0.9, 0, 0 (mean 0.3, median 0)
    assert ba.by_group(values, groups).to_dict() == pytest.approx({"a": 0.2, "b": 0.3})
    with pytest.raises(TypeError, match="values must be a pandas Series"):
        ba.by_group([0.1, 0.2], groups)
    with pytest.raises(TypeError, match="groups must be a pandas Series"):
        ba.by_group(values, groups.to_dict())
    with pytest.raises(ValueError, match="groups has repeated user ids"):
        ba.by_group(values, pd.concat([groups, groups]))


def test_long_tail_breaks_ties_by_item_id_whatever_the_order_of_the_series():
    popularity = pd.Series([3, 5, 3, 3, 1], index=[9, 4, 2, 7, 1])  # not sorted by id; 2, 7, 9 tie on 3 users
    assert ba.long_tail(popularity, head_share=0.4) == {7, 9, 1}  # the head: item 4, then item 2 (lowest id of the tie)
    assert ba.long_tail(popularity, head_share=0.6) == {9, 1}
    assert ba.long_tail(popularity.sort_index(), head_share=0.4) == {7, 9, 1}
    assert ba.long_tail(popularity, head_share=0.35) == {7, 9, 1}  # 0.35 × 5 = 1.75 items: rounded to a head of 2
