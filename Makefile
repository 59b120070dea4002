# The course's two commands: `make course` runs every notebook; `make test` passes the test suite.
# Both create (or update) the virtual environment at .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
# The environment installs from requirements.lock (exact versions and hashes, every platform); `make lock` refreshes it.
PIP_PIN := pip==26.3
UV_PIN := uv==0.13.10


.PHONY: help venv lock course smoke reference test test-full lab notebooks clean-runs

help:
	@echo "make course     run every notebook at its defaults into runs/<date-time>, with the leaderboard"
	@echo "make smoke      the same with small parameters (about 5 minutes)"
	@echo "make reference  the notebooks with a PROFILE parameter at PROFILE=reference into notebooks/reference (hours on 2 cores)"
	@echo "make test       the fast test tier (unit tests, every notebook with smoke parameters)"
	@echo "make test-full  the full tier (every notebook at its defaults under nbval, metric bars, other data sets)"
	@echo "make lab        JupyterLab on notebooks/ with the course's kernel"
	@echo "make notebooks  rebuild and execute notebooks from tools/notebooks (maintainers)"

$(STAMP): pyproject.toml requirements.lock
	@test -n "$(PYTHON)" || { echo "Python 3.11 is needed: install it, or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(PIP_PIN) $(UV_PIN)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python --require-hashes requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name recsys-course --display-name "Python 3 (recsys course)" >/dev/null
	touch $(STAMP)

venv: $(STAMP)

# Refresh requirements.lock and environment.yml after changing a dependency in pyproject.toml (tools/lock.py), then
# `make venv` and re-execute the notebooks: a new version can move a number.
lock:
	$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) tools/lock.py

course: $(STAMP)
	$(BIN)/python -m recsys_helpers run $(ARGS)

smoke: $(STAMP)
	$(BIN)/python -m recsys_helpers run --smoke $(ARGS)

reference: $(STAMP)
	$(BIN)/python tools/reference.py $(ARGS)

# unit tests on both cores (pytest-xdist), then the notebooks one at a time (their run times are budgets to check)
test: $(STAMP)
	$(BIN)/python -m pytest -m "not full and not notebooks" -n 2 $(ARGS)
	$(BIN)/python -m pytest -m "notebooks and not full" $(ARGS)

# every notebook at its defaults under nbval and on the other data sets' formats, two at a time (pytest-xdist, one
# notebook per worker); then notebook 10 alone (it measures latencies and reads the others' results), the metric bars
# and the comparison with the committed records, on the results those runs recorded in one run folder
test-full: $(STAMP)
	run=$$(mktemp -d -t recsys-full-tier-XXXXXX) && export RECSYS_RUN_DIR=$$run && \
	$(BIN)/python -m pytest -m full --nbval-lax notebooks --ignore=notebooks/reference \
		--deselect notebooks/10_serving_and_scaling.ipynb tests/test_notebooks.py -n 2 --dist loadfile $(ARGS) && \
	$(BIN)/python -m pytest -m full --nbval-lax notebooks/10_serving_and_scaling.ipynb tests/test_full_tier.py \
		tests/test_committed_runs.py $(ARGS)

lab: $(STAMP)
	cd notebooks && ../$(BIN)/jupyter lab --notebook-dir=. $(if $(filter 0,$(shell id -u)),--allow-root) $(ARGS)

notebooks: $(STAMP)
	$(BIN)/python tools/nbbuild.py $(ARGS)

clean-runs:
	rm -rf runs
