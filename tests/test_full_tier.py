"""Full tier: after nbval has executed every notebook at its committed defaults (``make test-full``), assert each
notebook's metric bars on the results those runs recorded in ``$RECSYS_RUN_DIR``."""
import os

import pytest

from bars import BARS, RECORDS_NOTHING, check_bar
from recsys_helpers.results import read_results
from recsys_helpers.runner import course_notebooks

pytestmark = pytest.mark.full


@pytest.fixture(scope="module")
def records():
    run_dir = os.environ.get("RECSYS_RUN_DIR")
    assert run_dir, "run the full tier with `make test-full` (nbval executes the notebooks first)"
    found = read_results(run_dir)
    assert found, f"no results.json in {run_dir}: did nbval execute the notebooks?"
    return found


@pytest.mark.parametrize("stem", [nb.stem for nb in course_notebooks()])
def test_bars_at_defaults(records, stem):
    mine = [r for r in records if r["notebook"] == stem]
    if stem in RECORDS_NOTHING:
        return
    assert mine, f"{stem} recorded no results at its defaults"
    assert stem in BARS and BARS[stem], f"{stem} has no metric bars in tests/bars.py"
    for bar in BARS[stem]:
        check_bar(mine, bar)
