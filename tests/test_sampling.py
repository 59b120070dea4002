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
