"""Prototype for chapter 10: exact top-10 by matrix product against faiss HNSW and usearch HNSW on 2e5 items."""
import time, numpy as np, faiss, usearch.index as ui
rng = np.random.default_rng(0)
n, d, nq, k = 200_000, 64, 1000, 10
centres = rng.normal(size=(500, d)).astype("float32")
X = (centres[rng.integers(0, 500, n)] + 0.5 * rng.normal(size=(n, d))).astype("float32")
Qr = (centres[rng.integers(0, 500, nq)] + 0.5 * rng.normal(size=(nq, d))).astype("float32")
t = time.time(); S = Qr @ X.T; exact = np.argpartition(-S, k, axis=1)[:, :k]; te = time.time() - t
print(f"exact: {nq / te:.0f} q/s (batched)")
t = time.time()
for q in Qr[:200]: s = X @ q; np.argpartition(-s, k)[:k]
print(f"exact one at a time: {200 / (time.time() - t):.0f} q/s")
def recall(found): return np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact)])
faiss.omp_set_num_threads(2)
t = time.time(); idx = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT); idx.hnsw.efConstruction = 100; idx.add(X)
print(f"faiss HNSW build {time.time() - t:.1f} s")
for ef in [16, 32, 64, 128, 256]:
    idx.hnsw.efSearch = ef
    t = time.time(); _, I = idx.search(Qr, k); dt = time.time() - t
    print(f"faiss ef {ef}: recall {recall(I):.3f}, {nq / dt:.0f} q/s")
t = time.time(); u = ui.Index(ndim=d, metric="ip", connectivity=16, expansion_add=128); u.add(np.arange(n), X, threads=2)
print(f"usearch build {time.time() - t:.1f} s")
for ef in [16, 32, 64, 128, 256]:
    u.expansion_search = ef
    t = time.time(); m = u.search(Qr, k, threads=2); dt = time.time() - t
    print(f"usearch ef {ef}: recall {recall(m.keys):.3f}, {nq / dt:.0f} q/s")
