#!/usr/bin/env bash
# The amortization commands on a CUDA GPU in bf16: a few steps of `whetstone sharpen-sft` and
# `whetstone sharpen-rl`, each with --merge, on a model of the embedded model's shape (random
# weights: the real ones are too large to carry to the device machine). Needs, carried beside
# the repository: .whl/ (the wheels the GPU image lacks: trl, datasets, pydantic, ...) and
# .gpukit/ (model config and tokenizer, an SFT set of real best-of-8 answers, RL prompts).
# Writes what it measured to $OUT (cards, loss plots, log).
set -euo pipefail
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 WHETSTONE_HOME=/tmp/wh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, trl, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__, 'peft', peft.__version__)" | tee -a "$OUT/gpu.txt"
python3 -m benchmarks.amortize.random_model .gpukit/model /tmp/model
mkdir -p /tmp/sft && cp .gpukit/sft.jsonl /tmp/sft/sft.jsonl  # collected through a CPU server: no engine here
timed() { local name=$1; shift; local start=$SECONDS; "$@" 2>&1 | tee "$OUT/$name.log" | grep -v "it/s\]$" | tail -20; echo "$name: $((SECONDS - start)) s" | tee -a "$OUT/gpu.txt"; }
timed sft python3 -m training.cli sharpen-sft --prompts .gpukit/sft_prompts.jsonl --n 8 --out /tmp/sft \
    --model /tmp/model --max-steps 30 --batch-size 8 --merge
timed rl python3 -m training.cli sharpen-rl --prompts .gpukit/rl_prompts.jsonl --alpha 4 --out /tmp/rl \
    --model /tmp/model --max-tokens 64 --max-steps 12 --batch-size 16 --num-generations 4 --merge
for kind in sft rl; do cp /tmp/$kind/card.json "$OUT/${kind}_card.json"; cp /tmp/$kind/training.png "$OUT/${kind}_training.png" 2>/dev/null || true; done
python3 -c "
import json, sys
for kind in ('sft', 'rl'):
    card = json.load(open(f'$OUT/{kind}_card.json'))
    print(kind, 'precision', card['precision_used'], 'steps', card['steps'], 'merged', card['merged'])
" | tee -a "$OUT/gpu.txt"
