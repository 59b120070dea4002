# %% [markdown]
# # 06 · RNN and attention recommenders: GRU4Rec, LSTM, SASRec and a behaviour + content hybrid
#
# Notebook 05 ended with Caser, a convolution over a user's last few movies. This notebook reads a longer stretch of
# the history in order, with the two families of sequence models that took over recommendation after 2016:
# **recurrent networks** (GRU4Rec, Hidasi et al., 2016, and its LSTM sibling) carry a running summary of the history
# from step to step, and **self-attention** (SASRec, Kang and McAuley, 2018) lets every position look back at every
# earlier one at once. A last model gives the LSTM's output side notebook 05's text CNN over each movie's description:
# a **hybrid** that can say something about movies few people have watched, compared with the same LSTM without it.
#
# **In this notebook you will**
# - write a GRU cell from its equations with `keras.ops` and check it against `keras.layers.GRU`; see the LSTM's
#   gates at work; measure how gradients fade along a sequence for a plain RNN and for gated cells;
# - derive why a sampled softmax needs the logQ correction, see it on a five-movie toy, and train GRU4Rec and an LSTM
#   as next-item models with it;
# - build SASRec from `keras.layers.MultiHeadAttention` with a causal mask and learned positions, and read its
#   attention weights for one real user;
# - give the LSTM a content CNN on its output side, and measure what the content adds, split by how popular the next
#   movie is;
# - compare everything with the baselines of notebook 01 on the sequential protocol, with paired-bootstrap intervals,
#   at this notebook's budget and in the reference run (every model at its validation-chosen setting, trained until
#   early stopping ends it).
#
# **Prerequisites:** notebooks 01 (the sequential protocol, the paired bootstrap) and 05 (the text CNN, Caser).
# **Time:** about TIME_LAPTOP minutes on a 2-core CPU at the default parameters (no GPU needed); the reference profile,
# `PROFILE = "reference"`, about TIME_REFERENCE minutes.

# %% tags=["parameters"]
SEED = 42  # seeds every random number generator and every split
DATASET = "ml-latest-small"
PROFILE = "laptop"  # "laptop": every neural model on the same small budget; "reference": each at its validation-chosen
#                     setting (tools/tuning/nb06_search.csv), trained until early stopping ends it
SMOKE = False  # True: one epoch per model and short stretches, for a quick end-to-end check
K = 10  # cut-off of the ranking metrics (@10)
N_EVENTS = 5  # each user's last N_EVENTS interactions are test events, the N_EVENTS before them validation events
DECAY_GRID = [0.5, 0.7, 0.8, 0.9, 1.0]  # γ of the recency item-kNN baseline, chosen on validation (as in notebook 01)
N_BOOTSTRAP = 1000  # resamples of the users for the interval of an NDCG difference
# the next-item models of §3–§5 (GRU4Rec, LSTM, SASRec, the hybrid): one shared training recipe
GRU_DIM, GRU_LEN = 64, 50  # GRU4Rec: hidden size (= item embedding size) and T, the stretch of movies it reads
LSTM_DIM, LSTM_LEN = 64, 50  # the LSTM, and the hybrid of §5 (this LSTM with a content CNN on its output side)
SAS_DIM, SAS_LEN = 64, 50  # SASRec: model width and T
MAX_HISTORY = 100_000  # training interactions per user (the last ones): more than anyone has, so every next-movie pair
#                        that the Markov chain and the kNN count is a training example (the smoke test cuts it)
DROPOUT = 0.2
N_SAMPLED = 1024  # sampled softmax: negatives drawn for each batch, shared by all its positions
NEG_POWER = 0.75  # negatives drawn in proportion to popularity ** NEG_POWER
BATCH = 32  # stretches (of T positions each) per step
LR = 3e-3  # Adam
MAX_EPOCHS = 4  # cap on every neural model's epochs; the epoch with the best validation NDCG is kept
PATIENCE = 2  # epochs without a new best validation NDCG (checked after every epoch) before training stops
SAS_BLOCKS = 2  # SASRec: self-attention blocks
SAS_HEADS = 1  # and heads per block (the paper's choice for MovieLens-1M)
SAS_MASK_PADDING = False  # True: padded positions are also hidden from attention (see §4)
TIMING_STEPS = 5  # steps timed for the sampled-against-full softmax comparison of §3
SEARCH_LOG = "../tools/tuning/nb06_search.csv"  # the validation search behind the reference settings
# the content side of the hybrid (§5): notebook 05's text CNN over each movie's document
DOC_LEN = 16  # words per document (title, genres, year; no tags)
WORD_DIM = 32  # word embedding size
CNN_FILTERS = 32  # filters per width (widths 1, 2, 3)
CNN_HIDDEN = 64  # the CNN's hidden layer; its output has the LSTM's size

# %%
if PROFILE == "reference":  # each model at its validation-chosen setting, trained until early stopping ends it
    GRU_DIM, GRU_LEN, LSTM_DIM, LSTM_LEN, SAS_DIM, SAS_LEN = 64, 50, 64, 50, 64, 50  # FILLED FROM THE SEARCH
    MAX_EPOCHS, PATIENCE = 60, 3

# %%
if SMOKE:  # a quick end-to-end check (the tests use it): the same data and splits, far less training
    MAX_EPOCHS, PATIENCE, MAX_HISTORY, DECAY_GRID, N_BOOTSTRAP, TIMING_STEPS, SAS_BLOCKS = 1, 1, 30, [0.7], 100, 2, 1
    GRU_DIM = LSTM_DIM = SAS_DIM = 32
    GRU_LEN = LSTM_LEN = SAS_LEN = 20

# %%
from recsys_helpers import env

tf, results = env.start_notebook("06_rnn_recommenders", SEED, profile=PROFILE)
import inspect
from pathlib import Path

import keras
from keras import layers, ops
import numpy as np, pandas as pd, matplotlib.pyplot as plt
from IPython.display import Code, display

from recsys_helpers import sampling
from recsys_helpers.baselines import MarkovChain, Popularity, RecencyItemKNN
from recsys_helpers.content import movie_documents, text_cnn
from recsys_helpers.data import load_movielens
from recsys_helpers.evaluation import Timer, evaluate_sequential, paired_bootstrap
from recsys_helpers.exercises import check
from recsys_helpers.interactions import pad_histories, train_index, training_stretches, user_histories
from recsys_helpers.models import NextItemModel, SASRec, sampled_softmax_loss
from recsys_helpers.results import DEFAULT_DIR, REFERENCE_DIR, read_results
from recsys_helpers.split import sequential_split
from recsys_helpers.training import ValidationCheck

# %% [markdown]
# ## 1. Recurrent cells from their equations
# A recurrent layer reads a sequence $x_1, \dots, x_T$ one step at a time and keeps a hidden state $h_t$, a summary of
# everything read so far. A **GRU** (gated recurrent unit, Cho et al., 2014) updates it with two gates, in Keras's
# convention (weights $W$ for the input, $U$ for the state; $\sigma$ is the logistic function, $\odot$ the
# element-wise product):
#
# $$z_t = \sigma(x_t W_z + h_{t-1} U_z + b_z) \qquad \text{update gate: how much of the old state to keep}$$
# $$r_t = \sigma(x_t W_r + h_{t-1} U_r + b_r) \qquad \text{reset gate: how much of the old state the candidate sees}$$
# $$\tilde h_t = \tanh\big(x_t W_h + r_t \odot (h_{t-1} U_h + b'_h) + b_h\big) \qquad \text{candidate state}$$
# $$h_t = z_t \odot h_{t-1} + (1 - z_t) \odot \tilde h_t$$
#
# Keras stores the three input matrices side by side in one `kernel` (order $z, r, h$), the three state matrices in
# `recurrent_kernel`, and two rows of biases (input and recurrent: the reset gate multiplies the recurrent product
# *with* its bias, `reset_after=True`; Cho et al.'s original applies $r_t$ to $h_{t-1}$ *before* the product,
# $\tanh(x_t W_h + (r_t \odot h_{t-1}) U_h + b_h)$, a variant Keras offers with `reset_after=False`). The cell below
# is those four lines, run over a random sequence and compared with `keras.layers.GRU` holding the same weights.
# (Every layer in this notebook gets its own seeded initializers: in Keras 3 one initializer object, or one seed, shared
# by two weights would start them equal.)

# %%
def seeded(i):
    """Initializers of recurrent layer number i, each with its own seed."""
    return dict(kernel_initializer=keras.initializers.GlorotUniform(seed=SEED + 2 * i),
                recurrent_initializer=keras.initializers.Orthogonal(seed=SEED + 2 * i + 1))


def gru_step(x_t, h, kernel, recurrent_kernel, bias):
    """One GRU step with Keras's weight layout; x_t: (batch, inputs), h: (batch, units)."""
    x_z, x_r, x_h = ops.split(ops.matmul(x_t, kernel) + bias[0], 3, axis=-1)
    h_z, h_r, h_h = ops.split(ops.matmul(h, recurrent_kernel) + bias[1], 3, axis=-1)
    z = ops.sigmoid(x_z + h_z)  # update gate
    r = ops.sigmoid(x_r + h_r)  # reset gate
    candidate = ops.tanh(x_h + r * h_h)
    return z * h + (1 - z) * candidate


x_demo = keras.random.normal((2, 6, 3), seed=SEED)  # 2 sequences of 6 steps, 3 inputs each
gru_layer = layers.GRU(4, return_sequences=True, **seeded(0))
expected = ops.convert_to_numpy(gru_layer(x_demo))
kernel, recurrent_kernel, bias = gru_layer.get_weights()
h = ops.zeros((2, 4))
ours = []
for t in range(x_demo.shape[1]):
    h = gru_step(x_demo[:, t], h, kernel, recurrent_kernel, bias)
    ours.append(h)
ours = ops.convert_to_numpy(ops.stack(ours, axis=1))
print(f"weights: kernel {kernel.shape}, recurrent_kernel {recurrent_kernel.shape}, bias {bias.shape}; "
      f"largest difference from keras.layers.GRU over all 6 steps: {np.abs(ours - expected).max():.1e}")

# %% [markdown]
# The **LSTM** (Hochreiter and Schmidhuber, 1997) keeps a second state, the *cell* $c_t$, and three gates: input $i_t$,
# forget $f_t$ and output $o_t$, all $\sigma(x_t W + h_{t-1} U + b)$ with their own weights, and a candidate
# $g_t = \tanh(\cdot)$:
# $$c_t = f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t).$$
# §3 shows the gates of the trained LSTM on a real user's history.
#
# **Why gates?** The gradient of a loss at step $T$ with respect to an input at step $t$ passes through every state in
# between. In a plain RNN, $h_t = \tanh(x_t W + h_{t-1} U + b)$, each step multiplies it by $U^\top$ and by
# $\tanh' \le 1$, so it tends to shrink geometrically: the *vanishing gradient* (Bengio et al., 1994). In a GRU the
# path $h_t = z_t \odot h_{t-1} + \dots$ multiplies it by $z_t$, and in an LSTM the path
# $c_t = f_t \odot c_{t-1} + \dots$ by $f_t$: gates the network *learns*, and can hold near 1 to carry information far.
# The cell below measures, for freshly initialised layers, the size of the gradient of the final state's sum with
# respect to each input step. The last layer is the *same* GRU as the second (the same seeded weights) with its
# update-gate biases raised.

# %%
STEPS = 50  # length of the random sequences
x_long = keras.random.normal((64, STEPS, 32), seed=SEED)  # 64 random sequences of STEPS steps
keep_memory = layers.GRU(64, **seeded(2))
keep_memory.build(x_long.shape)
kernel_, recurrent_, bias_ = keep_memory.get_weights()
bias_[:, :64] = 1.5  # update-gate biases (input + recurrent) = 3 in all: z ≈ 0.95, a GRU that has learned to keep
keep_memory.set_weights([kernel_, recurrent_, bias_])
cells = {"plain RNN (SimpleRNN)": layers.SimpleRNN(64, **seeded(1)), "GRU, as initialised": layers.GRU(64, **seeded(2)),
         "LSTM, as initialised (forget-gate bias 1)": layers.LSTM(64, **seeded(3)),
         "the same GRU with update gate z ≈ 0.95": keep_memory}
gradient_norms = {}
for name, cell in cells.items():
    with tf.GradientTape() as tape:
        tape.watch(x_long)
        loss = ops.sum(cell(x_long))
    gradient_norms[name] = np.linalg.norm(ops.convert_to_numpy(tape.gradient(loss, x_long)), axis=2).mean(axis=0)
fig, ax = plt.subplots(figsize=(7.5, 3.4))
steps_back = np.arange(STEPS)[::-1]  # 0 = the last step
for name, norms in gradient_norms.items():
    ax.semilogy(steps_back, norms, label=name)
ax.set_xlabel("steps before the end of the sequence")
ax.set_ylabel("mean ‖∂ loss / ∂ x_t‖ (log scale)")
ax.set_title(f"How far back the gradient reaches ({STEPS} random steps, untrained layers)")
ax.invert_xaxis()
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()
print("gradient at the first step / at the last step: " + "; ".join(
    f"{name}: {n[0] / n[-1]:.1e}" for name, n in gradient_norms.items()))

# %% [markdown]
# GRADIENT_READING
#
# Gates do not give long memory for free; they make it *learnable*: the factor on the carried path is a gate the
# network controls, not $\tanh' \cdot U$.

# %% [markdown]
# ## 2. The sequential protocol and its baselines
# As in notebooks 01 and 05: each user's history in time order, the last 5 interactions are test events and the 5
# before them validation events; each event is predicted one step ahead from the true history before it, and every
# movie the user has not interacted with yet is a candidate. The baselines: popularity, the first-order Markov chain,
# and the recency-weighted item-kNN with its $\gamma$ chosen on the validation events.

# %%
data = load_movielens(DATASET)
catalogue = data.items.set_index("item_id")
seq = sequential_split(data.ratings, n_test=N_EVENTS, n_val=N_EVENTS)
index = train_index(seq.train)
ids, n_items = index.ids, index.ids.n_items
histories = user_histories(seq.train, ids)  # each user's training movies (item indices), oldest first
lengths = np.array([len(h) for h in histories])
print(f"{ids.n_users} users, {n_items:,} movies in training; training history length: median {np.median(lengths):.0f}, "
      f"90th percentile {np.percentile(lengths, 90):.0f}, longest {lengths.max():,}")

decay_val = {d: evaluate_sequential(RecencyItemKNN(d).fit(seq.train), seq, "validation", k=K)[f"ndcg@{K}"]
             for d in DECAY_GRID}
best_decay = max(decay_val, key=decay_val.get)
baselines = {"Popularity": Popularity(), "Markov": MarkovChain(), "kNN": RecencyItemKNN(best_decay)}
train_seconds, validation_ndcg = {}, {}
for name, model in baselines.items():
    with Timer() as t:
        model.fit(seq.train)
    train_seconds[name] = t.seconds
    validation_ndcg[name] = evaluate_sequential(model, seq, "validation", k=K)[f"ndcg@{K}"]
print(f"validation NDCG@{K}: " + ", ".join(f"{n} {v:.4f}" for n, v in validation_ndcg.items())
      + f" (kNN: γ = {best_decay:g}, best of {DECAY_GRID})")

# %% [markdown]
# ## 3. GRU4Rec and the LSTM
# **The model.** GRU4Rec (Hidasi et al., 2016) embeds each movie of the history, runs a GRU over the embeddings, and
# scores every movie $j$ after step $t$ by a dot product of the hidden state with an output embedding, plus a bias:
# $s_{tj} = h_t^\top w_j + b_j$. The LSTM variant swaps the cell and nothing else.
#
# **Training examples.** Each user's whole training history is cut, from its end, into stretches of $T$ movies
# (`GRU_LEN` for GRU4Rec), left-padded with 0 (`mask_zero=True` makes the recurrent layer skip the padding); the target
# of position $t$ is the movie at $t+1$. So every next-movie pair of the training histories is a training example
# once per epoch: the same transitions the Markov chain and the kNN count, and one stretch gives up to $T$ examples at
# the cost of one pass. A model reads at most $T$ movies back, in training and when it scores.
#
# **The full softmax and its cost.** After a history with state $h$ the model gives every movie $j$ of the $N$ in the
# catalogue a score $s_j$ and the probability
# $$P(j \mid h) = \frac{e^{s_j}}{Z}, \qquad Z = \sum_{k=1}^{N} e^{s_k}.$$
# Training minimises the cross-entropy $\ell = -\log P(t \mid h) = -s_t + \log Z$ of the true next movie $t$, whose
# gradient is
# $$\frac{\partial \ell}{\partial s_k} = P(k \mid h) - [k = t],$$
# zero on average exactly when the model's probabilities are those of the data. Every step needs $Z$, all $N$ = 9,530
# scores for each of the batch's positions: on a CPU that is slow (the timing below). Petrov and Macdonald (2023)
# found this full cross-entropy better than training with one sampled negative.
#
# **Sampling the normaliser.** Draw $n$ movies $j_1, \dots, j_n$ independently from a distribution $q$ (here
# popularity$^{0.75}$, so popular movies, the hard negatives, come up more often). Each draw's
# $e^{s_{j_i}}/(n\,q_{j_i})$ has expectation $\sum_k q_k\, e^{s_k}/(n\,q_k) = Z/n$, so
# $$\hat Z = \sum_{i=1}^{n} e^{\,s_{j_i} - \log(n\,q_{j_i})}, \qquad \mathbb{E}\big[\hat Z\big] = Z:$$
# a softmax over the sampled movies whose logits are lowered by $\log(n\,q_j)$ has, on average, the full softmax's
# denominator. That is the **logQ correction** of the **sampled softmax** (Bengio and Senécal, 2008; Jean et al.,
# 2015; Yi et al., 2019 for recommenders); $n\,q_j$ is how often movie $j$ is expected among the draws. Without it,
# $\sum_i e^{s_{j_i}}$ estimates $n \sum_k q_k\, e^{s_k}$, the normaliser of a model whose scores are
# $s_k + \log q_k$. Training then drives $s_k + \log q_k$ towards $\log P(k \mid h)$ (up to a constant), so
# $$s_k \approx \log P(k \mid h) - \log q_k:$$
# the model ranks by $P(k \mid h)/q_k$, and the movies drawn most often as negatives, the popular ones, end up too
# low. The correction is exact only as $n$ grows ($\log \hat Z$ is a biased estimate of $\log Z$: the log of an
# average is not the average of the logs). The toy below fits the five scores of a five-movie catalogue by gradient
# descent, with each loss, and compares the probabilities it learns with the true ones.

# %%
p_true = np.array([0.10, 0.15, 0.40, 0.20, 0.15])  # the next movie's distribution after one history (5 movies)
q_toy = np.array([0.45, 0.25, 0.15, 0.10, 0.05])  # the sampler's: movie 0 is the most popular


def toy_fit(correct=None, n=20, steps=2000, batch=64, lr=0.5):
    """softmax(s) after SGD on targets drawn from p_true: full softmax (correct=None) or a sampled softmax over the
    target and n draws from q_toy, shared by the batch, with or without the logQ correction."""
    rng_toy = np.random.default_rng(SEED)
    s, mean_s = np.zeros(5), np.zeros(5)  # the scores, and their average over the second half of training
    for step in range(steps):
        t = rng_toy.choice(5, batch, p=p_true)  # the observed next movies
        if correct is None:
            grad = np.exp(s) / np.exp(s).sum() - np.bincount(t, minlength=5) / batch  # P(k) − [k = t], averaged
        else:
            candidates = np.column_stack([t, np.tile(rng_toy.choice(5, n, p=q_toy), (batch, 1))])
            logits = s[candidates] - (np.log(n * q_toy[candidates]) if correct else 0.0)
            w = np.exp(logits - logits.max(axis=1, keepdims=True))
            w /= w.sum(axis=1, keepdims=True)
            w[:, 0] -= 1  # ∂ℓ/∂logit: the softmax weight, minus 1 for the target (column 0)
            grad = np.bincount(candidates.ravel(), w.ravel(), minlength=5) / batch
        s -= lr * grad
        mean_s += s / (steps - steps // 2) if step >= steps // 2 else 0.0
    return np.exp(mean_s) / np.exp(mean_s).sum()


toy = pd.DataFrame({"true P(k)": p_true, "sampler q": q_toy, "full softmax": toy_fit(None),
                    "sampled, no correction": toy_fit(False), "sampled, logQ": toy_fit(True),
                    "sampled, logQ, n = 2": toy_fit(True, n=2),
                    "P(k)/q, normalised": p_true / q_toy / (p_true / q_toy).sum()}, index=[f"movie {k}" for k in range(5)])
display(toy.T.round(3))

# %% [markdown]
# The full softmax learns the true probabilities, up to the noise of stochastic gradient descent. The sampled softmax
# *without* the correction learns $P(k)/q_k$ instead (compare its row with the last one): movie 0, the most popular,
# falls from 0.10 to about 0.03, and movie 4, the rarest, rises from 0.15 to about 0.37 and becomes the top
# recommendation. *With* the correction the sampled softmax learns the true probabilities again, within about 0.01,
# with 20 draws per batch and even with 2.
#
# The toy keeps "accidental hits" (a draw that is the target itself): with five movies, masking them would remove
# the target's share from most samples. The package's loss below, like TensorFlow's, corrects the target's own logit
# the same way and masks a negative that happens to be the true next movie; that removes the target's share
# $P(t \mid h)$ from the estimated denominator, which is small when no single movie is very likely next.
#
# **Popularity-drawn negatives in notebook 05.** Caser there is trained with a binary cross-entropy against
# popularity-drawn negatives *without* a correction, and its search found them better than uniform ones. Both
# findings can hold: at the optimum an uncorrected loss ranks by $P/q$ (the toy), but harder negatives give larger
# gradients early in training, and a model that stops far from its optimum can gain more from the second effect than
# it loses to the first. Which one wins is an empirical question; the models here use popularity-drawn negatives
# *with* the correction. GRU4Rec's later version (Hidasi and Karatzoglou, 2018) also trains against many negatives at
# once (the mini-batch's other targets plus extra samples).
#
# **In the models.** For each batch, `N_SAMPLED` = 1,024 movies are drawn and shared by every position of the batch;
# each position's softmax runs over its true next movie and these negatives. The output biases start at the logarithm
# of each movie's training count (centred), so a model predicts popularity from the first step and can spend its
# training on the sequence. `NextItemModel` holds what GRU4Rec, the LSTM and SASRec share: the embeddings, the
# sampled softmax, and `scores_next`, the scoring contract of the sequential protocol. A subclass supplies `encode`,
# which turns a padded batch of histories into one state per position.

# %%
counts = np.asarray(index.seen.sum(axis=0)).ravel()
log_q = np.log(sampling.popularity_probabilities(index.seen, NEG_POWER) * N_SAMPLED).astype("float32")  # log(n q_j)
popularity_bias = np.concatenate([[0.0], np.log1p(counts) - np.log1p(counts).mean()]).astype("float32")
SHARED = dict(log_q=log_q, popularity_bias=popularity_bias, dropout=DROPOUT, n_sampled=N_SAMPLED,
              seed=SEED)  # the settings every next-item model here shares
Code(inspect.getsource(training_stretches) + "\n\n" + inspect.getsource(NextItemModel) + "\n\n"
     + inspect.getsource(sampled_softmax_loss), language="python")

# %% [markdown]
# `training_stretches`, `NextItemModel` and `sampled_softmax_loss` live in the course package (`recsys_helpers`),
# because notebook 09 reuses them; the cell above shows their source. GRU4Rec is a short subclass. Every neural model
# here is trained by `train_next_item`: at most `MAX_EPOCHS` epochs, the validation NDCG@10 measured after every
# epoch, training stopped after `PATIENCE` epochs without a new best, and the best epoch's weights kept.

# %%
class GRU4Rec(NextItemModel):
    """GRU4Rec (Hidasi et al., 2016) with a sampled softmax; ``cell="lstm"`` gives the LSTM variant."""

    def __init__(self, n_items, cell="gru", hidden=GRU_DIM, max_len=GRU_LEN, **kwargs):
        super().__init__(n_items, dim=hidden, max_len=max_len, **{**SHARED, **kwargs})
        recurrent = {"gru": layers.GRU, "lstm": layers.LSTM}[cell]
        self.recurrent = recurrent(hidden, return_sequences=True, seed=self.seeds(), name=cell,
                                   kernel_initializer=keras.initializers.GlorotUniform(seed=self.seeds()),
                                   recurrent_initializer=keras.initializers.Orthogonal(seed=self.seeds()))

    def encode(self, history, training=False):
        x = self.dropout(self.item_embedding(history), training=training)  # the mask travels with x
        return self.dropout(self.recurrent(x, training=training), training=training)


def train_next_item(model, max_epochs=MAX_EPOCHS, patience=PATIENCE):
    """Train ``model`` on every next-movie pair of the training histories (stretches of ``model.max_len``), with
    early stopping on the validation events; returns the model (best epoch's weights), its per-epoch training
    losses, the ValidationCheck and the seconds (validation included)."""
    keras.utils.set_random_seed(SEED)
    inputs, targets = training_stretches(histories, model.max_len, MAX_HISTORY)
    model.compile(optimizer=keras.optimizers.Adam(LR), loss=sampled_softmax_loss)
    check = ValidationCheck(lambda: evaluate_sequential(model, seq, "validation", k=K, batch_size=4096)[f"ndcg@{K}"],
                            patience)
    with Timer() as t:
        fit = model.fit({"history": inputs, "target": targets}, np.zeros(targets.shape, "float32"),
                        sample_weight=(targets > 0).astype("float32"), batch_size=BATCH, epochs=max_epochs,
                        callbacks=[check], verbose=0)
    return model, fit.history["loss"], check, t.seconds


def budget(model):
    """The budget text a neural model is recorded with."""
    return f"T = {model.max_len}, size {model.dim}, ≤ {MAX_EPOCHS} epochs (patience {PATIENCE})"


inputs, targets = training_stretches(histories, GRU_LEN, MAX_HISTORY)
print(f"{len(inputs):,} stretches of {GRU_LEN} positions; {(targets > 0).sum():,} training examples (of "
      f"{sum(max(len(h) - 1, 0) for h in histories):,} next-movie pairs in the training histories)")

# %% [markdown]
# What the two losses cost on this machine: `TIMING_STEPS` training steps of GRU4Rec, once with the sampled softmax
# and once with the full softmax over all movies (the same embedding and GRU sizes with a plain `Dense` output layer
# and no dropout: the output layer is the cost that matters).

# %%
def seconds_per_step(model, x, y, weight, loss, steps=TIMING_STEPS):
    model.compile(optimizer=keras.optimizers.Adam(LR), loss=loss)
    model.fit(x, y, sample_weight=weight, batch_size=BATCH, epochs=1, verbose=0, steps_per_epoch=2)  # compile
    with Timer() as t:
        model.fit(x, y, sample_weight=weight, batch_size=BATCH, epochs=1, verbose=0, steps_per_epoch=steps)
    return t.seconds / steps


demo = slice(0, TIMING_STEPS * BATCH)
weight = (targets[demo] > 0).astype("float32")
sampled = seconds_per_step(GRU4Rec(n_items, name="gru4rec_timing"), {"history": inputs[demo], "target": targets[demo]},
                           np.zeros(targets[demo].shape), weight, sampled_softmax_loss)
history_in = keras.Input((GRU_LEN,), dtype="int32")
embedded_in = layers.Embedding(n_items + 1, GRU_DIM, mask_zero=True,
                               embeddings_initializer=keras.initializers.RandomNormal(0, 0.1, seed=SEED))(history_in)
full_model = keras.Model(history_in, layers.Dense(n_items, kernel_initializer=keras.initializers.GlorotUniform(
    seed=SEED + 1))(layers.GRU(GRU_DIM, return_sequences=True, **seeded(4))(embedded_in)))
full = seconds_per_step(full_model, inputs[demo], np.maximum(targets[demo] - 1, 0), weight,
                        keras.losses.SparseCategoricalCrossentropy(from_logits=True))
n_steps = int(np.ceil(len(inputs) / BATCH))
print(f"one step of {BATCH} × {GRU_LEN} positions: sampled softmax ({N_SAMPLED} negatives) {sampled * 1000:.0f} ms, "
      f"full softmax ({n_items:,} movies) {full * 1000:.0f} ms; an epoch ({n_steps} steps): {sampled * n_steps:.0f} s "
      f"against {full * n_steps:.0f} s")

# %%
gru4rec, gru_losses, gru_check, gru_seconds = train_next_item(GRU4Rec(n_items, name="gru4rec"))
lstm, lstm_losses, lstm_check, lstm_seconds = train_next_item(GRU4Rec(n_items, "lstm", LSTM_DIM, LSTM_LEN, name="lstm"))


def training_line(name, c, seconds):
    """What ended a model's training, in one line."""
    e = c.log
    return (f"{name}: best validation NDCG@{K} {max(c.history):.4f} at epoch {e.best}; {e.ran} epochs run of a cap of "
            f"{e.cap} ({'early stopping' if e.stopped_early else 'the cap'} ended it; {seconds:.0f} s)")


print(training_line("GRU4Rec", gru_check, gru_seconds))
print(training_line("LSTM", lstm_check, lstm_seconds))

# %% [markdown]
# TRAINING_READING
#
# **The LSTM's gates on a real history.** The LSTM's weights are `kernel`, `recurrent_kernel` and `bias`, with the
# gates in the order $i, f, g, o$. The cell below recomputes the gates step by step from the equations of §1 over the
# last 30 training movies of one user, and checks that the recomputed hidden states match the layer's output.

# %%
def lstm_gates(layer, x):
    """Gates i, f, o and the states h of an LSTM layer over one sequence x (steps, inputs), from its weights."""
    W, U, b = layer.get_weights()
    n = U.shape[0]
    h, c, gates = np.zeros(n), np.zeros(n), {"input gate i": [], "forget gate f": [], "output gate o": []}
    states = []
    for x_t in x:
        pre = x_t @ W + h @ U + b
        i, f, g, o = (1 / (1 + np.exp(-pre[:n])), 1 / (1 + np.exp(-pre[n:2 * n])), np.tanh(pre[2 * n:3 * n]),
                      1 / (1 + np.exp(-pre[3 * n:])))
        c = f * c + i * g
        h = o * np.tanh(c)
        for key, value in zip(gates, (i, f, o)):
            gates[key].append(value)
        states.append(h)
    return {k: np.array(v) for k, v in gates.items()}, np.array(states)


user_row = int(np.argsort(lengths)[len(lengths) // 2])  # a user with a median-length history
recent = histories[user_row][-30:]
embedded = ops.convert_to_numpy(lstm.item_embedding(recent + 1))
gates, states = lstm_gates(lstm.recurrent, embedded)
keras_states = ops.convert_to_numpy(lstm.recurrent(embedded[None]))[0]
fig, axes = plt.subplots(1, 3, figsize=(14, 3.4), sharey=True)
for ax, (name, values) in zip(axes, gates.items()):
    image = ax.imshow(values.T, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_title(f"{name} (mean {values.mean():.2f})")
    ax.set_xlabel("step (oldest → newest movie)")
axes[0].set_ylabel(f"unit (of {LSTM_DIM})")
fig.colorbar(image, ax=axes, label="gate value")
fig.suptitle(f"The trained LSTM's gates over user {ids.user_ids[user_row]}'s last 30 training movies", y=1.02)
plt.show()
print(f"largest difference between the recomputed states and keras.layers.LSTM: "
      f"{np.abs(states - keras_states).max():.1e}; share of forget-gate values above 0.9: "
      f"{(gates['forget gate f'] > 0.9).mean():.0%}")

# %% [markdown]
# GATES_READING
#
# **Size and history length, chosen on validation.** How long a stretch should a model read, and how large a state
# does it need? The search `tools/tuning/nb06_search.py` trained each model with the recipe above, for every setting of
# its grid, until early stopping ended it (the reference profile's cap and patience), and logged the best validation
# NDCG@10 of each run in `tools/tuning/nb06_search.csv`. It runs this notebook's own cells (the classes and
# `train_next_item` above) and never scores the test events. The reference profile trains each model at the setting
# with the highest validation NDCG; the laptop profile keeps size 64 and T = 50 for every model, within its budget.

# %%
search_log = Path(SEARCH_LOG)
search = pd.read_csv(search_log)
fig, ax = plt.subplots(figsize=(9.5, 3.6))
for (model_name, size), part in search.groupby(["model", "size"], sort=False):
    ax.plot(part["T"], part[f"best validation ndcg@{K}"],
            marker={"GRU4Rec": "o", "LSTM": "s", "SASRec": "^"}[model_name], label=f"{model_name}, size {size}")
ax.axhline(validation_ndcg["Markov"], color="grey", ls="--", label="Markov chain")
ax.axhline(validation_ndcg["kNN"], color="grey", ls=":", label="recency item-kNN")
ax.set_xlabel("T: movies read (stretch length)")
ax.set_ylabel(f"best validation NDCG@{K}")
ax.set_title(f"Validation search, each run until early stopping ({search_log.name})")
ax.set_xticks(sorted(search["T"].unique()))
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()
with pd.option_context("display.width", 200):
    display(search.drop(columns="validation ndcg by epoch"))
chosen = search.loc[search.groupby("model", sort=False)[f"best validation ndcg@{K}"].idxmax()]
print("chosen on validation: " + "; ".join(f"{r.model} size {r.size}, T = {r.T}" for r in chosen.itertuples())
      + f" (search time {search['seconds'].sum() / 60:.0f} minutes); this run ({PROFILE} profile): GRU4Rec size "
      f"{GRU_DIM}, T = {GRU_LEN}; LSTM size {LSTM_DIM}, T = {LSTM_LEN}; SASRec size {SAS_DIM}, T = {SAS_LEN}")

# %% [markdown]
# SEARCH_READING

# %% [markdown]
# ## 4. Self-attention: SASRec
# A recurrent model squeezes the whole history into one state vector, step by step. **Self-attention** (Vaswani et al.,
# 2017) lets the representation of position $t$ be a weighted average of (projections of) all positions $\le t$, with
# weights computed from the content:
# $$\mathrm{Attention}(Q, K_{\mathrm{att}}, V) = \mathrm{softmax}\!\Big(\frac{Q K_{\mathrm{att}}^\top}{\sqrt d} + M\Big)\,V,$$
# where $Q$, $K_{\mathrm{att}}$ and $V$ (queries, keys, values; the subscript keeps the keys apart from the cut-off
# $K$ = 10) are linear maps of the positions' vectors, $d$ is their width, and the **causal mask** $M$ is $-\infty$
# above the diagonal, so that no position sees the future (the movie it must predict would otherwise be in plain
# view). SASRec (Kang and McAuley, 2018) stacks a few blocks of
# - multi-head self-attention (`keras.layers.MultiHeadAttention`, with `attention_mask` the lower-triangular
#   matrix), then a position-wise feed-forward network, each wrapped in layer normalisation, dropout and a residual
#   connection;
#
# over the item embeddings (scaled by $\sqrt d$) plus **learned position embeddings**, which attention needs because
# it is blind to order. As in the paper's code, layer normalisation comes *before* each sub-layer: on the attention's
# queries (the keys and values are the sequence itself) and on the feed-forward input. Padded positions are set to
# zero after the embedding and after every block. With `SAS_MASK_PADDING = False` a query may still put weight on
# them, and since the key and value projections have biases, a padded position's key and value are those learned
# biases, $b_k$ and $b_v$, not zero: attending to padding means attending to a learned default vector. The paper's
# code hides padding with the attention mask instead (`SAS_MASK_PADDING = True`; try it, "Going further").
# Training, scoring and the sampled softmax are `NextItemModel`'s, exactly as for GRU4Rec. SASRec too lives in the
# package (notebook 09 explains recommendations with its attention); its source:

# %%
Code(inspect.getsource(SASRec), language="python")

# %%
sasrec = SASRec(n_items, blocks=SAS_BLOCKS, heads=SAS_HEADS, dim=SAS_DIM, max_len=SAS_LEN,
                mask_padding=SAS_MASK_PADDING, **SHARED, name="sasrec")
sasrec, sas_losses, sas_check, sas_seconds = train_next_item(sasrec)
print(f"SASRec: {sasrec.count_params():,} parameters")
print(training_line("SASRec", sas_check, sas_seconds))

# %% [markdown]
# **Training curves.** Training loss (sampled softmax) and validation NDCG per epoch for the three models; the dashed
# line is the Markov chain and the dotted one the recency item-kNN on the same validation events.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
for name, losses, c in [("GRU4Rec", gru_losses, gru_check), ("LSTM", lstm_losses, lstm_check),
                        ("SASRec", sas_losses, sas_check)]:
    axes[0].plot(np.arange(1, len(losses) + 1), losses, marker="o", ms=3, label=name)
    axes[1].plot(c.epochs, c.history, marker="o", ms=3, label=name)
axes[1].axhline(validation_ndcg["Markov"], color="grey", ls="--", label="Markov")
axes[1].axhline(validation_ndcg["kNN"], color="grey", ls=":", label="kNN")
axes[0].set_ylabel("training loss (sampled softmax)")
axes[1].set_ylabel(f"validation NDCG@{K}")
for ax, title in zip(axes, ["Training loss", "Validation NDCG (the best epoch is kept)"]):
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# CURVES_READING
#
# **What SASRec looks at.** The attention weights of the last block for one real user: row $t$ is the distribution of
# position $t$'s attention over the positions it may see (the causal mask leaves the upper triangle empty). The last
# row is the one that predicts the next movie, and can serve as an explanation ("recommended because you watched …").

# %%
def attention_map(model, history, n=12):
    """The last block's attention weights (averaged over heads) among the last ``n`` movies of ``history``: row t
    is how much position t attends to each of the n shown; the rest of its weight goes to earlier positions."""
    _, weights = model.encode(pad_histories([history], model.max_len), return_attention=True)
    return ops.convert_to_numpy(weights)[0].mean(axis=0)[-n:, -n:]  # (n, n)


def short_titles(item_idx, width=34):
    titles = catalogue.loc[ids.item_ids[np.asarray(item_idx)], "title"].to_numpy()
    return [t if len(t) <= width else t[:width - 1] + "…" for t in titles]


shown = histories[user_row][-12:]
weights = attention_map(sasrec, histories[user_row], n=len(shown))
fig, ax = plt.subplots(figsize=(8, 6.5))
image = ax.imshow(np.where(np.tri(len(shown), dtype=bool), weights, np.nan), cmap="Blues", vmin=0)
ax.set_xticks(range(len(shown)), short_titles(shown), rotation=60, ha="right", fontsize=8)
ax.set_yticks(range(len(shown)), short_titles(shown), fontsize=8)
ax.set_xlabel("attended movie (key)")
ax.set_ylabel("position (query): the movie just watched")
ax.set_title(f"SASRec's last-block attention, user {ids.user_ids[user_row]}'s last {len(shown)} training movies")
fig.colorbar(image, ax=ax, label="attention weight (the rest goes to earlier positions)")
plt.tight_layout()
plt.show()
row, col = np.unravel_index(np.nanargmax(np.where(np.tri(len(shown), dtype=bool), weights, np.nan)), weights.shape)
top = np.argsort(weights[-1])[::-1][:3]
print(f"uniform weight over the last row's {SAS_LEN} positions: {1 / SAS_LEN:.3f}; the last row's weights among the "
      f"12 shown sum to {weights[-1].sum():.2f}, its largest: " + "; ".join(
          f"{short_titles([shown[i]], 60)[0]} ({weights[-1, i]:.3f})" for i in top))
print(f"darkest cell: row '{short_titles([shown[row]], 60)[0]}' on '{short_titles([shown[col]], 60)[0]}' "
      f"({weights[row, col]:.3f})")

# %% [markdown]
# ATTENTION_READING
#
# Attention weights say what the model *looked at*, not what *caused* its scores: a faithful explanation needs a
# check, such as whether removing the most-attended movie changes the score more than removing a random one
# (notebook 09 runs such a test).

# %% [markdown]
# ## 5. The behaviour + content hybrid
# The models so far know a movie only by its index: a movie watched by three people has an output embedding $w_j$
# trained on three examples. The hybrid adds what notebook 05 taught a CNN to read, the movie's **document** (title
# words, genres, year; no tags, since tags are interactions that happen over time and would leak the future here). It
# is the LSTM of §3 with one change, on its output side: movie $j$'s vector becomes
# $$v_j = w_j + \mathrm{CNN}(\text{document}_j),$$
# with `recsys_helpers.content.text_cnn`, Kim's (2014) text CNN as notebook 05 used it (word embeddings, filters of
# widths 1–3, max-over-time pooling, a hidden layer), whose output has the LSTM's size. The score is still
# $s_{tj} = h_t^\top v_j + b_j$, so the user side (the LSTM over the history), the sampled softmax with its logQ
# correction, the training examples, the settings and the early stopping are the LSTM's. **The LSTM is therefore
# this model's ablation**: the same model without the content CNN, trained with the same budget. Whatever differs
# between the two is the content's doing (and the randomness of one training run each). The CNN's own sizes
# (`WORD_DIM`, `CNN_FILTERS`, `CNN_HIDDEN`) were not tuned.

# %%
documents = movie_documents(data.items).reindex(ids.item_ids).to_numpy()  # in the id map's order
word_counts = pd.Series(" ".join(documents).split()).value_counts()
vectorize = layers.TextVectorization(max_tokens=int((word_counts >= 2).sum()) + 2, standardize=None,
                                     split="whitespace", output_sequence_length=DOC_LEN)
vectorize.adapt(documents)
words = ops.convert_to_numpy(vectorize(documents)).astype("int32")  # (movies, DOC_LEN), 0 = padding, 1 = rare word


class ContentItems(layers.Layer):
    """The hybrid's output vectors: movie j's ID embedding w_j plus the text CNN's vector of its document."""

    def __init__(self, id_embedding, cnn, words, **kwargs):
        super().__init__(**kwargs)
        self.id_embedding, self.cnn = id_embedding, cnn
        self.words = np.concatenate([np.zeros((1, words.shape[1]), "int32"), words])  # row 0: padding

    def call(self, items):  # items: movie index + 1, any shape
        vectors = self.id_embedding(items)
        content = self.cnn(ops.take(self.words, ops.reshape(items, (-1,)), axis=0))  # one document per item
        return vectors + ops.reshape(content, ops.shape(vectors))


class ContentHybrid(GRU4Rec):
    """The LSTM of §3 whose output side also reads each movie's document."""

    def __init__(self, n_items, words, n_words, **kwargs):
        super().__init__(n_items, "lstm", LSTM_DIM, LSTM_LEN, **kwargs)
        cnn = text_cnn(DOC_LEN, n_words, LSTM_DIM, embed_dim=WORD_DIM, n_filters=CNN_FILTERS, hidden=CNN_HIDDEN,
                       dropout=DROPOUT, name="content_cnn", seed=self.seeds())
        self.output_embedding = ContentItems(self.output_embedding, cnn, words, name="content_items")


hybrid = ContentHybrid(n_items, words, len(vectorize.get_vocabulary()), name="hybrid")
hybrid, hybrid_losses, hybrid_check, hybrid_seconds = train_next_item(hybrid)
print(f"hybrid: {hybrid.count_params():,} parameters, of which the content CNN "
      f"{hybrid.output_embedding.cnn.count_params():,} (the LSTM: {lstm.count_params():,}); vocabulary "
      f"{len(vectorize.get_vocabulary()):,} words; document length median {np.median((words > 0).sum(axis=1)):.0f}")
print(training_line("hybrid (LSTM + content CNN)", hybrid_check, hybrid_seconds))
print(training_line("LSTM, the same model without the CNN (§3)", lstm_check, lstm_seconds))

# %% [markdown]
# **Full ranking.** The protocol scores every movie after every history: 3,050 events × 9,530 movies. Because the
# score is a dot product, each side is computed once: the LSTM's last state per event, and $v_j$ for every movie (the
# CNN reads each document once per call of `scores_next`), then one matrix product. This is `NextItemModel`'s
# `scores_next`, unchanged: it asks the output side for every movie's vector.

# %% [markdown]
# ## 6. The comparison on the test events
# Every model scores the same 3,050 test events. Each neural model's difference in NDCG@10 from the Markov chain and
# from the recency item-kNN comes with a 95% paired-bootstrap interval, resampling users with all their events. Every
# interval here resamples users (or events) from **one training run** of each model: it leaves out the randomness of
# training (another seed gives other weights), so a difference whose interval barely excludes zero is not yet a
# finding.

# %%
HYBRID = "hybrid (LSTM + content CNN)"
models = {**baselines, "GRU4Rec": gru4rec, "LSTM": lstm, "SASRec": sasrec, HYBRID: hybrid}
checks = {"GRU4Rec": gru_check, "LSTM": lstm_check, "SASRec": sas_check, HYBRID: hybrid_check}
neural = list(checks)
train_seconds.update({"GRU4Rec": gru_seconds, "LSTM": lstm_seconds, "SASRec": sas_seconds, HYBRID: hybrid_seconds})
validation_ndcg.update({name: max(c.history) for name, c in checks.items()})
metric_names = [f"hit_rate@{K}", f"ndcg@{K}", f"mrr@{K}"]
per_event = {name: evaluate_sequential(model, seq, "test", k=K, per_event=True, batch_size=4096)
             for name, model in models.items()}


def interval(a, b, metric=f"ndcg@{K}", inside=None):
    """Paired bootstrap of a's NDCG@K minus b's over the test events (those in ``inside``, if given), resampling
    users; the verdict is stored with the run's comparisons under ``metric``."""
    keep = np.ones(len(per_event[a]), bool) if inside is None else inside
    boot = paired_bootstrap(per_event[a][f"ndcg@{K}"][keep], per_event[b][f"ndcg@{K}"][keep], n_boot=N_BOOTSTRAP,
                            seed=SEED, names=(a, b), groups=per_event[a]["user_id"][keep])
    results.compare(boot, "sequential", metric)
    return boot


boots = {(a, b): interval(a, b) for a in neural for b in ("Markov", "kNN")}
boots.update({pair: interval(*pair) for pair in [("SASRec", "GRU4Rec"), ("GRU4Rec", "LSTM"), (HYBRID, "LSTM")]})

# %%
budgets = {"Popularity": "training counts", "Markov": "transition counts",
           "kNN": f"γ chosen among {len(DECAY_GRID)} values on validation",
           **{name: budget(models[name]) for name in neural}}
budgets[HYBRID] += "; the CNN's sizes not tuned"
metrics = {name: {f"validation ndcg@{K}": validation_ndcg[name], **per_event[name][metric_names].mean().to_dict()}
           for name in models}
for (a, b), boot in boots.items():
    if b in ("Markov", "kNN"):  # recorded with the model, for the bars and the leaderboard
        label = f"difference from {b}, ndcg@{K}"
        metrics[a].update({label: boot["diff"], f"{label} (95% low)": boot["low"], f"{label} (95% high)": boot["high"]})


def record(name, **more):
    """Record a model with its metrics (and ``more``), its budget and, for a neural model, its epochs."""
    results.record(name, "sequential", {**metrics[name], **more}, train_seconds=train_seconds[name],
                   epochs=checks.get(name), budget=budgets[name])


for name in models:
    record(name)
table = pd.DataFrame({name: {f"validation ndcg@{K}": validation_ndcg[name],
                             **{f"test {m}": metrics[name][m] for m in metric_names}} for name in models}).T
for b in ("Markov", "kNN"):
    table[f"test ndcg@{K} − {b} (95% interval)"] = [
        f"{boots[n, b]['diff']:+.4f} [{boots[n, b]['low']:+.4f}, {boots[n, b]['high']:+.4f}]" if n in neural else ""
        for n in models]
table["training seconds"] = [train_seconds[n] for n in models]
with pd.option_context("display.width", 250, "display.max_colwidth", 40):
    display(table.round(4))

# %% [markdown]
# The verdicts behind the intervals, and three comparisons between the neural models (each line names its
# difference, first model minus second):

# %%
for boot in boots.values():
    print(boot["verdict"])

# %% [markdown]
# **The budget each model had** (the laptop profile gives every neural model the same one: the same training
# examples, loss, batch, learning rate, size 64, T = 50 and at most `MAX_EPOCHS` epochs; "cut short by the budget"
# marks a model whose cap, not early stopping, ended its training):

# %%
with pd.option_context("display.width", 250, "display.max_colwidth", 70):
    display(results.budget_table("sequential").drop(columns="protocol"))

# %% [markdown]
# **The reference run beside this one.** The table below shows, per model, NDCG@10 on the test events in this run
# (`laptop`) and in the committed reference run (`reference`: `notebooks/reference/`, `PROFILE = "reference"`, each
# neural model at its validation-chosen setting and trained until early stopping ended it), with the epochs each ran
# out of its cap ("(cap)" when the cap ended it). Under it, the verdicts the reference run stored (difference = first
# model minus second, 95% interval over users).

# %%
with pd.option_context("display.width", 250):
    display(results.reference_table("sequential", f"ndcg@{K}", models=list(models)))
    display(results.reference_verdicts("sequential").query(f"metric == 'ndcg@{K}'").drop(columns="metric"))
reference = {r["model"]: r for r in (results.records if PROFILE == "reference" else read_results(REFERENCE_DIR))
             if r.get("notebook", "06_rnn_recommenders") == "06_rnn_recommenders" and r["protocol"] == "sequential"}
if all(name in reference for name in [*neural, "Markov"]):
    best = max(neural, key=lambda n: reference[n]["metrics"][f"validation ndcg@{K}"])
    ratio = reference[best]["metrics"][f"ndcg@{K}"] / reference["Markov"]["metrics"][f"ndcg@{K}"]
    print(f"reference run: the best neural model on validation is {best}; its test NDCG@{K} is {ratio:.2f} × the "
          f"Markov chain's (the course's aim: 1.15 ×)")
caser = [(label, r) for label, folder in [("laptop", DEFAULT_DIR), ("reference", REFERENCE_DIR)]
         if (folder / "results.json").exists() for r in read_results(folder)
         if r["notebook"] == "05_cnn_recommenders" and r["model"].startswith("Caser") and r["protocol"] == "sequential"]
for label, r in caser:
    e = r.get("epochs")
    print(f"{r['model']} (notebook 05, committed {label} run): test NDCG@{K} {r['metrics'][f'ndcg@{K}']:.4f}"
          + (f", {e['ran']} epochs of a cap of {e['cap']}" if e else ""))

# %% [markdown]
# COMPARISON_READING
#
# **Where does content help?** The test events split by how often the true next movie was seen in training: rare
# (at most 10 training interactions, including movies never seen in training, which no model can rank), medium
# (11–50) and popular (more than 50). NDCG@10 per group, with the number of events in each; the verdict lines under
# the plot compare the hybrid with its ablation, the LSTM, in each group.

# %%
next_movie = ids.items(per_event[HYBRID]["item_id"], strict=False)  # -1: a movie never seen in training
training_count = np.where(next_movie >= 0, counts[np.maximum(next_movie, 0)], 0)
buckets = pd.cut(training_count, [-1, 10, 50, np.inf], labels=["rare (≤ 10)", "medium (11–50)", "popular (> 50)"])
by_bucket = pd.DataFrame({name: per_event[name][f"ndcg@{K}"].groupby(buckets, observed=False).mean()
                          for name in models}).T
by_bucket.columns = [f"{c} ({n} events)" for c, n in zip(by_bucket.columns,
                                                        pd.Series(buckets).value_counts(sort=False))]
with pd.option_context("display.width", 250):
    display(by_bucket.round(4))
for name in ("LSTM", HYBRID):  # recorded with the ablation pair
    record(name, **{f"ndcg@{K}, next movie {b.split()[0]}": float(v) for b, v in zip(buckets.categories,
                                                                                    by_bucket.loc[name])})
fig, ax = plt.subplots(figsize=(8, 3.4))
by_bucket.T.plot.bar(ax=ax, rot=0)
ax.set_ylabel(f"test NDCG@{K}")
ax.set_xlabel("next movie's number of training interactions")
ax.set_title("Accuracy by the popularity of the movie to predict")
ax.legend(fontsize=7, ncol=2)
ax.grid(alpha=0.3, axis="y")
plt.tight_layout()
plt.show()
print(f"{(training_count == 0).sum()} of the {(buckets == buckets.categories[0]).sum()} rare next movies were never "
      "seen in training")
for bucket in buckets.categories:  # the hybrid against its ablation, bucket by bucket
    print(f"{bucket}: " + interval(HYBRID, "LSTM", f"ndcg@{K}, next movie {bucket.split()[0]}",
                                   np.asarray(buckets == bucket))["verdict"])

# %% [markdown]
# BUCKET_READING

# %% [markdown]
# ## 7. Exercises
# **Exercise 1 · A sampled softmax with the logQ correction.** This is the loss every neural model of this notebook
# trains with. Write `sampled_softmax_logq(states, targets, negatives, W, b, log_q)` in plain numpy, returning the
# loss of each position:
# - `states` $(P, d)$: the model's state at $P$ positions; `targets` $(P,)$: each position's true next movie, as
#   movie index + 1 (0 is padding, as in the model's tables);
# - `negatives` $(n,)$: the sampled movies (index + 1), shared by all positions;
# - `W` $(N + 1, d)$ and `b` $(N + 1,)$: the output embeddings and biases (row 0: padding); `log_q` $(N,)$: the
#   correction $\log(n\,q_j)$ of movie index $j$ (so movie index + 1 = $i$ has `log_q[i - 1]`).
#
# Each candidate's logit is $h^\top w_j + b_j - \log(n\,q_j)$, the target first; a negative equal to the position's
# target gets logit $-\infty$ (it is masked); the loss is the cross-entropy with the target, $-\log$ of its softmax
# weight. The first cases are worked by hand; the last compares your function with `sampled_softmax_loss` on the
# trained GRU4Rec of §3 (four of its training stretches, with the very negatives the model draws).

# %% tags=["nbval-check-output"]
def sampled_softmax_logq(states, targets, negatives, W, b, log_q):
    # YOUR CODE HERE
    raise NotImplementedError


def package_case(model, rows=4):
    """Arguments and the package's loss (per position with a target) for a few training stretches of ``model``."""
    x_in, y_in = training_stretches(histories, model.max_len, MAX_HISTORY)
    batch = {"history": x_in[:rows], "target": y_in[:rows]}
    state = ops.convert_to_numpy(model.sampler.state)
    loss = ops.convert_to_numpy(sampled_softmax_loss(None, model(batch)))  # the model draws its negatives here
    model.sampler.state.assign(state)  # ... and, from the same state, the same negatives again
    negatives = ops.convert_to_numpy(keras.random.categorical(model.log_q[None], model.n_sampled,
                                                              seed=model.sampler)[0]) + 1
    keep = batch["target"] > 0
    states_ = ops.convert_to_numpy(model.encode(batch["history"]))[keep]
    W, b = ops.convert_to_numpy(model.output_embedding.embeddings), ops.convert_to_numpy(model.output_bias)
    return (states_, batch["target"][keep], negatives, W, b, model.log_q), loss[keep]


hand_W, hand_b = np.zeros((4, 1)), np.zeros(4)  # three movies, every score 0
check(sampled_softmax_logq, [
    ((np.zeros((1, 1)), np.array([1]), np.array([2, 3]), hand_W, hand_b, np.zeros(3)), [np.log(3)],
     "all three logits are 0: the loss is log 3"),
    ((np.zeros((1, 1)), np.array([1]), np.array([2, 3]), hand_W, hand_b, np.log([1.0, 2.0, 2.0])), [np.log(2)],
     "the negatives' logits are −log 2 each: the loss is log(1 + 1/2 + 1/2)"),
    ((np.zeros((1, 1)), np.array([1]), np.array([1, 2]), hand_W, hand_b, np.zeros(3)), [np.log(2)],
     "the first negative is the target itself: mask it (logit −inf), leaving log(1 + 1)"),
    (*package_case(gru4rec), "compare with the package's sampled_softmax_loss on GRU4Rec's own logits")], tol=1e-4)

# %% [markdown]
# <details><summary>Reveal a solution</summary>
#
# ```python
# def sampled_softmax_logq(states, targets, negatives, W, b, log_q):
#     log_q1 = np.concatenate([[0.0], log_q])  # indexed by movie index + 1, like W and b
#     positive = (states * W[targets]).sum(axis=1) + b[targets] - log_q1[targets]
#     negative = states @ W[negatives].T + b[negatives] - log_q1[negatives]
#     negative = np.where(negatives[None, :] == targets[:, None], -np.inf, negative)
#     logits = np.column_stack([positive, negative])
#     top = logits.max(axis=1, keepdims=True)
#     return (np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]) - positive
# ```
# </details>

# %% [markdown]
# **Exercise 2 · One GRU step by hand.** Write `gru_update(x, h, W, U, b_in, b_rec)` for one sequence (1-D arrays
# `x` of length $m$ and `h` of length $n$; `W` of shape $(m, 3n)$, `U` of shape $(n, 3n)$, biases of length $3n$),
# following the equations of §1 with plain numpy: gates in the order $z, r, h$, the reset gate applied to
# $h U_h + b'_h$. The checks compare it with `keras.layers.GRU` on random weights.

# %% tags=["nbval-check-output"]
def gru_update(x, h, W, U, b_in, b_rec):
    # YOUR CODE HERE
    raise NotImplementedError


def keras_gru_step(x, h, W, U, b_in, b_rec):
    """The same step by keras.layers.GRU, starting from state h."""
    layer = layers.GRU(len(h))
    layer.build((1, 1, len(x)))
    layer.set_weights([W, U, np.stack([b_in, b_rec])])
    return ops.convert_to_numpy(layer(np.asarray(x, "float32")[None, None], initial_state=[np.asarray(
        h, "float32")[None]]))[0]


rng_ex = np.random.default_rng(0)
cases = []
for m, n in [(3, 2), (5, 4), (2, 6)]:
    args = (rng_ex.normal(size=m), np.tanh(rng_ex.normal(size=n)), rng_ex.normal(size=(m, 3 * n)),
            rng_ex.normal(size=(n, 3 * n)), rng_ex.normal(size=3 * n), rng_ex.normal(size=3 * n))
    cases.append((args, keras_gru_step(*args)))
check(gru_update, cases, tol=1e-5)

# %% [markdown]
# <details><summary>Reveal a solution</summary>
#
# ```python
# def gru_update(x, h, W, U, b_in, b_rec):
#     n = len(h)
#     sigmoid = lambda a: 1 / (1 + np.exp(-a))
#     x_part, h_part = x @ W + b_in, h @ U + b_rec
#     z = sigmoid(x_part[:n] + h_part[:n])
#     r = sigmoid(x_part[n:2 * n] + h_part[n:2 * n])
#     return z * h + (1 - z) * np.tanh(x_part[2 * n:] + r * h_part[2 * n:])
# ```
# </details>

# %% [markdown]
# **Exercise 3 · A causal attention mask.** Write `causal_mask(T)`, a $(T, T)$ boolean array that is True where
# position $t$ (row) may attend to position $s$ (column), that is where $s \le t$, and `masked_softmax(scores, mask)`,
# the row-wise softmax of `scores` in which masked-out entries get weight exactly 0. The last check runs
# `keras.layers.MultiHeadAttention` with your mask and verifies that changing a later position leaves every earlier
# output unchanged.

# %% tags=["nbval-check-output"]
def causal_mask(T):
    # YOUR CODE HERE
    raise NotImplementedError


def masked_softmax(scores, mask):
    # YOUR CODE HERE
    raise NotImplementedError


check(causal_mask, [((1,), [[True]]), ((3,), [[True, False, False], [True, True, False], [True, True, True]])])
lower = np.tri(3, dtype=bool)  # the causal mask of 3 positions, for the checks
check(masked_softmax, [((np.zeros((2, 2)), lower[:2, :2]), [[1.0, 0.0], [0.5, 0.5]]),
                       ((np.array([[0.0, 5.0, 1.0], [np.log(3), 0.0, 9.0], [0.0, 0.0, 0.0]]), lower),
                        [[1.0, 0.0, 0.0], [0.75, 0.25, 0.0], [1 / 3, 1 / 3, 1 / 3]])])


def future_leaks(T=6, dim=8):
    """True if changing the last position changes an earlier output of MultiHeadAttention under causal_mask."""
    attention = layers.MultiHeadAttention(2, dim // 2, seed=SEED)
    x = keras.random.normal((1, T, dim), seed=SEED)
    changed = ops.concatenate([x[:, :-1], x[:, -1:] + 5.0], axis=1)
    mask = causal_mask(T)[None]
    a, b = (ops.convert_to_numpy(attention(v, v, attention_mask=mask)) for v in (x, changed))
    return bool(np.abs(a[:, :-1] - b[:, :-1]).max() > 1e-6)


check(future_leaks, [((), False)], name="causal_mask inside MultiHeadAttention (future_leaks)")

# %% [markdown]
# <details><summary>Reveal a solution</summary>
#
# ```python
# def causal_mask(T):
#     return np.tril(np.ones((T, T), dtype=bool))
#
# def masked_softmax(scores, mask):
#     scores = np.where(mask, scores, -np.inf)
#     e = np.exp(scores - scores.max(axis=1, keepdims=True))
#     return e / e.sum(axis=1, keepdims=True)
# ```
# </details>
#
# **Going further** (no checks): train SASRec with `SAS_HEADS = 2`, `SAS_BLOCKS = 1` or `SAS_MASK_PADDING = True`
# and compare the validation curve; set the logQ correction to zero (`log_q` of zeros in `SHARED`) and look at how
# the models rank popular movies, as the toy of §3 predicts; train GRU4Rec with the full softmax for a few epochs and
# compare accuracy per second of training; run the reference profile (`PROFILE = "reference"`).
#
# ## 8. Results
# The notebook's records under the sequential protocol, one column per model (they join the course leaderboard when
# the notebook runs inside a course run); empty cells are metrics a model does not record.

# %%
display(results.table().drop(columns=["protocol", "profile"], errors="ignore").set_index("model").T.round(4))

# %% [markdown]
# ## Summary
# SUMMARY
#
# ## References
# - Yoshua Bengio, Patrice Simard and Paolo Frasconi. 1994. Learning long-term dependencies with gradient descent is
#   difficult. *IEEE Transactions on Neural Networks* 5, 2. doi:10.1109/72.279181
# - Yoshua Bengio and Jean-Sébastien Senécal. 2008. Adaptive importance sampling to accelerate training of a neural
#   probabilistic language model. *IEEE Transactions on Neural Networks* 19, 4. doi:10.1109/TNN.2007.912312
# - Kyunghyun Cho, Bart van Merriënboer, Caglar Gulcehre, Dzmitry Bahdanau, Fethi Bougares, Holger Schwenk and Yoshua
#   Bengio. 2014. Learning phrase representations using RNN encoder–decoder for statistical machine translation.
#   *EMNLP 2014*. doi:10.3115/v1/D14-1179
# - Balázs Hidasi, Alexandros Karatzoglou, Linas Baltrunas and Domonkos Tikk. 2016. Session-based recommendations with
#   recurrent neural networks. *ICLR 2016*. arXiv:1511.06939
# - Balázs Hidasi and Alexandros Karatzoglou. 2018. Recurrent neural networks with top-k gains for session-based
#   recommendations. *CIKM 2018*. doi:10.1145/3269206.3271761
# - Sepp Hochreiter and Jürgen Schmidhuber. 1997. Long short-term memory. *Neural Computation* 9, 8.
#   doi:10.1162/neco.1997.9.8.1735
# - Sébastien Jean, Kyunghyun Cho, Roland Memisevic and Yoshua Bengio. 2015. On using very large target vocabulary for
#   neural machine translation. *ACL 2015*. doi:10.3115/v1/P15-1001
# - Rafal Jozefowicz, Wojciech Zaremba and Ilya Sutskever. 2015. An empirical exploration of recurrent network
#   architectures. *ICML 2015* (PMLR 37).
# - Wang-Cheng Kang and Julian McAuley. 2018. Self-attentive sequential recommendation. *ICDM 2018*.
#   doi:10.1109/ICDM.2018.00035
# - Yoon Kim. 2014. Convolutional neural networks for sentence classification. *EMNLP 2014*. doi:10.3115/v1/D14-1181
# - Malte Ludewig, Noemi Mauro, Sara Latifi and Dietmar Jannach. 2019. Performance comparison of neural and non-neural
#   approaches to session-based recommendation. *RecSys 2019*. doi:10.1145/3298689.3347041
# - Aleksandr V. Petrov and Craig Macdonald. 2023. gSASRec: reducing overconfidence in sequential recommendation
#   trained with negative sampling. *RecSys 2023*. doi:10.1145/3604915.3608783
# - Ashish Vaswani, Noam Shazeer, Niki Parmar, Jakob Uszkoreit, Llion Jones, Aidan N. Gomez, Łukasz Kaiser and Illia
#   Polosukhin. 2017. Attention is all you need. *NeurIPS 2017*. arXiv:1706.03762
# - Xinyang Yi, Ji Yang, Lichan Hong, Derek Zhiyuan Cheng, Lukasz Heldt, Aditee Kumthekar, Zhe Zhao, Li Wei and Ed Chi.
#   2019. Sampling-bias-corrected neural modeling for large corpus item recommendations. *RecSys 2019*.
#   doi:10.1145/3298689.3346996
