"""The package's reusable models: WMF's conjugate-gradient half step against the exact solve, BPR-MF's scores
against its training output, seeded and distinct initial weights, the models' input checks, and the training
utilities (negative sampling, early stopping on a ranking metric or any validation score)."""
import itertools

import numpy as np
import pandas as pd
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
    with pytest.raises(ValueError, match="cg_steps .*must be a positive integer"):
        WMF(cg_steps=0)


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


# --------------------------------------------------------------------------------------------- seeded initial weights

N = 6  # users and items of the tiny models below: tables of one shape, so equal starts would show


def _sasrec(seed, n=N, **kwargs):
    from recsys_helpers.models import SASRec
    settings = {**dict(max_len=4, dim=4, blocks=2, heads=2, n_sampled=3, seed=seed), **kwargs}
    return SASRec(n, np.log(np.full(n, 3 / n)), np.zeros(n + 1), **settings)


def _built(kind, seed):
    """A tiny model of each Keras kind in the package, built (weights created), never trained."""
    from recsys_helpers.models import BPRMF, BiasedMF, MultVAE
    if kind == "BiasedMF":
        model = BiasedMF(N, N, 3, seed=seed)
        model(np.array([[0, 1]]))
    elif kind == "BPRMF":
        model = BPRMF(N, N, 3, seed=seed)
        model(np.array([[0, 1, 2]]))
    elif kind == "SASRec":
        model = _sasrec(seed)
        model({"history": np.array([[0, 1, 2, 3]]), "target": np.array([[1, 2, 3, 4]])})
    else:
        model = MultVAE(hidden=4, latent=2, seed=seed).build(N)
    return model


@pytest.mark.parametrize("kind", ["BiasedMF", "BPRMF", "SASRec", "MultVAE"])
def test_every_keras_model_starts_from_its_own_seeded_distinct_weights(kind):
    """Every randomly initialised table starts different from every other (Keras 3 gives one initializer instance,
    or two with one seed, the same values: BiasedMF's user and item factors used to start equal), and the weights
    are a function of the seed alone (no keras.utils.set_random_seed here)."""
    weights = [np.array(w.numpy()) for w in _built(kind, seed=3).weights]
    random = [i for i, w in enumerate(weights) if np.unique(w).size > 1]  # not a constant (zeros, ones, a prior)
    assert len(random) == {"BiasedMF": 2, "BPRMF": 2, "SASRec": 15, "MultVAE": 5}[kind]
    for a, b in itertools.combinations(random, 2):
        x, y = weights[a].ravel(), weights[b].ravel()
        n = min(x.size, y.size)
        assert not np.array_equal(x[:n], y[:n]), f"weights {a} and {b} start equal"
    again = [np.array(w.numpy()) for w in _built(kind, seed=3).weights]
    assert all(np.array_equal(w, v) for w, v in zip(weights, again))
    other = [np.array(w.numpy()) for w in _built(kind, seed=4).weights]
    assert all(not np.allclose(weights[i], other[i]) for i in random)


def test_seeds_differ_per_draw_and_per_model_seed_and_refuse_bad_seeds():
    from recsys_helpers.models import BPRMF, BiasedMF, MultVAE, Seeds
    a, b = Seeds(7), Seeds(7)
    drawn = [a() for _ in range(20)]
    assert drawn == [b() for _ in range(20)] and len(set(drawn)) == 20 and all(0 <= s < 2 ** 31 for s in drawn)
    assert not set(drawn) & {Seeds(8)() for _ in range(20)}
    for make in (lambda s: BiasedMF(2, 2, seed=s), lambda s: BPRMF(2, 2, seed=s), lambda s: MultVAE(seed=s)):
        for seed in ("a", True, 1.5, -1):
            with pytest.raises(TypeError, match="seed must be a whole number"):
                make(seed)


# --------------------------------------------------------------------------------------------- input checks

@pytest.mark.parametrize("kwargs, message", [
    (dict(n_users=0), "n_users must be a positive integer"),
    (dict(n_items=2.5), "n_items must be a positive integer"),
    (dict(n_factors=-1), "n_factors must be a positive integer"),
    (dict(reg=float("nan")), "reg must be a finite number"),
    (dict(reg=-0.1), "reg must be at least 0"),
])
def test_mf_models_name_the_argument_that_is_wrong(kwargs, message):
    from recsys_helpers.models import BPRMF, BiasedMF
    for model in (BPRMF, BiasedMF):
        with pytest.raises(ValueError, match=message):
            model(**{"n_users": 3, "n_items": 4, **kwargs})
    with pytest.raises(ValueError, match="init_std must be positive"):
        BiasedMF(3, 4, init_std=0)
    assert BiasedMF(3.0, 4, n_factors=2.0).n_factors == 2  # a whole float is taken


def test_mf_models_refuse_indices_outside_their_tables_and_scores_before_they_are_built():
    import keras
    from recsys_helpers.models import BPRMF, BiasedMF
    from recsys_helpers.training import NegativeSampling
    bpr = BPRMF(3, 4, 2)
    with pytest.raises(RuntimeError, match="BPRMF has no weights yet"):
        bpr.scores([0])
    with pytest.raises(RuntimeError, match="BiasedMF has no weights yet"):
        BiasedMF(3, 4, 2).scores([0])
    with pytest.raises(IndexError, match="BPRMF: item index 4 is outside its table \\(0 to 3\\)"):
        bpr(np.array([[0, 1, 4]]))
    with pytest.raises(IndexError, match="user index 3 is outside"):
        bpr(np.array([[3, 1, 2]]))
    bpr.compile(optimizer="sgd", loss=lambda y, x: keras.ops.softplus(-x))
    wider = NegativeSampling(sp.csr_matrix(np.eye(3, 5)), 2, seed=0)  # 5 items, the model has 4
    with pytest.raises(IndexError, match="item index 4 is outside its table"):
        bpr.fit(wider, epochs=1, verbose=0)
    mf = BiasedMF(3, 4, 2)
    mf.compile(optimizer="sgd", loss="mse")
    with pytest.raises(IndexError, match="BiasedMF: user index 3 is outside"):
        mf.fit(np.array([[0, 1], [3, 1]]), np.array([4.0, 3.0]), epochs=1, verbose=0)
    with pytest.raises(IndexError, match="item index -1 is outside"):
        mf.predict(np.array([[0, -1]]), verbose=0)
    mf(np.array([[2, 3]]))  # the last user and the last item are in their tables
    bpr(np.array([[2, 3, 3]]))
    assert mf.scores(np.array([2, 0])).shape == (2, 4) and bpr.scores([]).shape == (0, 4)
    for model in (mf, bpr):
        for bad in ([3], [-1]):  # -1 would silently be the last user's scores
            with pytest.raises(IndexError, match="not one of the 3 fitted users"):
                model.scores(bad)
    with pytest.raises(TypeError, match="integer user indices"):
        mf.scores([0.5])


def test_biased_mf_and_bpr_mf_outputs_penalties_and_scores_by_hand():
    import keras
    from recsys_helpers.models import BPRMF, BiasedMF, bpr_loss
    mf = BiasedMF(2, 3, 2, reg=0.5, global_mean=3.5, seed=5)
    pairs = np.array([[1, 2], [0, 0]])
    mf(pairs)
    p, q = mf.user_factors.embeddings.numpy(), mf.item_factors.embeddings.numpy()
    bu, bi = np.array([0.5, -1.0]), np.array([0.25, 0.0, 2.0])
    mf.user_bias.embeddings.assign(bu[:, None])
    mf.item_bias.embeddings.assign(bi[:, None])
    assert np.allclose(mf(pairs), [3.5 - 1.0 + 2.0 + p[1] @ q[2], 3.5 + 0.5 + 0.25 + p[0] @ q[0]], atol=1e-6)
    assert mf.losses == []  # the penalty is paid while training only
    mf(pairs, training=True)
    penalty = [p[u] @ p[u] + q[i] @ q[i] + bu[u] ** 2 + bi[i] ** 2 for u, i in pairs]
    assert float(mf.losses[0]) == pytest.approx(0.5 * np.mean(penalty), rel=1e-5)
    assert np.allclose(mf.scores([1, 0]), 3.5 + bu[[1, 0], None] + bi + p[[1, 0]] @ q.T, atol=1e-6)
    bpr = BPRMF(2, 3, 2, reg=0.1, seed=5)
    triples = np.array([[1, 2, 0], [0, 1, 2]])
    bpr(triples)
    bpr.item_bias.embeddings.assign(bi[:, None])
    P, Q = bpr.user_factors.embeddings.numpy(), bpr.item_factors.embeddings.numpy()
    assert np.allclose(bpr(triples), [P[u] @ (Q[i] - Q[j]) + bi[i] - bi[j] for u, i, j in triples], atol=1e-6)
    bpr(triples, training=True)
    penalty = [P[u] @ P[u] + Q[i] @ Q[i] + Q[j] @ Q[j] + bi[i] ** 2 + bi[j] ** 2 for u, i, j in triples]
    assert float(bpr.losses[0]) == pytest.approx(0.1 * np.mean(penalty), rel=1e-5)
    assert np.allclose(bpr.scores([1]), P[1] @ Q.T + bi, atol=1e-6)
    loss = keras.ops.convert_to_numpy(bpr_loss(None, keras.ops.convert_to_tensor([2.0, -1.0])))
    assert loss == pytest.approx(np.log1p(np.exp([-2.0, 1.0])), rel=1e-5)  # −ln σ(x)
    config = mf.get_config()
    assert config["seed"] == 5 and config["global_mean"] == 3.5 and config["init_std"] == 0.1
    assert BiasedMF.from_config(config).seed == 5


def test_ease_accepts_sparse_input_and_refuses_bad_input():
    from recsys_helpers.models import EASE
    X = (np.random.default_rng(0).random((5, 7)) < 0.4).astype(float)
    dense, sparse = EASE(2.0).fit(X), EASE(2.0).fit(sp.csr_matrix(X))
    assert np.allclose(dense.scores(np.arange(5)), sparse.scores(np.arange(5)))
    assert np.allclose(dense.score_rows(sp.csr_matrix(X[:2])), dense.scores([0, 1]))
    for lam in ("100", True, float("inf"), None):
        with pytest.raises(ValueError, match="positive, finite number"):
            EASE(lam)
    assert EASE(np.float32(3)).lam == 3.0
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        EASE(1.0).fit(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="non-empty 2-D users × items matrix, got shape \\(0, 3\\)"):
        EASE(1.0).fit(np.zeros((0, 3)))
    with pytest.raises(RuntimeError, match="EASE has not been fitted yet: call fit\\(X\\) first"):
        EASE(1.0).scores([0])
    with pytest.raises(RuntimeError, match="not been fitted"):
        EASE(1.0).column(0)
    for bad in ([5], [-1]):
        with pytest.raises(IndexError, match="EASE.scores: user index .* not one of the 5 fitted users"):
            dense.scores(bad)
    for j in (-1, 7, 1.0):
        with pytest.raises(IndexError, match="j must be an item index from 0 to 6"):
            dense.column(j)
    with pytest.raises(ValueError, match="rows holds 1 NaN"):
        dense.score_rows(np.r_[np.nan, np.zeros(6)][None])


@pytest.mark.parametrize("kwargs, message", [
    (dict(factors=2.5), "factors must be a positive integer"),
    (dict(factors="8"), "factors must be a positive integer"),
    (dict(iterations=2.5), "iterations must be a positive integer"),
    (dict(iterations=0), "iterations must be a positive integer"),
    (dict(alpha=float("nan")), "alpha must be a finite number"),
    (dict(alpha=-1), "alpha must be at least 0"),
    (dict(reg=float("inf")), "reg must be a finite number"),
    (dict(reg=-1), "reg must be at least 0"),
    (dict(cg_steps=True), "cg_steps .*must be a positive integer"),
    (dict(cg_steps=1.5), "cg_steps .*must be a positive integer"),
])
def test_wmf_refuses_bad_settings_naming_them(kwargs, message):
    from recsys_helpers.models import WMF
    with pytest.raises(ValueError, match=message):
        WMF(**kwargs)


TINY = pd.DataFrame({"user_id": [1, 1, 2, 3, 3, 3, 4], "item_id": [10, 20, 20, 10, 30, 40, 50]})


def test_wmf_exact_fit_by_hand_and_cg_fit_agree_with_it_tightly():
    """One exact ALS iteration by hand from the seeded start (reg ≠ alpha, so a swapped penalty shows), and a CG fit
    with enough steps to converge agrees with the exact fit to ~1e-8."""
    from recsys_helpers.interactions import train_index
    from recsys_helpers.models import WMF
    C = train_index(TINY).seen.toarray()  # 4 users × 5 items
    alpha, reg, k = 3.0, 0.7, 2
    Y = np.random.default_rng(9).normal(0, 0.01, (5, k))  # the seeded item factors WMF starts from
    def solve(F, R):  # every row r of R: (FᵀF + λI + α F_rᵀF_r) x = (1 + α) F_rᵀ1
        return np.array([np.linalg.solve(F.T @ F + reg * np.eye(k) + alpha * F[r > 0].T @ F[r > 0],
                                         (1 + alpha) * F[r > 0].sum(0)) for r in R])

    X1 = solve(Y, C)
    Y1 = solve(X1, C.T)
    one = WMF(factors=2.0, alpha=alpha, reg=reg, iterations=1, cg_steps=None, seed=9).fit(TINY)
    assert np.allclose(one.user_factors, X1, atol=1e-12) and np.allclose(one.item_factors, Y1, atol=1e-12)
    assert np.allclose(one.scores([0, 3]), X1[[0, 3]] @ Y1.T, atol=1e-12)
    exact = WMF(factors=2, alpha=alpha, reg=reg, iterations=4, cg_steps=None, seed=9).fit(TINY)
    cg = WMF(factors=2, alpha=alpha, reg=reg, iterations=4, cg_steps=8, seed=9).fit(TINY)
    assert np.allclose(cg.user_factors, exact.user_factors, atol=1e-8)
    assert np.allclose(cg.item_factors, exact.item_factors, atol=1e-8)


def test_wmf_is_seeded_and_refuses_scores_it_cannot_give():
    from recsys_helpers.models import WMF
    fit = lambda seed, **kw: WMF(factors=2, iterations=2, seed=seed, **kw).fit(TINY)  # noqa: E731
    assert np.array_equal(fit(1).item_factors, fit(1).item_factors)
    assert not np.allclose(fit(1).item_factors, fit(2).item_factors)
    assert not np.allclose(fit(1, cg_steps=None).item_factors, fit(2, cg_steps=None).item_factors)
    with pytest.raises(TypeError, match="seed must be a whole number"):
        WMF(seed="a")
    with pytest.raises(RuntimeError, match="WMF has not been fitted yet"):
        WMF().scores([0])
    with pytest.raises(IndexError, match="WMF.scores: user index 4 is not one of the 4 fitted users"):
        fit(1).scores([4])
    with pytest.raises(TypeError, match="on_iteration must be a function"):
        WMF(iterations=1).fit(TINY, on_iteration=3)


def test_mult_vae_refuses_bad_settings_and_input_and_accepts_sparse_rows():
    from recsys_helpers.models import MultVAE
    for kwargs, message in [(dict(batch_size=0), "batch_size must be a positive integer"),
                            (dict(hidden=2.5), "hidden must be"), (dict(latent=0), "latent must be"),
                            (dict(anneal_epochs=-1), "anneal_epochs must be an integer of at least 0"),
                            (dict(lr=0), "lr must be positive"), (dict(beta=float("nan")), "beta must be a finite"),
                            (dict(dropout=-0.1), "dropout must be at least 0")]:
        with pytest.raises(ValueError, match=message):
            MultVAE(**kwargs)
    X = np.zeros((8, 6), np.float32)
    X[np.arange(8), np.arange(8) % 6] = 1
    vae = MultVAE(hidden=4, latent=2, batch_size=4, seed=0)
    with pytest.raises(RuntimeError, match="MultVAE has not been fitted yet"):
        vae.scores([0])
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        vae.fit(X, epochs=1.9)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="holds 1 NaN"):
        vae.fit(bad, epochs=1)
    vae.fit(sp.csr_matrix(X), epochs=1)
    # 2 steps per epoch (8 rows, batches of 4); β grows over 20 epochs = 40 steps: before step 2 it was 0.2 · 1/40
    assert vae.model.get_layer("z").beta.numpy() == pytest.approx(0.2 / 40)
    assert np.allclose(vae.scores([1, 2]), vae.score_rows(sp.csr_matrix(X[1:3])), atol=1e-6)
    with pytest.raises(IndexError, match="MultVAE.scores: user index 8"):
        vae.scores([8])
    with pytest.raises(ValueError, match="over the 6 fitted items"):
        vae.score_rows(np.ones((1, 5)))


def test_reparameterise_adds_the_kl_term_and_samples_only_while_training():
    import keras
    from recsys_helpers.models import _Reparameterise
    layer = _Reparameterise(0)
    mu, log_var = np.array([[0.5, -1.0], [0.0, 0.2]], "float32"), np.array([[0.0, 0.4], [-0.3, 0.0]], "float32")
    assert np.array_equal(keras.ops.convert_to_numpy(layer([mu, log_var])), mu)  # z = μ at inference
    layer.beta.assign(0.5)
    layer([mu, log_var])
    kl = 0.5 * np.mean(np.sum(np.exp(log_var) + mu ** 2 - 1 - log_var, axis=1))
    assert float(layer.losses[-1]) == pytest.approx(0.5 * kl, rel=1e-5)
    z = keras.ops.convert_to_numpy(layer([mu, log_var], training=True))
    assert z.shape == mu.shape and not np.allclose(z, mu)


def test_next_item_training_logits_put_the_corrected_true_item_first():
    """Column 0 of ``call`` is each position's true next movie: state · output embedding + its bias − its log q."""
    import keras
    model = _sasrec(0, dropout=0.0)
    history, target = np.array([[0, 1, 2, 3], [0, 0, 4, 5]]), np.array([[1, 2, 3, 4], [0, 4, 5, 6]])
    logits = keras.ops.convert_to_numpy(model({"history": history, "target": target}))
    assert logits.shape == (2, 4, 1 + 3)
    states = keras.ops.convert_to_numpy(model.encode(history))
    out = keras.ops.convert_to_numpy(model.output_embedding.embeddings)
    bias = keras.ops.convert_to_numpy(model.output_bias)
    log_q = np.r_[0.0, model.log_q]
    want = (states * out[target]).sum(-1) + bias[target] - log_q[target]
    assert np.allclose(logits[..., 0], want, atol=1e-5)
    negatives = logits[..., 1:]
    assert (negatives[negatives > -1e8] < 1e3).all()  # (finite scores; a negative equal to the target is -1e9)


def test_sasrec_refuses_bad_settings_and_items_it_does_not_know():
    import keras
    from recsys_helpers.models import sampled_softmax_loss
    for kwargs, message in [(dict(max_len=0), "max_len must be a positive integer"),
                            (dict(blocks=0), "blocks must be"), (dict(heads=5), "heads=5 is more than dim=4"),
                            (dict(dropout=1.0), "dropout must be in \\[0, 1\\)")]:
        with pytest.raises(ValueError, match=message):
            _sasrec(0, **kwargs)
    from recsys_helpers.models import SASRec
    with pytest.raises(ValueError, match="log_q holds 1 NaN"):
        SASRec(N, np.r_[np.nan, np.zeros(N - 1)], np.zeros(N + 1))
    with pytest.raises(ValueError, match="n_items must be a positive integer"):
        SASRec(0, [], [0.0])
    model = _sasrec(0)
    model.compile(optimizer="adam", loss=sampled_softmax_loss)
    with pytest.raises(IndexError, match="target value .* 7 is outside its table \\(0 to 6\\)"):
        model.fit({"history": np.array([[0, 1, 2, 3]]), "target": np.array([[1, 2, 3, 7]])}, np.zeros((1, 4)),
                  epochs=1, verbose=0)
    assert model.scores_next([0], [np.array([0, 5])]).shape == (1, N)
    with pytest.raises(IndexError, match="SASRec.scores_next: the histories hold item index 6, but the model knows 6"):
        model.scores_next([0], [np.array([1, 6])])
    assert keras.ops.convert_to_numpy(model.output_bias).shape == (N + 1,)


# --------------------------------------------------------------------------------------------- training utilities

SEEN = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [1, 0, 0, 1, 1], [0, 1, 0, 0, 0],
                               [0, 0, 0, 1, 0], [1, 0, 1, 0, 0]], dtype=float))


def test_negative_sampling_triples_pairs_shuffling_and_redraws():
    from recsys_helpers.training import NegativeSampling
    seen = SEEN.toarray() > 0
    triples = NegativeSampling(SEEN, batch_size=6, negatives=2, kind="triples", seed=0)
    assert len(triples) == 4  # 10 interactions × 2 negatives = 20 triples in batches of 6, 6, 6, 2
    batches = [triples[b] for b in range(len(triples))]
    x = np.concatenate([b[0] for b in batches])
    assert x.shape == (20, 3) and x.dtype == np.int32 and [len(b[0]) for b in batches] == [6, 6, 6, 2]
    assert all(np.array_equal(b[1], np.zeros(len(b[0]))) for b in batches)  # (the labels BPR ignores)
    assert seen[x[:, 0], x[:, 1]].all() and not seen[x[:, 0], x[:, 2]].any()  # a positive and an unseen negative
    assert sorted(map(tuple, x[:, :2].tolist())) == sorted(2 * list(zip(*SEEN.nonzero())))  # each positive twice
    assert (np.diff(x[:, 0]) < 0).any()  # shuffled: not in user order
    triples.on_epoch_end()
    y = np.concatenate([triples[b][0] for b in range(len(triples))])
    assert not np.array_equal(x, y)  # another order (and other negatives) next epoch
    again = NegativeSampling(SEEN.toarray(), batch_size=6, negatives=2, kind="triples", seed=0)  # a dense seen too
    assert np.array_equal(np.concatenate([again[b][0] for b in range(len(again))]), x)
    unseen = sp.hstack([SEEN, sp.csr_matrix((6, 1))]).tocsr()  # item 5: nobody saw it, and p puts all mass there
    only_five = NegativeSampling(unseen, batch_size=100, negatives=1, p=np.eye(6)[5], seed=0)[0][0]
    assert (only_five[:, 2] == 5).all()
    pairs = NegativeSampling(SEEN, batch_size=100, negatives=3, kind="pairs", seed=1)
    inputs, labels = pairs[0]
    assert len(labels) == 10 * 4 and labels.sum() == 10
    assert np.array_equal(seen[inputs["user"], inputs["item"]], labels == 1)
    assert (np.diff(inputs["user"][labels == 1]) < 0).any()


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(seed="a"), TypeError, "seed must be a whole number"),
    (dict(seed=True), TypeError, "seed must be a whole number"),
    (dict(kind="triple"), ValueError, "kind must be 'triples' or 'pairs'"),
    (dict(batch_size=0), ValueError, "batch_size must be a positive integer"),
    (dict(negatives=2.5), ValueError, "negatives must be a positive integer"),
])
def test_negative_sampling_refuses_bad_settings(kwargs, error, message):
    from recsys_helpers.training import NegativeSampling
    with pytest.raises(error, match=message):
        NegativeSampling(SEEN, **kwargs)


def test_negative_sampling_refuses_a_seen_that_is_not_a_matrix():
    from recsys_helpers.training import NegativeSampling
    with pytest.raises(ValueError, match="seen must be the 2-D users × items training matrix"):
        NegativeSampling(np.ones(4))
    with pytest.raises(ValueError, match="no interaction to train on"):
        NegativeSampling(np.zeros((2, 3)))


def _tiny_fit(callback, epochs, model=None):
    """Fit a one-weight Keras model for ``epochs`` epochs with ``callback``; returns the model."""
    import keras
    keras.utils.set_random_seed(0)
    model = model or keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(np.ones((4, 2)), np.arange(4.0)[:, None], epochs=epochs, verbose=0, callbacks=[callback])
    return model


def test_validation_check_refuses_a_score_that_is_not_one_number():
    from recsys_helpers.training import ValidationCheck
    for value in (np.array([0.1, 0.2]), None, "0.3", True, {"ndcg@10": 0.2}):
        with pytest.raises(TypeError, match="score\\(\\) must return one number"):
            _tiny_fit(ValidationCheck(lambda: value), 1)
    for value in (float("inf"), -np.inf):
        with pytest.raises(ValueError, match="the validation score is -?inf after epoch 1: training has diverged"):
            _tiny_fit(ValidationCheck(lambda: value), 1)
    check = ValidationCheck(lambda: np.float32(0.25))
    _tiny_fit(check, 1)
    assert check.history == [0.25]


def test_validation_check_reused_for_a_second_fit_starts_afresh():
    from recsys_helpers.training import ValidationCheck
    scripted, weights = iter([0.9, 0.1, 0.2, 0.3, 0.25]), []
    model = None

    def score():
        weights.append([w.copy() for w in model.get_weights()])
        return next(scripted)

    import keras
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    check = ValidationCheck(score, patience=5)
    _tiny_fit(check, 1, model)
    assert check.history == [0.9] and check.best_epoch == 1
    _tiny_fit(check, 4, model)  # the same check again: the first fit's 0.9 must not count
    assert check.history == [0.1, 0.2, 0.3, 0.25] and check.epochs == [1, 2, 3, 4] and check.best_epoch == 3
    for got, want in zip(model.get_weights(), weights[3]):  # the second fit's best weights, restored
        assert np.array_equal(got, want)


def test_ranking_early_stopping_stops_after_exactly_patience_checks(monkeypatch):
    """Scripted NDCG per check: the best (0.3) comes at epoch 4; with every=2 and patience=2 the checks after epochs
    6 and 8 bring nothing new, so training stops after epoch 8 (not 10) and epoch 4's weights come back."""
    import keras
    from recsys_helpers import training
    from recsys_helpers.training import RankingEarlyStopping
    scripted, weights, calls = iter([0.1, 0.3, 0.3, 0.2, 0.9, 0.9]), {}, []
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

    def fake_evaluate(m, frame, val, k):
        calls.append((frame, val, k))
        weights[len(calls)] = [w.copy() for w in m.get_weights()]
        return {"ndcg@5": next(scripted), "recall@5": 0.0}

    monkeypatch.setattr(training, "evaluate_ranking", fake_evaluate)
    stop = RankingEarlyStopping("F", "V", every=2, patience=2, k=5.0)
    assert stop.k == 5 and stop.metric == "ndcg@5"
    _tiny_fit(stop, 20, model)
    assert stop.checks == {2: 0.1, 4: 0.3, 6: 0.3, 8: 0.2} and calls[0] == ("F", "V", 5)
    for got, want in zip(model.get_weights(), weights[2]):
        assert np.array_equal(got, want)
    assert not np.array_equal(weights[2][0], weights[4][0])  # (the weights did change between checks)
    scripted = iter([0.05, 0.01, 0.02, 0.9])
    _tiny_fit(stop, 20, model)  # the same callback for another fit: the first fit's checks are forgotten
    assert stop.checks == {2: 0.05, 4: 0.01, 6: 0.02}
    for got, want in zip(model.get_weights(), weights[5]):  # and its own best weights come back
        assert np.array_equal(got, want)
    scripted = iter([0.5, 0.4, 0.6, 0.1, 0.1])
    recall = RankingEarlyStopping("F", "V", patience=1, k=5, metric="recall")
    monkeypatch.setattr(training, "evaluate_ranking", lambda m, f, v, k: {"recall@5": next(scripted)})
    _tiny_fit(recall, 20, model)
    assert recall.checks == {1: 0.5, 2: 0.4}  # patience 1: the first check without a new best stops it


def test_ranking_early_stopping_refuses_bad_settings(synthetic):
    from recsys_helpers.training import RankingEarlyStopping, early_stopping

    with pytest.raises(ValueError, match="metric must be one of"):
        RankingEarlyStopping(synthetic.ratings, synthetic.ratings, metric="ndgc")
    with pytest.raises(ValueError, match="patience"):
        RankingEarlyStopping(synthetic.ratings, synthetic.ratings, patience=0)
    for k in (True, 2.5, 0):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            RankingEarlyStopping(synthetic.ratings, synthetic.ratings, k=k)
    with pytest.raises(ValueError, match="every"):
        RankingEarlyStopping(synthetic.ratings, synthetic.ratings, every=0)
    with pytest.raises(ValueError, match="mode must be 'auto', 'min' or 'max'"):
        early_stopping("val_rmse", mode="mni")
    stop = early_stopping("val_ndcg", patience=2, mode="max")
    assert stop.patience == 2 and stop.restore_best_weights and stop.monitor == "val_ndcg" and stop.mode == "max"


# --------------------------------------------------------------------------------------------- models that learn (slow)

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
