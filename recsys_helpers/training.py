"""Training utilities for the Keras models of the course: data sources that draw fresh negatives every epoch, and
early stopping on validation.

- ``NegativeSampling`` (taught in notebook 03, §5 for BPR; notebook 04 draws its epochs the same way by hand): a
  ``keras.utils.PyDataset`` over the training interactions that redraws the negatives (``sampling.sample_negatives``)
  and reshuffles at the start of every epoch. ``kind="triples"`` yields (user, positive, negative) triples for
  pairwise losses such as BPR; ``kind="pairs"`` yields labelled (user, item) pairs, one positive and ``negatives``
  negatives per interaction, for the binary cross-entropy.
- ``early_stopping``: the callback every gradient-descent model of the course uses, watching a validation metric and
  restoring the best weights.
- ``ValidationCheck`` (notebook 05, §3; notebook 06 uses it for every sequence model): early stopping on any
  validation score given as a function (higher is better), checked every ``every`` epochs, with the best weights
  restored.
- ``RankingEarlyStopping`` (notebook 03, §7a): early stopping on a ranking metric of the validation split (NDCG@k by
  default), measured every few epochs through the model's ``scores`` method, with the best weights restored.

Importing this module imports Keras (and so TensorFlow).
"""
from __future__ import annotations

import keras
import numpy as np
import scipy.sparse as sp

from .checks import require_positive_int, require_seed
from .evaluation import evaluate_ranking
from .metrics import RANKING_METRICS, check_k
from .sampling import sample_negatives


class NegativeSampling(keras.utils.PyDataset):
    """Batches of training interactions with negatives redrawn every epoch (see the module docstring).

    ``seen``: the binary (n_users, n_items) training matrix (SciPy sparse, e.g. ``IdMap.interactions(train)``, or a
    dense array); ``p``: item sampling probabilities (``None`` for uniform, or
    ``sampling.popularity_probabilities(seen)``)."""

    def __init__(self, seen: sp.csr_matrix, batch_size: int = 1024, negatives: int = 1, kind: str = "triples",
                 seed: int = 42, p=None, **kwargs):
        super().__init__(**kwargs)
        if kind not in ("triples", "pairs"):
            raise ValueError(f"kind must be 'triples' or 'pairs', got {kind!r}")
        self.batch_size = require_positive_int(batch_size, "batch_size")
        self.negatives = require_positive_int(negatives, "negatives")
        if not sp.issparse(seen):
            seen = np.asarray(seen)
            if seen.ndim != 2 or seen.dtype.kind not in "biuf":
                raise ValueError(f"seen must be the 2-D users × items training matrix, got a {seen.dtype} array of "
                                 f"shape {seen.shape}")
        self.kind, self.p, self.seen = kind, p, sp.csr_matrix(seen)
        self.pos_users, self.pos_items = self.seen.nonzero()
        if len(self.pos_users) == 0:
            raise ValueError("seen has no interaction to train on")
        self.rng = np.random.default_rng(require_seed(seed))
        self.on_epoch_end()

    def on_epoch_end(self):
        """Draw this epoch's negatives and shuffle (Keras calls it after every epoch; the constructor before the
        first)."""
        neg = sample_negatives(self.seen, self.pos_users, self.negatives, self.rng, self.p)  # (positives, negatives)
        if self.kind == "triples":
            self.users = np.repeat(self.pos_users, self.negatives)
            self.items = np.stack([np.repeat(self.pos_items, self.negatives), neg.ravel()], axis=1)
            self.labels = np.zeros(len(self.users), np.float32)
        else:
            self.users = np.concatenate([self.pos_users, np.repeat(self.pos_users, self.negatives)])
            self.items = np.concatenate([self.pos_items, neg.ravel()])
            self.labels = np.concatenate([np.ones(len(self.pos_users)), np.zeros(neg.size)]).astype(np.float32)
        self.order = self.rng.permutation(len(self.users))

    def __len__(self):
        return int(np.ceil(len(self.users) / self.batch_size))

    def __getitem__(self, b):
        idx = self.order[b * self.batch_size:(b + 1) * self.batch_size]
        if self.kind == "triples":
            x = np.column_stack([self.users[idx], self.items[idx]]).astype("int32")  # (batch, 3): u, i, j
            return x, self.labels[idx]
        return {"user": self.users[idx].astype("int32"), "item": self.items[idx].astype("int32")}, self.labels[idx]


def early_stopping(monitor: str = "val_loss", patience: int = 3, mode: str = "auto") -> keras.callbacks.EarlyStopping:
    """Stop when ``monitor`` (a validation metric) has not improved for ``patience`` epochs and restore the weights
    of the best epoch. ``mode``: "min" (a loss or an error), "max" (a score such as NDCG) or "auto" (from the name)."""
    if mode not in ("auto", "min", "max"):  # (Keras would warn and fall back to "auto")
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return keras.callbacks.EarlyStopping(monitor=monitor, patience=require_positive_int(patience, "patience"),
                                         mode=mode, restore_best_weights=True)


def _one_number(value) -> float:
    """A validation score as a float; anything that is not one number (an array of several, None, a string, True)
    is refused, naming the fix."""
    arr = np.asarray(value)  # (None is an object array, True a bool one: both refused)
    if arr.ndim != 0 or arr.dtype.kind not in "iuf":
        raise TypeError(f"score() must return one number (the validation score, higher is better), got {value!r}; "
                        "return e.g. evaluate_ranking(...)['ndcg@10'], not the whole dict or a per-user array")
    return float(arr)


class ValidationCheck(keras.callbacks.Callback):
    """Every ``every`` epochs: ``score()`` (a validation score, higher is better; the values are in ``history``, the
    epochs they were measured after in ``epochs``); keep the best check's weights, stop after ``patience`` checks
    without a new best, and restore the best weights at the end. ``best_epoch`` is counted from 1."""

    def __init__(self, score, patience: int = 3, every: int = 1):
        super().__init__()
        if not callable(score):
            raise TypeError(f"score must be a function that returns a validation score, got {type(score).__name__}")
        self.score, self.patience = score, require_positive_int(patience, "patience")
        self.every = require_positive_int(every, "every")
        self.history, self.epochs, self.best = [], [], None

    def on_train_begin(self, logs=None):
        self.history, self.epochs, self.best = [], [], None  # a check reused for another fit starts afresh
        self.ran, self.cap = 0, (self.params or {}).get("epochs")

    def on_epoch_end(self, epoch, logs=None):
        self.ran = epoch + 1
        if (epoch + 1) % self.every:
            return
        value = _one_number(self.score())
        if not np.isfinite(value):
            raise ValueError(f"the validation score is {value} after epoch {epoch + 1}: training has diverged or the "
                             "score function is broken (lower the learning rate, or check the score)")
        self.history.append(value)
        self.epochs.append(epoch + 1)
        if self.best is None or value > max(self.history[:-1]):
            self.best = self.model.get_weights()
        elif len(self.history) - 1 - int(np.argmax(self.history)) >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best is not None:
            self.model.set_weights(self.best)

    @property
    def best_epoch(self) -> int:
        if not self.history:
            raise ValueError("no epoch has been checked yet")
        return self.epochs[int(np.argmax(self.history))]

    @property
    def log(self) -> "EpochLog":
        """Epochs run, best epoch and cap of the last ``fit`` (what ``Results.record(..., epochs=)`` stores)."""
        return EpochLog(self.ran, self.best_epoch, self.cap)


class RankingEarlyStopping(keras.callbacks.Callback):
    """Every ``every`` epochs, ``evaluate_ranking(model, frame, val, k)[metric]`` (kept in ``checks`` as
    {epoch: value}); stops after ``patience`` checks without a new best and restores the weights of the best check.
    The model must have a ``scores(user_idx)`` method (the course's scoring contract) and ``frame`` must be the
    frame the model's indices come from."""

    def __init__(self, frame, val, every: int = 1, patience: int = 1, k: int = 10, metric: str = "ndcg"):
        super().__init__()
        if metric not in RANKING_METRICS:
            raise ValueError(f"metric must be one of {sorted(RANKING_METRICS)}, got {metric!r}")
        self.frame, self.val, self.k = frame, val, check_k(k)
        self.every = require_positive_int(every, "every")
        self.patience = require_positive_int(patience, "patience")
        self.metric = f"{metric}@{self.k}"
        self.checks, self.best_weights = {}, None

    def on_train_begin(self, logs=None):
        self.checks, self.best_weights = {}, None  # a callback reused for another fit starts afresh
        self.ran, self.cap = 0, (self.params or {}).get("epochs")

    def on_epoch_end(self, epoch, logs=None):
        self.ran = epoch + 1
        if (epoch + 1) % self.every:
            return
        self.checks[epoch + 1] = float(evaluate_ranking(self.model, self.frame, self.val, self.k)[self.metric])
        best = max(self.checks, key=self.checks.get)
        if best == epoch + 1:
            self.best_weights = self.model.get_weights()
        elif sum(e > best for e in self.checks) >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)

    @property
    def log(self) -> "EpochLog":
        """Epochs run, best epoch and cap of the last ``fit`` (what ``Results.record(..., epochs=)`` stores)."""
        if not self.checks:
            raise ValueError("no epoch has been checked yet")
        return EpochLog(self.ran, max(self.checks, key=self.checks.get), self.cap)


class EpochLog:
    """How a training run of a model trained by gradient descent went: ``ran`` epochs, the ``best`` one (by
    validation) and the ``cap`` it was allowed; ``stopped_early`` when something other than the cap ended it.
    ``Results.record(..., epochs=EpochLog(ran, best, cap))`` stores it (notebooks 03–11 record one per model, so a
    model the budget cut short is labelled so). ``ValidationCheck.log`` and ``RankingEarlyStopping.log`` give one."""

    def __init__(self, ran: int, best: int, cap: int):
        self.ran, self.best, self.cap = (require_positive_int(v, n) for v, n in ((ran, "ran"), (best, "best"),
                                                                                  (cap, "cap")))
        if not self.best <= self.ran <= self.cap:
            raise ValueError(f"need best <= ran <= cap, got best {best}, ran {ran}, cap {cap}")

    @property
    def stopped_early(self) -> bool:
        return self.ran < self.cap

    def __repr__(self) -> str:
        return f"EpochLog(ran={self.ran}, best={self.best}, cap={self.cap})"

