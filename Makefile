# Two commands for a bare machine with Python 3.12: `make run` and `make test`.
# Python 3.12 (JAX >= 0.11 needs it): python3.12 on PATH, else the newest pyenv 3.12.
PYTHON ?= $(shell tools/find-python 3.12)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint bench bench-gpu clean

install: $(STAMP)

$(STAMP): requirements.txt
	@test -n "$(PYTHON)" || { echo "error: no Python 3.12 found (python3.12 on PATH or pyenv); install it or pass PYTHON=..."; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

run: install
	$(PY) launch.py

# the whole suite on TensorFlow (the default backend), then the tests marked `backends` again
# on JAX, with TensorFlow made unimportable: the JAX path must run where it is not installed
test: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest
	KERAS_BACKEND=jax $(PY) -m pytest -m backends

# everyday work: everything but the end-to-end tests (marked e2e: real sweeps, clusters, servers, every example trained)
test-fast: install
	$(PY) -m pytest -m "not e2e"

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache

# every benchmark in turn, each one's JSON line (see BENCHMARKS.md for how long each takes)
bench: install
	for name in train_step source_size sweep_overhead collapse_savings memory driver_scale gpu_packing \
	    detector_accuracy oracle_calibration runaway_rates selection fidelity search_efficiency sampler_surrogate warm_start scale; do $(PY) bench/$$name.py | tail -n 1; done

# every GPU row in one prepared call, on a GPU machine with JAX and no package index; carry
# the bundle `tools/wheelhouse .gpu-bundle` built (see BENCHMARKS.md, GPU)
bench-gpu:
	bash bench/gpu.sh
