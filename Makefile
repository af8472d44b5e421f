# README's two commands: `make demo` and `make test`. Both create .venv when missing and
# install only what they need: the demo the kit alone, the tests the kit with its test
# tools, Ray and MkDocs (the `test`, `ray` and `docs` extras: the suite builds and browses the docs). Either may come first. `make lint` installs
# what `make test` does: ruff and mypy are test tools, and mypy reads Ray's types.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test
DOCS_STAMP := $(VENV)/.installed-docs
RESULTS ?= results
N_MODELS ?= 32
SPLIT := $(RESULTS)/digits-public
# bash for its `time` keyword: each demo step ends with a line giving its wall time.
SHELL := /bin/bash

.PHONY: demo test lint docs install clean

install: $(TEST_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test,ray,docs]'
	touch $@

$(DOCS_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $@

# The whole story on digits: split + original model, 2N reference models (reused when
# present; N of them score, all 2N measure the ceiling at N), the starter notebook's submission scored in the sandbox, the notebook executed
# headless (it shows that score's report inline), the leaderboard.
demo: export TIMEFORMAT = took %1R s
demo: $(DEMO_STAMP)
	time $(PY) -m data_prep build --dataset digits --split public --out $(SPLIT) --force
	time $(PY) -m scoring references --split-dir $(SPLIT) --n-models $$((2 * $(N_MODELS))) --jobs 2
	time $(PY) -m scoring score notebooks/starter.ipynb --team demo --split-dir $(SPLIT) --n-models $(N_MODELS) --out $(RESULTS)/scores/starter-public --replace
	time $(PY) -m starter_kit.notebook run notebooks/starter.ipynb --out $(RESULTS)/notebook -p SPLIT_DIR=$(abspath $(SPLIT))
	time $(PY) -m scoring leaderboard --results $(RESULTS)/scores

# Two workers (pytest-xdist; CI has 2 cores), each on one thread, each test file on one worker (its
# module fixtures built once); TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 2
test: $(TEST_STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# ruff (lint, then formatting) and mypy, configured in pyproject.toml; CI runs it before the tests.
lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The documentation site into site/ (mkdocs.yml; strict: a warning fails the build). The reference pages
# are generated from the code as it builds (docs/hooks/reference.py).
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

clean:
	rm -rf $(RESULTS) .pytest_cache site
