# Two commands for a newcomer:  `make demo` (set up, train on the built-in names, sample)
# and `make test` (set up, run the tests). Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
# torch is installed first, pinned, unless the venv already has one: a plain `pip install torch`
# can pull a multi-GB CUDA build on CPU-only Linux. Override, e.g. `make demo TORCH=torch`.
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --disable-pip-version-check "$(TORCH)"
	$(BIN)/pip install --disable-pip-version-check -e ".[plot,test]"
	touch $@

demo: $(STAMP)
	$(BIN)/makemore train --out runs/demo --force --time-budget 150 --samples 0
	$(BIN)/makemore sample runs/demo -n 20 --novel --seed 0

# the tests run on every core (pytest-xdist), each with one torch thread (tests/conftest.py)
test: $(STAMP)
	$(BIN)/python -m pytest -n auto

clean:
	rm -rf $(VENV) runs
