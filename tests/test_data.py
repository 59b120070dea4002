"""recsys_helpers.data: the MovieLens loader (lookup, download, verification, offline) and make_synthetic.

Download tests never leave this machine: a loopback HTTP server (127.0.0.1, a free port) serves a small
MovieLens-shaped zip that the test builds, and ``DATASETS[NAME]`` is monkeypatched to point at it.
"""
from __future__ import annotations

import hashlib
import http.server
import io
import shutil
import socket
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_helpers import data as rd
from recsys_helpers.data import (ChecksumError, DataError, DatasetSpec, RecData, load_movielens, locate_movielens,
                                 make_synthetic, verify_file)

NAME = "ml-latest-small"  # the spec of this name is replaced by one that points at the loopback server
FILES = {  # a MovieLens-shaped data set small enough to build in a test (CSVs with CRLF, as GroupLens ships them)
    "ratings.csv": "userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,3,4.5,964981247\r\n"
                   "2,1,3.0,1445714835\r\n2,2,2.5,1445714900\r\n3,3,5.0,1306463578\r\n",
    "movies.csv": "movieId,title,genres\r\n1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\r\n"
                  "2,Jumanji (1995),Adventure|Children|Fantasy\r\n3,Babylon 5,(no genres listed)\r\n",
    "tags.csv": "userId,movieId,tag,timestamp\r\n2,1,funny,1445714994\r\n",
    "README.txt": "A tiny MovieLens look-alike for the loader's tests.\n",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_zip(files: dict[str, str] = FILES, folder: str = NAME) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for fname, text in files.items():
            zf.writestr(f"{folder}/{fname}", text.encode())
    return buf.getvalue()


def spec_for(url: str, payload: bytes, **overrides) -> DatasetSpec:
    fields = dict(url=url, zip_sha256=sha256(payload), zip_size=len(payload),
                  required=("ratings.csv", "movies.csv", "tags.csv"),
                  file_sha256={f: sha256(t.encode()) for f, t in FILES.items()})
    fields.update(overrides)
    return DatasetSpec(**fields)


def everything_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


class LoopbackServer:
    """Serves ``payload`` at any path; with ``truncate`` it announces the full Content-Length, sends half, and
    closes the connection (an interrupted download)."""

    def __init__(self):
        self.payload, self.truncate, self.requests = b"", False, 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                body = server.payload
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if server.truncate else body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):  # keep the test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def url(self, path: str = f"/{NAME}.zip") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server():
    srv = LoopbackServer()
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Loopback requests go straight to the test's server, even where a proxy is configured."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """An empty course cache in tmp_path, and no RECSYS_DATA_DIR: the loader has nowhere to look but the cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(rd.CACHE_DIR_ENV, str(cache))
    monkeypatch.delenv(rd.DATA_DIR_ENV, raising=False)
    return cache


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on leaving the block: connecting to it is refused


# --------------------------------------------------------------------------------------------- downloading

def test_download_extracts_verifies_caches_and_leaves_no_temp_files(server, cache_dir, monkeypatch):
    payload = build_zip()
    server.payload = payload
    monkeypatch.setitem(rd.DATASETS, NAME, spec_for(server.url(), payload))

    data = load_movielens(NAME)

    assert server.requests == 1
    assert everything_under(cache_dir) == [NAME] + [f"{NAME}/{f}" for f in sorted(FILES)]  # no zip, no temp dir
    for fname, text in FILES.items():
        assert (cache_dir / NAME / fname).read_bytes() == text.encode()
    assert isinstance(data, RecData) and data.name == NAME
    assert len(data.ratings) == 5 and len(data.items) == 3 and len(data.tags) == 1
    assert data.items.set_index("item_id").loc[3, "genres"] == []  # "(no genres listed)"

    server.close()  # the second load reads the verified cache and needs no network
    again = load_movielens(NAME)
    pd.testing.assert_frame_equal(again.ratings, data.ratings)
    assert server.requests == 1


def test_download_straight_into_a_cache_dir(server, tmp_path, monkeypatch):
    payload = build_zip()
    server.payload = payload
    monkeypatch.setitem(rd.DATASETS, NAME, spec_for(server.url(), payload))
    folder = rd.download_movielens(NAME, tmp_path / "here")
    assert folder == tmp_path / "here" / NAME
    assert everything_under(tmp_path / "here") == [NAME] + [f"{NAME}/{f}" for f in sorted(FILES)]


def test_interrupted_download_raises_data_error_and_leaves_nothing(server, cache_dir, monkeypatch):
    payload = build_zip()
    server.payload, server.truncate = payload, True
    monkeypatch.setitem(rd.DATASETS, NAME, spec_for(server.url(), payload))

    with pytest.raises(DataError) as err:
        load_movielens(NAME)

    assert not isinstance(err.value, ChecksumError)
    message = str(err.value)
    assert "incomplete" in message and f"{len(payload) // 2:,}" in message and f"{len(payload):,}" in message
    assert everything_under(cache_dir) == []  # no partial zip, no folder, no temp dir


def test_zip_checksum_mismatch_names_the_file_and_both_digests_and_leaves_nothing(server, cache_dir, monkeypatch):
    payload = build_zip()
    server.payload = payload
    wrong = "0" * 64
    monkeypatch.setitem(rd.DATASETS, NAME, spec_for(server.url(), payload, zip_sha256=wrong))

    with pytest.raises(ChecksumError) as err:
        load_movielens(NAME)

    message = str(err.value)
    assert f"{NAME}.zip" in message and wrong in message and sha256(payload) in message
    assert everything_under(cache_dir) == []


def test_extracted_file_checksum_mismatch_is_refused_and_leaves_nothing(server, cache_dir, monkeypatch):
    """The zip is the expected one but a file inside it is not: the folder is checked before it is kept."""
    payload = build_zip()
    server.payload = payload
    digests = {f: sha256(t.encode()) for f, t in FILES.items()}
    digests["movies.csv"] = "f" * 64
    monkeypatch.setitem(rd.DATASETS, NAME, spec_for(server.url(), payload, file_sha256=digests))

    with pytest.raises(ChecksumError, match="movies.csv"):
        load_movielens(NAME)
    assert everything_under(cache_dir) == []


def test_zip_without_the_expected_folder_is_refused(server, cache_dir, monkeypatch):
    payload = build_zip(folder="something-else")
    server.payload = payload
    monkeypatch.setitem(rd.DATASETS, NAME, spec_for(server.url(), payload))
    with pytest.raises(DataError, match="does not contain"):
        load_movielens(NAME)
    assert everything_under(cache_dir) == []


def test_offline_raises_data_error_saying_where_it_looked(cache_dir, tmp_path, monkeypatch):
    url = f"http://127.0.0.1:{closed_port()}/{NAME}.zip"
    monkeypatch.setitem(rd.DATASETS, NAME, spec_for(url, build_zip()))
    empty = tmp_path / "empty"
    empty.mkdir()

    with pytest.raises(DataError) as err:
        load_movielens(NAME, data_dir=empty)

    message = str(err.value)
    assert not isinstance(err.value, ChecksumError)
    assert "could not be downloaded" in message and url in message
    assert "Looked in" in message
    assert str(empty / NAME) in message and str(cache_dir / NAME) in message
    assert "RECSYS_DATA_DIR" in message
    assert everything_under(cache_dir) == []


def test_offline_message_lists_recsys_data_dir_when_set(cache_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(rd.DATASETS, NAME, spec_for(f"http://127.0.0.1:{closed_port()}/x.zip", build_zip()))
    monkeypatch.setenv(rd.DATA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DataError) as err:
        load_movielens(NAME)
    assert f"$RECSYS_DATA_DIR: {tmp_path / 'nowhere' / NAME}" in str(err.value)


def test_locate_without_download_says_where_it_looked(cache_dir):
    with pytest.raises(DataError, match="not found") as err:
        locate_movielens(NAME, download=False)
    assert str(cache_dir / NAME) in str(err.value)


@pytest.mark.parametrize("call", [load_movielens, locate_movielens, lambda n: rd.download_movielens(n, Path("."))])
def test_unknown_name_lists_the_known_names(call, cache_dir):
    with pytest.raises(ValueError, match="ml-nonexistent") as err:
        call("ml-nonexistent")
    for known in rd.DATASETS:
        assert known in str(err.value)
    assert not cache_dir.exists()


# --------------------------------------------------------------------------------------------- local copies

@pytest.fixture
def local_copy(shared_data_dir, tmp_path) -> Path:
    """A writable copy of the shared ml-latest-small under tmp_path/copy (the data_dir to pass)."""
    root = tmp_path / "copy"
    shutil.copytree(shared_data_dir / NAME, root / NAME)
    for f in (root / NAME).iterdir():
        f.chmod(0o644)
    return root


def test_corrupted_local_ratings_raise_checksum_error_naming_the_file(local_copy, cache_dir):
    ratings = local_copy / NAME / "ratings.csv"
    raw = bytearray(ratings.read_bytes())
    pos = raw.index(b",4.0,")  # one plausible edit: the first 4-star rating becomes 3 stars (still valid CSV)
    raw[pos + 1] = ord("3")
    ratings.write_bytes(bytes(raw))
    expected = rd.DATASETS[NAME].file_sha256["ratings.csv"]

    with pytest.raises(ChecksumError) as err:
        load_movielens(NAME, data_dir=local_copy)

    message = str(err.value)
    assert "ratings.csv" in message and expected in message and sha256(bytes(raw)) in message
    assert not cache_dir.exists()  # nothing was downloaded instead


def test_lookup_order_data_dir_then_env_then_cache(local_copy, tmp_path, cache_dir, monkeypatch):
    other = tmp_path / "other"
    shutil.copytree(local_copy, other)
    monkeypatch.setenv(rd.DATA_DIR_ENV, str(other))
    assert locate_movielens(NAME, data_dir=local_copy) == local_copy / NAME
    assert locate_movielens(NAME) == other / NAME
    monkeypatch.delenv(rd.DATA_DIR_ENV)
    shutil.copytree(local_copy / NAME, cache_dir / NAME)
    assert locate_movielens(NAME, download=False) == cache_dir / NAME


def test_a_folder_missing_a_required_file_is_skipped(local_copy, cache_dir):
    (local_copy / NAME / "tags.csv").unlink()
    with pytest.raises(DataError, match="not found"):
        locate_movielens(NAME, data_dir=local_copy, download=False)


def test_verify_file(tmp_path):
    f = tmp_path / "a.csv"
    f.write_bytes(b"x,y\r\n1,2\r\n")
    verify_file(f, sha256(b"x,y\r\n1,2\r\n"))  # passes silently
    with pytest.raises(ChecksumError, match="a.csv"):
        verify_file(f, "1" * 64)


# --------------------------------------------------------------------------------------------- ml-latest-small

def test_load_ml_latest_small_from_recsys_data_dir(shared_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(rd.DATA_DIR_ENV, str(shared_data_dir))
    monkeypatch.setenv(rd.CACHE_DIR_ENV, str(tmp_path / "cache"))  # it must not fall back on a download
    start = time.perf_counter()
    data = load_movielens()
    seconds = time.perf_counter() - start
    assert seconds < 3.0, f"loading ml-latest-small took {seconds:.2f} s (bar: 3 s)"
    r = data.ratings
    assert data.name == NAME
    assert len(r) == 100_836
    assert r.user_id.nunique() == 610
    assert r.item_id.nunique() == 9_724
    assert len(data.items) == 9_742
    assert len(data.tags) == 3_683
    assert not (tmp_path / "cache").exists()
    assert repr(data) == ("RecData('ml-latest-small': 100,836 ratings, 610 users, 9,724 rated items, "
                          "9,742 items, 3,683 tags)")


def test_ml_latest_small_columns_and_dtypes(movielens):
    r, items, tags = movielens.ratings, movielens.items, movielens.tags
    assert list(r.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert r.dtypes.astype(str).to_dict() == {"user_id": "int64", "item_id": "int64", "rating": "float64",
                                              "timestamp": "int64"}
    assert list(items.columns) == ["item_id", "title", "year", "genres"]
    assert items.item_id.dtype == np.int64 and str(items.year.dtype) == "Int64"
    assert pd.api.types.is_string_dtype(items.title)
    assert list(tags.columns) == ["user_id", "item_id", "tag", "timestamp"]
    assert tags.user_id.dtype == np.int64 and tags.item_id.dtype == np.int64 and tags.timestamp.dtype == np.int64
    assert pd.api.types.is_string_dtype(tags.tag)


def test_ml_latest_small_values(movielens):
    r, items, tags = movielens.ratings, movielens.items, movielens.tags
    assert sorted(r.rating.unique()) == [x / 2 for x in range(1, 11)]
    assert r.rating.mean() == pytest.approx(3.5016, abs=1e-4)
    assert r.groupby("user_id").size().min() >= 20
    first, last = pd.to_datetime([r.timestamp.min(), r.timestamp.max()], unit="s")
    assert str(first.date()) == "1996-03-29" and str(last.date()) == "2018-09-24"
    assert not r.duplicated(["user_id", "item_id"]).any()
    assert set(r.item_id) <= set(items.item_id) and items.item_id.is_unique
    assert tags.user_id.nunique() == 58


def test_ml_latest_small_genres_are_lists_and_years_parsed(movielens):
    items = movielens.items.set_index("item_id")
    assert all(isinstance(g, list) and all(isinstance(x, str) for x in g) for g in items.genres)
    assert items.loc[1, "genres"] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert (items.genres.map(len) == 0).sum() == 34  # the 34 movies with "(no genres listed)"
    assert not any("|" in x or x == "(no genres listed)" for g in items.genres for x in g)
    assert items.loc[1, "title"] == "Toy Story (1995)" and items.loc[1, "year"] == 1995
    assert pd.isna(items.loc[40697, "year"])  # "Babylon 5" has no year
    assert items.year.isna().sum() == 13
    assert items.year.min() == 1902 and items.year.max() == 2018


# --------------------------------------------------------------------------------------------- synthetic

def test_synthetic_has_the_movielens_schema(synthetic, movielens):
    for frame in ("ratings", "items", "tags"):
        real, synth = getattr(movielens, frame), getattr(synthetic, frame)
        assert list(synth.columns) == list(real.columns), frame
        assert synth.dtypes.astype(str).to_dict() == real.dtypes.astype(str).to_dict(), frame
    s = synthetic
    assert s.name == "synthetic"
    assert all(isinstance(g, list) and g and set(g) <= set(rd.GENRES) for g in s.items.genres)
    assert s.items.item_id.is_unique and set(s.ratings.item_id) <= set(s.items.item_id)
    assert s.items.title.str.extract(r"\((\d{4})\)$")[0].astype(int).tolist() == s.items.year.astype(int).tolist()
    assert set(np.unique(s.ratings.rating)) <= {x / 2 for x in range(1, 11)}
    assert not s.ratings.duplicated(["user_id", "item_id"]).any()
    assert (s.ratings.groupby("user_id").timestamp.diff().dropna() >= 0).all()  # timestamps grow per user
    rated = set(zip(s.ratings.user_id, s.ratings.item_id))
    assert len(s.tags) > 0 and set(zip(s.tags.user_id, s.tags.item_id)) <= rated


def test_synthetic_is_seeded():
    kwargs = dict(n_users=60, n_items=80, ratings_per_user=15)
    a, b, c = make_synthetic(seed=7, **kwargs), make_synthetic(seed=7, **kwargs), make_synthetic(seed=8, **kwargs)
    for frame in ("ratings", "items", "tags"):
        pd.testing.assert_frame_equal(getattr(a, frame), getattr(b, frame))
    assert not a.ratings.equals(c.ratings)


def test_synthetic_has_real_structure(synthetic):
    from recsys_helpers.baselines import BiasBaseline, GlobalMean
    from recsys_helpers.evaluation import evaluate_ratings
    from recsys_helpers.split import stratified_split

    train, test = stratified_split(synthetic.ratings, 0.2, 42)
    flat = evaluate_ratings(GlobalMean().fit(train).predict, test)["rmse"]
    bias = evaluate_ratings(BiasBaseline().fit(train).predict, test)["rmse"]
    assert bias < 0.9 * flat  # user and item biases are real: a bias model explains much of the variance

    counts = synthetic.ratings.item_id.value_counts().sort_values(ascending=False)
    head_share = counts.iloc[: len(counts) // 5].sum() / counts.sum()
    assert head_share > 0.4  # a long tail: the top 20 % of items get far more than 20 % of the ratings
    assert counts.max() >= 5 * counts.median()


@pytest.mark.parametrize("kwargs", [dict(n_users=0), dict(n_items=-3), dict(n_factors=0), dict(ratings_per_user=0),
                                    dict(ratings_per_user=81), dict(n_users=2.5), dict(noise=-0.1),
                                    dict(noise=float("nan"))])
def test_synthetic_rejects_bad_arguments(kwargs):
    args = {**dict(n_users=20, n_items=80, ratings_per_user=10), **kwargs}
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_synthetic(**args)
