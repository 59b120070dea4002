"""Item content as text, and the text CNN that reads it (taught in notebook 05, §2–§3; reused by notebook 06's
behaviour + content hybrid).

- ``clean``: lower case, punctuation to spaces, single spaces.
- ``movie_documents(items, tags=None)``: one document per movie, as a Series indexed by ``item_id``: the title words
  (the year in brackets dropped; a missing title gives no word), the genres as tokens of their own (``g_comedy``,
  ``g_sci_fi``; ``genres`` holds a list of genre names per movie, as the loader gives, never the raw
  ``'Comedy|Drama'`` string), the release year and decade as tokens (``y_1995 d_1990s``) and, when ``tags`` is given,
  the words of the tags users gave the movie (in the file's order, each word once; a missing tag gives no word).
  Tags are interactions: leave them out wherever a protocol forbids interactions with an item.
- ``text_cnn``: Kim's (2014) convolutional text encoder as a Keras functional model: word embeddings, one ``Conv1D``
  per filter width with ReLU and max-over-time pooling, dropout, a dense ReLU layer and a linear output.

Importing ``text_cnn`` imports Keras (and so TensorFlow); the document functions do not.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .checks import require_columns, require_finite, require_positive_int, require_seed

NO_GENRE = "(no genres listed)"


def clean(text) -> str:
    """Lower case, punctuation to spaces, single spaces."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", str(text).lower())).strip()


def tag_words(tags: pd.DataFrame) -> pd.Series:
    """The words of each tagged item's tags, in the file's order, each word once (a Series indexed by item_id).
    A data set without tags (ml-100k, ml-1m: an empty frame) gives an empty Series."""
    if isinstance(tags, pd.DataFrame) and tags.empty and {"item_id", "tag"} <= set(tags.columns):
        return pd.Series(dtype=object, name="tag")
    require_columns(tags, ["item_id", "tag"], "tags")
    tags = tags.dropna(subset=["tag"])  # a missing tag (NaN, None) has no words, not the word 'nan'
    return tags.assign(tag=tags["tag"].map(clean)).groupby("item_id")["tag"].agg(
        lambda words: " ".join(dict.fromkeys(" ".join(words).split())))


def movie_documents(items: pd.DataFrame, tags: pd.DataFrame | None = None) -> pd.Series:
    """One document per movie of ``items`` (a loader's ``items`` frame), indexed by ``item_id``; see the module
    docstring for what it contains. With ``tags``, each document ends with its movie's tag words."""
    require_columns(items, ["item_id", "title", "genres", "year"], "items")
    if items["item_id"].duplicated().any():
        raise ValueError("items has repeated item_id values; a movie must appear once to have one document")
    catalogue = items.set_index("item_id")
    not_lists = catalogue["genres"].map(lambda gs: not isinstance(gs, (list, tuple, set, frozenset, np.ndarray)))
    if not_lists.any():
        item = not_lists.idxmax()
        raise TypeError(f"items['genres'] must hold a list of genre names per movie (as load_movielens gives), got "
                        f"{catalogue['genres'][item]!r} for item {item}; split a 'Comedy|Drama' string first, "
                        "items.assign(genres=items['genres'].str.split('|')), and use [] for no genre")
    titles = catalogue["title"].fillna("").astype(str).str.replace(r"\s*\(\d{4}\)\s*$", "", regex=True).map(clean)
    genres = catalogue["genres"].map(
        lambda gs: " ".join("g_" + clean(g).replace(" ", "_") for g in gs if g != NO_GENRE))
    years = catalogue["year"].map(lambda y: "" if pd.isna(y) else f"y_{int(y)} d_{int(y) // 10 * 10}s")
    text = (titles + " " + genres + " " + years).str.split().str.join(" ")
    if tags is not None:
        text = (text + " " + tag_words(tags).reindex(text.index).fillna("").to_numpy()).str.strip()
    return text.rename("document")


def text_cnn(doc_len: int, n_words: int, n_out: int, embed_dim: int = 64, widths=(1, 2, 3), n_filters: int = 100,
             hidden: int = 128, dropout: float = 0.1, name: str = "text_cnn", seed: int | None = None):
    """Kim's text CNN: (batch, ``doc_len``) word ids (0 = padding) → (batch, ``n_out``), linear output.

    ``n_words`` is the vocabulary size (``len(vectorize.get_vocabulary())``): every word id must be below it. A larger
    id is not checked here: on a CPU TensorFlow raises ``indices[i, j] = 60 is not in [0, 50)``, and on a GPU its
    embedding lookup is reported to return zeros without an error, so build the ids with the same vocabulary.

    ``seed``: each Embedding, Conv1D and Dense layer gets its own initializer object with its own seed, and the
    dropout layer its own seed, all drawn from ``seed``, so the same seed builds the same model whatever Keras's global
    seed (an initializer object shared by two layers would start them equal: in Keras 3 an instance returns the same
    values on every call). ``None`` draws them from Keras's global seed (``keras.utils.set_random_seed``)."""
    import keras
    from keras import initializers, layers

    doc_len, n_words = require_positive_int(doc_len, "doc_len"), require_positive_int(n_words, "n_words")
    if not widths or any(int(w) != w or w < 1 or w > doc_len for w in widths):
        raise ValueError(f"widths must be filter widths between 1 and doc_len = {doc_len}, got {list(widths)}")
    if not 0 <= require_finite(dropout, "dropout") < 1:
        raise ValueError(f"dropout must be a rate in [0, 1), got {dropout}")
    # one seed per layer, well apart from those of a model built with seed + 1 (SeedSequence mixes the seed)
    seeds = iter([None] * (len(widths) + 4) if seed is None else
                 np.random.SeedSequence(require_seed(seed)).generate_state(len(widths) + 4).tolist())
    words = keras.Input(shape=(doc_len,), dtype="int32", name="document")
    x = layers.Embedding(n_words, require_positive_int(embed_dim, "embed_dim"), name="word_embedding",
                         embeddings_initializer=initializers.RandomUniform(-0.05, 0.05, seed=next(seeds)))(words)
    pooled = [layers.GlobalMaxPooling1D(name=f"max_over_time_{w}")(
        layers.Conv1D(require_positive_int(n_filters, "n_filters"), w, activation="relu", name=f"conv_width_{w}",
                      kernel_initializer=initializers.GlorotUniform(seed=next(seeds)))(x))
        for w in widths]
    h = layers.Concatenate(name="n_gram_features")(pooled) if len(pooled) > 1 else pooled[0]
    h = layers.Dropout(dropout, seed=next(seeds))(h)
    h = layers.Dense(require_positive_int(hidden, "hidden"), activation="relu", name="hidden",
                     kernel_initializer=initializers.GlorotUniform(seed=next(seeds)))(h)
    out = layers.Dense(require_positive_int(n_out, "n_out"), name="item_vector",
                       kernel_initializer=initializers.GlorotUniform(seed=next(seeds)))(h)
    return keras.Model(words, out, name=name)
