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


# --------------------------------------------------------------------------------------------- issue 25 probes

def test_paired_bootstrap_interval_has_the_normal_half_width():
    """A large sample with a known standard error: the 95% interval is diff +- 1.96 SE, the 90% one +- 1.645 SE."""
    z = np.random.default_rng(3).normal(size=2000)
    z = (z - z.mean()) / z.std()  # exactly mean 0, sd 1 (the bootstrap's sd divides by n)
    a, b = 0.03 + 0.5 * z, np.zeros(2000)
    se = 0.5 / np.sqrt(2000)  # 0.01118
    for level, quantile in ((0.95, 1.959964), (0.90, 1.644854)):
        r = paired_bootstrap(a, b, n_boot=4000, level=level)
        assert r["diff"] == pytest.approx(0.03)
        assert (r["high"] - r["low"]) / 2 == pytest.approx(quantile * se, rel=0.05)
        assert (r["high"] + r["low"]) / 2 == pytest.approx(0.03, abs=0.1 * se)
    assert "90% interval" in r["verdict"]
    assert "97.5% interval" in paired_bootstrap(a, b, level=0.975)["verdict"]  # the level printed is the one asked


def test_cluster_bootstrap_with_unequal_groups_by_hand():
    # a constant difference of 0.1 in groups of 1 to 7 values: every resample's per-value mean is exactly 0.1 (a mean
    # of group totals would vary with the sizes drawn)
    sizes = np.arange(30) % 7 + 1
    groups = np.repeat(np.arange(30), sizes)
    r = paired_bootstrap(np.full(len(groups), 0.3), np.full(len(groups), 0.2), groups=groups, n_boot=200)
    assert r["low"] == pytest.approx(0.1) and r["high"] == pytest.approx(0.1)
    assert r["n"] == sizes.sum() and r["n_units"] == 30 and r["unit"] == "groups"
    # 50 groups of one value with difference 0 and 50 groups of three values with difference 1: the per-value mean is
    # 150 / 200 = 0.75 (the mean of the group totals would be 1.5). Linearised, each group contributes
    # (total - 0.75 * size) / 2 = -0.375 or +0.375, so SE = 0.375 / sqrt(100) and the 95% half-width is 1.96 * 0.0375.
    groups = np.repeat(np.arange(100), np.r_[np.ones(50, int), np.full(50, 3)])
    diff = np.r_[np.zeros(50), np.ones(150)]
    r = paired_bootstrap(diff, np.zeros(200), groups=groups, n_boot=4000)
    assert r["diff"] == pytest.approx(0.75)
    assert (r["high"] + r["low"]) / 2 == pytest.approx(0.75, abs=0.01)
    assert (r["high"] - r["low"]) / 2 == pytest.approx(1.96 * 0.0375, rel=0.1)
    assert r["verdict"].endswith("over 100 groups")


@pytest.mark.parametrize("higher_is_better", [True, False])
@pytest.mark.parametrize("shift", [0.05, -0.05])
def test_paired_bootstrap_verdict_names_the_winner_and_the_signed_difference(shift, higher_is_better):
    b = np.array([0.2, 0.4, 0.1, 0.3])
    r = paired_bootstrap(b + shift, b, names=("EASE", "Popularity"), higher_is_better=higher_is_better, n_boot=200)
    assert r["diff"] == pytest.approx(shift) and r["low"] == pytest.approx(shift) and r["high"] == pytest.approx(shift)
    a_wins = (shift > 0) == higher_is_better  # larger NDCG wins; smaller error wins
    winner = "EASE beats Popularity" if a_wins else "Popularity beats EASE"
    assert r["verdict"] == (f"{winner}: difference EASE − Popularity = {shift:+.4f}, 95% interval "
                            f"[{shift:+.4f}, {shift:+.4f}] over 4 paired values")


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_paired_bootstrap_within_noise(higher_is_better):
    # differences 0.01 +- 0.2, alternating: mean 0.01, SE = 0.2 / sqrt(100) = 0.02, interval about [-0.029, +0.049]
    diff = 0.01 + 0.2 * np.tile([1.0, -1.0], 50)
    r = paired_bootstrap(diff + 0.5, np.full(100, 0.5), names=("MF", "kNN"), higher_is_better=higher_is_better)
    assert r["low"] == pytest.approx(0.01 - 1.96 * 0.02, abs=0.004)
    assert r["high"] == pytest.approx(0.01 + 1.96 * 0.02, abs=0.004)
    assert r["verdict"] == (f"MF and kNN are within noise: difference MF − kNN = +0.0100, 95% interval "
                            f"[{r['low']:+.4f}, {r['high']:+.4f}] over 100 paired values")
    assert r["mean_a"] == pytest.approx(0.51) and r["mean_b"] == pytest.approx(0.5)


def test_paired_bootstrap_names_its_unit():
    users = pd.Index([5, 3, 9, 1], name="user_id")  # as evaluate_ranking(..., per_user=True) labels its rows
    a, b = pd.Series([0.3, 0.5, 0.2, 0.4], index=users), pd.Series([0.1, 0.2, 0.1, 0.3], index=users)
    assert paired_bootstrap(a, b)["verdict"].endswith("over 4 users")
    events = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "a": [.1, .2, .3, .4, .5], "b": [.0, .1, .1, .2, .2]})
    r = paired_bootstrap(events["a"], events["b"], groups=events["user_id"])
    assert r["verdict"].endswith("over 3 users") and r["n"] == 5 and r["n_units"] == 3
    assert paired_bootstrap(events["a"], events["b"], unit="events")["verdict"].endswith("over 5 events")


def test_paired_bootstrap_refuses_what_it_cannot_resample_honestly():
    a, b = np.linspace(0, 1, 40), np.linspace(0, 1, 40)[::-1]
    for groups in ([1, 1, 1], np.ones(40)):  # every value of one user: one group, nothing to resample
        n = len(groups)
        with pytest.raises(ValueError, match="at least 2 groups with a value, got 1.*not one label for all"):
            paired_bootstrap(a[:n], b[:n], groups=groups)
    with pytest.raises(ValueError, match=r"groups has 1 missing label\(s\)"):
        paired_bootstrap([.9, .1, .1, .1], [.1] * 4, groups=[np.nan, 1, 2, 3])
    with pytest.raises(ValueError, match=r"groups has 1 missing label\(s\)"):
        paired_bootstrap([.9, .1, .1, .1], [.1] * 4, groups=["u1", None, "u2", "u3"])
    for seed in ("abc", 1.5, True, -1, np.random.default_rng(0)):
        with pytest.raises(TypeError, match="seed must be a whole number"):
            paired_bootstrap(a, b, seed=seed)
    for names in (("A",), "AB", ("A", 2), ("A", "B", "C")):
        with pytest.raises(ValueError, match="names must be two strings"):
            paired_bootstrap(a, b, names=names)
    assert paired_bootstrap(a, b, names=["x", "y"])["verdict"].startswith("x and y")  # a list of two is fine
    with pytest.raises(ValueError, match=r"^a holds 1 infinite value"):
        paired_bootstrap(np.r_[a[:-1], np.inf], b)
    with pytest.raises(ValueError, match=r"^b holds 2 infinite value"):
        paired_bootstrap(a, np.r_[b[:-2], -np.inf, np.inf])
    with pytest.raises(TypeError, match="a must hold numbers"):
        paired_bootstrap(["a", "b"], ["c", "d"])
    with pytest.raises(TypeError, match="b must hold numbers"):
        paired_bootstrap([0.1, 0.2], [0.1, "x"])
    with pytest.raises(TypeError, match="higher_is_better must be True"):
        paired_bootstrap(a, b, higher_is_better="False")
    for n_boot in (99, 100.5, None):
        with pytest.raises(ValueError, match="n_boot"):
            paired_bootstrap(a, b, n_boot=n_boot)
    for level in (95, 0, np.nan, "0.95"):
        with pytest.raises(ValueError, match="level"):
            paired_bootstrap(a, b, level=level)
    with pytest.raises(ValueError, match="at least 2 paired values with a value, got 0"):
        paired_bootstrap([np.nan] * 3, [np.nan] * 3)
    assert paired_bootstrap(a, b, n_boot=100.0, seed=3.0)["n"] == 40  # whole floats are whole numbers


def test_a_constant_scorer_ranks_like_random_under_the_sequential_protocol(synthetic):
    """Ties with the target are broken at random: every item scoring 0 puts the target at a uniform rank among the
    candidates (the items not in the history), not at rank 1."""
    split = sequential_split(synthetic.ratings)
    ids, events, _, histories, targets = sequential_events(split, "test")
    flat = evaluate_sequential(lambda users, hist: np.zeros((len(hist), ids.n_items)), split, per_event=True)
    known = targets >= 0
    candidates = ids.n_items - np.array([len(h) for h in histories])
    ranks = flat["rank"].to_numpy()
    assert np.isinf(ranks[~known]).all() and known.sum() > 500
    assert (ranks[known] >= 1).all() and (ranks[known] <= candidates[known]).all()
    assert (ranks[known] == candidates[known]).any()  # the last place can be drawn too
    assert ranks[known].mean() == pytest.approx(((candidates[known] + 1) / 2).mean(), rel=0.1)
    means = flat[["hit_rate@10", "ndcg@10"]].mean()
    assert means["ndcg@10"] < 0.1 and means["hit_rate@10"] == pytest.approx(np.mean(known * 10 / candidates), abs=0.02)
    # the same ranks whatever the batch size (the tie draws come from one seeded stream, in event order)
    assert (evaluate_sequential(lambda users, hist: np.zeros((len(hist), ids.n_items)), split, per_event=True,
                                batch_size=7)["rank"].to_numpy() == ranks).all()


def test_evaluate_sequential_bad_input():
    split = sequential_split(TOY, n_test=1, n_val=1)
    model = lambda users, hist: np.zeros((len(hist), 3))  # noqa: E731 (3 training items)
    for batch_size in (-1, 0, 2.5, True, "8"):
        with pytest.raises(ValueError, match=r"batch_size \(.*\) must be a positive integer"):
            evaluate_sequential(model, split, batch_size=batch_size)
    with pytest.raises(ValueError, match="k=4 is larger than the 3 items in train, so every event would be a hit"):
        evaluate_sequential(model, split, k=4)
    assert evaluate_sequential(model, split, k=3, batch_size=1.0)["hit_rate@3"] == 0.0  # both targets are unknown
    doubled = type(split)(split.train, split.validation, pd.concat([split.test, split.test.head(1)]))
    with pytest.raises(ValueError, match=r"2 row\(s\) of the same event .* e.g. user 1, item 50 at time 9"):
        evaluate_sequential(model, doubled)


def test_paired_bootstrap_by_hand_with_two_users_and_its_seed():
    # two users with differences 0 and 1: a resample's mean is 0, 0.5 or 1 with chances 1/4, 1/2, 1/4, so the
    # 2.5% and 97.5% quantiles are 0 and 1
    r = paired_bootstrap([0.0, 1.0], [0.0, 0.0], n_boot=2000)
    assert (r["low"], r["diff"], r["high"]) == (0.0, 0.5, 1.0) and "within noise" in r["verdict"]
    a, b = np.linspace(0, 1, 30) ** 2, np.linspace(0, 1, 30)
    assert paired_bootstrap(a, b, seed=7) == paired_bootstrap(a, b, seed=7)  # seeded: the same interval every time
    assert paired_bootstrap(a, b, seed=7)["low"] != paired_bootstrap(a, b, seed=8)["low"]
    with pytest.raises(ValueError, match="NaN for the other"):
        paired_bootstrap([1.0, 2.0, 3.0], [1.0, np.nan, 3.0])  # NaN in b only
    # a user with no value for either model (NaN in both) is left out, with its group label
    groups = np.array([1, 1, 2, 3, 3, 4])
    a, b = np.array([0.5, np.nan, 0.2, 0.9, 0.1, 0.4]), np.array([0.1, np.nan, 0.3, 0.2, 0.2, 0.1])
    keep = ~np.isnan(a)
    assert paired_bootstrap(a, b, groups=groups) == paired_bootstrap(a[keep], b[keep], groups=groups[keep])


def test_evaluate_cold_start_by_hand():
    from recsys_helpers.split import ColdStartSplit

    train = pd.DataFrame({"user_id": [1, 2, 2], "item_id": [10, 10, 20]})
    test = pd.DataFrame({"user_id": [1, 2, 2, 3], "item_id": [40, 30, 50, 30]})  # user 3 is not in train: skipped
    split = ColdStartSplit(train, test, np.array([30, 40, 50]))
    table = np.array([[0.1, 0.9, 0.5],   # user 1: 40, 50, 30 -> top 2 [40, 50]: its one new item at rank 1
                      [0.2, 0.3, 0.1]])  # user 2: 40, 30, 50 -> top 2 [40, 30]: one of its two at rank 2

    def model(user_idx, item_ids):
        assert item_ids.tolist() == [30, 40, 50]
        return table[user_idx]

    d2 = 1 / np.log2(3)
    result = evaluate_cold_start(model, split, k=2)
    assert result["precision@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert result["recall@2"] == pytest.approx((1 + 1 / 2) / 2)
    assert result["ndcg@2"] == pytest.approx((1 + d2 / (1 + d2)) / 2)
    assert result["coverage@2"] == pytest.approx(3 / 3)  # {40, 50, 30} of the 3 new items
    assert evaluate_cold_start(model, split, k=2, per_user=True).index.tolist() == [1, 2]
    assert evaluate_cold_start(model, split, k=3)["recall@3"] == 1.0  # k may be the number of new items
    with pytest.raises(ValueError, match="k=4 is larger than the 3 new items"):
        evaluate_cold_start(model, split, k=4)


def test_a_tie_in_time_is_ordered_by_item_id_whatever_the_row_order():
    """A hand-made split whose test event shares its timestamp with a training item: like user_histories, the event
    sees the items before it in (time, item id) order, not in the order of the frames' rows."""
    from recsys_helpers.split import SequentialSplit

    train = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [10, 30, 20], "timestamp": [1, 2, 1]})
    test = pd.DataFrame({"user_id": [1], "item_id": [20], "timestamp": [2]})  # 20 before 30: same time, smaller id
    split = SequentialSplit(train, test.iloc[:0], test)
    ids, _, _, histories, targets = sequential_events(split, "test")
    assert [ids.item_ids[h].tolist() for h in histories] == [[10]] and ids.item_ids[targets].tolist() == [20]
