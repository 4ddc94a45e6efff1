# BPTT, executable: the two set-up commands are `make book` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MATHJAX := _extra/mathjax/.version
# Two pytest workers fit this course's 2-core target machine; override with `make test JOBS=1`.
JOBS ?= 2
# One BLAS/torch thread per worker: with two workers on two cores, more threads only contend
# (tiny matrix products then run 100x slower). Notebook kernels inherit it.
TEST_THREADS ?= 1
# Extra arguments for `make lab`; as root (Binder, containers) Jupyter refuses to start without
# --allow-root, so it is added there: `make lab LAB_ARGS="--no-browser --ip=0.0.0.0"` to change.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)
# `make serve`: the built book over http (search shows excerpts only over http, not file://).
PORT ?= 8000

.PHONY: install book serve test lab bench lock clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

$(MATHJAX): tools/fetch_mathjax.py
	$(BIN)/python tools/fetch_mathjax.py

install: $(STAMP) $(MATHJAX)

book: install
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "The book is in _build/html: run 'make serve' and open http://127.0.0.1:$(PORT)/"

serve:
	@test -f _build/html/index.html || { echo "no built book: run 'make book' first"; exit 1; }
	@echo "Serving the book at http://127.0.0.1:$(PORT)/ (Ctrl+C stops it)"
	$(PYTHON) -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

test: install
	OMP_NUM_THREADS=$(TEST_THREADS) $(BIN)/python -m pytest -n $(JOBS) --dist loadscope

lab: install
	$(BIN)/jupyter lab $(LAB_ARGS)

bench: install
	$(BIN)/python -m benchmarks

# Re-resolve the pins after changing a dependency in pyproject.toml, then run `make test`.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	{ echo "# The exact versions every machine of the project installs (make, CI, Binder)."; \
	  echo "# Regenerate with: make lock   (then run make test)"; \
	  .venv-lock/bin/python -c 'import sys; print("# resolved on Python %d.%d" % sys.version_info[:2])'; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable | sed 's/+cpu$$//'; } > constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf _build .pytest_cache .hypothesis test-artifacts
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
