"""Interaction data as models see it: id maps, the seen-item matrix, and time-ordered user histories.

Index convention (every chapter): ``IdMap.from_train(train)`` numbers the users and the items of the *training*
frame in sorted id order (user index ``u`` is the ``u``-th smallest training user id). Score matrices, embedding
tables and histories all use these indices. ``train_index(train)`` builds the id map and the (users × items)
seen-item matrix of a frame once and reuses them for every later call with the same, unchanged frame.

Histories (taught in notebook 01, §7; used by the sequence models of the later chapters): each user's items in time
order, ties in time broken by item id so the order is deterministic. Timestamps must be numbers or datetimes (text
would order '10' before '9'). ``pad_histories`` left-pads them to a fixed length with 0 and shifts item indices by
one (index ``i`` is stored as ``i + 1``), the convention of Keras ``Embedding(mask_zero=True)``; a history must
hold item indices (>= 0): the -1 that ``IdMap.items(..., strict=False)`` gives an unknown id is refused, since it
would become padding.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .checks import require_columns, require_finite_array, require_positive_int, require_time_order


def _mixed_ids(what: str, values, column: str = "user_id") -> TypeError:
    kinds = sorted({type(v).__name__ for v in values})
    return TypeError(f"{what} mixes ids of different types ({', '.join(kinds)}), e.g. 7 and '7', which can be "
                     f"neither sorted nor matched; convert them to one type first, e.g. df['{column}'].astype(str)")


def _require_one_id_kind(frame: pd.DataFrame, what: str) -> None:
    """Refuse an id column that mixes text and numbers (7 and '7'): one user would count as two, or sorting fails."""
    for column in ("user_id", "item_id"):
        if frame[column].dtype == object:
            text = frame[column].map(lambda v: isinstance(v, (str, bytes))).to_numpy()
            if text.any() and not text.all():
                raise _mixed_ids(f"the {column} column of {what}", frame[column], column)


@dataclass
class IdMap:
    """Contiguous indices for the users and items of a training frame (sorted ids)."""

    user_ids: np.ndarray
    item_ids: np.ndarray

    @classmethod
    def from_train(cls, train: pd.DataFrame) -> "IdMap":
        require_columns(train, ["user_id", "item_id"], "train")
        _require_one_id_kind(train, "train")
        return cls(np.unique(train["user_id"].to_numpy()), np.unique(train["item_id"].to_numpy()))

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def _lookup(self, known: np.ndarray, ids, what: str, strict: bool) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise TypeError(f"{what}_ids must be a list, array or Series of ids, got {ids.ndim}-d {ids.dtype} "
                            f"{str(ids)[:40]}; for one id use e.g. ids.{what}s([id])[0]")
        if len(ids) and len(known) and (ids.dtype.kind in "iuf") != (known.dtype.kind in "iuf"):
            raise TypeError(f"{what} ids of type {ids.dtype} cannot match the training {what} ids of type "
                            f"{known.dtype} (e.g. '3' versus 3); convert them first")
        try:
            pos = np.searchsorted(known, ids).clip(0, max(len(known) - 1, 0))
        except TypeError:  # text and numbers mixed in an object array
            raise _mixed_ids(f"the {what} ids asked for", ids) from None
        found = known[pos] == ids if len(known) else np.zeros(len(ids), bool)
        if strict and not found.all():
            raise KeyError(f"{int((~found).sum())} {what} id(s) are not in the training data, e.g. "
                           f"{ids[~found][:5].tolist()}; use strict=False to get -1 for them")
        return np.where(found, pos, -1)

    def users(self, user_ids, strict: bool = True) -> np.ndarray:
        """Indices of ``user_ids`` (-1 for unknown ids when ``strict=False``)."""
        return self._lookup(self.user_ids, user_ids, "user", strict)

    def items(self, item_ids, strict: bool = True) -> np.ndarray:
        """Indices of ``item_ids`` (-1 for unknown ids when ``strict=False``)."""
        return self._lookup(self.item_ids, item_ids, "item", strict)

    def interactions(self, frame: pd.DataFrame, values: str | None = None) -> sp.csr_matrix:
        """A (n_users, n_items) sparse matrix of ``frame`` (1s, or the numbers in column ``values``, which must be
        finite: a NaN would be stored as a value); rows of unknown users or items are dropped."""
        missing = [c for c in ["user_id", "item_id"] + ([] if values is None else [values]) if c not in frame]
        if missing:
            raise ValueError(f"frame is missing column(s) {missing}; it has {list(frame.columns)}")
        u = self.users(frame["user_id"], strict=False)
        i = self.items(frame["item_id"], strict=False)
        keep = (u >= 0) & (i >= 0)
        if values is None:
            data = np.ones(keep.sum())
        elif not pd.api.types.is_numeric_dtype(frame[values]):
            raise TypeError(f"values column {values!r} has dtype {frame[values].dtype}, not numbers; convert it "
                            f"first, e.g. pd.to_numeric(frame[{values!r}])")
        else:
            data = require_finite_array(frame[values].to_numpy(np.float64, na_value=np.nan)[keep],
                                        f"values column {values!r}")
        return sp.csr_matrix((data, (u[keep], i[keep])), shape=(self.n_users, self.n_items))


@dataclass
class TrainIndex:
    """The id map of a training frame and its binary (n_users, n_items) seen-item matrix (CSR, sorted indices)."""

    ids: IdMap
    seen: sp.csr_matrix


_INDEX_CACHE: dict[int, tuple[tuple, TrainIndex]] = {}


def _fingerprint(frame: pd.DataFrame) -> tuple:
    """The frame's (user, item) pairs, in any row order: hashes of whole rows, so ids permuted within one column
    (which keeps each column's set of values) change it."""
    pairs = frame[["user_id", "item_id"]]
    rows = pd.util.hash_pandas_object(pairs, index=False).to_numpy()
    return (len(frame), tuple(pairs.dtypes.astype(str)), int(rows.sum()), int((rows * rows).sum()))


def train_index(train: pd.DataFrame) -> TrainIndex:
    """``TrainIndex`` of ``train``, built once per frame and reused while the frame's (user, item) pairs are
    unchanged (a grid search that evaluates 50 models on one split builds it once)."""
    require_columns(train, ["user_id", "item_id"], "train")
    key, fingerprint = id(train), _fingerprint(train)
    cached = _INDEX_CACHE.get(key)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    ids = IdMap.from_train(train)
    seen = ids.interactions(train)
    seen.data[:] = 1.0  # a duplicated row is still one seen item
    seen.sort_indices()
    index = TrainIndex(ids, seen)
    _INDEX_CACHE[key] = (fingerprint, index)
    weakref.finalize(train, _INDEX_CACHE.pop, key, None)
    return index


# ---------------------------------------------------------------------------------------------- histories

def time_ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` sorted by user, then time, then item id (the deterministic order of every history; the splits
    ``leave_last_out`` and ``sequential_split`` use it too). Timestamps must be numbers or datetimes."""
    require_columns(frame, ["user_id", "item_id", "timestamp"], "interactions")
    _require_one_id_kind(frame, "interactions")
    require_time_order(frame, "interaction")
    return frame.sort_values(["user_id", "timestamp", "item_id"], kind="stable").reset_index(drop=True)


def user_histories(frame: pd.DataFrame, ids: IdMap) -> list[np.ndarray]:
    """Each user's item indices in time order (ties by item id), one array per user in ``ids`` order.

    Interactions with users or items unknown to ``ids`` are left out; a user with none gets an empty array."""
    ordered = time_ordered(frame)
    u = ids.users(ordered["user_id"], strict=False)
    i = ids.items(ordered["item_id"], strict=False)
    keep = (u >= 0) & (i >= 0)
    u, i = u[keep], i[keep]
    bounds = np.searchsorted(u, np.arange(ids.n_users + 1))  # u is sorted: the frame is ordered by user id
    return [i[bounds[k]:bounds[k + 1]] for k in range(ids.n_users)]


def _history(h, name: str = "histories") -> np.ndarray:
    """One history as an int64 array of item indices: text, fractions and negative indices (the -1 of an unknown
    id, which would become padding or index the last embedding row) are refused."""
    arr = np.asarray(h)
    if arr.ndim != 1:
        raise ValueError(f"a history must be a 1-d sequence of item indices, got shape {arr.shape}")
    if arr.dtype.kind not in "iu" and arr.size:
        if not (arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all()):
            raise TypeError(f"{name} must hold integer item indices (from IdMap.items or user_histories), got "
                            f"{arr.dtype} values such as {arr[:3].tolist()}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must hold item indices (>= 0), got {arr.min()}: -1 is what IdMap.items(..., "
                         "strict=False) gives an unknown id, and it is no item; drop those first, e.g. h[h >= 0]")
    return arr


def pad_histories(histories, max_len: int) -> np.ndarray:
    """A (len(histories), max_len) int array: the last ``max_len`` items of each history, left-padded with 0;
    item index ``i`` is stored as ``i + 1`` (0 is padding, as ``Embedding(mask_zero=True)`` expects)."""
    max_len = require_positive_int(max_len, "max_len")
    return _pad([_history(h) for h in histories], max_len)


def _pad(histories: list[np.ndarray], max_len: int) -> np.ndarray:
    """``pad_histories`` of histories already checked by ``_history``."""
    out = np.zeros((len(histories), max_len), dtype=np.int64)
    for row, h in enumerate(histories):
        tail = h[-max_len:]
        if len(tail):
            out[row, max_len - len(tail):] = tail + 1
    return out


def training_stretches(histories, max_len: int, max_history: int):
    """Inputs and targets (item index + 1, 0 = padding) of shape (n, max_len) for training a next-item model on
    every position (notebook 06 teaches it; notebook 09 reuses it): the last ``max_history`` + 1 items of each
    history are cut, from the end, into stretches whose position t is trained to predict the item after it."""
    max_len = require_positive_int(max_len, "max_len")
    max_history = require_positive_int(max_history, "max_history")
    inputs, targets = [], []
    for h in histories:
        h = _history(h)[-(max_history + 1):] + 1
        end = len(h)
        while end > 1:
            start = max(0, end - 1 - max_len)
            inputs.append(np.pad(h[start:end - 1], (max_len - (end - 1 - start), 0)))
            targets.append(np.pad(h[start + 1:end], (max_len - (end - 1 - start), 0)))
            end = start + 1
    if not inputs:
        raise ValueError("no history has two or more items, so there is no next item to train on")
    return np.array(inputs), np.array(targets)


def next_item_pairs(histories, max_len: int, min_history: int = 1):
    """Training pairs (history → next item) from every position of every history.

    Returns ``(users, inputs, targets)``: the user index of each pair, a (pairs, max_len) padded history
    (``pad_histories`` convention) and the item index that followed it. A position needs at least
    ``min_history`` earlier items; a user with fewer than ``min_history + 1`` items contributes no pair."""
    max_len = require_positive_int(max_len, "max_len")
    min_history = require_positive_int(min_history, "min_history")
    users, inputs, targets = [], [], []
    for u, h in enumerate(histories):
        h = _history(h)
        for t in range(min_history, len(h)):
            users.append(u)
            inputs.append(h[max(0, t - max_len):t])
            targets.append(h[t])
    if not targets:
        raise ValueError(f"no history has more than {min_history} item(s), so there is no (history → next item) "
                         "pair to train on")
    return np.asarray(users, dtype=np.int64), _pad(inputs, max_len), np.asarray(targets, dtype=np.int64)


def sliding_windows(history, length: int, targets: int = 1):
    """All windows of ``length`` consecutive items of one history and the ``targets`` items after each (Caser's
    training examples). Returns ``(windows, next_items)`` of shapes (n, length) and (n, targets); a history
    shorter than ``length + targets`` gives none (two empty arrays)."""
    length = require_positive_int(length, "length")
    targets = require_positive_int(targets, "targets")
    h = _history(history, "history")
    n = len(h) - length - targets + 1
    if n <= 0:
        return np.empty((0, length), np.int64), np.empty((0, targets), np.int64)
    idx = np.arange(n)[:, None]
    return h[idx + np.arange(length)], h[idx + length + np.arange(targets)]
