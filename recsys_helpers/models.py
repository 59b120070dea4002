"""Models taught in a notebook and reused by later ones (the notebook that teaches each walks through it).

- ``BiasedMF`` (notebook 03): r̂(u, i) = μ + b_u + b_i + p_u · q_i, trained on explicit ratings with an L2
  penalty on the embeddings. Inputs are ``(n, 2)`` integer arrays of ``[user_index, item_index]`` in
  ``IdMap.from_train(train)`` order.
"""
from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="recsys_helpers")
class BiasedMF(keras.Model):
    """Biased matrix factorisation: global mean + user bias + item bias + dot product of factors."""

    def __init__(self, n_users: int, n_items: int, n_factors: int = 32, reg: float = 1e-4,
                 global_mean: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.n_users, self.n_items, self.n_factors = n_users, n_items, n_factors
        self.reg, self.global_mean = reg, global_mean
        init = keras.initializers.RandomNormal(stddev=0.05)
        self.user_factors = layers.Embedding(n_users, n_factors, embeddings_initializer=init,
                                             embeddings_regularizer=keras.regularizers.L2(reg), name="user_factors")
        self.item_factors = layers.Embedding(n_items, n_factors, embeddings_initializer=init,
                                             embeddings_regularizer=keras.regularizers.L2(reg), name="item_factors")
        self.user_bias = layers.Embedding(n_users, 1, embeddings_initializer="zeros",
                                          embeddings_regularizer=keras.regularizers.L2(reg), name="user_bias")
        self.item_bias = layers.Embedding(n_items, 1, embeddings_initializer="zeros",
                                          embeddings_regularizer=keras.regularizers.L2(reg), name="item_bias")

    def call(self, pairs):
        users, items = pairs[:, 0], pairs[:, 1]
        dot = ops.sum(self.user_factors(users) * self.item_factors(items), axis=-1)
        return self.global_mean + ops.squeeze(self.user_bias(users), -1) + ops.squeeze(self.item_bias(items), -1) + dot

    def score_all(self, user_idx):
        """Scores of every item for the users ``user_idx``: an (n, n_items) array for the top-K protocol."""
        p = ops.convert_to_numpy(self.user_factors.embeddings)[user_idx]
        q = ops.convert_to_numpy(self.item_factors.embeddings)
        bu = ops.convert_to_numpy(self.user_bias.embeddings)[user_idx]
        bi = ops.convert_to_numpy(self.item_bias.embeddings)[:, 0]
        return self.global_mean + bu + bi[None, :] + p @ q.T

    def get_config(self):
        return {**super().get_config(), "n_users": self.n_users, "n_items": self.n_items,
                "n_factors": self.n_factors, "reg": self.reg, "global_mean": self.global_mean}
