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
