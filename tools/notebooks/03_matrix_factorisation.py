# %% [markdown]
# # 03 · Matrix factorisation
#
# Matrix factorisation (MF) won the Netflix Prize era of recommender systems and is still the model every new one is
# measured against. The idea fits in one line: describe every user and every movie by a short vector of $k$ numbers,
# learned from the ratings, so that their dot product predicts the rating. This notebook derives it, builds it three
# times (numpy SGD, numpy ALS, Keras), then adapts it to implicit feedback (clicks, views) for top-K recommendation.
#
# **In this notebook you will**
# - derive biased MF $\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i$, its regularised squared loss and its gradients;
# - implement it from scratch in numpy with stochastic gradient descent (SGD) and with alternating least squares (ALS),
#   and watch train/test RMSE per epoch: overfitting, regularisation, the number of factors;
# - build the same model in Keras (`recsys_helpers.models.BiasedMF`, reused by notebook 04) and match the numpy RMSE;
# - train two implicit-feedback models, BPR in Keras and weighted MF by ALS in numpy, and compare them on the top-K
#   protocol;
# - look inside a trained model: a map of the movie factors, nearest neighbours of famous movies, what the biases learned.
#
# **Prerequisites:** notebooks 01 (splits, RMSE, NDCG@10, the bias baseline) and 02 (neighbourhood models).
# **Time:** 2 to 3 minutes on a 2-core CPU at the default parameters (no GPU needed).

# %% tags=["parameters"]
SEED = 42  # seeds every random number generator
DATASET = "ml-latest-small"
SMOKE = False  # True: a few epochs and small grids, for a quick end-to-end check
TEST_FRAC = 0.2  # the course's standard split: stratified_split(ratings, TEST_FRAC, SEED)
VAL_FRAC = 0.2  # validation split carved from train, for tuning (the test split is never used to tune)
# explicit ratings, numpy SGD
SGD_FACTORS = 64  # k, the length of every user and item vector
SGD_REG = 0.1  # λ, the L2 penalty per rating
SGD_LR = 0.01  # η, the SGD step size
SGD_EPOCHS = 30  # passes over the training ratings
SGD_BATCH = 512  # ratings updated together (vectorised mini-batch SGD)
REG_GRID = [0.0, 0.02, 0.1, 0.3]  # λ values compared in the regularisation sweep
FACTOR_GRID = [2, 8, 32, 128]  # k values compared in the factor sweep
SWEEP_EPOCHS = 20  # epochs per run in the factor sweep
# explicit ratings, numpy ALS
ALS_FACTORS = 64
ALS_REG = 0.15  # λ per rating (each user's penalty is λ · n_u, as in the SGD loss)
ALS_ITERS = 10  # alternations (each solves all users, then all items)
# explicit ratings, Keras
MF_FACTORS = 64
MF_REG = 0.1
MF_LR = 3e-3  # Adam's learning rate
MF_BATCH = 1024
MF_EPOCHS = 20
# implicit feedback: BPR (Keras) and weighted MF (numpy ALS)
BPR_FACTORS = 64
BPR_REG = 1e-3
BPR_LR = 2e-3
BPR_BATCH = 4096
BPR_NEGATIVES = 4  # sampled negatives per positive per epoch
BPR_EPOCHS = 15
WMF_FACTORS = 64
WMF_ALPHA = 20.0  # confidence of an observed interaction: c = 1 + α
WMF_REG_GRID = [10.0, 30.0, 100.0, 300.0]  # λ values tried on the validation split
WMF_ITERS = 10  # ALS alternations for the final model
WMF_TUNE_ITERS = 5  # ALS alternations per candidate while tuning
TOP_N = 10  # length of recommendation lists (and of the ranking metrics, @10)
MIN_RATINGS = 20  # movies with fewer training ratings are left out of the "looking inside" tables and map
SHOWCASE_TITLES = ["Toy Story (1995)", "Matrix, The (1999)", "Godfather, The (1972)", "Shining, The (1980)"]
N_NEIGHBOURS = 5  # nearest neighbours shown per showcase movie
MAP_GENRES = ["Children", "Horror", "War"]  # genres coloured in the map of movie factors

# %%
if SMOKE:  # a quick end-to-end check (the tests use it): few epochs, small grids, same data and split
    SGD_EPOCHS, REG_GRID, FACTOR_GRID, SWEEP_EPOCHS = 3, [0.0, 0.1], [8, 32], 2
    ALS_FACTORS, ALS_ITERS = 16, 2
    MF_EPOCHS = 2
    BPR_FACTORS, BPR_EPOCHS, BPR_NEGATIVES = 32, 2, 1
    WMF_FACTORS, WMF_REG_GRID, WMF_ITERS, WMF_TUNE_ITERS = 32, [100.0], 3, 1

# %%
from recsys_helpers import env

tf, results = env.start_notebook("03_matrix_factorisation", SEED)
import keras
from keras import layers, ops
import numpy as np, pandas as pd, matplotlib.pyplot as plt
import inspect
from collections import namedtuple
import scipy.sparse as sp
from IPython.display import Code, display
from recsys_helpers.data import load_movielens
from recsys_helpers.split import stratified_split
from recsys_helpers.evaluation import Timer, evaluate_ranking, evaluate_ratings, top_k
from recsys_helpers.interactions import IdMap
from recsys_helpers.baselines import BiasBaseline, GlobalMean, Popularity
from recsys_helpers.plots import plot_training_curves, plot_comparison
from recsys_helpers.exercises import check
from recsys_helpers.models import BiasedMF
from recsys_helpers.training import NegativeSampling


# %% [markdown]
# ## 1. The data, the split and the numbers to beat
# The course's standard split: per user, 20% of the ratings go to test. Models work with contiguous indices, so
# `IdMap.from_train(train)` numbers users and movies $0, 1, \dots$; a few test movies never occur in training (index
# $-1$): no collaborative model knows anything about them, and every model below predicts $\mu + b_u$ for them.

# %%
data = load_movielens(DATASET)
env.require_memory(2 * 8 * data.ratings.user_id.nunique() * data.ratings.item_id.nunique(),
                   "the dense user × item score matrices of this notebook", DATASET)
train, test = stratified_split(data.ratings, TEST_FRAC, SEED)
ids = IdMap.from_train(train)
n_users, n_items = ids.n_users, ids.n_items
u_train, i_train = ids.users(train.user_id), ids.items(train.item_id)
r_train = train.rating.to_numpy(np.float64)
u_test, i_test = ids.users(test.user_id, strict=False), ids.items(test.item_id, strict=False)
r_test = test.rating.to_numpy(np.float64)
mu = r_train.mean()
print(f"{len(train):,} training and {len(test):,} test ratings; {n_users} users, {n_items:,} movies in train; "
      f"{(i_test < 0).sum()} test ratings are of movies unseen in training. Global mean μ = {mu:.3f}.")

baselines = pd.DataFrame({
    "Global mean": evaluate_ratings(GlobalMean().fit(train).predict, test),
    "User/item biases": evaluate_ratings(BiasBaseline().fit(train).predict, test),
}).T
bias_rmse = baselines.loc["User/item biases", "rmse"]
baselines

# %% [markdown]
# The bias baseline of notebook 01, $\hat r_{ui} = \mu + b_u + b_i$, is the bar: matrix factorisation adds a
# *personal* term to it and has to earn its keep.
#
# ## 2. The model: $R \approx P^\top Q$
# Put the ratings in a matrix $R$ with $m$ users as rows and $n$ movies as columns; it is 98% empty. MF looks for
# a **low-rank** approximation: a $k \times m$ matrix $P$ (column $p_u$ describes user $u$) and a $k \times n$ matrix $Q$
# (column $q_i$ describes movie $i$) with
# $$R \approx P^\top Q, \qquad \hat r_{ui} = p_u^\top q_i = \sum_{f=1}^{k} p_{uf}\, q_{if}.$$
# With $k = 64$ that is $64\,(m + n)$ numbers instead of $m \cdot n$, so the model must find structure: each of the
# $k$ *latent factors* ends up as a direction of taste (more action or more romance, more mainstream or more arthouse),
# $q_{if}$ says how much movie $i$ has of it and $p_{uf}$ how much user $u$ likes it.
# (In code we store one row per user and per movie, so the arrays `P` and `Q` below are $P^\top$ and $Q^\top$.)
#
# Why not the SVD from linear algebra? It needs a complete matrix, and filling the missing cells with zeros tells
# the model that users hate every movie they have not rated. MF fits **only the observed ratings** $\mathcal K$.
#
# **Biased MF.** Much of a rating is not about taste at all: some users rate everything high, some movies are loved by
# everyone. Koren's *biased* MF keeps the bias baseline and lets the factors explain what it leaves over:
# $$\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i .$$
#
# **The loss.** Fit the observed ratings, with an L2 penalty that keeps the vectors small (a user with three ratings
# should not get an extreme vector):
# $$L = \sum_{(u,i) \in \mathcal K} \ell_{ui}, \qquad
#   \ell_{ui} = \big(r_{ui} - \hat r_{ui}\big)^2 + \lambda \big(\lVert p_u\rVert^2 + \lVert q_i\rVert^2 + b_u^2 + b_i^2\big).$$
# The penalty is paid *per rating*, so a user with $n_u$ ratings pays $\lambda\, n_u \lVert p_u\rVert^2$ in total.
#
# **The gradients.** With the error $e_{ui} = r_{ui} - \hat r_{ui}$ and $\partial \hat r_{ui} / \partial p_u = q_i$,
# $\partial \hat r_{ui} / \partial q_i = p_u$, $\partial \hat r_{ui} / \partial b_u = \partial \hat r_{ui} / \partial b_i = 1$:
# $$\frac{\partial \ell_{ui}}{\partial p_u} = -2 e_{ui}\, q_i + 2\lambda\, p_u, \quad
#   \frac{\partial \ell_{ui}}{\partial q_i} = -2 e_{ui}\, p_u + 2\lambda\, q_i, \quad
#   \frac{\partial \ell_{ui}}{\partial b_u} = -2 e_{ui} + 2\lambda\, b_u, \quad
#   \frac{\partial \ell_{ui}}{\partial b_i} = -2 e_{ui} + 2\lambda\, b_i .$$
# A step against the gradient of one rating's loss, with the 2 folded into the step size $\eta$, is the classic
# SGD update of Simon Funk's Netflix Prize blog post:
# $$p_u \leftarrow p_u + \eta\,(e_{ui}\, q_i - \lambda\, p_u), \qquad q_i \leftarrow q_i + \eta\,(e_{ui}\, p_u - \lambda\, q_i),$$
# $$b_u \leftarrow b_u + \eta\,(e_{ui} - \lambda\, b_u), \qquad b_i \leftarrow b_i + \eta\,(e_{ui} - \lambda\, b_i),$$
# where both factor updates use the values from *before* the step. $\mu$ stays the training mean.
#
# A model is just four arrays. `predict` implements $\hat r_{ui}$ for arrays of indices; a movie unseen in training
# (index $-1$) gets $b_i = 0$ and $q_i = 0$, so its prediction is $\mu + b_u$.

# %%
class MF(namedtuple("MF", "P Q bu bi")):
    """P: (n_users, k), Q: (n_items, k), bu: (n_users,), bi: (n_items,)."""

    def scores(self, user_idx):
        """Scores of every item for the users ``user_idx`` (the course's scoring contract, notebook 01): the
        predicted rating without μ and b_u, which do not change a user's order."""
        return self.P[user_idx] @ self.Q.T + self.bi[None, :]


def predict(m: MF, u, i):
    """μ + b_u + b_i + p_u·q_i for index arrays u, i (-1: unseen in training, which contributes 0)."""
    ku, ki = u >= 0, i >= 0
    uu, ii = np.where(ku, u, 0), np.where(ki, i, 0)
    dot = np.sum(m.P[uu] * m.Q[ii], axis=1)
    return mu + np.where(ku, m.bu[uu], 0.0) + np.where(ki, m.bi[ii], 0.0) + np.where(ku & ki, dot, 0.0)


def rmse_of(m: MF, u, i, r):
    return float(np.sqrt(np.mean((r - predict(m, u, i)) ** 2)))


def plot_curves(curves: dict, title: str, xlabel: str = "epoch", ax=None):
    """Train (solid) and test (dashed) RMSE per epoch for one or more runs: {label: (train, test)}."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for label, (tr, te) in curves.items():
        x = np.arange(1, len(tr) + 1)
        line, = ax.plot(x, tr, marker="o", ms=2, label=f"{label} train")
        ax.plot(x, te, ls="--", marker="o", ms=2, color=line.get_color(), label=f"{label} test")
    ax.axhline(bias_rmse, color="grey", lw=1, ls=":", label="bias baseline (test)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("RMSE")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return ax

# %% [markdown]
# ## 3. SGD from scratch, vectorised
# Textbook SGD visits the ratings one by one in a Python loop. Here it is, timed on the first 2,000 ratings:

# %%
def sgd_epoch_loop(m: MF, order, lr, reg):
    """One rating at a time, exactly the update rule above (slow: a Python loop over ratings)."""
    for n in order:
        u, i = u_train[n], i_train[n]
        e = r_train[n] - (mu + m.bu[u] + m.bi[i] + m.P[u] @ m.Q[i])
        m.bu[u] += lr * (e - reg * m.bu[u])
        m.bi[i] += lr * (e - reg * m.bi[i])
        m.P[u], m.Q[i] = m.P[u] + lr * (e * m.Q[i] - reg * m.P[u]), m.Q[i] + lr * (e * m.P[u] - reg * m.Q[i])


rng = np.random.default_rng(SEED)
demo = MF(rng.normal(0, 0.1, (n_users, SGD_FACTORS)), rng.normal(0, 0.1, (n_items, SGD_FACTORS)),
          np.zeros(n_users), np.zeros(n_items))
with Timer() as loop_timer:
    sgd_epoch_loop(demo, np.arange(2000), SGD_LR, SGD_REG)
per_epoch = loop_timer.seconds / 2000 * len(r_train)
print(f"{loop_timer.seconds / 2000 * 1e6:.0f} µs per rating: about {per_epoch:.1f} s per epoch, "
      f"{per_epoch * SGD_EPOCHS:.0f} s for {SGD_EPOCHS} epochs.")

# %% [markdown]
# Bearable for one model, but this notebook trains more than a dozen, and larger data sets have millions of ratings.
# We keep the update rule and change the bookkeeping: take a **mini-batch** of `SGD_BATCH` shuffled ratings, compute
# all their errors at once from the current parameters, and apply all their updates at once. A user who appears
# several times in a batch receives the *sum* of their updates, which `np.add.at` accumulates correctly (plain
# `P[u] += ...` would keep only the last one). Adding up updates computed from slightly stale parameters is also what
# lock-free parallel SGD (Hogwild!, Recht et al., 2011) does; with a small step size it reaches the same test RMSE as
# the one-at-a-time loop on this data, and numpy does the arithmetic of a whole batch in one call.

# %%
def sgd_mf(k, reg, lr, epochs, batch=SGD_BATCH, seed=SEED, init_std=0.1):
    """Biased MF by mini-batch SGD. Returns the model and its per-epoch (train RMSE, test RMSE) lists."""
    rng = np.random.default_rng(seed)
    m = MF(rng.normal(0, init_std, (n_users, k)), rng.normal(0, init_std, (n_items, k)),
           np.zeros(n_users), np.zeros(n_items))
    train_rmse, test_rmse = [], []
    for _ in range(epochs):
        order = rng.permutation(len(r_train))
        for start in range(0, len(order), batch):
            b = order[start:start + batch]
            u, i, r = u_train[b], i_train[b], r_train[b]
            p_u, q_i = m.P[u], m.Q[i]  # copies of the current values: both updates use them
            e = r - (mu + m.bu[u] + m.bi[i] + np.sum(p_u * q_i, axis=1))
            np.add.at(m.bu, u, lr * (e - reg * m.bu[u]))
            np.add.at(m.bi, i, lr * (e - reg * m.bi[i]))
            np.add.at(m.P, u, lr * (e[:, None] * q_i - reg * p_u))
            np.add.at(m.Q, i, lr * (e[:, None] * p_u - reg * q_i))
        train_rmse.append(rmse_of(m, u_train, i_train, r_train))
        test_rmse.append(rmse_of(m, u_test, i_test, r_test))
    return m, (train_rmse, test_rmse)


with Timer() as t:
    sgd_model, sgd_curves = sgd_mf(SGD_FACTORS, SGD_REG, SGD_LR, SGD_EPOCHS)
sgd_metrics = evaluate_ratings(predict(sgd_model, u_test, i_test), test)
results.record("MF (numpy SGD)", "rating", sgd_metrics, train_seconds=t.seconds)
plot_curves({f"SGD, k={SGD_FACTORS}, λ={SGD_REG}": sgd_curves}, "Biased MF trained by SGD (numpy)")
plt.show()
print(f"After {SGD_EPOCHS} epochs ({t.seconds:.1f} s, against about {per_epoch * SGD_EPOCHS:.0f} s for the "
      f"one-at-a-time loop): train RMSE {sgd_curves[0][-1]:.3f}, test RMSE {sgd_metrics['rmse']:.3f} "
      f"(bias baseline {bias_rmse:.3f}).")

# %% [markdown]
# The training error keeps falling well below the test error: with 64 numbers per user the model could memorise the
# training ratings, and only the penalty $\lambda$ stops it. The test curve is what we care about; we look at it to
# *see* overfitting, but we never choose hyperparameters by it (the defaults in the parameters cell were chosen on a
# validation split carved from the training data, as in notebook 02).
#
# ## 4. Overfitting, regularisation and the number of factors
# **Regularisation.** The same model with several values of $\lambda$:

# %%
reg_runs = {SGD_REG: sgd_curves} if SGD_EPOCHS and SGD_REG in REG_GRID else {}
for reg in REG_GRID:
    if reg not in reg_runs:
        reg_runs[reg] = sgd_mf(SGD_FACTORS, reg, SGD_LR, SGD_EPOCHS)[1]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for reg, (tr, te) in sorted(reg_runs.items()):
    x = np.arange(1, len(tr) + 1)
    axes[0].plot(x, tr, marker="o", ms=2, label=f"λ = {reg:g}")
    axes[1].plot(x, te, marker="o", ms=2, label=f"λ = {reg:g}")
for ax, which in zip(axes, ["train", "test"]):
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{which} RMSE")
    ax.set_title(f"{which.capitalize()} RMSE by epoch, k = {SGD_FACTORS}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
axes[1].axhline(bias_rmse, color="grey", lw=1, ls=":")
axes[1].set_ylim(top=max(1.0, bias_rmse + 0.05))
plt.tight_layout()
plt.show()
reg_table = pd.DataFrame([{"λ": reg, "train RMSE (last epoch)": tr[-1], "test RMSE (last epoch)": te[-1],
                           "best test RMSE": min(te), "best epoch": int(np.argmin(te)) + 1}
                          for reg, (tr, te) in sorted(reg_runs.items())]).set_index("λ")
for reg, row in reg_table.iterrows():
    print(f"λ = {reg:g}: the test RMSE is lowest at epoch {int(row['best epoch'])} of {SGD_EPOCHS} ({row['best test RMSE']:.3f}) "
          f"and ends at {row['test RMSE (last epoch)']:.3f}.")
reg_table

# %% [markdown]
# Without a penalty ($\lambda = 0$) the test error reaches its minimum after a few epochs and then climbs while the
# training error keeps falling: textbook overfitting. A small $\lambda$ only delays it; a large one makes the model
# too timid to fit even the training data (underfitting). In between, the test error keeps improving for the whole
# run. Early stopping is the other remedy, and the one deep models of later notebooks lean on.
#
# **Number of factors.** More factors mean more capacity. Final train and test RMSE after `SWEEP_EPOCHS` epochs for
# several $k$, without and with the penalty:

# %%
factor_rows = []
for reg in sorted({0.0, SGD_REG}):
    for k in FACTOR_GRID:
        _, (tr, te) = sgd_mf(k, reg, SGD_LR, SWEEP_EPOCHS)
        factor_rows.append({"λ": reg, "k": k, "train RMSE": tr[-1], "test RMSE": te[-1]})
factor_table = pd.DataFrame(factor_rows)
fig, ax = plt.subplots(figsize=(6, 3.5))
for reg, part in factor_table.groupby("λ"):
    line, = ax.plot(part.k, part["test RMSE"], marker="o", label=f"test, λ = {reg:g}")
    ax.plot(part.k, part["train RMSE"], marker="o", ls="--", color=line.get_color(), label=f"train, λ = {reg:g}")
ax.axhline(bias_rmse, color="grey", lw=1, ls=":", label="bias baseline (test)")
ax.set_xscale("log", base=2)
ax.set_xticks(FACTOR_GRID, [str(k) for k in FACTOR_GRID])
ax.set_xlabel("number of factors k")
ax.set_ylabel("RMSE")
ax.set_title(f"Capacity: RMSE after {SWEEP_EPOCHS} epochs")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.show()
for reg, part in factor_table.groupby("λ"):
    print(f"λ = {reg:g}: test RMSE {part['test RMSE'].iloc[0]:.3f} with k = {part.k.iloc[0]} and "
          f"{part['test RMSE'].iloc[-1]:.3f} with k = {part.k.iloc[-1]}.")
factor_table.pivot(index="k", columns="λ", values=["train RMSE", "test RMSE"])

# %% [markdown]
# Without the penalty, every extra factor lowers the training error and raises the test error. With it, extra
# factors no longer hurt: the penalty switches off the directions the data cannot support, so $k$ becomes a ceiling
# on capacity rather than the capacity itself. With about 130 ratings per user on average, a few dozen factors are as
# many as the data can fill.
#
# ## 5. Alternating least squares (ALS)
# The loss is not convex in $(P, Q)$ together, but it is a plain **ridge regression** in the user vectors once the
# item vectors are fixed, and vice versa. ALS alternates between the two exact solutions.
#
# Fold the bias into the vectors: $x_u = (p_u, b_u)$ and $y_i = (q_i, 1)$, so that $x_u^\top y_i = p_u^\top q_i + b_u$,
# and let $\tilde r_{ui} = r_{ui} - \mu - b_i$. With the items fixed, user $u$'s share of the loss is
# $$\sum_{i \in I_u} \big(\tilde r_{ui} - x_u^\top y_i\big)^2 + \lambda\, n_u \lVert x_u\rVert^2 .$$
# Setting its gradient to zero, $-2\sum_i (\tilde r_{ui} - x_u^\top y_i)\, y_i + 2 \lambda n_u x_u = 0$, gives a
# $(k{+}1) \times (k{+}1)$ linear system per user:
# $$\big(Y_u^\top Y_u + \lambda\, n_u I\big)\, x_u = Y_u^\top \tilde r_u ,$$
# where the rows of $Y_u$ are the $y_i$ of the $n_u$ movies user $u$ rated. The item step is the same with the roles
# swapped ($x_i = (q_i, b_i)$, $y_u = (p_u, 1)$, $\tilde r_{ui} = r_{ui} - \mu - b_u$). The factor $\lambda\, n_u$ is
# the per-rating penalty of our loss; it is known as ALS-WR (Zhou et al., 2008). Each half step minimises the loss
# exactly in its half of the parameters, so the loss can only go down, with no learning rate to tune.
#
# The code: `row_grams` builds every $Y_u^\top Y_u$ (a loop over the rows of the sparse rating matrix, each one a
# small matrix product), and one call to `np.linalg.solve` solves a whole stack of systems at once. We go through the
# rows in blocks of 2,048 so that the stack of $(k{+}1) \times (k{+}1)$ matrices stays small in memory.

# %%
R_train = ids.interactions(train, values="rating")  # (n_users, n_items) CSR of ratings
R_train_T = R_train.T.tocsr()  # (n_items, n_users): the item step reads ratings by item


def row_grams(M: sp.csr_matrix, F: np.ndarray, rows) -> np.ndarray:
    """For each row r in rows: F_rᵀ F_r, where F_r stacks the rows of F at the columns stored in row r of M."""
    G = np.empty((len(rows), F.shape[1], F.shape[1]))
    for j, r in enumerate(rows):
        F_r = F[M.indices[M.indptr[r]:M.indptr[r + 1]]]
        G[j] = F_r.T @ F_r
    return G


def als_half_step(M: sp.csr_matrix, F: np.ndarray, other_bias: np.ndarray, reg: float, block: int = 2048):
    """Solve (Y_rᵀ Y_r + λ n_r I) x_r = Y_rᵀ r̃_r for every row r of M, with y = [F, 1]; return (factors, biases)."""
    k = F.shape[1]
    Y = np.hstack([F, np.ones((len(F), 1))])
    resid = M.copy()
    resid.data = resid.data - mu - other_bias[resid.indices]  # r̃ = r − μ − b (the other side's bias)
    rhs = resid @ Y  # row r: Y_rᵀ r̃_r
    n = np.diff(M.indptr)
    X = np.empty((M.shape[0], k + 1))
    for start in range(0, M.shape[0], block):  # blocks of rows keep the stack of matrices small
        rows = np.arange(start, min(start + block, M.shape[0]))
        A = row_grams(M, Y, rows) + reg * n[rows, None, None] * np.eye(k + 1)
        X[rows] = np.linalg.solve(A, rhs[rows, :, None])[:, :, 0]
    return X[:, :k], X[:, k]


def als_mf(k, reg, iters, seed=SEED, init_std=0.1):
    rng = np.random.default_rng(seed)
    Q, bi = rng.normal(0, init_std, (n_items, k)), np.zeros(n_items)
    train_rmse, test_rmse = [], []
    for _ in range(iters):
        P, bu = als_half_step(R_train, Q, bi, reg)  # users, items fixed
        Q, bi = als_half_step(R_train_T, P, bu, reg)  # items, users fixed
        m = MF(P, Q, bu, bi)
        train_rmse.append(rmse_of(m, u_train, i_train, r_train))
        test_rmse.append(rmse_of(m, u_test, i_test, r_test))
    return m, (train_rmse, test_rmse)


with Timer() as t:
    als_model, als_curves = als_mf(ALS_FACTORS, ALS_REG, ALS_ITERS)
als_metrics = evaluate_ratings(predict(als_model, u_test, i_test), test)
results.record("MF (numpy ALS)", "rating", als_metrics, train_seconds=t.seconds)
plot_curves({f"ALS, k={ALS_FACTORS}": als_curves, f"SGD, k={SGD_FACTORS}": sgd_curves},
            f"ALS (λ={ALS_REG}) and SGD (λ={SGD_REG})", xlabel="iteration (ALS) or epoch (SGD)")
plt.show()
print(f"ALS: test RMSE {als_metrics['rmse']:.3f} after {ALS_ITERS} iterations ({t.seconds:.1f} s); "
      f"SGD: {sgd_metrics['rmse']:.3f} after {SGD_EPOCHS} epochs.")

# %% [markdown]
# ALS gets close to its final error within a few iterations, because every step is an exact minimisation; SGD takes
# many small steps. The price is a $k \times k$ solve per user and per item, $O(k^3)$, so ALS likes moderate $k$. ALS also parallelises trivially (every user's system is independent), which is why Spark's recommender
# uses it. Both land in the same place, below the bias baseline.
#
# ## 6. The same model in Keras
# The course's Keras version of biased MF lives in `recsys_helpers.models` so that notebook 04 can reuse it. Here is
# its code:

# %%
display(Code(inspect.getsource(BiasedMF), language="python"))

# %% [markdown]
# Reading it top to bottom:
# - **`Embedding` layers are the matrices.** `user_factors` is the $m \times k$ array `P` of our numpy code, stored as
#   a trainable lookup table: `self.user_factors(users)` returns the rows $p_u$ of a batch of user indices. The biases
#   are embeddings of width 1. Factors start small and random (a standard deviation of 0.1, as in numpy), biases at 0.
# - **`call`** receives a batch of `[user, item]` index pairs and returns $\mu + b_u + b_i + p_u^\top q_i$, written
#   with `keras.ops` (`ops.sum(p_u * q_i, axis=-1)` is a batch of dot products), so it runs on any Keras backend.
# - **The penalty is the one of our loss.** `add_loss` adds $\lambda \cdot \text{mean}(\lVert p_u\rVert^2 +
#   \lVert q_i\rVert^2 + b_u^2 + b_i^2)$ over the *batch* to the compiled mean squared error, i.e. exactly
#   $\frac{1}{|B|}\sum_{(u,i) \in B} \ell_{ui}$. An earlier draft used Keras' `embeddings_regularizer`, which penalises
#   the *whole* table at every step: a movie seen once in training was shrunk as hard as *Forrest Gump*, the balance
#   between data and penalty depended on the batch size, and the test RMSE stalled at 0.916. Only when training
#   (`training=True`) is the penalty added, so the validation loss is the plain MSE.
# - **`scores`** scores every movie for some users with one matrix product, for the top-K protocol (the scoring
#   contract of notebook 01 that every model of the course follows).
#
# Training: Adam on the mean squared error. We pass the test ratings of known movies as `validation_data` only to
# draw the curves (nothing is tuned on them).

# %%
X_train = np.stack([u_train, i_train], axis=1)
known = i_test >= 0
X_test_known = np.stack([u_test[known], i_test[known]], axis=1)

keras.utils.set_random_seed(SEED)
mf = BiasedMF(n_users, n_items, n_factors=MF_FACTORS, reg=MF_REG, global_mean=mu)
mf.compile(optimizer=keras.optimizers.Adam(MF_LR), loss="mse",
           metrics=[keras.metrics.RootMeanSquaredError(name="rmse")])
with Timer() as t:
    history = mf.fit(X_train, r_train, batch_size=MF_BATCH, epochs=MF_EPOCHS, verbose=0,
                     validation_data=(X_test_known, r_test[known]))


def as_numpy(model: BiasedMF) -> MF:
    """The Keras model's weights as the four numpy arrays of section 2."""
    w = lambda layer: ops.convert_to_numpy(layer.embeddings)  # noqa: E731
    return MF(w(model.user_factors), w(model.item_factors), w(model.user_bias)[:, 0], w(model.item_bias)[:, 0])


keras_model = as_numpy(mf)
keras_metrics = evaluate_ratings(predict(keras_model, u_test, i_test), test)
results.record("Biased MF (Keras)", "rating", keras_metrics, train_seconds=t.seconds)
plot_training_curves(history, ["rmse"], title="Biased MF in Keras (validation = test ratings of known movies)")
plt.show()
gap = keras_metrics["rmse"] - sgd_metrics["rmse"]
print(f"Keras biased MF: test RMSE {keras_metrics['rmse']:.3f} in {t.seconds:.1f} s; numpy SGD {sgd_metrics['rmse']:.3f} "
      f"(difference {gap:+.3f}); bias baseline {bias_rmse:.3f}.")
print(f"The Keras model {'beats' if keras_metrics['rmse'] < bias_rmse else 'does not beat'} the bias baseline by "
      f"{bias_rmse - keras_metrics['rmse']:.3f} RMSE.")

# %% [markdown]
# Keras and numpy agree to within about a hundredth of RMSE: the same model and the same loss, optimised by different
# means (Adam with per-parameter step sizes instead of plain SGD). Keras buys us automatic gradients, so changing the
# model (notebook 04 replaces the dot product by a neural network) means changing `call` and nothing else.
#
# **An honest comparison.** MF beats the bias baseline, but by a small margin (printed above), not by a landslide: on
# a data set this small, most of what is predictable about a rating is who gives it and to which movie, and the personal term
# $p_u^\top q_i$ adds the rest. Notebook 02's best item-kNN (on the residuals of the same baseline) lands in the same
# range: on 100,000 ratings, neighbourhoods and factors are close. What MF adds is compactness (64 numbers per movie
# instead of a table of similarities), fast scoring by matrix products, and a model that the next notebooks can
# extend. The full comparison table of this notebook is at the end.
#
# ## 7. Implicit feedback
# Most real feedback is implicit: views, clicks, purchases. There are no negative ratings, only what a user did and a
# sea of things they did not do, and the task is to **rank**: put the movies they will watch at the top. We switch to the
# course's top-K protocol (notebook 01): every training rating becomes a positive interaction, every test rating a
# relevant item, and the metrics are computed on the top 10 of all movies the user has not seen in training.
#
# Can't we just rank by predicted rating? Let us try, with the Keras model above:

# %%
popularity = Popularity().fit(train)
C_train = ids.interactions(train)  # (n_users, n_items) CSR of 1s: the implicit feedback
ranking = pd.DataFrame({"Popularity": evaluate_ranking(popularity.scores, train, test, TOP_N)}).T


rank_mf = evaluate_ranking(keras_model, train, test, TOP_N)
results.record("Biased MF (Keras, ranked by predicted rating)", "ranking", rank_mf)
ranking.loc["Biased MF (Keras), by predicted rating"] = rank_mf
ranking

# %% [markdown]
# Far worse than simply recommending popular movies. The model was trained only on movies people chose to watch and
# rate; its predicted ratings say how much a user would like a movie *if* they watched it, and the top of that list is
# full of obscure, well-rated movies they would never pick. Ranking needs a loss that also looks at what users did
# **not** interact with. Two classic answers follow.
#
# ### 7a. BPR: learning to rank from pairs
# Bayesian personalised ranking (Rendle et al., 2009) asks for the right *order*: a movie $i$ that user $u$ watched
# should score higher than a movie $j$ they did not. With the score $\hat x_{ui} = p_u^\top q_i + b_i$ and
# $\hat x_{uij} = \hat x_{ui} - \hat x_{uj}$, model $P(i \succ_u j) = \sigma(\hat x_{uij})$ and maximise the
# log-likelihood with an L2 prior:
# $$\max_\Theta \sum_{(u,i,j)} \ln \sigma(\hat x_{uij}) - \lambda \lVert \Theta \rVert^2
#   \quad\Longleftrightarrow\quad
#   \min_\Theta \sum_{(u,i,j)} \operatorname{softplus}(-\hat x_{uij}) + \lambda \lVert \Theta \rVert^2 .$$
# Its gradient, $\frac{\partial}{\partial \theta} \ln\sigma(\hat x_{uij}) = \sigma(-\hat x_{uij})\, \frac{\partial
# \hat x_{uij}}{\partial \theta}$, is large for pairs in the wrong order and vanishes for pairs already well ordered.
# There are far too many triples to enumerate, so each epoch pairs every positive $(u, i)$ with `BPR_NEGATIVES` movies
# $j$ drawn uniformly among the movies $u$ has **not** interacted with (a draw that hits a watched movie is drawn
# again). The course's `NegativeSampling` data source (a `keras.utils.PyDataset`, also used by later chapters) draws
# fresh negatives at the start of every epoch, so the model never sees the same triples twice. Its epoch step:

# %%
Code(inspect.getsource(NegativeSampling.on_epoch_end), language="python")

# %%
class BPRMF(keras.Model):
    """Matrix factorisation scored by x_ui = p_u·q_i + b_i, trained on (user, positive, negative) triples."""

    def __init__(self, n_users, n_items, n_factors=64, reg=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.reg = reg
        init = keras.initializers.RandomNormal(stddev=0.01)
        self.user_factors = layers.Embedding(n_users, n_factors, embeddings_initializer=init)
        self.item_factors = layers.Embedding(n_items, n_factors, embeddings_initializer=init)
        self.item_bias = layers.Embedding(n_items, 1, embeddings_initializer="zeros")

    def call(self, triples, training=False):
        p_u = self.user_factors(triples[:, 0])
        q_i, q_j = self.item_factors(triples[:, 1]), self.item_factors(triples[:, 2])
        b_i, b_j = ops.squeeze(self.item_bias(triples[:, 1]), -1), ops.squeeze(self.item_bias(triples[:, 2]), -1)
        if training and self.reg:
            penalty = (ops.sum(p_u * p_u, -1) + ops.sum(q_i * q_i, -1) + ops.sum(q_j * q_j, -1) + b_i * b_i + b_j * b_j)
            self.add_loss(self.reg * ops.mean(penalty))
        return ops.sum(p_u * (q_i - q_j), axis=-1) + b_i - b_j  # x_uij = x_ui − x_uj


def bpr_loss(_, x_uij):
    """−ln σ(x_uij), written as softplus(−x) for numerical stability; the 'labels' are unused."""
    return ops.softplus(-x_uij)


keras.utils.set_random_seed(SEED)
bpr = BPRMF(n_users, n_items, BPR_FACTORS, BPR_REG)
bpr.compile(optimizer=keras.optimizers.Adam(BPR_LR), loss=bpr_loss)
with Timer() as t:
    bpr_history = bpr.fit(NegativeSampling(C_train, BPR_BATCH, BPR_NEGATIVES, "triples", SEED), epochs=BPR_EPOCHS,
                          verbose=0)
bpr_model = MF(*(ops.convert_to_numpy(layer.embeddings) for layer in (bpr.user_factors, bpr.item_factors)),
               np.zeros(n_users), ops.convert_to_numpy(bpr.item_bias.embeddings)[:, 0])
bpr_metrics = evaluate_ranking(bpr_model, train, test, TOP_N)
results.record("BPR-MF (Keras)", "ranking", bpr_metrics, train_seconds=t.seconds)
plot_training_curves(bpr_history, ["loss"], title="BPR: mean −ln σ(x_uij) + penalty per epoch")
plt.show()
print(f"BPR: NDCG@{TOP_N} {bpr_metrics[f'ndcg@{TOP_N}']:.3f} after {BPR_EPOCHS} epochs ({t.seconds:.1f} s).")

# %% [markdown]
# ### 7b. Weighted matrix factorisation by ALS
# Hu, Koren and Volinsky (2008) keep the squared loss but fit **every cell** of the matrix, observed or not. The
# *preference* $p_{ui}$ is 1 if $u$ interacted with $i$ and 0 otherwise, and a *confidence* $c_{ui}$ says how much
# we trust it: an interaction is strong evidence ($c_{ui} = 1 + \alpha$), a missing one is weak evidence of dislike
# ($c_{ui} = 1$), since the user may simply never have come across the movie. (The paper grows $c$ with the amount of
# interaction, $1 + \alpha r_{ui}$; we binarise, as the top-K protocol does.) The loss is
# $$\sum_{u, i} c_{ui}\, \big(p_{ui} - x_u^\top y_i\big)^2 + \lambda \Big(\sum_u \lVert x_u\rVert^2 + \sum_i \lVert y_i\rVert^2\Big)$$
# over all $m \cdot n$ cells, which rules out SGD over the cells but not ALS. With the items fixed, setting the
# gradient to zero gives, with $C^u$ the diagonal matrix of user $u$'s confidences and $p(u)$ their preference vector,
# $$x_u = \big(Y^\top C^u Y + \lambda I\big)^{-1} Y^\top C^u p(u).$$
# The trick that makes it cheap: $C^u - I$ is zero except on the $n_u$ movies $u$ interacted with, so
# $$Y^\top C^u Y = Y^\top Y + \alpha\, Y_u^\top Y_u, \qquad Y^\top C^u p(u) = (1 + \alpha)\, Y_u^\top \mathbf 1 .$$
# $Y^\top Y$ is shared by all users and computed once per half step, and each user adds a term over their own items:
# $O(k^2 n_u + k^3)$ per user instead of $O(k^2 n)$. The same `row_grams` and batched solves, block by block, do the
# work; the item step swaps the roles.

# %%
def wmf_half_step(C: sp.csr_matrix, F: np.ndarray, alpha: float, reg: float, block: int = 2048) -> np.ndarray:
    """x_r = (FᵀF + α F_rᵀF_r + λI)⁻¹ (1 + α) F_rᵀ1 for every row r of the binary matrix C."""
    k = F.shape[1]
    shared = F.T @ F + reg * np.eye(k)
    rhs = (1 + alpha) * (C @ F)  # row r: (1 + α) · the sum of F over the columns of row r
    X = np.empty((C.shape[0], k))
    for start in range(0, C.shape[0], block):
        rows = np.arange(start, min(start + block, C.shape[0]))
        X[rows] = np.linalg.solve(shared + alpha * row_grams(C, F, rows), rhs[rows, :, None])[:, :, 0]
    return X


def wmf(frame: pd.DataFrame, k: int, alpha: float, reg: float, iters: int, seed: int = SEED):
    """Weighted MF on the interactions of frame; returns (user factors, item factors) in IdMap.from_train(frame) order."""
    C = IdMap.from_train(frame).interactions(frame)
    C_T = C.T.tocsr()
    Y = np.random.default_rng(seed).normal(0, 0.01, (C.shape[1], k))
    for _ in range(iters):
        X = wmf_half_step(C, Y, alpha, reg)
        Y = wmf_half_step(C_T, X, alpha, reg)
    return X, Y

# %% [markdown]
# The penalty $\lambda$ matters a lot here, and it is not on the same scale as in the explicit model (it competes
# with all $n$ cells of a row, not with $n_u$ ratings). We tune it on a **validation split carved from the training
# data**, with fewer iterations to save time, and then refit on all of train with the chosen value. NDCG on the
# validation split is lower than on test simply because that split has fewer relevant movies per user; only the
# ranking of the candidates matters.

# %%
inner, val = stratified_split(train, VAL_FRAC, SEED)
tuning = {}
with Timer() as tune_timer:
    for reg in WMF_REG_GRID:
        X, Y = wmf(inner, WMF_FACTORS, WMF_ALPHA, reg, WMF_TUNE_ITERS)
        tuning[reg] = evaluate_ranking(X @ Y.T, inner, val, TOP_N)[f"ndcg@{TOP_N}"]
best_reg = max(tuning, key=tuning.get)
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(list(tuning), list(tuning.values()), marker="o")
ax.axhline(evaluate_ranking(Popularity().fit(inner).scores, inner, val, TOP_N)[f"ndcg@{TOP_N}"], color="grey",
           ls=":", label="popularity")
ax.set_xscale("log")
ax.set_xlabel("λ")
ax.set_ylabel(f"validation NDCG@{TOP_N}")
ax.set_title(f"Tuning WMF (k = {WMF_FACTORS}, α = {WMF_ALPHA:g}) on a validation split")
ax.legend()
ax.grid(alpha=0.3)
plt.show()
print(f"Best λ on validation: {best_reg:g} ({tune_timer.seconds:.1f} s for {len(WMF_REG_GRID)} candidates).")

# %%
with Timer() as t:
    wmf_X, wmf_Y = wmf(train, WMF_FACTORS, WMF_ALPHA, best_reg, WMF_ITERS)
wmf_metrics = evaluate_ranking(wmf_X @ wmf_Y.T, train, test, TOP_N)
results.record("WMF (numpy ALS, implicit)", "ranking", wmf_metrics, train_seconds=t.seconds + tune_timer.seconds)
ranking.loc["BPR-MF (Keras)"] = bpr_metrics
ranking.loc["WMF (numpy ALS)"] = wmf_metrics
display(ranking)
plot_comparison(ranking.reset_index(names="model"), f"ndcg@{TOP_N}", title=f"Top-{TOP_N} ranking on the test split")
plt.show()
best_implicit = max(["BPR-MF (Keras)", "WMF (numpy ALS)"], key=lambda name: ranking.loc[name, f"ndcg@{TOP_N}"])
print(f"WMF: NDCG@{TOP_N} {wmf_metrics[f'ndcg@{TOP_N}']:.3f} with λ = {best_reg:g} ({t.seconds:.1f} s); BPR: "
      f"{bpr_metrics[f'ndcg@{TOP_N}']:.3f}; popularity: {ranking.loc['Popularity', f'ndcg@{TOP_N}']:.3f}. "
      f"The better implicit model here is {best_implicit}.")

# %% [markdown]
# Both implicit models beat popularity, which ranking by predicted rating did not. Weighted MF is the stronger one
# here (and well-tuned iALS stays competitive with far newer models, as Rendle et al. (2022) showed): it uses
# *every* missing cell as weak negative evidence in each closed-form step, while BPR sees a few sampled negatives per
# positive and needs many epochs to cover the same ground. BPR's strength is elsewhere: its loss is a ranking loss that
# any differentiable scorer can use, which is why neural recommenders (notebook 04 onwards) train with it or with
# its cousins.
#
# What do the recommendations look like? The top 5 of one user, with the movies they rated highest in training:

# %%
titles = data.items.set_index("item_id").title
user = ids.user_ids[0]
liked = train[train.user_id == user].nlargest(5, "rating").item_id
_, wmf_top = top_k(wmf_X @ wmf_Y.T, train, 5, [user])
_, bpr_top = top_k(bpr_model, train, 5, [user])
pd.DataFrame({"rated highest in training": titles[liked].to_numpy(), "WMF recommends": titles[wmf_top[0]].to_numpy(),
              "BPR recommends": titles[bpr_top[0]].to_numpy()}, index=range(1, 6))

# %% [markdown]
# ## 8. Looking inside
# A trained MF model is a table of vectors, and it can be read. We look at the Keras biased MF of section 6 (explicit
# ratings) and at WMF (implicit), keeping to movies with at least `MIN_RATINGS` training ratings: the vectors of
# rarely rated movies are mostly the prior (zero), so they say little.
#
# **A map of the movie factors.** Project the $k$-dimensional item vectors onto their two main directions (PCA) and
# colour a few genres. Nobody told the models about genres.

# %%
n_ratings = np.bincount(i_train, minlength=n_items)
frequent = np.flatnonzero(n_ratings >= MIN_RATINGS)
genre_of = data.items.set_index("item_id").genres.reindex(ids.item_ids).to_numpy()


def pca_2d(F):
    centred = F - F.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T, (s[:2] ** 2).sum() / (s ** 2).sum()


fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
for ax, (name, F) in zip(axes, [("Biased MF (Keras), explicit", keras_model.Q), ("WMF, implicit", wmf_Y)]):
    xy, share = pca_2d(F[frequent])
    ax.scatter(xy[:, 0], xy[:, 1], s=4, color="lightgrey", label="other")
    for g in MAP_GENRES:
        only = np.array([g in gs and not any(o in gs for o in MAP_GENRES if o != g) for gs in genre_of[frequent]])
        ax.scatter(xy[only, 0], xy[only, 1], s=8, label=g)
    ax.set_xlabel("first principal direction")
    ax.set_ylabel("second principal direction")
    ax.set_title(f"{name}: {share:.0%} of the variance")
    ax.legend(fontsize=8, markerscale=2)
plt.tight_layout()
plt.show()
log_count = np.log(n_ratings[frequent])
for name, F in [("Biased MF (explicit)", keras_model.Q), ("WMF (implicit)", wmf_Y)]:
    r = np.corrcoef(np.linalg.norm(F[frequent], axis=1), log_count)[0, 1]
    print(f"{name}: correlation between the length of a movie's vector and log(number of ratings): {r:.2f}")

# %% [markdown]
# The genres are not cleanly separated (two directions out of 64 show only a small share of the variance, printed
# in the titles), but they are not scattered at random either: on the explicit model's map, children's movies lean
# to one side and horror movies to the other, although the model saw only who rated what. The two maps differ in kind. In WMF, a movie's vector grows
# with how often it is watched (the high correlation above), because the model must predict a 1 in every cell where
# someone watched it, so popularity dominates its map; the explicit model's biases absorb popularity and quality,
# and its vectors encode only taste. Neighbours in the full space are the sharper test.
#
# **Nearest neighbours.** The movies whose vectors point in the most similar direction (cosine similarity) to a few
# well-known ones:

# %%
def neighbours(F, title, n=N_NEIGHBOURS):
    item = ids.items([data.items.loc[data.items.title == title, "item_id"].iloc[0]])[0]
    cand = frequent[frequent != item]
    unit = F / np.linalg.norm(F, axis=1, keepdims=True)
    sims = unit[cand] @ unit[item]
    best = cand[np.argsort(-sims)[:n]]
    return [titles[ids.item_ids[j]] for j in best]


showcase = [t for t in SHOWCASE_TITLES if t in set(titles)]
if not showcase:  # another DATASET may not have these movies: inspect its two most-rated ones instead
    showcase = titles.loc[train["item_id"].value_counts().index[:2]].tolist()
pd.concat({t: pd.DataFrame({"Biased MF (explicit)": neighbours(keras_model.Q, t), "WMF (implicit)": neighbours(wmf_Y, t)},
                           index=range(1, N_NEIGHBOURS + 1)) for t in showcase})

# %% [markdown]
# The implicit model's neighbours are the more convincing: movies that the same people *watch*, which is exactly
# what "because you watched ..." needs. The explicit model's neighbours are movies that the same people rate *alike*,
# after the biases have taken out who is generous and which movie is good: a weaker, noisier signal on 100,000
# ratings, with some striking neighbours (sequels) and some odd ones.
#
# **What the biases learned.** The item bias $b_i$ is how much better (or worse) a movie is rated than the global mean
# once we account for who rates it: the most over- and under-rated movies according to the Keras model:

# %%
bias_table = pd.DataFrame({"title": titles[ids.item_ids].to_numpy(), "ratings": n_ratings,
                           "mean rating": pd.Series(r_train).groupby(i_train).mean().reindex(range(n_items)).to_numpy(),
                           "b_i": keras_model.bi}).iloc[frequent]
pd.concat({"rated above expectation": bias_table.nlargest(TOP_N, "b_i"),
           "rated below expectation": bias_table.nsmallest(TOP_N, "b_i")})

# %%
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(keras_model.bu, bins=40, color="tab:green")
ax.set_xlabel("user bias b_u (stars)")
ax.set_ylabel("number of users")
ax.set_title("Generous and harsh raters")
plt.show()
print(f"User biases run from {keras_model.bu.min():+.2f} to {keras_model.bu.max():+.2f} stars; item biases of movies "
      f"with at least {MIN_RATINGS} ratings from {bias_table.b_i.min():+.2f} to {bias_table.b_i.max():+.2f}.")

# %% [markdown]
# The top of the list is the canon of critics' favourites, the bottom is widely panned films that many people still
# watched. The user biases spread about as widely as the item biases: how generous a rater is matters as much as how
# good the movie is, which is why the bias baseline alone gets so far.
#
# ## 9. Exercises
# **Exercise 1: one SGD step.** For a model without biases, $\hat r = p^\top q$, write `sgd_step(p, q, r, lr, reg)`
# that returns the updated vectors stacked as a $2 \times k$ array `[p_new, q_new]`, following section 2.

# %% tags=["nbval-check-output"]
def sgd_step(p, q, r, lr, reg):
    raise NotImplementedError


check(sgd_step, [
    ((np.array([1.0, 0.0]), np.array([1.0, 1.0]), 3.0, 0.1, 0.0), np.array([[1.2, 0.2], [1.2, 1.0]]),
     "e = r − p·q = 3 − 1 = 2, then p ← p + lr·e·q and q ← q + lr·e·p"),
    ((np.array([1.0, 0.0]), np.array([1.0, 1.0]), 3.0, 0.1, 0.5), np.array([[1.15, 0.2], [1.15, 0.95]]),
     "with a penalty: p ← p + lr·(e·q − reg·p), and the same for q"),
    ((np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.5, 0.25]), 4.0, 0.05, 0.1),
     np.array([[0.6725, -0.9075, 2.03375], [1.0825, 0.3225, 0.59875]]),
     "compute e once, and update q with the OLD p (not the one you just updated)"),
])

# %% [markdown]
# <details><summary>Reveal a solution</summary>
#
# ```python
# def sgd_step(p, q, r, lr, reg):
#     e = r - p @ q
#     return np.stack([p + lr * (e * q - reg * p), q + lr * (e * p - reg * q)])
# ```
# </details>
#
# **Exercise 2: the ALS solve for one user.** Write `solve_user(F_u, r_u, lam)` that returns the $x$ minimising
# $\lVert r_u - F_u x\rVert^2 + \lambda \lVert x\rVert^2$, where the rows of `F_u` are the vectors of the movies the user
# rated and `r_u` their (centred) ratings. The last check takes a real user: the first user of the ALS model of
# section 5, with $y_i = (q_i, 1)$, $\tilde r_{ui} = r_{ui} - \mu - b_i$ and $\lambda\, n_u$; your answer must match the
# batched solver.

# %% tags=["nbval-check-output"]
def solve_user(F_u, r_u, lam):
    raise NotImplementedError


first = slice(R_train.indptr[0], R_train.indptr[1])  # user 0's ratings in the CSR matrix
items0 = R_train.indices[first]
Y0 = np.hstack([als_model.Q[items0], np.ones((len(items0), 1))])
r0 = R_train.data[first] - mu - als_model.bi[items0]
P_next, bu_next = als_half_step(R_train, als_model.Q, als_model.bi, ALS_REG)
check(solve_user, [
    ((np.eye(2), np.array([2.0, 4.0]), 1.0), np.array([1.0, 2.0]), "(FᵀF + λI) x = Fᵀr: here (I + I) x = (2, 4)"),
    ((np.array([[1.0, 1.0]]), np.array([3.0]), 1.0), np.array([1.0, 1.0]),
     "FᵀF is k × k (2 × 2 here), not n_u × n_u; add λ on its diagonal"),
    ((Y0, r0, ALS_REG * len(items0)), np.append(P_next[0], bu_next[0]), "solve (FᵀF + λI) x = Fᵀr with np.linalg.solve"),
])

# %% [markdown]
# <details><summary>Reveal a solution</summary>
#
# ```python
# def solve_user(F_u, r_u, lam):
#     k = F_u.shape[1]
#     return np.linalg.solve(F_u.T @ F_u + lam * np.eye(k), F_u.T @ r_u)
# ```
# </details>
#
# **Going further** (no checks): (1) give WMF a confidence that grows with the rating, $c_{ui} = 1 + \alpha\, r_{ui}$,
# and see whether NDCG changes; (2) add early stopping on a validation split to the SGD loop of section 3;
# (3) give the biases of `BiasedMF` their own, smaller penalty (subclass it and override `call`) and compare the RMSE on
# a validation split; (4) replace BPR's uniform negatives by popularity-weighted ones.
#
# ## 10. Results

# %%
table = results.table()
display(table)
fig, axes = plt.subplots(1, 2, figsize=(11, 3))
rating_rows = pd.concat([table[table.protocol == "rating"][["model", "rmse"]],
                         pd.DataFrame({"model": ["User/item biases (baseline)"], "rmse": [bias_rmse]})])
plot_comparison(rating_rows, "rmse", title="Rating prediction (test RMSE)", ax=axes[0])
ranking_rows = pd.concat([table[table.protocol == "ranking"][["model", f"ndcg@{TOP_N}"]],
                          pd.DataFrame({"model": ["Popularity (baseline)"],
                                        f"ndcg@{TOP_N}": [ranking.loc["Popularity", f"ndcg@{TOP_N}"]]})])
plot_comparison(ranking_rows, f"ndcg@{TOP_N}", title=f"Top-{TOP_N} ranking (test NDCG@{TOP_N})", ax=axes[1])
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
# - Matrix factorisation describes users and items by $k$ latent factors, $R \approx P^\top Q$; biased MF adds the
#   global mean and user and item biases, and fits only the observed ratings with a per-rating L2 penalty.
# - SGD follows the gradient one rating (here: one vectorised mini-batch) at a time; ALS alternates exact ridge
#   regressions, solved for all users or items at once. Both need regularisation: without it, the test error rises
#   after a few epochs, and more factors make it worse.
# - The Keras model is the same maths with embeddings, `keras.ops` and `add_loss`; it matches the numpy models and
#   beats the bias baseline, by a modest margin on a data set this small.
# - Ranking by predicted rating is a poor top-K recommender. Implicit-feedback objectives use the missing cells:
#   BPR with sampled negatives and a pairwise ranking loss, weighted MF with every cell and closed-form ALS steps.
#   Weighted MF is the better of the two here.
# - The learned vectors and biases are readable: genres cluster, neighbours make sense, biases rank the canon.
#
# Next, notebook 04 keeps the embeddings but replaces the dot product by a neural network (NCF), and asks whether a
# learned similarity beats the dot product.
#
# ## References
# - Simon Funk. 2006. Netflix Update: Try This at Home. Blog post, sifter.org/~simon/journal/20061211.html.
# - Yehuda Koren, Robert Bell and Chris Volinsky. 2009. Matrix Factorization Techniques for Recommender Systems.
#   *IEEE Computer* 42(8). doi:10.1109/MC.2009.263
# - Yehuda Koren. 2008. Factorization Meets the Neighborhood: a Multifaceted Collaborative Filtering Model. *KDD*.
#   doi:10.1145/1401890.1401944
# - Yunhong Zhou, Dennis Wilkinson, Robert Schreiber and Rong Pan. 2008. Large-Scale Parallel Collaborative Filtering
#   for the Netflix Prize. *AAIM*. doi:10.1007/978-3-540-68880-8_32
# - Benjamin Recht, Christopher Ré, Stephen Wright and Feng Niu. 2011. Hogwild!: A Lock-Free Approach to Parallelizing
#   Stochastic Gradient Descent. *NeurIPS*.
# - Yifan Hu, Yehuda Koren and Chris Volinsky. 2008. Collaborative Filtering for Implicit Feedback Datasets. *ICDM*.
#   doi:10.1109/ICDM.2008.22
# - Steffen Rendle, Christoph Freudenthaler, Zeno Gantner and Lars Schmidt-Thieme. 2009. BPR: Bayesian Personalized
#   Ranking from Implicit Feedback. *UAI*.
# - Steffen Rendle, Walid Krichene, Li Zhang and Yehuda Koren. 2022. Revisiting the Performance of iALS on Item
#   Recommendation Benchmarks. *RecSys*. doi:10.1145/3523227.3548486
