# giasok — `make test` is the one test command (CI runs it through .ci/run).
PYTHON  ?= python3.11
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
NODE    := node_modules/.installed
PROFILE ?= cpu
DEVICE  ?= cpu
EXECUTOR ?= local
NB      ?=
BUILD   ?= build

.PHONY: install test bench book run publish pages clean

# The virtual environment with the package, its pinned dependencies, the book tools and Ray. pip takes
# torch/torchvision from this machine's wheel store (see README). Re-runs when pyproject changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,book,ray]'
	touch $(STAMP)

# The book's JavaScript (widget manager, require.js, MathJax), served from the build: no CDN.
$(NODE): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NODE)

install: $(STAMP) $(NODE)

# The import contracts first (pyproject's [tool.importlinter]): seconds, and a broken layer is named at once.
test: install
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -v --durations=20

# `make bench DEVICE=cuda` on a GPU; BENCH_ARGS passes the script's other options (--help lists them).
bench: $(STAMP)
	$(PY) benchmarks/bench.py --device $(DEVICE) $(BENCH_ARGS)

# Execute every notebook with papermill at PROFILE/DEVICE, then build the HTML book. EXECUTOR=ray runs the grids
# on Ray (a local instance, or the cluster that RAY_ADDRESS names; README: "Sweeps on a Ray cluster").
book: install
	GIASOK_EXECUTOR=$(EXECUTOR) $(PY) -m giasok.book build --profile $(PROFILE) --device $(DEVICE) --build $(BUILD)

# Execute one section, e.g. `make run NB=01 PROFILE=paper DEVICE=cuda [EXECUTOR=ray]`.
run: install
	@test -n "$(NB)" || { echo "usage: make run NB=01 [PROFILE=cpu] [DEVICE=cpu] [EXECUTOR=local]"; exit 2; }
	GIASOK_EXECUTOR=$(EXECUTOR) $(PY) -m giasok.book run --profile $(PROFILE) --device $(DEVICE) --build $(BUILD) $(NB)

# The built book as one archive that works offline (build/giasok-book.zip): run `make book` first.
publish: $(STAMP)
	$(PY) -m giasok.book publish --build $(BUILD)

# GitHub Pages, as Jupyter Book documents it: push the built HTML to the gh-pages branch (needs a network
# and a remote named origin).
pages: publish
	$(VENV)/bin/ghp-import --no-jekyll --push --force $(BUILD)/_build/html

clean:
	rm -rf $(VENV) node_modules results $(BUILD) .pytest_cache .import_linter_cache
