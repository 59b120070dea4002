# %% [markdown]
# # 10 · Serving and scaling: the leaderboard, a top-K service, approximate search, larger data, two workers
#
# A model that only lives in a notebook recommends nothing. This last notebook takes one of the course's models out
# of the notebook and asks the questions that come after training: how do you save it so that another program,
# without the course's code, gives the same answers? How fast does it answer over HTTP, one user at a time and under
# load? When does exact search over the catalogue become too slow, and what do approximate indexes trade for speed?
# How do training time and memory grow with the data? And how does TensorFlow spread training over several machines?
#
# **In this notebook you will**
# - open with the course leaderboard: every model of every chapter, per protocol;
# - wrap WMF's vectors in a Keras top-K model that removes seen movies inside the graph, save it as `.keras` and
#   export it as a SavedModel;
# - serve the SavedModel over HTTP with FastAPI and uvicorn on loopback, from a process that knows nothing of the
#   course, check that it returns the notebook's lists, load-test it at three levels of concurrency, and compare
#   batch scoring with one request at a time;
# - compare exact top-K search with two approximate-nearest-neighbour libraries (faiss and usearch) on the model's
#   item vectors and on a 200,000-item synthetic catalogue;
# - measure training time per epoch and peak memory of MF and of an MLP recommender on 10⁵ to 10⁷ synthetic ratings,
#   fit the growth on log axes and predict ml-25m;
# - train the same MF with `tf.distribute` in two worker processes and check it reaches the single-worker loss.
#
# **Prerequisites:** notebooks 01 (the protocols), 03 (WMF) and 04 (MLP recommenders); 07 (EASE) for the leaderboard.
# **Time:** about 4 minutes on a 2-core CPU at the default parameters (no GPU needed). The notebook starts
# subprocesses (an HTTP server, two training workers) and stops each of them; they listen only on loopback.

# %% tags=["parameters"]
SEED = 42  # seeds every random number generator and every split
DATASET = "ml-latest-small"
SMOKE = False  # True: fewer requests, a smaller catalogue and smaller data, for a quick end-to-end check
K = 10  # length of every recommended list (@10)
TEST_FRAC = 0.2  # the course's standard split: stratified_split(ratings, TEST_FRAC, SEED)
N_BOOTSTRAP = 1000  # resamples of users in the paired bootstrap of the leaderboard's retrained models
WMF_SETTINGS = {"factors": 128, "alpha": 3.0, "reg": 30.0, "iterations": 20}  # notebook 03's validated settings
EASE_LAMBDA = 200.0  # EASE's λ chosen on validation (notebooks 07 and 09)
# §3 the service and its load test
LOAD_REQUESTS = 1000  # requests at each level of concurrency
CONCURRENCY = [1, 8, 32]  # requests in flight at once
# §4 approximate nearest neighbours on a synthetic catalogue
ANN_ITEMS, ANN_DIM, ANN_QUERIES, ANN_CLUSTERS = 200_000, 64, 1000, 500
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 64  # graph degree and build-time search width of both HNSW indexes
EF_SEARCH = [8, 16, 32, 64, 128, 256]  # search widths tried at query time
# §5 cost as the data grows
COST_SIZES = [10**5, 10**6, 10**7]  # numbers of synthetic ratings
COST_BATCH = 32768  # batch size of both models in the cost measurements (one epoch each)
COST_FACTORS = 32  # MF's factors and the MLP's embedding size
# §6 two workers
DIST_STEPS = 150  # training steps of the one-worker and the two-worker run (global batch 4,096)

# %%
if SMOKE:  # a quick end-to-end check (the tests use it): every step runs, on less
    WMF_SETTINGS = {**WMF_SETTINGS, "factors": 32, "iterations": 3}
    LOAD_REQUESTS, N_BOOTSTRAP = 100, 200
    ANN_ITEMS, ANN_QUERIES, EF_SEARCH = 20_000, 200, [16, 64]
    COST_SIZES, DIST_STEPS = [10**4, 10**5], 20

# %%
from recsys_helpers import env

tf, results = env.start_notebook("10_serving_and_scaling", SEED)
import atexit, json, os, shutil, socket, subprocess, sys, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
from keras import layers, ops
import numpy as np, pandas as pd, matplotlib.pyplot as plt
from IPython.display import display
import faiss, httpx, psutil, usearch.index
from tqdm import tqdm

from recsys_helpers.baselines import Popularity
from recsys_helpers.data import load_movielens, make_synthetic_ratings
from recsys_helpers.evaluation import Timer, evaluate_ranking, paired_bootstrap, top_k
from recsys_helpers.exercises import check
from recsys_helpers.interactions import IdMap
from recsys_helpers.models import EASE, WMF
from recsys_helpers.plots import plot_leaderboard
from recsys_helpers.results import PRIMARY_METRIC, leaderboard, read_results, unfinished
from recsys_helpers.split import stratified_split

pd.set_option("display.width", 200)
pd.set_option("display.max_columns", 20)
WORK = Path(tempfile.mkdtemp(prefix="recsys10_"))  # the model files, the service's code, the workers' data
print("this notebook's files go to", WORK)

# %% [markdown]
# ## 0. Data, split and the model to serve
# The ranking protocol on the standard split (notebook 01). The model this notebook serves is **WMF** (notebook 03):
# its recommendations are a dot product of a user vector and every movie vector, the form that exact and approximate
# nearest-neighbour search both serve. It is trained once here with notebook 03's validated settings.

# %%
data = load_movielens(DATASET)
n_users_all, n_items_all = data.ratings.user_id.nunique(), data.ratings.item_id.nunique()
env.require_memory(4 * 8 * n_users_all * n_items_all + 8 * 3 * min(n_users_all, n_items_all) ** 2,
                   "the dense user × movie matrices and EASE's Gram matrix", DATASET)
train, test = stratified_split(data.ratings, TEST_FRAC, SEED)
ids = IdMap.from_train(train)
X_tr = ids.interactions(train).toarray().astype(np.float32)
titles = data.items.set_index("item_id")["title"]
with Timer() as t_wmf:
    wmf = WMF(seed=SEED, **WMF_SETTINGS).fit(train)
wmf_per_user = evaluate_ranking(wmf.scores, train, test, K, per_user=True)
wmf_metrics = evaluate_ranking(wmf.scores, train, test, K)
print(f"{ids.n_users} users, {ids.n_items} movies in train; WMF trained in {t_wmf.seconds:.1f} s, "
      f"test NDCG@{K} {wmf_metrics[f'ndcg@{K}']:.4f}")

# %% [markdown]
# ## 1. The course leaderboard
# Each notebook records its models' test metrics with `results.record(...)`. Inside a course run (`make course`),
# those records land in the run folder's `results.json`, and `make course` draws them as `leaderboard.png`. When this
# notebook runs inside such a run, after the others, it reads that file; run on its own, it has no run folder to read,
# so it retrains three of the course's models on the ranking protocol (popularity, WMF from notebook 03 and EASE from
# notebook 07, with their notebooks' settings) to show the shape of the board. The next cell prints which it did.

# %%
run_dir = os.environ.get("RECSYS_RUN_DIR")
course_records = [r for r in read_results(run_dir) if r["notebook"] != "10_serving_and_scaling"] if run_dir else []
from_run = len({r["notebook"] for r in course_records}) >= 2
if from_run:
    print(f"The leaderboard of the course run in {run_dir}: {len(course_records)} records from "
          f"{len({r['notebook'] for r in course_records})} notebooks.")
    tables = leaderboard(course_records, unfinished(run_dir))
else:
    print("No course run to read (this notebook ran on its own): three models retrained on the ranking protocol.")
    retrained = {"Popularity": Popularity().fit(train).scores, "WMF": wmf.scores,
                 "EASE": EASE(EASE_LAMBDA).fit(X_tr).scores}
    per_user = {name: (wmf_per_user if name == "WMF" else evaluate_ranking(s, train, test, K, per_user=True))
                for name, s in retrained.items()}
    board = [{"notebook": nb, "model": name, "protocol": "ranking",
              "metrics": {**per_user[name].mean().round(4).to_dict(), **evaluate_ranking(s, train, test, K)}}
             for (name, s), nb in zip(retrained.items(), ["01_preprocessing_and_evaluation",
                                                          "03_matrix_factorisation", "07_autoencoders"])]
    tables = leaderboard(board)
for protocol, table in tables.items():
    metric, lower = PRIMARY_METRIC[protocol]
    print(f"\n{protocol} protocol, sorted by {metric} ({'lower' if lower else 'higher'} is better):")
    cols = [c for c in ["notebook", "model", metric, "recall@10", "coverage@10", "train_seconds"] if c in table]
    display(table[cols].head(12))
fig = plot_leaderboard(tables, PRIMARY_METRIC)
fig.suptitle("The course leaderboard" + ("" if from_run else " (three models retrained here)"), y=1.01)
plt.show()
if not from_run:
    gap = paired_bootstrap(per_user["EASE"][f"ndcg@{K}"], per_user["WMF"][f"ndcg@{K}"], n_boot=N_BOOTSTRAP,
                           seed=SEED, names=("EASE", "WMF"))
    print(f"EASE − WMF, NDCG@{K}: {gap['diff']:+.4f} [{gap['low']:+.4f}, {gap['high']:+.4f}] ({gap['verdict']})")

# %% [markdown]
# A course run shows every protocol: rating (RMSE, lower is better), ranking, sequential, cold start. The board is a
# table of point estimates; the notebooks that trained each model give the paired-bootstrap intervals behind any claim
# that one model beats another (here, for the retrained pair, the line under the figure). This notebook serves WMF
# rather than the leader EASE because WMF's scores are a dot product of small vectors, which the rest of the notebook
# needs: the service stores 128 numbers per user and per movie instead of EASE's 9,000 × 9,000 matrix, and §4's
# approximate search works on exactly this form.

# %% [markdown]
# ## 2. Save and export
# A served model should answer the question the service is asked, "the top K for user *u*", in one call: look the
# user up, score every movie, remove what the user has already seen, keep the best K. The Keras model below does all
# four inside its graph. Its weights are WMF's vectors (not trained here, so `trainable=False`), the matrix of seen
# movies, and the movie ids; an `IntegerLookup` layer turns a MovieLens user id into a row, with row 0 for any id it
# does not know (the `known` output says which).

# %%
@keras.saving.register_keras_serializable(package="course")
class TopKRecommender(keras.Model):
    """user ids → the top-k movie ids and scores, with the movies each user saw in training removed."""

    def __init__(self, user_ids, n_items, dim, k=10, **kwargs):
        super().__init__(**kwargs)
        self.user_ids, self.n_items, self.dim, self.k = [int(u) for u in user_ids], int(n_items), int(dim), int(k)
        n_rows = len(self.user_ids) + 1  # row 0: a user id the model does not know
        self.lookup = layers.IntegerLookup(vocabulary=np.asarray(self.user_ids, "int64"), num_oov_indices=1)
        self.user_vectors = self.add_weight(shape=(n_rows, dim), initializer="zeros", trainable=False, name="P")
        self.item_vectors = self.add_weight(shape=(n_items, dim), initializer="zeros", trainable=False, name="Q")
        self.seen = self.add_weight(shape=(n_rows, n_items), initializer="zeros", trainable=False, name="seen")
        self.item_ids = self.add_weight(shape=(n_items,), initializer="zeros", trainable=False, dtype="int64",
                                        name="item_ids")

    def set_vectors(self, user_vectors, item_vectors, seen, item_ids):
        zero_row = np.zeros((1, self.dim), "float32")
        self.user_vectors.assign(np.vstack([zero_row, user_vectors]).astype("float32"))
        self.item_vectors.assign(np.asarray(item_vectors, "float32"))
        self.seen.assign(np.vstack([np.zeros((1, self.n_items)), seen]).astype("float32"))
        self.item_ids.assign(np.asarray(item_ids, "int64"))
        return self

    def call(self, user_ids):
        row = self.lookup(user_ids)  # 0 for an unknown user
        scores = ops.matmul(ops.take(self.user_vectors, row, axis=0), ops.transpose(self.item_vectors))
        scores = ops.where(ops.take(self.seen, row, axis=0) > 0, -np.inf, scores)  # seen movies never come back
        best, position = ops.top_k(scores, self.k)
        return {"item_ids": ops.take(self.item_ids, position, axis=0), "scores": best, "known": row > 0}

    def get_config(self):  # what .keras needs to rebuild the model before it loads the weights
        return {**super().get_config(), "user_ids": self.user_ids, "n_items": self.n_items, "dim": self.dim,
                "k": self.k}


recommender = TopKRecommender(ids.user_ids, ids.n_items, wmf.item_factors.shape[1], K)
recommender.set_vectors(wmf.user_factors, wmf.item_factors, X_tr > 0, ids.item_ids)
all_users = np.asarray(ids.user_ids, "int64")
in_notebook = recommender(all_users)
_, reference = top_k(wmf.scores, train, K, all_users)  # the course's own top-K (notebook 01) of the same model
print("the Keras model's top-10 equals the course's top_k for all", len(all_users), "users:",
      np.array_equal(in_notebook["item_ids"].numpy(), reference))

# %% [markdown]
# **Two ways to save.** `model.save("….keras")` writes the architecture (from `get_config`) and the weights into
# one zip: reloading it needs Python, Keras and the class (`register_keras_serializable` tells Keras where to find
# it). `model.export(…)` writes a TensorFlow **SavedModel**: the traced graph and its variables, with a serving
# signature. It needs neither the class nor Keras to run: TensorFlow Serving, TFLite converters or any TensorFlow
# program can load it. The signature below takes a batch of int64 user ids.

# %%
keras_path, export_dir = WORK / "recommender.keras", WORK / "recommender_savedmodel"
recommender.save(keras_path)
reloaded = keras.models.load_model(keras_path)
same_keras = np.array_equal(reloaded(all_users)["item_ids"].numpy(), in_notebook["item_ids"].numpy())
recommender.export(export_dir, format="tf_saved_model", verbose=False,
                   input_signature=[tf.TensorSpec([None], tf.int64, name="user_ids")])
size_mb = sum(f.stat().st_size for f in export_dir.rglob("*") if f.is_file()) / 1e6
print(f".keras file: {keras_path.stat().st_size / 1e6:.1f} MB; reloaded, the same top-10 for every user: {same_keras}")
print(f"SavedModel: {size_mb:.1f} MB in {export_dir.name}/ "
      f"({', '.join(sorted(p.name for p in export_dir.iterdir()))})")

# %% [markdown]
# ## 3. A real service
# The check that matters is in **another process that imports TensorFlow and nothing of the course**, and the
# natural such process is the service itself. It is a small FastAPI application: it loads the SavedModel once at
# start-up (and asserts that no course module came with it), and answers two requests:
# - `GET /recommend?user_id=…&k=…`: one user's top k movie ids and their scores;
# - `POST /recommend/batch` with `{"user_ids": [...], "k": …}`: many users' lists in one call to the model.
#
# Two errors are part of its contract: an unknown user gets **404** with a message that names it (not an empty list
# that looks like a real answer), and a k outside 1..10 gets **422**, which FastAPI produces from the declared bounds.
# The next cell writes the application to a file and starts it with uvicorn as a subprocess listening on `127.0.0.1`
# only, at a port the operating system gives as free; then it asks the service for every user's top-10 and compares
# them with the notebook's.

# %%
service_code = '''
"""A top-K recommendation service over an exported SavedModel (MODEL_DIR). It needs TensorFlow, not the course."""
import os
import sys

import tensorflow as tf
from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, Field

MAX_K = int(os.environ.get("MAX_K", "10"))  # the exported model returns this many
model = tf.saved_model.load(os.environ["MODEL_DIR"])
assert not any(name.startswith("recsys_helpers") for name in sys.modules), "the service must not need the course"
app = FastAPI(title="top-K recommendations")


def top_k(user_ids, k):
    out = model.serve(tf.constant(user_ids, tf.int64))
    unknown = [u for u, known in zip(user_ids, out["known"].numpy()) if not known]
    if unknown:
        raise HTTPException(404, f"unknown user_id {unknown[:5]}: this model has no training interactions for it")
    scores = [[round(float(s), 5) for s in row] for row in out["scores"][:, :k].numpy()]
    return out["item_ids"][:, :k].numpy().tolist(), scores


@app.get("/recommend")
def recommend(user_id: int, k: int = Query(10, ge=1, le=MAX_K)):
    items, scores = top_k([user_id], k)
    return {"user_id": user_id, "item_ids": items[0], "scores": scores[0]}


class Batch(BaseModel):
    user_ids: list[int] = Field(min_length=1, max_length=10_000)
    k: int = Field(10, ge=1, le=MAX_K)


@app.post("/recommend/batch")
def recommend_batch(batch: Batch):
    items, scores = top_k(batch.user_ids, batch.k)
    return {"user_ids": batch.user_ids, "item_ids": items, "scores": scores}


@app.get("/health")
def health():
    return {"status": "ok"}
'''
(WORK / "service.py").write_text(service_code)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


port = free_port()
url = f"http://127.0.0.1:{port}"
server = subprocess.Popen([sys.executable, "-m", "uvicorn", "service:app", "--host", "127.0.0.1", "--port", str(port),
                           "--log-level", "warning"], cwd=WORK, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "MODEL_DIR": str(export_dir), "MAX_K": str(K),
                               "TF_CPP_MIN_LOG_LEVEL": "3"})
client = httpx.Client(base_url=url, timeout=30.0, limits=httpx.Limits(max_connections=max(CONCURRENCY)))
started = time.perf_counter()
while True:  # wait for the service to answer (TensorFlow's start takes a few seconds)
    if server.poll() is not None:
        raise RuntimeError(f"the service stopped at start-up:\n{server.stderr.read()[-2000:]}")
    try:
        if client.get("/health").status_code == 200:
            break
    except httpx.TransportError:
        pass
    if time.perf_counter() - started > 120:
        server.kill()
        raise RuntimeError("the service did not answer within 120 s")
    time.sleep(0.25)
atexit.register(server.kill)  # should a later cell fail, the server still ends with this kernel
listening = sorted({f"{c.laddr.ip}:{c.laddr.port}" for c in psutil.Process(server.pid).net_connections("inet")
                    if c.status == psutil.CONN_LISTEN})
print(f"service up in {time.perf_counter() - started:.1f} s at {url}; it listens on {listening}")

with Timer() as t_batch_http:
    served = client.post("/recommend/batch", json={"user_ids": all_users.tolist(), "k": K})
served.raise_for_status()
service_agreement = float(np.mean(np.all(np.array(served.json()["item_ids"]) == in_notebook["item_ids"].numpy(),
                                        axis=1)))
print(f"the service's top-{K} equals the notebook's for {service_agreement:.0%} of the {len(all_users)} users")

# %% [markdown]
# One request, and the errors:

# %%
user_example = int(ids.user_ids[0])
answer = client.get("/recommend", params={"user_id": user_example, "k": 5})
print(f"GET /recommend?user_id={user_example}&k=5 → {answer.status_code}")
print(json.dumps(answer.json()))
print(" ", [titles[i] for i in answer.json()["item_ids"]])
unknown_user = int(data.ratings.user_id.max()) + 1000
errors = {}
for params in [{"user_id": unknown_user, "k": 5}, {"user_id": user_example, "k": 0},
               {"user_id": user_example, "k": -3}, {"user_id": user_example, "k": 11}, {"user_id": "abc", "k": 5}]:
    r = client.get("/recommend", params=params)
    errors[f"user_id={params['user_id']}, k={params['k']}"] = r.status_code
    detail = r.json()["detail"]
    print(f"\n{params} → {r.status_code}:", detail if isinstance(detail, str) else detail[0]["msg"])
r = client.post("/recommend/batch", json={"user_ids": [user_example, unknown_user], "k": 5})
print(f"\nPOST /recommend/batch with user_ids [{user_example}, {unknown_user}] → {r.status_code}:", r.json()["detail"])

# %% [markdown]
# **The load test.** Each level of concurrency sends the same number of single-user requests for random users, with
# that many requests in flight at once (a thread pool sharing one HTTP connection pool). Latency is measured per
# request by the client, from sending to the parsed answer, so it includes HTTP, JSON and the wait in the server's
# queue. Client and server share the same two cores, which is worth remembering when reading the throughput.

# %%
def one_request(user_id):
    start = time.perf_counter()
    r = client.get("/recommend", params={"user_id": int(user_id), "k": K})
    r.raise_for_status()
    assert len(r.json()["item_ids"]) == K
    return time.perf_counter() - start


rng = np.random.default_rng(SEED)
load = {}
for concurrency in CONCURRENCY:
    users = rng.choice(all_users, LOAD_REQUESTS)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(tqdm(pool.map(one_request, users), total=LOAD_REQUESTS, file=sys.stdout, mininterval=2,
                              ncols=90, desc=f"concurrency {concurrency:>2}"))
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    load[concurrency] = {"p50 ms": np.percentile(ms, 50), "p95 ms": np.percentile(ms, 95),
                         "p99 ms": np.percentile(ms, 99), "max ms": ms.max(), "requests/s": LOAD_REQUESTS / wall}
load = pd.DataFrame(load).T.rename_axis("concurrency")
display(load.round(1))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
for q, marker in zip(["p50 ms", "p95 ms", "p99 ms"], "os^"):
    ax1.plot(load.index, load[q], marker=marker, label=q.split()[0])
ax1.axhline(50, color="grey", ls=":", lw=1, label="50 ms")
ax1.set(xscale="log", yscale="log", xticks=CONCURRENCY, xticklabels=CONCURRENCY, xlabel="requests in flight",
        ylabel="latency per request (ms, log scale)", title=f"Latency of one top-{K} request")
ax1.legend()
ax2.plot(load.index, load["requests/s"], marker="o")
ax2.set(xscale="log", xticks=CONCURRENCY, xticklabels=CONCURRENCY, xlabel="requests in flight",
        ylabel="requests per second", title="Throughput", ylim=(0, None))
for ax in (ax1, ax2):
    ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# At concurrency 1 the latency is the service's own cost per request; adding requests in flight raises the
# throughput only as far as the two cores allow, and after that each request mostly waits in a queue, so the latency
# grows with the concurrency while the throughput levels off.
#
# **Batch scoring against one request at a time.** Jobs that precompute every user's list (nightly, say) send many
# users at once: one HTTP round trip and one matrix product for the whole batch instead of one per user. The table
# compares that with one request per user, over HTTP and, without HTTP, calling the same SavedModel in this process.
# The service then stops: the notebook asks it to end and waits, so no process is left behind.

# %%
timed_users = all_users[:LOAD_REQUESTS]  # the same users in all four ways
with Timer() as t_batch_http:
    client.post("/recommend/batch", json={"user_ids": timed_users.tolist(), "k": K}).raise_for_status()
with Timer() as t_single_http:
    for u in timed_users:
        client.get("/recommend", params={"user_id": int(u), "k": K}).raise_for_status()
in_process = tf.saved_model.load(str(export_dir))  # the same SavedModel, called without HTTP
in_process.serve(tf.constant(timed_users[:2]))  # the first call traces the graph: keep it out of the timing
with Timer() as t_batch_graph:
    in_process.serve(tf.constant(timed_users))
with Timer() as t_single_graph:
    for u in timed_users:
        in_process.serve(tf.constant([u], tf.int64))
batch_speed = pd.DataFrame({"seconds": [t_batch_http.seconds, t_single_http.seconds, t_batch_graph.seconds,
                                        t_single_graph.seconds]},
                           index=["HTTP: one batch request", "HTTP: one request per user",
                                  "in process: one call, all users", "in process: one call per user"])
batch_speed["users per second"] = len(timed_users) / batch_speed["seconds"]
print(f"top-{K} lists for {len(timed_users)} users:")
display(batch_speed.round(3))

server.terminate()
server.wait(timeout=30)
client.close()
print("service stopped, exit code", server.returncode, "(-15: ended by the terminate signal)")

_ = results.record(f"WMF (served top-{K})", "ranking",
                   {**wmf_metrics, "service top-10 agreement": service_agreement,
                    "keras reload same": float(same_keras),
                    "p50 ms (concurrency 1)": load.loc[1, "p50 ms"], "p99 ms (concurrency 1)": load.loc[1, "p99 ms"],
                    "requests/s (concurrency 1)": load.loc[1, "requests/s"],
                    "unknown user status": errors[f"user_id={unknown_user}, k=5"],
                    "k=0 status": errors[f"user_id={user_example}, k=0"],
                    "listens only on loopback": float(all(a.startswith("127.0.0.1:") for a in listening))},
                   train_seconds=t_wmf.seconds)

# %% [markdown]
# ## 4. Approximate nearest neighbours
# Serving WMF means finding, for a user vector $p_u$, the K movies with the largest $p_u^\top q_i$: a
# **maximum-inner-product search**. Exact search scores every movie, so its cost grows with the catalogue.
# Approximate indexes skip most of the catalogue: **HNSW** (Malkov and Yashunin, 2018) links every vector to about
# M near neighbours in a layered graph and answers a query by a greedy walk that keeps the `ef` best candidates seen;
# a larger `ef` explores more of the graph, which finds more of the true top-K (recall) and costs time. Two
# maintained libraries with binary wheels implement it: **faiss** (Meta) and **usearch** (Unum). Both are given the
# same graph degree and build width, and the same two threads as exact search; exact search is a batched matrix
# product with a partial sort, and faiss's own brute-force index (`IndexFlatIP`), whichever is faster.
#
# **At the course's size first**: 9,000-odd movies and 128 factors.

# %%
def exact_search(queries, vectors, k, batch=100):
    """The top-k rows of vectors by inner product with each query (a batched matrix product + partial sort)."""
    found = []
    for s in range(0, len(queries), batch):
        scores = queries[s:s + batch] @ vectors.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        found.append(np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1), 1))
    return np.vstack(found)


def recall_at_k(found, truth):
    """The share of each query's true top-k that the index found, averaged over queries."""
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


faiss.omp_set_num_threads(2)


def compare_search(vectors, queries, k, ef_values, label):
    """Exact search against faiss and usearch HNSW: build time, index memory, recall@k and queries/s per ef."""
    rows = []
    with Timer() as t:
        truth = exact_search(queries, vectors, k)
    rows.append({"method": "exact (numpy)", "ef": np.nan, "recall@10": 1.0, "queries/s": len(queries) / t.seconds,
                 "build s": 0.0, "memory MB": vectors.nbytes / 1e6})
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    with Timer() as t:
        flat.search(queries, k)
    rows.append({"method": "exact (faiss flat)", "ef": np.nan, "recall@10": 1.0,
                 "queries/s": len(queries) / t.seconds, "build s": 0.0, "memory MB": vectors.nbytes / 1e6})
    with Timer() as t_build:
        hnsw = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.add(vectors)
    memory = faiss.serialize_index(hnsw).nbytes / 1e6
    for ef in ef_values:
        hnsw.hnsw.efSearch = ef
        with Timer() as t:
            _, found = hnsw.search(queries, k)
        rows.append({"method": "faiss HNSW", "ef": ef, "recall@10": recall_at_k(found, truth),
                     "queries/s": len(queries) / t.seconds, "build s": t_build.seconds, "memory MB": memory})
    with Timer() as t_build:
        graph = usearch.index.Index(ndim=vectors.shape[1], metric="ip", connectivity=HNSW_M,
                                    expansion_add=HNSW_EF_CONSTRUCTION)
        graph.add(np.arange(len(vectors)), vectors, threads=2)
    memory = graph.memory_usage / 1e6
    for ef in ef_values:
        graph.expansion_search = ef
        with Timer() as t:
            found = graph.search(queries, k, threads=2).keys
        rows.append({"method": "usearch HNSW", "ef": ef, "recall@10": recall_at_k(found, truth),
                     "queries/s": len(queries) / t.seconds, "build s": t_build.seconds, "memory MB": memory})
    table = pd.DataFrame(rows)
    table["speed-up over exact"] = table["queries/s"] / table.loc[:1, "queries/s"].max()
    return table.assign(catalogue=label)


item_vectors = np.ascontiguousarray(wmf.item_factors, dtype=np.float32)
user_queries = np.ascontiguousarray(wmf.user_factors, dtype=np.float32)
small = compare_search(item_vectors, user_queries, K, EF_SEARCH, f"WMF, {len(item_vectors):,} movies")
display(small.drop(columns="catalogue").round(3))
print(f"exact search: {1000 / small['queries/s'].iloc[0]:.2f} ms per user; "
      f"one request to the service (§3, median): {load.loc[1, 'p50 ms']:.1f} ms")

# %% [markdown]
# The search here is over all movies, seen ones included (a service would ask for K plus the length of the user's
# history and drop the seen ones afterwards). Even at the course's size the indexes answer more queries per second
# than exact search (the speed-up column). But exact search takes a fraction of a millisecond per user, a small part of
# the service's own cost per request, so its speed cannot be seen from outside; it gets every list exactly right, and
# it needs no index to build and keep in step with every retrained model. At this size exact search wins.
#
# Approximate search earns its place when the catalogue is large. The synthetic catalogue below has 200,000 vectors in
# 64 dimensions, drawn around 500 cluster centres (real item vectors are clustered too), with queries drawn the same
# way.

# %%
rng = np.random.default_rng(SEED)
centres = rng.normal(size=(ANN_CLUSTERS, ANN_DIM)).astype(np.float32)
catalogue = (centres[rng.integers(0, ANN_CLUSTERS, ANN_ITEMS)]
             + 0.5 * rng.normal(size=(ANN_ITEMS, ANN_DIM))).astype(np.float32)
queries = (centres[rng.integers(0, ANN_CLUSTERS, ANN_QUERIES)]
           + 0.5 * rng.normal(size=(ANN_QUERIES, ANN_DIM))).astype(np.float32)
large = compare_search(catalogue, queries, K, EF_SEARCH, f"synthetic, {ANN_ITEMS:,} items")
display(large.drop(columns="catalogue").round(3))

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, table in zip(axes, [small, large]):
    for method, marker in [("faiss HNSW", "o"), ("usearch HNSW", "s")]:
        part = table[table.method == method]
        ax.plot(part["queries/s"], part["recall@10"], marker=marker, label=method)
        for _, row in part.iterrows():
            ax.annotate(f"{row.ef:.0f}", (row["queries/s"], row["recall@10"]), fontsize=7,
                        textcoords="offset points", xytext=(3, -9))
    best_exact = table[table.method.str.startswith("exact")]["queries/s"].max()
    ax.axvline(best_exact, color="k", ls="--", lw=1, label="exact search (recall 1)")
    ax.axvline(5 * best_exact, color="grey", ls=":", lw=1, label="5 × exact")
    ax.axhline(0.95, color="tab:red", ls=":", lw=1, label="recall 0.95")
    ax.set(xscale="log", xlabel="queries per second (log scale, 2 threads)", ylabel="recall@10",
           title=table.catalogue.iloc[0] + " (labels: ef)")
    ax.grid(alpha=0.3)
axes[1].legend(fontsize=8, loc="lower left")
plt.tight_layout()
plt.show()

ann = large[large.method.str.contains("HNSW") & (large["recall@10"] >= 0.95)]
best_ann = ann.sort_values("queries/s").iloc[-1] if len(ann) else large.iloc[2:].sort_values("recall@10").iloc[-1]
print(f"fastest index setting with recall@10 ≥ 0.95 on {ANN_ITEMS:,} items: {best_ann.method}, ef {best_ann.ef:.0f}: "
      f"recall {best_ann['recall@10']:.3f} at {best_ann['queries/s']:,.0f} queries/s, "
      f"{best_ann['speed-up over exact']:.0f} × exact search")
for method in ["faiss HNSW", "usearch HNSW"]:
    part = large[large.method == method]
    results.record(f"{method} ({ANN_ITEMS:,} items)", "ranking",
                   {"recall@10 (best ≥ 5× exact)": part[part["speed-up over exact"] >= 5]["recall@10"].max()
                    if (part["speed-up over exact"] >= 5).any() else 0.0,
                    "build seconds": part["build s"].iloc[0], "memory MB": part["memory MB"].iloc[0]})

# %% [markdown]
# Read the right-hand plot from the right: at small `ef` both indexes answer tens of thousands of queries per second
# but miss part of the true top-10; raising `ef` buys recall with speed. Both reach recall 0.95 well to the right of
# five times exact search's speed. Their recall levels off a little below 1 however large `ef` gets: a graph built
# with a small degree (M) and build width misses some true neighbours for good; a larger M or `efConstruction` raises
# that ceiling and costs a slower build. What the indexes cost is the build (the seconds in the tables, paid again
# whenever the vectors change, that is after every retraining) and memory: the graph's links come on top of the
# vectors themselves (the exact rows' memory).

# %% [markdown]
# ## 5. Cost as the data grows
# How long would notebook 03's MF take on ml-25m, 250 times more ratings than ml-latest-small? Rather than guess, time
# it on growing synthetic data and fit the growth. The package's `make_synthetic_ratings` makes MovieLens-shaped data
# fast: `n / 100` users and `3√n` items for n ratings (10⁶ ratings: 10,000 users, 3,000 items), long-tailed activity
# and popularity, and ratings that depend on a user's taste for a cluster of items. Two models, each trained for one
# epoch with the same batch size and Adam:
# - **MF**: biased matrix factorisation on the ratings (the package's `BiasedMF`, notebook 03);
# - **MLP**: the NCF MLP of notebook 04, user and item embeddings concatenated into two hidden layers.
#
# Memory is the peak of the process's resident set size during the epoch above what it held before, sampled every
# 10 ms by a background thread: it covers TensorFlow's own allocations, which Python's tracing tools do not see.

# %%
def mlp_model(n_users, n_items, dim):
    u_in, i_in = keras.Input((), dtype="int32"), keras.Input((), dtype="int32")
    x = layers.Concatenate()([layers.Embedding(n_users, dim)(u_in), layers.Embedding(n_items, dim)(i_in)])
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dense(32, activation="relu")(x)
    return keras.Model([u_in, i_in], ops.squeeze(layers.Dense(1)(x), -1))


def mf_model(n_users, n_items, dim):
    from recsys_helpers.models import BiasedMF

    pairs = keras.Input((2,), dtype="int32")
    return keras.Model(pairs, BiasedMF(n_users, n_items, dim, reg=0.05, global_mean=3.5)(pairs))


class PeakMemory:
    """``with PeakMemory() as m: ...`` then ``m.mb``: the peak resident memory above the start, in MB."""

    def __enter__(self):
        self.process, self.stop = psutil.Process(), threading.Event()
        self.start_rss = self.peak = self.process.memory_info().rss
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self):
        while not self.stop.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.mb = (self.peak - self.start_rss) / 1e6
        return False


cost_rows = []
with Timer() as t_synthetic:
    biggest = make_synthetic_ratings(max(COST_SIZES), seed=SEED)
print(f"{len(biggest):,} synthetic ratings made in {t_synthetic.seconds:.1f} s")
for n in COST_SIZES:
    ratings = biggest if n == len(biggest) else make_synthetic_ratings(n, seed=SEED)
    u = ratings.user_id.to_numpy(np.int32) - 1
    i = ratings.item_id.to_numpy(np.int32) - 1
    r = ratings.rating.to_numpy(np.float32)
    n_users, n_items = int(u.max()) + 1, int(i.max()) + 1
    for name in ["MF", "MLP"]:
        keras.utils.set_random_seed(SEED)
        model = mf_model(n_users, n_items, COST_FACTORS) if name == "MF" else mlp_model(n_users, n_items,
                                                                                      COST_FACTORS)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        inputs = np.stack([u, i], 1) if name == "MF" else [u, i]
        warm = slice(0, min(n, COST_BATCH + 1000))  # a full and a partial batch: both shapes are traced first
        model.fit(inputs[warm] if name == "MF" else [u[warm], i[warm]], r[warm], batch_size=COST_BATCH, verbose=0)
        with PeakMemory() as memory, Timer() as t:
            model.fit(inputs, r, batch_size=COST_BATCH, epochs=1, verbose=0, shuffle=False)
        cost_rows.append({"ratings": n, "users": n_users, "items": n_items, "model": name,
                          "seconds per epoch": t.seconds, "peak memory MB": memory.mb,
                          "parameters": model.count_params()})
        del model
    del ratings
del biggest
cost = pd.DataFrame(cost_rows)
display(cost.round(3))

# %%
slopes, fits = {}, {}
ML25M = 25_000_095  # ml-25m's ratings
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for name, marker in [("MF", "o"), ("MLP", "s")]:
    part = cost[cost.model == name]
    slope, intercept = np.polyfit(np.log10(part.ratings), np.log10(part["seconds per epoch"]), 1)
    slopes[name], fits[name] = slope, (slope, intercept)
    axes[0].plot(part.ratings, part["seconds per epoch"], marker=marker, ls="", label=f"{name} (slope {slope:.2f})")
    grid = np.array([part.ratings.min(), ML25M])
    axes[0].plot(grid, 10 ** (intercept + slope * np.log10(grid)), ls="--", lw=1)
    axes[1].plot(part.ratings, part["peak memory MB"].clip(lower=1), marker=marker, label=name)
axes[0].axvline(ML25M, color="grey", ls=":", lw=1)
axes[0].text(ML25M, axes[0].get_ylim()[0], " ml-25m", rotation=90, va="bottom", fontsize=8)
axes[0].set(xscale="log", yscale="log", xlabel="ratings (log scale)", ylabel="seconds per epoch (log scale)",
            title="Training time per epoch, fitted on log axes")
axes[1].set(xscale="log", yscale="log", xlabel="ratings (log scale)", ylabel="peak memory above start (MB, log)",
            title="Peak memory during the epoch")
for ax in axes:
    ax.legend()
    ax.grid(alpha=0.3, which="both")
plt.tight_layout()
plt.show()

for name in fits:
    part = cost[cost.model == name]
    memory_slope = np.polyfit(np.log10(part.ratings), np.log10(part["peak memory MB"].clip(lower=1)), 1)[0]
    print(f"{name}: fitted slope of time {slopes[name]:.2f}, of peak memory {memory_slope:.2f}")
# the official sizes of the MovieLens data sets (ratings, users, movies)
dataset_sizes = {"ml-latest-small": (100_836, 610, 9_742), "ml-100k": (100_000, 943, 1_682),
                 "ml-1m": (1_000_209, 6_040, 3_706), "ml-25m": (ML25M, 162_541, 59_047)}
prediction = pd.DataFrame(dataset_sizes, index=["ratings", "users", "movies"]).T
prediction["users × movies (millions)"] = prediction.users * prediction.movies / 1e6
for name, (a, b) in fits.items():
    prediction[f"{name}: s per epoch"] = 10 ** (b + a * np.log10(prediction.ratings))
prediction["from the fit"] = ["interpolated" if min(COST_SIZES) <= n <= max(COST_SIZES) else "extrapolated"
                              for n in prediction.ratings]
display(prediction.round(1))

# %% [markdown]
# A slope of 1 on these axes means time grows in proportion to the data. Both models do a fixed amount of work per
# rating (look up two embeddings, a dot product or a small MLP, the gradient), and the measured slopes are close to 1;
# below it where an epoch of 10⁵ ratings is only a few batches, so what each epoch costs whatever its size weighs more.
# Per rating, the MLP costs more than MF. Peak memory is the noisier measurement (the allocator reuses memory freed by
# the previous runs, which hides part of a small run's needs); over this range it grows less than in proportion to
# the data (the slopes printed under the plot), and at 10⁷ ratings it is a few hundred megabytes: the data arrays
# (and the copy `tf.data` makes of them), the embedding tables and Adam's two slots per parameter. The fit predicts one ml-25m epoch at the time in the table. That is an extrapolation beyond the largest
# measured size (the dashed line past the last point), and ml-25m's real catalogue (59,047 movies) is about four times
# what the `3√n` rule gives at that size; larger tables make each step slower, so read it as a lower bound.
#
# **The `DATASET` parameter.** Every notebook takes it. `ml-100k` is the size of the default and runs in about the
# same time. `ml-1m` has ten times the ratings, so the epochs of these models take about ten times longer (the
# table); the notebooks' dense user × movie matrices and their evaluation over every unseen movie grow with the
# users × movies column instead, 3.8 times the default's. The course does not promise its 4-minute budgets there.
# `ml-25m` would need those dense matrices at 9.6 billion cells, tens of gigabytes: each notebook checks the memory it
# needs in its first cells and stops with a message that says how much, rather than run out of memory part way.

# %% [markdown]
# ## 6. Beyond one machine: two workers with `tf.distribute`
# Data parallelism keeps a copy of the model on every worker; each worker computes gradients on its own share of
# every batch, the workers add their gradients together (an all-reduce), and every copy applies the same update, so
# the copies stay identical. TensorFlow's `MultiWorkerMirroredStrategy` does this across processes that find each
# other through the `TF_CONFIG` environment variable (the addresses of all workers and which one this process is).
#
# Keras 3's `model.fit` does not work under this strategy today (keras-team/keras#20585), so the worker script below
# writes the training loop itself around a Keras model: `strategy.run` runs one step on each worker's share of the
# batch and `strategy.reduce` adds up the losses. Each worker's input pipeline reads its own shard of the shuffled
# data (`dataset.shard(num_input_pipelines, input_pipeline_id)`), so the two workers together see each global batch of
# 4,096 once. The model is an MF with item biases trained on ml-latest-small's training interactions against as many
# random negatives (binary cross-entropy), the same model on one worker and on two.
#
# **Loopback only.** TensorFlow's gRPC server listens on every network interface of the machine, whatever address
# `TF_CONFIG` gives. So the two workers run inside their own network namespace (`unshare --net`, available without
# root where the kernel allows unprivileged user namespaces) whose only interface is loopback: nothing outside the
# machine can reach them. The launcher brings that loopback interface up and starts both workers inside it. Where
# `unshare` is not allowed, the notebook falls back to `MirroredStrategy` over two logical CPU devices in one process
# and says so.

# %%
worker_code = '''
"""Train the same MF with tf.distribute: python workers.py DATA.npz --workers 1 | 2 | --mirrored.
With --workers 2 this process is the launcher: it brings loopback up (inside a fresh network namespace), picks two
free ports, and starts two worker processes with TF_CONFIG. Each run prints one JSON line per worker."""
import argparse, fcntl, json, os, socket, struct, subprocess, sys, time

STEPS, BATCH, FACTORS, LR, SEED = int(os.environ.get("STEPS", "150")), 4096, 32, 0.01, 42


def loopback_up():  # a new network namespace starts with its loopback interface down
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0)))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 1))  # SIOCSIFFLAGS: IFF_UP


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def listening():  # TCP sockets listening in this network namespace
    found = []
    for path in ["/proc/net/tcp", "/proc/net/tcp6"]:
        for line in open(path).read().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":
                addr, port = fields[1].split(":")
                found.append(("*" if set(addr) == {"0"} else addr) + f":{int(port, 16)}")
    return found


def train(data_path, mode, index=0, steps=STEPS):
    import numpy as np
    import tensorflow as tf
    import keras
    from keras import layers, ops

    if mode == "multi-worker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG
    elif mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        strategy = tf.distribute.get_strategy()  # no distribution
    data = np.load(data_path)
    users, items, labels = data["users"], data["items"], data["labels"]
    with strategy.scope():  # variables made here are mirrored on every worker
        keras.utils.set_random_seed(SEED)  # the same initial weights everywhere
        u_in, i_in = keras.Input((), dtype="int32"), keras.Input((), dtype="int32")
        p_u = layers.Embedding(int(data["n_users"]), FACTORS)(u_in)
        q_i = layers.Embedding(int(data["n_items"]), FACTORS)(i_in)
        b_i = layers.Embedding(int(data["n_items"]), 1)(i_in)
        model = keras.Model([u_in, i_in], ops.sum(p_u * q_i, -1) + ops.squeeze(b_i, -1))
        optimizer = keras.optimizers.Adam(LR)

    def dataset_fn(ctx):  # each input pipeline reads its own shard of the same shuffled stream
        ds = tf.data.Dataset.from_tensor_slices((users, items, labels)).shuffle(len(labels), seed=SEED).repeat()
        ds = ds.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
        return ds.batch(ctx.get_per_replica_batch_size(BATCH)).prefetch(2)

    batches = iter(strategy.distribute_datasets_from_function(dataset_fn))

    @tf.function
    def step(batch):
        def replica_step(b):
            bu, bi, by = b
            with tf.GradientTape() as tape:
                logits = model([bu, bi], training=True)
                per_example = tf.nn.sigmoid_cross_entropy_with_logits(labels=by, logits=logits)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=BATCH)  # its sum / 4,096
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)  # inside the strategy: gradients are all-reduced
            return loss, tf.size(bu)
        loss, size = strategy.run(replica_step, args=(batch,))
        return strategy.reduce("SUM", loss, axis=None), strategy.experimental_local_results(size)

    start, seen_here = time.perf_counter(), 0
    for _ in range(steps):
        _, sizes = step(next(batches))
        seen_here += sum(int(s) for s in sizes)
    seconds = time.perf_counter() - start
    logits = np.concatenate([model([users[s:s + 65536], items[s:s + 65536]]).numpy()
                             for s in range(0, len(users), 65536)])
    loss = float(np.mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)))
    report = {"worker": index, "mode": mode, "replicas": strategy.num_replicas_in_sync,
              "examples this worker saw": seen_here, "loss on all training pairs": loss,
              "training seconds": round(seconds, 2), "listening": listening() if mode == "multi-worker" else [],
              "network interfaces": [name for _, name in socket.if_nameindex()]}
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--mirrored", action="store_true")
    parser.add_argument("--index", type=int)  # set by the launcher: this process is worker INDEX
    args = parser.parse_args()
    if args.mirrored:
        print(json.dumps(train(args.data, "mirrored")), flush=True)
    elif args.workers == 1:
        print(json.dumps(train(args.data, "single")), flush=True)
    elif args.index is not None:
        print(json.dumps(train(args.data, "multi-worker", args.index)), flush=True)
    else:  # the launcher
        loopback_up()
        cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(args.workers)]}
        procs = [subprocess.Popen([sys.executable, __file__, args.data, "--workers", str(args.workers),
                                   "--index", str(k)],
                                  env={**os.environ, "TF_CONFIG": json.dumps(
                                      {"cluster": cluster, "task": {"type": "worker", "index": k}})})
                 for k in range(args.workers)]
        sys.exit(max(p.wait(timeout=600) for p in procs))
'''
(WORK / "workers.py").write_text(worker_code)

# the training pairs: every training interaction (label 1) and as many uniformly drawn movies (label 0)
rng = np.random.default_rng(SEED)
pos_u, pos_i = ids.users(train.user_id.to_numpy()), ids.items(train.item_id.to_numpy())
np.savez(WORK / "pairs.npz", users=np.concatenate([pos_u, pos_u]).astype(np.int32),
         items=np.concatenate([pos_i, rng.integers(0, ids.n_items, len(pos_i))]).astype(np.int32),
         labels=np.concatenate([np.ones(len(pos_i)), np.zeros(len(pos_i))]).astype(np.float32),
         n_users=ids.n_users, n_items=ids.n_items)


def run_workers(*args):
    """Run workers.py with these arguments in subprocesses; return its JSON lines (one per worker)."""
    done = subprocess.run(list(args), cwd=WORK, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "STEPS": str(DIST_STEPS)})
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"workers.py failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return lines


sys.path.insert(0, str(WORK))
import workers  # the script above, imported: its one-worker run needs no new process

single = [workers.train(str(WORK / "pairs.npz"), "single", steps=DIST_STEPS)]  # in this process
worker = [sys.executable, "workers.py", "pairs.npz"]
can_isolate = shutil.which("unshare") and subprocess.run(["unshare", "--user", "--map-root-user", "--net", "true"],
                                                         capture_output=True).returncode == 0
with Timer() as t_two:
    if can_isolate:
        two = run_workers("unshare", "--user", "--map-root-user", "--net", *worker, "--workers", "2")
    else:
        print("unshare is not allowed here: falling back to MirroredStrategy over two logical CPUs in one process")
        two = run_workers(*worker, "--mirrored")
two = sorted(two, key=lambda w: w["worker"])
dist = pd.DataFrame(single + two)
dist.insert(0, "run", ["one worker"] + ([f"two workers: worker {w['worker']}" for w in two] if can_isolate
                                        else ["MirroredStrategy, 2 logical CPUs"]))
dist["wall seconds, TensorFlow start included"] = [np.nan] + [t_two.seconds] * len(two)
display(dist.drop(columns=["worker"]).set_index("run"))
loss_one = single[0]["loss on all training pairs"]
loss_two = max(w["loss on all training pairs"] for w in two)
relative_gap = abs(loss_two - loss_one) / loss_one
print(f"loss after {DIST_STEPS} steps: one worker {loss_one:.6f}, two workers {loss_two:.6f} "
      f"(relative difference {relative_gap:.1e})")
only_loopback = all(w["network interfaces"] == ["lo"] for w in two) if can_isolate else True
_ = results.record("MF on two workers (tf.distribute)", "ranking",
                   {"relative loss gap to one worker": relative_gap,
                    "workers isolated on loopback": float(only_loopback),
                    "two-worker seconds": max(w["training seconds"] for w in two),
                    "one-worker seconds": single[0]["training seconds"]})

# %% [markdown]
# What the table shows:
# - **The same loss.** Both workers start from the same weights (the same seed inside the strategy's scope), each
#   computes gradients on half of every global batch, and the all-reduce adds them before every update. Because the
#   two shards of each global batch together are exactly the batch one worker reads (the shuffle is seeded the same
#   way, and `shard` deals its elements alternately), the two runs take the same steps, and their losses differ only
#   by the rounding of sums done in another order.
# - **Each worker saw half the data** (its `examples this worker saw` column) and listened only inside its own
#   namespace: its network interfaces are `lo` alone, and the listening addresses show the gRPC ports bound to every
#   interface there, that is to loopback.
# - **No speed-up.** Two processes on two cores each do half the arithmetic but add a gRPC all-reduce of every
#   gradient at every step; the MF's gradients are small and its steps are short, so the communication dominates.
#   Data parallelism pays when each step's computation is large compared with the gradients exchanged, and when each
#   worker has its own cores or accelerator.
#
# **What changes on a real cluster.** The workers run on separate machines (a job scheduler or Kubernetes writes each
# one's `TF_CONFIG`), the network between them is secured rather than isolated, and each worker reads its own files
# (`tf.data` shards by file rather than by element, so no worker reads the whole data). Recommender models add one more
# problem: their embedding tables, one row per user and per item, can outgrow one machine's memory (hundreds of
# millions of users), and mirroring them on every worker then stops working. The tables are then **sharded**: each row
# lives on one parameter server or device and is fetched by the workers that need it
# (`tf.distribute.experimental.ParameterServerStrategy` with a partitioner, or TensorFlow Recommenders' and
# TorchRec's sharded embedding layers), and only the rows a batch touches travel over the network.

# %% [markdown]
# ## 7. Exercises
# **Exercise 1 · Recall of an approximate search.** Write `recall_of(found, truth)`: for each query, the share of its
# true top-k ids (a row of `truth`) that appear in its row of `found`, averaged over queries. Rows are lists of ids
# of the same length k; order does not matter.

# %% tags=["nbval-check-output"]
def recall_of(found, truth):
    # YOUR CODE HERE
    raise NotImplementedError


check(recall_of, [(([[1, 2, 3]], [[3, 2, 1]]), 1.0), (([[1, 2]], [[3, 4]]), 0.0),
                  (([[1, 2], [5, 6]], [[1, 9], [5, 6]]), 0.75), (([[7, 8, 9, 10]], [[10, 1, 2, 7]]), 0.5)],
      name="recall_of")

# %% [markdown]
# <details><summary>Reveal a solution</summary>
#
# ```python
# def recall_of(found, truth):
#     return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))
# ```
# </details>
#
# **Exercise 2 · Growth on log axes.** Write `growth_slope(sizes, seconds)`: the slope $a$ of the least-squares line
# $\log_{10} \text{seconds} = a \log_{10} \text{size} + b$, and `predict_seconds(sizes, seconds, new_size)`: what that
# line predicts at `new_size`. (A slope of 1: time proportional to the data; 2: four times the time for twice the data.)

# %% tags=["nbval-check-output"]
def growth_slope(sizes, seconds):
    # YOUR CODE HERE
    raise NotImplementedError


def predict_seconds(sizes, seconds, new_size):
    # YOUR CODE HERE
    raise NotImplementedError


check(growth_slope, [(([10, 100, 1000], [1, 10, 100]), 1.0), (([10, 100], [1, 100]), 2.0),
                     (([1e5, 1e6, 1e7], [3.0, 3.0, 3.0]), 0.0)], name="growth_slope")
check(predict_seconds, [(([10, 100], [1, 10], 1000), 100.0), (([10, 100], [1, 100], 1000), 10000.0),
                        (([1e5, 1e6], [2.0, 2.0], 1e9), 2.0)], name="predict_seconds")

# %% [markdown]
# <details><summary>Reveal a solution</summary>
#
# ```python
# def growth_slope(sizes, seconds):
#     return float(np.polyfit(np.log10(sizes), np.log10(seconds), 1)[0])
#
# def predict_seconds(sizes, seconds, new_size):
#     a, b = np.polyfit(np.log10(sizes), np.log10(seconds), 1)
#     return float(10 ** (a * np.log10(new_size) + b))
# ```
# </details>
#
# **Going further (no checks).** (1) Serve EASE instead of WMF: its scores are $x_u B$, a product with a 9,000 × 9,000
# matrix; measure the service's latency and the SavedModel's size, and think about what that means at 10⁶ items.
# (2) Add a `/recommend_batch` endpoint that takes a list of user ids, and measure throughput with batches of 1, 16 and
# 256 users. (3) Serve the top-K from the faiss index instead of the matrix product: ask for K plus the length of the
# user's history and drop the seen movies afterwards; how often does that leave fewer than K? (4) Measure the cost
# curve of SASRec (notebook 06), whose cost per epoch also grows with the sequence length.

# %% [markdown]
# ## 8. Results
# What this notebook recorded: the served model's test metrics with the service's figures, the two indexes on the
# large catalogue, and the distributed run.

# %%
with pd.option_context("display.max_colwidth", 40):
    display(results.table("ranking").drop(columns="protocol").set_index("model").T.dropna(how="all").round(4)
            .fillna(""))
shutil.rmtree(WORK, ignore_errors=True)  # the model files and scripts were written for this run only

# %% [markdown]
# ## Summary
# - **Export what the service needs, and check it from outside.** A Keras model that does the whole request (lookup,
#   scores, seen-movie mask, top-K) exports as one SavedModel; a separate process with only TensorFlow returned the
#   same top-10 for every user. `.keras` is for reloading in Keras; the SavedModel is for serving.
# - **A service is a contract.** Unknown users get a 404 that says why, bad k a 422; latency is measured by
#   percentiles under load, not by one request; and under load, latency grows once the cores are busy.
# - **Exact search first.** At a catalogue of thousands, a matrix product is exact and fast. At hundreds of thousands,
#   HNSW indexes answer many times faster at recall close to 1, for a build time and memory paid after every
#   retraining.
# - **Measure growth, then extrapolate.** Time per epoch of both models grew about in proportion to the data; memory
#   follows the data and the embedding tables.
# - **Distribution is a tool for size, not for speed on one machine.** Two workers reached the same loss as one, and
#   were slower on two cores.
#
# **What to take from the course.** Start every comparison with the baselines (popularity was hard to beat more than
# once); keep one split and one protocol so numbers compare; choose every setting on validation and touch test once;
# report intervals, not just means; and read a model's output before you trust its metric. The simplest models of
# the course (EASE's closed form, WMF) stayed at or near the top of the ranking leaderboard against every deep model.
#
# **Where to go next.** Everything in this course learned from logged data, which was shaped by what an earlier system
# chose to show. **Bandits and reinforcement learning** close that loop: a contextual bandit (LinUCB, Thompson
# sampling) chooses what to show while learning from the answers, trading exploration against exploitation, and
# off-policy evaluation (inverse propensity scoring) estimates a new policy's value from old logs; reinforcement
# learning optimises for long-term engagement instead of the next click. Beyond that: two-tower retrieval with a
# ranking stage on top, large-scale sharded embeddings, and recommendation with large language models.

# %% [markdown]
# ## References
# - Malkov, Y. A., and Yashunin, D. A. (2018). Efficient and robust approximate nearest neighbor search using
#   Hierarchical Navigable Small World graphs. *IEEE TPAMI*.
# - Johnson, J., Douze, M., and Jégou, H. (2019). Billion-scale similarity search with GPUs. *IEEE Transactions on Big
#   Data* (faiss).
# - Vardanian, A. USearch: smaller and faster single-file vector search engine. github.com/unum-cloud/usearch.
# - Hu, Y., Koren, Y., and Volinsky, C. (2008). Collaborative filtering for implicit feedback datasets. *ICDM* (WMF).
# - Steck, H. (2019). Embarrassingly shallow autoencoders for sparse data. *WWW* (EASE).
# - He, X., Liao, L., Zhang, H., Nie, L., Hu, X., and Chua, T.-S. (2017). Neural collaborative filtering. *WWW*.
# - Sergeev, A., and Del Balso, M. (2018). Horovod: fast and easy distributed deep learning in TensorFlow.
#   arXiv:1802.05799 (the ring all-reduce behind data parallelism).
# - TensorFlow guide: Multi-worker training with a custom training loop. tensorflow.org/tutorials/distribute.
# - keras-team/keras#20585: `model.fit` under `MultiWorkerMirroredStrategy` in Keras 3.
# - Li, L., Chu, W., Langford, J., and Schapire, R. E. (2010). A contextual-bandit approach to personalized news
#   article recommendation. *WWW* (LinUCB).
# - Covington, P., Adams, J., and Sargin, E. (2016). Deep neural networks for YouTube recommendations. *RecSys*.
