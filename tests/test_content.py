"""Movie documents and the text CNN (recsys_helpers.content), checked on hand-made catalogue rows."""
import numpy as np
import pandas as pd
import pytest

from recsys_helpers.content import clean, movie_documents, tag_words, text_cnn


@pytest.fixture
def items():
    return pd.DataFrame({"item_id": [1, 2, 3], "title": ["Toy Story (1995)", "Sci-Fi: The Return!", "Heat (1995)"],
                         "genres": [["Animation", "Children"], ["Sci-Fi", "Film-Noir"], ["(no genres listed)"]],
                         "year": pd.array([1995, pd.NA, 1995], dtype="Int64")})


def test_documents_hold_title_words_genre_and_year_tokens(items):
    docs = movie_documents(items)
    assert docs.to_dict() == {1: "toy story g_animation g_children y_1995 d_1990s",
                              2: "sci fi the return g_sci_fi g_film_noir", 3: "heat y_1995 d_1990s"}
    assert clean("  Hello,   World!! ") == "hello world"


def test_tags_come_last_each_word_once_in_file_order_and_only_where_given(items):
    tags = pd.DataFrame({"user_id": [7, 8, 7], "item_id": [3, 3, 1], "tag": ["Al Pacino", "pacino, heist", "Pixar"]})
    assert tag_words(tags).to_dict() == {1: "pixar", 3: "al pacino heist"}
    docs = movie_documents(items, tags)
    assert docs[3] == "heat y_1995 d_1990s al pacino heist"
    assert docs[2] == "sci fi the return g_sci_fi g_film_noir"  # no tags: no trailing space


def test_a_data_set_without_tags_gives_the_plain_documents(items):
    no_tags = pd.DataFrame({"user_id": [], "item_id": [], "tag": [], "timestamp": []})  # ml-100k and ml-1m
    assert tag_words(no_tags).empty
    assert movie_documents(items, no_tags).equals(movie_documents(items))
    with pytest.raises(ValueError, match="tag"):
        tag_words(pd.DataFrame({"item_id": [1]}))


def test_documents_refuse_repeated_items_and_missing_columns(items):
    with pytest.raises(ValueError, match="repeated item_id"):
        movie_documents(pd.concat([items, items]))
    with pytest.raises(ValueError, match="genres"):
        movie_documents(items.drop(columns="genres"))


def test_text_cnn_max_pools_over_time_and_refuses_a_filter_wider_than_the_document():
    import keras

    keras.utils.set_random_seed(0)
    model = text_cnn(doc_len=6, n_words=20, n_out=4, embed_dim=8, widths=(1, 2), n_filters=5, hidden=7)
    assert model.output_shape == (None, 4)
    pooled = keras.Model(model.input, model.get_layer("n_gram_features").output)
    doc = np.array([[3, 4, 5, 0, 0, 0]])
    shifted = np.array([[0, 0, 0, 3, 4, 5]])  # the same trigram elsewhere: max-over-time cannot tell where it was
    features = [keras.ops.convert_to_numpy(pooled(d)) for d in (doc, shifted)]
    assert features[0].shape == (1, 10)
    assert np.all(features[0] >= 0)
    assert np.allclose(features[0][:, :5], features[1][:, :5])  # width 1: the padding's embedding is the same word
    with pytest.raises(ValueError, match="widths"):
        text_cnn(doc_len=3, n_words=20, n_out=4, widths=(2, 4))
