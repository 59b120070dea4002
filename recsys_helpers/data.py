"""MovieLens loading (verified, cached, offline-friendly) and a synthetic data set with the same schema.

Every loader returns a :class:`RecData` with three frames:

- ``ratings``: ``user_id``, ``item_id``, ``rating``, ``timestamp`` (MovieLens ids as given, seconds since 1970);
- ``items``: ``item_id``, ``title``, ``year`` (nullable), ``genres`` (a list of strings);
- ``tags``: ``user_id``, ``item_id``, ``tag``, ``timestamp`` (empty where a data set has none).

Lookup order for MovieLens: the ``data_dir`` argument, the ``RECSYS_DATA_DIR`` environment variable, the
project's ``data/`` cache, then a download from GroupLens that is verified before it is kept.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DATA_DIR_ENV = "RECSYS_DATA_DIR"
CACHE_DIR_ENV = "RECSYS_CACHE_DIR"
DOWNLOAD_TIMEOUT_S = 30
_BASE_URL = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class DatasetSpec:
    """Where a MovieLens data set comes from and how to check it."""

    url: str
    zip_sha256: str
    zip_size: int
    required: tuple[str, ...]  # files that must be in the extracted folder
    file_sha256: dict[str, str]  # files whose digest the course knows, checked on every read


DATASETS: dict[str, DatasetSpec] = {
    "ml-latest-small": DatasetSpec(
        f"{_BASE_URL}/ml-latest-small.zip",
        "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
        978_202,
        ("ratings.csv", "movies.csv", "tags.csv"),
        {
            "README.txt": "63d22ac138e80fae37021797ed8e1b9424b5239dc576a137422adf783ae3f404",
            "links.csv": "97ad18e4e56a09363c65676b6cb3482ce3e2cea2372a24620c1599c843325f31",
            "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
            "ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
            "tags.csv": "92a9f8bb7916dceef6151209845788c3643f794dfa79d1feaec7121b5960399d",
        },
    ),
    "ml-100k": DatasetSpec(
        f"{_BASE_URL}/ml-100k.zip",
        "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        4_924_029,
        ("u.data", "u.item"),
        {},
    ),
    "ml-1m": DatasetSpec(
        f"{_BASE_URL}/ml-1m.zip",
        "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        5_917_549,
        ("ratings.dat", "movies.dat"),
        {},
    ),
    "ml-25m": DatasetSpec(
        f"{_BASE_URL}/ml-25m.zip",
        "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
        261_978_986,
        ("ratings.csv", "movies.csv", "tags.csv"),
        {},
    ),
}

RATING_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]


class DataError(RuntimeError):
    """A data set could not be found, downloaded or verified; the message says how to fix it."""


class ChecksumError(DataError):
    """A file's sha256 digest is not the one the course expects."""


@dataclass
class RecData:
    """Ratings, items and tags of one data set."""

    name: str
    ratings: pd.DataFrame
    items: pd.DataFrame
    tags: pd.DataFrame

    def __repr__(self) -> str:
        r = self.ratings
        return (f"RecData({self.name!r}: {len(r):,} ratings, {r.user_id.nunique():,} users, "
                f"{r.item_id.nunique():,} rated items, {len(self.items):,} items, {len(self.tags):,} tags)")


# ---------------------------------------------------------------------------------------------- locating

def default_cache_dir() -> Path:
    """``RECSYS_CACHE_DIR`` if set, else the project's ``data/`` folder (or ``~/.cache/recsys_course``)."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    project = Path(__file__).resolve().parents[1]
    if (project / "pyproject.toml").exists():
        return project / "data"
    return Path.home() / ".cache" / "recsys_course"


def _candidate_dirs(name: str, data_dir) -> list[tuple[str, Path]]:
    places = []
    if data_dir is not None:
        places.append(("data_dir argument", Path(data_dir).expanduser() / name))
    if os.environ.get(DATA_DIR_ENV):
        places.append((f"${DATA_DIR_ENV}", Path(os.environ[DATA_DIR_ENV]).expanduser() / name))
    places.append(("course cache", default_cache_dir() / name))
    return places


def _has_files(folder: Path, spec: DatasetSpec) -> bool:
    return folder.is_dir() and all((folder / f).is_file() for f in spec.required)


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"Unknown data set {name!r}. Known data sets: {', '.join(DATASETS)}.")
    return DATASETS[name]


def locate_movielens(name: str = "ml-latest-small", data_dir=None, download: bool = True) -> Path:
    """Return the folder holding data set ``name``, downloading it into the cache if it is nowhere else."""
    spec = _spec(name)
    places = _candidate_dirs(name, data_dir)
    for _, folder in places:
        if _has_files(folder, spec):
            return folder
    looked = "\n".join(f"  - {label}: {folder}" for label, folder in places)
    if not download:
        raise DataError(f"MovieLens {name!r} was not found. Looked in:\n{looked}")
    try:
        return download_movielens(name, default_cache_dir())
    except DataError as err:
        if isinstance(err, ChecksumError):
            raise
        raise DataError(
            f"MovieLens {name!r} is not on this machine and could not be downloaded ({err}).\n"
            f"Looked in:\n{looked}\n"
            f"To work offline, copy the extracted folder {name}/ (from {spec.url}) into a folder and set "
            f"{DATA_DIR_ENV} to that folder, or pass data_dir=... to load_movielens."
        ) from None


# ---------------------------------------------------------------------------------------------- verifying

def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify_file(path: Path, expected: str) -> None:
    """Raise :class:`ChecksumError` naming the file and both digests unless ``path`` hashes to ``expected``."""
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(
            f"Checksum mismatch for {Path(path).name} ({path}):\n  expected sha256 {expected}\n"
            f"  actual   sha256 {actual}\nThe file is damaged or not the official release; delete it and "
            f"load again to download a fresh copy, or point {DATA_DIR_ENV} at an unmodified copy."
        )


def verify_folder(folder: Path, spec: DatasetSpec) -> None:
    for fname, digest in spec.file_sha256.items():
        if (folder / fname).exists():
            verify_file(folder / fname, digest)


# ---------------------------------------------------------------------------------------------- downloading

def download_movielens(name: str, cache_dir: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download, verify and extract ``name`` into ``cache_dir``; nothing half-written is ever left there."""
    from tqdm.auto import tqdm

    spec = _spec(name)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / name
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=f".{name}-download-") as tmp:
        zip_path = Path(tmp) / f"{name}.zip"
        try:
            with urllib.request.urlopen(spec.url, timeout=timeout) as response, open(zip_path, "wb") as out:
                total = int(response.headers.get("Content-Length") or spec.zip_size)
                with tqdm(total=total, unit="B", unit_scale=True, desc=f"Downloading {name}") as bar:
                    while block := response.read(1 << 16):
                        out.write(block)
                        bar.update(len(block))
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            raise DataError(f"download from {spec.url} failed: {getattr(err, 'reason', err)}") from None
        size = zip_path.stat().st_size
        if size != spec.zip_size:
            raise DataError(f"download from {spec.url} was incomplete: got {size:,} of {spec.zip_size:,} bytes")
        verify_file(zip_path, spec.zip_sha256)
        extracted = Path(tmp) / "extracted"
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(extracted)
        inner = extracted / name
        if not _has_files(inner, spec):
            raise DataError(f"{spec.url} does not contain {name}/ with {', '.join(spec.required)}")
        verify_folder(inner, spec)
        if target.exists():  # an incomplete folder from an older copy: replace it
            shutil.rmtree(target)
        inner.rename(target)
    return target


# ---------------------------------------------------------------------------------------------- reading

_YEAR = re.compile(r"\((\d{4})\)\s*$")


def _items_frame(item_id, titles, genres: pd.Series, sep: str) -> pd.DataFrame:
    titles = pd.Series(titles, dtype="object").str.strip()
    year = pd.to_numeric(titles.str.extract(_YEAR, expand=False), errors="coerce").astype("Int64")
    genre_lists = [[] if g in ("(no genres listed)", "") else g.split(sep) for g in genres.fillna("")]
    return pd.DataFrame({"item_id": np.asarray(item_id, dtype=np.int64), "title": titles.to_numpy(),
                         "year": year.array, "genres": genre_lists})


def _ratings_frame(df: pd.DataFrame) -> pd.DataFrame:
    df.columns = RATING_COLUMNS
    return df.astype({"user_id": np.int64, "item_id": np.int64, "rating": np.float64, "timestamp": np.int64})


def _empty_tags() -> pd.DataFrame:
    return pd.DataFrame({"user_id": pd.Series(dtype=np.int64), "item_id": pd.Series(dtype=np.int64),
                         "tag": pd.Series(dtype="object"), "timestamp": pd.Series(dtype=np.int64)})


def _read_csv_layout(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    ratings = _ratings_frame(pd.read_csv(folder / "ratings.csv", dtype={"rating": np.float64}))
    movies = pd.read_csv(folder / "movies.csv", dtype={"title": "object", "genres": "object"})
    items = _items_frame(movies.movieId, movies.title, movies.genres, "|")
    tags = pd.read_csv(folder / "tags.csv", dtype={"tag": "object"})
    tags.columns = ["user_id", "item_id", "tag", "timestamp"]
    return ratings, items, tags


def _read_100k(folder: Path):
    ratings = _ratings_frame(pd.read_csv(folder / "u.data", sep="\t", header=None))
    genre_names = pd.read_csv(folder / "u.genre", sep="|", header=None, encoding="latin-1")[0].tolist()
    raw = pd.read_csv(folder / "u.item", sep="|", header=None, encoding="latin-1")
    flags = raw.iloc[:, 5:5 + len(genre_names)].to_numpy().astype(bool)
    genres = pd.Series(["|".join(g for g, on in zip(genre_names, row) if on and g != "unknown") for row in flags])
    return ratings, _items_frame(raw[0], raw[1], genres, "|"), _empty_tags()


def _read_1m(folder: Path):
    ratings = _ratings_frame(pd.read_csv(folder / "ratings.dat", sep="::", header=None, engine="python"))
    movies = pd.read_csv(folder / "movies.dat", sep="::", header=None, engine="python", encoding="latin-1")
    return ratings, _items_frame(movies[0], movies[1], movies[2], "|"), _empty_tags()


def load_movielens(name: str = "ml-latest-small", data_dir=None) -> RecData:
    """Load a MovieLens data set (ml-latest-small, ml-100k, ml-1m or ml-25m), verified and cached.

    ``data_dir`` (or ``$RECSYS_DATA_DIR``) is a folder that holds the extracted ``<name>/`` folder.
    Raises ``ValueError`` for an unknown name, :class:`DataError` when the data can be neither found nor
    downloaded, and :class:`ChecksumError` when a file is not the official release.
    """
    spec = _spec(name)
    folder = locate_movielens(name, data_dir)
    verify_folder(folder, spec)
    reader = {"ml-100k": _read_100k, "ml-1m": _read_1m}.get(name, _read_csv_layout)
    ratings, items, tags = reader(folder)
    return RecData(name, ratings, items, tags)


# ---------------------------------------------------------------------------------------------- synthetic

GENRES = ["Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "Western"]


def make_synthetic(n_users: int = 300, n_items: int = 500, n_factors: int = 4, ratings_per_user: int = 40,
                   noise: float = 0.4, seed: int = 0) -> RecData:
    """A seeded MovieLens look-alike with real structure, for unit tests and quick demonstrations.

    Each user and item has ``n_factors`` latent tastes; an item's genres follow its strongest factors; a user
    rates more items they like and more popular items (a long tail); a rating is a global mean plus user and
    item biases plus the taste match plus noise, rounded to half stars in 0.5..5. Timestamps grow per user.
    """
    for label, value in {"n_users": n_users, "n_items": n_items, "n_factors": n_factors,
                         "ratings_per_user": ratings_per_user}.items():
        if isinstance(value, bool) or int(value) != value or int(value) < 1:
            raise ValueError(f"{label} must be an integer of at least 1, got {value!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    n_users, n_items, n_factors = int(n_users), int(n_items), int(n_factors)
    if ratings_per_user > n_items:
        raise ValueError(f"ratings_per_user ({ratings_per_user}) cannot exceed n_items ({n_items})")
    rng = np.random.default_rng(seed)
    P = rng.normal(0, 1, (n_users, n_factors))
    Q = rng.normal(0, 1, (n_items, n_factors))
    user_bias, item_bias = rng.normal(0, 0.3, n_users), rng.normal(0, 0.4, n_items)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity = popularity[rng.permutation(n_items)]

    affinity = P @ Q.T / np.sqrt(n_factors)
    users, items = [], []
    for u in range(n_users):
        n = max(1, int(rng.poisson(ratings_per_user)))
        n = min(n, n_items)
        w = popularity * np.exp(affinity[u])
        chosen = rng.choice(n_items, size=n, replace=False, p=w / w.sum())
        users.append(np.full(n, u))
        items.append(chosen)
    u_idx, i_idx = np.concatenate(users), np.concatenate(items)
    raw = 3.1 + user_bias[u_idx] + item_bias[i_idx] + 0.8 * affinity[u_idx, i_idx] + rng.normal(0, noise, len(u_idx))
    rating = np.clip(np.round(raw * 2) / 2, 0.5, 5.0)
    start = 946_684_800 + rng.integers(0, 5 * 365 * 86400, n_users)  # users join between 2000 and 2005
    gaps = rng.exponential(86400 * 3, len(u_idx)).astype(np.int64)
    ratings = pd.DataFrame({"user_id": u_idx + 1, "item_id": i_idx + 1, "rating": rating})
    ratings["timestamp"] = start[u_idx] + pd.Series(gaps).groupby(u_idx).cumsum().to_numpy()
    ratings = ratings.astype({"user_id": np.int64, "item_id": np.int64, "rating": np.float64, "timestamp": np.int64})

    # factor f stands for genre f: an item carries the genres of its strong factors (at least its strongest)
    strong = (Q > 0.8) | (Q == Q.max(axis=1, keepdims=True))
    genres = [[GENRES[f % len(GENRES)] for f in np.flatnonzero(row)] for row in strong]
    years = rng.integers(1950, 2019, n_items)
    items_df = pd.DataFrame({"item_id": np.arange(1, n_items + 1, dtype=np.int64),
                             "title": [f"Synthetic Movie {i + 1} ({y})" for i, y in enumerate(years)],
                             "year": pd.array(years, dtype="Int64"), "genres": genres})
    tag_rows = ratings.sample(n=min(len(ratings), max(1, len(ratings) // 30)), random_state=seed)
    tags = pd.DataFrame({"user_id": tag_rows.user_id.to_numpy(), "item_id": tag_rows.item_id.to_numpy(),
                         "tag": pd.Series([items_df.genres[i - 1][0].lower() if items_df.genres[i - 1] else "fun"
                                          for i in tag_rows.item_id], dtype="object"),  # as the loader's tags
                         "timestamp": tag_rows.timestamp.to_numpy()})
    ratings = ratings.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)
    return RecData("synthetic", ratings, items_df, tags.reset_index(drop=True))
