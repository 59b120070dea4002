# %% [markdown]
# # 11 · Two-stage recommenders: factorisation machines, two towers, LightGCN, and a learned ranker
#
# Every chapter so far trained one model and ranked the whole catalogue with it. Production recommenders are built
# differently (Covington, Adams and Sargin, 2016): a cheap **retrieval** stage narrows the catalogue to a few hundred
# candidates per user, and a **ranking** stage orders those candidates with everything known about the user and the
# movie. The retrieval models must be fast over millions of items (dot products of user and item vectors); the ranker
# sees only a few hundred items, so it can afford many features and a model that combines them. This capstone builds
# such a system on MovieLens and asks whether it beats the course's strongest single model, EASE (notebook 07).
#
# **In this notebook you will**
# - derive the factorisation machine (FM) and its $O(kn)$ identity, check it against the naive sum, and train an FM
#   with side features (user activity, genres, year, tag words) as a retrieval model;
# - write one cross layer of DCN-v2 by hand and check it against KerasRS's `FeatureCross`;
# - train a two-tower model with an in-batch softmax, derive the logQ correction and see what it is worth, remove
#   accidental hits (and find that KerasRS 0.4.0's layer for it leaves the logits unchanged), and score new movies
#   from content alone;
# - train LightGCN (embedding propagation over the user–movie graph) and measure what propagation adds over plain MF;
# - measure the recall of each retriever and of their union at 50 to 500 candidates;
# - train rankers without leakage (a pointwise MLP, DeepFM, DCN-v2 with a pairwise and a listwise loss, and
#   LightGBM's LambdaMART) at equal tuning budgets, and evaluate the whole pipeline on the standard protocol against
#   EASE with paired-bootstrap intervals, with an ablation of its retrievers and features;
# - serve retrieval + ranking over HTTP and measure its latency per user.
#
# **The result, up front.** The chapter set out to beat EASE by 4% (NDCG@10 ≥ 0.39, with a paired-bootstrap interval
# against EASE above zero). At this notebook's budget it does not: the best pipeline (LambdaMART) scores 0.3669 on test
# against EASE's 0.3745, and EASE is ahead by 0.0076 with an interval that barely excludes zero (not rechecked with
# other seeds), although the pipeline was ahead on the validation users that chose it (0.2260 against 0.2139). §6's
# ablation shows where the gain stops. Every neural retriever here stopped at its epoch cap, so whether a longer
# training budget changes the verdict waits for the reference run, which has not been made yet.
#
# **Prerequisites:** notebooks 01 (the protocols, the paired bootstrap), 02 (item-kNN), 03 (WMF, BPR), 05 (movie
# content, the cold-start protocol), 07 (EASE) and 10 (the service pattern).
# **Time:** about 6 minutes on a 2-core CPU at the default parameters (no GPU needed), over the course's 4-minute
# budget.

# %% tags=["parameters"]
SEED = 42  # seeds every random number generator and every split
DATASET = "ml-latest-small"
SMOKE = False  # True: one-point grids and an epoch or two, for a quick end-to-end check
USERS = 0  # 0: every user of DATASET; n > 0 keeps the n users with the smallest ids (the smoke test keeps 150)
PROFILE = "laptop"  # "laptop": the default, about 6 minutes on 2 cores; "reference": every model trained until it stops
K = 10  # cut-off of the ranking metrics (@10)
TEST_FRAC = 0.2  # the course's standard split: stratified_split(ratings, TEST_FRAC, SEED)
VAL_FRAC = 0.2  # validation split carved from train: every setting is chosen on it, never on test
N_BOOTSTRAP = 1000  # resamples of users in the paired bootstraps
# §0 the models to beat
EASE_GRID = [100, 200, 400]  # EASE's λ values tried on validation (notebook 07's choice: 200)
KNN_SETTINGS = {"k": 50, "alpha": 0.5}  # notebook 02's top-K item-kNN
WMF_SETTINGS = {"factors": 128, "alpha": 3.0, "reg": 30.0, "iterations": 20}  # notebook 03's choice on validation
# §1–§3 the neural retrievers: all trained with the in-batch softmax of §1
DIM = 64  # embedding size of the FM, the towers and LightGCN
BATCH = 1024  # interactions per step: each positive meets BATCH − 1 in-batch negatives
TEMPERATURE = 0.2  # τ: logits are cosine similarities / τ (tools/tuning/nb11_retriever_search.csv)
LR = 3e-3  # Adam's learning rate for the FM and the two towers
GCN_LR = 5e-3  # ... and for LightGCN and its 0-layer twin
GCN_LAYERS = 2  # LightGCN's propagation layers
MAX_EPOCHS = 4  # cap of every retriever's epochs; early stopping on validation NDCG ends a run sooner
PATIENCE = 1  # checks without a new best before a run stops
ID_DROPOUT = 0.3  # share of movie-ID embeddings dropped while training the cold-start towers (content must carry them)
COLD_EPOCHS = 3  # epochs of the cold-start two-tower (its own split: no validation of its own)
# §4–§5 candidates and rankers
CANDIDATES = 100  # movies each retriever contributes per user (not tuned: §4's recall table shows the trade-off)
RECALL_KS = [50, 100, 200, 500]  # candidate counts of the recall curves
RANKER_VAL_SHARE = 0.2  # share of the users whose validation labels early-stop and choose the rankers
TREE_GRID = [{"num_leaves": 15, "learning_rate": 0.05}]  # LambdaMART's settings tried on validation ...
DEEP_GRID = [{"learning_rate": 3e-3}]  # ... and every deep ranker's: grids of the same size (2 in the reference)
MAX_TREES = 400  # LambdaMART's cap (early stopping after 30 trees without a new best)
RANKER_MAX_EPOCHS = 8  # the deep rankers' cap
RANKER_BATCH = 16  # users (lists) per step of the deep rankers
# §6 serving
LOAD_REQUESTS = 200  # requests of the latency test

# %%
if PROFILE == "reference":  # every model at its validation-chosen setting, trained until early stopping ends it
    MAX_EPOCHS, PATIENCE, RANKER_MAX_EPOCHS, MAX_TREES, COLD_EPOCHS = 12, 2, 20, 1000, 6
    TREE_GRID = [{"num_leaves": 15, "learning_rate": 0.05}, {"num_leaves": 63, "learning_rate": 0.05}]
    DEEP_GRID = [{"learning_rate": 1e-3}, {"learning_rate": 3e-3}]
    LOAD_REQUESTS = 300

# %%
if SMOKE:  # a quick end-to-end check (the tests use it): the same steps on one-point grids and an epoch or two
    EASE_GRID, MAX_EPOCHS, PATIENCE, COLD_EPOCHS, CANDIDATES, RECALL_KS = [200], 1, 1, 1, 20, [10, 20]
    TREE_GRID, DEEP_GRID, MAX_TREES, RANKER_MAX_EPOCHS = TREE_GRID[:1], DEEP_GRID[:1], 10, 1
    WMF_SETTINGS = {**WMF_SETTINGS, "factors": 8, "iterations": 1}
    KNN_SETTINGS = {**KNN_SETTINGS, "k": 20}
    DIM, GCN_LAYERS, RANKER_BATCH = 16, 1, 64  # smaller embeddings, one propagation layer, fewer ranker steps
    N_BOOTSTRAP, LOAD_REQUESTS, USERS = 100, 10, 150  # paired_bootstrap needs n_boot >= 100

# %%
from recsys_helpers import env

tf, results = env.start_notebook("11_two_stage_recommenders", SEED, profile=PROFILE)
import socket, threading, time

import keras
from keras import layers, ops
import keras_rs
import lightgbm as lgb
import numpy as np, pandas as pd, scipy.sparse as sp, matplotlib.pyplot as plt
from IPython.display import display

from recsys_helpers import training
from recsys_helpers.baselines import GenreProfile, ItemKNN, Popularity
from recsys_helpers.content import tag_words
from recsys_helpers.data import load_movielens
from recsys_helpers.evaluation import Timer, evaluate_cold_start, evaluate_ranking, paired_bootstrap
from recsys_helpers.exercises import check
from recsys_helpers.interactions import IdMap
from recsys_helpers.models import EASE, WMF, Seeds
from recsys_helpers.split import cold_start_split, stratified_split

pd.set_option("display.width", 200)
pd.set_option("display.max_columns", 30)

# %% [markdown]
# ## 0. Data, splits and the models to beat
# The ranking protocol on the standard split: every rating is an interaction, and each test user's unseen movies
# are ranked in full. Two stages need two levels of held-out data, so the split is used twice:
# - **validation** (`inner` → `val`, 20% of each user's training interactions): every retriever's setting is chosen
#   here, and the **ranker learns here**: retrievers fitted on `inner` propose candidates, and `val` says which of
#   them the user really watched;
# - **test** (`train` → `test`): the retrievers are refitted on all of `train`, and the ranker, which never saw a
#   test interaction, orders their candidates.
#
# The models to beat: popularity, notebook 02's item-kNN, notebook 03's WMF at its validated settings, and EASE
# with its λ chosen on validation here. Every model below keeps its per-user test NDCG for the paired bootstraps.

# %%
data = load_movielens(DATASET)
ratings = data.ratings
if USERS:  # a smaller problem for quick checks: the USERS users with the smallest ids
    ratings = ratings[ratings.user_id.isin(np.sort(ratings.user_id.unique())[:USERS])]
n_users_all, n_items_all = ratings.user_id.nunique(), ratings.item_id.nunique()
env.require_memory(12 * 8 * n_users_all * n_items_all, "a dozen dense user × movie score matrices", DATASET)
train, test = stratified_split(ratings, TEST_FRAC, SEED)
inner, val = stratified_split(train, VAL_FRAC, SEED)
titles = data.items.set_index("item_id")["title"]
ids_in, ids_tr = IdMap.from_train(inner), IdMap.from_train(train)
X_in = ids_in.interactions(inner).tocsr().astype(np.float32)
X_tr = ids_tr.interactions(train).tocsr().astype(np.float32)
X_in.data[:], X_tr.data[:] = 1.0, 1.0  # interactions, whatever the rating
print(f"train: {X_tr.shape[0]} users × {X_tr.shape[1]:,} movies, {X_tr.nnz:,} interactions; "
      f"inner: {X_in.nnz:,}, validation: {len(val):,}, test: {len(test):,}")

val_ndcg, test_rows, per_user, seconds, budgets, boots = {}, {}, {}, {}, {}, {}


def validation_ndcg(scores, frame=val):
    """NDCG@K on (part of) the validation split, for a model fitted on inner."""
    return evaluate_ranking(scores, inner, frame, K)[f"ndcg@{K}"]


def test_ranking(name, scores, train_seconds, budget=None):
    """Evaluate a model fitted on train on the test split; keep its metrics and per-user NDCG."""
    test_rows[name] = evaluate_ranking(scores, train, test, K)
    per_user[name] = evaluate_ranking(scores, train, test, K, per_user=True)[f"ndcg@{K}"]
    seconds[name], budgets[name] = train_seconds, budget
    return test_rows[name][f"ndcg@{K}"]


def versus(a, b, metric_a=None, metric_b=None):
    """Paired bootstrap of per-user test NDCG, A − B; the verdict is stored with the notebook's records."""
    boot = boots[a, b] = paired_bootstrap(per_user[a] if metric_a is None else metric_a,
                                          per_user[b] if metric_b is None else metric_b,
                                          n_boot=N_BOOTSTRAP, seed=SEED, names=(a, b))
    return results.compare(boot, "ranking", f"ndcg@{K}")

# %%
with Timer() as t:
    test_ranking("Popularity", Popularity().fit(train), t.seconds)
ease_grid = {lam: validation_ndcg(EASE(lam).fit(X_in)) for lam in EASE_GRID}
EASE_LAMBDA = max(ease_grid, key=ease_grid.get)
with Timer() as t:
    ease_in, ease = EASE(EASE_LAMBDA).fit(X_in), EASE(EASE_LAMBDA).fit(X_tr)
test_ranking("EASE", ease, t.seconds / 2, f"{len(EASE_GRID)} λ values (closed form)")
val_ndcg["EASE"] = ease_grid[EASE_LAMBDA]
with Timer() as t:
    knn_in, knn = ItemKNN(**KNN_SETTINGS).fit(inner), ItemKNN(**KNN_SETTINGS).fit(train)
test_ranking("Item-kNN", knn, t.seconds / 2, "notebook 02's k and α")
val_ndcg["Item-kNN"] = validation_ndcg(knn_in)
with Timer() as t:
    wmf = WMF(seed=SEED, **WMF_SETTINGS).fit(train)
test_ranking("WMF", wmf, t.seconds, f"{WMF_SETTINGS['iterations']} ALS iterations (notebook 03's settings)")
print("EASE λ on validation:", {lam: round(v, 4) for lam, v in ease_grid.items()}, "→ λ =", EASE_LAMBDA)
display(pd.DataFrame(test_rows).T[[f"ndcg@{K}", f"recall@{K}", f"coverage@{K}"]].round(4))

# %% [markdown]
# EASE leads the four. Its NDCG@10 is the number this notebook has to beat: a single model, no features beyond who
# watched what, one matrix inverse.
#
# ## 1. Factorisation machines
# A factorisation machine (Rendle, 2010) describes an example by a sparse feature vector $x \in \mathbb{R}^n$: one-hot
# fields for the user and the movie, and as many side features as you like (the user's activity, the movie's genres,
# its decade, its tag words). It scores
# $$\hat y(x) = w_0 + \sum_{f=1}^{n} w_f x_f + \sum_{f=1}^{n}\sum_{g=f+1}^{n} \langle v_f, v_g\rangle\, x_f x_g,$$
# with one $k$-dimensional vector $v_f$ per feature. Every pair of features interacts through the dot product of
# their vectors, so a pair never seen together still gets a weight. With only a user and a movie field,
# $x$ has two ones and the FM is exactly matrix factorisation, $w_0 + w_u + w_i + \langle v_u, v_i \rangle$.
#
# **The $O(kn)$ identity.** The double sum has $n(n-1)/2$ terms. Write $\sum_{f<g} a_{fg} = \frac12\big(\sum_{f,g}
# a_{fg} - \sum_f a_{ff}\big)$ with $a_{fg} = \langle v_f, v_g\rangle x_f x_g$ (symmetric in $f$ and $g$), and use
# $\sum_{f,g} \langle v_f, v_g\rangle x_f x_g = \big\langle \sum_f v_f x_f, \sum_g v_g x_g \big\rangle =
# \big\lVert \sum_f v_f x_f \big\rVert^2$:
# $$\sum_{f<g} \langle v_f, v_g\rangle x_f x_g = \frac12 \sum_{d=1}^{k}\Big[\Big(\sum_f v_{fd}\, x_f\Big)^2 -
# \sum_f v_{fd}^2\, x_f^2\Big].$$
# Two sums over the features per dimension: $O(kn)$, and $O(k\,m)$ for an $x$ with $m$ non-zeros. The cell checks it
# against the naive double loop on random numbers.

# %%
def fm_pairwise_naive(x, V):
    """Σ_{f<g} <v_f, v_g> x_f x_g by the double loop: O(k n²)."""
    n = len(x)
    return sum(V[f] @ V[g] * x[f] * x[g] for f in range(n) for g in range(f + 1, n))


def fm_pairwise_fast(x, V):
    """The same by the identity: ½ Σ_d [(Σ_f v_fd x_f)² − Σ_f v_fd² x_f²], O(k n)."""
    s = x @ V
    return 0.5 * float(np.sum(s ** 2 - (x ** 2) @ (V ** 2)))


rng = np.random.default_rng(SEED)
x_demo, V_demo = rng.random(60) * (rng.random(60) < 0.3), rng.normal(size=(60, 8))
naive, fast = fm_pairwise_naive(x_demo, V_demo), fm_pairwise_fast(x_demo, V_demo)
print(f"naive {naive:.10f}, identity {fast:.10f}, difference {abs(naive - fast):.1e}")

# %% [markdown]
# **An FM for retrieval.** Split the features into a user side $x^U$ (user ID, activity level) and a movie side
# $x^M$ (movie ID, genres, decade, tag words). The pairwise sum splits into user–user, movie–movie and user–movie
# pairs, and the user–movie pairs sum to one dot product:
# $$\hat y(u, i) = \underbrace{\text{const}_u}_{\text{user alone}} + \underbrace{w^{M\top} x^M_i +
# \tfrac12\big(\lVert M_i\rVert^2 - \textstyle\sum_f \lVert v_f\rVert^2 (x^M_{if})^2\big)}_{\text{movie alone: a bias } b_i}
# + \langle U_u, M_i \rangle,$$
# $$U_u = \sum_f v_f x^U_{uf}, \qquad M_i = \sum_f v_f x^M_{if},$$
# where $\text{const}_u$ gathers $w_0$, the user side's linear terms and its user–user pairs. It is the same for
# every movie, so it cannot change a user's ranking: an FM ranks movies by a movie bias plus the dot product of a
# **user vector** and a **movie vector**, each a sum of its features' vectors. Every movie's vector can be computed
# once and searched by nearest-neighbour search (notebook 10; the bias rides along as one more coordinate,
# $[M_i, b_i]$ against $[U_u, 1]$): the FM is a two-tower model whose towers are sums. The class below builds it that
# way, with the movie bias computed by the identity. First the side features, then the loss that trains every
# retrieval model of this notebook.

# %%
def content_matrix(items, ids, tags, n_words=300):
    """Movie side features in the id map's order: genres (multi-hot), decade (one-hot), the n_words most frequent tag
    words (binary). Tags are interactions: pass only the tags that the protocol allows."""
    table = items.set_index("item_id").reindex(ids.item_ids)
    genres = sorted({g for gs in table.genres.dropna() for g in gs if g != "(no genres listed)"})
    G = np.array([[g in gs for g in genres] if isinstance(gs, list) else [False] * len(genres)
                  for gs in table.genres], np.float32).reshape(len(table), len(genres))
    decade = (table.year.fillna(0) // 10 * 10).astype(int).to_numpy()
    decades = np.unique(decade)
    D = (decade[:, None] == decades[None, :]).astype(np.float32)
    words = tag_words(tags).reindex(ids.item_ids).fillna("")
    vocabulary = pd.Series(" ".join(words).split()).value_counts().index[:n_words]
    column = {w: j for j, w in enumerate(vocabulary)}
    W = np.zeros((len(table), len(vocabulary)), np.float32)
    for row, text in enumerate(words):
        W[row, [column[w] for w in text.split() if w in column]] = 1.0
    return np.hstack([G, D, W]), genres


content_in, genres = content_matrix(data.items, ids_in, data.tags)
content_tr, _ = content_matrix(data.items, ids_tr, data.tags)
print(f"{content_tr.shape[1]} side features: {len(genres)} genres, then decades and tag words; a movie has "
      f"{np.count_nonzero(content_tr, axis=1).mean():.1f} of them on average")

# %% [markdown]
# ### Training a retrieval model: the in-batch softmax and the logQ correction
# A retrieval model should put a user's movies above all others, so its natural loss is the softmax over the
# catalogue, $-\log \frac{e^{s(u,i)}}{Z_u}$ with $Z_u = \sum_{j} e^{s(u,j)}$. The sum over every movie is too costly at
# scale; the **in-batch softmax** (Yi et al., 2019) replaces it by the other movies of the same batch of $B$ (user,
# movie) pairs: row $b$'s logits are $s(u_b, i_1), \dots, s(u_b, i_B)$, and its own movie $i_b$ is the right answer.
#
# The batch's movies are not a uniform sample: a movie fills a batch slot with probability $q_j$, its share of the
# interactions. Why that calls for a correction: $Z_u$ is an expectation under $q$,
# $$Z_u = \sum_j q_j \frac{e^{s(u,j)}}{q_j} = \mathbb{E}_{j \sim q}\Big[e^{s(u,j) - \log q_j}\Big]
# \approx \frac1B \sum_{c=1}^{B} e^{s(u, i_c) - \log q_{i_c}},$$
# so the batch's logits, each shifted by $-\log q$, sum to $B$ times an estimate of the full softmax's denominator
# (importance sampling; Bengio and Senécal, 2008). Neither the constant $B$ nor a shift of the numerator's logit by
# the constant $-\log q_{i_b}$ changes the gradients, so the whole batch's logit matrix can be shifted at once:
# $$\ell_b = -\log \frac{e^{s(u_b, i_b) - \log q_{i_b}}}{\sum_{c=1}^{B} e^{s(u_b, i_c) - \log q_{i_c}}}.$$
# Without the shift, the batch's sum over-weights popular movies: every popular movie is pushed down once per batch
# it appears in as a negative, and the model learns "popular means wrong". Two more details: a movie that appears
# twice in a batch would be its own negative (an **accidental hit**); its duplicate logits are masked. And the
# two-tower's and LightGCN's logits are cosine similarities divided by a temperature $\tau$ (`TEMPERATURE`), which sets
# how peaked the softmax can get (the FM's are its raw scores).

# %%
def in_batch_softmax(_, logits):
    """Cross-entropy of each row's own movie (the diagonal) against the batch's other movies; labels unused."""
    return keras.losses.sparse_categorical_crossentropy(ops.arange(ops.shape(logits)[0]), logits, from_logits=True)


def batch_logits(user_vectors, item_vectors, items, log_q, temperature=1.0):
    """(B, B) logits of every user of the batch against every movie of the batch, logQ-corrected, accidental hits
    masked (a movie that is also a row's own movie, at another column)."""
    logits = ops.matmul(user_vectors, ops.transpose(item_vectors)) / temperature
    if log_q is not None:
        logits = logits - ops.take(log_q, items)[None, :]
    same = ops.equal(items[:, None], items[None, :]) & ~ops.eye(ops.shape(items)[0], dtype="bool")
    return ops.where(same, -1e9, logits)


def log_popularity(X):
    """log q_j: each movie's share of the interactions (the chance that a batch slot holds it)."""
    counts = np.asarray(X.sum(0)).ravel()
    return np.log(np.maximum(counts, 1) / counts.sum()).astype(np.float32)


SPLITS = {"inner": (X_in, content_in, ids_in), "train": (X_tr, content_tr, ids_tr)}
epoch_logs = {}  # model -> training.EpochLog of its validation run


def fit_retriever(make, split, lr, epochs=None):
    """Train make(split) on the split's interactions. epochs=None (on inner): validation NDCG after every epoch,
    early stopping, best weights kept. Otherwise train for that many epochs (the refit on train)."""
    keras.utils.set_random_seed(SEED)
    X = SPLITS[split][0]
    model = make(split)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=in_batch_softmax, steps_per_execution=8)
    u, i = X.nonzero()
    pairs, dummy = {"user": u.astype("int32"), "item": i.astype("int32")}, np.zeros(len(u), np.float32)
    stopper = training.ValidationCheck(lambda: validation_ndcg(model), PATIENCE) if epochs is None else None
    model.fit(pairs, dummy, batch_size=BATCH, epochs=epochs or MAX_EPOCHS, verbose=0,
              callbacks=[stopper] if stopper else [])
    return model, stopper

# %% [markdown]
# Every neural retriever of this notebook goes through the same two steps: fitted on `inner` with validation NDCG
# checked after every epoch (early stopping keeps the best epoch), then refitted on all of `train` for that many
# epochs, and evaluated once on test.

# %%
def retriever(name, make, lr=LR):
    """Early-stopped on validation (fitted on inner), then refitted on train for the chosen number of epochs."""
    with Timer() as t:
        model_in, stopper = fit_retriever(make, "inner", lr)
        model = fit_retriever(make, "train", lr, stopper.best_epoch)[0]
    val_ndcg[name] = max(stopper.history)
    epoch_logs[name] = training.EpochLog(len(stopper.history), stopper.best_epoch, MAX_EPOCHS)
    budget = f"≤ {MAX_EPOCHS} epochs, patience {PATIENCE}, then a refit"
    ndcg = test_ranking(name, model, t.seconds, budget)
    print(f"{name}: best epoch {stopper.best_epoch} of {len(stopper.history)} (cap {MAX_EPOCHS}), validation NDCG@{K} "
          f"{val_ndcg[name]:.4f}, test {ndcg:.4f} ({t.seconds:.0f} s for both fits)")
    return model_in, model

# %% [markdown]
# The FM itself: the movie side's features are `content_matrix`'s columns plus the movie's ID (value 1), the user
# side's are the user's ID and activity level ($\lfloor \log_2 \rfloor$ of the number of movies). `towers` returns
# $U_u$, $M_i$ and the movie bias $b_i$, whose pairwise part is the identity above.

# %%
class FMRetriever(keras.Model):
    """A factorisation machine over user fields (ID, activity level) and movie fields (ID, content_matrix's side
    features), ranked as <U_u, M_i> + b_i (the user-only terms dropped: they do not change a user's ranking)."""

    def __init__(self, X, content, log_q, dim=DIM, seed=SEED, **kwargs):
        super().__init__(**kwargs)
        seeds, normal = Seeds(seed), keras.initializers.RandomNormal
        n_users, n_items = X.shape
        self.level = np.floor(np.log2(np.maximum(np.asarray(X.sum(1)).ravel(), 1))).astype("int32")
        self.content, self.log_q = ops.convert_to_tensor(content), ops.convert_to_tensor(log_q)
        self.user_id = layers.Embedding(n_users, dim, embeddings_initializer=normal(stddev=0.1, seed=seeds()))
        self.user_level = layers.Embedding(int(self.level.max()) + 1, dim,
                                           embeddings_initializer=normal(stddev=0.1, seed=seeds()))
        self.movie_id = layers.Embedding(n_items, dim, embeddings_initializer=normal(stddev=0.1, seed=seeds()))
        self.movie_w = layers.Embedding(n_items, 1, embeddings_initializer="zeros")  # the ID's linear weight
        self.V = self.add_weight(shape=(content.shape[1], dim), initializer=normal(stddev=0.01, seed=seeds()), name="V")
        self.w = self.add_weight(shape=(content.shape[1],), initializer="zeros", name="w")

    def towers(self, users, items):
        U = self.user_id(users) + self.user_level(ops.take(self.level, users))
        x, v_id = ops.take(self.content, items, axis=0), self.movie_id(items)
        M = v_id + ops.matmul(x, self.V)  # Σ_f v_f x_f over the movie's fields (its ID has x = 1)
        squares = ops.sum(v_id ** 2, axis=-1) + ops.matmul(x ** 2, ops.sum(self.V ** 2, axis=-1))  # Σ_f ‖v_f‖² x_f²
        bias = ops.squeeze(self.movie_w(items), -1) + ops.matmul(x, self.w) + 0.5 * (ops.sum(M ** 2, -1) - squares)
        return U, M, bias

    def call(self, inputs, training=False):
        U, M, bias = self.towers(inputs["user"], inputs["item"])
        return batch_logits(U, M, inputs["item"], self.log_q) + bias[None, :]

    def scores(self, user_idx):
        U, M, bias = self.towers(np.asarray(user_idx, "int32"), np.arange(self.content.shape[0], dtype="int32"))
        return ops.convert_to_numpy(ops.matmul(U, ops.transpose(M)) + bias[None, :])


def make_fm(split):
    X, content, _ = SPLITS[split]
    return FMRetriever(X, content, log_popularity(X))


fm_in, fm = retriever("FM (side features)", make_fm)

# %% [markdown]
# The FM stopped at its cap of `MAX_EPOCHS` epochs with its last epoch its best (the budget table of §8 labels it cut
# short by the budget); §6's table puts it beside every other model of the notebook.
#
# ### The deep variants: DeepFM and DCN-v2
# An FM's interactions are all of order two. The deep variants keep it and add a network that learns higher orders:
# - **DeepFM** (Guo et al., 2017): the FM's field vectors $e_f = v_f x_f$ feed an MLP as well; the score is
#   $\hat y_{FM} + \mathrm{MLP}([e_1, \dots, e_m])$.
# - **DCN-v2** (Wang et al., 2021) crosses the input $x_0$ with itself explicitly, layer after layer:
#   $$x_{l+1} = x_0 \odot (W_l x_l + b_l) + x_l,$$
#   so $L$ cross layers hold every feature product up to degree $L + 1$, with $d^2$ weights per layer; a deep network
#   then reads the crossed vector. KerasRS ships the cross layer as `keras_rs.layers.FeatureCross`.
#
# Both are used where many features meet: in this notebook, as **rankers** in §5. First the cross layer, once by
# hand, checked against KerasRS's layer with the same weights:

# %%
def cross_layer(x0, x, W, b):
    """One DCN-v2 cross layer, x_{l+1} = x0 ⊙ (W x_l + b) + x_l, written for rows: x0 * (x @ W + b) + x."""
    return x0 * (x @ W + b) + x


cross = keras_rs.layers.FeatureCross(kernel_initializer=keras.initializers.GlorotUniform(seed=SEED),
                                     bias_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=SEED + 1))
x0_demo = rng.normal(size=(5, 12)).astype(np.float32)
x1_library = ops.convert_to_numpy(cross(x0_demo, x0_demo))
W_demo, b_demo = (ops.convert_to_numpy(w) for w in cross.dense.weights)  # Keras's Dense computes x W + b
x1_hand = cross_layer(x0_demo, x0_demo, W_demo, b_demo)
print(f"FeatureCross against the hand-written layer: largest difference {np.abs(x1_library - x1_hand).max():.1e}")

# %% [markdown]
# ## 2. Two-tower retrieval
# The FM's towers are sums of feature vectors. A **two-tower model** (Yi et al., 2019) makes each tower a network:
# - the **user tower** reads the mean of the embeddings of the movies the user watched in training (a user is what
#   they watched, so a new user needs no retraining) and their activity level, then a dense layer;
# - the **movie tower** reads the movie's ID embedding and its side features (genres, decade, tag words), then a
#   dense layer.
#
# Both outputs are normalised, and their dot product divided by $\tau$ is the logit. While training, the user's
# history leaves out the movie being predicted: otherwise the tower would find the answer in its own input. Tags are
# written by users; they count as content here (as in notebook 05's standard-split models), and §2's cold-start test
# drops the tags of the new movies.

# %%
def sparse_tensor(X):
    """A SciPy sparse matrix as a TensorFlow SparseTensor (keras.ops.matmul multiplies it with a dense tensor)."""
    X = X.tocoo()
    return tf.sparse.reorder(tf.SparseTensor(np.column_stack([X.row, X.col]).astype("int64"),
                                             X.data.astype("float32"), X.shape))

# %%
class TwoTower(keras.Model):
    """User tower: mean of the user's training movies' embeddings + activity → Dense; movie tower: ID embedding (dropped
    with probability id_dropout while training) + Dense(side features) → Dense. Logits: cosine / τ."""

    def __init__(self, X, content, log_q, dim=DIM, id_dropout=0.0, seed=SEED, **kwargs):
        super().__init__(**kwargs)
        seeds, glorot, normal = Seeds(seed), keras.initializers.GlorotUniform, keras.initializers.RandomNormal
        self.X, self.n_seen = sparse_tensor(X), np.maximum(np.asarray(X.sum(1)).ravel(), 1).astype("float32")
        self.content, self.id_dropout = ops.convert_to_tensor(content), id_dropout
        self.log_q = None if log_q is None else ops.convert_to_tensor(log_q)
        self.watched = layers.Embedding(X.shape[1], dim, embeddings_initializer=normal(stddev=0.1, seed=seeds()))
        self.watched.build((None,))  # its table is read whole (below), before any call
        self.movie_id = layers.Embedding(X.shape[1], dim, embeddings_initializer=normal(stddev=0.1, seed=seeds()))
        self.side = layers.Dense(dim, kernel_initializer=glorot(seed=seeds()), name="side_features")
        self.user_out = layers.Dense(dim, kernel_initializer=glorot(seed=seeds()), name="user_tower")
        self.movie_out = layers.Dense(dim, kernel_initializer=glorot(seed=seeds()), name="movie_tower")
        self.dropper = keras.random.SeedGenerator(seeds())

    def user_vectors(self, users, leave_out=None):
        H = ops.matmul(self.X, self.watched.embeddings)  # every user's sum of movie embeddings
        h, n = ops.take(H, users, axis=0), ops.take(self.n_seen, users)
        if leave_out is not None:  # training: the movie to predict is not part of the history
            h, n = h - self.watched(leave_out), ops.maximum(n - 1, 1)
        return ops.normalize(self.user_out(ops.concatenate([h / n[:, None], ops.log(n)[:, None] / 5], axis=1)), axis=-1)

    def movie_vectors(self, items, training=False, use_id=True):
        e = self.movie_id(ops.minimum(items, self.movie_id.input_dim - 1)) if use_id else 0.0
        if training and self.id_dropout > 0:  # some rows learn to do without their ID: what a new movie has
            keep = keras.random.uniform(ops.shape(items), seed=self.dropper) >= self.id_dropout
            e = e * ops.cast(keep, "float32")[:, None]
        x = ops.relu(e + self.side(ops.take(self.content, items, axis=0)))
        return ops.normalize(self.movie_out(x), axis=-1)

    def call(self, inputs, training=False):
        users, items = inputs["user"], inputs["item"]
        return batch_logits(self.user_vectors(users, items), self.movie_vectors(items, training), items, self.log_q,
                            TEMPERATURE)

    def scores(self, user_idx):
        movies = self.movie_vectors(np.arange(self.movie_id.input_dim, dtype="int32"))
        return ops.convert_to_numpy(ops.matmul(self.user_vectors(np.asarray(user_idx, "int32")),
                                               ops.transpose(movies)) / TEMPERATURE)

# %%
def make_two_tower(split, use_log_q=True):
    X, content, _ = SPLITS[split]
    return TwoTower(X, content, log_popularity(X) if use_log_q else None)


tower_in, tower = retriever("Two-tower", make_two_tower)

# %% [markdown]
# The two-tower model, too, stopped at its cap with its last epoch its best: its test NDCG@10 is below the 0.30 this
# chapter aimed at for it, at a budget that cut it short.
#
# **What the logQ correction is worth.** The same model, trained on `train` for the same number of epochs without
# the correction, scored on test. The verdict's interval, like every interval in this notebook, resamples the test
# users of one training run: it leaves out the randomness of training.

# %%
with Timer() as t:
    no_logq, _ = fit_retriever(lambda split: make_two_tower(split, use_log_q=False), "train", LR,
                               epoch_logs["Two-tower"].best)
no_logq_ndcg = test_ranking("Two-tower without logQ", no_logq, t.seconds, "the two-tower's epochs, no early stopping")
epoch_logs["Two-tower without logQ"] = training.EpochLog(*[epoch_logs["Two-tower"].best] * 3)
print(f"two-tower test NDCG@{K}: with logQ {test_rows['Two-tower'][f'ndcg@{K}']:.4f}, without {no_logq_ndcg:.4f}")
print(versus("Two-tower", "Two-tower without logQ"))
popular = np.argsort(-np.asarray(X_tr.sum(0)).ravel())[:100]
for name, model in [("with logQ", tower), ("without logQ", no_logq)]:
    top = np.argsort(-np.where(X_tr[:50].toarray() > 0, -np.inf, model.scores(np.arange(50))), axis=1)[:, :K]
    print(f"{name}: {np.isin(top, popular).mean():.0%} of the top-{K} lists of 50 users are among the 100 most "
          "popular movies")

# %% [markdown]
# Without the correction the model learns popularity *backwards*: popular movies are the batch's most frequent
# negatives, so their scores are pushed down, and the recommendations drift to the tail, where few test
# interactions are. The printed shares show it: 43% of the corrected model's top-10 lists are among the 100 most
# popular movies, 3% of the uncorrected one's, and the correction is worth +0.2200 NDCG@10.
#
# **Accidental hits, and a library check.** KerasRS has a layer for each of these two steps,
# `SamplingProbabilityCorrection` (subtract $\log q$) and `RemoveAccidentalHits`. The cell feeds both a batch in
# which candidate 0 is the same movie as row 0's positive (candidate 2), and compares them with this notebook's
# `batch_logits`.

# %%
logits_demo = np.array([[1.0, 2.0, 3.0, 4.0]], np.float32)
labels_demo = np.array([[0.0, 0.0, 1.0, 0.0]], np.float32)  # row 0's own movie is candidate 2 ...
candidate_ids = np.array([7, 5, 7, 8])  # ... and candidate 0 is the same movie (id 7): an accidental hit
q_demo = np.array([[0.1, 0.2, 0.1, 0.4]], np.float32)
corrected = keras_rs.layers.SamplingProbabilityCorrection()(logits_demo, q_demo)
print("SamplingProbabilityCorrection = logits − log q:", np.allclose(corrected, logits_demo - np.log(q_demo)))
library = keras_rs.layers.RemoveAccidentalHits()(logits_demo, labels_demo, candidate_ids)
print("RemoveAccidentalHits, softmax:", np.round(ops.convert_to_numpy(ops.softmax(library)), 3))
mask = (candidate_ids[None, :] == candidate_ids[2]) & (labels_demo == 0)
by_hand = ops.softmax(np.where(mask, -1e9, logits_demo))
print("masked by hand, softmax:      ", np.round(ops.convert_to_numpy(by_hand), 3))

# %% [markdown]
# The correction layer does what it says. The accidental-hit layer returns the logits unchanged: the softmax it
# prints is that of the input logits $[1, 2, 3, 4]$, and the duplicate keeps its 3.2%. Its source (KerasRS 0.4.0,
# `keras_rs/src/layers/retrieval/remove_accidental_hits.py`) shows why: its docstring says it zeroes the duplicates'
# logits, but its code adds `finfo(float32).smallest_normal / 100` (about $10^{-40}$) to them, which leaves any float32
# logit as it was. Zeroing would not be enough either: $e^0 = 1$ still takes a share of the softmax. A masked logit
# must be very negative, which is why `batch_logits` masks duplicates itself, with `ops.where(same, -1e9, logits)`:
# the printed "masked by hand" row gives the duplicate 0. A library layer is code like any other: check it on a case
# whose answer you know.
#
# **Cold start.** A new movie has no interactions, so no ID embedding; its content still gives it a movie vector.
# On the course's cold-start protocol (notebook 01: a seeded 10% of the movies with at least 5 ratings leave
# training; each user ranks only those), a two-tower trained with its ID embeddings dropped for `ID_DROPOUT` of the
# rows (so that the content path learns to stand alone) scores the new movies from genres, decade and the tag words
# of *training* movies only, against notebook 01's genre profile.

# %%
cold = cold_start_split(ratings, 0.1, 5, SEED)
ids_cold = IdMap.from_train(cold.train)
X_cold = ids_cold.interactions(cold.train).tocsr().astype(np.float32)
X_cold.data[:] = 1.0
all_movies = IdMap(ids_cold.user_ids, np.concatenate([ids_cold.item_ids, cold.new_items]))  # new movies last
known_tags = data.tags[~data.tags.item_id.isin(cold.new_items)]  # the new movies' tags are interactions: dropped
content_cold, _ = content_matrix(data.items, all_movies, known_tags)
SPLITS["cold"] = (X_cold, content_cold, ids_cold)
with Timer() as t:
    cold_tower, _ = fit_retriever(lambda split: TwoTower(X_cold, content_cold, log_popularity(X_cold),
                                                         id_dropout=ID_DROPOUT), "cold", LR, COLD_EPOCHS)
new_rows = ids_cold.n_items + np.arange(len(cold.new_items), dtype="int32")


def cold_scores(user_idx, item_ids):
    """The cold-start contract: scores of the new movies (split.new_items order) from their content alone."""
    movies = cold_tower.movie_vectors(new_rows, use_id=False)
    return ops.convert_to_numpy(ops.matmul(cold_tower.user_vectors(np.asarray(user_idx, "int32")),
                                           ops.transpose(movies)))


genre_profile = GenreProfile().fit(cold.train, data.items)
cold_users = {name: evaluate_cold_start(model, cold, K, per_user=True)[f"ndcg@{K}"]
              for name, model in [("Two-tower (content only)", cold_scores), ("Genre profile", genre_profile)]}
cold_rows = {"Two-tower (content only)": evaluate_cold_start(cold_scores, cold, K),
             "Genre profile": evaluate_cold_start(genre_profile, cold, K)}
display(pd.DataFrame(cold_rows).T[[f"ndcg@{K}", f"recall@{K}"]].round(4))
cold_verdict = results.compare(paired_bootstrap(*cold_users.values(), n_boot=N_BOOTSTRAP, seed=SEED,
                                                names=tuple(cold_users)), "cold-start", f"ndcg@{K}")
print(cold_verdict)
seconds["Two-tower (content only)"] = t.seconds

# %% [markdown]
# From content alone, the two-tower ranks the new movies well ahead of the genre profile (0.1713 against 0.0849
# NDCG@10, the interval above zero). It was not tuned for cold start here (its epochs are fixed at `COLD_EPOCHS`, and
# its budget table row says it stopped there; there is no validation split of new movies); notebook 05's content
# models were built for this protocol and are the comparison to make there. The point is that the same retrieval
# model serves new movies the day they arrive.
#
# ## 3. Graph retrieval: LightGCN
# The user–movie interactions form a bipartite graph. **LightGCN** (He et al., 2020) smooths the embeddings over it:
# starting from free embeddings $E^{(0)}$ of every user and movie, each layer replaces a node's vector by the
# normalised sum of its neighbours',
# $$E^{(l+1)} = \hat A E^{(l)}, \qquad \hat A = D^{-1/2} A D^{-1/2}, \qquad
# A = \begin{pmatrix} 0 & X \\ X^\top & 0 \end{pmatrix},$$
# with $D$ the diagonal matrix of node degrees, so a user–movie edge has weight $1/\sqrt{d_u d_i}$. The final
# embedding averages the layers, $E = \frac{1}{L+1}\sum_{l=0}^{L} E^{(l)}$, and scores are dot products. There are no
# weight matrices and no non-linearities: He et al. found that both hurt. After one layer a user's vector is a
# weighted sum of their movies' vectors (each weighted by $1/\sqrt{d_u d_i}$; the two-tower's user tower takes their
# plain mean); after two, it also mixes in the users who watched the same movies, collaborative filtering built into
# the representation.
#
# The paper trains with BPR; here LightGCN is trained with the same in-batch softmax as the other retrievers, so that
# the retrievers differ in their model, not in their loss (BPR is not compared in this notebook). To see what
# propagation adds, the same model with **0 layers**, that is plain matrix factorisation with the same loss, gets the
# same budget. Propagation is a sparse product computed at every step; `ops.take` and `ops.segment_sum` express it,
# and XLA compiles that pair (Keras leaves XLA off when op determinism is on, so the function is compiled by
# `tf.function` itself).

# %%
def normalised_adjacency(X):
    """Â = D^-1/2 A D^-1/2 of the bipartite graph A = [[0, X], [Xᵀ, 0]] (users first, then movies)."""
    A = sp.bmat([[None, X], [X.T, None]]).tocsr().astype(np.float32)
    degree = np.asarray(A.sum(1)).ravel()
    scale = sp.diags(np.where(degree > 0, degree, 1) ** -0.5)
    return (scale @ A @ scale).tocoo()

# %%
class LightGCN(keras.Model):
    """He et al. (2020), trained with the in-batch softmax: logits are cosine / τ of the propagated embeddings."""

    def __init__(self, X, log_q, n_layers=GCN_LAYERS, dim=DIM, seed=SEED, **kwargs):
        super().__init__(**kwargs)
        self.n_users, self.n_items, self.n_layers = *X.shape, n_layers
        A = normalised_adjacency(X)
        self.rows, self.cols, self.weights_ = A.row.astype("int32"), A.col.astype("int32"), A.data
        self.log_q = ops.convert_to_tensor(log_q)
        self.E0 = self.add_weight(shape=(sum(X.shape), dim), name="E0",
                                  initializer=keras.initializers.RandomNormal(stddev=0.1, seed=Seeds(seed)()))

    def step(self, E):
        """One propagation layer, Â E: every edge carries its weight times its source's vector to its target."""
        return ops.segment_sum(self.weights_[:, None] * ops.take(E, self.cols, axis=0), self.rows,
                               num_segments=self.n_users + self.n_items)

    def propagate(self):
        """The final embeddings, the mean of E^(0) … E^(L), compiled by XLA on the first call."""
        if not hasattr(self, "_layer_mean"):
            E0, step, n_layers = self.E0, self.step, self.n_layers

            def layer_mean():
                E = total = ops.convert_to_tensor(E0)
                for _ in range(n_layers):
                    E = step(E)
                    total = total + E
                return total / (n_layers + 1)

            self._layer_mean = tf.function(layer_mean, jit_compile=True)
        return self._layer_mean()

    def call(self, inputs, training=False):
        E = ops.normalize(self.propagate(), axis=-1)
        users, items = inputs["user"], inputs["item"]
        return batch_logits(ops.take(E, users, axis=0), ops.take(E, self.n_users + items, axis=0), items,
                            self.log_q, TEMPERATURE)

    def scores(self, user_idx):
        E = ops.convert_to_numpy(ops.normalize(self.propagate(), axis=-1))
        return E[np.asarray(user_idx)] @ E[self.n_users:].T / TEMPERATURE


gcn_in, gcn = retriever("LightGCN", lambda split: LightGCN(SPLITS[split][0], log_popularity(SPLITS[split][0])), GCN_LR)
mf0_in, mf0 = retriever("LightGCN with 0 layers (MF)",
                        lambda split: LightGCN(SPLITS[split][0], log_popularity(SPLITS[split][0]), 0), GCN_LR)
print(versus("LightGCN", "LightGCN with 0 layers (MF)"))
print(versus("LightGCN", "WMF"))

# %% [markdown]
# Propagation is what separates LightGCN from the 0-layer model with the same loss, embeddings and budget. At this
# notebook's budget it bought nothing measurable: LightGCN scored 0.2929 and the 0-layer model 0.2997, within noise
# (difference −0.0069, interval [−0.0145, +0.0016]). Against WMF, LightGCN is 0.0706 behind (interval
# [−0.0824, −0.0582]), far from this chapter's aim of WMF − 0.01. Both graph models stopped at their cap of
# `MAX_EPOCHS` epochs with their last epoch their best, so these verdicts hold at this budget only and say nothing
# yet about graph models as a family: that waits for the reference run. Propagation is also what makes LightGCN
# costly here: its two fits took 99 s against 20 s for the 0-layer model's, since the propagation runs at every step.
#
# ## 4. The candidate stage
# A retriever's job in a two-stage system is **recall**: the ranker can only order what it is given. The cell scores
# every movie for every user with each retriever fitted on `inner`, and measures on validation the share of held-out
# interactions found among each user's top $K$ unseen movies, for each retriever alone and for the union of all four
# (each contributing its top $K$).

# %%
RETRIEVERS = {"EASE": (ease_in, ease), "Item-kNN": (knn_in, knn), "Two-tower": (tower_in, tower),
              "LightGCN": (gcn_in, gcn)}
with Timer() as t_scores:
    scores_in = {name: pair[0].scores(np.arange(ids_in.n_users)) for name, pair in RETRIEVERS.items()}
    scores_tr = {name: pair[1].scores(np.arange(ids_tr.n_users)) for name, pair in RETRIEVERS.items()}


def top_unseen(s, seen, k):
    """Indices of each row's k best-scored unseen movies (in no particular order)."""
    s = np.where(seen.toarray() > 0, -np.inf, s)
    return np.argpartition(-s, k, axis=1)[:, :k]


def held_out_matrix(frame, ids):
    known = frame[frame.item_id.isin(ids.item_ids) & frame.user_id.isin(ids.user_ids)]
    return sp.csr_matrix((np.ones(len(known), bool), (ids.users(known.user_id), ids.items(known.item_id))),
                         shape=(ids.n_users, ids.n_items)).toarray()


H_val = held_out_matrix(val, ids_in)
recall = {}
for k in RECALL_KS:
    union = np.zeros_like(H_val)
    for name, s in scores_in.items():
        chosen = np.zeros_like(H_val)
        np.put_along_axis(chosen, top_unseen(s, X_in, k), True, axis=1)
        union |= chosen
        recall.setdefault(name, {})[k] = (chosen & H_val).sum() / H_val.sum()
    recall.setdefault("Union of the four", {})[k] = (union & H_val).sum() / H_val.sum()
    recall.setdefault("candidates per user (union)", {})[k] = union.sum(1).mean()
recall = pd.DataFrame(recall).T
display(recall.round(3))
fig, ax = plt.subplots(figsize=(6.5, 3.4))
for name in recall.index[:-1]:
    ax.plot(RECALL_KS, recall.loc[name], marker="o", label=name, lw=2.5 if name.startswith("Union") else 1.2)
ax.set(xscale="log", xticks=RECALL_KS, xticklabels=RECALL_KS, xlabel="K: candidates per retriever",
       ylabel="recall of validation interactions", title="Candidate recall (validation)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Every retriever finds only part of what the user will watch, even at 500 candidates: the missing part is out of
# reach of any ranker. The union finds more than any single retriever at the same $K$, but it also hands the ranker
# more candidates per user; at an equal number of candidates it finds about as much as EASE alone (the union of the
# top 50s, 98 candidates per user: 0.325; EASE's top 100: 0.327; the union of the top 100s, 186 candidates: 0.446;
# EASE's top 200: 0.452). The other retrievers find partly different movies, but no more of the held-out ones per
# candidate. The pipeline takes `CANDIDATES` per retriever, a setting this notebook did not tune: more candidates
# hold more of the held-out movies, and cost the ranker more.
#
# ## 5. The ranking stage
# **Without leakage.** A ranker learns from examples whose features look like those it will meet at test time. So
# its training examples are built exactly as test examples will be, one level down: retrievers fitted on `inner`
# propose candidates, features come from `inner` only, and the label says whether the user watched the movie in
# `val`. At test time the same features come from `train`, and the label is never seen. A `RANKER_VAL_SHARE` of
# the users is kept out of the ranker's training: their validation labels early-stop and choose the rankers.
#
# **Features**, per (user, candidate movie):
# - each retriever's score (as standard deviations below the user's best unseen score) and the log of its rank
#   among all the user's unseen movies;
# - the movie: its log popularity (share of the interactions), year, mean rating, when it was first and typically
#   rated (its first and median rating time in the fitting data);
# - the user: log activity, mean rating, first and last rating time;
# - user and movie together: the genre match (cosine of the user's genre profile and the movie's genres), how long
#   after the user's last rating the movie was first rated, and how often it was rated while the user was active.
#
# The time features are there because a user rates movies of the years they are active, and EASE knows who watched
# what, but not when; §6's ablation measures whether they help. All of them come from the fitting data (ratings and
# timestamps of `inner`, later of `train`), never from the held-out part.

# %%
class RankerFacts:
    """What the ranker knows about users and movies, from one fitting frame (inner or train) and its id map."""

    def __init__(self, frame, ids, seen, genre_matrix):
        u, i = ids.users(frame.user_id.to_numpy()), ids.items(frame.item_id.to_numpy())
        t = frame.timestamp.to_numpy() / (365.25 * 86400) + 1970  # rating time in years
        r = frame.rating.to_numpy()
        self.seen, self.n = seen, len(frame)
        per_user = pd.DataFrame({"u": u, "t": t, "r": r}).groupby("u")
        self.user = pd.DataFrame({"n": per_user.size(), "first": per_user.t.min(), "last": per_user.t.max(),
                                  "mean_rating": per_user.r.mean()}).reindex(np.arange(ids.n_users)).to_numpy()
        per_item = pd.DataFrame({"i": i, "t": t, "r": r}).groupby("i")
        movie = pd.DataFrame({"n": per_item.size(), "first": per_item.t.min(), "median": per_item.t.median(),
                              "mean_rating": per_item.r.mean()}).reindex(np.arange(ids.n_items))
        year = data.items.set_index("item_id").year.reindex(ids.item_ids).to_numpy(np.float64)
        movie["year"] = np.where(np.isnan(year), np.nanmedian(year), year)
        self.movie = movie.fillna({"n": 0, "first": t.max(), "median": t.max(), "mean_rating": r.mean()}).to_numpy()
        self.keys = np.sort(i * 1000.0 + (t - 1900))  # (movie, time) in one sorted key, for counts in a time window
        profile = np.asarray(seen @ genre_matrix)
        self.profile = profile / np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-9)
        self.genres = genre_matrix / np.maximum(np.linalg.norm(genre_matrix, axis=1, keepdims=True), 1e-9)


facts_in = RankerFacts(inner, ids_in, X_in, content_in[:, :len(genres)])
facts_tr = RankerFacts(train, ids_tr, X_tr, content_tr[:, :len(genres)])

# %%
def ranker_features(facts, users, score_rows, k=CANDIDATES):
    """Candidates (the union of each retriever's top k unseen movies) and their features, for the users (indices)
    whose rows of every retriever's scores are score_rows[name]. One row per (user, candidate)."""
    seen = facts.seen[users].toarray() > 0
    masked = {name: np.where(seen, -np.inf, s) for name, s in score_rows.items()}
    proposed = {name: np.zeros(seen.shape, bool) for name in masked}
    for name, s in masked.items():
        np.put_along_axis(proposed[name], np.argpartition(-s, k, axis=1)[:, :k], True, axis=1)
    row, item = np.nonzero(np.logical_or.reduce(list(proposed.values())))
    f = {"user": users[row], "item": item}
    for name, s in masked.items():
        finite = np.where(np.isfinite(s), s, np.nan)
        best, spread = np.nanmax(finite, axis=1), np.nanstd(finite, axis=1) + 1e-9
        rank = np.argsort(np.argsort(-s, axis=1, kind="stable"), axis=1, kind="stable")[row, item]
        f[f"{name} score"] = (s[row, item] - best[row]) / spread[row]
        f[f"{name} log rank"] = np.log1p(rank)
        f[f"proposed by {name}"] = proposed[name][row, item]
    user, movie = facts.user[users[row]], facts.movie[item]
    f.update({"log popularity": np.log(movie[:, 0] / facts.n * 1e4 + 1e-2), "movie year": movie[:, 4],
              "movie mean rating": movie[:, 3], "movie first rated": movie[:, 1], "movie median time": movie[:, 2],
              "user log activity": np.log(user[:, 0]), "user mean rating": user[:, 3], "user first": user[:, 1],
              "user last": user[:, 2], "first rated − user last": movie[:, 1] - user[:, 2]})
    window = [np.searchsorted(facts.keys, item * 1000.0 + (user[:, c] - 1900) + d) for c, d in [(1, -0.5), (2, 0.5)]]
    f["log ratings while user active"] = np.log1p(window[1] - window[0])
    f["genre match"] = np.einsum("ij,ij->i", facts.profile[users[row]], facts.genres[item])
    return pd.DataFrame(f)

# %%
TIME_FEATURES = ["movie first rated", "movie median time", "user first", "user last", "first rated − user last",
                 "log ratings while user active"]
with Timer() as t_features:
    frame_val = ranker_features(facts_in, np.arange(ids_in.n_users), scores_in)
    frame_test = ranker_features(facts_tr, np.arange(ids_tr.n_users), scores_tr)
frame_val["label"] = H_val[frame_val.user, frame_val.item].astype(np.float32)
FEATURES = [c for c in frame_val.columns if c not in ("user", "item", "label") and not c.startswith("proposed")]
held_users = int(RANKER_VAL_SHARE * ids_in.n_users)
rank_val_users = np.sort(np.random.default_rng(SEED).permutation(ids_in.n_users)[:held_users])
is_rank_val = np.isin(frame_val.user, rank_val_users)
val_part = val[val.user_id.isin(ids_in.user_ids[rank_val_users])]  # the held-out users' validation interactions
print(f"{len(frame_val):,} validation candidates ({frame_val.groupby('user').size().mean():.0f} per user, "
      f"{frame_val.label.mean():.1%} positive; they hold {frame_val.label.sum() / H_val.sum():.0%} of the validation "
      f"interactions), {len(frame_test):,} test candidates; {len(FEATURES)} features; {t_features.seconds:.1f} s")
display(frame_val[frame_val.user == 0].sort_values("EASE log rank").head(3).set_index("item")[FEATURES].T.round(3))

# %% [markdown]
# **LambdaMART** (Burges, 2010), gradient-boosted trees trained for ranking: LambdaRank's gradients are those of a
# pairwise logistic loss, each pair weighted by how much swapping its two movies would change the list's NDCG, so
# the trees concentrate on the top of each list. LightGBM implements it (`objective="lambdarank"`). Each setting of
# `TREE_GRID` grows trees until 30 in a row bring no gain in NDCG@10 on the held-out users' lists; the setting with
# the best validation NDCG over the full ranking (candidates first, every other movie after) is kept. The cell also
# prints the features whose splits gained the most.

# %%
rank_train, rank_val = frame_val[~is_rank_val], frame_val[is_rank_val]


def sizes(frame):
    """Candidates per user, in the frame's order (rows are grouped by user)."""
    return frame.groupby("user", sort=False).size().to_numpy()


def full_scores(frame, predictions, ids):
    """The pipeline's scores over the whole catalogue: each candidate's ranker score, −inf for every other movie."""
    scores = np.full((ids.n_users, ids.n_items), -np.inf)
    scores[frame.user.to_numpy(), frame.item.to_numpy()] = predictions
    return scores


def fit_lambdamart(setting, features=FEATURES, part=rank_train, held=rank_val):
    model = lgb.LGBMRanker(objective="lambdarank", n_estimators=MAX_TREES, subsample=0.8, subsample_freq=1,
                           colsample_bytree=0.8, min_child_samples=50, random_state=SEED, n_jobs=2, verbose=-1,
                           deterministic=True, force_row_wise=True, **setting)
    model.fit(part[features], part.label, group=sizes(part), eval_X=(held[features],), eval_y=(held.label,),
              eval_group=[sizes(held)], eval_at=[K], callbacks=[lgb.early_stopping(30, verbose=False)])
    return model


rankers, ranker_val, ranker_budget, ranker_epochs = {}, {}, {}, {}
with Timer() as t:
    grid = [fit_lambdamart(setting) for setting in TREE_GRID]
    grid_ndcg = [validation_ndcg(full_scores(rank_val, m.predict(rank_val[FEATURES]), ids_in), val_part) for m in grid]
best = int(np.argmax(grid_ndcg))
rankers["LambdaMART"], ranker_val["LambdaMART"] = grid[best], grid_ndcg[best]
ranker_budget["LambdaMART"] = f"{len(TREE_GRID)} setting(s) × ≤ {MAX_TREES} trees"
ranker_epochs["LambdaMART"] = training.EpochLog(grid[best].best_iteration_ + 30 if grid[best].best_iteration_ + 30 <
                                                MAX_TREES else MAX_TREES, grid[best].best_iteration_, MAX_TREES)
seconds["LambdaMART"] = t.seconds
print(f"LambdaMART: validation NDCG@{K} per setting {np.round(grid_ndcg, 4).tolist()}; kept {TREE_GRID[best]} with "
      f"{grid[best].best_iteration_} trees ({t.seconds:.1f} s)")
importance = pd.Series(grid[best].booster_.feature_importance("gain"), FEATURES)
print("largest gains:", ", ".join(f"{name} {share:.0%}" for name, share in
                                  (importance / importance.sum()).sort_values(ascending=False).head(8).items()))

# %% [markdown]
# **Deep rankers.** Each user's candidates form one list: a tensor (users, longest list, features), the features
# standardised on the ranker's training rows, and padded positions labelled −1 (KerasRS's losses ignore labels
# below 0). Three architectures score every candidate of a list independently:
# - an **MLP** (64 → 32 → 1, ReLU);
# - **DeepFM**: every feature $f$ gets a vector $v_f$ (size 8), the FM term of §1 over the $e_f = v_f x_f$, plus a
#   linear term, plus an MLP over the $e_f$;
# - **DCN-v2**: two `FeatureCross` layers, then a dense layer of 64.
#
# and three losses compare them: **pointwise** binary cross-entropy (each candidate on its own), **pairwise**
# logistic loss (KerasRS `PairwiseLogisticLoss`: $\sum_{y_i > y_j} \log(1 + e^{-(s_i - s_j)})$, every watched movie
# above every other of its list), and **listwise** ListMLE (KerasRS `ListMLELoss`: the likelihood of the list's order
# by label under a Plackett–Luce model of the scores). Each gets a grid of the same size as LambdaMART's
# (`DEEP_GRID`: one learning rate at this profile, two in the reference one, as `TREE_GRID` has one and two
# settings), early-stopped on the same held-out users' validation NDCG.

# %%
class FieldEmbedding(layers.Layer):
    """DeepFM's field vectors: e_f = v_f x_f for every numeric feature f, (..., F) → (..., F, k)."""

    def __init__(self, k, seed, **kwargs):
        super().__init__(**kwargs)
        self.k, self.seed = k, seed

    def build(self, shape):
        self.v = self.add_weight(shape=(shape[-1], self.k), name="v",
                                 initializer=keras.initializers.RandomNormal(stddev=0.1, seed=self.seed))

    def call(self, x):
        return x[..., None] * self.v


def ranker_network(kind, n_features, seed=SEED):
    """(lists, candidates, features) → (lists, candidates) scores."""
    seeds = Seeds(seed)
    def dense(units, **kw):
        return layers.Dense(units, kernel_initializer=keras.initializers.GlorotUniform(seed=seeds()), **kw)

    x = keras.Input((None, n_features))
    if kind == "MLP":
        score = dense(1)(dense(32, activation="relu")(dense(64, activation="relu")(x)))
    elif kind == "DeepFM":
        e = FieldEmbedding(8, seeds())(x)  # (lists, candidates, F, 8)
        fm = 0.5 * ops.sum(ops.sum(e, axis=-2) ** 2 - ops.sum(e ** 2, axis=-2), axis=-1, keepdims=True)
        flat = layers.Reshape((-1, n_features * 8))(e)
        score = dense(1)(x) + fm + dense(1)(dense(32, activation="relu")(dense(64, activation="relu")(flat)))
    else:  # DCN-v2
        cross = lambda: keras_rs.layers.FeatureCross(kernel_initializer=keras.initializers.GlorotUniform(seed=seeds()))
        x1 = cross()(x, x)
        score = dense(1)(dense(64, activation="relu")(cross()(x, x1)))
    return keras.Model(x, ops.squeeze(score, -1), name=kind)


def pointwise_loss(labels, scores):
    """Binary cross-entropy of every real candidate (label ≥ 0) of each list, averaged over the list."""
    valid = ops.cast(labels >= 0, "float32")
    bce = ops.softplus(scores) - ops.maximum(labels, 0.0) * scores  # −[y log σ(s) + (1 − y) log(1 − σ(s))]
    return ops.sum(bce * valid, axis=-1) / ops.maximum(ops.sum(valid, axis=-1), 1.0)

# %%
mean, std = rank_train[FEATURES].mean().to_numpy(), rank_train[FEATURES].std().to_numpy() + 1e-9


def as_lists(frame, features=FEATURES):
    """(users, longest list, features) standardised inputs and (users, longest list) labels, −1 for padding."""
    n = sizes(frame)
    row, pos = np.repeat(np.arange(len(n)), n), np.arange(len(frame)) - np.repeat(np.cumsum(n) - n, n)
    x = np.zeros((len(n), n.max(), len(features)), np.float32)
    y = np.full((len(n), n.max()), -1.0, np.float32)
    x[row, pos] = (frame[features].to_numpy() - mean) / std
    y[row, pos] = frame["label"].to_numpy() if "label" in frame else 0.0
    return x, y, (row, pos)


def list_predict(model, lists):
    x, _, (row, pos) = lists
    return ops.convert_to_numpy(model.predict(x, batch_size=64, verbose=0))[row, pos]


lists_train, lists_val = as_lists(rank_train), as_lists(rank_val)
DEEP = {"MLP (pointwise)": ("MLP", pointwise_loss), "DeepFM (pointwise)": ("DeepFM", pointwise_loss),
        "DCN-v2 (pairwise)": ("DCN-v2", keras_rs.losses.PairwiseLogisticLoss()),
        "DCN-v2 (listwise)": ("DCN-v2", keras_rs.losses.ListMLELoss())}
for name, (kind, loss) in DEEP.items():
    found = []
    with Timer() as t:
        for setting in DEEP_GRID:
            keras.utils.set_random_seed(SEED)
            model = ranker_network(kind, len(FEATURES))
            model.compile(optimizer=keras.optimizers.Adam(setting["learning_rate"]), loss=loss)
            stopper = training.ValidationCheck(lambda: validation_ndcg(
                full_scores(rank_val, list_predict(model, lists_val), ids_in), val_part), PATIENCE)
            model.fit(lists_train[0], lists_train[1], batch_size=RANKER_BATCH, epochs=RANKER_MAX_EPOCHS, verbose=0,
                      callbacks=[stopper])
            found.append((max(stopper.history), model, stopper))
    best_ndcg, rankers[name], stopper = max(found, key=lambda f: f[0])
    ranker_val[name], seconds[name] = best_ndcg, t.seconds
    ranker_epochs[name] = training.EpochLog(len(stopper.history), stopper.best_epoch, RANKER_MAX_EPOCHS)
    ranker_budget[name] = f"{len(DEEP_GRID)} setting(s) × ≤ {RANKER_MAX_EPOCHS} epochs"
    print(f"{name}: validation NDCG@{K} per setting {[round(f[0], 4) for f in found]}; best epoch "
          f"{stopper.best_epoch} of {len(stopper.history)} ({t.seconds:.0f} s)")
ease_val_part = validation_ndcg(ease_in, val_part)
display(pd.Series({"EASE (no ranker)": ease_val_part, **ranker_val}, name=f"validation NDCG@{K}, held-out users")
        .to_frame().round(4))

# %% [markdown]
# These are validation numbers on the held-out users (a fifth of the users), where the settings and epochs were
# chosen, so they flatter every ranker a little; the test split decides below. Only LambdaMART is ahead of EASE's own
# order there (0.2260 against 0.2139), and its trees lean mostly on EASE: EASE's log rank and score carry over half of
# the printed gains. None of the rankers stopped at its cap (the budget table of §8 says when each stopped).
#
# ## 6. The whole pipeline on the test split
# The retrievers refitted on `train` propose the test candidates, `RankerFacts` of `train` give their features, and
# each ranker (trained on the validation labels only) orders them. Every movie outside the candidates ranks below
# them, so each pipeline is evaluated on the standard protocol's full ranking, like every model before it.

# %%
pipeline_names = {}
for name, model in rankers.items():
    with Timer() as t:
        predictions = (model.predict(frame_test[FEATURES]) if name == "LambdaMART"
                       else list_predict(model, as_lists(frame_test)))
    label = f"Two-stage + {name}"
    pipeline_names[name] = label
    test_ranking(label, full_scores(frame_test, predictions, ids_tr), seconds[name], ranker_budget[name])
    epoch_logs[label] = ranker_epochs[name]
table = pd.DataFrame(test_rows).T[[f"ndcg@{K}", f"recall@{K}", f"precision@{K}", f"coverage@{K}"]]
table.insert(1, "validation ndcg@10", pd.Series(val_ndcg))
display(table.sort_values(f"ndcg@{K}", ascending=False).round(4))
for label in pipeline_names.values():
    print(versus(label, "EASE"))
print(versus(pipeline_names["LambdaMART"], max([n for n in pipeline_names.values() if "LambdaMART" not in n],
                                               key=lambda n: test_rows[n][f"ndcg@{K}"])))

# %% [markdown]
# **Reading the table.** Its validation column is NDCG@10 on the whole validation split for the models also fitted
# on `inner` here (EASE, item-kNN and the neural retrievers; popularity, WMF and the two-tower without logQ were
# fitted on `train` only); the pipelines' validation numbers, on the held-out users only, are in §5's table. Each verdict below the table
# compares a pipeline with EASE on the same test users, at this notebook's budget. None of the pipelines beats EASE, and the chapter's bar (0.39, with an interval above zero against EASE) is
# not reached. The best, LambdaMART's, scores 0.3669: EASE is ahead by 0.0076, interval [−0.0150, −0.0001], which
# barely excludes zero and was not rechecked with other seeds, so read it as "at best level with EASE". The deep
# rankers are further behind (−0.0177 for DeepFM, −0.0242 for the MLP, −0.0256 for DCN-v2 with the pairwise loss,
# each interval below zero), and DCN-v2 with ListMLE fails (0.1763); a likely reason, not tested here: with binary
# labels, ListMLE also asks the model to reproduce an arbitrary order among the unwatched candidates, a target it
# cannot learn. At equal tuning budgets (one setting each at this profile), LambdaMART beats the best deep ranker,
# DeepFM (the last line: +0.0101, interval [+0.0037, +0.0167]).
#
# The validation gain did not carry over to test. Two likely reasons, neither measured here: the ranker learned from
# lists built by retrievers fitted on 64% of the data and labelled by a 16% slice, about 490 users' worth, and at test
# time it meets retrievers fitted on 80% of the data, whose scores and ranks are distributed differently; and every
# neural retriever was cut short by its epoch cap (the budget table of §8).
#
# **Ablation: where does the gain stop?** LambdaMART with its chosen setting, retrained (with the same early
# stopping) on a reduced pipeline each time: one retriever removed (its candidates and its features), only EASE's
# candidates, the time features removed, or only the retrievers' scores and ranks (no movie or user features). Each
# row's verdict compares it with the full pipeline on the same test users.

# %%
def ablation(keep=tuple(RETRIEVERS), drop=()):
    """Test NDCG per user of LambdaMART on the candidates of the kept retrievers, without the dropped features."""
    gone = [r for r in RETRIEVERS if r not in keep]
    features = [f for f in FEATURES if f not in drop and not any(f.startswith(r + " ") for r in gone)]
    kept = lambda frame: frame[frame[[f"proposed by {r}" for r in keep]].any(axis=1)]
    model = fit_lambdamart(TREE_GRID[best], features, kept(rank_train), kept(rank_val))
    part = kept(frame_test)
    scores = full_scores(part, model.predict(part[features]), ids_tr)
    return evaluate_ranking(scores, train, test, K, per_user=True)[f"ndcg@{K}"]


variants = {"EASE's candidates only": {"keep": ("EASE",)},
            **{f"without {r}": {"keep": tuple(x for x in RETRIEVERS if x != r)} for r in RETRIEVERS if r != "EASE"},
            "without the time features": {"drop": TIME_FEATURES},
            "retrievers' scores and ranks only": {"drop": [f for f in FEATURES if not f.startswith(tuple(RETRIEVERS))]}}
full_label = pipeline_names["LambdaMART"]
rows = {"full pipeline": {f"ndcg@{K}": per_user[full_label].mean(), "versus the full pipeline": ""}}
with Timer() as t_ablation:
    for variant, change in variants.items():
        per_user[f"ablation: {variant}"] = ablation(**change)
        boot = paired_bootstrap(per_user[f"ablation: {variant}"], per_user[full_label], n_boot=N_BOOTSTRAP, seed=SEED,
                                names=(variant, "full pipeline"))
        verdict = results.compare(boot, "ranking", f"ndcg@{K}")
        rows[variant] = {f"ndcg@{K}": boot["mean_a"], "versus the full pipeline": verdict}
rows["EASE alone (no ranker)"] = {f"ndcg@{K}": per_user["EASE"].mean(), "versus the full pipeline": ""}
with pd.option_context("display.max_colwidth", 130):
    display(pd.DataFrame(rows).T.round({f"ndcg@{K}": 4}))
print(f"{len(variants)} retrained rankers in {t_ablation.seconds:.0f} s")

# %% [markdown]
# At this notebook's budget the ablation reads as follows (every interval here resamples users from one training run;
# it leaves out the randomness of training, and none of these pairs was rechecked with other seeds):
# - **Item-kNN is the one retriever whose removal hurts** (EASE's was not removed): without it NDCG@10 falls to
#   0.354 (−0.0129, interval [−0.0201, −0.0059]).
# - **The two-tower's candidates hurt**: without them the pipeline scores 0.3734 (+0.0065, interval
#   [+0.0010, +0.0121], barely above zero). LightGCN's make no measurable difference (+0.0008, within noise), and
#   **EASE's candidates alone** do as well as the union of four (0.3716, +0.0047, within noise), as §4's recall at an
#   equal number of candidates suggested.
# - **The time features hurt** rather than help: without them the pipeline scores 0.3727 (+0.0059, the verdict says
#   it beats the full pipeline). The movie and user features together add nothing measurable: the retrievers' scores
#   and ranks alone give 0.3683, within noise of 0.3669.
# - **No variant reaches EASE alone** (0.3745) in its point estimate: the best, without the two-tower, is 0.0011
#   below it (the table gives no interval for that pair).
#
# So the gain stops at the ranker: on these candidates it adds nothing over EASE's own order at this budget, and
# what it adds on validation does not transfer to test. Adding retrievers widened recall (§4) but not recall per
# candidate, and it seems to have diluted the lists the ranker learns from with weaker proposals that the ranker
# does not learn to discount; 490 users' validation lists are few. The way forward these numbers point to is more
# labelled lists (several validation folds, or larger data), fewer and better retrievers, and features that survive
# the shift from `inner` to `train`; whether retrievers trained to convergence change the picture waits for the
# reference run.
#
# **A look at the lists.** The top five from EASE and from the LambdaMART pipeline for the user on whom the pipeline
# gains most over EASE (chosen for that, so not a typical user), with whether the user watched each movie in the test
# split:

# %%
example_user = int(per_user[full_label].sub(per_user["EASE"]).idxmax())
u = ids_tr.users([example_user])
history = train[train.user_id == example_user].merge(data.items, on="item_id")
years = pd.to_datetime(history.timestamp, unit="s").dt.year
print(f"user {example_user}: {len(history)} training movies, rated {years.min()}–{years.max()}; e.g. "
      f"{', '.join(history.title.head(4))}")
held = set(test[test.user_id == example_user].item_id)
pipeline_user = full_scores(frame_test[frame_test.user == u[0]], rankers["LambdaMART"].predict(
    frame_test.loc[frame_test.user == u[0], FEATURES]), ids_tr)[u[0]]
for name, s in [("EASE", ease.scores(u)[0]), ("two-stage (LambdaMART)", pipeline_user)]:
    top = np.argsort(-np.where(X_tr[u[0]].toarray()[0] > 0, -np.inf, s))[:5]
    print(f"\n{name}:")
    for i in ids_tr.item_ids[top]:
        print(f"  {'✓' if i in held else ' '} {titles[i]}")

# %% [markdown]
# ### Serving cost
# At serving time both stages run per request: four retrievers score the catalogue for one user, the union of their
# candidates gets its features, LambdaMART scores them, and the best K are returned. The class below does exactly
# the notebook's test-time computation for one user (LightGCN's propagated vectors and the movie tower's vectors are
# computed once, when the service starts, as a real service would), and a FastAPI application serves it on
# loopback, as in notebook 10. Here the server runs in a thread of this notebook's process (the models are in its
# memory), so client and server share the process and its two cores; the latencies are end to end, HTTP included.

# %%
class TwoStageRecommender:
    """Retrieval (EASE, item-kNN, two-tower, LightGCN) + LambdaMART for one user at a time."""

    def __init__(self):
        E = ops.convert_to_numpy(ops.normalize(gcn.propagate(), axis=-1))
        self.gcn_users, self.gcn_movies = E[:gcn.n_users], E[gcn.n_users:]
        self.movies = ops.convert_to_numpy(tower.movie_vectors(np.arange(ids_tr.n_items, dtype="int32")))
        self.timings = []

    def recommend(self, user_id, k=K):
        start = time.perf_counter()
        u = ids_tr.users([user_id])
        rows = {"EASE": ease.scores(u), "Item-kNN": knn.scores(u),
                "Two-tower": ops.convert_to_numpy(tower.user_vectors(u.astype("int32"))) @ self.movies.T / TEMPERATURE,
                "LightGCN": self.gcn_users[u] @ self.gcn_movies.T / TEMPERATURE}
        retrieved = time.perf_counter()
        frame = ranker_features(facts_tr, u, rows)
        best_k = np.argsort(-rankers["LambdaMART"].predict(frame[FEATURES]), kind="stable")[:k]
        self.timings.append((retrieved - start, time.perf_counter() - retrieved))
        return ids_tr.item_ids[frame.item.to_numpy()[best_k]]


service = TwoStageRecommender()
same = np.mean([set(service.recommend(u)) == set(ids_tr.item_ids[np.argsort(-full_scores(
    frame_test[frame_test.user == i], rankers["LambdaMART"].predict(frame_test.loc[frame_test.user == i, FEATURES]),
    ids_tr)[i], kind="stable")[:K]]) for i, u in enumerate(ids_tr.user_ids[:20])])
print(f"the service's top-{K} equals the pipeline's for {same:.0%} of 20 users")

# %%
from fastapi import FastAPI, HTTPException
import httpx, uvicorn

app = FastAPI(title="two-stage recommendations")


@app.get("/recommend")
def recommend(user_id: int, k: int = K):
    if user_id not in set(ids_tr.user_ids):
        raise HTTPException(404, f"unknown user_id {user_id}")
    return {"user_id": user_id, "item_ids": service.recommend(user_id, k).tolist()}


with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
thread = threading.Thread(target=server.run, daemon=True)
thread.start()
while not server.started:
    time.sleep(0.05)
service.timings.clear()
latencies = []
with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
    for user_id in np.random.default_rng(SEED).choice(ids_tr.user_ids, LOAD_REQUESTS):
        start = time.perf_counter()
        client.get("/recommend", params={"user_id": int(user_id)}).raise_for_status()
        latencies.append(1000 * (time.perf_counter() - start))
    unknown_status = client.get("/recommend", params={"user_id": -1}).status_code
server.should_exit = True
thread.join(timeout=10)
stages = 1000 * np.array(service.timings)
latency = {"p50 ms": np.percentile(latencies, 50), "p99 ms": np.percentile(latencies, 99),
           "retrieval p50 ms": np.percentile(stages[:, 0], 50), "ranking p50 ms": np.percentile(stages[:, 1], 50)}
print(f"{LOAD_REQUESTS} requests one at a time: " + ", ".join(f"{k} {v:.1f}" for k, v in latency.items())
      + f"; unknown user → {unknown_status}")

# %% [markdown]
# Per request, retrieval (four scorings of the catalogue, EASE's through its user-space form) took 43.8 ms at the
# median and ranking (the features of a few hundred candidates, then LambdaMART's trees) 12.5 ms; end to end, HTTP
# included, the median was 60.3 ms and the 99th percentile 90.5 ms, on a CPU that the client shares. At a catalogue of
# millions, exact retrieval would be replaced by the approximate search of notebook 10. The ranker's model only ever
# sees the candidates, but this notebook's features would not scale as they are: each retriever's log rank is taken
# among all the user's unseen movies, a sort of the whole catalogue per retriever, which at that size would have to
# come from the approximate search's own ordering of its candidates.

# %% [markdown]
# ## 7. Exercises
# **Exercise 1 · The FM identity.** Write `fm_pairwise(x, V)`: $\sum_{f<g} \langle v_f, v_g\rangle x_f x_g$ in
# $O(kn)$ for a feature vector `x` (n,) and the feature vectors `V` (n, k). The check compares it with the naive
# double loop, and with the pairwise part of the movie bias of this notebook's FM for one movie (its ID field, value
# 1, followed by its side features).

# %% tags=["nbval-check-output"]
def fm_pairwise(x, V):
    # YOUR CODE HERE
    raise NotImplementedError


movie = 0
fm_U, fm_M, fm_bias = fm.towers(np.array([0], "int32"), np.array([movie], "int32"))
x_movie = np.concatenate([[1.0], content_tr[movie]])
V_movie = np.vstack([ops.convert_to_numpy(fm.movie_id.embeddings)[movie], ops.convert_to_numpy(fm.V)])
linear = float(ops.convert_to_numpy(fm.movie_w.embeddings)[movie, 0] + content_tr[movie] @ ops.convert_to_numpy(fm.w))
check(fm_pairwise, [((x_demo, V_demo), fm_pairwise_naive(x_demo, V_demo)),
                    ((np.array([1.0, 2.0]), np.array([[1.0, 0.0], [3.0, 4.0]])), 6.0),
                    ((x_movie, V_movie), float(ops.convert_to_numpy(fm_bias)[0]) - linear,
                     "the FM's own movie term: ½(‖Σ v_f x_f‖² − Σ ‖v_f‖² x_f²)")], tol=1e-3, name="fm_pairwise")

# %% [markdown]
# <details><summary>Reveal a solution</summary>
#
# ```python
# def fm_pairwise(x, V):
#     s = x @ V  # Σ_f v_f x_f, one number per dimension
#     return 0.5 * float(np.sum(s ** 2 - (x ** 2) @ (V ** 2)))
# ```
# </details>
#
# **Exercise 2 · The logQ-corrected in-batch loss.** Write `in_batch_loss(U, V, items, log_q, tau)`: the mean over
# the batch of the in-batch softmax loss of §1, from the user vectors `U` (B, d), the movie vectors `V` (B, d) of the
# same rows, the movies' indices `items` (B,), every movie's `log_q`, and the temperature. Mask accidental hits (a
# column holding the same movie as the row's own, elsewhere than the diagonal) with −1e9. The check compares it with
# the loss of this notebook's two-tower model on a batch of its training pairs that holds a repeated movie.

# %% tags=["nbval-check-output"]
def in_batch_loss(U, V, items, log_q, tau):
    # YOUR CODE HERE
    raise NotImplementedError


u_batch, i_batch = X_tr[:40].nonzero()
u_batch, i_batch = u_batch[::7][:64].astype("int32"), i_batch[::7][:64].astype("int32")
i_batch[5] = i_batch[9]  # a repeated movie: an accidental hit for rows 5 and 9
model_loss = float(ops.mean(in_batch_softmax(None, tower({"user": u_batch, "item": i_batch}))))
U_batch = ops.convert_to_numpy(tower.user_vectors(u_batch, i_batch))
V_batch = ops.convert_to_numpy(tower.movie_vectors(i_batch))
check(in_batch_loss, [((U_batch, V_batch, i_batch, log_popularity(X_tr), TEMPERATURE), model_loss,
                       "the two-tower's own loss on this batch"),
                      ((np.eye(2), np.eye(2), np.array([0, 1]), np.log([0.5, 0.5]), 1.0), np.log(1 + np.exp(-1)))],
      tol=1e-3, name="in_batch_loss")

# %% [markdown]
# <details><summary>Reveal a solution</summary>
#
# ```python
# def in_batch_loss(U, V, items, log_q, tau):
#     logits = U @ V.T / tau - log_q[items][None, :]
#     hits = (items[:, None] == items[None, :]) & ~np.eye(len(items), dtype=bool)
#     logits = np.where(hits, -1e9, logits)
#     logits = logits - logits.max(axis=1, keepdims=True)
#     log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
#     return float(-np.mean(np.diag(log_softmax)))
# ```
# </details>
#
# **Exercise 3 · One LightGCN propagation step.** Write `propagate_once(X, E)`: $\hat A E$ for the binary user ×
# movie matrix `X` (a SciPy sparse matrix) and the stacked embeddings `E` (users first, then movies), with
# $\hat A = D^{-1/2} A D^{-1/2}$ and $A = \begin{pmatrix} 0 & X \\ X^\top & 0\end{pmatrix}$. The check compares it
# with one layer of this notebook's LightGCN on its own learned $E^{(0)}$.

# %% tags=["nbval-check-output"]
def propagate_once(X, E):
    # YOUR CODE HERE
    raise NotImplementedError


E0 = ops.convert_to_numpy(gcn.E0)
check(propagate_once, [((sp.csr_matrix([[1.0, 1.0]]), np.array([[1.0], [2.0], [4.0]])),
                        np.array([[6 / np.sqrt(2)], [1 / np.sqrt(2)], [1 / np.sqrt(2)]])),
                       ((X_tr, E0), ops.convert_to_numpy(gcn.step(E0)), "one layer of the notebook's LightGCN")],
      tol=1e-4, name="propagate_once")

# %% [markdown]
# <details><summary>Reveal a solution</summary>
#
# ```python
# def propagate_once(X, E):
#     X = sp.csr_matrix(X)
#     d_users, d_movies = np.asarray(X.sum(1)).ravel(), np.asarray(X.sum(0)).ravel()
#     r_u = 1 / np.sqrt(np.where(d_users > 0, d_users, 1))
#     r_i = 1 / np.sqrt(np.where(d_movies > 0, d_movies, 1))
#     n_users = X.shape[0]
#     users = r_u[:, None] * (X @ (r_i[:, None] * E[n_users:]))  # each user: its movies' vectors, weighted
#     movies = r_i[:, None] * (X.T @ (r_u[:, None] * E[:n_users]))  # each movie: its users' vectors, weighted
#     return np.vstack([users, movies])
# ```
# </details>
#
# **Going further (no checks).** (1) Give the two-tower's user tower notebook 06's GRU over the user's last 50 movies
# instead of the mean, and compare recall@100. (2) Add WMF and the FM as retrievers and rerun the ablation: does a
# fifth retriever still add recall? (3) Train the rankers on several folds of the validation split (each user's
# validation interactions split in two) to give them more labelled lists. (4) Replace exact retrieval by notebook
# 10's HNSW index and measure the pipeline's NDCG and latency.

# %% [markdown]
# ## 8. Results
# Every model's test metrics on the ranking protocol, the cold-start pair, and the service's measurements. The budget
# table says what each model got at this profile; a model stopped by its cap is labelled "cut short by the budget".
# The reference table is meant to put beside each model its number in the reference profile (`notebooks/reference/`,
# every model trained until early stopping ends it), with its epochs and the reference run's verdicts. No reference
# run of this notebook is committed yet, so its reference columns are empty (the cell says so), and every verdict in
# this notebook holds at its laptop budget only.

# %%
MINUS_EASE = f"difference from EASE, ndcg@{K}"
for name, metrics in test_rows.items():
    extra = {key: value for key, value in [("epochs", epoch_logs.get(name)), ("budget", budgets.get(name))] if value}
    if (name, "EASE") in boots:  # the pipelines: their interval against EASE, recorded with them
        b = boots[name, "EASE"]
        metrics = {**metrics, MINUS_EASE: b["diff"], f"{MINUS_EASE} (95% low)": b["low"],
                   f"{MINUS_EASE} (95% high)": b["high"]}
    results.record(name, "ranking", metrics, seconds.get(name), **extra)
for name, metrics in cold_rows.items():
    extra = {"epochs": training.EpochLog(COLD_EPOCHS, COLD_EPOCHS, COLD_EPOCHS),
             "budget": f"{COLD_EPOCHS} epochs (fixed)"} if name.startswith("Two") else {}
    results.record(name, "cold-start", metrics, seconds.get(name), **extra)
results.record("Two-stage service (LambdaMART pipeline)", "systems",
               {**latency, "top-10 agreement with the pipeline": same, "unknown user status": unknown_status})
display(results.budget_table())
with pd.option_context("display.max_colwidth", 120):
    display(results.reference_table("ranking", f"ndcg@{K}"))

# %% [markdown]
# The budget table shows what limits this notebook's verdicts: every neural retriever (the FM, the two-tower with and
# without logQ, LightGCN and its 0-layer twin, and the cold-start two-tower) stopped at its epoch cap, cut short by the
# budget, so no conclusion about those model families is drawn here; they wait for the reference run. The rankers
# (LambdaMART and the four deep ones) were stopped by early stopping, within their caps.
#
# ## Summary
# - **A factorisation machine is a two-tower model.** Its pairwise interactions cost $O(kn)$ by the identity, and for
#   ranking one user's movies they reduce to a movie bias plus the dot product of a user vector and a movie vector,
#   each a sum of feature vectors. DeepFM adds an MLP over the same field vectors; DCN-v2 crosses features explicitly.
# - **In-batch negatives need the logQ correction**, which turns the batch's sum into an importance-sampling estimate
#   of the full softmax's denominator. Without it, the two-tower learned popularity backwards (test NDCG@10 0.0753
#   against 0.2953). A library layer is code: KerasRS 0.4.0's `RemoveAccidentalHits` leaves the logits unchanged
#   (it adds about $10^{-40}$), which a four-logit test shows.
# - **Two towers and graphs are retrievers.** Content lets the two-tower model score movies nobody has rated (0.1713
#   against the genre profile's 0.0849 on the cold-start protocol). At this notebook's budget, which cut both short,
#   neither comes near WMF (0.3635): the two-tower reached 0.2953 and LightGCN 0.2929, and LightGCN's propagation
#   added nothing measurable over the same model without it.
# - **Recall bounds the pipeline.** No ranker recovers a movie that no retriever proposed; the union of four
#   retrievers holds more of the held-out interactions than any one of them at the same $K$, but about as much as
#   EASE alone at the same number of candidates per user.
# - **The ranker learns one level down.** Retrievers fitted on `inner`, labels from `val`, retrievers refitted on
#   `train` for test: the ranker never sees a test interaction. Done this way, on 610 users, the best two-stage
#   pipeline (LambdaMART, 0.3669) did **not** beat EASE (0.3745) at this budget: EASE is ahead by 0.0076, interval
#   [−0.0150, −0.0001], barely excluding zero, though the pipeline led on validation. The ablation shows where the
#   gain stops: item-kNN's candidates helped, the two-tower's candidates and the time features hurt, EASE's
#   candidates alone did as well as all four, and no variant reached EASE alone. At the same tuning budget,
#   LambdaMART beat the best deep ranker, DeepFM (+0.0101, interval [+0.0037, +0.0167]).
#
# ## References
# - Covington, P., Adams, J., and Sargin, E. (2016). Deep neural networks for YouTube recommendations. *RecSys*.
# - Rendle, S. (2010). Factorization machines. *ICDM*.
# - Guo, H., Tang, R., Ye, Y., Li, Z., and He, X. (2017). DeepFM: a factorization-machine based neural network for
#   CTR prediction. *IJCAI*.
# - Wang, R., Shivanna, R., Cheng, D., Jain, S., Lin, D., Hong, L., and Chi, E. (2021). DCN V2: improved deep & cross
#   network and practical lessons for web-scale learning to rank systems. *WWW*.
# - Yi, X., Yang, J., Hong, L., Cheng, D. Z., Heldt, L., Kumthekar, A., Zhao, Z., Wei, L., and Chi, E. (2019).
#   Sampling-bias-corrected neural modeling for large corpus item recommendations. *RecSys* (in-batch softmax, logQ).
# - Bengio, Y., and Senécal, J.-S. (2008). Adaptive importance sampling to accelerate training of a neural
#   probabilistic language model. *IEEE Transactions on Neural Networks*.
# - He, X., Deng, K., Wang, X., Li, Y., Zhang, Y., and Wang, M. (2020). LightGCN: simplifying and powering graph
#   convolution network for recommendation. *SIGIR*.
# - Burges, C. J. C. (2010). From RankNet to LambdaRank to LambdaMART: an overview. Microsoft Research
#   MSR-TR-2010-82.
# - Ke, G., Meng, Q., Finley, T., Wang, T., Chen, W., Ma, W., Ye, Q., and Liu, T.-Y. (2017). LightGBM: a highly
#   efficient gradient boosting decision tree. *NeurIPS*.
# - Xia, F., Liu, T.-Y., Wang, J., Zhang, W., and Li, H. (2008). Listwise approach to learning to rank: theory and
#   algorithm. *ICML* (ListMLE).
# - Steck, H. (2019). Embarrassingly shallow autoencoders for sparse data. *WWW* (EASE).
# - KerasRS: keras.io/keras_rs; the source of `RemoveAccidentalHits` in KerasRS 0.4.0
#   (`keras_rs/src/layers/retrieval/remove_accidental_hits.py`), and keras-team/keras-rs pull request #206, which
#   proposes a fix.
