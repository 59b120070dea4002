"""recsys_helpers.baselines: GlobalMean, BiasBaseline and Popularity, by hand and on the course's standard split."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_helpers.baselines import BiasBaseline, GlobalMean, Popularity
from recsys_helpers.evaluation import IdMap, evaluate_ranking, evaluate_ratings

TINY = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [10, 20, 10], "rating": [5.0, 3.0, 4.0]})


# --------------------------------------------------------------------------------------------- on ml-latest-small

@pytest.fixture(scope="module")
def standard_results(standard_split):
    train, test = standard_split
    return {
        "GlobalMean": evaluate_ratings(GlobalMean().fit(train).predict, test),
        "BiasBaseline": evaluate_ratings(BiasBaseline().fit(train).predict, test),
        "Popularity": evaluate_ranking(Popularity().fit(train).scores, train, test, 10),
    }


def test_popularity_ndcg_on_the_standard_split(standard_results):
    assert standard_results["Popularity"]["ndcg@10"] == pytest.approx(0.187, abs=0.015)


def test_bias_baseline_rmse_on_the_standard_split(standard_results):
    assert standard_results["BiasBaseline"]["rmse"] <= 0.885


def test_global_mean_rmse_on_the_standard_split(standard_results):
    assert standard_results["GlobalMean"]["rmse"] == pytest.approx(1.04, abs=0.01)
    assert standard_results["BiasBaseline"]["rmse"] < standard_results["GlobalMean"]["rmse"] - 0.1


# --------------------------------------------------------------------------------------------- by hand

def test_global_mean():
    model = GlobalMean().fit(TINY)
    assert model.mu == 4.0  # (5 + 3 + 4) / 3
    assert model.predict([1, 2, 99], [10, 30, 10]).tolist() == [4.0, 4.0, 4.0]
    assert model.scores([0, 1]).shape == (2, 2) and (model.scores([0, 1]) == 4.0).all()


def test_bias_baseline_one_step_by_hand():
    # mu = 4. With no regularisation, one pass: item biases first (user biases still 0):
    #   b_10 = ((5 - 4) + (4 - 4)) / 2 = 0.5,  b_20 = (3 - 4) / 1 = -1
    # then user biases from the residuals after the item biases:
    #   b_1 = ((5 - 4 - 0.5) + (3 - 4 + 1)) / 2 = 0.25,  b_2 = (4 - 4 - 0.5) / 1 = -0.5
    model = BiasBaseline(reg_user=0, reg_item=0, n_iter=1).fit(TINY)
    assert model.mu == 4.0
    assert model.item_bias.tolist() == pytest.approx([0.5, -1.0])
    assert model.user_bias.tolist() == pytest.approx([0.25, -0.5])
    assert model.predict([1, 2], [10, 20]) == pytest.approx([4 + 0.25 + 0.5, 4 - 0.5 - 1.0])


def test_bias_baseline_shrinks_and_falls_back_to_the_mean():
    shrunk = BiasBaseline(reg_user=1e12, reg_item=1e12).fit(TINY)
    assert np.abs(shrunk.user_bias).max() < 1e-9 and np.abs(shrunk.item_bias).max() < 1e-9
    model = BiasBaseline().fit(TINY)
    # unknown user (99) and unknown item (30) get a bias of 0
    assert model.predict([99], [30]) == pytest.approx([model.mu])
    assert model.predict([1], [30]) == pytest.approx([model.mu + model.user_bias[0]])
    assert model.predict([99], [20]) == pytest.approx([model.mu + model.item_bias[1]])


def test_bias_baseline_scores_match_predictions(synthetic):
    train = synthetic.ratings
    model = BiasBaseline().fit(train)
    ids = IdMap.from_train(train)
    users, items = np.meshgrid(ids.user_ids[:7], ids.item_ids[:11], indexing="ij")
    expected = model.predict(users.ravel(), items.ravel()).reshape(users.shape)
    assert model.scores(np.arange(7))[:, :11] == pytest.approx(expected)


def test_bias_baseline_fit_reduces_training_error(synthetic):
    train = synthetic.ratings
    one = BiasBaseline(n_iter=1).fit(train)
    ten = BiasBaseline(n_iter=10).fit(train)
    flat = GlobalMean().fit(train)
    errors = [evaluate_ratings(m.predict, train)["rmse"] for m in (flat, one, ten)]
    assert errors[0] > errors[1] >= errors[2] - 1e-9


def test_popularity_scores_are_training_counts(synthetic):
    train = synthetic.ratings
    model = Popularity().fit(train[["user_id", "item_id"]])  # needs no rating column
    counts = train.item_id.value_counts().reindex(model.ids.item_ids).to_numpy()
    scores = model.scores([0, 5, 9])
    assert scores.shape == (3, model.ids.n_items) and (scores == counts).all()
    scores[0, 0] = -1  # the rows are a copy: changing them changes nothing in the model
    assert model.counts[0] == counts[0]


@pytest.mark.parametrize("kwargs", [dict(reg_user=-1.0), dict(reg_item=-0.5), dict(reg_user=-1, reg_item=-1)])
def test_negative_regularisation_is_refused(kwargs):
    with pytest.raises(ValueError, match="regularisation must be >= 0"):
        BiasBaseline(**kwargs)


@pytest.mark.parametrize("model", [GlobalMean, BiasBaseline])
def test_rating_baselines_need_ratings(model):
    with pytest.raises(ValueError, match=r"missing column\(s\) \['rating'\]"):
        model().fit(TINY.drop(columns="rating"))


@pytest.mark.parametrize("model", [GlobalMean, BiasBaseline, Popularity])
def test_bad_training_frames(model):
    with pytest.raises(ValueError, match="empty"):
        model().fit(TINY.iloc[:0])
    with pytest.raises(ValueError, match="missing item_id"):
        model().fit(TINY.assign(item_id=[10, np.nan, 10]))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['user_id'\]"):
        model().fit(TINY.rename(columns={"user_id": "userId"}))


def test_wmf_learns_more_than_popularity_and_refuses_bad_settings(synthetic):
    from recsys_helpers.models import WMF
    from recsys_helpers.split import stratified_split

    train, test = stratified_split(synthetic.ratings, 0.2, 42)
    wmf = WMF(factors=4, alpha=5.0, reg=1.0, iterations=10, seed=0).fit(train)  # the data has 4 latent tastes
    assert wmf.scores([0, 1]).shape == (2, train.item_id.nunique())
    assert evaluate_ranking(wmf, train, test)["ndcg@10"] > evaluate_ranking(Popularity().fit(train), train, test)["ndcg@10"]
    again = WMF(factors=4, alpha=5.0, reg=1.0, iterations=10, seed=0).fit(train)
    assert np.allclose(again.scores([0]), wmf.scores([0]))  # seeded
    with pytest.raises(ValueError, match="factors must be a positive integer"):
        WMF(factors=0)


# --------------------------------------------------------------------------------------------- ItemKNN (notebook 02)

# users 1–3 over movies 10, 20, 30: counts n = (3, 2, 1); co-occurrences c(10,20) = 2, c(10,30) = 1, c(20,30) = 0
KNN_FRAME = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3], "item_id": [10, 20, 10, 20, 10, 30]})


def test_item_knn_similarities_and_scores_by_hand():
    from recsys_helpers.baselines import ItemKNN
    knn = ItemKNN(k=2, alpha=0.5).fit(KNN_FRAME)
    S = knn.S.toarray()
    assert S[0, 1] == pytest.approx(2 / np.sqrt(3 * 2)) and S[1, 0] == pytest.approx(2 / np.sqrt(6))
    assert S[0, 2] == pytest.approx(1 / np.sqrt(3)) and S[1, 2] == 0
    assert np.all(np.diag(S) == 0), "a movie must not be its own neighbour"
    # user 3 (index 2) saw 10 and 30: score of 20 = s(10, 20) + s(30, 20) = 2/√6 + 0
    assert knn.scores([2])[0, 1] == pytest.approx(2 / np.sqrt(6))


def test_item_knn_alpha_weights_the_candidate_and_k_keeps_the_nearest():
    from recsys_helpers.baselines import ItemKNN
    S = ItemKNN(k=2, alpha=1.0).fit(KNN_FRAME).S.toarray()  # c_ij / n_i: divides by the source's count only
    assert S[0, 1] == pytest.approx(2 / 3) and S[1, 0] == pytest.approx(2 / 2)
    S1 = ItemKNN(k=1, alpha=0.5).fit(KNN_FRAME).S.toarray()  # column j keeps only its nearest movie
    assert (S1 > 0).sum(axis=0).tolist() == [1, 1, 1] and S1[1, 0] > 0 and S1[0, 2] > 0


@pytest.mark.parametrize("kwargs", [{"k": 0}, {"k": 2.5}, {"k": True}, {"alpha": -0.1}, {"alpha": 1.5}])
def test_item_knn_rejects_bad_settings(kwargs):
    from recsys_helpers.baselines import ItemKNN
    with pytest.raises(ValueError):
        ItemKNN(**kwargs)


def test_item_knn_on_the_standard_split(standard_split):
    """Notebook 02's recorded value with k = 50, α = 0.5 on ml-latest-small's standard split."""
    from recsys_helpers.baselines import ItemKNN
    train, test = standard_split
    assert evaluate_ranking(ItemKNN(50, 0.5).fit(train), train, test, 10)["ndcg@10"] == pytest.approx(0.3237, abs=2e-4)


def test_item_knn_with_a_single_training_movie_scores_zero():
    """One movie has no neighbour: the model fits and scores 0 instead of failing in argpartition."""
    from recsys_helpers.baselines import ItemKNN
    one = pd.DataFrame({"user_id": [1, 2], "item_id": [10, 10]})
    knn = ItemKNN(k=5).fit(one)
    assert knn.S.shape == (1, 1) and knn.S.nnz == 0
    assert knn.scores([0, 1]).tolist() == [[0.0], [0.0]]


# --------------------------------------------------------------------------------------------- input checks

@pytest.mark.parametrize("make", [lambda: GlobalMean().fit(TINY), lambda: BiasBaseline().fit(TINY),
                                  lambda: Popularity().fit(TINY)], ids=["GlobalMean", "BiasBaseline", "Popularity"])
def test_scores_refuse_users_that_were_not_fitted(make):
    model = make()
    name = type(model).__name__
    assert model.scores(np.array([1, 0])).shape == (2, 2) and model.scores([]).shape == (0, 2)
    for bad in ([2], [-1], [0, 5]):  # -1 would silently be the last user's scores
        with pytest.raises(IndexError, match=f"{name}.scores: user index .* not one of the 2 fitted users"):
            model.scores(bad)
    with pytest.raises(TypeError, match="integer user indices"):
        model.scores([0.5])
    with pytest.raises(RuntimeError, match=f"{name} has not been fitted yet: call fit\\(train\\) first"):
        type(model)().scores([0])


def test_item_knn_scores_refuse_users_that_were_not_fitted():
    from recsys_helpers.baselines import ItemKNN
    knn = ItemKNN(k=2).fit(KNN_FRAME)
    with pytest.raises(IndexError, match="ItemKNN.scores: user index 3"):
        knn.scores([3])
    with pytest.raises(IndexError, match="user index -1"):
        knn.scores([-1])
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        ItemKNN(alpha=float("nan"))


def test_rating_predictions_need_one_user_per_item():
    for model in (GlobalMean().fit(TINY), BiasBaseline().fit(TINY)):
        with pytest.raises(ValueError, match="user_ids and item_ids must pair up, one user per item, got 2 and 1"):
            model.predict([1, 2], [10])
    with pytest.raises(RuntimeError, match="not been fitted"):
        BiasBaseline().predict([1], [10])


@pytest.mark.parametrize("kwargs, message", [
    (dict(reg_user=float("nan")), "regularisation must be >= 0 and finite"),
    (dict(reg_item="5"), "regularisation must be >= 0 and finite"),
    (dict(n_iter=0), "n_iter must be a positive integer"),
    (dict(n_iter=2.5), "n_iter must be a positive integer"),
])
def test_bias_baseline_refuses_settings_that_are_not_numbers(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BiasBaseline(**kwargs)


def test_bias_baseline_iterates_to_the_least_squares_fixed_point():
    """Without shrinkage, alternating updates converge to biases whose residuals sum to 0 per user and per item."""
    model = BiasBaseline(reg_user=0, reg_item=0, n_iter=200).fit(TINY)
    resid = TINY.rating - model.predict(TINY.user_id, TINY.item_id)
    assert np.allclose(resid.groupby(TINY.user_id).sum(), 0, atol=1e-9)
    assert np.allclose(resid.groupby(TINY.item_id).sum(), 0, atol=1e-9)
    shrunk = BiasBaseline(reg_user=0, reg_item=2.0, n_iter=1).fit(TINY)  # b_10 = (1 + 0) / (2 + 2), b_20 = -1 / 3
    assert shrunk.item_bias.tolist() == pytest.approx([0.25, -1 / 3])
    shrunk = BiasBaseline(reg_user=2.0, reg_item=0, n_iter=1).fit(TINY)  # b_1 = (0.5 + 0) / (2 + 2), b_2 = -0.5 / 3
    assert shrunk.user_bias.tolist() == pytest.approx([0.125, -0.5 / 3])


# --------------------------------------------------------------------------------------------- sequential baselines

# user 1 watches 10 → 20 → 30, user 2 10 → 20, user 3 30 → 10 (timestamps out of row order on purpose)
SEQ = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 3, 3], "item_id": [30, 10, 20, 20, 10, 10, 30],
                    "timestamp": [3, 1, 2, 5, 4, 9, 8]})


def test_markov_chain_counts_transitions_and_breaks_ties_by_popularity():
    from recsys_helpers.baselines import MarkovChain
    mc = MarkovChain().fit(SEQ)
    # transitions 10→20 twice, 20→30 once, 30→10 once; counts 10: 3, 20: 2, 30: 2 → tie-break counts / 4
    assert mc.transitions.toarray().tolist() == [[0, 2, 0], [0, 0, 1], [1, 0, 0]]
    scores = mc.scores_next([0, 1, 2, 0], [np.array([0]), np.array([2, 1]), np.array([], int), np.array([1, 0])])
    assert scores == pytest.approx(np.array([[0.75, 2.5, 0.5], [0.75, 0.5, 1.5], [0.75, 0.5, 0.5],
                                             [0.75, 2.5, 0.5]]))
    with pytest.raises(IndexError, match="MarkovChain.scores_next: the histories hold item index 3, but the model "
                                         "was fitted on 3 items"):
        mc.scores_next([0], [np.array([0, 3])])
    with pytest.raises(RuntimeError, match="MarkovChain has not been fitted yet"):
        MarkovChain().scores_next([0], [np.array([0])])


def test_popularity_scores_next_are_the_counts_whatever_the_history():
    pop = Popularity().fit(SEQ)
    assert pop.scores_next([0, 1], [np.array([2]), np.array([], int)]).tolist() == [[3, 2, 2], [3, 2, 2]]
    with pytest.raises(IndexError, match="Popularity.scores_next: the histories hold item index -1"):
        pop.scores_next([0], [np.array([-1])])


def test_recency_item_knn_by_hand():
    """Item columns over users: 10 = (1, 1, 1), 20 = (1, 1, 0), 30 = (1, 0, 1); cos(10, 20) = cos(10, 30) = 2/√6,
    cos(20, 30) = 1/2. History 10, 20, 30 with window 2 and decay 0.5: weights 0.5 for 20 and 1 for 30."""
    from recsys_helpers.baselines import RecencyItemKNN
    knn = RecencyItemKNN(decay=0.5, window=2).fit(SEQ)
    c = 2 / np.sqrt(6)
    got = knn.scores_next([0, 1], [np.array([0, 1, 2]), np.array([1])])
    assert got == pytest.approx(np.array([[0.5 * c + c, 0.5 + 0.5, 0.25 + 1], [c, 1.0, 0.5]]))
    flat = RecencyItemKNN(decay=1.0, window=50).fit(SEQ).scores_next([0], [np.array([0, 1, 2])])
    assert flat == pytest.approx(np.array([[1 + 2 * c, c + 1 + 0.5, c + 0.5 + 1]]))
    with pytest.raises(IndexError, match="RecencyItemKNN.scores_next: the histories hold item index 5"):
        knn.scores_next([0], [np.array([5])])


@pytest.mark.parametrize("kwargs, message", [
    (dict(window=0), "window must be a positive integer"), (dict(window=2.5), "window must be a positive integer"),
    (dict(decay=0), "decay must be in \\(0, 1\\]"), (dict(decay=1.5), "decay must be in"),
    (dict(decay="0.5"), "decay must be a finite number"), (dict(decay=float("nan")), "decay must be a finite"),
])
def test_recency_item_knn_refuses_bad_settings(kwargs, message):
    from recsys_helpers.baselines import RecencyItemKNN
    with pytest.raises(ValueError, match=message):
        RecencyItemKNN(**kwargs)


# --------------------------------------------------------------------------------------------- cold-start baselines

ITEMS = pd.DataFrame({"item_id": [10, 20, 30, 40], "genres": [["A"], ["A", "B"], ["B"], ["A", "B", "C"]]})


def test_genre_profile_by_hand():
    """User 1 rated 10, 20, 30: genres A twice, B twice → profile (1/2, 1/2, 0); user 2 rated 10, 20: (2/3, 1/3, 0).
    A new movie's score is the profile · its genres / √(its number of genres)."""
    from recsys_helpers.baselines import GenreProfile
    model = GenreProfile().fit(SEQ[SEQ.user_id < 3], ITEMS)
    assert model.genres == ["A", "B", "C"]
    assert model.profiles == pytest.approx(np.array([[0.5, 0.5, 0], [2 / 3, 1 / 3, 0]]))
    got = model.scores_items([0, 1], [40, 30, 10])
    assert got == pytest.approx(np.array([[1 / np.sqrt(3), 0.5, 0.5], [1 / np.sqrt(3), 1 / 3, 2 / 3]]))
    with pytest.raises(KeyError, match="1 item\\(s\\) are missing from the items table, e.g. \\[99\\]"):
        model.scores_items([0], [10, 99])
    with pytest.raises(IndexError, match="GenreProfile.scores: user index 2 is not one of the 2 fitted users"):
        model.scores_items([2], [10])
    with pytest.raises(RuntimeError, match="GenreProfile has not been fitted yet"):
        GenreProfile().scores_items([0], [10])


def test_genre_profile_refuses_genres_given_as_text():
    from recsys_helpers.baselines import GenreProfile
    with pytest.raises(TypeError, match="must hold a list of genres per movie, got text such as 'A'; split it first"):
        GenreProfile().fit(SEQ, ITEMS.assign(genres=["A", "A|B", "B", "A|B|C"]))


def test_random_scores_are_seeded():
    from recsys_helpers.baselines import RandomScores
    got = RandomScores(3).scores_items([0, 1], [10, 20, 30])
    assert np.array_equal(got, np.random.default_rng(3).random((2, 3)))
    assert not np.allclose(got, RandomScores(4).scores_items([0, 1], [10, 20, 30]))
    for seed in ("a", True, -1, 1.5):
        with pytest.raises(TypeError, match="seed must be a whole number"):
            RandomScores(seed)
