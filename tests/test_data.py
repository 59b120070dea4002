"""recsys_helpers.data: the MovieLens loader (lookup, download, verification, manifests, formats, offline),
make_synthetic and write_movielens_folder.

Download tests never leave this machine: a loopback HTTP server (127.0.0.1, a free port) serves a small
MovieLens-shaped zip that the test builds (or an HTML page, a trickle, silence), and ``DATASETS[NAME]`` is
monkeypatched to point at it, or ``RECSYS_DOWNLOAD_URL`` names it. Format tests use hand-written lines in each
official layout (tests/movielens_formats.py) and folders from write_movielens_folder.
"""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movielens_formats import EXPECTED, FORMATS, rows, write_format
from recsys_helpers import data as rd
from recsys_helpers.data import (ChecksumError, DataError, DatasetSpec, RecData, load_movielens, locate_movielens,
                                 make_synthetic, make_synthetic_ratings, verify_file,
                                 write_movielens_folder)

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
    """Serves ``payload`` as ``content_type`` at any path; with ``truncate`` it announces the full Content-Length,
    sends half, and closes the connection (an interrupted download); with ``trickle`` it sends one byte every
    ``trickle`` seconds; with ``stall`` it sends the headers and then nothing."""

    def __init__(self):
        self.payload, self.truncate, self.requests = b"", False, 0
        self.content_type, self.trickle, self.stall = "application/zip", 0.0, False
        self.stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                body = server.payload
                self.send_response(200)
                self.send_header("Content-Type", server.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.flush()
                try:
                    if server.stall:
                        server.stop.wait(30)
                    elif server.trickle:
                        for i in range(len(body)):
                            if server.stop.wait(server.trickle):
                                break
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                    else:
                        self.wfile.write(body[: len(body) // 2] if server.truncate else body)
                        self.wfile.flush()
                except OSError:  # the client gave up
                    pass
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
        self.stop.set()
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


@pytest.fixture(autouse=True)
def never_grouplens(monkeypatch):
    """No test reaches GroupLens, even through a bug: every official URL points at a closed loopback port, and
    download settings from the environment (a CI mirror, say) do not apply."""
    dead = f"http://127.0.0.1:{closed_port()}"
    for name, spec in list(rd.DATASETS.items()):
        monkeypatch.setitem(rd.DATASETS, name, replace(spec, url=f"{dead}/{name}.zip"))
    for var in ("RECSYS_DOWNLOAD_URL", "RECSYS_DOWNLOAD_TIMEOUT", "RECSYS_DOWNLOAD_DEADLINE"):
        monkeypatch.delenv(var, raising=False)


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
    assert everything_under(cache_dir) == [NAME] + [f"{NAME}/{f}" for f in sorted([*FILES, rd.MANIFEST])]  # no zip,
    # no temp dir
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
    assert everything_under(tmp_path / "here") == [NAME] + [f"{NAME}/{f}" for f in sorted([*FILES, rd.MANIFEST])]


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
    monkeypatch.setenv(rd.DATA_DIR_ENV, str(empty))

    with pytest.raises(DataError) as err:
        load_movielens(NAME)

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


@pytest.mark.parametrize("where", ["data_dir", "RECSYS_DATA_DIR", "cache"])
def test_a_required_file_missing_from_the_folder_is_reported_as_missing(where, local_copy, cache_dir, monkeypatch):
    """The first <name>/ folder found is used: a missing file is named, never a reason to look on or download."""
    folder = {"data_dir": local_copy, "RECSYS_DATA_DIR": local_copy, "cache": cache_dir}[where] / NAME
    if where == "cache":
        shutil.copytree(local_copy / NAME, folder)
    if where == "RECSYS_DATA_DIR":
        monkeypatch.setenv(rd.DATA_DIR_ENV, str(local_copy))
    (folder / "movies.csv").unlink()

    with pytest.raises(DataError) as err:
        load_movielens(NAME, data_dir=local_copy if where == "data_dir" else None)

    message = str(err.value)
    assert f"movies.csv is missing from {folder}" in message
    assert "could not be downloaded" not in message and "not found" not in message
    with pytest.raises(DataError, match="movies.csv is missing"):
        locate_movielens(NAME, data_dir=local_copy if where == "data_dir" else None, download=False)


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


def test_synthetic_ratings_have_the_loaders_schema_and_exact_size():
    r = make_synthetic_ratings(20_000, seed=3)
    assert list(r.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert all(r[c].dtype == np.int64 for c in ["user_id", "item_id", "timestamp"]) and r.rating.dtype == np.float64
    assert len(r) == 20_000 and not r.duplicated(["user_id", "item_id"]).any()
    assert r.user_id.between(1, 200).all() and r.item_id.between(1, int(3 * np.sqrt(20_000))).all()
    assert r.rating.between(0.5, 5).all() and ((r.rating * 2) % 1 == 0).all()
    assert r.timestamp.is_monotonic_increasing and (r.user_id.diff().dropna() >= 0).all()
    assert r.user_id.nunique() > 150  # n // 100 users by default, nearly all of them active


def test_synthetic_ratings_are_seeded_and_have_structure():
    a, b, c = make_synthetic_ratings(30_000, seed=1), make_synthetic_ratings(30_000, seed=1), make_synthetic_ratings(
        30_000, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    sparse = make_synthetic_ratings(30_000, n_items=3000, seed=1)
    counts = sparse.item_id.value_counts()
    assert counts.iloc[: len(counts) // 5].sum() > 0.4 * len(sparse)  # a long tail of popularity
    activity = a.user_id.value_counts()
    assert activity.max() >= 4 * activity.median()  # and of activity
    # taste: a user's favourite cluster gets the higher ratings, so more taste means higher ratings on average
    liked = make_synthetic_ratings(30_000, n_items=3000, n_clusters=5, taste=1.0, seed=1).rating.mean()
    neutral = make_synthetic_ratings(30_000, n_items=3000, n_clusters=5, taste=0.0, seed=1).rating.mean()
    assert liked - neutral > 0.3


def test_synthetic_ratings_fill_a_dense_catalogue_without_stalling():
    r = make_synthetic_ratings(1_000, n_users=40, n_items=50, seed=0)  # half of the 2,000 cells
    assert len(r) == 1_000 and not r.duplicated(["user_id", "item_id"]).any()


@pytest.mark.parametrize("kwargs, match", [(dict(n_ratings=0), "n_ratings"), (dict(n_ratings=2.5), "n_ratings"),
                                           (dict(n_users=0), "n_users"), (dict(n_clusters=True), "n_clusters"),
                                           (dict(taste=1.5), "taste"), (dict(n_users=10, n_items=10), "half")])
def test_synthetic_ratings_reject_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_synthetic_ratings(**{"n_ratings": 1000, **kwargs})


# --------------------------------------------------------------------------------------------- every format

INTEGER_STARS = ("ml-100k", "ml-1m")  # formats that hold whole stars


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_official_format_is_read_into_the_common_schema(name, tmp_path, cache_dir):
    write_format(tmp_path, name)
    data = load_movielens(name, data_dir=tmp_path, strict=False)  # a few lines: not the official counts
    for frame in ("ratings", "items", "tags"):
        assert rows(getattr(data, frame)) == EXPECTED[name][frame], frame
    assert data.ratings.dtypes.astype(str).to_dict() == {"user_id": "int64", "item_id": "int64",
                                                         "rating": "float64", "timestamp": "int64"}
    assert list(data.items.columns) == ["item_id", "title", "year", "genres"] and str(data.items.year.dtype) == "Int64"
    assert list(data.tags.columns) == ["user_id", "item_id", "tag", "timestamp"]
    assert data.tags.user_id.dtype == np.int64 and data.tags.timestamp.dtype == np.int64


@pytest.mark.parametrize("name", ["ml-latest-small", "ml-25m"])
def test_csv_columns_are_read_by_header_name(name, tmp_path, cache_dir):
    """A CSV with its columns in another order loads the same frames (not user and item ids swapped)."""
    write_format(tmp_path / "plain", name)
    expected = load_movielens(name, data_dir=tmp_path / "plain", strict=False)
    reordered = {f: pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False).iloc[:, ::-1]
                 .to_csv(index=False, lineterminator="\r\n").encode() if f != "README.txt" else content
                 for f, content in FORMATS[name].items()}
    assert reordered["ratings.csv"].startswith(b"timestamp,rating,movieId,userId\r\n")
    write_format(tmp_path / "reordered", name, reordered)
    data = load_movielens(name, data_dir=tmp_path / "reordered", strict=False)
    for frame in ("ratings", "items", "tags"):
        pd.testing.assert_frame_equal(getattr(data, frame), getattr(expected, frame))


def test_official_ml_latest_small_with_reordered_columns_loads_the_same_frames(local_copy, movielens, cache_dir):
    ratings = local_copy / NAME / "ratings.csv"
    frame = pd.read_csv(ratings, dtype=str)
    frame[["movieId", "timestamp", "userId", "rating"]].to_csv(ratings, index=False, lineterminator="\r\n")
    with pytest.raises(ChecksumError, match="ratings.csv"):  # not the official file any more ...
        load_movielens(NAME, data_dir=local_copy)
    data = load_movielens(NAME, data_dir=local_copy, strict=False)  # ... but the same data, read by column name
    pd.testing.assert_frame_equal(data.ratings, movielens.ratings)


def _edit(name: str, fname: str, edit) -> dict[str, bytes]:
    files = dict(FORMATS[name])
    encoding = "utf-8" if fname.endswith(".csv") else "latin-1"
    files[fname] = edit(files[fname].decode(encoding)).encode(encoding, "surrogateescape")
    return files


MALFORMED = [  # data set, file, edit, line, what the message must say
    ("ml-latest-small", "ratings.csv", lambda t: t.replace("timestamp\r\n", "timestamp,extra\r\n", 1), 1,
     "header is 'userId,movieId,rating,timestamp,extra'"),
    ("ml-latest-small", "ratings.csv", lambda t: t.replace("1,11,0.5,964981247", "1,11,0.5,964981247,7"), 3,
     "5 fields where there should be 4"),
    ("ml-latest-small", "ratings.csv", lambda t: t.replace("1,1,4.0,964982703", "1,1,4.0,964982703,7"), 2,
     "more fields than the 4"),
    ("ml-latest-small", "ratings.csv", lambda t: t[:-len("1306463578\r\n")], 5, "timestamp is missing"),
    ("ml-latest-small", "ratings.csv", lambda t: t[:-len(",2.5,1306463578\r\n")], 5, "rating is missing"),
    ("ml-latest-small", "ratings.csv", lambda t: t.replace("1,11,0.5,", "1,11,,"), 3, "rating is missing"),
    ("ml-latest-small", "ratings.csv", lambda t: t.replace("5.0", "5.5"), 4, "rating is 5.5, outside 0.5..5"),
    ("ml-latest-small", "ratings.csv", lambda t: t.replace("0.5", "0.0"), 3, "rating is 0.0, outside 0.5..5"),
    ("ml-latest-small", "ratings.csv", lambda t: t.replace("\r\n3,1,", "\r\n0,1,"), 5, "userId is 0"),
    ("ml-latest-small", "ratings.csv", lambda t: t.replace("964981247", "abc"), 3, "timestamp is 'abc', not a number"),
    ("ml-latest-small", "ratings.csv", lambda t: t.replace("1,11,", "1,11.5,"), 3, "movieId is 11.5, not a whole"),
    ("ml-latest-small", "movies.csv", lambda t: t.replace(",(no genres listed)", ""), 5, "genres is missing"),
    ("ml-latest-small", "movies.csv", lambda t: t.replace("Amélie", "Am\udce9lie", 1), 4, "byte 0xe9 is not utf-8"),
    ("ml-latest-small", "tags.csv", lambda t: "", 1, "the file is empty"),
    ("ml-25m", "tags.csv", lambda t: t.replace("tag,", "tags,"), 1, "it must name the columns userId, movieId, tag"),
    ("ml-25m", "movies.csv", lambda t: t.replace("\r\n40697,", "\r\n-3,"), 5, "movieId is -3"),
    ("ml-100k", "u.data", lambda t: t.replace("\t1\t878887116", "\t1"), 3, "timestamp is missing"),
    ("ml-100k", "u.data", lambda t: "user_id\titem_id\trating\ttimestamp\n" + t, 1, "user id is 'user_id'"),
    ("ml-100k", "u.data", lambda t: t.replace("196\t242", "0\t242"), 1, "user id is 0"),
    ("ml-100k", "u.item", lambda t: t.replace("|0\n", "\n", 1), 1, "Western flag is missing"),
    ("ml-100k", "u.item", lambda t: t.replace("|0\n", "|2\n", 1), 1, "Western flag is 2, not 0 or 1"),
    ("ml-100k", "u.genre", lambda t: t.replace("War|17", "War|20"), 1, "genre numbers must run 0, 1, 2"),
    ("ml-1m", "ratings.dat", lambda t: t.replace("978302109", "978302109::1"), 2, "5 fields where there should be 4"),
    ("ml-1m", "ratings.dat", lambda t: t.replace("::3::", "::6::"), 2, "Rating is 6, outside 0.5..5"),
    ("ml-1m", "movies.dat", lambda t: t.replace("::Drama\n", "\n"), 3, "Genres is missing"),
]


@pytest.mark.parametrize("name,fname,edit,line,problem", MALFORMED,
                         ids=[f"{m[0]}-{m[1]}-{m[4][:25]}" for m in MALFORMED])
def test_a_malformed_file_names_the_file_the_line_and_the_problem(name, fname, edit, line, problem, tmp_path,
                                                                   cache_dir):
    folder = write_format(tmp_path, name, _edit(name, fname, edit))
    with pytest.raises(DataError) as err:
        load_movielens(name, data_dir=tmp_path, strict=False)
    message = str(err.value)
    assert not isinstance(err.value, ChecksumError)
    assert f"{fname} ({folder / fname}), line {line}: " in message and problem in message, message
    assert f"Delete the folder {folder}" in message  # the fix
    assert err.value.__cause__ is None and (err.value.__context__ is None or err.value.__suppress_context__)  # no
    # pandas traceback behind it


def test_blank_lines_and_crlf_line_endings_carry_no_data(tmp_path, cache_dir):
    files = _edit("ml-1m", "ratings.dat", lambda t: t.replace("\n", "\r\n").replace("\r\n2::", "\r\n\r\n2::", 1))
    write_format(tmp_path, "ml-1m", files)
    assert rows(load_movielens("ml-1m", data_dir=tmp_path, strict=False).ratings) == EXPECTED["ml-1m"]["ratings"]


def test_text_that_pandas_would_read_as_missing_stays_text(tmp_path, cache_dir):
    write_format(tmp_path, NAME)
    tags = load_movielens(NAME, data_dir=tmp_path, strict=False).tags
    assert tags.tag.tolist() == ["NA", "pixar, funny"] and tags.tag.dtype == object


# --------------------------------------------------------------------------------------------- official files

def test_official_counts_refuse_a_modified_copy_where_no_digest_is_known(local_copy, cache_dir, monkeypatch):
    """ml-1m and ml-25m have no per-file digest in the course: the official counts catch a changed file."""
    monkeypatch.setitem(rd.DATASETS, NAME, replace(rd.DATASETS[NAME], file_sha256={}, file_size={}))
    assert len(load_movielens(NAME, data_dir=local_copy).ratings) == 100_836  # the official file passes
    ratings = local_copy / NAME / "ratings.csv"
    ratings.write_bytes(ratings.read_bytes() + b"611,1,4.0,1537799250\r\n")  # one more user

    with pytest.raises(ChecksumError) as err:
        load_movielens(NAME, data_dir=local_copy)

    message = str(err.value)
    assert str(ratings) in message and "not the official ml-latest-small" in message
    assert "100,837 ratings by 611 users of 9,724 items" in message
    assert "100,836 ratings by 610 users of 9,724 items" in message
    assert len(load_movielens(NAME, data_dir=local_copy, strict=False).ratings) == 100_837  # on request


@pytest.mark.parametrize("name", ["ml-1m", "ml-25m"])
def test_a_small_folder_without_manifest_is_not_taken_for_the_official_data_set(name, tmp_path, cache_dir):
    write_format(tmp_path, name)
    official = "{:,} ratings by {:,} users of {:,} items".format(*rd.DATASETS[name].counts)
    with pytest.raises(ChecksumError, match=official):
        load_movielens(name, data_dir=tmp_path)


ML100K_U_DATA = "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"  # the official u.data:
ML100K_U_DATA_SIZE = 1_979_173  # 100,000 lines, tab-separated, LF


@pytest.mark.parametrize("variant", ["extra user 0", "header line", "CRLF line endings", "three more lines"])
def test_a_circulating_modified_ml100k_u_data_is_refused_without_hashing(variant, tmp_path, cache_dir,
                                                                         monkeypatch):
    base = FORMATS["ml-100k"]["u.data"]
    u_data = {"extra user 0": base + b"0\t242\t3\t881250949\n",
              "header line": b"user_id\titem_id\trating\ttimestamp\n" + base,
              "CRLF line endings": base.replace(b"\n", b"\r\n"),
              "three more lines": base + base[:60]}[variant]
    folder = write_format(tmp_path, "ml-100k", {**FORMATS["ml-100k"], "u.data": u_data})
    hashed = []
    monkeypatch.setattr(rd, "sha256_of", lambda path, *a: hashed.append(path) or "0" * 64)

    with pytest.raises(ChecksumError) as err:
        load_movielens("ml-100k", data_dir=tmp_path)

    message = str(err.value)
    assert str(folder / "u.data") in message and "is not the official file" in message
    assert f"{len(u_data):,} bytes where the official one has {ML100K_U_DATA_SIZE:,}" in message
    assert ML100K_U_DATA in message
    assert hashed == []  # the size tells


def test_a_same_size_ml100k_u_data_is_refused_by_its_digest(tmp_path, cache_dir):
    line = b"196\t242\t3\t881250949\n"
    size = ML100K_U_DATA_SIZE
    u_data = (line * (size // len(line) + 1))[:size]  # exactly the official size, not the official content
    assert len(u_data) == size
    write_format(tmp_path, "ml-100k", {**FORMATS["ml-100k"], "u.data": u_data})
    with pytest.raises(ChecksumError) as err:
        load_movielens("ml-100k", data_dir=tmp_path)
    assert ML100K_U_DATA in str(err.value) and sha256(u_data) in str(err.value)


def test_verification_is_not_repeated_in_a_process_while_a_file_is_unchanged(local_copy, cache_dir, monkeypatch):
    calls = []
    real = rd.sha256_of
    monkeypatch.setattr(rd, "sha256_of", lambda path, *a: calls.append(Path(path).name) or real(path, *a))
    load_movielens(NAME, data_dir=local_copy)
    assert sorted(calls) == sorted(rd.DATASETS[NAME].file_sha256)
    calls.clear()
    load_movielens(NAME, data_dir=local_copy)
    assert calls == []
    ratings = local_copy / NAME / "ratings.csv"
    raw = bytearray(ratings.read_bytes())
    raw[raw.index(b",4.0,") + 1] = ord("3")  # same size, new content (and a new mtime)
    ratings.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="ratings.csv"):
        load_movielens(NAME, data_dir=local_copy)
    assert calls == ["ratings.csv"]


def test_ml_latest_small_loads_well_under_a_second(shared_data_dir, cache_dir):
    rd._VERIFIED.clear()  # a first load in a fresh process: every file hashed
    start = time.perf_counter()
    data = load_movielens(NAME, data_dir=shared_data_dir)
    seconds = time.perf_counter() - start
    assert seconds < 1.0, f"loading ml-latest-small took {seconds:.2f} s"
    assert (len(data.ratings), data.ratings.user_id.nunique(), data.ratings.item_id.nunique()) == (100_836, 610, 9_724)


# --------------------------------------------------------------------------------------------- manifests

def test_a_download_writes_a_manifest_that_every_later_read_verifies(server, cache_dir, monkeypatch):
    payload = build_zip()
    server.payload = payload
    monkeypatch.setitem(rd.DATASETS, NAME, spec_for(server.url(), payload, file_sha256={}))  # no known digests
    load_movielens(NAME)

    manifest = json.loads((cache_dir / NAME / rd.MANIFEST).read_text())
    assert manifest["files"] == {f: {"bytes": len(t.encode()), "sha256": sha256(t.encode())} for f, t in FILES.items()}
    assert manifest["source"] == server.url() and manifest["zip_sha256"] == sha256(payload)

    ratings = cache_dir / NAME / "ratings.csv"
    ratings.write_bytes(ratings.read_bytes().replace(b"2,2,2.5,", b"2,2,3.5,"))  # same size, still valid CSV
    with pytest.raises(ChecksumError) as err:
        load_movielens(NAME)
    assert "ratings.csv" in str(err.value) and sha256(FILES["ratings.csv"].encode()) in str(err.value)

    ratings.write_bytes(FILES["ratings.csv"].encode() + b"3,1,4.0,1306463579\r\n")  # a row added
    with pytest.raises(ChecksumError, match=r"ratings.csv .* not the official file: it has \d+ bytes where"):
        load_movielens(NAME)
    assert server.requests == 1


def test_a_damaged_manifest_is_reported(server, cache_dir, monkeypatch):
    payload = build_zip()
    server.payload = payload
    monkeypatch.setitem(rd.DATASETS, NAME, spec_for(server.url(), payload))
    load_movielens(NAME)
    (cache_dir / NAME / rd.MANIFEST).write_text("{not json")
    with pytest.raises(DataError, match=rf"{rd.MANIFEST} is not a valid manifest"):
        load_movielens(NAME)


# --------------------------------------------------------------------------------------------- locating

@pytest.mark.parametrize("problem", ["does not exist", "is a file, not a folder", f"does not contain a folder {NAME}/"])
def test_an_explicit_data_dir_must_hold_the_data_set(problem, tmp_path, shared_data_dir, cache_dir, monkeypatch):
    monkeypatch.setenv(rd.DATA_DIR_ENV, str(shared_data_dir))  # a good copy elsewhere must not be used instead
    data_dir = tmp_path / "given"
    if problem.startswith("is a file"):
        data_dir.write_text("not a folder")
    elif problem.startswith("does not contain"):
        (data_dir / "ml-100k").mkdir(parents=True)
    with pytest.raises(DataError) as err:
        load_movielens(NAME, data_dir=data_dir)
    message = str(err.value)
    assert f"data_dir {data_dir} {problem}" in message and str(data_dir / NAME / "ratings.csv") in message
    assert not cache_dir.exists()


# --------------------------------------------------------------------------------------------- download reliability

def test_a_trickling_server_fails_at_the_deadline_and_leaves_nothing(server, cache_dir, monkeypatch):
    payload = build_zip()
    server.payload, server.trickle = payload, 0.2  # one byte every 0.2 s: never a 30 s read timeout
    monkeypatch.setitem(rd.DATASETS, NAME, spec_for(server.url(), payload))
    monkeypatch.setenv(rd.DEADLINE_ENV, "1")
    start = time.perf_counter()
    with pytest.raises(DataError) as err:
        load_movielens(NAME)
    seconds = time.perf_counter() - start
    assert seconds < 2.5, f"the 1 s deadline took {seconds:.1f} s"
    message = str(err.value)
    assert "deadline of 1 s" in message and rd.DEADLINE_ENV in message and f"of {len(payload):,} bytes" in message
    assert everything_under(cache_dir) == []


def test_deadline_and_timeout_arguments_win_over_the_environment(server, cache_dir, monkeypatch):
    payload = build_zip()
    server.payload, server.stall = payload, True  # headers, then silence
    monkeypatch.setitem(rd.DATASETS, NAME, spec_for(server.url(), payload))
    monkeypatch.setenv(rd.DEADLINE_ENV, "100")
    monkeypatch.setenv(rd.TIMEOUT_ENV, "100")
    start = time.perf_counter()
    with pytest.raises(DataError, match=rf"no data for 0.5 s; {rd.TIMEOUT_ENV}"):
        load_movielens(NAME, timeout=0.5)
    with pytest.raises(DataError, match="deadline of 0.5 s"):
        rd.download_movielens(NAME, cache_dir, deadline=0.5)
    assert time.perf_counter() - start < 3
    monkeypatch.setenv(rd.TIMEOUT_ENV, "0.5")
    with pytest.raises(DataError, match="no data for 0.5 s"):
        load_movielens(NAME)
    assert everything_under(cache_dir) == []


@pytest.mark.parametrize("setting,value", [("timeout", "soon"), ("timeout", "0"), ("deadline", "-1"),
                                           ("deadline", "nan")])
def test_bad_download_settings_are_named(setting, value, cache_dir, monkeypatch):
    env = {"timeout": rd.TIMEOUT_ENV, "deadline": rd.DEADLINE_ENV}[setting]
    monkeypatch.setenv(env, value)
    with pytest.raises(ValueError, match=rf"download {setting} must be a number of seconds > 0; the environment "
                                         rf"variable {env} is '{value}'"):
        rd.download_movielens(NAME, cache_dir)
    with pytest.raises(ValueError, match="the argument is -2"):
        rd.download_movielens(NAME, cache_dir, **{setting: -2})
    assert not cache_dir.exists()


def test_the_download_url_comes_from_the_argument_or_the_environment(server, cache_dir, monkeypatch):
    payload = build_zip()
    server.payload = payload
    dead = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setitem(rd.DATASETS, NAME, spec_for(f"{dead}/official.zip", payload))
    monkeypatch.setenv(rd.URL_ENV, server.url("/mirror/"))
    assert len(load_movielens(NAME).ratings) == 5
    assert server.requests == 1
    shutil.rmtree(cache_dir / NAME)
    with pytest.raises(DataError) as err:
        load_movielens(NAME, base_url=dead)  # the argument wins
    assert f"{dead}/{NAME}.zip" in str(err.value)


@pytest.mark.parametrize("body,content_type", [
    (b"<!DOCTYPE html>\n<html><head><title>Sign in to the network</title></head></html>\n" * 20, "text/html"),
    (bytes(np.random.default_rng(0).integers(0, 256, 1234, dtype=np.uint8)), "application/octet-stream"),
], ids=["html", "random"])
def test_a_response_that_is_not_a_zip_says_what_was_received(body, content_type, server, cache_dir, monkeypatch):
    payload = build_zip()
    server.payload, server.content_type = body, content_type
    monkeypatch.setitem(rd.DATASETS, NAME, spec_for(server.url(), payload))
    with pytest.raises(DataError) as err:
        load_movielens(NAME)
    message = str(err.value)
    start = repr(body[:40])[2:-1]  # printable, escapes for the rest
    assert f"received {len(body):,} bytes of {content_type} starting '{start}...' instead of the " \
           f"{len(payload):,}-byte zip" in message, message
    assert "incomplete" not in message and (content_type != "text/html" or "starting '<!DOCTYPE html>\\n" in message)
    assert not isinstance(err.value, ChecksumError)
    assert everything_under(cache_dir) == []


def _download_folder(cache: Path, owner: str | None, age_s: float = 0) -> Path:
    tmp = cache / f".{NAME}-download-{len(list(cache.glob('.*')))}"
    tmp.mkdir(parents=True)
    (tmp / f"{NAME}.zip").write_bytes(b"PK\x03\x04 half a zip")
    if owner is not None:
        (tmp / "owner").write_text(owner)
    for p in [*tmp.iterdir(), tmp]:
        os.utime(p, (time.time() - age_s, time.time() - age_s))
    return tmp


@pytest.mark.skipif(os.name != "posix", reason="process ids are checked on POSIX only")
def test_stale_download_folders_are_removed_on_the_next_load(cache_dir, local_copy):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    here = socket.gethostname()
    dead = _download_folder(cache_dir, f"{here} {finished.stdout.strip()}")
    old = _download_folder(cache_dir, None, age_s=2 * rd.STALE_AFTER_S)
    live = _download_folder(cache_dir, f"{here} {os.getpid()}")
    elsewhere = _download_folder(cache_dir, "another-host 1")
    fresh = _download_folder(cache_dir, None)
    elsewhere_old = _download_folder(cache_dir, "another-host 1", age_s=2 * rd.STALE_AFTER_S)
    unrelated = cache_dir / "notes-download-x"
    unrelated.mkdir()

    load_movielens(NAME, data_dir=local_copy)  # the data comes from elsewhere; the cache is tidied all the same

    assert not dead.exists() and not old.exists() and not elsewhere_old.exists()
    assert live.exists() and elsewhere.exists() and fresh.exists() and unrelated.exists()


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_a_killed_download_leaves_a_folder_that_the_next_load_removes(server, cache_dir):
    server.payload, server.trickle = build_zip(), 0.05
    env = {**os.environ, rd.URL_ENV: server.url(""), rd.CACHE_DIR_ENV: str(cache_dir), "no_proxy": "127.0.0.1"}
    child = subprocess.Popen([sys.executable, "-c", f"from recsys_helpers.data import *; load_movielens({NAME!r})"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):  # up to 30 s for the child to start downloading
            if list(cache_dir.glob(f".{NAME}-download-*/{NAME}.zip")):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the child process never started its download")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    leftovers = list(cache_dir.glob(f".{NAME}-download-*"))
    assert len(leftovers) == 1 and (leftovers[0] / f"{NAME}.zip").exists()

    with pytest.raises(DataError, match="not found"):
        locate_movielens(NAME, download=False)
    assert everything_under(cache_dir) == []


def test_a_cache_that_cannot_be_created_gives_the_offline_advice(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(rd.CACHE_DIR_ENV, str(blocker / "cache"))
    monkeypatch.delenv(rd.DATA_DIR_ENV, raising=False)
    with pytest.raises(DataError) as err:
        load_movielens(NAME)
    message = str(err.value)
    assert f"the cache folder {blocker / 'cache'} is not writable" in message
    assert rd.CACHE_DIR_ENV in message and "To work offline" in message and rd.DATA_DIR_ENV in message


def test_a_read_only_cache_gives_the_offline_advice(cache_dir, monkeypatch):
    cache_dir.mkdir()

    def refuse(*args, **kwargs):  # what a read-only folder does for a user who is not root
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(rd.tempfile, "mkdtemp", refuse)
    with pytest.raises(DataError) as err:
        load_movielens(NAME)
    message = str(err.value)
    assert f"the cache folder {cache_dir} is not writable (Permission denied)" in message
    assert "To work offline" in message and not isinstance(err.value, PermissionError)


# --------------------------------------------------------------------------------------------- synthetic folders

@pytest.mark.parametrize("name", list(rd.DATASETS))
def test_write_movielens_folder_round_trips_through_the_loader(name, tmp_path, cache_dir):
    folder = write_movielens_folder(tmp_path, name, n_users=30, n_items=40, ratings_per_user=10, seed=3)
    assert folder == tmp_path / name
    data = load_movielens(name, data_dir=tmp_path)  # strict: checked against its own manifest
    synthetic = make_synthetic(30, 40, ratings_per_user=10, seed=3)
    expected, items = synthetic.ratings.copy(), synthetic.items.copy()
    if name in INTEGER_STARS:
        expected["rating"] = np.ceil(expected.rating)
        items["genres"] = [[{"Children": "Children's"}.get(g, g) for g in genres] for genres in items.genres]
    pd.testing.assert_frame_equal(data.ratings, expected)
    pd.testing.assert_frame_equal(data.items, items)
    if name in INTEGER_STARS:
        assert data.tags.empty
    else:
        pd.testing.assert_frame_equal(data.tags, synthetic.tags)
    assert data.name == name


FORMAT_FILES = {"ml-latest-small": ["README.txt", "links.csv", "movies.csv", "ratings.csv", "tags.csv"],
                "ml-25m": ["README.txt", "links.csv", "movies.csv", "ratings.csv", "tags.csv"],
                "ml-100k": ["u.data", "u.genre", "u.item", "u.user"],
                "ml-1m": ["movies.dat", "ratings.dat", "users.dat"]}


@pytest.mark.parametrize("name", list(rd.DATASETS))
def test_write_movielens_folder_writes_the_exact_file_format(name, tmp_path):
    folder = write_movielens_folder(tmp_path, name)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FORMAT_FILES[name], rd.MANIFEST])
    text = {f: (folder / f).read_bytes() for f in FORMAT_FILES[name]}
    if name in ("ml-latest-small", "ml-25m"):
        for f, header in [("ratings.csv", "userId,movieId,rating,timestamp"), ("movies.csv", "movieId,title,genres"),
                          ("tags.csv", "userId,movieId,tag,timestamp"), ("links.csv", "movieId,imdbId,tmdbId")]:
            assert text[f].startswith(header.encode() + b"\r\n") and text[f].count(b"\n") == text[f].count(b"\r\n")
        assert all(len(line.split(b",")) == 4 and line.split(b",")[2][-2:-1] == b"." for line in
                   text["ratings.csv"].splitlines()[1:])  # ratings as "4.0", "3.5"
    elif name == "ml-100k":
        assert b"\r" not in b"".join(text.values())
        items = [line.split(b"|") for line in text["u.item"].decode("latin-1").encode().splitlines()]
        assert {len(fields) for fields in items} == {24} and {f for fields in items for f in fields[5:]} <= {b"0", b"1"}
        assert text["u.genre"].decode("latin-1").split("\n") == [f"{g}|{i}" for i, g in enumerate(
            ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
             "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
             "Western"])] + ["", ""]  # u.genre ends with a blank line
        assert all(len(line.split(b"\t")) == 4 and line.split(b"\t")[2] in b"12345" for line in
                   text["u.data"].splitlines())
        assert {len(line.split(b"|")) for line in text["u.user"].splitlines()} == {5}
    else:
        assert all(len(line.split(b"::")) == 4 and line.split(b"::")[2] in b"12345" for line in
                   text["ratings.dat"].splitlines())
        assert {len(line.split(b"::")) for line in text["movies.dat"].splitlines()} == {3}
        assert {len(line.split(b"::")) for line in text["users.dat"].splitlines()} == {5}
    manifest = json.loads((folder / rd.MANIFEST).read_text())
    assert manifest["synthetic"] is True and manifest["data_set"] == name
    assert sorted(manifest["files"]) == FORMAT_FILES[name]


def test_a_changed_synthetic_folder_is_refused_and_only_loads_with_strict_false(tmp_path, cache_dir):
    folder = write_movielens_folder(tmp_path, "ml-1m")
    ratings = folder / "ratings.dat"
    ratings.write_bytes(ratings.read_bytes() + b"1::1::5::978300760\n")
    with pytest.raises(ChecksumError, match="ratings.dat"):
        load_movielens("ml-1m", data_dir=tmp_path)
    assert len(load_movielens("ml-1m", data_dir=tmp_path, strict=False).ratings) > 0


def test_write_movielens_folder_never_overwrites_real_data(local_copy):
    with pytest.raises(DataError, match="write_movielens_folder did not write"):
        write_movielens_folder(local_copy, NAME)
    assert sha256((local_copy / NAME / "ratings.csv").read_bytes()) == rd.DATASETS[NAME].file_sha256["ratings.csv"]
    again = write_movielens_folder(local_copy.parent / "synthetic", NAME, seed=1)
    assert write_movielens_folder(again.parent, NAME, seed=2) == again  # its own folder: rewritten


def test_write_movielens_folder_rejects_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="ml-nonexistent"):
        write_movielens_folder(tmp_path, "ml-nonexistent")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------- probes (issue 25)

def test_a_damaged_download_does_not_advise_deleting_the_temporary_folder(server, cache_dir, monkeypatch):
    payload = build_zip()
    server.payload = payload
    monkeypatch.setitem(rd.DATASETS, NAME, spec_for(server.url(), payload, zip_sha256="0" * 64))
    with pytest.raises(ChecksumError) as err:
        load_movielens(NAME)
    assert "-download-" not in str(err.value) and "load again" in str(err.value)


@pytest.mark.parametrize("url", ["not a url", "example.org/mirror", "/some/folder"])
def test_a_download_url_that_is_not_an_address_is_named(url, cache_dir, monkeypatch):
    monkeypatch.setenv(rd.URL_ENV, url)
    with pytest.raises(DataError, match=f"{rd.URL_ENV}=.*is not a web address"):
        rd.download_movielens(NAME, cache_dir)


@pytest.mark.parametrize("seed", ["x", 1.5, True, None, -3])
def test_synthetic_generators_refuse_a_seed_that_is_not_a_whole_number(seed, tmp_path):
    with pytest.raises(TypeError, match="seed must be a whole number"):
        make_synthetic_ratings(1000, n_users=50, n_items=100, seed=seed)
    with pytest.raises(TypeError, match="seed must be a whole number"):
        make_synthetic(n_users=20, n_items=30, ratings_per_user=5, seed=seed)
    with pytest.raises(TypeError, match="seed must be a whole number"):
        rd.write_movielens_folder(tmp_path, "ml-100k", seed=seed)


def test_synthetic_ratings_too_large_for_memory_stop_before_drawing(monkeypatch):
    import recsys_helpers.env as env

    monkeypatch.setattr(env, "available_memory", lambda: 2**30)  # 1 GiB
    with pytest.raises(MemoryError, match="need about 11.6 GiB"):
        make_synthetic_ratings(10**8)


def test_synthetic_ratings_hold_half_stars_and_may_fill_up_to_half_the_matrix():
    r = make_synthetic_ratings(5000, n_users=100, n_items=100, seed=1)
    assert ((r.rating * 2) % 2 == 1).any() and set(r.rating * 2) <= set(range(1, 11))  # half stars in 0.5..5
    make_synthetic_ratings(50, n_users=10, n_items=10)  # exactly half the matrix: allowed
    with pytest.raises(ValueError, match="more than half"):
        make_synthetic_ratings(60, n_users=10, n_items=10)


def test_the_year_is_the_one_in_brackets_at_the_end_of_the_title(tmp_path):
    titles = ["2001: A Space Odyssey (1968)", "1900 (Novecento) (1976)", "Untitled"]
    items = rd._items_frame([1, 2, 3], titles, pd.Series(["Sci-Fi", "Drama", ""]), "|")
    assert items.year.tolist()[:2] == [1968, 1976] and pd.isna(items.year.iloc[2])
    assert items.genres.tolist() == [["Sci-Fi"], ["Drama"], []]


def test_make_synthetic_rates_in_half_stars():
    r = make_synthetic(n_users=50, n_items=80, ratings_per_user=20, seed=3).ratings
    assert ((r.rating * 2) % 2 == 1).any() and set(r.rating * 2) <= set(range(1, 11))
