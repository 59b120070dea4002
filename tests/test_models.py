"""The package's reusable models: WMF's conjugate-gradient half step against the exact solve, BPR-MF's scores
against its training output, and early stopping on a ranking metric."""
import numpy as np
import pytest
import scipy.sparse as sp

from recsys_helpers.evaluation import evaluate_ranking
from recsys_helpers.split import stratified_split


def test_wmf_cg_half_step_converges_to_the_exact_solution():
    from recsys_helpers.models import WMF

    rng = np.random.default_rng(0)
    C = sp.random(30, 40, density=0.2, random_state=1, format="csr")
    C.data[:] = 1.0
    F = rng.normal(size=(40, 6))
    exact = WMF.half_step(C, F, alpha=4.0, reg=0.5)
    # the exact solution by hand for row 3: (FᵀF + λI + α F_rᵀF_r) x = (1 + α) F_rᵀ1
    cols = C[3].indices
    by_hand = np.linalg.solve(F.T @ F + 0.5 * np.eye(6) + 4.0 * F[cols].T @ F[cols], 5.0 * F[cols].sum(0))
    assert np.allclose(exact[3], by_hand)
    # CG from zero reaches the exact solution in at most k = 6 steps (exact arithmetic), and a few steps get close
    assert np.allclose(WMF.cg_half_step(C, F, np.zeros((30, 6)), 4.0, 0.5, steps=12), exact, atol=1e-8)
    one = np.abs(WMF.cg_half_step(C, F, np.zeros((30, 6)), 4.0, 0.5, steps=1) - exact).max()
    three = np.abs(WMF.cg_half_step(C, F, np.zeros((30, 6)), 4.0, 0.5, steps=3) - exact).max()
    assert three < one
    # a start at the solution stays there (the residual is zero), and a row with no interactions solves to zero
    assert np.allclose(WMF.cg_half_step(C, F, exact, 4.0, 0.5, steps=3), exact, atol=1e-10)


def test_wmf_cg_and_exact_fits_rank_alike_and_call_back_every_iteration(synthetic):
    from recsys_helpers.models import WMF

    train, test = stratified_split(synthetic.ratings, 0.2, 42)
    seen = []
    cg = WMF(factors=4, alpha=5.0, reg=1.0, iterations=6, seed=0).fit(train, on_iteration=lambda i, m: seen.append(i))
    assert seen == [1, 2, 3, 4, 5, 6]
    exact = WMF(factors=4, alpha=5.0, reg=1.0, iterations=6, cg_steps=None, seed=0).fit(train)
    a, b = (evaluate_ranking(m, train, test)["ndcg@10"] for m in (cg, exact))
    assert abs(a - b) < 0.03
    with pytest.raises(ValueError, match="cg_steps >= 1"):
        WMF(cg_steps=0)


def test_bpr_mf_learns_and_its_scores_match_its_training_output(synthetic):
    import keras
    from recsys_helpers.interactions import train_index
    from recsys_helpers.models import BPRMF, bpr_loss
    from recsys_helpers.training import NegativeSampling, RankingEarlyStopping

    train, test = stratified_split(synthetic.ratings, 0.2, 42)
    inner, val = stratified_split(train, 0.2, 42)
    index = train_index(inner)
    keras.utils.set_random_seed(0)
    model = BPRMF(index.ids.n_users, index.ids.n_items, 8, reg=1e-4)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=bpr_loss)
    stop = RankingEarlyStopping(inner, val, every=1, patience=2)
    model.fit(NegativeSampling(index.seen, 256, 4, "triples", 0), epochs=12, verbose=0, callbacks=[stop])
    best = max(stop.checks, key=stop.checks.get)
    assert evaluate_ranking(model, inner, val)["ndcg@10"] == pytest.approx(stop.checks[best])  # best weights restored
    assert stop.checks[best] > 2 * evaluate_ranking(
        lambda u: np.random.default_rng(0).random((len(u), index.ids.n_items)), inner, val)["ndcg@10"]
    assert max(stop.checks) < 12 and len(stop.checks) == max(stop.checks)  # it stopped early, checking every epoch
    # scores(u)[i] − scores(u)[j] is what the model returns for the triple (u, i, j)
    triples = np.array([[0, 1, 2], [3, 4, 0]])
    x_uij = keras.ops.convert_to_numpy(model(triples))
    s = model.scores([0, 3])
    assert np.allclose(x_uij, [s[0, 1] - s[0, 2], s[1, 4] - s[1, 0]], atol=1e-5)
    assert float(keras.ops.convert_to_numpy(bpr_loss(None, keras.ops.convert_to_tensor([0.0])))[0]) == pytest.approx(np.log(2))


def test_ranking_early_stopping_refuses_bad_settings(synthetic):
    from recsys_helpers.training import RankingEarlyStopping

    with pytest.raises(ValueError, match="metric must be one of"):
        RankingEarlyStopping(synthetic.ratings, synthetic.ratings, metric="ndgc")
    with pytest.raises(ValueError, match="patience"):
        RankingEarlyStopping(synthetic.ratings, synthetic.ratings, patience=0)


def test_validation_check_keeps_the_best_epoch_stops_after_patience_and_restores_its_weights():
    import keras
    from recsys_helpers.training import ValidationCheck

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    scripted, seen = iter([0.1, 0.3, 0.3, 0.2, 0.25, 0.9]), []

    def score():  # a scripted validation score; remembers the weights it was measured on
        seen.append(model.get_weights())
        return next(scripted)

    check = ValidationCheck(score, patience=3)
    x, y = np.random.default_rng(0).random((32, 3)), np.random.default_rng(1).random((32, 1))
    model.fit(x, y, epochs=10, verbose=0, callbacks=[check])
    assert check.history == [0.1, 0.3, 0.3, 0.2, 0.25]  # stopped 3 epochs after the best (a tie is no new best)
    assert check.best_epoch == 2
    for got, want in zip(model.get_weights(), seen[1]):
        assert np.array_equal(got, want)
    with pytest.raises(ValueError, match="patience"):
        ValidationCheck(score, patience=0)
    with pytest.raises(TypeError, match="function"):
        ValidationCheck(0.5)
    broken = ValidationCheck(lambda: float("nan"))
    with pytest.raises(ValueError, match="diverged"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[broken])
    # every 2 epochs: checks after epochs 2, 4, 6; the best (0.5) after epoch 4 is reported as epoch 4
    scripted = iter([0.1, 0.5, 0.2, 0.3])
    sparse = ValidationCheck(score, patience=2, every=2)
    model.fit(x, y, epochs=9, verbose=0, callbacks=[sparse])
    assert sparse.epochs == [2, 4, 6, 8] and sparse.history == [0.1, 0.5, 0.2, 0.3] and sparse.best_epoch == 4
    with pytest.raises(ValueError, match="every"):
        ValidationCheck(score, every=0)


def test_ease_user_and_item_space_agree_with_the_closed_form():
    """EASE in the user space (Woodbury, fewer users than items) and in the item space both give
    B = I − P diag(P)⁻¹ with a zero diagonal; scores are x B; columns are B's columns."""
    from recsys_helpers.models import EASE
    rng = np.random.default_rng(0)
    X = (rng.random((12, 20)) < 0.3).astype(float)
    P = np.linalg.inv(X.T @ X + 5.0 * np.eye(20))
    B = np.eye(20) - P / np.diag(P)
    assert np.allclose(np.diag(B), 0)
    wide = EASE(5.0).fit(X)  # 12 users < 20 items: user space
    assert wide.user_space
    assert np.allclose(wide.scores(np.arange(12)), X @ B, atol=1e-10)
    assert np.allclose(wide.column(3), B[:, 3], atol=1e-10)
    tall = EASE(5.0).fit(np.vstack([X, X]))  # 24 users > 20 items: item space, Gram doubled
    P2 = np.linalg.inv(2 * X.T @ X + 5.0 * np.eye(20))
    assert not tall.user_space
    assert np.allclose(tall.score_rows(X), X @ (np.eye(20) - P2 / np.diag(P2)), atol=1e-10)
    assert np.allclose(tall.column(3), (np.eye(20) - P2 / np.diag(P2))[:, 3], atol=1e-10)


def test_ease_refuses_bad_settings_and_shapes():
    from recsys_helpers.models import EASE
    for lam in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="positive"):
            EASE(lam)
    with pytest.raises(ValueError, match="2-D"):
        EASE(1.0).fit(np.ones(5))
    with pytest.raises(ValueError, match="fitted items"):
        EASE(1.0).fit(np.eye(4)).score_rows(np.ones((2, 5)))


def test_mult_vae_learns_two_groups_and_scores_by_fold_in():
    """Two groups of users who watch two disjoint blocks of items: after training, a user's unseen items of their
    own block score above the other block's (fold-in of a row the model never saw too)."""
    from recsys_helpers.models import MultVAE, multinomial_nll
    rng = np.random.default_rng(0)
    X = np.zeros((64, 20), np.float32)
    X[:32, :10] = rng.random((32, 10)) < 0.6
    X[32:, 10:] = rng.random((32, 10)) < 0.6
    vae = MultVAE(hidden=16, latent=4, anneal_epochs=2, batch_size=16, seed=1).fit(X, epochs=30)
    s = vae.scores(np.arange(64))
    assert s.shape == (64, 20)
    assert (s[:32, :10].mean(1) > s[:32, 10:].mean(1)).all() and (s[32:, 10:].mean(1) > s[32:, :10].mean(1)).all()
    new = np.zeros((1, 20), np.float32)
    new[0, :3] = 1
    assert vae.score_rows(new)[0, 3:10].min() > vae.score_rows(new)[0, 10:].max()
    assert vae.model.get_layer("z").beta.numpy() == pytest.approx(0.2)  # annealed to β after 2 epochs
    assert float(multinomial_nll(np.array([[1.0, 0.0]]), np.array([[0.0, 0.0]]))) == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match="dropout"):
        MultVAE(dropout=1.0)
    with pytest.raises(ValueError, match="epochs"):
        MultVAE().fit(X, epochs=0)


def test_training_stretches_cover_every_next_item_once_and_refuse_empty_input():
    from recsys_helpers.interactions import training_stretches
    inputs, targets = training_stretches([np.arange(7), np.array([3, 4])], max_len=3, max_history=10)
    assert inputs.shape == targets.shape and inputs.shape[1] == 3
    # every (item → next item) pair of each history appears exactly once, as index + 1
    pairs = sorted((a, b) for x, y in zip(inputs, targets) for a, b in zip(x, y) if b > 0)
    assert pairs == sorted([(k + 1, k + 2) for k in range(6)] + [(4, 5)])
    assert np.all((inputs > 0) == (targets > 0))  # padding on the left of both, aligned
    short, _ = training_stretches([np.arange(50)], max_len=5, max_history=9)  # only the last 10 items are used
    assert set(short[short > 0]) == set(range(41, 50))
    with pytest.raises(ValueError, match="two or more items"):
        training_stretches([np.array([1]), np.array([], int)], max_len=3, max_history=10)


def test_sasrec_learns_a_cycle_its_attention_is_causal_and_it_refuses_bad_priors():
    import keras
    from recsys_helpers.interactions import training_stretches
    from recsys_helpers.models import SASRec, sampled_softmax_loss
    keras.utils.set_random_seed(0)
    n, T = 12, 6
    histories = [np.array([(s + t) % n for t in range(30)]) for s in range(n)]  # item k is always followed by k + 1
    log_q = np.log(np.full(n, 8 / n, "float32"))
    model = SASRec(n, log_q, np.zeros(n + 1), max_len=T, dim=16, blocks=1, dropout=0.0, n_sampled=8, seed=0)
    x, y = training_stretches(histories, T, 29)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=sampled_softmax_loss)
    model.fit({"history": x, "target": y}, np.zeros(y.shape, "float32"), sample_weight=(y > 0).astype("float32"),
              batch_size=16, epochs=15, verbose=0)
    scores = model.scores_next(np.arange(3), [np.array([0, 1, 2]), np.array([5, 6]), np.array([10, 11])])
    assert scores.shape == (3, n)
    assert list(scores.argmax(axis=1)) == [3, 7, 0]
    _, weights = model.encode(np.array([[0, 0, 0, 1, 2, 3]]), return_attention=True)
    w = keras.ops.convert_to_numpy(weights)[0, 0]  # (T, T): row t attends over positions ≤ t only
    assert np.allclose(np.triu(w, 1), 0) and np.allclose(w.sum(axis=1), 1, atol=1e-5)
    h = np.array([[0, 0, 4, 5, 6, 7]])  # passing the looked-up embeddings as item_vectors changes nothing
    assert np.allclose(model.encode(h), model.encode(h, item_vectors=model.item_embedding(h)), atol=1e-6)
    with pytest.raises(ValueError, match="padding"):
        SASRec(n, log_q, np.zeros(n))
