# Avatar: fresh-machine commands. `make demo` and `make test` set up .venv themselves.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export AVATAR_DATA ?= $(abspath ../shared/data)
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= offline

.PHONY: setup demo test test-slow lint bench clean

$(BIN)/.installed: pyproject.toml
	@command -v $(PY) >/dev/null || { echo "need Python 3.11 ($(PY)) on PATH"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel on disk, never a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/python search.py experiment=demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q --durations=10

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python bench/search_bench.py

clean:
	rm -rf $(VENV) outputs multirun wandb .avatar_cache
