"""MovieLens loading (verified, cached, offline-friendly) and a synthetic data set with the same schema.

Every loader returns a :class:`RecData` with three frames:

- ``ratings``: ``user_id``, ``item_id``, ``rating``, ``timestamp`` (MovieLens ids as given, seconds since 1970);
- ``items``: ``item_id``, ``title``, ``year`` (nullable), ``genres`` (a list of strings);
- ``tags``: ``user_id``, ``item_id``, ``tag``, ``timestamp`` (empty where a data set has none).

Lookup order for MovieLens: the ``data_dir`` argument (which must then hold ``<name>/``), the ``RECSYS_DATA_DIR``
environment variable, the course cache (``RECSYS_CACHE_DIR``, else the project's ``data/``), then a download
from GroupLens (``RECSYS_DOWNLOAD_URL`` names a mirror) that is verified before it is kept. The first
``<name>/`` folder found is the one used: a required file missing from it is an error, not a reason to look on.

Checks on every load:

- structure, always: each line has the format's fields, ids are whole numbers >= 1, ratings lie in 0.5..5,
  timestamps are whole numbers, nothing is missing. A file with a header is read by column name.
- identity, unless ``strict=False``: a folder with a manifest (``.manifest.json``, written after a verified
  download and by :func:`write_movielens_folder`) must match it file by file (size, then sha256); the files
  whose digest the course knows (all of ml-latest-small, ml-100k's ``u.data``) must have that digest; and the
  ratings must have the official numbers of ratings, users and rated items (a synthetic folder: those in its
  manifest). So a modified copy is refused with :class:`ChecksumError` even where no digest is known (ml-1m,
  ml-25m from elsewhere), and a hand-made sample needs ``strict=False``, which checks the structure only.
  Verified files are not hashed again in the same process while their size, mtime and inode are unchanged.

Downloads stop after ``timeout`` seconds without data (``RECSYS_DOWNLOAD_TIMEOUT``, 30) or when the whole download
takes longer than ``deadline`` (``RECSYS_DOWNLOAD_DEADLINE``; 60 s, one second per MB for zips over 60 MB; checked
after every read, so it ends at most one ``timeout`` late). A download works in ``<cache>/.<name>-download-*/``;
a load removes such folders left by a killed download: their process is gone (same machine) or nothing in them
changed for an hour.
"""
from __future__ import annotations

import csv
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .checks import require_seed

DATA_DIR_ENV = "RECSYS_DATA_DIR"
CACHE_DIR_ENV = "RECSYS_CACHE_DIR"
TIMEOUT_ENV = "RECSYS_DOWNLOAD_TIMEOUT"
DEADLINE_ENV = "RECSYS_DOWNLOAD_DEADLINE"
URL_ENV = "RECSYS_DOWNLOAD_URL"
DOWNLOAD_TIMEOUT_S = 30  # seconds without data
DOWNLOAD_DEADLINE_S = 60  # seconds for the whole download (one second per MB for bigger zips)
STALE_AFTER_S = 3600  # a download folder untouched for this long is left over from a killed download
MANIFEST = ".manifest.json"
_BASE_URL = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class DatasetSpec:
    """Where a MovieLens data set comes from and how to check it."""

    url: str
    zip_sha256: str
    zip_size: int
    required: tuple[str, ...]  # files that must be in the extracted folder; the first holds the ratings
    file_sha256: dict[str, str]  # files whose digest the course knows, checked on every read
    file_size: dict[str, int] = field(default_factory=dict)  # and their sizes, checked before the digest
    counts: tuple[int, int, int] | None = None  # official ratings, users, rated items


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
        {"README.txt": 8_342, "links.csv": 197_979, "movies.csv": 494_431, "ratings.csv": 2_483_723,
         "tags.csv": 118_660},
        (100_836, 610, 9_724),
    ),
    "ml-100k": DatasetSpec(
        f"{_BASE_URL}/ml-100k.zip",
        "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        4_924_029,
        ("u.data", "u.item", "u.genre"),
        {"u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"},
        {"u.data": 1_979_173},
        (100_000, 943, 1_682),
    ),
    "ml-1m": DatasetSpec(
        f"{_BASE_URL}/ml-1m.zip",
        "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        5_917_549,
        ("ratings.dat", "movies.dat"),
        {},
        {},
        (1_000_209, 6_040, 3_706),
    ),
    "ml-25m": DatasetSpec(
        f"{_BASE_URL}/ml-25m.zip",
        "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
        261_978_986,
        ("ratings.csv", "movies.csv", "tags.csv"),
        {},
        {},
        (25_000_095, 162_541, 59_047),
    ),
}

RATING_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]


class DataError(RuntimeError):
    """A data set could not be found, downloaded, read or verified; the message says how to fix it."""


class ChecksumError(DataError):
    """A file is not the one the course expects: its size, its sha256 digest or its official counts differ."""


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


def _replace_advice(folder: Path) -> str:
    return (f"Delete the folder {folder} and load again to download the official files, or point "
            f"{DATA_DIR_ENV} at an unmodified copy (strict=False loads this one as it is).")


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


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"Unknown data set {name!r}. Known data sets: {', '.join(DATASETS)}.")
    return DATASETS[name]


def _download_url(name: str, base_url=None) -> str:
    base = base_url or os.environ.get(URL_ENV)
    if base and urllib.parse.urlsplit(base).scheme not in ("http", "https", "file", "ftp"):
        where = "base_url" if base_url else URL_ENV
        raise DataError(f"{where}={base!r} is not a web address; it must be a mirror's address such as "
                        f"https://example.org/movielens (the course downloads <address>/{name}.zip), or unset it")
    return f"{base.rstrip('/')}/{name}.zip" if base else _spec(name).url


def _missing(folder: Path, spec: DatasetSpec) -> list[str]:
    return [f for f in spec.required if not (folder / f).is_file()]


def locate_movielens(name: str = "ml-latest-small", data_dir=None, download: bool = True, *, timeout=None,
                     deadline=None, base_url=None) -> Path:
    """Return the folder holding data set ``name``, downloading it into the cache if it is nowhere else.

    An explicit ``data_dir`` must hold ``<name>/``. The first ``<name>/`` folder found is used; a required file
    missing from it raises :class:`DataError`. ``timeout``, ``deadline`` and ``base_url``: see
    :func:`download_movielens`.
    """
    spec = _spec(name)
    if data_dir is not None:
        base = Path(data_dir).expanduser()
        problem = ("does not exist" if not base.exists() else "is a file, not a folder" if not base.is_dir()
                   else f"does not contain a folder {name}/" if not (base / name).is_dir() else None)
        if problem:
            raise DataError(f"data_dir {base} {problem}. Pass the folder that holds the extracted {name}/ "
                            f"(so that {base / name / spec.required[0]} exists), or leave data_dir out to use "
                            f"${DATA_DIR_ENV}, the course cache or a download.")
    _clean_stale_downloads(default_cache_dir())
    places = _candidate_dirs(name, data_dir)
    url = _download_url(name, base_url)
    for _, folder in places:
        if folder.exists():
            if missing := _missing(folder, spec):
                raise DataError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing from "
                                f"{folder}. Restore it from {url}, or delete that folder so that the course "
                                f"downloads a complete copy.")
            return folder
    looked = "\n".join(f"  - {label}: {folder}" for label, folder in places)
    if not download:
        raise DataError(f"MovieLens {name!r} was not found. Looked in:\n{looked}")
    try:
        return download_movielens(name, default_cache_dir(), timeout=timeout, deadline=deadline,
                                  base_url=base_url)
    except DataError as err:
        if isinstance(err, ChecksumError):
            raise
        raise DataError(
            f"MovieLens {name!r} is not on this machine and could not be downloaded ({err}).\n"
            f"Looked in:\n{looked}\n"
            f"To work offline, copy the extracted folder {name}/ (from {url}) into a folder and set "
            f"{DATA_DIR_ENV} to that folder, or pass data_dir=... to load_movielens."
        ) from None


def _pid_alive(pid: int) -> bool | None:
    if os.name != "posix":
        return None  # no safe test elsewhere (os.kill ends the process on Windows): the age rule decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale_downloads(cache_dir: Path) -> None:
    """Remove ``.<name>-download-*/`` folders left by killed downloads: their process (recorded in ``owner``)
    is gone from this machine, or nothing in them changed for ``STALE_AFTER_S`` seconds."""
    try:
        leftovers = list(Path(cache_dir).glob(".*-download-*"))
    except OSError:
        return  # no usable cache: nothing to clean
    for tmp in leftovers:
        try:
            host, pid = (tmp / "owner").read_text().split()
            dead = host == socket.gethostname() and _pid_alive(int(pid)) is False
        except (OSError, ValueError):
            dead = False
        try:
            idle = time.time() - max(p.stat().st_mtime for p in [tmp, *tmp.iterdir()])
        except OSError:
            continue  # not a folder, or removed meanwhile
        if dead or idle > STALE_AFTER_S:
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- verifying

_VERIFIED: set[tuple] = set()  # (path, size, mtime, inode, digest) of files verified in this process


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify_file(path: Path, expected: str, size: int | None = None) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has ``size`` bytes (when given) and hashes to ``expected``.

    A file verified once is not hashed again in this process while its size, mtime and inode are unchanged.
    """
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, expected)
    if key in _VERIFIED:
        return
    if size is not None and st.st_size != size:
        raise ChecksumError(
            f"{path.name} ({path}) is not the official file: it has {st.st_size:,} bytes where the official one "
            f"has {size:,} (sha256 {expected}). It was modified (a header line, CRLF line endings, rows added or "
            f"removed) or damaged. " + _replace_advice(path.parent))
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(
            f"Checksum mismatch for {path.name} ({path}):\n  expected sha256 {expected}\n"
            f"  actual   sha256 {actual}\nThe file is damaged or not the official release. "
            + _replace_advice(path.parent))
    _VERIFIED.add(key)


def _read_manifest(folder: Path) -> dict | None:
    path = Path(folder) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
        assert all(set(e) == {"bytes", "sha256"} for e in manifest["files"].values())
        return manifest
    except (ValueError, KeyError, TypeError, AttributeError, AssertionError) as err:
        raise DataError(f"{path} is not a valid manifest ({type(err).__name__}: {err}). "
                        + _replace_advice(Path(folder))) from None


def _write_manifest(folder: Path, name: str, **info) -> None:
    files = {p.name: {"bytes": p.stat().st_size, "sha256": sha256_of(p)}
             for p in sorted(Path(folder).iterdir()) if p.is_file() and p.name != MANIFEST}
    (Path(folder) / MANIFEST).write_text(json.dumps({"data_set": name, **info, "files": files}, indent=1))


def verify_folder(folder: Path, spec: DatasetSpec) -> dict | None:
    """Verify the files of ``folder`` (size first, then sha256) against its manifest and the digests the course
    knows (a synthetic folder: its manifest only). Returns the manifest, or None where there is none."""
    manifest = _read_manifest(folder)
    expected = dict(manifest["files"]) if manifest else {}
    if not (manifest and manifest.get("synthetic")):
        expected.update({f: {"bytes": spec.file_size.get(f), "sha256": d} for f, d in spec.file_sha256.items()})
    for fname, entry in expected.items():
        if (Path(folder) / fname).exists():
            verify_file(Path(folder) / fname, entry["sha256"], entry["bytes"])
    return manifest


def _check_counts(path: Path, name: str, ratings: pd.DataFrame, expected) -> None:
    got = (len(ratings), ratings.user_id.nunique(), ratings.item_id.nunique())
    if expected is not None and got != tuple(expected):
        say = "{:,} ratings by {:,} users of {:,} items".format
        raise ChecksumError(f"{path.name} ({path}) is not the official {name}: it holds {say(*got)} where the "
                            f"official file holds {say(*expected)}. " + _replace_advice(path.parent))


# ---------------------------------------------------------------------------------------------- downloading

def _seconds(value, env: str, default: float, label: str) -> float:
    raw = value if value is not None else os.environ.get(env) or default
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not seconds > 0:
        where = "argument" if value is not None else f"environment variable {env}"
        raise ValueError(f"The download {label} must be a number of seconds > 0; the {where} is {raw!r}.")
    return seconds


def download_movielens(name: str, cache_dir: Path, timeout: float | None = None, deadline: float | None = None,
                       base_url: str | None = None) -> Path:
    """Download, verify and extract ``name`` into ``cache_dir``; nothing half-written is ever left there.

    ``timeout``: seconds without data (else ``$RECSYS_DOWNLOAD_TIMEOUT``, else 30); ``deadline``: seconds for the
    whole download (else ``$RECSYS_DOWNLOAD_DEADLINE``, else 60, one per MB for zips over 60 MB); ``base_url``:
    a mirror that serves ``<base_url>/<name>.zip`` (else ``$RECSYS_DOWNLOAD_URL``, else GroupLens). The zip must
    have the official size and sha256 whatever its source. The extracted folder gets a manifest.
    """
    spec = _spec(name)
    url = _download_url(name, base_url)
    timeout = _seconds(timeout, TIMEOUT_ENV, DOWNLOAD_TIMEOUT_S, "timeout")
    deadline = _seconds(deadline, DEADLINE_ENV, max(DOWNLOAD_DEADLINE_S, spec.zip_size / 1e6), "deadline")
    cache_dir = Path(cache_dir)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{name}-download-"))
    except OSError as err:
        raise DataError(f"the cache folder {cache_dir} is not writable ({err.strerror or err}); set "
                        f"{CACHE_DIR_ENV} to a writable folder") from None
    try:
        (tmp / "owner").write_text(f"{socket.gethostname()} {os.getpid()}\n")
        zip_path = tmp / f"{name}.zip"
        _fetch(url, zip_path, spec.zip_size, timeout, deadline, name)
        try:
            verify_file(zip_path, spec.zip_sha256)
        except ChecksumError:  # its advice would name the temporary folder, which is deleted below
            raise ChecksumError(f"{zip_path.name} downloaded from {url} is not the official file:\n  expected sha256 "
                                f"{spec.zip_sha256}\n  actual   sha256 {sha256_of(zip_path)}\nIt was damaged on "
                                f"the way or is another release. Nothing was kept: load again to retry, or check "
                                f"{URL_ENV} if a mirror served it") from None
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(tmp / "extracted")
        inner = tmp / "extracted" / name
        if not inner.is_dir() or _missing(inner, spec):
            raise DataError(f"{url} does not contain {name}/ with {', '.join(spec.required)}")
        verify_folder(inner, spec)
        _write_manifest(inner, name, source=url, zip_sha256=spec.zip_sha256, counts=spec.counts)
        target = cache_dir / name
        if target.exists():  # an incomplete folder from an older copy: replace it
            shutil.rmtree(target)
        inner.rename(target)
    except (OSError, zipfile.BadZipFile) as err:
        raise DataError(f"could not unpack {name} into {cache_dir}: {err}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _fetch(url: str, dest: Path, size: int, timeout: float, deadline: float, desc: str) -> None:
    """Download ``url`` to ``dest``: at most ``size`` + 1 bytes, within ``deadline`` seconds."""
    from tqdm.auto import tqdm

    start, kind = time.monotonic(), "data"
    too_slow = (f"download from {url} did not finish within its deadline of {deadline:g} s ({{:,}} of {size:,} "
                f"bytes received); on a slow connection allow more time with {DEADLINE_ENV}=<seconds>")
    try:
        with urllib.request.urlopen(url, timeout=min(timeout, deadline)) as response, open(dest, "wb") as out:
            kind = response.headers.get_content_type()
            with tqdm(total=size, unit="B", unit_scale=True, desc=f"Downloading {desc}") as bar:
                while out.tell() <= size and (block := response.read1(1 << 16)):
                    out.write(block)
                    bar.update(len(block))
                    if time.monotonic() - start > deadline:
                        raise DataError(too_slow.format(out.tell()))
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        reason = err if isinstance(err, urllib.error.HTTPError) else getattr(err, "reason", err)
        if isinstance(reason, TimeoutError) and time.monotonic() - start >= deadline:
            raise DataError(too_slow.format(dest.stat().st_size if dest.exists() else 0)) from None
        hint = f" (no data for {min(timeout, deadline):g} s; {TIMEOUT_ENV} sets this limit)" \
            if isinstance(reason, TimeoutError) else ""
        raise DataError(f"download from {url} failed: {reason}{hint}") from None
    got = dest.stat().st_size
    with open(dest, "rb") as f:
        head = f.read(40)
    if not head.startswith(b"PK\x03\x04"):
        raise DataError(f"download from {url} is not a zip: received {got:,} bytes of {kind} starting "
                        f"'{repr(head)[2:-1]}...' instead of the {size:,}-byte zip (a proxy, "
                        f"a login page or a wrong {URL_ENV} may have answered)")
    if got != size:
        raise DataError(f"download from {url} was incomplete: got {got:,} of {size:,} bytes" if got < size else
                        f"download from {url} is larger than the official {size:,}-byte zip: not the same file")


# ---------------------------------------------------------------------------------------------- reading

_YEAR = re.compile(r"\((\d{4})\)\s*$")
_EXTRA_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _damaged(path: Path, line: int, problem: str) -> DataError:
    return DataError(f"{path.name} ({path}), line {line}: {problem}. The file is damaged or not in the "
                     f"MovieLens format of {path.parent.name}. " + _replace_advice(path.parent))


def _read_table(path: Path, columns: dict[str, str], sep: str = ",", header: bool = True,
                encoding: str = "utf-8") -> pd.DataFrame:
    """Read a delimited file whose lines hold exactly ``columns`` (name: kind); a header row names them, in any
    order. Kinds: ``id`` (whole number >= 1), ``int``, ``flag`` (0 or 1), ``rating`` (0.5..5), ``text`` (not
    empty), ``any`` (text, may be empty). Raises :class:`DataError` naming the file and line of the first problem.
    """
    names = list(columns)
    if header:
        with open(path, "rb") as f:
            first = f.readline().decode(encoding, errors="replace").lstrip("\ufeff").rstrip("\r\n")
        if not first:
            raise _damaged(path, 1, "the file is empty")
        names = next(csv.reader([first]), [])
        if sorted(names) != sorted(columns):
            raise _damaged(path, 1, f"the header is {','.join(names)!r}; it must name the columns "
                                    f"{', '.join(columns)} (in any order) and no others")
    source, one_char_sep = path, sep
    if sep == "::":  # pandas' fast parser wants a one-character separator; no MovieLens field holds \x1f
        source, one_char_sep = io.BytesIO(path.read_bytes().replace(b"::", b"\x1f")), "\x1f"
    fields = f"{len(names)} ({', '.join(names)})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # an extra field on the first line
            df = pd.read_csv(source, sep=one_char_sep, header=None, skiprows=int(header), names=names,
                             index_col=False, encoding=encoding, keep_default_na=False, na_values=[""],
                             skip_blank_lines=False, quoting=csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE,
                             dtype={c: object for c, kind in columns.items() if kind in ("text", "any")})
    except pd.errors.ParserError as err:
        if m := _EXTRA_FIELDS.search(str(err)):
            raise _damaged(path, int(m[2]), f"{m[3]} fields where there should be {fields}") from None
        raise DataError(f"{path.name} ({path}) is unreadable ({err}). " + _replace_advice(path.parent)) from None
    except pd.errors.ParserWarning:
        raise _damaged(path, 1 + header, f"more fields than the {fields}") from None
    except UnicodeDecodeError:
        raw = path.read_bytes()
        try:
            raw.decode(encoding)
        except UnicodeDecodeError as err:
            raise _damaged(path, raw.count(b"\n", 0, err.start) + 1,
                           f"byte {raw[err.start]:#04x} is not {encoding} text") from None
        raise
    except pd.errors.EmptyDataError:
        raise _damaged(path, 1, "the file is empty") from None
    na = df.isna()
    if na.to_numpy().any():
        df = df[~na.all(axis=1)]  # blank lines carry no data

    def first_bad(mask, col, problem):
        if mask.any():
            i = int(np.argmax(mask.to_numpy()))
            value = df[col].iloc[i]
            raise _damaged(path, df.index[i] + 1 + header,
                           problem.format(col=col, value=repr(value) if isinstance(value, str) else value))

    for col, kind in columns.items():
        values = df[col]
        if kind == "any":
            df[col] = values.fillna("")
            continue
        first_bad(values.isna(), col, "{col} is missing (an empty field, or fewer fields than the " + fields + ")")
        if kind == "text":
            continue
        if values.dtype.kind not in "iuf":
            values = pd.to_numeric(values, errors="coerce")
            first_bad(values.isna(), col, "{col} is {value}, not a number")
        if kind != "rating":
            if values.dtype.kind == "f":
                first_bad(values % 1 != 0, col, "{col} is {value}, not a whole number")
            values = values.astype(np.int64)
        if kind == "id":
            first_bad(values < 1, col, "{col} is {value}: ids are whole numbers from 1 up")
        elif kind == "flag":
            first_bad((values != 0) & (values != 1), col, "{col} is {value}, not 0 or 1")
        elif kind == "rating":
            first_bad((values < 0.5) | (values > 5), col, "{col} is {value}, outside 0.5..5")
        df[col] = values
    return df.reset_index(drop=True)


def _items_frame(item_id, titles, genres: pd.Series, sep: str) -> pd.DataFrame:
    titles = pd.Series(titles, dtype="object").str.strip()
    year = pd.to_numeric(titles.str.extract(_YEAR, expand=False), errors="coerce").astype("Int64")
    genre_lists = [[] if g in ("(no genres listed)", "") else g.split(sep) for g in genres.fillna("")]
    return pd.DataFrame({"item_id": np.asarray(item_id, dtype=np.int64), "title": titles.to_numpy(),
                         "year": year.array, "genres": genre_lists})


def _ratings_frame(df: pd.DataFrame) -> pd.DataFrame:
    df = df.set_axis(RATING_COLUMNS, axis=1)
    return df.astype({"user_id": np.int64, "item_id": np.int64, "rating": np.float64, "timestamp": np.int64})


def _empty_tags() -> pd.DataFrame:
    return pd.DataFrame({"user_id": pd.Series(dtype=np.int64), "item_id": pd.Series(dtype=np.int64),
                         "tag": pd.Series(dtype="object"), "timestamp": pd.Series(dtype=np.int64)})


def _read_csv_layout(folder: Path):  # ml-latest-small, ml-25m: CSVs with a header row
    ratings = _read_table(folder / "ratings.csv", {"userId": "id", "movieId": "id", "rating": "rating",
                                                   "timestamp": "int"})
    movies = _read_table(folder / "movies.csv", {"movieId": "id", "title": "text", "genres": "text"})
    tags = _read_table(folder / "tags.csv", {"userId": "id", "movieId": "id", "tag": "any", "timestamp": "int"})
    tags = tags[["userId", "movieId", "tag", "timestamp"]].set_axis(["user_id", "item_id", "tag", "timestamp"], axis=1)
    return (_ratings_frame(ratings[["userId", "movieId", "rating", "timestamp"]]),
            _items_frame(movies.movieId, movies.title, movies.genres, "|"), tags)


def _read_100k(folder: Path):  # u.data (tab-separated), u.item and u.genre ("|"-separated, Latin-1)
    ratings = _read_table(folder / "u.data", {"user id": "id", "item id": "id", "rating": "rating",
                                              "timestamp": "int"}, sep="\t", header=False)
    genre = _read_table(folder / "u.genre", {"genre": "text", "index": "int"}, sep="|", header=False,
                        encoding="latin-1")
    if sorted(genre["index"]) != list(range(len(genre))):
        raise _damaged(folder / "u.genre", 1, f"the genre numbers must run 0, 1, 2, ... (they are "
                                              f"{genre['index'].tolist()})")
    names = genre.sort_values("index").genre.tolist()
    flags = [f"{g} flag" for g in names]
    raw = _read_table(folder / "u.item", {"movie id": "id", "movie title": "text", "release date": "any",
                                          "video release date": "any", "IMDb URL": "any",
                                          **dict.fromkeys(flags, "flag")}, sep="|", header=False, encoding="latin-1")
    genres = pd.Series(["|".join(g for g, on in zip(names, row) if on and g != "unknown")
                        for row in raw[flags].to_numpy(dtype=bool)])
    return _ratings_frame(ratings), _items_frame(raw["movie id"], raw["movie title"], genres, "|"), _empty_tags()


def _read_1m(folder: Path):  # ratings.dat, movies.dat ("::"-separated; movies.dat Latin-1)
    ratings = _read_table(folder / "ratings.dat", {"UserID": "id", "MovieID": "id", "Rating": "rating",
                                                   "Timestamp": "int"}, sep="::", header=False)
    movies = _read_table(folder / "movies.dat", {"MovieID": "id", "Title": "text", "Genres": "text"}, sep="::",
                         header=False, encoding="latin-1")
    return _ratings_frame(ratings), _items_frame(movies.MovieID, movies.Title, movies.Genres, "|"), _empty_tags()


_READERS = {"ml-100k": _read_100k, "ml-1m": _read_1m, "ml-latest-small": _read_csv_layout, "ml-25m": _read_csv_layout}


def load_movielens(name: str = "ml-latest-small", data_dir=None, *, strict: bool = True, timeout=None,
                   deadline=None, base_url=None) -> RecData:
    """Load a MovieLens data set (ml-latest-small, ml-100k, ml-1m or ml-25m), verified and cached.

    ``data_dir`` (or ``$RECSYS_DATA_DIR``) is a folder that holds the extracted ``<name>/`` folder. With
    ``strict`` (the default) the files must be the official ones (or match the manifest of a synthetic folder),
    see the module docstring; ``strict=False`` checks only their structure. ``timeout``, ``deadline`` and
    ``base_url`` tune a download, see :func:`download_movielens`.
    Raises ``ValueError`` for an unknown name, :class:`DataError` when the data can be neither found nor
    downloaded or a file is malformed, and :class:`ChecksumError` when a file is not the official release.
    """
    spec = _spec(name)
    folder = locate_movielens(name, data_dir, timeout=timeout, deadline=deadline, base_url=base_url)
    manifest = verify_folder(folder, spec) if strict else None
    ratings, items, tags = _READERS[name](folder)
    if strict:
        _check_counts(folder / spec.required[0], name, ratings, manifest.get("counts") if manifest else spec.counts)
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
    rng = np.random.default_rng(require_seed(seed))
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


_SYNTHETIC_BYTES_PER_RATING = 125  # peak bytes per rating while drawing (tracemalloc at 10^6 and 4·10^6 ratings)


def make_synthetic_ratings(n_ratings: int, n_users: int | None = None, n_items: int | None = None,
                           n_clusters: int = 20, taste: float = 0.6, seed: int = 0) -> pd.DataFrame:
    """A large seeded ratings frame (the loader's columns) made fast, for measuring how costs grow with the data
    (notebook 10 times training on 10^5 to 10^7 of them). :func:`make_synthetic` is richer but builds a dense
    user × item matrix, so it does not scale that far.

    Sizes follow MovieLens by default: ``n_users = n_ratings // 100`` and ``n_items = 3 * sqrt(n_ratings)``
    (10^6 ratings: 10,000 users, 3,000 items; ml-1m has 6,040 and 3,706). Each item belongs to one of ``n_clusters``
    clusters and has a long-tailed popularity; users have long-tailed activity and a favourite cluster, from which
    a share ``taste`` of their ratings is drawn (the rest follows popularity). Ratings are higher inside the
    favourite cluster. No (user, item) pair repeats; exactly ``n_ratings`` rows, sorted by user and item, with
    timestamps that grow down the rows.
    """
    for label, value in {"n_ratings": n_ratings, "n_users": n_users, "n_items": n_items,
                         "n_clusters": n_clusters}.items():
        if value is not None and (isinstance(value, bool) or int(value) != value or int(value) < 1):
            raise ValueError(f"{label} must be an integer of at least 1, got {value!r}")
    if not 0 <= taste <= 1:
        raise ValueError(f"taste is a share of the ratings, in [0, 1]; got {taste!r}")
    n = int(n_ratings)
    n_users = int(n_users) if n_users is not None else max(1, n // 100)
    n_items = int(n_items) if n_items is not None else max(n_clusters, int(3 * np.sqrt(n)))
    if n > 0.5 * n_users * n_items:
        raise ValueError(f"{n:,} ratings would fill more than half of a {n_users:,} × {n_items:,} matrix; "
                         "pass more users or items")
    from .env import available_memory

    need = n * _SYNTHETIC_BYTES_PER_RATING
    if need > 0.8 * available_memory():
        raise MemoryError(f"{n:,} synthetic ratings need about {need / 2**30:,.1f} GiB while they are drawn, more "
                          f"than this machine has available ({available_memory() / 2**30:,.1f} GiB); ask for fewer")
    rng = np.random.default_rng(require_seed(seed))
    cluster = np.sort(rng.integers(0, n_clusters, n_items))  # items sorted by cluster
    starts = np.searchsorted(cluster, np.arange(n_clusters + 1))
    pop = rng.permutation(1.0 / np.arange(1, n_items + 1) ** 0.8)
    cum = np.concatenate([[0.0], np.cumsum(pop)])  # cum[j]: total popularity of items before j
    activity = rng.lognormal(0, 1, n_users)
    activity = np.minimum(activity, 10 * activity.mean())  # no user rates a large part of the catalogue
    favourite = rng.integers(0, n_clusters, n_users)
    favourite[np.diff(starts)[favourite] == 0] = cluster[0]  # a cluster with no item is nobody's favourite
    user_bias, item_bias = rng.normal(0, 0.3, n_users), rng.normal(0, 0.4, n_items)
    pairs, first_round = np.empty(0, np.int64), True
    while len(pairs) < n:  # draw, drop repeated pairs, draw again for what is missing (uniform items: no stall)
        m = int((n - len(pairs)) * 1.2) + 100
        u = rng.choice(n_users, m, p=activity / activity.sum())
        if first_round:
            inside = rng.random(m) < taste
            lo = np.where(inside, cum[starts[favourite[u]]], 0.0)
            hi = np.where(inside, cum[starts[favourite[u] + 1]], cum[-1])
            i = np.clip(np.searchsorted(cum, lo + rng.random(m) * (hi - lo), side="right") - 1, 0, n_items - 1)
        else:
            i = rng.integers(0, n_items, m)
        first_round = False
        drawn = np.sort(np.concatenate([pairs, u.astype(np.int64) * n_items + i]))  # by user, then item
        pairs = drawn[np.concatenate([[True], drawn[1:] != drawn[:-1]])]  # each pair once
    if len(pairs) > n:  # keep a random n of them, still sorted
        pairs = np.sort(rng.choice(pairs, n, replace=False))
    u, i = pairs // n_items, pairs % n_items
    raw = 3.0 + user_bias[u] + item_bias[i] + 0.8 * (cluster[i] == favourite[u]) + rng.normal(0, 0.5, n)
    return pd.DataFrame({"user_id": u + 1, "item_id": i + 1, "rating": np.clip(np.round(raw * 2) / 2, 0.5, 5.0),
                         "timestamp": 946_684_800 + np.arange(n, dtype=np.int64)})  # time grows down the rows


# ---------------------------------------------------------------------------------------------- synthetic folders

_GENRES_100K = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
                "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
                "Western"]  # u.genre; ml-1m's movies.dat uses the same names, without "unknown"
_OCCUPATIONS = ["administrator", "artist", "educator", "engineer", "librarian", "programmer", "student", "writer"]


def _old_genre_names(genres: list[str]) -> list[str]:
    return [{"Children": "Children's"}.get(g, g) for g in genres]


def _write_lines(path: Path, lines, encoding: str = "utf-8", newline: str = "\n") -> None:
    path.write_bytes("".join(line + newline for line in lines).encode(encoding))


def _write_csv_layout(folder: Path, data: RecData, rng) -> None:  # ml-latest-small, ml-25m
    crlf = dict(index=False, lineterminator="\r\n")
    data.ratings.set_axis(["userId", "movieId", "rating", "timestamp"], axis=1).to_csv(
        folder / "ratings.csv", float_format="%.1f", **crlf)
    pd.DataFrame({"movieId": data.items.item_id, "title": data.items.title,
                  "genres": ["|".join(g) or "(no genres listed)" for g in data.items.genres]}).to_csv(
        folder / "movies.csv", **crlf)
    data.tags.set_axis(["userId", "movieId", "tag", "timestamp"], axis=1).to_csv(folder / "tags.csv", **crlf)
    n = len(data.items)
    pd.DataFrame({"movieId": data.items.item_id, "imdbId": [f"{i:07d}" for i in rng.integers(1, 10**7, n)],
                  "tmdbId": rng.integers(1, 10**6, n)}).to_csv(folder / "links.csv", **crlf)
    (folder / "README.txt").write_text("Synthetic data in the MovieLens format, written by recsys_helpers.data."
                                       "write_movielens_folder (make_synthetic). It is not MovieLens data.\n")


def _whole_star_lines(ratings: pd.DataFrame, sep: str) -> list[str]:
    stars = np.ceil(ratings.rating).astype(int)
    return [sep.join(map(str, row)) for row in zip(ratings.user_id, ratings.item_id, stars, ratings.timestamp)]


def _write_100k(folder: Path, data: RecData, rng) -> None:
    _write_lines(folder / "u.data", _whole_star_lines(data.ratings, "\t"))
    items = []
    for item, title, year, genres in data.items.itertuples(index=False):
        on = set(_old_genre_names(genres)) or {"unknown"}
        url = "http://us.imdb.com/M/title-exact?" + urllib.parse.quote(title, safe="()")
        items.append(f"{item}|{title}|01-Jan-{year}||{url}|" + "|".join(str(int(g in on)) for g in _GENRES_100K))
    _write_lines(folder / "u.item", items, "latin-1")
    _write_lines(folder / "u.genre", [*(f"{g}|{i}" for i, g in enumerate(_GENRES_100K)), ""], "latin-1")
    _write_lines(folder / "u.user", [f"{u}|{rng.integers(15, 70)}|{rng.choice(['F', 'M'])}|{rng.choice(_OCCUPATIONS)}|"
                                     f"{rng.integers(10000, 99999)}" for u in range(1, data.ratings.user_id.max() + 1)])


def _write_1m(folder: Path, data: RecData, rng) -> None:
    _write_lines(folder / "ratings.dat", _whole_star_lines(data.ratings, "::"))
    _write_lines(folder / "movies.dat", [f"{i}::{t}::{'|'.join(_old_genre_names(g))}"
                                         for i, t, _, g in data.items.itertuples(index=False)], "latin-1")
    _write_lines(folder / "users.dat", [f"{u}::{rng.choice(['F', 'M'])}::{rng.choice([1, 18, 25, 35, 45, 50, 56])}::"
                                        f"{rng.integers(0, 21)}::{rng.integers(10000, 99999)}"
                                        for u in range(1, data.ratings.user_id.max() + 1)])


def write_movielens_folder(root, name: str = "ml-latest-small", n_users: int = 60, n_items: int = 100,
                           ratings_per_user: int = 20, seed: int = 0) -> Path:
    """Write a small synthetic data set (:func:`make_synthetic`) in the exact file format of MovieLens ``name``
    under ``root/<name>/`` and return that folder; ``load_movielens(name, data_dir=root)`` loads it.

    ml-latest-small, ml-25m: ratings.csv, movies.csv, tags.csv, links.csv (header, CRLF), README.txt. ml-100k:
    u.data, u.item (Latin-1, 24 fields), u.genre, u.user. ml-1m: ratings.dat, movies.dat, users.dat. ml-100k and
    ml-1m hold whole stars, so there a rating is rounded up (0.5 -> 1, 3.5 -> 4), and they call "Children"
    "Children's". A manifest marks the folder synthetic: it is checked against its own files and counts instead
    of the official ones. An existing folder is overwritten only if it is synthetic too.
    """
    _spec(name)
    seed = require_seed(seed)
    folder = Path(root) / name
    if folder.is_dir() and any(folder.iterdir()) and not (_read_manifest(folder) or {}).get("synthetic"):
        raise DataError(f"{folder} already holds data that write_movielens_folder did not write; choose another "
                        f"root, or delete that folder first.")
    data = make_synthetic(n_users, n_items, ratings_per_user=ratings_per_user, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    {"ml-100k": _write_100k, "ml-1m": _write_1m}.get(name, _write_csv_layout)(folder, data,
                                                                               np.random.default_rng(seed))
    r = data.ratings
    _write_manifest(folder, name, synthetic=True, counts=[len(r), r.user_id.nunique(), r.item_id.nunique()])
    return folder
