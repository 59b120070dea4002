"""The sequential and cold-start protocols, their baselines, tie-breaking, per-user metrics and the paired bootstrap."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_helpers.baselines import GenreProfile, MarkovChain, Popularity, RandomScores, RecencyItemKNN
from recsys_helpers.evaluation import (evaluate_cold_start, evaluate_ranking, evaluate_sequential, paired_bootstrap,
                                       sequential_events, top_k)
from recsys_helpers.split import cold_start_split, sequential_split, stratified_split

# two users, time order by timestamp then item id; user 1: 10, 20, 30, 40, 50; user 2: 20, 30, 10, 40
TOY = pd.DataFrame({"user_id": [1, 1, 1, 1, 1, 2, 2, 2, 2],
                    "item_id": [50, 30, 10, 20, 40, 20, 30, 10, 40],
                    "timestamp": [9, 3, 1, 1, 3, 1, 2, 3, 4]})


def test_sequential_split_by_hand():
    split = sequential_split(TOY, n_test=1, n_val=1)
    assert split.test.sort_values("user_id").item_id.tolist() == [50, 40]
    assert split.validation.sort_values("user_id").item_id.tolist() == [40, 10]  # ties in time: 30 before 40
    assert split.train.groupby("user_id").item_id.apply(list).to_dict() == {1: [10, 20, 30], 2: [20, 30]}
    short = sequential_split(TOY, n_test=2, n_val=2)  # user 2 has only 4 interactions: all stay in train
    assert set(short.test.user_id) == {1} and (short.train.user_id == 2).sum() == 4
    with pytest.raises(ValueError, match="no user has more than 10"):
        sequential_split(TOY)


def test_events_see_exactly_the_true_history_before_them():
    split = sequential_split(TOY, n_test=1, n_val=1)
    ids, events, user_idx, histories, targets = sequential_events(split, "test")
    by_user = {int(u): [int(ids.item_ids[i]) for i in h] for u, h in zip(events.user_id, histories)}
    # the validation event is history for the test event (user 2's 10); item 40 is unknown to train, so left out
    assert by_user == {1: [10, 20, 30], 2: [20, 30, 10]}
    assert targets.tolist() == [-1, -1]  # 50 and 40 never occur in training: no model can rank them


def test_markov_chain_and_popularity_by_hand():
    split = sequential_split(TOY, n_test=1, n_val=1)
    mc = MarkovChain().fit(split.train)  # transitions in train: 10->20, 20->30 (twice), 30 -> nothing
    per = evaluate_sequential(mc, split, "validation", k=1, per_event=True)
    # user 1's validation item 40 never occurs in training: a miss whatever the model does;
    # user 2 after 20, 30: 10 is the only training item it has not seen: rank 1
    assert per["rank"].tolist() == [np.inf, 1.0]
    assert per["hit_rate@1"].tolist() == [0.0, 1.0] and per["ndcg@1"].tolist() == [0.0, 1.0]
    scores = mc.scores_next(np.array([0]), [np.array([1])])  # after item index 1 (= 20): 30 (index 2) leads
    assert scores.argmax() == 2
    assert Popularity().fit(split.train).scores_next([0, 1], [[], [0]]).shape == (2, 3)


def test_sequential_metrics_are_averages_over_events(movielens):
    split = sequential_split(movielens.ratings)
    assert len(split.test) == len(split.validation) == 5 * movielens.ratings.user_id.nunique() == 3050
    pop = Popularity().fit(split.train)
    per = evaluate_sequential(pop, split, per_event=True)
    means = evaluate_sequential(pop, split)
    assert means == pytest.approx(per[["hit_rate@10", "ndcg@10", "mrr@10"]].mean().to_dict())
    assert means["ndcg@10"] == pytest.approx(0.020, abs=0.004)  # the reference value
    assert evaluate_sequential(MarkovChain().fit(split.train), split)["ndcg@10"] >= 0.050
    assert evaluate_sequential(RecencyItemKNN().fit(split.train), split)["ndcg@10"] >= 0.040


def test_a_model_that_peeks_at_the_target_is_perfect(movielens):
    """A scorer that knows the answer must reach 1.0: proves the events, masks and ranks line up."""
    split = sequential_split(movielens.ratings)
    ids, events, _, _, targets = sequential_events(split, "test")
    answer = iter(targets)

    def oracle(user_idx, histories):
        out = np.zeros((len(histories), ids.n_items))
        for row in range(len(histories)):
            t = next(answer)
            if t >= 0:
                out[row, t] = 1.0
        return out

    per = evaluate_sequential(oracle, split, per_event=True)
    assert (per["rank"][targets >= 0] == 1).all() and np.isinf(per["rank"][targets < 0]).all()


def test_cold_start_split_and_baselines(movielens):
    split = cold_start_split(movielens.ratings, 0.1, 5, seed=42)
    counts = movielens.ratings.item_id.value_counts()
    assert len(split.new_items) == round(0.1 * (counts >= 5).sum())
    assert not split.train.item_id.isin(split.new_items).any()  # no rating of a new item is left in training
    assert set(split.test.item_id) == set(split.new_items)
    genre = evaluate_cold_start(GenreProfile().fit(split.train, movielens.items), split, per_user=True)
    rand = evaluate_cold_start(RandomScores(0), split, per_user=True)
    result = paired_bootstrap(genre["ndcg@10"], rand["ndcg@10"], names=("genre", "random"))
    assert result["low"] > 0 and result["verdict"].startswith("genre beats random")
    assert list(cold_start_split(movielens.ratings, seed=42).new_items) == list(split.new_items)  # seeded


def test_ties_favour_no_item_by_its_index(synthetic):
    """A model that scores every item the same must rank like random, not recommend the lowest ids."""
    train, test = stratified_split(synthetic.ratings, 0.2, 42)
    n_items = train.item_id.nunique()
    flat = np.zeros((train.user_id.nunique(), n_items))
    _, recs = top_k(flat, train, k=10)
    assert len(np.unique(recs)) > n_items / 2  # index order would give the same ~10 items to everyone
    assert np.median(recs) > np.quantile(train.item_id.unique(), 0.3)
    assert (top_k(flat, train, k=10)[1] == recs).all()  # seeded: the same lists every time
    ordered = np.tile(np.arange(n_items, dtype=float), (flat.shape[0], 1))  # no ties: plain order, untouched
    users, recs = top_k(ordered, train, 3)
    assert all((np.diff(np.searchsorted(np.sort(train.item_id.unique()), row)) < 0).all() for row in recs)


def test_per_user_ranking_metrics_average_to_the_means(standard_split):
    train, test = standard_split
    pop = Popularity().fit(train)
    per = evaluate_ranking(pop, train, test, per_user=True)
    means = evaluate_ranking(pop, train, test)
    assert per.index.name == "user_id" and len(per) == test.user_id.nunique()
    for name, value in per.mean().items():
        assert value == pytest.approx(means[name])
    assert evaluate_ranking(pop.scores, train, test) == means  # object, function or matrix: one contract
    assert evaluate_ranking(pop.scores(np.arange(pop.ids.n_users)), train, test) == means


def test_paired_bootstrap():
    rng = np.random.default_rng(0)
    a = rng.random(500)
    better = paired_bootstrap(a + 0.05, a)
    assert better["diff"] == pytest.approx(0.05) and better["low"] == pytest.approx(0.05)
    noisy = paired_bootstrap(a, a[::-1])
    assert noisy["low"] < 0 < noisy["high"] and "within noise" in noisy["verdict"]
    with pytest.raises(ValueError, match="same users"):
        paired_bootstrap(pd.Series([1.0, 2.0], index=[1, 2]), pd.Series([1.0, 2.0], index=[2, 3]))
    with pytest.raises(ValueError, match="NaN for the other"):
        paired_bootstrap([1.0, np.nan, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="equal length"):
        paired_bootstrap([1.0, 2.0], [1.0])


def test_dataframe_scores_are_refused(standard_split):
    train, test = standard_split
    pop = Popularity().fit(train)
    with pytest.raises(TypeError, match="must not be a pandas DataFrame"):
        evaluate_ranking(pd.DataFrame(pop.scores(np.arange(pop.ids.n_users))), train, test)


def test_paired_bootstrap_by_groups_resamples_whole_users():
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(100), 5)
    user_effect = np.repeat(rng.normal(0, 1, 100), 5)  # the 5 events of a user move together
    a, b = user_effect + rng.normal(0, 0.1, 500), np.zeros(500)
    by_event = paired_bootstrap(a, b)
    by_user = paired_bootstrap(a, b, groups=users)
    assert by_user["diff"] == pytest.approx(by_event["diff"])  # same mean (equal group sizes)
    assert (by_user["high"] - by_user["low"]) > 1.8 * (by_event["high"] - by_event["low"])  # honest, wider
    assert "over 100 groups" in by_user["verdict"]
    with pytest.raises(ValueError, match="one label per value"):
        paired_bootstrap(a, b, groups=users[:10])


def test_paired_bootstrap_for_errors_and_unequal_groups():
    rng = np.random.default_rng(2)
    err_b = rng.random(300) + 0.5
    lower = paired_bootstrap(err_b - 0.2, err_b, names=("A", "B"), higher_is_better=False)
    assert lower["verdict"].startswith("A beats B") and lower["high"] < 0
    groups = np.repeat(np.arange(30), np.arange(1, 31) % 7 + 1)[:300]  # groups of unequal sizes
    a, b = rng.random(len(groups)), rng.random(len(groups))
    clustered = paired_bootstrap(a, b, groups=groups, n_boot=500)
    assert clustered["low"] <= clustered["diff"] <= clustered["high"]  # the interval is around the same mean
