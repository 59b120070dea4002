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
