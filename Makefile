# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Any Python from 3.11 on: `make test PYTHON=python3.13` builds its own .venv-python3.13 beside .venv, and pip
# takes the newest zarr/ome-zarr that Python supports. The torch extra installs on 3.11 only (pyproject.toml).
PYTHON ?= python3
VENV   ?= $(if $(filter python3,$(PYTHON)),.venv,.venv-$(notdir $(PYTHON)))
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check

.PHONY: demo test test-fast lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Stamps re-run the install whenever pyproject.toml changes.
$(VENV)/.demo-installed: pyproject.toml | $(PY)
	$(PIP) install -q -e .
	@touch $@

# torch is pinned exactly in the extra (a local CPU wheel, Python 3.11); s3fs and moto come in one command.
$(VENV)/.test-installed: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[dev,torch,s3,dask,metrics]'
	@touch $@ $(VENV)/.demo-installed

$(VENV)/.bench-installed: $(VENV)/.test-installed
	$(PIP) install -q -e '.[dev,torch,s3,dask,metrics,bench]'
	@touch $@

demo: $(VENV)/.demo-installed
	$(PY) -m hcsvfs.cli demo

test: $(VENV)/.test-installed
	$(PY) -m pytest -q

# ruff and mypy on src/, both clean (CI runs this before the tests).
lint: $(VENV)/.test-installed
	$(PY) -m ruff check src
	$(PY) -m mypy

test-fast: $(VENV)/.test-installed
	$(PY) -m pytest -q -m "not slow"

bench: $(VENV)/.bench-installed
	$(PY) -m hcsvfs.cli bench

clean:
	rm -rf .venv .venv-* demo_output .pytest_cache .hypothesis
