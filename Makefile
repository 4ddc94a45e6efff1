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

.PHONY: install book test lab bench lock clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

$(MATHJAX): tools/fetch_mathjax.py
	$(BIN)/python tools/fetch_mathjax.py

install: $(STAMP) $(MATHJAX)

book: install
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "The book is in _build/html: open _build/html/index.html in a browser."

test: install
	OMP_NUM_THREADS=$(TEST_THREADS) $(BIN)/python -m pytest -n $(JOBS) --dist loadscope

lab: install
	$(BIN)/jupyter lab

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
