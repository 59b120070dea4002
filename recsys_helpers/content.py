"""Item content as text, and the text CNN that reads it (taught in notebook 05, §2–§3; reused by notebook 06's
behaviour + content hybrid).

- ``clean``: lower case, punctuation to spaces, single spaces.
- ``movie_documents(items, tags=None)``: one document per movie, as a Series indexed by ``item_id``: the title words
  (the year in brackets dropped), the genres as tokens of their own (``g_comedy``, ``g_sci_fi``), the release year
  and decade as tokens (``y_1995 d_1990s``) and, when ``tags`` is given, the words of the tags users gave the movie
  (in the file's order, each word once). Tags are interactions: leave them out wherever a protocol forbids
  interactions with an item.
- ``text_cnn``: Kim's (2014) convolutional text encoder as a Keras functional model: word embeddings, one ``Conv1D``
  per filter width with ReLU and max-over-time pooling, dropout, a dense ReLU layer and a linear output.

Importing ``text_cnn`` imports Keras (and so TensorFlow); the document functions do not.
"""
from __future__ import annotations

import re

import pandas as pd

from .checks import require_columns, require_positive_int

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
    return tags.assign(tag=tags["tag"].map(clean)).groupby("item_id")["tag"].agg(
        lambda words: " ".join(dict.fromkeys(" ".join(words).split())))


def movie_documents(items: pd.DataFrame, tags: pd.DataFrame | None = None) -> pd.Series:
    """One document per movie of ``items`` (a loader's ``items`` frame), indexed by ``item_id``; see the module
    docstring for what it contains. With ``tags``, each document ends with its movie's tag words."""
    require_columns(items, ["item_id", "title", "genres", "year"], "items")
    if items["item_id"].duplicated().any():
        raise ValueError("items has repeated item_id values; a movie must appear once to have one document")
    catalogue = items.set_index("item_id")
    titles = catalogue["title"].astype(str).str.replace(r"\s*\(\d{4}\)\s*$", "", regex=True).map(clean)
    genres = catalogue["genres"].map(
        lambda gs: " ".join("g_" + clean(g).replace(" ", "_") for g in gs if g != NO_GENRE))
    years = catalogue["year"].map(lambda y: "" if pd.isna(y) else f"y_{int(y)} d_{int(y) // 10 * 10}s")
    text = (titles + " " + genres + " " + years).str.split().str.join(" ")
    if tags is not None:
        text = (text + " " + tag_words(tags).reindex(text.index).fillna("").to_numpy()).str.strip()
    return text.rename("document")


def text_cnn(doc_len: int, n_words: int, n_out: int, embed_dim: int = 64, widths=(1, 2, 3), n_filters: int = 100,
             hidden: int = 128, dropout: float = 0.1, name: str = "text_cnn"):
    """Kim's text CNN: (batch, ``doc_len``) word ids (0 = padding) → (batch, ``n_out``), linear output."""
    import keras
    from keras import layers

    doc_len, n_words = require_positive_int(doc_len, "doc_len"), require_positive_int(n_words, "n_words")
    if not widths or any(int(w) != w or w < 1 or w > doc_len for w in widths):
        raise ValueError(f"widths must be filter widths between 1 and doc_len = {doc_len}, got {list(widths)}")
    words = keras.Input(shape=(doc_len,), dtype="int32", name="document")
    x = layers.Embedding(n_words, require_positive_int(embed_dim, "embed_dim"), name="word_embedding")(words)
    pooled = [layers.GlobalMaxPooling1D(name=f"max_over_time_{w}")(
        layers.Conv1D(require_positive_int(n_filters, "n_filters"), w, activation="relu", name=f"conv_width_{w}")(x))
        for w in widths]
    h = layers.Dropout(dropout)(layers.Concatenate(name="n_gram_features")(pooled) if len(pooled) > 1 else pooled[0])
    h = layers.Dense(require_positive_int(hidden, "hidden"), activation="relu", name="hidden")(h)
    return keras.Model(words, layers.Dense(require_positive_int(n_out, "n_out"), name="item_vector")(h), name=name)
