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
    conv = keras.Model(model.input, model.get_layer("conv_width_2").output)
    assert np.allclose(features[0][:, 5:], keras.ops.convert_to_numpy(conv(doc)).max(axis=1))  # the max over time
    docs = np.random.default_rng(0).integers(0, 20, (8, 6))
    assert keras.ops.convert_to_numpy(conv(docs)).min() == 0  # a ReLU convolution: some n-grams are cut to 0
    hidden = keras.ops.convert_to_numpy(keras.Model(model.input, model.get_layer("hidden").output)(docs))
    assert hidden.min() >= 0 and hidden.max() > 0  # a ReLU layer
    assert keras.ops.convert_to_numpy(model(docs)).min() < 0  # a linear output
    with pytest.raises(ValueError, match="widths"):
        text_cnn(doc_len=3, n_words=20, n_out=4, widths=(2, 4))


# --- issue 25: inputs that used to give wrong documents or a model that depends on the global seed ------------------

def test_documents_refuse_genres_as_strings_and_drop_missing_titles(items):
    raw = items.assign(genres=["Animation|Children", "Sci-Fi|Film-Noir", "(no genres listed)"])
    with pytest.raises(TypeError, match="list of genre names.*'Animation\\|Children' for item 1.*str.split"):
        movie_documents(raw)  # the letters became genres: 'g_a g_n g_i ...'
    with pytest.raises(TypeError, match="got nan for item 2"):
        movie_documents(items.assign(genres=[["Animation"], np.nan, []]))
    # tuples, sets and arrays of names are lists of genres too
    other = items.assign(genres=[("Animation", "Children"), np.array(["Sci-Fi", "Film-Noir"]), set()])
    assert movie_documents(other).equals(movie_documents(items))
    no_titles = items.assign(title=[np.nan, None, "Heat (1995)"])  # both were the word 'nan'
    assert movie_documents(no_titles).to_dict() == {1: "g_animation g_children y_1995 d_1990s",
                                                    2: "g_sci_fi g_film_noir", 3: "heat y_1995 d_1990s"}


def test_missing_tags_have_no_words(items):
    tags = pd.DataFrame({"user_id": [7, 8, 7, 9], "item_id": [1, 1, 2, 3],
                         "tag": [np.nan, "Fun", None, "Nan"]})  # 'Nan' is a word someone typed; NaN is no tag
    assert tag_words(tags).to_dict() == {1: "fun", 3: "nan"}  # was {1: 'nan fun', 2: 'nan', 3: 'nan'}
    docs = movie_documents(items, tags)
    assert docs[1] == "toy story g_animation g_children y_1995 d_1990s fun"
    assert docs[2] == "sci fi the return g_sci_fi g_film_noir"
    only_missing = pd.DataFrame({"user_id": [7], "item_id": [1], "tag": [None]})
    assert tag_words(only_missing).empty
    assert movie_documents(items, only_missing).equals(movie_documents(items))


def test_text_cnn_refuses_a_bool_vocabulary_a_bad_seed_and_a_bad_dropout():
    for bad in (True, 0, 2.5):
        with pytest.raises(ValueError, match="n_words must be a positive integer"):
            text_cnn(doc_len=4, n_words=bad, n_out=2)  # True was a 1-word vocabulary
    for bad in (True, 1.5, -1, "7"):
        with pytest.raises(TypeError, match="seed must be a whole number"):
            text_cnn(doc_len=4, n_words=10, n_out=2, seed=bad)
    for bad in (1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="dropout must be a rate in \\[0, 1\\)"):
            text_cnn(doc_len=4, n_words=10, n_out=2, dropout=bad)
    with pytest.raises(ValueError, match="dropout must be a finite number"):
        text_cnn(doc_len=4, n_words=10, n_out=2, dropout=np.nan)
    tiny = text_cnn(doc_len=3, n_words=10, n_out=2, widths=(3,), dropout=0.0, name="tiny")  # a filter as wide as
    assert tiny.output_shape == (None, 2) and tiny.name == "tiny"  # the document is allowed


def test_text_cnn_seeds_every_layer_on_its_own():
    import itertools

    import keras

    def weights(model):
        return dict(zip([w.path for w in model.weights], model.get_weights()))

    shape = dict(doc_len=6, n_words=40, n_out=4, embed_dim=8, widths=(1, 2, 3), n_filters=8, hidden=8)
    keras.utils.set_random_seed(1)
    a = text_cnn(**shape, seed=7)
    keras.utils.set_random_seed(2)  # the global seed plays no part once seed is given
    b, c = text_cnn(**shape, seed=7), text_cnn(**shape, seed=8)
    wa, wb, wc = weights(a), weights(b), weights(c)
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[p], wb[p]) for p in wa)  # the same seed, the same model
    tables = [p for p in wa if not p.endswith("bias")]  # the biases start at 0 by design
    assert len(tables) == 6  # the embedding, three Conv1D kernels, two Dense kernels
    assert wa["word_embedding/embeddings"].shape == (40, 8)  # one row per word id, 0 .. n_words - 1

    def copies(x, y):
        """Whether two tables start equal or as scaled copies (one initializer, or one seed, used twice)."""
        m = min(x.size, y.size)
        return abs(np.corrcoef(x.ravel()[:m], y.ravel()[:m])[0, 1]) > 0.9

    for p, q in itertools.combinations(tables, 2):
        assert not copies(wa[p], wa[q]), (p, q)
    for p, q in itertools.product(tables, tables):  # another seed: other tables, none shared with seed 7's
        assert not copies(wa[p], wc[q]), (p, q)
    doc = np.array([[3, 4, 5, 6, 7, 8]])
    masked = [keras.ops.convert_to_numpy(m(doc, training=True)) for m in (a, b)]
    assert np.array_equal(*masked)  # the same dropout mask too
    assert not np.array_equal(masked[0], keras.ops.convert_to_numpy(a(doc)))  # and dropout does drop in training
    keras.utils.set_random_seed(3)
    d = text_cnn(**shape)
    keras.utils.set_random_seed(3)
    e = text_cnn(**shape)
    assert all(np.array_equal(x, y) for x, y in zip(d.get_weights(), e.get_weights()))  # None: the global seed
