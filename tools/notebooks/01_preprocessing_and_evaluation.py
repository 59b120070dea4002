# %% [markdown]
# # 01 · Preprocessing, splits, metrics and baselines
#
# Before any model, three questions decide whether its numbers mean anything: is the data clean, how is it split into
# what the model may see and what it is judged on, and how is it judged? This notebook answers them once, for the
# whole course: every later chapter uses the same cleaning, the same split, the same metrics and the same baselines,
# so their numbers sit side by side on one leaderboard.
#
# **You will be able to**
# - clean a ratings table (missing values, duplicates, out-of-range ratings) and encode ids as indices;
# - normalise ratings by user-mean centring and z-scores, and say when each helps;
# - choose between random, stratified, temporal and leave-last-out splits, and see what each does to users and time;
# - compute RMSE, MAE, precision, recall, NDCG, hit rate and MAP by hand, then with the course's helpers;
# - build the three baselines every model must beat: the global mean, regularised user/item biases, popularity;
# - use the course's two further protocols: **sequential** (predict each user's next interactions one step ahead) with
#   its popularity, Markov-chain and recency item-kNN baselines, and **cold start** (rank movies nobody has rated yet)
#   with a random and a genre-profile baseline, compared with a paired bootstrap.
#
# **Prerequisites:** notebook 00. **Time:** under a minute on a 2-core CPU.

# %% tags=["parameters"]
SEED = 42  # seeds every random number generator, and the standard split
DATASET = "ml-latest-small"
SMOKE = False  # a quick check: smaller grids (regularisation, recency decay) and fewer bootstrap resamples
TEST_FRAC = 0.2  # share of each user's ratings held out for testing
VAL_FRAC = 0.2  # share of each user's training ratings held out as the validation split (for tuning λ)
K = 10  # the cut-off of the ranking metrics (precision@K, NDCG@K, ...)
REG_GRID = [0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]  # bias λ, chosen on validation
N_EVENTS = 5  # sequential protocol: the last N_EVENTS interactions of each user are test events, the N_EVENTS before validation
DECAY_GRID = [0.5, 0.7, 0.8, 0.9, 1.0]  # recency weights of the item-kNN baseline, chosen on validation events
NEW_ITEM_FRAC = 0.1  # cold-start protocol: share of the items (with at least MIN_ITEM_RATINGS ratings) that become new
MIN_ITEM_RATINGS = 5
N_BOOTSTRAP = 2000  # resamples of the paired bootstrap
MIN_RATINGS = 20  # the table of item biases: "well-known" movies have at least this many training ratings

# %%
if SMOKE:  # a quick end-to-end check (the tests use it): fewer regularisation strengths
    REG_GRID = REG_GRID[::3]
    DECAY_GRID = [0.8]
    N_BOOTSTRAP = 200

# %%
from recsys_helpers import env

tf, results = env.start_notebook("01_preprocessing_and_evaluation", SEED)
import inspect

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Code

from recsys_helpers import metrics
from recsys_helpers.baselines import (BiasBaseline, GenreProfile, GlobalMean, MarkovChain, Popularity, RandomScores,
                                      RecencyItemKNN)
from recsys_helpers.data import load_movielens
from recsys_helpers.evaluation import (Timer, evaluate_cold_start, evaluate_ranking, evaluate_ratings,
                                       evaluate_sequential, paired_bootstrap, sequential_events, top_k)
from recsys_helpers.exercises import check
from recsys_helpers.interactions import IdMap
from recsys_helpers.plots import plot_comparison
from recsys_helpers.split import (cold_start_split, leave_last_out, random_split, sequential_split, stratified_split,
                                  temporal_split)

data = load_movielens(DATASET)
ratings = data.ratings
titles = data.items.set_index("item_id").title
print(data)

# %% [markdown]
# ## 1. Cleaning
# MovieLens is already clean, which makes it a poor place to practise cleaning. So we make a deliberately dirty copy of
# a sample: missing ids, exact duplicate rows, the same user rating the same movie twice at different times, and
# ratings outside the 0.5–5 star scale. Then we find and fix each problem.

# %%
rng = np.random.default_rng(SEED)
sample = ratings.sample(2_000, random_state=SEED).reset_index(drop=True)
dirty = sample.astype({"user_id": "Float64", "rating": "Float64"})
# each problem in rows of its own, so that no plant hides another and the report can be checked against them
lost, typos, copied, changed = np.split(rng.permutation(len(dirty))[:70], [15, 25, 50])
dirty.loc[lost, "user_id"] = pd.NA  # lost ids
dirty.loc[typos, "rating"] = rng.choice([-1.0, 0.0, 7.0, 50.0], len(typos))  # off the star scale
exact_copies = dirty.loc[copied]  # a logging system that wrote some rows twice
re_rated = dirty.loc[changed].assign(  # users who changed their mind a day later
    timestamp=lambda d: d.timestamp + 86_400, rating=lambda d: ((d.rating % 5) + 0.5).clip(0.5, 5.0))
dirty = pd.concat([dirty, exact_copies, re_rated], ignore_index=True)
planted = {"missing values": len(lost), "out-of-range ratings": len(typos), "exact duplicates": len(copied),
           "older re-ratings": len(changed)}
print(f"dirty copy: {len(dirty):,} rows; planted: " + ", ".join(f"{n} {what}" for what, n in planted.items()))
dirty.isna().sum().to_frame("missing values")

# %% [markdown]
# The clean-up, one rule per problem. Each rule is a decision, so we say why:
# - **missing ids**: a rating without its user cannot be used by any model here, so the row goes;
# - **out-of-range ratings**: values off the star scale are errors we cannot repair, so they go (clipping 7 to 5 would
#   invent an opinion);
# - **exact duplicates**: keep one copy;
# - **the same (user, movie) pair twice**: keep the *latest* rating, the user's current opinion.

# %%
def clean_ratings(df: pd.DataFrame, low: float = 0.5, high: float = 5.0) -> pd.DataFrame:
    report = {"rows in": len(df)}
    df = df.dropna(subset=["user_id", "item_id", "rating"])
    report["missing values dropped"] = report["rows in"] - len(df)
    in_range = df.rating.between(low, high)
    report["out-of-range ratings dropped"] = int((~in_range).sum())
    df = df[in_range]
    n = len(df)
    df = df.drop_duplicates()
    report["exact duplicates dropped"] = n - len(df)
    n = len(df)
    df = df.sort_values("timestamp", kind="stable").drop_duplicates(["user_id", "item_id"], keep="last")
    report["older re-ratings dropped"] = n - len(df)
    report["rows out"] = len(df)
    print(pd.Series(report).to_string())
    return df.astype({"user_id": "int64", "rating": "float64"}).sort_index().reset_index(drop=True)


clean = clean_ratings(dirty)
assert len(clean) == len(sample) - len(lost) - len(typos)  # every copy and older re-rating gone, nothing else lost

# %% [markdown]
# Every planted problem was found: each line of the report matches the planted count printed above. The real data
# passes through the same function untouched, which is worth checking rather than assuming:

# %% tags=["nbval-check-output"]
real_clean = clean_ratings(ratings)
assert len(real_clean) == len(ratings)

# %% [markdown]
# ## 2. Encoding ids as indices
# MovieLens ids are sparse labels: they skip numbers, so movie 47 becomes index 43 in the table below. Models need
# contiguous indices $0, 1, \dots, n-1$ to look up rows of a matrix or an embedding table. `IdMap.from_train(train)`
# numbers the users and items *of the training data* in sorted id order; the evaluation helpers build the same map, so a
# score matrix built with it lines up with theirs. Items that appear only in test get no index: no model trained on
# this split has seen them.

# %%
ids = IdMap.from_train(ratings)
example = ratings.head(4).assign(u=lambda d: ids.users(d.user_id), i=lambda d: ids.items(d.item_id))
print(f"{ids.n_users} users -> indices 0..{ids.n_users - 1}; {ids.n_items:,} items -> indices 0..{ids.n_items - 1}")
example

# %% [markdown]
# ## 3. Normalisation
# Users use the star scale differently: some rate everything 4–5, others rarely go above 3. Two common fixes:
# - **user-mean centring**: $\tilde r_{ui} = r_{ui} - \bar r_u$ removes each user's personal offset;
# - **z-scores**: $z_{ui} = (r_{ui} - \bar r_u) / \sigma_u$ also removes differences in spread.
#
# Models then predict the normalised value and add the user's mean (and spread) back. Neighbourhood methods
# (notebook 02) rely on centring; models with bias terms (notebook 03) learn these offsets themselves.

# %%
by_user = ratings.groupby("user_id").rating
centred = ratings.rating - by_user.transform("mean")
spread = by_user.transform("std").replace(0, 1.0)  # a user with one distinct rating has no spread to divide by
zscores = centred / spread

fig, axes = plt.subplots(1, 3, figsize=(12, 3), sharey=True)
for ax, values, label in zip(axes, [ratings.rating, centred, zscores], ["raw rating", "user-centred", "z-score"]):
    ax.hist(values, bins=40, color="tab:blue")
    ax.set_xlabel(label)
    ax.set_title(f"{label}: mean {values.mean():.2f}, std {values.std():.2f}")
axes[0].set_ylabel("number of ratings")
plt.tight_layout()
plt.show()
user_means, user_spreads = by_user.mean(), by_user.std()
print(f"User mean ratings range from {user_means.min():.2f} to {user_means.max():.2f} stars: "
      "the same 4 stars means different things to different users.")
print(f"Their standard deviations range from {user_spreads.min():.2f} to {user_spreads.max():.2f} stars "
      f"(middle half of the users: {user_spreads.quantile(0.25):.2f} to {user_spreads.quantile(0.75):.2f}).")

# %% [markdown]
# When does each help? **Centring** helps whenever users differ in their offset, the usual case (the first line above).
# **Dividing by $\sigma_u$** helps when users also differ in how much of the scale they use (the second line): for a
# user whose ratings stay within a star or so, one star above their mean is a strong opinion, and the z-score says so
# on the same scale as a user who spreads over all five stars. It needs enough ratings per user for $\sigma_u$ to be a
# stable estimate, and it breaks for a user whose ratings are all equal ($\sigma_u = 0$: the code above divides by 1
# then). The course's models centre (notebook 02) or learn offsets (notebook 03), and none divides by $\sigma_u$.

# %% [markdown]
# ## 4. Splits
# A model is judged on ratings it did not see in training. *How* we hold them out changes what the number means.
# Four ways, first on a toy history of three users so every row can be read:

# %%
toy = pd.DataFrame({
    "user_id": [1] * 6 + [2] * 4 + [3] * 2,
    "item_id": [10, 11, 12, 13, 14, 15, 10, 12, 16, 17, 11, 13],
    "rating": [4, 5, 3, 4, 2, 5, 3, 4, 5, 1, 4, 4.0],
    "timestamp": [1, 2, 3, 4, 5, 6, 2, 4, 7, 8, 9, 10],
})
splits = {
    "random": random_split(toy, test_frac=0.25, seed=SEED),
    "stratified": stratified_split(toy, test_frac=0.25, seed=SEED),
    "temporal": temporal_split(toy, test_frac=0.25),
    "leave-last-out": leave_last_out(toy, n=1),
}
in_test = {name: toy.merge(test, how="left", indicator=True)["_merge"].map({"both": "test", "left_only": ""})
           for name, (_, test) in splits.items()}
display(pd.DataFrame(in_test).set_index(pd.Index(
    [f"user {u}, item {i}, t={ts}" for u, i, ts in zip(toy.user_id, toy.item_id, toy.timestamp)])))
n_toy = toy.groupby("user_id").size()
toy_strat_test = splits["stratified"][1].groupby("user_id").size().reindex(n_toy.index, fill_value=0)
print(f"random: round(0.25 × {len(toy)} rows) = {round(0.25 * len(toy))} test rows, from any users")
for user, n in n_toy.items():
    print(f"stratified, user {user}: round(0.25 × {n}) = round({0.25 * n:g}) = {int(np.round(0.25 * n))} "
          f"-> {toy_strat_test[user]} of {n} ratings in test")

# %% [markdown]
# - **Random**: a random quarter of all rows. A user can lose all of their ratings to test (no user here, and none on
#   the real data below, where every user has at least 20 ratings); nothing respects time.
# - **Stratified** (per user): a random quarter of *each user's* ratings, keeping at least one in train, so every test
#   user can be personalised. **This is the course's standard split** for rating and top-K protocols (20%, seed 42).
#   "A quarter" is rounded per user, and NumPy's `np.round` rounds a half to the nearest *even* number: 1.5 becomes 2
#   and 0.5 becomes 0, as the lines under the table show, so user 1 gives 2 of 6 ratings and user 3 none of 2. On a
#   toy history the share per user is rough; on real histories of 20 ratings or more it is close to the asked share
#   (the table of sizes below shows the total).
# - **Temporal**: everything after a global cut-off time is test. Honest about the future, but users who arrive late
#   have no training history at all (user 3 here).
# - **Leave-last-out**: each user's most recent interaction is test: the protocol of the NCF paper (notebook 04). The
#   course's sequential protocol (section 7) extends it to each user's last five interactions.
#
# On the real data, the same four splits. Left: how many test users have *no* training rating (they cannot be
# personalised). Middle and right: when the test ratings and the training ratings were given (each line is the share
# of that part's ratings given in each year). Each split keeps one colour, line style and marker in both panels
# (legend in the middle one).

# %%
real_splits = {
    "random": random_split(ratings, TEST_FRAC, seed=SEED),
    "stratified": stratified_split(ratings, TEST_FRAC, seed=SEED),
    "temporal": temporal_split(ratings, TEST_FRAC),
    "leave-last-out": leave_last_out(ratings, n=1),
}
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
cold = {name: (~test.user_id.isin(train.user_id)).groupby(test.user_id).any().sum()
        for name, (train, test) in real_splits.items()}
bars = axes[0].bar(list(cold), list(cold.values()), color="tab:red")
axes[0].bar_label(bars)
axes[0].set_ylabel("test users with no training rating")
axes[0].set_title("Cold-start users created by each split")
styles = {"random": dict(ls="-", lw=2.5, marker="o", ms=8, mfc="none"), "stratified": dict(ls="--", marker="x", ms=6),
          "temporal": dict(ls="-.", marker="s", ms=4), "leave-last-out": dict(ls=":", lw=2, marker="^", ms=5)}
year_shares = {}
for ax, part in zip(axes[1:], ["test", "training"]):
    for name, (train, test) in real_splits.items():
        frame = test if part == "test" else train
        year_shares[part, name] = pd.to_datetime(frame.timestamp, unit="s").dt.year.value_counts(normalize=True)
        ax.plot(year_shares[part, name].sort_index(), label=name, **styles[name])
    ax.set_xlabel(f"year of the {part} rating")
    ax.set_ylabel(f"share of {part} ratings")
    ax.set_title(f"When the {part} ratings were given")
axes[1].legend(title="split")
plt.tight_layout()
plt.show()
gap = max((year_shares[part, "random"] - year_shares[part, "stratified"]).abs().max() for part in ("test", "training"))
print(f"Random and stratified: their shares differ by at most {gap:.1%} in any year, in test and in training, so "
      "their lines lie on top of each other (open circles: random; crosses: stratified).")

# %% tags=["nbval-check-output"]
train, test = real_splits["stratified"]
sizes = pd.DataFrame.from_dict({name: {"train rows": len(tr), "test rows": len(te),
                                       "test share": round(len(te) / (len(tr) + len(te)), 4),
                                       "test users": te.user_id.nunique(),
                                       "test ratings of items unseen in train": int((~te.item_id.isin(tr.item_id)).sum())}
                                for name, (tr, te) in real_splits.items()}, orient="index")
sizes

# %% [markdown]
# The temporal split puts all test ratings in the last years (2016 to 2018) and the training ratings before them, and
# leaves 88 of its 116 test users without history (the other splits leave none); the random and stratified splits spread
# both test and training ratings over the whole period, in the same proportions. The stratified split is the compromise
# the course uses: every user is in train, so every model can be judged on personalisation. Its price is that a model
# may train on a user's later ratings and be tested on earlier ones; where order matters, the sequential protocol of
# section 7 holds out each user's *latest* interactions instead.
#
# ## 5. Metrics, by hand first
# ### Rating prediction: RMSE and MAE
# $$\mathrm{RMSE} = \sqrt{\frac{1}{|T|}\sum_{(u,i) \in T} (r_{ui} - \hat r_{ui})^2}, \qquad
#   \mathrm{MAE} = \frac{1}{|T|}\sum_{(u,i) \in T} |r_{ui} - \hat r_{ui}|$$
# RMSE squares errors, so one prediction that is off by 3 stars costs as much as nine that are off by 1.

# %%
y_true = np.array([4.0, 3.0, 5.0, 1.0])
y_pred = np.array([3.5, 3.0, 4.0, 4.0])
errors = y_true - y_pred
by_hand = {"rmse": np.sqrt(np.mean(errors ** 2)), "mae": np.mean(np.abs(errors))}
print(f"errors {errors}: RMSE = sqrt(({' + '.join(f'{e**2:g}' for e in errors)}) / 4) = {by_hand['rmse']:.4f}, "
      f"MAE = {by_hand['mae']:.4f}")
print(f"helpers: RMSE = {metrics.rmse(y_true, y_pred):.4f}, MAE = {metrics.mae(y_true, y_pred):.4f}")

# %% [markdown]
# ### Top-K ranking
# A recommender shows a short list. For one user, let the list be the top $k$ items and $\mathrm{rel}$ the set of items
# the user interacted with in test. With $\mathrm{hit}_r = 1$ if the item at rank $r$ is relevant:
#
# | metric | one user | meaning |
# |---|---|---|
# | precision@k | $\frac{1}{k}\sum_{r \le k} \mathrm{hit}_r$ | how much of the list is relevant |
# | recall@k | $\frac{1}{|\mathrm{rel}|}\sum_{r \le k} \mathrm{hit}_r$ | how much of what is relevant made the list |
# | hit rate@k | $1$ if any $\mathrm{hit}_r$ | did the list contain anything relevant |
# | NDCG@k | $\frac{\sum_{r \le k} \mathrm{hit}_r / \log_2(r + 1)}{\sum_{r=1}^{\min(|\mathrm{rel}|, k)} 1/\log_2(r+1)}$ | hits near the top count more; 1 for a perfect list |
# | MAP@k | $\frac{1}{\min(|\mathrm{rel}|, k)} \sum_{r \le k} \mathrm{hit}_r \cdot \mathrm{precision@}r$ | precision@r summed over the ranks of the hits, divided by the most hits the list could hold |
#
# MAP@k (mean *average precision*) is not the plain mean of precision at the hits: dividing by
# $\min(|\mathrm{rel}|, k)$ instead of by the number of hits counts every relevant item the list had room for but
# missed as a zero. A user with three relevant items whose list has one hit, at rank 1, and nothing else scores 1/3,
# not 1. Each metric is averaged over the users who have at least one relevant item. Catalogue **coverage@k** is the
# share of the training items (the candidates a list can hold) that appear in at least one user's list: a model that
# shows everyone the same ten items covers little.
#
# Worked by hand: user A's list is [7, 3, 9, 1, 5] and A's test items are {3, 5, 8}; user B's list is
# [2, 4, 6, 8, 10] and B's test items are {2}. With $k = 5$:

# %%
recommended = np.array([[7, 3, 9, 1, 5], [2, 4, 6, 8, 10]])
relevant = [{3, 5, 8}, {2}]
k = 5
d = 1 / np.log2(np.arange(2, k + 2))  # discounts 1/log2(r+1) for r = 1..k
hand = pd.DataFrame({
    "precision@5": [2 / 5, 1 / 5],
    "recall@5": [2 / 3, 1 / 1],
    "hit_rate@5": [1, 1],
    "ndcg@5": [(d[1] + d[4]) / (d[0] + d[1] + d[2]), d[0] / d[0]],  # A: hits at ranks 2 and 5; ideal: 3 hits at 1-3
    "map@5": [(1 / 2 + 2 / 5) / 3, (1 / 1) / 1],  # A: precision@2 = 1/2, precision@5 = 2/5, summed; / min(3, 5)
}, index=["user A", "user B"])
hand.loc["mean (by hand)"] = hand.mean()
hand.loc["helpers"] = [fn(recommended, relevant, k) for fn in
                       [metrics.precision_at_k, metrics.recall_at_k, metrics.hit_rate_at_k, metrics.ndcg_at_k,
                        metrics.map_at_k]]
hand.round(4)

# %% [markdown]
# The helpers agree with the hand computation. User A's MAP@5 is $(1/2 + 2/5)/3 = 0.30$: the precisions at A's two
# hits, summed, divided by $\min(3, 5) = 3$ because the list had room for all three relevant items; the plain mean of
# the two precisions would be $0.45$. From here on, chapters report their metrics through these helpers:
# `evaluate_ratings(predictions, test)` or `evaluate_ranking(scores, train, test, k)`, and for the two protocols of
# sections 7 and 8, `evaluate_sequential(model, split, which, k)` and `evaluate_cold_start(model, split, k)`. Where
# tuning or a breakdown needs raw errors, a chapter computes them in plain sight.
#
# **The top-K protocol.** For every test user, a model scores *all* items seen in training; the items the user rated
# in training are removed; the best $k$ form the list. All of the user's test ratings count as relevant, whatever the
# stars (a 2-star rating still says the user chose to watch the movie). Test items that never appear in training stay
# relevant even though no model can recommend them.
#
# So recall@k has a ceiling below 1, the same for every model, for two reasons: a list of $k$ cannot hold more than $k$
# of a user's test items, and a test item unseen in training cannot be in any list. The best possible recall of a
# user is $\min(k, |\mathrm{rel} \cap \text{train items}|) / |\mathrm{rel}|$. How much does each reason cost on the
# standard split?

# %%
n_test_items = test.groupby("user_id").size()
n_known_items = test[test.item_id.isin(train.item_id)].groupby("user_id").size().reindex(n_test_items.index,
                                                                                          fill_value=0)
display(pd.Series({
    f"with both limits (the real ceiling of recall@{K})": (np.minimum(K, n_known_items) / n_test_items).mean(),
    f"if only the {K} slots of the list limited it": (np.minimum(K, n_test_items) / n_test_items).mean(),
    "if only unseen test items limited it": (n_known_items / n_test_items).mean(),
}, name=f"mean best possible recall@{K}").round(4).to_frame())
slots_cost = 1 - (np.minimum(K, n_test_items) / n_test_items).mean()
unseen_cost = 1 - (n_known_items / n_test_items).mean()
print(f"{(n_test_items > K).mean():.0%} of test users have more than K = {K} test items; "
      f"{(n_known_items < n_test_items).mean():.0%} have at least one test item unseen in training. The main cause "
      f"of the ceiling is {'the length of the list' if slots_cost > unseen_cost else 'unseen test items'} "
      f"(on its own it costs {max(slots_cost, unseen_cost):.3f} of recall, the other one "
      f"{min(slots_cost, unseen_cost):.3f}).")

# %% [markdown]
# **The scoring contract.** For the top-K protocol a model hands the evaluation its scores in one of three forms: an
# object with a method `scores(user_idx)` that returns a (users × items) array in `IdMap` order (every top-K model and
# baseline of the course has one), a function with the same signature, or the whole score matrix. Sequence models
# (section 7) have `scores_next(user_idx, histories)` instead, and cold-start models (section 8)
# `scores_items(user_idx, item_ids)`. Two rules keep the numbers honest: a NaN score
# is an error, not a silent "lowest rank" (use `-inf` for "never recommend"), and equal scores are put in a seeded
# random order, so that a model which cannot tell items apart ranks like random instead of favouring low ids.
#
# ## 6. Baselines
# Three baselines, each the simplest model of one idea. Every later model is compared with them.
#
# ### Global mean
# Predict $\hat r_{ui} = \mu$, the mean training rating, for everyone. Any rating model must beat it.

# %%
with Timer() as t:
    global_mean = GlobalMean().fit(train)
gm = evaluate_ratings(global_mean.predict, test)
results.record("Global mean", "rating", gm, train_seconds=t.seconds)

# %% [markdown]
# ### Regularised user and item biases
# $\hat r_{ui} = \mu + b_u + b_i$: a user who rates everything high gets a positive $b_u$, a movie everyone loves a
# positive $b_i$. We minimise
# $$\sum_{(u,i) \in \text{train}} (r_{ui} - \mu - b_u - b_i)^2 + \lambda_u \sum_u b_u^2 + \lambda_i \sum_i b_i^2 .$$
# Holding the user biases fixed, setting the derivative with respect to $b_i$ to zero gives a closed form, and
# likewise for $b_u$:
# $$b_i = \frac{\sum_{u \in U_i} (r_{ui} - \mu - b_u)}{\lambda_i + |U_i|}, \qquad
#   b_u = \frac{\sum_{i \in I_u} (r_{ui} - \mu - b_i)}{\lambda_u + |I_u|} .$$
# The $\lambda$ in the denominator **shrinks** the bias of an item with few ratings towards 0, the more the larger
# $\lambda$: for a movie with a single rating, that rating's residual is divided by $\lambda + 1$ instead of 1 (the
# problem we met at the end of notebook 00). How large $\lambda$ must be before movies with a handful of ratings stop
# reaching the top, and whether we want them to, depends on the goal; the rest of this section measures it for two
# goals. Each update is exact given the other biases, so alternating them never increases the loss; the course's
# implementation (`recsys_helpers.baselines`) alternates a fixed number of times, `n_iter`:

# %%
print(f"BiasBaseline's default: n_iter = {BiasBaseline().n_iter} alternations")
Code(inspect.getsource(BiasBaseline.fit), language="python")

# %% [markdown]
# How strong should the shrinkage be? We must not pick $\lambda$ by looking at the test set, or the test number stops
# being an honest estimate. Instead we hold out a *validation* split from the training data (the same stratified
# recipe, `VAL_FRAC` of each user's training ratings), choose $\lambda$ there, and evaluate once on test. The curve
# of validation RMSE against $\lambda$ is drawn below, beside the ranking one (section "The bias model as a ranker").

# %%
fit_part, validation = stratified_split(train, VAL_FRAC, seed=SEED)
val_models = {reg: BiasBaseline(reg, reg).fit(fit_part) for reg in REG_GRID}  # one fit per λ, reused for ranking
val_rmse = pd.Series({reg: evaluate_ratings(model.predict, validation)["rmse"] for reg, model in val_models.items()},
                     name="validation RMSE")
best_reg = float(val_rmse.idxmin())
print(f"Best λ on validation: {best_reg:g} (RMSE {val_rmse.min():.4f}; without shrinkage {val_rmse.iloc[0]:.4f}, "
      f"with the strongest shrinkage tried, λ = {val_rmse.index[-1]:g}: {val_rmse.iloc[-1]:.4f}). Too little "
      "shrinkage overfits the few ratings of rare movies and users, too much underfits.")

# %%
with Timer() as bias_fit:
    biases = BiasBaseline(best_reg, best_reg).fit(train)
bias_metrics = evaluate_ratings(biases.predict, test)
results.record("User/item biases", "rating", bias_metrics, train_seconds=bias_fit.seconds)

# %% [markdown]
# Are `n_iter` alternations enough? Refit at the chosen $\lambda$ with 1, 2, ... alternations, and once with twenty
# times as many, and measure on the training data how far the biases still move:

# %%
steps = [BiasBaseline(best_reg, best_reg, n_iter=n).fit(train) for n in range(1, biases.n_iter + 1)]
largest_move = lambda a, b: max(np.abs(b.item_bias - a.item_bias).max(), np.abs(b.user_bias - a.user_bias).max())
print("largest change of any bias in alternation " +
      ", ".join(f"{n}: {largest_move(a, b):.3f}" for n, (a, b) in enumerate(zip(steps, steps[1:]), 2)) + " (stars)")
longer = BiasBaseline(best_reg, best_reg, n_iter=20 * biases.n_iter).fit(train)
train_u, train_i, train_r = train.user_id.to_numpy(), train.item_id.to_numpy(), train.rating.to_numpy()
train_rmse = {model.n_iter: metrics.rmse(train_r, model.predict(train_u, train_i)) for model in (biases, longer)}
print(f"{longer.n_iter} alternations instead of {biases.n_iter}: no bias moves by more than "
      f"{largest_move(biases, longer):.3f} stars; training RMSE {train_rmse[biases.n_iter]:.4f} -> "
      f"{train_rmse[longer.n_iter]:.4f}")

# %% [markdown]
# Read the two lines together: the first alternations do almost all the work, the later ones still nudge some biases
# by the small amounts printed, and twenty times as many alternations change the fit only by the amounts on the
# second line. `n_iter` alternations stop close to the minimum, not exactly at it, which is plenty for a baseline.

# %% [markdown]
# Is the gap to the global mean real, or could another test set reverse it? Both models are scored on the *same* test
# ratings, so we compare their squared errors pair by pair with a **paired bootstrap** over users: resample the test
# users with replacement (all ratings of a user together) many times, recompute the mean difference each time, and
# read the middle 95% of those differences as the interval (section 7 says more about the method). We pass the two
# models' squared errors in the order of their names, with `higher_is_better=False`, so that "beats" means "has the
# smaller errors". The difference is always the first name minus the second, here biases minus global mean: a
# negative difference is how much the biases lower the mean squared error, in stars². Resampling whole users weights
# every rating once, so the difference is the gap between the two models' test MSE (the squares of the RMSEs printed
# with it). The interval covers only the choice of test users, for one fit of each model: it says how much the
# verdict could change on other users, not on another training run. Every interval in this notebook resamples users
# (or, in section 7, users with their events) from one training run; it leaves out the randomness of training. (These
# baselines have no random part in their fit; the random ranking of section 8 is one seeded draw.)

# %%
y_test = test.rating.to_numpy()
squared_error = {name: (y_test - model.predict(test.user_id.to_numpy(), test.item_id.to_numpy())) ** 2
                 for name, model in {"User/item biases": biases, "Global mean": global_mean}.items()}
print(f"Test RMSE: global mean {gm['rmse']:.4f}, user/item biases {bias_metrics['rmse']:.4f} "
      f"(λ = {best_reg:g}).")
print(paired_bootstrap(squared_error["User/item biases"], squared_error["Global mean"], n_boot=N_BOOTSTRAP,
                       seed=SEED, names=("User/item biases", "Global mean"), groups=test.user_id,
                       higher_is_better=False)["verdict"])

# %% [markdown]
# What did the biases learn? First the extremes of $b_i$ over all movies, then among movies with at least
# `MIN_RATINGS` training ratings:

# %%
item_bias = pd.Series(biases.item_bias, index=biases.ids.item_ids).rename("b_i")
n_ratings = train.groupby("item_id").size().rename("ratings")
table = item_bias.to_frame().join(n_ratings).join(titles)
well_known = table[table.ratings >= MIN_RATINGS]
print(f"λ = {best_reg:g}. Ratings behind the 10 highest b_i, all movies: {table.nlargest(10, 'b_i').ratings.tolist()}")
pd.concat({"all movies, highest": table.nlargest(3, "b_i"),
           f"≥ {MIN_RATINGS} ratings, highest": well_known.nlargest(5, "b_i"),
           f"≥ {MIN_RATINGS} ratings, lowest": well_known.nsmallest(5, "b_i")}).round(3)

# %% [markdown]
# With the λ chosen for RMSE, a movie with a few enthusiastic ratings can still reach the very top of $b_i$ (the
# printed counts say how few): good for predicting *those* users' ratings, but a reminder that a bias is an estimate,
# less certain the fewer ratings stand behind it. This will matter when we rank with it. Among well-known movies the
# biases read like a list of classics and flops. User biases spread widely too, over more than three stars from
# the lowest user to the highest:

# %%
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(biases.user_bias, bins=40, color="tab:green")
ax.set_xlabel("user bias $b_u$ (stars above or below the global mean)")
ax.set_ylabel("number of users")
ax.set_title(f"User biases (μ = {biases.mu:.2f})")
plt.show()

# %% [markdown]
# ### Popularity
# For top-K lists, the simplest non-personal model recommends the most-watched items the user has not seen yet.
# It is a strong baseline because of the long tail (notebook 00): most people have watched the famous movies.

# %%
with Timer() as t:
    popularity = Popularity().fit(train)
pop_metrics = evaluate_ranking(popularity.scores, train, test, k=K)
results.record("Popularity", "ranking", pop_metrics, train_seconds=t.seconds)

# %% [markdown]
# ### The bias model as a ranker: the best λ depends on the objective
# The bias model can rank too: sort by $\mu + b_u + b_i$. $b_u$ does not change a user's order, so it recommends the
# movies with the highest item bias, the "best" movies rather than the most watched. Which λ? The one chosen above
# minimised the validation RMSE, a rating objective. For a ranking model the honest choice is the λ with the best
# validation **NDCG@10**, on the *same* fitted models, the same validation split and the same grid. Popularity,
# fitted on the same part of train and scored on the same validation users, is the line to beat:

# %%
val_ndcg = pd.Series({reg: evaluate_ranking(model, fit_part, validation, k=K)[f"ndcg@{K}"]
                      for reg, model in val_models.items()}, name=f"validation NDCG@{K}")
pop_val_ndcg = evaluate_ranking(Popularity().fit(fit_part), fit_part, validation, k=K)[f"ndcg@{K}"]
best_rank_reg = float(val_ndcg.idxmax())
chosen = {"RMSE": (best_reg, "tab:green"), f"NDCG@{K}": (best_rank_reg, "tab:orange")}
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
panels = [(val_rmse, "RMSE", f"NDCG@{K}", "validation RMSE (lower is better)"),
          (val_ndcg, f"NDCG@{K}", "RMSE", f"validation NDCG@{K} (higher is better)")]
for ax, (curve, own, other, label) in zip(axes, panels):
    ax.set_xscale("symlog", linthresh=1)
    ax.plot(curve.index, curve.values, marker="o", color="tab:blue", label="user/item biases")
    (reg, colour), (other_reg, other_colour) = chosen[own], chosen[other]
    ax.plot([reg], [curve[reg]], marker="*", ms=16, color=colour, ls="none", label=f"best for {own}: λ = {reg:g}")
    ax.axvline(other_reg, color=other_colour, ls=":", label=f"best for {other}: λ = {other_reg:g}")
    ax.set_xlabel("regularisation λ (user and item)")
    ax.set_ylabel(label)
axes[1].axhline(pop_val_ndcg, color="grey", ls="--", label="popularity")
axes[0].set_title("Rating objective\n(too little shrinkage overfits, too much underfits)")
axes[1].set_title("Ranking objective\n")
for ax in axes:
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
print(f"Validation NDCG@{K}: λ = {best_reg:g} (chosen for RMSE) {val_ndcg[best_reg]:.4f}; λ = {best_rank_reg:g} "
      f"(chosen for NDCG) {val_ndcg[best_rank_reg]:.4f}; popularity {pop_val_ndcg:.4f}.")
print(f"Validation RMSE: λ = {best_reg:g} {val_rmse[best_reg]:.4f}; λ = {best_rank_reg:g} "
      f"{val_rmse[best_rank_reg]:.4f}.")

# %% [markdown]
# The two objectives pull λ apart. A small λ predicts ratings best, because an item's few ratings do say something
# about how *those* users rate it. But sorted for a list, the same biases put first the movies whose few ratings were
# all high, which few people have rated. A large λ shrinks every rarely rated movie's bias towards 0, so a movie
# reaches the top only when many ratings agree it is good, and those are also the movies many people watch.
#
# The recorded ranking model is therefore the bias model with the λ chosen on validation NDCG, refitted on all of
# train, and scored on test like popularity. The RMSE-tuned model is shown as well, but it is not recorded (in
# parentheses: the validation metric that chose each λ):

# %%
with Timer() as t:
    ranked_biases = BiasBaseline(best_rank_reg, best_rank_reg).fit(train)
bias_rank = evaluate_ranking(ranked_biases, train, test, k=K)
results.record("User/item biases (ranked)", "ranking", bias_rank, train_seconds=t.seconds)
rmse_tuned_rank = evaluate_ranking(biases, train, test, k=K)
ranking_table = pd.DataFrame({
    "Popularity": {f"validation ndcg@{K}": pop_val_ndcg, **pop_metrics},
    f"biases, λ = {best_reg:g} (val. RMSE)": {f"validation ndcg@{K}": val_ndcg[best_reg], **rmse_tuned_rank},
    f"biases (ranked), λ = {best_rank_reg:g} (val. NDCG)": {f"validation ndcg@{K}": val_ndcg[best_rank_reg],
                                                             **bias_rank},
}).rename(index=lambda metric: metric if metric.startswith("validation") else f"test {metric}").round(4)
ranking_table

# %% [markdown]
# Does popularity still beat the ranking-tuned biases, or is the gap noise? The same paired bootstrap over the test
# users, on per-user NDCG@10:

# %%
per_user_ndcg = {name: evaluate_ranking(model, train, test, k=K, per_user=True)[f"ndcg@{K}"]
                 for name, model in {"Popularity": popularity, "User/item biases (ranked)": ranked_biases}.items()}
print(f"Test NDCG@{K}: popularity {pop_metrics[f'ndcg@{K}']:.4f}; user/item biases with λ = {best_reg:g} "
      f"(RMSE-tuned) {rmse_tuned_rank[f'ndcg@{K}']:.4f}, with λ = {best_rank_reg:g} (NDCG-tuned) "
      f"{bias_rank[f'ndcg@{K}']:.4f}.")
print(paired_bootstrap(per_user_ndcg["Popularity"], per_user_ndcg["User/item biases (ranked)"], n_boot=N_BOOTSTRAP,
                       seed=SEED, names=("Popularity", "User/item biases (ranked)"))["verdict"])

# %% [markdown]
# Compare the first line with the validation curves: the same model, with the λ chosen for one objective or the other,
# gives very different rankings (test NDCG@10 0.0028 against 0.1852). What is left between the ranking-tuned biases and
# popularity is within noise: popularity's lead of +0.0046 has an interval that includes zero. Judging the bias model as
# a ranker with its RMSE-tuned λ would have compared popularity with a model tuned for another task, the unequal
# comparison this course avoids. **The best setting depends on the objective**: tune every model on the metric it will
# be judged by. Finally, a few real lists
# for one user, from the three models of the table (✓: a movie in the user's test items):

# %%
user = int(test.user_id.iloc[0])
held_out = set(test[test.user_id == user].item_id)
mark = lambda item: ("✓ " if item in held_out else "") + titles[item]  # noqa: E731  (✓: in the user's test items)
lists = {}
for name, model in {"popularity": popularity, f"biases, λ = {best_reg:g}": biases,
                    f"biases, λ = {best_rank_reg:g}": ranked_biases}.items():
    _, top = top_k(model, train, k=5, user_ids=[user])
    lists[name] = [mark(i) for i in top[0]]
with pd.option_context("display.max_colwidth", None):
    display(pd.DataFrame(lists, index=pd.RangeIndex(1, 6, name=f"user {user}: rank")))

# %% [markdown]
# ## 7. The sequential protocol: what will the user watch next?
# Sequence models (notebook 06) read a user's history in order and predict the next interaction. The standard
# split hides *which* ratings came last, so they get their own protocol, the same for every chapter:
# - order each user's interactions by time, ties by item id (MovieLens stores many ratings with the same second, so
#   part of the order within a rating session is this convention, not the user's);
# - each user's **last 5** interactions are **test events**, the 5 before them **validation events**, the rest is
#   **train** (a user with 10 interactions or fewer stays wholly in train);
# - each event is predicted **one step ahead** from the user's *true* history before it (for the third test event,
#   the history includes the first two, as it would in a live system), ranking every training item the user has not
#   interacted with yet (on ml-latest-small, the movies of the sequential training part, at most the 9,724 rated
#   ones, less those the user has seen);
# - **HR@10**, **NDCG@10** and **MRR@10** are averaged over events. With one relevant item per event, NDCG@10 is
#   $1/\log_2(r+1)$ and MRR@10 is $1/r$ when the item is at rank $r \le 10$, and 0 otherwise.
#
# Models are fitted on train only; validation events tune them; test events are scored once. The cut is per user, not a
# global date: training holds other users' ratings from after a user's test events, so this is a next-item task, not
# a strict forecast of the future. (MovieLens timestamps say when a rating was entered; "watched next" below means
# "rated next".) A toy of three users,
# with one test and one validation event each (timestamps 1, 2, 3, ... in the order listed), shows each test event and
# the history it is predicted from:

# %%
toy_watch = {1: [10, 11, 12, 13, 14], 2: [11, 12, 13, 10], 3: [12, 13, 14, 11, 10]}
toy_sequences = pd.DataFrame([(u, item, t) for u, items in toy_watch.items() for t, item in enumerate(items, 1)],
                             columns=["user_id", "item_id", "timestamp"])
toy_seq = sequential_split(toy_sequences, n_test=1, n_val=1)
_, toy_events, _, toy_histories, _ = sequential_events(toy_seq, "test")
toy_ids = IdMap.from_train(toy_seq.train)
pd.DataFrame({"user": toy_events.user_id, "test event (item)": toy_events.item_id,
              "history it is predicted from": [[int(toy_ids.item_ids[i]) for i in h] for h in toy_histories],
              "validation event": toy_seq.validation.set_index("user_id").item_id.reindex(toy_events.user_id).to_numpy()})

# %% [markdown]
# The validation events are the latest items of the history of the first test event (here, with one of each, the
# last item): the model may *read* them but was not *trained* on them. An item that never occurs in training cannot be scored by any model: it is left out of histories,
# and as an event it counts as a miss, the same for every model.
#
# On the real data, and three baselines, each the simplest model of one idea:
# - **Popularity**: the most-watched training items, whatever the history.
# - **First-order Markov chain**: count how often item $j$ directly follows item $i$ in the training histories and
#   recommend the items that most often followed the user's *last* item (ties by popularity).
# - **Recency-weighted item-kNN**: score item $j$ by $\sum_t \gamma^{\text{age}(t)} \cos(h_t, j)$ over the last 50
#   items $h_t$ of the history, where $\cos$ is the cosine similarity of two items' columns of the *binarised*
#   training user × item matrix (1 if the user rated the item, whatever the stars, else 0) and age 0 is the latest
#   item: recent items count more. $\gamma$ is chosen on validation events.

# %%
seq = sequential_split(ratings, n_test=N_EVENTS, n_val=N_EVENTS)
print(f"train {len(seq.train):,} interactions; {len(seq.validation):,} validation and {len(seq.test):,} test events "
      f"({seq.test.user_id.nunique()} users)")
decay_val = {}
for decay in DECAY_GRID:
    decay_val[decay] = evaluate_sequential(RecencyItemKNN(decay).fit(seq.train), seq, "validation", k=K)[f"ndcg@{K}"]
best_decay = max(decay_val, key=decay_val.get)
print("validation NDCG@10 of recency item-kNN by γ: " + ", ".join(f"{d:g}: {v:.4f}" for d, v in decay_val.items())
      + f"; chosen γ = {best_decay:g}")

sequential_models = {"Popularity": Popularity(), "Markov chain (first order)": MarkovChain(),
                     f"Recency-weighted item-kNN (γ = {best_decay:g})": RecencyItemKNN(best_decay)}
per_event, seq_rows = {}, {}
for name, model in sequential_models.items():
    with Timer() as t:
        model.fit(seq.train)
    val = evaluate_sequential(model, seq, "validation", k=K)
    per_event[name] = evaluate_sequential(model, seq, "test", k=K, per_event=True)
    test_metrics = per_event[name][[f"hit_rate@{K}", f"ndcg@{K}", f"mrr@{K}"]].mean().to_dict()
    results.record(name, "sequential", test_metrics, train_seconds=t.seconds)
    user_means = per_event[name].groupby("user_id")[f"ndcg@{K}"].mean()
    se = user_means.std() / np.sqrt(len(user_means))
    seq_rows[name] = {f"val ndcg@{K}": val[f"ndcg@{K}"], **{f"test {m}": v for m, v in test_metrics.items()},
                      f"test ndcg@{K} std. error (users)": se}
pd.DataFrame(seq_rows).T

# %% [markdown]
# The standard error is computed over users, the standard deviation of the users' mean NDCG over
# $\sqrt{\text{users}}$: a user's five events share a history, so they are not independent. To compare two models we use the
# **paired bootstrap**: both models are scored on the *same* events, so we resample *users* (with replacement, all five
# events of a user together, since they share a history and are not independent) many times, recompute the mean
# difference each time, and read the middle 95% of those differences as the interval. Pairing removes the part of the
# noise that comes from some users being harder to predict than others.

# %%
names = list(sequential_models)
for first, second in [(names[1], names[0]), (names[2], names[0]), (names[2], names[1])]:
    print(paired_bootstrap(per_event[first][f"ndcg@{K}"], per_event[second][f"ndcg@{K}"], n_boot=N_BOOTSTRAP,
                           seed=SEED, names=(first, second), groups=per_event[first]["user_id"])["verdict"])
val_events = {name: evaluate_sequential(sequential_models[name], seq, "validation", k=K, per_event=True)
              for name in names[1:]}
print("On the validation events: " + paired_bootstrap(
    val_events[names[2]][f"ndcg@{K}"], val_events[names[1]][f"ndcg@{K}"], n_boot=N_BOOTSTRAP, seed=SEED,
    names=names[2:0:-1], groups=val_events[names[2]]["user_id"])["verdict"])

# %% [markdown]
# Both history-aware baselines are well above popularity, with intervals far from zero: what a user rated last says a
# lot about what they rate next (franchise sequels, a genre binge). Between the two, compare the last two lines: the
# same pair of models scored on the test events and on the validation events of the same users. On the test events
# the recency-weighted item-kNN beats the Markov chain, with an interval above zero; on the validation events the two
# are within noise, although the item-kNN's number there is, if anything, optimistic (its $\gamma$ was chosen on
# those events). The item-kNN's lead is small and depends on which events are held out, so neither is clearly *the*
# stronger baseline, and every sequence model of the later chapters (notebooks 05 and 06) is compared with both.
#
# ## 8. The cold-start protocol: movies nobody has rated yet
# A collaborative model knows an item only through its interactions, so a brand-new movie is invisible to it. The
# cold-start protocol measures what *content* (genres, titles, tags) can do instead:
# - a seeded 10% of the movies with at least 5 ratings become **new**: *all* their ratings leave training;
# - every user who rated a new movie ranks **only the new movies**, and the new movies they rated are relevant;
# - a model may use item content and everything in training, but no interaction with a new movie.
#
# Two baselines: **random** scores (the floor), and a **genre profile**: the share of each genre among the genre labels
# of the movies a user rated in training, dotted with a new movie's genre vector divided by the square root of its
# number of genres (a cosine-like score, which favours movies that list many genres less than a plain dot product
# would). With about 15 relevant movies per user among 365 new ones, random precision@10 is about 15/365 ≈ 0.04.

# %%
cold_split = cold_start_split(ratings, NEW_ITEM_FRAC, MIN_ITEM_RATINGS, seed=SEED)
print(f"{len(cold_split.new_items)} new movies with {len(cold_split.test):,} ratings by "
      f"{cold_split.test.user_id.nunique()} users ({len(cold_split.test) / cold_split.test.user_id.nunique():.1f} per "
      f"user); {len(cold_split.train):,} ratings stay in training")
cold_models = {"Uniformly random ranking": RandomScores(SEED), "User genre profile (content)": GenreProfile()}
per_user_cold = {}
for name, model in cold_models.items():
    with Timer() as t:
        if isinstance(model, GenreProfile):
            model.fit(cold_split.train, data.items)
    per_user_cold[name] = evaluate_cold_start(model, cold_split, k=K, per_user=True)
    results.record(name, "cold-start", per_user_cold[name].mean().to_dict(), train_seconds=t.seconds)
display(pd.DataFrame({name: frame.mean() for name, frame in per_user_cold.items()}).T)
genre_vs_random = paired_bootstrap(per_user_cold["User genre profile (content)"][f"ndcg@{K}"],
                                   per_user_cold["Uniformly random ranking"][f"ndcg@{K}"], n_boot=N_BOOTSTRAP,
                                   seed=SEED, names=("genre profile", "random"))
print(genre_vs_random["verdict"])

# %% [markdown]
# Genres alone carry real signal about new movies, and the interval says the gain over random is not noise. It is
# still a weak model: it cannot tell two comedies apart. Content models that read titles and tags and learn from
# interactions which content matters are the subject of notebook 05; they must beat this genre profile. The
# protocol has no validation set of its own: a model with settings to tune carves one from training the same way
# (a seeded share of the *training* items becomes "new" for validation).
#
# ## 9. Exercises
# **Exercise 1.** Write `ndcg_one_user(ranked, relevant, k)` for a single user: `ranked` is a list of item ids, best
# first, and `relevant` a set of item ids. Use binary gains and the discount $1/\log_2(r+1)$ for rank $r$ (from 1).

# %%
def ndcg_one_user(ranked, relevant, k):
    raise NotImplementedError


check(ndcg_one_user, [
    (([7, 3, 9, 1, 5], {3, 5, 8}, 5), float(hand.loc["user A", "ndcg@5"]), "user A above: hits at ranks 2 and 5"),
    (([1, 2, 3], {1, 2, 3}, 3), 1.0, "a perfect list has NDCG 1"),
    (([4, 5, 6], {1}, 3), 0.0, "no hit, NDCG 0"),
    (([4, 1, 6], {1, 2, 3, 9}, 2), (1 / np.log2(3)) / (1 + 1 / np.log2(3)),
     "the ideal DCG uses min(number relevant, k) = 2 hits"),
])

# %% [markdown]
# <details><summary>Reveal a solution</summary>
#
# ```python
# def ndcg_one_user(ranked, relevant, k):
#     discounts = 1 / np.log2(np.arange(2, k + 2))
#     dcg = sum(d for item, d in zip(ranked[:k], discounts) if item in relevant)
#     ideal = discounts[: min(len(relevant), k)].sum()
#     return dcg / ideal
# ```
# </details>
#
# **Exercise 2.** Write `item_bias_one_step(ratings, mu, user_bias, reg)`: one update of all item biases from the
# formula in section 6, given the global mean `mu`, a dict `user_bias` {user_id: b_u} and the regularisation `reg`.
# Return a dict {item_id: b_i} (a pandas Series indexed by item id is accepted too).

# %%
def item_bias_one_step(ratings, mu, user_bias, reg):
    raise NotImplementedError


tiny = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [10, 20, 10], "rating": [5.0, 3.0, 4.0]})
check(item_bias_one_step, [
    ((tiny, 4.0, {1: 0.0, 2: 0.0}, 0.0), {10: 0.5, 20: -1.0}, "without shrinkage b_i is the mean residual"),
    ((tiny, 4.0, {1: 0.0, 2: 0.0}, 2.0), {10: 0.25, 20: -1 / 3}, "divide by reg + number of ratings"),
    ((tiny, 4.0, {1: 1.0, 2: -1.0}, 0.0), {10: 0.5, 20: -2.0}, "subtract the user's bias from each rating first"),
], name="item_bias_one_step")

# %% [markdown]
# <details><summary>Reveal a solution</summary>
#
# ```python
# def item_bias_one_step(ratings, mu, user_bias, reg):
#     residual = ratings.rating - mu - ratings.user_id.map(user_bias)
#     grouped = residual.groupby(ratings.item_id)
#     return (grouped.sum() / (reg + grouped.size())).to_dict()
# ```
# </details>
#
# ## 10. Results
# The baselines recorded above are the first rows of the course leaderboard, one table per protocol. Every later
# chapter uses the same splits (stratified, 20% test, seed 42; the sequential and cold-start splits above) and the same
# helpers, so its models can be compared with these numbers directly. The leaderboard keeps only means: a chapter that
# claims to beat a baseline refits it from `recsys_helpers.baselines` on the same split to get the per-user values a
# paired bootstrap needs.

# %% tags=["nbval-check-output"]
for protocol in ("rating", "ranking", "sequential", "cold-start"):
    print(f"{protocol} protocol (test):")
    display(results.table(protocol).drop(columns=["train_seconds", "protocol"]))

# %% [markdown]
# ## Summary
# - Clean with explicit rules (drop missing ids and impossible ratings, de-duplicate, keep the latest re-rating), and
#   check that the real data passes through unchanged.
# - The split decides what a number means. The course's standard split is stratified per user (20%, seed 42);
#   the sequential protocol predicts each user's last 5 interactions one step ahead; the cold-start protocol ranks
#   movies whose ratings all left training.
# - Tune on a validation split carved from training data, never on test.
# - Shrunk user/item biases lower the global mean's RMSE, with a paired-bootstrap interval over users, and popularity
#   is a strong top-K baseline: every model in the course must beat both to earn its complexity.
# - The best setting depends on the objective: the λ that minimises validation RMSE makes the bias model a poor
#   ranker, and the λ chosen on validation NDCG@10 a far better one, within noise of popularity by a paired
#   bootstrap.
#   Tune each model on the metric it is judged by.
# - On sequences, a first-order Markov chain and a recency-weighted item-kNN are far stronger than popularity; on new
#   movies, a genre profile beats random.
# - A claim that one model beats another needs a paired-bootstrap interval over users or events, or it is noise.
#
# ## References
# - Yehuda Koren. 2010. Factor in the Neighbors: Scalable and Accurate Collaborative Filtering. *ACM TKDD* 4(1)
#   (baseline predictors with shrinkage).
# - Kalervo Järvelin and Jaana Kekäläinen. 2002. Cumulated gain-based evaluation of IR techniques. *ACM TOIS* 20(4).
# - Paolo Cremonesi, Yehuda Koren and Roberto Turrin. 2010. Performance of recommender algorithms on top-N
#   recommendation tasks. *RecSys* (popularity as a baseline).
# - Steffen Rendle, Christoph Freudenthaler and Lars Schmidt-Thieme. 2010. Factorizing personalized Markov chains for
#   next-basket recommendation. *WWW* (the Markov chain as a sequential baseline).
# - Malte Ludewig and Dietmar Jannach. 2018. Evaluation of session-based recommendation algorithms. *User Modeling and
#   User-Adapted Interaction* 28 (simple kNN and Markov baselines are hard to beat).
# - Bradley Efron and Robert Tibshirani. 1993. *An Introduction to the Bootstrap*. Chapman & Hall.
