"""recsys_helpers.sampling and the per-epoch data source in recsys_helpers.training."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_helpers.interactions import train_index
from recsys_helpers.sampling import (pair_keys, is_seen, popularity_probabilities, sample_negatives,
                                     sampled_candidates)

TOY = sp.csr_matrix(np.array([[1, 1, 1, 0],  # user 0 has seen items 0, 1, 2: only item 3 is free
                              [0, 1, 1, 1],  # user 1: only item 0 is free
                              [0, 0, 0, 0]]))  # user 2: everything is free


def test_only_unseen_items_on_a_toy_matrix():
    neg = sample_negatives(TOY, [0, 1, 0], 4, np.random.default_rng(1))
    assert neg.tolist() == [[3] * 4, [0] * 4, [3] * 4]
    pop = sample_negatives(TOY, [0, 1], 3, np.random.default_rng(1), popularity_probabilities(TOY))
    assert pop.tolist() == [[3] * 3, [0] * 3]


def test_same_seed_same_draws_and_every_item_reachable():
    a = sample_negatives(TOY, [2] * 50, 4, np.random.default_rng(7))
    b = sample_negatives(TOY, [2] * 50, 4, np.random.default_rng(7))
    assert (a == b).all() and set(np.unique(a)) == {0, 1, 2, 3}


def test_bad_input_is_refused():
    full = sp.csr_matrix(np.ones((2, 3)))
    with pytest.raises(ValueError, match="interacted with every item"):
        sample_negatives(full, [0], 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        sample_negatives(TOY, [0], 0, np.random.default_rng(0))
    with pytest.raises(IndexError, match="0..2"):
        sample_negatives(TOY, [3], 1, np.random.default_rng(0))
    with pytest.raises(TypeError, match="sparse matrix"):
        sample_negatives(TOY.toarray(), [0], 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="sum to 1"):
        sample_negatives(TOY, [0], 1, np.random.default_rng(0), p=np.ones(4))
    with pytest.raises(ValueError, match="only 1 unseen item.*fewer than the 2 distinct"):
        sampled_candidates(TOY, [0], 2, np.random.default_rng(0))


def test_popularity_sampling_gives_up_on_rejection_and_still_draws_right():
    # item 0 has almost all the probability and user 0 has seen it: rejection alone would take many rounds
    seen = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]]))
    p = np.array([0.998, 0.001, 0.001])
    neg = sample_negatives(seen, [0] * 200, 5, np.random.default_rng(0), p, max_rounds=2)
    assert set(np.unique(neg)) <= {1, 2}


def test_sampled_candidates_are_distinct_and_unseen():
    neg = sampled_candidates(TOY, [2, 2], 3, np.random.default_rng(0))
    assert all(len(set(row)) == 3 for row in neg.tolist())
    assert sampled_candidates(TOY, [0], 1, np.random.default_rng(0)).tolist() == [[3]]


def test_user_indices_must_be_integers():
    """0.9 was silently taken as user 0; a boolean mask as users 0 and 1 (S1)."""
    rng = np.random.default_rng(0)
    for bad in ([0.9, 1.9], [True, False], ["0"], [np.nan]):
        with pytest.raises(TypeError, match="users must be integer indices"):
            sample_negatives(TOY, bad, 3, rng)
        with pytest.raises(TypeError, match="users must be integer indices"):
            sampled_candidates(TOY, bad, 1, rng)
    with pytest.raises(TypeError, match="users must be integer indices"):
        is_seen(pair_keys(TOY), 4, [0.5], [3])
    assert sample_negatives(TOY, [1.0, 0.0], 2, rng).tolist() == [[0, 0], [3, 3]]  # whole floats are indices
    assert sample_negatives(TOY, np.array([1, 0], dtype=np.int32), 1, rng).tolist() == [[0], [3]]
    assert sample_negatives(TOY, [], 2, rng).shape == (0, 2)
    # TOY's keys are user * 4 + item: 0, 1, 2, 5, 6, 7; (1, 3) is the last key, (2, 0) lies beyond it
    assert pair_keys(TOY).tolist() == [0, 1, 2, 5, 6, 7]
    assert is_seen(pair_keys(TOY), 4, [0, 0, 1, 1, 2], [2, 3, 0, 3, 0]).tolist() == [True, False, False, True, False]


def test_rng_n_and_max_rounds_are_checked():
    """rng=42 was an AttributeError; n=True was taken as 1; n='abc' or None was a raw int() error (S2-S5)."""
    rng = np.random.default_rng(0)
    for fn in (sample_negatives, sampled_candidates):
        with pytest.raises(TypeError, match="rng must be a numpy Generator, e.g. np.random.default_rng"):
            fn(TOY, [0], 1, 42)
        for bad in (True, "abc", None, 2.5, 0, np.nan):
            with pytest.raises(ValueError, match="n must be a positive integer"):
                fn(TOY, [2], bad, rng)
    for bad in (-1, 2.5, True, None):
        with pytest.raises(ValueError, match="max_rounds must be an integer of at least 0"):
            sample_negatives(TOY, [0], 1, rng, max_rounds=bad)
    assert sample_negatives(TOY, [2], 2.0, rng).shape == (1, 2)


def _one_free_item():
    """100 items: user 0 has seen all but item 57; user 1 has seen items 0-9; user 2 nothing."""
    dense = np.zeros((3, 100))
    dense[0] = 1
    dense[0, 57] = 0
    dense[1, :10] = 1
    return dense


@pytest.mark.parametrize("fmt", [sp.csc_matrix, sp.coo_matrix, sp.csr_array, sp.csc_array, sp.lil_matrix])
def test_any_sparse_format_is_read_with_users_as_rows(fmt):
    """The exact fallback read a CSC row's indices as items and returned seen items; COO and csr_array were raw
    tracebacks (S8, S8b, S8c)."""
    dense = _one_free_item()
    seen = fmt(dense)
    rng = np.random.default_rng(0)
    assert (sample_negatives(seen, [0] * 20, 5, rng, max_rounds=0) == 57).all()  # the fallback alone
    assert (sample_negatives(seen, [0] * 20, 5, rng) == 57).all()
    p = popularity_probabilities(seen, 0.5)
    assert np.allclose(p, popularity_probabilities(sp.csr_matrix(dense), 0.5))
    assert (sample_negatives(seen, [0] * 5, 5, rng, p=np.full(100, 0.01), max_rounds=0) == 57).all()
    assert sampled_candidates(seen, [0, 0], 1, rng).tolist() == [[57], [57]]
    assert set(sampled_candidates(seen, [1], 90, rng)[0]) == set(range(10, 100))
    assert (pair_keys(seen) == pair_keys(sp.csr_matrix(dense))).all()
    with pytest.raises(TypeError, match="sparse matrix"):
        sample_negatives(dense, [0], 1, rng)


def test_every_stored_pair_is_seen_once():
    # a CSR matrix built by hand with item 1 stored twice for the user: 2 of 3 items are still free
    seen = sp.csr_matrix((np.ones(2), np.array([1, 1]), np.array([0, 2])), shape=(1, 3))
    assert sorted(sampled_candidates(seen, [0], 2, np.random.default_rng(0))[0]) == [0, 2]
    assert seen.nnz == 2 and seen.indices.tolist() == [1, 1]  # the caller's matrix is left as it was
    # an explicitly stored 0 (item 1 of user 0) is a seen pair for both samplers, as the free-item count says
    zero = sp.csr_matrix((np.array([1.0, 0.0]), np.array([0, 1]), np.array([0, 2, 2])), shape=(2, 3))
    assert (sampled_candidates(zero, [0] * 30, 1, np.random.default_rng(0)) == 2).all()
    assert (sample_negatives(zero, [0] * 30, 2, np.random.default_rng(0)) == 2).all()


def test_popularity_power_against_values_worked_by_hand():
    """TOY's items have 1, 2, 2 and 1 interactions; each probability is count ** power over the sum (mut-S2)."""
    r2 = np.sqrt(2)
    expected = {1: [1 / 6, 1 / 3, 1 / 3, 1 / 6], 2: [0.1, 0.4, 0.4, 0.1], 0: [0.25] * 4,
                0.5: [1 / (2 + 2 * r2), r2 / (2 + 2 * r2), r2 / (2 + 2 * r2), 1 / (2 + 2 * r2)],
                -1: [1 / 3, 1 / 6, 1 / 6, 1 / 3]}
    for power, probs in expected.items():
        assert popularity_probabilities(TOY, power) == pytest.approx(probs)
    assert popularity_probabilities(TOY) == pytest.approx(expected[1])  # the default power is 1
    counts = sp.csr_matrix(np.array([[3, 1, 0], [1, 0, 0]]))  # counts, not only 0/1: item 0 has 4, item 1 has 1
    assert popularity_probabilities(counts, 0.5) == pytest.approx([2 / 3, 1 / 3, 0])


def test_popularity_power_that_cannot_give_probabilities_is_refused():
    """power=nan gave all NaN; a negative power with an item nobody saw gave [0, 0, nan] (S11, S12)."""
    for bad in (np.nan, np.inf, "0.75", None, True):
        with pytest.raises(ValueError, match="power must be a finite number"):
            popularity_probabilities(TOY, bad)
    empty_column = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0]]))
    with pytest.raises(ValueError, match="power=-1.0 is negative and item index 2 has no interaction"):
        popularity_probabilities(empty_column, -1)
    assert popularity_probabilities(empty_column, 0) == pytest.approx([1 / 3] * 3)
    with pytest.raises(ValueError, match="no item has any interaction"):
        popularity_probabilities(sp.csr_matrix((2, 3)))
    with pytest.raises(ValueError, match="negative values"):
        popularity_probabilities(sp.csr_matrix(np.array([[1, -1, 0]])))
    with pytest.raises(TypeError, match="sparse matrix"):
        popularity_probabilities(np.ones((2, 3)))


def test_draws_follow_their_distribution_on_a_toy_matrix():
    """Uniform draws are uniform over the catalogue; the exact fallback draws a user's unseen items in proportion
    to p restricted to them (here 0.3 : 0.2, so 60% : 40%)."""
    uniform = sample_negatives(TOY, [2] * 2000, 4, np.random.default_rng(3))
    assert np.abs(np.bincount(uniform.ravel(), minlength=4) / uniform.size - 0.25).max() < 0.02
    seen = sp.csr_matrix(np.array([[1, 0, 0]]))
    p = np.array([0.5, 0.3, 0.2])
    for rounds in (0, 50):
        neg = sample_negatives(seen, [0] * 4000, 1, np.random.default_rng(4), p, max_rounds=rounds)
        assert set(np.unique(neg)) == {1, 2} and abs((neg == 1).mean() - 0.6) < 0.03
    for bad in (np.array([np.nan, 0.5, 0.5]), np.array([1.5, -0.5, 0.0]), np.array([0.5, 0.5]), np.ones(3)):
        with pytest.raises(ValueError, match="p must be 3 finite, non-negative probabilities that sum to 1"):
            sample_negatives(seen, [0], 1, np.random.default_rng(0), bad)
    with pytest.raises(ValueError, match="no unseen item with a positive sampling probability"):
        sample_negatives(seen, [0], 1, np.random.default_rng(0), np.array([1.0, 0, 0]), max_rounds=2)


def test_sampled_candidates_are_uniform_over_the_unseen_items():
    """Sampled candidates are a uniform draw without replacement of each user's unseen items: over many users they
    cover the whole catalogue and their mean index is the catalogue's middle (a sampler that takes the
    lowest-index unseen items covers 167 of 8,992 movies, mean index 52: mut-S4)."""
    rng = np.random.default_rng(5)
    seen = sp.random(300, 1000, density=0.05, format="csr", random_state=5)
    seen.data[:] = 1
    cand = sampled_candidates(seen, np.arange(300), 50, rng)
    assert cand.shape == (300, 50)
    assert all(len(set(row)) == 50 for row in cand.tolist())
    assert not seen[np.repeat(np.arange(300), 50), cand.ravel()].any()  # no seen item
    assert len(np.unique(cand)) == 1000  # each item is expected about 14 times: all are drawn
    assert abs(cand.mean() - 499.5) < 15  # standard error of the mean ≈ 2.4
    # one user, 6 free items of 10, 3 drawn: each free item is in 3 of 6 draws, so in half of the 6,000 lists
    one = sp.csr_matrix(np.array([[1, 0, 1, 0, 0, 1, 0, 0, 1, 0]]))
    many = sampled_candidates(one, [0] * 6000, 3, rng)
    share = np.bincount(many.ravel(), minlength=10) / 6000
    assert share[[0, 2, 5, 8]].sum() == 0 and np.abs(share[[1, 3, 4, 6, 7, 9]] - 0.5).max() < 0.03
    assert sorted(sampled_candidates(one, [0], 6, rng)[0]) == [1, 3, 4, 6, 7, 9]  # every free item
    assert sorted(sampled_candidates(TOY, [2], 4, rng)[0]) == [0, 1, 2, 3]  # n = the whole catalogue


@pytest.fixture(scope="module")
def seen(standard_split):
    return train_index(standard_split[0]).seen


def test_a_million_draws_never_hit_a_seen_item(seen):
    users = np.arange(seen.shape[0])
    for p in (None, popularity_probabilities(seen)):
        neg = sample_negatives(seen, users, 1640, np.random.default_rng(0), p)  # 610 × 1,640 ≈ 10⁶ draws
        assert neg.size >= 1_000_000
        assert not is_seen(pair_keys(seen), seen.shape[1], np.repeat(users, 1640), neg.ravel()).any()


def test_popularity_sampling_follows_its_target(seen):
    """The 100 most popular items are drawn within 5% of their target frequency: p restricted to each user's
    unseen items (what rejection sampling draws from), averaged over the users."""
    p = popularity_probabilities(seen)
    per_user = 6_600  # 610 users × 6,600 ≈ 4 × 10⁶ draws: sampling noise ≈ 1-2% per item
    neg = sample_negatives(seen, np.arange(seen.shape[0]), per_user, np.random.default_rng(0), p)
    dense = seen.toarray().astype(bool)
    target = ((~dense) * p / (1 - (dense * p).sum(axis=1, keepdims=True))).mean(axis=0)
    freq = np.bincount(neg.ravel(), minlength=seen.shape[1]) / neg.size
    top = np.argsort(-p)[:100]
    assert np.abs(freq[top] / target[top] - 1).max() < 0.05
    assert freq[top].sum() > 0.1  # the popular items really are drawn far more often than uniform (100/9,724)


def test_negative_sampling_dataset_redraws_every_epoch():
    from recsys_helpers.training import NegativeSampling

    seen = sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0]]))
    triples = NegativeSampling(seen, batch_size=4, negatives=50, kind="triples", seed=0)
    assert len(triples) == int(np.ceil(3 * 50 / 4))
    x, y = triples[0]
    assert x.shape == (4, 3) and (y == 0).all()
    first = triples.items[:, 1].copy()
    assert not seen[triples.users, triples.items[:, 1]].any()  # no negative is a seen item
    triples.on_epoch_end()
    assert not (np.sort(first) == np.sort(triples.items[:, 1])).all()  # fresh negatives
    pairs = NegativeSampling(seen, batch_size=8, negatives=2, kind="pairs", seed=0)
    x, y = pairs[0]
    assert set(x) == {"user", "item"} and pairs.labels.sum() == 3 and len(pairs.labels) == 9
    with pytest.raises(ValueError, match="kind must be"):
        NegativeSampling(seen, kind="quads")
