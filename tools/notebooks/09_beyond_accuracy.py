# %% [markdown]
# # 09 · Beyond accuracy: diversity, novelty, popularity bias, fairness, explanations and privacy
#
# Every notebook so far asked one question of a recommender: does it rank the movies a user will watch near the top?
# A recommender that only answers it well can still serve ten near-identical films, push the same blockbusters to
# everyone, serve some users far worse than others, recommend without being able to say why, and leak what its
# training users watched. This notebook measures those properties on the course's models, and tries the standard
# remedies, each time asking what the remedy costs in accuracy.
#
# **In this notebook you will**
# - measure diversity, novelty, coverage, exposure, long-tail share and calibration of five course models and a
#   random one, and see where each sits between accuracy and the rest;
# - re-rank the best model's lists for diversity (MMR) and for calibration (Steck, 2018), with the trade-off weight
#   chosen on validation, and draw the trade-off curves;
# - push exposure towards the long tail with xQuAD-style re-ranking, and see which users gain and which lose;
# - explain recommendations three ways (neighbours, attention, integrated gradients) and test whether an explanation
#   is faithful to the model;
# - train matrix factorisation with differential privacy (DP-SGD), compute ε with a maintained accountant, draw the
#   utility–privacy curve, and attack the models with membership inference.
#
# **Prerequisites:** notebooks 01 (the protocols, the paired bootstrap), 02 (item-kNN), 03 (matrix factorisation,
# WMF), 06 (SASRec) and 07 (EASE, Mult-VAE).
# **Time:** about 4 minutes on a 2-core CPU at the default parameters (no GPU needed).

# %% tags=["parameters"]
SEED = 42  # seeds every random number generator and every split
DATASET = "ml-latest-small"
SMOKE = False  # True: a few epochs and steps, for a quick end-to-end check
K = 10  # cut-off of every list metric (@10)
TEST_FRAC = 0.2  # the course's standard split: stratified_split(ratings, TEST_FRAC, SEED)
VAL_FRAC = 0.2  # validation split carved from train: EASE's λ and every re-ranking weight are chosen on it
N_BOOTSTRAP = 1000  # resamples of users in the paired bootstraps
HEAD_SHARE = 0.2  # the head: the 20% most popular training movies; the rest is the long tail
# §1 the landscape: each model with the settings its notebook chose on validation
EASE_GRID = [50, 100, 200, 400, 800, 1600]  # λ values tried on validation (notebook 07)
WMF_SETTINGS = {"factors": 128, "alpha": 3.0, "reg": 30.0, "iterations": 20}  # notebook 03
KNN_SETTINGS = {"k": 50, "alpha": 0.5}  # notebook 02's top-K item-kNN
VAE_EPOCHS = 20  # Mult-VAE with notebook 07's settings and its validation-chosen number of epochs
MIN_ITEM_COUNT = 5  # Mult-VAE models the movies with at least this many training users (as in notebooks 07, 08)
# §2 and §3 re-ranking
N_CANDIDATES = 50  # each re-ranker reorders the base model's top N_CANDIDATES movies
MMR_WEIGHTS = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4, 0.35, 0.3, 0.2, 0.1, 0.0]  # λ: relevance against similarity
CALIBRATION_WEIGHTS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]  # λ: weight of the KL term
XQUAD_WEIGHTS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]  # λ: weight of the long-tail term
CALIBRATION_ALPHA = 0.01  # Steck's smoothing of the list's genre distribution
KEEP_NDCG = 0.93  # each re-ranker's weight: the strongest one that keeps this share of the base's validation NDCG
# §4 explanations (SASRec on the sequential protocol, notebook 06's settings)
N_EVENTS = 5
MAX_LEN, MAX_HISTORY, DIM, DROPOUT = 50, 200, 64, 0.2
N_SAMPLED, NEG_POWER, BATCH, LR = 1024, 0.75, 32, 3e-3
SAS_BLOCKS, SAS_HEADS, SAS_EPOCHS = 2, 1, 10  # 10 epochs: notebook 06's cap (validation still rose there)
N_EXPLAINED = 200  # users in the faithfulness test
IG_STEPS = 32  # steps of the integrated-gradients path integral
# §5 privacy: MF trained with DP-SGD (the recipe was chosen on validation, tools/tuning/nb09_dp_search.py)
DP_EPSILONS = [8.0, 4.0, 1.0]  # target ε of the private models (δ = 1 / number of training interactions)
DP_NEGATIVES = 16  # uniformly drawn negatives per interaction (BPR loss)
DP_BATCH = 16384  # expected interactions per step (Poisson sampling: each is in a step with probability q)
DP_EPOCHS = 4  # steps = DP_EPOCHS / q
DP_CLIP = 1.0  # C: each interaction's gradient is clipped to norm C
DP_SETTINGS = {  # (factors, optimizer, learning rate) per ε: the best on validation in tools/tuning/nb09_dp_search.py
    "none": (64, "adam", 0.05), 8.0: (16, "sgd", 100.0), 4.0: (16, "sgd", 100.0), 1.0: (16, "sgd", 100.0)}
DP_BISECTION_ROUNDS = 14  # halvings (in log scale) of the search for each ε's noise multiplier
MIA_PAIRS = 5000  # members and as many non-members for the membership-inference attack

# %%
if SMOKE:  # a quick end-to-end check (the tests use it): the same data and splits, far less training
    EASE_GRID, VAE_EPOCHS, SAS_EPOCHS, MAX_HISTORY, N_EXPLAINED, IG_STEPS = [200], 1, 1, 30, 30, 8
    WMF_SETTINGS = {**WMF_SETTINGS, "factors": 32, "iterations": 3}
    MMR_WEIGHTS, CALIBRATION_WEIGHTS, XQUAD_WEIGHTS = [1.0, 0.5, 0.0], [0.0, 0.5, 0.9], [0.0, 0.5]
    DP_EPOCHS, N_BOOTSTRAP, MIA_PAIRS, DP_BISECTION_ROUNDS = 1, 200, 1000, 6
    MAX_LEN, SAS_BLOCKS, N_CANDIDATES = 20, 1, 30

# %%
from recsys_helpers import env

tf, results = env.start_notebook("09_beyond_accuracy", SEED)
import keras
from keras import ops
import numpy as np, pandas as pd, matplotlib.pyplot as plt
from IPython.display import display
import dp_accounting
from absl import logging as absl_logging  # dp-accounting logs through absl (TensorFlow installs it)

from recsys_helpers import sampling
from recsys_helpers.baselines import ItemKNN, Popularity
from recsys_helpers.beyond_accuracy import (activity_groups, aplt, average_popularity, by_group, calibration_kl,
                                            exposure_gini, intra_list_diversity, item_popularity, long_tail, novelty)
from recsys_helpers.data import load_movielens
from recsys_helpers.evaluation import Timer, evaluate_lists, evaluate_sequential, paired_bootstrap, top_k
from recsys_helpers.exercises import check
from recsys_helpers.interactions import IdMap, pad_histories, train_index, training_stretches, user_histories
from recsys_helpers.models import EASE, WMF, MultVAE, SASRec, Seeds, sampled_softmax_loss
from recsys_helpers.split import sequential_split, stratified_split

absl_logging.set_verbosity(absl_logging.ERROR)  # the RDP accountant warns when it skips an order it cannot compute
pd.set_option("display.width", 200)
pd.set_option("display.max_columns", 20)

# %% [markdown]
# ## 0. Data, splits and what is measured
# The ranking protocol on the standard split, as in notebooks 07 and 08: every rating is an interaction, each user's
# unseen movies are ranked, and the 20% held out per user is the test set. Weights and λ are chosen on a validation
# split carved from train the same way (`inner` → `val`); test is used once per list.
#
# Besides accuracy, each top-10 list is measured by the package's `beyond_accuracy` module (its docstring has the
# definitions; each metric has hand-worked unit tests; novelty follows Zhou et al., 2010):
#
# | metric | what it asks | formula |
# |---|---|---|
# | ILD@10 | are the ten movies different from each other? | mean Jaccard distance of genre sets over the 45 pairs |
# | ILD-emb@10 | the same, by who watches them | mean cosine distance of WMF's item vectors over the 45 pairs |
# | novelty@10 | does it list movies few people know? | mean $-\log_2 p(i)$, $p(i)$: share of users who saw $i$ |
# | APLT@10 | how much of the list is long tail? | share of the list outside the 20% most popular movies |
# | ARP@10 | how popular is the list? | mean number of training users of the listed movies |
# | miscalibration@10 | does the genre mix match the history's? | $\mathrm{KL}(p_u \,\Vert\, \tilde q_u)$ (Steck) |
# | coverage@10 | how much of the catalogue is ever recommended? | share of training movies in at least one list |
# | exposure Gini@10 | how unequally are the list slots spread over movies? | Gini index of the slot counts |
#
# All but the last two are per-user numbers (so a paired bootstrap can compare them); coverage and Gini describe all
# lists together. None of them is a goal by itself: a random recommender scores high on most of them, so each is
# read next to NDCG.
#
# **What the intervals cover.** Every interval in this notebook resamples users (or events) from one training run
# (the membership attack's is a binomial interval over its pairs, also from one run); it leaves out the randomness
# of training: another seed would give somewhat different models. An interval that only just excludes zero is
# therefore a weak verdict, and the course's rule is to rerun such a pair with three seeds before calling it; this
# notebook runs one seed and says so where it matters.

# %%
data = load_movielens(DATASET)
n_users_all, n_items_all = data.ratings.user_id.nunique(), data.ratings.item_id.nunique()
env.require_memory(6 * 8 * n_users_all * n_items_all + 8 * 3 * min(n_users_all, n_items_all) ** 2,
                   "the dense user × movie matrices and EASE's Gram matrix", DATASET)
train, test = stratified_split(data.ratings, TEST_FRAC, SEED)
inner, val = stratified_split(train, VAL_FRAC, SEED)
titles = data.items.set_index("item_id")["title"]
genres = data.items.set_index("item_id")["genres"]  # a list of genres per movie (empty if none is listed)
ids_in, ids_tr = IdMap.from_train(inner), IdMap.from_train(train)
X_in = ids_in.interactions(inner).toarray().astype(np.float32)
X_tr = ids_tr.interactions(train).toarray().astype(np.float32)

genre_names = sorted({g for gs in genres for g in gs})
genre_features = pd.DataFrame([[g in gs for g in genre_names] for gs in genres], index=genres.index,
                              columns=genre_names).astype(float)  # binary movie × genre matrix
popularity = item_popularity(train)  # training users per movie
tail = long_tail(popularity, HEAD_SHARE)
histories = train.groupby("user_id")["item_id"].agg(list)  # each user's training movies (for calibration)
with Timer() as t_wmf:  # WMF (notebook 03) is one of the compared models, and its item vectors define ILD-emb
    wmf = WMF(seed=SEED, **WMF_SETTINGS).fit(train)
item_vectors = pd.DataFrame(wmf.item_factors, index=ids_tr.item_ids)
test_users = np.sort(test.user_id.unique())
test_users = test_users[ids_tr.users(test_users, strict=False) >= 0]
print(f"train: {len(train):,} interactions of {ids_tr.n_users} users with {ids_tr.n_items:,} movies; test: "
      f"{len(test):,} interactions of {len(test_users)} users; {len(genre_names)} genres; long tail: {len(tail):,} "
      f"movies ({1 - HEAD_SHARE:.0%} of the catalogue) with {popularity[list(tail)].sum() / popularity.sum():.0%} of "
      f"the training interactions")

# %% [markdown]
# `assess` measures one set of lists (one per test user) on every metric and keeps the per-user values for the
# bootstraps and the per-group tables; `model_lists` turns a model's scores into its top-10 lists with `top_k`
# (training movies excluded), the same lists `evaluate_ranking` scores.

# %%
rows, per_user, seconds = {}, {}, {}


def beyond_metrics(user_ids, lists):
    """Per-user beyond-accuracy values of top-K lists (item ids), one row per user."""
    return pd.DataFrame({
        f"ild@{K}": intra_list_diversity(lists, genre_features, K, per_user=True),
        f"ild_emb@{K}": intra_list_diversity(lists, item_vectors, K, per_user=True, distance="cosine"),
        f"novelty@{K}": novelty(lists, popularity, ids_tr.n_users, K, per_user=True),
        f"aplt@{K}": aplt(lists, tail, K, per_user=True),
        f"arp@{K}": average_popularity(lists, popularity, K, per_user=True),
        f"miscalibration@{K}": calibration_kl(lists, histories.reindex(user_ids).tolist(), genres, K,
                                              alpha=CALIBRATION_ALPHA, per_user=True),
    }, index=pd.Index(user_ids, name="user_id"))


def assess(name, user_ids, lists, train_seconds=None):
    """Accuracy and beyond-accuracy metrics of one list per test user; keeps the per-user values."""
    values = pd.concat([evaluate_lists(user_ids, lists, test, K, per_user=True), beyond_metrics(user_ids, lists)],
                       axis=1)
    per_user[name], seconds[name] = values, train_seconds
    rows[name] = {**values.mean().to_dict(), f"coverage@{K}": len(np.unique(lists[:, :K])) / ids_tr.n_items,
                  f"exposure gini@{K}": exposure_gini(lists, ids_tr.item_ids, K)}
    return rows[name]


def model_lists(scores, n=K):
    """The top-n unseen training movies of every test user."""
    return top_k(scores, train, n, test_users)


def compare(a, b, metrics=(f"ndcg@{K}", f"ild_emb@{K}", f"ild@{K}", f"miscalibration@{K}", f"aplt@{K}")):
    """Paired-bootstrap differences (a minus b) of per-user metrics."""
    out = {}
    for m in metrics:
        r = paired_bootstrap(per_user[a][m], per_user[b][m], n_boot=N_BOOTSTRAP, seed=SEED, names=(a, b))
        out[m] = f"{r['diff']:+.4f} [{r['low']:+.4f}, {r['high']:+.4f}]"
    return pd.Series(out, name=f"{a} − {b}")


# %% [markdown]
# ## 1. The accuracy–diversity landscape
# Five models of the course, each fitted on train with the settings its notebook chose on validation (EASE's λ is
# chosen here again on the validation split, from notebook 07's grid), and a random recommender as the far corner:
#
# | model | notebook | what it is |
# |---|---|---|
# | Random | | uniform random scores: the most diverse and the least accurate lists |
# | Popularity | 01 | the most-watched unseen movies |
# | Item-kNN | 02 | top-50 cosine neighbours, scored by the history |
# | WMF | 03 | weighted matrix factorisation by ALS |
# | EASE | 07 | the closed-form linear autoencoder |
# | Mult-VAE | 07 | the variational autoencoder (a neural model), fold-in scoring |

# %%
ease_val = {lam: evaluate_lists(*top_k(EASE(lam).fit(X_in).scores, inner, K, np.sort(val.user_id.unique())), val, K,
                                ids_in.n_items)[f"ndcg@{K}"] for lam in EASE_GRID}
EASE_LAMBDA = max(ease_val, key=ease_val.get)
print("EASE validation NDCG@10 by λ: " + ", ".join(f"{lam}: {v:.4f}" for lam, v in ease_val.items())
      + f"; chosen λ = {EASE_LAMBDA}")

keep = X_tr.sum(0) >= MIN_ITEM_COUNT


def expand(block):
    """Scores over the modelled movies → scores over all training movies (the rest never recommended)."""
    full = np.full((block.shape[0], len(keep)), -np.inf, dtype=np.float32)
    full[:, keep] = block
    return full


rng_random = np.random.default_rng(SEED)
knn = ItemKNN(**KNN_SETTINGS)  # fitted in the loop below; §4 explains its recommendations


def fit_mult_vae():
    vae = MultVAE(seed=SEED).fit(X_tr[:, keep], VAE_EPOCHS)  # notebook 07's settings (the package's compact class)
    return lambda user_idx: expand(vae.scores(user_idx))


models = {  # name -> a function that fits the model and returns its scores(user_idx)
    "Random": lambda: (lambda user_idx: rng_random.random((len(user_idx), ids_tr.n_items))),
    "Popularity": lambda: Popularity().fit(train).scores,
    "Item-kNN": lambda: knn.fit(train).scores,
    "WMF": lambda: wmf.scores,  # fitted in §0
    "EASE": lambda: EASE(EASE_LAMBDA).fit(X_tr).scores,
    "Mult-VAE": fit_mult_vae,
}
scorers, lists_of = {}, {}
for name, fit in models.items():
    with Timer() as t:
        scorers[name] = fit()
    user_ids, lists_of[name] = model_lists(scorers[name])
    assess(name, user_ids, lists_of[name], t_wmf.seconds if name == "WMF" else t.seconds)
landscape = pd.DataFrame(rows).T
columns = [f"ndcg@{K}", f"recall@{K}", f"ild@{K}", f"ild_emb@{K}", f"novelty@{K}", f"aplt@{K}", f"arp@{K}",
           f"miscalibration@{K}", f"coverage@{K}", f"exposure gini@{K}"]
display(landscape[columns].round(3))
print("Paired-bootstrap differences from EASE over the test users (difference: model minus EASE, 95% interval):")
display(pd.DataFrame([compare(name, "EASE", (f"ndcg@{K}", f"novelty@{K}", f"ild_emb@{K}", f"miscalibration@{K}"))
                      for name in ["WMF", "Item-kNN", "Mult-VAE", "Popularity"]]))

# %%
fig, axes = plt.subplots(1, 4, figsize=(16, 3.8), sharey=True)
for ax, metric, label in zip(axes, [f"novelty@{K}", f"coverage@{K}", f"ild@{K}", f"ild_emb@{K}"],
                             ["novelty@10 (bits)", "catalogue coverage@10", "ILD@10 (genre Jaccard distance)",
                              "ILD-emb@10 (cosine distance of WMF vectors)"]):
    for name, row in landscape.iterrows():
        ax.scatter(row[metric], row[f"ndcg@{K}"], s=40)
        below = name in ("WMF", "Mult-VAE")  # their neighbours' labels sit above the points
        ax.annotate(name, (row[metric], row[f"ndcg@{K}"]), textcoords="offset points", xytext=(5, -11 if below else 4),
                    fontsize=8)
    ax.set_xlabel(label)
    ax.grid(alpha=0.3)
axes[0].set_ylabel(f"test NDCG@{K}")
fig.suptitle("Accuracy against novelty, coverage and diversity (one point per model)", y=1.02)
plt.show()

# %% [markdown]
# **Reading the landscape.**
# - **Random** is the far corner: the most diverse, novel and evenly spread lists, and almost no accuracy. Every
#   beyond-accuracy metric here can be raised by recommending worse, which is why each is read next to NDCG.
# - Among the trained models, **EASE** is the most accurate and also the best calibrated (the lowest KL): its lists
#   follow the genre mix of the user's history most closely. It is also the least novel of the four personalised
#   models (item-kNN, WMF, EASE, Mult-VAE), with WMF close behind: the two most accurate list the most popular movies.
#   Every difference from EASE in the interval table excludes zero; the smallest NDCG difference is WMF's (−0.011).
# - **Item-kNN** and **Mult-VAE** give up accuracy and list less popular movies (higher novelty, lower ARP), cover more
#   of the catalogue and put some of their slots in the long tail (APLT 0.016 and 0.007: 1.6% and 0.7% of the
#   slots), where EASE and WMF put almost none.
# - **Diversity within a list** barely separates the trained models (genre ILD 0.755–0.787, ILD-emb 0.53–0.55; EASE's
#   ILD-emb is higher than the other three's by 0.013–0.016, beyond noise but small). Popularity is the odd one: the
#   least diverse by co-watching (its ten blockbusters are watched by the same people) but diverse by genre
#   (blockbusters span genres), a reminder that "diverse" depends on the distance.
# - **Exposure** is concentrated for every trained model (Gini above 0.97): a few hundred movies take almost all
#   the slots, and 80% of the catalogue, the long tail, is almost never shown.
#
# ## 2. Re-ranking for diversity and for calibration
# A re-ranker leaves the model alone and reorders its top `N_CANDIDATES` movies, building each list greedily, one slot
# at a time. Both re-rankers here start from **EASE**, the most accurate model above. Relevance is EASE's score
# rescaled per user to $[0, 1]$ over the candidates, so that one trade-off weight means the same for every user.
#
# **MMR** (maximal marginal relevance; Carbonell and Goldstein, 1998) adds, at each step, the candidate that maximises
# $$\lambda\, \mathrm{rel}(i) - (1-\lambda) \max\big(0,\, \max_{j \in S} \mathrm{sim}(i, j)\big), \qquad i \notin S,$$
# where $S$ is the list so far and sim is the cosine similarity of WMF's item vectors (movies watched by the same
# people are close): $\lambda = 1$ is the model's own order, $\lambda = 0$ ignores relevance after the first pick.
# The floor at 0 is this notebook's variant (the code starts each candidate's redundancy at 0 and keeps the running
# maximum): a candidate whose vector points away from every listed movie is not rewarded for it. Carbonell and
# Goldstein's MMR, and Exercise 2, use the plain maximum; the two differ only for a candidate whose similarity to
# every listed movie is negative (how often that happens among a user's top 50 was not measured).
# The first pick is always the most relevant candidate: with nothing listed every candidate scores
# $\lambda\,\mathrm{rel}$, and at $\lambda = 0$ the tie goes to the first, most relevant, position. It
# targets ILD-emb directly (ILD-emb is the mean of $1 - \mathrm{sim}$ over the list's pairs). The vectors come from
# WMF fitted on the same split as EASE.
#
# **Calibrated re-ranking** (Steck, 2018) adds the candidate that maximises
# $$(1-\lambda) \sum_{i \in S \cup \{c\}} \mathrm{rel}(i) \;-\; \lambda\,
# \mathrm{KL}\big(p_u \,\Vert\, \tilde q(S \cup \{c\})\big),$$
# where $p_u$ is the genre distribution of the user's training history and $\tilde q$ that of the list (smoothed with
# $\alpha = 0.01$): it makes the list's genre mix match the user's, so that a user who watches 70% comedies and 30%
# documentaries does not get ten comedies. This is Steck's own objective (relevance summed over the list, minus λ
# times the KL), built greedily as he does. The sum over the already-listed movies $S$ is the same for every
# candidate, so it drops out of each step's choice: at each step the candidate's own relevance, between 0 and 1 after
# the rescaling, competes with λ times the KL the list would have with it added. λ = 0.5 is therefore not an "equal
# split" between two comparable halves; it is one point on a scale that the validation split calibrates below.
# One simplification: $\tilde q$ counts each listed movie once, as the miscalibration metric does, where Steck allows a
# weight $w_{r(i)}$ that depends on the movie's rank in the list.
#
# Mind the direction of λ: in MMR λ weighs relevance (λ = 1: no re-ranking), in calibration (and in xQuAD, §3) it
# weighs the other term (λ = 0: no re-ranking).
#
# **Choosing the weight.** Each re-ranker is run on the validation split (EASE fitted on `inner`), and the weight kept
# is the strongest one (the most re-ranking) whose validation NDCG is still at least `KEEP_NDCG` = 93% of EASE's
# own. The aim is that the re-ranked lists keep at least 90% of EASE's NDCG on **test** (for MMR the course's tests
# check that bar). The weight is chosen on validation, whose NDCG ratios differ somewhat from test's, so the rule
# asks for 3 points more than the aim; the 3 points are a judgement, not a computed bound. Test is then used once at
# the chosen weight, and the curves below show every weight on test for the picture only.

# %%
def candidates(scores, fit_frame, users, n=N_CANDIDATES):
    """The top-n unseen movies of ``users`` (ids) and their scores rescaled per user to [0, 1]."""
    ids = IdMap.from_train(fit_frame)
    _, items = top_k(scores, fit_frame, n, users)  # item ids, best first
    raw = np.take_along_axis(scores(ids.users(users)), ids.items(items.ravel()).reshape(items.shape), axis=1)
    low, high = raw.min(1, keepdims=True), raw.max(1, keepdims=True)
    return items, (raw - low) / np.where(high > low, high - low, 1.0)


# %%
def genre_sets(items):
    """(users, n, genres) binary genre indicators of candidate movies."""
    return genre_features.loc[items.ravel()].to_numpy().reshape(items.shape + (len(genre_names),))


def cosine_similarity(V):
    """(users, n, n) cosine similarity of the candidates' vectors V (users, n, d)."""
    unit = V / np.linalg.norm(V, axis=-1, keepdims=True)
    return np.einsum("und,umd->unm", unit, unit)


def kl_divergence(p, q_tilde):
    """KL(p ‖ q̃) row by row; terms with p = 0 are 0 (q̃ > 0 wherever p > 0, thanks to the smoothing)."""
    safe = p > 0
    return np.where(safe, p * np.log(np.where(safe, p, 1.0) / np.where(safe, q_tilde, 1.0)), 0.0).sum(-1)


# %%
def mmr(rel, sim, lam, k=K):
    """MMR for every user at once: rel (users, n) in [0, 1], sim (users, n, n); returns (users, k) positions."""
    n_users, n = rel.shape
    rows_ = np.arange(n_users)
    chosen, taken, max_sim = np.zeros((n_users, k), int), np.zeros((n_users, n), bool), np.zeros((n_users, n))
    for t in range(k):
        value = lam * rel - (1 - lam) * max_sim  # at t = 0 max_sim is 0: the most relevant movie comes first
        value[taken] = -np.inf
        pick = value.argmax(1)
        chosen[:, t], taken[rows_, pick] = pick, True
        max_sim = np.maximum(max_sim, sim[rows_, pick])  # each candidate's similarity to its closest listed movie
    return chosen


# %%
def genre_shares(G):
    """Each movie spreads one unit evenly over its genres (rows of zeros stay zero)."""
    return G / np.maximum(G.sum(-1, keepdims=True), 1)


def calibrated(rel, G, p, lam, k=K, alpha=CALIBRATION_ALPHA):
    """Steck's greedy calibrated re-ranking for every user: G (users, n, genres), p (users, genres) the history's
    genre distribution; returns (users, k) positions."""
    n_users, n = rel.shape
    rows_, shares = np.arange(n_users), genre_shares(G)
    chosen, taken = np.zeros((n_users, k), int), np.zeros((n_users, n), bool)
    mass, rel_sum = np.zeros_like(p), np.zeros(n_users)  # the listed movies' genre mass and relevance so far
    for t in range(k):
        new_mass = mass[:, None, :] + shares  # (users, n, genres): the mass if candidate c were added
        q = new_mass / np.maximum(new_mass.sum(-1, keepdims=True), 1e-12)
        q_tilde = (1 - alpha) * q + alpha * p[:, None, :]
        kl = kl_divergence(p[:, None, :], q_tilde)
        value = (1 - lam) * (rel_sum[:, None] + rel) - lam * kl
        value[taken] = -np.inf
        pick = value.argmax(1)
        chosen[:, t], taken[rows_, pick] = pick, True
        mass, rel_sum = mass + shares[rows_, pick], rel_sum + rel[rows_, pick]
    return chosen


def history_genres(user_ids, frame):
    """(users, genres): the genre distribution of each user's history in ``frame``."""
    G = genre_shares(genre_features.loc[frame.item_id].to_numpy())
    mass = pd.DataFrame(G, index=frame.user_id.to_numpy()).groupby(level=0).sum().reindex(user_ids).to_numpy()
    return mass / np.maximum(mass.sum(1, keepdims=True), 1e-12)


# %% [markdown]
# The re-rankers and the curves compute the KL with the fast `kl_divergence` above; one check that it agrees with the
# package's `calibration_kl` (the one the tables report), on EASE's own top-10 lists.

# %%
val_users = np.sort(val.user_id.unique())
ease_in, wmf_in = EASE(EASE_LAMBDA).fit(X_in), WMF(seed=SEED, **WMF_SETTINGS).fit(inner)
splits = {  # validation: EASE and WMF fitted on inner; test: fitted on train
    "validation": (val_users, inner, val, pd.DataFrame(wmf_in.item_factors, index=ids_in.item_ids),
                   *candidates(ease_in.scores, inner, val_users)),
    "test": (test_users, train, test, item_vectors, *candidates(scorers["EASE"], train, test_users)),
}
prepared = {}
for split_name, (users, fit_frame, held_out, vectors, items, rel) in splits.items():
    G = genre_sets(items)
    V = vectors.loc[items.ravel()].to_numpy().reshape(items.shape + (-1,))
    prepared[split_name] = dict(users=users, fit=fit_frame, held_out=held_out, vectors=vectors, items=items,
                                rel=rel, G=G, sim=cosine_similarity(V), p=history_genres(users, fit_frame),
                                tail=long_tail(item_popularity(fit_frame), HEAD_SHARE))  # the fit split's own tail


def list_miscalibration(lists, p):
    """Per-user KL(p ‖ q̃) of lists (item ids), with q̃ the smoothed genre distribution of each list."""
    shares = genre_shares(genre_sets(lists)).sum(1)
    q_tilde = (1 - CALIBRATION_ALPHA) * shares / shares.sum(1, keepdims=True) + CALIBRATION_ALPHA * p
    return kl_divergence(p, q_tilde)


t_ = prepared["test"]
own = t_["items"][:, :K]
fast = list_miscalibration(own, t_["p"])
slow = calibration_kl(own, histories.reindex(test_users).tolist(), genres, K, alpha=CALIBRATION_ALPHA, per_user=True)
print(f"largest difference between the two miscalibrations of EASE's lists: {np.abs(fast - slow).max():.1e}")

# %%
def rerank_curve(method, weights, split_name):
    """NDCG@10, both ILDs, miscalibration@10 and APLT@10 of ``method`` at each weight on one split."""
    s, out = prepared[split_name], []
    for w in weights:
        pos = method(s, w)
        lists = np.take_along_axis(s["items"], pos, axis=1)
        frame = s["held_out"]
        acc = evaluate_lists(s["users"], lists, frame, K, per_user=True)[f"ndcg@{K}"].mean()
        out.append({"weight": w, f"ndcg@{K}": acc,
                    f"ild_emb@{K}": intra_list_diversity(lists, s["vectors"], K, distance="cosine"),
                    f"ild@{K}": intra_list_diversity(lists, genre_features, K),
                    f"miscalibration@{K}": list_miscalibration(lists, s["p"]).mean(),
                    f"aplt@{K}": aplt(lists, s["tail"], K)})
    return pd.DataFrame(out).set_index("weight")


def choose(curve, base_weight):
    """The strongest weight whose validation NDCG keeps KEEP_NDCG of the base's (the weights are listed from the
    weakest re-ranking to the strongest)."""
    ok = curve.index[curve[f"ndcg@{K}"] >= KEEP_NDCG * curve.loc[base_weight, f"ndcg@{K}"]]
    return ok[-1]


rerankers = {
    "MMR": (lambda s, w: mmr(s["rel"], s["sim"], w), MMR_WEIGHTS),
    "calibrated": (lambda s, w: calibrated(s["rel"], s["G"], s["p"], w), CALIBRATION_WEIGHTS),
}
curves, chosen_weight = {}, {}
with Timer() as t_rerank:
    for name, (method, weights) in rerankers.items():
        curves[name] = {split_name: rerank_curve(method, weights, split_name) for split_name in prepared}
        chosen_weight[name] = choose(curves[name]["validation"], weights[0])
print(f"chosen on validation: MMR λ = {chosen_weight['MMR']}, calibrated λ = {chosen_weight['calibrated']} "
      f"({t_rerank.seconds:.0f} s for both curves on both splits)")

# %% [markdown]
# The trade-off curves on test: each point is one weight, the first one (no re-ranking) is EASE itself, the ringed
# point is the weight chosen on validation.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for ax, name, metric, label in [(axes[0], "MMR", f"ild_emb@{K}", "ILD-emb@10 (higher: more varied)"),
                                (axes[1], "calibrated", f"miscalibration@{K}",
                                 "miscalibration@10 (KL; lower: closer to the history's genre mix)")]:
    c = curves[name]["test"]
    ax.plot(c[metric], c[f"ndcg@{K}"], marker="o", ms=4)
    span_x, span_y, last = np.ptp(c[metric]), np.ptp(c[f"ndcg@{K}"]), None
    for w, row in c.iterrows():  # label a point unless it sits on top of the last labelled one
        here = np.array([row[metric] / span_x, row[f"ndcg@{K}"] / span_y])
        if last is None or np.abs(here - last).max() > 0.04:
            ax.annotate(f"{w:g}", (row[metric], row[f"ndcg@{K}"]), textcoords="offset points", xytext=(4, 3),
                        fontsize=7)
            last = here
    best = c.loc[chosen_weight[name]]
    ax.scatter(best[metric], best[f"ndcg@{K}"], s=160, facecolors="none", edgecolors="C3", linewidths=2,
               label=f"chosen on validation (λ = {chosen_weight[name]:g})")
    ax.axhline(KEEP_NDCG * c.iloc[0][f"ndcg@{K}"], color="grey", ls=":", label=f"{KEEP_NDCG:.0%} of EASE's NDCG (test)")
    ax.set_xlabel(label)
    ax.set_ylabel(f"test NDCG@{K}")
    ax.set_title(f"EASE + {name}: trade-off as λ varies (labels: λ)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# At the chosen weights, the re-ranked lists on test, measured on every metric, with paired-bootstrap intervals
# against EASE's own lists (difference: re-ranked minus EASE).

# %%
def rerank_lists(name, weight, split_name="test"):
    s = prepared[split_name]
    return np.take_along_axis(s["items"], rerankers[name][0](s, weight), axis=1)


for name in rerankers:
    with Timer() as t:
        lists = rerank_lists(name, chosen_weight[name])
    assess(f"EASE + {name}", test_users, lists, seconds["EASE"] + t.seconds)  # EASE's fit plus the re-ranking


display(pd.DataFrame(rows).T.loc[["EASE", "EASE + MMR", "EASE + calibrated"], columns].round(4))
display(pd.DataFrame([compare(f"EASE + {n}", "EASE") for n in rerankers]))
mmr_keep = rows["EASE + MMR"][f"ndcg@{K}"] / rows["EASE"][f"ndcg@{K}"]
mmr_gain = rows["EASE + MMR"][f"ild_emb@{K}"] / rows["EASE"][f"ild_emb@{K}"] - 1
genre_gain = rows["EASE + MMR"][f"ild@{K}"] / rows["EASE"][f"ild@{K}"] - 1
print(f"EASE + MMR keeps {mmr_keep:.1%} of EASE's test NDCG@10 and changes its ILD-emb@10 by {mmr_gain:+.1%} (genre "
      f"ILD@10 by {genre_gain:+.1%})")
frontier = curves["MMR"]["test"]
frontier = frontier[frontier[f"ndcg@{K}"] >= 0.9 * frontier.iloc[0][f"ndcg@{K}"]]
print(f"for comparison, on test: the largest ILD-emb@10 gain among the weights that keep 90% of EASE's NDCG is "
      f"{frontier[f'ild_emb@{K}'].max() / frontier.iloc[0][f'ild_emb@{K}'] - 1:+.1%} "
      f"(λ = {frontier[f'ild_emb@{K}'].idxmax():g})")

# %% [markdown]
# **What re-ranking bought, and what it cost.**
# - **MMR** at the weight chosen on validation keeps 94.5% of EASE's test NDCG (the interval of the loss excludes
#   zero) and raises ILD-emb by 11.8%. Its side effects go the same way: higher novelty and coverage, and lower
#   miscalibration, because spreading the list over different audiences also spreads it over genres. Genre ILD rises
#   only 2.1%: the list is more varied by who watches the movies than by their genre labels.
# - The curve bends: the first steps away from λ = 1 cost little NDCG, then below λ ≈ 0.35 accuracy falls quickly.
#   The largest gain that still keeps 90% of EASE's test NDCG is printed above (a test-set number, for the picture,
#   not for choosing).
# - **Calibrated re-ranking** cuts miscalibration by over a third at a similar cost in NDCG (its interval also
#   excludes zero). It does little for ILD-emb: it balances genres, not audiences.
#
# ## 3. Popularity bias and who pays for it
# **Popularity bias.** The table in §1 shows how much of each list lies in the long tail (APLT). A recommender
# trained on interactions learns that popular movies are a safe bet, and by recommending them makes them more popular
# still. **xQuAD** re-ranking (Abdollahpouri, Burke and Mobasher, 2019; after Santos et al.'s query diversification)
# treats "head" and "tail" as two categories a list should cover in the proportion the user has shown. At each step
# it adds the candidate that maximises
# $$(1-\lambda)\, \mathrm{rel}(i) \;+\; \lambda \sum_{g \in \{\text{head}, \text{tail}\}} P(g \mid u)\; [i \in g]\;
# \big(1 - \text{share of } S \text{ in } g\big),$$
# with $P(\text{tail} \mid u)$ the share of the user's training movies in the tail: a category already well covered
# by the list stops earning a bonus ("smooth" xQuAD; the share is 0 for the empty list). Its weight is chosen on
# validation by the same 93% rule.
#
# **Fairness to users.** Users are split into terciles of training activity (light, medium, heavy; the package's
# `activity_groups`), and every metric is averaged within each group (`by_group`).

# %%
def xquad(rel, in_tail, p_tail, lam, k=K):
    """Smooth xQuAD over two categories (head, tail) for every user: in_tail (users, n) bool, p_tail (users,) the
    user's share of tail movies; returns (users, k) positions."""
    n_users, n = rel.shape
    rows_ = np.arange(n_users)
    chosen, taken = np.zeros((n_users, k), int), np.zeros((n_users, n), bool)
    n_tail = np.zeros(n_users)
    for t in range(k):
        share_tail = n_tail / t if t else np.zeros(n_users)
        bonus = np.where(in_tail, p_tail[:, None] * (1 - share_tail[:, None]),
                         (1 - p_tail[:, None]) * (share_tail[:, None] if t else 1.0))
        value = (1 - lam) * rel + lam * bonus
        value[taken] = -np.inf
        pick = value.argmax(1)
        chosen[:, t], taken[rows_, pick] = pick, True
        n_tail += in_tail[rows_, pick]
    return chosen


for s in prepared.values():
    tail_ids = np.array(sorted(s["tail"]))
    s["in_tail"] = np.isin(s["items"], tail_ids)
    s["p_tail"] = s["fit"].assign(tail=s["fit"].item_id.isin(tail_ids)).groupby("user_id")["tail"].mean().reindex(
        s["users"]).to_numpy()
rerankers["xQuAD"] = (lambda s, w: xquad(s["rel"], s["in_tail"], s["p_tail"], w), XQUAD_WEIGHTS)
curves["xQuAD"] = {split_name: rerank_curve(rerankers["xQuAD"][0], XQUAD_WEIGHTS, split_name)
                   for split_name in prepared}
chosen_weight["xQuAD"] = choose(curves["xQuAD"]["validation"], XQUAD_WEIGHTS[0])
with Timer() as t:
    lists = rerank_lists("xQuAD", chosen_weight["xQuAD"])
assess("EASE + xQuAD", test_users, lists, seconds["EASE"] + t.seconds)
print(f"xQuAD λ chosen on validation: {chosen_weight['xQuAD']}; long-tail share of EASE's {N_CANDIDATES} candidates "
      f"on test: {prepared['test']['in_tail'].mean():.1%} (the users' histories: "
      f"{prepared['test']['p_tail'].mean():.1%} on average)")
exposure = pd.DataFrame(rows).T.loc[["Popularity", "EASE", "EASE + xQuAD", "EASE + MMR", "Random"],
                                    [f"ndcg@{K}", f"aplt@{K}", f"arp@{K}", f"novelty@{K}", f"coverage@{K}",
                                     f"exposure gini@{K}"]]
display(exposure.round(4))
display(compare("EASE + xQuAD", "EASE", (f"ndcg@{K}", f"aplt@{K}", f"novelty@{K}")).to_frame().T)

# %% [markdown]
# Accuracy and long-tail share by user activity (test NDCG@10 and APLT@10 averaged within each tercile), and the
# change xQuAD brings to each group with its paired-bootstrap interval (difference: EASE + xQuAD minus EASE).

# %%
groups = activity_groups(train)
group_sizes = groups.reindex(test_users).value_counts().reindex(groups.cat.categories)
by_activity = pd.DataFrame({(name, m): by_group(per_user[name][m], groups)
                            for name in ["Popularity", "EASE", "EASE + xQuAD", "EASE + MMR", "EASE + calibrated"]
                            for m in [f"ndcg@{K}", f"aplt@{K}"]})
by_activity.insert(0, ("", "users"), group_sizes)
display(by_activity.round(4))
change = {}
for g in groups.cat.categories:
    members = groups.index[groups == g].intersection(test_users)
    r = paired_bootstrap(per_user["EASE + xQuAD"].loc[members, f"ndcg@{K}"],
                         per_user["EASE"].loc[members, f"ndcg@{K}"], n_boot=N_BOOTSTRAP, seed=SEED,
                         names=("EASE + xQuAD", "EASE"))
    change[g] = {"NDCG change": r["diff"], "95% low": r["low"], "95% high": r["high"],
                 "relative change": r["diff"] / per_user["EASE"].loc[members, f"ndcg@{K}"].mean()}
display(pd.DataFrame(change).T.round(4))

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 3.6))
shown = {0: ["Popularity", "EASE", "EASE + MMR", "EASE + calibrated", "EASE + xQuAD"], 1: ["EASE", "EASE + xQuAD"]}
for a, names in shown.items():
    width = 0.8 / len(names)
    metric = f"ndcg@{K}" if a == 0 else f"aplt@{K}"
    for j, name in enumerate(names):
        x = np.arange(len(group_sizes)) + (j - (len(names) - 1) / 2) * width
        axes[a].bar(x, by_activity[(name, metric)], width, label=name)
for ax, label in zip(axes, [f"test NDCG@{K}", f"APLT@{K} (share of the list in the long tail)"]):
    ax.set_xticks(np.arange(len(group_sizes)), [f"{g}\n({n} users)" for g, n in group_sizes.items()])
    ax.set_ylabel(label)
    ax.set_xlabel("users by training activity (terciles)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
axes[0].set_title("Accuracy by user group")
axes[1].set_title("Long-tail share by user group (popularity's is 0)")
plt.tight_layout()
plt.show()

# %% [markdown]
# **Who gains and who loses.**
# - **xQuAD** moved almost nothing, even at the strongest weight tried (chosen on validation because it stayed within
#   93% there): test NDCG fell by a tiny amount whose interval excludes zero, and the long-tail share rose by less
#   than one slot in a hundred. The reason is printed above: a re-ranker can only promote what the candidates hold,
#   and EASE's top candidates hold almost no long-tail movies. Moving exposure to the tail needs a change to the
#   scores themselves (a popularity penalty, or inverse-propensity weighting in training; see "Going further").
# - **Users are served unequally**: heavy users get about twice the NDCG of light users from EASE, and the ratio is
#   larger for popularity. Part of this is the metric (a heavy user has more test movies to hit), part is the model
#   (a light user's history says less).
# - **The re-rankers' costs**: in relative terms MMR costs the light users about 8% of their NDCG and the heavy users
#   about 5%, calibration about 9% and 3% (from the table). Whether those gaps between groups are more than noise would
#   need an interval of their own. For xQuAD the intervals of the light and medium users exclude zero and the heavy
#   users' does not, but the three intervals overlap, so the groups' losses are not shown to differ. Separately, most
#   of the long-tail movies xQuAD added went to the light users' lists (APLT 0.0113, against 0.0064 for the medium
#   users and 0.0020 for the heavy ones).
#
# ## 4. Explanations, and are they faithful?
# Three ways to say why a movie was recommended:
# 1. **Neighbours** (item-kNN, notebook 02). Item-kNN's score is a sum over the user's history,
#    $s_{ui} = \sum_{j \in H_u} \mathrm{sim}(j, i)$, so "because you watched $j$" with $j$'s share of the sum is an
#    exact account of the model, by construction.
# 2. **Attention** (SASRec, notebook 06). The last block's attention weights at the last position say how much each
#    history movie's representation entered the state that scores the next movie. One caveat: the SASRec here is
#    built with the package's default `mask_padding=False`, so for a history shorter than `MAX_LEN` part of the
#    weight also goes to the padded positions, and the weights over the history's movies need not add up to 1.
# 3. **Integrated gradients** (IG; Sundararajan, Taly and Yan, 2017) on the same SASRec: the score $f$ of the
#    recommended movie is followed along a straight path from a baseline history $x'$ (here the same positions with
#    every movie embedding set to zero) to the real one $x$, and each movie's attribution is
#    $$\mathrm{IG}_t = (x_t - x'_t) \cdot \int_0^1 \nabla_{x_t} f\big(x' + a(x - x')\big)\, da,$$
#    summed over the embedding's dimensions. Its **completeness** axiom says the attributions add up to
#    $f(x) - f(x')$; the integral is a Riemann sum over `IG_STEPS` points, and the check below measures how close the
#    sum comes.
#
# IG needs only gradients, so it applies to any Keras model (notebook 04's feature MLP included). SASRec is the model
# explained here because its inputs are the history's movies, which the faithfulness test below removes one at a
# time. It is retrained with notebook 06's settings for `SAS_EPOCHS` = 10 epochs, notebook 06's cap (its validation
# NDCG was still rising there).
#
# First the neighbour explanation for one user.

# %%
user = test_users[len(test_users) // 2]  # knn: the item-kNN fitted on train in §1
u = ids_tr.users([user])[0]
history_idx = np.flatnonzero(knn.X[u].toarray()[0])
lines = []
for item in lists_of["Item-kNN"][list(test_users).index(user)][:3]:
    i = ids_tr.items([item])[0]
    contributions = np.asarray(knn.S[history_idx, i].toarray()).ravel()
    top = np.argsort(-contributions)[:3]
    because = "; ".join(f"{titles[ids_tr.item_ids[history_idx[j]]]} ({contributions[j] / contributions.sum():.0%})"
                        for j in top if contributions[j] > 0)
    lines.append({"recommended": titles[item], "score": contributions.sum(), "because you watched (share of score)":
                  because})
with pd.option_context("display.max_colwidth", 200):
    display(pd.DataFrame(lines).round(3))
print(f"user {user}: {len(history_idx)} training movies")

# %% [markdown]
# Now SASRec on the sequential protocol (each user's last 5 interactions are test events, the 5 before them
# validation events), with the package's `SASRec` (the class notebook 06 explains).

# %%
seq = sequential_split(data.ratings, n_test=N_EVENTS, n_val=N_EVENTS)
index = train_index(seq.train)
seq_ids, n_seq_items = index.ids, index.ids.n_items
seq_histories = user_histories(seq.train, seq_ids)
counts = np.asarray(index.seen.sum(axis=0)).ravel()
log_q = np.log(sampling.popularity_probabilities(index.seen, NEG_POWER) * N_SAMPLED).astype("float32")
popularity_bias = np.concatenate([[0.0], np.log1p(counts) - np.log1p(counts).mean()]).astype("float32")
keras.utils.set_random_seed(SEED)
sasrec = SASRec(n_seq_items, log_q, popularity_bias, blocks=SAS_BLOCKS, heads=SAS_HEADS, dim=DIM, dropout=DROPOUT,
                max_len=MAX_LEN, n_sampled=N_SAMPLED, seed=SEED, name="sasrec")
inputs, targets = training_stretches(seq_histories, MAX_LEN, MAX_HISTORY)
sasrec.compile(optimizer=keras.optimizers.Adam(LR), loss=sampled_softmax_loss)
with Timer() as t_sas:
    sasrec.fit({"history": inputs, "target": targets}, np.zeros(targets.shape, "float32"),
               sample_weight=(targets > 0).astype("float32"), batch_size=BATCH, epochs=SAS_EPOCHS, verbose=0)
sas_val = evaluate_sequential(sasrec, seq, "validation", k=K)[f"ndcg@{K}"]
pop_val = evaluate_sequential(Popularity().fit(seq.train), seq, "validation", k=K)[f"ndcg@{K}"]
print(f"SASRec: {SAS_EPOCHS} epochs in {t_sas.seconds:.0f} s; validation NDCG@{K} {sas_val:.4f} (popularity "
      f"{pop_val:.4f}; notebook 06's run reached 0.0676 with the same settings and different random draws)")

# %% [markdown]
# For each of `N_EXPLAINED` users (drawn at random among those with at least 10 training movies), the explained
# movie is SASRec's top recommendation after the user's training history. `explain` returns, for each position of
# the (last `MAX_LEN` movies of the) history, the last block's attention weight (averaged over heads) and the IG
# attribution, plus the completeness gap.

# %%
def target_logit(histories_padded, targets_, item_vectors=None):
    """SASRec's score of each history's target movie (index + 1) after the whole history."""
    states = sasrec.encode(histories_padded, item_vectors=item_vectors)[:, -1]
    return ops.sum(states * sasrec.output_embedding(targets_), -1) + ops.take(sasrec.output_bias, targets_)


def integrated_gradients(padded, targets_, steps=IG_STEPS):
    """IG of the target's score with respect to each position's item embedding (baseline: zero embeddings)."""
    x = sasrec.item_embedding(padded)  # (users, T, dim)
    total = tf.zeros(tf.shape(x))
    for a in (np.arange(steps) + 0.5) / steps:  # midpoint Riemann sum over the path x' + a (x - x'), x' = 0
        scaled = tf.constant(a, "float32") * x
        with tf.GradientTape() as tape:
            tape.watch(scaled)
            score = target_logit(padded, targets_, item_vectors=scaled)
        total += tape.gradient(score, scaled)
    ig = ops.sum(x * total / steps, -1).numpy()  # (x − x') · mean gradient, summed over dimensions
    change = (target_logit(padded, targets_).numpy()
              - target_logit(padded, targets_, item_vectors=tf.zeros_like(x)).numpy())  # f(x) − f(x')
    return ig, ig.sum(1) - change, change


def explain(padded, targets_):
    _, weights = sasrec.encode(padded, return_attention=True)
    attention = ops.convert_to_numpy(weights).mean(1)[:, -1, :]  # (users, T): the last position's weights
    ig, gap, change = integrated_gradients(padded, targets_)
    return attention, ig, gap, change


rng = np.random.default_rng(SEED)
eligible = np.flatnonzero([len(h) >= 10 for h in seq_histories])
explained = rng.choice(eligible, size=min(N_EXPLAINED, len(eligible)), replace=False)
padded = pad_histories([seq_histories[u] for u in explained], MAX_LEN)
scores_next = sasrec.scores_next(explained, [seq_histories[u] for u in explained])
seen_seq = index.seen[explained].toarray() > 0
scores_next[seen_seq] = -np.inf
top_item = scores_next.argmax(1)  # SASRec's top recommendation (item index)
with Timer() as t_ig:
    attention, ig, gap, change = explain(padded, tf.constant(top_item + 1))
base_scores = target_logit(padded, tf.constant(top_item + 1)).numpy()
print(f"IG for {len(explained)} users × {IG_STEPS} steps: {t_ig.seconds:.1f} s. Completeness: f(x) − f(x') is "
      f"{np.abs(change).mean():.2f} on average (absolute), and the attributions' sum misses it by "
      f"{np.abs(gap).mean():.2f} on average ({np.abs(gap).mean() / np.abs(change).mean():.0%})")

# %%
k_ = len(explained) // 2  # one user's explanation with titles
present = np.flatnonzero(padded[k_] > 0)[-12:]
one = pd.DataFrame({"history movie (oldest → newest)": [titles[seq_ids.item_ids[padded[k_, t] - 1]] for t in present],
                    "attention": attention[k_, present], "integrated gradients": ig[k_, present]})
print(f"user {seq_ids.user_ids[explained[k_]]}: SASRec recommends {titles[seq_ids.item_ids[top_item[k_]]]!r}; "
      f"the last {len(present)} movies of the history:")
with pd.option_context("display.max_colwidth", 60):
    display(one.round(3))

# %% [markdown]
# **Faithfulness.** An explanation is faithful if the movies it names matter to the model: removing the history
# movie with the largest attribution should lower the recommended movie's score more than removing a random history
# movie. For every explained user, three copies of the history lose one movie each: the top movie by attention, the
# top by IG, a random one (the rest shift by one position, as if the user had not watched it). The drop in the
# target's score is compared by a paired bootstrap over users.

# %%
def without(padded_row, position):
    """The history with the movie at ``position`` removed, left-padded again."""
    kept = [item for t, item in enumerate(padded_row) if item > 0 and t != position]
    return np.pad(kept, (len(padded_row) - len(kept), 0))


real = padded > 0
pick = {"attention": np.where(real, attention, -np.inf).argmax(1),
        "integrated gradients": np.where(real, ig, -np.inf).argmax(1),
        "random": np.array([rng.choice(np.flatnonzero(r)) for r in real])}
drops = {}
for name, positions in pick.items():
    reduced = np.stack([without(padded[j], p) for j, p in enumerate(positions)])
    drops[name] = pd.Series(base_scores - target_logit(reduced, tf.constant(top_item + 1)).numpy())
faith = pd.DataFrame({name: {"mean score drop": d.mean(), "median": d.median(), "share of users with a drop":
                             (d > 0).mean()} for name, d in drops.items()}).T
display(faith.round(3))
for name in ["attention", "integrated gradients"]:
    r = paired_bootstrap(drops[name], drops["random"], n_boot=N_BOOTSTRAP, seed=SEED, names=(name, "random"))
    print(f"{name} − random (score drop): {r['diff']:+.3f}, 95% interval [{r['low']:+.3f}, {r['high']:+.3f}]")
agree = (pick["attention"] == pick["integrated gradients"]).mean()
print(f"attention and IG name the same top movie for {agree:.0%} of the users")

# %% [markdown]
# **Which explanation can be trusted?**
# - Removing the movie that **integrated gradients** ranks first lowers the recommended movie's score far more than
#   removing a random history movie, for almost every user (99.5% see a drop; the interval is far from zero). IG
#   could have failed this test: it shares out, along a path, the effect of replacing *all* the history's embeddings
#   by zeros at once, while the test removes one movie and shifts the others by one position, a different
#   intervention (occlusion). One comparison is missing, though: in the example user's table most of the IG
#   attribution goes to the most recent movie. If IG's top movie is usually the most recent one, passing the test may
#   mostly say that SASRec's score depends on the last movie watched; a third column, "remove the most recent movie",
#   would separate the two, and this notebook does not run it.
# - Removing the movie with the most **attention** lowers the score no more than removing a random one: mean drops
#   0.039 against 0.222, medians 0.008 against 0.007, and each lowers the score for 52% of the users. The paired
#   difference attention − random is −0.183, interval [−0.410, −0.007]: in this run removing the random movie mattered
#   more. That interval barely excludes zero and comes from one training run (the course would check it with three
#   seeds before calling it), so the safe reading is "attention's top movie is no better than a random one", not a
#   firm "worse". Attention and IG name the same top movie for only 2% of the users. In the example user's table the
#   attention is spread thinly over the history (0.006 to 0.036 per movie, the smallest on the most recent one),
#   while most of the IG attribution shown goes to that most recent movie. Attention says where the last block
#   looked, not what the score depends on: the values, the feed-forward layers, the residual connections and the
#   other block all come between (Jain and Wallace, 2019, found the same for text).
# - The **neighbour** explanation is faithful by construction for item-kNN, whose score is exactly the sum shown;
#   used to explain another model (say EASE), it would be a plausible story rather than an account of the model.
#
# ## 5. Privacy: DP-SGD and membership inference
# A model trained on people's viewing histories can leak them. A **membership-inference attack** asks of one
# (user, movie) pair: was it in the training data? The simplest attack (Yeom et al., 2018) thresholds the model's
# loss: a model fits its training pairs better than pairs it never saw, so a low loss suggests "member". Its
# **advantage** is the true-positive rate minus the false-positive rate at the best threshold: 0 is a coin toss.
#
# **Differential privacy** (Dwork et al., 2006) bounds what any attack can learn. A training algorithm $M$ is
# $(\varepsilon, \delta)$-DP if, for any two data sets $D, D'$ where one is the other with one example added or
# removed (the neighbouring relation the accountant and its Poisson-sampling analysis assume), and any set of
# outcomes $O$,
# $$P[M(D) \in O] \le e^{\varepsilon}\, P[M(D') \in O] + \delta.$$
# Here an example is one (user, movie) interaction. Read roughly as odds: whatever an attacker believed before about
# whether one rating was in the data, seeing the model can multiply the odds by at most $e^{\varepsilon}$
# ($e^1 \approx 2.7$, $e^8 \approx 3{,}000$), up to a small slack $\delta$ (roughly: except with probability
# $\delta$).
#
# **The choice of δ, and why this notebook's ε are optimistic.** δ must be far below $1/N$ for $N$ training
# interactions. A mechanism that publishes each training interaction in the clear with probability δ satisfies the
# definition with ε = 0, so δ = 1/N would allow about one of the N interactions to be published outright. Standard
# practice is δ well below 1/N (for example 1e-7, or $N^{-1.1}$; Ponomareva et al., 2023). **This notebook sets
# δ = 1/N** (printed below), which is above standard practice. For the same σ a smaller δ gives a larger ε, so the
# ε values printed here are optimistic: at a standard δ the same models would be certified only for larger ε.
# Setting δ properly is a change to the code (δ and the σ bisected for each ε), which this version has not made.
#
# **DP-SGD** (Abadi et al., 2016) makes SGD private in three changes:
# 1. **Poisson sampling:** each step uses each interaction independently with probability $q$ (expected batch
#    $qN$ = `DP_BATCH`); the accountant's amplification-by-sampling assumes exactly this.
# 2. **Per-example clipping:** each interaction's gradient $g_e$ is scaled to norm at most $C$:
#    $\bar g_e = g_e \min(1, C / \lVert g_e \rVert)$, so no example can move the model more than $C$.
# 3. **Gaussian noise:** the step uses $\frac{1}{qN}\big(\sum_e \bar g_e + \mathcal N(0, \sigma^2 C^2 I)\big)$, with
#    noise on **every** parameter, including the rows of movies and users the batch did not touch (otherwise which
#    rows moved would reveal who was in the batch).
#
# The noise multiplier $\sigma$, $q$ and the number of steps determine $\varepsilon$; computing it by hand is
# error-prone, so a maintained **accountant** does it (Google's `dp-accounting`, its Rényi-DP accountant; Mironov,
# 2017), and a bisection finds the $\sigma$ that reaches each target $\varepsilon$.
#
# **The model.** Matrix factorisation with an item bias, $s_{ui} = p_u \cdot q_i + b_i$, trained with the BPR loss
# against `DP_NEGATIVES` negatives drawn **uniformly** (drawing them by popularity would use the data outside the
# accountant). In MF an example touches only a few rows: $p_u$; $q_i$ and $b_i$; the negatives' $q_j$ and $b_j$. Its
# per-example gradient is the gradient with respect to those looked-up rows, which a `tf.GradientTape` gives in one
# pass for the whole batch. The custom `train_step` below clips them on their joint norm, scatter-adds them into the
# tables, adds the noise and lets the optimizer take the step (SGD or Adam: whatever an optimizer does with the
# noisy gradient is post-processing, and stays private). Every model, without DP and at each ε, got the same search
# on validation (sizes 16 and 64, SGD and Adam at two learning rates each; its log is
# `tools/tuning/nb09_dp_search.csv`), and keeps its best setting (`DP_SETTINGS`); all train for the same
# `DP_EPOCHS` (20 steps). SGD's learning rates (25, 100) look large because each step divides the summed, clipped
# gradients by the expected batch of 16,384. Three caveats on that search: it ran on the inner split, whose smaller
# N gives fewer steps than the 20 trained here; the rate it chose at every ε, SGD at 100, is the largest SGD rate in
# its grid, so a larger one was never tried. The search itself looked at the training data, and the ε
# reported does not cover it (a common simplification; choosing hyper-parameters privately is a topic of its own).
#
# **A limitation of the comparison.** The search chose different recipes with and without DP. The non-private MF
# has 64 factors, Adam at 0.05 and no clipping; each private MF has 16 factors, SGD at 100 and clipping at $C = 1$,
# besides the noise. The curve and the attack below therefore compare recipes, not only noise levels: any difference
# between "no DP" and the private models may come from the size, the optimizer or the clipping as much as from the
# noise. A control trained with the private recipe and σ = 0 (with and without clipping) would separate them; this
# notebook does not train one.

# %%
def example_losses(p_u, q_i, b_i, q_j, b_j):
    """BPR loss of each example (the rows it touches): its positive against its negatives."""
    positive = ops.sum(p_u * q_i, -1) + b_i[:, 0]  # (batch,)
    negative = ops.einsum("bd,bnd->bn", p_u, q_j) + b_j[..., 0]  # (batch, negatives)
    return ops.sum(ops.softplus(negative - positive[:, None]), -1)


# %%
class DPMF(keras.Model):
    """Matrix factorisation with item biases trained by DP-SGD (``noise_multiplier=0``, ``clip=None``: plain SGD)."""

    def __init__(self, n_users, n_items, factors, clip, noise_multiplier, expected_batch, seed=SEED):
        super().__init__()
        seeds = Seeds(seed)  # one seeded initializer per table: one shared instance would start P and Q equal
        self.P = self.add_weight(shape=(n_users, factors), name="P",
                                 initializer=keras.initializers.RandomNormal(stddev=0.1, seed=seeds()))
        self.Q = self.add_weight(shape=(n_items, factors), name="Q",
                                 initializer=keras.initializers.RandomNormal(stddev=0.1, seed=seeds()))
        self.b = self.add_weight(shape=(n_items, 1), initializer="zeros", name="b")
        self.clip, self.sigma, self.expected_batch = clip, noise_multiplier, float(expected_batch)
        self.noise = keras.random.SeedGenerator(seed)

    def scores(self, user_idx):
        return ops.convert_to_numpy(ops.take(self.P, np.asarray(user_idx), 0) @ ops.transpose(self.Q)
                                    + ops.transpose(self.b))

    def train_step(self, data):
        u, i, j = data[0]  # users and positive movies (batch,), negatives (batch, negatives), as indices
        with tf.GradientTape() as tape:
            rows = [ops.take(self.P, u, 0), ops.take(self.Q, i, 0), ops.take(self.b, i, 0), ops.take(self.Q, j, 0),
                    ops.take(self.b, j, 0)]  # the rows each example touches
            losses = example_losses(*rows)
            total = ops.sum(losses)
        g_p, g_q, g_b, g_qj, g_bj = tape.gradient(total, rows)  # row b of each is example b's own gradient
        if self.clip is not None:  # clip each example's gradient (all its rows together) to norm C
            norm = ops.sqrt(ops.sum(g_p ** 2, -1) + ops.sum(g_q ** 2, -1) + ops.sum(g_b ** 2, -1)
                            + ops.sum(g_qj ** 2, [1, 2]) + ops.sum(g_bj ** 2, [1, 2]))
            scale = ops.minimum(1.0, self.clip / ops.maximum(norm, 1e-12))
            g_p, g_q, g_b = g_p * scale[:, None], g_q * scale[:, None], g_b * scale[:, None]
            g_qj, g_bj = g_qj * scale[:, None, None], g_bj * scale[:, None, None]
        movies = ops.concatenate([i, ops.reshape(j, (-1,))], 0)[:, None]
        grads = [tf.tensor_scatter_nd_add(tf.zeros_like(self.P), u[:, None], g_p),
                 tf.tensor_scatter_nd_add(tf.zeros_like(self.Q), movies,
                                          ops.concatenate([g_q, ops.reshape(g_qj, (-1, g_q.shape[-1]))], 0)),
                 tf.tensor_scatter_nd_add(tf.zeros_like(self.b), movies,
                                          ops.concatenate([g_b, ops.reshape(g_bj, (-1, 1))], 0))]
        if self.sigma > 0:  # Gaussian noise on every row of every table
            grads = [g + keras.random.normal(ops.shape(g), stddev=self.sigma * self.clip, seed=self.noise)
                     for g in grads]
        self.optimizer.apply([g / self.expected_batch for g in grads], [self.P, self.Q, self.b])
        return {"loss": ops.mean(losses)}


# %%
class PoissonBatches(keras.utils.PyDataset):
    """Each step: every training interaction independently with probability q, with uniformly drawn negatives that
    differ from the positive and from each other."""

    def __init__(self, pairs, q, n_items, n_negatives, steps, seed=SEED):
        super().__init__()
        self.pairs, self.q, self.n_items, self.n_negatives, self.steps = pairs, q, n_items, n_negatives, steps
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return self.steps

    def __getitem__(self, step):
        take = np.flatnonzero(self.rng.random(len(self.pairs)) < self.q)
        u, i = self.pairs[take, 0], self.pairs[take, 1]
        j = self.rng.integers(0, self.n_items, (len(take), self.n_negatives))
        while True:  # redraw the negatives of any example whose draws clash (each example's rows must be distinct)
            clash = (j == i[:, None]).any(1) | (np.diff(np.sort(j, 1), axis=1) == 0).any(1)
            if not clash.any():
                break
            j[clash] = self.rng.integers(0, self.n_items, (clash.sum(), self.n_negatives))
        return (u.astype("int32"), i.astype("int32"), j.astype("int32")),


# %%
pairs = np.argwhere(X_tr > 0).astype(np.int32)  # (user, movie) training interactions: the examples
N = len(pairs)
q = min(1.0, DP_BATCH / N)
steps = max(1, int(round(DP_EPOCHS / q)))
delta = 1.0 / N


def epsilon(sigma):
    """ε of DP-SGD with noise multiplier sigma, sampling rate q and this many steps, at δ = 1/N."""
    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps)
    return accountant.get_epsilon(delta)


def sigma_for(target, low=0.3, high=100.0, rounds=DP_BISECTION_ROUNDS):
    """The smallest noise multiplier (to bisection precision) whose ε is at most ``target``."""
    for _ in range(rounds):
        middle = (low * high) ** 0.5
        low, high = (middle, high) if epsilon(middle) > target else (low, middle)
    return high


print(f"{N:,} training interactions; q = {q:.3f} (expected batch {q * N:,.0f}), {steps} steps, δ = 1/N = {delta:.1e}")

# %%
def train_dp(sigma, clip, setting):
    factors, optimizer, lr = setting
    keras.utils.set_random_seed(SEED)
    model = DPMF(ids_tr.n_users, ids_tr.n_items, factors, clip, sigma, q * N)
    model.compile(optimizer={"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[optimizer](lr))
    model.fit(PoissonBatches(pairs, q, ids_tr.n_items, DP_NEGATIVES, steps), epochs=1, verbose=0)
    return model


private = {}
with Timer() as t_dp:
    sigmas = {eps: sigma_for(eps) for eps in DP_EPSILONS}
print(f"noise multipliers found by bisection ({t_dp.seconds:.1f} s): "
      + ", ".join(f"ε = {eps:g}: σ = {s:.3f} (accountant's ε {epsilon(s):.3f})" for eps, s in sigmas.items()))
for label, sigma, clip, setting in [("MF (no DP)", 0.0, None, DP_SETTINGS["none"])] + [
        (f"DP-SGD MF (ε={eps:g})", sigmas[eps], DP_CLIP, DP_SETTINGS[eps]) for eps in DP_EPSILONS]:
    with Timer() as t:
        private[label] = train_dp(sigma, clip, setting)
    user_ids, lists_of[label] = model_lists(private[label].scores)
    assess(label, user_ids, lists_of[label], t.seconds)
    print(f"{label}: σ = {sigma:.3f}, {setting[0]} factors, {setting[1]} at {setting[2]:g}, {t.seconds:.1f} s; test "
          f"NDCG@{K} {rows[label][f'ndcg@{K}']:.4f}")

# %% [markdown]
# **The attack.** Members are `MIA_PAIRS` training interactions, non-members as many test interactions: real
# interactions of the same users that the model never saw, so the only difference between the two sets is
# membership. The loss is the model's logistic loss $\log(1 + e^{-s_{ui}})$. The threshold is chosen on one half of
# the pairs and the advantage measured on the other half (choosing and measuring on the same pairs would flatter the
# attack); the AUC (the chance that a random member has a lower loss than a random non-member) needs no threshold.

# %%
def membership_attack(model, seed=SEED):
    rng_ = np.random.default_rng(seed)
    held = test[test.item_id.isin(ids_tr.item_ids)]
    outside = np.stack([ids_tr.users(held.user_id), ids_tr.items(held.item_id)], 1)
    n = min(MIA_PAIRS, len(outside), len(pairs))
    members, non_members = pairs[rng_.choice(len(pairs), n, replace=False)], outside[rng_.choice(len(outside), n,
                                                                                                  replace=False)]
    P, Q, b = (ops.convert_to_numpy(w) for w in (model.P, model.Q, model.b))
    loss = lambda x: np.logaddexp(0, -((P[x[:, 0]] * Q[x[:, 1]]).sum(1) + b[x[:, 1], 0]))
    l_in, l_out = loss(members), loss(non_members)
    half = n // 2
    thresholds = np.quantile(np.r_[l_in[:half], l_out[:half]], np.linspace(0, 1, 201))
    fit_adv = [(l_in[:half] < t).mean() - (l_out[:half] < t).mean() for t in thresholds]
    best = thresholds[int(np.argmax(fit_adv))]
    tpr, fpr = (l_in[half:] < best).mean(), (l_out[half:] < best).mean()
    se = np.sqrt(tpr * (1 - tpr) / (n - half) + fpr * (1 - fpr) / (n - half))  # binomial standard error
    auc = ((l_in[:, None] < l_out[None, :]).mean() + 0.5 * (l_in[:, None] == l_out[None, :]).mean())
    return {"attack advantage": tpr - fpr, "95% low": tpr - fpr - 1.96 * se, "95% high": tpr - fpr + 1.96 * se,
            "attack AUC": auc}


attack = pd.DataFrame({label: membership_attack(m) for label, m in private.items()}).T
attack.insert(0, "ε", [np.inf] + DP_EPSILONS)
attack.insert(1, f"test NDCG@{K}", [rows[label][f"ndcg@{K}"] for label in private])
eps_values = attack["ε"].to_numpy()
attack["advantage bound"] = np.where(np.isinf(eps_values), 1.0,  # the most any attack can reach under (ε, δ)-DP
                                     (np.exp(np.minimum(eps_values, 50)) - 1 + 2 * delta)
                                     / (np.exp(np.minimum(eps_values, 50)) + 1))
display(attack.round(4))
for label in private:
    r = paired_bootstrap(per_user[label][f"ndcg@{K}"], per_user["Popularity"][f"ndcg@{K}"], n_boot=N_BOOTSTRAP,
                         seed=SEED, names=(label, "Popularity"))
    print(f"{label} − Popularity, test NDCG@{K}: {r['diff']:+.4f} [{r['low']:+.4f}, {r['high']:+.4f}]")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
eps_axis = [f"{e:g}" for e in DP_EPSILONS[::-1]] + ["no DP"]
order = [f"DP-SGD MF (ε={e:g})" for e in DP_EPSILONS[::-1]] + ["MF (no DP)"]
axes[0].plot(eps_axis, [rows[o][f"ndcg@{K}"] for o in order], marker="o", label="MF (each with its own setting)")
axes[0].axhline(rows["Popularity"][f"ndcg@{K}"], color="grey", ls="--", label="Popularity (no training)")
axes[0].set_ylabel(f"test NDCG@{K}")
axes[0].set_title(f"Utility against privacy (WMF, no DP: {rows['WMF'][f'ndcg@{K}']:.3f}, off the chart)")
advantage = attack.loc[order, "attack advantage"]
axes[1].bar(eps_axis, advantage, color="C3", yerr=[advantage - attack.loc[order, "95% low"],
                                                   attack.loc[order, "95% high"] - advantage], capsize=4)
axes[1].axhline(0, color="black", lw=0.8)
axes[1].set_ylabel("membership-inference advantage (TPR − FPR)")
axes[1].set_title("What the loss-threshold attack learns")
for ax in axes:
    ax.set_xlabel("ε (categories, not to scale; smaller: more private; δ = 1/N)")
    ax.grid(alpha=0.3, axis="y")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# **Reading the curve and the attack.**
# - **Without DP** the MF's test NDCG is within noise of popularity's (interval above) and far below WMF's: with 20
#   large steps, gradient-trained MF learns little beyond popularity on this data (notebook 03's models take many
#   more steps, or exact ALS steps). Its lists differ from popularity's all the same: more novel, with far more
#   of the catalogue covered and some long tail.
# - **With DP**, at every ε tried, the models do no better than popularity: their NDCG is within noise of
#   popularity's at ε = 8 and ε = 4 and just below it at ε = 1 (an interval that barely excludes zero, from one
#   training run), and their lists have popularity's novelty, coverage and long-tail share (table in §7). This
#   notebook cannot say how much of that is the noise: the private models also have the smaller, SGD-trained,
#   clipped recipe (the limitation above), and no model with that recipe and σ = 0 was trained. One plausible role
#   for the noise (not measured here): $\sigma C$ lands on every row at every step, while a rarely watched movie's
#   row receives a clipped gradient in few steps, so its vector ends up mostly noise, whereas the item biases, pushed
#   the same way by many interactions of every popular movie, survive. Private recommenders do better with far more
#   data per parameter (millions of ratings), or by privatising only what many users share.
# - **The attack.** Without DP, the loss threshold tells members from non-members with an advantage of about a third
#   (AUC 0.71): the model fits its training interactions much better than held-out interactions of the same users.
#   Against the private models the attack does no better than a coin toss: AUC 0.498 to 0.499, advantages −0.026,
#   −0.022 and −0.021 (ε = 8, 4, 1). The intervals (printed above, drawn as error bars; binomial intervals over the
#   attack's held-out pairs, from one training run) include zero at ε = 4 and ε = 1; at ε = 8, [−0.051, −0.001], the
#   interval barely excludes zero, on the negative side. The negative values are noise, not a finding: the
#   threshold is chosen on one half of the pairs and the advantage measured on the other, so for models that leak
#   nothing the measured value scatters around zero on either side (measured on the same half, the best threshold
#   could never score below zero). The three private models are attacked with the same pairs, so their three values
#   are correlated rather than three independent results. Because of the limitation above, the fall from about a
#   third to about zero shows what the private *recipe* does to this attack, not the effect of the noise alone.
# - **What ε bounds.** Under $(\varepsilon, \delta)$-DP no attack's advantage can exceed
#   $(e^\varepsilon - 1 + 2\delta)/(e^\varepsilon + 1)$ (Kairouz, Oh and Viswanath, 2015; the "advantage bound"
#   column): 0.46 at ε = 1, close to 1 at ε = 8. The measured advantage is far below, because the bound covers the
#   worst case over all data sets and all attacks, and this is one simple attack on one data set. Unlike the
#   measured advantage, the bound holds whatever the recipe, but only at this notebook's δ = 1/N.
# - **What ε means for a user.** Whatever an attacker believed about whether one of your ratings was used, seeing
#   the ε = 1 model can change the odds by a factor of at most about $e \approx 2.7$ (up to the slack δ); at ε = 8,
#   by up to about 3,000, a guarantee that is real but weak. Both are optimistic, since δ = 1/N is above standard
#   practice (see above).
# - **What ε does not cover.** The served lists come from `top_k`, which removes each user's training movies: that
#   step reads the raw training data after training, so the guarantee covers the model's parameters, not the lists
#   the users are shown.
#
# **Example-level is not user-level.** The guarantee is for one interaction, and a user has many:

# %%
per_user_count = train.groupby("user_id").size()
median_k, max_k = int(per_user_count.median()), int(per_user_count.max())
print(f"training interactions per user: median {median_k}, largest {max_k:,}. Group privacy turns ε per "
      f"interaction into at most k·ε for a user's k interactions: at ε = {min(DP_EPSILONS):g}, "
      f"{median_k * min(DP_EPSILONS):g} for the median user and {max_k * min(DP_EPSILONS):,g} for the most active one")

# %% [markdown]
# Group privacy gives at most $k\varepsilon$ for $k$ interactions, with a δ that grows even faster, to
# $k e^{(k-1)\varepsilon}\delta$. For the median user's 56 interactions at ε = 1 the odds factor is $e^{56}$ and that
# δ is far above 1, so the bound says nothing: there is **no guarantee** for the user's taste as a whole (the actual
# leakage may be much smaller than a vacuous bound), though every single rating keeps its own.
#
# **User-level** DP-SGD samples users instead of interactions and clips each user's whole gradient to $C$. Each user
# then counts as one example, but there are only 610 of them: a step with the same sampling rate averages about 124
# clipped user gradients instead of 16,384 interaction gradients. A rough argument (it assumes every clipped
# gradient has norm $C$): for the same signal-to-noise ratio the noise multiplier must shrink by the same factor, and
# the accountant turns that into the ε printed below. At so little noise the accountant's digits carry no meaning:
# read each printed value as "above 10,000, no meaningful guarantee".

# %%
shrink = N / ids_tr.n_users  # interactions per user: how much smaller the summed signal of a step becomes
user_level = {eps: epsilon(sigmas[eps] / shrink) for eps in DP_EPSILONS}
print(f"user-level DP-SGD at the same sampling rate: about {q * ids_tr.n_users:.0f} users per step; for the same "
      f"signal-to-noise ratio σ must be {shrink:.0f} times smaller, and then ε is "
      + ", ".join(f"{v:,.0f} where it was {eps:g}" for eps, v in user_level.items()))

# %% [markdown]
# ## 6. Exercises
# **Exercise 1 · Novelty of a list.** Write `list_novelty(items, popularity, n_users)`: the mean self-information
# $-\log_2(\text{popularity}_i / n_\text{users})$ of the movies in `items`, where `popularity` maps a movie id to its
# number of training users. Return a float.

# %% tags=["nbval-check-output"]
def list_novelty(items, popularity, n_users):
    # YOUR CODE HERE
    raise NotImplementedError


pop_ex = {1: 50, 2: 25, 3: 100, 4: 1}
check(list_novelty, [(([1, 2], pop_ex, 100), 1.5), (([3], pop_ex, 100), 0.0), (([4], pop_ex, 128), 7.0),
                     (([2, 2, 4], pop_ex, 100), (2 * 2 + np.log2(100)) / 3)], name="list_novelty")

# %% [markdown]
# <details><summary>Reveal a solution</summary>
#
# ```python
# def list_novelty(items, popularity, n_users):
#     return float(np.mean([-np.log2(popularity[i] / n_users) for i in items]))
# ```
# </details>
#
# **Exercise 2 · One MMR step.** Write `mmr_step(rel, sim, chosen, lam)`: given the relevance of $n$ candidates
# (`rel`, length $n$), their pairwise similarities (`sim`, $n \times n$), the positions already listed (`chosen`, a
# Python list, possibly empty) and $\lambda$, return the position MMR adds next: the unlisted candidate with the largest
# $\lambda\,\mathrm{rel}(i) - (1-\lambda)\max_{j \in \text{chosen}} \mathrm{sim}(i, j)$ (the max is 0 when nothing is
# listed yet; ties go to the smaller position). This is the textbook MMR, with the plain maximum; §2's `mmr` also
# floors the maximum at 0, which changes nothing in these checks (no similarity in them is negative).

# %% tags=["nbval-check-output"]
def mmr_step(rel, sim, chosen, lam):
    # YOUR CODE HERE
    raise NotImplementedError


rel_ex = np.array([1.0, 0.9, 0.5, 0.2])
sim_ex = np.array([[1, 0.9, 0.0, 0.1], [0.9, 1, 0.2, 0.0], [0.0, 0.2, 1, 0.3], [0.1, 0.0, 0.3, 1]])
check(mmr_step, [((rel_ex, sim_ex, [], 0.5), 0), ((rel_ex, sim_ex, [0], 1.0), 1), ((rel_ex, sim_ex, [0], 0.5), 2),
                 ((rel_ex, sim_ex, [0, 2], 0.3), 3), ((rel_ex, sim_ex, [0], 0.0), 2),
                 ((np.array([0.2, 0.7, 0.7]), np.eye(3), [], 1.0), 1)], name="mmr_step")

# %% [markdown]
# <details><summary>Reveal a solution</summary>
#
# ```python
# def mmr_step(rel, sim, chosen, lam):
#     redundancy = sim[:, chosen].max(axis=1) if chosen else np.zeros(len(rel))
#     value = lam * np.asarray(rel) - (1 - lam) * redundancy
#     value[chosen] = -np.inf
#     return int(np.argmax(value))
# ```
# </details>
#
# **Going further (no checks).** (1) Re-rank WMF or Mult-VAE instead of EASE: are the curves the same shape?
# (2) Use the Jaccard similarity of the genre sets as MMR's similarity, and compare the two ILDs' curves with §2's.
# (3) Train `DPMF` with the private models' recipe (16 factors, SGD at 100) and σ = 0, once with clipping at
# $C = 1$ and once without, attack both, and see how much of the attack's fall from about a third to about zero is the
# noise's doing and how much the recipe's. (4) Penalise popularity in the scores themselves, $s_{ui} - \beta \log
# \mathrm{pop}_i$, choose β on validation by the 93% rule, and compare its long-tail share with xQuAD's.

# %% [markdown]
# ## 7. Results
# The notebook's records (they join the course leaderboard when the notebook runs inside a course run): every list
# carries its beyond-accuracy metrics; the re-ranked lists carry their chosen weight, and the private models their
# ε, σ and attack numbers.

# %%
extras = {f"EASE + {name}": {"trade-off weight": chosen_weight[name]} for name in ["MMR", "calibrated", "xQuAD"]}
extras["EASE + MMR"].update({"share of EASE ndcg@10": mmr_keep, "ild_emb@10 gain over EASE": mmr_gain,
                             "ild@10 gain over EASE": genre_gain})
for label in private:
    eps = next((e for e in DP_EPSILONS if label == f"DP-SGD MF (ε={e:g})"), None)
    extras[label] = {"attack advantage": attack.loc[label, "attack advantage"],
                     "attack AUC": attack.loc[label, "attack AUC"], "delta": delta,
                     **({"epsilon": epsilon(sigmas[eps]), "noise multiplier": sigmas[eps]} if eps else {})}
for name, row in rows.items():
    results.record(name, "ranking", {**row, **extras.get(name, {})}, train_seconds=seconds[name])
with pd.option_context("display.width", 250):
    display(results.table("ranking").drop(columns="protocol").set_index("model")[
        [f"ndcg@{K}", f"ild@{K}", f"ild_emb@{K}", f"novelty@{K}", f"aplt@{K}", f"miscalibration@{K}",
         f"coverage@{K}", "train_seconds"]].round(4))

# %% [markdown]
# ## Summary
# - Beyond-accuracy metrics are read next to accuracy, since recommending at random maximises most of them. Among the
#   course's models the most accurate, EASE, is also the best calibrated and the least novel; item-kNN and Mult-VAE
#   trade accuracy for novelty, coverage and a little long tail.
# - Re-ranking the best model's candidates buys diversity (MMR) or calibration (Steck) at a measured cost in NDCG,
#   with the weight chosen on validation; the trade-off curves bend, so the first steps are cheap.
# - The accurate models almost never show the long tail, and re-ranking their candidates cannot show what the
#   candidates do not contain. Light users are served worst by popularity, EASE and its re-rankings alike.
# - Removing the movie that integrated gradients ranks first changes SASRec's score far more than removing a random
#   one; removing the most-attended movie changes it no more than removing a random one. Neighbour explanations are
#   exact for item-kNN only.
# - DP-SGD with a maintained accountant bounds what any attack can learn about one interaction, but the ε printed
#   here use δ = 1/N, above standard practice, so they are optimistic. The loss-threshold attack's advantage is about
#   a third without DP and no better than a coin toss against the private models, which also differ in size,
#   optimizer and clipping, so this run does not show how much of that fall the noise causes. At this data size and
#   budget the private models do no better than popularity (nor does the MF trained without DP); user-level privacy
#   is far harder.
#
# ## References
# - Carbonell, J. and Goldstein, J. (1998). The use of MMR, diversity-based reranking for reordering documents and
#   producing summaries. SIGIR.
# - Steck, H. (2018). Calibrated recommendations. RecSys.
# - Abdollahpouri, H., Burke, R. and Mobasher, B. (2019). Managing popularity bias in recommender systems with
#   personalized re-ranking. FLAIRS.
# - Santos, R. L. T., Macdonald, C. and Ounis, I. (2010). Exploiting query reformulations for web search result
#   diversification. WWW.
# - Zhou, T., Kuscsik, Z., Liu, J.-G., Medo, M., Wakeling, J. R. and Zhang, Y.-C. (2010). Solving the apparent
#   diversity–accuracy dilemma of recommender systems. PNAS 107(10).
# - Hu, Y., Koren, Y. and Volinsky, C. (2008). Collaborative filtering for implicit feedback datasets. ICDM.
# - Sundararajan, M., Taly, A. and Yan, Q. (2017). Axiomatic attribution for deep networks. ICML.
# - Jain, S. and Wallace, B. C. (2019). Attention is not explanation. NAACL.
# - Kang, W.-C. and McAuley, J. (2018). Self-attentive sequential recommendation. ICDM.
# - Dwork, C., McSherry, F., Nissim, K. and Smith, A. (2006). Calibrating noise to sensitivity in private data
#   analysis. TCC.
# - Abadi, M., Chu, A., Goodfellow, I., McMahan, H. B., Mironov, I., Talwar, K. and Zhang, L. (2016). Deep learning
#   with differential privacy. CCS.
# - Mironov, I. (2017). Rényi differential privacy. IEEE CSF.
# - Kairouz, P., Oh, S. and Viswanath, P. (2015). The composition theorem for differential privacy. ICML.
# - Ponomareva, N., Hazimeh, H., Kurakin, A., Xu, Z., Denison, C., McMahan, H. B., Vassilvitskii, S., Chien, S. and
#   Thakurta, A. (2023). How to DP-fy ML: a practical guide to machine learning with differential privacy. JAIR 77.
# - Yeom, S., Giacomelli, I., Fredrikson, M. and Jha, S. (2018). Privacy risk in machine learning: analyzing the
#   connection to overfitting. IEEE CSF.
# - Steck, H. (2019). Embarrassingly shallow autoencoders for sparse data. WWW.
# - Liang, D., Krishnan, R. G., Hoffman, M. D. and Jebara, T. (2018). Variational autoencoders for collaborative
#   filtering. WWW.
