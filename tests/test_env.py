"""recsys_helpers.env: seeding and the environment description. The one unit-test file that imports TensorFlow."""
from __future__ import annotations

import os
import random
import subprocess
import sys

import numpy as np
import pytest

from recsys_helpers.env import describe_environment, set_seed, setup


def draws():
    import keras

    return (random.random(), np.random.rand(3).tolist(),
            keras.ops.convert_to_numpy(keras.random.normal((4,))).tolist(),
            keras.ops.convert_to_numpy(keras.random.uniform((2, 2))).tolist())


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside Keras, harmless
def test_set_seed_makes_python_numpy_and_keras_draws_reproducible():
    tf = setup(7)  # quiet TensorFlow start-up, then set_seed(7)
    first = draws()
    set_seed(7)
    assert draws() == first
    set_seed(8)
    other = draws()
    assert all(a != b for a, b in zip(first, other))
    import keras

    set_seed(3)
    layer = keras.layers.Dense(3)
    layer.build((None, 2))
    weights = keras.ops.convert_to_numpy(layer.kernel).tolist()
    set_seed(3)
    again = keras.layers.Dense(3)
    again.build((None, 2))
    assert keras.ops.convert_to_numpy(again.kernel).tolist() == weights  # initialisers follow the seed
    assert tf.__version__.startswith("2.")


def test_describe_environment():
    info = describe_environment()
    for key in ("python", "numpy", "pandas", "matplotlib", "tensorflow", "keras", "keras backend", "devices", "gpu"):
        assert key in info and str(info[key]), key
    assert info["keras backend"] == "tensorflow"
    assert info["keras"].split(".")[0] == "3"
    assert "CPU:0" in info["devices"]


def test_importing_the_helpers_does_not_import_tensorflow():
    modules = ["recsys_helpers"] + [f"recsys_helpers.{m}" for m in ("data", "split", "metrics", "evaluation",
                                                                    "baselines", "results", "env", "plots",
                                                                    "exercises", "runner", "checks")]
    code = (f"import sys\nfor m in {modules!r}: __import__(m)\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, MPLBACKEND="Agg"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_require_memory_stops_early_with_advice():
    import pytest

    from recsys_helpers import env

    env.require_memory(1024, "a tiny array")  # fits: nothing happens
    with pytest.raises(MemoryError, match=r"With ml-25m, the matrices need about .* GiB.*smaller DATASET"):
        env.require_memory(1e15, "the matrices", "ml-25m")
