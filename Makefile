# Two commands on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: serve test bench install clean

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

test: $(TEST_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(TEST_STAMP)
	$(PY) -m pip install --quiet -e '.[bench]' || echo "open3d-cpu could not be installed: its rows are skipped"
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
