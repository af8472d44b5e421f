# README's two commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RESULTS ?= results
N_MODELS ?= 32
SPLIT := $(RESULTS)/digits-public

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,ray]'
	touch $(STAMP)

# The whole story on digits: split + original model, reference models (reused when
# present), the starter notebook's submission scored in the sandbox, the notebook executed
# headless (it shows that score's report inline), the leaderboard.
demo: $(STAMP)
	$(PY) -m data_prep build --dataset digits --split public --out $(SPLIT) --force
	$(PY) -m scoring references --split-dir $(SPLIT) --n-models $(N_MODELS) --jobs 2
	$(PY) -m scoring score notebooks/starter.ipynb --team demo --split-dir $(SPLIT) --n-models $(N_MODELS) --out $(RESULTS)/scores/starter-public --replace
	$(PY) -m starter_kit.notebook run notebooks/starter.ipynb --out $(RESULTS)/notebook -p SPLIT_DIR=$(abspath $(SPLIT))
	$(PY) -m scoring leaderboard --results $(RESULTS)/scores

test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

clean:
	rm -rf $(RESULTS) .pytest_cache
