# Two entry points (see README): `make train` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BOOK_STAMP := $(VENV)/.book-installed

.PHONY: install train test test-browser browser lint chapters book

$(STAMP): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

$(BOOK_STAMP): $(STAMP) requirements-book.txt
	$(PY) -m pip install -q -r requirements-book.txt
	touch $(BOOK_STAMP)

train: $(STAMP)
	$(PY) -m minimrcnn.train $(ARGS)

# MINIMRCNN_SMOKE=1 shortens only the chapters' long training cells (the committed notebooks ran in full)
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check minimrcnn
	MINIMRCNN_SMOKE=1 $(PY) -m pytest -q --ignore=tests/browser $(ARGS)
	$(MAKE) test-browser

# The chapters' widgets and live plots as a person sees them: a JupyterLab server on 127.0.0.1 and headless
# Chromium (Debian's `chromium`, driven by Playwright). Screenshots of failures: runs/browser-test/.
# test_book.py builds the book site and reads every page of it in the same Chromium (screenshots: runs/book-test/).
test-browser: $(STAMP) $(BOOK_STAMP) browser
	MINIMRCNN_SMOKE=1 $(PY) -m pytest -q -rs --durations=5 tests/browser

# Debian's chromium, installed with apt-get when missing and we may (root). Under CI (CI=true) a browser
# that cannot be installed is an error; elsewhere the browser tests say why they skip.
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -n "$$CHROMIUM" ]; then \
		exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium (apt-get)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| { echo "error: apt-get install chromium failed"; [ "$$CI" != true ] || exit 1; }; \
	elif [ "$$CI" = true ]; then \
		echo "error: CI=true but no chromium and no way to install it (needs root and apt-get)"; exit 1; \
	else \
		echo "no chromium: the browser tests will skip (install it: sudo apt-get install chromium)"; \
	fi

# The book as a static site in _build/book/: the committed chapters (not executed) and the API reference from
# the docstrings (book/build.py; ARGS=--fresh rebuilds every page). Open it with
# `python -m http.server -d _build/book` (http://127.0.0.1:8000); any static host serves the folder.
book: $(BOOK_STAMP)
	$(PY) book/build.py $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check minimrcnn

# Re-execute every chapter in place (full mode) so the committed notebooks carry fresh outputs, widget state
# included (the book site shows the saved widgets without a kernel).
chapters: $(STAMP)
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=600 \
		--ExecutePreprocessor.store_widget_state=True chapters/*.ipynb
