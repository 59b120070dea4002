"""Keras behaviour the course's model code depends on (pinned in pyproject.toml; a new Keras that changes it fails here
before it silently changes a notebook's numbers)."""
import numpy as np

from recsys_helpers import env


def test_activity_regularizer_is_averaged_over_the_batch():
    """Notebook 04's embeddings pay an L2 penalty per example through ``activity_regularizer``; Keras averages it over
    the batch from 3.14 on (3.12 and 3.13 summed it: a penalty thousands of times stronger at NCF's batch sizes)."""
    env.import_tensorflow()
    import keras

    layer = keras.layers.Embedding(10, 2, embeddings_initializer="ones",
                                   activity_regularizer=keras.regularizers.L2(1.0))
    layer(np.array([0, 1, 2, 3]))
    (penalty,) = layer.losses
    assert float(penalty) == 2.0  # each row's squared norm is 2: the mean over 4 rows, not their sum (8)


def test_an_initializer_gives_the_same_values_every_time_it_is_called():
    """Why every table of the course's models gets its own seed (``models.Seeds``): in Keras 3 one initializer
    instance called twice, or two seeded with the same number, return the same values, and a longer table with the
    same seed starts with the shorter one's values (so two embeddings sharing one would start equal)."""
    env.import_tensorflow()
    import keras

    init = keras.initializers.RandomNormal(stddev=0.1)  # unseeded, as BiasedMF's once was
    assert np.array_equal(np.asarray(init((5, 4))), np.asarray(init((5, 4))))
    short = np.asarray(keras.initializers.RandomNormal(seed=3)((5, 4)))
    long = np.asarray(keras.initializers.RandomNormal(seed=3)((7, 4)))
    assert np.array_equal(short, long[:5])


def test_multi_head_attention_builds_its_kernels_through_the_hook_sasrec_seeds():
    """``models._SeededAttention`` gives MultiHeadAttention's query, key, value and output kernels their own seeds
    through ``_get_common_kwargs_for_sublayer`` (Keras clones one kernel initializer for all four)."""
    env.import_tensorflow()
    from recsys_helpers.models import Seeds, _SeededAttention

    layer = _SeededAttention(2, 3, seeds=Seeds(0))
    x = np.ones((1, 4, 6), "float32")
    layer(x, x)
    kernels = [np.asarray(w).ravel() for w in layer.weights if w.path.endswith("kernel")]
    assert len(kernels) == 4
    assert all(not np.array_equal(a[:18], b[:18]) for i, a in enumerate(kernels) for b in kernels[i + 1:])
