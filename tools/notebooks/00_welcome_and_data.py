# %% [markdown]
# # 00 · Welcome, and a first look at the data
#
# **Deep Learning for Recommender Systems** is a course of notebooks that goes from collaborative filtering and
# matrix factorisation to MLP, CNN, RNN, autoencoder and GAN recommenders, and on to two-stage systems. Every model is
# trained for real on MovieLens and evaluated under one of the course's shared protocols (the same split and metrics
# for every model of a protocol), and lands on the course leaderboard, one table per protocol.
#
# **In this notebook you will**
# - check that your environment (TensorFlow, Keras 3, CPU or GPU) is ready;
# - load MovieLens `ml-latest-small` through the course's verified loader;
# - measure what makes recommendation hard: sparsity, the long tail of items, very uneven user activity;
# - look at genres over time and at the tags users write.
#
# **Prerequisites:** Python and a little pandas. **Time:** well under a minute on a 2-core CPU.
#
# ### How to use the course
# | # | notebook | topic |
# |---|---|---|
# | 00 | `00_welcome_and_data` | welcome and data (this one) |
# | 01 | `01_preprocessing_and_evaluation` | preprocessing, splits, metrics and baselines |
# | 02 | `02_neighbourhood_cf` | neighbourhood collaborative filtering |
# | 03 | `03_matrix_factorisation` | matrix factorisation |
# | 04 | `04_mlp_recommenders` | MLP recommenders and neural collaborative filtering |
# | 05 | `05_cnn_recommenders` | CNN recommenders: item content, cold start and Caser |
# | 06 | `06_rnn_recommenders` | RNN and attention recommenders: GRU4Rec, LSTM, SASRec and a behaviour + content hybrid |
# | 07 | `07_autoencoders` | autoencoder recommenders: EASE, AutoRec, denoising autoencoders, Mult-VAE and the RBM |
# | 08 | `08_gan_recommenders` | GAN recommenders: the adversarial game, IRGAN, CFGAN and synthetic users |
# | 09 | `09_beyond_accuracy` | beyond accuracy: diversity, novelty, popularity bias, fairness, explanations and privacy |
# | 10 | `10_serving_and_scaling` | serving and scaling: the leaderboard, a top-K service, approximate search, larger data |
# | 11 | `11_two_stage_recommenders` | two-stage recommenders: retrieval and ranking |
#
# Read each notebook top to bottom and run its cells in order. The cell tagged `parameters` just below holds every
# knob; change a value there and rerun, or pass it with papermill to run this notebook alone:
# `python -m recsys_helpers run --only 00 -p NAME=VALUE`. `make course` runs every notebook and builds the leaderboard;
# `make test` runs the test suite.

# %% tags=["parameters"]
SEED = 42  # seeds every random number generator
DATASET = "ml-latest-small"  # or ml-100k, ml-1m, ml-25m (downloaded on first use)
SMOKE = False  # a quick check on less data; this notebook is fast either way, so it changes nothing here
TOP_N = 10  # how many rows the "most ..." tables show
N_GENRES = 6  # genres over time: how many of the biggest genres are drawn
FIRST_DECADE = 1930  # genres over time: the first release decade drawn (earlier decades hold few movies)
MIN_COUNT = 50  # section 9: the fewest ratings a movie needs to enter the second "highest mean rating" table

# %% [markdown]
# ## 1. The environment
# Every notebook of the course starts with one call, `env.start_notebook(name, SEED)`: it starts TensorFlow without
# its start-up log lines, seeds Python, NumPy and Keras, turns on TensorFlow's deterministic ops (so rerunning a
# notebook on the same machine reproduces its numbers), sets the plotting and table style, prints a one-line summary
# of the environment, and returns the object that records the notebook's results (this tour records none).

# %%
from recsys_helpers import env

tf, results = env.start_notebook("00_welcome_and_data", SEED)
import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from recsys_helpers.data import load_movielens
from recsys_helpers.exercises import check

pd.DataFrame(env.describe_environment().items(), columns=["component", "version or value"]).set_index("component")

# %% [markdown]
# A GPU is welcome but never needed: every notebook is sized to run on a laptop CPU in minutes. The backend line says
# which engine Keras 3 uses; the course's model code is written with `keras.layers` and `keras.ops`, so it reads the
# same on any backend, and it is tested on TensorFlow.
#
# ## 2. Loading MovieLens
# [MovieLens](https://grouplens.org/datasets/movielens/) is a set of movie ratings collected by GroupLens Research
# at the University of Minnesota. `ml-latest-small` has about 100,000 ratings from 610 users. The loader looks for the
# files in `RECSYS_DATA_DIR` and in the course's `data/` cache, downloads them if needed, and checks every file's
# sha256 against the official release, so everyone works on exactly the same bytes.

# %%
data = load_movielens(DATASET)
data

# %% [markdown]
# Three tables. **Ratings**: who rated what, how much (0.5 to 5 stars in half steps), and when (seconds since
# 1 January 1970, UTC):

# %%
data.ratings.head()

# %% [markdown]
# **Items**: the movies, with the title as MovieLens gives it, the release year parsed from it, and the genres:

# %%
data.items.head()

# %% [markdown]
# **Tags**: free-text labels some users attached to movies:

# %%
data.tags.head()

# %% [markdown]
# ## 3. How big, and how empty?
# Think of the ratings as a matrix $R$ with one row per user and one column per movie. The **density** is the share of
# cells that hold a rating, $\text{density} = \frac{|\text{ratings}|}{|\text{users}| \cdot |\text{items}|}$, and
# the **sparsity** is $1 - \text{density}$.

# %%
ratings = data.ratings
n_users, n_items, n_ratings = ratings.user_id.nunique(), ratings.item_id.nunique(), len(ratings)
density = n_ratings / (n_users * n_items)
summary = pd.Series({
    "ratings": f"{n_ratings:,}",
    "users": f"{n_users:,}",
    "rated movies": f"{n_items:,}",
    "movies in the catalogue": f"{len(data.items):,}",
    "density": f"{density:.2%}",
    "sparsity": f"{1 - density:.2%}",
    "mean rating": f"{ratings.rating.mean():.3f}",
    "first rating": pd.to_datetime(ratings.timestamp.min(), unit="s").date(),
    "last rating": pd.to_datetime(ratings.timestamp.max(), unit="s").date(),
})
summary.to_frame("value")

# %% [markdown]
# Fewer than two cells in a hundred are filled. A recommender has to guess the other 98 from very little, which is
# why every model in this course shares information across users and items instead of treating each one alone.
#
# ## 4. How do people rate?

# %%
counts = ratings.rating.value_counts().sort_index()
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(counts.index, counts.values, width=0.4, color="tab:blue")
ax.set_xticks(counts.index)
ax.set_xlabel("rating (stars)")
ax.set_ylabel("number of ratings")
ax.set_title(f"Rating distribution (mean {ratings.rating.mean():.2f})")
plt.show()
whole = ratings.rating.isin([1, 2, 3, 4, 5]).mean()
print(f"{whole:.0%} of ratings are whole stars; the most common rating is {counts.idxmax()} stars.")

# %% [markdown]
# Ratings lean positive (people mostly watch and rate movies they expect to like). Are whole stars simply more
# popular than half stars? Part of the answer is the website, not the raters: MovieLens offered only whole stars
# until 2003, when it added half stars (Harper and Konstan 2015 describe the site's changes). The data itself says
# when half stars became possible: at its first half-star rating. So we split the ratings there:

# %%
rated_at = pd.to_datetime(ratings.timestamp, unit="s")
is_half = ratings.rating % 1 != 0
if is_half.any():
    first_half = rated_at[is_half].min()
    later = rated_at >= first_half
    era = np.where(later, "given from the first half star on", "given before the first half star")
    display(pd.DataFrame({"ratings": is_half.groupby(era).size().map("{:,}".format),
                          "share of half stars": is_half.groupby(era).mean().map("{:.1%}".format)}))
    print(f"The first half-star rating in {DATASET} was given on {first_half.date()}. Among the ratings given from "
          f"then on, when half stars could be chosen, {1 - is_half[later].mean():.0%} are whole stars "
          f"(against {whole:.0%} overall).")
else:
    print(f"{DATASET} holds no half-star rating at all: every rating was given on a whole-star scale.")

# %% [markdown]
# Read the rows together: none of the 29,930 ratings given before the first half star is a half star, and 42.9% of
# the 70,906 given from then on are. The overall share of whole stars (70%) mixes a time when nothing else could be
# chosen with a time when half stars could, so it says as much about the interface as about taste; once half stars
# could be chosen, whole stars are still the majority (57%). A dataset collected before 2003, such as ml-100k, has
# whole stars only.
#
# ## 5. The long tail
# Sort the movies from most to least rated. A few blockbusters collect a large share of all ratings; most movies have
# only a handful. This *long tail* (Anderson 2006) is why popularity is a strong baseline and why recommending niche
# items well is hard.

# %%
per_item = ratings.groupby("item_id").size().sort_values(ascending=False)
share = per_item.cumsum() / per_item.sum()
top10_share = share.iloc[int(np.ceil(0.1 * len(per_item))) - 1]

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot(np.arange(1, len(per_item) + 1), per_item.values)
axes[0].set_yscale("log")
axes[0].set_xlabel("movie rank (most rated first)")
axes[0].set_ylabel("number of ratings (log scale)")
axes[0].set_title("Ratings per movie")
axes[1].plot(np.arange(1, len(per_item) + 1) / len(per_item), share.values)
axes[1].axvline(0.1, color="grey", ls="--")
axes[1].set_xlabel("share of movies (most rated first)")
axes[1].set_ylabel("share of all ratings")
axes[1].set_title("Cumulative share of ratings")
plt.tight_layout()
plt.show()
print(f"The 10% most rated movies receive {top10_share:.0%} of all ratings; "
      f"{(per_item == 1).mean():.0%} of rated movies have exactly one rating.")

# %%
most_rated = per_item.head(TOP_N).rename("ratings").to_frame().join(data.items.set_index("item_id")[["title"]])
most_rated.join(ratings.groupby("item_id").rating.mean().round(2).rename("mean rating"))

# %% [markdown]
# ## 6. How active are users?

# %%
per_user = ratings.groupby("user_id").size()
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(per_user, bins=np.logspace(np.log10(per_user.min()), np.log10(per_user.max()), 30), color="tab:green")
ax.set_xscale("log")
ax.set_xlabel("ratings per user (log scale)")
ax.set_ylabel("number of users")
ax.set_title("User activity")
plt.show()
print(f"Every user has at least {per_user.min()} ratings (GroupLens kept only such users); the median is "
      f"{per_user.median():.0f} and the most active user has {per_user.max():,}.")

# %% [markdown]
# Activity is as uneven as popularity. When we average a metric over users (notebook 01), every user counts the same,
# however many ratings they have; when we average over ratings (RMSE), heavy users weigh more.
#
# ## 7. Genres, and how they change over time
# Each movie has one or more genres. Below: how many movies of each genre there are, and how the share of movies
# released per decade in the `N_GENRES` biggest genres has moved.

# %%
genres = data.items[["item_id", "year", "genres"]].explode("genres").dropna(subset=["genres"])
genre_counts = genres.genres.value_counts()
fig, ax = plt.subplots(figsize=(6, 4))
genre_counts.sort_values().plot.barh(ax=ax, color="tab:purple")
ax.set_xlabel("number of movies")
ax.set_ylabel("genre")
ax.set_title("Movies per genre (a movie can have several)")
plt.show()

# %%
decades = genres.dropna(subset=["year"]).assign(decade=lambda d: (d.year // 10 * 10).astype(int))
decades = decades[decades.decade >= FIRST_DECADE]
per_decade = decades.groupby("decade").item_id.nunique()
biggest = genre_counts.index[:N_GENRES]
genre_share = (decades[decades.genres.isin(biggest)].groupby(["decade", "genres"]).item_id.nunique()
               .unstack().reindex(columns=biggest).div(per_decade, axis=0).fillna(0.0))
last_year, last_decade = int(decades.year.max()), int(per_decade.index.max())
partial = last_year < last_decade + 9  # the newest decade is not over in this data
fig, ax = plt.subplots(figsize=(7, 3.5))
genre_share.plot(ax=ax, marker="o", ms=3)
if partial:
    ax.axvspan(last_decade - 3, last_decade + 3, color="grey", alpha=0.15, lw=0)
    ax.annotate(f"{last_decade}s: only\n{last_decade}–{last_year}", (last_decade, ax.get_ylim()[1]),
                ha="center", va="top", fontsize=8)
ax.set_xlabel("release decade")
ax.set_ylabel("share of that decade's movies")
ax.set_title(f"Genres over time (the {N_GENRES} biggest genres)")
ax.legend(title="genre", bbox_to_anchor=(1.02, 1), loc="upper left")
plt.show()
first, last = genre_share.iloc[0], genre_share.iloc[-1]
change = (last - first).sort_values()
print(f"Share of each decade's movies, {genre_share.index[0]}s -> {last_decade}s"
      + (f" (releases up to {last_year} only)" if partial else "") + ":")
print("\n".join(f"  {g}: {first[g]:.2f} -> {last[g]:.2f}" for g in change.index))
print(f"Largest fall: {change.index[0]}; largest rise: {change.index[-1]}.")

# %% [markdown]
# Read the lines with the printed shares: the genre mix of the catalogue is not fixed; it moves with the release
# decade. Romance falls from 0.35 of the 1930s' movies to 0.11 of the 2010s', Drama from 0.54 to 0.39, while Action
# rises from 0.06 to 0.24 and Thriller from 0.08 to 0.22 (the shaded last point covers only part of its decade, so
# read it with care). Why a recommender course cares:
# genres are item *content*, and what a genre label says about a movie, and how common the genre is, depends on when
# the movie was made. So the content models of notebook 05, which build item vectors from titles, genres and tags,
# read the release year beside them.

# %% [markdown]
# Ratings also arrive over time. The catalogue reaches back decades, but the ratings were collected from 1996 on:

# %%
years = pd.to_datetime(ratings.timestamp, unit="s").dt.year
fig, ax = plt.subplots(figsize=(6, 3))
years.value_counts().sort_index().plot.bar(ax=ax, color="tab:orange")
ax.set_xlabel("year the rating was given")
ax.set_ylabel("number of ratings")
ax.set_title("Ratings per year")
plt.show()

# %% [markdown]
# Do the same users come back to rate over the years? Measure it: for each user, the time from their first to their
# last rating.

# %%
span_days = (ratings.groupby("user_id").timestamp.max() - ratings.groupby("user_id").timestamp.min()) / 86_400
spans = pd.cut(span_days, [-np.inf, 1, 30, 365, np.inf],
               labels=["within 24 hours", "1 day to 1 month", "1 month to 1 year", "more than a year"])
ratings_by_span = ratings.user_id.map(spans)
display(pd.DataFrame({"share of users": spans.value_counts(normalize=True, sort=False),
                      "share of ratings": ratings_by_span.value_counts(normalize=True, sort=False)})
        .rename_axis("first to last rating").map("{:.0%}".format))
print(f"{(span_days <= 1).mean():.0%} of users gave all their ratings within 24 hours; "
      f"{(span_days > 365).mean():.0%} rated over more than a year, and they gave "
      f"{(ratings_by_span == 'more than a year').mean():.0%} of all ratings.")

# %% [markdown]
# So "the same users rate over years" is true of some users only. A user who rated everything in one sitting gives a
# random split little to peek at beyond that sitting. For a user who came back over months or years, a random split
# lets a model train on later ratings and be tested on earlier ones: it peeks at that user's future, and the table
# says how much of the data such users hold. Notebook 01 compares random, per-user (stratified) and time-based
# splits, and its sequential protocol, which the sequence models of notebooks 05 (Caser) and 06 use, holds out each
# user's latest interactions.
#
# ## 8. Tags

# %%
tags = data.tags
print(f"{len(tags):,} tags from {tags.user_id.nunique()} users on {tags.item_id.nunique():,} movies.")
tags.tag.str.lower().value_counts().head(TOP_N).rename_axis("tag").to_frame("times used")

# %% [markdown]
# Few users tag, and tags are messy free text. Most of the frequent ones describe content that ratings alone cannot
# ("atmospheric", "surreal", "superhero"), but the most frequent of all, "in netflix queue", is personal bookkeeping,
# not content: a model that learns from tags has to live with such noise. The content models of notebook 05 use
# them, with titles, genres and release years.
#
# ## 9. The best-liked movies, and why averages mislead

# %%
stats = ratings.groupby("item_id").rating.agg(["count", "mean"]).join(data.items.set_index("item_id").title)
best_mean = stats["mean"].max()
at_top = stats[stats["mean"] == best_mean]
print(f"{len(at_top):,} movies share the highest mean rating, {best_mean:g} stars. The number of ratings behind "
      "them:")
print(at_top["count"].value_counts().sort_index().rename_axis("ratings").rename("movies").to_string())
print(f"\nA naive ranking by mean rating puts all {len(at_top):,} first, in no meaningful order; five of the ones "
      "with the fewest ratings:")
print(at_top.sort_values("count", kind="stable").head(5)[["title", "count", "mean"]].to_string(index=False))
top_popular = stats[stats["count"] >= MIN_COUNT].sort_values("mean", ascending=False).head(TOP_N)
print(f"\nHighest mean rating among movies with at least {MIN_COUNT} ratings:")
print(top_popular[["title", "count", "mean"]].round(2).to_string(index=False))

# %% [markdown]
# The top of a ranking by mean rating is a tie between movies that few people rated, all with the highest score; the
# counts above say how many of them rest on a single rating. Requiring a minimum number of ratings helps, but the
# cut-off is arbitrary. Notebook 01 instead *shrinks* each movie's average towards the global mean, more strongly
# when it has few ratings, and shows that how much to shrink depends on the goal: predicting ratings or ranking
# movies.
#
# ## 10. Exercises
# **Exercise 1.** Write `density_of(ratings)`: the share of the user × item matrix that holds a rating, counting only
# users and items that appear in `ratings`. Run the cell: the check says what is wrong, case by case.

# %%
def density_of(ratings: pd.DataFrame) -> float:
    raise NotImplementedError


toy = pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [10, 20, 10, 30], "rating": [4.0, 3.0, 5.0, 1.0]})
check(density_of, [
    ((toy,), 4 / 9, "4 ratings, 3 users, 3 items"),
    ((toy.iloc[:1],), 1.0, "a single rating fills a 1 × 1 matrix"),
    ((ratings,), density, "count distinct users and items, not rows"),
])

# %% [markdown]
# <details><summary>Reveal a solution</summary>
#
# ```python
# def density_of(ratings):
#     return len(ratings) / (ratings.user_id.nunique() * ratings.item_id.nunique())
# ```
# </details>
#
# **Exercise 2.** Write `top_share(ratings, frac)`: the share of all ratings that go to the `frac` most rated items
# (round the number of items up, as in section 5).

# %%
def top_share(ratings: pd.DataFrame, frac: float) -> float:
    raise NotImplementedError


check(top_share, [
    ((toy, 0.3), 2 / 4, "ceil(0.3 × 3 items) = 1 item: the most rated one, item 10, with 2 of the 4 ratings"),
    ((toy, 0.5), 3 / 4, "ceil(0.5 × 3) = 2 items: round the number of items up"),
    ((toy, 1.0), 1.0, "all items hold all ratings"),
    ((ratings, 0.1), top10_share, "sort items by number of ratings, most rated first"),
])

# %% [markdown]
# <details><summary>Reveal a solution</summary>
#
# ```python
# def top_share(ratings, frac):
#     per_item = ratings.groupby("item_id").size().sort_values(ascending=False)
#     n = int(np.ceil(frac * len(per_item)))
#     return per_item.iloc[:n].sum() / per_item.sum()
# ```
# </details>
#
# ## Summary
# - The rating matrix is more than 98% empty; models must share information across users and items.
# - Popularity follows a long tail and user activity is just as uneven, so averages over users and over ratings differ.
# - Ratings lean positive and arrive over two decades, which matters for how we split data (notebook 01).
#
# This notebook trains no model, so it records no results; notebook 01 adds the first rows to the leaderboard.
#
# ## References
# - F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and Context. *ACM TiiS* 5(4).
#   doi:10.1145/2827872
# - Chris Anderson. 2006. *The Long Tail.* Hyperion.
