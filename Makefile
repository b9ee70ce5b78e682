# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
STAMP := $(VENV)/.installed

.PHONY: venv engine browser demo claims docs screenshots test test-fast clean-tiny

$(STAMP): setup.py requirements/stack.txt requirements/peer.txt requirements/bert4keras.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements/stack.txt -r requirements/peer.txt
	$(PIP) install --no-deps -r requirements/bert4keras.txt
	$(PIP) install -e .
	$(PY) -m bert4keras_blog.app.cli info
	touch $(STAMP)

venv: $(STAMP)

# Post 7 plays against Fairy-Stockfish (Debian/Ubuntu package fairy-stockfish).
# Installed when missing and we may use apt; otherwise say how, and go on.
ENGINE_OK = command -v fairy-stockfish >/dev/null || test -x /usr/games/fairy-stockfish
engine:
	@$(ENGINE_OK) || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq fairy-stockfish; \
	else echo "note: Fairy-Stockfish is missing; post 7's engine games need it:" \
		"sudo apt-get install fairy-stockfish (or set FAIRY_STOCKFISH=/path/to/binary)"; fi; }

# The web page's browser tests drive Debian's Chromium (and a CJK font for the
# piece names). Installed when missing and we may use apt; otherwise say how.
BROWSER_OK = command -v chromium >/dev/null && command -v chromedriver >/dev/null
browser:
	@$(BROWSER_OK) || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver fonts-wqy-zenhei; \
	else echo "note: chromium is missing; the web page's browser tests are skipped:" \
		"sudo apt-get install chromium chromium-driver fonts-wqy-zenhei"; fi; }

# Every example's --quick run into runs/ (about 19 minutes on 2 cores), one
# table, and how to open the web page over those runs.
demo: venv engine
	$(PY) -m bert4keras_blog.app.demo

# The seeded comparisons the docs quote (about 140 minutes on 2 cores), into
# runs/claims/, with every claims table.
claims: venv engine
	$(PY) -m bert4keras_blog.app.demo --claims

# After `make claims` (and `make demo`): copy each example's metrics.json and
# the demo's table into docs/results/, and rewrite the results blocks of
# README.md and docs/*.md from them.
docs: venv
	$(PY) -m bert4keras_blog.app.results_pages --runs runs/claims --demo runs/demo.json

# After `make demo`: the web page over runs/, screenshots into docs/web/.
screenshots: venv browser
	$(PY) tests/web_tour.py --runs runs --out docs/web

test: venv engine browser
	$(PY) -m pytest

test-fast: venv
	$(PY) -m pytest -m "not slow"

clean-tiny:
	rm -rf checkpoints/tiny
