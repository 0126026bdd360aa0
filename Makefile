# Two entry points (see README): `make train` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install train test lint chapters

$(STAMP): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(PY) -m minimrcnn.train $(ARGS)

# MINIMRCNN_SMOKE=1 shortens only the chapters' long training cells (the committed notebooks ran in full)
test: $(STAMP)
	$(PY) -m ruff check .
	MINIMRCNN_SMOKE=1 $(PY) -m pytest -q $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

# Re-execute every chapter in place (full mode) so the committed notebooks carry fresh outputs.
chapters: $(STAMP)
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=600 chapters/*.ipynb
