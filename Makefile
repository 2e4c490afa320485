# Two commands on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: serve test test-fast bench install clean

# requires-python in pyproject.toml; a venv whose python is older, or broken (its
# interpreter moved or removed), is built again instead of failing in pip.
SUPPORTED_PYTHON := import sys; sys.exit(sys.version_info < (3, 11))
ifneq ($(shell $(PY) -c '$(SUPPORTED_PYTHON)' >/dev/null 2>&1 && echo ok),ok)
.PHONY: $(PY) $(RUNTIME_STAMP) $(TEST_STAMP)
endif

$(PY):
	@$(PYTHON) -c '$(SUPPORTED_PYTHON)' 2>/dev/null || { echo "AeroVision needs Python >= 3.11;" \
	  "$(PYTHON) is $$($(PYTHON) --version 2>&1 || echo missing): run make PYTHON=python3.12 …" >&2; exit 1; }
	@if [ -e $(VENV) ] || [ -L $(PY) ]; then \
	  echo "$(VENV) was made by a Python that is missing or older than 3.11: building it again"; \
	  rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@ $(RUNTIME_STAMP)

install: $(RUNTIME_STAMP)

serve: $(RUNTIME_STAMP)
	$(VENV)/bin/aerovision serve $(ARGS)

# The whole suite, test files spread over PYTEST_JOBS processes (0: in this one).
# Most tests wait on real servers, receivers and leases, so 4 processes overlap on
# 2 cores; a file stays in one process, so its servers start once.
PYTEST_JOBS ?= 4
test: $(TEST_STAMP)
	$(PY) -m pytest -n $(PYTEST_JOBS) --dist loadfile $(PYTEST_ARGS)

# The fast loop: engine, parameters, registry, store, in-process API and worker,
# the notifier against a real receiver; no `aerovision serve`, no browser.
FAST_TESTS := tests/engine tests/store tests/jobs/test_executor.py \
  tests/jobs/test_runners.py tests/jobs/test_worker.py tests/test_params.py \
  tests/test_registry.py tests/test_cli_registry.py tests/test_netpolicy.py \
  tests/test_notifier.py tests/test_ply_normals.py tests/test_bench_data.py
test-fast: $(TEST_STAMP)
	$(PY) -m pytest -n 2 --dist loadfile $(FAST_TESTS) $(PYTEST_ARGS)

bench: $(TEST_STAMP)
	$(PY) -m pip install --quiet -e '.[bench]' || echo "open3d-cpu could not be installed: its rows are skipped"
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
