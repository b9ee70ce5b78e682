# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast clean-tiny

$(STAMP): setup.py requirements/stack.txt requirements/peer.txt requirements/bert4keras.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements/stack.txt -r requirements/peer.txt
	$(PIP) install --no-deps -r requirements/bert4keras.txt
	$(PIP) install -e .
	$(PY) -m bert4keras_blog.cli info
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(PY) -m bert4keras_blog.demo

test: venv
	$(PY) -m pytest

test-fast: venv
	$(PY) -m pytest -m "not slow"

clean-tiny:
	rm -rf checkpoints/tiny
