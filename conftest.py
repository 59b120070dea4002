"""Project-wide pytest set-up for the two test tiers.

- Fast tier (``make test``): everything under tests/ not marked ``full``.
- Full tier (``make test-full``): the committed notebooks under nbval (``--nbval-lax``: only cells tagged
  ``nbval-check-output`` must reproduce their stored output), then tests/test_full_tier.py, which asserts the
  metric bars on the results those notebook runs recorded in ``$RECSYS_RUN_DIR``, then the runs of notebooks on
  the other data sets' formats that tests/test_notebooks.py marks ``full``.
"""
import os
import tempfile

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_configure(config):
    if getattr(config.option, "nbval_lax", False) or getattr(config.option, "nbval", False):
        # the notebooks' kernels inherit this: their results.record calls write here
        if not os.environ.get("RECSYS_RUN_DIR"):
            os.environ["RECSYS_RUN_DIR"] = tempfile.mkdtemp(prefix="recsys-full-tier-")


@pytest.hookimpl(tryfirst=True)  # before `-m full` deselects anything
def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(pytest.mark.full)
