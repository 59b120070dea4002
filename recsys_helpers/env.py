"""Seeding, determinism and a description of the environment, with a quiet TensorFlow start-up.

Every notebook's set-up cell is one call, ``tf, results = env.start_notebook("03_matrix_factorisation", SEED)``,
made *before* ``import keras``: it silences TensorFlow's C++ start-up chatter (which would otherwise fill the
notebook with log lines), seeds Python, NumPy and Keras, makes TensorFlow's ops deterministic so a rerun reproduces
the committed numbers, sets the course's plotting and table style, prints a one-line description of the
environment, and returns the notebook's ``Results``. ``setup(SEED)`` does the first three alone.
"""
from __future__ import annotations

import contextlib
import os
import platform
import random
import sys

import numpy as np


@contextlib.contextmanager
def _silenced_stderr():
    """Send file descriptor 2 to /dev/null: TensorFlow logs from C++ before Python can configure it."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (some embedded interpreters): nothing to silence
        yield
        return
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow():
    """Import TensorFlow (and list its devices) without its start-up log lines; return the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with _silenced_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()
        import keras  # noqa: F401  (Keras prints nothing, but load it while we are here)
    tf.get_logger().setLevel("ERROR")
    return tf


def set_seed(seed: int = 42, deterministic: bool = True) -> None:
    """Seed Python, NumPy and Keras (which seeds the backend); make TensorFlow ops deterministic."""
    random.seed(seed)
    np.random.seed(seed)
    import keras

    keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def setup(seed: int = 42, deterministic: bool = True):
    """Quiet TensorFlow start-up, seeds and determinism in one call; returns the TensorFlow module."""
    tf = import_tensorflow()
    set_seed(seed, deterministic)
    return tf


PROFILES = ("laptop", "reference")


def start_notebook(notebook: str, seed: int = 42, deterministic: bool = True, profile: str = "laptop"):
    """The set-up of every notebook in one call (see the module docstring); returns ``(tf, results)``.

    ``profile`` is the notebook's ``PROFILE`` parameter: ``"laptop"`` (the default: the whole notebook in minutes on a
    2-core CPU, every compared model on the same stated budget) or ``"reference"`` (every compared model at its
    validation-chosen setting, trained until early stopping ends it; ``make reference``). It is printed and stored
    with every record."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from .results import Results

    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"SEED must be a whole number, got {seed!r}")
    if profile not in PROFILES:
        raise ValueError(f"PROFILE must be one of {PROFILES}, got {profile!r}")
    tf = setup(int(seed), deterministic)
    plt.rcParams.update({"axes.spines.top": False, "axes.spines.right": False, "figure.max_open_warning": 0})
    pd.set_option("display.precision", 4)
    info = describe_environment()
    print(f"{notebook}: TensorFlow {info.get('tensorflow', '-')}, Keras {info['keras']} ({info['keras backend']} "
          f"backend), GPU: {info.get('gpu', 'none')}; seed {int(seed)}; profile {profile}")
    return tf, Results(notebook, profile=profile)


def available_memory() -> int:
    """Bytes of memory available to a new allocation (``MemAvailable`` on Linux, else the physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not block


def require_memory(n_bytes: float, what: str, dataset: str = "this data set", share: float = 0.8) -> None:
    """Stop with a clear message, before anything large is allocated, when ``n_bytes`` (what a notebook will hold
    at once) exceeds ``share`` of the memory available. Each notebook calls it right after loading its data."""
    available = available_memory()
    if n_bytes > share * available:
        raise MemoryError(
            f"With {dataset}, {what} need about {n_bytes / 2**30:,.1f} GiB of memory, but this machine has "
            f"{available / 2**30:,.1f} GiB available. Run the notebook with a smaller DATASET (ml-latest-small, "
            f"ml-100k or ml-1m), or on a machine with more memory.")


_SIMD = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile")


def machine_signature() -> dict:
    """What decides which numeric kernels TensorFlow and NumPy pick on this machine: the CPU model, its vector
    instruction sets and the number of cores. Two runs with the same signature (and the locked versions) give the
    same numbers; on another signature the last digits of a trained model may differ (the full tier's comparison
    of recorded metrics allows for that)."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu in ("", platform.machine(), platform.processor()):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return {"cpu": cpu, "simd": [f for f in _SIMD if f in flags], "cores": os.cpu_count()}


def describe_environment() -> dict:
    """Versions of Python and the libraries the course relies on, the Keras backend and the devices."""
    import keras
    import matplotlib
    import pandas as pd

    info = {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu cores": os.cpu_count(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "matplotlib": matplotlib.__version__,
        "keras": keras.__version__,
        "keras backend": keras.backend.backend(),
    }
    if keras.backend.backend() == "tensorflow":
        tf = import_tensorflow()
        gpus = tf.config.list_physical_devices("GPU")
        info["tensorflow"] = tf.__version__
        info["devices"] = ", ".join(d.name.replace("/physical_device:", "") for d in tf.config.list_physical_devices())
        info["gpu"] = f"{len(gpus)} GPU(s)" if gpus else "none (training runs on the CPU)"
    return info
